"""An OTLP/HTTP receiver that keeps nothing: it reads each export, counts its bytes and
answers 200, as a collector would. For benchmarks with tracing on, so that the server
pays for building and sending its spans and nothing else.

python bench/otlp_sink.py [--port 4318]   # then OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    received = 0  # bytes of every export, across requests

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Sink.received += len(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def start(port: int = 0) -> ThreadingHTTPServer:
    """A sink serving on a thread of this process; `server_address[1]` is its port."""
    sink = ThreadingHTTPServer(("127.0.0.1", port), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    return sink


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        ThreadingHTTPServer(("127.0.0.1", args.port), Sink).serve_forever()
    finally:  # what was sent, to show that spans really were exported
        print(f"otlp_sink: {Sink.received / 1024:.1f} KiB received", flush=True)


if __name__ == "__main__":
    main()
