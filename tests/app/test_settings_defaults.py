"""The defaults the docs promise, for the waits that other tests run shorter.

A test that waits on a deadline, a keep-alive or an expiry sets it as short as its bound
allows, so the suite does not wait out real periods; here, once, each default is held to
what the docs say of it (docs/settings.md is generated from the code; the prose of the
other pages is not).
"""

from __future__ import annotations

import pytest

from gql_feed.config import Settings
from gql_feed.transport.streams import multipart

PROMISED = [
    # docs/security.md, "Slow requests": 10 s for headers, 60 s for a body.
    ("request_header_timeout_seconds", 10.0),
    ("request_body_timeout_seconds", 60.0),
    # docs/settings.md: the WebSocket ping and the SSE comment, every 15 s.
    ("ws_keepalive_seconds", 15.0),
    # docs/settings.md: a token lives an hour.
    ("token_ttl_seconds", 3600),
]


@pytest.mark.parametrize(("name", "promised"), PROMISED)
def test_a_setting_defaults_to_what_the_docs_say(name: str, promised: float) -> None:
    assert Settings.model_fields[name].default == promised


def test_the_multipart_heartbeat_is_every_five_seconds() -> None:
    """docs/transports.md: Apollo's heartbeat part `{}` goes out every 5 seconds."""
    assert multipart.HEARTBEAT_SECONDS == 5.0
