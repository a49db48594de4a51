"""Fit and recommend speed at the *same* configuration: personae against the peer libraries.

``bench_models.py`` times each model at its own tuned parameters, so its fit columns compare
different work (item-kNN with shrinkage against one without, say). This script times the same
model with the same parameters in each library, repeatedly, and reports the median::

    bench/.venv-peers/bin/python bench/bench_speed.py            # ml-100k and MeLU, 7 repeats
    bench/.venv-peers/bin/python bench/bench_speed.py --repeats 3 --datasets ml-100k

Rows: item-kNN cosine (K = 20 and 100) and BM25 (K = 100) against ``implicit``; EASE
(λ = 500) in float64 and float32 against ``cornac``; the top-20 for every training user of the
P1 training split (personae's ``recommend_batch``: scoring, excluding seen items, top-k).
Writes ``bench/results/speed.json`` and ``speed.md``.
"""

from __future__ import annotations

import argparse
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
    ("EASE λ=500, float64", ("ease", {"l2": 500.0}), ("cornac.ease", {"lamb": 500.0})),
    ("EASE λ=500, float32", ("ease", {"l2": 500.0, "dtype": "float32"}), None),
]
RECOMMENDERS = [("ease", {"l2": 500.0}), ("itemknn", {"k": 100}), ("als", {})]


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: imports, first-touch allocations, thread pools
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
                ours = median_seconds(lambda n=name, p=params, X=X: create(n, **p).fit(X),
                                      args.repeats)
                theirs, peer_name = None, None
                if peer is not None:
                    peer_name = peer[0]
                    theirs = median_seconds(lambda q=peer, X=X: peers.create(q[0], **q[1]).fit(X),
                                            args.repeats)
                rows.append({"dataset": source, "task": f"fit {task}", "personae_s": ours,
                             "peer": peer_name, "peer_s": theirs})
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
    for col in ("data", "task", "personae s", "peer", "peer s", "personae / peer"):
        table.add_column(col, justify="right" if col.endswith("s") or "/" in col else "left")
    for r in rows:
        ratio = (f"{r['personae_s'] / r['peer_s']:.2f}" if r["peer_s"] else "—")
        table.add_row(r["dataset"], r["task"], f"{r['personae_s']:.4f}", r["peer"] or "—",
                      f"{r['peer_s']:.4f}" if r["peer_s"] else "—", ratio)
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
        f"Median wall-clock seconds of {report['repeats']} runs after one warm-up, on the P1 "
        "training split of each data set (ml-100k: 943 × 1,682, 80,367 pairs; MeLU: "
        "5,977 × 3,497, 289,672 pairs). Every library uses all cores.",
        "",
        "| data | task | personae s | peer | peer s | personae / peer |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in report["rows"]:
        ratio = f"{r['personae_s'] / r['peer_s']:.2f}" if r["peer_s"] else "—"
        peer_s = "—" if r["peer_s"] is None else f"{r['peer_s']:.4f}"
        lines.append(f"| {r['dataset']} | {r['task']} | {r['personae_s']:.4f} | "
                     f"{r['peer'] or '—'} | {peer_s} | {ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
