"""The conformance suite every model passes (after implicit's ``RecommenderBaseTestMixin``).

Use it by inheriting and saying how to build the model::

    from .conformance import ModelConformance

    class TestEASE(ModelConformance):
        invalid_params = [("l2", -3.0), ("dtype", "float16")]

        def make_model(self, **params):
            return EASE(**{"l2": 1.0, **params})

The data is a *checkerboard* whose answer is known: even users like even items, odd users odd
items (:func:`checkerboard`). Each user has seen 10 of the 15 items of their group, so a
personalised model must rank the other 5 items of the group first, for training users and for a
history never seen at fit time (fold-in).

Hooks and switches (class attributes):

- ``make_model(**params)`` (required): a new, unfitted model; ``params`` override its defaults.
- ``invalid_params``: ``(name, value)`` pairs, each of which must make ``fit`` raise
  :class:`~personae.errors.InvalidInput` with ``name`` in the message.
- ``personalised`` (default True): the model learns the planted groups. Set False for models
  that rank every user alike (popularity); the planted-answer tests then only check shapes.
- ``make_data()``: the training data (default :func:`checkerboard`).
- ``fit_model(model, data)``: how to fit (default ``model.fit(data)``), for models that need more.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.models import NotFitted, NotSupported, Recommender, get_model_class

N_USERS = 40
N_ITEMS = 30


@lru_cache(maxsize=1)
def checkerboard() -> Interactions:
    """40 users × 30 items: user ``u`` likes the items of parity ``u % 2``.

    User ``u`` has seen the group items ``i`` with ``(i // 2 + u) % 3 != 0`` (10 of 15); the
    other 5 are the answer. Events are an hour apart, in user order, so time-aware models have
    timestamps to use. Weights are 1.
    """
    users, items = [], []
    for u in range(N_USERS):
        for i in range(u % 2, N_ITEMS, 2):
            if (i // 2 + u) % 3 != 0:
                users.append(u)
                items.append(i)
    ts = 1_700_000_000.0 + 3600.0 * np.arange(len(users))
    return Interactions.from_arrays(users, items, timestamps=ts, n_users=N_USERS,
                                    n_items=N_ITEMS)


def group(items: np.ndarray | list[int]) -> np.ndarray:
    """Parity group of each item (0 even, 1 odd)."""
    return np.asarray(items) % 2


def same_ranking(items_a: np.ndarray, scores_a: np.ndarray, items_b: np.ndarray,
                 scores_b: np.ndarray, rtol: float = 1e-5) -> bool:
    """Two top-k lists agree up to the order of (near-)tied scores."""
    if items_a.shape != items_b.shape:
        return False
    np.testing.assert_allclose(scores_a, scores_b, rtol=rtol, atol=1e-6)
    scale = max(1e-6, float(np.max(np.abs(scores_a[np.isfinite(scores_a)]), initial=0.0)))
    start = 0
    n = len(items_a)
    while start < n:
        end = start + 1
        while end < n and abs(scores_a[end] - scores_a[start]) <= rtol * scale + 1e-6:
            end += 1
        if end == n:  # a tie group cut by k: only the scores must agree
            return True
        if set(items_a[start:end].tolist()) != set(items_b[start:end].tolist()):
            return False
        start = end
    return True


class ModelConformance:
    """Mixin of tests every :class:`~personae.models.base.Recommender` passes."""

    invalid_params: ClassVar[list[tuple[str, Any]]] = []
    personalised: ClassVar[bool] = True

    # ------------------------------------------------------------------ hooks

    def make_model(self, **params: Any) -> Recommender:
        raise NotImplementedError("a conformance test class must define make_model()")

    def make_data(self) -> Interactions:
        return checkerboard()

    def fit_model(self, model: Recommender, data: Interactions) -> Recommender:
        return model.fit(data)

    def fitted(self, **params: Any) -> Recommender:
        return self.fit_model(self.make_model(**params), self.make_data())

    # ------------------------------------------------------------------ the interface

    def test_registered_under_its_name(self) -> None:
        model = self.make_model()
        assert model.name, "set the class attribute `name`"
        assert get_model_class(model.name) is type(model)

    def test_fit_returns_self_and_records_shape(self) -> None:
        model = self.make_model()
        data = self.make_data()
        assert self.fit_model(model, data) is model
        assert (model.n_users_, model.n_items_) == data.matrix.shape
        assert model.fingerprint_ == data.fingerprint()
        assert model.fit_seconds_ >= 0

    def test_params_round_trip(self) -> None:
        model = self.make_model()
        params = model.get_params()
        clone = type(model)(**params)
        assert clone.get_params() == params
        assert clone.set_params(**params) is clone
        assert repr(clone).startswith(type(model).__name__ + "(")

    def test_unknown_param_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="no_such_param"):
            self.make_model().set_params(no_such_param=1)

    def test_invalid_params_raise_with_the_name(self) -> None:
        for name, value in self.invalid_params:
            model = self.make_model(**{name: value})
            with pytest.raises(InvalidInput, match=f"'{name}'"):
                self.fit_model(model, self.make_data())

    def test_not_fitted(self, tmp_path: Path) -> None:
        model = self.make_model()
        with pytest.raises(NotFitted):
            model.score_users([0])
        with pytest.raises(NotFitted):
            model.recommend(0)
        with pytest.raises(NotFitted):
            model.save(tmp_path / "m")

    def test_scores_shape_and_dtype(self) -> None:
        model = self.fitted()
        scores = model.score_users([0, 1, 2])
        assert scores.shape == (3, N_ITEMS)
        assert scores.dtype == np.float32
        assert np.isfinite(scores).all()
        with pytest.raises(InvalidInput):
            model.score_users([N_USERS])

    # ------------------------------------------------------------------ recommending

    def test_recommend_respects_exclusions(self) -> None:
        model = self.fitted()
        seen = model.user_items_
        allowed = np.ones(N_ITEMS, dtype=bool)
        allowed[[1, 2, 3]] = False
        for u in range(6):
            row = seen.indices[seen.indptr[u]:seen.indptr[u + 1]]
            recs = model.recommend(u, k=4, exclude=[4, 5], allowed=allowed)
            assert len(recs) == 4
            assert recs.items.dtype == np.int64
            assert not set(recs.items) & (set(row.tolist()) | {1, 2, 3, 4, 5})
            assert np.all(np.diff(recs.scores) <= 0), "not sorted by score"
            full = model.score_users([u])[0]
            np.testing.assert_allclose(recs.scores, full[recs.items], rtol=1e-5, atol=1e-6)

    def test_recommend_k_larger_than_what_is_left(self) -> None:
        model = self.fitted()
        seen = model.user_items_
        n_left = N_ITEMS - (seen.indptr[1] - seen.indptr[0])
        recs = model.recommend(0, k=N_ITEMS + 5)
        assert len(recs) == n_left
        assert len(set(recs.items.tolist())) == n_left

    def test_batch_equals_single(self) -> None:
        model = self.fitted()
        users = np.arange(N_USERS)
        items, scores = model.recommend_batch(users, k=6)
        assert items.shape == scores.shape == (N_USERS, 6)
        for u in users:
            one = model.recommend(int(u), k=6)
            assert same_ranking(items[u], scores[u], one.items, one.scores), f"user {u}"

    def test_planted_groups_for_training_users(self) -> None:
        model = self.fitted()
        items, _ = model.recommend_batch(np.arange(N_USERS), k=3)
        if not self.personalised:
            assert (items >= 0).all()
            return
        for u in range(N_USERS):
            assert (group(items[u]) == u % 2).all(), f"user {u} got {items[u]}"

    # ------------------------------------------------------------------ fold-in

    def test_fold_in_of_an_unseen_history(self) -> None:
        model = self.fitted()
        if not model.scores_histories:
            from scipy import sparse as sp

            with pytest.raises(NotSupported):
                model.score_histories(sp.csr_matrix((1, N_ITEMS), dtype=np.float32))
            with pytest.raises(NotSupported):
                model.recommend(history=[0, 2])
            return
        for parity in (0, 1):
            history = [parity, parity + 2, parity + 6, parity + 10]
            recs = model.recommend(history=history, k=5)
            assert len(recs) == 5
            assert not set(recs.items.tolist()) & set(history)
            if self.personalised:
                assert (group(recs.items) == parity).all(), f"{parity}: {recs.items}"
        # weighted (items, weights) histories and an empty history are accepted too
        recs = model.recommend(history=([0, 2], [2.0, 1.0]), k=3)
        assert len(recs) == 3
        assert len(model.recommend(history=[], k=3)) == 3

    def test_score_history_equals_score_histories(self) -> None:
        """The single-history fast path (serving) gives the batch path's scores: weighted,
        with a repeated item, unsorted, a one-item and an empty history, with a context."""
        model = self.fitted()
        if not model.scores_histories:
            with pytest.raises(NotSupported):
                model.score_history([0, 2])
            return
        from scipy import sparse as sp

        cases = [
            ([0, 2, 6, 10], [1.0, 1.0, 1.0, 1.0]),
            ([11, 3, 5, 3, 29], [2.0, 0.5, 1.0, 1.5, 3.0]),  # unsorted, 3 twice
            ([7], [1.0]),
            ([], []),
        ]
        for items, weights in cases:
            H = sp.csr_matrix((weights, (np.zeros(len(items), dtype=int), items)),
                              shape=(1, N_ITEMS), dtype=np.float32)
            H.sum_duplicates()
            for context in (None, {"device": "tv"}):
                got = model.score_history(np.array(items, dtype=np.int64),
                                          np.array(weights), context)
                assert got.shape == (N_ITEMS,) and got.dtype == np.float32
                np.testing.assert_allclose(got, model.score_histories(H, context)[0],
                                           rtol=1e-5, atol=1e-6, err_msg=f"{items}")
        np.testing.assert_allclose(model.score_history([1, 3]),
                                   model.score_history([1, 3], [1.0, 1.0]))
        with pytest.raises(InvalidInput, match="in \\[0, 30\\)"):
            model.score_history([0, N_ITEMS])
        with pytest.raises(InvalidInput, match="same length"):
            model.score_history([0, 1], [1.0])

    def test_history_wrong_width_is_refused(self) -> None:
        model = self.fitted()
        if not model.scores_histories:
            return
        from scipy import sparse as sp

        with pytest.raises(InvalidInput):
            model.score_histories(sp.csr_matrix((2, N_ITEMS + 1), dtype=np.float32))

    # ------------------------------------------------------------------ artifacts

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        model = self.fitted()
        folder = model.save(tmp_path / "model")
        meta = json.loads((folder / "model.json").read_text())
        assert meta["model"] == model.name
        assert meta["fingerprint"] == model.fingerprint_
        assert set(meta["params"]) == set(model.get_params())
        loaded = Recommender.load(folder)
        assert type(loaded) is type(model)
        assert loaded.fingerprint_ == model.fingerprint_
        users = np.arange(N_USERS)
        np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
        if model.scores_histories:
            from scipy import sparse as sp

            H = sp.csr_matrix(([1.0, 1.0], ([0, 0], [1, 3])), shape=(1, N_ITEMS))
            np.testing.assert_array_equal(loaded.score_histories(H), model.score_histories(H))
        # and loading through the class itself
        assert type(type(model).load(folder)) is type(model)

    def test_deterministic(self) -> None:
        a = self.fitted(**self.seed_params(7))
        b = self.fitted(**self.seed_params(7))
        users = np.arange(N_USERS)
        np.testing.assert_array_equal(a.score_users(users), b.score_users(users))

    def seed_params(self, seed: int) -> dict[str, Any]:
        """``{"random_state": seed}`` for models that have that parameter, else ``{}``."""
        names = self.make_model().get_params()
        return {"random_state": seed} if "random_state" in names else {}

    def test_fit_on_a_plain_sparse_matrix(self) -> None:
        data = self.make_data()
        model = self.fit_model(self.make_model(), data.matrix)
        assert model.score_users([0]).shape == (1, N_ITEMS)
