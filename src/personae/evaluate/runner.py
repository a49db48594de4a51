"""Run a model on a split: fit, rank every test user, score; tune on validation; print tables.

>>> split = random_holdout(view)                                      # doctest: +SKIP
>>> tuning, result = tune_and_evaluate(EASE, {"l2": [100.0, 500.0]}, split)  # doctest: +SKIP
>>> console.print(render_table([result]))                             # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
import math
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.evaluate.metrics import beyond_accuracy, mae, ranking_metrics, rmse
from personae.evaluate.splits import Split

if TYPE_CHECKING:
    from rich.table import Table

    from personae.models.base import Recommender

#: Users are bucketed by their number of training items: [0, 1), [1, 6), … [101, ∞).
BUCKET_EDGES = (0, 1, 6, 21, 51, 101)
#: Columns of :func:`render_table` (K filled in per table).
TABLE_METRICS = ("ndcg", "recall", "precision", "map", "hitrate", "mrr", "coverage")


@dataclass
class EvaluationResult:
    """Every number of one model on one split.

    ``metrics`` maps ``"ndcg@10"`` → mean over evaluated users; ``buckets`` maps an activity
    bucket label (training items per user, e.g. ``"6-20"``) to ``{"n_users": …, "ndcg@10": …}``.
    Seconds are wall-clock; ``peak_memory_bytes`` is the Python-heap peak during fit +
    recommend (tracemalloc, which sees numpy buffers) or the process's peak RSS.
    """

    model: str
    params: dict[str, Any]
    split: dict[str, Any]
    on: str
    ks: list[int]
    n_users: int
    metrics: dict[str, float]
    buckets: dict[str, dict[str, float]] = field(default_factory=dict)
    fit_seconds: float = float("nan")
    recommend_seconds: float = float("nan")
    peak_memory_bytes: int | None = None
    memory_measure: str = "tracemalloc"

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def to_json(self, **kwargs: Any) -> str:
        """JSON with every number (NaN written as null)."""
        return json.dumps(self.to_dict(), **kwargs)


@dataclass
class TuningResult:
    """A search on the validation split: every trial and the best parameters."""

    metric: str
    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]]
    seconds: float
    stopped_by_budget: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def evaluate(
    model: Recommender,
    split: Split,
    *,
    ks: Sequence[int] = (5, 10, 20),
    on: Literal["test", "validation"] = "test",
    fit: bool = True,
    item_categories: sp.csr_matrix | np.ndarray | None = None,
    bucket_edges: Sequence[int] = BUCKET_EDGES,
    memory: Literal["tracemalloc", "rss", "none"] = "tracemalloc",
    batch_size: int = 1024,
) -> EvaluationResult:
    """Fit ``model`` on the split's training pairs and score its top-K for every test user.

    Parameters
    ----------
    model : Recommender
        Any model; fit here on ``split.train`` (``fit=False``: already fit on it).
    split : Split
        ``on="validation"`` uses ``split.validation`` (fit on its train, score its test).
    ks : ints
        Cut-offs; the lists are ``max(ks)`` long.
    item_categories : (n_items, n_categories), optional
        Adds intra-list diversity (see :func:`personae.evaluate.metrics.intra_list_diversity`).
    memory : {"tracemalloc", "rss", "none"}
        How peak memory is taken: tracemalloc (adds some overhead to the timings), the
        process's peak resident size so far (``resource.getrusage``), or not at all.

    A model with ``uses_event_order`` (SASRec, EASE with a ``sequence_window``) is fit on
    :meth:`Split.train_view` (the training pairs with their times), every other one on
    ``split.train``.

    Ranking: for each test user the model ranks every item except the user's training items
    (:attr:`Split.exclude`) and, when the split has ``candidates``, the items outside them.
    A model exposing ``predict_ratings(users, items) -> ndarray`` (and not ``predicts_ratings``
    False) also gets RMSE and MAE on the test pairs that have a rating.
    """
    s = _pick(split, on)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise InvalidInput(f"ks must be ints >= 1, got {ks!r}")
    if memory == "tracemalloc":
        tracemalloc.start()
    try:
        fit_seconds = float("nan")
        if fit:
            started = time.perf_counter()
            # a model that reads the order of events gets them with their times
            model.fit(s.train_view() if getattr(model, "uses_event_order", False) else s.train)
            fit_seconds = time.perf_counter() - started
        if (model.n_users_, model.n_items_) != (s.n_users, s.n_items):
            raise InvalidInput(
                f"the model was fit on a {model.n_users_} × {model.n_items_} matrix but the split "
                f"is {s.n_users} × {s.n_items}; fit it on split.train (or pass fit=True)"
            )
        users = s.test_users()
        started = time.perf_counter()
        recs = _recommend(model, s, users, ks[-1], batch_size)
        recommend_seconds = time.perf_counter() - started
        peak = _peak(memory)
    finally:
        if memory == "tracemalloc":
            tracemalloc.stop()

    test_rows = s.test[users]
    per_user = ranking_metrics(recs, test_rows, ks)
    metrics = {name: float(v.mean()) if v.size else float("nan")
               for name, v in per_user.items() if name != "users"}
    n_items = int(s.candidates.sum()) if s.candidates is not None else s.n_items
    metrics.update(beyond_accuracy(recs, s.train, ks, item_categories, n_items=n_items))
    metrics.update(_rating_errors(model, s, users))
    activity = np.diff(s.train.indptr)[users[per_user["users"]]]
    return EvaluationResult(
        model=getattr(model, "name", "") or type(model).__name__,
        params=_jsonable(model.get_params()), split=s.summary(), on=on, ks=ks,
        n_users=int(per_user["users"].size), metrics=metrics,
        buckets=_buckets(per_user, activity, bucket_edges),
        fit_seconds=fit_seconds, recommend_seconds=recommend_seconds,
        peak_memory_bytes=peak, memory_measure=memory,
    )


def tune(
    make_model: Callable[..., Recommender],
    grid: Mapping[str, Sequence[Any]],
    split: Split,
    *,
    metric: str = "ndcg@10",
    ks: Sequence[int] = (5, 10, 20),
    search: Literal["grid", "random"] = "grid",
    n_iter: int | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
) -> TuningResult:
    """Search hyper-parameters on ``split.validation`` only (the test set is never read).

    Parameters
    ----------
    make_model : callable
        ``make_model(**params)`` → an unfitted model (a model class, or
        ``functools.partial(personae.models.create, "ease")``).
    grid : mapping name → values
        The search space; combinations in the order of ``itertools.product`` over the names
        sorted alphabetically.
    search : {"grid", "random"}
        ``"random"`` tries ``n_iter`` combinations drawn without replacement by
        ``np.random.default_rng(seed).permutation``; ``"grid"`` tries them all (or the first
        ``n_iter``).
    time_budget_s : float, optional
        No new trial starts once this many seconds have passed (the first always runs). The
        trials that ran are deterministic; how many ran depends on the machine.

    Ties keep the earlier trial.
    """
    if split.validation is None:
        raise InvalidInput(f"the split {split.name!r} has no validation split to tune on")
    names = sorted(grid)
    combos = [dict(zip(names, values, strict=True))
              for values in itertools.product(*(list(grid[n]) for n in names))]
    if not combos:
        raise InvalidInput("the grid is empty: give at least one value per parameter")
    if search == "random":
        combos = [combos[i] for i in np.random.default_rng(seed).permutation(len(combos))]
    elif search != "grid":
        raise InvalidInput(f"The 'search' parameter must be 'grid' or 'random'. Got {search!r}.")
    if n_iter is not None:
        combos = combos[: max(1, int(n_iter))]
    ks = sorted({*map(int, ks), _metric_k(metric)})
    started = time.perf_counter()
    trials: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any]] | None = None
    stopped = False
    for params in combos:
        if trials and time_budget_s is not None and \
                time.perf_counter() - started > time_budget_s:
            stopped = True
            break
        result = evaluate(make_model(**params), split, ks=ks, on="validation", memory="none")
        score = result.metrics[metric]
        trials.append({"params": params, metric: score, "fit_seconds": result.fit_seconds})
        if not math.isnan(score) and (best is None or score > best[0]):
            best = (score, params)
    if best is None:
        best = (float("nan"), trials[0]["params"])
    return TuningResult(metric, best[1], best[0], trials, time.perf_counter() - started, stopped)


def tune_and_evaluate(
    make_model: Callable[..., Recommender],
    grid: Mapping[str, Sequence[Any]],
    split: Split,
    *,
    metric: str = "ndcg@10",
    ks: Sequence[int] = (5, 10, 20),
    item_categories: sp.csr_matrix | np.ndarray | None = None,
    **search: Any,
) -> tuple[TuningResult, EvaluationResult]:
    """:func:`tune` on validation, then fit the best on ``split.train`` and test once."""
    tuning = tune(make_model, grid, split, metric=metric, ks=ks, **search)
    result = evaluate(make_model(**tuning.best_params), split, ks=ks,
                      item_categories=item_categories)
    return tuning, result


def render_table(results: Sequence[EvaluationResult], *, k: int = 10,
                 metrics: Sequence[str] = TABLE_METRICS) -> Table:
    """A rich table: one row per result, the metrics at ``k``, seconds and peak memory."""
    from rich.table import Table

    table = Table(title=f"Evaluation @ {k}")
    for col in ("model", "split", "users"):
        table.add_column(col)
    for m in metrics:
        table.add_column(f"{m}@{k}", justify="right")
    for col in ("fit s", "recommend s", "peak MiB"):
        table.add_column(col, justify="right")
    for r in results:
        values = [_fmt(r.metrics.get(f"{m}@{k}", float("nan"))) for m in metrics]
        mem = "" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 2**20:.1f}"
        table.add_row(r.model, f"{r.split.get('name', '')}/{r.on}", str(r.n_users), *values,
                      _fmt(r.fit_seconds, 3), _fmt(r.recommend_seconds, 3), mem)
    return table


def table_text(results: Sequence[EvaluationResult], *, k: int = 10, width: int = 160) -> str:
    """:func:`render_table` as plain text (for logs and tests)."""
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    Console(file=buf, width=width, color_system=None).print(render_table(results, k=k))
    return buf.getvalue()


# ---------------------------------------------------------------------- helpers


def _pick(split: Split, on: str) -> Split:
    if on == "test":
        return split
    if on == "validation":
        if split.validation is None:
            raise InvalidInput(f"the split {split.name!r} has no validation split")
        return split.validation
    raise InvalidInput(f"The 'on' parameter must be 'test' or 'validation'. Got {on!r} instead.")


def _recommend(model: Recommender, s: Split, users: np.ndarray, k: int,
               batch_size: int) -> np.ndarray:
    """Top ``k`` per user, excluding training items and non-candidates, batch by batch."""
    out = np.full((users.size, min(k, s.n_items)), -1, dtype=np.int64)
    outside = None if s.candidates is None else np.flatnonzero(~s.candidates)
    for start in range(0, users.size, batch_size):
        batch = users[start:start + batch_size]
        ex = s.exclude  # rows by user index, as recommend_batch expects
        if outside is not None:
            ex = ex + _same_items(batch, outside, (s.n_users, s.n_items))
        items, _ = model.recommend_batch(batch, k, exclude=ex, exclude_seen=False,
                                         batch_size=batch_size)
        out[start:start + batch.size, : items.shape[1]] = items
    return out


def _same_items(rows: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    r = np.repeat(rows, items.size)
    c = np.tile(items, rows.size)
    return sp.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=shape)


def _rating_errors(model: Recommender, s: Split, users: np.ndarray) -> dict[str, float]:
    predict = getattr(model, "predict_ratings", None)
    # a model whose rating part is optional says whether this one has it
    if predict is None or not getattr(model, "predicts_ratings", True) or s.ratings is None:
        return {}
    rated = s.test.multiply(s.ratings > 0).tocoo()
    if rated.nnz == 0:
        return {}
    actual = np.asarray(s.ratings[rated.row, rated.col]).ravel()
    predicted = np.asarray(predict(rated.row, rated.col), dtype=np.float64)
    return {"rmse": rmse(predicted, actual), "mae": mae(predicted, actual)}


def _buckets(per_user: Mapping[str, np.ndarray], activity: np.ndarray,
             edges: Sequence[int]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    bounds = [*edges, math.inf]
    for lo, hi in itertools.pairwise(bounds):
        sel = (activity >= lo) & (activity < hi)
        if not sel.any():
            continue
        label = (f"{lo}+" if hi == math.inf else str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}")
        row: dict[str, float] = {"n_users": int(sel.sum())}
        row.update({name: float(v[sel].mean()) for name, v in per_user.items() if name != "users"})
        out[label] = row
    return out


def _metric_k(metric: str) -> int:
    name, _, k = metric.partition("@")
    if not k.isdigit():
        raise InvalidInput(f"metric must look like 'ndcg@10', got {metric!r}")
    return int(k)


def _peak(memory: str) -> int | None:
    if memory == "tracemalloc":
        return int(tracemalloc.get_traced_memory()[1])
    if memory == "rss":
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux: KiB
    return None


def _fmt(value: float, digits: int = 4) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
