"""P1 on other random holdouts: how far one split's NDCG@10 moves, for personae and the peers.

The issue's targets are measured on one P1 split (test seed 2026). A single split's NDCG@10 has
a standard error of about 0.009 on ml-100k (943 users), so rows that differ by less than that
are not told apart by it. This benchmark re-draws the split with other seeds and runs the same
rows on each:

- every row keeps the parameters ``bench_models.py`` chose on seed 2026's validation split
  (read from ``bench/results/models.json``), so no row is re-tuned;
- the blend chooses its weights on each split's own validation splits, as ``bench_models.py``
  does (test seed *s*; validation seeds *s* + 1 … *s* + 4 on the training pairs, together);
- the test split of each seed is scored once.

Run in the benchmark's environment (``bash bench/setup_peers.sh``)::

    bench/.venv-peers/bin/python bench/bench_seeds.py                       # ml-100k, 10 seeds
    bench/.venv-peers/bin/python bench/bench_seeds.py --datasets melu-p1 --seeds 2026 2031

Writes ``bench/results/seeds.json`` and ``seeds.md`` (``--name``): a table of NDCG@10 per seed
with the mean and its standard error over seeds, and every row's difference to the blend.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_models as bm  # noqa: E402

from personae.evaluate import evaluate  # noqa: E402
from personae.evaluate.splits import random_holdout  # noqa: E402

#: Rows compared by default: personae's blend and its members, EASE, and the strongest peers.
DEFAULT_MODELS = ["ease", "dlae", "dlae-seq", "gfcf", "als", "twotower", "implicit.als",
                  "cornac.ease", "lightfm.warp", "blend"]
DEFAULT_SEEDS = list(range(2026, 2076, 5))  # 2026 (the split), 2031, …, 2071
METRIC = "ndcg@10"


def tuned_params(path: Path, dataset: str) -> dict[str, dict[str, Any]]:
    """Each row's chosen parameters in a ``bench_models.py`` report (``tuning.best_params``,
    empty for a row that was not tuned)."""
    report = json.loads(path.read_text())
    out: dict[str, dict[str, Any]] = {}
    for run in report["runs"]:
        if run.get("dataset") == dataset and "error" not in run and run["model"] != "blend":
            out[run["model"]] = dict((run.get("tuning") or {}).get("best_params") or {})
    if not out:
        raise SystemExit(f"bench_seeds: {path} has no rows for {dataset}; run bench_models.py "
                         "on it first")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k-p1"],
                        choices=[d for d, ds in bm.DATASETS.items() if ds.protocol == "p1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=DEFAULT_SEEDS,
                        help="test seeds of the P1 splits (default: %(default)s); validation "
                             "seeds are the test seed + 1, + 2, …")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="MODEL",
                        help=f"rows of bench_models.py (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--params-from", type=Path, default=HERE / "results" / "models.json",
                        help="the bench_models.py report whose chosen parameters are used")
    parser.add_argument("--blend-members", nargs="+", default=list(bm.BLEND_MEMBERS))
    parser.add_argument("--blend-folds", type=int, default=bm.BLEND_FOLDS)
    parser.add_argument("--blend-fraction", type=float, default=bm.BLEND_FRACTION)
    parser.add_argument("--blend-step", type=float, default=bm.BLEND_STEP)
    parser.add_argument("--blend-plateau", type=float, default=bm.BLEND_PLATEAU)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="seeds")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in bm.ENTRIES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(bm.ENTRIES)}")
    args.memory = "none"  # what run_blend reads

    command = bm.command_line(f"{bm.interpreter()} bench/bench_seeds.py", argv)
    started = time.time()
    scores: dict[str, dict[str, dict[int, float]]] = {}
    weights: dict[str, dict[int, list[float]]] = {}
    members_used: dict[str, list[str]] = {}  # per data set: the blend's members as run
    with tempfile.TemporaryDirectory(prefix="personae-bench-seeds-") as tmp:
        for ds_label in args.datasets:
            ds = bm.DATASETS[ds_label]
            params = tuned_params(args.params_from, ds_label)
            bm.console.print(f"[bold]importing {ds.source}[/] …")
            view = bm.load_view(ds.source, Path(tmp))
            # rows that need event times are left out on data without them (bench_models
            # skips them there too; the blend then uses the plain row instead)
            skipped = set() if view.has_times else {m for m in args.models + args.blend_members
                                                    if bm.ENTRIES[m].needs_times}
            missing = [m for m in args.models if m != "blend" and m not in params
                       and m not in skipped]
            if "blend" in args.models:
                members = [bm.WITHOUT_TIMES[m] if m in skipped else m
                           for m in args.blend_members]
                missing += [m for m in members if m not in params]
                members_used[ds_label] = members
            if missing:
                raise SystemExit(f"bench_seeds: no parameters for {sorted(set(missing))} on "
                                 f"{ds_label} in {args.params_from}")
            table = scores.setdefault(ds_label, {})
            for seed in args.seeds:
                split = random_holdout(view, seed=seed, validation_seed=seed + 1)
                bm.console.print(f"[bold]{ds_label}, test seed {seed}[/]")
                for label in args.models:
                    if label in skipped:
                        continue
                    t0 = time.perf_counter()
                    if label == "blend":
                        out = bm.run_blend(split, params, args, bm.blend_validations(
                            split, "p1", args.blend_folds, args.blend_fraction))
                        weights.setdefault(ds_label, {})[seed] = \
                            out["tuning"]["best_params"]["weights"]
                        result = out["result"]
                    else:
                        entry = bm.ENTRIES[label]
                        if entry.warm_up is not None:
                            entry.warm_up()
                        result = evaluate(entry.factory()(**params[label]), split, ks=(10,),
                                          memory="none")
                    table.setdefault(label, {})[seed] = result.metrics[METRIC]
                    bm.console.print(f"  {label:14s} {METRIC} {result.metrics[METRIC]:.4f}  "
                                     f"({time.perf_counter() - t0:.0f} s)")
    report = {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "environment": bm.environment(),
        "params_from": str(args.params_from.resolve().relative_to(bm.ROOT))
        if args.params_from.resolve().is_relative_to(bm.ROOT) else str(args.params_from),
        "metric": METRIC,
        "seeds": args.seeds,
        "scores": {ds: {m: {str(s): v for s, v in per.items()} for m, per in rows.items()}
                   for ds, rows in scores.items()},
        "blend_weights": {ds: {str(s): w for s, w in per.items()}
                          for ds, per in weights.items()},
        "blend_members": members_used,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    return 0


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n); NaN for one value)."""
    arr = np.asarray(values, dtype=np.float64)
    se = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else math.nan
    return float(arr.mean()), se


def _pm(mean: float, se: float, sign: str = "") -> str:
    return f"{mean:{sign}.4f}" + ("" if math.isnan(se) else f" ± {se:.4f}")


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    seeds = [str(s) for s in report["seeds"]]
    lines = [
        "# P1 on other random holdouts",
        "",
        f"Made by `{report['command']}` on {report['started']} ({report['seconds']:.0f} s; "
        f"{env['cores']} cores; commit {env['git_commit']}"
        f"{' + local changes' if env['git_dirty'] else ''}).",
        "",
        f"{report['metric']} of each row on P1 splits drawn with other test seeds. Every row "
        f"keeps the parameters chosen on seed 2026's validation split (`{report['params_from']}`"
        "); the blend chooses its weights on each split's own validation splits. Mean ± its "
        "standard error over the seeds; *vs blend*: the row minus the blend, per seed, "
        "averaged (± its standard error).",
        "",
    ]
    for ds, rows in report["scores"].items():
        lines += [f"## {ds}", "",
                  "| model | " + " | ".join(f"seed {s}" for s in seeds)
                  + " | mean ± se | vs blend |",
                  "|---|" + "---:|" * (len(seeds) + 2)]
        blend = rows.get("blend")
        best = {s: max(r[s] for r in rows.values()) for s in seeds}
        for model, per in rows.items():
            vals = [per[s] for s in seeds]
            m, se = mean_se(vals)
            cells = [f"**{v:.4f}**" if v == best[s] else f"{v:.4f}"
                     for v, s in zip(vals, seeds, strict=True)]
            if blend is not None and model != "blend":
                dm, dse = mean_se([per[s] - blend[s] for s in seeds])
                diff = _pm(dm, dse, "+")
            else:
                diff = "—"
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {_pm(m, se)} | "
                         f"{diff} |")
        w = report["blend_weights"].get(ds)
        if w:
            members = report["blend_members"]
            if isinstance(members, dict):  # per data set (older reports: one list for all)
                members = members[ds]
            lines += ["", f"Blend weights ({', '.join(members)}) per seed: "
                      + "; ".join(f"{s}: {w[s]}" for s in seeds if s in w) + "."]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
