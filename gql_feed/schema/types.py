"""The GraphQL object types. Every object has a stable `id` for normalized client caches.

Every field declares its policy (schema/policies.py): whether it can change without an
event, and whether it depends on the viewer. Most follow the events and are the same for
everyone (`BY_EVENTS`); the others say why beside them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from gql_feed.events.payload import EventPayload, PostPayload, UserPayload
from gql_feed.schema.context import Context
from gql_feed.schema.ids import global_id, number_of
from gql_feed.schema.policies import ANY_TIME, BY_EVENTS, Audience, Changes, policy
from gql_feed.services.records import PostRecord, UserRecord


@strawberry.interface(
    description="An object with an id unique across types, which `node(id:)` fetches again "
    "(Relay's Global Object Identification)."
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="A global id; never all digits.", metadata=BY_EVENTS
    )


@strawberry.type
class User(Node):
    name: str = strawberry.field(metadata=BY_EVENTS)
    # updateStatus commits no event.
    status: str = strawberry.field(metadata=ANY_TIME)
    created_at: datetime = strawberry.field(metadata=BY_EVENTS)
    _email: strawberry.Private[str | None]
    _is_owner: strawberry.Private[bool] = False

    def email_for(self, context: Context) -> str | None:
        if self._is_owner or context.optional_viewer_id == number_of(self.id):
            return self._email
        return None

    @strawberry.field(
        description="Only visible to the user themself; null for everyone else.",
        metadata=policy(Changes.WITH_EVENTS, Audience.VIEWER, reads=email_for),
    )
    def email(self, info: Info[Context, None]) -> str | None:
        return self.email_for(info.context)

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


@strawberry.type
class Post(Node):
    title: str = strawberry.field(metadata=BY_EVENTS)
    content: str = strawberry.field(metadata=BY_EVENTS)
    created_at: datetime = strawberry.field(metadata=BY_EVENTS)
    updated_at: datetime = strawberry.field(metadata=BY_EVENTS)
    creator: User = strawberry.field(description="Who wrote the post.", metadata=BY_EVENTS)
    _image_name: strawberry.Private[str]

    def image_url_for(self, context: Context) -> str:
        return f"{context.services.settings.base_url}/uploads/{self._image_name}"

    @strawberry.field(
        description="An absolute URL a browser can load.",
        metadata=policy(Changes.WITH_EVENTS, Audience.ANYONE, reads=image_url_for),
    )
    def image_url(self, info: Info[Context, None]) -> str:
        return self.image_url_for(info.context)

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
    posts: list[Post] = strawberry.field(metadata=BY_EVENTS)
    total_posts: int = strawberry.field(metadata=BY_EVENTS)
    page: int = strawberry.field(metadata=BY_EVENTS)
    per_page: int = strawberry.field(metadata=BY_EVENTS)


@strawberry.type
class PageInfo:
    has_next_page: bool = strawberry.field(metadata=BY_EVENTS)
    end_cursor: str | None = strawberry.field(metadata=BY_EVENTS)


@strawberry.type
class PostEdge:
    cursor: str = strawberry.field(metadata=BY_EVENTS)
    node: Post = strawberry.field(metadata=BY_EVENTS)


@strawberry.type
class PostConnection:
    edges: list[PostEdge] = strawberry.field(metadata=BY_EVENTS)
    page_info: PageInfo = strawberry.field(metadata=BY_EVENTS)


LOGIN = policy(Changes.WITHOUT_EVENT, Audience.VIEWER)


@strawberry.type
class AuthPayload:
    """The answer to a login: a fresh token for whoever logged in, each time."""

    token: str = strawberry.field(metadata=LOGIN)
    user: User = strawberry.field(metadata=LOGIN)
    expires_at: datetime = strawberry.field(metadata=LOGIN)


@strawberry.enum
class PostAction(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@strawberry.type
class PostEvent:
    id: strawberry.ID = strawberry.field(
        description="Position in the event log, a plain number (unique across types: no "
        "other id is all digits); resume with postEvents(after: id) or Last-Event-ID.",
        metadata=BY_EVENTS,
    )
    action: PostAction = strawberry.field(metadata=BY_EVENTS)
    post: Post = strawberry.field(
        description="For DELETED, the post as it was.", metadata=BY_EVENTS
    )
    occurred_at: datetime = strawberry.field(metadata=BY_EVENTS)

    @classmethod
    def from_event(cls, data: EventPayload) -> PostEvent:
        """The API object of an event payload (read by `events.payload`, any known version)."""
        return cls(
            id=strawberry.ID(str(data["id"])),
            action=PostAction(data["action"]),
            post=Post.from_event(data["post"]),
            occurred_at=datetime.fromisoformat(data["occurredAt"]),
        )
