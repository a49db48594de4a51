"""The data model: users, items and events, as plain validated records.

Records are what goes into and comes out of the store. They hold *external* ids (strings chosen
by the application); the store maps them to its internal integer indices.

Timestamps are UTC seconds since the epoch (``float``). Anything accepted as a time
(``int``/``float`` seconds, :class:`datetime.datetime`, an ISO-8601 string) is converted on the way
in by :func:`to_timestamp`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from personae.errors import InvalidInput

#: Event types with a meaning personae knows. Any other type matching :data:`TYPE_PATTERN` is a
#: custom type (weight 1.0 unless configured).
KNOWN_EVENT_TYPES = (
    "view",
    "click",
    "like",
    "dislike",
    "rating",
    "purchase",
    "skip",
    "add_to_cart",
    "impression",
)

#: How strongly each event type counts in implicit-feedback training views. Negative weights mark
#: negative feedback; ``impression`` (shown, not acted on) counts for nothing. Configure per store
#: with :meth:`personae.Store.set_event_weights`.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "rating": 3.0,
    "add_to_cart": 3.0,
    "like": 4.0,
    "purchase": 5.0,
    "skip": -1.0,
    "dislike": -4.0,
    "impression": 0.0,
    # Rewards sent for a ranking (personae.service.Engine.reward) carry their value for bandit
    # learning; as a custom type they would otherwise count 1.0 in training whatever the value.
    "reward": 0.0,
}

TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]{0,31}$")
MAX_ID_LENGTH = 256
#: Bound on the JSON size of one attributes/context mapping and of item text, in characters.
MAX_JSON_CHARS = 64_000
MAX_TEXT_CHARS = 1_000_000

# Times before 1970 or after 2200 are almost always a unit mistake (milliseconds, say).
_MIN_TS = 0.0
_MAX_TS = 7_258_118_400.0  # 2200-01-01


def to_timestamp(value: Any, field_name: str = "timestamp") -> float | None:
    """Convert a time given as seconds, ``datetime`` or ISO-8601 string to UTC epoch seconds.

    ``None`` stays ``None``. Naive datetimes and strings without an offset are taken as UTC.
    Raises :class:`InvalidInput` for anything else, including numbers outside 1970–2200
    (milliseconds passed as seconds land there).
    """
    if value is None:
        return None
    cls = type(value)
    if (cls is float or cls is int) and _MIN_TS <= value <= _MAX_TS:
        return float(value)  # the common case, checked cheaply
    if isinstance(value, bool):
        raise InvalidInput(f"{field_name} must be a time, got the boolean {value!r}")
    if isinstance(value, int | float):
        ts = float(value)
    elif isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        ts = dt.timestamp()
    elif isinstance(value, str):
        text = value.strip()
        try:
            ts = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInput(
                    f"{field_name} must be epoch seconds or an ISO-8601 time "
                    f"such as '2024-05-01T18:30:00Z', got {value!r}"
                ) from None
            dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
            ts = dt.timestamp()
    else:
        raise InvalidInput(
            f"{field_name} must be epoch seconds, a datetime or an ISO-8601 string, "
            f"got {type(value).__name__}"
        )
    if not math.isfinite(ts) or not _MIN_TS <= ts <= _MAX_TS:
        raise InvalidInput(
            f"{field_name} {value!r} is outside 1970–2200 in seconds; "
            "if it is in milliseconds, divide by 1000"
        )
    return ts


def check_id(value: Any, field_name: str) -> str:
    """Return an external id as a non-empty string of at most 256 characters."""
    if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and not value[0].isspace() \
            and not value[-1].isspace():
        return value  # the common case, checked cheaply
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{field_name} must be a non-empty string, got {value!r}")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput(f"{field_name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise InvalidInput(f"{field_name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(
            f"{field_name} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed"
        )
    return value


def check_mapping(value: Any, field_name: str) -> dict[str, Any]:
    """Return a JSON-serialisable ``dict`` with string keys (``None`` becomes ``{}``)."""
    if value is None:
        return {}
    if type(value) is dict:
        if not value:
            return value
        # Flat mappings of short scalars (the usual context/attributes) need no JSON round trip.
        size = 0
        for key, val in value.items():
            t = type(val)
            if type(key) is not str or not key or not (
                t is str or t is int or t is bool or val is None
                or (t is float and math.isfinite(val))
            ):
                break
            size += len(key) + (len(val) if t is str else 8)
        else:
            if size <= MAX_JSON_CHARS // 2:
                return value
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"{field_name} must be a mapping of string keys to values, got {type(value).__name__}"
        )
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"{field_name} keys must be non-empty strings, got {key!r}")
        out[key] = val
    try:
        size = len(json.dumps(out, allow_nan=False, separators=(",", ":")))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field_name} must be JSON-serialisable: {exc}") from None
    if size > MAX_JSON_CHARS:
        raise InvalidInput(
            f"{field_name} is {size} characters as JSON; at most {MAX_JSON_CHARS} are allowed"
        )
    return out


_VALID_TYPES: set[str] = set(KNOWN_EVENT_TYPES)


def check_event_type(value: Any) -> str:
    if type(value) is str and value in _VALID_TYPES:
        return value
    if not isinstance(value, str) or not TYPE_PATTERN.match(value):
        raise InvalidInput(
            f"type must be a lower-case name such as 'view', 'click' or 'rating' "
            f"(letters, digits, '_' or '-', at most 32), got {value!r}"
        )
    if len(_VALID_TYPES) < 1024:
        _VALID_TYPES.add(value)
    return value


def _check_value(value: Any) -> float:
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidInput(f"value must be a number, got {value!r}")
        try:
            value = float(value)  # ints, and numeric strings from CSV files
        except ValueError:
            raise InvalidInput(f"value must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise InvalidInput(f"value must be a finite number, got {value!r}")
    return value


def _check_text(value: Any, field_name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field_name} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidInput(
            f"{field_name} is {len(value)} characters long; at most {MAX_TEXT_CHARS} are allowed"
        )
    return value


@dataclass(slots=True)
class User:
    """A user of the application.

    Parameters
    ----------
    user_id : str
        The application's id for the user.
    attributes : dict
        Any key/value: age, gender, occupation, location, ...
    created_at : float | None
        UTC epoch seconds; the store sets it on first write when ``None``.
    """

    user_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None

    def __post_init__(self) -> None:
        self.user_id = check_id(self.user_id, "user_id")
        self.attributes = check_mapping(self.attributes, "attributes")
        self.created_at = to_timestamp(self.created_at, "created_at")

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "attributes": self.attributes,
                "created_at": self.created_at}


@dataclass(slots=True)
class Item:
    """Something that can be recommended.

    Parameters
    ----------
    item_id : str
        The application's id for the item.
    title, text : str | None
        A short name and a longer description (plot, product description, ...).
    categories : list[str]
        Genres, product categories, tags.
    attributes : dict
        Any key/value: director, brand, price, year, ...
    available : bool
        Unavailable items are kept (their history matters) but not recommended.
    created_at : float | None
        UTC epoch seconds; the store sets it on first write when ``None``.
    """

    item_id: str
    title: str | None = None
    text: str | None = None
    categories: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    available: bool = True
    created_at: float | None = None

    def __post_init__(self) -> None:
        self.item_id = check_id(self.item_id, "item_id")
        self.title = _check_text(self.title, "title")
        self.text = _check_text(self.text, "text")
        cats = self.categories
        if cats is None:
            cats = []
        elif isinstance(cats, str):
            cats = [cats]
        if not isinstance(cats, list | tuple) or not all(isinstance(c, str) for c in cats):
            raise InvalidInput(f"categories must be a list of strings, got {cats!r}")
        # keep order, drop blanks and repeats
        self.categories = list(dict.fromkeys(c.strip() for c in cats if c.strip()))
        self.attributes = check_mapping(self.attributes, "attributes")
        if not isinstance(self.available, bool):
            raise InvalidInput(f"available must be true or false, got {self.available!r}")
        self.created_at = to_timestamp(self.created_at, "created_at")

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "text": self.text,
            "categories": list(self.categories),
            "attributes": self.attributes,
            "available": self.available,
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class Event:
    """One thing a user did with an item.

    Parameters
    ----------
    user_id, item_id : str
        External ids; unknown ones are created as bare users/items on ingestion.
    type : str
        ``view``, ``click``, ``like``, ``dislike``, ``rating``, ``purchase``, ``skip``,
        ``add_to_cart``, ``impression`` or a custom lower-case name.
    value : float | None
        The rating for ``rating`` events (required there), otherwise optional (e.g. a price or
        a watch fraction).
    timestamp : float | None
        UTC epoch seconds. ``None`` is allowed for data sets without times (the store keeps
        arrival order).
    context : dict
        Any key/value describing the moment: device, location, weather, ...
    event_id : str | None
        The client's id for idempotency. When absent, :meth:`ensure_id` derives one from the
        event's content, so that the same event imported twice is stored once.
    """

    user_id: str
    item_id: str
    type: str = "view"
    value: float | None = None
    timestamp: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None

    def __post_init__(self) -> None:
        self.user_id = check_id(self.user_id, "user_id")
        self.item_id = check_id(self.item_id, "item_id")
        self.type = check_event_type(self.type)
        if self.value is not None:
            self.value = _check_value(self.value)
        elif self.type == "rating":
            raise InvalidInput("a 'rating' event needs a numeric value (the rating)")
        self.timestamp = to_timestamp(self.timestamp, "timestamp")
        self.context = check_mapping(self.context, "context")
        if self.event_id is not None:
            self.event_id = check_id(self.event_id, "event_id")

    def ensure_id(self) -> str:
        """Return ``event_id``, deriving a deterministic one from the content when absent."""
        if self.event_id is None:
            self.event_id = content_event_id(
                self.user_id, self.item_id, self.type, self.value, self.timestamp, self.context
            )
        return self.event_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "type": self.type,
            "value": self.value,
            "timestamp": self.timestamp,
            "context": self.context,
        }


# One encoder, reused: json.dumps with non-default arguments builds a new one per call.
_ID_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def content_event_id(
    user_id: str,
    item_id: str,
    type: str,
    value: float | None,
    timestamp: float | None,
    context: Mapping[str, Any] | None,
) -> str:
    """A deterministic event id: the first 128 bits of a SHA-256 of the event's content.

    Two events that agree in every field get the same id, so duplicate lines in an export (or
    importing the same file twice) store the event once.
    """
    ctx = _ID_JSON(context) if context else ""
    key = "\x1f".join(
        (user_id, item_id, type, repr(value), repr(timestamp), ctx)
    ).encode("utf-8")
    return "h" + hashlib.sha256(key).hexdigest()[:32]


def utcnow() -> float:
    """Current UTC time as epoch seconds."""
    return datetime.now(UTC).timestamp()
