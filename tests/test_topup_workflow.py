"""Top-up rounds in Snakemake: the checkpoint plans new candidates, they are generated and
judged (baidu at the test server), and the shortfall left at the bound is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml

from dfmnist.generators.shard import generate_shard, generator_identity
from dfmnist.plan import build_plan
from dfmnist.storage.files import sha256_file
from dfmnist.storage.store import Store
from dfmnist.storage.video import Encoding, write_video
from dfmnist.workflow import build_generator

from liveness_server import VERIFY_PATH, start_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(monkeypatch):
    with start_server(monkeypatch) as srv:
        yield srv


def face_crop(image: np.ndarray, detector, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A square crop around the most likely face, resized to `size`, and its landmarks."""
    boxes, probs, _ = detector.detect(image)[0]
    x0, y0, x1, y1 = boxes[int(np.argmax(probs))]
    side = 1.8 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x, y = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    crop = cv2.resize(image[y:y + int(side), x:x + int(side)], (size, size))
    _, probs, lms = detector.detect(crop)[0]
    return crop, lms[int(np.argmax(probs))]


@pytest.mark.workflow
def test_topup_rounds_until_the_pairs_run_out(server, tmp_path, detector, astronaut,
                                              grace_hopper):
    workdir = tmp_path / "wf"
    results = workdir / "results"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    # three sources x one blink take: three (source, take) pairs in all
    rows = []
    for name, image in (("astronaut", astronaut), ("grace_hopper", grace_hopper),
                        ("mirrored", astronaut[:, ::-1].copy())):
        crop, lms = face_crop(image, detector)
        path = inputs / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        rows.append({"clip_id": f"{name}/v/00001", "identity": name, "image_path": str(path),
                     "image_sha256": sha256_file(path), "landmarks": lms.ravel().tolist(),
                     "selected": True})
    sources = pl.DataFrame(rows)
    crop, _ = face_crop(grace_hopper, detector)
    frames = np.stack([np.roll(crop, t, axis=0) for t in range(8)])
    video = write_video(inputs / "take00.mp4", frames, 12, Encoding(crf=18, preset="ultrafast"))
    track = inputs / "take00.landmarks.parquet"
    detector.track(frames).interpolate().to_frame().write_parquet(track)
    driving = pl.DataFrame({"action": ["blink"], "take": ["take00"], "video_path": [str(video)],
                            "video_sha256": [sha256_file(video)], "track_path": [str(track)],
                            "track_sha256": [sha256_file(track)]})
    (results / "manifests").mkdir(parents=True)
    sources.write_parquet(results / "manifests" / "sources.parquet")
    driving.write_parquet(results / "manifests" / "driving.parquet")
    # round 0 as the plan and generate rules would leave it: two candidates, animated
    generator = build_generator(config["generate"])
    plan = build_plan(sources, driving, ["blink"], 2, 1.0, 0, generator_identity(generator), 1)
    (results / "plan").mkdir()
    plan.write_parquet(results / "plan" / "plan.parquet")
    fakes, _ = generate_shard(plan, generator, Store(results / "store"))
    (results / "fake" / "raw" / "shards").mkdir(parents=True)
    fakes.write_parquet(results / "fake" / "raw" / "shards" / "0.parquet")
    for sha in fakes["sha256"]:
        server.baidu_scores[sha] = 0.01  # both fail
    server.default_score = 0.95  # every top-up fake passes

    urls = server.urls()
    config["actions"] = ["blink"]
    config["generate"]["shards"] = 1
    config["plan"].update(per_action=2, oversample=1.0, max_rounds=3)
    config["liveness"]["policy"] = {"blink": ["baidu"]}
    config["liveness"]["cache"] = str(tmp_path / "cache" / "liveness.sqlite")
    config["liveness"]["providers"]["baidu"].update(
        token_url=urls["token_url"], verify_url=urls["verify_url"], threshold=0.5,
        http={"qps": 50, "timeout": 5})
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    rules = ["liveness_shard", "topup_plan", "generate_round_shard", "liveness_round_shard",
             "filter_fakes"]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--allowed-rules", *rules, "--", "results/fake/accepted.parquet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]

    # round 1: ceil(2 short x 1.0) wanted, one unused pair left; round 2: none left, so stop
    round1 = pl.read_parquet(results / "plan" / "rounds" / "1.parquet")
    assert round1.height == 1 and round1["rank"].to_list() == [2]
    assert not set(round1["candidate_id"]) & set(plan["candidate_id"])
    assert pl.read_parquet(results / "plan" / "rounds" / "2.parquet").height == 0
    assert not (results / "plan" / "rounds" / "3.parquet").exists()
    topped = pl.read_parquet(results / "fake" / "raw" / "rounds" / "1" / "0.parquet")
    assert topped["key"].to_list() == round1["key"].to_list()
    assert Store(results / "store").has("fake", topped["key"][0])
    accepted = pl.read_parquet(results / "fake" / "accepted.parquet")
    assert accepted["candidate_id"].to_list() == round1["candidate_id"].to_list()
    summary = pl.read_csv(results / "liveness" / "spoof_rates.csv").row(0, named=True)
    assert (summary["candidates"], summary["passed"], summary["accepted"],
            summary["shortfall"], summary["rounds"]) == (3, 1, 1, 1, 2)
    log = (results / "logs" / "filter_fakes.log").read_text()
    assert "blink: 1 short of 2 after 2 round(s)" in log
    verdicts = pl.read_parquet(results / "liveness" / "verdicts.parquet")
    assert verdicts.height == 3 and server.counts[VERIFY_PATH] == 3
