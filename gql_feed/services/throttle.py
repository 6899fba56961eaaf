"""Slows password guessing: too many failures for one key locks that key for a while.

Keys are an account's email and a client's address, so guessing one account from many
addresses and many accounts from one address are both caught. State is per process;
with several workers an attacker gets at most `workers` times the allowance.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from gql_feed.services.errors import TooManyAttempts

MAX_TRACKED_KEYS = 100_000


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    max_failures: int
    lockout_seconds: int
    _records: OrderedDict[str, _Record] = field(default_factory=OrderedDict)

    def attempt(self, *keys: str) -> None:
        """Refuse while any key is locked, else count this attempt as a failure up front.

        Counting before the (slow, awaited) password check means concurrent guesses, in
        parallel requests or one batch, cannot all slip past the limit; a success then
        clears the count with `succeeded`.
        """
        self.check(*keys)
        self.failed(*keys)

    def check(self, *keys: str) -> None:
        """Refuse with TOO_MANY_REQUESTS while any key is locked."""
        now = time.monotonic()
        for key in keys:
            record = self._records.get(key)
            if record is not None and record.locked_until > now:
                raise TooManyAttempts(int(record.locked_until - now) + 1)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            record = self._records.pop(key, None) or _Record()
            if record.locked_until and record.locked_until <= now:
                record = _Record()
            record.failures += 1
            if record.failures >= self.max_failures:
                record.locked_until = now + self.lockout_seconds
            self._records[key] = record
        while len(self._records) > MAX_TRACKED_KEYS:
            self._records.popitem(last=False)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._records.pop(key, None)
