"""Settings read from `GQL_FEED_*` environment variables (or a `.env` file).

Every setting has an embedded default so that `make run` works on a fresh machine with
nothing else installed: a SQLite file database and the in-memory event bus.

Every setting is also bounded, and a value out of bounds is refused at start with a
message naming it: a zero or negative size, time or count would not only misbehave
but can destroy data (a retention of 0 once pruned the whole event log, after which
event ids restarted at 1 and every process dropped the new events as already seen).
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

MIN_PRODUCTION_SECRET_BYTES = 32
# The least argon2id cost OWASP's password storage cheat sheet recommends: 19 MiB, 2 passes.
MIN_PRODUCTION_HASH_MEMORY_KIB = 19_456
MIN_PRODUCTION_HASH_PASSES = 2
# INSERT ... RETURNING, which the post and event-log writes use.
MIN_SQLITE_VERSION = (3, 35, 0)


LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

# The bounds every setting of a kind shares.
Positive = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(gt=0, le=24 * 3600, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=1, le=65_535)]
Name = Annotated[str, Field(min_length=1)]
Deadline = Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)]


class ConfigError(RuntimeError):
    """The settings cannot work; the message says how to fix them."""


class Settings(BaseSettings):
    """All of gql_feed's knobs; docs/settings.md (generated: `make docs`) lists each one."""

    model_config = SettingsConfigDict(
        env_prefix="GQL_FEED_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # The docstring under each setting is its description in docs/settings.md.
        use_attribute_docstrings=True,
    )

    # Where things live.
    database_url: Name = "sqlite+aiosqlite:///./gql_feed.db"
    """SQLAlchemy URL; `postgresql+asyncpg://…` for PostgreSQL. SQLite must be 3.35 or newer (the
    server says so at start if not)."""
    broadcast_url: Name = "memory://"
    """Event bus: `memory://` (one process), `redis://…`, or `postgres://…` (LISTEN/NOTIFY)."""
    broadcast_channel: Name = "gql_feed_post_events"
    """Bus channel name (one per deployment when several share a Redis)."""
    upload_dir: Path = Path("uploads")
    """Where image files are stored."""
    public_url: str = ""
    """Base of absolute `imageUrl`s; empty: `http://HOST:PORT`."""
    auto_migrate: bool = True
    """Migrate at start; `false` refuses to start on an old schema."""

    # Serving.
    host: Name = "127.0.0.1"
    """Address to listen on (`--host`)."""
    port: Port = 8000
    """Port to listen on (`--port`)."""
    workers: Positive = 1
    """uvicorn worker processes (`--workers`); more than one needs a shared bus."""
    log_level: str = "info"
    """Log level; uvicorn's three lines per WebSocket, and Alembic's, show only at `debug`."""
    access_log: bool = True
    """One line per HTTP request."""
    # Process-wide (gql_feed.runtime): applied by the first app to start in a process,
    # restored by the last to stop.
    gc_freeze: bool = True
    """Once started, keep start-up objects out of the garbage collector's passes
    (`gql_feed/runtime/heap.py`). Like the two below, it belongs to the process: the first app
    to start in it applies it, the last to stop restores it."""
    gc_thresholds: Annotated[tuple[int, int, int], NoDecode] = (20_000, 1, 1)
    """The collector's thresholds while frozen, written `20000,1,1` (the first 100 to
    10,000,000, the others 1 to 1,000)."""
    switch_interval_seconds: Annotated[float, Field(ge=1e-6, le=0.1, allow_inf_nan=False)] = 0.0001
    """How soon a worker thread gets the GIL back from the event loop
    (`gql_feed/runtime/switching.py`)."""
    production: bool = False
    """Production mode: no introspection, GraphiQL or suggestions; needs a 32-byte
    `GQL_FEED_JWT_SECRET`."""
    cors_origins: list[str] = Field(default_factory=list)
    """JSON list of allowed browser origins."""
    # Proxies whose X-Forwarded-For/-Proto name the client (uvicorn's forwarded_allow_ips).
    # None by default: otherwise any local client could name itself anyone and get past
    # the per-address login and signup limits.
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    """JSON list of proxy addresses (or `["*"]`) whose `X-Forwarded-For` names the client; none
    trusted by default."""
    ws_per_message_deflate: bool = False
    """WebSocket compression (off: faster fan-out, less memory)."""
    ws_implementation: Literal["websockets-sansio", "websockets"] = "websockets-sansio"
    """uvicorn's WebSocket implementation; the default won by measurement (bench/README.md)."""

    # Tokens.
    jwt_secret: SecretStr | None = None
    """HS256 key; without it a development key is generated once into `GQL_FEED_JWT_SECRET_FILE`
    (mode 0600)."""
    jwt_secret_file: Path = Path(".gql_feed_secret")
    """Where the development key is kept."""
    jwt_issuer: Name = "gql_feed"
    """Token `iss`, always checked."""
    jwt_audience: Name = "gql_feed"
    """Token `aud`, always checked."""
    token_ttl_seconds: Positive = 3600
    """Token lifetime."""

    # Limits on what clients may ask for.
    max_upload_bytes: Positive = 5 * 1024 * 1024
    """Largest image."""
    max_image_pixels: Positive = 40_000_000
    """Larger images are refused before they are decoded (decompression bombs)."""
    max_request_bytes: Positive = 6 * 1024 * 1024
    """Largest HTTP request body; keep it a little above `GQL_FEED_MAX_UPLOAD_BYTES`."""
    request_header_timeout_seconds: Deadline = 10.0
    """Time a request's headers may take to arrive (from the connection, or the request's first
    byte); past it, 408 `REQUEST_TIMEOUT` and the connection closed."""
    request_body_timeout_seconds: Deadline = 60.0
    """Time a request's whole body may take to arrive once its headers are in; past it, 408
    `REQUEST_TIMEOUT` and the connection closed."""
    max_per_page: Positive = 50
    """Largest `perPage`."""
    max_first: Positive = 100
    """Largest `first`."""
    max_page_offset: Annotated[int, Field(ge=0, le=10_000_000)] = 10_000
    """Deepest `posts(page:)`: `(page - 1) * perPage` at most this, else `BAD_USER_INPUT` (use
    `feed(first:, after:)` further)."""
    max_query_depth: Positive = 12
    """Deepest query, in levels of fields."""
    max_query_tokens: Positive = 2_000
    """Longest query, in tokens."""
    max_query_bytes: Positive = 64 * 1024
    """Longest query text, in bytes (whitespace, comments and strings included)."""
    max_query_cost: Positive = 3_000
    """Most an operation, or a whole batch, may cost (every field counts once per time it would
    appear in the answer)."""
    max_validation_seconds: Seconds = 5.0
    """Longest a document's validation may take; past it the document is refused with
    `GRAPHQL_VALIDATION_FAILED`."""
    document_cache_bytes: Positive = 32 * 1024 * 1024
    """Bound of each cache of parsed and validated documents."""
    max_aliases: Annotated[int, Field(ge=0)] = 30
    """Most aliases in one query."""
    max_batch_operations: Positive = 10
    """Most operations in one batched request."""
    login_max_failures: Positive = 5
    """Failed logins for one email, or from one address, before logins are refused for
    `GQL_FEED_LOGIN_LOCKOUT_SECONDS`."""
    login_lockout_seconds: Positive = 300
    """How long logins stay refused after too many failures."""
    signup_max_per_address: Positive = 20
    """Signups one client address may make per `GQL_FEED_SIGNUP_PERIOD_SECONDS`."""
    signup_period_seconds: Positive = 3600
    """The period of the signup allowance, from an address's first signup in it."""

    # Work off the event loop: each kind on threads of its own (gql_feed.runtime.workers).
    password_hash_threads: Positive = 1
    """Password hashes run at once."""
    password_hash_queue: Annotated[int, Field(ge=0)] = 16
    """Password hashes allowed to wait; past both, `TOO_MANY_REQUESTS`."""
    password_hash_memory_kib: Annotated[int, Field(ge=32, le=4 * 1024**2)] = 65_536
    """argon2id's memory per password hash, in KiB (64 MiB). Each stored hash keeps the cost it
    was made with, so a change applies to new passwords. Production mode refuses less than
    19456 (19 MiB)."""
    password_hash_passes: Annotated[int, Field(ge=1, le=100)] = 3
    """argon2id's passes over that memory (its time cost). Production mode refuses fewer than 2."""
    image_threads: Positive = 2
    """Threads checking and re-encoding uploaded images."""

    # Accounts and files that went away.
    known_user_ttl_seconds: Seconds = 30.0
    """How long a process trusts what it knows of a user's existence; a removed user's token stops
    working within this time."""
    orphan_grace_seconds: Annotated[int, Field(ge=60)] = 900
    """At start, image files no post uses are removed once older than this."""

    # Live events.
    ws_init_timeout_seconds: Seconds = 10.0
    """Time allowed before `connection_init`."""
    ws_keepalive_seconds: Seconds = 15.0
    """Keep-alive ping interval (and SSE comment interval)."""
    ws_max_subscriptions: Positive = 100
    """Subscriptions per connection or stream."""
    ws_max_groups_per_connection: Positive = 10
    """Distinct subscriptions per connection: subscriptions that share no execution."""
    live_max_groups: Positive = 1000
    """Distinct subscriptions per server process: each costs one execution per event."""
    # Each login's share, across every transport (live.quotas): well under the above.
    live_max_streams_per_user: Annotated[int, Field(ge=1, le=100_000)] = 100
    """Live streams one login may hold open per process: WebSockets, SSE streams (both modes)
    and multipart responses together; past it `TOO_MANY_STREAMS`."""
    live_max_subscriptions_per_user: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    """Live subscriptions one login may hold per process, across its streams; past it
    `TOO_MANY_SUBSCRIPTIONS`."""
    live_max_groups_per_user: Annotated[int, Field(ge=1, le=100_000)] = 50
    """Distinct subscriptions (groups) one login's subscriptions may be in per process; past it
    `TOO_MANY_GROUPS`."""
    # SSE single-connection reservations (transport.streams.reservations).
    sse_reservation_seconds: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] = 60.0
    """How long a single-connection SSE reservation nobody opens is kept."""
    sse_max_reservations_per_user: Annotated[int, Field(ge=1, le=10_000)] = 10
    """Reservations one login may hold at once, opened or not; past it `TOO_MANY_STREAMS` (429)."""
    sse_reservation_inbox_commands: Annotated[int, Field(ge=1, le=100_000)] = 100
    """Operations (and their stops) that may wait for a reservation's stream to open; past it
    `TOO_MANY_REQUESTS` (429)."""
    sse_reservation_inbox_bytes: Annotated[int, Field(ge=1024, le=64 * 1024**2)] = 256 * 1024
    """Bytes of those operations that may wait; past it `TOO_MANY_REQUESTS` (429)."""
    ws_max_message_bytes: Positive = 64 * 1024
    """Largest client WebSocket message (and streaming request)."""
    ws_send_backlog: Positive = 500
    """Frames queued for a slow socket or stream before it is dropped as a slow consumer."""
    # Bytes queued for one slow socket or stream, whatever its transport (live.connection).
    ws_send_backlog_bytes: Annotated[int, Field(ge=4096, le=1024**3)] = 1024 * 1024
    """Bytes queued for a slow socket or stream (WebSocket, SSE in both modes, multipart)
    before it is dropped as a slow consumer."""
    event_poll_seconds: Seconds = 1.0
    """How often each process checks the event log for events the bus lost."""
    event_log_retention: Positive = 100_000
    """Events kept for `after:` resumes (the newest is always kept, so ids never restart); at least
    `GQL_FEED_REPLAY_MAX_EVENTS`. Each process trims the log to it every 300 polls (every 5
    minutes at the default poll interval)."""
    replay_max_events: Positive = 10_000
    """Most events one resume replays."""

    # Persisted documents (engine.persisted): APQ cache, and the trusted-documents manifest.
    persisted_queries: bool = True
    """Automatic persisted queries (APQ); `false` answers `PERSISTED_QUERY_NOT_SUPPORTED`."""
    persisted_query_cache_bytes: Positive = 16 * 1024 * 1024
    """The in-process APQ cache (an LRU), in bytes of query text."""
    persisted_query_ttl_seconds: Positive = 24 * 3600
    """How long Redis keeps a registered query (Redis bus only)."""
    persisted_query_redis_prefix: Name = "gql_feed:apq:"
    """Redis key prefix of registered queries (Redis bus only)."""
    trusted_documents: Path | None = None
    """Path of a manifest: only its operations run."""

    # Encoded answers to queries, kept until the next event (engine.response_cache); 0: off.
    response_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    """Encoded answers to queries kept until the next post event, in bytes; `0` turns the cache
    off."""
    # Queries that may start per turn of the event loop while a mutation runs (engine.priority):
    # 0.25 is one every fourth turn.
    reads_per_turn_while_writing: Annotated[float, Field(gt=0, le=1000)] = 0.25
    """Queries that may start per turn of the event loop while a mutation is under way, `0.25`
    being one every fourth turn."""

    # Traces (engine.tracing): where they go is the standard OTEL_* variables' business
    # (docs/observability.md); these say what an operation's span shows.
    trace_operation_name: bool = False
    """Name each operation's span `{type} {operationName}` rather than `{type}`. Off by default:
    clients choose the names, so they make span names of unbounded variety."""
    trace_document: bool = False
    """Record each operation's document as `graphql.document`, every literal in it replaced by
    `?` (variables are never recorded)."""

    @field_validator("gc_thresholds", mode="before")
    @classmethod
    def _three_thresholds(cls, value: object) -> tuple[int, ...]:
        """Three whole numbers, as gc.set_threshold takes them: the youngest generation's
        100 to 10,000,000, the older two's 1 to 1,000 (0 would stop collecting them)."""
        parts = value.strip().strip("[]()").split(",") if isinstance(value, str) else value
        try:
            numbers = tuple(int(part) for part in parts)  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            numbers = ()
        if len(numbers) != 3:
            raise ValueError("three whole numbers separated by commas, like 20000,1,1")
        young, middle, old = numbers
        if not (100 <= young <= 10_000_000 and 1 <= middle <= 1000 and 1 <= old <= 1000):
            raise ValueError("the first 100 to 10,000,000, the other two 1 to 1,000")
        return numbers

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        if self.event_log_retention < self.replay_max_events:
            raise ConfigError(
                f"GQL_FEED_EVENT_LOG_RETENTION ({self.event_log_retention}) must be at least "
                f"GQL_FEED_REPLAY_MAX_EVENTS ({self.replay_max_events}): a resume may replay "
                "that many events, so the log must keep them."
            )
        return self

    @model_validator(mode="after")
    def _check_sqlite_version(self) -> Settings:
        if self.database_url.startswith("sqlite") and sqlite3.sqlite_version_info < (
            MIN_SQLITE_VERSION
        ):
            needed = ".".join(map(str, MIN_SQLITE_VERSION))
            raise ConfigError(
                f"This Python's SQLite is {sqlite3.sqlite_version}; gql_feed needs {needed} "
                "or newer. Use a newer Python build, or PostgreSQL (GQL_FEED_DATABASE_URL)."
            )
        return self

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.production:
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if len(secret.encode()) < MIN_PRODUCTION_SECRET_BYTES:
                raise ConfigError(
                    "Production mode needs GQL_FEED_JWT_SECRET of at least "
                    f"{MIN_PRODUCTION_SECRET_BYTES} bytes; create one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
                )
            if (
                self.password_hash_memory_kib < MIN_PRODUCTION_HASH_MEMORY_KIB
                or self.password_hash_passes < MIN_PRODUCTION_HASH_PASSES
            ):
                raise ConfigError(
                    "Production mode needs password hashes of at least "
                    f"GQL_FEED_PASSWORD_HASH_MEMORY_KIB={MIN_PRODUCTION_HASH_MEMORY_KIB} and "
                    f"GQL_FEED_PASSWORD_HASH_PASSES={MIN_PRODUCTION_HASH_PASSES} (OWASP's least "
                    "argon2id cost); the defaults are 65536 and 3."
                )
        return self

    @cached_property
    def secret(self) -> str:
        """The JWT signing key: configured, or generated once and kept for development."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return _development_secret(self.jwt_secret_file)

    @property
    def base_url(self) -> str:
        """The address clients reach the server at, used to build absolute image URLs."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def _development_secret(path: Path) -> str:
    """Read the development key, creating it (mode 0600) on first use so tokens survive restarts."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    logger.warning(
        "No GQL_FEED_JWT_SECRET set: generated a development key in %s (readable only by you). "
        "Set GQL_FEED_JWT_SECRET in production.",
        path,
    )
    return secret
