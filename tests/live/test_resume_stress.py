"""Short form of the resume stress (the long one is `bench/resume_stress.py`).

A reader resumes with `after:` on one server, then the other, again and again, while
writers change posts through both and a busy process contends for the CPU: every event
must arrive exactly once, in order, with the log poll slowed to a minute so that
nothing is rescued by it, and no publish may fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.helpers.live import signup
from tests.helpers.resume_stress import STRESS_ENV, busy_cpu, resume_stress
from tests.helpers.server import LiveServer
from tests.helpers.services import (
    fresh_postgres_database,
    postgres_notify_url,
    redis_url,
    unique_channel,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.timeout(300)  # two server starts on a contended machine, then about 25 s of stress
@pytest.mark.parametrize("bus", ["redis", "postgres"])
async def test_resumes_racing_writes_under_cpu_contention(
    database_url: str, live_server_factory: Callable[..., LiveServer], bus: str
) -> None:
    bus_url = redis_url() if bus == "redis" else postgres_notify_url(database_url)
    env = {
        "GQL_FEED_DATABASE_URL": database_url,
        "GQL_FEED_BROADCAST_URL": bus_url,
        "GQL_FEED_BROADCAST_CHANNEL": unique_channel(),
        **STRESS_ENV,
    }
    servers = (live_server_factory(**env), live_server_factory(**env))
    token, _ = await signup(servers[0])
    # One busy loop beside the servers: contention enough to shake the timing, with its
    # load bounded to one process, so that the files `make test` runs beside this one
    # still get their share of the cores.
    with busy_cpu(1):
        result = await resume_stress(servers, token, rounds=10, writes_per_round=8)
    print(result.line(bus))
    assert result.resumes == 10
    assert result.writes == 10 * 8
    assert result.problems == []
    assert result.lost == []
    assert result.duplicated == []
    assert result.out_of_order == 0
    # No broker trouble here, so no publish may fail: a failed one reaches the other server
    # only later (with the next event, an announcement, or the poll), which is how this
    # once lost an event, when overlapping publishes collided on the NOTIFY connection.
    assert result.bus["publish failures"] == 0
    assert result.bus["bus reconnects"] == 0
