"""docs/settings.md and docs/errors.md are generated from the code, and stay so.

`make docs` (tools/gen_docs.py) writes them; these tests fail when either differs from
what the code says now, and when the code sends an error code nobody described.
"""

from __future__ import annotations

import ast

import pytest

from gql_feed.live.close_codes import CloseCode
from tools import error_codes, gen_docs


def test_the_generated_pages_match_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    status = gen_docs.main(["--check"])
    assert status == 0, capsys.readouterr().err + " (run `make docs` and commit the result)"


def test_every_setting_is_documented_with_its_bounds() -> None:
    page = (gen_docs.DOCS / "settings.md").read_text()
    for name in gen_docs.Settings.model_fields:
        assert f"| `GQL_FEED_{name.upper()}` |" in page
    assert "| `GQL_FEED_PORT` | `8000` | ≥ 1, ≤ 65535 |" in page
    assert "| `GQL_FEED_KNOWN_USER_TTL_SECONDS` | `30.0` | > 0, ≤ 86400 |" in page
    assert "one of `critical`, `error`, `warning`, `info`, `debug`, `trace`" in page


def test_a_setting_without_a_description_stops_the_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    field = gen_docs.Settings.model_fields["port"]
    monkeypatch.setattr(field, "description", None)
    with pytest.raises(SystemExit, match="'port' has no description"):
        gen_docs.settings_page()


def test_every_code_the_source_sends_is_described() -> None:
    sent = error_codes.sent_codes()
    assert set(sent) == set(error_codes.ERROR_CODES)
    # The codes raised as exception classes and as literal dicts are both found.
    assert "services/errors.py" in sent["UNAUTHENTICATED"]
    assert "transport/streams/multipart.py" in sent["SLOW_CONSUMER"]
    page = (gen_docs.DOCS / "errors.md").read_text()
    for code in sent:
        assert f"| `{code}` |" in page


def test_an_undescribed_code_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    codes = dict(error_codes.ERROR_CODES)
    del codes["SLOW_CONSUMER"]
    monkeypatch.setattr(gen_docs, "ERROR_CODES", codes)
    with pytest.raises(SystemExit, match="describe SLOW_CONSUMER"):
        gen_docs.errors_page()


def test_what_counts_as_sending_a_code() -> None:
    source = """
class Refused(FeedError):
    code = "NEW_REFUSAL"
TOO_BIG_CODE = "TOO_BIG"
ENDING_CODES = {1: "ENDED_ONE"}
answer = {"extensions": {"code": "IN_A_DICT" if x else "OTHER_BRANCH"}}
raise HttpRefusal(400, "AS_AN_ARGUMENT", "message")
if refusal.code == "ONLY_COMPARED":
    MESSAGE = "NOT_A_CODE_EITHER"
"""
    assert error_codes._sent_in(ast.parse(source)) == {
        "NEW_REFUSAL",
        "TOO_BIG",
        "ENDED_ONE",
        "IN_A_DICT",
        "OTHER_BRANCH",
        "AS_AN_ARGUMENT",
    }


def test_every_close_code_is_in_the_close_codes_page() -> None:
    """docs/close-codes.md is written by hand: it must still name every code the server uses."""
    page = (gen_docs.DOCS / "close-codes.md").read_text()
    for code in CloseCode:
        if code != CloseCode.NORMAL:
            assert f"| {int(code)} |" in page, code
