"""The MeLU paper's own cold-start protocol on its ml-1m partitions (Lee et al., KDD 2019, Table 2).

In each partition (``user_cold_state``: new users on existing movies, ``item_cold_state``:
existing users on new movies, ``user_and_item_cold_state``: new users on new movies):

1. **tasks**: the users with ``min_ratings``–``max_ratings`` (13–100) rated pairs in the
   partition;
2. **split**: per task the user's pairs in the partition, first in ascending raw item id, are
   shuffled by one ``np.random.default_rng(seed)`` (seed 2026) per partition that visits the task
   users in ascending raw id (``rng.permutation(n)`` each); the *last* ``query_size`` (10) are the
   **query set**, the rest the **support set**;
3. **what a model may use**: every rated pair that is in no query set of any partition — all
   support sets, the users outside the filter, the other partitions
   (:attr:`MeluProtocol.train_users` … ``train_ratings``, or :meth:`MeluProtocol.train_view`);
4. **scores**: the model predicts the 10 query ratings of every task;

   - MAE = mean over tasks of the task's mean absolute error;
   - nDCG@k (k = 1, 3) *inside the 10 query items*: the items ordered by predicted rating (ties
     broken by their position in the query set), gain ``2**r - 1``, discount
     ``1 / log2(1 + rank)``, divided by the DCG of the best order of the same 10 items;
     mean over tasks.

MeLU-5's published numbers (MAE / nDCG@1 / nDCG@3) are in :data:`MELU_PUBLISHED`. MeLU also
trained on a *warm* partition (existing users × existing movies, 640,448 ratings) that is not
shipped with the public folder, so a model here sees less data than MeLU did.

>>> protocol = melu_protocol(view, melu_partitions(store))          # doctest: +SKIP
>>> model = FeatureGBM().fit(protocol.train_view())                  # doctest: +SKIP
>>> scores = evaluate_melu(protocol, model.predict)                  # doctest: +SKIP
>>> scores["user_cold_state"].mae                                    # doctest: +SKIP

The same tasks as a catalogue-ranking problem (support = history, query = positives):
:func:`ranking_tasks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from personae.errors import InvalidInput
from personae.evaluate.splits import id_order

if TYPE_CHECKING:
    from personae.data.interactions import Interactions

#: The three partitions, in the order of MeLU's Table 2, with a short description.
MELU_PARTITIONS: dict[str, str] = {
    "user_cold_state": "existing items for new users",
    "item_cold_state": "new items for existing users",
    "user_and_item_cold_state": "new items for new users",
}

#: MeLU-5 in the paper's Table 2: partition → {metric: value}.
MELU_PUBLISHED: dict[str, dict[str, float]] = {
    "user_cold_state": {"mae": 0.7854, "ndcg@1": 0.8803, "ndcg@3": 0.8812},
    "item_cold_state": {"mae": 0.9275, "ndcg@1": 0.7697, "ndcg@3": 0.8005},
    "user_and_item_cold_state": {"mae": 0.9235, "ndcg@1": 0.7752, "ndcg@3": 0.8008},
}

#: ``predict(users, items) -> ratings``: index-space int arrays (n,) → float array (n,).
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class MeluTasks:
    """The tasks of one partition, in ascending raw user id.

    Task ``t`` is user ``users[t]``; its support pairs are
    ``support_items[support_indptr[t]:support_indptr[t + 1]]`` (with ``support_ratings``), its
    query pairs ``query_items[t * q:(t + 1) * q]`` (``q = query_size``), both in shuffled order.

    Attributes
    ----------
    partition : str
    users : int64 ndarray (n_tasks,)
        Row of each task user in the protocol's index space.
    support_indptr : int64 ndarray (n_tasks + 1,)
    support_items : int64 ndarray (n_support,)
    support_ratings : float64 ndarray (n_support,)
    query_items : int64 ndarray (n_tasks * query_size,)
    query_ratings : float64 ndarray (n_tasks * query_size,)
    query_size : int
    """

    partition: str
    users: np.ndarray
    support_indptr: np.ndarray
    support_items: np.ndarray
    support_ratings: np.ndarray
    query_items: np.ndarray
    query_ratings: np.ndarray
    query_size: int

    @property
    def n_tasks(self) -> int:
        return int(self.users.shape[0])

    def query_users(self) -> np.ndarray:
        """The task user of every query pair: int64 (n_tasks * query_size,)."""
        return np.repeat(self.users, self.query_size)

    def support_users(self) -> np.ndarray:
        """The task user of every support pair: int64 (n_support,)."""
        return np.repeat(self.users, np.diff(self.support_indptr))

    def support(self, task: int) -> tuple[np.ndarray, np.ndarray]:
        """Task ``task``'s support set: (items, ratings)."""
        a, b = self.support_indptr[task], self.support_indptr[task + 1]
        return self.support_items[a:b], self.support_ratings[a:b]

    def query(self, task: int) -> tuple[np.ndarray, np.ndarray]:
        """Task ``task``'s query set: (items, ratings)."""
        q = self.query_size
        return (self.query_items[task * q:(task + 1) * q],
                self.query_ratings[task * q:(task + 1) * q])


@dataclass(frozen=True, eq=False)
class MeluProtocol:
    """The tasks of every partition and what a model may learn from.

    Attributes
    ----------
    tasks : dict[str, MeluTasks]
        By partition name, in :data:`MELU_PARTITIONS` order (partitions absent from the view
        are left out).
    train_users, train_items : int64 ndarray (n_train,)
        Every rated pair in no query set, sorted by (user, item).
    train_ratings : float64 ndarray (n_train,)
    train_partitions : object ndarray (n_train,)
        The partition of each training pair (``""`` for none).
    user_ids, item_ids : object ndarray
        Raw id of every row / column: the view's index space (every user and item of the
        view, also those without ratings, so that store features line up).
    params : dict
        ``min_ratings``, ``max_ratings``, ``query_size``, ``seed``.
    """

    tasks: dict[str, MeluTasks]
    train_users: np.ndarray
    train_items: np.ndarray
    train_ratings: np.ndarray
    train_partitions: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    def train_view(self) -> Interactions:
        """The training pairs as an :class:`Interactions` (weight 1, value = the rating)."""
        from personae.data.interactions import Interactions

        return Interactions.from_arrays(
            self.train_users, self.train_items, values=self.train_ratings,
            user_ids=self.user_ids, item_ids=self.item_ids, aggregate="last",
        )

    def summary(self) -> dict[str, Any]:
        """Sizes, for reports."""
        return {
            "train_pairs": int(self.train_users.size),
            "partitions": {
                name: {"tasks": t.n_tasks, "support_pairs": int(t.support_items.size),
                       "query_pairs": int(t.query_items.size)}
                for name, t in self.tasks.items()
            },
            **self.params,
        }


@dataclass(frozen=True)
class MeluScores:
    """The protocol's scores on one partition, with the per-task values behind them.

    Attributes
    ----------
    mae, ndcg1, ndcg3 : float
        Means over tasks.
    per_task : dict[str, ndarray]
        ``"mae"``, ``"ndcg@1"``, ``"ndcg@3"``: float64 (n_tasks,).
    """

    partition: str
    n_tasks: int
    mae: float
    ndcg1: float
    ndcg3: float
    per_task: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def as_dict(self) -> dict[str, float | int | str]:
        return {"partition": self.partition, "tasks": self.n_tasks, "mae": self.mae,
                "ndcg@1": self.ndcg1, "ndcg@3": self.ndcg3}


def melu_protocol(
    view: Interactions,
    partitions: Sequence[str] | np.ndarray,
    *,
    min_ratings: int = 13,
    max_ratings: int = 100,
    query_size: int = 10,
    seed: int = 2026,
) -> MeluProtocol:
    """Build the MeLU tasks (support / query sets) of every partition of ``view``.

    Parameters
    ----------
    view : Interactions
        Built from a store filled by :func:`~personae.data.importers.import_melu`, without a
        ``types`` filter, so that its events line up with ``partitions``.
    partitions : array of str (n_events,)
        Each event's MeLU partition, from :func:`~personae.evaluate.melu_partitions`.
    min_ratings, max_ratings : int, default 13, 100
        A user with this many rated pairs (inclusive) in a partition is one of its tasks.
    query_size : int, default 10
        Query pairs per task (the last ones after shuffling); ``min_ratings > query_size``.
    seed : int, default 2026
        Seed of the ``np.random.default_rng`` created for each partition.

    Returns
    -------
    MeluProtocol

    Notes
    -----
    A pair is one (user, item) with rated events; its rating is the last event's value and its
    partition that event's. Events without a value (not ratings) are ignored.
    """
    for name, value in (("min_ratings", min_ratings), ("max_ratings", max_ratings),
                        ("query_size", query_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise InvalidInput(f"The {name!r} parameter must be an int >= 1. Got {value!r} "
                               "instead.")
    if min_ratings <= query_size:
        raise InvalidInput(
            f"min_ratings ({min_ratings}) must exceed query_size ({query_size}): every task "
            "needs at least one support rating"
        )
    if max_ratings < min_ratings:
        raise InvalidInput(f"max_ratings ({max_ratings}) must be >= min_ratings ({min_ratings})")
    parts = np.asarray(partitions, dtype=object)
    if parts.shape != (view.n_events,):
        raise InvalidInput(
            f"partitions must have one entry per event of the view ({view.n_events}), got "
            f"{parts.shape[0] if parts.ndim else 0}; build the view with "
            "Interactions.from_store(store) and no types filter"
        )

    # pairs: last rated event per (user, item), in arrival order
    rated = np.flatnonzero(~np.isnan(view.event_values))
    if rated.size == 0:
        raise InvalidInput("no event of the view carries a rating value; was the store filled "
                           "with import_melu?")
    u = view.event_users[rated].astype(np.int64)
    i = view.event_items[rated].astype(np.int64)
    key = u * view.n_items + i
    # the last event of each key: unique over the reversed order
    _, last_rev = np.unique(key[::-1], return_index=True)
    last = rated[::-1][last_rev]
    pu = view.event_users[last].astype(np.int64)
    pi = view.event_items[last].astype(np.int64)
    pr = view.event_values[last].astype(np.float64)
    pp = parts[last]

    # ascending raw id ranks, to order users and items
    user_rank = np.empty(view.n_users, dtype=np.int64)
    user_rank[id_order(view.user_ids)] = np.arange(view.n_users)
    item_rank = np.empty(view.n_items, dtype=np.int64)
    item_rank[id_order(view.item_ids)] = np.arange(view.n_items)

    in_query = np.zeros(pu.size, dtype=bool)
    tasks: dict[str, MeluTasks] = {}
    names = [p for p in MELU_PARTITIONS if (pp == p).any()]
    names += sorted({str(p) for p in pp} - set(MELU_PARTITIONS) - {""})
    for name in names:
        sel = np.flatnonzero(pp == name)
        # by user (ascending raw id), then item (ascending raw id)
        sel = sel[np.lexsort((item_rank[pi[sel]], user_rank[pu[sel]]))]
        users_sorted = pu[sel]
        starts = np.r_[0, np.flatnonzero(np.diff(users_sorted)) + 1]
        ends = np.r_[starts[1:], sel.size]
        rng = np.random.default_rng(seed)
        t_users, s_pos, q_pos, s_ptr = [], [], [], [0]
        for a, b in zip(starts, ends, strict=True):
            n = int(b - a)
            if not min_ratings <= n <= max_ratings:
                continue
            order = sel[a:b][rng.permutation(n)]
            t_users.append(int(users_sorted[a]))
            s_pos.append(order[: n - query_size])
            q_pos.append(order[n - query_size:])
            s_ptr.append(s_ptr[-1] + n - query_size)
        s_idx = np.concatenate(s_pos) if s_pos else np.zeros(0, np.int64)
        q_idx = np.concatenate(q_pos) if q_pos else np.zeros(0, np.int64)
        in_query[q_idx] = True
        tasks[name] = MeluTasks(
            partition=name, users=np.asarray(t_users, dtype=np.int64),
            support_indptr=np.asarray(s_ptr, dtype=np.int64),
            support_items=pi[s_idx], support_ratings=pr[s_idx],
            query_items=pi[q_idx], query_ratings=pr[q_idx], query_size=query_size,
        )
    keep = np.flatnonzero(~in_query)
    keep = keep[np.lexsort((pi[keep], pu[keep]))]
    return MeluProtocol(
        tasks=tasks, train_users=pu[keep], train_items=pi[keep], train_ratings=pr[keep],
        train_partitions=pp[keep], user_ids=np.asarray(view.user_ids, dtype=object),
        item_ids=np.asarray(view.item_ids, dtype=object),
        params={"min_ratings": int(min_ratings), "max_ratings": int(max_ratings),
                "query_size": int(query_size), "seed": int(seed)},
    )


def query_ndcg(predicted: np.ndarray, actual: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k inside each task's query items, per task.

    Parameters
    ----------
    predicted, actual : float arrays (n_tasks, query_size)
        Predicted and true ratings of each task's query items, in query order.
    k : int
        Cut-off (>= 1).

    Returns
    -------
    float64 ndarray (n_tasks,)
        ``DCG@k / IDCG@k`` with gain ``2**r - 1`` and discount ``1 / log2(1 + rank)``; the
        items are ordered by ``predicted`` (descending; ties in query order), the ideal by
        ``actual``. A task whose ideal DCG is 0 (every rating 0) scores 0.
    """
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if p.ndim != 2 or p.shape != a.shape:
        raise InvalidInput(f"predicted and actual must be (n_tasks, query_size) arrays of the "
                           f"same shape, got {p.shape} and {a.shape}")
    if int(k) < 1:
        raise InvalidInput(f"k must be an int >= 1. Got {k!r} instead.")
    k = min(int(k), p.shape[1])
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    gains = 2.0 ** np.take_along_axis(a, order, axis=1) - 1.0
    ideal = 2.0 ** (-np.sort(-a, axis=1)[:, :k]) - 1.0
    dcg, idcg = gains @ discount, ideal @ discount
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def score_tasks(tasks: MeluTasks, predicted: np.ndarray) -> MeluScores:
    """The protocol's scores of ``predicted`` (one rating per query pair, in query order)."""
    q = tasks.query_size
    flat = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if flat.size != tasks.query_items.size:
        raise InvalidInput(f"expected {tasks.query_items.size} predictions for "
                           f"{tasks.partition!r} ({tasks.n_tasks} tasks × {q}), got {flat.size}")
    if not np.isfinite(flat).all():
        raise InvalidInput(f"predictions for {tasks.partition!r} hold NaN or infinite values")
    p = flat.reshape(-1, q)
    a = tasks.query_ratings.reshape(-1, q)
    per_task = {"mae": np.abs(p - a).mean(axis=1), "ndcg@1": query_ndcg(p, a, 1),
                "ndcg@3": query_ndcg(p, a, 3)}
    mean = {k: float(v.mean()) if v.size else float("nan") for k, v in per_task.items()}
    return MeluScores(tasks.partition, tasks.n_tasks, mean["mae"], mean["ndcg@1"],
                      mean["ndcg@3"], per_task)


def evaluate_melu(protocol: MeluProtocol, predict: Predictor) -> dict[str, MeluScores]:
    """Score ``predict`` on every partition of ``protocol``.

    Parameters
    ----------
    protocol : MeluProtocol
    predict : callable
        ``predict(users, items) -> ratings`` on index-space int64 arrays (n,), returning a float
        array (n,): a model fit on :meth:`MeluProtocol.train_view` (or its arrays).

    Returns
    -------
    dict[str, MeluScores]
        By partition.
    """
    out = {}
    for name, tasks in protocol.tasks.items():
        predicted = np.asarray(predict(tasks.query_users(), tasks.query_items), dtype=np.float64)
        out[name] = score_tasks(tasks, predicted)
    return out


def support_mean_scores(protocol: MeluProtocol) -> dict[str, MeluScores]:
    """The floor of each partition: every query rating predicted by the task's support mean."""
    out = {}
    for name, t in protocol.tasks.items():
        n = np.diff(t.support_indptr)
        sums = np.add.reduceat(t.support_ratings, t.support_indptr[:-1]) if t.n_tasks else n
        out[name] = score_tasks(t, np.repeat(sums / n, t.query_size))
    return out


@dataclass(frozen=True, eq=False)
class RankingTasks:
    """One partition's tasks as a full-catalogue ranking problem.

    Attributes
    ----------
    users : int64 ndarray (n_tasks,)
        The task users (rows of the protocol's index space).
    support : csr_matrix float32 (n_tasks, n_items)
        Each task's support ratings: its history to fold in (and the items not to rank).
    query : csr_matrix float32 (n_tasks, n_items)
        1.0 per query item: the positives to find.
    candidates : bool ndarray (n_items,)
        The partition's items (any pair of the partition, in training or a query set): the
        only items ranked.
    """

    partition: str
    users: np.ndarray
    support: Any
    query: Any
    candidates: np.ndarray


def ranking_tasks(protocol: MeluProtocol, partition: str) -> RankingTasks:
    """The tasks of ``partition`` as catalogue ranking (NDCG@10, Recall@10).

    Every query item counts as a positive whatever its rating (as in the library's other
    splits, where every rated pair is an interaction). The catalogue is the partition's items
    less the task's support items: the MeLU partitions are blocks (new users rated only
    existing movies in ``user_cold_state``, existing users only new movies in
    ``item_cold_state``), so the items of another block can never be a query item, and a
    global ranking would be judged on the block structure rather than on taste.
    """
    import scipy.sparse as sp

    if partition not in protocol.tasks:
        raise InvalidInput(f"no partition {partition!r} in the protocol; it has "
                           f"{', '.join(protocol.tasks)}")
    t = protocol.tasks[partition]
    rows_s = np.repeat(np.arange(t.n_tasks), np.diff(t.support_indptr))
    support = sp.csr_matrix((t.support_ratings.astype(np.float32), (rows_s, t.support_items)),
                            shape=(t.n_tasks, protocol.n_items))
    rows_q = np.repeat(np.arange(t.n_tasks), t.query_size)
    query = sp.csr_matrix((np.ones(rows_q.size, np.float32), (rows_q, t.query_items)),
                          shape=(t.n_tasks, protocol.n_items))
    candidates = np.zeros(protocol.n_items, dtype=bool)
    candidates[protocol.train_items[protocol.train_partitions == partition]] = True
    candidates[t.query_items] = True
    return RankingTasks(partition, t.users.copy(), support, query, candidates)
