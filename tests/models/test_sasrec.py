"""SASRec: the conformance suite, a planted sequence pattern, live histories, item features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")

import torch  # noqa: E402

from personae.data.interactions import Interactions  # noqa: E402
from personae.errors import InvalidInput  # noqa: E402
from personae.models import Recommender  # noqa: E402
from personae.models.sasrec import SASRec  # noqa: E402

from .conformance import N_ITEMS, ModelConformance, checkerboard  # noqa: E402

torch.set_num_threads(1)

SMALL = {"factors": 16, "n_layers": 1, "n_heads": 1, "max_len": 16, "dropout": 0.0,
         "epochs": 40, "batch_size": 64, "learning_rate": 1e-2, "random_state": 0,
         "num_threads": 1}


def shuffled_checkerboard() -> Interactions:
    """The suite's checkerboard pairs, each user's items in a random time order.

    In the default checkerboard every user's items arrive in ascending item order, so a next-item
    model never sees what follows a user's largest item: the planted answer (the user's parity
    group) is there only when the order carries it, as in real sequences.
    """
    base = checkerboard()
    coo = base.matrix.tocoo()
    rng = np.random.default_rng(0)
    ts = np.empty(coo.nnz)
    for u in range(base.n_users):
        sel = np.flatnonzero(coo.row == u)
        ts[sel] = 1_700_000_000.0 + 3600.0 * rng.permutation(sel.size)
    return Interactions.from_arrays(coo.row, coo.col, timestamps=ts, n_users=base.n_users,
                                    n_items=base.n_items)


class TestSASRec(ModelConformance):
    invalid_params = [("factors", 0), ("n_heads", 3), ("dropout", 1.0), ("loss", "bpr"),
                      ("learning_rate", -1.0), ("validation", 1.5), ("max_len", "long")]

    def make_model(self, **params: Any) -> SASRec:
        return SASRec(**{**SMALL, **params})

    def make_data(self) -> Interactions:
        return shuffled_checkerboard()

    def test_score_history_equals_score_histories(self) -> None:
        """Overrides the suite's test: SASRec reads a history *in order*, and a csr row has no
        order (its items are read in column order), so the two paths agree exactly on
        histories given in column order without repeats, and differ otherwise."""
        model = self.fitted()
        for items in ([0, 2, 6, 10], [3, 5, 11, 29], [7], []):
            H = sp.csr_matrix((np.ones(len(items)), (np.zeros(len(items), int), items)),
                              shape=(1, N_ITEMS), dtype=np.float32)
            for context in (None, {"device": "tv"}):
                got = model.score_history(np.array(items, dtype=np.int64), None, context)
                assert got.shape == (N_ITEMS,) and got.dtype == np.float32
                np.testing.assert_allclose(got, model.score_histories(H, context)[0],
                                           rtol=1e-5, atol=1e-6)
        # order matters: the same items in another order score differently
        assert not np.allclose(model.score_history([11, 3, 5, 29]),
                               model.score_history([3, 5, 11, 29]))
        # weights do not scale scores; a weight <= 0 drops the event
        np.testing.assert_allclose(model.score_history([1, 3], [2.0, 5.0]),
                                   model.score_history([1, 3]))
        np.testing.assert_allclose(model.score_history([1, 3], [0.0, 1.0]),
                                   model.score_history([3]))
        with pytest.raises(InvalidInput, match="in \\[0, 30\\)"):
            model.score_history([0, N_ITEMS])
        with pytest.raises(InvalidInput, match="same length"):
            model.score_history([0, 1], [1.0])


def cycles(n_users: int = 60, n_items: int = 20, length: int = 12, seed: int = 0
           ) -> Interactions:
    """Planted sequences: each user walks the cycle i → i + 1 (mod n_items) from a random start;
    the last step of every user is left out of training (the answer)."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        for t in range(length):
            users.append(u)
            items.append((start + t) % n_items)
            ts.append(1_000_000.0 + 60.0 * t)
    # shuffle arrival order: the order must come from the timestamps
    perm = rng.permutation(len(users))
    return Interactions.from_arrays(np.array(users)[perm], np.array(items)[perm],
                                    timestamps=np.array(ts)[perm], n_users=n_users,
                                    n_items=n_items)


def test_planted_next_item_is_ranked_first() -> None:
    view = cycles()
    model = SASRec(**SMALL).fit(view)
    seqs = view.sequences()
    hits = 0
    for u in range(view.n_users):
        last = int(seqs[u][-1])
        recs = model.recommend(u, k=1)
        hits += int(recs.items[0] == (last + 1) % view.n_items)
    assert hits >= 0.95 * view.n_users, hits


def test_a_click_changes_the_next_recommendation_at_once() -> None:
    view = cycles()
    model = SASRec(**SMALL).fit(view)
    history = [3, 4, 5]
    assert int(np.argmax(model.score_history(history))) == 6
    history.append(6)  # the user clicks the recommended item
    assert int(np.argmax(model.score_history(history))) == 7
    history.append(12)  # ... then jumps elsewhere in the cycle
    assert int(np.argmax(model.score_history(history))) == 13
    # a known user's live history overrides the training sequence
    batch = model.score_sequences([[3, 4, 5], [10, 11]])
    np.testing.assert_allclose(batch[0], model.score_history([3, 4, 5]), rtol=1e-5, atol=1e-6)
    assert int(np.argmax(batch[1])) == 12


def test_history_longer_than_max_len_reads_the_last_items() -> None:
    view = cycles()
    model = SASRec(**SMALL).fit(view)
    long = [(7 + t) % 20 for t in range(40)]
    np.testing.assert_allclose(model.score_history(long), model.score_history(long[-16:]),
                               rtol=1e-5, atol=1e-6)


def test_padding_does_not_change_scores_in_a_batch() -> None:
    """Regression: a short history scored alone and beside a long one gets the same scores
    (padding is masked out of attention and the batch is trimmed)."""
    model = SASRec(**SMALL).fit(cycles())
    alone = model.score_sequences([[1, 2]])
    together = model.score_sequences([[1, 2], list(range(16))])
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-5)


def test_item_features_and_sampled_loss_save_and_load(tmp_path: Any) -> None:
    view = cycles()
    feats = np.random.default_rng(1).normal(size=(view.n_items, 5)).astype(np.float32)
    model = SASRec(**{**SMALL, "loss": "sampled", "n_negatives": 8}).fit(
        view, item_features=feats)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.score_history([3, 4]), model.score_history([3, 4]))
    np.testing.assert_array_equal(loaded.item_features_, feats)
    with pytest.raises(InvalidInput, match="'item_features'"):
        SASRec(**SMALL).fit(view, item_features=feats[:3])


def test_early_stopping_keeps_the_best_epoch() -> None:
    model = SASRec(**{**SMALL, "epochs": 30, "validation": 0.5, "patience": 2}).fit(cycles())
    metrics = [row["val_ndcg@10"] for row in model.history_]
    assert model.best_epoch_ == int(np.argmax(metrics)) + 1
    assert len(model.history_) <= 30
