"""Times a new user's first start: `git clone`, then `make run`, to the first 200 on /health.

    python3 tools/first_start.py [--repo PATH_OR_URL] [--plain-pip] [--keep]

The clone goes to a fresh temporary folder and pip and uv run without their caches
(PIP_NO_CACHE_DIR=1, UV_NO_CACHE=1), so every dependency is downloaded again, as on a
machine that never installed them. Prints the seconds to the clone, to the end of the
install (the server's first log line) and to the first 200, then stops the server; and
the CPU time make, pip and uv used, since on a shared, busy machine the wall time says
more about the neighbours than about the install. `--plain-pip` ignores this machine's
pip and uv configuration (extra indexes, find-links), so both read PyPI alone, as on a
machine set up by no one. Standard library only, like a fresh
machine.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d ", re.MULTILINE)  # the server's first log line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(HERE), help="what to clone (default: this one)")
    parser.add_argument("--keep", action="store_true", help="leave the clone in place")
    parser.add_argument("--plain-pip", action="store_true", help="ignore local pip settings")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="gql_feed-first-start-"))
    clone = folder / "gql_feed"
    port = free_port()
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "UV_NO_CACHE": "1", "PYTHONPATH": ""}
    if args.plain_pip:
        env = {k: v for k, v in env.items() if not k.startswith(("PIP_", "UV_"))}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", UV_NO_CACHE="1")
    started = time.monotonic()
    subprocess.run(["git", "clone", "-q", args.repo, str(clone)], check=True)  # noqa: S603, S607
    cloned = time.monotonic() - started
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    log_path = folder / "make-run.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603
            ["make", "run", f"PORT={port}"],  # noqa: S607
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    installed = None
    try:
        while not healthy(port):
            if server.poll() is not None or time.monotonic() - started > args.timeout:
                sys.stdout.write(log_path.read_text(errors="replace"))
                print("make run exited or timed out before answering", file=sys.stderr)
                return 1
            if installed is None and LOG_LINE.search(log_path.read_text(errors="replace")):
                installed = time.monotonic() - started
            time.sleep(0.05)
        first_200 = time.monotonic() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"clone:        {cloned:6.1f} s")
    if installed is not None:
        print(f"installed:    {installed:6.1f} s  (the server's first log line)")
    print(f"first 200:    {first_200:6.1f} s  (GET /health on port {port})")
    print(f"CPU time:     {cpu:6.1f} s  (make and the processes it waited for)")
    print(f"load average: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    print("make run's output:")
    for line in log_path.read_text(errors="replace").splitlines():
        print(f"  {line}")
    if args.keep:
        print(f"kept in {folder}")
    else:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
