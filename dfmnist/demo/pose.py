"""One frame's head pose and expression amounts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FacePose:
    """Head pose (degrees) and expression amounts of one frame; all zero is the photo itself.

    yaw > 0 turns the nose toward the image right (the subject's left), vision.motion.yaw_proxy
    grows; pitch > 0 looks down (pitch_proxy grows); roll > 0 tilts the head clockwise on screen,
    the top toward the image right (the right eye lower: roll_degrees grows).
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    blink: float = 0.0  # 0 open .. 1 closed
    widen: float = 0.0  # eyes wide open and brows up, 0..1
    smile: float = 0.0  # 0..1
    jaw: float = 0.0  # jaw drop in IOD units

    def is_neutral(self) -> bool:
        return not any((self.yaw, self.pitch, self.roll, self.blink, self.widen, self.smile,
                        self.jaw))
