"""Fixtures of the HTTP tests: one real server for the session, and a trained model version.

See :mod:`tests.server.live` for the planted data set and the server process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personae import Store

from .live import LiveServer, make_keys, seed_store, start_server, stop_server, wait_until


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the whole HTTP test session, on a seeded SQLite store.

    ``--key-cache-ttl 0.2`` so that revocations show within the tests; ``--max-batch 500`` and
    ``--max-body-mb 0.2`` so that the limits are reachable with small requests.
    """
    home = tmp_path_factory.mktemp("serve")
    store_url = f"sqlite:///{home / 'personae.db'}"
    with Store(store_url) as store:
        history = seed_store(store)
        secrets, ids = make_keys(store)
    server = start_server(store_url, home / "server.log", "--key-cache-ttl", "0.2",
                          "--max-batch", "500", "--max-body-mb", "0.2",
                          "--models-dir", str(home / "models"))
    server.keys, server.key_ids, server.history = secrets, ids, history
    try:
        yield server
    finally:
        stop_server(server)
    # no request of the whole session, bad ones included, may have been a 500
    assert "unhandled error" not in server.log(), server.log()


@pytest.fixture(scope="session")
def trained(live: LiveServer) -> str:
    """Train an EASE version through the API and wait until it serves; returns its version."""
    with live.client("admin") as c:
        r = c.post("/v1/models:train", json={"model": "ease", "params": {"l2": 10.0}})
        assert r.status_code == 202, r.text
        version = r.json()["version"]

        def active() -> bool:
            models = c.get("/v1/models").json()
            states = {v["version"]: v for v in models["versions"]}
            assert states[version]["status"] != "failed", states[version]
            return models["active"] == version

        wait_until(active, timeout=120)
        # the server's worker picks the new version up within its refresh interval
        wait_until(lambda: c.get("/ready").json().get("model_version") == version, timeout=30)
    return str(version)
