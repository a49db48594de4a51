"""Privacy–utility of FedMF: centralised vs federated vs federated with user-level DP vs popularity.

    nice -n 10 .venv/bin/python bench/bench_privacy.py                    # everything
    .venv/bin/python bench/bench_privacy.py --datasets ml-100k-p1 --epsilons 8   # a quick look
    .venv/bin/python bench/bench_privacy.py --only-scale                    # 1,000-client timing

Data sets (imported from ``../shared/data`` into a temporary SQLite store): ``ml-100k-p1``
(MovieLens 100K) and ``melu-p1`` (the 359,761 MeLU ml-1m ratings), both split by
:func:`personae.evaluate.random_holdout` (P1) and scored on the test split by
:func:`personae.evaluate.evaluate` (every item outside the user's training items ranked).

Rows: (a) ``fedmf`` fit centrally (exact ALS sweeps), (b) federated FedMF without DP (FedAdam,
FedAvg weights n_k/N, every client every round), (c) federated with user-level DP at each
epsilon (delta = 1/number of users; sigma calibrated by dp-accounting's RDP accountant for the
rounds and sampling rate; clipped per-user updates, Gaussian noise on the sum), (d) popularity.
Federated rows use the in-process engine (the same strategy arithmetic as Flower's engine, a
test checks they agree); the scale run uses Flower's simulation engine (Ray).

Writes ``bench/results/privacy.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("PERSONAE_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = {"ml-100k-p1": ("movielens", "ml-100k"), "melu-p1": ("melu", "ml-1m-melu-coldstart")}


def load_split(name: str) -> Any:
    from personae.data.importers import get_importer
    from personae.data.interactions import Interactions
    from personae.evaluate import random_holdout
    from personae.store import Store

    fmt, folder = DATASETS[name]
    with tempfile.TemporaryDirectory() as tmp, Store(str(Path(tmp) / "b.db")) as s:
        get_importer(fmt)(s, SHARED / folder, progress=False)
        view = Interactions.from_store(s)
    return random_holdout(view)


def run_dataset(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    from personae.evaluate import evaluate
    from personae.models import create
    from personae.privacy.federated import FederatedConfig, simulate

    split = load_split(name)
    n_users = split.n_users
    params = {"factors": args.factors, "regularization": args.regularization, "alpha": 2.0,
              "iterations": 15, "random_state": 0}
    rows: list[dict[str, Any]] = []

    def add(label: str, result: Any, seconds: float, rounds: int | None,
            extra: dict[str, Any] | None = None) -> None:
        row = {"dataset": name, "setting": label, "ndcg@10": result.metrics["ndcg@10"],
               "recall@10": result.metrics["recall@10"], "rounds": rounds,
               "seconds": seconds, **(extra or {})}
        rows.append(row)
        print(f"{name:12} {label:28} ndcg@10 {row['ndcg@10']:.4f}  rounds {rounds}  "
              f"{seconds:7.1f} s", flush=True)

    r = evaluate(create("popularity"), split, ks=(10,), memory="none")
    add("(d) popularity", r, r.fit_seconds, None)
    r = evaluate(create("fedmf", **params), split, ks=(10,), memory="none")
    add("(a) centralised", r, r.fit_seconds, None)

    def federated(label: str, config: Any) -> None:
        t0 = time.perf_counter()
        res = simulate(split.train, config, model_params=params, engine="inprocess")
        secs = time.perf_counter() - t0
        ev = evaluate(res.model, split, ks=(10,), fit=False, memory="none")
        extra = {} if res.privacy is None else {
            "epsilon": res.privacy.epsilon, "delta": res.privacy.delta,
            "noise_multiplier": res.privacy.noise_multiplier, "clip_norm": res.privacy.clip_norm,
            "sampling_rate": res.privacy.sampling_rate}
        add(label, ev, secs, config.rounds, extra)

    federated("(b) federated", FederatedConfig(rounds=args.rounds, server_lr=args.server_lr))
    for eps in args.epsilons:
        federated(f"(c) federated DP ε={eps:g}", FederatedConfig(
            rounds=args.dp_rounds, server_lr=args.server_lr, fraction_fit=args.dp_fraction,
            target_epsilon=eps, delta=1.0 / n_users, clip_norm=args.clip, weighting="uniform"))
    return rows


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    """A ``--scale-clients``-client simulation on Flower's engine (Ray), timed, with the load."""
    from personae.privacy.federated import FederatedConfig, simulate

    split = load_split("melu-p1")
    P = split.train[: args.scale_clients]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = simulate(P, FederatedConfig(rounds=args.scale_rounds, fraction_fit=args.scale_fraction),
                   model_params={"factors": 16, "random_state": 0}, engine="flower",
                   num_cpus=2, on_round=lambda r: print(
                       f"scale round {r.round}: {r.accepted} clients, {r.seconds:.1f} s",
                       flush=True))
    seconds = time.perf_counter() - t0
    return {"clients": int(P.shape[0]), "items": int(P.shape[1]), "rounds": args.scale_rounds,
            "fraction_fit": args.scale_fraction,
            "updates": int(sum(r.accepted for r in res.rounds)), "seconds": seconds,
            "round_seconds": [r.seconds for r in res.rounds], "cpus": 2,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def write(rows: list[dict[str, Any]], scale: dict[str, Any] | None,
          args: argparse.Namespace, started: float) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    command = "nice -n 10 .venv/bin/python bench/bench_privacy.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    meta = {"command": command, "seconds": time.perf_counter() - started,
            "machine": f"{os.cpu_count()} cores, {platform.platform()}",
            "loadavg_end": os.getloadavg(), "args": vars(args)}
    old: dict[str, Any] = {}
    path = out / "privacy.json"
    if path.exists():
        old = json.loads(path.read_text())
    if rows:
        keep = [r for r in old.get("rows", []) if r["dataset"] not in {x["dataset"] for x in rows}]
        rows = keep + rows
    else:
        rows = old.get("rows", [])
    scales = [x for x in old.get("scales", []) + ([old["scale"]] if old.get("scale") else [])
              if scale is None or x["fraction_fit"] != scale["fraction_fit"]]
    scales += [scale] if scale else []
    runs = old.get("runs", []) + ([] if args.render else [meta])
    path.write_text(json.dumps({"rows": rows, "scales": scales, "runs": runs}, indent=2,
                               default=float))
    lines = ["# FedMF: centralised vs federated vs user-level DP", ""]
    lines += [f"Made by `{m['command']}` ({m['seconds']:.0f} s; {m['machine']}; load average "
              f"at the end {m['loadavg_end'][0]:.1f})." for m in runs]
    lines += ["", "NDCG@10 on the P1 test split (`personae.evaluate.random_holdout`, "
              "`personae.evaluate.evaluate`). DP rows: user-level (ε, δ = 1/users), σ from "
              "dp-accounting's RDP accountant; seconds are the training's wall time.", "",
              "Settings: FedMF with 32 factors, λ = 20, α = 2, seeded init; centralised = 15 "
              "exact ALS sweeps; federated = FedAdam (server step 0.1, client step 1, one "
              "local epoch, every client every round, FedAvg weights n_k/N), 60 rounds; DP = "
              "30 rounds, sampling rate q = 1, clip S = 0.3, clipped sum + N(0, σ²S²) divided "
              "by q·N. The ml-100k and MeLU runs were made on a 2-core machine shared with "
              "other jobs (load average 8–13), so the seconds are inflated.", ""]
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        fed = next((r["ndcg@10"] for r in sub if r["setting"] == "(b) federated"), None)
        lines += [f"## {ds}", "", "| setting | NDCG@10 | vs federated | recall@10 | rounds | "
                  "σ | clip S | q | seconds |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sub:
            rel = f"{r['ndcg@10'] / fed:.1%}" if fed else ""
            sigma = f"{r['noise_multiplier']:.3g}" if "noise_multiplier" in r else "—"
            lines.append(
                f"| {r['setting']} | {r['ndcg@10']:.4f} | {rel} | {r['recall@10']:.4f} | "
                f"{r['rounds'] or '—'} | {sigma} | {r.get('clip_norm', '—')} | "
                f"{r.get('sampling_rate', '—')} | {r['seconds']:.1f} |")
        lines.append("")
    if scales:
        lines += ["## Scale: Flower simulation engine", ""]
    for scale in scales:
        lines += [f"{scale['clients']:,} clients × {scale['items']:,} items (MeLU users), "
                  f"{scale['rounds']} rounds, sampling rate {scale['fraction_fit']} "
                  f"({scale['updates']:,} client updates): **{scale['seconds']:.0f} s** on "
                  f"{scale['cpus']} CPUs (Ray); load average before "
                  f"{scale['loadavg_before'][0]:.1f}, after {scale['loadavg_after'][0]:.1f} "
                  "(the machine is shared).", ""]
    (out / "privacy.md").write_text("\n".join(lines) + "\n")
    _plot(rows, out / "privacy.png")
    print("\n".join(lines))


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        sub = [r for r in rows if r["dataset"] == ds]
        dp = sorted((r["epsilon"], r["ndcg@10"]) for r in sub if "epsilon" in r)
        if dp:
            ax.plot(*zip(*dp, strict=True), marker="o", label="federated + user-level DP")
        styles = {"(a) centralised": "k-", "(b) federated": "b--", "(d) popularity": "r:"}
        for r in sub:
            if r["setting"] in styles:
                ax.axhline(r["ndcg@10"], linestyle=styles[r["setting"]][1:],
                           color=styles[r["setting"]][0], label=r["setting"][4:])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ε (δ = 1/users)")
        ax.set_ylabel("NDCG@10 (P1 test)")
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="*", default=list(DATASETS))
    p.add_argument("--epsilons", nargs="*", type=float, default=[1, 2, 4, 8, 16])
    p.add_argument("--factors", type=int, default=32)
    p.add_argument("--regularization", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--dp-rounds", type=int, default=30)
    p.add_argument("--dp-fraction", type=float, default=1.0)
    p.add_argument("--clip", type=float, default=0.3)
    p.add_argument("--server-lr", type=float, default=0.1)
    p.add_argument("--scale-clients", type=int, default=1000)
    p.add_argument("--scale-rounds", type=int, default=20)
    p.add_argument("--scale-fraction", type=float, default=1.0)
    p.add_argument("--scale", action="store_true", help="also run the Flower scale test")
    p.add_argument("--only-scale", action="store_true")
    p.add_argument("--render", action="store_true", help="only rewrite the .md/.png from .json")
    args = p.parse_args()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if args.render:
        write([], None, args, started)
        return
    if not args.only_scale:
        for name in args.datasets:
            rows += run_dataset(name, args)
    scale = run_scale(args) if (args.scale or args.only_scale) else None
    write(rows, scale, args, started)


if __name__ == "__main__":
    main()
