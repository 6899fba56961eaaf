"""Per-user shares of the live machinery: streams, subscriptions and groups.

The process caps (`GQL_FEED_LIVE_MAX_GROUPS`, the file descriptors) protect the server,
but one login could fill them alone: a thousand SSE streams with distinct operation
names took every group, and every other user's new subscription was refused. So each
user also has caps of their own, well under the process's, counted across every
transport (WebSocket, SSE in both modes, multipart):

- streams: open WebSocket connections (once `connection_init` named the user), SSE
  streams and multipart responses;
- subscriptions: live subscriptions, wherever they run;
- groups: distinct groups (see `groups`) the user's subscriptions are members of.

The counts are per process, like the process caps they protect.
"""

from __future__ import annotations

from collections import Counter

from gql_feed.config import Settings
from gql_feed.live.groups import GroupKey, Subscriber, TooManyGroups
from gql_feed.services.errors import FeedError


class TooManyStreams(FeedError):
    code = "TOO_MANY_STREAMS"


class TooManyUserSubscriptions(FeedError):
    code = "TOO_MANY_SUBSCRIPTIONS"


class UserQuotas:
    """What each user holds open in this process, and the refusals past their caps."""

    def __init__(self, max_streams: int, max_subscriptions: int, max_groups: int) -> None:
        self.max_streams = max_streams
        self.max_subscriptions = max_subscriptions
        self.max_groups = max_groups
        self._streams: Counter[int] = Counter()
        self._subscriptions: Counter[int] = Counter()
        self._groups: dict[int, Counter[GroupKey]] = {}
        self._owners: dict[Subscriber, int] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> UserQuotas:
        return cls(
            settings.live_max_streams_per_user,
            settings.live_max_subscriptions_per_user,
            settings.live_max_groups_per_user,
        )

    def open_stream(self, user_id: int) -> None:
        """Count one more stream for the user; raises TooManyStreams past the cap."""
        if self._streams[user_id] >= self.max_streams:
            raise TooManyStreams(
                f"At most {self.max_streams} live streams per login at once (WebSocket, SSE "
                "and multipart together); close one, or carry more operations on one."
            )
        self._streams[user_id] += 1

    def close_stream(self, user_id: int) -> None:
        count = self._streams[user_id] - 1
        if count > 0:
            self._streams[user_id] = count
        else:
            del self._streams[user_id]

    def refusal(self, user_id: int, key: GroupKey) -> FeedError | None:
        """Why the user may not join group `key` now, if they may not."""
        if self._subscriptions[user_id] >= self.max_subscriptions:
            return TooManyUserSubscriptions(
                f"At most {self.max_subscriptions} live subscriptions per login at once."
            )
        groups = self._groups.get(user_id)
        held = 0 if groups is None else len(groups)
        if held >= self.max_groups and (groups is None or key not in groups):
            return TooManyGroups(
                f"At most {self.max_groups} distinct subscriptions per login at once; "
                "subscribe with an operation and variables you already use."
            )
        return None

    def joined(self, user_id: int, subscriber: Subscriber) -> None:
        self._owners[subscriber] = user_id
        self._subscriptions[user_id] += 1
        self._groups.setdefault(user_id, Counter())[subscriber.group.key] += 1

    def left(self, subscriber: Subscriber) -> None:
        user_id = self._owners.pop(subscriber, None)
        if user_id is None:
            return
        count = self._subscriptions[user_id] - 1
        if count > 0:
            self._subscriptions[user_id] = count
        else:
            del self._subscriptions[user_id]
        groups = self._groups[user_id]
        key = subscriber.group.key
        groups[key] -= 1
        if groups[key] <= 0:
            del groups[key]
        if not groups:
            del self._groups[user_id]
