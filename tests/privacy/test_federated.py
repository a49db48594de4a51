"""Federated training on Flower: FedAvg arithmetic, robustness, DP equivalences, real processes."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personae.privacy import dp
from personae.privacy.federated import (
    FederatedConfig,
    ServerState,
    make_strategy,
    simulate,
)

pytest.importorskip("flwr", reason="needs the 'federated' extra")
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters  # noqa: E402

SHAPE = (5, 2)


class _Proxy:
    def __init__(self, cid: str) -> None:
        self.cid = cid


def _res(arrays: list[np.ndarray], n: int) -> FitRes:
    return FitRes(status=Status(code=Code.OK, message=""),
                  parameters=ndarrays_to_parameters(arrays), num_examples=n, metrics={})


def _global(strategy: Any, parameters: Any) -> np.ndarray:
    from flwr.common import parameters_to_ndarrays

    return parameters_to_ndarrays(parameters)[0]


def _data(n_users: int = 12, n_items: int = 10, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0  # nobody empty
    return sp.csr_matrix(dense)


FEDAVG = FederatedConfig(rounds=1, server_optimizer="fedavg", server_lr=1.0, item_decay=0.0)


def test_fedavg_of_two_clients_is_the_weighted_mean() -> None:
    Y0 = np.zeros(SHAPE, dtype=np.float32)
    strategy = make_strategy(Y0, FEDAVG, n_clients=2)
    d1 = np.arange(10, dtype=np.float32).reshape(SHAPE)
    d2 = np.full(SHAPE, -2.0, dtype=np.float32)
    params, metrics = strategy.aggregate_fit(
        1, [(_Proxy("a"), _res([d1], 3)), (_Proxy("b"), _res([d2], 1))], [])
    expected = (3 * d1 + 1 * d2) / 4  # w = sum n_k / N * w_k, by hand
    np.testing.assert_allclose(_global(strategy, params), expected, rtol=1e-6)
    assert metrics == {"accepted": 2, "rejected": 0}


def test_malformed_and_non_finite_updates_are_rejected_and_the_round_completes(
        caplog: pytest.LogCaptureFixture) -> None:
    strategy = make_strategy(np.zeros(SHAPE, dtype=np.float32), FEDAVG, n_clients=4)
    good = np.ones(SHAPE, dtype=np.float32)
    nan = good.copy()
    nan[0, 0] = np.nan
    results = [(_Proxy("good"), _res([good], 2)), (_Proxy("nan"), _res([nan], 5)),
               (_Proxy("shape"), _res([np.ones((3, 3), dtype=np.float32)], 5)),
               (_Proxy("count"), _res([good * 7], 0))]
    with caplog.at_level(logging.WARNING, logger="personae.federated"):
        params, metrics = strategy.aggregate_fit(1, results, [TimeoutError("dropped")])
    np.testing.assert_allclose(_global(strategy, params), good)  # only the good client
    assert metrics == {"accepted": 1, "rejected": 3}
    text = caplog.text
    assert "client nan: update has 1 non-finite values" in text
    assert "client shape: update has shape (3, 3), expected (5, 2)" in text
    assert "client count: num_examples must be an int >= 1" in text
    assert "failed or timed out" in text  # the dropped client is logged, not waited for
    assert strategy.log[-1].failures == 1


def test_a_round_with_only_failures_leaves_the_model_unchanged() -> None:
    Y0 = np.full(SHAPE, 0.5, dtype=np.float32)
    strategy = make_strategy(Y0, FEDAVG, n_clients=3)
    params, _ = strategy.aggregate_fit(1, [], [TimeoutError(), TimeoutError()])
    np.testing.assert_array_equal(_global(strategy, params), Y0)


def test_clipping_bounds_each_clients_influence() -> None:
    cfg = FederatedConfig(rounds=1, clip_norm=0.5, noise_multiplier=0.0,
                          server_optimizer="fedavg", server_lr=1.0)
    rng = np.random.default_rng(1)
    updates = [rng.normal(size=SHAPE) for _ in range(4)]
    state = ServerState(np.zeros(SHAPE), cfg, n_clients=4, item_decay=0.0, privacy=None)
    base = state.average(updates, [1, 1, 1, 1])
    for replacement in (updates[3] * 1e6, -updates[3] * 1e3, np.zeros(SHAPE)):
        other = state.average(updates[:3] + [replacement], [1, 1, 1, 1])
        # |change| <= 2 S / (q N): one client moves the average by at most its clipped norm
        assert np.linalg.norm(other - base) <= 2 * 0.5 / 4 + 1e-12
    gone = state.average(updates[:3], [1, 1, 1])
    assert np.linalg.norm(gone - base) <= 0.5 / 4 + 1e-12
    # without clipping the same client moves the average without bound
    free = ServerState(np.zeros(SHAPE), FederatedConfig(rounds=1, weighting="uniform"), 4, 0.0,
                       None)
    assert np.linalg.norm(free.average(updates[:3] + [updates[3] * 1e6], [1] * 4)) > 1e4


@pytest.mark.parametrize("local_epochs", [1, 2])
def test_zero_noise_no_clip_private_training_equals_plain_training(local_epochs: int) -> None:
    P = _data()
    plain = FederatedConfig(rounds=4, weighting="uniform", local_epochs=local_epochs,
                            client_lr=0.5)
    private = FederatedConfig(rounds=4, weighting="uniform", local_epochs=local_epochs,
                              client_lr=0.5, noise_multiplier=0.0, clip_norm=None)
    params = {"factors": 3, "regularization": 1.0, "random_state": 0}
    a = simulate(P, plain, model_params=params, engine="inprocess")
    b = simulate(P, private, model_params=params, engine="inprocess")
    assert b.privacy is not None and a.privacy is None
    np.testing.assert_allclose(b.model.item_factors_, a.model.item_factors_, rtol=1e-6,
                               atol=1e-7)
    other_seed = simulate(P, plain, model_params={**params, "random_state": 1},
                          engine="inprocess")
    assert not np.allclose(a.model.item_factors_, other_seed.model.item_factors_)
    # and with noise the result differs, and the spent epsilon is recorded on the model
    c = simulate(P, FederatedConfig(rounds=4, clip_norm=1.0, noise_multiplier=1.0,
                                    local_epochs=local_epochs, client_lr=0.5),
                 model_params=params, engine="inprocess")
    assert not np.allclose(c.model.item_factors_, a.model.item_factors_)
    assert c.model.privacy_["epsilon"] == pytest.approx(
        dp.epsilon_spent(1.0, 1.0, 4, 1 / 12))


def test_batched_clients_equal_one_by_one_clients() -> None:
    """The in-process engine's batched path computes what each client computes alone."""
    P = _data()
    params = {"factors": 3, "regularization": 1.0, "random_state": 0}
    cfg = FederatedConfig(rounds=3, clip_norm=0.3, noise_multiplier=0.0, fraction_fit=0.5)
    a = simulate(P, cfg, model_params=params, engine="inprocess")  # batched (1 epoch)
    b = simulate(P, FederatedConfig(**{**cfg.__dict__, "proximal_mu": 1e-300}),
                 model_params=params, engine="inprocess")  # the one-by-one loop
    np.testing.assert_allclose(a.model.item_factors_, b.model.item_factors_, rtol=1e-5,
                               atol=1e-7)


def test_over_budget_training_refuses_to_start() -> None:
    cfg = FederatedConfig(rounds=100, clip_norm=1.0, noise_multiplier=0.5, max_epsilon=1.0)
    with pytest.raises(dp.BudgetExceeded, match="refusing to start"):
        simulate(_data(), cfg, engine="inprocess")


def test_federated_converges_to_the_centralised_model() -> None:
    from personae.privacy.fedmf import FedMF

    P = _data(30, 12, seed=3)
    params = {"factors": 3, "regularization": 0.5, "random_state": 0, "iterations": 30}
    central = FedMF(**params).fit(P)
    # FedAvg (examples-weighted, server step 1) is gradient descent on the centralised loss
    fed = simulate(P, FederatedConfig(rounds=300, server_optimizer="fedavg", server_lr=1.0),
                   model_params=params, engine="inprocess").model
    scores_c = central.score_users(np.arange(30))
    scores_f = fed.score_users(np.arange(30))
    assert np.corrcoef(scores_c.ravel(), scores_f.ravel())[0, 1] > 0.999


def test_flower_simulation_engine_equals_the_inprocess_engine() -> None:
    pytest.importorskip("ray", reason="Flower's simulation engine needs flwr[simulation]")
    P = _data(6, 8)
    params = {"factors": 2, "regularization": 1.0, "random_state": 0}
    cfg = FederatedConfig(rounds=2, clip_norm=0.5, noise_multiplier=0.0)
    a = simulate(P, cfg, model_params=params, engine="inprocess")
    b = simulate(P, cfg, model_params=params, engine="flower", num_cpus=1)
    np.testing.assert_allclose(b.model.item_factors_, a.model.item_factors_, rtol=1e-5,
                               atol=1e-7)
    assert [r.accepted for r in b.rounds] == [6, 6]


# ---------------------------------------------------------------------- separate processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store_with_users(db: Path, n_users: int) -> None:
    from personae.data.interactions import Interactions
    from personae.store import Store

    events = [{"user_id": f"u{u}", "item_id": f"i{i}", "timestamp": 1.7e9 + 60 * i}
              for u in range(n_users) for i in range(8) if (i + u) % 2 == 0 or i == 7]
    with Store(str(db)) as store:
        store.add_events(events)
        assert Interactions.from_store(store).n_events == len(events)


def _run_federation(tmp_path: Path, expected: int, started_clients: int, rounds: int,
                    timeout_s: float) -> tuple[subprocess.Popen, str, list[str], Path]:
    db = tmp_path / "s.db"
    _store_with_users(db, 3)
    port = _free_port()
    exe = [sys.executable, "-c", "from personae.cli.main import app; app()"]
    env = {**os.environ, "PERSONAE_STORE": str(db)}
    out = tmp_path / "model"
    server = subprocess.Popen(
        [*exe, "federated", "server", "--address", f"127.0.0.1:{port}", "--clients",
         str(expected), "--rounds", str(rounds), "--factors", "4", "--round-timeout",
         str(timeout_s), "--out", str(out)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    clients = [subprocess.Popen(
        [*exe, "federated", "client", f"u{u}", "--address", f"127.0.0.1:{port}",
         "--factors", "4", "--format", "json"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True) for u in range(started_clients)]
    try:
        server_out, _ = server.communicate(timeout=120)
        client_out = [c.communicate(timeout=60)[0] for c in clients]
    finally:
        for p in [server, *clients]:
            if p.poll() is None:
                p.kill()
    return server, server_out, [*client_out, *[str(c.returncode) for c in clients]], out


def test_server_and_three_client_processes_on_loopback(tmp_path: Path) -> None:
    server, server_out, client_out, out = _run_federation(tmp_path, 3, 3, rounds=2,
                                                          timeout_s=30)
    assert server.returncode == 0, server_out
    assert "2 rounds" in server_out
    assert "round 2: 3/3 updates (0 rejected, 0 failed)" in server_out
    assert client_out[3:] == ["0", "0", "0"], client_out
    for u in range(3):
        assert f'"user_id": "u{u}"' in client_out[u], client_out[u]
    from personae.models import load_model

    model = load_model(out)
    assert model.training_["mode"] == "federated" and model.training_["rounds"] == 2


def test_a_missing_client_does_not_stall_the_rounds(tmp_path: Path) -> None:
    """Three clients expected, two connect: each round waits at most the round timeout."""
    started = time.perf_counter()
    server, server_out, client_out, _ = _run_federation(tmp_path, 3, 2, rounds=2,
                                                        timeout_s=2)
    assert server.returncode == 0, server_out
    assert "round 2: 2/2 updates" in server_out, server_out
    assert time.perf_counter() - started < 60


def test_cli_simulate_saves_a_private_model_version_and_info_shows_its_budget(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from personae.cli.main import app

    db = tmp_path / "s.db"
    _store_with_users(db, 3)
    runner = CliRunner()
    out, png = tmp_path / "m", tmp_path / "curve.png"
    res = runner.invoke(app, ["federated", "simulate", "--store", str(db), "--engine",
                              "inprocess", "--rounds", "3", "--factors", "2", "--epsilon", "4",
                              "--out", str(out), "--curve", str(png)])
    assert res.exit_code == 0, res.output
    assert "round 3: 3/3 updates" in res.output
    assert "ε = 4" in res.output
    assert png.stat().st_size > 0
    info = runner.invoke(app, ["federated", "info", str(out), "--format", "json"])
    assert info.exit_code == 0, info.output
    import json

    learned = json.loads(info.output)
    assert learned["privacy"]["epsilon"] == pytest.approx(4.0, rel=1e-3)
    assert learned["training"]["mode"] == "federated"
    refused = runner.invoke(app, ["federated", "simulate", "--store", str(db), "--engine",
                                  "inprocess", "--epsilon", "8", "--max-epsilon", "2"])
    assert refused.exit_code == 1
    assert "exceeds the configured budget" in refused.output
    # the aggregated model is a model version of the store, with its privacy spend, and an
    # engine serves it once activated
    from personae import Store
    from personae.service import Engine, RecommendRequest

    with Store(db) as s:
        versions = s.model_versions()
        assert versions and versions[0].model == "fedmf" and versions[0].status == "ready"
        assert versions[0].metrics["privacy"]["epsilon"] == pytest.approx(4.0, rel=1e-3)
        eng = Engine(s, tmp_path / "models-unused")
        try:
            eng.models_dir = db.parent / "models"
            eng.activate(versions[0].version)
            res = eng.recommend(RecommendRequest(s.iter_users().__next__().user_id, k=2))
            assert res.model_version == versions[0].version and res.item_ids
        finally:
            eng.close()
