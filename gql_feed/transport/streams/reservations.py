"""Where single-connection SSE reservations live, so any process can take their operations.

graphql-sse's single-connection mode spreads one client's work over several requests: a
`PUT` reserves a stream, a `GET` opens it, `POST`s add operations and `DELETE`s stop
them. Behind a load balancer each may land on a different process, so the registry holds
what every process must agree on: who owns a reservation, which process holds its stream
open (at most one), which operation ids are in use, and an inbox of commands (start or
stop an operation) for the stream. A command is appended to the inbox, then the holder,
if there is one yet, is told to read it; a stream that opens later reads what waited.
Appending, checking and telling happen in one step, so a command can neither be lost
between a reservation and its opening nor read twice.

`RedisReservations` keeps all of it in the bus's Redis (Lua scripts, one pub/sub channel
per process for the "read your inbox" notices). `LocalReservations` keeps it in this
process, for the in-memory bus (one process), and for the PostgreSQL bus, where every
request of one client must then reach the same process.

Everything a reservation holds is bounded (`ReservationLimits`): how long one nobody
opens lives, how many one user may hold, and how many commands, and bytes of them, may
wait in an inbox for a stream that has not opened (or whose process stopped reading).
Twenty reservations never opened once took two thousand operations of 60 kB each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from gql_feed.config import Settings
from gql_feed.transport.streams.reservation_scripts import (
    CANCEL,
    CLOSE,
    DRAIN,
    OPEN,
    RESERVE,
    SUBMIT,
)

logger = logging.getLogger(__name__)

# A reservation nobody opens is forgotten after this long (GQL_FEED_SSE_RESERVATION_SECONDS).
RESERVATION_SECONDS = 60


@dataclass(frozen=True)
class ReservationLimits:
    """The bounds of the registry; the defaults are the settings' (config.Settings)."""

    seconds: float = RESERVATION_SECONDS  # life of a reservation nobody opens
    per_user: int = 10  # reservations one user may hold at once, opened or not
    inbox_commands: int = 100  # commands waiting for one stream
    inbox_bytes: int = 256 * 1024  # and their bytes

    @classmethod
    def of(cls, settings: Settings) -> ReservationLimits:
        return cls(
            settings.sse_reservation_seconds,
            settings.sse_max_reservations_per_user,
            settings.sse_reservation_inbox_commands,
            settings.sse_reservation_inbox_bytes,
        )


Deliver = Callable[[str, list[bytes]], None]


class Outcome(Enum):
    """What the registry made of a request against a reservation."""

    DONE = "done"
    UNKNOWN = "unknown"  # no such reservation (expired, ended) or another user's
    BUSY = "busy"  # the stream is already open / the operation id is in use
    FULL = "full"  # the stream has as many operations as it may
    CROWDED = "crowded"  # the inbox holds as many commands (or bytes) as it may
    TOO_MANY = "too_many"  # the user holds as many reservations as they may


class Reservations(Protocol):
    # Whether notices may be lost, so that open streams must read their inbox now and then.
    polled: bool

    async def start(self, deliver: Deliver) -> None:
        """Begin handing this process's streams the commands sent to them."""

    async def stop(self) -> None: ...

    async def reserve(self, user_id: int) -> str | None:
        """A new reservation for `user_id`, its token; None if the user holds too many."""

    async def open(self, token: str, user_id: int, seconds: float) -> tuple[Outcome, list[bytes]]:
        """Take the stream for this process (for `seconds` at most); the commands waiting."""

    async def submit(
        self, token: str, user_id: int, operation_id: str, command: bytes, limit: int
    ) -> Outcome:
        """Add an operation (its id must be new, at most `limit` per stream) and send it."""

    async def cancel(self, token: str, user_id: int, operation_id: str, command: bytes) -> Outcome:
        """Free an operation id and send the command that stops it."""

    async def drain(self, token: str) -> list[bytes]:
        """Commands waiting for an open stream whose notice went missing (a bus outage)."""

    async def finished(self, token: str, operation_id: str) -> None:
        """An operation ended on its own (an error): its id is free again."""

    async def close(self, token: str, user_id: int) -> None:
        """The stream ended: forget the reservation and its operations."""


@dataclass
class _Reservation:
    user_id: int
    expires: float
    holder: bool = False
    operations: set[str] = field(default_factory=set)
    inbox: list[bytes] = field(default_factory=list)
    inbox_bytes: int = 0


class LocalReservations:
    """The registry in this process's memory."""

    polled = False

    def __init__(self, limits: ReservationLimits | None = None) -> None:
        self.limits = limits or ReservationLimits()
        self._reservations: dict[str, _Reservation] = {}
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    def _get(self, token: str, user_id: int) -> _Reservation | None:
        reservation = self._reservations.get(token)
        if reservation is None:
            return None
        if reservation.expires <= time.monotonic():
            del self._reservations[token]
            return None
        return reservation if reservation.user_id == user_id else None

    async def reserve(self, user_id: int) -> str | None:
        now = time.monotonic()
        held = 0
        for token, reservation in tuple(self._reservations.items()):
            if reservation.expires <= now:
                del self._reservations[token]
            elif reservation.user_id == user_id:
                held += 1
        if held >= self.limits.per_user:
            return None
        token = secrets.token_urlsafe(32)
        self._reservations[token] = _Reservation(user_id, now + self.limits.seconds)
        return token

    async def open(self, token: str, user_id: int, seconds: float) -> tuple[Outcome, list[bytes]]:
        reservation = self._get(token, user_id)
        if reservation is None:
            return Outcome.UNKNOWN, []
        if reservation.holder:
            return Outcome.BUSY, []
        reservation.holder = True
        reservation.expires = time.monotonic() + seconds
        waiting, reservation.inbox = reservation.inbox, []
        reservation.inbox_bytes = 0
        return Outcome.DONE, waiting

    async def submit(
        self, token: str, user_id: int, operation_id: str, command: bytes, limit: int
    ) -> Outcome:
        reservation = self._get(token, user_id)
        if reservation is None:
            return Outcome.UNKNOWN
        if operation_id in reservation.operations:
            return Outcome.BUSY
        if len(reservation.operations) >= limit:
            return Outcome.FULL
        if self._crowded(reservation, command):
            return Outcome.CROWDED
        reservation.operations.add(operation_id)
        self._send(token, reservation, command)
        return Outcome.DONE

    async def cancel(self, token: str, user_id: int, operation_id: str, command: bytes) -> Outcome:
        reservation = self._get(token, user_id)
        if reservation is None:
            return Outcome.UNKNOWN
        if operation_id in reservation.operations:
            if self._crowded(reservation, command):
                return Outcome.CROWDED
            reservation.operations.discard(operation_id)
            self._send(token, reservation, command)
        return Outcome.DONE

    async def drain(self, token: str) -> list[bytes]:
        """Nothing waits for an open stream here: commands are handed over at once."""
        return []

    async def finished(self, token: str, operation_id: str) -> None:
        reservation = self._reservations.get(token)
        if reservation is not None:
            reservation.operations.discard(operation_id)

    async def close(self, token: str, user_id: int) -> None:
        self._reservations.pop(token, None)

    def _crowded(self, reservation: _Reservation, command: bytes) -> bool:
        """Whether `command` would have to wait in an inbox that is full already."""
        if reservation.holder and self._deliver is not None:
            return False
        limits = self.limits
        return (
            len(reservation.inbox) >= limits.inbox_commands
            or reservation.inbox_bytes + len(command) > limits.inbox_bytes
        )

    def _send(self, token: str, reservation: _Reservation, command: bytes) -> None:
        if reservation.holder and self._deliver is not None:
            self._deliver(token, [command])
        else:
            reservation.inbox.append(command)
            reservation.inbox_bytes += len(command)


class RedisReservations:
    """The registry in Redis, shared by every process on the bus.

    Keys are `<prefix><token>` (a hash: user, holder, bytes in the inbox), `…:ops` (a
    set) and `…:inbox` (a list), all expiring with the reservation, and
    `<prefix>user:<id>`, the user's reservations (a sorted set by expiry) for the per-user
    bound. Each process listens on
    `<prefix>process:<its id>`, where a notice names the reservation whose inbox to read.
    Pub/sub is at most once (a notice sent while the connection is down is lost), so open
    streams also read their inbox at each keep-alive.
    """

    polled = True

    def __init__(self, url: str, prefix: str, limits: ReservationLimits | None = None) -> None:
        from redis.asyncio import Redis

        self.limits = limits or ReservationLimits()
        self.redis: Any = Redis.from_url(url)
        self.prefix = prefix
        self.process = secrets.token_hex(8)
        self._listener: asyncio.Task[None] | None = None
        self._submit = self.redis.register_script(SUBMIT)
        self._cancel = self.redis.register_script(CANCEL)
        self._open = self.redis.register_script(OPEN)
        self._drain = self.redis.register_script(DRAIN)
        self._reserve = self.redis.register_script(RESERVE)
        self._close = self.redis.register_script(CLOSE)

    @property
    def _channels(self) -> str:
        return self.prefix + "process:"

    def _keys(self, token: str) -> list[str]:
        key = self.prefix + token
        return [key, key + ":ops", key + ":inbox"]

    async def start(self, deliver: Deliver) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channels + self.process)
        self._listener = asyncio.create_task(
            self._listen(pubsub, deliver), name="gql_feed sse reservations"
        )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self.redis.aclose()

    async def _listen(self, pubsub: Any, deliver: Deliver) -> None:
        """Read the inbox a notice names, and hand its commands to the stream."""
        try:
            while True:
                try:
                    async for message in pubsub.listen():
                        key = message["data"].decode()
                        waiting = await self._drain(keys=[key + ":inbox", key])
                        if waiting:
                            deliver(key.removeprefix(self.prefix), list(waiting))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("Reading SSE reservation notices failed; retrying")
                    await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _user_key(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}"

    async def reserve(self, user_id: int) -> str | None:
        token = secrets.token_urlsafe(32)
        life = max(1, int(self.limits.seconds * 1000))
        made = await self._reserve(
            keys=[self.prefix + token, self._user_key(user_id)],
            args=[str(user_id), token, _now_ms(), life, self.limits.per_user],
        )
        return token if made else None

    async def open(self, token: str, user_id: int, seconds: float) -> tuple[Outcome, list[bytes]]:
        milliseconds = max(1000, int(seconds * 1000))
        reply = await self._open(
            keys=[*self._keys(token), self._user_key(user_id)],
            args=[str(user_id), self.process, milliseconds, _now_ms(), token],
        )
        outcome = Outcome(_text(reply[0]))
        return outcome, [bytes(command) for command in reply[1:]]

    async def submit(
        self, token: str, user_id: int, operation_id: str, command: bytes, limit: int
    ) -> Outcome:
        reply = await self._submit(
            keys=self._keys(token),
            args=[str(user_id), operation_id, command, limit, self._channels, *self._room],
        )
        return Outcome(_text(reply))

    async def cancel(self, token: str, user_id: int, operation_id: str, command: bytes) -> Outcome:
        reply = await self._cancel(
            keys=self._keys(token),
            args=[str(user_id), operation_id, command, 0, self._channels, *self._room],
        )
        return Outcome(_text(reply))

    async def drain(self, token: str) -> list[bytes]:
        """Pub/sub is at most once: an inbox is also read now and then, without notice."""
        key, _, inbox = self._keys(token)
        waiting = await self._drain(keys=[inbox, key])
        return [bytes(command) for command in waiting]

    async def finished(self, token: str, operation_id: str) -> None:
        await self.redis.srem(self._keys(token)[1], operation_id)

    async def close(self, token: str, user_id: int) -> None:
        await self._close(keys=[*self._keys(token), self._user_key(user_id)], args=[token])

    @property
    def _room(self) -> tuple[int, int]:
        return self.limits.inbox_commands, self.limits.inbox_bytes


def reservations_for(settings: Settings) -> Reservations:
    """In the bus's Redis when there is one (every process shares it); else in memory."""
    limits = ReservationLimits.of(settings)
    if settings.broadcast_url.startswith(("redis://", "rediss://")):
        prefix = settings.broadcast_channel + ":sse:"
        return RedisReservations(settings.broadcast_url, prefix, limits)
    return LocalReservations(limits)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
