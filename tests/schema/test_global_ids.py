"""Global ids and the Node interface: ids unique across types, `node(id:)`, `nodes(ids:)`,
and the plain numbers of clients from before global ids still accepted as arguments."""

from __future__ import annotations

import base64

import httpx
import pytest

from gql_feed.schema.ids import decode_global_id, global_id, number_of, parse_id
from gql_feed.services.errors import NotFound
from tests.helpers.asgi import codes, create_post, gql, user_with_token

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Post { title creator { id name } } ... on User { name } } }"""


def test_global_ids_are_relays_and_never_digits() -> None:
    assert global_id("Post", 12) == base64.b64encode(b"Post:12").decode() == "UG9zdDoxMg=="
    assert decode_global_id(global_id("User", 7)) == ("User", 7)
    assert number_of(global_id("Post", 2**63 - 1)) == 2**63 - 1
    for number in (1, 9, 42, 12345, 2**40):
        for type_name in ("Post", "User"):
            assert not global_id(type_name, number).isdigit()
    for bad in ("12", "", "Post:12", base64.b64encode(b"Event:3").decode(), "!!!"):
        assert decode_global_id(bad) is None, bad
    for bad in (
        b"Post:0",
        b"Post:-1",
        b"Post:1.5",
        b"Post:9223372036854775808",
        "Post:\u0661".encode(),
    ):
        assert decode_global_id(base64.b64encode(bad).decode()) is None, bad


def test_arguments_take_the_global_id_or_the_old_number() -> None:
    assert parse_id(global_id("Post", 12), "Post") == 12
    assert parse_id("12", "Post") == 12  # a client from before global ids
    with pytest.raises(NotFound):
        parse_id(global_id("User", 12), "Post")  # another type's id names nothing
    for bad in ("0", "-3", "9223372036854775808", "x", "", "\uff11\uff12"):
        with pytest.raises(NotFound):
            parse_id(bad, "Post")


async def test_ids_are_unique_across_types_and_nodes_fetch_them(
    client: httpx.AsyncClient,
) -> None:
    token, user_id = await user_with_token(client, "Nora")
    post = (await create_post(client, token, "Node title"))["data"]["createPost"]
    assert decode_global_id(post["id"])[0] == "Post"  # type: ignore[index]
    assert decode_global_id(user_id)[0] == "User"  # type: ignore[index]
    assert number_of(post["id"]) == number_of(user_id) == 1  # same numbers, distinct ids
    assert post["id"] != user_id

    found = await gql(client, NODE, {"id": post["id"]}, token)
    assert found["data"]["node"] == {
        "__typename": "Post",
        "id": post["id"],
        "title": "Node title",
        "creator": {"id": user_id, "name": "Nora"},
    }
    user = await gql(client, NODE, {"id": user_id}, token)
    assert user["data"]["node"] == {"__typename": "User", "id": user_id, "name": "Nora"}
    for nothing in ("1", global_id("Post", 999), "not an id"):
        assert (await gql(client, NODE, {"id": nothing}, token))["data"]["node"] is None

    many = await gql(
        client,
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
        {"ids": [user_id, global_id("Post", 999), post["id"]]},
        token,
    )
    assert many["data"]["nodes"] == [
        {"__typename": "User", "id": user_id},
        None,
        {"__typename": "Post", "id": post["id"]},
    ]
    too_many = await gql(
        client, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["1"] * 101}, token
    )
    assert codes(too_many) == ["BAD_USER_INPUT"]
    assert codes(await gql(client, NODE, {"id": post["id"]})) == ["UNAUTHENTICATED"]


async def test_old_plain_numbers_still_name_posts(client: httpx.AsyncClient) -> None:
    token, _ = await user_with_token(client)
    post = (await create_post(client, token))["data"]["createPost"]
    number = str(number_of(post["id"]))
    read = await gql(client, "query($id: ID!) { post(id: $id) { id } }", {"id": number}, token)
    assert read["data"]["post"] == {"id": post["id"]}  # answered with the global id
    edited = await gql(
        client,
        'mutation($id: ID!) { updatePost(id: $id, input: {title: "Renamed"}) { id title } }',
        {"id": number},
        token,
    )
    assert edited["data"]["updatePost"] == {"id": post["id"], "title": "Renamed"}
    deleted = await gql(client, "mutation($id: ID!) { deletePost(id: $id) }", {"id": number}, token)
    assert deleted["data"]["deletePost"] == post["id"]


async def test_a_node_that_appears_without_an_event_is_never_a_kept_answer(
    client: httpx.AsyncClient,
) -> None:
    """A signup commits no event: `node(id:)` answers are never kept by the response cache."""
    token, user_id = await user_with_token(client, "First")
    following = global_id("User", (number_of(user_id) or 0) + 1)
    for _ in range(2):  # twice: a kept answer would be served the second time
        assert (await gql(client, NODE, {"id": following}, token))["data"]["node"] is None
        nodes = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
        assert (await gql(client, nodes, {"ids": [following]}, token))["data"]["nodes"] == [None]
    _, second = await user_with_token(client, "Second")
    assert second == following
    found = await gql(client, NODE, {"id": following}, token)
    assert found["data"]["node"] == {"__typename": "User", "id": following, "name": "Second"}
    listed = await gql(client, nodes, {"ids": [following]}, token)
    assert listed["data"]["nodes"] == [{"id": following}]
