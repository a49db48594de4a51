"""The item catalogue in memory: ids, positions, availability, categories, attributes, weights.

Built from the store in one query (:meth:`Catalog.load`) and rebuilt when the store's catalogue
version changes (items or event types written). Requests then filter with numpy masks over
catalogue *positions* (``pos``), never touching the items table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from personae.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from personae.service.types import Filters
    from personae.store import Store

_MISSING = object()
_CACHE_LIMIT = 4096


class Catalog:
    """Every item of the store, in ``item_idx`` order (position ``pos`` = row number).

    Attributes
    ----------
    version : str | None
        The store's catalogue version this was built from.
    item_ids : list of str
    store_idx : ndarray int64 (n,)
        The store's ``item_idx`` of each position, ascending.
    available : ndarray bool (n,)
    titles : list of str | None
    type_weights : ndarray float64 (n_types,)
        Weight of each event ``type_idx`` (0 for unknown slots).
    type_names : list of str
    """

    def __init__(self, version: str | None, rows: Sequence[Any],
                 types: dict[int, tuple[str, float]]) -> None:
        self.version = version
        n = len(rows)
        self.item_ids: list[str] = [r.item_id for r in rows]
        self.pos: dict[str, int] = {item_id: p for p, item_id in enumerate(self.item_ids)}
        self.store_idx = np.fromiter((r.item_idx for r in rows), dtype=np.int64, count=n)
        # item_idx values without gaps (no item ever deleted): a position is one subtraction
        self._first_idx = int(self.store_idx[0]) if n and \
            int(self.store_idx[-1]) - int(self.store_idx[0]) == n - 1 else None
        self.available = np.fromiter((bool(r.available) for r in rows), dtype=bool, count=n)
        self.titles: list[str | None] = [r.title for r in rows]
        self.item_categories: list[list[str]] = [list(r.categories or []) for r in rows]
        self.attributes: list[dict[str, Any]] = [r.attributes or {} for r in rows]
        cats: dict[str, list[int]] = {}
        for p, item_cats in enumerate(self.item_categories):
            for c in item_cats:
                cats.setdefault(c, []).append(p)
        self.categories: dict[str, np.ndarray] = {}
        for c, members in cats.items():
            mask = np.zeros(n, dtype=bool)
            mask[members] = True
            self.categories[c] = mask
        size = max(types) + 1 if types else 0
        self.type_weights = np.zeros(size, dtype=np.float64)
        self.type_names = [""] * size
        for idx, (name, weight) in types.items():
            self.type_weights[idx] = weight
            self.type_names[idx] = name
        self._attr_keys: set[str] | None = None
        self._cache: dict[tuple[Any, ...], np.ndarray] = {}

    @classmethod
    def load(cls, store: Store, version: str | None) -> Catalog:
        """Read every item and event type of ``store`` (``version``: its catalogue version,
        read *before* this call so that a concurrent change triggers another reload)."""
        return cls(version, store.catalog_rows(), store.event_types())

    def __len__(self) -> int:
        return len(self.item_ids)

    # ------------------------------------------------------------------ ids

    def positions_of_store_idx(self, idx: np.ndarray) -> np.ndarray:
        """Catalogue positions of store ``item_idx`` values; -1 for items not in the catalogue."""
        if not len(self.store_idx):
            return np.full(idx.shape, -1, dtype=np.int64)
        if self._first_idx is not None:
            p = idx - self._first_idx
            return np.where((p >= 0) & (p < len(self.store_idx)), p, -1)
        p = np.searchsorted(self.store_idx, idx)
        p = np.minimum(p, len(self.store_idx) - 1)
        return np.where(self.store_idx[p] == idx, p, -1)

    def positions(self, item_ids: Iterable[str], field: str) -> np.ndarray | str:
        """Positions of ``item_ids``; on the first unknown id, that id (a str) instead."""
        pos = self.pos
        out = []
        for item_id in item_ids:
            p = pos.get(item_id)
            if p is None:
                return item_id
            out.append(p)
        return np.asarray(out, dtype=np.int64)

    def position(self, item_id: str, field: str) -> int:
        try:
            return self.pos[item_id]
        except KeyError:
            raise NotFound(f"unknown item_id {item_id!r} in {field}") from None

    # ------------------------------------------------------------------ filters

    def mask(self, filters: Filters) -> np.ndarray:
        """Items allowed by the item-level filters (availability, categories, attributes).

        A fresh array the caller may modify. :class:`InvalidInput` for a category or
        attribute no item has (a typo would otherwise silently return nothing).
        """
        n = len(self.item_ids)
        allowed = self.available.copy() if filters.available_only else np.ones(n, dtype=bool)
        if filters.categories is not None:
            any_of = np.zeros(n, dtype=bool)
            for c in filters.categories:
                any_of |= self._category(c, "filters.categories")
            allowed &= any_of
        if filters.exclude_categories:
            for c in filters.exclude_categories:
                allowed &= ~self._category(c, "filters.exclude_categories")
        for key, cond in filters.attributes.items():
            allowed &= self._attribute(key, cond)
        return allowed

    def knows(self, filters: Filters) -> bool:
        """Whether every category and attribute key the filters name is in this catalogue
        (if not, the catalogue may be older than the items: reload before refusing them)."""
        names = (filters.categories or []) + (filters.exclude_categories or [])
        return (all(c in self.categories for c in names)
                and all(k in self._attribute_keys() for k in filters.attributes))

    def _attribute_keys(self) -> set[str]:
        if self._attr_keys is None:
            self._attr_keys = {k for attrs in self.attributes for k in attrs}
        return self._attr_keys

    def _category(self, name: str, field: str) -> np.ndarray:
        mask = self.categories.get(name)
        if mask is None:
            known = sorted(self.categories)
            shown = ", ".join(map(repr, known[:20])) + (" …" if len(known) > 20 else "")
            raise InvalidInput(f"unknown category {name!r} in {field}; known: {shown or 'none'}")
        return mask

    def _attribute(self, key: str, cond: Any) -> np.ndarray:
        if key not in self._attribute_keys():
            known = sorted(self._attribute_keys())
            raise InvalidInput(
                f"no item has the attribute {key!r} (filters.attributes); "
                f"known: {', '.join(map(repr, known[:20])) or 'none'}"
            )
        cache_key = (key, _freeze(cond))
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        if isinstance(cond, dict):
            values = self._numbers(key)
            mask = ~np.isnan(values)
            with np.errstate(invalid="ignore"):
                for op, bound in cond.items():
                    if op == "gt":
                        mask &= values > bound
                    elif op == "gte":
                        mask &= values >= bound
                    elif op == "lt":
                        mask &= values < bound
                    else:
                        mask &= values <= bound
        else:
            wanted = cond if isinstance(cond, tuple) else (cond,)
            keys = {_typed(v) for v in wanted}
            mask = np.fromiter(
                (_typed(a.get(key, _MISSING)) in keys for a in self.attributes),
                dtype=bool, count=len(self.attributes),
            )
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[cache_key] = mask
        return mask

    def _numbers(self, key: str) -> np.ndarray:
        cache_key = ("#numbers", key)
        values = self._cache.get(cache_key)
        if values is None:
            def num(a: dict[str, Any]) -> float:
                v = a.get(key)
                if isinstance(v, bool) or not isinstance(v, int | float):
                    return np.nan
                return float(v)

            values = np.fromiter((num(a) for a in self.attributes), dtype=np.float64,
                                 count=len(self.attributes))
            self._cache[cache_key] = values
        return values


def _typed(value: Any) -> Any:
    """A hashable key that keeps True, 1 and "1" apart (equality filters compare types too),
    while 3 and 3.0 match."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if value is _MISSING:
        return ("missing",)
    if isinstance(value, str) or value is None:
        return ("s", value)
    return ("other", repr(value))


def _freeze(cond: Any) -> Any:
    if isinstance(cond, dict):
        return tuple(sorted(cond.items()))
    if isinstance(cond, tuple):
        return tuple(_typed(v) for v in cond)
    return _typed(cond)
