"""GraphiQL, served from this package: no CDN, so it works on a machine without internet.

The page (`web/graphiql/index.html`) loads vendored, integrity-checked builds of GraphiQL
and React from `/static/graphiql/`, plus a small script of ours: a sign-up and login bar, and a
fetcher that streams subscriptions over Server-Sent Events with the user's token. Its
Content-Security-Policy allows this server's own scripts and connections only; GraphiQL's
editor sets style attributes, hence `'unsafe-inline'` for styles (never for scripts).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.responses import HTMLResponse

PAGE = Path(__file__).resolve().parents[2] / "web" / "graphiql" / "index.html"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


@cache
def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def graphiql_response() -> HTMLResponse:
    return HTMLResponse(
        _page(),
        headers={
            "content-security-policy": CONTENT_SECURITY_POLICY,
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
        },
    )
