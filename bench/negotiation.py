"""What reading the Accept header costs per request: the first time a header is seen
(parsed and decided) and every time after (one cached lookup), for the Accept headers
real clients send. Prints microseconds per request.

    .venv/bin/python bench/negotiation.py
"""

from __future__ import annotations

import timeit

from gql_feed.transport.negotiation import accepted, parse_accept

HEADERS = {
    "urql": "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed",
    "Apollo Client (subscription)": 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,'
    "application/json",
    "graphql-sse": "text/event-stream",
    "curl / httpx": "*/*",
}
ROUNDS = 20_000


def main() -> None:
    for name, header in HEADERS.items():

        def first_time(header: str = header) -> None:
            parse_accept.cache_clear()
            accepted.cache_clear()
            accepted(header)

        cold = timeit.timeit(first_time, number=ROUNDS) / ROUNDS * 1e6
        warm = timeit.timeit(lambda header=header: accepted(header), number=ROUNDS) / ROUNDS * 1e6
        print(f"{name:30} first time {cold:7.2f} us   cached {warm:5.2f} us  -> {accepted(header)}")


if __name__ == "__main__":
    main()
