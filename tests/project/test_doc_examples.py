"""Every shell example of the README and docs/ runs, exactly as written, against a real server.

The ```sh blocks of each page run in order in one bash, as a reader pasting them into one
terminal would, after the README's curl walk for a page of docs/ (its examples use the
walk's API and TOKEN, as they say), with PORT naming the test's server. A block that cannot run here says why on the line before it
(`<!-- not run by tests/project/test_doc_examples.py: … -->`): starting servers, a deployment.
A block fails when it exits non-zero, prints a Python traceback or a GraphQL error, or
does not show what it is there to show.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.paths import REPO
from tests.helpers.server import LiveServer, free_port

ROOT = REPO
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!-- not run by tests/project/test_doc_examples\.py: (.+) -->")
MARK = "::doc-example::"


@dataclass
class Block:
    page: Path
    line: int
    text: str
    skip: str | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def sh_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```sh":
            end = lines.index("```", index + 1)
            skip = SKIP.search(lines[index - 1]) if index else None
            text = "\n".join(lines[index + 1 : end])
            blocks.append(Block(page, index + 1, text, skip[1] if skip else None))
            index = end
        index += 1
    return blocks


def walk() -> Block:
    """The README's curl walk, which sets the API and TOKEN the other examples use."""
    return next(block for block in sh_blocks(README) if "TOKEN=$(" in block.text)


def run_page(
    blocks: list[Block], port: int, workdir: Path
) -> tuple[list[tuple[Block, int, str]], str]:
    """Runs the blocks in one bash: each one's exit status and output, and the stderr."""
    script = "".join(
        f"echo '{MARK}{number}'\n{block.text}\necho \"{MARK}status $?\"\n"
        for number, block in enumerate(blocks)
    )
    done = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], "HOME": str(workdir), "PORT": str(port)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    results = []
    for number, block in enumerate(blocks):
        part = done.stdout.split(f"{MARK}{number}\n", 1)[1].split(f"{MARK}status ", 1)
        assert len(part) == 2, f"{block} did not finish:\n{output}"
        status = int(part[1].split("\n", 1)[0])
        results.append((block, status, part[0]))
    return results, done.stderr


def check(block: Block, status: int, output: str) -> None:
    where = f"{block} printed:\n{output}"
    assert status == 0, where
    assert "Traceback" not in output, where
    assert "cannot connect" not in output, where
    assert '"errors"' not in output, where
    assert '"data"' in output, where
    for line in output.splitlines():
        if line.startswith("{"):  # a JSON answer stands on a line of its own
            assert line.rstrip().endswith("}"), where
    if "text/event-stream" in block.text and "-X DELETE" not in block.text:
        assert "event: next" in output, where
    if "multipart/mixed" in block.text:
        assert "--graphql" in output, where
        assert '{"payload":{"data":{"postEvents"' in output, where
    if "-X DELETE" in block.text:
        assert "POST: HTTP 202" in output, where
        assert "DELETE: HTTP 200" in output, where
        assert '"payload":{"data":{"postEvents"' in output, where
        assert "event: complete" in output, where


def live_connections(server: LiveServer) -> float:
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r"^gql_feed_live_connections (\S+)$", metrics, re.MULTILINE)
    assert found, metrics
    return float(found[1])


def test_every_sh_block_runs_or_says_why_not() -> None:
    blocks = [block for page in PAGES for block in sh_blocks(page)]
    assert len(blocks) >= 4
    for block in blocks:
        assert block.skip is None or block.skip.strip(), block
    assert [str(block) for block in blocks if block.skip is None], "nothing runs"


def runnable(page: Path) -> list[Block]:
    return [block for block in sh_blocks(page) if block.skip is None]


@pytest.mark.parametrize(
    "page", [page for page in PAGES if runnable(page)], ids=lambda page: page.name
)
def test_the_examples_run_against_a_real_server(
    page: Path, live_server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    blocks = runnable(page)
    if page != README:
        # "Uses API and TOKEN from the curl walk in README.md: run it first, in the same shell."
        blocks = [walk(), *blocks]
    server = live_server_factory()
    results, errors = run_page(blocks, server.port, tmp_path)
    for block, status, output in results:
        check(block, status, output)
    assert "curl: (" not in errors, errors
    assert "Traceback" not in errors, errors
    # The background stream of the single-connection example was stopped, not left running.
    deadline = time.monotonic() + 10
    while live_connections(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_connections(server) == 0


def test_the_walk_says_cannot_connect_on_a_wrong_port(tmp_path: Path) -> None:
    [(_, _, output)], errors = run_page([walk()], free_port(), tmp_path)
    output += errors
    assert "cannot connect to http://127.0.0.1:" in output
    assert "Traceback" not in output
