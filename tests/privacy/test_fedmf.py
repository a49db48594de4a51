"""FedMF: the conformance suite, federated artifacts, and removal of a user's state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from models.conformance import N_ITEMS, N_USERS, ModelConformance, checkerboard

from personae.models import Recommender
from personae.privacy.fedmf import FedMF, client_update, data_gradient, forget_user_state

PARAMS: dict[str, Any] = {"factors": 4, "regularization": 1.0, "iterations": 10,
                          "random_state": 0}


class TestFedMF(ModelConformance):
    invalid_params = [("factors", 0), ("alpha", 0.0), ("regularization", -1.0),
                      ("iterations", 0), ("init_scale", 0.0), ("random_state", -1)]

    def make_model(self, **params: Any) -> FedMF:
        return FedMF(**{**PARAMS, **params})


def test_client_gradient_matches_finite_differences() -> None:
    """The client's item update is -lr * the gradient of its mean loss (x_u held fixed)."""
    rng = np.random.default_rng(0)
    Y = rng.normal(0, 0.3, (6, 3))
    items, weights = np.array([1, 4]), np.array([1.0, 2.0])
    row = sp.csr_matrix((weights, items, [0, 2]), shape=(1, 6))
    from personae.privacy.fedmf import solve_users

    x = solve_users(row, Y, 1.0, 2.0).astype(np.float64)

    def loss(Yv: np.ndarray) -> float:
        c = np.ones(6)
        c[items] += 2.0 * weights
        p = np.zeros(6)
        p[items] = 1.0
        return float((c * (p - Yv @ x[0]) ** 2).sum() / 2)  # mean over n_u = 2

    delta, _ = client_update(Y, items, weights, regularization=1.0, alpha=2.0,
                             learning_rate=0.1)
    num = np.zeros_like(Y)
    for idx in np.ndindex(*Y.shape):
        e = np.zeros_like(Y)
        e[idx] = 1e-6
        num[idx] = (loss(Y + e) - loss(Y - e)) / 2e-6
    np.testing.assert_allclose(delta, -0.1 * num, rtol=1e-4, atol=1e-6)
    e = data_gradient(Y, x, row, 2.0)[0]
    np.testing.assert_allclose(np.outer(e, x[0]) * 2 / 2, num, rtol=1e-4, atol=1e-6)


def test_from_item_factors_is_a_normal_model_version(tmp_path: Path) -> None:
    central = FedMF(**PARAMS).fit(checkerboard())
    model = FedMF.from_item_factors(central.item_factors_, checkerboard().matrix,
                                    params=PARAMS, training={"mode": "federated", "rounds": 3},
                                    privacy={"epsilon": 2.0, "delta": 1e-3})
    np.testing.assert_allclose(model.user_factors_, central.user_factors_, rtol=1e-5,
                               atol=1e-6)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert isinstance(loaded, FedMF)
    assert loaded.privacy_ == {"epsilon": 2.0, "delta": 1e-3}
    assert loaded.training_["mode"] == "federated"
    np.testing.assert_array_equal(loaded.score_users(np.arange(N_USERS)),
                                  model.score_users(np.arange(N_USERS)))


def test_forget_user_state_removes_only_that_user(tmp_path: Path) -> None:
    model = FedMF(**PARAMS).fit(checkerboard())
    folder = model.save(tmp_path / "m")
    before = model.score_users(np.arange(N_USERS))
    forget_user_state(folder, [3])
    after = FedMF.load(folder)
    assert not after.user_factors_[3].any()
    assert after.user_items_[3].nnz == 0
    np.testing.assert_array_equal(after.score_users([3]), np.zeros((1, N_ITEMS)))
    keep = np.delete(np.arange(N_USERS), 3)
    np.testing.assert_array_equal(after.score_users(keep), before[keep])
