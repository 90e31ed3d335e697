"""The original Thin-Plate-Spline-Motion-Model code, imported from a user's checkout, as a
reference for equivalence checks and benchmarks.

Nothing of it is copied here: `load_original` imports the checkout's ``demo.py`` (and through
it ``modules/``) from a directory the user names; `OriginalTpsmm` calls its
``load_checkpoints``, ``make_animation`` and ``relative_kp``. ``demo.py`` imports at module
level a few packages its inference path never calls: ``tqdm`` (the progress bar around the
frame loop), ``imageio`` and ``scikit-image`` (reading, resizing and writing files in its
``__main__``), ``matplotlib`` (a backend switch). Whichever of these is not installed gets a
stand-in in ``sys.modules`` (a pass-through ``tqdm``, placeholder names for the others);
everything else (PyTorch, torchvision, PyYAML, SciPy's ``ConvexHull``) is the real package.

The checkout has top-level packages named ``modules`` and ``demo``, as the first-order
model's has: one checkout per process (run the original in a process of its own).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dfmnist.generators.checkout import passthrough, stand_in
from dfmnist.generators.tpsmm.checkpoint import TpsmmConfig

__all__ = ["OriginalTpsmm", "REQUIRED", "load_original"]

#: Files of the checkout that are used (checked up front, for a clear error).
REQUIRED = ("demo.py", "modules/keypoint_detector.py", "modules/dense_motion.py",
            "modules/inpainting_network.py", "modules/avd_network.py",
            "modules/bg_motion_predictor.py", "modules/util.py")


@dataclass(frozen=True)
class OriginalTpsmm:
    """The original code's entry points, imported from `root`."""

    root: Path
    demo: types.ModuleType

    def write_config(self, config: TpsmmConfig, path: Path) -> Path:
        """`config` as an original-style YAML file (``model_params`` only), for
        ``load_checkpoints``; the checkout's own ``config/vox-256.yaml`` has the same
        ``model_params`` as our 'vox-256'."""
        path.write_text(yaml.safe_dump({"model_params": config.yaml_params()}))
        return path

    def load_checkpoints(self, config_path: Path, checkpoint: Path,
                         device: str = "cpu") -> tuple[Any, Any, Any, Any]:
        """``demo.load_checkpoints``: (inpainting, kp_detector, dense_motion_network,
        avd_network) in eval mode, state dicts loaded strictly by ``load_state_dict``."""
        with warnings.catch_warnings():  # torchvision's deprecated pretrained=False
            warnings.simplefilter("ignore")
            return self.demo.load_checkpoints(config_path=str(config_path),
                                              checkpoint_path=str(checkpoint), device=device)

    def build_networks(self, config_path: Path) -> tuple[Any, Any, Any, Any]:
        """(inpainting, kp_detector, dense_motion_network, avd_network) freshly built from an
        original YAML with the classes and arguments ``demo.load_checkpoints`` uses, without
        loading weights (for comparing state-dict layouts)."""
        params = yaml.safe_load(config_path.read_text())["model_params"]
        common = params["common_params"]
        demo = self.demo
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (demo.InpaintingNetwork(**params["generator_params"], **common),
                    demo.KPDetector(**common),
                    demo.DenseMotionNetwork(**common, **params["dense_motion_params"]),
                    demo.AVDNetwork(num_tps=common["num_tps"], **params["avd_network_params"]))

    def bg_predictor(self) -> Any:
        """A fresh ``modules.bg_motion_predictor.BGMotionPredictor`` (the demo never builds
        one; the caller loads its state dict)."""
        module = importlib.import_module("modules.bg_motion_predictor")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return module.BGMotionPredictor()

    def make_animation(self, source: Any, driving: Any, networks: tuple[Any, Any, Any, Any],
                       mode: str = "relative", device: str = "cpu") -> list[Any]:
        """``demo.make_animation``: the frame-by-frame loop in float32; `source` (H, W, 3)
        float in [0, 1], `driving` a sequence of such frames; returns (H, W, 3) frames."""
        inpainting, kp_detector, dense_motion_network, avd_network = networks
        return self.demo.make_animation(source, driving, inpainting, kp_detector,
                                        dense_motion_network, avd_network, device=device,
                                        mode=mode)


def _stand_in(name: str, **attributes: Any) -> None:
    stand_in(name, "imported by the TPSMM demo, unused at inference", **attributes)


def _unused(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("stand-in for a package the TPSMM demo imports but inference never calls")


def _install_stand_ins() -> None:
    """Stand-ins for the demo's module-level imports that are not installed."""
    if importlib.util.find_spec("tqdm") is None:
        _stand_in("tqdm", tqdm=passthrough)
    if importlib.util.find_spec("imageio") is None:
        _stand_in("imageio", imread=_unused, get_reader=_unused, mimsave=_unused)
    if importlib.util.find_spec("skimage") is None:
        _stand_in("skimage", img_as_ubyte=_unused)
        _stand_in("skimage.transform", resize=_unused)
    if importlib.util.find_spec("matplotlib") is None:
        _stand_in("matplotlib", use=lambda *args, **kwargs: None)


def load_original(path: str | Path) -> OriginalTpsmm:
    """Import the original ``demo`` (and its ``modules``) from the checkout at `path`; raises
    ValueError if `path` is not one, or if another checkout's ``demo``/``modules`` is
    already imported in this process."""
    root = Path(path).expanduser().resolve()
    missing = [name for name in REQUIRED if not (root / name).is_file()]
    if missing:
        raise ValueError(f"{root} is not a Thin-Plate-Spline-Motion-Model checkout: no "
                         f"{', '.join(missing)}")
    for name in ("demo", "modules"):
        loaded = sys.modules.get(name)
        if loaded is None:
            continue
        # ``modules`` has no __init__.py in the original: a namespace package with a __path__
        places = [Path(p).resolve() for p in [getattr(loaded, "__file__", None),
                                              *getattr(loaded, "__path__", [])] if p]
        if not any(p == root or root in p.parents for p in places):
            raise ValueError(f"another {name!r} module is already imported "
                             f"({', '.join(map(str, places)) or 'built in'}); one checkout "
                             f"per process")
    if "demo" in sys.modules:
        return OriginalTpsmm(root, sys.modules["demo"])
    _install_stand_ins()
    sys.path.insert(0, str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = importlib.import_module("demo")
    return OriginalTpsmm(root, demo)
