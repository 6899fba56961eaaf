"""Where one executed read spends its CPU: the app in this process, no network, no cache.

Seeds 50 posts, then sends the compare_http query (`posts(page: 1, perPage: 10)`, each
post with its creator) straight to the ASGI app N times, one after the other, with the
response cache off so that every read executes. Prints the microseconds per request,
then cProfile's cumulative time per request for the parts of the path (a function
absent from this version of the code shows as "-"). Profiling about doubles every
figure; compare the shares, and runs of this script with each other.

With `--tracing`, a tracer provider is installed first, as `OTEL_TRACES_EXPORTER` would
install one, sampling every trace (or `--sample` of them) into a batch processor whose
exporter drops the spans: what tracing costs the request path, without a collector.

python bench/profile_read.py [--requests 2000] [--tracing [--sample 1.0]]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import CREATE, PNG

BODY = json.dumps(
    {
        "query": "query Page($page: Int!, $perPage: Int!) { posts(page: $page, perPage: $perPage) "
        "{ totalPosts posts { id title content imageUrl createdAt updatedAt creator { id name } } } }",
        "variables": {"page": 1, "perPage": 10},
    }
).encode()
# (label, file suffix, function name) of the parts reported.
PARTS = [
    ("whole request (ASGI app)", "starlette/applications.py", "__call__"),
    ("strawberry's execute", "strawberry/schema/schema.py", "execute"),
    (
        "  parse, validate, cost (extension hooks)",
        "strawberry/schema/schema.py",
        "_prepare_operation_async",
    ),
    ("  the posts resolver", "gql_feed/schema/root.py", "posts"),
    ("    the database read", "gql_feed/services/posts.py", "page"),
    (
        "  completing the posts (graphql-core)",
        "graphql/execution/executor.py",
        "complete_object_value",
    ),
    ("  completing the posts (short path)", "gql_feed/engine/execution.py", "read"),
    ("JSON encoding", "~", "<orjson.dumps>"),
    ("the operation's span (engine.tracing)", "gql_feed/engine/tracing.py", "__init__"),
    ("  the execution's span (engine.phase_spans)", "gql_feed/engine/phase_spans.py", "executed"),
]


async def seed(http: httpx.AsyncClient) -> str:
    password = "bench-password-1"
    signup = "mutation($i: SignupInput!) { signup(input: $i) { id } }"
    await http.post(
        "/graphql",
        json={
            "query": signup,
            "variables": {"i": {"email": "p@example.com", "name": "Bench", "password": password}},
        },
    )
    login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
    answer = await http.post(
        "/graphql", json={"query": login, "variables": {"e": "p@example.com", "p": password}}
    )
    token: str = answer.json()["data"]["login"]["token"]
    headers = {"authorization": f"Bearer {token}", "apollo-require-preflight": "true"}
    for n in range(50):
        variables = {
            "i": {
                "title": f"Post number {n}",
                "content": f"Content of post {n} " * 5,
                "image": None,
            }
        }
        form = {
            "operations": json.dumps({"query": CREATE, "variables": variables}),
            "map": json.dumps({"0": ["variables.i.image"]}),
        }
        files = {"0": ("dot.png", PNG, "image/png")}
        created = await http.post("/graphql", data=form, files=files, headers=headers)
        assert "errors" not in created.json(), created.text
    return token


async def requests(app: Any, token: str, count: int) -> None:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-length", str(len(BODY)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for _ in range(count):
        sent.clear()
        await app({**scope, "state": {}}, receive, send)
        if b'"totalPosts":50' not in sent[-1]["body"]:
            raise RuntimeError(sent[-1]["body"][:300])


def report(profile: cProfile.Profile, count: int) -> None:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for label, suffix, name in PARTS:
        total = sum(
            cumulative
            for (file, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.items()
            if function == name and file.endswith(suffix)
        )
        figure = f"{total / count * 1e6:8.0f} us" if total else "       -"
        print(f"{label:<45} {figure}")


def install_tracing(sample: float) -> None:
    """Tracing on, as the application's start-up would turn it on, exporting nowhere."""
    from collections.abc import Sequence

    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(sample)))
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--tracing", action="store_true", help="trace every read, export none")
    parser.add_argument("--sample", type=float, default=1.0, help="with --tracing: the share")
    args = parser.parse_args()
    if args.tracing:
        install_tracing(args.sample)
    folder = Path(tempfile.mkdtemp(prefix="gql_feed_profile_"))
    os.environ.update(
        {
            "GQL_FEED_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'feed.db'}",
            "GQL_FEED_UPLOAD_DIR": str(folder / "uploads"),
            "GQL_FEED_JWT_SECRET": "bench-secret-0123456789abcdef0123456789abcdef",
            "GQL_FEED_RESPONSE_CACHE_BYTES": "0",
            "GQL_FEED_ACCESS_LOG": "false",
            "GQL_FEED_LOG_LEVEL": "warning",
        }
    )
    from gql_feed.app import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            token = await seed(http)
        await requests(app, token, 300)  # warm caches and the shapes of the operation
        started = time.perf_counter()
        await requests(app, token, args.requests)
        elapsed = time.perf_counter() - started
        tracing = f"tracing on, {args.sample:.0%} sampled" if args.tracing else "tracing off"
        print(f"{elapsed / args.requests * 1e6:.0f} us per executed read, unprofiled ({tracing})")
        profile = cProfile.Profile()
        profile.enable()
        await requests(app, token, args.requests)
        profile.disable()
        print("cumulative per request, profiled:")
        report(profile, args.requests)


if __name__ == "__main__":
    asyncio.run(main())
