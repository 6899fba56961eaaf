"""The security headers of the web client's page (`/`).

The page is static: its scripts and styles come from `/static`, it talks to `/graphql`
(fetch and WebSocket) on its own origin, and shows images from `/uploads`, which the API
names by absolute URL (`GQL_FEED_PUBLIC_URL`, which may be another origin). The policy
allows exactly that, so an injected `<script>`, inline handler or style cannot run, no
other site can frame the page (clickjacking), and no URL leaks to other sites in a
Referer. GraphiQL, at GET /graphql, loads its code from a CDN and is left out of it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gql_feed.config import Settings


def page_headers(settings: Settings) -> dict[str, str]:
    images = " ".join(dict.fromkeys(["'self'", _origin(settings.base_url), "blob:", "data:"]))
    policy = "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",  # blob: previews the chosen file; data: the empty icon
            "connect-src 'self'",  # fetch and the WebSocket (CSP 3: 'self' covers ws/wss)
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
