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
from personae.models.sasrec import (  # noqa: E402
    SASRec,
    _dropout,
    _full_softmax_ce,
    _seen_before,
    _windows,
)

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
                      ("learning_rate", -1.0), ("validation", 1.5), ("max_len", "long"),
                      ("window_overlap", 16), ("window_overlap", -1),
                      ("random_windows", "yes"), ("exclude_seen", "yes"), ("init", "pca")]

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


@pytest.mark.parametrize("overlap", [0, 1, 3])
@pytest.mark.parametrize("shifted", [False, True])
def test_windows_learn_every_event_once_with_enough_context(overlap: int, shifted: bool) -> None:
    """Whatever the shifts and the overlap, an epoch learns every event but a user's first
    exactly once (the first at most once, from an empty context), and a target outside a
    sequence's first window is read with at least ``overlap + 1`` earlier items."""
    rng = np.random.default_rng(overlap)
    width = 6
    for _ in range(50):
        lengths = rng.integers(1, 30, size=4)
        indptr = np.r_[0, np.cumsum(lengths)]
        items = np.arange(indptr[-1])  # item = position: a window tells where it is
        shifts = rng.integers(1, width - overlap, size=4) if shifted else None
        W, lo, hi = _windows(indptr[:-1], indptr[1:], items, width, shifts, overlap)
        learnt = np.zeros(indptr[-1], dtype=int)
        for w, a, b in zip(W, lo, hi, strict=True):
            for c in range(a, b):
                if w[c + 1] > 0:
                    learnt[w[c + 1] - 1] += 1
                    context = np.count_nonzero(w[:c + 1])
                    start = indptr[np.searchsorted(indptr, w[c + 1] - 1, side="right") - 1]
                    assert context >= min(overlap + 1, w[c + 1] - 1 - start)
        first = np.zeros(indptr[-1], dtype=bool)
        first[indptr[:-1]] = True
        assert (learnt[~first] == 1).all() and (learnt[first] <= 1).all()


def test_random_windows_are_seeded() -> None:
    """The window offsets come from ``random_state``: same seed, same model; and they change
    the training (another model than fixed windows)."""
    view = cycles(length=40)
    params = {**SMALL, "max_len": 8, "window_overlap": 2, "epochs": 3}
    a = SASRec(**params).fit(view).score_history([3, 4, 5])
    b = SASRec(**params).fit(view).score_history([3, 4, 5])
    fixed = SASRec(**{**params, "random_windows": False}).fit(view).score_history([3, 4, 5])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, fixed)


def test_blockwise_softmax_ce_equals_cross_entropy() -> None:
    """The loss that never holds the full logits has the values and gradients of
    ``cross_entropy(h @ E.T, target)``, over more rows than one block."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(700, 8, generator=gen, requires_grad=True)
    E = torch.randn(40, 8, generator=gen, requires_grad=True)
    target = torch.randint(0, 40, (700,), generator=gen)
    loss = _full_softmax_ce(torch).apply(h, E, target)
    grads = torch.autograd.grad(loss, (h, E))
    ref = torch.nn.functional.cross_entropy(h @ E.T, target)
    ref_grads = torch.autograd.grad(ref, (h, E))
    assert abs(float(loss.detach()) - float(ref.detach())) < 1e-5
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_dropout_keeps_one_minus_p_and_rescales() -> None:
    """The network's dropout (keep masks from 15-bit integers) keeps a share 1 - p of the
    entries, scaled by 1 / (1 - p), in training, is the identity in evaluation, and follows
    torch's seed."""
    x = torch.ones(200, 50, 8)
    torch.manual_seed(0)
    kept = _dropout(torch, x, 0.3, True)
    share = float((kept != 0).float().mean())
    assert abs(share - 0.7) < 0.005
    torch.testing.assert_close(kept[kept != 0], torch.full_like(kept[kept != 0], 1 / 0.7))
    torch.manual_seed(0)
    torch.testing.assert_close(_dropout(torch, x, 0.3, True), kept)
    assert _dropout(torch, x, 0.3, False) is x and _dropout(torch, x, 0.0, True) is x


def test_blockwise_softmax_ce_leaves_seen_items_out() -> None:
    """With ``seen``, each row's softmax is over the items outside its seen list, the target
    kept even where it is listed: the values and gradients of ``cross_entropy`` on logits with
    the seen items at -inf."""
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(600, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    E = torch.randn(40, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 40, (600,), generator=gen)
    seen = torch.randint(0, 40, (600, 6), generator=gen)
    seen[::3, 0] = target[::3]  # a listed target stays in its softmax
    loss = _full_softmax_ce(torch).apply(h, E, target, seen)
    grads = torch.autograd.grad(loss, (h, E))
    logits = h @ E.T
    out = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, seen, True)
    out[torch.arange(600), target] = False
    ref = torch.nn.functional.cross_entropy(logits.masked_fill(out, -torch.inf), target)
    ref_grads = torch.autograd.grad(ref, (h, E))
    assert abs(float(loss.detach()) - float(ref.detach())) < 1e-10
    assert float(loss.detach()) < float(torch.nn.functional.cross_entropy(logits.detach(), target))
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_seen_before_lists_the_items_read_up_to_each_position() -> None:
    # two left-padded windows (item + 1, 0 = padding); position (0, 1) is not learnt from
    inp = torch.tensor([[0, 5, 3, 9], [2, 4, 6, 8]])
    valid = torch.tensor([[False, False, True, True], [True, True, False, True]])
    target = torch.tensor([20, 21, 22, 23, 24])
    got = _seen_before(torch, inp, valid, target)
    want = [[4, 2, 20, 20], [4, 2, 8, 21], [1, 22, 22, 22], [1, 3, 23, 23], [1, 3, 5, 7]]
    assert [sorted(set(r.tolist())) for r in got] == [sorted(set(r)) for r in want]


def test_exclude_seen_needs_the_full_softmax() -> None:
    with pytest.raises(InvalidInput, match="exclude_seen"):
        SASRec(**{**SMALL, "exclude_seen": True, "loss": "sampled"}).fit(cycles())


def test_svd_init_starts_items_of_one_taste_close() -> None:
    """``init="svd"``: before any step, every checkerboard item (users like either the even or
    the odd items) has its nearest item (cosine) in its own parity, at the norm of the random
    start; the random start knows nothing of parity (chance: about half). Same seed, same
    start."""
    view = shuffled_checkerboard()

    def start(init: str) -> np.ndarray:
        model = SASRec(**{**SMALL, "factors": 8, "n_heads": 1, "init": init, "epochs": 1,
                          "learning_rate": 1e-12, "lr_decay": False}).fit(view)
        return model.net_.items.weight.detach().numpy()[1:].copy()

    def same_parity_neighbours(V: np.ndarray) -> float:
        """Share of items whose most similar other item (cosine) has their parity."""
        V = V / np.linalg.norm(V, axis=1, keepdims=True)
        cos = V @ V.T
        np.fill_diagonal(cos, -np.inf)
        return float(np.mean(cos.argmax(axis=1) % 2 == np.arange(N_ITEMS) % 2))

    svd, rand = start("svd"), start("random")
    assert same_parity_neighbours(svd) == 1.0 and same_parity_neighbours(rand) < 0.8
    np.testing.assert_allclose(np.linalg.norm(svd, axis=1).mean(),
                               np.linalg.norm(rand, axis=1).mean(), rtol=1e-3)
    np.testing.assert_array_equal(start("svd"), svd)
