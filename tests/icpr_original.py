"""Score faces with the original icpr2020dfdc code, in a process of its own.

    python tests/icpr_original.py --checkout DIR --libs DIR --arch A --state S.pth \
        --input X.npy --out O.npz [--double]

DIR is a checkout of polimi-ispl/icpr2020dfdc; --libs is a folder holding one
efficientnet_pytorch release (e.g. `pip install --no-deps --target DIR
efficientnet_pytorch==0.6.3`). The network `architectures.fornet.A` is built with that release,
loads the original-format state dict S.pth strictly and, in eval mode, scores the (N, 3, 224,
224) faces in X.npy. O.npz gets `logits` (N, 1), `attention` (N, 1, 28, 28) for the AutoAtt
classes (the original's `get_attention`), `version` (efficientnet_pytorch's) and `dtype`.

A process per library release: both install the same package name, so one interpreter can
import only one of them. tests/test_published_original.py runs this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _no_download(efficientnet_class) -> None:
    """The original constructors call `EfficientNet.from_pretrained`, which downloads the
    ImageNet weights and loads them into the network. Every one of those tensors is then
    replaced by the strict load of the state dict under test, so the download changes nothing
    but needs a network connection (and a cache): build the same architecture with `from_name`
    instead. Both releases' `from_pretrained` build the network with `from_name` too, and with
    three input channels they change nothing else."""

    def from_pretrained(cls, model_name, *args, **kwargs):
        return cls.from_name(model_name)

    efficientnet_class.from_pretrained = classmethod(from_pretrained)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", required=True, type=Path)
    parser.add_argument("--libs", required=True, type=Path)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--double", action="store_true", help="score in float64")
    args = parser.parse_args(argv)

    # the library release first, so that no other installed copy can shadow it
    sys.path[:0] = [str(args.libs.resolve()), str(args.checkout.resolve())]
    import efficientnet_pytorch
    import numpy as np
    import torch
    from efficientnet_pytorch import EfficientNet

    library = Path(efficientnet_pytorch.__file__).resolve()
    if args.libs.resolve() not in library.parents:
        raise SystemExit(f"efficientnet_pytorch came from {library}, not from {args.libs}")
    _no_download(EfficientNet)
    from architectures import fornet

    model = getattr(fornet, args.arch)()
    state = torch.load(args.state, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    dtype = torch.float64 if args.double else torch.float32
    model.to(dtype)
    x = torch.from_numpy(np.load(args.input)).to(dtype)

    out = {"version": np.array(efficientnet_pytorch.__version__),
           "dtype": np.array(str(dtype))}
    # the ST classes keep the attention network as feat_ext and have no get_attention
    attention = getattr(model, "get_attention", None) or getattr(
        getattr(model, "feat_ext", None), "get_attention", None)
    with torch.no_grad():
        out["logits"] = model(x).numpy()
        if attention is not None:
            out["attention"] = attention(x).numpy()
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
