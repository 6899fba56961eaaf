"""What every resolver can reach: the services, the viewer, and per-request loaders."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from gql_feed.config import Settings
from gql_feed.services.accounts import AccountService
from gql_feed.services.errors import FeedError, Unauthenticated
from gql_feed.services.posts import PostService
from gql_feed.services.records import UserRecord
from gql_feed.services.tickets import StreamTickets
from gql_feed.services.tokens import Claims, TokenService

if TYPE_CHECKING:
    from gql_feed.events.hub import EventHub


@dataclass(frozen=True)
class Services:
    """Everything the API calls into; built once per process by the app."""

    settings: Settings
    accounts: AccountService
    posts: PostService
    tokens: TokenService
    hub: EventHub
    tickets: StreamTickets


class Context:
    """Per operation. The viewer is whoever the bearer token names, checked lazily:
    a bad token only fails the fields that need a login, so `login` still works."""

    def __init__(
        self,
        services: Services,
        claims: Claims | None,
        token_error: FeedError | None = None,
        client: str = "unknown",
    ) -> None:
        self.services = services
        self.claims = claims
        self.token_error = token_error
        self.client = client

    @cached_property
    def users(self) -> DataLoader[int, UserRecord | None]:
        """Users by id, batched per operation; made on first use (most never need it)."""
        return DataLoader(load_fn=self.services.accounts.get_many)

    @property
    def viewer_id(self) -> int:
        """The logged-in user's id; UNAUTHENTICATED otherwise."""
        if self.claims is None:
            raise self.token_error or Unauthenticated()
        return self.claims.user_id

    @property
    def optional_viewer_id(self) -> int | None:
        return self.claims.user_id if self.claims else None
