"""Real PostgreSQL and Redis for tests: a fresh database or channel each, never a mock.

A test that needs one skips when it is not running, except under REQUIRE_SERVICES=1
(CI), where a missing service fails the test instead of hiding it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_HOST = os.environ.get("GQL_FEED_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("GQL_FEED_TEST_PG_PORT", "5432"))
POSTGRES_USER = os.environ.get("GQL_FEED_TEST_PG_USER", "postgres")
REDIS_HOST = os.environ.get("GQL_FEED_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("GQL_FEED_TEST_REDIS_PORT", "6379"))


def required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(name: str, host: str, port: int) -> None:
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if required():
        pytest.fail(message + " and REQUIRE_SERVICES=1")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create a database of our own and drop it afterwards; yields its asyncpg URL."""
    need("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    import asyncio

    import asyncpg

    name = f"gql_feed_test_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def redis_url() -> str:
    need("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def postgres_notify_url(database_url: str) -> str:
    """broadcaster's postgres:// backend (LISTEN/NOTIFY) for a SQLAlchemy URL."""
    return database_url.replace("postgresql+asyncpg://", "postgres://")


def unique_channel() -> str:
    return f"gql_feed_test_{uuid.uuid4().hex[:12]}"
