"""Compare the running environment with a lock file (requirements*.txt from `make lock`).

    python tools/lock_diff.py requirements-dev.txt           # list the differences
    python tools/lock_diff.py --exact requirements-dev.txt   # and fail if there are any

`make test-latest` uses it to say which releases it tests beyond the lock; `--exact`
shows that a venv holds the locked versions and nothing else.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib.metadata import distributions
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
OWN = "gql-feed"


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        found = PIN.match(line)
        if found:
            pins[normal(found.group(1))] = found.group(2)
    return pins


def installed() -> dict[str, str]:
    return {normal(dist.metadata["Name"]): dist.version for dist in distributions()}


def differences(pins: dict[str, str], present: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(pins.keys() | present.keys() - {OWN}):
        want, have = pins.get(name), present.get(name)
        if want == have:
            continue
        if have is None:
            lines.append(f"{name}: locked {want}, not installed")
        elif want is None:
            lines.append(f"{name}: not in the lock, installed {have}")
        else:
            lines.append(f"{name}: locked {want}, installed {have}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--exact", action="store_true", help="exit 1 on any difference")
    args = parser.parse_args()
    pins = locked(args.lock)
    present = installed()
    lines = differences(pins, present)
    for line in lines:
        print(line)
    differ = sum(1 for name, version in pins.items() if present.get(name) != version)
    extra = len(present.keys() - pins.keys() - {OWN})
    print(
        f"{differ} of {len(pins)} locked distributions differ from {args.lock}; "
        f"{extra} installed distributions are not in it"
    )
    if sys.prefix == sys.base_prefix:
        # The system Python holds whatever the system installed: a comparison says little.
        print(
            f"{sys.executable} is not a virtual environment: run this with the venv's "
            "Python (.venv/bin/python tools/lock_diff.py …)",
            file=sys.stderr,
        )
    return 1 if args.exact and lines else 0


if __name__ == "__main__":
    sys.exit(main())
