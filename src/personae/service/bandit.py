"""Contextual bandits for the rank/reward API: LinUCB and Thompson sampling.

A policy scores each candidate from a feature vector ``x`` (item features, context features,
their interactions and the recommendation model's score: :func:`interaction_features`), ranks
the candidates, logs for each shown item the probability with which it was chosen (its
*propensity*), and learns online from rewards.

- :class:`LinUCB` (Li et al. 2010, one shared ridge model): the index is
  ``θ̂ᵀx + alpha · sqrt(xᵀ A⁻¹ x)`` with ``A = l2·I + Σ x xᵀ`` and ``θ̂ = A⁻¹ Σ r x``. It is
  deterministic, so each slot is filled by the best index with probability ``1 − epsilon`` and
  by a uniform draw among the remaining candidates otherwise: propensities stay > 0, which
  off-policy evaluation needs.
- :class:`Thompson`: draws ``θ̃`` from the posterior and ranks by ``θ̃ᵀx``. ``link="linear"``:
  Bayesian ridge, posterior ``N(θ̂, v² A⁻¹)``. ``link="logistic"``: for rewards in [0, 1], an
  online Laplace approximation (Chapelle & Li 2011) with one Newton step per observation:
  ``P ← P + p(1−p) x xᵀ``, ``m ← m + P⁻¹ x (r − p)``, ``p = σ(mᵀx)``. Propensities are
  estimated by Monte-Carlo over ``n_samples`` posterior draws (plus the draw actually used, so
  a chosen item's propensity is never 0).

Ranking a slate: slot ``r`` is chosen among the candidates left after slots ``1..r−1``; its
propensity is the probability of that choice given the earlier ones (for Thompson, estimated
from the draws as the probability of being the best of the remaining candidates). The first
slot's propensities over all candidates (:meth:`BanditPolicy.probabilities`) sum to 1; they
are what the off-policy estimators of :mod:`personae.evaluate.offpolicy` use.

State is saved as ``policy.json`` (class, parameters, version, counters) and ``state.npz``
(arrays; read with ``allow_pickle=False``).

The simulated environments (:class:`LinearEnvironment`, :class:`SyntheticEnvironment`) give
rounds of (candidates, features, expected rewards) with a known best action, for tests and for
``bench/bench_bandit.py``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from personae.errors import InvalidInput, PersonaeError

POLICY_FORMAT = "personae.bandit/1"
_LINKS = ("linear", "logistic")
# Recompute the inverse from scratch after this many rank-one updates (float drift).
_REFRESH_EVERY = 500


class BanditPolicy:
    """Shared machinery: state, slate ranking with propensities, updates, persistence.

    Subclasses define :meth:`_index` (the score used to pick at a slot) and, for randomised
    policies, :meth:`_slot_probabilities`.

    Parameters common to all
    ------------------------
    n_features : int, optional
        Length ``d`` of the feature vectors; taken from the first call when None.
    l2 : float > 0, default 1.0
        Prior precision (ridge penalty) of the weights.
    epsilon : float in [0, 1), default 0.0
        Probability that a slot is filled uniformly at random among the remaining candidates.
    seed : int, optional
        Seed of the policy's random draws.
    """

    name: ClassVar[str] = ""

    def __init__(self, n_features: int | None = None, l2: float = 1.0, epsilon: float = 0.0,
                 seed: int | None = None) -> None:
        self.n_features = n_features
        self.l2 = l2
        self.epsilon = epsilon
        self.seed = seed
        self._validate()
        self._rng = np.random.default_rng(seed)
        self.n_updates_ = 0
        self.reward_sum_ = 0.0
        if n_features is not None:
            self._init_state(int(n_features))

    # ------------------------------------------------------------------ parameters

    def _param_names(self) -> list[str]:
        import inspect

        sig = inspect.signature(type(self).__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate(self) -> None:
        cls = type(self).__name__
        if self.n_features is not None and (not _is_int(self.n_features)
                                            or self.n_features < 1):
            raise InvalidInput(f"The 'n_features' parameter of {cls} must be an int >= 1 or "
                               f"None. Got {self.n_features!r} instead.")
        _check(cls, "l2", self.l2, "a float > 0", lambda v: v > 0)
        _check(cls, "epsilon", self.epsilon, "a float in [0, 1)", lambda v: 0 <= v < 1)
        if self.seed is not None and not _is_int(self.seed):
            raise InvalidInput(f"The 'seed' parameter of {cls} must be an int or None. "
                               f"Got {self.seed!r} instead.")

    # ------------------------------------------------------------------ state

    def _init_state(self, d: int) -> None:
        self.n_features = d
        self.A_ = float(self.l2) * np.eye(d)  # precision
        self.b_ = np.zeros(d)
        self.A_inv_ = np.eye(d) / float(self.l2)
        self.theta_ = np.zeros(d)
        self._since_refresh = 0

    def _features(self, features: Any, n: int | None = None) -> np.ndarray:
        X = np.asarray(features, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise InvalidInput(f"features must be (n_candidates, n_features), got shape "
                               f"{X.shape}")
        if not np.isfinite(X).all():
            raise InvalidInput("features must be finite (no NaN or inf)")
        if self.n_features is None:
            self._init_state(int(X.shape[1]))
        if X.shape[1] != self.n_features:
            raise InvalidInput(f"features must have {self.n_features} columns (n_features), "
                               f"got {X.shape[1]}")
        if n is not None and X.shape[0] != n:
            raise InvalidInput(f"features must have one row per candidate ({n}), got "
                               f"{X.shape[0]}")
        return X

    def expected(self, features: Any) -> np.ndarray:
        """The current estimate of each candidate's expected reward: float64 (n,)."""
        X = self._features(features)
        return X @ self.theta_

    # ------------------------------------------------------------------ acting

    def rank(self, candidates: Sequence[Any] | np.ndarray, features: Any,
             k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Choose an order of ``candidates`` and the propensity of each choice.

        Parameters
        ----------
        candidates : sequence (n,)
            Item indices (or ids): returned in the chosen order.
        features : float array (n, n_features)
            One row per candidate.
        k : int, optional
            Slots to fill (default: all ``n``).

        Returns
        -------
        order : array (k,)
            The chosen candidates, best slot first (same type as ``candidates``).
        propensities : float64 (k,)
            ``P(slot r gets this candidate | slots 1..r−1)``, in (0, 1].
        """
        cands = np.asarray(candidates)
        n = cands.shape[0]
        if n == 0:
            raise InvalidInput("candidates must hold at least one item")
        X = self._features(features, n)
        k = n if k is None else int(k)
        if not 1 <= k <= n:
            raise InvalidInput(f"k must be in [1, {n}] (the number of candidates), got {k}")
        index, probs_fn = self._draw(X)
        remaining = np.ones(n, dtype=bool)
        order = np.empty(k, dtype=np.int64)
        prop = np.empty(k)
        for r in range(k):
            left = np.flatnonzero(remaining)
            if self.epsilon > 0 and self._rng.random() < self.epsilon:
                pick = int(left[self._rng.integers(left.size)])
            else:
                pick = int(left[np.argmax(index[left])])
            p_greedy = probs_fn(remaining)[pick]
            prop[r] = (1.0 - self.epsilon) * p_greedy + self.epsilon / left.size
            order[r] = pick
            remaining[pick] = False
        return cands[order], prop

    def probabilities(self, features: Any) -> np.ndarray:
        """The probability that each candidate fills the first slot: float64 (n,), sums to 1."""
        X = self._features(features)
        n = X.shape[0]
        _, probs_fn = self._draw(X, deterministic=True)
        return (1.0 - self.epsilon) * probs_fn(np.ones(n, dtype=bool)) + self.epsilon / n

    def _draw(self, X: np.ndarray, deterministic: bool = False) -> tuple[Any, Any]:
        """The index used to rank, and a function giving the greedy choice probabilities
        among a mask of remaining candidates."""
        index = self._index(X)

        def probs(remaining: np.ndarray) -> np.ndarray:
            out = np.zeros(X.shape[0])
            left = np.flatnonzero(remaining)
            out[left[np.argmax(index[left])]] = 1.0
            return out

        return index, probs

    def _index(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ learning

    def update(self, features: Any, reward: float | Sequence[float] | np.ndarray) -> Self:
        """Learn from the rewards of shown items.

        Parameters
        ----------
        features : float array (n_features,) or (m, n_features)
            The feature vectors of the shown items, as given to :meth:`rank`.
        reward : float or float array (m,)
            Their rewards (clicks 0/1, ratings, revenue; in [0, 1] for ``link="logistic"``).
        """
        X = self._features(features)
        r = np.asarray(reward, dtype=np.float64).reshape(-1)
        if r.size != X.shape[0]:
            raise InvalidInput(f"reward must have one value per feature row ({X.shape[0]}), "
                               f"got {r.size}")
        if not np.isfinite(r).all():
            raise InvalidInput("rewards must be finite numbers")
        self._learn(X, r)
        self.n_updates_ += int(r.size)
        self.reward_sum_ += float(r.sum())
        return self

    def _learn(self, X: np.ndarray, r: np.ndarray) -> None:
        """Ridge regression: A += Σ x xᵀ, b += Σ r x."""
        self.b_ += X.T @ r
        self._add_precision(X, np.ones(X.shape[0]))
        self.theta_ = self.A_inv_ @ self.b_

    def _add_precision(self, X: np.ndarray, w: np.ndarray) -> None:
        """A += Σ w x xᵀ, with A⁻¹ kept by Sherman–Morrison (small batches) or re-inverted."""
        self.A_ += (X * w[:, None]).T @ X
        self._since_refresh += X.shape[0]
        if X.shape[0] > 8 or self._since_refresh >= _REFRESH_EVERY:
            self.A_inv_ = _inv_spd(self.A_)
            self._since_refresh = 0
            return
        Ainv = self.A_inv_
        for x, wi in zip(X, w, strict=True):
            if wi <= 0:
                continue
            Ax = Ainv @ x
            Ainv -= np.outer(Ax, Ax) * (wi / (1.0 + wi * float(x @ Ax)))
        self.A_inv_ = Ainv

    # ------------------------------------------------------------------ persistence

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"A": self.A_, "b": self.b_, "theta": self.theta_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.A_ = np.asarray(arrays["A"], dtype=np.float64)
        self.b_ = np.asarray(arrays["b"], dtype=np.float64)
        self.theta_ = np.asarray(arrays["theta"], dtype=np.float64)
        self.A_inv_ = _inv_spd(self.A_)
        self._since_refresh = 0

    def save(self, path: str | Path) -> Path:
        """Write the policy to the folder ``path`` (``policy.json`` + ``state.npz``); returns it.

        The random generator's state is saved too, so a loaded policy continues the same draws.
        """
        from personae import __version__

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = self._arrays() if self.n_features is not None else {}
        np.savez(folder / "state.npz", allow_pickle=False, **arrays)
        meta = {
            "format": POLICY_FORMAT,
            "policy": self.name,
            "personae_version": __version__,
            "params": self.get_params(),
            "n_updates": self.n_updates_,
            "reward_sum": self.reward_sum_,
            "rng_state": _jsonable(self._rng.bit_generator.state),
            "saved_at": time.time(),
        }
        (folder / "policy.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> BanditPolicy:
        """Read a policy written by :meth:`save` (any policy when called on the base class)."""
        folder = Path(path)
        try:
            meta = json.loads((folder / "policy.json").read_text())
        except FileNotFoundError:
            raise InvalidInput(f"no bandit policy at {folder} (policy.json is missing)") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{folder / 'policy.json'} is not valid JSON: {exc}") from None
        if meta.get("format") != POLICY_FORMAT:
            raise InvalidInput(f"{folder} holds format {meta.get('format')!r}; this personae "
                               f"reads {POLICY_FORMAT!r}")
        policy_cls = POLICIES.get(meta.get("policy", ""))
        if policy_cls is None:
            raise InvalidInput(f"{folder} holds an unknown policy {meta.get('policy')!r}; "
                               f"expected one of {', '.join(POLICIES)}")
        if cls is not BanditPolicy and not issubclass(policy_cls, cls):
            raise InvalidInput(f"{folder} holds a {meta['policy']!r} policy, not {cls.name!r}")
        policy = policy_cls(**meta["params"])
        with np.load(folder / "state.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if arrays:
            policy._init_state(int(meta["params"]["n_features"]))
            policy._restore(arrays)
        policy.n_updates_ = int(meta.get("n_updates", 0))
        policy.reward_sum_ = float(meta.get("reward_sum", 0.0))
        if meta.get("rng_state"):
            policy._rng.bit_generator.state = meta["rng_state"]
        return policy


class LinUCB(BanditPolicy):
    """LinUCB with one shared ridge model over candidate features.

    Parameters
    ----------
    alpha : float >= 0, default 1.0
        Width of the confidence bonus ``alpha · sqrt(xᵀA⁻¹x)``; 0 is pure exploitation.
    n_features, l2, epsilon, seed
        See :class:`BanditPolicy`. ``epsilon`` (default 0.05) keeps every propensity > 0.

    Attributes
    ----------
    A_ : float64 (d, d)
        ``l2·I + Σ x xᵀ``.
    b_ : float64 (d,)
        ``Σ r x``.
    theta_ : float64 (d,)
        ``A⁻¹ b``.
    """

    name: ClassVar[str] = "linucb"

    def __init__(self, alpha: float = 1.0, n_features: int | None = None, l2: float = 1.0,
                 epsilon: float = 0.05, seed: int | None = None) -> None:
        self.alpha = alpha
        super().__init__(n_features=n_features, l2=l2, epsilon=epsilon, seed=seed)

    def _validate(self) -> None:
        super()._validate()
        _check("LinUCB", "alpha", self.alpha, "a float >= 0", lambda v: v >= 0)

    def _index(self, X: np.ndarray) -> np.ndarray:
        width = np.sqrt(np.maximum(((X @ self.A_inv_) * X).sum(axis=1), 0.0))
        return X @ self.theta_ + float(self.alpha) * width


class Thompson(BanditPolicy):
    """Thompson sampling with a linear-Gaussian or a logistic (Laplace) posterior.

    Parameters
    ----------
    link : {"linear", "logistic"}, default "linear"
        ``linear``: Bayesian ridge regression; ``logistic``: rewards in [0, 1], online Laplace
        approximation of the logistic-regression posterior.
    v : float > 0, default 1.0
        Scale of the posterior covariance used for the draws (``v²·A⁻¹``); larger explores
        more.
    n_samples : int >= 1, default 256
        Posterior draws used to estimate propensities.
    n_features, l2, epsilon, seed
        See :class:`BanditPolicy` (``epsilon`` default 0: the draws already explore).

    Attributes
    ----------
    A_ : float64 (d, d)
        The posterior precision.
    theta_ : float64 (d,)
        The posterior mean.
    b_ : float64 (d,)
        ``Σ r x`` (``linear``; kept but unused for ``logistic``).
    """

    name: ClassVar[str] = "thompson"

    def __init__(self, link: str = "linear", v: float = 1.0, n_samples: int = 256,
                 n_features: int | None = None, l2: float = 1.0, epsilon: float = 0.0,
                 seed: int | None = None) -> None:
        self.link = link
        self.v = v
        self.n_samples = n_samples
        self._chol_of: np.ndarray | None = None  # the A⁻¹ whose factor is cached
        self._chol_version = -1
        self._chol_cache = np.zeros((0, 0))
        super().__init__(n_features=n_features, l2=l2, epsilon=epsilon, seed=seed)

    def _validate(self) -> None:
        super()._validate()
        if self.link not in _LINKS:
            raise InvalidInput(f"The 'link' parameter of Thompson must be one of {_LINKS}. "
                               f"Got {self.link!r} instead.")
        _check("Thompson", "v", self.v, "a float > 0", lambda v: v > 0)
        if not _is_int(self.n_samples) or self.n_samples < 1:
            raise InvalidInput(f"The 'n_samples' parameter of Thompson must be an int >= 1. "
                               f"Got {self.n_samples!r} instead.")

    def expected(self, features: Any) -> np.ndarray:
        """Posterior-mean expected reward (``σ(θᵀx)`` for ``logistic``): float64 (n,)."""
        z = super().expected(features)
        return _sigmoid(z) if self.link == "logistic" else z

    def _samples(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, d) posterior draws of θ."""
        if self._chol_of is not self.A_inv_ or self._chol_version != self.n_updates_:
            self._chol_cache = _chol(self.A_inv_)
            self._chol_of, self._chol_version = self.A_inv_, self.n_updates_
        L = self._chol_cache
        return self.theta_[None, :] + float(self.v) * rng.standard_normal((n, L.shape[0])) @ L.T

    def _draw(self, X: np.ndarray, deterministic: bool = False) -> tuple[Any, Any]:
        rng = np.random.default_rng(0 if self.seed is None else self.seed + 1) \
            if deterministic else self._rng
        used = self._samples(1, rng)  # the draw that ranks
        index = X @ used[0]
        # Monte-Carlo draws for propensities; the used draw counts as one of them.
        mc = np.vstack([used, self._samples(int(self.n_samples), rng)]) if not deterministic \
            else self._samples(int(self.n_samples), rng)
        S = mc @ X.T  # (draws, n)

        def probs(remaining: np.ndarray) -> np.ndarray:
            out = np.zeros(X.shape[0])
            left = np.flatnonzero(remaining)
            best = left[np.argmax(S[:, left], axis=1)]
            np.add.at(out, best, 1.0)
            return out / S.shape[0]

        return index, probs

    def _learn(self, X: np.ndarray, r: np.ndarray) -> None:
        if self.link == "linear":
            super()._learn(X, r)
            return
        if (r < 0).any() or (r > 1).any():
            raise InvalidInput("Thompson(link='logistic') needs rewards in [0, 1]")
        self.b_ += X.T @ r
        for x, y in zip(X, r, strict=True):  # one Newton step per observation
            p = float(_sigmoid(x @ self.theta_))
            self._add_precision(x[None, :], np.array([max(p * (1.0 - p), 1e-6)]))
            self.theta_ = self.theta_ + self.A_inv_ @ x * (y - p)

    def _index(self, X: np.ndarray) -> np.ndarray:  # used only through _draw
        return X @ self.theta_


class Greedy(BanditPolicy):
    """Pure exploitation of the same ridge model (``epsilon=0``) or ε-greedy (``epsilon>0``):
    the baselines LinUCB and Thompson are compared with."""

    name: ClassVar[str] = "greedy"

    def _index(self, X: np.ndarray) -> np.ndarray:
        return X @ self.theta_


class UniformRandom(BanditPolicy):
    """Every order equally likely: the random baseline, and a logging policy whose
    propensities are exactly ``1 / n_remaining``."""

    name: ClassVar[str] = "random"

    def _index(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._rng.random(X.shape[0]))

    def _draw(self, X: np.ndarray, deterministic: bool = False) -> tuple[Any, Any]:
        index = self._rng.random(X.shape[0])

        def probs(remaining: np.ndarray) -> np.ndarray:
            out: np.ndarray = remaining.astype(np.float64) / float(remaining.sum())
            return out

        return index, probs


#: Registered policies: the names ``save`` writes and ``load`` and the CLI accept.
POLICIES: dict[str, type[BanditPolicy]] = {
    "linucb": LinUCB, "thompson": Thompson, "greedy": Greedy, "random": UniformRandom,
}


def create_policy(name: str, **params: Any) -> BanditPolicy:
    """A new policy by registry name; an unknown name lists the valid ones."""
    try:
        return POLICIES[name](**params)
    except KeyError:
        raise InvalidInput(f"unknown bandit policy {name!r}; expected one of "
                           f"{', '.join(POLICIES)}") from None


# ---------------------------------------------------------------------- features


def one_hot(value: Any, vocabulary: Sequence[Any]) -> np.ndarray:
    """float64 (len(vocabulary),): 1 at ``value``'s position, all 0 for an unknown value."""
    out = np.zeros(len(vocabulary))
    for n, v in enumerate(vocabulary):
        if v == value:
            out[n] = 1.0
            break
    return out


def context_vector(context: Mapping[str, Any] | None,
                   vocabularies: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """One-hot blocks of the context fields, in the order of ``vocabularies``.

    >>> context_vector({"device": "tv"}, {"device": ["mobile", "tv"], "day": ["wd", "we"]})
    array([0., 1., 0., 0.])
    """
    ctx = context or {}
    parts = [one_hot(ctx.get(key), vocab) for key, vocab in vocabularies.items()]
    return np.concatenate(parts) if parts else np.zeros(0)


def interaction_features(item_features: np.ndarray, context: np.ndarray | None = None,
                         scores: np.ndarray | None = None, *,
                         intercept: bool = True) -> np.ndarray:
    """Candidate features ``[1, score, item, vec(item ⊗ context)]``.

    The outer product lets one shared linear model learn how the context changes the value of
    each item feature (comedies on mobile, documentaries in the morning).

    Parameters
    ----------
    item_features : float array (n, a)
    context : float array (c,), optional
        The request's context features (e.g. :func:`context_vector`).
    scores : float array (n,), optional
        The recommendation model's score of each candidate (standardise it across requests:
        the bandit learns one weight for it).
    intercept : bool, default True

    Returns
    -------
    float64 (n, 1 + 1 + a + a·c) (without the parts not given).
    """
    F = np.asarray(item_features, dtype=np.float64)
    if F.ndim != 2:
        raise InvalidInput(f"item_features must be (n, a), got shape {F.shape}")
    n = F.shape[0]
    parts = []
    if intercept:
        parts.append(np.ones((n, 1)))
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if s.size != n:
            raise InvalidInput(f"scores must have one value per candidate ({n}), got {s.size}")
        parts.append(s[:, None])
    parts.append(F)
    if context is not None:
        c = np.asarray(context, dtype=np.float64).reshape(-1)
        parts.append((F[:, :, None] * c[None, None, :]).reshape(n, -1))
    return np.hstack(parts)


def log_record(features: np.ndarray, action: int, reward: float, propensity: float, *,
               candidates: Sequence[Any] | None = None,
               context: Mapping[str, Any] | None = None,
               expected: Sequence[float] | None = None) -> dict[str, Any]:
    """One line of an off-policy log (JSON-ready), as :mod:`personae.evaluate.offpolicy` and
    ``personae evaluate-off-policy`` read it.

    ``features`` (n, d) are the candidates' features, ``action`` the position of the shown
    item among them, ``propensity`` the probability the logging policy chose it.
    ``expected`` (simulations only) carries the true expected reward of each candidate.
    """
    X = np.asarray(features, dtype=np.float64)
    out: dict[str, Any] = {"features": np.round(X, 6).tolist(), "action": int(action),
                           "reward": float(reward), "propensity": float(propensity)}
    if candidates is not None:
        out["candidates"] = [c.item() if isinstance(c, np.generic) else c for c in candidates]
    if context is not None:
        out["context"] = dict(context)
    if expected is not None:
        out["expected"] = [float(e) for e in expected]
    return out


# ---------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class Round:
    """One simulated request: candidates, their features and their true expected rewards."""

    candidates: np.ndarray  # int64 (n,) item indices
    features: np.ndarray  # float64 (n, d)
    expected: np.ndarray  # float64 (n,) true expected reward of each candidate
    context: dict[str, Any]
    user: int = -1

    @property
    def best(self) -> float:
        return float(self.expected.max())


class LinearEnvironment:
    """Planted linear (or logistic) rewards: ``E[r | x] = θ*ᵀx`` or ``σ(θ*ᵀx)``.

    Each round draws ``n_candidates`` feature vectors ``x ~ N(0, I)`` (the first column is an
    intercept of 1); rewards are Bernoulli(``E[r|x]``) for ``logistic``, Gaussian around it
    (``noise`` sd) for ``linear``.
    """

    def __init__(self, theta: np.ndarray, *, n_candidates: int = 10, link: str = "logistic",
                 noise: float = 0.1, seed: int = 0) -> None:
        self.theta = np.asarray(theta, dtype=np.float64)
        self.n_candidates = n_candidates
        self.link = link
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    @property
    def n_features(self) -> int:
        return int(self.theta.size)

    def round(self) -> Round:
        X = self.rng.standard_normal((self.n_candidates, self.theta.size))
        X[:, 0] = 1.0
        z = X @ self.theta
        mean = _sigmoid(z) if self.link == "logistic" else z
        return Round(np.arange(self.n_candidates), X, mean, {})

    def reward(self, rnd: Round, position: int) -> float:
        mean = float(rnd.expected[position])
        if self.link == "logistic":
            return float(self.rng.random() < mean)
        return mean + self.noise * float(self.rng.standard_normal())


class SyntheticEnvironment:
    """Rounds drawn from :mod:`personae.data.synthetic`'s planted truth.

    A round is a user (drawn by activity), a context (device, daypart, day and weather drawn
    uniformly) and ``n_candidates`` items (drawn by popularity). A shown item is clicked with
    probability ``σ(a + b · (z_ui + e_ctx(i)))``: ``z_ui`` is the generator's affinity
    (:meth:`SyntheticTruth.affinity`: taste, style, quality) and ``e_ctx(i)`` the planted
    context effect on the item's categories (mean over its categories), so the best item
    depends on the context.

    Candidate features are :func:`interaction_features` of the item's category indicators with
    the context's one-hot vector, plus ``scores`` — the recommendation model's score of the
    item for the user (pass a ``(n_users, n_items)`` array, e.g. EASE fit on the generated
    events, standardised), which carries the user's taste.
    """

    def __init__(self, data: Any, *, scores: np.ndarray | None = None, n_candidates: int = 20,
                 a: float = -2.0, b: float = 1.0, seed: int = 0) -> None:
        from personae.data.synthetic import CONTEXT_FACTORS

        self.truth = data.truth
        self.factors = CONTEXT_FACTORS
        self.scores = None if scores is None else np.asarray(scores, dtype=np.float64)
        self.n_candidates = n_candidates
        self.a, self.b = a, b
        self.rng = np.random.default_rng(seed)
        t = self.truth
        self._cats = t.item_category_matrix
        self._n_cats = self._cats.sum(axis=1)
        act = t.user_activity.astype(np.float64)
        self._p_user = act / act.sum()
        self._p_item = t.item_popularity / t.item_popularity.sum()
        self._affinity: dict[int, np.ndarray] = {}

    @property
    def n_features(self) -> int:
        a = self._cats.shape[1]
        c = sum(len(v) for v in self.factors.values())
        return 1 + (self.scores is not None) + a + a * c

    def round(self) -> Round:
        rng = self.rng
        u = int(rng.choice(self._p_user.size, p=self._p_user))
        ctx = {f: vals[int(rng.integers(len(vals)))] for f, vals in self.factors.items()}
        items = rng.choice(self._p_item.size, size=self.n_candidates, replace=False,
                           p=self._p_item)
        if u not in self._affinity:
            self._affinity[u] = self.truth.affinity(u)
        effect = self._cats[items] @ self.truth.context_effect(ctx) / self._n_cats[items]
        z = self._affinity[u][items] + effect
        mean = _sigmoid(self.a + self.b * z)
        cvec = context_vector(ctx, self.factors)
        s = None if self.scores is None else self.scores[u, items]
        X = interaction_features(self._cats[items], cvec, s)
        return Round(items.astype(np.int64), X, mean, ctx, u)

    def reward(self, rnd: Round, position: int) -> float:
        return float(self.rng.random() < rnd.expected[position])


# ---------------------------------------------------------------------- helpers


def _sigmoid(z: Any) -> Any:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def _inv_spd(A: np.ndarray) -> np.ndarray:
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError as exc:
        raise PersonaeError(f"the bandit's precision matrix is not positive definite: {exc}") \
            from None
    Linv = np.linalg.solve(L, np.eye(A.shape[0]))
    return Linv.T @ Linv


def _chol(S: np.ndarray) -> np.ndarray:
    S = 0.5 * (S + S.T)
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        w, V = np.linalg.eigh(S)
        return V * np.sqrt(np.clip(w, 0.0, None))[None, :]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check(cls: str, name: str, value: Any, expected: str, ok: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) \
            or not math.isfinite(float(value)) or not ok(float(value)):
        raise InvalidInput(f"The {name!r} parameter of {cls} must be {expected}. "
                           f"Got {value!r} instead.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value


__all__ = [
    "POLICIES",
    "BanditPolicy",
    "Greedy",
    "LinUCB",
    "LinearEnvironment",
    "Round",
    "SyntheticEnvironment",
    "Thompson",
    "UniformRandom",
    "context_vector",
    "create_policy",
    "interaction_features",
    "log_record",
    "one_hot",
]
