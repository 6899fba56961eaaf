"""The response cache with a fake event log and hub: what a unit test of it needs."""

from __future__ import annotations

from gql_feed.engine.response_cache import ResponseCache


class Log:
    """The event log's newest id, and a hub that hands the cache every event up to it.

    `failure`, when set, is raised by every read of the log; `reads` counts its reads; `catch_ups` notes each id the
    hub was asked to catch up to; with `delivers` False the hub hands on nothing (it could
    not read the events from the log).
    """

    def __init__(self) -> None:
        self.newest_id = 0
        self.failure: Exception | None = None
        self.catch_ups: list[int] = []
        self.delivers = True
        self.reads = 0
        self.cache: ResponseCache | None = None

    async def newest(self) -> int:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return self.newest_id

    async def catch_up_to(self, event_id: int) -> None:
        assert self.cache is not None
        self.catch_ups.append(event_id)
        if self.delivers:
            self.cache.note(event_id)


def cache_on(log: Log, max_bytes: int = 1 << 20) -> ResponseCache:
    cache = ResponseCache(max_bytes, log.newest, hub=log)  # type: ignore[arg-type]
    log.cache = cache
    return cache
