"""Pre-built WebSocket frames, written straight to uvicorn's transport, several at a time.

Why. Under a steady stream of posts, most of a fan-out's time is one system call per
socket per event (`transport.write` sends at once when the socket's buffer is empty),
plus building each frame in uvicorn's ASGI `send` and websockets' protocol object.
Here a text frame's bytes are built once per event and subscription id and shared by
every socket that gets them, and the frames that wait for one socket leave in ONE
`transport.write` per flush (see `Flusher` for when flushes run): when posts come
faster than sockets are written, each socket's frames pile up between flushes, and the
more there are, the fewer system calls each costs.

Reaching the transport under uvicorn's ASGI `send` is undocumented: `compat.uvicorn.DirectWriter`
does it, returns None (and the caller keeps to the ordinary ASGI `send`) whenever it
cannot, and `tests/live/test_coalesced_writes.py` fails loudly if a default server stops
taking this path.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import weakref
from typing import Protocol

from gql_feed.live import metrics

logger = logging.getLogger(__name__)

_FIN_TEXT = 0x81  # FIN bit and the text opcode; server frames are never masked


class OutFrame:
    """One text message to send, and its wire bytes once a direct write needs them.

    A fan-out hands the same `OutFrame` to every socket whose subscription has the same
    id, so the text is encoded and framed once per event, not once per socket.
    """

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            wire = self._wire = text_frame(self.text.encode())
        return wire


def text_frame(data: bytes) -> bytes:
    """A complete, unmasked, unfragmented text frame (RFC 6455 §5.2) carrying `data`."""
    length = len(data)
    if length < 126:
        return bytes((_FIN_TEXT, length)) + data
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN_TEXT, 126, length) + data
    return struct.pack("!BBQ", _FIN_TEXT, 127, length) + data


class Flushable(Protocol):
    def flush(self) -> tuple[int, int]:
        """Write what waits; returns (frames written, transport writes)."""
        ...


class Flusher:
    """Flushes every socket written to since the last flush, all at once.

    A flush normally runs at the next loop tick. After a flush that took t seconds, the
    next one waits until t has passed: writing then takes at most half the loop's time,
    whatever the rate of posts. When the server keeps up, the wait is over before the
    next post arrives and costs nothing. When it falls behind, the posts of that wait
    pile up per socket and leave together: the busier the server, the fewer system calls
    each frame costs, so the backlog shrinks instead of growing, and the other half of
    the loop stays free for requests (createPost above all) and for the fan-out proper.
    A frame waits at most one flush's duration longer.
    """

    __slots__ = ("_dirty", "_loop", "_not_before", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Flushable] = []
        self._scheduled = False
        self._not_before = 0.0

    def add(self, connection: Flushable) -> None:
        """`connection` has frames waiting (the caller adds it once until flushed)."""
        self._dirty.append(connection)
        if not self._scheduled:
            self._scheduled = True
            loop = self._loop
            if loop.time() < self._not_before:
                loop.call_at(self._not_before, self.flush)
            else:
                loop.call_soon(self.flush)

    def flush(self) -> None:
        started = self._loop.time()
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        frames = writes = 0
        for connection in dirty:
            written, calls = connection.flush()
            frames += written
            writes += calls
        finished = self._loop.time()
        self._not_before = finished + (finished - started)
        if writes:
            metrics.DIRECT_FRAMES.inc(frames)
            metrics.DIRECT_WRITES.inc(writes)
            metrics.FLUSH_SECONDS.observe(finished - started)


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Flusher] = (
    weakref.WeakKeyDictionary()
)


def flusher() -> Flusher:
    """The running loop's flusher: one per loop, so every socket's frames share a flush."""
    loop = asyncio.get_running_loop()
    found = _flushers.get(loop)
    if found is None:
        found = _flushers[loop] = Flusher(loop)
    return found
