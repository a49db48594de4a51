"""Contextual bandits: they learn a planted preference, updates move the state, state survives
a save/load, and propensities are probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personae.errors import InvalidInput
from personae.service.bandit import (
    BanditPolicy,
    Greedy,
    LinearEnvironment,
    LinUCB,
    SyntheticEnvironment,
    Thompson,
    UniformRandom,
    context_vector,
    create_policy,
    interaction_features,
    log_record,
)

THETA = np.array([-0.5, 2.0, -1.5, 1.0, 0.0, 0.0])  # intercept, then a planted preference


def _run(policy: BanditPolicy, env: LinearEnvironment, rounds: int) -> tuple[np.ndarray, ...]:
    regret, best = np.zeros(rounds), np.zeros(rounds, dtype=bool)
    for t in range(rounds):
        rnd = env.round()
        order, prop = policy.rank(rnd.candidates, rnd.features, k=1)
        a = int(order[0])
        assert 0.0 < prop[0] <= 1.0
        policy.update(rnd.features[a], env.reward(rnd, a))
        regret[t] = rnd.best - rnd.expected[a]
        best[t] = rnd.expected[a] == rnd.best
    return regret, best


@pytest.mark.parametrize("policy", [
    LinUCB(alpha=1.0, seed=1),
    Thompson(link="linear", n_samples=16, seed=1),
    Thompson(link="logistic", n_samples=16, seed=1),
], ids=["linucb", "thompson-linear", "thompson-logistic"])
def test_learns_a_planted_preference(policy: BanditPolicy) -> None:
    rounds = 1200
    regret, best = _run(policy, LinearEnvironment(THETA, n_candidates=8, seed=5), rounds)
    random_regret, random_best = _run(UniformRandom(seed=1),
                                      LinearEnvironment(THETA, n_candidates=8, seed=5), rounds)
    late = slice(rounds - 400, rounds)
    assert best[late].mean() > 0.6 > 0.2 > random_best[late].mean()
    assert regret[late].sum() < 0.25 * random_regret[late].sum()
    assert regret[late].mean() < regret[:200].mean()  # it improved while learning
    # the learnt weights point where the planted ones do (features 1–3 matter, 4–5 do not)
    w = policy.theta_[1:]
    cos = w @ THETA[1:] / np.linalg.norm(w) / np.linalg.norm(THETA[1:])
    assert cos > 0.9


def test_updates_change_the_state() -> None:
    policy = LinUCB(n_features=3, l2=1.0)
    x = np.array([1.0, 0.0, 2.0])
    before = policy.expected(x[None, :])[0]
    A0 = policy.A_.copy()
    policy.update(x, 1.0)
    assert policy.n_updates_ == 1
    np.testing.assert_allclose(policy.A_ - A0, np.outer(x, x))
    np.testing.assert_allclose(policy.b_, x)
    # ridge on one point: θ = (I + xxᵀ)⁻¹ x = x / (1 + |x|²)
    np.testing.assert_allclose(policy.theta_, x / (1 + x @ x))
    assert policy.expected(x[None, :])[0] > before
    # the inverse kept by Sherman–Morrison matches a fresh inverse
    rng = np.random.default_rng(0)
    for _ in range(20):
        policy.update(rng.normal(size=3), rng.normal())
    np.testing.assert_allclose(policy.A_inv_, np.linalg.inv(policy.A_), atol=1e-10)
    # a batch update equals the same updates one by one
    X, r = rng.normal(size=(12, 3)), rng.normal(size=12)
    one = LinUCB(n_features=3)
    for x_i, r_i in zip(X, r, strict=True):
        one.update(x_i, r_i)
    batch = LinUCB(n_features=3).update(X, r)
    np.testing.assert_allclose(batch.theta_, one.theta_, atol=1e-10)


def test_logistic_update_moves_toward_the_reward() -> None:
    policy = Thompson(link="logistic", n_features=2)
    x = np.array([[1.0, 1.0]])
    p0 = policy.expected(x)[0]
    assert p0 == pytest.approx(0.5)
    for _ in range(30):
        policy.update(x, 1.0)
    assert policy.expected(x)[0] > 0.9
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        policy.update(x, 3.0)


@pytest.mark.parametrize("make", [
    lambda: LinUCB(alpha=0.5, epsilon=0.1, seed=7),
    lambda: Thompson(link="logistic", v=0.5, n_samples=32, seed=7),
    lambda: Greedy(epsilon=0.2, seed=7),
], ids=["linucb", "thompson", "greedy"])
def test_save_load_round_trip(make, tmp_path: Path) -> None:  # noqa: ANN001
    env = LinearEnvironment(THETA, seed=2)
    policy = make()
    _run(policy, env, 50)
    policy.save(tmp_path / "p")
    loaded = BanditPolicy.load(tmp_path / "p")
    assert type(loaded) is type(policy) and loaded.get_params() == policy.get_params()
    assert loaded.n_updates_ == 50
    for name in ("A_", "b_", "theta_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(policy, name))
    # the same future: the same draws, the same orders and propensities, the same updates
    for _ in range(5):
        rnd = env.round()
        o1, p1 = policy.rank(rnd.candidates, rnd.features, k=3)
        o2, p2 = loaded.rank(rnd.candidates, rnd.features, k=3)
        assert o1.tolist() == o2.tolist()
        np.testing.assert_allclose(p1, p2)
        policy.update(rnd.features[o1[0]], 1.0)
        loaded.update(rnd.features[o2[0]], 1.0)
    np.testing.assert_allclose(loaded.theta_, policy.theta_)
    other = LinUCB if policy.name == "thompson" else Thompson
    with pytest.raises(InvalidInput, match=f"not '{other.name}'"):
        other.load(tmp_path / "p")


def test_load_refuses_a_missing_or_foreign_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="policy.json"):
        BanditPolicy.load(tmp_path)
    (tmp_path / "policy.json").write_text('{"format": "other"}')
    with pytest.raises(InvalidInput, match="format"):
        BanditPolicy.load(tmp_path)


def test_propensities_are_probabilities() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4))
    # LinUCB with epsilon: the greedy choice has 1 − ε + ε/n, the others ε/n
    lin = LinUCB(alpha=0.0, epsilon=0.2, n_features=4)
    lin.update(X, np.arange(6.0))
    p = lin.probabilities(X)
    assert p.sum() == pytest.approx(1.0)
    assert p.max() == pytest.approx(0.8 + 0.2 / 6) and p.min() == pytest.approx(0.2 / 6)
    # a slate: each slot's propensity is conditional on the earlier slots
    order, prop = UniformRandom(seed=1).rank(np.arange(6), X)
    np.testing.assert_allclose(prop, 1.0 / np.arange(6, 0, -1))
    assert sorted(order.tolist()) == list(range(6))
    # Thompson: propensities estimated from draws match how often each item is really chosen
    ts = Thompson(link="linear", v=1.0, n_samples=2000, seed=3, n_features=4)
    ts.update(X[:3], [1.0, 0.0, 0.5])
    probs = ts.probabilities(X)
    assert probs.sum() == pytest.approx(1.0) and (probs >= 0).all()
    firsts = np.array([ts.rank(np.arange(6), X, k=1)[0][0] for _ in range(2000)])
    freq = np.bincount(firsts, minlength=6) / 2000
    np.testing.assert_allclose(freq, probs, atol=0.04)
    order, prop = ts.rank(np.arange(6), X, k=4)
    assert ((prop > 0) & (prop <= 1)).all()


def test_synthetic_environment_rewards_depend_on_context() -> None:
    from personae.data.synthetic import generate

    data = generate(n_users=60, n_items=80, n_events=600, seed=4)
    env = SyntheticEnvironment(data, n_candidates=10, seed=1)
    rnd = env.round()
    assert rnd.features.shape == (10, env.n_features)
    assert ((rnd.expected > 0) & (rnd.expected < 1)).all()
    # the same user and items in two contexts get different expected rewards
    t = data.truth
    cats = t.item_category_matrix[rnd.candidates]
    e1 = cats @ t.context_effect({"device": "tv", "daypart": "evening"})
    e2 = cats @ t.context_effect({"device": "mobile", "daypart": "morning"})
    assert not np.allclose(e1, e2)
    # a context-aware policy does better than random there
    rewards = {}
    for name, policy in (("linucb", LinUCB(alpha=0.3, l2=1.0, seed=0)),
                         ("random", UniformRandom(seed=0))):
        env = SyntheticEnvironment(data, n_candidates=10, seed=9)
        total = 0.0
        for _ in range(600):
            rnd = env.round()
            order, _ = policy.rank(rnd.candidates, rnd.features, k=1)
            pos = int(np.flatnonzero(rnd.candidates == order[0])[0])
            policy.update(rnd.features[pos], env.reward(rnd, pos))
            total += rnd.expected[pos]
        rewards[name] = total
    assert rewards["linucb"] > 1.15 * rewards["random"]


def test_features_helpers() -> None:
    ctx = context_vector({"device": "tv", "day": "weekend"},
                         {"device": ["mobile", "tv"], "day": ["weekday", "weekend"]})
    np.testing.assert_array_equal(ctx, [0, 1, 0, 1])
    X = interaction_features(np.array([[1.0, 0.0], [0.0, 1.0]]), ctx, scores=[0.5, -0.5])
    assert X.shape == (2, 1 + 1 + 2 + 8)
    np.testing.assert_array_equal(X[0], [1, 0.5, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0])
    rec = log_record(X, 1, 1.0, 0.25, candidates=np.array([7, 9]), context={"device": "tv"})
    assert rec["action"] == 1 and rec["candidates"] == [7, 9] and len(rec["features"]) == 2


def test_bad_parameters_and_inputs() -> None:
    with pytest.raises(InvalidInput, match="'alpha' parameter of LinUCB"):
        LinUCB(alpha=-1)
    with pytest.raises(InvalidInput, match="'link' parameter of Thompson"):
        Thompson(link="probit")
    with pytest.raises(InvalidInput, match="epsilon"):
        Greedy(epsilon=1.0)
    with pytest.raises(InvalidInput, match="unknown bandit policy"):
        create_policy("exp3")
    policy = LinUCB(n_features=3)
    with pytest.raises(InvalidInput, match="3 columns"):
        policy.rank([0, 1], np.zeros((2, 4)))
    with pytest.raises(InvalidInput, match="one row per candidate"):
        policy.rank([0, 1, 2], np.zeros((2, 3)))
    with pytest.raises(InvalidInput, match="one value per feature row"):
        policy.update(np.zeros((2, 3)), [1.0])
