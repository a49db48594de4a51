"""Accuracy against diversity and coverage as MMR's λ varies: ml-100k, protocol P1, EASE.

::

    .venv/bin/python bench/bench_diversity.py            # the committed results

EASE (l2 = 250, the tuned value of ``bench/results/models.md``) is fit on the P1 training split
of MovieLens 100K (per-user random 20 % holdout, seed 2026); for each of the 943 test users the
100 best unseen items are re-ranked into a top 10 by :func:`personae.service.diversity.rerank`
with λ from 1 (the relevance order) to 0, under two item similarities:

- ``genre``: Jaccard similarity of the items' genre sets;
- ``co-occurrence``: cosine similarity of the items' training columns (who watched them).

Rows with ``cap 2`` also allow at most two items per genre. Columns: NDCG@10 and Recall@10
against the held-out items; intra-list diversity (``1 −`` mean pairwise genre Jaccard, the
metric of :func:`personae.evaluate.intra_list_diversity`); ``1 −`` mean pairwise
co-occurrence cosine; catalogue coverage@10; novelty (mean ``−log2`` popularity).

Writes ``bench/results/diversity.md``, ``.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_models import command_line, environment, load_view, make_split  # noqa: E402

from personae.evaluate import (  # noqa: E402
    coverage,
    intra_list_diversity,
    item_popularity,
    novelty,
    ranking_metrics,
)
from personae.models import create  # noqa: E402
from personae.service.diversity import ItemSimilarity, rerank  # noqa: E402
from personae.store import Store  # noqa: E402

RESULTS = HERE / "results"
LAMBDAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)


def genres(workdir: Path, item_ids: np.ndarray) -> sp.csr_matrix:
    """(n_items, n_genres) genre indicators of the split's items, from the imported store."""
    store = Store(workdir / "ml-100k.db", create=False)
    try:
        cats = {it.item_id: list(it.categories) for it in store.iter_items()}
    finally:
        store.close()
    names = sorted({c for cs in cats.values() for c in cs})
    pos = {c: n for n, c in enumerate(names)}
    rows, cols = [], []
    for i, item_id in enumerate(item_ids):
        for c in cats.get(str(item_id), []):
            rows.append(i)
            cols.append(pos[c])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(item_ids), len(names)))


def mean_pairwise(recs: np.ndarray, sim: ItemSimilarity) -> float:
    """Mean over users of 1 − mean pairwise similarity of their list."""
    out = []
    for row in recs:
        row = row[row >= 0]
        if row.size < 2:
            continue
        S = sim.between(row, row)
        out.append(1.0 - S[np.triu_indices(row.size, 1)].mean())
    return float(np.mean(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--l2", type=float, default=250.0)
    parser.add_argument("--pool", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        view = load_view("ml-100k", Path(tmp))
        split = make_split(view, "p1")
        G = genres(Path(tmp), split.item_ids)
    model = create("ease", l2=args.l2).fit(split.train)
    users = split.test_users()
    scores = model.score_users(users).astype(np.float64)
    seen = split.train[users]
    scores[np.repeat(np.arange(users.size), np.diff(seen.indptr)), seen.indices] = -np.inf
    test = split.test[users]
    pop = item_popularity(split.train)
    sims = {"genre": ItemSimilarity.from_categories(G),
            "co-occurrence": ItemSimilarity.from_features(split.train.T.tocsr())}
    print(f"EASE fit, {users.size} users to re-rank ({time.time() - started:.1f} s)",
          flush=True)

    runs: list[dict[str, Any]] = []
    settings = [(name, lam, None) for name in sims for lam in LAMBDAS]
    settings += [("genre", lam, 2) for lam in (1.0, 0.7, 0.5)]
    for name, lam, cap in settings:
        t0 = time.time()
        recs = np.full((users.size, args.k), -1, dtype=np.int64)
        for n in range(users.size):
            top = rerank(scores[n], args.k, similarity=sims[name], lam=lam, pool=args.pool,
                         categories=G if cap else None, max_per_category=cap)
            recs[n, : top.size] = top
        m = ranking_metrics(recs, test, ks=(args.k,))
        row = {
            "similarity": name, "lambda": lam, "cap": cap,
            f"ndcg@{args.k}": float(m[f"ndcg@{args.k}"].mean()),
            f"recall@{args.k}": float(m[f"recall@{args.k}"].mean()),
            "ild_genre": intra_list_diversity(recs, G, args.k),
            "ild_cooccurrence": mean_pairwise(recs, sims["co-occurrence"]),
            f"coverage@{args.k}": coverage(recs, split.n_items, args.k),
            "novelty": novelty(recs, pop, args.k),
            "seconds": time.time() - t0,
        }
        runs.append(row)
        print(f"{name:<14} λ={lam:.1f} cap={cap}  ndcg {row[f'ndcg@{args.k}']:.4f}  "
              f"ild(genre) {row['ild_genre']:.4f}  ild(co-occ.) {row['ild_cooccurrence']:.4f}"
              f"  coverage {row[f'coverage@{args.k}']:.4f}  ({row['seconds']:.1f} s)",
              flush=True)
    report = {
        "benchmark": "diversity",
        "command": command_line(".venv/bin/python bench/bench_diversity.py", argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": time.time() - started,
        "environment": environment(),
        "settings": {**vars(args), "split": split.summary()},
        "runs": runs,
    }
    print(markdown(report))
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "diversity.json").write_text(json.dumps(report, indent=2, default=str))
        (RESULTS / "diversity.md").write_text(markdown(report))
        plot(runs, args.k, RESULTS / "diversity.png")
        print(f"wrote {RESULTS / 'diversity.md'}, .json and .png")
    return 0


def plot(runs: list[dict[str, Any]], k: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, marker in (("genre", "o"), ("co-occurrence", "s")):
        rows = [r for r in runs if r["similarity"] == name and r["cap"] is None]
        lam = [r["lambda"] for r in rows]
        nd = [r[f"ndcg@{k}"] for r in rows]
        for ax, key, label in ((axes[0], "ild_genre", "intra-list diversity (genres)"),
                               (axes[1], f"coverage@{k}", f"catalogue coverage@{k}")):
            x = [r[key] for r in rows]
            ax.plot(x, nd, marker=marker, label=f"MMR, {name} similarity")
            for xi, yi, li in zip(x, nd, lam, strict=True):
                if li in (1.0, 0.7, 0.5, 0.3, 0.0):
                    ax.annotate(f"λ={li:g}", (xi, yi), textcoords="offset points",
                                xytext=(4, 4), fontsize=7)
            ax.set_xlabel(label)
            ax.set_ylabel(f"NDCG@{k}")
        axes[2].plot(lam, [r["ild_genre"] for r in rows], marker=marker,
                     label=f"{name}: ILD (genres)")
        axes[2].plot(lam, [r["ild_cooccurrence"] for r in rows], marker=marker, ls="--",
                     label=f"{name}: 1 − co-occurrence cosine")
    caps = [r for r in runs if r["cap"] is not None]
    if caps:
        axes[0].scatter([r["ild_genre"] for r in caps], [r[f"ndcg@{k}"] for r in caps],
                        marker="x", color="k", label="genre MMR + ≤ 2 per genre")
    axes[2].set_xlabel("λ")
    axes[2].set_ylabel("diversity")
    axes[2].invert_xaxis()
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("ml-100k P1, EASE: accuracy against diversity and coverage as λ varies")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    k = s["k"]
    env = report["environment"]
    sp_ = s["split"]
    lines = [
        "# Diversity: accuracy against diversity and coverage as λ varies",
        "",
        f"Made by `{report['command']}` on {report['date']} ({report['seconds']:.0f} s; "
        f"{env['cores']} cores, commit {env['git_commit']}"
        f"{' + local changes' if env['git_dirty'] else ''}).",
        "",
        f"MovieLens 100K, protocol P1 ({sp_['n_users']:,} users × {sp_['n_items']:,} items; "
        f"{sp_['n_train']:,} training and {sp_['n_test']:,} test pairs); EASE (l2 = "
        f"{s['l2']:g}) scores every unseen item; the {s['pool']} best are re-ranked by MMR into "
        f"a top {k}. λ = 1 is EASE's own list. `cap 2`: at most two items per genre (an item "
        "counts in each of its genres). ILD = 1 − mean pairwise genre Jaccard; co-occ. "
        "diversity = 1 − mean pairwise cosine of the items' training columns.",
        "",
        "![accuracy vs diversity](diversity.png)",
        "",
        f"| similarity | λ | cap | NDCG@{k} | Recall@{k} | ILD (genres) | co-occ. diversity "
        f"| coverage@{k} | novelty |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['similarity']} | {r['lambda']:.1f} | {r['cap'] or '—'} | "
            f"{r[f'ndcg@{k}']:.4f} | {r[f'recall@{k}']:.4f} | {r['ild_genre']:.4f} | "
            f"{r['ild_cooccurrence']:.4f} | {r[f'coverage@{k}']:.4f} | {r['novelty']:.2f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
