"""Removing image files that no post uses: what a crash leaves behind.

A post's image is written before the transaction that inserts the post, so a process
killed in between leaves an image that nothing names, and one killed mid-write leaves a
hidden `.part` file. Each process sweeps them at start, before it serves.

Several processes (`serve --workers N`, or hosts sharing the upload directory) may be
writing at that moment, so a file is removed only when both hold:

- it was last written more than `grace_seconds` ago (its mtime): no request still
  writing it, or about to commit a post naming it, has been running that long;
- it is a `.part` file, or no post names it. The posts are read after the directory,
  so a post committed before the sweep looked keeps its file.

The grace must exceed the longest createPost or updatePost (seconds) plus any clock
difference between hosts writing to a shared directory; the default is 15 minutes.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from gql_feed.storage.database import Database
from gql_feed.storage.images import ImageStore
from gql_feed.storage.models import Post

logger = logging.getLogger(__name__)


async def sweep_orphan_images(db: Database, images: ImageStore, grace_seconds: float) -> int:
    """Remove orphans older than the grace; the number removed."""
    unused, partials = await images.pool.run(images.files_older_than, grace_seconds)
    if unused:
        async with db.read() as session:
            used = await session.stream_scalars(select(Post.image_name))
            async for name in used:
                unused.discard(name)
    orphans = unused | partials
    if not orphans:
        return 0
    removed = await images.pool.run(images.remove_files, orphans)
    logger.info("Removed %d image files no post uses (left by a crash)", removed)
    return removed
