"""The `gql-feed` command: serve, migrate, print the schema, check a manifest."""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from gql_feed.config import ConfigError, Settings
from gql_feed.logs import logging_config
from gql_feed.observability.setup import exporter_names
from gql_feed.transport.http.protocol import FeedHttpProtocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gql-feed", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (GQL_FEED_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (GQL_FEED_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (GQL_FEED_WORKERS)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    check = commands.add_parser(
        "check-manifest", help="validate a trusted-documents manifest against the schema"
    )
    check.add_argument("path", type=Path, help="Apollo or GraphQL Codegen persisted documents")
    args = parser.parse_args(argv)

    if args.command == "schema":
        from gql_feed.app import export_schema

        sys.stdout.write(export_schema())
        return 0
    # Flags go through the same bounds as the environment (`--port 0` is refused too).
    flags = (
        {"host": args.host, "port": args.port, "workers": args.workers}
        if args.command == "serve"
        else {}
    )
    try:
        settings = Settings(**{key: value for key, value in flags.items() if value is not None})
        exporter_names(os.environ)  # the OTEL_* variables that choose where traces go
    except (ConfigError, ValidationError) as error:
        # A wrong setting is the operator's to fix: say which and how, without a traceback.
        sys.stderr.write(f"gql-feed: cannot start: {describe(error)}\n")
        return 2
    if args.command == "check-manifest":
        from gql_feed.engine.executable import build_schema
        from gql_feed.engine.trusted_documents import check_manifest_command

        return check_manifest_command(args.path, settings, build_schema([]))
    logging.config.dictConfig(logging_config(settings.log_level))
    if args.command == "migrate":
        from gql_feed.storage.database import run_sync_migrations

        run_sync_migrations(settings.database_url)
        return 0
    return serve_forever(settings)


def describe(error: ConfigError | ValidationError) -> str:
    """One line per problem, naming the environment variable to change."""
    if isinstance(error, ConfigError):
        return str(error)
    problems = []
    for problem in error.errors(include_url=False):
        field = str(problem["loc"][0]) if problem["loc"] else ""
        where = f"GQL_FEED_{field.upper()}: " if field else ""
        problems.append(f"{where}{problem['msg']}")
    return "; ".join(problems)


def serve_forever(settings: Settings) -> int:
    """Run uvicorn with the WebSocket settings chosen by measurement (bench/README.md)."""
    if settings.workers > 1 and settings.broadcast_url.startswith("memory://"):
        logging.getLogger(__name__).warning(
            "%s workers on the in-memory bus: events cross workers only through the "
            "event-log poll; set GQL_FEED_BROADCAST_URL=redis://… for live fan-out.",
            settings.workers,
        )
    # Resolve the development key before forking workers, so they all sign alike.
    settings.secret  # noqa: B018
    os.environ.setdefault("GQL_FEED_JWT_SECRET", settings.secret)
    os.environ["GQL_FEED_HOST"] = settings.host
    os.environ["GQL_FEED_PORT"] = str(settings.port)
    os.environ["GQL_FEED_REQUEST_HEADER_TIMEOUT_SECONDS"] = str(
        settings.request_header_timeout_seconds
    )
    uvicorn.run(
        "gql_feed.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        ws=settings.ws_implementation,
        # JSON refusals of unreadable requests, and a limit on slow headers.
        http=FeedHttpProtocol,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        # Above our own limit, so an oversized message gets our clear close reason.
        ws_max_size=4 * settings.ws_max_message_bytes,
        log_config=logging_config(settings.log_level),
        access_log=settings.access_log,
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
