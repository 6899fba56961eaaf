"""Errors a client may see. Each carries the Apollo-style code the API puts in `extensions.code`."""

from __future__ import annotations


class FeedError(Exception):
    """A refusal the client caused; its message is safe to show."""

    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(FeedError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "You must be logged in.") -> None:
        super().__init__(message)


class Forbidden(FeedError):
    code = "FORBIDDEN"


class NotFound(FeedError):
    code = "NOT_FOUND"


class BadUserInput(FeedError):
    """One or more input fields are wrong; `fields` maps each field name to what is wrong."""

    code = "BAD_USER_INPUT"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("Invalid input: " + "; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class TooManyAttempts(FeedError):
    code = "TOO_MANY_REQUESTS"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed attempts; try again in {retry_after} seconds.")
        self.retry_after = retry_after


class EventLogExpired(FeedError):
    """A resume point older than what the event log keeps: the client must refetch."""

    code = "EVENT_LOG_EXPIRED"
