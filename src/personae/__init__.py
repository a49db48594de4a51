"""personae: an open-source personalization engine.

The light entry points are imported here; heavy parts (models, server, text, privacy) are imported
from their own modules when used, so that ``import personae`` stays fast.
"""

from __future__ import annotations

from personae.errors import (
    ImportFormatError,
    InvalidInput,
    NotFound,
    PersonaeError,
    StoreError,
)
from personae.store import Event, Item, Store, User

__version__ = "0.1.0"

__all__ = [
    "Event",
    "ImportFormatError",
    "InvalidInput",
    "Item",
    "NotFound",
    "PersonaeError",
    "Store",
    "StoreError",
    "User",
    "__version__",
]
