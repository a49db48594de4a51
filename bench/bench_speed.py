"""Fit and recommend speed at the *same* configuration: personae against the peer libraries.

``bench_models.py`` times each model at its own tuned parameters, so its fit columns compare
different work (item-kNN with shrinkage against one without, say). This script times the same
model with the same parameters in each library, repeatedly, and reports the median::

    bench/.venv-peers/bin/python bench/bench_speed.py            # ml-100k and MeLU, 7 repeats
    bench/.venv-peers/bin/python bench/bench_speed.py --repeats 3 --datasets ml-100k

Rows: item-kNN cosine (K = 20 and 100) and BM25 (K = 100) against ``implicit``; EASE
(λ = 500) in float64 and float32 against ``cornac``; the top-20 for every training user of the
P1 training split (personae's ``recommend_batch``: scoring, excluding seen items, top-k).

``implicit``'s ``K`` counts the item itself (its own nearest neighbour under cosine), personae's
``k`` does not: at the same number, implicit keeps one neighbour fewer. The "same neighbours"
rows time personae's ``k`` against implicit's ``K = k + 1``, and the ``same pairs`` column
checks that both kept the same (item, neighbour) pairs (the share of personae's pairs that
implicit has too, the item itself left out; exact ties may be broken either way).
Writes ``bench/results/speed.json`` and ``speed.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import peers  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from bench_models import command_line, environment, load_view, make_split  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from personae.models import create  # noqa: E402

console = Console(width=160)

#: (task, personae model + params, peer name + params or None)
FITS: list[tuple[str, tuple[str, dict[str, Any]], tuple[str, dict[str, Any]] | None]] = [
    ("item-kNN cosine, K=20", ("itemknn", {"k": 20}), ("implicit.cosine", {"K": 20})),
    ("item-kNN cosine, K=100", ("itemknn", {"k": 100}), ("implicit.cosine", {"K": 100})),
    ("item-kNN BM25, K=100", ("itemknn", {"similarity": "bm25", "k": 100}),
     ("implicit.bm25", {"K": 100})),
    ("item-kNN cosine, same neighbours: k=20, K=21", ("itemknn", {"k": 20}),
     ("implicit.cosine", {"K": 21})),
    ("item-kNN cosine, same neighbours: k=100, K=101", ("itemknn", {"k": 100}),
     ("implicit.cosine", {"K": 101})),
    ("item-kNN BM25, same neighbours: k=100, K=101", ("itemknn", {"similarity": "bm25",
                                                                   "k": 100}),
     ("implicit.bm25", {"K": 101})),
    ("EASE λ=500, float64", ("ease", {"l2": 500.0}), ("cornac.ease", {"lamb": 500.0})),
    ("EASE λ=500, float32", ("ease", {"l2": 500.0, "dtype": "float32"}), None),
]
RECOMMENDERS = [("ease", {"l2": 500.0}), ("itemknn", {"k": 100}), ("als", {})]


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    return paired_median_seconds([fn], repeats)[0]


def paired_median_seconds(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median seconds of each function, run in turns (a, b, a, b, …) after one warm-up each,
    so that the machine's slow drifts (other jobs, clock changes) fall on both alike."""
    for fn in fns:
        fn()  # warm-up: imports, first-touch allocations, thread pools
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _fit(make: Callable[..., Any], name: str, params: dict[str, Any], X: Any) -> Any:
    return make(name, **params).fit(X)


def same_pairs(ours: Any, theirs: Any) -> float:
    """Share of personae's (item, neighbour) pairs that the implicit model kept too, the item
    itself left out. personae stores item j's neighbours in column j (``S[i, j]``: how much
    having i recommends j), implicit in row j."""
    mine = sp.coo_matrix(ours.similarity_.T)
    other = sp.csr_matrix(theirs.similarity_)
    other.setdiag(0)
    other.eliminate_zeros()
    found = np.asarray(other[mine.row, mine.col]).ravel() != 0
    return float(found.mean()) if found.size else 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "melu"],
                        choices=["ml-100k", "melu"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    started = time.time()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="personae-bench-speed-") as tmp:
        for source in args.datasets:
            console.print(f"[bold]{source}[/]: importing …")
            split = make_split(load_view(source, Path(tmp)), "p1")
            X = split.train
            users = np.arange(X.shape[0])
            for task, (name, params), peer in FITS:
                fit_ours = functools.partial(_fit, create, name, params, X)
                theirs, peer_name, same = None, None, None
                if peer is None:
                    ours = median_seconds(fit_ours, args.repeats)
                else:
                    peer_name = peer[0]
                    ours, theirs = paired_median_seconds(
                        [fit_ours, functools.partial(_fit, peers.create, peer[0], peer[1], X)],
                        args.repeats)
                    if name == "itemknn":
                        same = same_pairs(create(name, **params).fit(X),
                                          peers.create(peer[0], **peer[1]).fit(X))
                rows.append({"dataset": source, "task": f"fit {task}", "personae_s": ours,
                             "peer": peer_name, "peer_s": theirs, "same_pairs": same})
                console.print(f"  fit {task}: personae {ours:.4f} s"
                              + (f", {peer_name} {theirs:.4f} s" if theirs is not None else ""))
            for name, params in RECOMMENDERS:
                model = create(name, **params).fit(X)
                secs = median_seconds(lambda m=model, u=users: m.recommend_batch(u, k=20),
                                      args.repeats)
                rows.append({"dataset": source, "task": f"top-20 for all {users.size:,} users, "
                             f"{name}", "personae_s": secs, "peer": None, "peer_s": None})
                console.print(f"  top-20 all users, {name}: {secs:.4f} s")
    report = {"command": command_line("bench/.venv-peers/bin/python bench/bench_speed.py", argv),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
              "repeats": args.repeats, "environment": environment(), "rows": rows,
              "threads": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS",
                                                          "OMP_NUM_THREADS")}}
    table = Table(title="median seconds, same parameters")
    for col in ("data", "task", "personae s", "peer", "peer s", "personae / peer",
                "same pairs"):
        table.add_column(col, justify="right" if col.endswith("s") or "/" in col else "left")
    for r in rows:
        ratio = (f"{r['personae_s'] / r['peer_s']:.2f}" if r["peer_s"] else "—")
        table.add_row(r["dataset"], r["task"], f"{r['personae_s']:.4f}", r["peer"] or "—",
                      f"{r['peer_s']:.4f}" if r["peer_s"] else "—", ratio, _share(r))
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "speed.md").write_text(markdown(report))
    console.print(f"wrote {args.out / 'speed.md'}")
    return 0


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    vers = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = [
        "# Speed at the same parameters: personae against the peer libraries",
        "",
        f"Made by `{report['command']}` on {report['started']} ({env['cores']} cores, "
        f"{env['platform']}; commit {env['git_commit']}"
        f"{' + local changes' if env['git_dirty'] else ''}). Versions: {vers}.",
        "",
        f"Median wall-clock seconds of {report['repeats']} runs after one warm-up "
        "(personae's and the peer's runs of a row take turns), on the P1 "
        "training split of each data set (ml-100k: 943 × 1,682, 80,367 pairs; MeLU: "
        "5,977 × 3,497, 289,672 pairs). Every library uses all cores.",
        "",
        "implicit's `K` counts the item itself (its own nearest neighbour), personae's `k` does "
        "not: at the same number implicit keeps one neighbour fewer per item. The *same "
        "neighbours* rows compare personae's `k` with implicit's `K = k + 1`; *same pairs* is the "
        "share of personae's (item, neighbour) pairs that implicit kept too (the item itself "
        "left out; exact ties may be broken either way).",
        "",
        "| data | task | personae s | peer | peer s | personae / peer | same pairs |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in report["rows"]:
        ratio = f"{r['personae_s'] / r['peer_s']:.2f}" if r["peer_s"] else "—"
        peer_s = "—" if r["peer_s"] is None else f"{r['peer_s']:.4f}"
        lines.append(f"| {r['dataset']} | {r['task']} | {r['personae_s']:.4f} | "
                     f"{r['peer'] or '—'} | {peer_s} | {ratio} | {_share(r)} |")
    return "\n".join(lines) + "\n"


def _share(row: dict[str, Any]) -> str:
    same = row.get("same_pairs")
    return "—" if same is None else f"{100 * same:.2f} %"


if __name__ == "__main__":
    sys.exit(main())
