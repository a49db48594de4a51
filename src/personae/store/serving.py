"""Records of the serving tables: API keys, model versions and logged recommendations.

They are plain dataclasses, written and read by :class:`personae.Store`
(:meth:`~personae.Store.create_api_key`, :meth:`~personae.Store.add_model_version`,
:meth:`~personae.Store.log_recommendation`, …) and used by :mod:`personae.service`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from personae.errors import InvalidInput

#: API key roles, weakest first; each role may do everything the earlier ones may.
ROLES: tuple[str, ...] = ("reader", "writer", "admin")

#: Lifecycle of a model version. Exactly one version (or none) is "active".
MODEL_STATUSES: tuple[str, ...] = ("training", "ready", "failed", "active", "retired")

#: What produced a logged list.
RECOMMENDATION_KINDS: tuple[str, ...] = ("recommend", "similar", "rank")


def check_role(role: Any) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return str(role)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored (the secret itself is never stored, only its SHA-256).

    ``key_id`` is public ("pk_" + 12 hex digits) and appears in logs; the secret handed out
    once by :meth:`personae.Store.create_api_key` is ``"<key_id>.<token>"``.
    """

    key_id: str
    name: str
    role: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, role: str) -> bool:
        """True when this key's role includes ``role`` (admin ⊇ writer ⊇ reader)."""
        return ROLES.index(self.role) >= ROLES.index(check_role(role))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


@dataclass(slots=True)
class ModelVersion:
    """One trained (or training, or failed) model version.

    Attributes
    ----------
    version : str
        Its id, e.g. ``"v20261125T013000-ease-3f2a"``; also the artifact folder's name.
    model, params : str, dict
        Registry name (:data:`personae.models.MODELS`) and hyper-parameters.
    status : str
        ``training`` → ``ready`` (trained, not serving) | ``failed``; ``active`` (serving);
        ``retired`` (served before).
    created_at, finished_at : float, float | None
        UTC epoch seconds: training started / ended.
    metrics : dict | None
        Validation numbers (``ndcg@10``, ``recall@10``, the active version's ``active_ndcg@10``
        on the same split, …).
    message : str | None
        Why it failed, or why it was not activated.
    fingerprint : str | None
        SHA-256 of the training matrix and id maps.
    n_users, n_items, n_events : int | None
        Size of the training data.
    """

    version: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "training"
    created_at: float = 0.0
    finished_at: float | None = None
    metrics: dict[str, Any] | None = None
    message: str | None = None
    fingerprint: str | None = None
    n_users: int | None = None
    n_items: int | None = None
    n_events: int | None = None
    heartbeat_at: float | None = None
    invalidated_at: float | None = None

    def __post_init__(self) -> None:
        if self.status not in MODEL_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(MODEL_STATUSES)}, got {self.status!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Recommendation:
    """One logged list (an impression): what was shown to whom, in which order.

    ``user_id`` is the id as stored (a pseudonym in a pseudonymised store); ``None`` for an
    anonymous session. ``request`` holds what was asked (k, filters, page, session items);
    ``parent_rec_id`` the previous page of the same chain.
    """

    rec_id: str
    kind: str
    user_id: str | None
    created_at: float
    model_version: str | None
    items: list[str]
    scores: list[float]
    propensities: list[float] | None = None
    context: dict[str, Any] | None = None
    request: dict[str, Any] = field(default_factory=dict)
    page: int = 1
    parent_rec_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RECOMMENDATION_KINDS:
            raise InvalidInput(
                f"kind must be one of {', '.join(RECOMMENDATION_KINDS)}, got {self.kind!r}"
            )
        if len(self.items) != len(self.scores):
            raise InvalidInput(
                f"items and scores must have the same length, got {len(self.items)} and "
                f"{len(self.scores)}"
            )

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: logged once per request, and asdict() deep-copies every list.
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def new_rec_id(now: float | None = None) -> str:
    """A fresh recommendation id: ``"r_"`` + 12 hex digits of its creation time (Unix
    milliseconds) + 20 random hex digits (80 bits).

    The time lets a lookup tell "issued a moment ago by another process, not stored yet" (worth
    waiting for) from "unknown" (answered at once), see :func:`rec_id_time`.
    """
    ms = int((time.time() if now is None else now) * 1000)
    return f"r_{ms:012x}{secrets.token_hex(10)}"


def rec_id_time(rec_id: str) -> float | None:
    """When ``rec_id`` was issued (Unix seconds), or ``None`` for an id not made by
    :func:`new_rec_id`."""
    if len(rec_id) != 34 or not rec_id.startswith("r_"):
        return None
    try:
        return int(rec_id[2:14], 16) / 1000.0
    except ValueError:
        return None
