"""Posts: create, read, pages, update, delete, permissions (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from gql_feed.schema.ids import number_of
from gql_feed.services.errors import Unauthenticated
from gql_feed.storage import event_log
from tests.helpers.asgi import Upload, codes, create_post, gql, multipart, uploads, user_with_token
from tests.helpers.server import png_bytes

PAGE = "query($p: Int!, $n: Int!) { posts(page: $p, perPage: $n) { totalPosts page perPage posts { id title creator { id name } } } }"
FEED = "query($f: Int!, $a: String) { feed(first: $f, after: $a) { edges { cursor node { id title } } pageInfo { hasNextPage endCursor } } }"
UPDATE = "mutation($id: ID!, $i: UpdatePostInput!) { updatePost(id: $id, input: $i) { id title content imageUrl updatedAt } }"


async def test_create_and_read_post(client: httpx.AsyncClient) -> None:
    token, user_id = await user_with_token(client)
    body = await create_post(client, token, "  My title  ", "  My content  ")
    post = body["data"]["createPost"]
    assert post["title"] == "My title"
    assert post["content"] == "My content"
    assert post["creator"] == {"id": user_id, "name": "Ann"}
    assert post["imageUrl"].startswith("http://")
    assert "/uploads/" in post["imageUrl"]

    image = await client.get("/uploads/" + post["imageUrl"].rsplit("/", 1)[1])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")

    read = await gql(
        client, "query($id: ID!) { post(id: $id) { id title } }", {"id": post["id"]}, token
    )
    assert read["data"]["post"] == {"id": post["id"], "title": "My title"}
    missing = await gql(client, 'query { post(id: "424242") { id } }', token=token)
    assert missing["data"]["post"] is None


async def test_reading_posts_needs_login(client: httpx.AsyncClient) -> None:
    for query in (
        "{ posts { totalPosts } }",
        "{ feed { edges { cursor } } }",
        '{ post(id: "1") { id } }',
    ):
        assert codes(await gql(client, query)) == ["UNAUTHENTICATED"]


async def test_post_input_rules(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    before = uploads(client)
    body = await create_post(client, token, "abc ", "   x   ")
    assert codes(body) == ["BAD_USER_INPUT"]
    assert set(body["errors"][0]["extensions"]["fields"]) == {"title", "content"}
    assert uploads(client) == before
    no_auth = await create_post(client, "", "Valid title", "Valid content")
    assert codes(no_auth) == ["UNAUTHENTICATED"]
    assert uploads(client) == before


async def test_pages_newest_first(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    ids = [
        (await create_post(client, token, f"Post number {i}"))["data"]["createPost"]["id"]
        for i in range(5)
    ]
    first = (await gql(client, PAGE, {"p": 1, "n": 2}, token))["data"]["posts"]
    assert first["totalPosts"] == 5
    assert [p["id"] for p in first["posts"]] == [ids[4], ids[3]]
    last = (await gql(client, PAGE, {"p": 3, "n": 2}, token))["data"]["posts"]
    assert [p["id"] for p in last["posts"]] == [ids[0]]
    default = (await gql(client, "{ posts { perPage posts { id } } }", token=token))["data"][
        "posts"
    ]
    assert default["perPage"] == 2
    assert len(default["posts"]) == 2
    for page, per_page in ((0, 2), (1, 0), (1, 10_000), (-3, 2)):
        assert codes(await gql(client, PAGE, {"p": page, "n": per_page}, token)) == [
            "BAD_USER_INPUT"
        ]


async def test_feed_cursor_pages(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    ids = [
        (await create_post(client, token, f"Feed post {i}"))["data"]["createPost"]["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    after = None
    while True:
        feed = (await gql(client, FEED, {"f": 2, "a": after}, token))["data"]["feed"]
        seen += [edge["node"]["id"] for edge in feed["edges"]]
        if not feed["pageInfo"]["hasNextPage"]:
            break
        after = feed["pageInfo"]["endCursor"]
    assert seen == list(reversed(ids))
    for bad in ({"f": 0, "a": None}, {"f": 1000, "a": None}, {"f": 2, "a": "bogus!"}):
        assert codes(await gql(client, FEED, bad, token)) == ["BAD_USER_INPUT"]


async def test_page_costs_fixed_number_of_statements(client: httpx.AsyncClient) -> None:
    """A page comes with its creators and the total in one statement, whatever its size."""
    tokens = [(await user_with_token(client, f"User {i}"))[0] for i in range(6)]
    for i, token in enumerate(tokens):
        await create_post(client, token, f"Post by user {i}")
    db = client.app.state.services.posts.db  # type: ignore[attr-defined]
    # On SQLite the loop's connection, or a reader thread's (a page read before the table
    # was counted, or of a big table: services.posts.LOOP_SCAN_ROWS).
    reader = db.sqlite_reader
    engines = [reader.here, reader.engine] if reader else [db.engine.sync_engine]
    statements: list[str] = []

    def count(*args: Any) -> None:
        # Not the pool's liveness ping, nor the event hub's poll of the log.
        if "FROM" in args[2] and "post_events" not in args[2]:
            statements.append(args[2])

    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        small = await gql(client, PAGE, {"p": 1, "n": 2}, tokens[0])
        small_count = len(statements)
        statements.clear()
        large = await gql(client, PAGE, {"p": 1, "n": 6}, tokens[0])
        large_count = len(statements)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert len(small["data"]["posts"]["posts"]) == 2
    assert len({p["creator"]["id"] for p in large["data"]["posts"]["posts"]}) == 6
    assert small_count == large_count == 1  # page, creators and total together


async def test_update_post(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    post = (await create_post(client, token))["data"]["createPost"]
    old_image = post["imageUrl"].rsplit("/", 1)[1]
    text_only = await gql(client, UPDATE, {"id": post["id"], "i": {"title": "A new title"}}, token)
    updated = text_only["data"]["updatePost"]
    assert updated["title"] == "A new title"
    assert updated["content"] == post["content"]
    assert updated["imageUrl"] == post["imageUrl"]
    assert updated["updatedAt"] > post["updatedAt"]

    response = await multipart(
        client,
        token,
        UPDATE,
        {"id": post["id"], "i": {"image": None}},
        "i.image",
        png_bytes(color="blue"),
    )
    new_image = response.json()["data"]["updatePost"]["imageUrl"].rsplit("/", 1)[1]
    assert new_image != old_image
    assert old_image not in uploads(client)
    assert new_image in uploads(client)


async def test_racing_image_changes_leave_only_the_last_image(
    client: httpx.AsyncClient,
) -> None:
    """Each change reads the image the previous one wrote, so none is left orphaned."""
    token, _ = await user_with_token(client)
    post = (await create_post(client, token))["data"]["createPost"]
    before = uploads(client) - {post["imageUrl"].rsplit("/", 1)[1]}
    colors = ("red", "green", "blue", "yellow", "purple", "orange")
    responses = await asyncio.gather(
        *(
            multipart(
                client,
                token,
                UPDATE,
                {"id": post["id"], "i": {"image": None, "content": f"Painted {color}"}},
                "i.image",
                png_bytes(color=color),
            )
            for color in colors
        )
    )
    assert all("errors" not in response.json() for response in responses)
    final = await gql(
        client, "query($id: ID!) { post(id: $id) { imageUrl } }", {"id": post["id"]}, token
    )
    final_image = final["data"]["post"]["imageUrl"].rsplit("/", 1)[1]
    assert uploads(client) - before == {final_image}


async def test_only_the_creator_changes_a_post(client: httpx.AsyncClient) -> None:
    owner, _ = await user_with_token(client)
    other, _ = await user_with_token(client, "Mallory")
    post = (await create_post(client, owner))["data"]["createPost"]
    before = uploads(client)
    edit = await multipart(
        client,
        other,
        UPDATE,
        {"id": post["id"], "i": {"title": "Hijacked!", "image": None}},
        "i.image",
        png_bytes(),
    )
    assert codes(edit.json()) == ["FORBIDDEN"]
    assert uploads(client) == before
    delete = await gql(
        client, "mutation($id: ID!) { deletePost(id: $id) }", {"id": post["id"]}, other
    )
    assert codes(delete) == ["FORBIDDEN"]
    for missing_id in ("999999", "abc", "-1"):
        gone = await gql(
            client, "mutation($id: ID!) { deletePost(id: $id) }", {"id": missing_id}, owner
        )
        assert codes(gone) == ["NOT_FOUND"]
        update = await gql(client, UPDATE, {"id": missing_id, "i": {"title": "Whatever"}}, owner)
        assert codes(update) == ["NOT_FOUND"]


async def test_delete_post_removes_image(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    post = (await create_post(client, token))["data"]["createPost"]
    image = post["imageUrl"].rsplit("/", 1)[1]
    assert image in uploads(client)
    body = await gql(
        client, "mutation($id: ID!) { deletePost(id: $id) }", {"id": post["id"]}, token
    )
    assert body["data"]["deletePost"] == post["id"]
    assert image not in uploads(client)
    read = await gql(client, "query($id: ID!) { post(id: $id) { id } }", {"id": post["id"]}, token)
    assert read["data"]["post"] is None
    assert (await client.get(f"/uploads/{image}")).status_code == 404


async def test_each_change_is_logged_as_an_event(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    db = client.app.state.services.posts.db  # type: ignore[attr-defined]
    async with db.read() as session:
        _, before = await event_log.bounds(session)
    post = (await create_post(client, token))["data"]["createPost"]
    await gql(client, UPDATE, {"id": post["id"], "i": {"title": "Edited title"}}, token)
    await gql(client, "mutation($id: ID!) { deletePost(id: $id) }", {"id": post["id"]}, token)
    async with db.read() as session:
        events = await event_log.read_after(session, before, 10)
    decoded = [json.loads(e.payload) for e in events]
    assert [e.id for e in events] == [before + 1, before + 2, before + 3]
    assert [d["action"] for d in decoded] == ["CREATED", "UPDATED", "DELETED"]
    assert decoded[2]["post"]["title"] == "Edited title"
    assert all(d["post"]["id"] == number_of(post["id"]) for d in decoded)


async def test_ids_are_never_reused(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    first = (await create_post(client, token))["data"]["createPost"]["id"]
    await gql(client, "mutation($id: ID!) { deletePost(id: $id) }", {"id": first}, token)
    second = (await create_post(client, token))["data"]["createPost"]["id"]
    assert (number_of(second) or 0) > (number_of(first) or 0)


async def test_concurrent_creates_log_gapless_events(client: httpx.AsyncClient) -> None:
    """Writers racing for the log still get consecutive ids, each event naming itself."""
    token, _ = await user_with_token(client)
    db = client.app.state.services.posts.db  # type: ignore[attr-defined]
    async with db.read() as session:
        _, before = await event_log.bounds(session)
    bodies = await asyncio.gather(
        *(create_post(client, token, f"Racing post {n}") for n in range(12))
    )
    post_ids = {number_of(body["data"]["createPost"]["id"]) for body in bodies}
    async with db.read() as session:
        events = await event_log.read_after(session, before, 50)
    decoded = [json.loads(e.payload) for e in events]
    assert [e.id for e in events] == list(range(before + 1, before + 13))
    assert [d["id"] for d in decoded] == [e.id for e in events]
    assert {d["post"]["id"] for d in decoded} == post_ids


async def test_a_create_that_fails_in_its_transaction_leaves_nothing(
    client: httpx.AsyncClient,
) -> None:
    """The image is stored before the transaction; a failure inside it removes the file."""
    posts = client.app.state.services.posts  # type: ignore[attr-defined]
    async with posts.db.read() as session:
        log_before = await event_log.bounds(session)
    files_before = uploads(client)
    with pytest.raises(Unauthenticated):
        await posts.create(424242, "Valid title", "Valid content", Upload(png_bytes()))
    assert uploads(client) == files_before
    async with posts.db.read() as session:
        assert await event_log.bounds(session) == log_before
