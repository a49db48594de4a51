"""FeatureGBM: rating prediction for cold users and items from engineered features, by LightGBM.

A *rating* model (explicit 1–5 stars), built for the MeLU cold-start protocol
(:mod:`personae.evaluate.melu_protocol`), where a user or an item has only a handful of
ratings. For a (user, item) pair it computes features from the training ratings and the side
information, and a gradient-boosted tree ensemble (LightGBM) maps them to a rating:

- **baseline**: ``mu + b_u + b_i`` (regularised biases, alternating least squares), ``b_u``,
  ``b_i``, log rating counts, the user's and item's shares of 5s, 4s and 1–2s, residual spreads;
- **segment item effects**: per user attribute group (gender, age, occupation, …), the item's
  mean residual among the users of the same value (a new user inherits their segment's taste
  from the first request);
- **attribute affinities**: per item attribute group (genre, director, actors, writer, year,
  MPAA rating), the user's mean residual over the items sharing the pair item's values, and
  how many such items they rated (a new item is placed by its attributes from day one);
- **item kNN**: the similarity-weighted mean of the user's residuals on the item's nearest
  neighbours (cosine of residuals, shrunk by co-ratings);
- **user kNN**: the similarity-weighted mean of the item's residuals among the user's nearest
  neighbours who rated it (cosine of residuals, shrunk by co-rated items), and their weight;
- **co-occurrence**: how typical the item is of what the user rates (the mean cosine of
  co-rating between the item and the user's items) and the same mean weighted by the user's
  residuals: who rated what carries taste beyond the ratings' values;
- **matrix factorisation**: the dot product of ALS factors fit to the residuals.

Training is *stacked* so that no feature has seen the rating it is asked to predict:
``fit`` holds out ``holdout`` random ratings of every user with at least ``min_history``
ratings, computes the features of those pairs from the other ratings, and fits the trees on
them (``rounds`` such draws, stacked); the feature tables are then recomputed on all the
ratings for prediction. The defaults mimic the MeLU tasks: 10 held out, as few as 3 left.

The trees regress the rating (squared error). On a validation made from the MeLU protocol's
training pairs (10 ratings held out of every training user with 13–100 ratings in a
partition; 2,937 tasks), a LightGBM ``lambdarank`` or ``rank_xendcg`` objective on the same
features, grouped by user with gain ``2^r - 1``, ordered the held-out items no better (pooled
nDCG@1 0.767 and 0.767 against 0.768), nor did adding a ranker's score to the regression
(at most +0.002), nor ordering by ``E[2^r]`` of a 5-class model (0.766); three seeds of the
regression alone spread 0.767–0.769. What limits the order is the information in the
features, not the loss. Text-embedding affinities (plots, ``wordllama``) and EASE scores as
further features moved it by less than that spread too, and are left out.

Needs the ``coldstart`` extra: ``pip install 'personae[coldstart]'`` (LightGBM). Artifacts
are ``arrays.npz`` + ``model.json`` + LightGBM's own text model ``booster.txt``: no pickle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput, MissingExtra
from personae.models._params import check_float, check_int
from personae.models.base import NotFitted, check_pairs

ARTIFACT_FORMAT = "personae.featuregbm/2"  # /2: user kNN and co-occurrence tables

# Prior weights of the shrunk means below (pseudo-ratings): large enough that one rating
# moves a mean a little, small enough that twenty move it most of the way.
_SEGMENT_PRIOR = 10.0
_AFFINITY_PRIOR = 3.0
_SHARE_PRIOR = 5.0


def _import_lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise MissingExtra("lightgbm", "coldstart") from None
    return lightgbm


@dataclass
class _Tables:
    """Everything the features of a pair are computed from (learned from one rating set)."""

    mu: float
    bu: np.ndarray  # (n_users,)
    bi: np.ndarray  # (n_items,)
    user_stats: np.ndarray  # (n_users, 5): log count, share 5, share 4, share 1-2, residual sd
    item_stats: np.ndarray  # (n_items, 5)
    residuals: sp.csr_matrix  # (n_users, n_items) training residuals r - mu - b_u - b_i
    rated: sp.csr_matrix  # (n_users, n_items) 1.0 per training pair
    segments: dict[str, np.ndarray]  # group → (n_values, n_items) shrunk residual means
    affinity: dict[str, tuple[sp.csr_matrix, sp.csr_matrix]]  # group → (mean residual, count)
    similarity: sp.csr_matrix  # (n_items, n_items) top-k residual cosine, shrunk
    user_similarity: sp.csr_matrix  # (n_users, n_users) top-k residual cosine, shrunk
    cooccurrence: sp.csr_matrix  # (n_items, n_items) top-k cosine of the rated indicators
    user_factors: np.ndarray  # (n_users, factors)
    item_factors: np.ndarray  # (n_items, factors)


class FeatureGBM:
    """Stacked gradient-boosted rating model over collaborative and side-information features.

    Parameters
    ----------
    user_bias_reg, item_bias_reg : float, default 3.0, 10.0
        Ridge penalties (>= 0) of the user and item biases, in pseudo-ratings.
    factors : int, default 20
        Length of the ALS factors fit to the residuals (>= 1).
    mf_regularization : float, default 10.0
        Ridge penalty (> 0) of the ALS factors.
    mf_iterations : int, default 8
        Alternating sweeps of ALS.
    neighbours : int, default 50
        Neighbours kept per item for the item-kNN feature.
    user_neighbours : int, default 100
        Neighbours kept per user for the user-kNN feature.
    cooccurrence_neighbours : int, default 100
        Co-rated items kept per item for the co-occurrence features.
    similarity_shrinkage : float, default 20.0
        A residual similarity is multiplied by ``n / (n + shrinkage)``, ``n`` co-rating users
        (items) or co-rated items (users).
    holdout : int, default 10
        Ratings held out per user to train the trees on (the MeLU query size).
    min_history : int, default 13
        Users with fewer ratings hold out none (13: as few as 3 left, like the MeLU tasks'
        smallest support sets).
    rounds : int, default 8
        Independent hold-out draws stacked into the tree training set (3 → 8 raised the
        validation nDCG@1 by about 0.01; the trees want rows).
    n_estimators : int, default 400
    learning_rate : float, default 0.05
    num_leaves : int, default 31
    min_child_samples : int, default 50
        LightGBM's tree parameters.
    random_state : int, default 2026
        Seeds the hold-out draws, the ALS start and LightGBM: equal seeds, equal models.
    num_threads : int, default 1
        LightGBM threads (1 keeps the result bit-for-bit reproducible).

    Attributes
    ----------
    n_users_, n_items_ : int
    rating_range_ : tuple of float
        Smallest and largest training rating; predictions are clipped to it.
    feature_names_ : list of str
    fit_seconds_ : float
    """

    name = "featuregbm"

    def __init__(
        self,
        user_bias_reg: float = 3.0,
        item_bias_reg: float = 10.0,
        factors: int = 20,
        mf_regularization: float = 10.0,
        mf_iterations: int = 8,
        neighbours: int = 50,
        user_neighbours: int = 100,
        cooccurrence_neighbours: int = 100,
        similarity_shrinkage: float = 20.0,
        holdout: int = 10,
        min_history: int = 13,
        rounds: int = 8,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        random_state: int = 2026,
        num_threads: int = 1,
    ) -> None:
        self.user_bias_reg = user_bias_reg
        self.item_bias_reg = item_bias_reg
        self.factors = factors
        self.mf_regularization = mf_regularization
        self.mf_iterations = mf_iterations
        self.neighbours = neighbours
        self.user_neighbours = user_neighbours
        self.cooccurrence_neighbours = cooccurrence_neighbours
        self.similarity_shrinkage = similarity_shrinkage
        self.holdout = holdout
        self.min_history = min_history
        self.rounds = rounds
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state
        self.num_threads = num_threads

    # ------------------------------------------------------------------ parameters

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters, as given to ``__init__``."""
        return {k: getattr(self, k) for k in (
            "user_bias_reg", "item_bias_reg", "factors", "mf_regularization", "mf_iterations",
            "neighbours", "user_neighbours", "cooccurrence_neighbours", "similarity_shrinkage",
            "holdout", "min_history", "rounds",
            "n_estimators", "learning_rate", "num_leaves", "min_child_samples",
            "random_state", "num_threads")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> None:
        m = type(self).__name__
        for name in ("user_bias_reg", "item_bias_reg", "similarity_shrinkage"):
            check_float(m, name, getattr(self, name), strict=False)
        for name in ("mf_regularization", "learning_rate"):
            check_float(m, name, getattr(self, name), strict=True)
        for name, low in (("factors", 1), ("mf_iterations", 1), ("neighbours", 1),
                          ("user_neighbours", 1), ("cooccurrence_neighbours", 1),
                          ("holdout", 1), ("rounds", 1), ("n_estimators", 1),
                          ("num_leaves", 2), ("min_child_samples", 1), ("random_state", 0),
                          ("num_threads", 1)):
            check_int(m, name, getattr(self, name), low)
        check_int(m, "min_history", self.min_history, self.holdout + 1)

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        data: Any,
        *,
        user_features: Mapping[str, sp.spmatrix] | None = None,
        item_features: Mapping[str, sp.spmatrix] | None = None,
    ) -> Self:
        """Learn from ratings and side features.

        Parameters
        ----------
        data : Interactions or scipy.sparse matrix, shape (n_users, n_items)
            An :class:`~personae.data.interactions.Interactions` whose events carry rating
            values (a pair's rating is its last event's value; pairs without a value are
            ignored), or a sparse matrix whose stored entries are the ratings.
        user_features : mapping of str → sparse (n_users, n_values), optional
            Attribute groups of the users (e.g. ``{"gender": ..., "age": ...}``), 1.0 where a
            user has a value (see :mod:`personae.data.attribute_groups`).
        item_features : mapping of str → sparse (n_items, n_values), optional
            Attribute groups of the items (genre, director, …).
        """
        self._validate_params()
        lgb = _import_lightgbm()
        started = time.perf_counter()
        users, items, ratings, n_users, n_items = _ratings_of(data)
        if ratings.size == 0:
            raise InvalidInput("FeatureGBM needs rated pairs; the data holds none")
        self.n_users_, self.n_items_ = n_users, n_items
        self.user_features_ = _check_groups(user_features, n_users, "user_features")
        self.item_features_ = _check_groups(item_features, n_items, "item_features")
        self.rating_range_ = (float(ratings.min()), float(ratings.max()))

        rng = np.random.default_rng(self.random_state)
        blocks_x, blocks_y = [], []
        for _ in range(self.rounds):
            hold = _holdout(users, n_users, self.holdout, self.min_history, rng)
            if not hold.any():
                raise InvalidInput(
                    f"no user has {self.min_history} ratings to hold {self.holdout} out for "
                    "training the trees; lower min_history"
                )
            tables = self._tables(users[~hold], items[~hold], ratings[~hold])
            blocks_x.append(self._features(tables, users[hold], items[hold]))
            blocks_y.append(ratings[hold])
        X, y = np.vstack(blocks_x), np.concatenate(blocks_y)
        self.feature_names_ = self._feature_names()
        params = {
            "objective": "regression", "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves), "min_child_samples": int(self.min_child_samples),
            "lambda_l2": 1.0, "feature_fraction": 0.9, "bagging_fraction": 0.9,
            "bagging_freq": 1, "seed": int(self.random_state),
            "num_threads": int(self.num_threads), "deterministic": True, "verbosity": -1,
        }
        train = lgb.Dataset(X, y, feature_name=self.feature_names_, free_raw_data=True)
        self.booster_ = lgb.train(params, train, num_boost_round=int(self.n_estimators))
        self.tables_ = self._tables(users, items, ratings)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _tables(self, u: np.ndarray, i: np.ndarray, r: np.ndarray) -> _Tables:
        nu, ni = self.n_users_, self.n_items_
        mu = float(r.mean())
        bu, bi = np.zeros(nu), np.zeros(ni)
        cu = np.bincount(u, minlength=nu).astype(np.float64)
        ci = np.bincount(i, minlength=ni).astype(np.float64)
        for _ in range(10):
            bi = np.bincount(i, r - mu - bu[u], ni) / (ci + self.item_bias_reg)
            bu = np.bincount(u, r - mu - bi[i], nu) / (cu + self.user_bias_reg)
        res = r - mu - bu[u] - bi[i]

        def stats(idx: np.ndarray, n: int, c: np.ndarray) -> np.ndarray:
            cols = [np.log1p(c)]
            for m in (r >= 4.5, (r >= 3.5) & (r < 4.5), r < 2.5):
                prior = float(m.mean())
                cols.append((np.bincount(idx, m, n) + _SHARE_PRIOR * prior) / (c + _SHARE_PRIOR))
            cols.append(np.sqrt((np.bincount(idx, res**2, n) + 1.0) / (c + 1.0)))
            return np.column_stack(cols)

        R = sp.csr_matrix((res, (u, i)), shape=(nu, ni))
        B = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(nu, ni))
        segments = {}
        for name, G in self.user_features_.items():
            tot = np.asarray((G.T @ R).todense())  # (n_values, n_items)
            cnt = np.asarray((G.T @ B).todense())
            segments[name] = (tot / (cnt + _SEGMENT_PRIOR)).astype(np.float32)
        affinity = {}
        for name, G in self.item_features_.items():
            S = (R @ G).tocsr()
            C = (B @ G).tocsr()
            affinity[name] = (_ratio(S, C, _AFFINITY_PRIOR), C)
        sim = _top_k(_shrunk_cosine(R.T.tocsr(), B.T.tocsr(), self.similarity_shrinkage),
                     int(self.neighbours))
        user_sim = _top_k(_shrunk_cosine(R, B, self.similarity_shrinkage),
                          int(self.user_neighbours))
        cooc = _top_k(_cooccurrence(B), int(self.cooccurrence_neighbours))
        X, Y = _als(R, self.factors, self.mf_regularization, self.mf_iterations,
                    np.random.default_rng(self.random_state))
        return _Tables(mu, bu, bi, stats(u, nu, cu), stats(i, ni, ci), R, B, segments,
                       affinity, sim, user_sim, cooc, X.astype(np.float32),
                       Y.astype(np.float32))

    # ------------------------------------------------------------------ features

    def _feature_names(self) -> list[str]:
        names = ["baseline", "user_bias", "item_bias"]
        for side in ("user", "item"):
            names += [f"{side}_log_count", f"{side}_share5", f"{side}_share4",
                      f"{side}_share12", f"{side}_residual_sd"]
        names += [f"segment_{g}" for g in self.user_features_]
        for g in self.item_features_:
            names += [f"affinity_{g}", f"affinity_count_{g}"]
        return [*names, "knn", "knn_weight", "user_knn", "user_knn_weight",
                "cooccurrence_residual", "cooccurrence_mean", "mf"]

    def _features(self, t: _Tables, qu: np.ndarray, qi: np.ndarray) -> np.ndarray:
        cols = [t.mu + t.bu[qu] + t.bi[qi], t.bu[qu], t.bi[qi]]
        cols += list(t.user_stats[qu].T) + list(t.item_stats[qi].T)
        for name, G in self.user_features_.items():
            Gq = G[qu]
            n = np.maximum(np.asarray(Gq.sum(axis=1)).ravel(), 1.0)
            table = t.segments[name]
            coo = Gq.tocoo()
            vals = np.bincount(coo.row, table[coo.col, qi[coo.row]], qu.size)
            cols.append(vals / n)
        for name, G in self.item_features_.items():
            A, C = t.affinity[name]
            Gq = G[qi]
            n = np.maximum(np.asarray(Gq.sum(axis=1)).ravel(), 1.0)
            cols.append(np.asarray(A[qu].multiply(Gq).sum(axis=1)).ravel() / n)
            cols.append(np.asarray(C[qu].multiply(Gq).sum(axis=1)).ravel() / n)
        S = t.similarity[qi]
        num = np.asarray(t.residuals[qu].multiply(S).sum(axis=1)).ravel()
        den = np.asarray(t.rated[qu].multiply(abs(S)).sum(axis=1)).ravel()
        cols += [num / (den + 1.0), den]
        # user kNN: the neighbours' residuals on the item (rows of R.T are items)
        Rt, Bt = t.residuals.T.tocsr(), t.rated.T.tocsr()
        U = t.user_similarity[qu]
        num = np.asarray(Rt[qi].multiply(U).sum(axis=1)).ravel()
        den = np.asarray(Bt[qi].multiply(abs(U)).sum(axis=1)).ravel()
        cols += [num / (den + 1.0), den]
        C = t.cooccurrence[qi]
        n_rated = np.maximum(np.asarray(t.rated.sum(axis=1)).ravel()[qu], 1.0)
        cols.append(np.asarray(t.residuals[qu].multiply(C).sum(axis=1)).ravel() / n_rated)
        cols.append(np.asarray(t.rated[qu].multiply(C).sum(axis=1)).ravel() / n_rated)
        cols.append(np.einsum("nf,nf->n", t.user_factors[qu], t.item_factors[qi]))
        return np.column_stack(cols).astype(np.float32)

    # ------------------------------------------------------------------ predicting

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise NotFitted(f"{type(self).__name__} is not fitted yet; call fit() first")

    def features(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The feature matrix of pairs: float32 (n, len(feature_names_))."""
        self._check_fitted()
        u, i = check_pairs(users, items, self.n_users_, self.n_items_)
        return self._features(self.tables_, u, i)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of pairs.

        Parameters
        ----------
        users, items : int arrays (n,)
            Index-space users in ``[0, n_users_)`` and items in ``[0, n_items_)``.

        Returns
        -------
        float64 ndarray (n,), clipped to ``rating_range_``.
        """
        X = self.features(users, items)
        if X.shape[0] == 0:
            return np.zeros(0)
        pred = self.booster_.predict(X, num_threads=int(self.num_threads))
        return np.clip(np.asarray(pred, dtype=np.float64), *self.rating_range_)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write ``model.json``, ``arrays.npz`` and ``booster.txt`` into the folder ``path``."""
        from personae import __version__

        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        t = self.tables_
        arrays: dict[str, np.ndarray] = {
            "bu": t.bu, "bi": t.bi, "user_stats": t.user_stats, "item_stats": t.item_stats,
            "user_factors": t.user_factors, "item_factors": t.item_factors,
        }
        _put_csr(arrays, "residuals", t.residuals)
        _put_csr(arrays, "rated", t.rated)
        _put_csr(arrays, "similarity", t.similarity)
        _put_csr(arrays, "user_similarity", t.user_similarity)
        _put_csr(arrays, "cooccurrence", t.cooccurrence)
        for name, table in t.segments.items():
            arrays[f"segment__{name}"] = table
        for name, (A, C) in t.affinity.items():
            _put_csr(arrays, f"affinity__{name}", A)
            _put_csr(arrays, f"affinity_count__{name}", C)
        for name, G in self.user_features_.items():
            _put_csr(arrays, f"user_features__{name}", G)
        for name, G in self.item_features_.items():
            _put_csr(arrays, f"item_features__{name}", G)
        np.savez(folder / "arrays.npz", allow_pickle=False, **arrays)
        (folder / "booster.txt").write_text(self.booster_.model_to_string())
        meta = {
            "format": ARTIFACT_FORMAT, "model": self.name, "personae_version": __version__,
            "params": self.get_params(), "n_users": self.n_users_, "n_items": self.n_items_,
            "mu": t.mu, "rating_range": list(self.rating_range_),
            "user_groups": list(self.user_features_), "item_groups": list(self.item_features_),
            "feature_names": self.feature_names_, "fit_seconds": self.fit_seconds_,
            "saved_at": time.time(),
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> FeatureGBM:
        """Read a model written by :meth:`save` (``allow_pickle=False``: it cannot run code)."""
        lgb = _import_lightgbm()
        folder = Path(path)
        try:
            meta = json.loads((folder / "model.json").read_text())
        except FileNotFoundError:
            raise InvalidInput(f"no model at {folder} (model.json is missing)") from None
        if meta.get("format") != ARTIFACT_FORMAT:
            raise InvalidInput(f"{folder} holds format {meta.get('format')!r}; this personae "
                               f"reads {ARTIFACT_FORMAT!r}")
        model = cls(**meta["params"])
        model.n_users_, model.n_items_ = int(meta["n_users"]), int(meta["n_items"])
        low, high = meta["rating_range"]
        model.rating_range_ = (float(low), float(high))
        model.feature_names_ = list(meta["feature_names"])
        model.fit_seconds_ = float(meta["fit_seconds"])
        with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        model.user_features_ = {g: _get_csr(a, f"user_features__{g}") for g in meta["user_groups"]}
        model.item_features_ = {g: _get_csr(a, f"item_features__{g}") for g in meta["item_groups"]}
        model.tables_ = _Tables(
            float(meta["mu"]), a["bu"], a["bi"], a["user_stats"], a["item_stats"],
            _get_csr(a, "residuals"), _get_csr(a, "rated"),
            {g: a[f"segment__{g}"] for g in meta["user_groups"]},
            {g: (_get_csr(a, f"affinity__{g}"), _get_csr(a, f"affinity_count__{g}"))
             for g in meta["item_groups"]},
            _get_csr(a, "similarity"), _get_csr(a, "user_similarity"),
            _get_csr(a, "cooccurrence"), a["user_factors"], a["item_factors"],
        )
        model.booster_ = lgb.Booster(model_str=(folder / "booster.txt").read_text())
        return model


# ---------------------------------------------------------------------- helpers


def _ratings_of(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """(users, items, ratings, n_users, n_items) of the rated pairs, sorted by (user, item)."""
    from personae.data.interactions import Interactions

    if isinstance(data, Interactions):
        rated = np.flatnonzero(~np.isnan(data.event_values))
        u = data.event_users[rated].astype(np.int64)
        i = data.event_items[rated].astype(np.int64)
        key = u * data.n_items + i
        _, last_rev = np.unique(key[::-1], return_index=True)  # the last event of each pair
        pick = rated[::-1][last_rev]
        u, i = data.event_users[pick].astype(np.int64), data.event_items[pick].astype(np.int64)
        r = data.event_values[pick].astype(np.float64)
        n_users, n_items = data.n_users, data.n_items
    elif sp.issparse(data):
        m = sp.csr_matrix(data)
        m.sum_duplicates()
        coo = m.tocoo()
        u, i, r = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
        n_users, n_items = m.shape
    else:
        raise InvalidInput(f"fit expects Interactions with rating values or a scipy.sparse "
                           f"matrix of ratings, got {type(data).__name__}")
    if r.size and not np.isfinite(r).all():
        raise InvalidInput("ratings must be finite numbers")
    order = np.lexsort((i, u))
    return u[order], i[order], r[order], int(n_users), int(n_items)


def _check_groups(groups: Mapping[str, sp.spmatrix] | None, n: int,
                  field: str) -> dict[str, sp.csr_matrix]:
    out = {}
    for name, G in (groups or {}).items():
        if not sp.issparse(G) and not isinstance(G, np.ndarray):
            raise InvalidInput(f"{field}[{name!r}] must be a sparse or dense (n, n_values) "
                               f"matrix, got {type(G).__name__}")
        m = sp.csr_matrix(G, dtype=np.float64)
        if m.shape[0] != n:
            raise InvalidInput(f"{field}[{name!r}] must have {n} rows, got {m.shape[0]}")
        out[str(name)] = m
    return out


def _holdout(users: np.ndarray, n_users: int, k: int, min_history: int,
             rng: np.random.Generator) -> np.ndarray:
    """``k`` random pairs of every user with ``min_history`` pairs (``users`` sorted)."""
    counts = np.bincount(users, minlength=n_users)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    hold = np.zeros(users.size, dtype=bool)
    for a in np.flatnonzero(counts >= min_history):
        hold[starts[a] + rng.choice(int(counts[a]), k, replace=False)] = True
    return hold


def _shrunk_cosine(R: sp.csr_matrix, B: sp.csr_matrix, shrinkage: float,
                   block: int = 2048) -> np.ndarray:
    """Cosine of the rows of ``R`` times ``n / (n + shrinkage)``, ``n`` the co-stored columns.

    Dense (n_rows, n_rows) float32 with a zero diagonal, computed ``block`` rows at a time so
    that the intermediate products stay small.
    """
    n = R.shape[0]
    norms = np.sqrt(np.asarray(R.multiply(R).sum(axis=1)).ravel()) + 1e-9
    Rt, Bt = R.T.tocsc(), B.T.tocsc()
    out = np.empty((n, n), dtype=np.float32)
    for a in range(0, n, block):
        b = min(a + block, n)
        sim = np.asarray((R[a:b] @ Rt).todense())
        co = np.asarray((B[a:b] @ Bt).todense())
        sim *= co / (co + shrinkage)
        sim /= np.outer(norms[a:b], norms)
        out[a:b] = sim
    np.fill_diagonal(out, 0.0)
    return out


def _cooccurrence(B: sp.csr_matrix) -> np.ndarray:
    """Cosine of the columns of the 0/1 matrix ``B``: dense (n_items, n_items), zero diagonal."""
    counts = np.asarray(B.sum(axis=0)).ravel() + 1e-9
    co = np.asarray((B.T @ B).todense(), dtype=np.float32)
    co /= np.sqrt(np.outer(counts, counts)).astype(np.float32)
    np.fill_diagonal(co, 0.0)
    return co


def _top_k(sim: np.ndarray, k: int) -> sp.csr_matrix:
    """The ``k`` entries of largest magnitude of each row of a square ``sim``, as sparse."""
    n = sim.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    top = np.argpartition(-np.abs(sim), k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sim, top, axis=1)
    out = sp.csr_matrix((vals.ravel().astype(np.float32), (np.repeat(np.arange(n), k),
                                                            top.ravel())), shape=(n, n))
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _ratio(S: sp.csr_matrix, C: sp.csr_matrix, prior: float) -> sp.csr_matrix:
    """``S / (C + prior)`` where ``C`` is stored (``S`` is zero wherever ``C`` is)."""
    inv = C.tocsr().astype(np.float64)
    inv.data = 1.0 / (inv.data + prior)
    return sp.csr_matrix(S.multiply(inv))


def _als(R: sp.csr_matrix, f: int, reg: float, iterations: int,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Explicit ALS on the stored entries of ``R``: ``min Σ (r - x_u·y_i)² + reg(|X|² + |Y|²)``."""
    nu, ni = R.shape
    X = rng.normal(0.0, 0.1, (nu, f))
    Y = rng.normal(0.0, 0.1, (ni, f))
    Rt = R.T.tocsr()
    eye = reg * np.eye(f)

    def solve(M: sp.csr_matrix, F: np.ndarray, n: int) -> np.ndarray:
        out = np.zeros((n, f))
        for a in range(n):
            s0, s1 = M.indptr[a], M.indptr[a + 1]
            if s1 > s0:
                Fj = F[M.indices[s0:s1]]
                out[a] = np.linalg.solve(Fj.T @ Fj + eye, Fj.T @ M.data[s0:s1])
        return out

    for _ in range(iterations):
        X = solve(R, Y, nu)
        Y = solve(Rt, X, ni)
    return X, Y


def _put_csr(arrays: dict[str, np.ndarray], key: str, m: sp.csr_matrix) -> None:
    m = sp.csr_matrix(m)
    arrays[f"{key}__data"] = m.data
    arrays[f"{key}__indices"] = m.indices
    arrays[f"{key}__indptr"] = m.indptr
    arrays[f"{key}__shape"] = np.asarray(m.shape, dtype=np.int64)


def _get_csr(arrays: Mapping[str, np.ndarray], key: str) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{key}__shape"])
    return sp.csr_matrix((arrays[f"{key}__data"], arrays[f"{key}__indices"],
                          arrays[f"{key}__indptr"]), shape=shape)
