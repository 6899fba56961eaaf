"""Hostile uploads: decompression bombs, lying names and types, path tricks, metadata that
gives a location away, and damaged files. Each is refused (or cleaned), and a refusal
leaves the upload directory and the posts exactly as they were."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, PngImagePlugin

from gql_feed.storage.images import CHUNK_BYTES, ImageRejected, ImageStore
from tests.helpers.asgi import (
    CREATE_POST,
    codes,
    create_post,
    gql,
    multipart,
    uploads,
    user_with_token,
)

STORED_NAME = re.compile(r"^[A-Za-z0-9_-]{24}\.(png|jpg|gif|webp)$")
GPS_IFD = 0x8825


async def total_posts(client: httpx.AsyncClient, token: str) -> int:
    body = await gql(client, "{ posts { totalPosts } }", token=token)
    count: int = body["data"]["posts"]["totalPosts"]
    return count


async def send(
    client: httpx.AsyncClient,
    token: str,
    data: bytes,
    filename: str = "photo.png",
    content_type: str = "image/png",
) -> dict[str, Any]:
    """createPost with full control over the file part's name and content type."""
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(
                {
                    "query": CREATE_POST,
                    "variables": {"i": {"title": "Upload", "content": "Some body", "image": None}},
                }
            ),
            "map": json.dumps({"0": ["variables.i.image"]}),
        },
        files={"0": (filename, data, content_type)},
        headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"},
    )
    body: dict[str, Any] = response.json()
    return body


def stored_name(body: dict[str, Any]) -> str:
    assert "errors" not in body, body
    name: str = body["data"]["createPost"]["imageUrl"].rsplit("/", 1)[1]
    return name


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header claiming huge dimensions, with one tiny row of data: a few
    dozen bytes on disk, gigabytes once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def gif_animation(size: tuple[int, int], frames: int) -> bytes:
    images = [Image.new("P", size, index) for index in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:])
    return out.getvalue()


def photo_with_location(fmt: str) -> bytes:
    """A 16x12 picture, rotated by its EXIF orientation, with a camera name, GPS, a colour
    profile and (PNG, GIF) a text comment: everything that can say where and who."""
    image = Image.new("RGB", (16, 12), "blue")
    options: dict[str, Any] = {}
    if fmt == "GIF":
        options["comment"] = b"SpyCam home address"
    else:
        exif = Image.Exif()
        exif[ExifTags.Base.Make] = "SpyCam"
        exif[ExifTags.Base.Orientation] = 6  # rotate 90 degrees when shown
        gps = exif.get_ifd(GPS_IFD)
        gps[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
        gps[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
        options["exif"] = exif
        options["icc_profile"] = b"SpyCam colour profile " * 4
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "SpyCam home address")
        options["pnginfo"] = text
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    data = out.getvalue()
    assert b"SpyCam" in data
    return data


async def test_decompression_bombs_are_refused(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    before = uploads(client)
    bombs = {
        "20000x20000 in a few bytes": png_declaring(20_000, 20_000),
        "over our pixel limit, under Pillow's": png_declaring(8_000, 6_000),
        "many full-size GIF frames": gif_animation((3_000, 3_000), 6),
    }
    for name, data in bombs.items():
        assert len(data) < 100_000, name
        body = await send(client, token, data)
        assert codes(body) == ["BAD_USER_INPUT"], (name, body)
        problem = body["errors"][0]["extensions"]["fields"]["image"]
        assert "too many" in problem, (name, problem)
    assert uploads(client) == before
    assert await total_posts(client, token) == 0
    # A small animation is fine.
    assert STORED_NAME.match(stored_name(await send(client, token, gif_animation((20, 20), 5))))


@pytest.mark.parametrize(
    "filename",
    ["../../evil.png", "..\\..\\evil.png", "/etc/evil.png", "evil.php", ".htaccess", "é" * 300],
)
async def test_client_file_names_are_never_used(
    client: httpx.AsyncClient, tmp_path: Path, filename: str
) -> None:
    token, _ = await user_with_token(client)
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(png, format="PNG")
    body = await send(client, token, png.getvalue(), filename=filename, content_type="text/html")
    name = stored_name(body)
    assert STORED_NAME.match(name), name
    assert name.endswith(".png")  # from the content, not the name or the content type
    assert uploads(client) == {name}
    for root in (tmp_path, tmp_path.parent, Path.cwd()):
        assert not list(root.glob("evil*")), root
    assert not list(tmp_path.rglob("evil*"))
    served = await client.get(f"/uploads/{name}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
async def test_metadata_is_stripped(client: httpx.AsyncClient, fmt: str) -> None:
    token, _ = await user_with_token(client)
    name = stored_name(await send(client, token, photo_with_location(fmt), "me.jpg"))
    served = await client.get(f"/uploads/{name}")
    assert served.status_code == 200
    data = served.content
    assert b"SpyCam" not in data
    assert b"Exif" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt
        assert dict(image.getexif()) == {}
        assert image.getexif().get_ifd(GPS_IFD) == {}
        assert not {"exif", "icc_profile", "comment", "xmp"} & set(image.info)
        assert not getattr(image, "text", {})
        # The orientation was applied to the pixels before its tag was dropped.
        assert image.size == ((16, 12) if fmt == "GIF" else (12, 16))


async def test_content_decides_not_the_name(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    before = uploads(client)
    for data in (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"<html><script>alert(1)</script></html>",
        b"GIF89a<script>alert(1)</script>",
        b"\x89PNG\r\n\x1a\n" + b"<?php system($_GET['c']); ?>",
    ):
        body = await send(client, token, data, "picture.png", "image/png")
        assert codes(body) == ["BAD_USER_INPUT"], data
        assert "image" in body["errors"][0]["extensions"]["fields"]
    assert uploads(client) == before
    assert await total_posts(client, token) == 0
    gif = gif_animation((8, 8), 1)
    name = stored_name(await send(client, token, gif, "photo.jpg", "image/jpeg"))
    assert name.endswith(".gif")
    assert (await client.get(f"/uploads/{name}")).headers["content-type"] == "image/gif"


async def test_a_refused_new_image_keeps_the_old_one(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    created = (await create_post(client, token))["data"]["createPost"]
    before = uploads(client)
    response = await multipart(
        client,
        token,
        "mutation($id: ID!, $i: UpdatePostInput!) { updatePost(id: $id, input: $i) "
        "{ id imageUrl } }",
        {"id": created["id"], "i": {"title": "Changed", "image": None}},
        "i.image",
        png_declaring(20_000, 20_000),
    )
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert uploads(client) == before
    post = await gql(
        client, "query($id: ID!) { post(id: $id) { title imageUrl } }", {"id": created["id"]}, token
    )
    assert post["data"]["post"] == {"title": created["title"], "imageUrl": created["imageUrl"]}
    name = created["imageUrl"].rsplit("/", 1)[1]
    assert (await client.get(f"/uploads/{name}")).status_code == 200


class Endless:
    """An upload that never ends, counting what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    async def read(self, size: int = -1) -> bytes:
        chunk = b"\0" * (size if size > 0 else CHUNK_BYTES)
        self.read_bytes += len(chunk)
        return chunk


async def test_size_is_enforced_while_reading(tmp_path: Path) -> None:
    """The reader stops at the limit, instead of reading the whole file first."""
    store = ImageStore(tmp_path, max_bytes=200_000, max_pixels=40_000_000)
    store.ensure_directory()
    upload = Endless()
    with pytest.raises(ImageRejected, match="larger than 200000 bytes"):
        await store.save(upload)
    assert upload.read_bytes <= 200_000 + CHUNK_BYTES
    assert list(tmp_path.iterdir()) == []


def seed_images() -> list[bytes]:
    seeds = []
    for fmt in ("PNG", "JPEG", "GIF", "WEBP"):
        out = io.BytesIO()
        Image.new("RGB", (12, 10), "green").save(out, format=fmt)
        seeds.append(out.getvalue())
    seeds.append(gif_animation((6, 6), 3))
    seeds.append(photo_with_location("JPEG"))
    return seeds


SEEDS = seed_images()


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        if not data:
            break
    return bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on broken EXIF
@given(data=damaged_images())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_damaged_images_are_refused_never_crash(data: bytes) -> None:
    """Whatever the bytes, the answer is a clean image or ImageRejected, nothing else."""
    store = ImageStore(Path("/nonexistent"), max_bytes=1_000_000, max_pixels=40_000_000)
    try:
        cleaned, extension = store._clean(data)
    except ImageRejected:
        return
    with Image.open(io.BytesIO(cleaned)) as image:
        image.load()
        assert (
            extension
            == {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}[image.format or ""]
        )
