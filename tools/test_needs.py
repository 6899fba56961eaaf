"""Says, before `make test` installs or runs anything, what the suite uses and how long it takes.

Standard library only: it runs with the system Python, before the virtual environment
exists. Each service is looked for where the tests look (tests/helpers/services.py and friends),
with the same variables, so what it reports is what the suite will find. It never fails:
a missing service skips the tests that need it (REQUIRE_SERVICES=1 fails them instead).
"""

from __future__ import annotations

import os
import shutil
import socket


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def checks() -> list[tuple[str, bool, str]]:
    """(what, found, where and which variables point at it) for each thing the suite uses."""
    pg_host = os.environ.get("GQL_FEED_TEST_PG_HOST", "127.0.0.1")
    pg_port = int(os.environ.get("GQL_FEED_TEST_PG_PORT", "5432"))
    pg_user = os.environ.get("GQL_FEED_TEST_PG_USER", "postgres")
    redis_host = os.environ.get("GQL_FEED_TEST_REDIS_HOST", "127.0.0.1")
    redis_port = int(os.environ.get("GQL_FEED_TEST_REDIS_PORT", "6379"))
    return [
        (
            "PostgreSQL",
            reachable(pg_host, pg_port),
            f"{pg_user}@{pg_host}:{pg_port}, trust login, creates and drops its own databases "
            "(GQL_FEED_TEST_PG_HOST, GQL_FEED_TEST_PG_PORT, GQL_FEED_TEST_PG_USER)",
        ),
        (
            "Redis",
            reachable(redis_host, redis_port),
            f"{redis_host}:{redis_port}, keys and channels of its own "
            "(GQL_FEED_TEST_REDIS_HOST, GQL_FEED_TEST_REDIS_PORT)",
        ),
        (
            "redis-server",
            shutil.which("redis-server") is not None,
            "on PATH: the broker-restart tests start one of their own",
        ),
        (
            "Node.js and npm",
            shutil.which("node") is not None and shutil.which("npm") is not None,
            "on PATH: the Apollo Client, graphql-ws and graphql-sse client tests (`npm ci` once)",
        ),
        (
            "Chromium",
            shutil.which("chromium") is not None,
            "chromium on the PATH (as tests/helpers/browser.py finds it): the browser tests "
            "(web client, GraphiQL) through Playwright",
        ),
    ]


def main() -> None:
    print("make test: ruff, mypy, then the whole suite; about 5 minutes on two cores,")
    print("more on busy ones.")
    print("One file instead (after a first `make test`):")
    print("  .venv/bin/pytest tests/services/test_posts.py")
    print("It uses, where found (the tests needing one that is missing are skipped;")
    print("REQUIRE_SERVICES=1 makes them fail instead):")
    for name, found, where in checks():
        print(f"  [{'found' if found else 'MISSING'}] {name}: {where}")
    print()


if __name__ == "__main__":
    main()
