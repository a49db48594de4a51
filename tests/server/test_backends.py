"""A smaller smoke test of ``personae serve --workers 2`` on SQLite and on PostgreSQL.

Two worker processes: a model version trained through one must be served by both (each picks
it up through its refresh), the real-time loop must hold whichever worker answers, and
/metrics must add up the workers' counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from personae import Store

from .live import make_keys, seed_store, start_server, stop_server, wait_until


def _total(metrics: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[-1])
    return total


def test_two_workers_smoke(store_url: str, tmp_path: Path) -> None:
    with Store(store_url) as store:
        history = seed_store(store)
        secrets, _ = make_keys(store)
    server = start_server(store_url, tmp_path / "server.log", "--workers", "2",
                          "--models-dir", str(tmp_path / "models"), timeout=90)
    try:
        headers = {"Authorization": f"Bearer {secrets['admin']}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
            assert c.put("/v1/items/new-1", json={"categories": ["even"]}).json()["inserted"] == 1
            r = c.post("/v1/events", json={"events": [
                {"user_id": "u00", "item_id": "new-1", "type": "view", "event_id": "pg-1"}]})
            assert r.json()["inserted"] == 1
            before = c.post("/v1/recommendations", json={"user_id": "u00", "k": 5}).json()
            assert before["model_version"] is None and "new-1" not in [
                it["item_id"] for it in before["items"]]

            version = c.post("/v1/models:train", json={"model": "ease"}).json()["version"]
            wait_until(lambda: c.get("/v1/models").json()["active"] == version, timeout=120)

            def both_workers_serve_it() -> bool:
                got = {c.post("/v1/recommendations", json={"user_id": "u02", "k": 3})
                       .json()["model_version"] for _ in range(20)}
                return got == {version}

            wait_until(both_workers_serve_it, timeout=30)
            # the real-time loop, across workers: the next request may land on either one
            for _ in range(4):
                recs = c.post("/v1/recommendations", json={"user_id": "u04", "k": 5}).json()
                ids = [it["item_id"] for it in recs["items"]]
                assert all(int(i[1:]) % 2 == 0 for i in ids), ids
                assert not set(ids) & set(history["u04"])
                c.post("/v1/events", json={"events": [
                    {"user_id": "u04", "item_id": ids[0], "type": "click"}]})
                after = c.post("/v1/recommendations", json={"user_id": "u04", "k": 5}).json()
                assert ids[0] not in [it["item_id"] for it in after["items"]]

            metrics = c.get("/metrics").text
            served = _total(metrics, "personae_http_requests_total",
                            route="/v1/recommendations", status="200")
            # 1 + 20 per poll + 8 requests, answered by two processes: the count is their sum
            assert served >= 29, re.findall(r"personae_http_requests_total.*", metrics)[:5]
            assert _total(metrics, "personae_events_ingested_total", result="inserted") >= 5
    finally:
        stop_server(server)
    assert "unhandled error" not in server.log(), server.log()


def test_no_auth_mode_serves_without_a_key(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'p.db'}"
    with Store(store_url) as store:
        seed_store(store)
    server = start_server(store_url, tmp_path / "server.log", "--no-auth")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/v1/users/u00").json()["user_id"] == "u00"
            # every request is an admin's
            assert c.delete("/v1/users/u01").json()["deleted"]["users"] == 1
            assert c.post("/v1/recommendations", json={"user_id": "u00"}).status_code == 200
    finally:
        stop_server(server)
    assert "--no-auth" in server.log()  # the warning was printed


def test_settings_round_trip_through_the_environment() -> None:
    import pytest

    from personae.errors import InvalidInput
    from personae.server import ServerSettings

    settings = ServerSettings(store="sqlite:////x/p.db", models_dir="/m", auth=False,
                              max_body_bytes=123, max_batch=7, key_cache_ttl=0.5)
    assert ServerSettings.from_env(settings.to_env()) == settings
    assert ServerSettings.from_env({}) == ServerSettings()
    with pytest.raises(InvalidInput, match="PERSONAE_SERVER_MAX_BATCH must be an int"):
        ServerSettings.from_env({"PERSONAE_SERVER_MAX_BATCH": "many"})
    with pytest.raises(InvalidInput, match="'max_batch' setting must be an int >= 1"):
        ServerSettings(max_batch=0)
