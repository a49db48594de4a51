"""A hybrid two-tower model: a user tower (history pooling, user id, demographics, request
context) and an item tower (item id, categories, attributes, text embedding), scored by a dot
product, so that retrieval over a large catalogue is a nearest-neighbour search
(:mod:`personae.models.ann`).

Training (per step, a batch of users) is a denoising autoencoder over histories, as Mult-DAE
(Liang et al., 2018): a random share of each user's training items is the *input* (pooled by the
user tower) and the model learns to find the *targets* — all of the user's items
(``targets="all"``, Mult-DAE's multinomial likelihood) or only those left out of the input
(``"held_out"``) — with a full softmax over the catalogue (``loss="softmax"``) or a sampled
softmax over popularity-drawn negatives with log-Q correction (``loss="sampled"``, for large
catalogues). Item biases are part of the logits. Each target carries its own event's context
(time bucket, device, …), which enters the user side, so the same user is scored differently at
night and in the morning.

The defaults were chosen on ml-100k's validation splits (``bench/bench_neural.py``, P1 random
holdout, every unseen item ranked): test NDCG@10 0.432 against EASE's 0.440, in 14 CPU seconds
on one thread. What mattered there: all items as targets, tied item vectors, a linear user
tower (the residual MLP, ``user_mlp``, overfits ids-only data), weight decay and enough steps.

Cold start: an item without training interactions has no usable id embedding, so its vectors
come from its features alone (the id part is dropped at random in training, ``id_dropout``, so
the feature part learns to stand alone); a new user is scored from history, demographics (their
attributes, given as ``context["user"]``) and context (:meth:`TwoTower.score_history`); the
whole history of a user is dropped at random in training (``history_dropout``), so that the
demographics learn to score a user with a short or no history.

Ratings (``rating_head=True``, :meth:`TwoTower.predict_ratings`): a regression head on the same
towers, trained beside the ranking loss. On ml-100k's five folds u1–u5 (``bench/bench_ratings.py``,
ids only, tuned on a validation split of u1.base) its RMSE is 0.900 ± 0.005, against 0.953 for
its starting point (mean + ridge biases) and 0.900 for FeatureGBM, in 10 s per fold. Those
settings (64 factors, 30 epochs, ``input_keep=0.9``) rank worse: on ml-100k P1 fit on the
training pairs' ratings, NDCG@10 0.374 and RMSE 0.902; the ranking defaults with the head keep
NDCG@10 0.432 but rate at RMSE 0.974 (0.932 with ``rating_weight=0.3``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models import _torch as T
from personae.models._params import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_number,
    check_random_state,
)
from personae.models.base import Recommender, check_pairs

if TYPE_CHECKING:
    from personae.data.side import SideFeatures


#: Width of the rating head's user-item interaction (``rating_head``).
_RATING_RANK = 64


class TwoTower(Recommender):
    """Hybrid two-tower retrieval model with context.

    Parameters
    ----------
    factors : int, default 600
        Width of both towers' output (the dot-product space).
    user_embedding : bool, default False
        Add a learned per-user id vector (training users only) to the pooled history.
    user_mlp : bool, default False
        Pass the user vector through a residual two-layer MLP (GELU); off, the user tower is
        linear in the pooled history (plus the user and context parts).
    tie_items : bool, default True
        Pool the history from the same item vectors that are scored (id + features):
        ``user ∝ Σ v_i``; False: a separate input vector per item (twice the id parameters).
    input_keep : float, default 0.5
        Share of a user's items given to the user tower in each training step (at least one);
        at scoring time the whole history is used.
    targets : {"all", "held_out"}, default "all"
        What the user vector must find in a training step: every item of the user (the input
        ones too, as in Mult-DAE), or only the items left out of the input (at least one).
    id_dropout : float, default 0.1
        Probability that an item's id vectors are dropped in a training step (so the feature
        part learns to score items on its own; only matters with item features).
    history_dropout : float, default 0.3
        Probability that a user's whole history is left out of the user tower in a training
        step, so that the demographic part learns to score users on its own (a new user with
        no or few events); only matters with user features. On ml-100k with age, gender and
        occupation (94 users left out of training, validation only, 2 seeds), 0 → 0.3 took
        those users' NDCG@10 from 0.522 to 0.551 with demographics alone and from 0.620 to
        0.652 with 2 items, the trained users' staying at 0.410; 0.5 cost the trained users
        2 %. Where the history names the taste outright (the tests' planted genres), without
        it the demographic vectors learn to correct the pooled history instead.
    dropout : float, default 0.0
        Dropout on the pooled user representation.
    epochs : int, default 40
        Passes over the users (fewer with early stopping).
    batch_size : int, default 100
        Users per step.
    learning_rate : float, default 2e-3
        Adam step size (the start of the linear decay with ``lr_decay``).
    l2 : float, default 3e-4
        Adam weight decay (an L2 penalty on every parameter, relative to the mean loss per
        target).
    lr_decay : bool, default True
        Decay the step size linearly to 0 over ``epochs``.
    loss : {"softmax", "sampled"}, default "softmax"
        Full softmax over the catalogue, or sampled softmax with log-Q correction.
    rating_head : bool, default False
        Also learn to predict ratings (:meth:`predict_ratings`): mean + user and item biases
        (started from a ridge fit) + an interaction, of rank min(factors, 64), between the
        item vector and the user's two vectors: the user tower's, and the user's items pooled
        by their ratings' residuals from the biases (as Koren's Asymmetric-SVD, 2008). Squared
        error on the items left out of the input in each step. Needs ratings: Interactions
        whose events have values (the last per pair), or a sparse matrix of them (a 0/1
        matrix is refused). The head shares the item vectors, so the ranking moves too.
    rating_weight : float, default 1.0
        Weight of the rating head's mean squared error beside the ranking loss.
    n_negatives : int, default 1024
        Shared negatives per step for ``loss="sampled"``.
    init : {"svd", "random"}, default "svd"
        Start the item id vectors (input and output) from a truncated SVD of the training
        matrix (columns scaled by popularity^-0.25), so that training starts from PureSVD's
        ranking instead of from noise; "random": small Gaussian vectors.
    validation : float, default 0.0
        Share of users of whom 20 % of items are held out to early-stop on NDCG@10 (0: off;
        the ranking only: the rating head's error is not watched).
    patience : int, default 5
        Epochs without a validation gain before stopping.
    random_state : int or None, default None
        Seed: same seed, same model.
    num_threads : int or None, default None
        ``torch.set_num_threads`` during fit and scoring (None: every allowed core).
    verbose : bool, default False
        One line per epoch on stderr.

    Side features are given to :meth:`fit` (``side=``, a :class:`personae.data.side.SideFeatures`
    in the same index space); they are saved with the model, with what is needed to encode the
    attributes of users who were not trained on (``user_fields_``, ``user_vocab_``,
    ``user_bins_``).

    The request context (``context=`` of the scoring methods) holds the event-context fields
    seen in training (``device``, …; ``ts`` for the time buckets) and one reserved key,
    ``"user"``: a mapping of the user's attributes (``{"age": 31, "gender": "F"}``), encoded
    as the training users' were (:meth:`personae.data.side.SideFeatures.encode_user`: numbers
    binned at the training bins; unseen values and unknown attributes are ignored). It gives
    demographics to users scored by their history (:meth:`score_history`,
    :meth:`score_histories`, ``recommend(history=...)``), even an empty one; each row of a
    batch gets the same attributes. Training users scored by their row (:meth:`score_users`,
    ``recommend(user)`` without a history) keep the codes they were trained with and the key
    is ignored for them. ``context["user"]`` must be a mapping (:class:`InvalidInput`
    otherwise).

    >>> model.score_history([], None, {"device": "tv", "user": {"age": 31}})  # doctest: +SKIP
    """

    name: ClassVar[str] = "twotower"
    scores_histories: ClassVar[bool] = True
    uses_context: ClassVar[bool] = True

    history_: list[dict[str, float]]
    best_epoch_: int
    warm_: np.ndarray

    def __init__(
        self,
        factors: int = 600,
        user_embedding: bool = False,
        user_mlp: bool = False,
        tie_items: bool = True,
        input_keep: float = 0.5,
        targets: str = "all",
        id_dropout: float = 0.1,
        history_dropout: float = 0.3,
        dropout: float = 0.0,
        epochs: int = 40,
        batch_size: int = 100,
        learning_rate: float = 2e-3,
        l2: float = 3e-4,
        lr_decay: bool = True,
        loss: str = "softmax",
        rating_head: bool = False,
        rating_weight: float = 1.0,
        n_negatives: int = 1024,
        init: str = "svd",
        validation: float = 0.0,
        patience: int = 5,
        random_state: int | None = None,
        num_threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.user_embedding = user_embedding
        self.user_mlp = user_mlp
        self.tie_items = tie_items
        self.input_keep = input_keep
        self.targets = targets
        self.id_dropout = id_dropout
        self.history_dropout = history_dropout
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.lr_decay = lr_decay
        self.loss = loss
        self.rating_head = rating_head
        self.rating_weight = rating_weight
        self.n_negatives = n_negatives
        self.init = init
        self.validation = validation
        self.patience = patience
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    def _validate_params(self) -> None:
        m = type(self).__name__
        for name in ("factors", "epochs", "batch_size", "n_negatives", "patience"):
            check_int(m, name, getattr(self, name), 1)
        check_bool(m, "user_embedding", self.user_embedding)
        check_bool(m, "user_mlp", self.user_mlp)
        check_bool(m, "tie_items", self.tie_items)
        check_number(m, "input_keep", self.input_keep, "a float in (0, 1)", lambda v: 0 < v < 1)
        for name in ("id_dropout", "history_dropout", "dropout", "validation"):
            check_number(m, name, getattr(self, name), "a float in [0, 1)",
                         lambda v: 0 <= v < 1)
        check_float(m, "learning_rate", self.learning_rate, strict=True)
        check_float(m, "l2", self.l2, strict=False)
        check_bool(m, "lr_decay", self.lr_decay)
        check_choice(m, "loss", self.loss, ("softmax", "sampled"))
        check_choice(m, "targets", self.targets, ("all", "held_out"))
        check_bool(m, "rating_head", self.rating_head)
        check_float(m, "rating_weight", self.rating_weight, strict=True)
        check_choice(m, "init", self.init, ("svd", "random"))
        check_random_state(m, self.random_state)
        if self.num_threads is not None:
            check_int(m, "num_threads", self.num_threads, 1)
        check_bool(m, "verbose", self.verbose)

    # ------------------------------------------------------------------ fitting

    def fit(self, data: Any, side: SideFeatures | None = None) -> TwoTower:
        """Learn from interactions and (optionally) side features.

        Parameters
        ----------
        data : Interactions or scipy.sparse matrix, shape (n_users, n_items)
        side : SideFeatures, optional
            Item, user and event-context features in the same index space
            (:class:`personae.data.side.SideFeatures`). Event context codes are used only when
            ``data`` is the Interactions they were built from (they are per event).
        """
        self._side = side
        try:
            return super().fit(data)
        finally:
            del self._side

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        from personae.data.side import SideFeatures

        torch = T.import_torch()
        side = self._side if self._side is not None else SideFeatures.empty(*X.shape)
        if (side.n_users, side.n_items) != X.shape:
            raise InvalidInput(f"side features are for {side.n_users} users × {side.n_items} "
                               f"items but the data is {X.shape[0]} × {X.shape[1]}")
        self._store_side(side)
        pair_ctx = self._pair_context(X, view, side)
        pair_rating = self._pair_ratings(X, view) if self.rating_head else None
        rng = np.random.default_rng(self.random_state)
        Xb = X.copy()
        Xb.data[:] = 1.0
        val_users = np.zeros(0, dtype=np.int64)
        val_rows = sp.csr_matrix(X.shape, dtype=np.float32)
        train, kept = Xb, np.arange(X.nnz)
        if self.validation > 0:
            train, val_rows, val_users, kept = _holdout(Xb, float(self.validation), rng)
        pair_ctx = pair_ctx[kept]  # per-pair arrays follow the kept pairs (rows keep order)
        self.warm_ = np.asarray((train > 0).sum(axis=0)).ravel() > 0
        ratings = None
        if pair_rating is not None:
            self._rating_baseline(X, train, pair_rating[kept], pair_rating)
            ratings = (pair_rating[kept], self.rating_resid_[kept])
        with T.torch_threads(self.num_threads):
            T.generator(self.random_state)
            self.net_ = self._build(torch)
            if self.init == "svd":
                self._svd_init(torch, train)
            if ratings is not None:
                with torch.no_grad():
                    self.net_.r_mu.fill_(self.rating_mean_)
                    for table, b in zip((self.net_.r_user, self.net_.r_item), self.rating_bias_,
                                        strict=True):
                        table.weight.copy_(torch.from_numpy(b[:, None]))
            self._train(torch, train, pair_ctx, ratings, val_rows, val_users, rng)
        self.warm_ = np.asarray((Xb > 0).sum(axis=0)).ravel() > 0

    def _pair_ratings(self, X: sp.csr_matrix, view: Any) -> np.ndarray:
        """The rating of each training pair, aligned with ``X.data``; float32 (nnz,), NaN where
        the pair has none. From the view's event values (the last per pair), or the stored
        values of a sparse ``data``. Sets ``rating_mean_`` and ``rating_range_``."""
        if view is None:
            r = X.data.astype(np.float32)
        elif np.isnan(view.event_values).all():
            r = np.full(X.nnz, np.nan, dtype=np.float32)
        else:
            R = sp.csr_matrix(view.ratings(), dtype=np.float32)
            R.sort_indices()
            rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            keys = rows.astype(np.int64) * X.shape[1] + X.indices
            r_rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
            r_keys = r_rows.astype(np.int64) * R.shape[1] + R.indices
            r = np.full(X.nnz, np.nan, dtype=np.float32)
            pos = np.searchsorted(keys, r_keys)
            hit = (pos < keys.size) & (keys[np.minimum(pos, max(keys.size - 1, 0))] == r_keys)
            r[pos[hit]] = R.data[hit]
        known = r[np.isfinite(r)]
        if known.size == 0:
            raise InvalidInput("rating_head=True needs ratings: Interactions whose events have "
                               "values, or a sparse matrix whose stored values are the ratings")
        if known.min() == known.max():
            # a binary matrix (e.g. a Split's train) fits a head that always says 1.0
            raise InvalidInput(f"rating_head=True needs ratings that vary, but all {known.size} "
                               f"training ratings are {float(known[0])!r}: pass the ratings "
                               "(event values, or a matrix of them), not 0/1 interactions")
        self.rating_mean_ = float(known.mean())
        self.rating_range_ = (float(known.min()), float(known.max()))
        return r

    def _rating_baseline(self, X: sp.csr_matrix, train: sp.csr_matrix, train_rating: np.ndarray,
                         rating: np.ndarray) -> None:
        """The baseline predictor the rating head starts from: mean + user and item biases
        (:func:`ridge_biases`) fit on ``train``; and the residual of every pair of ``X`` from
        it (``rating_resid_``, aligned with ``X.data``, NaN where unrated), which the rating
        side of the user tower pools."""
        rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
        ok = np.isfinite(train_rating)
        bu, bi = ridge_biases(rows[ok], train.indices[ok],
                              train_rating[ok].astype(np.float64) - self.rating_mean_, X.shape)
        self.rating_bias_ = (bu.astype(np.float32), bi.astype(np.float32))
        all_rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        self.rating_resid_ = (rating - self.rating_mean_ - bu[all_rows]
                              - bi[X.indices]).astype(np.float32)

    def _store_side(self, side: SideFeatures) -> None:
        self.item_categories_ = sp.csr_matrix(side.item_categories, dtype=np.float32)
        self.item_codes_ = np.asarray(side.item_codes, dtype=np.int64)
        self.item_vocab_sizes_ = [len(v) for v in side.item_vocab]
        self.item_numeric_ = np.asarray(side.item_numeric, dtype=np.float32)
        self.item_text_ = (None if side.item_text is None
                           else T.check_matrix("TwoTower", "item_text", side.item_text,
                                               self.n_items_))
        self.user_codes_ = np.asarray(side.user_codes, dtype=np.int64)
        self.user_vocab_sizes_ = [len(v) for v in side.user_vocab]
        self.user_fields_ = list(side.user_fields)
        self.user_vocab_ = [list(v) for v in side.user_vocab]
        self.user_bins_ = {k: [float(e) for e in v] for k, v in side.user_bins.items()}
        self.context_fields_ = list(side.context_fields)
        self.context_vocab_ = [list(v) for v in side.context_vocab]

    def _pair_context(self, X: sp.csr_matrix, view: Any, side: SideFeatures) -> np.ndarray:
        """Context codes of each training pair (its latest event), aligned with ``X.data``;
        int64 (nnz, n_context_fields), -1 where unknown."""
        n_f = len(side.context_fields)
        out = np.full((X.nnz, n_f), -1, dtype=np.int64)
        if n_f == 0 or side.event_codes is None or view is None:
            return out
        if side.event_codes.shape[0] != view.n_events:
            raise InvalidInput(f"side.event_codes has {side.event_codes.shape[0]} rows but the "
                               f"view has {view.n_events} events")
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        keys = rows.astype(np.int64) * X.shape[1] + X.indices
        ek = view.event_users.astype(np.int64) * X.shape[1] + view.event_items
        pos = np.searchsorted(keys, ek)
        pos = np.minimum(pos, max(keys.size - 1, 0))
        hit = keys[pos] == ek if keys.size else np.zeros(0, bool)
        out[pos[hit]] = side.event_codes[hit]  # arrival order: the latest event wins
        return out

    def _svd_init(self, torch: Any, X: sp.csr_matrix) -> None:
        """Item id vectors from a truncated SVD of X (:func:`~personae.models._torch.
        svd_item_vectors`), at a mean norm of 2."""
        V = T.svd_item_vectors(X, self.factors, self.random_state)
        if V is None:
            return
        V *= 2.0
        with torch.no_grad():
            if self.net_.id_in is not None:
                self.net_.id_in.weight.copy_(torch.from_numpy(V))
            self.net_.id_out.weight.copy_(torch.from_numpy(V))
            if self.net_.mlp is not None:
                # the user MLP starts as the identity (its residual branch at zero)
                self.net_.mlp[-1].weight.zero_()
                self.net_.mlp[-1].bias.zero_()

    def _arch(self) -> dict[str, Any]:
        return {
            "d": int(self.factors), "n_users": self.n_users_, "n_items": self.n_items_,
            "n_categories": self.item_categories_.shape[1],
            "item_vocab": self.item_vocab_sizes_, "n_numeric": self.item_numeric_.shape[1],
            "text_dim": 0 if self.item_text_ is None else self.item_text_.shape[1],
            "user_vocab": self.user_vocab_sizes_,
            "context_vocab": [len(v) for v in self.context_vocab_],
            "user_embedding": bool(self.user_embedding), "user_mlp": bool(self.user_mlp),
            "dropout": float(self.dropout), "tie_items": bool(self.tie_items),
            "rating_head": bool(self.rating_head),
        }

    def _build(self, torch: Any) -> Any:
        feats = {
            "categories": self.item_categories_, "codes": self.item_codes_,
            "numeric": self.item_numeric_, "text": self.item_text_,
            "user_codes": self.user_codes_,
        }
        return _build(torch, self._arch(), feats)

    def _train(self, torch: Any, X: sp.csr_matrix, pair_ctx: np.ndarray,
               ratings: tuple[np.ndarray, np.ndarray] | None, val_rows: sp.csr_matrix,
               val_users: np.ndarray, rng: np.random.Generator) -> None:
        net = self.net_
        opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate),
                               weight_decay=float(self.l2))
        log = T.EpochLog("twotower", int(self.epochs), bool(self.verbose))
        users = np.flatnonzero(np.diff(X.indptr) >= 2)
        if users.size == 0:
            raise InvalidInput("TwoTower needs at least one user with 2 or more items")
        n_steps = int(self.epochs) * -(-users.size // int(self.batch_size))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: max(0.0, 1.0 - step / n_steps) if self.lr_decay else 1.0)
        stopper = T.EarlyStopping(int(self.patience)) if val_users.size else None
        warm = torch.from_numpy(self.warm_)
        sampled = self.loss == "sampled"
        pop = np.asarray(X.sum(axis=0)).ravel().astype(np.float64) + 1.0
        q = torch.from_numpy(pop / pop.sum()).float()
        for epoch in range(int(self.epochs)):
            net.train()
            total, count = 0.0, 0
            for b in T.batches(users.size, int(self.batch_size), rng):
                batch = users[b]
                inp, tgt, in_pos = _split_rows(X, batch, float(self.input_keep), rng,
                                               self.targets == "all")
                if self.history_dropout > 0 and len(net.user_tables):
                    kept = rng.random(batch.size) >= float(self.history_dropout)
                    keep_in = kept[inp[1]]
                    inp = (inp[0][keep_in], inp[1][keep_in], inp[2][keep_in])
                    in_pos = in_pos[keep_in]
                keep_id = warm & (torch.rand(self.n_items_) >= float(self.id_dropout))
                t_items = torch.from_numpy(tgt[1])
                u = net.users(torch.from_numpy(batch), *map(torch.from_numpy, inp), keep_id)
                bias = net.item_bias(keep_id)
                if sampled:
                    uq = u[torch.from_numpy(tgt[0])] + net.context(
                        torch.from_numpy(pair_ctx[tgt[2]]))
                    neg = torch.multinomial(q, int(self.n_negatives), replacement=True)
                    vp = net.items_out(t_items, keep_id)
                    vn = net.items_out(neg, keep_id)
                    logits = torch.cat([(uq * vp).sum(-1, keepdim=True)
                                        + (bias[t_items] - torch.log(q[t_items]))[:, None],
                                        uq @ vn.T + (bias[neg] - torch.log(q[neg]))[None, :]],
                                       dim=1)
                    loss = torch.nn.functional.cross_entropy(
                        logits, torch.zeros(t_items.shape[0], dtype=torch.long))
                else:
                    # one softmax per (user, context) rather than per target: without context
                    # a user's targets share one row of logits (Mult-DAE's multinomial loss)
                    key = np.column_stack([tgt[0], pair_ctx[tgt[2]]])
                    groups, which = np.unique(key, axis=0, return_inverse=True)
                    g = torch.from_numpy(groups)
                    uq = u[g[:, 0]] + net.context(g[:, 1:])
                    logp = torch.log_softmax(uq @ net.items_out(None, keep_id).T
                                             + bias[None, :], dim=1)
                    loss = -logp[torch.from_numpy(which.ravel()), t_items].mean()
                if ratings is not None:
                    r = ratings[0][tgt[2]]
                    # ratings are learned on the items outside the input only, as they will
                    # be asked for (an item to rate is never in the pooled history)
                    held = ~np.isin(tgt[2], in_pos)
                    rated = np.flatnonzero(np.isfinite(r) & held)
                    if rated.size:
                        rv = net.rating_user(*map(torch.from_numpy, (
                            inp[0], inp[1], ratings[1][in_pos])), batch.size, keep_id)
                        rows = torch.from_numpy(tgt[0][rated])
                        pred = net.rating(u[rows], rv[rows], torch.from_numpy(batch)[rows],
                                          t_items[rated], keep_id)
                        mse = ((pred - torch.from_numpy(r[rated])) ** 2).mean()
                        loss = loss + float(self.rating_weight) * mse
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * int(t_items.shape[0])
                count += int(t_items.shape[0])
            metric = None
            if stopper is not None:
                metric = self._validate(X, val_rows, val_users)
            log.epoch(epoch, total / max(count, 1), metric)
            if stopper is not None and metric is not None \
                    and stopper.update(epoch, metric, net.state_dict()):
                break
        if stopper is not None and stopper.best_state is not None:
            net.load_state_dict(stopper.best_state)
            self.best_epoch_ = stopper.best_epoch + 1
        else:
            self.best_epoch_ = len(log.history)
        self.history_ = log.history
        net.eval()

    def _validate(self, X: sp.csr_matrix, val_rows: sp.csr_matrix, users: np.ndarray) -> float:
        from personae.evaluate.metrics import ranking_metrics
        from personae.models.topk import topk

        self.net_.eval()
        scores = self._score(X[users], users, None)
        items, _ = topk(scores, 10, exclude=X[users])
        return float(ranking_metrics(items, val_rows[users], (10,))["ndcg@10"].mean())

    # ------------------------------------------------------------------ scoring

    def _score(self, H: sp.csr_matrix, users: np.ndarray | None,
               context: Mapping[str, Any] | None, batch_size: int = 1024) -> np.ndarray:
        """Scores (len(H), n_items) float32 from histories ``H``, user rows ``users`` (None:
        unknown users, whose attributes are ``context["user"]``) and one request context."""
        torch = T.import_torch()
        H = sp.csr_matrix(H, dtype=np.float32)
        out = np.empty((H.shape[0], self.n_items_), dtype=np.float32)
        ctx = torch.from_numpy(self._encode_context(context)[None, :])
        given = torch.from_numpy(self._encode_user(context))
        with T.torch_threads(self.num_threads), torch.inference_mode():
            self.net_.eval()
            warm = torch.from_numpy(self.warm_)
            v = self.net_.items_out(None, warm)
            bias = self.net_.item_bias(warm)
            cvec = self.net_.context(ctx)
            for start in range(0, H.shape[0], batch_size):
                rows = H[start:start + batch_size]
                u_idx = (np.full(rows.shape[0], -1, dtype=np.int64) if users is None
                         else users[start:start + batch_size])
                seg = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
                inp = (rows.indices.astype(np.int64), seg.astype(np.int64),
                       rows.data.astype(np.float32))
                u = self.net_.users(torch.from_numpy(u_idx), *map(torch.from_numpy, inp), warm,
                                    given)
                s = (u + cvec) @ v.T + bias[None, :]
                out[start:start + rows.shape[0]] = s.numpy()
        return out

    def _encode_context(self, context: Mapping[str, Any] | None) -> np.ndarray:
        from personae.data.features import TIME_BUCKETS, time_buckets

        ctx = context or {}
        out = np.full(len(self.context_fields_), -1, dtype=np.int64)
        for f, (name, vocab) in enumerate(zip(self.context_fields_, self.context_vocab_,
                                              strict=True)):
            if name in TIME_BUCKETS:
                if ctx.get("ts") is not None:
                    out[f] = int(time_buckets([float(ctx["ts"])], name)[0][0])
            elif ctx.get(name) is not None and str(ctx[name]) in vocab:
                out[f] = vocab.index(str(ctx[name]))
        return out

    def _encode_user(self, context: Mapping[str, Any] | None) -> np.ndarray:
        """Codes of the attributes in ``context["user"]`` (int64 (n_user_fields,), -1 where
        unknown), for users without a training row. Artifacts saved before the user fields
        were kept (``user_fields_`` empty) encode nothing: all -1, as they scored then."""
        from personae.data.side import encode_user_attributes

        attributes = (context or {}).get("user")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise InvalidInput(f"context['user'] must be a mapping of the user's attributes "
                               f"(e.g. {{'age': 31}}), got {type(attributes).__name__}")
        codes = np.full(len(self.user_vocab_sizes_), -1, dtype=np.int64)
        if self.user_fields_:
            codes[:] = encode_user_attributes(attributes, self.user_fields_, self.user_vocab_,
                                              self.user_bins_)
        return codes

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self._score(self._histories(users), users, context)

    @property
    def predicts_ratings(self) -> bool:
        """Whether :meth:`predict_ratings` answers: fit with ``rating_head``."""
        return bool(self.rating_head)

    def _histories(self, users: np.ndarray) -> sp.csr_matrix:
        """Training rows of ``users`` with every stored value 1: training pooled each item
        with weight 1, whatever the data's values (counts, ratings)."""
        H = sp.csr_matrix(self.user_items_[users], dtype=np.float32)
        H.data[:] = 1.0
        return H

    def predict_ratings(self, users: np.ndarray | Sequence[int],
                        items: np.ndarray | Sequence[int]) -> np.ndarray:
        """Predicted ratings of (training user, item) pairs, from the rating head.

        Parameters
        ----------
        users, items : int arrays (n,)
            Index-space users in ``[0, n_users_)`` and items in ``[0, n_items_)``.

        Returns
        -------
        float64 ndarray (n,), clipped to the training ratings' range (``rating_range_``).
        The user side is the user tower over the whole training history, without context.
        """
        torch = T.import_torch()
        self._check_fitted()
        if not self.rating_head:
            raise InvalidInput("predict_ratings needs a model fit with rating_head=True")
        u, i = check_pairs(users, items, self.n_users_, self.n_items_)
        out = np.empty(u.size, dtype=np.float64)
        uniq, inv = np.unique(u, return_inverse=True)
        with T.torch_threads(self.num_threads), torch.inference_mode():
            self.net_.eval()
            warm = torch.from_numpy(self.warm_)
            H = self._histories(uniq)
            seg = np.repeat(np.arange(H.shape[0]), np.diff(H.indptr)).astype(np.int64)
            items_t = torch.from_numpy(H.indices.astype(np.int64))
            seg_t = torch.from_numpy(seg)
            vecs = self.net_.users(torch.from_numpy(uniq), items_t, seg_t,
                                   torch.from_numpy(H.data), warm)
            X = self.user_items_
            resid = np.concatenate([self.rating_resid_[X.indptr[k]:X.indptr[k + 1]]
                                    for k in uniq]) if uniq.size else np.zeros(0, np.float32)
            rvecs = self.net_.rating_user(items_t, seg_t, torch.from_numpy(resid), uniq.size,
                                          warm)
            for start in range(0, u.size, 65536):
                sl = slice(start, start + 65536)
                rows = torch.from_numpy(inv[sl].astype(np.int64))
                pred = self.net_.rating(vecs[rows], rvecs[rows], torch.from_numpy(u[sl]),
                                        torch.from_numpy(i[sl]), warm)
                out[sl] = pred.numpy()
        return np.clip(out, *self.rating_range_)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        # as in training (and for training users, :meth:`_histories`), each item of a history
        # counts once, whatever its weight (the engine's click = 2, purchase = 5): weights
        # would shift the pooled vector's scale away from what the towers were fit on
        H = sp.csr_matrix(histories, dtype=np.float32, copy=True)
        H.data = (H.data > 0).astype(np.float32)
        H.eliminate_zeros()
        return self._score(H, None, context)

    def forget_users(self, users: np.ndarray | Sequence[int]) -> None:
        """Remove what the model holds of these training users, in place (see
        :meth:`Recommender.forget_users`); also their user id vectors (``user_embedding``),
        rating biases and ratings (``rating_head``): they are then scored and rated as unknown
        users with an empty history."""
        torch = T.import_torch()
        before = self.user_items_
        super().forget_users(users)
        rows = np.asarray(users, dtype=np.int64).reshape(-1)
        if self.rating_head:
            # the residuals are aligned with the training matrix's stored values: drop those
            # the base class dropped (the rows forgotten, and any stored zeros)
            owner = np.repeat(np.arange(before.shape[0]), np.diff(before.indptr))
            kept = ~np.isin(owner, rows) & (before.data != 0)
            self.rating_resid_ = self.rating_resid_[kept]
        with torch.no_grad():
            for table in (self.net_.user_id, getattr(self.net_, "r_user", None)):
                if table is not None:
                    table.weight[torch.from_numpy(rows)] = 0.0

    def item_vectors(self) -> np.ndarray:
        """The item tower's output for every item, float32 (n_items, factors + 1): the last
        column is the item bias, so that ``user_vectors(...) @ item_vectors().T`` equals the
        scores (the form an ANN index takes, :mod:`personae.models.ann`)."""
        torch = T.import_torch()
        self._check_fitted()
        with T.torch_threads(self.num_threads), torch.inference_mode():
            warm = torch.from_numpy(self.warm_)
            v = self.net_.items_out(None, warm)
            b = self.net_.item_bias(warm)
            return torch.cat([v, b[:, None]], dim=1).numpy().astype(np.float32)

    def user_vectors(self, histories: sp.csr_matrix, users: np.ndarray | None = None,
                     context: Mapping[str, Any] | None = None) -> np.ndarray:
        """The user tower's output for histories (and training user rows; rows without one
        take their attributes from ``context["user"]``), float32 (n, factors + 1) with a last
        column of ones (see :meth:`item_vectors`)."""
        torch = T.import_torch()
        self._check_fitted()
        H = sp.csr_matrix(histories, dtype=np.float32)
        if H.shape[1] != self.n_items_:
            raise InvalidInput(f"histories must have {self.n_items_} columns, got {H.shape[1]}")
        u_idx = (np.full(H.shape[0], -1, dtype=np.int64) if users is None
                 else np.asarray(users, dtype=np.int64))
        seg = np.repeat(np.arange(H.shape[0]), np.diff(H.indptr))
        ctx = torch.from_numpy(self._encode_context(context)[None, :])
        given = torch.from_numpy(self._encode_user(context))
        with T.torch_threads(self.num_threads), torch.inference_mode():
            warm = torch.from_numpy(self.warm_)
            u = self.net_.users(torch.from_numpy(u_idx), torch.from_numpy(
                H.indices.astype(np.int64)), torch.from_numpy(seg.astype(np.int64)),
                torch.from_numpy(H.data.astype(np.float32)), warm,
                given) + self.net_.context(ctx)
            ones = torch.ones(u.shape[0], 1)
            return torch.cat([u, ones], dim=1).numpy().astype(np.float32)

    # ------------------------------------------------------------------ persistence

    def _get_state(self) -> dict[str, np.ndarray]:
        state = T.state_to_numpy(self.net_.state_dict(), "net.")
        C = self.item_categories_
        state.update(warm=self.warm_, cat_indptr=C.indptr, cat_indices=C.indices,
                     cat_shape=np.array(C.shape, dtype=np.int64), item_codes=self.item_codes_,
                     item_numeric=self.item_numeric_, user_codes=self.user_codes_)
        if self.item_text_ is not None:
            state["item_text"] = self.item_text_
        if self.rating_head:
            state["rating_resid"] = self.rating_resid_
        return state

    def _get_meta(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch_, "history": self.history_,
                "item_vocab_sizes": self.item_vocab_sizes_,
                "user_vocab_sizes": self.user_vocab_sizes_,
                "user_fields": self.user_fields_, "user_vocab": self.user_vocab_,
                "user_bins": self.user_bins_,
                "context_fields": self.context_fields_, "context_vocab": self.context_vocab_,
                **({"rating_mean": self.rating_mean_, "rating_range": list(self.rating_range_)}
                   if self.rating_head else {})}

    def _set_meta(self, meta: Mapping[str, Any]) -> None:
        self.best_epoch_ = int(meta.get("best_epoch", 0))
        self.history_ = list(meta.get("history", []))
        self.item_vocab_sizes_ = [int(v) for v in meta.get("item_vocab_sizes", [])]
        self.user_vocab_sizes_ = [int(v) for v in meta.get("user_vocab_sizes", [])]
        # artifacts from before these were saved cannot encode a new user's attributes
        self.user_fields_ = [str(f) for f in meta.get("user_fields", [])]
        self.user_vocab_ = [[str(n) for n in v] for v in meta.get("user_vocab", [])]
        self.user_bins_ = {str(k): [float(e) for e in v]
                           for k, v in meta.get("user_bins", {}).items()}
        self.context_fields_ = list(meta.get("context_fields", []))
        self.context_vocab_ = [list(v) for v in meta.get("context_vocab", [])]
        if "rating_range" in meta:
            self.rating_mean_ = float(meta["rating_mean"])
            lo, hi = meta["rating_range"]
            self.rating_range_ = (float(lo), float(hi))

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        torch = T.import_torch()
        shape = tuple(int(x) for x in arrays["cat_shape"])
        ind = np.asarray(arrays["cat_indices"])
        self.item_categories_ = sp.csr_matrix(
            (np.ones(ind.size, np.float32), ind, np.asarray(arrays["cat_indptr"])), shape=shape)
        self.item_codes_ = np.asarray(arrays["item_codes"], dtype=np.int64)
        self.item_numeric_ = np.asarray(arrays["item_numeric"], dtype=np.float32)
        self.user_codes_ = np.asarray(arrays["user_codes"], dtype=np.int64)
        text = arrays.get("item_text")
        self.item_text_ = None if text is None else np.asarray(text, dtype=np.float32)
        self.warm_ = np.asarray(arrays["warm"], dtype=bool)
        if "rating_resid" in arrays:
            self.rating_resid_ = np.asarray(arrays["rating_resid"], dtype=np.float32)
        # the architecture as saved: artifacts from before `tie_items` and `user_mlp` existed
        # (separate input vectors, an MLP) get those parameters' new defaults otherwise
        self.tie_items = "net.id_in.weight" not in arrays
        self.user_mlp = "net.mlp.0.weight" in arrays
        self.net_ = self._build(torch)
        self.net_.load_state_dict(T.numpy_to_state(arrays, "net."))
        self.net_.eval()


# ---------------------------------------------------------------------- data


def ridge_biases(users: np.ndarray, items: np.ndarray, residuals: np.ndarray,
                 shape: tuple[int, int], user_reg: float = 10.0, item_reg: float = 25.0,
                 iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """User and item biases of ratings around their mean, by ridge-regularised alternating
    least squares: the baseline predictor of Koren ("Factor in the neighbors", 2010, §2.1,
    whose penalties are the defaults), iterated.

    Parameters
    ----------
    users, items : int arrays (n,)
        The rated pairs.
    residuals : float array (n,)
        Each pair's rating minus the global mean.
    shape : (n_users, n_items)
    user_reg, item_reg : float, default 10, 25
        Ridge penalties, in ratings: a user (item) with that many ratings has their bias
        shrunk halfway to 0.
    iterations : int, default 10
        Alternations (item biases first).

    Returns
    -------
    (user biases (n_users,), item biases (n_items,)), float64; 0 for the unrated.
    """
    bu, bi = np.zeros(shape[0]), np.zeros(shape[1])
    nu = np.bincount(users, minlength=shape[0])
    ni = np.bincount(items, minlength=shape[1])
    for _ in range(iterations):
        bi = np.bincount(items, residuals - bu[users], minlength=shape[1]) / (ni + item_reg)
        bu = np.bincount(users, residuals - bi[items], minlength=shape[0]) / (nu + user_reg)
    return bu, bi


def _holdout(X: sp.csr_matrix, share: float, rng: np.random.Generator
             ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray]:
    """Hold out 20 % of the items (at least 1) of a ``share`` of users with 3+ items. Returns
    the kept pairs, the held-out pairs, the users with held-out pairs and the positions in
    ``X.data`` of the kept pairs (in the kept matrix's order: rows keep their order)."""
    lengths = np.diff(X.indptr)
    eligible = np.flatnonzero(lengths >= 3)
    users = np.sort(rng.choice(eligible, size=int(round(share * eligible.size)), replace=False))
    out = np.zeros(X.nnz, dtype=bool)
    for u in users:
        a, n = X.indptr[u], lengths[u]
        out[a + rng.permutation(n)[: max(1, n // 5)]] = True
    coo = X.tocoo()
    keep = sp.csr_matrix((coo.data[~out], (coo.row[~out], coo.col[~out])), shape=X.shape)
    held = sp.csr_matrix((coo.data[out], (coo.row[out], coo.col[out])), shape=X.shape)
    return keep, held, users, np.flatnonzero(~out)


def _split_rows(X: sp.csr_matrix, users: np.ndarray, keep: float, rng: np.random.Generator,
                all_targets: bool = False
                ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray],
                           tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Split each user's items at random into input (``keep`` share, at least 1) and targets:
    the rest (at least 1), or every item with ``all_targets``. Returns (items, row, weight) of
    the inputs, (row, items, pair position) of the targets and the pair positions of the
    inputs; rows are positions in ``users``, pair positions index ``X.data``."""
    starts, ends = X.indptr[users], X.indptr[users + 1]
    n = ends - starts
    pos = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
    row = np.repeat(np.arange(users.size), n)
    u = rng.random(pos.size)
    # rank of each item's draw within its user: the lowest `n_in` draws are inputs
    order = np.lexsort((u, row))
    rank = np.empty(pos.size, dtype=np.int64)
    offsets = np.repeat(np.r_[0, np.cumsum(n)[:-1]], n)
    rank[order] = np.arange(pos.size) - offsets
    n_in = np.clip(np.round(n * keep).astype(np.int64), 1, n - 1)
    is_in = rank < n_in[row]
    items = X.indices.astype(np.int64)
    inp = (items[pos[is_in]], row[is_in], np.ones(int(is_in.sum()), np.float32))
    is_tgt = np.ones(pos.size, dtype=bool) if all_targets else ~is_in
    tgt = (row[is_tgt], items[pos[is_tgt]], pos[is_tgt])
    return inp, tgt, pos[is_in]


# ---------------------------------------------------------------------- the network


def _build(torch: Any, arch: Mapping[str, Any], feats: Mapping[str, Any]) -> Any:
    nn = torch.nn
    Module: Any = nn.Module  # a variable, for type checkers: torch is imported lazily
    d = arch["d"]

    def code_tables(sizes: list[int]) -> Any:
        # one row more per field: code -1 (unknown) maps to the last row
        tables = nn.ModuleList(nn.Embedding(s + 1, d) for s in sizes)
        for t in tables:
            nn.init.normal_(t.weight, std=0.01)
        return tables

    def lookup(tables: Any, codes: Any) -> Any:
        out = 0
        for f, t in enumerate(tables):
            c = codes[:, f]
            out = out + t(torch.where(c < 0, t.num_embeddings - 1, c))
        return out

    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            n_items = arch["n_items"]
            # tied: the history is pooled from the same id vectors that are scored
            self.id_in = None if arch.get("tie_items", False) else nn.Embedding(n_items, d)
            self.id_out = nn.Embedding(n_items, d)
            self.bias = nn.Embedding(n_items, 1)
            if self.id_in is not None:
                nn.init.normal_(self.id_in.weight, std=0.01)
            nn.init.normal_(self.id_out.weight, std=0.01)
            nn.init.zeros_(self.bias.weight)
            cats = sp.csr_matrix(feats["categories"])
            self.has_feats = bool(cats.shape[1] or arch["item_vocab"] or arch["n_numeric"]
                                  or arch["text_dim"])
            self.register_buffer("cats", torch.from_numpy(cats.toarray().astype(np.float32)))
            self.register_buffer("codes", torch.from_numpy(np.asarray(feats["codes"])))
            self.register_buffer("numeric", torch.from_numpy(np.asarray(feats["numeric"])))
            text = feats["text"]
            self.register_buffer("text", torch.from_numpy(
                np.zeros((n_items, 0), np.float32) if text is None else np.asarray(text)))
            self.register_buffer("user_codes", torch.from_numpy(np.asarray(feats["user_codes"])))
            def proj(n: int) -> Any:
                return nn.Linear(n, d, bias=False) if n else None

            self.cat_proj = proj(cats.shape[1])
            self.num_proj = proj(arch["n_numeric"])
            self.text_proj = proj(arch["text_dim"])
            self.item_codes = code_tables(arch["item_vocab"])
            self.feat_mlp = nn.Sequential(nn.GELU(), nn.Linear(d, d))
            self.feat_bias = nn.Linear(d, 1)
            self.user_tables = code_tables(arch["user_vocab"])
            self.ctx_tables = code_tables(arch["context_vocab"])
            self.user_id = nn.Embedding(arch["n_users"], d) if arch["user_embedding"] else None
            if self.user_id is not None:
                nn.init.normal_(self.user_id.weight, std=0.01)
            self.mlp = (nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
                        if arch.get("user_mlp", True) else None)
            self.drop = nn.Dropout(arch["dropout"])
            if arch.get("rating_head", False):
                # rating = mean + user bias + item bias + (A·user) · (B·item)
                k = min(d, _RATING_RANK)
                self.register_buffer("r_mu", torch.zeros(()))
                self.r_user = nn.Embedding(arch["n_users"], 1)
                self.r_item = nn.Embedding(n_items, 1)
                nn.init.zeros_(self.r_user.weight)
                nn.init.zeros_(self.r_item.weight)
                self.r_proj_user = nn.Linear(d, k, bias=False)
                self.r_proj_resid = nn.Linear(d, k, bias=False)
                self.r_proj_item = nn.Linear(d, k, bias=False)
                for layer in (self.r_proj_user, self.r_proj_resid, self.r_proj_item):
                    nn.init.normal_(layer.weight, std=0.01)

        def rating_user(self, items: Any, seg: Any, resid: Any, n: Any, keep_id: Any) -> Any:
            """The rating side of the user tower: input vectors of each row's rated items,
            weighted by the rating's residual from the baseline (NaN: unrated, left out),
            summed over sqrt(count); (n, d)."""
            ok = torch.isfinite(resid)
            v = self.items_in(items[ok], keep_id)
            pooled = torch.zeros(n, d).index_add_(0, seg[ok], v * resid[ok][:, None])
            count = torch.zeros(n).index_add_(0, seg[ok], torch.ones_like(resid[ok]))
            return pooled / count.clamp(min=1.0).sqrt()[:, None]

        def rating(self, user_vec: Any, resid_vec: Any, u: Any, items: Any,
                   keep_id: Any) -> Any:
            """Predicted ratings of pairs: user vectors (n, d) of the ranking side and of the
            rating side (:meth:`rating_user`), user rows ``u`` (-1: unknown user, no bias)
            and item indices (n,)."""
            known = (u >= 0).float()
            b = (self.r_mu + self.r_user(u.clamp(min=0))[:, 0] * known
                 + self.r_item(items)[:, 0] * keep_id[items])
            q = self.r_proj_user(user_vec) + self.r_proj_resid(resid_vec)
            return b + (q * self.r_proj_item(self.items_out(items, keep_id))).sum(-1)

        def features(self, idx: Any) -> Any:
            """The feature part of item vectors (0 when there are no item features)."""
            if not self.has_feats:
                return 0
            sel = (lambda a: a) if idx is None else (lambda a: a[idx])
            h = lookup(self.item_codes, sel(self.codes))
            for layer, x in ((self.cat_proj, self.cats), (self.num_proj, self.numeric),
                             (self.text_proj, self.text)):
                if layer is not None:
                    h = h + layer(sel(x))
            return h + self.feat_mlp(h)

        def items_in(self, idx: Any, keep_id: Any) -> Any:
            """Input vectors of items ``idx`` (pooled by the user tower)."""
            if self.id_in is None:
                return self.items_out(idx, keep_id)
            return self.id_in(idx) * keep_id[idx][:, None] + self.features(idx)

        def items_out(self, idx: Any, keep_id: Any) -> Any:
            """Output vectors of items ``idx`` (None: all); id parts only where ``keep_id``."""
            ids = self.id_out.weight if idx is None else self.id_out(idx)
            k = keep_id if idx is None else keep_id[idx]
            return ids * k[:, None] + self.features(idx)

        def item_bias(self, keep_id: Any) -> Any:
            b = self.bias.weight[:, 0] * keep_id
            if self.has_feats:
                b = b + self.feat_bias(self.features(None))[:, 0]
            return b

        def users(self, u: Any, items: Any, seg: Any, weight: Any, keep_id: Any,
                  given: Any = None) -> Any:
            """User vectors: pooled input vectors of each row's items (sum / sqrt(count)),
            plus user id and demographics for known users (``u`` >= 0); unknown users get
            the demographic codes ``given`` (int64 (n_user_fields,); None: all unknown)."""
            n = u.shape[0]
            v = self.items_in(items, keep_id)
            pooled = torch.zeros(n, d).index_add_(0, seg, v * weight[:, None])
            count = torch.zeros(n).index_add_(0, seg, weight.abs())
            h = pooled / count.clamp(min=1.0).sqrt()[:, None]
            known = u >= 0
            if self.user_id is not None:
                h = h + self.user_id(u.clamp(min=0)) * known[:, None]
            if len(self.user_tables):
                codes = self.user_codes[u.clamp(min=0)]
                other = (torch.full_like(codes, -1) if given is None
                         else given[None, :].expand_as(codes))
                codes = torch.where(known[:, None], codes, other)
                h = h + lookup(self.user_tables, codes)
            h = self.drop(h)
            return h if self.mlp is None else h + self.mlp(h)

        def context(self, codes: Any) -> Any:
            if not len(self.ctx_tables):
                return 0
            return lookup(self.ctx_tables, codes)

    return Net()
