"""The five face-swap autoencoders of DFDM, by name: their sizes, and how to build them.

Structures follow the faceswap project's model plugins (``original``, ``lightweight``,
``iae``, ``dfaker``, ``dfl_h128``) as DFDM's table summarises them:

============  ========  ===================  ==============================
model         in->out   encoder              decoder (per identity)
============  ========  ===================  ==============================
faceswap      64->64    4 conv + 1 upscale   3 upscale + 1 conv
lightweight   64->64    3 conv + 1 upscale   3 upscale + 1 conv
iae           64->64    4 conv               4 upscale + 1 conv (shared),
                                             intermediates a, b and both
dfaker        64->128   4 conv + 1 upscale   4 upscale + 3 residual + 1 conv
dfl_h128      128->128  4 conv + 1 upscale   3 upscale + 1 conv
============  ========  ===================  ==============================

Masks: faceswap makes a learned mask a global option ("learn_mask", off by default) that adds
a separate branch of upscales to each decoder. We learn one where the model's own project
did: dfaker (the dfaker repository trains an RGB face plus a mask) and DFL-H128 (DeepFaceLab's
H128 decoder always has the mask branch). The other three convert with a landmark mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from dfmnist.faceswap.blocks import scaled
from dfmnist.faceswap.decoder import Decoder, DecoderShape
from dfmnist.faceswap.encoder import Encoder, EncoderShape
from dfmnist.faceswap.intermediate import Intermediate

Side = Literal["a", "b"]
SIDES: tuple[str, ...] = ("a", "b")


@dataclass(frozen=True)
class SwapSpec:
    """What a face-swap model takes and gives: square RGB faces of `input_size`, faces (and a
    mask when `has_mask`) of `output_size`; `lr` is faceswap's default Adam learning rate."""

    name: str
    input_size: int
    output_size: int
    has_mask: bool
    description: str = ""
    lr: float = 5e-5


SWAP_MODELS: dict[str, SwapSpec] = {
    spec.name: spec
    for spec in (
        SwapSpec("faceswap", 64, 64, False, "the original deepfakes autoencoder"),
        SwapSpec("lightweight", 64, 64, False, "the original with 3 convolutions, 512-d code"),
        SwapSpec("iae", 64, 64, False, "improved autoencoder: shared decoder, intermediates"),
        SwapSpec("dfaker", 64, 128, True, "128 px output, residual decoder, learned mask"),
        SwapSpec("dfl_h128", 128, 128, True, "DeepFaceLab H128: 128 px, learned mask"),
    )
}


class SwapModel(nn.Module):
    """A shared encoder and one decoder per identity (IAE: a shared decoder and intermediates).

    ``forward(faces, side)``: faces (N, 3, in, in) float in [0, 1] -> the face as identity
    `side` would show it, (N, 3, out, out) in [0, 1], and its mask (N, 1, out, out) or None.
    """

    def __init__(
        self,
        spec: SwapSpec,
        width: float,
        encoder: Encoder,
        decoders: dict[str, Decoder],
        intermediates: dict[str, Intermediate] | None = None,
    ) -> None:
        super().__init__()
        self.spec, self.width = spec, width
        self.encoder = encoder
        self.decoders = nn.ModuleDict(decoders)
        self.intermediates = nn.ModuleDict(intermediates) if intermediates else None

    def decode(
        self, features: torch.Tensor, side: Side
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode shared encoder features as identity `side`."""
        if side not in SIDES:
            raise ValueError(f"side must be 'a' or 'b', got {side!r}")
        if self.intermediates is None:
            return self.decoders[side](features)
        both = self.intermediates["both"](features)
        own = self.intermediates[side](features)
        return self.decoders["shared"](torch.cat([own, both], dim=1))

    def forward(
        self, faces: torch.Tensor, side: Side
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        size = self.spec.input_size
        if faces.ndim != 4 or tuple(faces.shape[1:]) != (3, size, size):
            raise ValueError(
                f"{self.spec.name} takes faces (N, 3, {size}, {size}), got {tuple(faces.shape)}"
            )
        return self.decode(self.encoder(faces), side)


def _shapes(name: str, width: float) -> tuple[EncoderShape, DecoderShape]:
    def c(channels: int) -> int:
        return scaled(channels, width)

    if name == "faceswap":
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)), c(1024), (4, c(1024)), c(512))
        return encoder, DecoderShape((c(256), c(128), c(64)))
    if name == "lightweight":
        encoder = EncoderShape((c(128), c(256), c(512)), c(512), (4, c(512)), c(256))
        return encoder, DecoderShape((c(512), c(256), c(128)))
    if name == "iae":
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)))
        return encoder, DecoderShape((c(512), c(256), c(128), c(64)))
    if name == "dfaker":
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)), c(1024), (4, c(1024)), c(512))
        upscales = (c(512), c(256), c(128), c(64))
        return encoder, DecoderShape(upscales, residual=3, mask=upscales)
    if name == "dfl_h128":
        dim = c(512)
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)), dim, (8, dim), dim)
        upscales = (dim, c(256), c(128))
        return encoder, DecoderShape(upscales, mask=upscales)
    raise KeyError(name)


def build_swap_model(name: str, width: float = 1.0) -> SwapModel:
    """A freshly initialised model `name` (a key of SWAP_MODELS) with channels times `width`."""
    if name not in SWAP_MODELS:
        raise ValueError(f"unknown face-swap model {name!r}; known: {', '.join(SWAP_MODELS)}")
    if not (isinstance(width, (int, float)) and 0 < width <= 4):
        raise ValueError(f"width must be in (0, 4], got {width!r}")
    spec = SWAP_MODELS[name]
    encoder_shape, decoder_shape = _shapes(name, float(width))
    encoder = Encoder(spec.input_size, encoder_shape)
    if name == "iae":
        half = scaled(512, width)
        intermediates = {
            key: Intermediate(encoder.out_features, scaled(1024, width), 4, half)
            for key in ("a", "b", "both")
        }
        decoder = Decoder(2 * half, decoder_shape)
        return SwapModel(spec, width, encoder, {"shared": decoder}, intermediates)
    assert encoder_shape.upscale is not None
    decoders = {side: Decoder(encoder_shape.upscale, decoder_shape) for side in SIDES}
    return SwapModel(spec, width, encoder, decoders)


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters of `module`, each shared tensor counted once."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
