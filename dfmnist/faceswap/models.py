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

Masks: faceswap makes a learned mask one switch for every model ("learn_mask", off by
default, plugins/train/_config.py 422): each decoder gains a separate branch of the face's
upscales (without dfaker's residual blocks) and a 1-channel output, trained against the
training mask. `build_swap_model(..., learn_mask=True)` adds it; without it conversion blends
with a landmark mask.
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
    mask, when built with one) of `output_size`."""

    name: str
    input_size: int
    output_size: int
    description: str = ""


SWAP_MODELS: dict[str, SwapSpec] = {
    spec.name: spec
    for spec in (
        SwapSpec("faceswap", 64, 64, "the original deepfakes autoencoder"),
        SwapSpec("lightweight", 64, 64, "the original with 3 convolutions, 512-d code"),
        SwapSpec("iae", 64, 64, "improved autoencoder: shared decoder, intermediates"),
        SwapSpec("dfaker", 64, 128, "128 px output, residual decoder"),
        SwapSpec("dfl_h128", 128, 128, "DeepFaceLab H128: 128 px input and output"),
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

    @property
    def has_mask(self) -> bool:
        """Whether the decoders learn a mask (built with ``learn_mask``)."""
        return any(decoder.mask is not None for decoder in self.decoders.values())

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


def _shapes(name: str, width: float, learn_mask: bool) -> tuple[EncoderShape, DecoderShape]:
    def c(channels: int) -> int:
        return scaled(channels, width)

    def decoder(upscales: tuple[int, ...], residual: int = 0) -> DecoderShape:
        return DecoderShape(upscales, residual, mask=upscales if learn_mask else None)

    if name == "faceswap":
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)), c(1024), (4, c(1024)), c(512))
        return encoder, decoder((c(256), c(128), c(64)))
    if name == "lightweight":
        encoder = EncoderShape((c(128), c(256), c(512)), c(512), (4, c(512)), c(256))
        return encoder, decoder((c(512), c(256), c(128)))
    if name == "iae":
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)))
        return encoder, decoder((c(512), c(256), c(128), c(64)))
    if name == "dfaker":
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)), c(1024), (4, c(1024)), c(512))
        return encoder, decoder((c(512), c(256), c(128), c(64)), residual=3)
    if name == "dfl_h128":
        dim = c(512)
        encoder = EncoderShape((c(128), c(256), c(512), c(1024)), dim, (8, dim), dim)
        return encoder, decoder((dim, c(256), c(128)))
    raise KeyError(name)


def build_swap_model(name: str, width: float = 1.0, learn_mask: bool = False) -> SwapModel:
    """A freshly initialised model `name` (a key of SWAP_MODELS) with channels times `width`,
    with a learned mask branch in each decoder when `learn_mask`."""
    if name not in SWAP_MODELS:
        raise ValueError(f"unknown face-swap model {name!r}; known: {', '.join(SWAP_MODELS)}")
    if not (isinstance(width, (int, float)) and 0 < width <= 4):
        raise ValueError(f"width must be in (0, 4], got {width!r}")
    spec = SWAP_MODELS[name]
    encoder_shape, decoder_shape = _shapes(name, float(width), bool(learn_mask))
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
