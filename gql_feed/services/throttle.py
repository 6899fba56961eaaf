"""Slows password guessing and signup floods, per process.

Login: too many failures for one key locks that key for a while. Keys are an account's
email and a client's address, so guessing one account from many addresses and many
accounts from one address are both caught. Signup: each client address may create a
bounded number of accounts per period. State is per process; with several workers an
attacker gets at most `workers` times the allowance.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from gql_feed.services.errors import TooManyAttempts, TooManySignups

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
        takes its own count back with `succeeded`.
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

    def succeeded(self, account: str, client: str) -> None:
        """The right password for `account`: its count starts over.

        The client address's count only loses the failure `attempt` counted for this
        very login. Resetting it would let one real account buy an attacker fresh
        guesses at every other account from the same address.
        """
        self._records.pop(account, None)
        self.forgive(client)

    def forgive(self, *keys: str) -> None:
        """Take back the failure `attempt` counted for a login that was no failure."""
        for key in keys:
            record = self._records.get(key)
            if record is None:
                continue
            record.failures -= 1
            if record.failures <= 0:
                del self._records[key]
            elif record.failures < self.max_failures:
                # `attempt` refuses a locked key, so a lock now came from counting this
                # login (or one running beside it, whose own failure still counts).
                record.locked_until = 0.0


@dataclass
class _Period:
    started: float
    signups: int = 0


@dataclass
class SignupThrottle:
    """At most `max_signups` accounts per client address in each period of
    `period_seconds`, the period starting with the address's first signup in it.

    A signup is counted before its password is hashed, so a burst of concurrent ones
    cannot all slip past the limit (and the refused ones cost no hashing at all).
    """

    max_signups: int
    period_seconds: int
    _periods: OrderedDict[str, _Period] = field(default_factory=OrderedDict)

    def attempt(self, client: str) -> None:
        """Count one signup from `client`; TOO_MANY_REQUESTS once its allowance is spent."""
        now = time.monotonic()
        period = self._periods.pop(client, None)
        if period is None or now - period.started >= self.period_seconds:
            period = _Period(started=now)
        self._periods[client] = period
        while len(self._periods) > MAX_TRACKED_KEYS:
            self._periods.popitem(last=False)
        if period.signups >= self.max_signups:
            raise TooManySignups(int(period.started + self.period_seconds - now) + 1)
        period.signups += 1

    def cancel(self, client: str) -> None:
        """Give back a counted signup that was not made because the server refused it."""
        period = self._periods.get(client)
        if period is not None and period.signups > 0:
            period.signups -= 1
