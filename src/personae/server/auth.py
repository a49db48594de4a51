"""API keys on the request path: roles, and a small in-memory cache in front of the store.

Roles nest: ``admin`` ⊇ ``writer`` ⊇ ``reader``. A key is sent as ``Authorization: Bearer
<secret>`` or ``X-API-Key: <secret>``. Asking the store on every request would cost a query per
request, so each worker remembers the answer for a secret (keyed by its SHA-256, never the
secret itself) for ``ttl`` seconds: a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

#: Key of a route's ``openapi_extra`` naming the role it needs (also shown in the schema).
ROLE_KEY = "x-required-role"

#: Roles from least to most privileged; each includes the ones before it.
ROLES = ("reader", "writer", "admin")
ROLE_RANK = {name: rank for rank, name in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's public id, name and role."""

    key_id: str
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


#: The caller when the server runs with ``--no-auth`` (local development).
LOCAL_ADMIN = Principal(key_id="local", name="no-auth", role="admin")


class KeyCache:
    """Secret → :class:`Principal` (or ``None`` for an unknown/revoked secret), for ``ttl`` s.

    Bounded: past ``max_entries`` the cache is cleared, so a flood of wrong keys cannot grow it.
    """

    def __init__(self, store: Any, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def cached(self, secret: str) -> tuple[Principal | None] | None:
        """``(principal,)`` when the answer for ``secret`` is cached and fresh, else ``None``."""
        hit = self._entries.get(_digest(secret))
        if hit is not None and hit[0] > time.monotonic():
            return (hit[1],)
        return None

    def lookup(self, secret: str) -> Principal | None:
        """The caller with this secret (``None``: unknown or revoked), from the cache or the
        store."""
        digest = _digest(secret)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        key = self.store.authenticate(secret)
        principal = None if key is None else Principal(key.key_id, key.name, key.role)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (now + self.ttl, principal)
        return principal

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The secret sent with a request, or ``None``; a malformed Authorization header is
    treated as no key."""
    if x_api_key:
        return x_api_key.strip() or None
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None
