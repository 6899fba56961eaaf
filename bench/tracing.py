"""Tracing off, and on at 100 % and 1 % sampling: reads per second and fan-out latency.

For each mode a fresh server (tracing set up from the standard OTEL_* variables) exports
over OTLP/HTTP in batches, as a deployment sends to its collector, to a sink in this
process that answers every export and discards it (`otlp_sink.py`). Printed side by side:
`posts(page)` read throughput with the response cache on (kept answers) and off (every
read executed), and `fanout.py`'s fan-out figures (a createPost reaching N WebSocket
subscribers: completion median, delivery p50/p99). The sink's span bytes show that the
spans were really sent.

python bench/tracing.py [--seconds 3] [--concurrency 16] [--n 500] [--events 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import Server, login
from http_throughput import PAGE, measure
from otlp_sink import Sink, start

HERE = Path(__file__).parent


def modes(sink_url: str) -> dict[str, dict[str, str]]:
    on = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    }
    return {
        "off": {},
        "on 100%": {**on, "OTEL_TRACES_SAMPLER_ARG": "1.0"},
        "on 1%": {**on, "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    }


async def reads(url: str, seconds: float, concurrency: int) -> float:
    token = login(url)
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def page(_: int) -> None:
            body = (await http.post("/graphql", json={"query": PAGE})).json()
            if "errors" in body:
                raise RuntimeError(body["errors"])

        result = await measure("posts(page)", seconds, concurrency, page)
    return float(result["requests_per_s"])


def fanout(url: str, n: int, events: int) -> dict[str, float]:
    command = [sys.executable, str(HERE / "fanout.py"), "--url", url, "--n", str(n)]
    done = subprocess.run(
        [*command, "--events", str(events), "--procs", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_mode(env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    server = Server(env)
    try:
        figures["cached reads/s"] = asyncio.run(reads(server.url, args.seconds, args.concurrency))
        result = fanout(server.url, args.n, args.events)
        figures["fan-out done median ms"] = result["fanout_done_median_ms"]
        figures["delivery p50 ms"] = result["p50_ms"]
        figures["delivery p99 ms"] = result["p99_ms"]
        figures["createPost ms"] = result["trigger_median_ms"]
    finally:
        server.stop()
    server = Server({**env, "GQL_FEED_RESPONSE_CACHE_BYTES": "0"})
    try:
        figures["executed reads/s"] = asyncio.run(reads(server.url, args.seconds, args.concurrency))
    finally:
        server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="per read measure")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--n", type=int, default=500, help="live subscribers")
    parser.add_argument("--events", type=int, default=10)
    args = parser.parse_args()

    sink = start()
    results: dict[str, dict[str, float]] = {}
    for name, env in modes(f"http://127.0.0.1:{sink.server_address[1]}").items():
        before = Sink.received
        results[name] = run_mode(env, args)
        results[name]["span KB exported"] = round((Sink.received - before) / 1024, 1)
    sink.shutdown()

    names = list(results)
    rows = list(results[names[0]])
    print(f"{'':<24}" + "".join(f"{name:>12}" for name in names))
    for row in rows:
        print(f"{row:<24}" + "".join(f"{results[name][row]:>12}" for name in names))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
