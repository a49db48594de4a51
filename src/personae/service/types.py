"""Requests and responses of the recommendation service, as validated dataclasses.

They carry *external* ids only; :class:`~personae.service.Engine` maps them to indices. Every
class has ``to_dict()`` (JSON-ready) and the requests a ``from_dict()`` that names the bad
field on error, so that the HTTP layer and the Python API share one validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from personae.errors import InvalidInput
from personae.store.records import check_id, check_mapping

#: Largest ``k`` a request may ask for.
MAX_K = 1000
#: Most ids in one list (exclude, session items, rank candidates).
MAX_IDS = 10_000
#: Comparison keys of a numeric attribute condition.
RANGE_KEYS = ("gt", "gte", "lt", "lte")
#: Which path answered: the user's learned/current history, a fold-in of an unseen user's
#: events, an anonymous session, popularity for a user with no usable history, similar items,
#: a ranking of candidates.
STRATEGIES = ("model", "fold-in", "session", "cold-start-popularity", "cold-start-segment",
              "cold-start-demographics", "query", "similar", "rank",
              "rank-linucb", "rank-thompson")


def _id_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInput(f"{name} must be a list of ids, got {type(value).__name__}")
    if len(value) > MAX_IDS:
        raise InvalidInput(f"{name} holds {len(value)} ids; at most {MAX_IDS} are allowed")
    return [check_id(v, f"{name}[{n}]") for n, v in enumerate(value)]


def _str_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{name} must be a list of non-empty strings, got {value!r}")
    return list(dict.fromkeys(value))


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false, got {value!r}")
    return value


def _check_k(value: Any, name: str = "k") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise InvalidInput(f"{name} must be an integer in [1, {MAX_K}], got {value!r}")
    return value


def _from_dict(cls: type, data: Any, name: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{name} must be an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise InvalidInput(
            f"unknown field(s) in {name}: {', '.join(sorted(map(str, unknown)))}; "
            f"expected some of {', '.join(sorted(names))}"
        )
    return cls(**data)


def check_attribute_condition(key: str, cond: Any) -> Any:
    """Validate one attribute condition: a scalar (equality), a list (any of), or a range
    ``{"gte": …, "lte": …}`` of numbers. Returns it normalised (lists as tuples)."""
    where = f"filters.attributes[{key!r}]"
    if isinstance(cond, Mapping):
        if not cond or set(cond) - set(RANGE_KEYS):
            raise InvalidInput(
                f"{where} must use the keys {', '.join(RANGE_KEYS)} (a numeric range), "
                f"got {sorted(map(str, cond))}"
            )
        for op, bound in cond.items():
            if isinstance(bound, bool) or not isinstance(bound, int | float) \
                    or not math.isfinite(bound):
                raise InvalidInput(f"{where}[{op!r}] must be a finite number, got {bound!r}")
        return dict(cond)
    if isinstance(cond, list | tuple):
        if not cond:
            raise InvalidInput(f"{where} is an empty list: no item could match")
        for v in cond:
            _check_scalar(v, where)
        return tuple(cond)
    _check_scalar(cond, where)
    return cond


def _check_scalar(value: Any, where: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float) and math.isfinite(value):
        return
    raise InvalidInput(f"{where} must be a string, number, boolean or null, got {value!r}")


@dataclass(slots=True)
class Filters:
    """Which items a list may contain.

    Parameters
    ----------
    categories : list of str, optional
        Keep items in *any* of these categories (``None``: no category filter).
    exclude_categories : list of str, optional
        Drop items in any of these.
    attributes : dict, default {}
        Per attribute: a value (equality), a list (any of), or a numeric range
        ``{"gte": 10, "lt": 20}`` (keys ``gt``, ``gte``, ``lt``, ``lte``). Items without the
        attribute are dropped.
    available_only : bool, default True
        Drop items marked unavailable.
    exclude_seen : bool, default True
        Drop items the user has interacted with (events of non-zero weight). Items with net
        negative feedback (a dislike) are never recommended either way.
    exclude : list of str, default []
        Item ids never to return.
    """

    categories: list[str] | None = None
    exclude_categories: list[str] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    available_only: bool = True
    exclude_seen: bool = True
    exclude: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.categories = _str_list(self.categories, "filters.categories")
        self.exclude_categories = _str_list(self.exclude_categories,
                                            "filters.exclude_categories")
        attrs = check_mapping(self.attributes, "filters.attributes")
        self.attributes = {k: check_attribute_condition(k, v) for k, v in attrs.items()}
        self.available_only = _check_bool(self.available_only, "filters.available_only")
        self.exclude_seen = _check_bool(self.exclude_seen, "filters.exclude_seen")
        self.exclude = _id_list(self.exclude, "filters.exclude")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Filters | None) -> Filters:
        return cls() if data is None else _from_dict(cls, data, "filters")

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": self.categories,
            "exclude_categories": self.exclude_categories,
            "attributes": {k: list(v) if isinstance(v, tuple) else v
                           for k, v in self.attributes.items()},
            "available_only": self.available_only,
            "exclude_seen": self.exclude_seen,
            "exclude": list(self.exclude),
        }


@dataclass(slots=True)
class RecommendRequest:
    """A request for a list of items.

    Parameters
    ----------
    user_id : str, optional
        The user; ``None`` for an anonymous session (then give ``session_items``).
    session_items : list of str, optional
        Items of the current session, oldest first: the history of an anonymous visitor (added
        to a known user's stored history otherwise).
    k : int, default 10
        Length of the list, 1–1000.
    context : dict, default {}
        The moment: device, time, location, weather, any key; passed to context-aware models
        and logged with the impression.
    filters : Filters
        Which items may appear.
    explain : bool, default False
        Attach reasons (which history items led to each one).
    after : str, optional
        A previous response's ``rec_id``: return the next page, never repeating anything the
        chain of pages has shown.
    diversity : float in [0, 1], optional
        Re-rank the best candidates by maximal marginal relevance: 0 keeps the relevance
        order, 1 favours items unlike those already chosen (category overlap) the most.
        ``None`` (default): no re-ranking.
    max_per_category : int, optional
        At most this many items of any one category in the list.
    query : str, optional
        What the user asks for in words ("something light for tonight"): matched against the
        items' text and combined with the user's history (needs the engine's text encoder).
    description : str, optional
        A short self-description ("I like slow science fiction and old westerns"): cold
        start from text for a user with little or no history.
    """

    user_id: str | None = None
    session_items: list[str] | None = None
    k: int = 10
    context: dict[str, Any] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    explain: bool = False
    after: str | None = None
    diversity: float | None = None
    max_per_category: int | None = None
    query: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.user_id is not None:
            self.user_id = check_id(self.user_id, "user_id")
        if self.session_items is not None:
            self.session_items = _id_list(self.session_items, "session_items")
        self.k = _check_k(self.k)
        self.context = check_mapping(self.context, "context")
        self.filters = Filters.from_dict(self.filters)
        self.explain = _check_bool(self.explain, "explain")
        if self.after is not None:
            self.after = check_id(self.after, "after")
        if self.diversity is not None:
            d = self.diversity
            if isinstance(d, bool) or not isinstance(d, int | float) or not 0.0 <= d <= 1.0:
                raise InvalidInput(f"diversity must be a number in [0, 1], got {d!r}")
            self.diversity = float(d)
        for name in ("query", "description"):
            text = getattr(self, name)
            if text is not None and (not isinstance(text, str) or not text.strip()
                                     or len(text) > 2000):
                raise InvalidInput(f"{name} must be a non-empty string of at most 2,000 "
                                   f"characters, got {text!r:.60}")
        if self.max_per_category is not None:
            m = self.max_per_category
            if isinstance(m, bool) or not isinstance(m, int) or m < 1:
                raise InvalidInput(f"max_per_category must be an integer >= 1, got {m!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | RecommendRequest) -> RecommendRequest:
        return _from_dict(cls, data, "request")

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "session_items": self.session_items, "k": self.k,
            "context": self.context, "filters": self.filters.to_dict(), "explain": self.explain,
            "after": self.after, "diversity": self.diversity,
            "max_per_category": self.max_per_category, "query": self.query,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class RecommendedItem:
    """One entry of a list.

    ``score`` is the model's score (higher is better; not comparable across models), or the
    item's popularity share for ``source="popularity"``. ``rank`` starts at 1 on every page.
    ``source``: ``"model"`` or ``"popularity"`` (items the model cannot score: cold start,
    items added since training).
    """

    item_id: str
    score: float
    rank: int
    reasons: list[str] | None = None
    source: str = "model"
    #: With ``explain``: the model's own split of the score (see
    #: :class:`personae.service.explain.Explanation`): method, total, and each named part
    #: with its contribution and share.
    explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"item_id": self.item_id, "score": self.score, "rank": self.rank,
               "reasons": self.reasons, "source": self.source}
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


@dataclass(frozen=True, slots=True)
class RecommendResponse:
    """A list, as shown and logged.

    ``rec_id`` identifies it for attribution (events, rewards) and paging (``after``);
    ``strategy`` says which path produced it (see :data:`STRATEGIES`); ``page`` starts at 1.
    ``cold_start_path``: for a user the model was not trained on, the path the cold-start
    policy took (``segment_popularity``, ``demographics``, ``history_blend`` or ``history``, see
    :mod:`personae.service.coldstart`).
    """

    rec_id: str
    user_id: str | None
    items: list[RecommendedItem]
    model_version: str | None
    strategy: str
    page: int = 1
    cold_start_path: str | None = None

    @property
    def item_ids(self) -> list[str]:
        return [it.item_id for it in self.items]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rec_id": self.rec_id, "user_id": self.user_id,
            "items": [it.to_dict() for it in self.items],
            "model_version": self.model_version, "strategy": self.strategy, "page": self.page,
            "cold_start_path": self.cold_start_path,
        }
