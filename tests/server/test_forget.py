"""Forgetting a user over HTTP reaches the served model: per-user state at once, a retrained
version within the configured time, and an audit trail (a server of its own: it retrains)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from personae import Store
from personae.models import load_model

from .live import make_keys, seed_store, start_server, stop_server, wait_until


def test_forgetting_a_user_reaches_the_served_model(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'personae.db'}"
    with Store(store_url) as store:
        seed_store(store)
        secrets, _ = make_keys(store)
    server = start_server(store_url, tmp_path / "server.log", "--models-dir",
                          str(tmp_path / "models"), "--retrain-after-forget", "1",
                          "--maintenance-interval", "0.2")
    server.keys = secrets
    try:
        with server.client("admin") as c:
            r = c.post("/v1/models:train", json={"model": "als",
                                                 "params": {"factors": 4, "iterations": 2}})
            first = r.json()["version"]
            wait_until(lambda: c.get("/v1/models").json()["active"] == first, timeout=120)
            folder = tmp_path / "models" / first
            row = json.loads((folder / "index.json").read_text())["user_ids"].index("u03")
            assert load_model(folder / "model")._get_state()["user_factors"][row].any()

            r = c.delete("/v1/users/u03")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model_state_removed"] == [first]
            assert body["deleted"]["model_versions"] == 1
            # at once: the saved state of u03 is gone
            assert not load_model(folder / "model")._get_state()["user_factors"][row].any()
            assert "u03" not in json.loads((folder / "index.json").read_text())["user_ids"]

            # within the configured time: a retrained version serves instead
            def replaced() -> bool:
                return c.get("/v1/models").json()["active"] not in (None, first)

            wait_until(replaced, timeout=120)
            models = c.get("/v1/models").json()
            states = {v["version"]: v for v in models["versions"]}
            assert states[first]["status"] == "retired"
            assert states[models["active"]]["model"] == "als"

            def audited() -> list[str]:
                return [a["action"] for a in c.get("/v1/audit").json()["entries"]]

            wait_until(lambda: "model_retrained" in audited(), timeout=30)
            assert audited()[:3] == ["forget_user", "model_state_removed",
                                     "retrain_after_forget"]
            mine = c.get("/v1/audit", params={"user_id": "u03"}).json()["entries"]
            assert [a["action"] for a in mine] == ["forget_user", "model_state_removed"]
            assert "u03" not in json.dumps(c.get("/v1/audit").json())
            assert np.isfinite(mine[0]["ts"])
    finally:
        stop_server(server)
    assert "unhandled error" not in server.log(), server.log()
