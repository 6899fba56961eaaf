"""Image uploads: content checks, size limit, CSRF header, no orphan files."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import httpx
import pytest
from PIL import Image

from gql_feed.storage.images import ImageStore
from tests.helpers.asgi import CREATE_POST, Upload, codes, multipart, uploads, user_with_token
from tests.helpers.server import png_bytes


def image_bytes(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, format=fmt)
    return out.getvalue()


async def send(
    client: httpx.AsyncClient, token: str, data: bytes, filename: str = "x.png", **kw: object
) -> httpx.Response:
    return await multipart(
        client,
        token,
        CREATE_POST,
        {"i": {"title": "Upload test", "content": "Upload content", "image": None}},
        "i.image",
        data,
        filename,
        **kw,  # type: ignore[arg-type]
    )


async def test_accepts_each_image_format(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    for fmt, extension, content_type in (
        ("PNG", "png", "image/png"),
        ("JPEG", "jpg", "image/jpeg"),
        ("GIF", "gif", "image/gif"),
        ("WEBP", "webp", "image/webp"),
    ):
        # The client's file name says nothing: the content decides.
        body = (await send(client, token, image_bytes(fmt), "upload.bin")).json()
        url = body["data"]["createPost"]["imageUrl"]
        assert url.endswith("." + extension), fmt
        served = await client.get("/uploads/" + url.rsplit("/", 1)[1])
        assert served.headers["content-type"] == content_type


async def test_refuses_what_is_not_an_image(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    before = uploads(client)
    for data in (
        b"just some text, not a picture",
        b"",
        image_bytes("BMP"),
        image_bytes("PNG")[:40],
    ):
        body = (await send(client, token, data, "picture.png")).json()
        assert codes(body) == ["BAD_USER_INPUT"], data[:20]
        assert "image" in body["errors"][0]["extensions"]["fields"]
    assert uploads(client) == before


async def test_refuses_oversized_upload(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    limit = client.app.state.services.posts.images.max_bytes  # type: ignore[attr-defined]
    before = uploads(client)
    big = image_bytes("PNG") + b"\0" * (limit + 1)
    body = (await send(client, token, big)).json()
    assert codes(body) == ["BAD_USER_INPUT"]
    assert uploads(client) == before


async def test_multipart_needs_preflight_header(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    before = uploads(client)
    response = await client.post(
        "/graphql",
        data={"operations": '{"query": "{ __typename }"}', "map": "{}"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]
    assert "CSRF" in response.json()["errors"][0]["message"]
    assert uploads(client) == before


async def test_upload_path_is_not_a_way_out(client: httpx.AsyncClient) -> None:
    for path in (
        "/uploads/..%2Fgql_feed.db",
        "/uploads/.hidden.png",
        "/uploads/nothing.png",
        "/uploads/x.exe",
    ):
        assert (await client.get(path)).status_code == 404


async def test_a_cancelled_save_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker thread finishes writing after the cancel; the file is then removed."""
    store = ImageStore(tmp_path, max_bytes=1_000_000, max_pixels=1_000_000)
    started, release, written = threading.Event(), threading.Event(), threading.Event()
    store_in_thread = ImageStore._store

    def slow_store(self: ImageStore, data: bytes) -> str:
        started.set()
        release.wait(10)
        try:
            return store_in_thread(self, data)
        finally:
            written.set()

    monkeypatch.setattr(ImageStore, "_store", slow_store)
    saving = asyncio.create_task(store.save(Upload(png_bytes())))
    assert await asyncio.to_thread(started.wait, 10)
    saving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await saving
    release.set()
    assert await asyncio.to_thread(written.wait, 10)
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not any(tmp_path.iterdir()):
            break
    assert list(tmp_path.iterdir()) == []
