"""The original LivePortrait code, imported from a user's checkout, as a reference.

Equivalence checks and benchmarks compare our renderer with what users of the original
repository (https://github.com/KwaiVGI/LivePortrait) run: its ``LivePortraitWrapper`` (the
five networks loaded by its own ``load_model``, strictly), its pipeline's
``make_motion_template`` for the driving frames, and the animation loop of
``LivePortraitPipeline.execute`` for an image source and a driving video with
``flag_do_crop=False``, relative motion, stitching, no retargeting and no lip normalisation
(the command line's defaults except fp16). `OriginalLivePortrait.animate` performs that loop:
``execute`` itself cannot run without InsightFace, ONNX models and video files, so the
loop's calls (the wrapper's ``prepare_source``, ``get_kp_info``, ``extract_feature_3d``,
``transform_keypoint``, ``stitching``, ``warp_decode``, ``parse_output``, the helpers
``get_rotation_matrix``, ``dct2device`` and ``calc_motion_multiplier``) are made here in the
order ``execute`` makes them, with its arithmetic between them. Nothing of the original is
copied; `load_original` imports it from a directory given by the user.

The pipeline module imports at module level things this path never calls: the face cropper
(InsightFace, ONNX Runtime), ``rich`` progress bars, ``tyro`` (command-line parsing) and
``pykalman`` (smoothing of source videos). `load_original` puts stand-ins for exactly these
into ``sys.modules`` when they are not installed (the cropper always); everything else
(PyTorch, OpenCV, PyYAML, NumPy, SciPy, imageio) is the real package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfmnist.generators.checkout import passthrough, stand_in

__all__ = ["OriginalLivePortrait", "load_original"]

#: Files of the checkout that are used (checked up front, for a clear error).
REQUIRED = ("src/live_portrait_wrapper.py", "src/live_portrait_pipeline.py",
            "src/config/models.yaml", "src/config/inference_config.py",
            "src/modules/warping_network.py", "src/utils/camera.py", "src/utils/helper.py")


@dataclass(frozen=True)
class OriginalLivePortrait:
    """The original's modules, imported from `root`."""

    root: Path
    wrapper_module: types.ModuleType
    pipeline_module: types.ModuleType
    camera: types.ModuleType
    helper: types.ModuleType
    inference_config: types.ModuleType

    def wrapper(self, files: dict[str, Path]) -> Any:
        """A ``LivePortraitWrapper`` on the CPU, fp16 off, loading our five `files` (module
        name -> path, as `checkpoint.checkpoint_files` gives) with its own ``load_model``."""
        cfg = self.inference_config.InferenceConfig(
            checkpoint_F=str(files["appearance_feature_extractor"]),
            checkpoint_M=str(files["motion_extractor"]),
            checkpoint_W=str(files["warping_module"]),
            checkpoint_G=str(files["spade_generator"]),
            checkpoint_S=str(files["stitching_retargeting_module"]),
            flag_use_half_precision=False, flag_force_cpu=True, flag_do_crop=False,
            flag_normalize_lip=False, flag_stitching=True, flag_relative_motion=True)
        return self.wrapper_module.LivePortraitWrapper(inference_cfg=cfg)

    def to_double(self, wrapper: Any) -> None:
        """Cast the wrapper's networks to float64 in place. Their 3D convolutions then run
        by `inference.conv3d_by_depth`: the same convolution, but PyTorch's own float64 CPU
        kernel would unfold the mask convolution's input whole (25 GB)."""
        from dfmnist.generators.liveportrait.inference import depth_chunked_conv3d

        depth_chunked_conv3d(wrapper.warping_module)
        for name in ("appearance_feature_extractor", "motion_extractor", "warping_module",
                     "spade_generator"):
            getattr(wrapper, name).double()
        for net in wrapper.stitching_retargeting_module.values():
            net.double()

    def motion_template(self, wrapper: Any, driving: np.ndarray) -> list[dict[str, Any]]:
        """The pipeline's ``make_motion_template`` of uint8 frames (T, 256, 256, 3): per frame
        its float32 numpy 'scale', 'R', 'exp', 't', 'kp', 'x_s'."""
        pipeline = object.__new__(self.pipeline_module.LivePortraitPipeline)
        pipeline.live_portrait_wrapper = wrapper
        frames = wrapper.prepare_videos(list(driving))
        unused = [np.zeros((1, 2), np.float32)] * len(driving)  # eye/lip ratios: not used
        return pipeline.make_motion_template(frames, unused, unused)["motion"]

    def animate(self, wrapper: Any, source: np.ndarray, driving: np.ndarray,
                driving_option: str = "expression-friendly", stitching: bool = True,
                dtype: torch.dtype = torch.float32, trace: dict[str, list] | None = None
                ) -> np.ndarray:
        """``execute``'s loop (see the module docstring): float frames (T, 3, 512, 512).

        float32: the pipeline's own calls, motion template included. float64 (networks cast
        with `to_double`): the same calls on float64 inputs, the driving frames' keypoint
        information kept in float64 (``make_motion_template`` would round it to float32) and
        the appearance volume taken from the network itself (the wrapper's
        ``extract_feature_3d`` returns it ``.float()``).
        With `trace`, intermediate values are appended per frame (as numpy)."""
        import cv2

        w, cam, helper = wrapper, self.camera, self.helper
        crop = cv2.resize(source, (256, 256))  # the flag_do_crop=False path, a no-op at 256
        if dtype == torch.float64:
            i_s = torch.from_numpy(crop[None].astype(np.float64) / 255.0).permute(0, 3, 1, 2)
        else:
            i_s = w.prepare_source(crop)
        info_s = w.get_kp_info(i_s)
        kp_c_s = info_s["kp"]
        rot_s = cam.get_rotation_matrix(info_s["pitch"], info_s["yaw"], info_s["roll"])
        if dtype == torch.float64:  # extract_feature_3d would round the volume to float32
            with torch.no_grad():
                f_s = w.appearance_feature_extractor(i_s)
        else:
            f_s = w.extract_feature_3d(i_s)
        x_s = w.transform_keypoint(info_s)
        driving = np.stack([cv2.resize(f, (256, 256)) for f in driving])
        if dtype == torch.float64:
            motion = []
            for frame in driving:
                x = torch.from_numpy(frame[None].astype(np.float64) / 255.0).permute(0, 3, 1, 2)
                info = w.get_kp_info(x)
                info["R"] = cam.get_rotation_matrix(info["pitch"], info["yaw"], info["roll"])
                motion.append(info)
        else:
            motion = self.motion_template(w, driving)
        out = []
        rot_0 = info_0 = kp_0 = multiplier = None
        decoder_inputs: list[torch.Tensor] = []  # warp_decode replaces the warped features

        def keep_input(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            decoder_inputs.append(kwargs["feature"] if "feature" in kwargs else args[0])

        hook = w.spade_generator.register_forward_pre_hook(keep_input, with_kwargs=True) \
            if trace is not None else None
        for i in range(len(driving)):
            info_i = helper.dct2device(dict(motion[i]), "cpu")
            if i == 0:
                rot_0, info_0 = info_i["R"], dict(info_i)
            rot = (info_i["R"] @ rot_0.permute(0, 2, 1)) @ rot_s
            exp = info_s["exp"] + (info_i["exp"] - info_0["exp"])
            scale = info_s["scale"] * (info_i["scale"] / info_0["scale"])
            t = info_s["t"] + (info_i["t"] - info_0["t"])
            t[..., 2].fill_(0)
            kp = scale * (kp_c_s @ rot + exp) + t
            if driving_option == "expression-friendly":
                if i == 0:
                    kp_0 = kp
                    multiplier = helper.calc_motion_multiplier(x_s, kp_0)
                kp = (kp - kp_0) * multiplier + x_s
            if stitching:
                kp = w.stitching(x_s, kp)
            kp = x_s + (kp - x_s) * w.inference_cfg.driving_multiplier
            result = w.warp_decode(f_s, x_s, kp)
            out.append(result["out"][0].detach().numpy())
            if trace is not None:
                for key, value in (("kp_driving", kp), ("warped", decoder_inputs[-1]),
                                   ("occlusion", result["occlusion_map"]),
                                   ("deformation", result["deformation"])):
                    trace.setdefault(key, []).append(value[0].detach().numpy())
        if hook is not None:
            hook.remove()
        if trace is not None:
            trace["feature"] = [f_s[0].numpy()]
            trace["kp_source"] = [x_s[0].numpy()]
            for key in ("pitch", "yaw", "roll", "exp", "t", "scale", "kp"):
                trace[f"source_{key}"] = [info_s[key][0].numpy()]
        return np.stack(out)

    def parse_output(self, wrapper: Any, frames: np.ndarray) -> np.ndarray:
        """The wrapper's ``parse_output`` of float frames (T, 3, H, W): uint8 (T, H, W, 3)."""
        return wrapper.parse_output(torch.from_numpy(np.ascontiguousarray(frames)))


def load_original(path: str | Path) -> OriginalLivePortrait:
    """Import the original's wrapper and pipeline (package ``src``) from the checkout at
    `path`; raises ValueError if it is not one or another ``src`` package is imported."""
    root = Path(path).expanduser().resolve()
    missing = [name for name in REQUIRED if not (root / name).is_file()]
    if missing:
        raise ValueError(f"{root} is not a LivePortrait checkout: no {', '.join(missing)}")
    loaded = sys.modules.get("src")
    if loaded is not None and Path(loaded.__file__ or "").resolve().parent != root / "src":
        raise ValueError(f"another 'src' package is already imported ({loaded.__file__}); "
                         f"one checkout per process")
    absent = {top for top in ("rich", "tyro", "pykalman")
              if top not in sys.modules and importlib.util.find_spec(top) is None}
    for name, attributes in _stand_ins().items():
        if name == "src.utils.cropper" or name.split(".")[0] in absent:
            stand_in(name, "imported by LivePortrait, unused on this path", **attributes)
    sys.path.insert(0, str(root))
    names = ("live_portrait_wrapper", "live_portrait_pipeline", "utils.camera", "utils.helper",
             "config.inference_config")
    modules = [importlib.import_module(f"src.{name}") for name in names]
    return OriginalLivePortrait(root, *modules)


def _stand_ins() -> dict[str, dict[str, Any]]:
    def arg(*args: Any, **kwargs: Any) -> None:
        return None

    return {
        "src.utils.cropper": {"Cropper": None},  # InsightFace + ONNX face cropping
        "rich": {},
        "rich.progress": {"track": passthrough},
        "tyro": {"conf": types.SimpleNamespace(arg=arg)},
        "pykalman": {"KalmanFilter": None},
    }
