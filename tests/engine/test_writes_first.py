"""Over HTTP, mutations hold the writes-first gate and queries pass it (engine/priority.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gql_feed.services.accounts import AccountService
from gql_feed.services.posts import PostService
from tests.helpers.asgi import create_post, gql, user_with_token

PAGE = "query($p: Int!) { posts(page: $p, perPage: 2) { totalPosts posts { id title } } }"
STATUS = "mutation($s: String!) { updateStatus(status: $s) { status } }"


async def test_queries_keep_answering_while_mutations_hold_the_gate(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    gate = app.state.priority
    token, _ = await user_with_token(client)
    assert "errors" not in await create_post(client, token, "Before")

    # Both kinds of mutation wait here until let go: a multipart createPost and a JSON one.
    let_go = asyncio.Event()
    real_create, real_status = PostService.create, AccountService.update_status

    async def held_create(self: PostService, *args: Any) -> Any:
        await let_go.wait()
        return await real_create(self, *args)

    async def held_status(self: AccountService, *args: Any) -> Any:
        await let_go.wait()
        return await real_status(self, *args)

    monkeypatch.setattr(PostService, "create", held_create)
    monkeypatch.setattr(AccountService, "update_status", held_status)
    writing = [
        asyncio.create_task(create_post(client, token, "During")),
        asyncio.create_task(gql(client, STATUS, {"s": "Busy writing"}, token)),
    ]
    for _ in range(100):
        if gate.writes == 2:
            break
        await asyncio.sleep(0.01)
    assert gate.writes == 2

    # Forty queries at once, all answered while both writes are still held.
    pages = await asyncio.gather(*(gql(client, PAGE, {"p": 1}, token) for _ in range(40)))
    assert all(page["data"]["posts"]["totalPosts"] == 1 for page in pages)
    assert gate.writes == 2
    assert not any(task.done() for task in writing)

    let_go.set()
    created, status = await asyncio.gather(*writing)
    assert created["data"]["createPost"]["title"] == "During"
    assert status["data"]["updateStatus"]["status"] == "Busy writing"
    assert gate.writes == 0
    assert not gate._waiting
    after = await gql(client, PAGE, {"p": 1}, token)
    assert after["data"]["posts"]["totalPosts"] == 2
