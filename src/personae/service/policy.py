"""The contextual bandit behind ``rank``/``reward``: features, persistence, online learning.

A :class:`BanditRanker` turns a ranking request into one feature row per candidate, lets a
policy of :mod:`personae.service.bandit` (LinUCB, Thompson sampling) choose the order with a
propensity per slot, and learns from each reward. Features are hashed into fixed-width blocks,
so that a policy survives catalogue changes and new context keys::

    x = [1, z(model score), item ⊗ context]   (see bandit.interaction_features)
    item    = categories hashed into ITEM_BUCKETS (multi-hot)
    context = request key=value pairs and the request time's hour bucket / weekend, hashed
              into CONTEXT_BUCKETS

The policy is saved under ``<models_dir>/bandit/<policy>/`` every ``save_every`` updates and
when the engine closes, and loaded at start. Each serving process learns from the rewards it
receives (state is not shared between workers between saves).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from personae.errors import InvalidInput, PersonaeError

log = logging.getLogger("personae.service")

ITEM_BUCKETS = 32
CONTEXT_BUCKETS = 16
#: Policies the ranking API accepts (besides "model": the recommendation model's order).
RANK_POLICIES = ("model", "linucb", "thompson")


def _bucket(token: str, n: int) -> int:
    return zlib.crc32(token.encode("utf-8", "surrogatepass")) % n


def item_vector(categories: Sequence[str]) -> np.ndarray:
    v = np.zeros(ITEM_BUCKETS)
    for c in categories:
        v[_bucket(f"cat:{c}", ITEM_BUCKETS)] = 1.0
    return v


def context_vector(context: Mapping[str, Any] | None, ts: float | None = None) -> np.ndarray:
    """Hashed request context plus the time's hour bucket and weekend flag."""
    from personae.profile.context import context_features

    feats = context_features(ts, dict(context or {}))
    v = np.zeros(CONTEXT_BUCKETS)
    for key, value in feats.items():
        if key in ("hour", "weekday", "ts") or isinstance(value, dict | list):
            continue
        v[_bucket(f"{key}={value}", CONTEXT_BUCKETS)] = 1.0
    return v


def standardize(scores: Sequence[float]) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.size < 2 or not np.isfinite(s).all() or s.std() == 0:
        return np.zeros(s.size)
    return (s - s.mean()) / s.std()


class BanditRanker:
    """One policy per name, loaded lazily, learning online, saved now and then."""

    def __init__(self, folder: Path, *, alpha: float = 1.0, save_every: int = 20) -> None:
        self.folder = folder
        self.alpha = alpha
        self.save_every = save_every
        self._policies: dict[str, Any] = {}
        self._unsaved: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def n_features() -> int:
        return 2 + ITEM_BUCKETS + ITEM_BUCKETS * CONTEXT_BUCKETS

    def features(self, categories: Sequence[Sequence[str]], model_scores: Sequence[float],
                 context: Mapping[str, Any] | None, ts: float | None) -> np.ndarray:
        """Rows ``[1, z(score), item, item ⊗ context]`` for the candidates: (n, d)."""
        from personae.service.bandit import interaction_features

        items = np.stack([item_vector(c) for c in categories]) if categories else \
            np.zeros((0, ITEM_BUCKETS))
        return interaction_features(items, context_vector(context, ts),
                                    standardize(model_scores))

    def policy(self, name: str) -> Any:
        from personae.service.bandit import BanditPolicy, create_policy

        if name not in RANK_POLICIES or name == "model":
            raise InvalidInput(f"policy must be one of {', '.join(RANK_POLICIES)}, got {name!r}")
        with self._lock:
            pol = self._policies.get(name)
            if pol is None:
                path = self.folder / name
                if (path / "policy.json").exists():
                    try:
                        pol = BanditPolicy.load(path)
                    except PersonaeError as exc:
                        log.error("cannot load the %s policy at %s (%s); starting afresh",
                                  name, path, exc)
                if pol is None or pol.n_features != self.n_features():
                    params = {"alpha": self.alpha} if name == "linucb" else {}
                    pol = create_policy(name, n_features=self.n_features(), **params)
                self._policies[name] = pol
            return pol

    def rank(self, name: str, X: np.ndarray, k: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order, propensities, explored) for the rows of ``X``: ``explored[r]`` is true when
        slot ``r`` did not get the best expected candidate left (the policy explored)."""
        pol = self.policy(name)
        with self._lock:
            order, prop = pol.rank(np.arange(X.shape[0]), X, k)
            expected = pol.expected(X)
        explored = np.zeros(order.size, dtype=bool)
        left = np.ones(X.shape[0], dtype=bool)
        for r, j in enumerate(order.tolist()):
            explored[r] = expected[j] < expected[left].max() - 1e-12
            left[j] = False
        return order, prop, explored

    def learn(self, name: str, x: np.ndarray, reward: float) -> None:
        pol = self.policy(name)
        with self._lock:
            pol.update(x[None, :], [float(reward)])
            self._unsaved[name] = self._unsaved.get(name, 0) + 1
            due = self._unsaved[name] >= self.save_every
        if due:
            self.save(name)

    def save(self, name: str | None = None) -> None:
        """Write the policies with unsaved updates (or ``name``) to disk."""
        with self._lock:
            names = [name] if name is not None else [n for n, c in self._unsaved.items() if c]
            for n in names:
                pol = self._policies.get(n)
                if pol is None:
                    continue
                started = time.perf_counter()
                pol.save(self.folder / n)
                self._unsaved[n] = 0
                log.debug("saved the %s policy in %.3f s", n, time.perf_counter() - started)
