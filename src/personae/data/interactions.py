"""Training views of the event log: a user × item sparse matrix, id maps and time-ordered sequences.

Models work in *index space*: user ``u`` is row ``u`` of the matrix, item ``i`` column ``i``.
:class:`Interactions` holds the maps between those indices and the application's ids
(``user_ids[u]``, ``item_ids[i]``), and is built either from a :class:`~personae.Store` or from
in-memory arrays (for tests, notebooks and data that never touched a store).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from personae.store import EventLog, Store

Aggregate = Literal["sum", "max", "last", "count"]
_AGGREGATES = ("sum", "max", "last", "count")


@dataclass(frozen=True, eq=False)
class Sequences:
    """Each user's events in time order, as one flat array with CSR-style offsets.

    User ``u``'s items are ``items[indptr[u]:indptr[u + 1]]``, oldest first; ``ts`` and
    ``weights`` are aligned with ``items``. Events without a time come first, in arrival order.
    """

    indptr: np.ndarray  # int64 (n_users + 1,)
    items: np.ndarray  # int32 (n_events,)
    ts: np.ndarray  # float64 (n_events,), NaN where unknown
    weights: np.ndarray  # float32 (n_events,)

    def __len__(self) -> int:
        return int(self.indptr.shape[0] - 1)

    def __getitem__(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)


@dataclass(frozen=True, eq=False)
class Interactions:
    """A user × item interaction matrix with its id maps (and, on demand, sequences).

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, float32, shape (n_users, n_items)
        Aggregated event weights per (user, item); pairs whose aggregate is not positive are
        left out (a view then a dislike nets out), unless built with ``keep_nonpositive``.
    user_ids, item_ids : numpy arrays of str
        External id of each row / column. Every user and item of the store is present, also
        those without events (new items must be rankable by content models).
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    # event-level arrays, in arrival order, in index space (kept for sequences and splits)
    event_users: np.ndarray = field(repr=False)
    event_items: np.ndarray = field(repr=False)
    event_weights: np.ndarray = field(repr=False)
    event_ts: np.ndarray = field(repr=False)
    event_values: np.ndarray = field(repr=False)
    event_types: np.ndarray = field(repr=False)
    type_names: tuple[str, ...] = ()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_store(
        cls,
        store: Store,
        *,
        weights: Mapping[str, float] | None = None,
        types: Iterable[str] | None = None,
        aggregate: Aggregate = "sum",
        binary: bool = False,
        keep_nonpositive: bool = False,
    ) -> Interactions:
        """Read the whole event log of ``store`` into a training view.

        Parameters
        ----------
        weights : mapping, optional
            Per-type weights overriding the store's (:meth:`Store.event_weights`).
        types : iterable of str, optional
            Keep only these event types (e.g. ``["rating"]``).
        aggregate : {"sum", "max", "last", "count"}, default "sum"
            How several events of one (user, item) combine.
        binary : bool, default False
            Set every kept pair to 1.0.
        keep_nonpositive : bool, default False
            Keep pairs whose aggregate weight is ≤ 0 (negative feedback) in ``matrix``.
        """
        log = store.event_log()
        user_idx, user_ids = store.user_index()
        item_idx, item_ids = store.item_index()
        return cls._from_log(
            log, user_idx, user_ids, item_idx, item_ids, weights=weights, types=types,
            aggregate=aggregate, binary=binary, keep_nonpositive=keep_nonpositive,
        )

    @classmethod
    def _from_log(
        cls,
        log: EventLog,
        user_idx: np.ndarray,
        user_ids: Sequence[str],
        item_idx: np.ndarray,
        item_ids: Sequence[str],
        *,
        weights: Mapping[str, float] | None,
        types: Iterable[str] | None,
        aggregate: Aggregate,
        binary: bool,
        keep_nonpositive: bool,
    ) -> Interactions:
        type_weights = log.type_weights.copy()
        names = list(log.type_names)
        if weights:
            for name, w in weights.items():
                if name in names:
                    type_weights[names.index(name)] = float(w)
        keep = np.ones(len(log), dtype=bool)
        if types is not None:
            wanted = set(types)
            unknown = wanted - set(names)
            if unknown:
                known = sorted(n for n in names if n)
                raise InvalidInput(
                    f"unknown event type(s) {sorted(unknown)}; the store has {known}"
                )
            keep &= np.isin(log.type_idx, [names.index(t) for t in wanted])
        # Store indices are sparse (deleted rows leave gaps): map them to dense positions.
        users = np.searchsorted(user_idx, log.user_idx[keep]).astype(np.int32)
        items = np.searchsorted(item_idx, log.item_idx[keep]).astype(np.int32)
        ev_types = log.type_idx[keep]
        ev_weights = (
            type_weights[ev_types].astype(np.float32) if len(type_weights) else np.zeros(0, "f4")
        )
        return cls.from_arrays(
            users, items, weights=ev_weights, timestamps=log.ts[keep], values=log.value[keep],
            user_ids=np.asarray(user_ids, dtype=object),
            item_ids=np.asarray(item_ids, dtype=object),
            aggregate=aggregate, binary=binary, keep_nonpositive=keep_nonpositive,
            event_types=ev_types, type_names=tuple(names),
        )

    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray | Sequence[int],
        items: np.ndarray | Sequence[int],
        *,
        weights: np.ndarray | Sequence[float] | None = None,
        timestamps: np.ndarray | Sequence[float] | None = None,
        values: np.ndarray | Sequence[float] | None = None,
        user_ids: Sequence[str] | np.ndarray | None = None,
        item_ids: Sequence[str] | np.ndarray | None = None,
        n_users: int | None = None,
        n_items: int | None = None,
        aggregate: Aggregate = "sum",
        binary: bool = False,
        keep_nonpositive: bool = False,
        event_types: np.ndarray | None = None,
        type_names: tuple[str, ...] = (),
    ) -> Interactions:
        """Build a view from index arrays (one entry per event, in arrival order).

        ``users``/``items`` are row/column indices; ids default to ``"0"``, ``"1"``, ….
        ``weights`` default to 1.0, ``timestamps`` and ``values`` to NaN.
        """
        if aggregate not in _AGGREGATES:
            raise InvalidInput(
                f"The 'aggregate' parameter must be one of {_AGGREGATES}. "
                f"Got {aggregate!r} instead."
            )
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        n = u.shape[0]
        if u.ndim != 1 or i.shape != u.shape:
            raise InvalidInput(
                f"users and items must be 1-d arrays of equal length, got {u.shape} and {i.shape}"
            )
        if n and (u.min() < 0 or i.min() < 0):
            raise InvalidInput("user and item indices must be >= 0")
        w = _aligned(weights, n, np.float32, 1.0, "weights")
        ts = _aligned(timestamps, n, np.float64, np.nan, "timestamps")
        vals = _aligned(values, n, np.float64, np.nan, "values")
        if user_ids is None:
            n_users = max(n_users or 0, int(u.max()) + 1 if n else 0)
            user_ids = np.array([str(k) for k in range(n_users)], dtype=object)
        if item_ids is None:
            n_items = max(n_items or 0, int(i.max()) + 1 if n else 0)
            item_ids = np.array([str(k) for k in range(n_items)], dtype=object)
        uid = np.asarray(user_ids, dtype=object)
        iid = np.asarray(item_ids, dtype=object)
        if n and (u.max() >= len(uid) or i.max() >= len(iid)):
            raise InvalidInput(
                f"indices out of range: {len(uid)} user ids and {len(iid)} item ids given, "
                f"largest indices {int(u.max())} and {int(i.max())}"
            )
        matrix = _aggregate(u, i, w, (len(uid), len(iid)), aggregate, binary, keep_nonpositive)
        et = (np.zeros(n, np.int16) if event_types is None
              else np.asarray(event_types, dtype=np.int16))
        return cls(
            matrix=matrix, user_ids=uid, item_ids=iid,
            event_users=u.astype(np.int32), event_items=i.astype(np.int32), event_weights=w,
            event_ts=ts, event_values=vals, event_types=et, type_names=type_names,
        )

    # ------------------------------------------------------------------ shape and ids

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def n_events(self) -> int:
        return int(self.event_users.shape[0])

    @property
    def has_times(self) -> bool:
        """Whether any event has a timestamp (what :meth:`adjacency` orders by)."""
        return bool(self.n_events) and not bool(np.isnan(self.event_ts).all())

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def __repr__(self) -> str:
        return (f"Interactions(n_users={self.n_users}, n_items={self.n_items}, "
                f"nnz={self.nnz}, n_events={self.n_events})")

    def user_index(self, user_id: str) -> int:
        """Row of ``user_id``; :class:`NotFound` if the view has no such user."""
        return _lookup(self._user_pos, user_id, "user_id")

    def item_index(self, item_id: str) -> int:
        """Column of ``item_id``; :class:`NotFound` if the view has no such item."""
        return _lookup(self._item_pos, item_id, "item_id")

    @property
    def _user_pos(self) -> dict[str, int]:
        return _cached_positions(self, "_user_pos_cache", self.user_ids)

    @property
    def _item_pos(self) -> dict[str, int]:
        return _cached_positions(self, "_item_pos_cache", self.item_ids)

    # ------------------------------------------------------------------ derived views

    def sequences(self, *, positive_only: bool = True) -> Sequences:
        """Per-user events in time order (ties and undated events by arrival).

        With ``positive_only`` (default), events whose type weight is ≤ 0 are left out.
        """
        keep = self.event_weights > 0 if positive_only else np.ones(self.n_events, bool)
        u = self.event_users[keep]
        arrival = np.flatnonzero(keep)
        ts = self.event_ts[keep]
        sort_ts = np.where(np.isnan(ts), -np.inf, ts)
        order = np.lexsort((arrival, sort_ts, u))
        counts = np.bincount(u, minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return Sequences(
            indptr=indptr,
            items=self.event_items[keep][order],
            ts=ts[order],
            weights=self.event_weights[keep][order],
        )

    def adjacency(self, window: int) -> sp.csr_matrix:
        """How many users have two items within ``window`` places of each other in time.

        Each user's history is their distinct items in the order of each item's first event
        (:meth:`sequences`; events without a time come first, by arrival), keeping only the
        pairs of :attr:`matrix`. Two items ``d ≤ window`` places apart add 1 to both of their
        cells; a user counts a given two items at most once. The result is symmetric with a
        zero diagonal, float32, shape (n_items, n_items); with ``window`` ≥ the longest history
        it is the co-occurrence count ``XᵀX`` off the diagonal.

        Raises :class:`InvalidInput` when ``window`` is not an int ≥ 1, or when no event has a
        time (there is then no order to read).
        """
        if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
            raise InvalidInput(f"The 'window' parameter must be an int >= 1. Got {window!r} "
                               "instead.")
        if self.n_events and not self.has_times:
            raise InvalidInput("adjacency orders each user's items by time, but no event of this "
                               "view has a timestamp")
        seqs = self.sequences()
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), seqs.lengths())
        items = seqs.items.astype(np.int64)
        keys = users * self.n_items + items
        # each pair once, at its first event; only the matrix's (positive) pairs
        _, first = np.unique(keys, return_index=True)
        first.sort()
        m = self.matrix.tocoo()
        positive = np.sort(m.row.astype(np.int64) * self.n_items + m.col)
        keep = first[np.isin(keys[first], positive, assume_unique=True)]
        users, items = users[keep], items[keep]
        rows, cols = [], []
        for d in range(1, int(window) + 1):
            same = users[:-d] == users[d:]
            if not same.any():
                break
            rows += [items[:-d][same], items[d:][same]]
            cols += [items[d:][same], items[:-d][same]]
        if not rows:
            return sp.csr_matrix((self.n_items, self.n_items), dtype=np.float32)
        r, c = np.concatenate(rows), np.concatenate(cols)
        out = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)),
                            shape=(self.n_items, self.n_items))
        out.sum_duplicates()
        return out

    def ratings(self) -> sp.csr_matrix:
        """The last numeric ``value`` per (user, item) among events that have one (e.g. ratings)."""
        has = ~np.isnan(self.event_values)
        return _aggregate(
            self.event_users[has].astype(np.int64), self.event_items[has].astype(np.int64),
            self.event_values[has].astype(np.float32), self.matrix.shape, "last", False, True,
        )

    def fingerprint(self) -> str:
        """SHA-256 of the matrix and id maps: recorded by models to say what they were fit on."""
        h = hashlib.sha256()
        m = self.matrix
        for arr in (m.indptr, m.indices, m.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        for ids in (self.user_ids, self.item_ids):
            h.update("\x1f".join(map(str, ids)).encode("utf-8"))
        return h.hexdigest()


# ---------------------------------------------------------------------- helpers


def _aligned(values: object, n: int, dtype: type, fill: float, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, fill, dtype=dtype)
    arr: np.ndarray = np.asarray(values, dtype=dtype)
    if arr.shape != (n,):
        raise InvalidInput(f"{name} must have one entry per event ({n}), got shape {arr.shape}")
    return arr


def _aggregate(
    u: np.ndarray, i: np.ndarray, w: np.ndarray, shape: tuple[int, int], how: str,
    binary: bool, keep_nonpositive: bool,
) -> sp.csr_matrix:
    if how == "count":
        w = np.ones_like(w)
    if how in ("sum", "count") or u.size == 0:
        m = sp.csr_matrix((w, (u, i)), shape=shape, dtype=np.float32)
        m.sum_duplicates()
    else:
        # One entry per pair: sort by pair, then take the last (arrival order) or the max.
        key = u.astype(np.int64) * shape[1] + i
        if how == "last":
            order = np.lexsort((np.arange(key.shape[0]), key))
            last = np.r_[key[order][1:] != key[order][:-1], True]
            sel = order[last]
            m = sp.csr_matrix((w[sel], (u[sel], i[sel])), shape=shape, dtype=np.float32)
        else:  # max
            order = np.lexsort((w, key))
            last = np.r_[key[order][1:] != key[order][:-1], True]
            sel = order[last]
            m = sp.csr_matrix((w[sel], (u[sel], i[sel])), shape=shape, dtype=np.float32)
    if not keep_nonpositive:
        m.data[m.data <= 0] = 0
        m.eliminate_zeros()
    if binary:
        m.data[:] = 1.0
    m.sort_indices()
    return m


def _cached_positions(view: Interactions, attr: str, ids: np.ndarray) -> dict[str, int]:
    cached = view.__dict__.get(attr)
    if cached is None:
        cached = {str(k): pos for pos, k in enumerate(ids)}
        object.__setattr__(view, attr, cached)
    return cached


def _lookup(positions: dict[str, int], key: str, name: str) -> int:
    try:
        return positions[key]
    except KeyError:
        raise NotFound(f"unknown {name} {key!r}") from None
