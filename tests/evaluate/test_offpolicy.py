"""Off-policy estimators: hand-computed values, unbiasedness in simulation, logs and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from personae.errors import ImportFormatError, InvalidInput
from personae.evaluate.offpolicy import (
    BanditLog,
    direct_method,
    doubly_robust,
    evaluate_policy,
    ips,
    snips,
)
from personae.service.bandit import LinearEnvironment, LinUCB, UniformRandom, log_record

# Three logged rounds; the target puts 0.5, 1.0 and 0.0 on the logged actions.
R = [1.0, 0.0, 1.0]
PI = [0.5, 1.0, 0.0]
MU = [0.25, 0.5, 0.5]


def test_hand_computed_values() -> None:
    # weights w = π/μ = (2, 2, 0)
    assert ips(R, PI, MU).value == pytest.approx((2 * 1 + 2 * 0 + 0 * 1) / 3)
    assert snips(R, PI, MU).value == pytest.approx(2 / 4)
    # DR: q̂_π + w (r − q̂(a)) = 0.4 + 2(0.5), 0.6 + 2(−0.5), 0.2 + 0 → (1.4 − 0.4 + 0.2) / 3
    dr = doubly_robust(R, PI, MU, q_logged=[0.5, 0.5, 0.5], q_target=[0.4, 0.6, 0.2])
    assert dr.value == pytest.approx(0.4)
    assert direct_method([0.4, 0.6, 0.2]).value == pytest.approx(0.4)
    # clipping caps the weights: w = (1.5, 1.5, 0)
    assert ips(R, PI, MU, clip=1.5).value == pytest.approx(1.5 / 3)
    est = ips(R, PI, MU)
    terms = np.array([2.0, 0.0, 0.0])
    assert est.stderr == pytest.approx(terms.std(ddof=1) / np.sqrt(3))
    assert est.ess == pytest.approx(16 / 8)
    lo, hi = est.ci
    assert lo < est.value < hi


def test_estimators_refuse_impossible_input() -> None:
    with pytest.raises(InvalidInput, match="propensities"):
        ips(R, PI, [0.0, 0.5, 0.5])
    with pytest.raises(InvalidInput, match="3 values"):
        ips(R, PI[:2], MU)
    with pytest.raises(InvalidInput, match="clip"):
        snips(R, PI, MU, clip=0.0)


def _simulate(rng: np.random.Generator, n: int, q: np.ndarray, mu: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A context-free 3-armed Bernoulli bandit logged by ``mu``."""
    a = rng.choice(3, size=n, p=mu)
    r = (rng.random(n) < q[a]).astype(float)
    return a, r, mu[a]


def test_unbiased_in_simulation() -> None:
    rng = np.random.default_rng(2026)
    q = np.array([0.2, 0.5, 0.8])  # true expected rewards
    mu = np.array([0.6, 0.3, 0.1])  # the logging policy rarely plays the best arm
    pi = np.array([0.1, 0.1, 0.8])  # the target mostly does
    truth = float(pi @ q)  # 0.71
    wrong_q = np.array([0.5, 0.5, 0.5])  # a bad reward model: DR must stay unbiased
    est = {"ips": [], "snips": [], "dr": [], "dm": []}
    for _ in range(400):
        a, r, p = _simulate(rng, 200, q, mu)
        est["ips"].append(ips(r, pi[a], p).value)
        est["snips"].append(snips(r, pi[a], p).value)
        est["dr"].append(doubly_robust(r, pi[a], p, wrong_q[a],
                                       np.full(a.size, pi @ wrong_q)).value)
        est["dm"].append(direct_method(np.full(a.size, pi @ wrong_q)).value)
    for name in ("ips", "dr"):
        values = np.array(est[name])
        se = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - truth) < 3.5 * se, name
    # SNIPS: consistent (tiny bias at n = 200); DM with a wrong model: off by 0.21
    assert abs(np.mean(est["snips"]) - truth) < 0.01
    assert abs(np.mean(est["dm"]) - truth) > 0.2
    # the naive average of logged rewards is far from the target's value
    a, r, _ = _simulate(rng, 20_000, q, mu)
    assert abs(r.mean() - truth) > 0.3


def _log(n: int, logging: object, seed: int = 0) -> BanditLog:
    env = LinearEnvironment(np.array([-1.0, 1.5, -1.0, 0.5]), n_candidates=5, seed=seed)
    records = []
    for _ in range(n):
        rnd = env.round()
        order, prop = logging.rank(rnd.candidates, rnd.features, k=1)  # type: ignore[attr-defined]
        a = int(order[0])
        reward = env.reward(rnd, a)
        records.append(log_record(rnd.features, a, reward, prop[0], expected=rnd.expected))
    return BanditLog.from_records(records)


def test_evaluate_policy_recovers_the_truth() -> None:
    log = _log(3000, UniformRandom(seed=1), seed=1)
    # a target that learnt the planted preference elsewhere
    target = LinUCB(alpha=0.0, epsilon=0.1, seed=0)
    train = _log(2000, UniformRandom(seed=2), seed=2)
    for i in range(len(train)):
        target.update(train.features[i][train.actions[i]], train.rewards[i])
    result = evaluate_policy(log, target)
    truth = result["truth"]
    assert truth > result["logged"].value + 0.15  # better than the uniform logger
    for name in ("ips", "snips", "dr"):
        e = result["estimates"][name]
        assert abs(e.value - truth) < 3.5 * e.stderr + 0.01, name
    assert result["estimates"]["dr"].stderr < result["estimates"]["ips"].stderr


def test_log_round_trip_and_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from personae.cli.main import app

    log = _log(300, UniformRandom(seed=3), seed=3)
    path = log.write_jsonl(tmp_path / "logs.jsonl")
    again = BanditLog.from_jsonl(path)
    np.testing.assert_array_equal(again.actions, log.actions)
    np.testing.assert_allclose(again.propensities, log.propensities)
    # the uniform policy evaluated on uniform logs: IPS is exactly the mean logged reward
    res = CliRunner().invoke(app, ["evaluate-off-policy", str(path), "--policy", "random",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    ipsv = next(e for e in data["estimates"] if e["estimator"] == "ips")["value"]
    assert ipsv == pytest.approx(data["logged"]["value"])
    assert data["n"] == 300 and "truth" in data
    # the same through `personae evaluate --off-policy`
    res = CliRunner().invoke(app, ["evaluate", "--off-policy", str(path), "--policy", "random",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["estimates"] == data["estimates"]
    # a saved policy folder
    target = LinUCB(alpha=0.0, epsilon=0.2, seed=0).update(log.features[0][0], 1.0)
    target.save(tmp_path / "policy")
    res = CliRunner().invoke(app, ["evaluate-off-policy", str(path), "--policy",
                                   str(tmp_path / "policy")])
    assert res.exit_code == 0, res.output
    assert "snips" in res.output and "truth" in res.output
    # errors: exit 1 with one line
    res = CliRunner().invoke(app, ["evaluate-off-policy", str(path), "--policy", "nope"])
    assert res.exit_code == 1 and "saved policy folder" in res.output


def test_bad_log_lines_name_the_line(tmp_path: Path) -> None:
    good = log_record(np.eye(2), 0, 1.0, 0.5)
    bad = {**good, "propensity": 0.0}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ImportFormatError, match=r"bad.jsonl:2: propensity"):
        BanditLog.from_jsonl(path)
    path.write_text(json.dumps({**good, "action": 5}) + "\n")
    with pytest.raises(ImportFormatError, match="action"):
        BanditLog.from_jsonl(path)
    path.write_text(json.dumps({"features": [[1.0]]}) + "\n")
    with pytest.raises(ImportFormatError, match="missing field"):
        BanditLog.from_jsonl(path)
