"""Off-policy evaluation: the value of a new policy estimated from another policy's logs.

A log holds rounds ``(x_i, a_i, r_i, μ_i)``: the candidates' features ``x_i`` (n_i × d), the
position ``a_i`` of the item the logging policy showed, its reward ``r_i`` and the probability
``μ_i = μ(a_i | x_i)`` with which the logging policy chose it. For a target policy ``π`` with
``w_i = π(a_i | x_i) / μ_i``:

- **IPS** (inverse propensity scoring): ``V = (1/N) Σ w_i r_i``; unbiased when ``μ > 0``
  wherever ``π > 0``. ``clip`` caps the weights (biased, lower variance).
- **SNIPS** (self-normalised IPS): ``V = Σ w_i r_i / Σ w_i``; slightly biased, far less
  variance when weights are large.
- **DR** (doubly robust, Dudík et al. 2011): ``V = (1/N) Σ [ q̂_π(x_i) + w_i (r_i − q̂(x_i, a_i)) ]``
  with a reward model ``q̂`` and ``q̂_π(x) = Σ_a π(a|x) q̂(x, a)``; unbiased if either the
  propensities or the reward model are right.
- **DM** (direct method): ``(1/N) Σ q̂_π(x_i)``, the reward model alone, for reference.

Standard errors are the sample standard deviation of the per-round terms over ``sqrt(N)``
(SNIPS: the delta method); intervals are ``± 1.96`` standard errors.

The JSON-lines log format is :func:`personae.service.bandit.log_record`'s: one object per line
with ``features``, ``action``, ``reward``, ``propensity`` (and optionally ``candidates``,
``context``, ``expected``: the true expected rewards in simulations, which give the ``truth``).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from personae.errors import ImportFormatError, InvalidInput

#: Estimators computed by :func:`evaluate_policy`, in report order.
ESTIMATORS = ("ips", "snips", "dr", "dm")
_Z = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimate of a policy's expected reward per round."""

    estimator: str
    value: float
    stderr: float
    n: int
    #: Effective sample size of the importance weights, ``(Σw)² / Σw²`` (NaN for DM).
    ess: float = float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        """The 95 % normal interval."""
        return self.value - _Z * self.stderr, self.value + _Z * self.stderr

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {"estimator": self.estimator, "value": _num(self.value),
                "stderr": _num(self.stderr), "ci95": [_num(lo), _num(hi)], "n": self.n,
                "ess": _num(self.ess)}


# ---------------------------------------------------------------------- the estimators


def ips(rewards: Any, target: Any, propensities: Any, *, clip: float | None = None
        ) -> Estimate:
    """Inverse propensity scoring.

    Parameters
    ----------
    rewards : float array (N,)
        ``r_i``.
    target : float array (N,)
        ``π(a_i | x_i)``: the target policy's probability of the logged action.
    propensities : float array (N,)
        ``μ(a_i | x_i)`` in (0, 1].
    clip : float, optional
        Cap on the importance weights.
    """
    r, w = _weights(rewards, target, propensities, clip)
    terms = w * r
    return Estimate("ips", float(terms.mean()), _se(terms), r.size, _ess(w))


def snips(rewards: Any, target: Any, propensities: Any, *, clip: float | None = None
          ) -> Estimate:
    """Self-normalised IPS: ``Σ w r / Σ w`` (NaN when every weight is 0)."""
    r, w = _weights(rewards, target, propensities, clip)
    total = w.sum()
    if total <= 0:
        return Estimate("snips", float("nan"), float("nan"), r.size, _ess(w))
    value = float((w * r).sum() / total)
    se = float(np.sqrt((w ** 2 * (r - value) ** 2).sum()) / total)
    return Estimate("snips", value, se, r.size, _ess(w))


def doubly_robust(rewards: Any, target: Any, propensities: Any, q_logged: Any, q_target: Any,
                  *, clip: float | None = None) -> Estimate:
    """Doubly robust estimate.

    Parameters
    ----------
    rewards, target, propensities, clip
        As in :func:`ips`.
    q_logged : float array (N,)
        The reward model's prediction for the logged action, ``q̂(x_i, a_i)``.
    q_target : float array (N,)
        Its expectation under the target policy, ``Σ_a π(a | x_i) q̂(x_i, a)``.
    """
    r, w = _weights(rewards, target, propensities, clip)
    ql = _vector(q_logged, "q_logged", r.size)
    qt = _vector(q_target, "q_target", r.size)
    terms = qt + w * (r - ql)
    return Estimate("dr", float(terms.mean()), _se(terms), r.size, _ess(w))


def direct_method(q_target: Any) -> Estimate:
    """The reward model alone: the mean of ``Σ_a π(a | x_i) q̂(x_i, a)``."""
    qt = _vector(q_target, "q_target", None)
    return Estimate("dm", float(qt.mean()), _se(qt), qt.size)


# ---------------------------------------------------------------------- logs


@dataclass(frozen=True, eq=False)
class BanditLog:
    """Logged rounds of a bandit (see the module docstring for the fields)."""

    features: list[np.ndarray]  # N arrays (n_i, d)
    actions: np.ndarray  # int64 (N,)
    rewards: np.ndarray  # float64 (N,)
    propensities: np.ndarray  # float64 (N,)
    expected: list[np.ndarray] | None = None  # N arrays (n_i,): true expected rewards

    def __len__(self) -> int:
        return int(self.actions.size)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], *, source: str = "<records>"
                     ) -> BanditLog:
        """From dicts as :func:`personae.service.bandit.log_record` writes them."""
        feats, acts, rews, props, exps = [], [], [], [], []
        has_expected = True
        d = None
        for line, rec in enumerate(records, 1):
            try:
                X = np.asarray(rec["features"], dtype=np.float64)
                a = rec["action"]
                r = float(rec["reward"])
                p = float(rec["propensity"])
            except KeyError as exc:
                raise ImportFormatError(source, line, f"missing field {exc.args[0]!r}; a "
                                        "record needs features, action, reward, propensity") \
                    from None
            except (TypeError, ValueError) as exc:
                raise ImportFormatError(source, line, f"bad value: {exc}") from None
            if X.ndim != 2 or X.shape[0] == 0:
                raise ImportFormatError(source, line, "features must be a non-empty list of "
                                        f"feature rows, got shape {X.shape}")
            if d is None:
                d = X.shape[1]
            elif X.shape[1] != d:
                raise ImportFormatError(source, line, f"features have {X.shape[1]} columns; "
                                        f"earlier records have {d}")
            if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < X.shape[0]:
                raise ImportFormatError(source, line, f"action must be the position of the "
                                        f"shown item among the {X.shape[0]} candidates, "
                                        f"got {a!r}")
            if not (0.0 < p <= 1.0):
                raise ImportFormatError(source, line, f"propensity must be in (0, 1], got {p}")
            if not math.isfinite(r):
                raise ImportFormatError(source, line, f"reward must be finite, got {r}")
            feats.append(X)
            acts.append(a)
            rews.append(r)
            props.append(p)
            if "expected" in rec and has_expected:
                e = np.asarray(rec["expected"], dtype=np.float64)
                if e.shape != (X.shape[0],):
                    raise ImportFormatError(source, line, "expected must hold one value per "
                                            "candidate")
                exps.append(e)
            else:
                has_expected = False
        if not feats:
            raise InvalidInput(f"{source} holds no logged rounds")
        return cls(feats, np.asarray(acts, dtype=np.int64), np.asarray(rews),
                   np.asarray(props), exps if has_expected else None)

    @classmethod
    def from_jsonl(cls, path: str | Path) -> BanditLog:
        """Read a JSON-lines log (``.gz`` too)."""
        p = Path(path)
        opener = gzip.open if p.suffix == ".gz" else open

        def rows() -> Iterable[Mapping[str, Any]]:
            with opener(p, "rt", encoding="utf-8") as fh:
                for line, text in enumerate(fh, 1):
                    if not text.strip():
                        continue
                    try:
                        yield json.loads(text)
                    except json.JSONDecodeError as exc:
                        raise ImportFormatError(str(p), line, f"not JSON: {exc}") from None

        return cls.from_records(rows(), source=str(p))

    def write_jsonl(self, path: str | Path) -> Path:
        """Write the log in the format :meth:`from_jsonl` reads."""
        p = Path(path)
        with p.open("w", encoding="utf-8") as fh:
            for i in range(len(self)):
                rec: dict[str, Any] = {"features": self.features[i].tolist(),
                                       "action": int(self.actions[i]),
                                       "reward": float(self.rewards[i]),
                                       "propensity": float(self.propensities[i])}
                if self.expected is not None:
                    rec["expected"] = self.expected[i].tolist()
                fh.write(json.dumps(rec) + "\n")
        return p


TargetPolicy = Callable[[np.ndarray], np.ndarray]


def evaluate_policy(log: BanditLog, policy: Any, *, reward_model: str = "ridge",
                    l2: float = 1.0, clip: float | None = None, folds: int = 2
                    ) -> dict[str, Any]:
    """Estimate the expected reward per round of ``policy`` from ``log``.

    Parameters
    ----------
    log : BanditLog
    policy : BanditPolicy or callable
        Anything with ``probabilities(features) -> (n,)`` (a
        :class:`~personae.service.bandit.BanditPolicy`), or a function of the same signature:
        the probability of each candidate being shown first; each must sum to 1.
    reward_model : {"ridge", "none"}, default "ridge"
        ``ridge``: ``q̂`` is a ridge regression of the reward on the shown item's features,
        cross-fitted over ``folds`` folds (each round is predicted by a model that did not see
        it); ``none``: no DR/DM.
    l2 : float > 0, default 1.0
        Ridge penalty of the reward model.
    clip : float, optional
        Cap on importance weights (IPS, SNIPS, DR).
    folds : int >= 2, default 2

    Returns
    -------
    dict with ``estimates`` (estimator name → :class:`Estimate`), ``logged`` (the logging
    policy's mean reward, an Estimate), ``n`` and, when the log has expected rewards,
    ``truth``: the target policy's exact expected reward on the logged contexts.
    """
    if reward_model not in ("ridge", "none"):
        raise InvalidInput(f"reward_model must be 'ridge' or 'none'. Got {reward_model!r} "
                           "instead.")
    probs_of = policy.probabilities if hasattr(policy, "probabilities") else policy
    if not callable(probs_of):
        raise InvalidInput("policy must have a probabilities(features) method or be a "
                           "function of the features")
    n = len(log)
    pi = []
    for i, X in enumerate(log.features):
        p = np.asarray(probs_of(X), dtype=np.float64).reshape(-1)
        if p.shape != (X.shape[0],) or (p < -1e-12).any() or abs(p.sum() - 1.0) > 1e-6:
            raise InvalidInput(f"the target policy's probabilities for round {i} must be "
                               f"{X.shape[0]} values >= 0 summing to 1, got {p!r}")
        pi.append(p)
    target = np.array([pi[i][log.actions[i]] for i in range(n)])
    out: dict[str, Any] = {"n": n, "estimates": {}}
    est = out["estimates"]
    est["ips"] = ips(log.rewards, target, log.propensities, clip=clip)
    est["snips"] = snips(log.rewards, target, log.propensities, clip=clip)
    if reward_model == "ridge":
        q = _cross_fit(log, l2, folds)
        q_logged = np.array([q[i][log.actions[i]] for i in range(n)])
        q_target = np.array([float(pi[i] @ q[i]) for i in range(n)])
        est["dr"] = doubly_robust(log.rewards, target, log.propensities, q_logged, q_target,
                                  clip=clip)
        est["dm"] = direct_method(q_target)
    out["logged"] = Estimate("logged", float(log.rewards.mean()), _se(log.rewards), n)
    if log.expected is not None:
        truth = np.array([float(pi[i] @ log.expected[i]) for i in range(n)])
        out["truth"] = float(truth.mean())
    return out


def _cross_fit(log: BanditLog, l2: float, folds: int) -> list[np.ndarray]:
    """Each round's predicted reward of every candidate, from a ridge model fit on the other
    folds (rounds assigned to folds in order, round-robin)."""
    if not isinstance(folds, int) or folds < 2:
        raise InvalidInput(f"folds must be an int >= 2, got {folds!r}")
    if not l2 > 0:
        raise InvalidInput(f"l2 must be > 0, got {l2!r}")
    n = len(log)
    d = log.features[0].shape[1]
    shown = np.vstack([log.features[i][log.actions[i]] for i in range(n)])
    fold = np.arange(n) % folds
    out: list[np.ndarray] = [np.zeros(0)] * n
    for f in range(folds):
        train = fold != f
        Xt, rt = shown[train], log.rewards[train]
        theta = np.linalg.solve(Xt.T @ Xt + l2 * np.eye(d), Xt.T @ rt)
        for i in np.flatnonzero(~train):
            out[i] = log.features[i] @ theta
    return out


# ---------------------------------------------------------------------- helpers


def _vector(values: Any, name: str, n: int | None) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if n is not None and v.size != n:
        raise InvalidInput(f"{name} must have {n} values (one per logged round), got {v.size}")
    if v.size == 0:
        raise InvalidInput(f"{name} is empty: nothing to estimate from")
    if not np.isfinite(v).all():
        raise InvalidInput(f"{name} must be finite numbers")
    return v


def _weights(rewards: Any, target: Any, propensities: Any, clip: float | None
             ) -> tuple[np.ndarray, np.ndarray]:
    r = _vector(rewards, "rewards", None)
    t = _vector(target, "target", r.size)
    p = _vector(propensities, "propensities", r.size)
    if (p <= 0).any() or (p > 1).any():
        raise InvalidInput("propensities must be in (0, 1]: a logged action the logging "
                           "policy could not have chosen cannot be reweighted")
    if (t < 0).any() or (t > 1 + 1e-12).any():
        raise InvalidInput("target probabilities must be in [0, 1]")
    w = t / p
    if clip is not None:
        if not clip > 0:
            raise InvalidInput(f"clip must be > 0, got {clip!r}")
        w = np.minimum(w, float(clip))
    return r, w


def _se(terms: np.ndarray) -> float:
    return float(terms.std(ddof=1) / math.sqrt(terms.size)) if terms.size > 1 else float("nan")


def _ess(w: np.ndarray) -> float:
    sq = float((w ** 2).sum())
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


__all__ = [
    "ESTIMATORS",
    "BanditLog",
    "Estimate",
    "direct_method",
    "doubly_robust",
    "evaluate_policy",
    "ips",
    "snips",
]
