"""personae's models against the peer libraries, on the same splits, candidates and metrics.

One command, one process, in the benchmark's own environment (``bash bench/setup_peers.sh``)::

    bench/.venv-peers/bin/python bench/bench_models.py                 # everything
    bench/.venv-peers/bin/python bench/bench_models.py --datasets ml-100k-p1 \\
        --models ease cornac.ease --no-tune                            # a quick look

Data sets (imported from ``../shared/data`` into a temporary SQLite store, read back with
``Interactions.from_store``):

- ``ml-100k-p1``: MovieLens 100K, protocol P1 (per-user random 20 % holdout, seed 2026;
  validation: the same on the train set, seed 2027);
- ``ml-100k-p2``: MovieLens 100K, protocol P2 (leave-last-out; tuned on the second-last item,
  refit on train + validation);
- ``melu-p1``: the 359,761 ratings of the MeLU ml-1m cold-start folder, protocol P1.

The splits, metrics and evaluation loop are ``personae.evaluate``'s: every model (personae's or
a peer adapter from ``bench/peers``) is tuned with :func:`personae.evaluate.tune` on the
validation split only, then fit once on the training split and scored on the test split by
:func:`personae.evaluate.evaluate`, which ranks every item outside the user's training items.
Columns: NDCG, Recall, Precision, MAP, HitRate, MRR at 10 (every K in the JSON), catalogue
coverage, the test fit's seconds, seconds to recommend the top 20 for all test users, and the
peak memory of fit + recommend (``--memory``: tracemalloc by default, which sees numpy buffers
but not memory that C++ or torch allocate outside Python's allocator).

Writes ``bench/results/models.json`` (every number, every tuning trial, versions, the command)
and ``bench/results/models.md``; prints a table per data set.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("PERSONAE_SHARED_DATA", ROOT.parent / "shared" / "data"))
SEED = 2026

sys.path.insert(0, str(HERE))  # bench/peers

import peers  # noqa: E402
from rich.console import Console  # noqa: E402

from personae.data.interactions import Interactions  # noqa: E402
from personae.evaluate import (  # noqa: E402
    EvaluationResult,
    Split,
    evaluate,
    leave_last_out,
    random_holdout,
    render_table,
    tune,
    validation_folds,
)
from personae.models import create as create_model  # noqa: E402
from personae.store import Store  # noqa: E402

console = Console()
if not console.is_terminal:  # a log file: wide enough for the whole table
    console = Console(width=200)


# ---------------------------------------------------------------------- what is compared


@dataclass(frozen=True)
class Entry:
    """One row of the table: a model, its fixed parameters, and the grid tuned on validation."""

    label: str
    library: str
    make: Callable[..., Any]
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    warm_up: Callable[[], None] | None = None
    #: The row reads the time order of events: it is skipped on data without event times
    #: (MeLU), where the blend uses ``WITHOUT_TIMES[label]`` in its place.
    needs_times: bool = False

    def factory(self) -> Callable[..., Any]:
        return functools.partial(self.make, **self.fixed)


def _personae(label: str, name: str, grid: dict[str, list[Any]] | None = None,
              needs_times: bool = False, **fixed: Any) -> Entry:
    return Entry(label, "personae", functools.partial(create_model, name), fixed, grid or {},
                 needs_times=needs_times)


#: personae's models. Grids are small on purpose: they are the benchmark's, not a search for
#: the best possible number; the models' owners may widen them.
PERSONAE: list[Entry] = [
    _personae("popularity", "popularity"),
    _personae("itemknn-cosine", "itemknn", {"k": [50, 100, 200], "shrinkage": [0.0, 20.0]},
              similarity="cosine"),
    _personae("itemknn-bm25", "itemknn", {"k": [50, 100, 200], "bm25_b": [0.25, 0.75]},
              similarity="bm25"),
    # RP3beta: on the ml-100k P1 validation split, alpha 0.5-1.0 x beta 0-0.8 x k 50-1681
    # peaked at 0.2584 (alpha 0.75, beta 0.6, k 800) against 0.2730 for ALS; beta > 0.6 fell
    # fast (0.8: under 0.21). The grid spans the plateau.
    _personae("rp3beta", "rp3beta", {"alpha": [0.5, 0.75, 1.0], "beta": [0.3, 0.5, 0.6],
                                     "k": [200, 800]}),
    _personae("ease", "ease", {"l2": [100.0, 250.0, 500.0, 1000.0]}),
    # (dropout 0.5 is only what --no-tune uses: the grid sets it)
    _personae("edlae", "ease", {"l2": [100.0, 300.0, 600.0], "dropout": [0.33, 0.5, 0.75]},
              dropout=0.5),
    _personae("dlae", "ease", {"l2": [100.0, 300.0, 600.0], "dropout": [0.33, 0.5, 0.75]},
              dropout=0.5, zero_diagonal=False),
    # DLAE whose Gram matrix also counts the items a user took within 5 places of each other
    # in time (EASE's sequence_window): on ml-100k P1 validation, windows 3-30 and weights
    # 0.75-1.0 all reached 0.2707-0.2717 against DLAE's 0.2670
    _personae("dlae-seq", "ease", {"l2": [150.0, 300.0, 600.0], "dropout": [0.75, 0.85],
                                   "sequence_weight": [0.5, 1.0]},
              needs_times=True, dropout=0.75, zero_diagonal=False, sequence_window=5),
    _personae("gfcf", "gfcf", {"k": [32, 64, 128], "alpha": [0.3, 1.0]}, random_state=SEED),
    _personae("als", "als", {"factors": [64, 128], "regularization": [10.0, 20.0, 40.0]},
              random_state=SEED),
    _personae("bpr", "bpr", {"factors": [64, 128], "learning_rate": [0.01, 0.05],
                             "regularization": [0.001, 0.01]}, random_state=SEED),
    # the two-tower model at its defaults (chosen on ml-100k P1 validation, see
    # bench/bench_neural.py), one torch thread; only the weight decay is tuned here
    _personae("twotower", "twotower", {"l2": [1e-4, 3e-4, 1e-3]}, random_state=SEED,
              num_threads=1),
]

#: The blend row: these members, each with the parameters tuned in its own row, fused by
#: z-scored scores with weights chosen by ``personae.models.blend.tune_weights_on_folds`` on
#: the validation splits (on P1, ``--blend-folds N`` splits of the training pairs together,
#: each holding out ``--blend-fraction`` of every user's pairs: BLEND_FOLDS and BLEND_FRACTION
#: by default; P2 has one; ``--blend-step``: the grid's spacing).
#: ``--blend-members`` picks others among the rows. The defaults are the best blend found on
#: validation (``bench/results/models-blend-tries.md``), so that the plain command reproduces
#: every number of the README's table.
BLEND_MEMBERS = ("dlae-seq", "gfcf", "als", "twotower")
#: A blend member that needs event times, and the row the blend uses instead on data without.
WITHOUT_TIMES = {"dlae-seq": "dlae"}
#: P1's own 20 %: 8 folds of 10 % (training data closer to the final fit's) gained on some
#: fold draws and lost on others (``bench/results/models-blend-tries.md``, 2026-12-08).
BLEND_FOLDS = 4
BLEND_FRACTION = 0.2
BLEND_STEP = 0.05
#: The blend's weights: the mean of the grid's vectors within this of the best validation
#: NDCG@10 (``personae.models.blend.tune_weights_on_folds``); 0: the best vector alone. On 10
#: test seeds 0.001 gained +0.0007 ± 0.0002 over 0 (``bench/results/seeds-plateau.md``).
BLEND_PLATEAU = 0.001

PEERS: list[Entry] = [
    Entry(name, peers.get_peer_class(name).library, functools.partial(peers.create, name),
          {}, dict(peers.get_peer_class(name).grid), peers.get_peer_class(name).import_library)
    for name in peers.PEERS
]

ENTRIES = {e.label: e for e in PERSONAE + PEERS}
ENTRIES["blend"] = Entry("blend", "personae", functools.partial(create_model, "blend"))
#: What the plain command runs: every row but RecBole's, whose neural models (trained for
#: hundreds of CPU-minutes here) are compared by ``bench_neural.py`` on their own protocols.
DEFAULT_MODELS = [label for label, e in ENTRIES.items() if e.library != "recbole"]


# ---------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    label: str
    source: str  # "ml-100k" | "melu"
    protocol: str  # "p1" | "p2"


DATASETS = {
    "ml-100k-p1": Dataset("ml-100k-p1", "ml-100k", "p1"),
    "ml-100k-p2": Dataset("ml-100k-p2", "ml-100k", "p2"),
    "melu-p1": Dataset("melu-p1", "melu", "p1"),
}


def load_view(source: str, workdir: Path) -> Interactions:
    """Import one shared data set into a fresh SQLite store and read it back."""
    from personae.data.importers import import_melu, import_movielens

    store = Store(workdir / f"{source}.db")
    try:
        if source == "ml-100k":
            import_movielens(store, SHARED / "ml-100k")
        elif source == "melu":
            import_melu(store, SHARED / "ml-1m-melu-coldstart")
        else:
            raise ValueError(f"unknown data source {source!r}")
        return Interactions.from_store(store)
    finally:
        store.close()


def make_split(view: Interactions, protocol: str) -> Split:
    if protocol == "p1":
        return random_holdout(view)  # seed 2026, validation seed 2027: the issue's P1
    if protocol == "p2":
        return leave_last_out(view)
    raise ValueError(f"unknown protocol {protocol!r}")


# ---------------------------------------------------------------------- running


def run_one(entry: Entry, split: Split, args: argparse.Namespace) -> dict[str, Any]:
    """Tune on validation (unless ``--no-tune``), then fit on train and test once."""
    if entry.warm_up is not None:
        entry.warm_up()  # the library's import is not part of the timed fit
    make = entry.factory()
    tuning = None
    params: dict[str, Any] = {}
    if entry.grid and not args.no_tune:
        tuning = tune(make, entry.grid, split, metric="ndcg@10", ks=(5, 10, 20),
                      time_budget_s=args.tune_budget)
        params = dict(tuning.best_params)
    result = evaluate(make(**params), split, ks=(5, 10, 20), memory=args.memory)
    result.model = entry.label
    return {"result": result, "tuning": tuning.to_dict() if tuning else None,
            "library": entry.library}


def run_blend(split: Split, tuned: dict[str, dict[str, Any]], args: argparse.Namespace,
              validations: list[Split]) -> dict[str, Any]:
    """Blend the members' tuned configurations; weights tuned on the validation splits (one by
    default, ``--blend-folds`` of them), then fit on train and tested once."""
    from personae.models.blend import Blend, describe_members, tune_weights_on_folds

    members = []
    for label in args.blend_members:
        if label not in tuned and ENTRIES[label].needs_times and not split.has_times:
            label = WITHOUT_TIMES[label]
        if label not in tuned:
            raise RuntimeError(f"the blend needs the {label!r} row first (add it to --models)")
        name = ENTRIES[label].make.args[0]  # the registry name behind the row
        members.append((name, {**ENTRIES[label].fixed, **tuned[label]}))
    if not validations:
        raise RuntimeError("the blend's weights need a validation split")
    started = time.perf_counter()
    best, score = tune_weights_on_folds(members, [(v.train_view(), v.test) for v in validations],
                                        normalize="zscore", k=10, step=args.blend_step,
                                        plateau=args.blend_plateau)
    weights = best.round(6).tolist()
    tuning = {"best_params": {"weights": weights}, "best_score": score, "metric": "ndcg@10",
              "validation_seeds": [v.params.get("seed") for v in validations],
              "seconds": round(time.perf_counter() - started, 3)}
    result = evaluate(Blend(members, weights=weights, normalize="zscore"), split,
                      ks=(5, 10, 20), memory=args.memory)
    result.model = "blend"
    result.params = {"members": describe_members(members),
                     "weights": weights, "normalize": "zscore",
                     "validation_folds": len(validations), "step": args.blend_step}
    if args.blend_plateau:
        result.params["plateau"] = args.blend_plateau
    fraction = validations[0].params.get("test_fraction")
    if fraction is not None and fraction != split.params.get("test_fraction"):
        result.params["validation_fraction"] = fraction
    return {"result": result, "tuning": tuning, "library": "personae"}


def blend_validations(split: Split, protocol: str, folds: int,
                      fraction: float = BLEND_FRACTION) -> list[Split]:
    """The validation splits the blend's weights are chosen on: on P1, ``folds`` draws of P1's
    procedure on the training pairs, each holding out ``fraction`` of every user's pairs
    (``personae.evaluate.validation_folds``; seeds 2027, 2028, …; with fraction 0.2 the first
    is the issue's validation split); on P2, its one validation split. The test split is the
    same for all of them."""
    if split.validation is None:
        return []
    if protocol != "p1":
        if folds > 1:
            raise RuntimeError(f"--blend-folds > 1 needs protocol P1 (random holdout), not "
                               f"{protocol}: leave-last-out has one validation item per user")
        return [split.validation]
    return validation_folds(split, folds, fraction=fraction)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="MODEL",
                        help=f"any of: {', '.join(ENTRIES)} (default: all but RecBole's)")
    parser.add_argument("--no-tune", action="store_true",
                        help="use each model's default parameters (no validation search)")
    parser.add_argument("--tune-budget", type=float, default=300.0, metavar="SECONDS",
                        help="per model and data set: no new trial starts after this "
                             "(default 300)")
    parser.add_argument("--memory", choices=["tracemalloc", "rss", "none"],
                        default="tracemalloc")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="folder for models.json and models.md")
    parser.add_argument("--name", default="models", help="file stem of the outputs")
    parser.add_argument("--blend-members", nargs="+", default=list(BLEND_MEMBERS),
                        metavar="MODEL", help="personae rows fused by the blend row (default: "
                        f"{' '.join(BLEND_MEMBERS)})")
    parser.add_argument("--blend-folds", type=int, default=None, metavar="N",
                        help="choose the blend's weights on N validation splits of the "
                             "training pairs together (P1 only; seeds 2027, 2028, …; default "
                             f"{BLEND_FOLDS} on P1, the one validation split on P2)")
    parser.add_argument("--blend-fraction", type=float, default=BLEND_FRACTION, metavar="F",
                        help="share of each user's training pairs each of those splits holds "
                             f"out (P1 only; default {BLEND_FRACTION}, P1's own)")
    parser.add_argument("--blend-step", type=float, default=BLEND_STEP, metavar="STEP",
                        help=f"spacing of the blend's weight grid (default {BLEND_STEP})")
    parser.add_argument("--blend-plateau", type=float, default=BLEND_PLATEAU, metavar="EPS",
                        help="the blend's weights: the mean of the grid's vectors within EPS "
                             f"of the best validation NDCG@10 (default {BLEND_PLATEAU}; 0: the "
                             "best vector)")
    args = parser.parse_args(argv)
    if args.blend_folds is not None and args.blend_folds < 1:
        parser.error(f"--blend-folds must be >= 1, got {args.blend_folds}")
    if not 0.0 < args.blend_fraction < 1.0:
        parser.error(f"--blend-fraction must be in (0, 1), got {args.blend_fraction}")
    unknown = [m for m in args.models if m not in ENTRIES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ENTRIES)}")

    missing = sorted({ENTRIES[m].library for m in args.models
                      if ENTRIES[m].library != "personae"
                      and importlib.util.find_spec(ENTRIES[m].library) is None})
    if missing:
        parser.exit(2, f"bench_models: {', '.join(missing)} not installed in {sys.executable}; "
                       "run `bash bench/setup_peers.sh` and use bench/.venv-peers/bin/python\n")

    command = command_line(f"{interpreter()} bench/bench_models.py", argv)
    started = time.time()
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="personae-bench-models-") as tmp:
        views: dict[str, Interactions] = {}
        for ds_label in args.datasets:
            ds = DATASETS[ds_label]
            if ds.source not in views:
                console.print(f"[bold]importing {ds.source}[/] …")
                views[ds.source] = load_view(ds.source, Path(tmp))
            split = make_split(views[ds.source], ds.protocol)
            console.print(f"[bold]{ds_label}[/]: {split.summary()}")
            results: list[EvaluationResult] = []
            tuned: dict[str, dict[str, Any]] = {}
            order = [m for m in args.models if m != "blend"] + (
                ["blend"] if "blend" in args.models else [])
            for label in order:
                entry = ENTRIES[label]
                if entry.needs_times and not split.has_times:
                    console.print(f"  {label}: skipped (this data has no event times)")
                    continue
                console.print(f"  {label} …", end="")
                t0 = time.perf_counter()
                try:
                    folds = args.blend_folds or (BLEND_FOLDS if ds.protocol == "p1" else 1)
                    out = (run_blend(split, tuned, args, blend_validations(
                               split, ds.protocol, folds, args.blend_fraction))
                           if label == "blend" else run_one(entry, split, args))
                except Exception as exc:  # one model's failure must not hide the others' rows
                    failures.append(f"{ds_label}/{label}: {type(exc).__name__}: {exc}")
                    console.print(f" [red]failed[/]: {type(exc).__name__}: {exc}")
                    runs.append({"dataset": ds_label, "model": label, "library": entry.library,
                                 "error": traceback.format_exc()})
                    continue
                r = out["result"]
                results.append(r)
                tuned[label] = dict(out["tuning"]["best_params"]) if out["tuning"] else {}
                console.print(f" ndcg@10 {r.metrics['ndcg@10']:.4f}  fit {r.fit_seconds:.2f}s "
                              f"({time.perf_counter() - t0:.0f}s with tuning)")
                runs.append({"dataset": ds_label, "model": label, "library": out["library"],
                             "tuning": out["tuning"], **r.to_dict()})
            table = render_table(results, k=10)
            table.title = f"{ds_label} @ 10"
            console.print(table)

    report = {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "environment": environment(),
        "tuned": not args.no_tune,
        "tune_budget_s": args.tune_budget,
        "memory": args.memory,
        "runs": runs,
        "failures": failures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(report))
    console.print(f"wrote {args.out / (args.name + '.json')} and {args.name}.md "
                  f"in {report['seconds']:.0f} s")
    if failures:
        console.print("[red]failures:[/]\n  " + "\n  ".join(failures))
        return 1
    return 0


# ---------------------------------------------------------------------- reporting


def command_line(program: str, argv: list[str] | None) -> str:
    """The command that reproduces this run: ``program`` and its arguments, shell-quoted."""
    args = argv if argv is not None else sys.argv[1:]
    return f"{program} {shlex.join(args)}" if args else program


def interpreter() -> str:
    """This Python, relative to the repository when it lives there (``.venv/bin/python`` or
    ``bench/.venv-peers/bin/python``), so that the recorded command is the one that ran."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return str(exe)


def environment() -> dict[str, Any]:
    versions = {}
    for name in ("personae", "numpy", "scipy", "implicit", "cornac", "lightfm", "torch",
                 "threadpoolctl"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                                    check=True, capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": versions,
    }


COLUMNS = ("ndcg@10", "recall@10", "precision@10", "map@10", "hitrate@10", "mrr@10",
           "coverage@10")


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    vers = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    tuned = (f"a small grid per model, {report['tune_budget_s']:.0f} s budget" if report["tuned"]
             else "not tuned: default parameters")
    lines = [
        "# personae's models against peer libraries",
        "",
        f"Made by `{report['command']}` on {report['started']} "
        f"({report['seconds']:.0f} s; {env['cores']} cores, {env['platform']}; "
        f"commit {env['git_commit']}{' + local changes' if env['git_dirty'] else ''}).",
        "",
        f"Versions: {vers}.",
        "",
        f"Each model is tuned on the validation split only ({tuned}), "
        "then fit once on the training split; every item outside the user's training items is "
        "ranked. Fit and recommend are wall-clock seconds of that final fit and of the top-20 "
        f"for all test users; peak memory: {report['memory']}.",
        "",
    ]
    by_ds: dict[str, list[dict[str, Any]]] = {}
    for run in report["runs"]:
        by_ds.setdefault(run["dataset"], []).append(run)
    for ds, runs in by_ds.items():
        lines += [f"## {ds}", ""]
        ok = [r for r in runs if "error" not in r]
        if ok:
            s = ok[0]["split"]
            lines += [f"{s['n_users']:,} users × {s['n_items']:,} items; "
                      f"{s['n_train']:,} training and {s['n_test']:,} test pairs; "
                      f"{s['n_test_users']:,} users evaluated.", ""]
        head = ["model", "library", *COLUMNS, "fit s", "recommend s", "peak MiB", "parameters"]
        lines += ["| " + " | ".join(head) + " |",
                  "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 3) + ["---"]) + "|"]
        best = {c: max((r["metrics"].get(c) or float("-inf")) for r in ok) if ok else None
                for c in COLUMNS}
        for r in runs:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['library']} | failed: "
                             f"{r['error'].strip().splitlines()[-1]} |")
                continue
            cells = []
            for c in COLUMNS:
                v = r["metrics"].get(c)
                cell = "—" if v is None else f"{v:.4f}"
                cells.append(f"**{cell}**" if v is not None and v == best[c] else cell)
            mem = r.get("peak_memory_bytes")
            lines.append("| " + " | ".join([
                r["model"], r["library"], *cells, f"{r['fit_seconds']:.3f}",
                f"{r['recommend_seconds']:.3f}", "—" if mem is None else f"{mem / 2**20:.1f}",
                ", ".join(f"{k}={v}" for k, v in r["params"].items()),
            ]) + " |")
        lines.append("")
    if report["failures"]:
        lines += ["## Failures", ""] + [f"- {f}" for f in report["failures"]] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
