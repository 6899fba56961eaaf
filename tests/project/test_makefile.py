"""What `make run` and `make test` would do on a fresh clone (`make -n`: nothing runs).

`make run` installs the server's lock only; the development lock (pytest, mypy,
playwright…) is `make test`'s, which first says what the suite uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.paths import REPO
from tests.helpers.services import required

ROOT = REPO


def make() -> str:
    """make's path. Without it the tests that ask make skip, except under
    REQUIRE_SERVICES=1 (CI), where they fail instead of hiding."""
    path = shutil.which("make")
    if path is None:
        message = "make is not installed"
        if required():
            pytest.fail(message + " and REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)
    return path


def planned(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run with a virtual environment not yet made."""
    # Run by `make test` itself, an inner make would announce its directory first.
    outer = {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}
    env = {name: value for name, value in os.environ.items() if name not in outer}
    done = subprocess.run(
        [make(), "-n", target, f"VENV={tmp_path / 'fresh-venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return done.stdout


def test_make_run_installs_the_servers_lock_only(tmp_path: Path) -> None:
    commands = planned("run", tmp_path)
    # uv installs the lock, and pip installs uv: each from a lock with hashes.
    assert (
        "pip install -q --disable-pip-version-check --require-hashes -r requirements-installer.txt"
        in commands
    )
    assert "uv pip install -q --python" in commands
    assert "--require-hashes -r requirements.txt" in commands
    assert "requirements-dev.txt" not in commands
    # setuptools' boxed notice about editable installs is silenced, nothing else.
    assert "PYTHONWARNINGS='ignore:Editable installation'" in commands
    assert "gql-feed serve" in commands


def test_make_test_says_what_it_needs_then_installs_the_development_lock(tmp_path: Path) -> None:
    commands = planned("test", tmp_path).splitlines()
    assert "tools/test_needs.py" in commands[0]
    assert any("--require-hashes -r requirements-dev.txt" in line for line in commands)
    # Compiled ahead, once: where PYTHONDONTWRITEBYTECODE is set, each of the suite's
    # server processes would otherwise compile what it imports again.
    assert any("--compile-bytecode" in line and "requirements-dev.txt" in line for line in commands)
    assert any("compileall -q gql_feed" in line for line in commands)


def test_the_needs_are_said_in_words() -> None:
    done = subprocess.run(
        ["python3", str(ROOT / "tools" / "test_needs.py")], capture_output=True, text=True
    )
    assert done.returncode == 0
    for needed in ("PostgreSQL", "Redis", "Node.js and npm", "Chromium", "about 5 minutes"):
        assert needed in done.stdout
    assert "GQL_FEED_TEST_PG_HOST" in done.stdout
    assert "REQUIRE_SERVICES=1" in done.stdout
