"""Differential privacy: clipping, Gaussian noise, and (epsilon, delta) from a real accountant.

User-level DP for training that proceeds in rounds (federated rounds, or steps of centralised
DP-SGD with one "example" per user): in each round every user is included independently with
probability ``q`` (Poisson sampling), each included user's update is clipped to L2 norm ``S``,
the clipped updates are summed and ``N(0, sigma^2 S^2)`` noise is added to each coordinate of
the sum. The privacy loss of ``T`` such rounds is computed by Google's ``dp-accounting``
(Rényi DP accountant by default, or the privacy-loss-distribution accountant), never by a
hand-typed formula; :func:`calibrate_noise` finds the smallest ``sigma`` for a target
``(epsilon, delta)``. A configured budget is enforced *before* training starts
(:func:`check_budget` raises :class:`BudgetExceeded`, saying why).

Needs the ``privacy`` extra for the accountant: ``pip install 'personae[privacy]'``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from personae.errors import InvalidInput, MissingExtra, PersonaeError

EXTRA = "privacy"
Accountant = Literal["rdp", "pld"]


class BudgetExceeded(PersonaeError, ValueError):
    """A private training would spend more (epsilon, delta) than the configured budget."""


def _dpa() -> ModuleType:
    try:
        import dp_accounting
    except ImportError as exc:
        raise MissingExtra("dp_accounting", EXTRA) from exc
    return dp_accounting


@contextmanager
def _quiet_absl() -> Iterator[None]:
    """dp-accounting logs a warning per fractional RDP order it skips; those are not news."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_mechanism(noise_multiplier: float, sampling_rate: float, steps: int) -> None:
    if not np.isfinite(noise_multiplier) or noise_multiplier < 0:
        raise InvalidInput(f"noise_multiplier must be a finite float >= 0, got "
                           f"{noise_multiplier!r}")
    if not 0.0 < sampling_rate <= 1.0:
        raise InvalidInput(f"sampling_rate must be in (0, 1], got {sampling_rate!r}")
    if int(steps) < 1:
        raise InvalidInput(f"steps (rounds) must be an int >= 1, got {steps!r}")


def _event(dpa: ModuleType, noise_multiplier: float, sampling_rate: float, steps: int) -> Any:
    gaussian = dpa.GaussianDpEvent(float(noise_multiplier))
    one = (gaussian if sampling_rate >= 1.0
           else dpa.PoissonSampledDpEvent(float(sampling_rate), gaussian))
    return dpa.SelfComposedDpEvent(one, int(steps))


def _make_accountant(dpa: ModuleType, accountant: Accountant) -> Any:
    if accountant == "rdp":
        return dpa.rdp.RdpAccountant()
    if accountant == "pld":
        return dpa.pld.PLDAccountant()
    raise InvalidInput(f"accountant must be 'rdp' or 'pld', got {accountant!r}")


def epsilon_spent(noise_multiplier: float, sampling_rate: float, steps: int, delta: float,
                  *, accountant: Accountant = "rdp") -> float:
    """The epsilon of ``steps`` Poisson-sampled Gaussian rounds at this ``delta``.

    Parameters
    ----------
    noise_multiplier : float
        ``sigma``: noise standard deviation over the clipping norm (>= 0; 0 gives inf).
    sampling_rate : float
        ``q`` in (0, 1]: probability that a user takes part in a round (1: every round).
    steps : int
        Rounds (or DP-SGD steps).
    delta : float
        In (0, 1).
    accountant : {"rdp", "pld"}, default "rdp"

    Returns
    -------
    float
        ``inf`` when ``noise_multiplier`` is 0.
    """
    _check_mechanism(noise_multiplier, sampling_rate, steps)
    if not 0.0 < delta < 1.0:
        raise InvalidInput(f"delta must be in (0, 1), got {delta!r}")
    if noise_multiplier == 0:
        return float("inf")
    dpa = _dpa()
    acc = _make_accountant(dpa, accountant)
    with _quiet_absl():
        acc.compose(_event(dpa, noise_multiplier, sampling_rate, steps))
        return float(acc.get_epsilon(float(delta)))


def calibrate_noise(target_epsilon: float, delta: float, sampling_rate: float, steps: int,
                    *, accountant: Accountant = "rdp") -> float:
    """The smallest noise multiplier for which ``steps`` rounds spend at most ``target_epsilon``.

    A bisection by ``dp_accounting.calibrate_dp_mechanism`` over the accountant.
    """
    if not np.isfinite(target_epsilon) or target_epsilon <= 0:
        raise InvalidInput(f"target epsilon must be a finite float > 0, got {target_epsilon!r}")
    if not 0.0 < delta < 1.0:
        raise InvalidInput(f"delta must be in (0, 1), got {delta!r}")
    _check_mechanism(1.0, sampling_rate, steps)
    dpa = _dpa()
    with _quiet_absl():
        sigma = dpa.calibrate_dp_mechanism(
            lambda: _make_accountant(dpa, accountant),
            lambda s: _event(dpa, s, sampling_rate, steps),
            float(target_epsilon), float(delta),
            bracket_interval=dpa.LowerEndpointAndGuess(1e-3, 1.0),
        )
    return float(sigma)


@dataclass(frozen=True)
class PrivacySpent:
    """What a private training spends, recorded with the model version (``privacy_``)."""

    epsilon: float
    delta: float
    noise_multiplier: float
    clip_norm: float
    rounds: int
    sampling_rate: float
    accountant: str
    level: str = "user"
    mechanism: str = "poisson-sampled gaussian, clipped per-user updates"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (f"(ε = {self.epsilon:.3g}, δ = {self.delta:.3g}) {self.level}-level DP: "
                f"σ = {self.noise_multiplier:.4g}, clip S = {self.clip_norm:g}, "
                f"{self.rounds} rounds at sampling rate {self.sampling_rate:.4g} "
                f"({self.accountant} accountant)")


def plan_privacy(*, rounds: int, sampling_rate: float, clip_norm: float, delta: float,
                 target_epsilon: float | None = None, noise_multiplier: float | None = None,
                 max_epsilon: float | None = None,
                 accountant: Accountant = "rdp") -> PrivacySpent:
    """Decide ``sigma`` (from a target epsilon, or as given) and check the budget, before training.

    Exactly one of ``target_epsilon`` and ``noise_multiplier`` is given. Raises
    :class:`BudgetExceeded` when the planned training would spend more than ``max_epsilon``.
    """
    if not np.isfinite(clip_norm) or clip_norm <= 0:
        raise InvalidInput(f"clip_norm must be a finite float > 0 for private training, got "
                           f"{clip_norm!r}")
    if (target_epsilon is None) == (noise_multiplier is None):
        raise InvalidInput("give exactly one of target_epsilon and noise_multiplier")
    if target_epsilon is not None:
        if max_epsilon is not None and target_epsilon > max_epsilon:
            raise BudgetExceeded(
                f"the target ε = {target_epsilon:g} exceeds the configured budget ε = "
                f"{max_epsilon:g} (δ = {delta:g}); lower the target or raise the budget")
        sigma = calibrate_noise(target_epsilon, delta, sampling_rate, rounds,
                                accountant=accountant)
    else:
        sigma = float(noise_multiplier)  # type: ignore[arg-type]
    eps = epsilon_spent(sigma, sampling_rate, rounds, delta, accountant=accountant)
    spent = PrivacySpent(epsilon=eps, delta=float(delta), noise_multiplier=sigma,
                         clip_norm=float(clip_norm), rounds=int(rounds),
                         sampling_rate=float(sampling_rate), accountant=accountant)
    check_budget(spent, max_epsilon)
    return spent


def check_budget(spent: PrivacySpent, max_epsilon: float | None) -> None:
    """Raise :class:`BudgetExceeded` when ``spent.epsilon`` is over ``max_epsilon``."""
    if max_epsilon is None:
        return
    if not spent.epsilon <= max_epsilon * (1 + 1e-9):
        raise BudgetExceeded(
            f"refusing to start: {spent.rounds} rounds at sampling rate "
            f"{spent.sampling_rate:g} with noise multiplier {spent.noise_multiplier:g} spend "
            f"ε = {spent.epsilon:.4g} at δ = {spent.delta:g}, over the budget ε = "
            f"{max_epsilon:g}; use fewer rounds, a lower sampling rate or more noise "
            "(or set a target epsilon and let the noise be calibrated)")


def clip_scale(norms: np.ndarray, clip_norm: float | None) -> np.ndarray:
    """Per-update factors ``min(1, S / |u|)`` that clip updates of L2 norm ``norms`` to ``S``.

    ``clip_norm`` None (or inf) means no clipping (all ones).
    """
    norms = np.asarray(norms, dtype=np.float64)
    if clip_norm is None or not np.isfinite(clip_norm):
        return np.ones_like(norms)
    return np.minimum(1.0, float(clip_norm) / np.maximum(norms, 1e-300))


def clip_update(update: np.ndarray, clip_norm: float | None) -> tuple[np.ndarray, float]:
    """``update`` scaled to L2 norm at most ``clip_norm``; returns (clipped, original norm)."""
    norm = float(np.linalg.norm(np.asarray(update, dtype=np.float64)))
    return (np.asarray(update) * clip_scale(np.array([norm]), clip_norm)[0]).astype(
        np.asarray(update).dtype), norm


def gaussian_noise(shape: tuple[int, ...], noise_multiplier: float, clip_norm: float | None,
                   rng: np.random.Generator) -> np.ndarray:
    """``N(0, (sigma S)^2)`` per coordinate (zeros when sigma is 0), float64."""
    if not noise_multiplier:
        return np.zeros(shape)
    if clip_norm is None or not np.isfinite(clip_norm):
        raise InvalidInput("noise needs a finite clip_norm: the noise scale is sigma * S")
    return rng.normal(0.0, float(noise_multiplier) * float(clip_norm), size=shape)


def train_private(data: Any, *, epsilon: float, delta: float | None = None,
                  clip_norm: float = 0.3, rounds: int = 30, sampling_rate: float = 1.0,
                  max_epsilon: float | None = None, server_lr: float = 0.1,
                  model_params: dict[str, Any] | None = None, seed: int = 0) -> Any:
    """Centralised user-level DP training of :class:`~personae.privacy.fedmf.FedMF` (DP-SGD).

    The data sit on the server, but the item factors are trained only through per-user
    clipped gradients with Gaussian noise, ``rounds`` steps at Poisson sampling rate
    ``sampling_rate`` — the mechanism and accounting of private federated training, run in one
    process. The returned model's ``privacy_`` holds the spent (epsilon, delta); its user
    factors are each user's own fold-in (joint DP: a user's vector depends only on the released
    item factors and that user's own history, and is shown only to that user).

    Parameters
    ----------
    data : Interactions or csr_matrix (n_users, n_items)
    epsilon : float
        Target epsilon; sigma is calibrated for it.
    delta : float, optional
        Default ``1 / n_users``.
    max_epsilon : float, optional
        Budget: :class:`BudgetExceeded` before any training when the plan exceeds it.
    """
    from personae.privacy.federated import FederatedConfig, simulate

    config = FederatedConfig(rounds=rounds, fraction_fit=sampling_rate, target_epsilon=epsilon,
                             delta=delta, clip_norm=clip_norm, max_epsilon=max_epsilon,
                             server_lr=server_lr, weighting="uniform", seed=seed)
    result = simulate(data, config, model_params=model_params, engine="inprocess")
    result.model.training_ = {**(result.model.training_ or {}), "mode": "centralised-dp"}
    return result.model
