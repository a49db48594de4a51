"""Keyed pseudonyms for user ids.

With a secret key configured, the store never sees raw user ids: each is replaced by
``"p" + HMAC-SHA256(key, raw_id)`` (first 160 bits, hex). The same raw id always gives the same
pseudonym under the same key, so the API keeps accepting raw ids; without the key the pseudonyms
cannot be linked back to people (short of guessing ids *and* knowing the key).
"""

from __future__ import annotations

import hashlib
import hmac

from personae.errors import InvalidInput

_CHECK_MESSAGE = b"personae-pseudonym-key-check-v1"
_MIN_KEY_BYTES = 16


class Pseudonymizer:
    """Map raw ids to keyed pseudonyms.

    Parameters
    ----------
    key : str | bytes
        The secret, at least 16 bytes. Keep it outside the database (an environment variable or
        a secrets manager); losing it makes raw ids unmappable to the stored pseudonyms.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(raw) < _MIN_KEY_BYTES:
            raise InvalidInput(
                f"the pseudonymisation key must be at least {_MIN_KEY_BYTES} bytes, "
                f"got {len(raw)}; generate one with: python -c 'import secrets; "
                "print(secrets.token_hex(32))'"
            )
        self._key = raw

    def __call__(self, raw_id: str) -> str:
        digest = hmac.new(self._key, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return "p" + digest[:40]

    def check_value(self) -> str:
        """A value stored with the store to recognise the right key later (not the key itself)."""
        return hmac.new(self._key, _CHECK_MESSAGE, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymizer(key=<hidden>)"
