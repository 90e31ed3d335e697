"""The provider that checks nothing: every video passes.

For a dataset kept without liveness filtering (DFDM's face swaps were not filtered) and for
benchmarks that must call no API and judge nothing (`bench/fake_scale.py`). Its verdicts are
recorded and cached like any provider's, with `details.reason` saying no check ran, so the
dataset's reports name the fakes that nothing judged.
"""

from __future__ import annotations

from pathlib import Path

from dfmnist.liveness.base import LivenessProvider, Verdict


class UncheckedProvider(LivenessProvider):
    """Passes every existing video for every known action, score 1, without looking."""

    name = "unchecked"

    def config_version(self) -> str:
        return "unchecked-1"

    def verify(self, video_path: Path, action: str) -> Verdict:
        self.check_action(action)
        if not Path(video_path).is_file():
            raise FileNotFoundError(f"no video at {video_path}")
        return Verdict(passed=True, score=1.0, provider=self.name, action=action,
                       details={"reason": "not checked"})
