"""TPS warping, the SQLite verdict cache, config checks, generation through the store."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest

from dfmnist.config.checks import ConfigError, check_config, source_clips
from dfmnist.generators import make_generator
from dfmnist.generators.shard import generate_shard, generator_identity
from dfmnist.liveness.base import Verdict
from dfmnist.liveness.cache import VerdictCache
from dfmnist.storage.store import Store
from dfmnist.storage.video import read_video, write_video
from dfmnist.vision.tps import GridWarper, ThinPlateSpline, border_anchors, warp_image

# -- thin-plate spline -------------------------------------------------------------------


def test_tps_interpolates_its_control_points_exactly():
    rng = np.random.default_rng(0)
    targets = rng.uniform(0, 255, (12, 2))
    sources = targets + rng.normal(0, 5, targets.shape)
    # exact in real arithmetic; a float64 solve of this 15x15 system on a 255-pixel scale
    # loses well under 1e-9 pixel, so 1e-6 is no rounding bound but a check of the formula
    assert np.allclose(ThinPlateSpline(targets, sources)(targets), sources, atol=1e-6)


def test_identity_warp_returns_the_image(astronaut):
    image = astronaut[:200, :240]
    anchors = border_anchors(240, 200)
    assert np.array_equal(warp_image(image, anchors, anchors, step=8), image)


def test_translation_warp_moves_content(astronaut):
    image = astronaut[100:356, 100:356]
    pts = border_anchors(256, 256) * 0.5 + 64
    moved = GridWarper(256, 256, 4).warp(image, pts + [6.0, 0.0], pts)
    # content at x moves to x + 6 (away from the borders, where reflection enters)
    # bilinear resampling of uint8 pixels at sub-pixel grid offsets: grey levels, not rounding
    assert np.abs(moved[40:200, 46:200].astype(int) - image[40:200, 40:194]).mean() < 2


def test_tps_rejects_bad_control_points():
    with pytest.raises(ValueError, match="at least 3"):
        ThinPlateSpline(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="pairs"):
        ThinPlateSpline(np.zeros((4, 2)), np.zeros((5, 2)))


# -- verdict cache -----------------------------------------------------------------------


def _write_verdicts(path: str, worker: int, n: int) -> None:
    with VerdictCache(path) as cache:
        for i in range(n):
            cache.put("v1", f"sha-{worker}-{i}", Verdict(True, 0.9, "local", "blink", {"i": i}))


def test_cache_roundtrip_and_keys(tmp_path: Path):
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        assert cache.get("local", "v1", "blink", "abc") is None
        cache.put("v1", "abc", Verdict(False, 0.2, "local", "blink", {"peak": 0.1}))
        got = cache.get("local", "v1", "blink", "abc")
        assert got == Verdict(False, 0.2, "local", "blink", {"peak": 0.1})
        assert cache.get("local", "v2", "blink", "abc") is None  # other config version
        assert cache.get("local", "v1", "yaw", "abc") is None  # other action
    with VerdictCache(tmp_path / "c.sqlite") as reopened:
        assert reopened.count("local") == 1


def test_cache_is_safe_for_concurrent_writers(tmp_path: Path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_verdicts, args=(path, w, 50)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    with VerdictCache(path) as cache:
        assert cache.count() == 200


# -- config ------------------------------------------------------------------------------


def _config(**demo) -> dict:
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
    config["demo"].update(demo)
    return config


def test_check_config_names_the_problem(tmp_path: Path):
    check_config(_config())
    with pytest.raises(ConfigError, match="demo.photos.x: unknown built-in photo 'nobody'"):
        check_config(_config(photos={"x": "builtin:nobody"}))
    with pytest.raises(ConfigError, match="photo file not found"):
        check_config(_config(photos={"x": str(tmp_path / "missing.png")}))
    config = _config()
    config["targets"]["splits"] = {"train": 0.5, "val": 0.2, "test": 0.2}
    with pytest.raises(ConfigError, match="targets.splits: fractions sum to 0.9"):
        check_config(config)
    config = _config()
    del config["liveness"]["policy"]["yaw"]
    with pytest.raises(ConfigError, match="no providers for yaw"):
        check_config(config)


def test_real_data_layout_is_indexed(tmp_path: Path):
    for rel in ("id1/vidA/00001.mp4", "id1/vidA/00002.mp4", "id2/vidB/00001.mov"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "id2" / "notes.txt").write_text("ignored")
    config = _config(enabled=False)
    config["data"] = {"sources_dir": str(tmp_path), "driving_dir": str(tmp_path)}
    assert sorted(source_clips(config)[0]) == ["id1/vidA/00001", "id1/vidA/00002", "id2/vidB/00001"]


# -- generation through the store --------------------------------------------------------


def test_generate_shard_computes_once_then_reuses(tmp_path: Path, detector, astronaut,
                                                  grace_hopper):
    from dfmnist.vision.faces import FaceTrack

    def face_crop(image):
        boxes, _, lms = detector.detect(image)[0]
        x0, y0, x1, y1 = boxes[0]
        side = 1.8 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        m = np.array([[128 / side, 0, 64 - 128 * cx / side], [0, 128 / side, 64 - 128 * cy / side]])
        crop = cv2.warpAffine(image, m, (128, 128), borderMode=cv2.BORDER_REPLICATE)
        return crop, lms[0] @ m[:, :2].T + m[:, 2]

    source, source_lms = face_crop(grace_hopper)
    driving_frame, driving_lms = face_crop(astronaut)
    rot = [cv2.getRotationMatrix2D((64, 64), -a, 1.0) for a in np.linspace(0, 12, 8)]
    frames = np.stack([cv2.warpAffine(driving_frame, r, (128, 128)) for r in rot])
    lms = np.stack([driving_lms @ r[:, :2].T + r[:, 2] for r in rot])
    video = write_video(tmp_path / "drive.mp4", frames, 10.0)
    track = FaceTrack(np.zeros((8, 4)), np.ones(8), lms, np.ones(8, bool))
    track.to_frame().write_parquet(tmp_path / "drive.parquet")
    cv2.imwrite(str(tmp_path / "src.png"), cv2.cvtColor(source, cv2.COLOR_RGB2BGR))

    generator = make_generator("landmark_warp")
    plan = pl.DataFrame({
        "candidate_id": ["right_slope/g/v/1/take00"], "action": ["right_slope"], "rank": [0],
        "source_id": ["g/v/1"], "identity": ["g"], "source_image": [str(tmp_path / "src.png")],
        "source_landmarks": [source_lms.reshape(-1).tolist()], "take": ["take00"],
        "driving_video": [str(video)], "driving_track": [str(tmp_path / "drive.parquet")],
        "key": ["c0ffee" * 10 + "c0de"],
    })
    store = Store(tmp_path / "store")
    first, failed = generate_shard(plan, generator, store)
    assert failed.height == 0
    assert first["computed"].to_list() == [True] and first["device"][0] == "cpu"
    fake = read_video(first["video_path"][0])
    assert fake.frames.shape == (8, 128, 128, 3) and fake.fps == pytest.approx(10.0)
    assert np.array_equal(fake.frames[0], source)  # relative motion: frame 0 is the source
    assert np.abs(fake.frames[-1].astype(int) - source).mean() > 3  # and then it moves
    second, _ = generate_shard(plan, generator, store)
    assert second["computed"].to_list() == [False]
    assert second["sha256"].equals(first["sha256"])
    meta = store.meta("fake", "c0ffee" * 10 + "c0de")
    assert meta["generator"] == generator_identity(generator)
    assert first["generator"].to_list() == ["landmark_warp"]

    # a shard of a generator mix: each row's generator makes it and is recorded with it
    copier = make_generator("source_copy")
    mixed = pl.concat([plan.with_columns(generator=pl.lit("landmark_warp")),
                       plan.with_columns(candidate_id=pl.lit("yaw/g/v/1/take00"),
                                         key=pl.lit("5c" * 32), generator=pl.lit("source_copy"))])
    both, _ = generate_shard(mixed, {"landmark_warp": generator, "source_copy": copier}, store)
    assert both["generator"].to_list() == ["landmark_warp", "source_copy"]
    assert both["computed"].to_list() == [False, True]
    assert store.meta("fake", "5c" * 32)["generator"]["name"] == "source_copy"
    with pytest.raises(ValueError, match="names generator 'source_copy'"):
        generate_shard(mixed, {"landmark_warp": generator}, store)

    # items that raise (a damaged driving video, a track that does not fit its video) are
    # failure rows with the error; the shard's other items are kept
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    FaceTrack(np.zeros((3, 4)), np.ones(3), lms[:3], np.ones(3, bool)).to_frame().write_parquet(
        tmp_path / "short.parquet")
    bad = pl.concat([
        plan,
        plan.with_columns(candidate_id=pl.lit("yaw/g/v/1/take01"), key=pl.lit("d1" * 32),
                          driving_video=pl.lit(str(damaged))),
        plan.with_columns(candidate_id=pl.lit("yaw/g/v/1/take02"), key=pl.lit("d2" * 32),
                          driving_track=pl.lit(str(tmp_path / "short.parquet"))),
    ])
    fakes, failures = generate_shard(bad, generator, store)
    assert fakes["candidate_id"].to_list() == ["right_slope/g/v/1/take00"]
    assert not fakes["computed"].any()
    errors = dict(zip(failures["candidate_id"], failures["error"], strict=True))
    assert "damaged or truncated container" in errors["yaw/g/v/1/take01"]
    assert "driving_landmarks must have shape (T, 5, 2) = (8, 5, 2)" in errors["yaw/g/v/1/take02"]
    assert not store.has("fake", "d1" * 32) and not store.has("fake", "d2" * 32)
