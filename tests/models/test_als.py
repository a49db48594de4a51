"""ALS: the conformance suite, fold-in against the closed form, determinism, the lazy import."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personae.errors import InvalidInput, MissingExtra
from personae.models import als as als_module
from personae.models.als import ALS

from .conformance import N_ITEMS, N_USERS, ModelConformance, checkerboard, group

pytest.importorskip("implicit", reason="ALS needs the 'models' extra (implicit)")

# Small and quick on the checkerboard; with this much regularization ALS converges in a few
# sweeps, so fold-in of a training user reproduces the learned vector (tested below).
PARAMS: dict[str, Any] = {"factors": 8, "regularization": 1.0, "iterations": 15,
                          "random_state": 0}


class TestALS(ModelConformance):
    invalid_params = [
        ("factors", 0), ("factors", 2.5), ("factors", True), ("regularization", -1.0),
        ("regularization", "big"), ("alpha", 0.0), ("alpha", float("nan")), ("iterations", 0),
        ("random_state", -1), ("random_state", np.random.default_rng(0)), ("num_threads", -2),
    ]

    def make_model(self, **params: Any) -> ALS:
        return ALS(**{**PARAMS, **params})


def test_error_message_names_value_and_expectation() -> None:
    with pytest.raises(InvalidInput) as err:
        ALS(factors=0).fit(checkerboard())
    assert str(err.value) == "The 'factors' parameter of ALS must be an int >= 1. Got 0 instead."


def test_factors_are_float32_with_the_asked_shape() -> None:
    model = ALS(**PARAMS).fit(checkerboard())
    assert model.user_factors_.shape == (N_USERS, 8)
    assert model.item_factors_.shape == (N_ITEMS, 8)
    assert model.user_factors_.dtype == model.item_factors_.dtype == np.float32
    scores = model.score_users([3])
    np.testing.assert_allclose(scores, model.user_factors_[[3]] @ model.item_factors_.T)


def test_fold_in_solves_the_user_least_squares_problem() -> None:
    """Known answer: x = (YᵀY + Σ (c−1) y yᵀ + λI)⁻¹ Σ c y, with c = alpha · weight."""
    model = ALS(**{**PARAMS, "alpha": 3.0}).fit(checkerboard())
    items, weights = np.array([1, 4, 7, 20]), np.array([1.0, 2.0, 0.5, 1.0])
    H = sp.csr_matrix((weights, (np.zeros(4, int), items)), shape=(1, N_ITEMS))
    Y = model.item_factors_.astype(np.float64)
    c = 3.0 * weights
    A = Y.T @ Y + 1.0 * np.eye(8) + (Y[items].T * (c - 1.0)) @ Y[items]
    expected = np.linalg.solve(A, Y[items].T @ c)
    np.testing.assert_allclose(model.fold_in(H)[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score_histories(H)[0], Y @ expected, rtol=1e-4,
                               atol=1e-5)


def test_fold_in_agrees_with_implicits_recalculate_user() -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    model = ALS(**{**PARAMS, "alpha": 2.0}).fit(checkerboard())
    backend = AlternatingLeastSquares(factors=8, regularization=1.0, alpha=2.0)
    backend.item_factors = model.item_factors_.copy()
    X = checkerboard().matrix
    ours = model.fold_in(X)
    theirs = backend.recalculate_user(np.arange(N_USERS), X)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_fold_in_of_a_training_history_gives_the_learned_scores() -> None:
    model = ALS(**PARAMS).fit(checkerboard())
    users = np.arange(N_USERS)
    folded = model.score_histories(checkerboard().matrix)
    learned = model.score_users(users)
    np.testing.assert_allclose(folded, learned, atol=0.01)
    # and the same five unseen items on top for every user
    X = checkerboard().matrix
    for u in users:
        by_history = model.recommend(history=X[u], k=5)
        by_index = model.recommend(int(u), k=5)
        assert set(by_history.items.tolist()) == set(by_index.items.tolist()), f"user {u}"


def test_new_user_is_personalised_without_refitting() -> None:
    model = ALS(**PARAMS).fit(checkerboard())
    before = model.user_factors_.copy(), model.item_factors_.copy(), model.n_users_
    for parity in (0, 1):
        recs = model.recommend(history=[parity, parity + 4], k=8)
        assert (group(recs.items) == parity).all(), recs.items
    np.testing.assert_array_equal(model.user_factors_, before[0])
    np.testing.assert_array_equal(model.item_factors_, before[1])
    assert model.n_users_ == before[2]


def test_fold_in_batch_equals_single_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ALS(**PARAMS).fit(checkerboard())
    rng = np.random.default_rng(0)
    H = sp.random(25, N_ITEMS, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    H.data[:] = rng.uniform(0.5, 3.0, H.nnz).astype(np.float32)
    H = sp.vstack([H, sp.csr_matrix((1, N_ITEMS))]).tocsr()  # and one empty history
    whole = model.fold_in(H)
    # a budget of 2 KiB forces chunks of one or two users (f = 8: 64 bytes per padded item)
    monkeypatch.setattr(als_module, "_FOLD_IN_BYTES", 2048)
    chunked = model.fold_in(H)
    single = np.vstack([model.fold_in(H[r]) for r in range(H.shape[0])])
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(single, whole, rtol=1e-5, atol=1e-6)
    assert not whole[-1].any(), "an empty history folds in to the zero vector"


def test_thread_count_does_not_change_the_factors() -> None:
    one = ALS(**{**PARAMS, "num_threads": 1}).fit(checkerboard())
    many = ALS(**{**PARAMS, "num_threads": 0}).fit(checkerboard())
    np.testing.assert_array_equal(one.user_factors_, many.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, many.item_factors_)


def test_different_seeds_give_different_factors() -> None:
    a = ALS(**{**PARAMS, "random_state": 1}).fit(checkerboard())
    b = ALS(**{**PARAMS, "random_state": 2}).fit(checkerboard())
    assert not np.array_equal(a.item_factors_, b.item_factors_)


def test_saved_factors_are_float32(tmp_path: Any) -> None:
    folder = ALS(**PARAMS).fit(checkerboard()).save(tmp_path / "als")
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        assert npz["state__user_factors"].dtype == np.float32
        assert npz["state__item_factors"].shape == (N_ITEMS, 8)


def test_import_does_not_load_implicit() -> None:
    code = ("import sys, personae.models.als, personae.models.bpr; "
            "sys.exit(1 if 'implicit' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_fit_without_implicit_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "implicit" or m.startswith("implicit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "implicit", None)  # makes `import implicit` fail
    with pytest.raises(MissingExtra, match=r"personae\[models\]") as err:
        ALS(**PARAMS).fit(checkerboard())
    assert isinstance(err.value, ImportError)
