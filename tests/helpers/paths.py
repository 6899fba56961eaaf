"""Where things are in the checkout, wherever the test that asks is laid out."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CLIENTS = REPO / "tests" / "clients"
