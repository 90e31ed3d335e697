"""The key map from Bonettini et al.'s published state dicts to dfmnist's detectors.

The originals (`architectures/fornet.py` of polimi-ispl/icpr2020dfdc) hold an
efficientnet_pytorch B4 under `efficientnet.`; dfmnist holds torchvision's B4 layout under
`features.`. Same tensors, other names:

| original (efficientnet_pytorch)                    | dfmnist (torchvision layout)          |
|----------------------------------------------------|---------------------------------------|
| `efficientnet._conv_stem`, `._bn0`                 | `features.0.0`, `features.0.1`        |
| `efficientnet._blocks.{i}._expand_conv`, `._bn0`   | `features.{stage}.{j}.block.0.0`, `.0.1` |
| `efficientnet._blocks.{i}._depthwise_conv`, `._bn1` | `...block.{d}.0`, `...block.{d}.1`   |
| `efficientnet._blocks.{i}._se_reduce`, `._se_expand` | `...block.{d+1}.fc1`, `.fc2`        |
| `efficientnet._blocks.{i}._project_conv`, `._bn2`  | `...block.{d+2}.0`, `...block.{d+2}.1` |
| `efficientnet._conv_head`, `._bn1`                 | `features.8.0`, `features.8.1`        |
| `efficientnet.attconv` (AutoAtt)                   | `attention`                           |
| `classifier` (Linear)                              | `classifier.1` (Dropout at `.0`)      |
| ST: `feat_ext.{above}`                             | `extractor.{above}`                   |
| ST: `classifier.0` (BatchNorm1d), `.1` (Linear)    | `head_layers.0`, `head_layers.1`      |

Block i is the j-th block of torchvision stage `stage` (stages of 2, 4, 4, 6, 6, 8 and 2
blocks); d is 1 where the block expands its channels and 0 in stage 1, which does not.
"""

from __future__ import annotations

#: Blocks per torchvision B4 stage (`features.1` ... `features.7`), efficientnet_pytorch's
#: `_blocks` in the same order.
B4_STAGE_DEPTHS = (2, 4, 4, 6, 6, 8, 2)
#: Batch-norm tensors (efficientnet_pytorch and torchvision keep the same five).
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
#: The four published architectures: (has an attention branch, siamese-tuned head).
ARCHITECTURES = {
    "EfficientNetB4": (False, False),
    "EfficientNetAutoAttB4": (True, False),
    "EfficientNetB4ST": (False, True),
    "EfficientNetAutoAttB4ST": (True, True),
}


def _conv_bn(original: str, ours: str, bn_original: str | None, with_bias: bool = False
             ) -> dict[str, str]:
    keys = {f"{original}.weight": f"{ours}.0.weight"}
    if with_bias:
        keys[f"{original}.bias"] = f"{ours}.0.bias"
    if bn_original:
        keys.update({f"{bn_original}.{t}": f"{ours}.1.{t}" for t in _BN})
    return keys


def backbone_keys() -> dict[str, str]:
    """efficientnet_pytorch B4 key (under `efficientnet.`) -> torchvision key (`features.`)."""
    src, dst = "efficientnet", "features"
    keys = _conv_bn(f"{src}._conv_stem", f"{dst}.0", f"{src}._bn0")
    index = 0
    for stage, depth in enumerate(B4_STAGE_DEPTHS, start=1):
        for j in range(depth):
            block, ours = f"{src}._blocks.{index}", f"{dst}.{stage}.{j}.block"
            d = 0 if stage == 1 else 1  # stage 1 does not expand (expand ratio 1)
            if d:
                keys.update(_conv_bn(f"{block}._expand_conv", f"{ours}.0", f"{block}._bn0"))
            keys.update(_conv_bn(f"{block}._depthwise_conv", f"{ours}.{d}", f"{block}._bn1"))
            for part, fc in (("_se_reduce", "fc1"), ("_se_expand", "fc2")):
                for t in ("weight", "bias"):
                    keys[f"{block}.{part}.{t}"] = f"{ours}.{d + 1}.{fc}.{t}"
            keys.update(_conv_bn(f"{block}._project_conv", f"{ours}.{d + 2}", f"{block}._bn2"))
            index += 1
    keys.update(_conv_bn(f"{src}._conv_head", f"{dst}.8", f"{src}._bn1"))
    return keys


def _detector_keys(attention: bool) -> dict[str, str]:
    keys = backbone_keys()
    if attention:
        keys.update({f"efficientnet.attconv.{t}": f"attention.{t}" for t in ("weight", "bias")})
    keys.update({f"classifier.{t}": f"classifier.1.{t}" for t in ("weight", "bias")})
    return keys


def key_map(arch: str) -> dict[str, str]:
    """Original key -> dfmnist key for every tensor of one published architecture."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown published architecture {arch!r} "
                         f"(known: {', '.join(ARCHITECTURES)})")
    attention, siamese = ARCHITECTURES[arch]
    inner = _detector_keys(attention)
    if not siamese:
        return inner
    keys = {f"feat_ext.{k}": f"extractor.{v}" for k, v in inner.items()}
    keys.update({f"classifier.0.{t}": f"head_layers.0.{t}" for t in _BN})
    keys.update({f"classifier.1.{t}": f"head_layers.1.{t}" for t in ("weight", "bias")})
    return keys
