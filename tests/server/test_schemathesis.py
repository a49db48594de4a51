"""Property-based requests generated from the server's own OpenAPI schema: never a 500.

A server of its own (model training, rollback and forgetting are fuzzed too), with an admin
key so that requests get past authentication, plus a round without a key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from personae import Store

from .live import LiveServer, make_keys, seed_store, start_server, stop_server

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    store_url = f"sqlite:///{home / 'personae.db'}"
    with Store(store_url) as store:
        seed_store(store)
        secrets, ids = make_keys(store)
    server = start_server(store_url, home / "server.log", "--max-batch", "50",
                          "--max-body-mb", "0.1", "--models-dir", str(home / "models"))
    server.keys, server.key_ids = secrets, ids
    try:
        yield server
    finally:
        stop_server(server)


def _run(server: LiveServer, headers: dict[str, str]) -> dict[str, int]:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    statuses: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck),
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        @hypothesis.given(case=operation.as_strategy())
        def check(case: object) -> None:
            response = case.call(base_url=server.url, headers=headers)  # type: ignore[attr-defined]
            key = f"{response.status_code // 100}xx"
            statuses[key] = statuses.get(key, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "  # type: ignore
                                f"{response.status_code} {response.text[:300]}")

        check()
    assert not failures, "\n".join(failures[:10]) + "\n" + server.log()
    return statuses


def test_no_server_errors_with_a_key(fuzzed: LiveServer) -> None:
    statuses = _run(fuzzed, {"Authorization": f"Bearer {fuzzed.keys['admin']}"})
    # the fuzzing reached the endpoints: both accepted and refused requests
    assert statuses.get("2xx", 0) > 0 and statuses.get("4xx", 0) > 0, statuses
    assert "unhandled error" not in fuzzed.log()


def test_no_server_errors_without_a_key(fuzzed: LiveServer) -> None:
    statuses = _run(fuzzed, {})
    assert statuses.get("4xx", 0) > 0, statuses
