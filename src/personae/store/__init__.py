"""The event store: users, items and events in SQLite or PostgreSQL (one code path)."""

from personae.store.core import (
    EventLog,
    Store,
    StoreStats,
    Writer,
    WriteResult,
    default_data_dir,
    resolve_url,
)
from personae.store.records import (
    DEFAULT_EVENT_WEIGHTS,
    KNOWN_EVENT_TYPES,
    Event,
    Item,
    User,
    to_timestamp,
)
from personae.store.serving import ROLES, ApiKey, ModelVersion, Recommendation

__all__ = [
    "ROLES",
    "ApiKey",
    "ModelVersion",
    "Recommendation",
    "DEFAULT_EVENT_WEIGHTS",
    "KNOWN_EVENT_TYPES",
    "Event",
    "EventLog",
    "Item",
    "Store",
    "StoreStats",
    "User",
    "WriteResult",
    "Writer",
    "default_data_dir",
    "resolve_url",
    "to_timestamp",
]
