"""The order in which `make test`'s workers take the test files (tests/conftest.py)."""

# The files that take longest, longest first (from `pytest --durations=0`, summed by file).
# `make test` gives each worker a whole file at a time (`--dist loadfile`): a long file
# taken last keeps one worker busy while the other has nothing left, so these go first.
LONGEST_FIRST = (
    "tests/app/test_scale_out.py",
    "tests/engine/test_fuzz.py",
    "tests/services/test_signup_flood.py",
    "tests/transport/streams/test_live_sse.py",
    "tests/project/test_readme_promises.py",
    "tests/clients/test_graphql_sse_example.py",
    "tests/live/test_resume_stress.py",
    "tests/engine/test_trusted_documents.py",
    "tests/engine/test_response_cache.py",
    "tests/e2e/test_browser.py",
    "tests/live/test_live_resume.py",
    "tests/project/test_doc_examples.py",
    "tests/transport/ws/test_live_transport_ws.py",
    "tests/transport/streams/test_live_multipart.py",
    "tests/clients/test_relay_example.py",
    "tests/transport/ws/test_live_legacy_ws.py",
)
