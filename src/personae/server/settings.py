"""Server settings: one small frozen record, filled from arguments or from the environment.

Multi-worker uvicorn starts each worker from an import string, so ``personae serve`` passes its
options to the workers as ``PERSONAE_SERVER_*`` environment variables; :meth:`from_env` reads
them back. Nothing here is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from personae.errors import InvalidInput

#: Environment variables written by ``personae serve`` for its workers and read by
#: :meth:`ServerSettings.from_env` (the store location is ``$PERSONAE_STORE``, as everywhere).
ENV_PREFIX = "PERSONAE_SERVER_"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the HTTP server behaves.

    Parameters
    ----------
    store : str | None
        Store location (data directory, ``.db`` file or URL); ``None`` reads ``$PERSONAE_STORE``
        then the default data directory.
    models_dir : str | None
        Where trained model versions are kept; ``None``: ``<store home>/models/``.
    auth : bool, default True
        Require an API key on every ``/v1`` request. ``False`` (``personae serve --no-auth``)
        treats every request as an admin's: for local development only.
    max_body_bytes : int, default 10 MB
        Larger request bodies get 413.
    max_batch : int, default 10,000
        Most records in one batch request (users, items, events); more gets 422.
    key_cache_ttl : float, default 5.0 s
        How long an authenticated key is trusted without asking the store again: a revoked key
        stops working within this time.
    refresh_interval : float, default 1.0 s
        How often each worker checks the store for a newly activated model version.
    maintenance_interval : float, default 10.0 s
        How often each worker runs :meth:`personae.service.Engine.maintain` (fails training
        jobs whose process died, retrains after a user is forgotten).
    text_encoder : str, default "wordllama"
        Encoder of item texts and natural-language requests (``query``); "minilm" is finer
        and slower. Needs ``personae[text]``.
    retrain_every : float, default 0.0 s
        Retrain the serving model on this schedule (0: never on its own); the new version
        serves only if it validates as well.
    text_adapter : str | None
        Folder of a fine-tuned text adapter (``personae text finetune``) for requests in words.
    llm_backend : {"none", "local", "openai"}, default "none"
        Who phrases each explained item's sentence: a template, SmolLM2 offline, or an
        OpenAI-compatible endpoint at ``llm_url`` (model ``llm_model``, ``llm_timeout`` s);
        failures fall back to the template.
    retrain_after_forget : float, default 3600.0 s
        At most this long after a user is forgotten, the active model (trained on their
        events) is replaced by a retrained one; their per-user state is removed at once.
    """

    store: str | None = None
    models_dir: str | None = None
    auth: bool = True
    max_body_bytes: int = 10_000_000
    max_batch: int = 10_000
    key_cache_ttl: float = 5.0
    refresh_interval: float = 1.0
    maintenance_interval: float = 10.0
    retrain_after_forget: float = 3600.0
    retrain_every: float = 0.0
    text_encoder: str = "wordllama"
    text_adapter: str | None = None
    llm_backend: str = "none"
    llm_url: str | None = None
    llm_model: str | None = None
    llm_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(
                    f"The {name!r} setting must be an int >= 1. Got {value!r} instead."
                )
        for name in ("key_cache_ttl", "refresh_interval", "maintenance_interval",
                     "retrain_after_forget", "retrain_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInput(
                    f"The {name!r} setting must be a number of seconds >= 0. "
                    f"Got {value!r} instead."
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Settings from ``PERSONAE_STORE`` and ``PERSONAE_SERVER_<FIELD>`` variables."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if env.get("PERSONAE_STORE"):
            values["store"] = env["PERSONAE_STORE"]
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or f.name == "store":
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The environment variables that make :meth:`from_env` return these settings."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "store":
                env["PERSONAE_STORE"] = str(value)
            else:
                env[ENV_PREFIX + f.name.upper()] = (
                    ("1" if value else "0") if isinstance(value, bool) else str(value)
                )
        return env

    def with_(self, **changes: object) -> ServerSettings:
        return replace(self, **changes)  # type: ignore[arg-type]


_ARTICLE = {"int": "an", "float": "a", "bool": "a"}


def _parse(name: str, raw: str, type_: object) -> object:
    text = raw.strip()
    kind = str(type_)
    try:
        if kind == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise InvalidInput(
            f"${ENV_PREFIX}{name.upper()} must be {_ARTICLE.get(kind, 'a')} {kind}, got {raw!r}"
        ) from None
    return text or None
