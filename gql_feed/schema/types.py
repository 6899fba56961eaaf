"""The GraphQL object types. Every object has a stable `id` for normalized client caches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gql_feed.events.payload import EventPayload, PostPayload, UserPayload
from gql_feed.schema.context import Context
from gql_feed.schema.ids import global_id, number_of
from gql_feed.services.records import PostRecord, UserRecord


@strawberry.interface(
    description="An object with an id unique across types, which `node(id:)` fetches again "
    "(Relay's Global Object Identification)."
)
class Node:
    id: strawberry.ID = strawberry.field(description="A global id; never all digits.")


@strawberry.type
class User(Node):
    name: str
    status: str
    created_at: datetime
    _email: strawberry.Private[str | None]
    _is_owner: strawberry.Private[bool] = False

    @strawberry.field(description="Only visible to the user themself; null for everyone else.")
    def email(self, info: Info[Context, None]) -> str | None:
        return self.email_for(info.context)

    def email_for(self, context: Context) -> str | None:
        if self._is_owner or context.optional_viewer_id == number_of(self.id):
            return self._email
        return None

    @classmethod
    def of(cls, record: UserRecord, *, is_owner: bool = False) -> User:
        """`is_owner` when the user is the one asking, before any token says so (login)."""
        return cls(
            id=global_id("User", record.id),
            name=record.name,
            status=record.status,
            created_at=record.created_at,
            _email=record.email,
            _is_owner=is_owner,
        )

    @classmethod
    def from_event(cls, data: UserPayload) -> User:
        return cls(
            id=global_id("User", data["id"]),
            name=data["name"],
            status=data["status"],
            created_at=datetime.fromisoformat(data["createdAt"]),
            _email=None,
        )


# Fields whose value depends on who is asking: live subscriptions that select one of
# these cannot share one execution with other viewers (see gql_feed.live).
VIEWER_DEPENDENT_FIELDS = frozenset({("User", "email")})


@strawberry.type
class Post(Node):
    title: str
    content: str
    created_at: datetime
    updated_at: datetime
    creator: User = strawberry.field(description="Who wrote the post.")
    _image_name: strawberry.Private[str]

    @strawberry.field(description="An absolute URL a browser can load.")
    def image_url(self, info: Info[Context, None]) -> str:
        return self.image_url_for(info.context)

    def image_url_for(self, context: Context) -> str:
        return f"{context.services.settings.base_url}/uploads/{self._image_name}"

    @classmethod
    def of(cls, record: PostRecord, creator: UserRecord) -> Post:
        return cls(
            id=global_id("Post", record.id),
            title=record.title,
            content=record.content,
            created_at=record.created_at,
            updated_at=record.updated_at,
            creator=User.of(creator),
            _image_name=record.image_name,
        )

    @classmethod
    def from_event(cls, data: PostPayload) -> Post:
        creator = User.from_event(data["creator"])
        return cls(
            id=global_id("Post", data["id"]),
            title=data["title"],
            content=data["content"],
            created_at=datetime.fromisoformat(data["createdAt"]),
            updated_at=datetime.fromisoformat(data["updatedAt"]),
            creator=creator,
            _image_name=data["imageName"],
        )


@strawberry.type
class PostPage:
    posts: list[Post]
    total_posts: int
    page: int
    per_page: int


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class PostEdge:
    cursor: str
    node: Post


@strawberry.type
class PostConnection:
    edges: list[PostEdge]
    page_info: PageInfo


@strawberry.type
class AuthPayload:
    token: str
    user: User
    expires_at: datetime


@strawberry.enum
class PostAction(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@strawberry.type
class PostEvent:
    id: strawberry.ID = strawberry.field(
        description="Position in the event log, a plain number (unique across types: no "
        "other id is all digits); resume with postEvents(after: id) or Last-Event-ID."
    )
    action: PostAction
    post: Post = strawberry.field(description="For DELETED, the post as it was.")
    occurred_at: datetime

    @classmethod
    def from_event(cls, data: EventPayload) -> PostEvent:
        """The API object of an event payload (read by `events.payload`, any known version)."""
        return cls(
            id=strawberry.ID(str(data["id"])),
            action=PostAction(data["action"]),
            post=Post.from_event(data["post"]),
            occurred_at=datetime.fromisoformat(data["occurredAt"]),
        )


# Fields computed from the object and the request's context alone, by the same function
# their resolver calls: execution reads them directly, as it reads plain attributes
# (engine/execution.py). Keys are (GraphQL type, GraphQL field).
CONTEXT_FIELDS: dict[tuple[str, str], Callable[[Any, Context], object]] = {
    ("User", "email"): User.email_for,
    ("Post", "imageUrl"): Post.image_url_for,
}
