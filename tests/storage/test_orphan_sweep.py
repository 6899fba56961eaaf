"""Image files no post uses (a crash between writing the image and committing its
post, or in the middle of the write: a `.part`) are removed when a process starts,
once older than the grace period; files a post uses, files that may still be in
flight in another process, and files that are not the store's own are kept."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path

import httpx
import pytest

from gql_feed.config import Settings
from tests.helpers.asgi import app_client, create_post, user_with_token
from tests.helpers.server import LiveServer, png_bytes

HOUR = 3600


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def random_name(extension: str = "png") -> str:
    return f"{secrets.token_urlsafe(18)}.{extension}"


async def test_start_removes_old_orphans_and_keeps_the_rest(settings: Settings) -> None:
    async with app_client(settings) as http:
        token, _ = await user_with_token(http)
        body = await create_post(http, token)
        used = body["data"]["createPost"]["imageUrl"].rsplit("/", 1)[1]
    uploads = settings.upload_dir
    age(uploads / used, HOUR)  # an old post's image: kept however old
    old_orphan, young_orphan = random_name(), random_name("jpg")
    old_part, young_part = f".{random_name()}.part", f".{random_name('gif')}.part"
    foreign = ["notes.txt", ".gitkeep", "photo.png"]  # not names the store makes
    for name in [old_orphan, young_orphan, old_part, young_part, *foreign]:
        (uploads / name).write_bytes(png_bytes())
    for name in [old_orphan, old_part, *foreign]:
        age(uploads / name, HOUR)
    age(uploads / young_orphan, settings.orphan_grace_seconds - 60)

    async with app_client(settings) as http:
        left = {path.name for path in uploads.iterdir()}
        assert old_orphan not in left
        assert old_part not in left
        # Younger than the grace: another process may be about to commit its post.
        assert {used, young_orphan, young_part, *foreign} <= left
        served = await http.get(f"/uploads/{used}")
        assert served.status_code == 200


async def test_a_grace_of_its_own(settings: Settings) -> None:
    uploads = settings.upload_dir
    uploads.mkdir(parents=True)
    orphan = uploads / random_name()
    orphan.write_bytes(png_bytes())
    age(orphan, 120)
    async with app_client(settings, orphan_grace_seconds=300):
        assert orphan.exists()
    async with app_client(settings, orphan_grace_seconds=60):
        assert not orphan.exists()


def test_settings_refuse_a_grace_too_short_to_be_safe() -> None:
    with pytest.raises(ValueError, match="orphan_grace_seconds"):
        Settings(orphan_grace_seconds=0, _env_file=None)  # type: ignore[call-arg]


async def test_after_kill_9_during_a_burst_no_file_is_left_unused(tmp_path: Path) -> None:
    """kill -9 while 40 createPosts are in flight (as soon as their first image is on
    disk), then a start once the grace has passed (the files are aged to stand for it):
    every file left is a post's image, and every post's image is there."""
    server = LiveServer(tmp_path)
    server.start()
    uploads = tmp_path / "uploads"
    try:
        token, _ = await asyncio.to_thread(server.signup_and_login)

        async def burst() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                await asyncio.gather(
                    *(post_form(http, server, token, create_form(i)) for i in range(40)),
                    return_exceptions=True,
                )

        sending = asyncio.create_task(burst())
        deadline = time.monotonic() + 20
        while not any(uploads.iterdir()) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        server.process = None
        await sending
        before = {path.name for path in uploads.iterdir()}
        for name in before:
            age(uploads / name, HOUR)
        server.start()
        posts = await asyncio.to_thread(
            server.graphql, "{ posts(perPage: 50) { posts { imageUrl } } }", None, token
        )
        used = {post["imageUrl"].rsplit("/", 1)[1] for post in posts["data"]["posts"]["posts"]}
        left = {path.name for path in uploads.iterdir()}
        assert len(before - used) > 0, "the kill left no orphan: the test proved nothing"
        assert left == used
    finally:
        server.stop()


def create_form(index: int) -> dict[str, str]:
    operations = {
        "query": "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
        "variables": {"i": {"title": f"Burst {index}", "content": "Some body", "image": None}},
    }
    return {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.i.image"]})}


async def post_form(
    http: httpx.AsyncClient, server: LiveServer, token: str, form: dict[str, str]
) -> None:
    await http.post(
        server.graphql_url,
        data=form,
        files={"0": ("i.png", png_bytes(), "image/png")},
        headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"},
    )
