"""Side features in index space, aligned with an :class:`~personae.data.interactions.Interactions`
view (or a split's index space): what the two-tower model reads besides the interactions.

- **item features**: categories (multi-hot), categorical attributes (one code per field),
  numeric attributes (standardised), and an optional text-embedding matrix passed in
  (``personae.text`` builds those);
- **user features**: categorical codes from user attributes (demographics; numeric attributes
  such as age are binned with :func:`personae.data.features.bin_label`); the fields,
  vocabularies and bin edges are kept, so that a user who was not in the view (signed up after
  training) is encoded the same way from their attributes (:meth:`SideFeatures.encode_user`);
- **event context features**: per event, time buckets (:func:`personae.data.features.time_buckets`)
  and context keys (device, …), one code per field.

Codes are int64 with ``-1`` for unknown; each field has a vocabulary (a tuple of names) so a
request's context can be encoded the same way at serving time (:meth:`SideFeatures.encode_context`).

Also here: :func:`split_interactions`, a split's training pairs as an ``Interactions`` *with
times*, so sequence models see the order that the split itself used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from personae.data.features import TIME_BUCKETS, bin_label, encode, time_buckets
from personae.errors import InvalidInput

if TYPE_CHECKING:
    from personae.data.interactions import Interactions
    from personae.evaluate.splits import Split
    from personae.store import Store

#: Context fields taken from an event's or a request's time (see ``time_buckets``).
DEFAULT_TIME_FIELDS = ("daypart", "weekpart")


@dataclass(frozen=True, eq=False)
class SideFeatures:
    """Side features of one index space (``n_users`` rows, ``n_items`` columns).

    Attributes
    ----------
    item_categories : csr_matrix float32 (n_items, n_categories)
        Multi-hot categories; ``category_names`` names the columns.
    item_codes : int64 (n_items, n_item_fields)
        One code per categorical item attribute (-1 unknown); ``item_vocab[f]`` names the codes.
    item_numeric : float32 (n_items, n_numeric)
        Standardised numeric attributes (0 where missing).
    item_text : float32 (n_items, d) or None
        A text embedding per item (rows of items without text: zeros).
    user_codes : int64 (n_users, n_user_fields)
        One code per user attribute (-1 unknown); ``user_vocab[f]`` names the codes.
    user_bins : mapping field → ascending bin edges
        The numeric user fields and the edges their values were binned at
        (:func:`personae.data.features.bin_label`); the codes name the bins' labels.
    event_codes : int64 (n_events, n_context_fields) or None
        Per event of the view (arrival order), time buckets then context keys.
    """

    n_users: int
    n_items: int
    item_categories: sp.csr_matrix
    category_names: tuple[str, ...] = ()
    item_codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    item_fields: tuple[str, ...] = ()
    item_vocab: tuple[tuple[str, ...], ...] = ()
    item_numeric: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    numeric_fields: tuple[str, ...] = ()
    item_text: np.ndarray | None = None
    user_codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    user_fields: tuple[str, ...] = ()
    user_vocab: tuple[tuple[str, ...], ...] = ()
    user_bins: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    event_codes: np.ndarray | None = None
    context_fields: tuple[str, ...] = ()
    context_vocab: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.item_categories.shape[0] != self.n_items:
            raise InvalidInput(f"item_categories must have {self.n_items} rows, got "
                               f"{self.item_categories.shape[0]}")
        for name in ("item_codes", "item_numeric"):
            arr = getattr(self, name)
            if arr.size and arr.shape[0] != self.n_items:
                raise InvalidInput(f"{name} must have {self.n_items} rows, got {arr.shape[0]}")
        if self.item_text is not None and (self.item_text.ndim != 2
                                           or self.item_text.shape[0] != self.n_items):
            raise InvalidInput(f"item_text must be a ({self.n_items}, d) matrix, got shape "
                               f"{self.item_text.shape}")
        if self.user_codes.size and self.user_codes.shape[0] != self.n_users:
            raise InvalidInput(f"user_codes must have {self.n_users} rows, got "
                               f"{self.user_codes.shape[0]}")
        stray = sorted(set(self.user_bins) - set(self.user_fields))
        if stray:
            raise InvalidInput(f"user_bins names {stray[0]!r}, which is not a user field "
                               f"(user_fields: {list(self.user_fields)})")

    # ------------------------------------------------------------------ construction

    @classmethod
    def empty(cls, n_users: int, n_items: int) -> SideFeatures:
        """No side information at all (the models then use ids and history only)."""
        return cls(n_users, n_items, sp.csr_matrix((n_items, 0), dtype=np.float32),
                   item_codes=np.zeros((n_items, 0), np.int64),
                   item_numeric=np.zeros((n_items, 0), np.float32),
                   user_codes=np.zeros((n_users, 0), np.int64))

    @classmethod
    def from_records(
        cls,
        *,
        user_ids: Sequence[str] | np.ndarray,
        item_ids: Sequence[str] | np.ndarray,
        items: Mapping[str, Any] | None = None,
        users: Mapping[str, Any] | None = None,
        item_attributes: Sequence[str] = (),
        numeric_attributes: Sequence[str] = (),
        user_attributes: Sequence[str] = (),
        user_bins: Mapping[str, Sequence[float]] | None = None,
        item_text: np.ndarray | None = None,
    ) -> SideFeatures:
        """Features for the index space ``user_ids`` × ``item_ids`` from item/user records.

        Parameters
        ----------
        items, users : mapping id → record
            Records with ``categories``/``attributes`` (:class:`personae.store.records.Item`,
            :class:`~personae.store.records.User`) or plain dicts with those keys.
        item_attributes : names of categorical item attributes (one code each).
        numeric_attributes : names of numeric item attributes (standardised; 0 when missing).
        user_attributes : names of user attributes (e.g. ``"gender"``, ``"age"``).
        user_bins : attribute → ascending bin edges, for numeric user attributes
            (``{"age": [18, 25, 35, 45, 50, 56]}``); kept (``user_bins``) for
            :meth:`encode_user`. Edges of attributes not in ``user_attributes`` are ignored.
        item_text : float (n_items, d), optional
            Text embeddings, rows aligned with ``item_ids``.
        """
        uids, iids = [str(u) for u in user_ids], [str(i) for i in item_ids]
        items = items or {}
        users = users or {}
        cats_of = [list(_get(items.get(i), "categories") or []) for i in iids]
        cat_names = tuple(sorted({c for cs in cats_of for c in cs}))
        cpos = {c: k for k, c in enumerate(cat_names)}
        rows = np.repeat(np.arange(len(iids)), [len(cs) for cs in cats_of])
        cols = np.array([cpos[c] for cs in cats_of for c in cs], dtype=np.int64)
        cats = sp.csr_matrix((np.ones(cols.size, np.float32), (rows, cols)),
                             shape=(len(iids), len(cat_names)))
        codes, vocab = [], []
        for attr in item_attributes:
            c, v = encode(_attr(items.get(i), attr) for i in iids)
            codes.append(c)
            vocab.append(v)
        numeric = np.zeros((len(iids), len(numeric_attributes)), np.float32)
        for j, attr in enumerate(numeric_attributes):
            numeric[:, j] = _standardise([_attr(items.get(i), attr) for i in iids])
        ucodes, uvocab = [], []
        bins = {attr: tuple(float(e) for e in edges) for attr, edges in (user_bins or {}).items()
                if attr in user_attributes}
        for attr in user_attributes:
            vals = [_attr(users.get(u), attr) for u in uids]
            if attr in bins:
                vals = [bin_label(v, bins[attr]) for v in vals]
            c, v = encode(vals)
            ucodes.append(c)
            uvocab.append(v)
        text = None if item_text is None else np.asarray(item_text, dtype=np.float32)
        return cls(
            len(uids), len(iids), cats, cat_names,
            item_codes=_stack(codes, len(iids)), item_fields=tuple(item_attributes),
            item_vocab=tuple(vocab), item_numeric=numeric,
            numeric_fields=tuple(numeric_attributes), item_text=text,
            user_codes=_stack(ucodes, len(uids)), user_fields=tuple(user_attributes),
            user_vocab=tuple(uvocab), user_bins=bins,
        )

    @classmethod
    def from_store(
        cls,
        store: Store,
        view: Interactions,
        *,
        item_attributes: Sequence[str] = (),
        numeric_attributes: Sequence[str] = (),
        user_attributes: Sequence[str] = (),
        user_bins: Mapping[str, Sequence[float]] | None = None,
        item_text: np.ndarray | None = None,
        time_fields: Sequence[str] = DEFAULT_TIME_FIELDS,
        context_keys: Sequence[str] = (),
    ) -> SideFeatures:
        """:meth:`from_records` over the store's items and users, aligned with ``view``, plus
        each event's context codes (:meth:`with_event_context`)."""
        items = {it.item_id: it for it in store.iter_items()}
        users = {u.user_id: u for u in store.iter_users()}
        side = cls.from_records(
            user_ids=view.user_ids, item_ids=view.item_ids, items=items, users=users,
            item_attributes=item_attributes, numeric_attributes=numeric_attributes,
            user_attributes=user_attributes, user_bins=user_bins, item_text=item_text)
        contexts = store.event_contexts() if context_keys else None
        return side.with_event_context(view, contexts, time_fields=time_fields,
                                       context_keys=context_keys)

    @classmethod
    def discover(
        cls,
        store: Store,
        view: Interactions,
        *,
        item_text: np.ndarray | None = None,
        max_codes: int = 1000,
        max_context_codes: int = 100,
        min_share: float = 0.05,
        time_fields: Sequence[str] = DEFAULT_TIME_FIELDS,
    ) -> SideFeatures:
        """:meth:`from_store` with the fields found in the data, for training jobs that have no
        schema to go by (the engine's two-tower versions).

        - item attributes: scalar text/bool values on at least ``min_share`` of the items with
          2 to ``max_codes`` distinct values become codes; numbers become numeric features;
          lists and longer vocabularies (titles, free text) are left out;
        - user attributes: the same rule; numbers are binned at their quintiles over the
          view's users (the edges are kept in ``user_bins``, for :meth:`encode_user`);
        - context keys: scalar keys on at least 1 % of the events with 2 to
          ``max_context_codes`` distinct values, besides the time buckets ``time_fields``.
        """
        items = {it.item_id: it for it in store.iter_items()}
        users = {u.user_id: u for u in store.iter_users()}
        iattrs = [_get(items.get(str(i)), "attributes") or {} for i in view.item_ids]
        uattrs = [_get(users.get(str(u)), "attributes") or {} for u in view.user_ids]
        item_cat, item_num = _fields(iattrs, max_codes, min_share)
        user_cat, user_num = _fields(uattrs, max_codes, min_share)
        bins = {}
        for key in user_num:
            x = np.array([_float(a.get(key)) for a in uattrs])
            edges = np.unique(np.nanquantile(x, [0.2, 0.4, 0.6, 0.8]))
            bins[key] = [float(e) for e in edges]
        side = cls.from_records(
            user_ids=view.user_ids, item_ids=view.item_ids, items=items, users=users,
            item_attributes=item_cat, numeric_attributes=item_num,
            user_attributes=sorted(user_cat + user_num), user_bins=bins, item_text=item_text)
        contexts = store.event_contexts()
        keys: list[str] = []
        if len(contexts) == view.n_events:
            keys, _ = _fields(contexts, max_context_codes, 0.01, numbers=False)
        return side.with_event_context(view, contexts if keys else None,
                                       time_fields=time_fields, context_keys=keys)

    def with_event_context(
        self,
        view: Interactions,
        contexts: Sequence[Mapping[str, Any]] | None = None,
        *,
        time_fields: Sequence[str] = DEFAULT_TIME_FIELDS,
        context_keys: Sequence[str] = (),
    ) -> SideFeatures:
        """A copy with per-event context codes: ``time_fields`` from the events' times, then
        ``context_keys`` from ``contexts`` (one mapping per event of ``view``)."""
        cols, fields, vocab = [], [], []
        for kind in time_fields:
            if kind not in TIME_BUCKETS:
                raise InvalidInput(f"time_fields must be among {TIME_BUCKETS}, got {kind!r}")
            c, v = time_buckets(view.event_ts, kind)
            cols.append(c)
            fields.append(kind)
            vocab.append(v)
        if context_keys:
            if contexts is None or len(contexts) != view.n_events:
                raise InvalidInput(
                    f"contexts must hold one mapping per event of the view ({view.n_events}), "
                    f"got {None if contexts is None else len(contexts)}")
            for key in context_keys:
                c, v = encode(ctx.get(key) for ctx in contexts)
                cols.append(c)
                fields.append(key)
                vocab.append(v)
        return replace(self, event_codes=_stack(cols, view.n_events),
                       context_fields=tuple(fields), context_vocab=tuple(vocab))

    # ------------------------------------------------------------------ use

    def align(self, user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray,
              *, own_user_ids: Sequence[str] | np.ndarray,
              own_item_ids: Sequence[str] | np.ndarray) -> SideFeatures:
        """The same features re-indexed to another index space (e.g. a split's), by id.

        ``own_*_ids`` are this object's ids (the view it was built for). Ids unknown here get
        empty features. Event codes are dropped (events belong to a view, not an index space).
        """
        def rows(new: Sequence[str] | np.ndarray, own: Sequence[str] | np.ndarray) -> np.ndarray:
            pos = {str(k): n for n, k in enumerate(own)}
            return np.array([pos.get(str(k), -1) for k in new], dtype=np.int64)

        ri, ru = rows(item_ids, own_item_ids), rows(user_ids, own_user_ids)

        def take(arr: np.ndarray, r: np.ndarray, fill: float) -> np.ndarray:
            out = np.full((r.size, arr.shape[1]), fill, dtype=arr.dtype)
            ok = r >= 0
            out[ok] = arr[r[ok]]
            return out

        ok = ri >= 0
        sel = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (np.arange(ri.size)[ok], ri[ok])),
                            shape=(ri.size, self.n_items))
        return replace(
            self, n_users=ru.size, n_items=ri.size,
            item_categories=sp.csr_matrix(sel @ self.item_categories, dtype=np.float32),
            item_codes=take(self.item_codes, ri, -1), item_numeric=take(self.item_numeric, ri, 0),
            item_text=None if self.item_text is None else take(self.item_text, ri, 0),
            user_codes=take(self.user_codes, ru, -1), event_codes=None,
        )

    def encode_context(self, context: Mapping[str, Any] | None) -> np.ndarray:
        """A request's context as codes (int64 (n_context_fields,), -1 unknown).

        Time fields read ``context["ts"]`` (epoch seconds; absent: -1); keys read
        ``context[key]``.
        """
        ctx = context or {}
        out = np.full(len(self.context_fields), -1, dtype=np.int64)
        for f, (name, vocab) in enumerate(zip(self.context_fields, self.context_vocab,
                                              strict=True)):
            if name in TIME_BUCKETS:
                ts = ctx.get("ts")
                if ts is not None:
                    out[f] = int(time_buckets([float(ts)], name)[0][0])
            elif ctx.get(name) is not None:
                out[f] = vocab.index(str(ctx[name])) if str(ctx[name]) in vocab else -1
        return out

    def encode_user(self, attributes: Mapping[str, Any] | None) -> np.ndarray:
        """A user's attributes as codes, as a user of the view with the same attributes got
        them (:func:`encode_user_attributes`): int64 (n_user_fields,), -1 where the attribute
        is missing or its value (or bin) was not seen in the view.

        For users who are not in the view: signed up after training, or scored by history.
        """
        return encode_user_attributes(attributes, self.user_fields, self.user_vocab,
                                      self.user_bins)


def encode_user_attributes(attributes: Mapping[str, Any] | None, fields: Sequence[str],
                           vocab: Sequence[Sequence[str]],
                           bins: Mapping[str, Sequence[float]] | None = None) -> np.ndarray:
    """Codes of one user's ``attributes`` over user ``fields``: int64 (len(fields),).

    A field in ``bins`` (a numeric attribute) is first binned at its edges
    (:func:`personae.data.features.bin_label`); the value, as a string, is then looked up in
    the field's ``vocab``. Missing values, values that are not numbers for a binned field and
    values not in the vocabulary give -1 (unknown): the codes :meth:`SideFeatures.from_records`
    gives the users of a view.
    """
    if attributes is not None and not isinstance(attributes, Mapping):
        raise InvalidInput(f"user attributes must be a mapping of attribute names to values, "
                           f"got {type(attributes).__name__}")
    if len(vocab) != len(fields):
        raise InvalidInput(f"vocab must hold one vocabulary per user field ({len(fields)}), "
                           f"got {len(vocab)}")
    attrs = attributes or {}
    edges = bins or {}
    out = np.full(len(fields), -1, dtype=np.int64)
    for f, (name, names) in enumerate(zip(fields, vocab, strict=True)):
        value = attrs.get(name)
        if name in edges:
            value = bin_label(value, edges[name])
        if value is not None and str(value) in names:
            out[f] = list(names).index(str(value))
    return out


# ---------------------------------------------------------------------- splits


def split_interactions(view: Interactions, split: Split, part: str = "train") -> Interactions:
    """A split's training pairs (``part``: ``"train"`` or ``"validation"``'s train) as an
    :class:`Interactions` in the split's index space, with each pair's time.

    ``Split.train`` is a plain 0/1 matrix; sequence models need order. Each pair gets the time
    of its first event in ``view`` and pairs are ordered as the split orders them (time, then
    raw item id, undated first), so the last training item of a P2 user is the validation item.
    """
    from personae.data.interactions import Interactions

    if part not in ("train", "validation"):
        raise InvalidInput(f"part must be 'train' or 'validation', got {part!r}")
    picked = split.validation if part == "validation" else split
    if picked is None:
        raise InvalidInput(f"the split {split.name!r} has no validation part")
    s: Split = picked
    m = s.train.tocoo()
    upos = {str(k): n for n, k in enumerate(s.user_ids)}
    ipos = {str(k): n for n, k in enumerate(s.item_ids)}
    umap = np.array([upos.get(str(k), -1) for k in view.user_ids], dtype=np.int64)
    imap = np.array([ipos.get(str(k), -1) for k in view.item_ids], dtype=np.int64)
    eu, ei = umap[view.event_users], imap[view.event_items]
    ok = (eu >= 0) & (ei >= 0) & ~np.isnan(view.event_ts)
    keys = m.row.astype(np.int64) * s.n_items + m.col
    order = np.argsort(keys)
    keys = keys[order]
    first = np.full(keys.size, np.inf)
    ek = eu[ok] * s.n_items + ei[ok]
    pos = np.searchsorted(keys, ek)
    pos = np.minimum(pos, max(keys.size - 1, 0))
    hit = keys[pos] == ek if keys.size else np.zeros(0, bool)
    np.minimum.at(first, pos[hit], view.event_ts[ok][hit])
    ts = np.where(np.isinf(first), np.nan, first)
    users, items = m.row[order], m.col[order]
    # arrival order = (user, time, item): Interactions.sequences() then keeps the split's order
    arrival = np.lexsort((items, np.where(np.isnan(ts), -np.inf, ts), users))
    return Interactions.from_arrays(
        users[arrival], items[arrival], timestamps=ts[arrival], user_ids=s.user_ids,
        item_ids=s.item_ids)


# ---------------------------------------------------------------------- helpers


def _get(record: Any, key: str) -> Any:
    if record is None:
        return None
    if isinstance(record, Mapping):
        return record.get(key)
    return getattr(record, key, None)


def _attr(record: Any, name: str) -> Any:
    attrs = _get(record, "attributes") or {}
    return attrs.get(name)


def _fields(records: Sequence[Mapping[str, Any]], max_codes: int, min_share: float, *,
            numbers: bool = True) -> tuple[list[str], list[str]]:
    """(categorical keys, numeric keys) of ``records`` by :meth:`SideFeatures.discover`'s rule."""
    seen: dict[str, list[Any]] = {}
    for rec in records:
        for key, value in rec.items():
            seen.setdefault(key, []).append(value)
    cat, num = [], []
    for key in sorted(seen):
        values = [v for v in seen[key] if v is not None]
        if not records or len(values) < min_share * len(records):
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric and numbers:
            if len({v for v in values if np.isfinite(v)}) >= 2:
                num.append(key)
        elif (all(isinstance(v, (str, bool, int, float)) for v in values)
              and 2 <= len({str(v) for v in values}) <= max_codes):
            cat.append(key)
    return cat, num


def _standardise(values: list[Any]) -> np.ndarray:
    x = np.array([np.nan if v is None else _float(v) for v in values], dtype=np.float64)
    known = ~np.isnan(x)
    out = np.zeros(x.size, np.float32)
    if known.sum() > 1:
        mu, sd = x[known].mean(), x[known].std()
        out[known] = (x[known] - mu) / (sd if sd > 0 else 1.0)
    return out


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _stack(cols: list[np.ndarray], n: int) -> np.ndarray:
    if not cols:
        return np.zeros((n, 0), np.int64)
    return np.stack(cols, axis=1).astype(np.int64)
