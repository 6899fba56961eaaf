"""A clock that tests move on, instead of waiting for time to pass."""

from __future__ import annotations

import time


class SkippingClock:
    """The monotonic clock, plus whatever time a test has skipped with `advance`."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped

    def time(self) -> float:
        """The wall clock (`time.time`), moved on by the same skipped time."""
        return time.time() + self.skipped

    def advance(self, seconds: float) -> None:
        self.skipped += seconds
