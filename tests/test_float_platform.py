"""The float platform in content keys (dfmnist.numerics) and MTCNN's thread-free, gridded
detections (dfmnist.vision.faces)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch

from dfmnist.generators import make_generator
from dfmnist.generators.shard import item_key
from dfmnist.numerics import float_platform, generator_numerics
from dfmnist.vision.faces import COORDINATE_QUANTUM, PROBABILITY_QUANTUM, FaceDetector

STAMP = ("import json; from dfmnist.numerics import float_platform; "
         "print(json.dumps(float_platform()))")


def stamp_in_subprocess(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", STAMP], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True, timeout=120)
    return json.loads(out.stdout)


def test_the_stamp_names_the_kernels_machine():
    stamp = float_platform()
    assert stamp["device"] == "cpu" and stamp["torch"] == torch.__version__
    assert stamp["isa"] == torch.backends.cpu.get_cpu_capability() and stamp["cpu"]
    assert stamp["threads"] == torch.get_num_threads()
    assert float_platform(threads=1)["threads"] == 1
    # forcing AVX2 (as .ci/run does) is another platform, whatever the processor has
    avx2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    forced = stamp_in_subprocess(avx2)
    assert forced["isa"] == "AVX2" and forced["overrides"] == avx2
    already = all(os.environ.get(k) == v for k, v in avx2.items())  # a run forced to AVX2

    def kernels(s: dict) -> dict:  # the stamp but the threads (the test process sets its own)
        return {k: v for k, v in s.items() if k != "threads"}

    assert (kernels(forced) == kernels(stamp)) == already


def test_only_float_networks_carry_it_into_fake_keys(tmp_path):
    warp = make_generator("landmark_warp")
    assert generator_numerics(warp) == {}  # exact: its items are shared by every machine
    assert item_key("ab" * 32, {}) == "ab" * 32

    from dfmnist.generators.fomm import FommGenerator, build_networks

    kp_detector, generator = build_networks("small")
    fomm = FommGenerator.from_networks(kp_detector, generator, batch_size=4)
    numerics = generator_numerics(fomm)
    assert numerics["platform"]["device"] == "cpu"
    assert numerics["kernels"]["batch_size"] == 4 and "winograd" in numerics["kernels"]
    other = FommGenerator.from_networks(kp_detector, generator, batch_size=8)
    keys = {item_key("ab" * 32, generator_numerics(g)) for g in (fomm, other)}
    assert len(keys) == 2 and "ab" * 32 not in keys  # batching reorders float32 sums


def test_detections_are_on_the_grid_and_leave_the_threads_alone(astronaut):
    detector = FaceDetector(min_face_size=40)
    torch.set_num_threads(2)
    boxes, probs, landmarks = detector.detect(astronaut)[0]
    assert torch.get_num_threads() == 2  # restored after MTCNN's one-thread block
    assert len(boxes) == 1 and probs[0] > 0.99
    for values, quantum in ((boxes, COORDINATE_QUANTUM), (landmarks, COORDINATE_QUANTUM),
                            (probs, PROBABILITY_QUANTUM)):
        assert np.array_equal(values, np.round(values / quantum) * quantum)
    # the same detections whatever threads the caller has
    torch.set_num_threads(1)
    again = detector.detect(astronaut)[0]
    torch.set_num_threads(2)
    assert all(np.array_equal(a, b) for a, b in zip((boxes, probs, landmarks), again,
                                                     strict=True))
    identity = detector.identity()
    assert identity["platform"]["threads"] == 1 and identity["batch_size"] == 16
    assert identity["coordinate_quantum"] == COORDINATE_QUANTUM
