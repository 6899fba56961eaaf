"""GET /metrics, read by prometheus_client's own parser of the text format."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


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
