"""Resume stress: resumes racing writes through two servers, the CPU deliberately contended.

    python bench/resume_stress.py [--rounds 200] [--writes 8] [--busy N] [--bus redis postgres]

Two `gql-feed serve` processes share a fresh PostgreSQL database and a bus (Redis, or
PostgreSQL LISTEN/NOTIFY); `--busy` pure-Python loops (one per core by default) compete
with them for the CPU. One reader resumes with `postEvents(after: <last id it got>)` on
A, then B, then A…, while two writers make `--writes` changes per round through both;
every other round drops the reader mid-stream, the rest wait for every event (at most
`--settle` seconds: the servers poll the log only once a minute, so the poll rescues
nothing). Prints resumes x writes, lost, duplicated and out of order for each bus (all
must be 0; the exit status is 1 otherwise). Needs PostgreSQL and Redis on 127.0.0.1.
The short form runs in the suite: tests/live/test_resume_stress.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.resume_stress import STRESS_ENV, StressResult, busy_cpu, resume_stress
from tests.helpers.server import LiveServer
from tests.helpers.services import (
    fresh_postgres_database,
    postgres_notify_url,
    redis_url,
    unique_channel,
)


def run(bus: str, rounds: int, writes: int, busy: int, settle: float) -> StressResult:
    with fresh_postgres_database() as database_url:
        env = {
            "GQL_FEED_DATABASE_URL": database_url,
            "GQL_FEED_BROADCAST_URL": redis_url()
            if bus == "redis"
            else postgres_notify_url(database_url),
            "GQL_FEED_BROADCAST_CHANNEL": unique_channel(),
            **STRESS_ENV,
        }
        servers: list[LiveServer] = []
        try:
            for _ in range(2):  # one after the other: the first migrates the database
                server = LiveServer(Path(tempfile.mkdtemp(prefix="gql_feed_stress_")), env)
                servers.append(server)
                server.start()
            token, _ = servers[0].signup_and_login()
            with busy_cpu(busy):
                return asyncio.run(
                    resume_stress((servers[0], servers[1]), token, rounds, writes, settle)
                )
        finally:
            for server in servers:
                server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="resumes per bus")
    parser.add_argument("--writes", type=int, default=8, help="changes per round")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait per round")
    parser.add_argument("--bus", nargs="+", default=["redis", "postgres"])
    args = parser.parse_args()
    print(f"{args.busy} busy processes beside the servers, {os.cpu_count()} cores")
    failed = False
    for bus in args.bus:
        result = run(bus, args.rounds, args.writes, args.busy, args.settle)
        print(result.line(bus), flush=True)
        if result.lost or result.duplicated or result.out_of_order or result.problems:
            failed = True
            print(f"  lost {result.lost[:20]} duplicated {result.duplicated[:20]}")
            for problem in result.problems[:5]:
                print(f"  {problem}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
