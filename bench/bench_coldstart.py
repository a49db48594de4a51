"""Cold start on the MeLU ml-1m partitions: the MeLU paper's protocol, and catalogue ranking.

One command (about 3 minutes on 2 cores)::

    nice -n 10 .venv/bin/python bench/bench_coldstart.py

Imports ``../shared/data/ml-1m-melu-coldstart`` (with ``../ml-1m/users.dat``) into a temporary
SQLite store, builds the protocol of :mod:`personae.evaluate.melu_protocol` (tasks: users with
13–100 ratings in a partition; seeded shuffle; last 10 = query, rest = support; a model may
use every rating in no query set) and reports two tables:

1. **the MeLU protocol** (MAE, nDCG@1, nDCG@3 inside the 10 query items, gain 2^r − 1), next
   to MeLU-5's published numbers (Lee et al., KDD 2019, Table 2): the support-set mean (the
   floor), the regularised biases ``mu + b_u + b_i``, and ``featuregbm``;
2. **catalogue ranking** (NDCG@10, Recall@10; every query item is a positive; support
   items are not ranked; each partition ranks its own items): popularity,
   popularity in the user's gender × age segment, and item-kNN / EASE / ALS folded in from
   the support set, all fit on the protocol's training pairs.

Writes ``bench/results/coldstart.json`` and ``bench/results/coldstart.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("PERSONAE_SHARED_DATA", ROOT.parent / "shared" / "data"))

USER_GROUPS = ("gender", "age", "occupation")
ITEM_GROUPS = ("categories", "director", "actors", "writer", "year", "rated")
METRICS = ("mae", "ndcg@1", "ndcg@3")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load(shared: Path) -> tuple[Any, Any, Any]:
    """(store, view, protocol) from the MeLU folder, in a temporary SQLite store."""
    from personae.data.importers import import_melu
    from personae.data.interactions import Interactions
    from personae.evaluate.melu_protocol import melu_protocol
    from personae.evaluate.splits import melu_partitions
    from personae.store import Store

    tmp = tempfile.mkdtemp(prefix="personae-coldstart-")
    store = Store(f"sqlite:///{tmp}/melu.db")
    import_melu(store, shared / "ml-1m-melu-coldstart")
    view = Interactions.from_store(store)
    return store, view, melu_protocol(view, melu_partitions(store))


def side_features(store: Any, view: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from personae.data.attribute_groups import item_attribute_groups, user_attribute_groups

    return (user_attribute_groups(store, view, USER_GROUPS),
            item_attribute_groups(store, view, ITEM_GROUPS))


def biases_predictor(protocol: Any, user_reg: float = 3.0, item_reg: float = 10.0
                     ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``mu + b_u + b_i`` (alternating ridge, 10 sweeps), clipped to [1, 5]."""
    u, i, r = protocol.train_users, protocol.train_items, protocol.train_ratings
    nu, ni = protocol.n_users, protocol.n_items
    mu, bu, bi = r.mean(), np.zeros(nu), np.zeros(ni)
    cu, ci = np.bincount(u, minlength=nu), np.bincount(i, minlength=ni)
    for _ in range(10):
        bi = np.bincount(i, r - mu - bu[u], ni) / (ci + item_reg)
        bu = np.bincount(u, r - mu - bi[i], nu) / (cu + user_reg)
    return lambda users, items: np.clip(mu + bu[users] + bi[items], 1.0, 5.0)


def summarise(scores: Any) -> dict[str, Any]:
    """Means and standard errors over tasks of one partition's scores."""
    out: dict[str, Any] = {"tasks": scores.n_tasks}
    for m in METRICS:
        v = scores.per_task[m]
        out[m] = float(v.mean())
        out[m + "_se"] = float(v.std(ddof=1) / np.sqrt(v.size))
    return out


def within_user_corr(tasks: Any, predicted: np.ndarray) -> float:
    """Pearson correlation of predicted and true ratings after removing each task's means.

    Only the order inside a task counts for nDCG, so this is the part of a prediction that
    nDCG sees (0 for anything constant per task, such as the support mean).
    """
    q = tasks.query_size
    p = np.asarray(predicted, dtype=np.float64).reshape(-1, q)
    a = tasks.query_ratings.reshape(-1, q)
    p = p - p.mean(axis=1, keepdims=True)
    a = a - a.mean(axis=1, keepdims=True)
    den = np.sqrt((p**2).sum() * (a**2).sum())
    return float((p * a).sum() / den) if den > 0 else 0.0


NOISE_SIGMAS = (0.8, 1.0, 1.3, 1.6)


def protocol_table(protocol: Any, store: Any, view: Any, args: argparse.Namespace
                   ) -> dict[str, Any]:
    from personae.evaluate.melu_protocol import (
        MELU_PUBLISHED,
        evaluate_melu,
        score_tasks,
        support_mean_scores,
    )
    from personae.models.featuregbm import FeatureGBM

    rows: dict[str, dict[str, Any]] = {"MeLU-5 (published)": {
        p: dict(v) for p, v in MELU_PUBLISHED.items()}}
    log("support-set mean (floor)")
    rows["support-set mean (floor)"] = {p: summarise(s)
                                        for p, s in support_mean_scores(protocol).items()}
    log("biases mu + b_u + b_i")
    biases = biases_predictor(protocol)
    rows["biases mu + b_u + b_i"] = {p: summarise(s) for p, s in
                                     evaluate_melu(protocol, biases).items()}
    corr: dict[str, dict[str, float]] = {p: {} for p in protocol.tasks}
    for p, t in protocol.tasks.items():
        corr[p]["biases mu + b_u + b_i"] = within_user_corr(
            t, biases(t.query_users(), t.query_items))
    log("featuregbm: side features, stacked fit")
    users, items = side_features(store, view)
    model = FeatureGBM(random_state=args.seed,
                       **({} if args.rounds is None else {"rounds": args.rounds}))
    started = time.perf_counter()
    model.fit(protocol.train_view(), user_features=users, item_features=items)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = evaluate_melu(protocol, model.predict)
    pred_s = time.perf_counter() - started
    rows["personae featuregbm"] = {p: summarise(s) for p, s in scores.items()}
    for p, t in protocol.tasks.items():
        corr[p]["personae featuregbm"] = within_user_corr(
            t, model.predict(t.query_users(), t.query_items))
    # references that read the answers: how good must a prediction be for these nDCGs?
    noise: dict[str, dict[str, Any]] = {p: {} for p in protocol.tasks}
    for sigma in NOISE_SIGMAS:
        rng = np.random.default_rng(0)
        for p, t in protocol.tasks.items():
            pred = t.query_ratings + rng.normal(0.0, sigma, t.query_ratings.size)
            noise[p][str(sigma)] = {**summarise(score_tasks(t, pred)),
                                    "within_user_corr": within_user_corr(t, pred)}
    rows["reference: true rating + N(0, 1) noise"] = {
        p: {k: v for k, v in noise[p]["1.0"].items() if k != "within_user_corr"}
        for p in protocol.tasks}
    gain = model.booster_.feature_importance("gain")
    return {"rows": rows, "within_user_corr": corr, "noise_references": noise, "featuregbm": {
        "params": model.get_params(), "fit_seconds": fit_s, "predict_seconds": pred_s,
        "feature_gain_share": {
            n: float(g / gain.sum()) for n, g in
            sorted(zip(model.feature_names_, gain, strict=True), key=lambda x: -x[1])},
    }}


def segment_codes(store: Any, view: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each user's ``gender-age`` segment (e.g. ``"F-25"``)."""
    from personae.data.features import encode

    labels: list[str | None] = [None] * view.n_users
    for user in store.iter_users():
        a = user.attributes
        if "gender" in a and "age" in a:
            labels[view.user_index(user.user_id)] = f"{a['gender']}-{a['age']}"
    return encode(labels)


def ranking_table(protocol: Any, store: Any, view: Any) -> dict[str, Any]:
    from personae.evaluate.melu_protocol import ranking_tasks
    from personae.evaluate.metrics import ranking_metrics
    from personae.models import create
    from personae.models.topk import topk

    train = protocol.train_view()
    codes, names = segment_codes(store, view)
    models: dict[str, tuple[Any, str]] = {}
    specs = [
        ("popularity", "popularity", {}, "users"),
        ("segment popularity (gender × age)", "popularity", {}, "users"),
        ("itemknn (fold-in)", "itemknn", {"similarity": "cosine", "k": 100, "shrinkage": 20.0},
         "history"),
        ("ease (fold-in)", "ease", {"l2": 500.0}, "history"),
        ("als (fold-in)", "als", {"factors": 128, "regularization": 40.0, "alpha": 2.0,
                                  "iterations": 15, "random_state": 2026}, "history"),
    ]
    for label, name, params, how in specs:
        log(f"fit {label}")
        model = create(name, **params)
        if label.startswith("segment"):
            model.fit(train, user_segments=codes, segment_names=names)
        else:
            model.fit(train)
        models[label] = (model, how)
    out: dict[str, dict[str, Any]] = {}
    for partition in protocol.tasks:
        rt = ranking_tasks(protocol, partition)
        out[partition] = {"tasks": int(rt.users.size), "candidates": int(rt.candidates.sum())}
        for label, (model, how) in models.items():
            if how == "history":
                H = rt.support.copy()
                H.data[:] = 1.0
                scores = np.asarray(model.score_histories(H), dtype=np.float32)
            else:
                scores = np.asarray(model.score_users(rt.users), dtype=np.float32)
            scores[:, ~rt.candidates] = -np.inf
            recs, _ = topk(scores, 10, exclude=rt.support)
            m = ranking_metrics(recs, rt.query, ks=(10,))
            out[partition][label] = {"ndcg@10": float(m["ndcg@10"].mean()),
                                     "recall@10": float(m["recall@10"].mean())}
    return out


# ---------------------------------------------------------------------- report


def environment() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    versions = {}
    for pkg in ("personae", "numpy", "scipy", "lightgbm", "implicit"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "git_commit": commit, "versions": versions}


PARTITION_TITLES = {
    "user_cold_state": "existing items for new users",
    "item_cold_state": "new items for existing users",
    "user_and_item_cold_state": "new items for new users",
}


def fmt(row: dict[str, Any], metric: str, best: bool) -> str:
    value = row.get(metric)
    if value is None:
        return "—"
    text = f"{value:.4f}"
    se = row.get(metric + "_se")
    if se is not None:
        text += f" ± {se:.4f}"
    return f"**{text}**" if best else text


def markdown(report: dict[str, Any]) -> str:
    rows = report["protocol"]["rows"]
    summary = report["protocol_summary"]
    lines = [
        "# Cold start on the MeLU ml-1m partitions",
        "",
        f"Made by `{report['command']}` on {report['date']} ({report['seconds']:.0f} s; "
        f"{report['env']['cpus']} cores, {report['env']['platform']}; commit "
        f"{report['env']['git_commit']}).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["env"]["versions"].items()) + ".",
        "",
        "## 1. The MeLU paper's protocol (its Table 2)",
        "",
        "In each partition the users with 13–100 ratings are the tasks; each task's ratings "
        "(ascending item id) are shuffled by one `np.random.default_rng(2026)` per partition "
        "visiting the users in ascending id; the last 10 are the query set, the rest the "
        "support set. Models are fit on every rating in no query set "
        f"({summary['train_pairs']:,} pairs: all support sets, the users outside the filter, "
        "the other partitions). MAE = mean over tasks of the task's mean absolute error; "
        "nDCG@k inside the 10 query items ordered by predicted rating, gain 2^r − 1, discount "
        "log2(1 + rank), ideal = the best order of the same 10 items. Values are means over "
        "tasks ± their standard error; bold: best per column (lower MAE, higher nDCG).",
        "",
        "**Not the same training data as MeLU.** MeLU was trained on a *warm* partition "
        "(existing users × existing movies, 640,448 ratings) that the public folder does not "
        "ship, so every personae row here learned from less data than MeLU-5 did. MeLU-5's "
        "numbers are copied from the paper, not re-run.",
        "",
    ]
    for partition, title in PARTITION_TITLES.items():
        if partition not in summary["partitions"]:
            continue
        n = summary["partitions"][partition]
        lines += [f"### {title} (`{partition}`: {n['tasks']} tasks, {n['support_pairs']:,} "
                  f"support and {n['query_pairs']:,} query ratings)", "",
                  "| model | MAE ↓ | nDCG@1 ↑ | nDCG@3 ↑ |", "|---|---:|---:|---:|"]
        best = {}
        for m in METRICS:
            vals = [r[partition][m] for label, r in rows.items()
                    if m in r.get(partition, {}) and not label.startswith("reference")]
            best[m] = min(vals) if m == "mae" else max(vals)
        for label, r in rows.items():
            cells = [fmt(r[partition], m, r[partition].get(m) == best[m]) for m in METRICS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["### personae featuregbm against MeLU-5", "",
              "| partition | MAE | nDCG@1 | nDCG@3 |", "|---|---|---|---|"]
    ours, melu = rows["personae featuregbm"], rows["MeLU-5 (published)"]
    for partition, title in PARTITION_TITLES.items():
        if partition not in ours:
            continue
        cells = []
        for m in METRICS:
            a, b = ours[partition][m], melu[partition][m]
            won = a < b if m == "mae" else a > b
            cells.append(f"{'better' if won else 'worse'} ({a:.4f} vs {b:.4f})")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    fg = report["protocol"]["featuregbm"]
    top = list(fg["feature_gain_share"].items())[:8]
    lines += [
        "",
        f"featuregbm: fit {fg['fit_seconds']:.0f} s, predicting all query ratings "
        f"{fg['predict_seconds']:.1f} s; parameters {fg['params']}. Largest shares of the "
        "trees' split gain: " + ", ".join(f"{n} {g:.2f}" for n, g in top) + ".",
        "",
        "For scale: the support mean is one number per task, so it leaves the 10 query items "
        "in their (shuffled) order: its nDCG is that of a random order. The *reference* row is "
        "no model: it reads the query ratings and adds Gaussian noise of standard deviation "
        "1.0 (seed 0), to show how close to the truth a prediction must be for a given nDCG "
        "(it is left out of the bold marks).",
        "",
        "### Where the nDCG gap comes from",
        "",
        "nDCG here sees only the order *inside* a task's 10 query items, i.e. the part of a "
        "prediction left after removing the task's mean. The table gives its Pearson "
        "correlation with the true ratings (within-task r, pooled over the tasks) next to the "
        "nDCG, for our models and for the true ratings plus Gaussian noise of several sizes "
        "(seed 0), which shows what within-task r a given nDCG asks for.",
        "",
    ]
    corr, noise = report["protocol"]["within_user_corr"], report["protocol"]["noise_references"]
    sigmas = list(next(iter(noise.values())))
    lines += ["| partition | MeLU-5 nDCG@1 / @3 | "
              + " | ".join(f"{k} r · nDCG@1 / @3" for k in next(iter(corr.values())))
              + " | " + " | ".join(f"truth + N(0, {s}²) r · nDCG@1 / @3" for s in sigmas)
              + " |",
              "|---|---|" + "---|" * (len(next(iter(corr.values()))) + len(sigmas))]
    for partition, title in PARTITION_TITLES.items():
        if partition not in corr:
            continue
        m = melu[partition]
        cells = [f"{m['ndcg@1']:.3f} / {m['ndcg@3']:.3f}"]
        for label, r in corr[partition].items():
            sc = rows[label][partition]
            cells.append(f"{r:.3f} · {sc['ndcg@1']:.3f} / {sc['ndcg@3']:.3f}")
        for sg in sigmas:
            n = noise[partition][sg]
            cells.append(f"{n['within_user_corr']:.3f} · {n['ndcg@1']:.3f} / {n['ndcg@3']:.3f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "MeLU-5's published nDCG on new users (0.880 / 0.881, at MAE 0.785) is what the "
        "truth plus noise of σ ≈ 1 reaches, a within-task r near 0.7; featuregbm's order "
        "reaches r ≈ 0.5 (a quarter of the within-task variance), as does any rating model we "
        "tried on these data (see the docstring of `personae.models.featuregbm`: ranking "
        "objectives, expected-gain ordering, text and EASE features moved validation nDCG "
        "by less than the seed spread). On the two new-item partitions MeLU-5's numbers ask "
        "for r ≈ 0.55–0.6, closer to what the features carry.",
        "",
        "## 2. Catalogue ranking (NDCG@10, Recall@10) of the same tasks",
        "",
        "Same tasks and training pairs as above; each task's support items are its history "
        "(folded in by the history models, never ranked), its 10 query items the positives "
        "(whatever their rating). Each partition ranks its own items (the MeLU partitions are "
        "blocks: new users rated only existing movies in `user_cold_state`, existing users "
        "only new movies in `item_cold_state`, so the items of another block can never be a "
        "query item). Popularity is counted over all training pairs; segment popularity per "
        "gender × age group (shrinkage 50). Untuned hyper-parameters (the MeLU P1 choices of "
        "`bench/results/models.md`). featuregbm, a rating model, is not in this table: scoring "
        "every (task, item) pair through its features takes many minutes here.",
        "",
    ]
    rk = report["ranking"]
    for partition, title in PARTITION_TITLES.items():
        if partition not in rk:
            continue
        r = rk[partition]
        lines += [f"### {title} (`{partition}`: {r['tasks']} tasks, {r['candidates']:,} "
                  "candidate items)", "", "| model | NDCG@10 | Recall@10 |", "|---|---:|---:|"]
        labels = [k for k in r if isinstance(r[k], dict)]
        bn = max(r[k]["ndcg@10"] for k in labels)
        br = max(r[k]["recall@10"] for k in labels)
        for k in labels:
            n, rc = r[k]["ndcg@10"], r[k]["recall@10"]
            lines.append(f"| {k} | {'**' if n == bn else ''}{n:.4f}{'**' if n == bn else ''} "
                         f"| {'**' if rc == br else ''}{rc:.4f}{'**' if rc == br else ''} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="coldstart")
    parser.add_argument("--rounds", type=int, default=None,
                        help="featuregbm hold-out draws stacked for the trees (default: the "
                             "model's, 8)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-ranking", action="store_true")
    args = parser.parse_args(argv)
    if not (args.data / "ml-1m-melu-coldstart").exists():
        print(f"no MeLU folder under {args.data} (set PERSONAE_SHARED_DATA)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    log("importing the MeLU folder")
    store, view, protocol = load(args.data)
    report: dict[str, Any] = {
        "command": "nice -n 10 .venv/bin/python bench/bench_coldstart.py"
                   + ("" if argv is None and len(sys.argv) == 1
                      else " " + shlex.join(argv if argv is not None else sys.argv[1:])),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "env": environment(),
        "protocol_summary": protocol.summary(),
        "note": "MeLU-5 trained on a warm partition (640,448 ratings) that is not available "
                "here; its numbers are the paper's (Lee et al., KDD 2019, Table 2).",
    }
    report["protocol"] = protocol_table(protocol, store, view, args)
    report["ranking"] = {} if args.skip_ranking else ranking_table(protocol, store, view)
    report["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / f"{args.name}.md").write_text(text + "\n")
    print(text)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
