"""How fast a camera moves along its path: an easing curve and frames held still at either end."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EASINGS = ("linear", "ease_in", "ease_out", "ease_in_out")


def ease(t: np.ndarray, easing: str = "linear") -> np.ndarray:
    """Map progress t in [0, 1] through an easing curve (linear, ease_in t^2, ease_out, ease_in_out smoothstep)."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    if easing == "linear":
        return t
    if easing == "ease_in":
        return t * t
    if easing == "ease_out":
        return 1.0 - (1.0 - t) ** 2
    if easing == "ease_in_out":
        return t * t * (3.0 - 2.0 * t)
    raise ValueError(f"unknown easing {easing!r}; expected one of {EASINGS}")


@dataclass(frozen=True)
class Speed:
    """``easing`` shapes the speed between the first ``hold_start`` and the last ``hold_end`` frames, which stay
    still. The default is the published constant speed."""

    easing: str = "linear"
    hold_start: int = 0
    hold_end: int = 0

    @property
    def published(self) -> bool:
        """Constant speed from the first frame to the last, as the published paths move."""
        return self.easing == "linear" and self.hold_start == 0 and self.hold_end == 0

    def progress(self, num_frames: int) -> np.ndarray:
        """Per-frame progress in [0, 1]: 0 for the first ``hold_start`` frames, 1 for the last ``hold_end``."""
        if num_frames < 1:
            raise ValueError("num_frames must be >= 1")
        if self.hold_start < 0 or self.hold_end < 0:
            raise ValueError("hold frames must be >= 0")
        moving = num_frames - 1 - self.hold_start - self.hold_end
        i = np.arange(num_frames, dtype=np.float64)
        if moving <= 0:
            return np.where(i < self.hold_start, 0.0, 1.0) if self.hold_start < num_frames else np.zeros(num_frames)
        return ease((i - self.hold_start) / moving, self.easing)


PUBLISHED_SPEED = Speed()
