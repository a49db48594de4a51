"""Contextual bandits in a simulated environment, and off-policy estimates against the truth.

::

    .venv/bin/python bench/bench_bandit.py                     # the committed results
    .venv/bin/python bench/bench_bandit.py --rounds 1000 --seeds 1   # a quick look

The environment (:class:`personae.service.bandit.SyntheticEnvironment`) is built on the
synthetic generator (movies, 1,000 users, 300 items, 30,000 events, seed 2026): each round a
user (by activity), a random context (device, daypart, weekday/weekend, weather) and 20
candidate items drawn by popularity; the shown item is clicked with probability
``σ(−2 + z_ui + e_ctx(i))`` (taste/style/quality affinity plus the planted context effect on
the item's categories). The features of a candidate are ``[1, EASE score, categories,
categories ⊗ context]`` (254 numbers), the EASE score being the recommendation model fit on the
generated events (view/click/like/… counted once per user–item pair), standardised per user.

Policies, all on the same rounds (same seeds): uniform random; pure exploitation (ridge, greedy);
ε-greedy (ε = 0.1); LinUCB (α = 0.5, ε = 0.02); Thompson sampling, linear and logistic; and the
model alone (the item with the best EASE score, no learning). Regret is the pseudo-regret
``Σ_t (max_a E[r|a] − E[r|shown])``.

Off-policy evaluation: a log of 5,000 rounds is written by a uniform logger and by an ε-greedy
logger (ε = 0.3, learning as it logs); target policies (a LinUCB trained on other rounds then
frozen, the model alone, uniform random) are estimated with IPS, SNIPS and DR and compared with
their true expected reward on the logged contexts and on fresh simulated rounds.

Writes ``bench/results/bandit.md``, ``.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# One BLAS thread (set before numpy loads): the per-round algebra is small (254 × 254), and
# threads only contend.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_models import command_line, environment  # noqa: E402

from personae.data.interactions import Interactions  # noqa: E402
from personae.data.synthetic import generate  # noqa: E402
from personae.evaluate.offpolicy import BanditLog, evaluate_policy  # noqa: E402
from personae.models import create  # noqa: E402
from personae.service.bandit import (  # noqa: E402
    BanditPolicy,
    Greedy,
    LinUCB,
    SyntheticEnvironment,
    Thompson,
    UniformRandom,
    log_record,
)

RESULTS = HERE / "results"
SEED = 2026


class ModelOnly(BanditPolicy):
    """The recommendation model alone: the candidate with the best score feature (column 1),
    with ``epsilon`` uniform exploration. It does not learn."""

    name = "model-only"

    def _index(self, X: np.ndarray) -> np.ndarray:
        return X[:, 1]

    def _learn(self, X: np.ndarray, r: np.ndarray) -> None:
        pass


def policies(seed: int) -> dict[str, BanditPolicy]:
    return {
        "random": UniformRandom(seed=seed),
        "model only": ModelOnly(seed=seed),
        "pure exploitation": Greedy(l2=1.0, seed=seed),
        "ε-greedy (0.1)": Greedy(l2=1.0, epsilon=0.1, seed=seed),
        "LinUCB (α=0.5)": LinUCB(alpha=0.5, l2=1.0, epsilon=0.02, seed=seed),
        "Thompson linear": Thompson(link="linear", v=0.25, l2=1.0, n_samples=16, seed=seed),
        "Thompson logistic": Thompson(link="logistic", v=0.5, l2=1.0, n_samples=16, seed=seed),
    }


def build(args: argparse.Namespace) -> tuple[Any, np.ndarray]:
    """The synthetic data and the standardised EASE scores (n_users, n_items)."""
    data = generate(n_users=args.users, n_items=args.items, n_events=args.events, seed=SEED)
    ev = data.event_arrays()
    view = Interactions.from_arrays(ev.user_idx, ev.item_idx, n_users=args.users,
                                    n_items=args.items, binary=True)
    model = create("ease", l2=200.0).fit(view)
    S = model.score_users(np.arange(args.users)).astype(np.float64)
    S = (S - S.mean(axis=1, keepdims=True)) / (S.std(axis=1, keepdims=True) + 1e-9)
    return data, S


def simulate(data: Any, scores: np.ndarray, policy: BanditPolicy, rounds: int, seed: int,
             log: list[dict[str, Any]] | None = None) -> dict[str, np.ndarray]:
    env = SyntheticEnvironment(data, scores=scores, n_candidates=20, seed=seed)
    reward, regret = np.zeros(rounds), np.zeros(rounds)
    for t in range(rounds):
        rnd = env.round()
        order, prop = policy.rank(np.arange(rnd.candidates.size), rnd.features, k=1)
        a = int(order[0])
        r = env.reward(rnd, a)
        policy.update(rnd.features[a], r)
        reward[t] = r
        regret[t] = rnd.best - rnd.expected[a]
        if log is not None:
            log.append(log_record(rnd.features, a, r, float(prop[0]), expected=rnd.expected))
    return {"reward": reward, "regret": regret}


def true_value(data: Any, scores: np.ndarray, policy: BanditPolicy, rounds: int,
               seed: int) -> float:
    """A frozen policy's expected reward per round on fresh rounds (exact expectations)."""
    env = SyntheticEnvironment(data, scores=scores, n_candidates=20, seed=seed)
    total = 0.0
    for _ in range(rounds):
        rnd = env.round()
        total += float(policy.probabilities(rnd.features) @ rnd.expected)
    return total / rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=3, help="repetitions of the simulation")
    parser.add_argument("--log-rounds", type=int, default=5000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = time.time()
    data, S = build(args)
    print(f"synthetic data and EASE scores ready ({time.time() - started:.1f} s)", flush=True)

    # ------------------------------------------------------------- online simulation
    curves: dict[str, dict[str, list[list[float]]]] = {}
    for seed in range(args.seeds):
        for name, policy in policies(seed).items():
            t0 = time.time()
            out = simulate(data, S, policy, args.rounds, seed=SEED + seed)
            c = curves.setdefault(name, {"reward": [], "regret": [], "seconds": []})
            c["reward"].append(np.cumsum(out["reward"]).tolist())
            c["regret"].append(np.cumsum(out["regret"]).tolist())
            c["seconds"].append(time.time() - t0)
            print(f"seed {seed} {name:<20} reward {out['reward'].sum():7.0f}  regret "
                  f"{out['regret'].sum():8.1f}  ({time.time() - t0:.1f} s)", flush=True)
    online = []
    for name, c in curves.items():
        rew = np.array(c["reward"])[:, -1]
        reg = np.array(c["regret"])[:, -1]
        last = np.array(c["regret"])[:, -1] - np.array(c["regret"])[:, -1001] \
            if args.rounds > 1000 else reg
        online.append({"policy": name, "reward_mean": float(rew.mean()),
                       "reward_sd": float(rew.std()), "regret_mean": float(reg.mean()),
                       "regret_sd": float(reg.std()),
                       "regret_last_1000": float(np.mean(last)),
                       "ctr": float(rew.mean() / args.rounds),
                       "seconds": float(np.mean(c["seconds"]))})

    # ------------------------------------------------------------- off-policy evaluation
    trained = LinUCB(alpha=0.0, l2=1.0, epsilon=0.05, seed=1)
    env_rounds: list[dict[str, Any]] = []
    simulate(data, S, UniformRandom(seed=8), args.rounds, seed=SEED + 101, log=env_rounds)
    for rec in env_rounds:  # train the target on other rounds than the logs
        x = np.asarray(rec["features"])[rec["action"]]
        trained.update(x, rec["reward"])
    targets: dict[str, Any] = {
        "LinUCB trained, frozen (ε=0.05)": trained,
        "model only (ε=0.05)": ModelOnly(epsilon=0.05, seed=0),
        "uniform random": UniformRandom(seed=0),
    }
    loggers = {"uniform": UniformRandom(seed=11),
               "ε-greedy (0.3), learning": Greedy(epsilon=0.3, seed=11)}
    offpolicy = []
    for lname, logger in loggers.items():
        records: list[dict[str, Any]] = []
        simulate(data, S, logger, args.log_rounds, seed=SEED + 200, log=records)
        log = BanditLog.from_records(records)
        for tname, target in targets.items():
            t0 = time.time()
            res = evaluate_policy(log, target)
            fresh = true_value(data, S, target, 2000, seed=SEED + 300)
            row = {"logger": lname, "target": tname, "n": res["n"],
                   "logged_value": res["logged"].value,
                   "truth_on_log": res["truth"], "truth_fresh": fresh,
                   "estimates": {k: e.to_dict() for k, e in res["estimates"].items()}}
            offpolicy.append(row)
            est = "  ".join(f"{k} {e.value:.4f}±{e.stderr:.4f}"
                            for k, e in res["estimates"].items())
            print(f"{lname:<26} {tname:<32} truth {res['truth']:.4f} (fresh {fresh:.4f})  "
                  f"{est}  ({time.time() - t0:.1f} s)", flush=True)

    report = {
        "benchmark": "bandit",
        "command": command_line(".venv/bin/python bench/bench_bandit.py", argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": time.time() - started,
        "environment": environment(),
        "settings": {**vars(args), "n_candidates": 20, "n_features": int(
            SyntheticEnvironment(data, scores=S).n_features), "seed": SEED},
        "online": online,
        "curves": {name: {"reward_mean": np.mean(c["reward"], axis=0)[::50].tolist(),
                          "regret_mean": np.mean(c["regret"], axis=0)[::50].tolist()}
                   for name, c in curves.items()},
        "offpolicy": offpolicy,
    }
    print(markdown(report))
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "bandit.json").write_text(json.dumps(report, indent=2))
        (RESULTS / "bandit.md").write_text(markdown(report))
        plot(curves, args.rounds, RESULTS / "bandit.png")
        print(f"wrote {RESULTS / 'bandit.md'}, .json and .png")
    return 0


def plot(curves: dict[str, dict[str, list[list[float]]]], rounds: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    t = np.arange(1, rounds + 1)
    for name, c in curves.items():
        for ax, key in zip(axes, ("reward", "regret"), strict=True):
            arr = np.array(c[key])
            mean = arr.mean(axis=0)
            line, = ax.plot(t, mean, label=name)
            if arr.shape[0] > 1:
                ax.fill_between(t, arr.min(axis=0), arr.max(axis=0), alpha=0.15,
                                color=line.get_color())
    axes[0].set_title("cumulative reward (clicks)")
    axes[1].set_title("cumulative pseudo-regret")
    for ax in axes:
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[1].legend(loc="upper left", fontsize=8)
    fig.suptitle("Contextual bandits on the synthetic environment (mean and range over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    env = report["environment"]
    lines = [
        "# Contextual bandits: online regret and off-policy estimates",
        "",
        f"Made by `{report['command']}` on {report['date']} ({report['seconds']:.0f} s; "
        f"{env['cores']} cores, commit {env['git_commit']}"
        f"{' + local changes' if env['git_dirty'] else ''}).",
        "",
        f"Synthetic movies data ({s['users']:,} users, {s['items']:,} items, "
        f"{s['events']:,} events, seed {s['seed']}); {s['n_candidates']} candidates per round, "
        f"{s['n_features']} features per candidate ([1, EASE score, categories, categories ⊗ "
        "context]); one item shown per round; reward = a click drawn from the planted "
        "probability. Regret is the pseudo-regret against the best candidate's expected "
        "reward. See the docstring of `bench/bench_bandit.py` for the environment.",
        "",
        f"## Online: {s['rounds']:,} rounds, mean ± sd over {s['seeds']} seeds",
        "",
        "![cumulative reward and regret](bandit.png)",
        "",
        "| policy | cumulative reward | click rate | cumulative regret | regret in the last "
        "1,000 rounds | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(report["online"], key=lambda r: r["regret_mean"]):
        lines.append(f"| {r['policy']} | {r['reward_mean']:.0f} ± {r['reward_sd']:.0f} | "
                     f"{r['ctr']:.3f} | {r['regret_mean']:.1f} ± {r['regret_sd']:.1f} | "
                     f"{r['regret_last_1000']:.1f} | {r['seconds']:.1f} |")
    lines += [
        "",
        f"## Off-policy evaluation: {s['log_rounds']:,} logged rounds",
        "",
        "Each target's value (expected clicks per round) estimated from the logs, next to the "
        "truth: its exact expected reward on the logged contexts, and on 2,000 fresh simulated "
        "rounds. ± is one standard error; DR uses a ridge reward model cross-fitted on the "
        "log (2 folds).",
        "",
        "| logger | target | logger's value | truth (log contexts) | truth (fresh) | IPS | "
        "SNIPS | DR | DM |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["offpolicy"]:
        e = r["estimates"]

        def cell(k: str, e: dict[str, Any] = e) -> str:
            return f"{e[k]['value']:.4f} ± {e[k]['stderr']:.4f}" if k in e else "—"

        lines.append(f"| {r['logger']} | {r['target']} | {r['logged_value']:.4f} | "
                     f"{r['truth_on_log']:.4f} | {r['truth_fresh']:.4f} | {cell('ips')} | "
                     f"{cell('snips')} | {cell('dr')} | {cell('dm')} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
