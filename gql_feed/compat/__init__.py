"""Every use of another library's private names or undocumented behaviour, one module per
upstream: `strawberry`, `graphql_core`, `uvicorn`.

Each is here because no public API does the job (yet). Each entry names the release it was
checked against, and tests/compat/test_compat.py fails loudly when it changes (a name gone, a
signature changed, a behaviour no longer true), so that an upgrade breaks a test that says
why instead of the server; the same file fails when one of these names is used anywhere
else in gql_feed. `make test-latest` runs those tests against the newest releases the
version ranges allow.
"""
