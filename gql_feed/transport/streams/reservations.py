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

logger = logging.getLogger(__name__)

# A reservation nobody opens is forgotten after this long.
RESERVATION_SECONDS = 60

Deliver = Callable[[str, list[bytes]], None]


class Outcome(Enum):
    """What the registry made of a request against a reservation."""

    DONE = "done"
    UNKNOWN = "unknown"  # no such reservation (expired, ended) or another user's
    BUSY = "busy"  # the stream is already open / the operation id is in use
    FULL = "full"  # the stream has as many operations as it may


class Reservations(Protocol):
    # Whether notices may be lost, so that open streams must read their inbox now and then.
    polled: bool

    async def start(self, deliver: Deliver) -> None:
        """Begin handing this process's streams the commands sent to them."""

    async def stop(self) -> None: ...

    async def reserve(self, user_id: int) -> str:
        """A new reservation for `user_id`; its token."""

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

    async def close(self, token: str) -> None:
        """The stream ended: forget the reservation and its operations."""


@dataclass
class _Reservation:
    user_id: int
    expires: float
    holder: bool = False
    operations: set[str] = field(default_factory=set)
    inbox: list[bytes] = field(default_factory=list)


class LocalReservations:
    """The registry in this process's memory."""

    polled = False

    def __init__(self) -> None:
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

    async def reserve(self, user_id: int) -> str:
        now = time.monotonic()
        for token, reservation in tuple(self._reservations.items()):
            if reservation.expires <= now:
                del self._reservations[token]
        token = secrets.token_urlsafe(32)
        self._reservations[token] = _Reservation(user_id, now + RESERVATION_SECONDS)
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
        reservation.operations.add(operation_id)
        self._send(token, reservation, command)
        return Outcome.DONE

    async def cancel(self, token: str, user_id: int, operation_id: str, command: bytes) -> Outcome:
        reservation = self._get(token, user_id)
        if reservation is None:
            return Outcome.UNKNOWN
        if operation_id in reservation.operations:
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

    async def close(self, token: str) -> None:
        self._reservations.pop(token, None)

    def _send(self, token: str, reservation: _Reservation, command: bytes) -> None:
        if reservation.holder and self._deliver is not None:
            self._deliver(token, [command])
        else:
            reservation.inbox.append(command)


# KEYS: reservation hash, operation ids set, inbox list.
# ARGV: user id, operation id, command, limit, channel prefix.
_SUBMIT = """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 'unknown' end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 'busy' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'full' end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ttl)
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder then redis.call('PUBLISH', ARGV[5] .. holder, KEYS[1]) end
return 'done'
"""

_CANCEL = """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return 'unknown' end
if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 'done' end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], redis.call('PTTL', KEYS[1]))
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder then redis.call('PUBLISH', ARGV[5] .. holder, KEYS[1]) end
return 'done'
"""

# ARGV: user id, process id, milliseconds the stream may stay open.
_OPEN = """
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then return {'unknown'} end
if redis.call('HEXISTS', KEYS[1], 'holder') == 1 then return {'busy'} end
redis.call('HSET', KEYS[1], 'holder', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local waiting = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
table.insert(waiting, 1, 'done')
return waiting
"""

_DRAIN = """
local waiting = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return waiting
"""


class RedisReservations:
    """The registry in Redis, shared by every process on the bus.

    Keys are `<prefix><token>` (a hash: user, holder), `…:ops` (a set) and `…:inbox` (a
    list), all expiring with the reservation. Each process listens on
    `<prefix>process:<its id>`, where a notice names the reservation whose inbox to read.
    Pub/sub is at most once (a notice sent while the connection is down is lost), so open
    streams also read their inbox at each keep-alive.
    """

    polled = True

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.redis: Any = Redis.from_url(url)
        self.prefix = prefix
        self.process = secrets.token_hex(8)
        self._listener: asyncio.Task[None] | None = None
        self._submit = self.redis.register_script(_SUBMIT)
        self._cancel = self.redis.register_script(_CANCEL)
        self._open = self.redis.register_script(_OPEN)
        self._drain = self.redis.register_script(_DRAIN)

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
                        waiting = await self._drain(keys=[key + ":inbox"])
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

    async def reserve(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        await self.redis.hset(self.prefix + token, "user", str(user_id))
        await self.redis.expire(self.prefix + token, RESERVATION_SECONDS)
        return token

    async def open(self, token: str, user_id: int, seconds: float) -> tuple[Outcome, list[bytes]]:
        milliseconds = max(1000, int(seconds * 1000))
        reply = await self._open(
            keys=self._keys(token), args=[str(user_id), self.process, milliseconds]
        )
        outcome = Outcome(_text(reply[0]))
        return outcome, [bytes(command) for command in reply[1:]]

    async def submit(
        self, token: str, user_id: int, operation_id: str, command: bytes, limit: int
    ) -> Outcome:
        reply = await self._submit(
            keys=self._keys(token),
            args=[str(user_id), operation_id, command, limit, self._channels],
        )
        return Outcome(_text(reply))

    async def cancel(self, token: str, user_id: int, operation_id: str, command: bytes) -> Outcome:
        reply = await self._cancel(
            keys=self._keys(token), args=[str(user_id), operation_id, command, 0, self._channels]
        )
        return Outcome(_text(reply))

    async def drain(self, token: str) -> list[bytes]:
        """Pub/sub is at most once: an inbox is also read now and then, without notice."""
        waiting = await self._drain(keys=[self._keys(token)[2]])
        return [bytes(command) for command in waiting]

    async def finished(self, token: str, operation_id: str) -> None:
        await self.redis.srem(self._keys(token)[1], operation_id)

    async def close(self, token: str) -> None:
        await self.redis.delete(*self._keys(token))


def reservations_for(settings: Settings) -> Reservations:
    """In the bus's Redis when there is one (every process shares it); else in memory."""
    if settings.broadcast_url.startswith(("redis://", "rediss://")):
        return RedisReservations(settings.broadcast_url, settings.broadcast_channel + ":sse:")
    return LocalReservations()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
