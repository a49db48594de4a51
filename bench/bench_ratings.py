"""Rating prediction on ml-100k's five folds (``u1``–``u5``): RMSE and MAE of the two-tower
model's rating head beside the global mean, the bias baseline and FeatureGBM.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_ratings.py          # tune, then u1–u5
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_ratings.py --no-tune   # CONFIG as fixed

Each fold is GroupLens's own split of the 100,000 ratings (``u{k}.base`` 80,000 ratings to
train on, ``u{k}.test`` 20,000 to predict; the five test sets are disjoint). Every model is fit
on the ``.base`` ratings only, as a sparse (users × items) matrix of 1–5 stars (ids only: no
user or item features) and predicts the ``.test`` pairs; predictions are clipped to the
training ratings' range by the models themselves. Rows:

- ``global mean``: the mean training rating.
- ``biases``: mean + ridge user and item biases (:func:`personae.models.twotower.ridge_biases`,
  Koren's baseline predictor, penalties 10 and 25 ratings), clipped to [1, 5]: where the
  two-tower rating head starts from.
- ``featuregbm``: :class:`personae.models.featuregbm.FeatureGBM` with its defaults (chosen for
  the MeLU cold-start protocol, not tuned here).
- ``twotower``: :class:`personae.models.twotower.TwoTower` with ``rating_head=True``; its
  ``factors``, ``epochs``, ``rating_weight`` and ``input_keep`` (the share of a user's
  ratings pooled in a training step; the others are the rating targets) are tuned on a
  validation split carved from ``u1.base`` only (10 % of its ratings, seed 2026; the grid is
  ``TUNE_GRID``), then fixed for all five folds. ``--no-tune`` uses ``CONFIG["twotower"]``
  as written (the winner of the last tuning run). An earlier grid (same split) had
  ``rating_weight`` 0.3 too, worse in all six of its cells, and ``input_keep`` 0.5 only.

Fit seconds are wall-clock with one torch / LightGBM thread, on a machine shared with other
jobs (its 1-minute load average is recorded). Writes ``bench/results/ratings.json`` and
``bench/results/ratings.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_models import SHARED, command_line, environment, interpreter  # noqa: E402

from personae.evaluate.metrics import mae, rmse  # noqa: E402
from personae.models.twotower import TwoTower, ridge_biases  # noqa: E402

DATA = SHARED / "ml-100k"
RESULTS = HERE / "results"
SEED = 2026
N_USERS, N_ITEMS = 943, 1682  # u.info

#: Fixed hyper-parameters; the two-tower's tuned ones are the winner of the last tuning run.
CONFIG: dict[str, dict[str, Any]] = {
    "twotower": {"rating_head": True, "factors": 64, "epochs": 30, "rating_weight": 1.0,
                 "input_keep": 0.9, "random_state": SEED, "num_threads": 1},
    "featuregbm": {"random_state": SEED, "num_threads": 1},
}
#: The two-tower grid searched on the validation split of u1.base.
TUNE_GRID: dict[str, list[Any]] = {"factors": [32, 64], "epochs": [10, 20, 30],
                                   "rating_weight": [1.0, 3.0], "input_keep": [0.5, 0.8, 0.9]}
MODELS = ("global mean", "biases", "featuregbm", "twotower")

#: Published 5-fold cross-validation results on ml-100k (Surprise's README, "Benchmarks":
#: default parameters, Surprise's own random folds, not u1–u5). Not measured here.
REFERENCES = [
    ("Surprise SVD", 0.934, 0.737), ("Surprise SVD++", 0.920, 0.722),
    ("Surprise k-NN Baseline", 0.931, 0.733), ("Surprise Baseline (BaselineOnly)", 0.944, 0.748),
    ("Surprise Slope One", 0.946, 0.743), ("Surprise NMF", 0.963, 0.758),
]
REFERENCE_SOURCE = "https://github.com/NicolasHug/Surprise#benchmarks"


def read_ratings(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users, items (0-based index space: raw id - 1) and ratings of a ``u*.base/test`` file."""
    a = np.loadtxt(DATA / name, dtype=np.int64, delimiter="\t")
    return a[:, 0] - 1, a[:, 1] - 1, a[:, 2].astype(np.float64)


def rating_matrix(users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix((ratings, (users, items)), shape=(N_USERS, N_ITEMS))


def load() -> float:
    return float(os.getloadavg()[0])


def fit_predict(name: str, params: dict[str, Any], train: tuple[np.ndarray, ...],
                users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, float]:
    """Fit ``name`` on the training (users, items, ratings) and predict the pairs; returns
    the predictions and the fit's wall-clock seconds."""
    u, i, r = train
    started = time.perf_counter()
    if name == "global mean":
        mean = float(r.mean())
        return np.full(users.size, mean), time.perf_counter() - started
    if name == "biases":
        mean = float(r.mean())
        bu, bi = ridge_biases(u, i, r - mean, (N_USERS, N_ITEMS))
        seconds = time.perf_counter() - started
        return np.clip(mean + bu[users] + bi[items], r.min(), r.max()), seconds
    if name == "featuregbm":
        from personae.models.featuregbm import FeatureGBM

        gbm = FeatureGBM(**params).fit(rating_matrix(u, i, r))
        seconds = time.perf_counter() - started
        return gbm.predict(users, items), seconds
    if name == "twotower":
        model = TwoTower(**params).fit(rating_matrix(u, i, r))
        seconds = time.perf_counter() - started
        return model.predict_ratings(users, items), seconds
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def tune() -> dict[str, Any]:
    """Grid-search the two-tower's ``TUNE_GRID`` on 10 % of u1.base's ratings held out."""
    u, i, r = read_ratings("u1.base")
    held = np.random.default_rng(SEED).random(u.size) < 0.1
    train = (u[~held], i[~held], r[~held])
    grid = []
    keys = list(TUNE_GRID)
    for values in itertools.product(*(TUNE_GRID[k] for k in keys)):
        params = {**CONFIG["twotower"], **dict(zip(keys, values, strict=True))}
        before = load()
        pred, seconds = fit_predict("twotower", params, train, u[held], i[held])
        row = {**dict(zip(keys, values, strict=True)), "val_rmse": rmse(pred, r[held]),
               "val_mae": mae(pred, r[held]), "fit_wall_s": seconds, "load_before": before}
        grid.append(row)
        print(f"tune {row}", file=sys.stderr, flush=True)
    best = min(grid, key=lambda row: row["val_rmse"])
    return {"split": "u1.base, 10 % of ratings held out (seed 2026)", "grid": grid,
            "best": {k: best[k] for k in keys}, "best_val_rmse": best["val_rmse"]}


def summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"mean": float(a.mean()), "std": float(a.std())}


def render(result: dict[str, Any]) -> str:
    meta = result["meta"]
    out = ["# Rating prediction on ml-100k u1–u5 (RMSE, MAE)", "",
           f"Last run: `{meta['command']}` (started {meta['started']}, finished "
           f"{meta['finished']}; git {meta['environment']['git_commit']}"
           f"{' + uncommitted changes' if meta['environment']['git_dirty'] else ''}; "
           f"{meta['environment']['cores']} cores shared with other jobs, one thread per "
           "model). Rows of models it did not run are kept from earlier runs (the `run` column "
           "says when each row was made).", "",
           "Each model is fit on `u{k}.base` (80,000 ratings, ids only) and predicts "
           "`u{k}.test` (20,000); mean ± std over the five folds (std with ddof=0, as "
           "Surprise). Fit seconds: wall-clock, mean over the folds.", "",
           "| model | RMSE | MAE | " + " | ".join(f"u{k} RMSE" for k in range(1, 6))
           + " | fit s | parameters | run |",
           "|---|---:|---:|" + "---:|" * 5 + "---:|---|---|"]
    for row in result["rows"]:
        p = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        folds = " | ".join(f"{f['rmse']:.4f}" for f in row["folds"])
        out.append(f"| {row['model']} | {row['rmse']['mean']:.4f} ± {row['rmse']['std']:.4f} | "
                   f"{row['mae']['mean']:.4f} ± {row['mae']['std']:.4f} | {folds} | "
                   f"{row['fit_wall_s']:.1f} | {p} | {row['run']} |")
    out += ["", "## Published references (not measured here)", "",
            f"Surprise's README ({REFERENCE_SOURCE}), ml-100k, 5-fold cross-validation on "
            "Surprise's own random folds (not u1–u5), default parameters:", "",
            "| algorithm | RMSE | MAE |", "|---|---:|---:|"]
    out += [f"| {name} | {r:.3f} | {m:.3f} |" for name, r, m in REFERENCES]
    tuning = result.get("tuning")
    if tuning:
        keys = list(tuning["best"])
        out += ["", "## Two-tower tuning (validation only)", "",
                f"Split: {tuning['split']}. Best: "
                + ", ".join(f"{k}={v}" for k, v in tuning["best"].items())
                + f" (validation RMSE {tuning['best_val_rmse']:.4f}); made by "
                f"`{tuning['command']}` at {tuning['started']}.", "",
                "| " + " | ".join(keys) + " | val RMSE | val MAE | fit s | load |",
                "|" + "---:|" * (len(keys) + 4)]
        for g in tuning["grid"]:
            out.append("| " + " | ".join(str(g[k]) for k in keys)
                       + f" | {g['val_rmse']:.4f} | {g['val_mae']:.4f} | "
                       f"{g['fit_wall_s']:.1f} | {g['load_before']:.1f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-tune", action="store_true",
                        help="skip the validation grid; use CONFIG['twotower'] as written "
                             "(the last tuning table is kept in the results)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", default="ratings")
    args = parser.parse_args(argv)
    json_path, md_path = RESULTS / f"{args.out}.json", RESULTS / f"{args.out}.md"
    threads = os.environ.get("OMP_NUM_THREADS")
    env = f"OMP_NUM_THREADS={threads} " if threads else ""
    meta = {"command": command_line(f"{env}{interpreter()} bench/bench_ratings.py", argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "environment": environment()}
    tuning = None
    if not args.no_tune and "twotower" in args.models:
        tuning = {"command": meta["command"], "started": meta["started"], **tune()}
        CONFIG["twotower"].update(tuning["best"])
    elif json_path.exists():
        tuning = json.loads(json_path.read_text()).get("tuning")
    rows = []
    for name in args.models:
        params = dict(CONFIG.get(name, {}))
        folds = []
        for k in range(1, 6):
            train = read_ratings(f"u{k}.base")
            u, i, r = read_ratings(f"u{k}.test")
            before = load()
            pred, seconds = fit_predict(name, params, train, u, i)
            folds.append({"fold": f"u{k}", "rmse": rmse(pred, r), "mae": mae(pred, r),
                          "fit_wall_s": seconds, "load_before": before, "load_after": load()})
            print(f"{name:12} u{k}  RMSE {folds[-1]['rmse']:.4f}  MAE {folds[-1]['mae']:.4f}  "
                  f"fit {seconds:.1f} s  load {before:.1f}", file=sys.stderr, flush=True)
        rows.append({"model": name, "run": meta["started"], "command": meta["command"],
                     "params": params, "folds": folds,
                     "rmse": summary([f["rmse"] for f in folds]),
                     "mae": summary([f["mae"] for f in folds]),
                     "fit_wall_s": float(np.mean([f["fit_wall_s"] for f in folds]))})
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    previous = json.loads(json_path.read_text())["rows"] if json_path.exists() else []
    rows += [r for r in previous if r["model"] not in args.models]
    rows.sort(key=lambda r: MODELS.index(r["model"]))
    result = {"meta": meta, "rows": rows, "tuning": tuning,
              "references": {"source": REFERENCE_SOURCE,
                             "rows": [{"algorithm": n, "rmse": r, "mae": m}
                                      for n, r, m in REFERENCES]}}
    RESULTS.mkdir(exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=float))
    md_path.write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
