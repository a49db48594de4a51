"""Model lifecycle: abandoned training jobs, and forgetting a user all the way into the models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from personae import InvalidInput, Store
from personae.models import load_model
from personae.service import Engine, RecommendRequest
from personae.service import engine as engine_module
from personae.store import ModelVersion
from personae.store.records import utcnow


def test_a_training_row_whose_process_died_is_failed_and_does_not_block(
        planted: Store, tmp_path: Path) -> None:
    """Regression: a server stopped mid-training left a "training" row that blocked every new
    job for 6 hours. Rows without a heartbeat for STALE_TRAINING_AFTER are failed."""
    dead = planted.claim_training(ModelVersion("v-dead", "ease", {}, "training", utcnow()),
                                  stale_after=60.0)
    assert dead.status == "training" and dead.heartbeat_at is not None
    # a live job (fresh heartbeat) blocks a second claim, in any process
    with pytest.raises(InvalidInput, match="v-dead is being trained"):
        planted.claim_training(ModelVersion("v-2", "ease", {}, "training", utcnow()),
                               stale_after=60.0)
    # its process dies: the heartbeat gets old
    planted.update_model_version("v-dead", heartbeat_at=utcnow() - 3600)
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0)  # sweeps at start
    try:
        gone = planted.get_model_version("v-dead")
        assert gone.status == "failed" and "abandoned" in gone.message
        assert eng.train("ease", {"l2": 1.0}, background=False).status == "active"
    finally:
        eng.close()


def test_a_running_job_keeps_beating(planted: Store, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "HEARTBEAT_INTERVAL", 0.02)
    from personae.models.ease import EASE

    real_fit = EASE._fit
    beats: list[float | None] = []

    def slow_fit(self, X, view):  # type: ignore[no-untyped-def]
        import time

        first = planted.get_model_version(eng._job_version).heartbeat_at  # type: ignore[arg-type]
        time.sleep(0.2)
        beats.append(first)
        beats.append(planted.get_model_version(eng._job_version).heartbeat_at)  # type: ignore[arg-type]
        return real_fit(self, X, view)

    monkeypatch.setattr(EASE, "_fit", slow_fit)
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0)
    try:
        assert eng.train("ease", {"l2": 1.0}, background=False).status == "active"
    finally:
        eng.close()
    assert beats and beats[1] > beats[0]  # type: ignore[operator]


def test_forgetting_a_user_reaches_the_model(planted: Store, tmp_path: Path) -> None:
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0, retrain_after_forget=0.0)
    other = Engine(planted, tmp_path / "models", refresh_interval=0.0)  # a second worker
    try:
        als = eng.train("als", {"factors": 4, "iterations": 3}, background=False)
        assert als.status == "active", als.message
        other.refresh(force=True)
        folder = tmp_path / "models" / als.version
        row = json.loads((folder / "index.json").read_text())["user_ids"].index("u1")
        before = load_model(folder / "model")
        assert np.abs(before._get_state()["user_factors"][row]).sum() > 0
        assert before.user_items_[row].nnz > 0

        report = eng.forget_user("u1")

        assert report["events"] > 0 and report["model_versions"] == 1
        assert report["model_state_removed"] == [als.version]
        # per-user state left the artifact at once: factors and training row zeroed, id gone
        after = load_model(folder / "model")
        assert not after._get_state()["user_factors"][row].any()
        assert after.user_items_[row].nnz == 0
        assert "u1" not in json.loads((folder / "index.json").read_text())["user_ids"]
        # other users are untouched
        keep = json.loads((folder / "index.json").read_text())["user_ids"].index("u2")
        assert np.array_equal(after._get_state()["user_factors"][keep],
                              before._get_state()["user_factors"][keep])
        # every engine reloads the cleaned artifact
        other.refresh(force=True)
        for e in (eng, other):
            assert "u1" not in e._state.artifact.user_pos
        assert planted.get_model_version(als.version).invalidated_at is not None

        # the active version, trained on u1's events, is retrained (here: at once)
        done = eng.maintain()
        assert done["retrain"] != als.version
        fresh = eng.wait(60)
        assert fresh is not None and fresh.status == "active", fresh
        assert fresh.invalidated_at is None and fresh.model == "als"
        assert eng.model_version == fresh.version
        assert eng.maintain().get("retrain") is None  # nothing left to do
        # and the audit log says when each step happened, without the user's id
        steps = [a["action"] for a in planted.audit_log()]
        assert steps == ["forget_user", "model_state_removed", "retrain_after_forget",
                         "model_retrained"]
        assert planted.audit_log(user_id="u1")[0]["detail"]["events"] == report["events"]
        assert "u1" not in json.dumps(planted.audit_log())
        assert eng.recommend(RecommendRequest("u2")).strategy in ("model", "fold-in")
    finally:
        other.close()
        eng.close()


def test_retraining_waits_for_the_configured_delay(engine: Engine) -> None:
    engine.retrain_after_forget = 3600.0
    engine.forget_user("u1")
    assert engine.maintain().get("retrain") is None
    active = engine.store.get_model_version(engine.model_version)  # type: ignore[arg-type]
    assert active.invalidated_at is not None


def test_scheduled_retraining(engine: Engine) -> None:
    """With retrain_every, maintenance retrains the active model once it is that old (and
    not again before the next period); without it, never on its own."""
    first = engine.model_version
    assert engine.maintain().get("retrain") is None  # no schedule
    engine.retrain_every = 3600.0
    assert engine.maintain().get("retrain") is None  # not old enough
    from personae.store import schema as S

    with engine.store._begin() as conn:  # the active version was made two hours ago
        conn.execute(S.model_versions.update().values(created_at=utcnow() - 7200))
    started = engine.maintain().get("retrain")
    assert started and started != first
    done = engine.wait(60)
    assert done is not None and done.status in ("active", "ready")
    assert engine.maintain().get("retrain") is None  # the new try is recent
    assert [a["action"] for a in engine.store.audit_log()][-1] == "scheduled_retrain"
