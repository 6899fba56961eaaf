"""Posts: write them with their event in one transaction, publish after commit, read pages.

The path of one change: check the input, store the image, then in ONE transaction write
the post and its event-log row; after the commit hand the already-encoded event to the
bus and remove any image file the change made obsolete. If anything fails before the
commit, the new image file is removed, so nothing is left half-done.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, update

from gql_feed.events.payload import Action, event_body
from gql_feed.services.errors import BadUserInput, Forbidden, NotFound, Unauthenticated
from gql_feed.services.records import PostRecord, UserRecord
from gql_feed.storage import event_log
from gql_feed.storage.database import Database
from gql_feed.storage.event_log import LoggedEvent
from gql_feed.storage.images import ImageRejected, ImageStore, Readable
from gql_feed.storage.models import Post, User

logger = logging.getLogger(__name__)

MIN_TEXT_LENGTH = 5
MAX_TITLE_LENGTH = 200
MAX_CONTENT_LENGTH = 5_000
CURSOR_PREFIX = "post:"
# Ids are 64-bit signed integers in both databases: a larger one cannot even be compared.
MAX_ID = 2**63 - 1

# Core statements, built once: a new post needs no ORM unit of work, only its id back.
_POSTS = Post.metadata.tables[Post.__tablename__]
_USERS = User.metadata.tables[User.__tablename__]
_INSERT_POST = insert(_POSTS).returning(_POSTS.c.id)
_SELECT_VIEWER = select(
    _USERS.c.id, _USERS.c.email, _USERS.c.name, _USERS.c.status, _USERS.c.created_at
).where(_USERS.c.id == bindparam("viewer_id"))
_BY_ID = _POSTS.c.id == bindparam("post_id")
# A PostRecord's fields, in its order.
_POST_COLUMNS = (
    _POSTS.c.id,
    _POSTS.c.title,
    _POSTS.c.content,
    _POSTS.c.image_name,
    _POSTS.c.creator_id,
    _POSTS.c.created_at,
    _POSTS.c.updated_at,
)
_SELECT_POST = select(*_POST_COLUMNS).where(_BY_ID)
_SELECT_POST_FOR_UPDATE = _SELECT_POST.with_for_update()
_UPDATE_POST = update(_POSTS).where(_BY_ID)
_DELETE_POST = delete(_POSTS).where(_BY_ID)
_COUNT_POSTS = select(func.count()).select_from(_POSTS)
# A page, each post with its creator and the total, in one statement (so one snapshot):
# the API then needs no second query for the creators, and SQLite no second hop.
_WITH_CREATOR = select(
    *_POST_COLUMNS,
    _USERS.c.email.label("creator_email"),
    _USERS.c.name.label("creator_name"),
    _USERS.c.status.label("creator_status"),
    _USERS.c.created_at.label("creator_created_at"),
).join_from(_POSTS, _USERS, _POSTS.c.creator_id == _USERS.c.id)
_PAGE = (
    _WITH_CREATOR.add_columns(_COUNT_POSTS.scalar_subquery().label("total"))
    .order_by(_POSTS.c.id.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_ONE = _WITH_CREATOR.where(_POSTS.c.id == bindparam("id"))
_FEED = _WITH_CREATOR.order_by(_POSTS.c.id.desc()).limit(bindparam("limit"))
_FEED_AFTER = _FEED.where(_POSTS.c.id < bindparam("before"))


# A `count(*)` or an OFFSET over at most this many rows may run on the event loop (well
# under a millisecond); past it, on a reader thread (`Database.run_scan`).
LOOP_SCAN_ROWS = 10_000


@dataclass(slots=True)
class TableSize:
    """The number of posts as the last page read counted it (None before the first)."""

    total: int | None = None


class Publisher(Protocol):
    """Sends a committed event to every process; must not raise (the log keeps the event)."""

    async def publish(self, event: LoggedEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class PostWithCreator:
    post: PostRecord
    creator: UserRecord


@dataclass(frozen=True, slots=True)
class PostPage:
    posts: Sequence[PostRecord]
    total: int
    page: int
    per_page: int
    creators: Mapping[int, UserRecord] = dataclass_field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeedSlice:
    posts: Sequence[PostRecord]
    has_next: bool
    creators: Mapping[int, UserRecord] = dataclass_field(default_factory=dict)


def _post_of(row: Row[*tuple[Any, ...]]) -> PostRecord:
    return PostRecord(
        row.id,
        row.title,
        row.content,
        row.image_name,
        row.creator_id,
        row.created_at,
        row.updated_at,
    )


def _creator_of(row: Row[*tuple[Any, ...]]) -> UserRecord:
    return UserRecord(
        row.creator_id,
        row.creator_email,
        row.creator_name,
        row.creator_status,
        row.creator_created_at,
    )


def _user_of(row: Row[*tuple[Any, ...]] | None) -> UserRecord:
    """The viewer's record, or Unauthenticated when the account was deleted meanwhile."""
    if row is None:
        raise Unauthenticated("Your account no longer exists.")
    return UserRecord(
        id=row.id, email=row.email, name=row.name, status=row.status, created_at=row.created_at
    )


def _viewer_in(connection: Connection, viewer_id: int) -> UserRecord:
    return _user_of(connection.execute(_SELECT_VIEWER, {"viewer_id": viewer_id}).one_or_none())


def _owned_in(
    connection: Connection, viewer_id: int, post_id: int, lock: bool = False
) -> PostRecord:
    """The post if the viewer owns it. In a write transaction its row stays locked until
    the end (`FOR UPDATE` on PostgreSQL; SQLite's writers take turns anyway), so that two
    changes of one post cannot both read the same old image name or overwrite each
    other's text."""
    statement = _SELECT_POST_FOR_UPDATE if lock else _SELECT_POST
    row = connection.execute(statement, {"post_id": post_id}).one_or_none()
    if row is None:
        raise NotFound(f"No post with id {post_id}.")
    if row.creator_id != viewer_id:
        raise Forbidden("Only the creator of a post may change it.")
    return _post_of(row)


def _record_in(
    connection: Connection, action: Action, change: PostWithCreator, occurred_at: datetime
) -> LoggedEvent:
    body = event_body(action, occurred_at, change.post.event_json(change.creator))
    return event_log.append_in(
        connection, action=action, post_id=change.post.id, occurred_at=occurred_at, body=body
    )


def encode_cursor(post_id: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{post_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The post id a cursor names; only what `encode_cursor` could have made (a positive
    64-bit id) passes, so nothing a client invents reaches SQL as an out-of-range integer."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if text.startswith(CURSOR_PREFIX):
            post_id = int(text.removeprefix(CURSOR_PREFIX))
            if 1 <= post_id <= MAX_ID:
                return post_id
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise BadUserInput({"after": "Not a cursor this server gave out."})


def check_text(title: str | None, content: str | None) -> dict[str, str]:
    problems: dict[str, str] = {}
    for field, value, limit in (
        ("title", title, MAX_TITLE_LENGTH),
        ("content", content, MAX_CONTENT_LENGTH),
    ):
        if value is None:
            continue
        if len(value) < MIN_TEXT_LENGTH:
            problems[field] = f"The {field} needs at least {MIN_TEXT_LENGTH} characters."
        elif len(value) > limit:
            problems[field] = f"The {field} must be at most {limit} characters."
    return problems


@dataclass(frozen=True)
class PostService:
    db: Database
    images: ImageStore
    publisher: Publisher
    max_per_page: int
    max_first: int
    max_page_offset: int = 10_000
    # The posts' total as last counted: whether counting it again may run on the loop.
    table: TableSize = dataclass_field(default_factory=lambda: TableSize())

    async def create(
        self, viewer_id: int, title: str, content: str, image: Readable
    ) -> PostWithCreator:
        title, content = title.strip(), content.strip()
        if problems := check_text(title, content):
            raise BadUserInput(problems)
        image_name = await self._store_image(image)

        def write(connection: Connection) -> tuple[PostWithCreator, LoggedEvent]:
            creator = _viewer_in(connection, viewer_id)
            now = datetime.now(UTC)
            post_id: int = connection.execute(
                _INSERT_POST,
                {
                    "title": title,
                    "content": content,
                    "image_name": image_name,
                    "creator_id": viewer_id,
                    "created_at": now,
                    "updated_at": now,
                },
            ).scalar_one()
            post = PostRecord(
                id=post_id,
                title=title,
                content=content,
                image_name=image_name,
                creator_id=viewer_id,
                created_at=now,
                updated_at=now,
            )
            result = PostWithCreator(post, creator)
            body = event_body("CREATED", now, post.event_json(creator))
            event = event_log.append_in(
                connection, action="CREATED", post_id=post_id, occurred_at=now, body=body
            )
            return result, event

        try:
            result, event = await self.db.run_write(write)
        except BaseException:
            await self.images.delete(image_name)
            raise
        await self.publisher.publish(event)
        return result

    async def update(
        self,
        viewer_id: int,
        post_id: int,
        title: str | None,
        content: str | None,
        image: Readable | None,
    ) -> PostWithCreator:
        title = title.strip() if title is not None else None
        content = content.strip() if content is not None else None
        if problems := check_text(title, content):
            raise BadUserInput(problems)
        await self._owned(viewer_id, post_id)  # refuse before storing any file
        new_image = await self._store_image(image) if image is not None else None

        def write(connection: Connection) -> tuple[PostWithCreator, LoggedEvent, str]:
            post = _owned_in(connection, viewer_id, post_id, lock=True)
            creator = _viewer_in(connection, viewer_id)
            now = datetime.now(UTC)
            changed = PostRecord(
                id=post.id,
                title=title if title is not None else post.title,
                content=content if content is not None else post.content,
                image_name=new_image or post.image_name,
                creator_id=post.creator_id,
                created_at=post.created_at,
                updated_at=now,
            )
            connection.execute(
                _UPDATE_POST,
                {
                    "post_id": post_id,
                    "title": changed.title,
                    "content": changed.content,
                    "image_name": changed.image_name,
                    "updated_at": now,
                },
            )
            result = PostWithCreator(changed, creator)
            return result, _record_in(connection, "UPDATED", result, now), post.image_name

        try:
            result, event, old_image = await self.db.run_write(write)
        except BaseException:
            if new_image:
                await self.images.delete(new_image)
            raise
        if new_image:
            await self.images.delete(old_image)
        await self.publisher.publish(event)
        return result

    async def delete(self, viewer_id: int, post_id: int) -> PostWithCreator:
        def write(connection: Connection) -> tuple[PostWithCreator, LoggedEvent]:
            post = _owned_in(connection, viewer_id, post_id, lock=True)
            creator = _viewer_in(connection, viewer_id)
            connection.execute(_DELETE_POST, {"post_id": post_id})
            result = PostWithCreator(post, creator)
            return result, _record_in(connection, "DELETED", result, datetime.now(UTC))

        result, event = await self.db.run_write(write)
        await self.images.delete(result.post.image_name)
        await self.publisher.publish(event)
        return result

    async def get(self, post_id: int) -> PostWithCreator | None:
        def read(connection: Connection) -> PostWithCreator | None:
            row = connection.execute(_ONE, {"id": post_id}).first()
            return PostWithCreator(_post_of(row), _creator_of(row)) if row else None

        return await self.db.run_read(read)

    async def page(self, page: int, per_page: int) -> PostPage:
        """A numbered page and the total. Both cost time in proportion to the table (the
        OFFSET walks the rows before the page, `count(*)` all of them), so the depth is
        bounded (`max_page_offset`) and, once the table is larger than `LOOP_SCAN_ROWS`
        (or before its size is known), the read runs on a reader thread, not the loop."""
        problems: dict[str, str] = {}
        if page < 1:
            problems["page"] = "The page must be at least 1."
        if not 1 <= per_page <= self.max_per_page:
            problems["perPage"] = f"perPage must be between 1 and {self.max_per_page}."
        offset = (max(page, 1) - 1) * per_page
        if not problems and offset > self.max_page_offset:
            problems["page"] = (
                f"Pages reach at most {self.max_page_offset} posts deep (this one starts "
                f"after {offset}); go further with feed(first:, after:)."
            )
        if problems:
            raise BadUserInput(problems)

        def read(connection: Connection) -> PostPage:
            rows = connection.execute(_PAGE, {"limit": per_page, "offset": offset}).all()
            total = rows[0].total if rows else connection.scalar(_COUNT_POSTS) or 0
            creators = {row.creator_id: _creator_of(row) for row in rows}
            return PostPage([_post_of(row) for row in rows], total, page, per_page, creators)

        known = self.table.total
        if known is None or known > LOOP_SCAN_ROWS or offset > LOOP_SCAN_ROWS:
            result = await self.db.run_scan(read)
        else:
            result = await self.db.run_read(read)
        self.table.total = result.total
        return result

    async def feed(self, first: int, after: str | None) -> FeedSlice:
        if not 1 <= first <= self.max_first:
            raise BadUserInput({"first": f"first must be between 1 and {self.max_first}."})
        before = decode_cursor(after) if after is not None else None

        def read(connection: Connection) -> FeedSlice:
            if before is None:
                rows = connection.execute(_FEED, {"limit": first + 1}).all()
            else:
                rows = connection.execute(_FEED_AFTER, {"limit": first + 1, "before": before}).all()
            creators = {row.creator_id: _creator_of(row) for row in rows}
            return FeedSlice([_post_of(row) for row in rows[:first]], len(rows) > first, creators)

        return await self.db.run_read(read)

    async def _store_image(self, image: Readable) -> str:
        try:
            return await self.images.save(image)
        except ImageRejected as rejected:
            raise BadUserInput({"image": str(rejected)}) from None

    async def _owned(self, viewer_id: int, post_id: int) -> None:
        await self.db.run_read(lambda connection: _owned_in(connection, viewer_id, post_id))
