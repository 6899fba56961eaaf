"""Automatic persisted queries from a client's side: hashes, requests, a raw WebSocket."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.helpers.server import LiveServer

JSON = {"content-type": "application/json"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(text)}}


def unique(query: str) -> str:
    """The same operation with its own hash, so no earlier registration can answer it."""
    return f"{query} # {uuid.uuid4().hex}"


async def post(
    http: httpx.AsyncClient, body: dict[str, Any] | list[dict[str, Any]], token: str | None = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await http.post("/graphql", json=body, headers=headers)


async def get(
    http: httpx.AsyncClient,
    params: dict[str, Any],
    headers: dict[str, str] | None = None,
    token: str | None = None,
) -> httpx.Response:
    """A GET as Apollo Client sends it: JSON-encoded `variables` and `extensions`."""
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    all_headers = dict(JSON if headers is None else headers)
    if token:
        all_headers["authorization"] = f"Bearer {token}"
    return await http.get("/graphql", params=encoded, headers=all_headers)


# The APQ handshake over POST.


class TransportWs:
    """Just enough graphql-transport-ws to send what a test needs and read what comes."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    @classmethod
    @asynccontextmanager
    async def open(cls, server: LiveServer, token: str) -> AsyncIterator[TransportWs]:
        async with connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            ws = cls(socket)
            await ws.send(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            ack = await ws.receive()
            assert ack["type"] == "connection_ack", ack
            yield ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(
                await asyncio.wait_for(self.socket.recv(), timeout)
            )
            if message["type"] not in ("ping", "pong"):
                return message

    async def subscribe(self, op_id: str, payload: dict[str, Any]) -> None:
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})

    async def settle(self) -> None:
        """A ping's pong comes back after every message sent before it was handled."""
        await self.send({"type": "ping"})
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
            if message["type"] == "pong":
                return
            raise AssertionError(f"unexpected message while settling: {message}")


def ws_codes(message: dict[str, Any]) -> list[str]:
    assert message["type"] == "error", message
    return [error["extensions"]["code"] for error in message["payload"]]
