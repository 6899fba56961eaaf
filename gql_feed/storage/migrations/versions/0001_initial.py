"""Users, posts and the post event log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from gql_feed.storage.models import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("status", sa.String(500), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "posts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("image_name", sa.String(100), nullable=False),
        sa.Column("creator_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_posts_creator_id", "posts", ["creator_id"])
    op.create_table(
        "post_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("post_id", BigId, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_post_events_post_id", "post_events", ["post_id"])


def downgrade() -> None:
    op.drop_table("post_events")
    op.drop_index("ix_posts_creator_id", "posts")
    op.drop_table("posts")
    op.drop_table("users")
