"""Mutation testing of the modules where a wrong line loses data or lets someone in.

`make mutation` (or `python -m tests.mutation.run tokens bus …`) runs cosmic-ray over one
module at a time, each against the few test files that cover it, so a run stays within
reason on a small machine: a mutant costs one pytest start and those tests only.

Each module is mutated in a copy of the working tree under a temporary folder (cosmic-ray
edits the file in place), so the checkout stays as it is and other test runs beside it
see no mutant. The copy's own `gql_feed` is what its tests and the servers they spawn
import (PYTHONPATH). The report of each module (score, and every surviving mutant with
its diff) is printed and kept in that folder.

Mutants of kinds that cannot change behaviour here are left out (see EXCLUDED).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Target:
    module: str
    tests: tuple[str, ...]
    pytest_args: tuple[str, ...] = ()


# The module, and the tests that cover it (SQLite and the memory bus where a test offers a
# choice, PostgreSQL only where the module's rule is about PostgreSQL).
TARGETS = {
    "admission": Target("gql_feed/engine/admission.py", ("tests/engine/test_admission.py",)),
    "tokens": Target("gql_feed/services/tokens.py", ("tests/services/test_tokens.py",)),
    "cost": Target(
        "gql_feed/engine/cost.py",
        ("tests/engine/test_query_cost.py",),
        ("-k", "not websocket and not responsive", "-m", "not postgres"),
    ),
    "response_cache": Target(
        "gql_feed/engine/response_cache.py",
        (
            "tests/engine/test_response_cache_units.py",
            "tests/engine/test_response_cache_flights.py",
            "tests/engine/test_response_cache_freshness.py",
        ),
    ),
    "payload": Target("gql_feed/events/payload.py", ("tests/events/test_event_payload.py",)),
    "hub": Target(
        "gql_feed/events/hub.py",
        ("tests/events/test_event_hub.py", "tests/events/test_event_payload.py"),
        ("-m", "not postgres and not redis"),
    ),
    "bus": Target(
        "gql_feed/events/bus.py",
        (
            "tests/events/test_bus_large_events.py",
            "tests/events/test_event_bus_publish.py",
            "tests/events/test_bus_backends.py",
            # Last: it waits out 6 s of silence, and a mutant the others kill never gets here.
            "tests/events/test_bus_silence.py",
        ),
        ("-k", "not redis"),
    ),
}

# Left out, by cosmic-ray operator name (regular expressions):
EXCLUDED = [
    # `X | None` in annotations, which are never evaluated (`from __future__ import
    # annotations`): every replacement of `|` is an equivalent mutant there.
    r"core/ReplaceBinaryOperator_BitOr_.*",
    # Arithmetic replaced by the exotic operators: a test that kills `+` -> `-` and `*`
    # kills these too, at eleven times the cost.
    r"core/ReplaceBinaryOperator_\w+_(BitAnd|BitOr|BitXor|LShift|RShift|Pow|Mod|FloorDiv|Div)$",
    # Identity for equality on small ints and strings, and `is None` for `== None`:
    # equivalent in CPython.
    r"core/ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Is|IsNot)$",
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Eq|NotEq)$",
    # Decorators here are @dataclass and @classmethod: removing one breaks every import.
    r"core/RemoveDecorator",
]


def copy_tree(into: Path) -> None:
    """The working tree's files (committed or not, ignored ones left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        source = ROOT / raw.decode()
        if source.is_file():
            target = into / raw.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def test_command(target: Target) -> list[str]:
    """The target's tests, run once per mutant, stopping at the first failure."""
    return [
        str(BIN / "python"),
        "-m",
        "pytest",
        "-x",
        "-q",
        "-n",
        "0",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *target.pytest_args,
        *target.tests,
    ]


def config(target: Target, work: Path, timeout: float) -> str:
    command = test_command(target)
    excluded = ", ".join(f"'{pattern}'" for pattern in EXCLUDED)
    return (
        "[cosmic-ray]\n"
        f'module-path = "{work / target.module}"\n'
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f'test-command = "{shlex.join(command).replace(chr(34), chr(92) + chr(34))}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )


def run(name: str, timeout: float) -> Path:
    target = TARGETS[name]
    work = Path(tempfile.mkdtemp(prefix=f"gql_feed-mutation-{name}-"))
    copy_tree(work)
    (work / "cosmic-ray.toml").write_text(config(target, work, timeout))
    env = {**os.environ, "PYTHONPATH": str(work)}
    env = {key: value for key, value in env.items() if not key.startswith("GQL_FEED_")}

    def tool(*args: str, output: Path | None = None) -> None:
        with open(output or os.devnull, "w") as out:
            subprocess.run(args, cwd=work, env=env, check=True, stdout=out)

    session = str(work / "session.sqlite")
    tool(str(BIN / "cosmic-ray"), "init", "cosmic-ray.toml", session)
    tool(str(BIN / "cr-filter-operators"), session, "cosmic-ray.toml")
    started = time.monotonic()
    tool(str(BIN / "cosmic-ray"), "exec", "cosmic-ray.toml", session)
    report = work / "report.txt"
    tool(str(BIN / "cr-report"), "--show-diff", "--surviving-only", session, output=report)
    print(f"== {name} ({target.module}), {time.monotonic() - started:.0f}s, in {work}")
    print(report.read_text())
    return report


def recheck(name: str, session: Path) -> None:
    """Each mutant that survived in `session`, applied to a fresh copy of today's tree and
    tested again: which the tests added since now kill, and which still survive."""
    target = TARGETS[name]
    work = Path(tempfile.mkdtemp(prefix=f"gql_feed-recheck-{name}-"))
    copy_tree(work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GQL_FEED_")}
    env["PYTHONPATH"] = str(work)
    dump = subprocess.run(
        [str(BIN / "cosmic-ray"), "dump", str(session)], capture_output=True, text=True, check=True
    ).stdout
    module = work / target.module
    original = module.read_text()
    command = test_command(target)
    for line in dump.splitlines():
        item, result = json.loads(line)
        if not result or result.get("test_outcome") != "survived":
            continue
        [mutation] = item["mutations"]
        operator, occurrence = mutation["operator_name"], str(mutation["occurrence"])
        subprocess.run(
            [str(BIN / "cosmic-ray"), "apply", str(module), operator, occurrence],
            cwd=work,
            check=True,
            capture_output=True,
        )
        try:
            tested = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        finally:
            module.write_text(original)
        verdict = "killed now" if tested.returncode != 0 else "still survives"
        print(f"{operator} {occurrence} (line {mutation['start_pos'][0]}): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(TARGETS)} (all)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument(
        "--recheck", type=Path, help="a session file: test its survivors again (one module)"
    )
    args = parser.parse_args()
    unknown = set(args.modules) - set(TARGETS)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}; choose from {sorted(TARGETS)}")
    if args.recheck is not None:
        [name] = args.modules
        recheck(name, args.recheck)
        return
    for name in args.modules or TARGETS:
        run(name, args.timeout)


if __name__ == "__main__":
    main()
