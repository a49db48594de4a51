"""A weighted blend of several models' scores, with weights chosen on validation data.

Each member's scores are normalised per user row over the items the user has *not* seen (the
only ones that can be recommended), then summed with the blend's weights:
``score = Σ_m w_m · normalise(score_m)``. The weights are chosen on held-out data by a grid
search: :meth:`Blend.tune_weights` on one validation split, :func:`tune_weights_on_folds` on
several.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.evaluate.metrics import ranking_metrics
from personae.models._params import check_bool, check_choice, check_float
from personae.models.base import NotFitted, Recommender
from personae.models.topk import topk

_NORMALIZE = ("minmax", "zscore", "rank")
#: Most weight vectors :meth:`Blend.tune_weights` tries before asking for a coarser step.
_MAX_GRID = 5000

Member = Recommender | tuple[str, Mapping[str, Any]]


class Blend(Recommender):
    """Fuse the scores of several models.

    Parameters
    ----------
    models : sequence of Recommender or (name, params)
        The members: model objects, or registry names with hyper-parameters
        (``("ease", {"l2": 400.0})``).
    weights : sequence of float, optional
        One weight ≥ 0 per member (normalised to sum 1); default equal weights.
        :meth:`tune_weights` chooses them on validation data.
    normalize : {"minmax", "zscore", "rank"}, default "minmax"
        Per user row, over the unseen items: ``minmax`` maps to [0, 1], ``zscore`` to mean 0 and
        standard deviation 1, ``rank`` to the rank fraction (1 best, 0 worst).
    refit : bool, default True
        ``fit`` fits a fresh copy of every member. With False, members given as fitted objects
        are used as they are (they must have been fit on the same data: checked by
        fingerprint) and only the others are fit.

    Attributes
    ----------
    members_ : list of Recommender
        The fitted members, in the order of ``models``.
    weights_ : ndarray of float64, shape (n_members,)
        The weights in use (sum 1).
    tuned_score_ : float or None
        The validation NDCG@k reached by :meth:`tune_weights`.
    """

    name: ClassVar[str] = "blend"

    members_: list[Recommender]
    weights_: np.ndarray
    tuned_score_: float | None

    def __init__(
        self,
        models: Sequence[Member] = (),
        weights: Sequence[float] | None = None,
        normalize: str = "minmax",
        refit: bool = True,
    ) -> None:
        self.models = models
        self.weights = weights
        self.normalize = normalize
        self.refit = refit

    # ------------------------------------------------------------------ abilities

    @property
    def scores_histories(self) -> bool:  # type: ignore[override]  # every member must be able to
        return bool(self._member_classes()) and all(c.scores_histories
                                                    for c in self._member_classes())

    @property
    def uses_context(self) -> bool:  # type: ignore[override]
        return any(c.uses_context for c in self._member_classes())

    @property
    def uses_event_order(self) -> bool:  # type: ignore[override]
        from personae.models import create

        return any(m.uses_event_order if isinstance(m, Recommender)
                   else create(m[0], **dict(m[1])).uses_event_order
                   for m in self.models
                   if isinstance(m, Recommender) or (isinstance(m, Sequence) and len(m) == 2))

    def _member_classes(self) -> list[type[Recommender]]:
        from personae.models import get_model_class

        out = []
        for m in self.models:
            if isinstance(m, Recommender):
                out.append(type(m))
            elif isinstance(m, Sequence) and len(m) == 2 and isinstance(m[0], str):
                out.append(get_model_class(m[0]))
        return out

    # ------------------------------------------------------------------ fitting

    def _validate_params(self) -> None:
        if isinstance(self.models, str | bytes) or not isinstance(self.models, Sequence) \
                or len(self.models) == 0:
            raise InvalidInput(
                "The 'models' parameter of Blend must be a non-empty list of models or "
                f"(name, params) pairs. Got {self.models!r} instead."
            )
        for m in self.models:
            ok = isinstance(m, Recommender) or (
                isinstance(m, Sequence) and not isinstance(m, str) and len(m) == 2
                and isinstance(m[0], str) and isinstance(m[1], Mapping))
            if not ok:
                raise InvalidInput(
                    "The 'models' parameter of Blend must hold Recommender objects or "
                    f"(name, params) pairs. Got {m!r} instead."
                )
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=object)
            if w.shape != (len(self.models),) or not all(
                    isinstance(x, int | float | np.number) and not isinstance(x, bool)
                    and np.isfinite(x) and x >= 0 for x in w) or float(np.sum(w)) <= 0:
                raise InvalidInput(
                    f"The 'weights' parameter of Blend must be {len(self.models)} floats >= 0 "
                    f"(one per model) with a positive sum. Got {self.weights!r} instead."
                )
        check_choice("Blend", "normalize", self.normalize, _NORMALIZE)
        check_bool("Blend", "refit", self.refit)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        from personae.models import create

        data = view if view is not None else X
        members = []
        for k, m in enumerate(self.models):
            if isinstance(m, Recommender):
                if self.refit:
                    member = type(m)(**m.get_params()).fit(data)
                else:
                    if not hasattr(m, "n_items_"):
                        raise NotFitted(f"member {k} ({m.name}) is not fitted and refit=False")
                    if m.fingerprint_ != self.fingerprint_:
                        raise InvalidInput(
                            f"member {k} ({m.name}) was fit on other data than the blend "
                            "(fingerprints differ); fit it on the same data or use refit=True"
                        )
                    member = m
            else:
                member = create(m[0], **dict(m[1])).fit(data)
            members.append(member)
        self.members_ = members
        w = np.ones(len(members)) if self.weights is None else np.asarray(self.weights, float)
        self.weights_ = w / w.sum()
        self.tuned_score_ = None

    # ------------------------------------------------------------------ scoring

    def _member_scores(self, seen: sp.csr_matrix, score: Any) -> list[np.ndarray]:
        mask = _dense_mask(seen)
        return [_normalize(np.array(score(m), dtype=np.float32), mask, self.normalize)
                for m in self.members_]

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        parts = self._member_scores(self.user_items_[users],
                                    lambda m: m.score_users(users, context))
        return _weighted(parts, self.weights_)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        parts = self._member_scores(histories, lambda m: m.score_histories(histories, context))
        return _weighted(parts, self.weights_)

    def tune_weights(self, validation: sp.spmatrix, *, k: int = 10, step: float = 0.1,
                     plateau: float = 0.0) -> Blend:
        """Choose the weights that maximise NDCG@``k`` on held-out items; returns ``self``.

        Tries every weight vector on the simplex grid of spacing ``step`` (for 3 members and
        step 0.1: 66 vectors), in a fixed order; the first best wins, so the result is
        deterministic. With ``plateau`` > 0 the weights are instead the mean of every vector
        whose NDCG@``k`` is within ``plateau`` of the best (see :func:`tune_weights_on_folds`),
        and :attr:`tuned_score_` is that mean's own NDCG@``k``. The members' normalised
        scores for the validation users are held in memory (n_validation_users × n_items ×
        n_members float32). To choose on several validation splits at once, see
        :func:`tune_weights_on_folds`.

        Parameters
        ----------
        validation : scipy.sparse matrix (n_users, n_items)
            Held-out positives of training users (rows without any are skipped); the training
            items stay excluded from the rankings.
        """
        _check_plateau(plateau)
        grid, totals, n_users = self._grid_ndcg(validation, k=k, step=step)
        weights, best = _choose(grid, totals / n_users, plateau)
        self.weights_ = weights
        self.tuned_score_ = float(
            (totals[best] if best is not None
             else self._grid_ndcg(validation, k=k, vectors=[weights])[1][0]) / n_users)
        return self

    def _grid_ndcg(self, validation: sp.spmatrix, *, k: int, step: float = 0.1,
                   vectors: Sequence[np.ndarray] | None = None
                   ) -> tuple[list[np.ndarray], np.ndarray, int]:
        """Every weight vector of the ``step`` grid (or the given ``vectors``), the NDCG@``k``
        each reaches summed over the validation users (float64, one per vector), and the
        number of those users."""
        self._check_fitted()
        V = sp.csr_matrix(validation)
        if V.shape != (self.n_users_, self.n_items_):
            raise InvalidInput(f"validation must have shape {(self.n_users_, self.n_items_)} "
                               f"(users × items of the training data), got {V.shape}")
        grid = (_grid(len(self.members_), step) if vectors is None
                else [np.asarray(v, dtype=np.float64) for v in vectors])
        users = np.flatnonzero(np.diff(V.indptr))
        if users.size == 0:
            raise InvalidInput("validation holds no positives")
        seen = self.user_items_[users]
        parts = self._member_scores(seen, lambda m: m.score_users(users))
        exclude = _dense_mask(seen)
        return grid, _grid_totals(parts, exclude, V[users], grid, k), int(users.size)

    # ------------------------------------------------------------------ persistence

    def _artifact_params(self) -> dict[str, Any]:
        params = self.get_params()
        params["models"] = [[m.name, m._artifact_params()] for m in self.members_]
        return params

    def _save_extra(self, folder: Path) -> None:
        for k, member in enumerate(self.members_):
            member.save(folder / f"member_{k}")

    def _load_extra(self, folder: Path) -> None:
        self.members_ = [Recommender.load(folder / f"member_{k}")
                         for k in range(len(self.models))]

    def _get_meta(self) -> dict[str, Any]:
        return {"weights": self.weights_.tolist(), "tuned_score": self.tuned_score_}

    def _set_meta(self, meta: Mapping[str, Any]) -> None:
        self.weights_ = np.asarray(meta["weights"], dtype=np.float64)
        self.tuned_score_ = meta.get("tuned_score")


def tune_weights_on_folds(models: Sequence[Member],
                          folds: Sequence[tuple[Any, sp.spmatrix]], *,
                          normalize: str = "minmax", k: int = 10, step: float = 0.1,
                          plateau: float = 0.0) -> tuple[np.ndarray, float]:
    """Blend weights chosen on several validation splits at once.

    One validation split of a few hundred users leaves the NDCG of neighbouring weight
    vectors within its noise, so the vector it picks varies from split to split (ml-100k P1,
    members DLAE, GF-CF, ALS and two-tower, 8 validation splits of the training pairs: weights
    chosen on one split reached NDCG@10 0.2711 on another, on average; chosen on three
    together, 0.2725; on seven, 0.2721). Here a
    :class:`Blend` of ``models`` is fit on each fold's training data and every weight vector of
    the ``step`` grid is scored on each fold's held-out items (as :meth:`Blend.tune_weights`
    does on one); the vector with the best NDCG@``k`` over all the folds' users together wins
    (the first best, in the grid's fixed order), or the centre of the near-best ones
    (``plateau``).

    Parameters
    ----------
    models : sequence of Recommender or (name, params)
        The members, as for :class:`Blend`.
    folds : sequence of (training data, validation matrix)
        Per fold, what the members are fit on (Interactions or a sparse matrix, shape
        (n_users, n_items)) and the held-out positives of the same shape. With one fold this is
        ``Blend(models, normalize=normalize).fit(train).tune_weights(validation)``.
    normalize : {"minmax", "zscore", "rank"}, default "minmax"
        As for :class:`Blend`.
    k, step
        As for :meth:`Blend.tune_weights`.
    plateau : float >= 0, default 0
        0: the best vector of the grid. Above 0: the mean of every vector whose NDCG@``k`` is
        within ``plateau`` of the best. The NDCG surface of a few members' weights is flat
        near its top, so the single best vector moves with the validation draw; the centre of
        the near-best ones moves less. On ml-100k P1 (the benchmark's members, 4 validation
        splits per test split, 10 test seeds), ``plateau=0.001`` raised test NDCG@10 by
        0.0007 ± 0.0002 on average, on 9 seeds of 10 (``bench/results/seeds-plateau.md``).

    Returns
    -------
    weights : ndarray of float64, shape (n_members,)
        Summing to 1.
    score : float
        The NDCG@``k`` these weights reach, averaged over every fold's validation users.
    """
    if isinstance(folds, str | bytes) or not isinstance(folds, Sequence) or len(folds) == 0:
        raise InvalidInput("The 'folds' parameter of tune_weights_on_folds must be a non-empty "
                           f"list of (train, validation) pairs. Got {folds!r} instead.")
    _check_plateau(plateau)
    grid: list[np.ndarray] = []
    totals = np.zeros(0)
    n_users = 0
    fitted: list[tuple[Blend, Any]] = []  # kept to score a mean of vectors (plateau)
    for j, fold in enumerate(folds):
        if not isinstance(fold, Sequence) or len(fold) != 2:
            raise InvalidInput("The 'folds' parameter of tune_weights_on_folds must hold "
                               f"(train, validation) pairs. Got {fold!r} at {j} instead.")
        train, validation = fold
        blend = Blend(models, normalize=normalize).fit(train)
        grid, fold_totals, fold_users = blend._grid_ndcg(validation, k=k, step=step)
        totals = fold_totals if j == 0 else totals + fold_totals
        n_users += fold_users
        if plateau > 0:
            fitted.append((blend, validation))
    weights, best = _choose(grid, totals / n_users, plateau)
    if best is not None:
        return weights, float(totals[best] / n_users)
    total = sum(float(b._grid_ndcg(v, k=k, vectors=[weights])[1][0]) for b, v in fitted)
    return weights, total / n_users


# ---------------------------------------------------------------------- helpers


#: Each member's best items per user that :func:`_grid_totals` ranks, as a multiple of ``k``.
_CANDIDATES_PER_K = 10


def _grid_totals(parts: list[np.ndarray], exclude: np.ndarray, truth: sp.csr_matrix,
                 grid: Sequence[np.ndarray], k: int) -> np.ndarray:
    """NDCG@``k`` summed over the rows, for each weight vector of ``grid``: what ranking every
    row's blend ``_weighted(parts, w)`` outside ``exclude`` gives, computed on a few
    candidates per row.

    The candidates of a row are the union of every member's ``C = 10 k`` best items. An item
    outside member m's best C scores at most that member's C-th best value ``t_m``, so outside
    the candidates the blend is at most ``Σ w_m t_m``: where the row's k-th best candidate
    beats that bound, the candidates' top k is the row's top k (the same float32 sums; only
    exactly tied scores may be ordered otherwise, as they may by any top-k). The rows where it
    does not are ranked in full. On ml-100k's P1 validation split with four members, 3 of the
    1,771 vectors of step 0.05 differed from ranking every item, each by a tie, and the grid
    took a fifth of the time.
    """
    n_rows, n_items = exclude.shape
    C = min(n_items, _CANDIDATES_PER_K * k)
    if C * len(parts) >= n_items:  # the candidates would be (nearly) everything
        return np.array([_ndcg_sum(topk(_weighted(parts, w), k, exclude=exclude)[0], truth, k)
                         for w in grid])
    rows = np.arange(n_rows)[:, None]
    cand = np.zeros((n_rows, n_items), dtype=bool)
    bound = np.empty((len(parts), n_rows))
    for m, part in enumerate(parts):
        allowed = np.where(exclude, -np.inf, part)
        best = np.argpartition(-allowed, C - 1, axis=1)[:, :C]
        cand[rows, best] = True
        bound[m] = allowed[rows, best].min(axis=1)  # the member's C-th best value
    cand &= ~exclude
    width = int(cand.sum(axis=1).max())
    order = np.argsort(~cand, axis=1, kind="stable")[:, :width]  # candidates first, in order
    valid = cand[rows, order]
    compact = [np.where(valid, part[rows, order], np.float32(0.0)) for part in parts]
    totals = np.empty(len(grid))
    for j, w in enumerate(grid):
        S = _weighted(compact, w)
        S[~valid] = -np.inf
        at, values = topk(S, k)
        items = np.where(at >= 0, order[rows, np.maximum(at, 0)], -1)
        # the bound, with room for float32 rounding; a zero weight never lowers it
        limit = np.zeros(n_rows)
        for m, wm in enumerate(w):
            if wm:
                limit += float(wm) * bound[m]
        finite = np.isfinite(limit)  # -inf: a member's best C held every allowed item
        limit[finite] += 1e-4 * (1.0 + np.abs(limit[finite]))
        kth = (values[:, -1].astype(np.float64) if values.shape[1] == k
               else np.full(n_rows, -np.inf))
        redo = np.flatnonzero(finite & ~(kth > limit))
        if redo.size:
            full = _weighted([p[redo] for p in parts], w)
            items[redo] = topk(full, k, exclude=exclude[redo])[0]
        totals[j] = _ndcg_sum(items, truth, k)
    return totals


def _ndcg_sum(items: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    return float(ranking_metrics(items, truth, (k,))[f"ndcg@{k}"].sum())


def _dense_mask(seen: sp.csr_matrix) -> np.ndarray:
    mask = np.zeros(seen.shape, dtype=bool)
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    mask[rows, seen.indices] = True
    return mask


def _normalize(S: np.ndarray, seen: np.ndarray, how: str) -> np.ndarray:
    """Normalise each row of ``S`` over its unseen cells (in place; seen cells are arbitrary)."""
    free = ~seen
    count = free.sum(axis=1, keepdims=True)
    if how == "rank":
        S[seen] = -np.inf
        ranks = np.argsort(np.argsort(S, axis=1, kind="stable"), axis=1, kind="stable")
        # the worst unseen item has rank (n_items - count): map unseen ranks onto [0, 1]
        low = S.shape[1] - count
        span = np.maximum(count - 1, 1)
        return ((ranks - low) / span).astype(np.float32)
    if how == "minmax":
        lo = np.min(S, axis=1, where=free, initial=np.inf, keepdims=True)
        hi = np.max(S, axis=1, where=free, initial=-np.inf, keepdims=True)
        span = hi - lo
        ok = np.isfinite(span) & (span > 0)
        out = np.where(ok, (S - np.where(ok, lo, 0)) / np.where(ok, span, 1), 0.0)
        return out.astype(np.float32)
    # zscore
    n = np.maximum(count, 1)
    mean = np.sum(S, axis=1, where=free, keepdims=True, dtype=np.float64) / n
    var = np.sum((S - mean) ** 2, axis=1, where=free, keepdims=True, dtype=np.float64) / n
    std = np.sqrt(var)
    out = np.where(std > 0, (S - mean) / np.where(std > 0, std, 1), 0.0)
    return out.astype(np.float32)


def _weighted(parts: list[np.ndarray], weights: Sequence[float] | np.ndarray) -> np.ndarray:
    out = np.zeros_like(parts[0])
    for w, part in zip(weights, parts, strict=True):
        if w:
            out += np.float32(w) * part
    return out


def _grid(n: int, step: float) -> list[np.ndarray]:
    """The weight vectors :meth:`Blend.tune_weights` tries for ``n`` members."""
    if not 0 < step <= 1:
        raise InvalidInput(f"step must be in (0, 1], got {step!r}")
    n_grid = _grid_size(n, step)
    if n_grid > _MAX_GRID:
        raise InvalidInput(f"{n_grid} weight vectors for {n} models at step {step}: choose a "
                           f"larger step (at most {_MAX_GRID} vectors)")
    return list(_simplex(n, round(1.0 / step)))


def _grid_size(n: int, step: float) -> int:
    """How many weight vectors the ``step`` grid has for ``n`` members."""
    return math.comb(round(1.0 / step) + n - 1, n - 1)


def fitting_step(n: int, step: float) -> float:
    """``step``, doubled until the weight grid of ``n`` members is small enough to search
    (at most :data:`_MAX_GRID` vectors)."""
    while _grid_size(n, step) > _MAX_GRID:
        step *= 2
    return step


def describe_members(members: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """``name(param=value, …)`` per member, as reports print a blend's members."""
    return [f"{name}({', '.join(f'{k}={v}' for k, v in params.items())})"
            for name, params in members]


def _check_plateau(plateau: Any) -> None:
    check_float("Blend", "plateau", plateau, strict=False)


def _choose(grid: list[np.ndarray], scores: np.ndarray, plateau: float
            ) -> tuple[np.ndarray, int | None]:
    """The chosen weights and their index in ``grid``: the first best vector, or (``plateau``
    > 0, more than one vector within it of the best) their mean, with index None."""
    best = _first_best(scores)
    if plateau > 0:
        near = np.flatnonzero(scores >= scores[best] - plateau)
        if near.size > 1:
            mean = np.mean([grid[j] for j in near], axis=0)
            return mean / mean.sum(), None
    return np.asarray(grid[best], dtype=np.float64), best


def _first_best(values: np.ndarray) -> int:
    """The best index of a scan in order, where a later value replaces the best only when it
    is larger by more than 1e-12: among near-ties (float noise) the first wins."""
    best, at = -np.inf, 0
    for j, value in enumerate(values):
        if value > best + 1e-12:
            best, at = float(value), j
    return at


def _simplex(n: int, steps: int) -> Any:
    """Every weight vector of ``n`` multiples of ``1/steps`` summing to 1, in a fixed order."""
    for cuts in itertools.combinations(range(steps + n - 1), n - 1):
        bounds = (-1, *cuts, steps + n - 1)
        yield np.array([bounds[j + 1] - bounds[j] - 1 for j in range(n)], float) / steps
