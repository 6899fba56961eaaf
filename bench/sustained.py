"""Sustained fan-out: a steady stream of posts to N live subscribers; does a backlog build?

One event to N sockets measures a burst. A busy feed is a stream: posts keep coming while
earlier fan-outs are still being written. For each subprotocol and each rate R, this
starts a fresh server (one process; or `--workers 2` on a Redis bus of its own, with a
fresh PostgreSQL database when one runs on 127.0.0.1:5432), opens N subscribers and
fires R createPost a second for `--seconds` seconds without waiting for each fan-out,
through the shared reference harness (`fanout.mjs` in ../shared/bench-peers, the same
clients that measure Socket.IO and the limit probe), so the figures sit beside theirs.

    python bench/sustained.py [--n 2000] [--rates 10,20,40] [--seconds 10]
                              [--protos graphql-transport-ws,graphql-ws] [--workers 2]

Prints per run: delivery p50/p99/max over all N x R x S deliveries, the last event's p99
(a growing backlog shows here first), lost deliveries (must be 0), the server's peak RSS
(all its processes), the CPU seconds the server used over the whole run (connecting N,
warm-up and stream: the figure to compare two builds by on a busy machine), frames per
transport write (above 1 when coalescing saved system calls), and createPost's own round
trip, measured by one extra createPost a second beside the stream (one more event a
second).

The harness needs its Node packages: run `../shared/bench-peers/compare.sh` once (it
installs them under /tmp/bench-peers), or point `--harness` / BENCH_PEERS_DIR at a
folder holding fanout.mjs and its node_modules.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    Server,
    create_post_form,
    login,
    percentile,
    process_tree,
    tree_cpu_s,
    tree_rss_mb,
)
from soak import Broker, drop_database, fresh_database

HERE = Path(__file__).resolve().parent
SHARED_HARNESS = HERE.parent.parent.parent / "shared" / "bench-peers"


class Sampler(threading.Thread):
    """Peak server RSS, and createPost round trips beside the stream, once a second."""

    def __init__(self, server: Server, token: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.token = token
        self.stopping = threading.Event()
        self.peak_rss_mb = 0.0
        self.trips_ms: list[float] = []
        self.cpu_s = 0.0
        self.failures = 0

    def run(self) -> None:
        headers = {"authorization": f"Bearer {self.token}", "apollo-require-preflight": "true"}
        with httpx.Client(headers=headers, timeout=120) as http:
            next_post = time.monotonic()
            count = 0
            while not self.stopping.is_set():
                self.peak_rss_mb = max(self.peak_rss_mb, tree_rss_mb(self.server.process.pid))
                self.cpu_s = tree_cpu_s(self.server.process.pid)
                if time.monotonic() >= next_post:
                    data, files = create_post_form(f"beside-{count}")
                    count += 1
                    started = time.monotonic()
                    try:
                        body = http.post(f"{self.server.url}/graphql", data=data, files=files)
                        if "errors" in body.json():
                            self.failures += 1
                    except httpx.HTTPError:
                        self.failures += 1
                    self.trips_ms.append((time.monotonic() - started) * 1000)
                    next_post += 1.0
                self.stopping.wait(0.2)


def frames_per_write(url: str) -> float | None:
    """Frames per transport write (one worker's /metrics): how much coalescing saved."""
    values: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("gql_feed_live_direct_"):
            values[name] = float(value)
    writes = values.get("gql_feed_live_direct_writes_total")
    if not writes:
        return None  # the ordinary send path (another implementation, or deflate)
    return round(values["gql_feed_live_direct_frames_total"] / writes, 2)


def harness_dir(given: str | None) -> Path:
    """Where fanout.mjs and its node_modules are (a copy next to them, if need be)."""
    folder = Path(given or os.environ.get("BENCH_PEERS_DIR", "/tmp/bench-peers"))
    if not (folder / "node_modules" / "ws").is_dir():
        raise SystemExit(
            f"No harness packages in {folder}: run ../shared/bench-peers/compare.sh once, "
            "or pass --harness DIR (a folder with fanout.mjs and its node_modules)."
        )
    if SHARED_HARNESS.is_dir():
        (folder / "fanout.mjs").write_bytes((SHARED_HARNESS / "fanout.mjs").read_bytes())
    return folder


def one_run(args: argparse.Namespace, harness: Path, proto: str, rate: int) -> dict[str, Any]:
    broker = Broker() if args.workers > 1 else None
    env = {"GQL_FEED_ACCESS_LOG": "false", "GQL_FEED_WORKERS": str(args.workers)}
    database = None
    if broker is not None:
        # Several processes: a Redis bus, and PostgreSQL when it runs here (as the README
        # asks of several processes; SQLite otherwise, on one host it still works).
        env["GQL_FEED_BROADCAST_URL"] = broker.url
        url, database = fresh_database()
        if url:
            env["GQL_FEED_DATABASE_URL"] = url
    if args.implementation:
        env["GQL_FEED_WS_IMPLEMENTATION"] = args.implementation
    if args.deflate:
        env["GQL_FEED_WS_PER_MESSAGE_DEFLATE"] = "true"
    server = Server(env)
    try:
        token = login(server.url)
        sampler = Sampler(server, token)
        rss_before = tree_rss_mb(server.process.pid)
        cpu_before = tree_cpu_s(server.process.pid)
        command = [
            "node",
            "fanout.mjs",
            "--target", "gqlws", "--feed", "1", "--token", token, "--proto", proto,
            "--ws", server.url.replace("http", "ws", 1) + "/graphql",
            "--http", server.url + "/graphql",
            "--n", str(args.n), "--events", "1",
            "--rate", str(rate), "--seconds", str(args.seconds),
            "--timeout", str(args.timeout_ms),
        ]  # fmt: skip
        harness_process = subprocess.Popen(
            command, cwd=harness, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        sampler.start()
        out, err = harness_process.communicate()
        sampler.stopping.set()
        sampler.join()
        coalescing = frames_per_write(server.url)
    finally:
        workers = process_tree(server.process.pid)
        server.stop()
        for pid in workers[1:]:  # a worker the supervisor left behind, if any
            with contextlib.suppress(OSError):
                if b"gql_feed" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        if broker is not None:
            broker.stop()
        if database is not None:
            drop_database(database)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    figures = json.loads(lines[-1]) if lines else {}
    if not lines:
        # The harness gives up when a trigger fails (createPost refused or timed out).
        errors = [line for line in err.splitlines() if "Error" in line]
        print(f"harness failed ({proto}, R={rate}): {(errors or ['?'])[-1][:300]}", flush=True)
    trips = sampler.trips_ms or [0.0]
    return {
        "proto": proto,
        "workers": args.workers,
        "db": "postgresql" if database else "sqlite",
        "rate": rate,
        "p50_ms": figures.get("p50_ms"),
        "p99_ms": figures.get("p99_ms"),
        "max_ms": figures.get("max_ms"),
        "last_event_p99_ms": figures.get("last_event_p99_ms"),
        "lost": figures.get("lost"),
        "fire_s": figures.get("fire_seconds"),
        "server_cpu_s": round(sampler.cpu_s - cpu_before, 1),
        "frames_per_write": coalescing,
        "rss_mb": round(sampler.peak_rss_mb, 1),
        "rss_growth_mb": round(sampler.peak_rss_mb - rss_before, 1),
        "create_p50_ms": round(percentile(trips, 50), 1),
        "create_max_ms": round(max(trips), 1),
        "create_failed": sampler.failures,
        # Subscribers the server closed (the harness reports each: 1013, 1011 …).
        "closed": sum(1 for line in err.splitlines() if line.startswith("closed ")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rates", default="10,20,40", help="createPost a second, comma separated")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--protos", default="graphql-transport-ws,graphql-ws")
    parser.add_argument("--workers", type=int, default=1, help=">1 runs on a Redis bus of its own")
    parser.add_argument("--implementation", choices=["websockets-sansio", "websockets"])
    parser.add_argument("--deflate", action="store_true", help="per-message deflate on")
    parser.add_argument("--harness", help="folder with fanout.mjs and its node_modules")
    parser.add_argument("--timeout-ms", type=int, default=120_000)
    args = parser.parse_args()
    harness = harness_dir(args.harness)
    results = []
    for proto in args.protos.split(","):
        for rate in (int(r) for r in args.rates.split(",")):
            result = one_run(args, harness, proto, rate)
            results.append(result)
            print(json.dumps(result), flush=True)
    keys = list(results[0])
    widths = [max(len(key), *(len(str(r[key])) for r in results)) for key in keys]
    print("  ".join(key.rjust(w) for key, w in zip(keys, widths, strict=True)))
    for result in results:
        print("  ".join(str(result[k]).rjust(w) for k, w in zip(keys, widths, strict=True)))


if __name__ == "__main__":
    main()
