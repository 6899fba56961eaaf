"""A wall clock that tests move on, for what reads `datetime.now` (token expiry)."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo


class SkippingDatetime(datetime):
    """`datetime` whose `now()` is ahead by whatever a test has skipped with `advance`."""

    skipped = timedelta(0)

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> SkippingDatetime:
        real = datetime.now(tz) + cls.skipped
        return cls.fromtimestamp(real.timestamp(), tz)

    @classmethod
    def advance(cls, seconds: float) -> None:
        cls.skipped += timedelta(seconds=seconds)


class FrozenDatetime(datetime):
    """`datetime` whose `now()` is `at`, the instant a test sets."""

    at: datetime

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> FrozenDatetime:
        return cls.fromtimestamp(cls.at.timestamp(), tz)
