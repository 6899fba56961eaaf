"""Logging for the server process and its uvicorn workers, configured once for both.

uvicorn writes three INFO lines per WebSocket (accepted, connection open, connection
closed). A feed server holds thousands of sockets that come and go with every network
blip: those lines drown the log, and formatting them was about a twelfth of the
server's work while 2,000 clients connected. They are shown only when uvicorn's log
level is DEBUG. The HTTP access log is a setting of its own (`GQL_FEED_ACCESS_LOG`,
handed to uvicorn, which then makes no access records at all).

Start-up says one thing per line: the migrations (applied, or up to date), the database,
the bus, and where the server listens. Alembic's own INFO lines (seven "setup plugin"
lines per start, the migration context's details) and uvicorn's "Waiting for application
startup/shutdown" say nothing an operator acts on: they show at DEBUG only.

The configuration is a `logging.config` dict handed to uvicorn, so worker processes,
which configure logging afresh, get the same format and filter.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONNECTION_MESSAGES = frozenset(
    {
        '%s - "WebSocket %s" [accepted]',
        "connection open",
        "connection closed",
        "Waiting for application startup.",
        "Waiting for application shutdown.",
    }
)


class ConnectionChatter(logging.Filter):
    """Passes uvicorn's per-WebSocket (and waiting) lines only when the log level is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in CONNECTION_MESSAGES:
            return True
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def logging_config(level: str) -> dict[str, Any]:
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"connection_chatter": {"()": ConnectionChatter}},
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level, "filters": ["connection_chatter"]},
            "uvicorn.access": {"level": level},
            "alembic": {"level": level if level in ("DEBUG", "TRACE") else "WARNING"},
        },
    }


def shown_url(url: str) -> str:
    """A database or bus URL fit for a log line: its password, if any, as `***`."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]
