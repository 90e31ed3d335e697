"""The original first-order-model code, imported from a user's checkout, as a reference.

Benchmarks and equivalence checks compare our renderer with what users of the original
repository (https://github.com/AliaksandrSiarohin/first-order-model) run: its ``demo.py``
``load_checkpoints`` and ``make_animation`` (which calls ``animate.normalize_kp``) on its own
``modules/`` networks. Nothing of it is copied here; `load_original` imports it from a
directory given by the user.

``demo.py`` and ``animate.py`` import at module level a few things the inference path never
calls: ``tqdm`` (a progress bar around the frame loop), and the training-only
``frames_dataset`` and ``logger`` modules (with pandas, scikit-learn and matplotlib
behind them). `load_original` puts stand-ins for exactly these into ``sys.modules`` when
importing: a pass-through ``tqdm`` when tqdm is not installed, placeholder
``PairedDataset``/``Logger``/``Visualizer`` names. Everything else (PyTorch, its bundled
``sync_batchnorm``, PyYAML, imageio, scikit-image, scipy, ffmpeg-python) is the real package.
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

import torch

from dfmnist.generators.checkout import passthrough, stand_in
from dfmnist.generators.fomm.checkpoint import FommConfig

__all__ = ["OriginalFomm", "load_original"]

#: Files of the checkout that are used (checked up front, for a clear error).
REQUIRED = ("demo.py", "animate.py", "modules/generator.py", "modules/keypoint_detector.py",
            "modules/util.py", "modules/dense_motion.py", "sync_batchnorm/__init__.py")


@dataclass(frozen=True)
class OriginalFomm:
    """The original code's entry points, imported from `root`."""

    root: Path
    demo: types.ModuleType

    def config_path(self, name: str) -> Path:
        """The checkout's YAML config, e.g. ``config/vox-256.yaml`` for 'vox-256'."""
        return self.root / "config" / f"{name}.yaml"

    def load_checkpoints(self, config: Path, checkpoint: Path, cpu: bool) -> tuple[Any, Any]:
        """``demo.load_checkpoints``: (generator, kp_detector) in eval mode."""
        return self.demo.load_checkpoints(config_path=str(config),
                                          checkpoint_path=str(checkpoint), cpu=cpu)

    def networks(self, config: FommConfig, checkpoint: Path, cpu: bool) -> tuple[Any, Any]:
        """(generator, kp_detector) holding `checkpoint`'s weights: through
        ``demo.load_checkpoints`` and the checkout's YAML when it has one for `config`, else
        (configs of ours such as 'small') its ``modules`` classes built from our config's
        hyper-parameters (the same names) with the state dicts loaded strictly."""
        yaml_path = self.config_path(config.name)
        if yaml_path.is_file():
            return self.load_checkpoints(yaml_path, checkpoint, cpu=cpu)
        with warnings.catch_warnings():  # its torch.meshgrid call without indexing=
            warnings.simplefilter("ignore", UserWarning)
            kp_detector = self.demo.KPDetector(**config.kp_detector, **config.common)
            generator = self.demo.OcclusionAwareGenerator(**config.generator, **config.common)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        kp_detector.load_state_dict(state["kp_detector"])
        generator.load_state_dict(state["generator"])
        if not cpu:
            kp_detector, generator = kp_detector.cuda(), generator.cuda()
        return generator.eval(), kp_detector.eval()

    def make_animation(self, source: Any, driving: Any, generator: Any, kp_detector: Any,
                       cpu: bool, relative: bool = True, adapt_scale: bool = True) -> list[Any]:
        """``demo.make_animation``: the frame-by-frame loop, float frames (H, W, 3) in
        [0, 1]. `source` is (H, W, 3) float and `driving` a sequence of such frames."""
        with warnings.catch_warnings():  # its grid_sample/interpolate default warnings
            warnings.simplefilter("ignore", UserWarning)
            return self.demo.make_animation(source, driving, generator, kp_detector,
                                            relative=relative, adapt_movement_scale=adapt_scale,
                                            cpu=cpu)


def _stand_in(name: str, **attributes: Any) -> None:
    stand_in(name, "imported by first-order-model, unused at inference", **attributes)


def load_original(path: str | Path) -> OriginalFomm:
    """Import the original ``demo`` (and through it ``modules``, ``animate``,
    ``sync_batchnorm``) from the checkout at `path`; raises ValueError if it is not one."""
    root = Path(path).expanduser().resolve()
    missing = [name for name in REQUIRED if not (root / name).is_file()]
    if missing:
        raise ValueError(f"{root} is not a first-order-model checkout: no "
                         f"{', '.join(missing)}")
    loaded = sys.modules.get("demo")
    if loaded is not None:
        if Path(loaded.__file__ or "").resolve().parent != root:
            raise ValueError(f"another 'demo' module is already imported "
                             f"({loaded.__file__}); one checkout per process")
        return OriginalFomm(root, loaded)
    if importlib.util.find_spec("tqdm") is None:
        _stand_in("tqdm", tqdm=passthrough)
        _stand_in("tqdm.auto", tqdm=passthrough)
    _stand_in("frames_dataset", PairedDataset=None)
    _stand_in("logger", Logger=None, Visualizer=None)
    sys.path.insert(0, str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = importlib.import_module("demo")
    return OriginalFomm(root, demo)
