"""The liveness-provider interface and its verdicts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dfmnist import ACTIONS


@dataclass
class Verdict:
    """One provider's judgement of one video for one requested action.

    `score` is in [0, 1]; `details` is JSON-serialisable (measured values, thresholds, and
    `reason` when the video could not be judged on its merits).
    """

    passed: bool
    score: float
    provider: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            passed=bool(data["passed"]),
            score=float(data["score"]),
            provider=str(data["provider"]),
            action=str(data["action"]),
            details=dict(data.get("details") or {}),
        )


class LivenessProvider(ABC):
    """Checks that a video shows a live face performing a requested action (see ACTIONS)."""

    #: Registry name, recorded in every verdict.
    name: str = ""

    @abstractmethod
    def config_version(self) -> str:
        """A hash of every setting that can change a verdict (a cache key component)."""

    @abstractmethod
    def verify(self, video_path: Path, action: str) -> Verdict:
        """Judge `video_path` for `action`."""

    def verify_many(self, items: Sequence[tuple[Path, str]],
                    on_verdict: Callable[[int, Verdict], None] | None = None) -> list:
        """Judge every (video, action) in order, handing each verdict to `on_verdict` as it
        arrives. Remote providers override this to run requests concurrently and return the
        error in place of a verdict for items that failed."""
        results = []
        for i, (path, action) in enumerate(items):
            verdict = self.verify(Path(path), action)
            if on_verdict is not None:
                on_verdict(i, verdict)
            results.append(verdict)
        return results

    @staticmethod
    def check_action(action: str) -> str:
        """Return `action` if it is one of ACTIONS, else raise ValueError listing them."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; known actions: {', '.join(ACTIONS)}")
        return action
