"""The `graphql-transport-ws` subprotocol (graphql-ws, Apollo Client 3.5+, urql).

PROTOCOL.md in brief: the client sends connection_init (within the init timeout, once)
and gets connection_ack; either side may ping and the other pongs; subscribe starts an
operation, answered by next… then complete, or by one error; either side's complete
ends it. Order and shape violations close the socket with the codes of `CloseCode`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, NotRequired, TypedDict

from graphql import GraphQLError

from gql_feed.engine.requests import OperationPayload
from gql_feed.engine.results import formatted_errors, json_text
from gql_feed.live.close_codes import CloseCode, CloseConnection
from gql_feed.services.errors import FeedError
from gql_feed.transport.ws.messages import (
    bad,
    message_id,
    operation_payload,
    optional_object,
)
from gql_feed.transport.ws.protocol import LiveProtocol

PING = json_text({"type": "ping"})


class ConnectionInitMessage(TypedDict):
    type: Literal["connection_init"]
    payload: NotRequired[dict[str, Any] | None]


class PingMessage(TypedDict):
    type: Literal["ping"]
    payload: NotRequired[dict[str, Any] | None]


class PongMessage(TypedDict):
    type: Literal["pong"]
    payload: NotRequired[dict[str, Any] | None]


class SubscribeMessage(TypedDict):
    id: str
    type: Literal["subscribe"]
    payload: OperationPayload


class CompleteMessage(TypedDict):
    id: str
    type: Literal["complete"]


class TransportWsProtocol(LiveProtocol):
    __slots__ = ()
    subprotocol = "graphql-transport-ws"
    next_type = "next"

    def dispatch(self, message: dict[str, Any]) -> Awaitable[None] | None:
        match message["type"]:
            case "connection_init":
                return self.handle_connection_init(
                    {"type": "connection_init", "payload": optional_object(message, "payload")}
                )
            case "ping":
                self.handle_ping({"type": "ping", "payload": optional_object(message, "payload")})
            case "pong":
                self.handle_pong({"type": "pong", "payload": optional_object(message, "payload")})
            case "subscribe":
                self.handle_subscribe(
                    {
                        "id": message_id(message),
                        "type": "subscribe",
                        "payload": operation_payload(message),
                    }
                )
            case "complete":
                self.handle_complete({"id": message_id(message), "type": "complete"})
            case other:
                raise bad(f"unexpected message type {other!r}")
        return None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        self.check_init()
        try:
            await self.authenticate(message.get("payload"))
        except FeedError as refusal:
            raise CloseConnection(CloseCode.FORBIDDEN, f"Forbidden: {refusal.message}") from None
        self.send_json({"type": "connection_ack"})

    def handle_ping(self, message: PingMessage) -> None:
        payload = message.get("payload")
        self.send_json({"type": "pong", "payload": payload} if payload else {"type": "pong"})

    def handle_pong(self, message: PongMessage) -> None:
        """Nothing to do: a pong answers one of our keep-alive pings, or is the client's own
        one-way heartbeat (PROTOCOL.md allows both). Our pings are not timed: they exist to
        keep proxies from dropping an idle socket and to make the kernel find a vanished peer
        (writing to it fails, and the connection is then released)."""

    def handle_subscribe(self, message: SubscribeMessage) -> None:
        claims = self.claims
        if claims is None:
            raise CloseConnection(CloseCode.UNAUTHORIZED, "Unauthorized")
        op_id = message["id"]
        if op_id in self.active:
            raise CloseConnection(
                CloseCode.SUBSCRIBER_ALREADY_EXISTS, f"Subscriber for {op_id} already exists"
            )
        self.start(op_id, message["payload"], claims)

    def handle_complete(self, message: CompleteMessage) -> None:
        self.stop(message["id"])

    def keepalive(self) -> None:
        if self.claims is not None:
            self.connection.send_text(PING)

    def send_error(self, op_id: str, errors: list[GraphQLError]) -> None:
        self.send_json(
            {
                "id": op_id,
                "type": "error",
                "payload": formatted_errors(errors, self.settings.production),
            }
        )
