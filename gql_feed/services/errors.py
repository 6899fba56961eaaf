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
    """A refusal that passes with time: `retry_after` (seconds) goes to the client as
    `extensions.retryAfter`."""

    code = "TOO_MANY_REQUESTS"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(
            message or f"Too many failed attempts; try again in {retry_after} seconds."
        )
        self.retry_after = retry_after


class TooManySignups(TooManyAttempts):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            retry_after,
            f"Too many signups from your address; try again in {retry_after} seconds.",
        )


class ServerBusy(TooManyAttempts):
    """Work of one kind (password hashing) is queued to its bound: refused, not piled up."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(retry_after, f"The server is busy; try again in {retry_after} seconds.")


class EventLogExpired(FeedError):
    """A resume point older than what the event log keeps: the client must refetch."""

    code = "EVENT_LOG_EXPIRED"
