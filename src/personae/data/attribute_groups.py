"""Attribute groups in index space: users' and items' attributes as sparse indicator matrices.

A *feature* is one ``key=value`` pair, e.g. ``gender=F``, ``categories=Comedy`` or
``director=John Lasseter``; list-valued attributes (actors, writers, genres) give one feature
per element, so an item has several ``actors=…`` features. This is what separates it from
:class:`personae.data.side.SideFeatures` (one code per field, for embedding models): here a
field may hold many values, as rating models that learn per-value effects need.

:func:`feature_matrix` builds one matrix for several keys; :func:`user_attribute_groups` and
:func:`item_attribute_groups` read a store and return one matrix *per key*
(``{"director": csr (n_items, n_directors), ...}``), rows aligned with a view: the input of
:class:`personae.models.featuregbm.FeatureGBM`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput

if TYPE_CHECKING:
    from personae.data.interactions import Interactions
    from personae.store import Store

Transform = Callable[[Any], Any]

_PAREN = re.compile(r"\s*\([^)]*\)")


def strip_parentheses(value: Any) -> str:
    """``"Pete Docter (original story by)"`` → ``"Pete Docter"`` (for writer credits)."""
    return _PAREN.sub("", str(value)).strip()


def bucket(width: int) -> Transform:
    """A transform mapping a number to the start of its ``width``-wide bucket (1995 → 1995 for
    width 5, 1997 → 1995); non-numbers → ``None``."""
    def f(value: Any) -> Any:
        try:
            return int(float(value) // width * width)
        except (TypeError, ValueError):
            return None
    return f


def prefix(n: int) -> Transform:
    """A transform keeping the first ``n`` characters (zip code → region)."""
    def f(value: Any) -> Any:
        s = str(value)
        return s[:n] if s else None
    return f


#: Defaults for ml-1m / MeLU users and items.
USER_KEYS: tuple[str, ...] = ("gender", "age", "occupation", "zip")
ITEM_KEYS: tuple[str, ...] = ("categories", "director", "actors", "writer", "year", "rated")
DEFAULT_TRANSFORMS: dict[str, Transform] = {
    "zip": prefix(2), "year": bucket(5), "writer": strip_parentheses,
}


def feature_matrix(
    records: Sequence[Mapping[str, Any] | None],
    keys: Iterable[str],
    *,
    transforms: Mapping[str, Transform] | None = None,
    min_count: int = 1,
) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    """Indicator matrix of ``key=value`` features of ``records`` (one row each).

    Parameters
    ----------
    records : sequence of mappings (or None for a row without attributes)
    keys : iterable of str
        Attributes to use; a list value gives one feature per distinct element.
    transforms : mapping, optional
        ``key → f(value)`` applied to each (element) value first; ``None`` results are dropped.
    min_count : int, default 1
        Keep features present in at least this many rows.

    Returns
    -------
    (csr_matrix float32 (len(records), n_features), tuple of str)
        Features sorted by name.
    """
    if not isinstance(min_count, int) or min_count < 1:
        raise InvalidInput(f"min_count must be an int >= 1. Got {min_count!r} instead.")
    keys = list(keys)
    tf = dict(transforms or {})
    rows: list[set[str]] = []
    for rec in records:
        feats: set[str] = set()
        for key in keys:
            value = None if rec is None else rec.get(key)
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:
                if v is None:
                    continue
                if key in tf:
                    v = tf[key](v)
                    if v is None:
                        continue
                s = str(v).strip()
                if s:
                    feats.add(f"{key}={s}")
        rows.append(feats)
    counts = Counter(f for feats in rows for f in feats)
    names = tuple(sorted(f for f, c in counts.items() if c >= min_count))
    pos = {f: k for k, f in enumerate(names)}
    r, c = [], []
    for row, feats in enumerate(rows):
        for f in feats:
            k = pos.get(f)
            if k is not None:
                r.append(row)
                c.append(k)
    m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), len(names)))
    m.sort_indices()
    return m, names


def user_attribute_groups(
    store: Store, view: Interactions, keys: Iterable[str] = USER_KEYS, *,
    transforms: Mapping[str, Transform] | None = None, min_count: int = 1,
) -> dict[str, sp.csr_matrix]:
    """One indicator matrix (n_users, n_values) per user attribute ``key``, rows aligned with
    ``view``'s users (users without the attribute: an empty row).

    ``transforms`` defaults to :data:`DEFAULT_TRANSFORMS` (zip code → first 2 digits).
    """
    records: list[Mapping[str, Any] | None] = [None] * view.n_users
    for user in store.iter_users():
        try:
            records[view.user_index(user.user_id)] = user.attributes
        except KeyError:
            continue
    tf = DEFAULT_TRANSFORMS if transforms is None else transforms
    return {k: feature_matrix(records, [k], transforms=tf, min_count=min_count)[0]
            for k in keys}


def item_attribute_groups(
    store: Store, view: Interactions, keys: Iterable[str] = ITEM_KEYS, *,
    transforms: Mapping[str, Transform] | None = None, min_count: int = 2,
) -> dict[str, sp.csr_matrix]:
    """One indicator matrix (n_items, n_values) per item attribute ``key``, rows aligned with
    ``view``'s items.

    The key ``"categories"`` reads the item's categories; other keys its attributes.
    ``min_count`` (default 2) drops values that only one item has (a one-film actor says
    nothing about another film). ``transforms`` defaults to :data:`DEFAULT_TRANSFORMS` (year →
    5-year bucket, writer credits without their parenthesised role).
    """
    records: list[Mapping[str, Any] | None] = [None] * view.n_items
    for item in store.iter_items():
        try:
            k = view.item_index(item.item_id)
        except KeyError:
            continue
        records[k] = {**item.attributes, "categories": list(item.categories)}
    tf = DEFAULT_TRANSFORMS if transforms is None else transforms
    return {k: feature_matrix(records, [k], transforms=tf, min_count=min_count)[0]
            for k in keys}
