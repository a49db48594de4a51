"""Differential privacy: the accountant against the library, calibration, budget, clipping."""

from __future__ import annotations

import numpy as np
import pytest

from personae.errors import InvalidInput
from personae.privacy import dp

dp_accounting = pytest.importorskip("dp_accounting", reason="needs the 'privacy' extra")


def _reference_rdp(sigma: float, q: float, steps: int, delta: float) -> float:
    """The library's own RDP computation, written out independently of personae's wrapper."""
    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)),
                steps)
    return float(acc.get_epsilon(delta))


def test_epsilon_equals_the_library_reference() -> None:
    # Abadi et al.'s MNIST setting: q = 256/60000, sigma = 1.1, 60 epochs, delta = 1e-5
    q, sigma, steps, delta = 256 / 60000, 1.1, int(60 * 60000 / 256), 1e-5
    eps = dp.epsilon_spent(sigma, q, steps, delta)
    assert eps == pytest.approx(_reference_rdp(sigma, q, steps, delta), rel=1e-9)
    assert 2.0 < eps < 4.0  # the published RDP figure for this setting is about 3
    # PLD is tighter than RDP for the same mechanism
    pld = dp.epsilon_spent(sigma, q, steps, delta, accountant="pld")
    assert 0.5 * eps < pld <= eps


def test_more_noise_less_epsilon_and_zero_noise_is_infinite() -> None:
    a = dp.epsilon_spent(1.0, 0.1, 100, 1e-5)
    b = dp.epsilon_spent(2.0, 0.1, 100, 1e-5)
    assert b < a
    assert dp.epsilon_spent(0.0, 0.1, 100, 1e-5) == float("inf")


def test_calibrated_sigma_spends_the_target() -> None:
    sigma = dp.calibrate_noise(2.0, 1e-4, 0.2, 30)
    assert dp.epsilon_spent(sigma, 0.2, 30, 1e-4) == pytest.approx(2.0, rel=1e-3)
    assert dp.epsilon_spent(sigma * 0.95, 0.2, 30, 1e-4) > 2.0


def test_budget_refuses_to_start_and_says_why() -> None:
    with pytest.raises(dp.BudgetExceeded, match="over the budget ε = 1"):
        dp.plan_privacy(rounds=50, sampling_rate=1.0, clip_norm=1.0, delta=1e-4,
                        noise_multiplier=1.0, max_epsilon=1.0)
    with pytest.raises(dp.BudgetExceeded, match="exceeds the configured budget"):
        dp.plan_privacy(rounds=5, sampling_rate=1.0, clip_norm=1.0, delta=1e-4,
                        target_epsilon=8.0, max_epsilon=4.0)
    spent = dp.plan_privacy(rounds=5, sampling_rate=1.0, clip_norm=1.0, delta=1e-4,
                            target_epsilon=4.0, max_epsilon=4.0)
    assert spent.epsilon <= 4.0 + 1e-6 and spent.noise_multiplier > 0
    assert "ε = 4" in spent.summary()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="sampling_rate"):
        dp.epsilon_spent(1.0, 0.0, 10, 1e-5)
    with pytest.raises(InvalidInput, match="delta"):
        dp.epsilon_spent(1.0, 0.5, 10, 1.5)
    with pytest.raises(InvalidInput, match="clip_norm"):
        dp.plan_privacy(rounds=5, sampling_rate=1.0, clip_norm=0.0, delta=1e-4,
                        target_epsilon=1.0)


def test_clipping_bounds_the_norm_and_keeps_small_updates() -> None:
    big = np.full((4, 3), 10.0)
    clipped, norm = dp.clip_update(big, 1.0)
    assert norm == pytest.approx(np.sqrt(12) * 10)
    assert np.linalg.norm(clipped) == pytest.approx(1.0)
    np.testing.assert_allclose(clipped / np.linalg.norm(clipped), big / norm)  # direction kept
    small = np.full((4, 3), 0.01)
    np.testing.assert_array_equal(dp.clip_update(small, 1.0)[0], small)
    np.testing.assert_array_equal(dp.clip_scale(np.array([0.5, 2.0, 4.0]), None), 1.0)


def test_centralised_private_training_records_its_budget(tmp_path) -> None:
    import scipy.sparse as sp

    from personae.models import load_model

    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float32))
    model = dp.train_private(X, epsilon=2.0, rounds=5, model_params={"factors": 3})
    assert model.privacy_["epsilon"] == pytest.approx(2.0, rel=1e-3)
    assert model.privacy_["delta"] == pytest.approx(1 / 40)
    assert model.training_["mode"] == "centralised-dp"
    assert load_model(model.save(tmp_path / "m")).privacy_ == model.privacy_
    with pytest.raises(dp.BudgetExceeded):
        dp.train_private(X, epsilon=4.0, max_epsilon=2.0, rounds=5)
