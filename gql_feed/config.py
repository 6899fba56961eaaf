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
    """All of gql_feed's knobs; the README lists each one."""

    model_config = SettingsConfigDict(
        env_prefix="GQL_FEED_", env_file=".env", extra="ignore", frozen=True
    )

    # Where things live.
    database_url: Name = "sqlite+aiosqlite:///./gql_feed.db"
    broadcast_url: Name = "memory://"
    broadcast_channel: Name = "gql_feed_post_events"
    upload_dir: Path = Path("uploads")
    public_url: str = ""
    auto_migrate: bool = True

    # Serving.
    host: Name = "127.0.0.1"
    port: Port = 8000
    workers: Positive = 1
    log_level: str = "info"
    access_log: bool = True
    # Process-wide (gql_feed.runtime): applied by the first app to start in a process,
    # restored by the last to stop.
    gc_freeze: bool = True
    # The collector's thresholds while frozen (runtime/heap.py): "20000,1,1".
    gc_thresholds: Annotated[tuple[int, int, int], NoDecode] = (20_000, 1, 1)
    # How soon a worker thread gets the GIL back from the event loop (runtime/switching.py).
    switch_interval_seconds: Annotated[float, Field(ge=1e-6, le=0.1, allow_inf_nan=False)] = 0.0001
    production: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    # Proxies whose X-Forwarded-For/-Proto name the client (uvicorn's forwarded_allow_ips).
    # None by default: otherwise any local client could name itself anyone and get past
    # the per-address login and signup limits.
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    ws_per_message_deflate: bool = False
    ws_implementation: Literal["websockets-sansio", "websockets"] = "websockets-sansio"

    # Tokens.
    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path = Path(".gql_feed_secret")
    jwt_issuer: Name = "gql_feed"
    jwt_audience: Name = "gql_feed"
    token_ttl_seconds: Positive = 3600

    # Limits on what clients may ask for.
    max_upload_bytes: Positive = 5 * 1024 * 1024
    max_image_pixels: Positive = 40_000_000
    max_request_bytes: Positive = 6 * 1024 * 1024
    # A request's headers, then its body, must arrive within these
    # (transport.http.protocol, transport.http.deadlines).
    request_header_timeout_seconds: Deadline = 10.0
    request_body_timeout_seconds: Deadline = 60.0
    max_per_page: Positive = 50
    max_first: Positive = 100
    # How deep `posts(page:)` may reach: (page - 1) * perPage at most this (services.posts).
    max_page_offset: Annotated[int, Field(ge=0, le=10_000_000)] = 10_000
    max_query_depth: Positive = 12
    max_query_tokens: Positive = 2_000
    max_query_bytes: Positive = 64 * 1024
    max_query_cost: Positive = 3_000
    # Past this a document's validation stops and it is refused (engine.rules).
    max_validation_seconds: Seconds = 1.0
    document_cache_bytes: Positive = 32 * 1024 * 1024
    max_aliases: Annotated[int, Field(ge=0)] = 30
    max_batch_operations: Positive = 10
    login_max_failures: Positive = 5
    login_lockout_seconds: Positive = 300
    signup_max_per_address: Positive = 20
    signup_period_seconds: Positive = 3600

    # Work off the event loop: each kind on threads of its own (gql_feed.runtime.workers).
    password_hash_threads: Positive = 1
    password_hash_queue: Annotated[int, Field(ge=0)] = 16
    image_threads: Positive = 2

    # Accounts and files that went away.
    known_user_ttl_seconds: Seconds = 30.0
    orphan_grace_seconds: Annotated[int, Field(ge=60)] = 900

    # Live events.
    ws_init_timeout_seconds: Seconds = 10.0
    ws_keepalive_seconds: Seconds = 15.0
    ws_max_subscriptions: Positive = 100
    ws_max_groups_per_connection: Positive = 10
    live_max_groups: Positive = 1000
    # Each login's share, across every transport (live.quotas): well under the above.
    live_max_streams_per_user: Annotated[int, Field(ge=1, le=100_000)] = 100
    live_max_subscriptions_per_user: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    live_max_groups_per_user: Annotated[int, Field(ge=1, le=100_000)] = 50
    # SSE single-connection reservations (transport.streams.reservations).
    sse_reservation_seconds: Annotated[float, Field(ge=1, le=3600, allow_inf_nan=False)] = 60.0
    sse_max_reservations_per_user: Annotated[int, Field(ge=1, le=10_000)] = 10
    sse_reservation_inbox_commands: Annotated[int, Field(ge=1, le=100_000)] = 100
    sse_reservation_inbox_bytes: Annotated[int, Field(ge=1024, le=64 * 1024**2)] = 256 * 1024
    ws_max_message_bytes: Positive = 64 * 1024
    ws_send_backlog: Positive = 500
    # Bytes queued for one slow socket or stream, whatever its transport (live.connection).
    ws_send_backlog_bytes: Annotated[int, Field(ge=4096, le=1024**3)] = 1024 * 1024
    event_poll_seconds: Seconds = 1.0
    event_log_retention: Positive = 100_000
    replay_max_events: Positive = 10_000

    # Persisted documents (engine.persisted): APQ cache, and the trusted-documents manifest.
    persisted_queries: bool = True
    persisted_query_cache_bytes: Positive = 16 * 1024 * 1024
    persisted_query_ttl_seconds: Positive = 24 * 3600
    persisted_query_redis_prefix: Name = "gql_feed:apq:"
    trusted_documents: Path | None = None

    # Encoded answers to queries, kept until the next event (engine.response_cache); 0: off.
    response_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    # Queries that may start per turn of the event loop while a mutation runs (engine.priority):
    # 0.25 is one every fourth turn.
    reads_per_turn_while_writing: Annotated[float, Field(gt=0, le=1000)] = 0.25

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
