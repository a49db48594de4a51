"""Evaluation splits: the published protocols P1 and P2, a global temporal split, MeLU cold start.

Every split works on *pairs*: one (user, item) per pair with a positive aggregate weight in the
view's matrix (so every interaction is a positive, and a user's repeated events on one item are
one pair). Each split has an index space of its own, the same for its train, test and validation
parts:

- **ascending raw id**: users (and items) are numbered in ascending order of their raw id —
  numeric order when every id is an integer (``"2" < "10"``; equal numbers such as ``"7"`` and
  ``"007"`` then by string), string order otherwise;
- **universe** ``"interacted"`` (default): only users and items with at least one pair, as in a
  ratings file read by another library (ml-100k: 943 × 1,682; MeLU ml-1m: 5,977 × 3,497);
  ``"all"``: every user and item of the view, also those without events.

A pair's **time** is the time of its first event (NaN when none of its events has one): a
re-consumed item was known to the user from its first interaction on. Its **rating** is the last
event value, where events have values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput

if TYPE_CHECKING:
    from personae.data.interactions import Interactions
    from personae.store import Store

Universe = Literal["interacted", "all"]

#: MeLU partition behind each cold-start target, and which side of it is cold.
MELU_TARGETS: dict[str, tuple[str, bool, bool]] = {
    # target: (partition, users cold, items cold)
    "new_users": ("user_cold_state", True, False),
    "new_items": ("item_cold_state", False, True),
    "new_users_items": ("user_and_item_cold_state", True, True),
}

_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test split in one index space (rows: ``user_ids``, columns: ``item_ids``).

    Attributes
    ----------
    name : str
        Protocol: ``"p1"``, ``"p2"``, ``"temporal"`` or ``"melu-<target>"``.
    train : csr_matrix, float32, shape (n_users, n_items)
        1.0 per training pair. What a model is fit on.
    test : csr_matrix, float32, same shape
        1.0 per held-out pair (the positives to find).
    user_ids, item_ids : ndarray of str
        Raw id of each row / column, ascending (see the module docstring).
    params : dict
        Everything that defines the split (seed, fraction, cutoff, …), for reports.
    validation : Split or None
        The split to tune on: its ``train`` is fit on, its ``test`` scored; never the test set.
    ratings : csr_matrix or None
        Rating of every pair (train and test) whose events carry a value; for RMSE/MAE.
    candidates : bool ndarray (n_items,) or None
        Items that may be ranked (None: all). Set by item-cold-start splits.
    times : csr_matrix (float64) or None
        Time of every pair's first event (train and test), where it has one; stored entries
        are the dated pairs (a time of 0 is an explicit entry). :meth:`train_view` passes them
        on, for models that read the order of events (``uses_event_order``).
    """

    name: str
    train: sp.csr_matrix
    test: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    validation: Split | None = None
    ratings: sp.csr_matrix | None = None
    candidates: np.ndarray | None = None
    times: sp.csr_matrix | None = None

    @property
    def n_users(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])

    @property
    def has_times(self) -> bool:
        """Whether any pair has a time (:attr:`times`), so that :meth:`train_view` can order
        each user's events."""
        return self.times is not None and self.times.nnz > 0

    @property
    def exclude(self) -> sp.csr_matrix:
        """Items never ranked for a user: the user's training items.

        For P2 the training set is train + validation, so this is "everything the user has
        interacted with except the test item".
        """
        return self.train

    def test_users(self) -> np.ndarray:
        """Rows with at least one test item (int64, ascending): the users evaluated."""
        return np.flatnonzero(np.diff(self.test.indptr) > 0).astype(np.int64)

    def train_view(self) -> Interactions:
        """The training pairs as an :class:`Interactions` in this split's index space: one event
        per pair, at the pair's time (:attr:`times`; NaN where it has none), in (user, time,
        item) arrival order."""
        from personae.data.interactions import Interactions

        coo = self.train.tocoo()
        ts = np.full(coo.nnz, np.nan)
        if self.times is not None:
            t = self.times.tocoo()
            n = self.n_items
            keys = t.row.astype(np.int64) * n + t.col
            order = np.argsort(keys, kind="stable")
            pos = _locate(keys[order], coo.row, coo.col.astype(np.int64), n)
            found = pos >= 0
            ts[found] = t.data[order][pos[found]]
        arrival = np.lexsort((coo.col, np.where(np.isnan(ts), -np.inf, ts), coo.row))
        return Interactions.from_arrays(
            coo.row[arrival], coo.col[arrival], weights=coo.data[arrival],
            timestamps=ts[arrival], user_ids=self.user_ids, item_ids=self.item_ids,
            n_users=self.n_users, n_items=self.n_items,
        )

    def summary(self) -> dict[str, Any]:
        """Sizes, for reports: users, items, train and test pairs, users evaluated."""
        out = {
            "name": self.name, "n_users": self.n_users, "n_items": self.n_items,
            "n_train": int(self.train.nnz), "n_test": int(self.test.nnz),
            "n_test_users": int(self.test_users().size), "params": dict(self.params),
        }
        if self.validation is not None:
            out["n_validation"] = int(self.validation.test.nnz)
        return out


# ---------------------------------------------------------------------- the protocols


def random_holdout(
    view: Interactions,
    *,
    test_fraction: float = 0.2,
    seed: int = 2026,
    validation_seed: int | None = 2027,
    universe: Universe = "interacted",
) -> Split:
    """P1: per-user random holdout.

    Exactly: one ``np.random.default_rng(seed)``; users in ascending raw id; a user's ``n_u``
    items in ascending raw item id are permuted with ``rng.permutation(n_u)`` and the first
    ``max(1, floor(test_fraction * n_u))`` go to test, the rest to train (a user with one pair
    has it in test and none in train). Users with no pair (``universe="all"``) draw nothing.
    The validation split is the same procedure on the training pairs with ``validation_seed``
    (None: no validation split); users left with no training pair are skipped there.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise InvalidInput(
            f"The 'test_fraction' parameter must be a float in [0, 1). Got {test_fraction!r} "
            "instead."
        )
    t = _pairs(view, universe)
    in_test = _holdout(t.users, t.n_users, test_fraction, seed)
    params = {"test_fraction": test_fraction, "seed": seed, "validation_seed": validation_seed,
              "universe": universe}
    validation = None
    if validation_seed is not None:
        tu, ti = t.users[~in_test], t.items[~in_test]
        in_val = _holdout(tu, t.n_users, test_fraction, validation_seed)
        validation = t.split("p1-validation", tu[~in_val], ti[~in_val], tu[in_val], ti[in_val],
                             {**params, "seed": validation_seed})
    return t.split("p1", t.users[~in_test], t.items[~in_test], t.users[in_test],
                   t.items[in_test], params, validation)


def validation_folds(split: Split, n: int, *, fraction: float = 0.2,
                     seed: int | None = None) -> list[Split]:
    """``n`` validation splits of ``split``'s training pairs, for choosing what one split
    cannot (a blend's weights): P1's draw (:func:`random_holdout`) on :attr:`Split.train`
    with the seeds ``seed, seed + 1, …`` (default: the split's ``validation_seed``, else its
    ``seed`` + 1), each holding out ``fraction`` of every user's training pairs.

    Every fold keeps ``split``'s index space (users and items without a training pair stay as
    empty rows and columns) and its pairs' times, and never holds a test pair. With P1's
    fraction (0.2, the default) and the split's validation seed, the first fold is P1's
    :attr:`Split.validation` (the folds' times are those of their own pairs only).

    A smaller fraction leaves each fold's training data closer to the final fit's. On ml-100k
    P1 that did not choose better blend weights: 8 folds of 0.1 against 4 of 0.2 (as many
    held-out pairs) moved test NDCG@10 by -0.0023 to +0.0030 with the fold draws
    (``bench/results/models-blend-tries.md``).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidInput(f"The 'n' parameter must be an int >= 1. Got {n!r} instead.")
    if not 0.0 < fraction < 1.0:
        raise InvalidInput(
            f"The 'fraction' parameter must be a float in (0, 1). Got {fraction!r} instead.")
    if seed is None:
        own = split.params.get("validation_seed")
        seed = int(own) if own is not None else int(split.params.get("seed", 2026)) + 1
    view = split.train_view()
    folds = []
    for j in range(n):
        fold = random_holdout(view, test_fraction=fraction, seed=int(seed) + j,
                              validation_seed=None, universe="all")
        folds.append(replace(fold, name=f"{split.name}-validation",
                             params={**fold.params, "of": split.name}))
    return folds


def leave_last_out(view: Interactions, *, universe: Universe = "interacted") -> Split:
    """P2: per user, the last pair is the test item and the second last the validation item.

    A user's pairs are sorted by (time, raw item id); undated pairs sort first. With ``n_u``
    pairs:

    - ``n_u >= 3``: last → test, second last → validation, the rest → validation train;
    - ``n_u == 2``: last → test, the other → train; no validation item;
    - ``n_u == 1``: the pair → train; the user is not evaluated.

    The returned split is the *refit* split: ``train`` = validation train + validation items, so
    a model tuned on :attr:`Split.validation` is refit on ``train`` and ranks the test item
    against every item the user has not interacted with (:attr:`Split.exclude`). On the
    validation split the test item is not excluded (the model must not know it).
    """
    t = _pairs(view, universe)
    # Within a user, pairs in (time, raw item id) order; undated (NaN) first.
    ts = np.where(np.isnan(t.ts), -np.inf, t.ts)
    order = np.lexsort((t.items, ts, t.users))
    users, items = t.users[order], t.items[order]
    counts = np.bincount(users, minlength=t.n_users)
    end = np.cumsum(counts)  # one past each user's last pair
    rank_from_end = end[users] - np.arange(users.size)  # 1 for the last pair
    n_u = counts[users]
    is_test = (rank_from_end == 1) & (n_u >= 2)
    is_val = (rank_from_end == 2) & (n_u >= 3)
    rest = ~is_test & ~is_val
    params = {"universe": universe, "order": "time, then raw item id; undated first"}
    validation = t.split("p2-validation", users[rest], items[rest], users[is_val],
                         items[is_val], params)
    train = rest | is_val
    return t.split("p2", users[train], items[train], users[is_test], items[is_test], params,
                   validation)


def temporal_split(
    view: Interactions,
    *,
    cutoff: float | None = None,
    quantile: float = 0.8,
    known_users_only: bool = True,
    known_items_only: bool = True,
    validation: bool = True,
    universe: Universe = "interacted",
) -> Split:
    """A global temporal split: pairs before time ``T`` train, pairs at or after ``T`` test.

    Parameters
    ----------
    cutoff : float, optional
        ``T`` in the events' time unit (epoch seconds). Default: the ``quantile`` of the dated
        pairs' times (``np.quantile(..., method="lower")``, so ``T`` is a real pair time).
    known_users_only : bool, default True
        Keep in test only users with at least one training pair.
    known_items_only : bool, default True
        Keep in test only items with at least one training pair.
    validation : bool, default True
        Add a validation split: the same procedure on the training pairs (same ``quantile``,
        or, with an explicit ``cutoff``, the 80th percentile of the training times).

    Undated pairs go to train. Test pairs dropped by the two restrictions are in neither part
    (``params["n_dropped"]`` counts them), so train ∪ test is then smaller than all pairs.
    """
    t = _pairs(view, universe)
    return _temporal(t, t.users, t.items, t.ts, cutoff, quantile, known_users_only,
                     known_items_only, validation, universe)


def _temporal(t: _PairTable, users: np.ndarray, items: np.ndarray, ts: np.ndarray,
              cutoff: float | None, quantile: float, known_users: bool, known_items: bool,
              validation: bool, universe: str, name: str = "temporal") -> Split:
    if not 0.0 < quantile < 1.0:
        raise InvalidInput(
            f"The 'quantile' parameter must be a float in (0, 1). Got {quantile!r} instead."
        )
    dated = ~np.isnan(ts)
    if cutoff is None:
        if not dated.any():
            raise InvalidInput("a temporal split needs timestamps, and no pair has one; "
                               "use random_holdout (P1) instead")
        cutoff = float(np.quantile(ts[dated], quantile, method="lower"))
    after = dated & (ts >= cutoff)
    keep = after.copy()
    if known_users:
        keep &= np.isin(users, users[~after])
    if known_items:
        keep &= np.isin(items, items[~after])
    params = {"cutoff": cutoff, "quantile": quantile, "known_users_only": known_users,
              "known_items_only": known_items, "universe": universe,
              "n_dropped": int((after & ~keep).sum())}
    val = None
    if validation:
        val = _temporal(t, users[~after], items[~after], ts[~after], None, quantile, known_users,
                        known_items, False, universe, name + "-validation")
    return t.split(name, users[~after], items[~after], users[keep], items[keep], params, val)


def melu_partitions(store: Store) -> np.ndarray:
    """The MeLU partition of every event of ``store``, in arrival order (``""`` when none).

    Aligned with ``Interactions.from_store(store)`` built without a ``types`` filter.
    """
    from personae.data.importers.melu import PARTITION_KEY

    return np.array([str(c.get(PARTITION_KEY, "")) for c in store.event_contexts()],
                    dtype=object)


def melu_coldstart(
    view: Interactions,
    partitions: Sequence[str] | np.ndarray,
    target: str,
    *,
    universe: Universe = "interacted",
) -> Split:
    """A cold-start split of the MeLU ml-1m partitions: new users, new items, or both.

    Parameters
    ----------
    view : Interactions
        Built from a store filled by :func:`~personae.data.importers.import_melu`, without a
        ``types`` filter (so that events line up with ``partitions``).
    partitions : array of str, one per event of ``view``
        From :func:`melu_partitions`.
    target : {"new_users", "new_items", "new_users_items"}
        Or the partition's own name (``"user_cold_state"``, ``"item_cold_state"``,
        ``"user_and_item_cold_state"``).

    What the model may see
    ----------------------
    Test = every pair of the target partition. Train = every pair of the other partitions,
    *minus* every pair of a test user when users are cold (new users, both) and every pair on
    a test item when items are cold (new items, both): a cold user or item has no training pair
    at all. On the published folder the three partitions are blocks — new users × old movies
    (``user_cold_state``), warm users × new movies (``item_cold_state``), new users × new movies
    (``user_and_item_cold_state``; 675 of its 682 movies are also in ``item_cold_state``) — and
    MeLU's warm partition is not shipped, so:

    - ``new_users``: train = ``item_cold_state`` (warm users × new movies); the test movies never
      occur in train either;
    - ``new_items``: train = ``user_cold_state`` + the 7 ``user_and_item_cold_state`` movies not
      in ``item_cold_state``; the test users never occur in train either;
    - ``new_users_items``: train = ``item_cold_state`` minus its 675 shared movies.

    Item-cold targets rank only the target partition's items (``candidates``): which new movie
    will the user like. There is no validation split. MeLU's own support/query protocol (a few
    of each test user's ratings shown to the model) is a separate split.
    """
    aliases = {v[0]: k for k, v in MELU_TARGETS.items()}
    key = aliases.get(target, target)
    if key not in MELU_TARGETS:
        raise InvalidInput(
            f"unknown MeLU target {target!r}; expected one of "
            f"{', '.join([*MELU_TARGETS, *aliases])}"
        )
    partition, users_cold, items_cold = MELU_TARGETS[key]
    parts = np.asarray(partitions, dtype=object)
    if parts.shape != (view.n_events,):
        raise InvalidInput(
            f"partitions must have one entry per event of the view ({view.n_events}), got "
            f"{parts.shape[0]}; build the view with Interactions.from_store(store) and no types "
            "filter"
        )
    if not (parts == partition).any():
        raise InvalidInput(
            f"no event of the view is in the MeLU partition {partition!r}; was the store "
            "filled with import_melu?"
        )
    t = _pairs(view, universe)
    in_target = t.any_event(view, parts == partition)
    tu, ti = t.users[in_target], t.items[in_target]
    train = ~in_target
    if users_cold:
        train &= ~np.isin(t.users, tu)
    if items_cold:
        train &= ~np.isin(t.items, ti)
    candidates = None
    if items_cold:
        candidates = np.zeros(t.n_items, dtype=bool)
        candidates[ti] = True
    params = {"target": key, "partition": partition, "users_cold": users_cold,
              "items_cold": items_cold, "universe": universe}
    return t.split(f"melu-{key}", t.users[train], t.items[train], tu, ti, params,
                   candidates=candidates)


# ---------------------------------------------------------------------- helpers


def id_order(ids: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Positions that sort ``ids`` in ascending raw-id order (numeric when all are integers)."""
    s = [str(x) for x in ids]
    if s and all(_INTEGER.fullmatch(x) for x in s):
        return np.array(sorted(range(len(s)), key=lambda k: (int(s[k]), s[k])), dtype=np.int64)
    return np.array(sorted(range(len(s)), key=s.__getitem__), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class _PairTable:
    """Every pair of a view in a split's index space, sorted by (user, item)."""

    users: np.ndarray  # int64 (n_pairs,)
    items: np.ndarray  # int64 (n_pairs,)
    ts: np.ndarray  # float64, time of the pair's first event (NaN: undated)
    rating: np.ndarray  # float64, last event value (NaN: none)
    user_ids: np.ndarray
    item_ids: np.ndarray
    # view index → split index (-1: not in the universe), to map events
    user_map: np.ndarray
    item_map: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    def _matrix(self, users: np.ndarray, items: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix((np.ones(users.size, np.float32), (users, items)),
                          shape=(self.n_users, self.n_items))
        m.sort_indices()
        return m

    def split(self, name: str, train_u: np.ndarray, train_i: np.ndarray, test_u: np.ndarray,
              test_i: np.ndarray, params: dict[str, Any], validation: Split | None = None,
              candidates: np.ndarray | None = None) -> Split:
        has = ~np.isnan(self.rating)
        ratings = None
        if has.any():
            ratings = sp.csr_matrix(
                (self.rating[has].astype(np.float32), (self.users[has], self.items[has])),
                shape=(self.n_users, self.n_items))
        dated = ~np.isnan(self.ts)
        times = None
        if dated.any():
            times = sp.csr_matrix((self.ts[dated], (self.users[dated], self.items[dated])),
                                  shape=(self.n_users, self.n_items))
        return Split(name, self._matrix(train_u, train_i), self._matrix(test_u, test_i),
                     self.user_ids, self.item_ids, params, validation, ratings, candidates,
                     times)

    def any_event(self, view: Interactions, event_mask: np.ndarray) -> np.ndarray:
        """Pairs with at least one event where ``event_mask`` holds."""
        pos = self._event_pairs(view)
        hit = np.zeros(self.users.size, dtype=bool)
        ok = (pos >= 0) & event_mask
        hit[pos[ok]] = True
        return hit

    def _event_pairs(self, view: Interactions) -> np.ndarray:
        """Each event's pair position (-1: the event's pair is not a positive pair)."""
        return _locate(self.users * self.n_items + self.items,
                       self.user_map[view.event_users], self.item_map[view.event_items],
                       self.n_items)


def _locate(pair_keys: np.ndarray, u: np.ndarray, i: np.ndarray, n_items: int) -> np.ndarray:
    keys = u.astype(np.int64) * n_items + i
    pos = np.searchsorted(pair_keys, keys)
    pos = np.minimum(pos, max(pair_keys.size - 1, 0))
    found = (u >= 0) & (i >= 0) & (pair_keys.size > 0)
    found &= pair_keys[pos] == keys if pair_keys.size else found
    return np.where(found, pos, -1)


def _pairs(view: Interactions, universe: Universe) -> _PairTable:
    if universe not in ("interacted", "all"):
        raise InvalidInput(
            f"The 'universe' parameter must be 'interacted' or 'all'. Got {universe!r} instead."
        )
    coo = view.matrix.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    if universe == "interacted":
        kept_u, kept_i = np.unique(rows), np.unique(cols)
    else:
        kept_u, kept_i = np.arange(view.n_users), np.arange(view.n_items)
    user_ids = view.user_ids[kept_u]
    item_ids = view.item_ids[kept_i]
    uo, io = id_order(user_ids), id_order(item_ids)
    user_map = np.full(view.n_users, -1, dtype=np.int64)
    user_map[kept_u[uo]] = np.arange(uo.size)
    item_map = np.full(view.n_items, -1, dtype=np.int64)
    item_map[kept_i[io]] = np.arange(io.size)
    users, items = user_map[rows], item_map[cols]
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    n_items = io.size
    keys = users * n_items + items

    # first event time and last value per pair
    pos = _locate(keys, user_map[view.event_users], item_map[view.event_items], n_items)
    ok = pos >= 0
    ev_ts = np.where(np.isnan(view.event_ts), np.inf, view.event_ts)
    first = np.full(users.size, np.inf)
    np.minimum.at(first, pos[ok], ev_ts[ok])
    first[np.isinf(first)] = np.nan
    rating = np.full(users.size, np.nan)
    has_val = ok & ~np.isnan(view.event_values)
    rating[pos[has_val]] = view.event_values[has_val]  # arrival order: the last one wins
    return _PairTable(users, items, first, rating, user_ids[uo], item_ids[io], user_map,
                      item_map)


def _holdout(users: np.ndarray, n_users: int, fraction: float, seed: int) -> np.ndarray:
    """P1's draw: which pairs (sorted by user, then raw item id) go to test."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(users, minlength=n_users)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    out = np.zeros(users.size, dtype=bool)
    for u in range(n_users):
        n = int(counts[u])
        if n == 0:
            continue
        perm = rng.permutation(n)
        out[starts[u] + perm[: max(1, math.floor(fraction * n))]] = True
    return out
