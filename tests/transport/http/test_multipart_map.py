"""Malformed GraphQL multipart requests, against a real server: a `map` path through a
null, into a string, past a batch's end or not a string at all; a `map` or `operations`
of the wrong shape; a missing file part; more than 1,000 files; a field over 1 MB. Each
is a JSON 400 with `BAD_REQUEST`, stores nothing, and logs no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.server import LiveServer, png_bytes

CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { id title } }"
ONE = {
    "query": CREATE,
    "variables": {"i": {"title": "Mapped", "content": "Some body", "image": None}},
}
NULL_INPUT = {"query": CREATE, "variables": {"i": None}}
IMAGE = ("image.png", png_bytes(), "image/png")

# name -> (operations field, map field, file parts); a str is sent as is, anything else
# as its JSON.
CASES: dict[str, tuple[object, object, dict[str, Any]]] = {
    "path through a null": (NULL_INPUT, {"0": ["variables.i.image"]}, {"0": IMAGE}),
    "path past a null": (ONE, {"0": ["variables.i.image.x"]}, {"0": IMAGE}),
    "path into a string": (ONE, {"0": ["variables.i.title.0"]}, {"0": IMAGE}),
    "path into a string's key": (ONE, {"0": ["query.x"]}, {"0": IMAGE}),
    "path to a missing variable": (ONE, {"0": ["variables.j.image"]}, {"0": IMAGE}),
    "path with an empty step": (ONE, {"0": ["variables..image"]}, {"0": IMAGE}),
    "number as a path": (ONE, {"0": [1]}, {"0": IMAGE}),
    "null as a path": (ONE, {"0": [None]}, {"0": IMAGE}),
    "object as a path": (ONE, {"0": [{"a": 1}]}, {"0": IMAGE}),
    "paths not a list": (ONE, {"0": "variables.i.image"}, {"0": IMAGE}),
    "map is a list": (ONE, [["variables.i.image"]], {"0": IMAGE}),
    "map is a string": (ONE, json.dumps("variables.i.image"), {"0": IMAGE}),
    "map is null": (ONE, None, {"0": IMAGE}),
    "map is not JSON": (ONE, "{not json", {"0": IMAGE}),
    "map names a missing part": (ONE, {"1": ["variables.i.image"]}, {"0": IMAGE}),
    "map names a text field": (ONE, {"operations": ["variables.i.image"]}, {"0": IMAGE}),
    "operations not JSON": ("{not json", {"0": ["variables.i.image"]}, {"0": IMAGE}),
    "operations a number": (3, {"0": ["variables.i.image"]}, {"0": IMAGE}),
    "operations nested too deep": ("[" * 5000 + "]" * 5000, {}, {}),
    "batch index out of range": ([ONE], {"0": ["1.variables.i.image"]}, {"0": IMAGE}),
    "batch index too large": ([ONE], {"0": ["99999999999999999999.variables.i"]}, {"0": IMAGE}),
    "batch index negative": ([ONE], {"0": ["-1.variables.i.image"]}, {"0": IMAGE}),
    "batch index not a number": ([ONE], {"0": ["first.variables.i.image"]}, {"0": IMAGE}),
    "index into a single operation": (ONE, {"0": ["0.variables.i.image"]}, {"0": IMAGE}),
    "path replacing the query": (ONE, {"0": ["query"]}, {"0": IMAGE}),
    "path replacing the variables": (ONE, {"0": ["variables"]}, {"0": IMAGE}),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("multipart"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(server: LiveServer) -> str:
    return server.signup_and_login()[0]


def field(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def post(server: LiveServer, token: str, data: dict[str, str], files: Any) -> httpx.Response:
    return httpx.post(
        server.graphql_url,
        data=data,
        files=files,
        headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"},
        timeout=60,
    )


def stored_files(server: LiveServer) -> set[str]:
    return {path.name for path in Path(server.env["GQL_FEED_UPLOAD_DIR"]).iterdir()}


def total_posts(server: LiveServer, token: str) -> int:
    count: int = server.graphql("{ posts { totalPosts } }", token=token)["data"]["posts"][
        "totalPosts"
    ]
    return count


def assert_bad_request(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_REQUEST"], body
    return body


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_multipart_is_a_json_400(server: LiveServer, token: str, case: str) -> None:
    operations, files_map, parts = CASES[case]
    before = (total_posts(server, token), stored_files(server))
    response = post(
        server, token, {"operations": field(operations), "map": field(files_map)}, parts
    )
    assert_bad_request(response)
    assert (total_posts(server, token), stored_files(server)) == before
    assert "Traceback" not in server.log(), server.log()[-4000:]


def test_a_missing_operations_or_map_field(server: LiveServer, token: str) -> None:
    for data in ({"map": "{}"}, {"operations": field(ONE)}):
        body = assert_bad_request(post(server, token, data, {"0": IMAGE}))
        assert "field" in body["errors"][0]["message"]
    # `operations` sent as a file part instead of a text field.
    files = {"operations": ("o.json", field(ONE).encode(), "application/json"), "0": IMAGE}
    assert_bad_request(post(server, token, {"map": field({"0": ["variables.i.image"]})}, files))
    assert "Traceback" not in server.log()


def test_more_than_1000_files(server: LiveServer, token: str) -> None:
    files = [(str(index), ("f.png", b"x", "image/png")) for index in range(1001)]
    response = post(
        server, token, {"operations": field(ONE), "map": field({"0": ["variables.i.image"]})}, files
    )
    body = assert_bad_request(response)
    assert "files" in body["errors"][0]["message"]
    assert "Traceback" not in server.log()


def test_a_text_field_over_1_mb(server: LiveServer, token: str) -> None:
    padded = {**ONE, "variables": {"i": {**ONE["variables"]["i"], "content": "x" * 1_100_000}}}  # type: ignore[dict-item]
    response = post(
        server,
        token,
        {"operations": field(padded), "map": field({"0": ["variables.i.image"]})},
        {"0": IMAGE},
    )
    body = assert_bad_request(response)
    assert "size" in body["errors"][0]["message"]
    assert "Traceback" not in server.log()


def test_well_formed_requests_still_work(server: LiveServer, token: str) -> None:
    """One operation, and a batch whose second operation gets the file."""
    single = post(
        server,
        token,
        {"operations": field(ONE), "map": field({"0": ["variables.i.image"]})},
        {"0": IMAGE},
    )
    assert single.json()["data"]["createPost"]["title"] == "Mapped", single.text
    titled = {**ONE, "variables": {"i": {**ONE["variables"]["i"], "title": "Second"}}}  # type: ignore[dict-item]
    batch = post(
        server,
        token,
        {
            "operations": field([{"query": "{ posts { totalPosts } }"}, titled]),
            "map": field({"0": ["1.variables.i.image"]}),
        },
        {"0": IMAGE},
    )
    results = batch.json()
    assert results[1]["data"]["createPost"]["title"] == "Second", results
