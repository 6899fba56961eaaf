"""The schema: queries, mutations and the postEvents subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import cast

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from gql_feed.schema.context import Context
from gql_feed.schema.types import (
    AuthPayload,
    PageInfo,
    Post,
    PostAction,
    PostConnection,
    PostEdge,
    PostEvent,
    PostPage,
    User,
    parse_id,
)
from gql_feed.services.accounts import (
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_STATUS_LENGTH,
    MIN_PASSWORD_LENGTH,
)
from gql_feed.services.errors import FeedError
from gql_feed.services.posts import (
    MAX_CONTENT_LENGTH,
    MAX_TITLE_LENGTH,
    MIN_TEXT_LENGTH,
    encode_cursor,
)
from gql_feed.storage.images import Readable

InfoType = Info[Context, None]


@strawberry.input(description="A new account. Needs no login.")
class SignupInput:
    email: str = strawberry.field(description="A valid email address, not used by another user.")
    name: str = strawberry.field(
        description=f"Not blank, at most {MAX_NAME_LENGTH} characters; shown to others."
    )
    password: str = strawberry.field(
        description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters."
    )


TITLE_RULE = f"{MIN_TEXT_LENGTH} to {MAX_TITLE_LENGTH} characters."
CONTENT_RULE = f"{MIN_TEXT_LENGTH} to {MAX_CONTENT_LENGTH} characters."
IMAGE_RULE = (
    "A JPEG, PNG, GIF or WebP file, sent as a GraphQL multipart request (with an "
    "Apollo-Require-Preflight header)."
)


@strawberry.input
class CreatePostInput:
    title: str = strawberry.field(description=TITLE_RULE)
    content: str = strawberry.field(description=CONTENT_RULE)
    image: Upload = strawberry.field(description=IMAGE_RULE)


@strawberry.input(description="Omitted fields keep their value; a new image replaces the old.")
class UpdatePostInput:
    title: str | None = strawberry.field(default=None, description=TITLE_RULE)
    content: str | None = strawberry.field(default=None, description=CONTENT_RULE)
    image: Upload | None = strawberry.field(default=None, description=IMAGE_RULE)


@strawberry.type
class Query:
    @strawberry.field(description="The logged-in user. Needs a login.")
    async def me(self, info: InfoType) -> User:
        return User.of(await info.context.services.accounts.viewer(info.context.viewer_id))

    @strawberry.field(description="Needs a login.")
    async def user(self, info: InfoType, id: strawberry.ID) -> User | None:
        info.context.viewer_id  # noqa: B018 - reading users needs a login
        record = await info.context.users.load(parse_id(id))
        return User.of(record) if record else None

    @strawberry.field(description="Needs a login.")
    async def post(self, info: InfoType, id: strawberry.ID) -> Post | None:
        info.context.viewer_id  # noqa: B018 - reading posts needs a login
        found = await info.context.services.posts.get(parse_id(id))
        return Post.of(found.post, found.creator) if found else None

    @strawberry.field(
        description="Numbered pages, newest first; totalPosts is for pagers. Needs a login."
    )
    async def posts(self, info: InfoType, page: int = 1, per_page: int = 2) -> PostPage:
        info.context.viewer_id  # noqa: B018
        result = await info.context.services.posts.page(page, per_page)
        return PostPage(
            posts=[Post.of(post, result.creators[post.creator_id]) for post in result.posts],
            total_posts=result.total,
            page=result.page,
            per_page=result.per_page,
        )

    @strawberry.field(description="Cursor pages for infinite scroll, newest first. Needs a login.")
    async def feed(
        self, info: InfoType, first: int = 10, after: str | None = None
    ) -> PostConnection:
        info.context.viewer_id  # noqa: B018
        result = await info.context.services.posts.feed(first, after)
        edges = [
            PostEdge(cursor=encode_cursor(p.id), node=Post.of(p, result.creators[p.creator_id]))
            for p in result.posts
        ]
        return PostConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=result.has_next,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Needs no login; log in afterwards.")
    async def signup(self, info: InfoType, input: SignupInput) -> User:
        accounts = info.context.services.accounts
        record = await accounts.signup(input.email, input.name, input.password, info.context.client)
        return User.of(record, is_owner=True)

    @strawberry.mutation(
        description="Needs no login. Unknown email and wrong password get the same answer; "
        "send the token as 'Authorization: Bearer <token>'."
    )
    async def login(self, info: InfoType, email: str, password: str) -> AuthPayload:
        result = await info.context.services.accounts.login(email, password, info.context.client)
        user = User.of(result.user, is_owner=True)
        return AuthPayload(token=result.token, user=user, expires_at=result.expires_at)

    @strawberry.mutation(
        description=f"Needs a login. Not blank, at most {MAX_STATUS_LENGTH} characters."
    )
    async def update_status(self, info: InfoType, status: str) -> User:
        accounts = info.context.services.accounts
        return User.of(await accounts.update_status(info.context.viewer_id, status))

    @strawberry.mutation(
        description="Needs a login. Sent as a GraphQL multipart request, for its image."
    )
    async def create_post(self, info: InfoType, input: CreatePostInput) -> Post:
        posts = info.context.services.posts
        image = cast(Readable, input.image)  # strawberry hands over Starlette's UploadFile
        result = await posts.create(info.context.viewer_id, input.title, input.content, image)
        return Post.of(result.post, result.creator)

    @strawberry.mutation(description="Needs a login, as the post's creator.")
    async def update_post(self, info: InfoType, id: strawberry.ID, input: UpdatePostInput) -> Post:
        posts = info.context.services.posts
        result = await posts.update(
            info.context.viewer_id,
            parse_id(id),
            input.title,
            input.content,
            cast(Readable | None, input.image),
        )
        return Post.of(result.post, result.creator)

    @strawberry.mutation(
        description="Needs a login. A single-use ticket, good for 60 seconds, that opens one "
        "live stream over Server-Sent Events for a page whose EventSource cannot send an "
        "Authorization header: GET /graphql?query=subscription…&ticket=<this>. Never put the "
        "access token itself in a URL. The stream ends when the login expires."
    )
    def stream_ticket(self, info: InfoType) -> str:
        info.context.viewer_id  # noqa: B018 - needs a login
        claims = info.context.claims
        if claims is None:  # pragma: no cover - viewer_id raised already
            raise FeedError("You must be logged in.")
        ticket, _ = info.context.services.tickets.issue(claims)
        return ticket

    @strawberry.mutation(
        description="Needs a login, as the post's creator. Returns the id of the deleted post."
    )
    async def delete_post(self, info: InfoType, id: strawberry.ID) -> strawberry.ID:
        posts = info.context.services.posts
        result = await posts.delete(info.context.viewer_id, parse_id(id))
        return strawberry.ID(str(result.post.id))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Needs a login. Every post created, updated or deleted, as it happens. "
        "`actions` narrows what arrives; `after` first replays every event after that id "
        "from the event log. Served over the WebSocket, Server-Sent Events and Apollo's "
        "multipart HTTP subscriptions at /graphql."
    )
    async def post_events(
        self,
        info: InfoType,
        actions: list[PostAction] | None = None,
        after: strawberry.ID | None = None,
    ) -> AsyncGenerator[PostEvent, None]:
        # The live layer serves this field itself (gql_feed.live, every transport), executing
        # each event once per group of identical subscriptions; nothing routes here.
        raise FeedError("postEvents is served by the live endpoints at /graphql.")
        yield  # pragma: no cover - makes this an async generator
