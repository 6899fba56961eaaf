"""One socket's outgoing side: eager writes, a bounded backlog, and closing.

Why writes are "eager". Fanning one event out to thousands of sockets must not cost a
task, a queue or even an event-loop round trip per socket. An ASGI `send` is a
coroutine, but uvicorn's only suspends when the transport is paused, that is when the
peer does not read fast enough and the kernel and transport buffers are full
(`await self.writable.wait()` returns at once while the event is set). So we drive the
send coroutine by hand: `coro.send(None)` runs it to its first suspension point.
That behaviour is undocumented: `compat.uvicorn.start_send` does it, and its test watches it.

- It raises `StopIteration`: the frame is written (into the transport's buffer) and
  we are done, synchronously, with no task and no scheduling. This is the usual case.
- It yields a future: the socket is backlogged. Only then do we create this socket's
  drain task. It adopts the suspended coroutine (`Resume` hands the yielded future
  back to asyncio's task machinery and keeps driving the coroutine until it returns),
  then writes the frames that queued meanwhile, oldest first. While the drain task
  exists, new frames go to a deque, so order is kept; the task removes itself when
  the deque is empty, with no await between that check and its removal.

The deque is bounded twice: by `ws_send_backlog` frames and by `ws_send_backlog_bytes`
bytes (a frame of 30 aliased post contents weighs 150 kB, so a count alone let two
stalled readers hold hundreds of megabytes). A socket past either is a slow consumer:
its subscriptions are released at once (so the memory is freed and the fan-out stops
spending time on it) and it is closed with 1013 "try again later", telling the client
to come back with `postEvents(after: <last id it received>)`: only the client knows which
frames it got, since some may still sit in kernel buffers.

Coalesced writes. On uvicorn's `websockets-sansio` (the default) without per-message
deflate, frames do not go through `send` at all while the socket keeps up: they wait in
this connection's outbox until the next flush (the next loop tick, or later when the
server is behind), and then leave, already framed, in one `transport.write` (see
`frames`). Once the transport is backed up, the
outbox is handed to the ordinary path above, so order, the backlog bound and the
slow-consumer rule are the same on both paths.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from starlette.types import Message

from gql_feed.compat.uvicorn import SENT, DirectWriter, start_send
from gql_feed.live import metrics
from gql_feed.live.close_codes import CloseCode, fit_reason
from gql_feed.live.frames import Flusher, OutFrame, flusher

CoroutineSend = Callable[[Message], Coroutine[Any, Any, None]]

# What `ws_send_backlog_bytes` defaults to (config.Settings), for connections built alone.
DEFAULT_BYTE_LIMIT = 1024 * 1024

SLOW_CONSUMER_REASON = (
    "Slow consumer: reconnect and resume with postEvents(after: <last id you received>)"
)


def message_size(message: Message) -> int:
    """What a queued message weighs: its body's or its text's length (a text frame's
    characters: its bytes for the ASCII JSON the server writes)."""
    data = message.get("body") or message.get("text") or message.get("bytes") or b""
    return len(data)


class Resume:
    """Awaiting this finishes a coroutine that was started by hand and is suspended.

    `pending` is what the coroutine yielded (a future, or None for a bare yield): it is
    yielded on to the task running us, and whatever the task sends or throws back is
    forwarded, exactly as `await` would have done had the coroutine never left it.
    """

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, None], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, None]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as error:
                try:
                    pending = coro.throw(error)
                except StopIteration:
                    return
                continue
            try:
                pending = coro.send(sent)
            except StopIteration:
                return


class Connection:
    """Writes frames to one WebSocket without ever making the writer wait.

    `send` is the ASGI server's own send callable (see `route`); like every ASGI
    server's, it is a coroutine function, which `_write` relies on. `release` is
    called once, when the connection stops taking frames (closed by us, or found
    gone), so its owner can drop its subscriptions straight away.
    """

    __slots__ = (
        "_backlog_bytes",
        "_backlog_limit",
        "_byte_limit",
        "_direct",
        "_drainer",
        "_flusher",
        "_outbox",
        "_outbox_bytes",
        "_pending",
        "_release",
        "_send",
        "close_code",
        "closing",
    )

    def __init__(
        self,
        send: CoroutineSend,
        backlog_limit: int,
        release: Callable[[], None],
        byte_limit: int = DEFAULT_BYTE_LIMIT,
    ) -> None:
        self._send = send
        self.closing = False
        # The code this server closed it with (None: open, or ended by the client).
        self.close_code: int | None = None
        self._backlog_limit = backlog_limit
        self._byte_limit = byte_limit
        self._backlog_bytes = 0  # of the messages in `_pending`
        self._outbox_bytes = 0
        self._release = release
        self._pending: deque[Message] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._direct = DirectWriter.reach(send)
        self._flusher: Flusher | None = flusher() if self._direct is not None else None
        self._outbox: list[OutFrame] | None = None

    def send_text(self, text: str) -> None:
        """Send one text frame: see `send_frame`."""
        self.send_frame(OutFrame(text))

    def send_frame(self, frame: OutFrame) -> None:
        """Write one frame at the next flush, or queue it behind a backlogged one."""
        if self.closing:
            return
        if self._drainer is not None or self._flusher is None:
            self._send_message({"type": "websocket.send", "text": frame.text})
            return
        outbox = self._outbox
        if outbox is None:
            self._outbox = [frame]
            self._outbox_bytes = len(frame.text)
            self._flusher.add(self)
            return
        outbox.append(frame)
        self._outbox_bytes += len(frame.text)
        if len(outbox) >= self._backlog_limit or self._outbox_bytes >= self._byte_limit:
            self.flush()  # never more than a backlog's worth waiting for one flush

    def flush(self) -> tuple[int, int]:
        """Write the outbox: in one transport write while the socket keeps up, else through
        the ordinary path (which waits, and queues, and closes a slow consumer).

        Returns (frames written directly, transport writes), for the metrics.
        """
        outbox, self._outbox = self._outbox, None
        direct = self._direct
        if not outbox or direct is None or self.closing:
            return 0, 0
        writable = direct.status()
        if writable is None:
            return 0, 0  # closing or gone underneath us; the receive loop will say so
        if writable and self._drainer is None:
            try:
                if len(outbox) == 1:
                    direct.write(outbox[0].wire)
                else:
                    direct.write(b"".join([frame.wire for frame in outbox]))
            except (OSError, RuntimeError):
                self.lost()
                return 0, 0
            return len(outbox), 1
        for frame in outbox:
            self._send_message({"type": "websocket.send", "text": frame.text})
        return 0, 0

    def _send_message(self, message: Message) -> None:
        """Write `message` now, or queue it behind a backlogged one."""
        if self.closing:
            return
        if self._drainer is None:
            self._write(message)
        else:
            self._enqueue(message)

    def _enqueue(self, message: Message) -> None:
        """Queue a message behind the drain task; past the backlog (in frames or in
        bytes), a slow consumer."""
        pending = self._pending
        if pending is None:
            return
        size = message_size(message)
        if len(pending) >= self._backlog_limit or (
            pending and self._backlog_bytes + size > self._byte_limit
        ):
            metrics.SLOW_CONSUMERS.inc()
            self.close(CloseCode.TRY_AGAIN_LATER, SLOW_CONSUMER_REASON)
            return
        pending.append(message)
        self._backlog_bytes += size

    @property
    def transport(self) -> str:
        """The transport its frames leave by, as the metrics name it (`live.metrics`)."""
        return "websocket"

    def close(self, code: int, reason: str = "") -> None:
        """Release everything now, and send the close frame after any frame in flight.

        Frames still queued behind a backlog are dropped: a closing client would not
        process them. Frames in the outbox leave first, so an error that explains
        the close arrives before it.
        """
        if self.closing:
            return
        if self._outbox:
            self.flush()
        if self.closing:
            return  # the flush found a slow consumer and closed it already
        self.closing = True
        self.close_code = code
        self._release()
        message = self.close_message(code, reason)
        if self._drainer is not None and self._pending is not None:
            self._pending.clear()
            self._pending.append(message)
            self._backlog_bytes = message_size(message)
        else:
            self._write(message)

    def close_message(self, code: int, reason: str) -> Message:
        """The last message: a close frame here; the end of the body for an HTTP stream."""
        return {"type": "websocket.close", "code": int(code), "reason": fit_reason(reason)}

    def lost(self) -> None:
        """The peer is gone: stop writing and release everything."""
        if self.closing:
            return
        self.closing = True
        self._outbox = None
        if self._pending is not None:
            self._pending.clear()
            self._backlog_bytes = 0
        self._release()

    async def flushed(self, seconds: float) -> None:
        """Give the last frames (the close frame above all) `seconds` to leave."""
        drainer = self._drainer
        if drainer is None:
            return
        await asyncio.wait({drainer}, timeout=seconds)
        if not drainer.done():
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer

    def _write(self, message: Message) -> None:
        coro = self._send(message)
        try:
            suspended = start_send(coro)
        except Exception:
            # The coroutine is finished either way; what failed is the peer.
            self.lost()
            return
        if suspended is SENT:
            return
        if self._pending is None:
            self._pending = deque()
        self._drainer = asyncio.create_task(self._drain(coro, suspended, self._pending))

    async def _drain(
        self, coro: Coroutine[Any, Any, None], suspended: Any, pending: deque[Message]
    ) -> None:
        try:
            await Resume(coro, suspended)
            while pending:
                message = pending.popleft()
                self._backlog_bytes -= message_size(message)
                await self._send(message)
        except Exception:
            self.lost()
        finally:
            self._drainer = None
            if not pending:
                self._pending = None
                self._backlog_bytes = 0
