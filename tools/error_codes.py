"""The error codes gql_feed sends, found in its source, and what each one means.

`sent_codes()` reads every module of gql_feed (its syntax tree, not its text) and
collects the upper-case string constants that reach a client as an `extensions.code`:

- the value of a `"code"` key in a dict literal (`{"code": "BAD_REQUEST"}`);
- what is assigned to a name `code` or ending in `_CODE`, or to a class's `code`
  attribute (`FeedError` and its subclasses), conditional expressions included;
- the values of a dict assigned to a name ending in `_CODES` (code → code maps);
- the arguments of `HttpRefusal(status, code, message)`.

A comparison (`refusal.code == "UNAUTHENTICATED"`) is not a sending, so it is not
collected. `ERROR_CODES` says, for each code, when it is sent;
tools/gen_docs.py refuses to write docs/errors.md unless the two agree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gql_feed"
CODE = re.compile(r"^[A-Z][A-Z_]{4,}$")

# code: when the server sends it (an HTTP status is named where it is not 200).
ERROR_CODES: dict[str, str] = {
    "UNAUTHENTICATED": "no token, a bad or expired one, a token whose user no longer exists, or "
    "a wrong email or password (one answer for both); a spent or unknown stream ticket. A "
    "stream or a stream reservation is refused with 401",
    "FORBIDDEN": "changing another user's post",
    "NOT_FOUND": "no such post or user; no such SSE stream reservation, or another login's (404)",
    "BAD_USER_INPUT": "invalid input: `extensions.fields` maps each bad field to what is wrong. "
    "Also a NUL character anywhere in the input, `perPage` or `first` over its limit, a cursor "
    "the server never gave out, an upload that is not an image, a bad `Last-Event-ID` (400)",
    "TOO_MANY_REQUESTS": "too many failed logins (per email and per address), too many signups "
    "from one address, password checks queued to their bound (the server is busy), or a "
    "single-connection reservation's inbox full (429); "
    "`extensions.retryAfter` says how many seconds to wait",
    "GRAPHQL_PARSE_FAILED": "the document does not parse",
    "GRAPHQL_VALIDATION_FAILED": "the document fails validation or breaks a query limit (depth, "
    "tokens, aliases, more than one `__schema`; over `GQL_FEED_MAX_QUERY_COST`, with "
    "`extensions.cost` and `extensions.maxCost`; validation longer than "
    "`GQL_FEED_MAX_VALIDATION_SECONDS`)",
    "BAD_REQUEST": "a malformed request or multipart body (400), a CSRF-unsafe one (no "
    "`apollo-require-preflight` header, 400), a mutation over GET (405), a subscription over "
    "HTTP without a streaming `Accept` (400), too many operations in a batch (400); on a "
    "single-connection stream, a second stream or an `operationId` already running (409)",
    "PAYLOAD_TOO_LARGE": "a request body over `GQL_FEED_MAX_REQUEST_BYTES`, query text over "
    "`GQL_FEED_MAX_QUERY_BYTES`, or a streaming request over `GQL_FEED_WS_MAX_MESSAGE_BYTES` "
    "(413); a URL longer than 65,535 bytes (414: POST the query instead)",
    "PERSISTED_QUERY_NOT_FOUND": "an automatic persisted query's hash the server does not know: "
    "resend it with its text",
    "PERSISTED_QUERY_NOT_SUPPORTED": "a persisted query while `GQL_FEED_PERSISTED_QUERIES=false`",
    "PERSISTED_QUERY_NOT_ALLOWED": "trusted-documents mode (`GQL_FEED_TRUSTED_DOCUMENTS`) and a "
    "document its manifest does not list (403)",
    "TOO_MANY_SUBSCRIPTIONS": "one connection or stream asked for more than "
    "`GQL_FEED_WS_MAX_SUBSCRIPTIONS`, or one login for more than "
    "`GQL_FEED_LIVE_MAX_SUBSCRIPTIONS_PER_USER` across its streams",
    "TOO_MANY_GROUPS": "a subscription that would put its connection in more than "
    "`GQL_FEED_WS_MAX_GROUPS_PER_CONNECTION` groups, its login in more than "
    "`GQL_FEED_LIVE_MAX_GROUPS_PER_USER`, or make the process run more than "
    "`GQL_FEED_LIVE_MAX_GROUPS`; only that subscription is refused",
    "TOO_MANY_STREAMS": "an SSE or multipart stream beyond `GQL_FEED_LIVE_MAX_STREAMS_PER_USER` "
    "open for one login, or a single-connection reservation beyond "
    "`GQL_FEED_SSE_MAX_RESERVATIONS_PER_USER` (429); over the WebSocket, `connection_init` is "
    "closed 4403 with that reason",
    "REQUEST_TIMEOUT": "a request whose headers (`GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS`) or "
    "body (`GQL_FEED_REQUEST_BODY_TIMEOUT_SECONDS`) arrived too slowly (408; the connection "
    "closes)",
    "EVENT_LOG_EXPIRED": "`postEvents(after:)` names a point the event log no longer holds: "
    "refetch, then subscribe without `after`",
    "SHUTTING_DOWN": "the last part of a multipart stream the server ends because it stops",
    "SLOW_CONSUMER": "the last part of a multipart stream that fell `GQL_FEED_WS_SEND_BACKLOG` "
    "frames or `GQL_FEED_WS_SEND_BACKLOG_BYTES` bytes behind: resubscribe with `after:`",
    "INTERNAL_SERVER_ERROR": "anything unexpected; the message is masked and the details only "
    "logged",
}


def _codes_in(node: ast.AST) -> set[str]:
    return {
        child.value
        for child in ast.walk(node)
        if isinstance(child, ast.Constant)
        and isinstance(child.value, str)
        and CODE.match(child.value)
    }


def _target_names(node: ast.Assign | ast.AnnAssign) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:
        if isinstance(target, ast.Name):
            names.append(target.id)
        elif isinstance(target, ast.Attribute):
            names.append(target.attr)
    return names


def _sent_in(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    found |= _codes_in(value)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            for name in _target_names(node):
                if name == "code" or name.endswith("_CODE"):
                    found |= _codes_in(node.value)
                elif name.endswith("_CODES") and isinstance(node.value, ast.Dict):
                    for value in node.value.values:
                        found |= _codes_in(value)
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.id if isinstance(function, ast.Name) else None
            if name == "HttpRefusal":
                for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                    found |= _codes_in(argument)
    return found


def sent_codes() -> dict[str, list[str]]:
    """Each code the source sends, with the modules (relative to gql_feed/) sending it."""
    codes: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for code in sorted(_sent_in(ast.parse(path.read_text(encoding="utf-8")))):
            codes.setdefault(code, []).append(str(path.relative_to(PACKAGE)))
    return codes
