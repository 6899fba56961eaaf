"""GraphiQL is served from the package: no external URL, every vendored file matching the
integrity hash the page gives it, and a Content-Security-Policy that allows this server's
own scripts only. (tests/e2e/test_graphiql_browser.py runs it in a browser.)"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx

from gql_feed.transport.http.graphiql import PAGE

ASSET = re.compile(r'(?:src|href)="(static/[^"]+)"(?:\s+integrity="(sha384-[^"]+)")?')


async def test_graphiql_page_and_its_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    page = response.text
    assert page == PAGE.read_text()
    assert "https://" not in page
    assert "http://" not in page
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "unsafe-eval" not in policy
    assets = ASSET.findall(page)
    assert len(assets) == 6
    for path, integrity in assets:
        served = await client.get("/" + path)
        assert served.status_code == 200, path
        if "/vendor/" in path:
            digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
            assert integrity == f"sha384-{digest}", path
    assert "<script>" not in page  # no inline script: the policy would refuse it


def test_vendored_files_are_listed_with_their_hashes() -> None:
    vendor = PAGE.parent / "vendor"
    readme = (vendor / "README.md").read_text()
    for path in sorted(vendor.glob("*.*")):
        if path.suffix in (".js", ".css"):
            digest = base64.b64encode(hashlib.sha384(Path(path).read_bytes()).digest()).decode()
            assert digest in readme, path.name
