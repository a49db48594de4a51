"""The recommendation service: ids, filters, history, explanations, impressions, model swaps.

Between the models (index space) and the interfaces (HTTP, CLI): an :class:`Engine` over a
:class:`personae.Store` answers :class:`RecommendRequest` s with :class:`RecommendResponse` s,
finds similar items, ranks candidates, records rewards, and trains, activates and rolls back
model versions (:class:`ModelVersion`).

>>> from personae.service import Engine, RecommendRequest      # doctest: +SKIP
>>> engine = Engine("demo.db")                                 # doctest: +SKIP
>>> engine.recommend(RecommendRequest("u1", k=5)).item_ids     # doctest: +SKIP
"""

from personae.service.catalog import Catalog
from personae.service.engine import ANONYMOUS_USER_ID, Engine
from personae.service.types import (
    MAX_IDS,
    MAX_K,
    STRATEGIES,
    Filters,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
)
from personae.store.serving import ROLES, ApiKey, ModelVersion, Recommendation

__all__ = [
    "ANONYMOUS_USER_ID",
    "MAX_IDS",
    "MAX_K",
    "ROLES",
    "STRATEGIES",
    "ApiKey",
    "Catalog",
    "Engine",
    "Filters",
    "ModelVersion",
    "RecommendRequest",
    "RecommendResponse",
    "Recommendation",
    "RecommendedItem",
]
