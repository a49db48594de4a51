"""The neural models (SASRec, two-tower) on ml-100k, beside EASE and the peer libraries' neural
models, with the splits, candidates and metrics of ``bench/bench_models.py``.

    .venv/bin/python bench/bench_neural.py                                   # personae rows
    bench/.venv-peers/bin/python bench/bench_neural.py --models recbole.sasrec recbole.bpr \\
        recbole.lightgcn cornac.vaecf                                        # peer rows

Rows (``--models``; results of earlier runs are kept, so the two commands fill one table):

- ``ml-100k-p2`` (leave-last-out): ``sasrec`` (personae), ``recbole.sasrec``; ``ease`` for
  scale. Sequence models get each user's training pairs in the split's own order (time, then
  raw item id) through :func:`personae.data.side.split_interactions`; the peer gets the same
  order as the values of its training matrix (:func:`ordered_train`).
- ``ml-100k-p1`` (random 20 % holdout): ``ease``, ``twotower``, ``blend`` (EASE + two-tower,
  weights tuned on the validation split), ``recbole.bpr``, ``recbole.lightgcn``,
  ``cornac.vaecf``.

Hyper-parameters are fixed here (chosen on the validation splits, see ``CONFIG``); every model
is fit once on the training split and scored by :func:`personae.evaluate.evaluate`, which ranks
every item outside the user's training items. The fit is timed in wall-clock seconds and in CPU
seconds of this process (``time.process_time``); with one torch thread, CPU seconds are what
the fit takes on one idle core. SASRec trains with two threads (``num_threads=2``): its target
is wall-clock time on the machine's 2 cores. The machine's load average is recorded next to
each fit, since these machines are shared: compare wall seconds only at a load near 0.

Writes ``bench/results/neural.json`` and ``bench/results/neural.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_models import command_line, interpreter, load_view  # noqa: E402

from personae.data.side import split_interactions  # noqa: E402
from personae.evaluate import evaluate, leave_last_out, random_holdout  # noqa: E402
from personae.evaluate.splits import Split  # noqa: E402
from personae.models import create  # noqa: E402

SEED = 2026
RESULTS = HERE / "results"

#: Fixed hyper-parameters (chosen on each protocol's validation split).
CONFIG: dict[str, dict[str, Any]] = {
    "sasrec": {"factors": 64, "n_layers": 2, "n_heads": 2, "max_len": 30, "window_overlap": 10,
               "random_windows": True, "dropout": 0.2, "epochs": 25, "batch_size": 128,
               "learning_rate": 5e-3, "lr_decay": True, "loss": "ce", "init": "svd",
               "random_state": SEED, "num_threads": 2},
    "twotower": {"factors": 600, "epochs": 40, "batch_size": 100, "learning_rate": 2e-3,
                 "lr_decay": True, "l2": 3e-4, "input_keep": 0.5, "targets": "all",
                 "user_mlp": False, "tie_items": True, "dropout": 0.0, "init": "svd",
                 "random_state": SEED, "num_threads": 1},
    "ease": {"l2": 250.0},
    "ease-p2": {"l2": 500.0},
    "recbole.sasrec": {"epochs": 200, "num_threads": 1},
    "recbole.bpr": {"epochs": 100, "num_threads": 1},
    "recbole.lightgcn": {"epochs": 100, "num_threads": 1},
    "cornac.vaecf": {"k": 50, "autoencoder_structure": [200], "beta": 1.0, "num_threads": 1},
}
P2_MODELS = ("sasrec", "recbole.sasrec", "ease-p2")
P1_MODELS = ("ease", "twotower", "blend", "recbole.bpr", "recbole.lightgcn", "cornac.vaecf")


def ordered_train(view: Any, split: Split) -> sp.csr_matrix:
    """``split.train`` with each value the pair's position in its user's time order (1 =
    oldest), for peer adapters that read order from the matrix (``recbole.sasrec``)."""
    seqs = split_interactions(view, split).sequences()
    rows = np.repeat(np.arange(len(seqs)), seqs.lengths())
    rank = np.arange(seqs.items.size) - np.repeat(seqs.indptr[:-1], seqs.lengths()) + 1
    X = sp.csr_matrix((rank.astype(np.float32), (rows, seqs.items)), shape=split.train.shape)
    X.sort_indices()
    return X


def load() -> float:
    return float(os.getloadavg()[0])


def timed_fit(model: Any, fit: Any) -> dict[str, float]:
    before = load()
    wall, cpu = time.perf_counter(), time.process_time()
    fit()
    return {"fit_wall_s": time.perf_counter() - wall, "fit_cpu_s": time.process_time() - cpu,
            "load_before": before, "load_after": load()}


def peer(name: str, params: dict[str, Any]) -> Any:
    import peers

    return peers.create(name, **params)


def run_row(name: str, dataset: str, view: Any, split: Split, cache: dict[str, Any],
            on: Literal["test", "validation"] = "test") -> dict[str, Any]:
    params = dict(CONFIG.get(name, {}))
    label = name.removesuffix("-p2")
    if name == "sasrec":
        model = create("sasrec", **params)
        part = "validation" if on == "validation" else "train"
        timing = timed_fit(model, lambda: model.fit(split_interactions(view, split, part)))
    elif name == "recbole.sasrec":
        model = peer(name, params)
        X = ordered_train(view, split)
        timing = timed_fit(model, lambda: model.fit(X))
    elif name == "blend":
        from personae.models.blend import Blend

        members = [("ease", CONFIG["ease"]), ("twotower", CONFIG["twotower"])]
        val = split.validation
        probe = Blend(members, normalize="zscore").fit(val.train).tune_weights(val.test,
                                                                              step=0.1)
        weights = probe.weights_.round(6).tolist()
        params = {"members": ["ease", "twotower"], "weights": weights,
                  "validation_ndcg@10": probe.tuned_score_}
        model = Blend(members, weights=weights, normalize="zscore")
        timing = timed_fit(model, lambda: model.fit(split.train))
    elif "." in name:
        model = peer(name, params)
        timing = timed_fit(model, lambda: model.fit(split.train))
    else:
        model = create(label, **params)
        timing = timed_fit(model, lambda: model.fit(split.train))
    result = evaluate(model, split, on=on, fit=False, memory="none")
    cache[label] = model
    if on == "validation":
        label += " (validation)"
    return {"dataset": dataset, "model": label, "library": name.split(".")[0]
            if "." in name else "personae", "params": params,
            "metrics": result.metrics, "recommend_s": result.recommend_seconds, **timing,
            "torch_threads": params.get("num_threads")}


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    runs = sorted({(r["run"], r["command"]) for r in rows})
    out = ["# Neural models on ml-100k (SASRec, two-tower) and peers", "",
           "Made by these commands (the `run` column says which made each row):", "",
           *[f"- {run}: `{command}`" for run, command in runs], "",
           "Fit seconds: wall-clock, and CPU seconds of the process (torch threads: "
           "`num_threads` in the parameters; with one thread, CPU seconds are the time on one "
           "idle core); load: the machine's 1-minute load average before/after the fit (2 "
           "cores, shared with other jobs).", "",
           "Peer rows ran with fewer epochs than their libraries' defaults where noted in their "
           "parameters (the machine was shared by other jobs: RecBole's SASRec trains on every "
           "prefix of every sequence as its own sample, about 50 times the tokens per epoch of "
           "personae's windows, and one epoch took minutes here). Compare their numbers as "
           "lower bounds.", ""]
    for dataset in ("ml-100k-p2", "ml-100k-p1"):
        sel = [r for r in rows if r["dataset"] == dataset]
        if not sel:
            continue
        out += [f"## {dataset}", "",
                "| model | library | ndcg@10 | hitrate@10 | recall@10 | mrr@10 | fit wall s | "
                "fit CPU s | load | parameters | run |",
                "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
        for r in sel:
            m = r["metrics"]
            p = ", ".join(f"{k}={v}" for k, v in r["params"].items())
            out.append(
                f"| {r['model']} | {r['library']} | {m['ndcg@10']:.4f} | "
                f"{m['hitrate@10']:.4f} | {m['recall@10']:.4f} | {m['mrr@10']:.4f} | "
                f"{r['fit_wall_s']:.1f} | {r['fit_cpu_s']:.1f} | "
                f"{r['load_before']:.1f}/{r['load_after']:.1f} | {p} | {r['run']} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["sasrec", "ease-p2", "ease",
                                                        "twotower", "blend"],
                        help=f"rows to run: {', '.join(P2_MODELS + P1_MODELS)}")
    parser.add_argument("--out", default="neural")
    parser.add_argument("--set", nargs="*", default=[], metavar="MODEL.PARAM=VALUE",
                        help="override a parameter, e.g. recbole.sasrec.epochs=50")
    parser.add_argument("--validation", action="store_true",
                        help="fit on the validation split's train and score its test items "
                             "(the second-to-last item of each P2 user), to tune on; "
                             "sasrec only")
    args = parser.parse_args(argv)
    if args.validation and set(args.models) != {"sasrec"}:
        parser.error("--validation is implemented for --models sasrec only")
    for item in args.set:
        key, _, value = item.partition("=")
        model, _, param = key.rpartition(".")
        CONFIG.setdefault(model, {})[param] = json.loads(value)
    unknown = set(args.models) - set(P2_MODELS + P1_MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}")
    json_path, md_path = RESULTS / f"{args.out}.json", RESULTS / f"{args.out}.md"
    run = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta = {"command": command_line(f"{interpreter()} bench/bench_neural.py", argv),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        view = load_view("ml-100k", Path(tmp))
    splits = {}
    rows: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    for name in args.models:
        dataset = "ml-100k-p2" if name in P2_MODELS else "ml-100k-p1"
        if dataset not in splits:
            splits[dataset] = leave_last_out(view) if dataset == "ml-100k-p2" \
                else random_holdout(view)
        print(f"{dataset} {name} …", file=sys.stderr, flush=True)
        row = run_row(name, dataset, view, splits[dataset], cache,
                      "validation" if args.validation else "test")
        row.update(run=run, command=meta["command"])
        rows.append(row)
        m = row["metrics"]
        print(f"{dataset:12} {row['model']:18} ndcg@10 {m['ndcg@10']:.4f}  hitrate@10 "
              f"{m['hitrate@10']:.4f}  fit {row['fit_wall_s']:.1f} s wall / "
              f"{row['fit_cpu_s']:.1f} s CPU  load {row['load_before']:.1f}", flush=True)
    # read the earlier rows only now: another run may have written some in the meantime
    previous = json.loads(json_path.read_text())["rows"] if json_path.exists() else []
    done = {(r["dataset"], r["model"]) for r in rows}
    merged = [r for r in previous if (r["dataset"], r["model"]) not in done] + rows
    order = {m.removesuffix("-p2"): k for k, m in enumerate(P2_MODELS + P1_MODELS)}
    merged.sort(key=lambda r: (r["dataset"] != "ml-100k-p2", order.get(r["model"], 99)))
    RESULTS.mkdir(exist_ok=True)
    json_path.write_text(json.dumps({"meta": meta, "rows": merged}, indent=2, default=float))
    md_path.write_text(render(merged, meta))
    print(render(merged, meta))


if __name__ == "__main__":
    main()
