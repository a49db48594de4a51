"""New users without events (ml-100k): served from their demographics, from the popularity of
their age group, or from both (the cold-start policy's ``demographics`` path)?

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_newusers.py

Per draw (seeds 0, 1, 2): 150 users are held out with all their ratings; the two-tower model
(``bench_neural.CONFIG["twotower"]``, 30 epochs) is fit on the other users' ratings with the
users' age, gender and occupation as features (:class:`personae.data.side.SideFeatures`; age
binned at its quintiles), and the prior is item popularity per age group (the engine's bins,
:data:`personae.service.training.SEGMENT_ATTRIBUTES`). A held-out user has no history: every
item with a training event is ranked, and all their rated items are the positives (NDCG@10).

Rows: the prior alone (``segment_popularity`` path), the model alone, and the policy's blend
``w · z(model) + (1 - w) · z(log prior)`` at several ``demographics_weight`` values ``w``,
computed by :meth:`personae.service.coldstart.ColdStartPolicy.score` itself.

Writes ``bench/results/newusers.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_neural import CONFIG  # noqa: E402

from personae.data.interactions import Interactions  # noqa: E402
from personae.data.side import SideFeatures  # noqa: E402
from personae.evaluate.metrics import ranking_metrics  # noqa: E402
from personae.models import create  # noqa: E402
from personae.models.topk import topk  # noqa: E402
from personae.service.coldstart import ColdStartPolicy  # noqa: E402
from personae.service.training import SEGMENT_ATTRIBUTES  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "ml-100k"
N_HELD = 150
SEEDS = (0, 1, 2)
WEIGHTS = (0.1, 0.25, 0.5, 0.75)
AGE_BINS = dict(SEGMENT_ATTRIBUTES)["age"]  # the engine's age groups for the prior


def load() -> tuple[np.ndarray, dict[int, dict[str, object]]]:
    ratings = np.loadtxt(DATA / "u.data", dtype=np.int64)
    users = {}
    for line in (DATA / "u.user").read_text().splitlines():
        uid, age, gender, occupation, _ = line.split("|")
        users[int(uid)] = {"age": int(age), "gender": gender, "occupation": occupation}
    return ratings, users


def ndcg(scores: np.ndarray, truth: sp.csr_matrix) -> float:
    items, _ = topk(scores.astype(np.float32), 10)
    return float(ranking_metrics(items, truth, (10,))["ndcg@10"].mean())


def run(seed: int, ratings: np.ndarray, users: dict[int, dict[str, object]]) -> dict[str, float]:
    n_users, n_items = max(users), int(ratings[:, 1].max())
    held = np.sort(np.random.default_rng(seed).choice(n_users, N_HELD, replace=False))
    train = ~np.isin(ratings[:, 0] - 1, held)
    r = ratings[train]
    view = Interactions.from_arrays(r[:, 0] - 1, r[:, 1] - 1, timestamps=r[:, 3].astype(float),
                                    n_users=n_users, n_items=n_items)
    records = {str(u): {"attributes": users[int(u) + 1]} for u in view.user_ids}
    side = SideFeatures.from_records(user_ids=view.user_ids, item_ids=view.item_ids,
                                     users=records,
                                     user_attributes=["age", "gender", "occupation"])
    params = {**CONFIG["twotower"], "epochs": 30, "random_state": seed}
    started = time.perf_counter()
    model = create("twotower", **params).fit(view, side=side)
    fit_s = time.perf_counter() - started
    groups = np.array([group_of(users[int(u) + 1]) for u in view.user_ids])
    names = [f"g{j}" for j in range(len(AGE_BINS) + 1)]
    prior = create("popularity").fit(view, user_segments=groups, segment_names=names)
    test = ratings[~train]
    truth = sp.csr_matrix((np.ones(len(test)), (test[:, 0] - 1, test[:, 1] - 1)),
                          shape=(n_users, n_items))[held]
    empty = np.zeros(0, np.int64)
    rows: dict[str, list[np.ndarray]] = {}
    for w in (0.0, 1.0, *WEIGHTS):
        policy = ColdStartPolicy(prior, model, demographics_weight=w)
        label = {0.0: "prior (age-group popularity)", 1.0: "model (demographics only)"}.get(
            w, f"policy, demographics_weight={w}")
        rows[label] = [policy.score(empty, segment=names[group_of(users[u + 1])],
                                    context={"user": users[u + 1]}).scores for u in held]
    out = {label: ndcg(np.stack(s), truth) for label, s in rows.items()}
    out["fit s"] = fit_s
    return out


def group_of(user: dict[str, object]) -> int:
    return int(np.digitize([user["age"]], AGE_BINS)[0])


def main() -> None:
    ratings, users = load()
    results = []
    for seed in SEEDS:
        res = run(seed, ratings, users)
        results.append(res)
        print(f"draw {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()), flush=True)
    labels = [k for k in results[0] if k != "fit s"]
    lines = ["# New users without events, from their demographics (ml-100k)", "",
             "Made by `OMP_NUM_THREADS=1 .venv/bin/python bench/bench_newusers.py` on "
             f"{time.strftime('%Y-%m-%d')} ({N_HELD} held-out users per draw, no history; "
             "NDCG@10 over every item with a training event; see the script's docstring).", "",
             "| scores | " + " | ".join(f"draw {s}" for s in SEEDS) + " | mean |",
             "|---|" + "---:|" * (len(SEEDS) + 1)]
    for label in labels:
        vals = [r[label] for r in results]
        lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals)
                     + f" | {np.mean(vals):.4f} |")
    lines += ["", "Two-tower fit: " + ", ".join(f"{r['fit s']:.1f} s" for r in results)
              + " (one thread).", ""]
    text = "\n".join(lines)
    (HERE / "results" / "newusers.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
