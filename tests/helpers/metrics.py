"""GET /metrics, read by prometheus_client's own parser of the text format."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.server import TLS

if TYPE_CHECKING:
    from tests.helpers.server import LiveServer


class Samples:
    """One scrape: each sample's value by its name and labels."""

    def __init__(self, text: str) -> None:
        self.values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for one not (yet) exported."""
        return self.values.get((name, frozenset(labels.items())), 0.0)


async def scrape(base_url: str) -> Samples:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{base_url}/metrics")
    response.raise_for_status()
    return Samples(response.text)


def metric_samples(server: LiveServer) -> dict[str, float]:
    """Every sample of a server's GET /metrics, by its name with labels as the text
    format writes them (`x_bucket{le="0.1"}`)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10, verify=TLS).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{name}="{value}"' for name, value in sample.labels.items())
            samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return samples


def gauges(server: LiveServer) -> dict[str, float]:
    """The gql_feed_live_* samples of GET /metrics."""
    return {k: v for k, v in metric_samples(server).items() if k.startswith("gql_feed_live_")}
