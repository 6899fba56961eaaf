"""Raw clients of the HTTP streaming transports: an EventSource-style SSE reader, a client
of SSE's single-connection mode request by request, and a multipart reader that keeps the
exact bytes, for the tests of `transport.streams.streams` and `transport.streams.single`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.helpers.server import LiveServer

SSE = "text/event-stream"
MULTIPART = 'multipart/mixed;subscriptionSpec="1.0", application/json'
EVENTS = "subscription { postEvents { id action post { id title creator { name } } } }"


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseStream:
    """Reads events as the EventSource spec says: fields until a blank line; `:` comments.

    `comments` counts every comment (keep-alives are empty ones); `remarks` holds the text
    of those that say something, such as why the server ended the stream.
    """

    response: httpx.Response
    comments: int = 0
    remarks: list[str] = field(default_factory=list)
    last_event_id: str | None = None
    _lines: AsyncIterator[str] | None = None

    async def next(self, timeout: float = 10.0) -> SseEvent:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> SseEvent:
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if fields:
                    if "id" in fields:
                        self.last_event_id = fields["id"]
                    return SseEvent(
                        fields.get("event", "message"), fields.get("data", ""), fields.get("id")
                    )
                continue
            if line.startswith(":"):
                self.comments += 1
                if remark := line.removeprefix(":").strip():
                    self.remarks.append(remark)
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    async def ended(self, timeout: float = 10.0) -> None:
        """Wait for the server to end the stream (no more events)."""
        try:
            event = await self.next(timeout)
        except EOFError:
            return
        raise AssertionError(f"expected the end of the stream, got {event}")


@asynccontextmanager
async def sse(
    server: LiveServer,
    query: str = EVENTS,
    token: str | None = None,
    ticket: str | None = None,
    last_event_id: str | None = None,
    client: httpx.AsyncClient | None = None,
    method: str = "GET",
) -> AsyncIterator[SseStream]:
    """One SSE request, by GET with the query in the URL (as EventSource does) or POST."""
    headers = {"accept": SSE}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    params = {"ticket": ticket} if ticket else {}
    kwargs: dict[str, Any] = {"params": params, "headers": headers}
    if method == "GET":
        params["query"] = query
    else:
        kwargs["json"] = {"query": query}
    own = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(30, read=None))
    try:
        async with http.stream(method, server.graphql_url, **kwargs) as response:
            yield SseStream(response)
    finally:
        if own:
            await http.aclose()


TOKEN_HEADER = "x-graphql-event-stream-token"


class Single:
    """A client of the single-connection mode, request by request, for any server."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.auth = {"authorization": f"Bearer {token}"}
        self.stream_token = ""

    async def reserve(self, server: LiveServer) -> httpx.Response:
        response = await self.http.put(server.graphql_url, headers=self.auth)
        if response.status_code == 201:
            self.stream_token = response.text
        return response

    @asynccontextmanager
    async def stream(self, server: LiveServer) -> AsyncIterator[SseStream]:
        headers = {**self.auth, "accept": SSE, TOKEN_HEADER: self.stream_token}
        async with self.http.stream("GET", server.graphql_url, headers=headers) as response:
            yield SseStream(response)

    async def start(
        self, server: LiveServer, operation_id: str | None, query: str = EVENTS, **more: Any
    ) -> httpx.Response:
        headers = {**self.auth, TOKEN_HEADER: self.stream_token, **more.pop("headers", {})}
        body = {"query": query, "extensions": {"operationId": operation_id}, **more}
        return await self.http.post(server.graphql_url, json=body, headers=headers)

    async def stop(self, server: LiveServer, operation_id: str) -> httpx.Response:
        headers = {**self.auth, TOKEN_HEADER: self.stream_token}
        return await self.http.delete(
            server.graphql_url, params={"operationId": operation_id}, headers=headers
        )


@asynccontextmanager
async def single(token: str) -> AsyncIterator[Single]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http:
        yield Single(http, token)


def result_of(message: SseEvent) -> tuple[str, dict[str, Any]]:
    """(operation id, the postEvents event) of a `next`; results carry no SSE id."""
    assert message.event == "next", message
    assert message.id is None
    data = message.json()
    return data["id"], data["payload"]["data"]["postEvents"]


def code_of(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


@dataclass
class MultipartStream:
    response: httpx.Response
    raw: bytearray = field(default_factory=bytearray)
    _chunks: AsyncIterator[bytes] | None = None

    async def next_part(self, timeout: float = 10.0) -> Any:
        """The next part's JSON, parsed as Apollo Client does: a part ends at a boundary."""
        return await asyncio.wait_for(self._next_part(), timeout)

    async def _next_part(self) -> Any:
        if self._chunks is None:
            self._chunks = self.response.aiter_raw()
        delimiter = b"\r\n--graphql"
        while True:
            text = bytes(self.raw)
            start = text.find(delimiter)
            end = text.find(delimiter, start + len(delimiter)) if start >= 0 else -1
            if end >= 0:
                part = text[start + len(delimiter) : end]
                del self.raw[:end]
                headers, _, body = part.partition(b"\r\n\r\n")
                assert headers == b"\r\nContent-Type: application/json", headers
                return json.loads(body)
            try:
                self.raw += await self._chunks.__anext__()
            except StopAsyncIteration:
                raise EOFError(bytes(self.raw)) from None

    async def next_payload(self, timeout: float = 10.0) -> Any:
        """The next part that is not a heartbeat."""
        while True:
            part = await self.next_part(timeout)
            if part != {}:
                return part

    async def rest(self, timeout: float = 10.0) -> bytes:
        """Everything left until the server ends the response."""

        if self._chunks is None:
            self._chunks = self.response.aiter_raw()
        chunks = self._chunks

        async def read() -> bytes:
            async for chunk in chunks:
                self.raw += chunk
            return bytes(self.raw)

        return await asyncio.wait_for(read(), timeout)


@asynccontextmanager
async def multipart(
    server: LiveServer, token: str, query: str = EVENTS
) -> AsyncIterator[MultipartStream]:
    headers = {"accept": MULTIPART, "authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http,
        http.stream("POST", server.graphql_url, json={"query": query}, headers=headers) as response,
    ):
        yield MultipartStream(response)


async def stream_ticket(server: LiveServer, token: str) -> str:
    body = await asyncio.to_thread(server.graphql, "mutation { streamTicket }", None, token)
    assert "errors" not in body, body
    ticket: str = body["data"]["streamTicket"]
    return ticket
