"""Training a face-swap autoencoder on two identities' aligned crops, resumably, and loading
the trained model as a swapper (A's faces in, B's identity out).

One iteration draws a batch of each identity, augments it (`dfmnist.faceswap.augment`),
reconstructs A through decoder A and B through decoder B from the shared encoder, and takes
one Adam step on the sum of both sides' losses. Two recipes (`RECIPES`):

* ``faceswap`` (the default): faceswap's own defaults (`dfmnist.faceswap.losses` cites each):
  colour augmentation, SSIM + L2 inside each face's extended mask plus 3x the eye and 2x the
  mouth areas (`penalized_mask_loss`), Adam with beta_1 0.5, beta_2 0.99, epsilon 1e-7; a
  learned mask trains by MSE against the extended mask.
* ``simple``: MAE over the whole crop, Adam with torch's betas, no colour augmentation; a
  learned mask trains by MSE against the template's landmark ellipse.

Every random draw comes from one
seeded numpy Generator; the checkpoint holds the model, the optimiser, the iteration, the
losses and both RNG states, so a resumed run ends with the same weights as an unbroken one
(same device and thread count: float sums are not reproducible across them).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dfmnist.faceswap.align import DEFAULT_COVERAGE
from dfmnist.faceswap.augment import BatchRecipe, TrainingBatch, resize_faces, training_batch
from dfmnist.faceswap.losses import FACESWAP_DEFAULTS, penalized_mask_loss
from dfmnist.faceswap.models import SWAP_MODELS, SwapModel, SwapSpec, build_swap_model
from dfmnist.faceswap.pairs import RECIPES
from dfmnist.gpus import resolve_device
from dfmnist.storage.files import atomic_path

LOG = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 2  # 2: the recipe and the learn_mask switch in the identity


@dataclass(frozen=True)
class TrainSettings:
    """How long and how a model trains; `log_every` only changes what is logged."""

    iterations: int
    batch_size: int
    lr: float
    seed: int
    checkpoint_every: int
    recipe: str = "faceswap"
    learn_mask: bool = False
    log_every: int = 100

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"TrainSettings.recipe must be one of {', '.join(RECIPES)}, got "
                             f"{self.recipe!r}")
        for name in ("iterations", "batch_size", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainSettings.{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"TrainSettings.lr must be in (0, 1), got {self.lr!r}")


def _check_faces(faces: np.ndarray, side: str) -> None:
    if not isinstance(faces, np.ndarray) or faces.dtype != np.uint8:
        raise ValueError(f"faces_{side} must be a uint8 numpy array")
    if faces.ndim != 4 or faces.shape[3] != 3 or faces.shape[1] != faces.shape[2]:
        raise ValueError(f"faces_{side} must be square RGB crops (N, S, S, 3), got {faces.shape}")
    if len(faces) == 0:
        raise ValueError(f"faces_{side} is empty: no aligned crops to train on")


def _check_landmarks(landmarks: np.ndarray | None, faces: np.ndarray, side: str
                     ) -> np.ndarray | None:
    if landmarks is None:
        return None
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (len(faces), 5, 2) or not np.isfinite(lm).all():
        raise ValueError(f"landmarks_{side} must be finite ({len(faces)}, 5, 2), one set per "
                         f"crop, got {lm.shape}")
    return lm


def _faces_digest(faces: np.ndarray) -> str:
    """Which crops a checkpoint was trained on: a resume on other crops is refused."""
    digest = hashlib.sha256(str(faces.shape).encode())
    digest.update(np.ascontiguousarray(faces).data)
    return digest.hexdigest()[:16]


def _new_model(name: str, width: float, seed: int, learn_mask: bool) -> SwapModel:
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG stays untouched
        torch.manual_seed(seed)
        return build_swap_model(name, width, learn_mask)


def _optimiser(net: SwapModel, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.recipe == "faceswap":
        recipe = FACESWAP_DEFAULTS
        return torch.optim.Adam(net.parameters(), lr=settings.lr, eps=recipe.epsilon,
                                betas=(recipe.adam_beta_1, recipe.adam_beta_2))
    return torch.optim.Adam(net.parameters(), lr=settings.lr, eps=1e-7)


def batch_recipe(settings: TrainSettings, source_size: int) -> BatchRecipe:
    """What a training batch holds for `settings`' recipe (stored crops of `source_size`)."""
    if settings.recipe == "faceswap":
        return BatchRecipe(face_mask="extended", regions=True, colour=True,
                           source_size=source_size)
    return BatchRecipe(face_mask="ellipse" if settings.learn_mask else None)


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _read_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which
        raise ValueError(f"{path}: not a readable face-swap checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a face-swap checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def _step_loss(model: SwapModel, batch: TrainingBatch, side: str, recipe: str,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    def tensor(array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(array).to(device)

    inputs, targets = tensor(batch.inputs), tensor(batch.targets)
    masks = tensor(batch.face_masks)
    face, mask = model(inputs, side)
    if recipe == "faceswap":
        reconstruction = penalized_mask_loss(face, targets, masks, tensor(batch.eye_masks),
                                             tensor(batch.mouth_masks))
    else:
        reconstruction = F.l1_loss(face, targets)
    loss = reconstruction
    if mask is not None and masks is not None:
        loss = loss + F.mse_loss(mask, masks)  # faceswap's mask_loss_function, mse
    return loss, reconstruction


def train_swap(
    model: str,
    width: float,
    faces_a: np.ndarray,
    faces_b: np.ndarray,
    settings: TrainSettings,
    checkpoint: Path,
    log: Callable[[str], None] | None = None,
    device: str | None = None,
    coverage: float = DEFAULT_COVERAGE,
    landmarks_a: np.ndarray | None = None,
    landmarks_b: np.ndarray | None = None,
) -> dict:
    """Train `model` at `width` to rebuild identity A (`faces_a`) and B (`faces_b`), crops
    that `align_faces` made at `coverage` (where the template's landmarks lie), with
    `settings.recipe`. `landmarks_a`, `landmarks_b` (N, 5, 2): each crop's five points in its
    pixels, which place its extended mask and eye and mouth areas (not given: the template's).

    Crops are any square size S; they are resized once to the model's output size and
    augmented per batch. Resumes from `checkpoint` when it exists (same model, width, settings
    and crops expected); writes it every `settings.checkpoint_every` iterations and at the end.
    Returns ``{"losses", "reconstruction", "iterations", "resumed_from", "seconds",
    "iterations_per_s", "step_seconds"}``: per-iteration total and face-only losses (A + B)
    from iteration 1; the wall time of each iteration this call ran (batch making included).
    """
    if model not in SWAP_MODELS:
        raise ValueError(f"unknown face-swap model {model!r}; known: {', '.join(SWAP_MODELS)}")
    _check_faces(faces_a, "a")
    _check_faces(faces_b, "b")
    say = log or LOG.info
    checkpoint = Path(checkpoint)
    spec: SwapSpec = SWAP_MODELS[model]
    torch_device = torch.device(resolve_device(device or "auto"))
    marks = [_check_landmarks(lm, faces, side)
             for lm, faces, side in ((landmarks_a, faces_a, "a"), (landmarks_b, faces_b, "b"))]
    identity = {"model": model, "width": float(width), "seed": settings.seed,
                "batch_size": settings.batch_size, "lr": settings.lr,
                "recipe": settings.recipe, "learn_mask": settings.learn_mask,
                "faces": [_faces_digest(faces_a), _faces_digest(faces_b)]
                + [_faces_digest(lm) for lm in marks if lm is not None]}

    net = _new_model(model, width, settings.seed, settings.learn_mask).to(torch_device)
    optimiser = _optimiser(net, settings)
    rng = np.random.default_rng(settings.seed)
    losses: list[float] = []
    reconstruction: list[float] = []
    start = 0
    if checkpoint.exists():
        state = _read_checkpoint(checkpoint)
        if state["identity"] != identity:
            differ = sorted(k for k in identity if state["identity"].get(k) != identity[k])
            raise ValueError(f"{checkpoint}: trained with another {', '.join(differ)}; remove "
                             "it to train from scratch")
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        losses, reconstruction = list(state["losses"]), list(state["reconstruction"])
        start = int(state["iteration"])
        if start > settings.iterations:
            raise ValueError(f"{checkpoint}: already at iteration {start}, beyond the "
                             f"{settings.iterations} asked; remove it to train from scratch")
        say(f"{model}: resuming from {checkpoint} at iteration {start}")

    pools = [resize_faces(faces, spec.output_size) for faces in (faces_a, faces_b)]
    scale = spec.output_size / faces_a.shape[1]
    pool_marks = [None if lm is None else (lm + 0.5) * scale - 0.5 for lm in marks]
    recipe = batch_recipe(settings, faces_a.shape[1])

    def save(iteration: int) -> None:
        _save_checkpoint(checkpoint, {
            "format": CHECKPOINT_FORMAT, "identity": identity, "spec": asdict(spec),
            "settings": asdict(settings), "iteration": iteration,
            "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "optimiser": optimiser.state_dict(), "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(), "losses": losses,
            "reconstruction": reconstruction,
        })

    net.train()
    began = time.perf_counter()
    window_start, window_iters = began, 0
    step_seconds: list[float] = []  # this call's iterations only (a benchmark's figure)
    for iteration in range(start + 1, settings.iterations + 1):
        step_began = time.perf_counter()
        total = torch.zeros((), device=torch_device)
        face_losses = []
        for side, pool, pool_lm in zip(("a", "b"), pools, pool_marks, strict=True):
            indices = rng.integers(0, len(pool), size=settings.batch_size)
            batch = training_batch(pool, indices, spec.input_size, spec.output_size, rng,
                                   recipe, landmarks=pool_lm, coverage=coverage)
            loss, face_loss = _step_loss(net, batch, side, settings.recipe, torch_device)
            total = total + loss
            face_losses.append(face_loss.detach())  # read after the step: no wait per side
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        losses.append(float(total.detach()))  # float() waits for the device: a full step
        face_total = 0.0
        for face_loss in face_losses:
            face_total += float(face_loss)
        reconstruction.append(face_total)
        step_seconds.append(time.perf_counter() - step_began)
        window_iters += 1
        if iteration % settings.log_every == 0 or iteration == settings.iterations:
            now = time.perf_counter()
            rate = window_iters / max(now - window_start, 1e-9)
            say(f"{model}: iteration {iteration}/{settings.iterations} loss {losses[-1]:.4f} "
                f"(face {face_total:.4f}) {rate:.2f} it/s")
            window_start, window_iters = now, 0
        if iteration % settings.checkpoint_every == 0 or iteration == settings.iterations:
            save(iteration)
    seconds = time.perf_counter() - began
    done = max(settings.iterations - start, 0)
    return {"losses": losses, "reconstruction": reconstruction,
            "iterations": settings.iterations, "resumed_from": start,
            "seconds": seconds, "iterations_per_s": done / seconds if done else 0.0,
            "step_seconds": step_seconds}


class Swapper:
    """A trained model as a function: aligned crops (N, S, S, 3) uint8 of one identity -> the
    faces decoded as the identity of `side` ("b" swaps A's crops into B, "a" B's into A),
    resized back to S, (N, S, S, 3) uint8, and the masks (N, S, S) float32 in [0, 1] or None."""

    def __init__(self, model: SwapModel, device: torch.device, batch_size: int = 32,
                 side: str = "b") -> None:
        if side not in ("a", "b"):
            raise ValueError(f"side must be 'a' or 'b', got {side!r}")
        self.model, self.device, self.batch_size = model.eval(), device, batch_size
        self.side = side
        self.spec: SwapSpec = model.spec
        self.has_mask = model.has_mask

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 4 \
                or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2]:
            raise ValueError("crops must be square uint8 RGB crops (N, S, S, 3)")
        size = crops.shape[1]
        faces_out, masks_out = [], []
        for start in range(0, len(crops), self.batch_size):
            chunk = resize_faces(crops[start:start + self.batch_size], self.spec.input_size)
            inputs = torch.from_numpy(chunk).to(self.device).permute(0, 3, 1, 2).float() / 255
            face, mask = self.model(inputs, self.side)
            face = (face.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
            faces_out.append(resize_faces(face, size))
            if mask is not None:
                masks = mask[:, 0].cpu().numpy().astype(np.float32)
                masks_out.append(np.clip(resize_faces(masks, size), 0, 1))
        if not faces_out:
            empty = np.zeros((0, size, size, 3), np.uint8)
            return empty, (np.zeros((0, size, size), np.float32) if self.has_mask else None)
        return np.concatenate(faces_out), (np.concatenate(masks_out) if masks_out else None)


def load_swapper(checkpoint: Path, device: str = "cpu", side: str = "b") -> Swapper:
    """The model trained into `checkpoint`, ready to swap crops into the identity of `side`
    (the default: A's crops into B's identity)."""
    state = _read_checkpoint(Path(checkpoint))
    identity = state["identity"]
    model = build_swap_model(identity["model"], identity["width"], identity["learn_mask"])
    model.load_state_dict(state["model"])
    torch_device = torch.device(device)
    return Swapper(model.to(torch_device), torch_device, side=side)
