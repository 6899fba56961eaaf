"""Plain, immutable views of users and posts that services hand to the API and to events.

They carry no database session, so they are safe to keep after a transaction ends, and
they turn into the JSON body of an event (and back) without another query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gql_feed.events.payload import PostPayload, UserPayload
from gql_feed.storage import models


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    email: str
    name: str
    status: str
    created_at: datetime

    @classmethod
    def of(cls, user: models.User) -> UserRecord:
        return cls(user.id, user.email, user.name, user.status, user.created_at)

    def public_json(self) -> UserPayload:
        """What an event may carry about a user: never the email."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "createdAt": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PostRecord:
    id: int
    title: str
    content: str
    image_name: str
    creator_id: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, post: models.Post) -> PostRecord:
        return cls(
            post.id,
            post.title,
            post.content,
            post.image_name,
            post.creator_id,
            post.created_at,
            post.updated_at,
        )

    def event_json(self, creator: UserRecord) -> PostPayload:
        return {
            "id": self.id,
            "title": self.title,
            "content": self.content,
            "imageName": self.image_name,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
            "creator": creator.public_json(),
        }
