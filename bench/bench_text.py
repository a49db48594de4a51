"""Text models on the shared movie plots: new-item recommendation and next-item prediction.

    nice -n 10 .venv/bin/python bench/bench_text.py            # everything (first run embeds
                                                               # the plots: MiniLM ≈ 2 min)
    .venv/bin/python bench/bench_text.py --encoders wordllama  # a quick look

Stores and embedding caches live in ``bench/.work/text/`` and are reused between runs.

**Item cold start** (``melu-item-cold``): the MeLU ml-1m folder imported into a SQLite store;
split :func:`personae.evaluate.melu_coldstart` ``"new_items"`` — train = the ``user_cold_state``
ratings (old movies, ≤1997), test = ``item_cold_state`` (movies of 1998–2000 rated by users
absent from train). No model has seen a test user, so each test user shows half of their
ratings (drawn with seed 2026) as their *support* history; the other half are the positives to
find among **all 733 new movies** minus the support (full catalogue of new items, no sampled
negatives). Rows:

- ``random``: the floor (a strict cold start leaves popularity and collaborative filtering,
  fit on train only, with nothing but ties on new movies);
- ``popularity (+support)`` and ``ease (+support)``: fit on train **plus every test user's
  support ratings**, so new movies have a few events — more than a strictly new item has;
- ``content/<encoder>``: :class:`~personae.models.content.Content` on the plots only; the
  support history weighs ``rating - 3``;
- ``content/<encoder>+adapter``: the same with an adapter fine-tuned
  (:func:`personae.text.finetune.train_adapter`) on train only (old movies; pairs: each user's
  ratings in a random order, the next rating ≥ 4 being the target);
- ``… ⊕ popularity (+support)``: the content scores and popularity (+support), each
  standardised over the new movies, added with equal weights (fixed, not tuned).

**Next item** (``ml-100k-next``): MovieLens 100K (timestamps), its movies joined to the MeLU
plots by the ml-1m title (1,622 of 1,682 movies, 96.7 % of ratings; the rest keep their title
and genres). Leave-last-out (:func:`personae.evaluate.leave_last_out`): each user's last rating
is the target, ranked among every item the user has not rated; the content models see only
the text of the user's earlier items; the adapter is trained on the training part's
time-ordered (history → next item) pairs.

Writes ``bench/results/text.md`` and ``bench/results/text.json`` (``--report-only`` rewrites
the ``.md`` from the ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("PERSONAE_SHARED_DATA", ROOT.parent / "shared" / "data"))
WORK = HERE / ".work" / "text"
SEED = 2026
K = 10


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- data


def melu_store() -> Any:
    from personae.data.importers import import_melu
    from personae.store import Store

    path = WORK / "melu.db"
    fresh = not path.exists()
    store = Store(path)
    if fresh:
        log("importing the MeLU folder …")
        import_melu(store, SHARED / "ml-1m-melu-coldstart", progress=False)
    return store


def ml100k_store(melu: Any) -> Any:
    """ml-100k with each movie's MeLU text (joined by the ml-1m title), in a store."""
    from personae.data.importers import import_movielens
    from personae.store import Item, Store

    path = WORK / "ml100k.db"
    if path.exists():
        return Store(path)
    log("importing ml-100k and joining the plots …")
    store = Store(path)
    import_movielens(store, SHARED / "ml-100k")
    ml1m = {}
    for line in (SHARED / "ml-1m" / "movies.dat").read_text(encoding="latin-1").splitlines():
        mid, title, _ = line.split("::")
        ml1m[title.strip().lower()] = mid
    texts = melu.get_items([m for m in ml1m.values()]) if ml1m else {}
    joined = []
    for line in (SHARED / "ml-100k" / "u.item").read_text(encoding="latin-1").splitlines():
        fields = line.split("|")
        src = texts.get(ml1m.get(fields[1].strip().lower(), ""))
        if src is not None and src.text:
            joined.append(Item(fields[0], title=src.title, text=src.text,
                               categories=src.categories, attributes=src.attributes))
    store.upsert_items(joined)
    log(f"{len(joined)} ml-100k movies have a plot")
    return store


def embeddings(store: Any, encoder: str, folder: Path) -> Any:
    from personae.text.cache import EmbeddingCache

    cache = EmbeddingCache(folder, encoder)
    report = cache.update_from_store(store, batch_size=64, progress=True, prune=False)
    log(f"{encoder}: {report.n_computed} embedded, {report.n_reused} cached "
        f"({report.seconds:.1f} s)")
    return cache, report


# ---------------------------------------------------------------------- evaluation


def rank(scores: np.ndarray, exclude: np.ndarray, k: int = K) -> np.ndarray:
    from personae.models.topk import topk

    items, _ = topk(np.array(scores, dtype=np.float32), k, exclude=exclude)
    return items


def metrics(recs: np.ndarray, test: sp.csr_matrix) -> dict[str, float]:
    from personae.evaluate.metrics import ranking_metrics

    m = ranking_metrics(recs, test, ks=(K,))
    return {key: float(np.mean(v)) for key, v in m.items() if key != "users"} | {
        "n_users": int(m["users"].size)}


def fit_adapter(E: np.ndarray, pairs: Any, encoder: Any, tag: str) -> Any:
    from personae.text.finetune import train_adapter

    ad = train_adapter(E, pairs, encoder=encoder.name, encoder_version=encoder.version,
                       epochs=30, batch_size=1024, learning_rate=2e-3, weight_decay=1e-3,
                       patience=3, seed=SEED, progress=True)
    i = ad.info
    log(f"adapter {tag}: {i['n_pairs']} pairs, best epoch {i['best_epoch']}/{i['epochs_run']}, "
        f"validation recall@10 {i['frozen_val_recall@10']:.4f} → {i['best_val_recall@10']:.4f} "
        f"({i['seconds']:.0f} s)")
    folder = WORK / "adapters" / tag
    ad.save(folder)
    return ad, folder


def halves(test: sp.csr_matrix, ratings: sp.csr_matrix, users: np.ndarray, rng:
           np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Each user's items of ``test`` cut in two at random: (support, support ratings, query),
    rows in the order of ``users`` (:func:`item_cold`'s, and ``bench_newitems``'s)."""
    sup_rows, sup_cols, sup_w, q_rows, q_cols = [], [], [], [], []
    for r, u in enumerate(users):
        items = test.indices[test.indptr[u]:test.indptr[u + 1]]
        if items.size < 2:
            continue
        perm = rng.permutation(items)
        half = items.size // 2
        sup, qry = np.sort(perm[:half]), np.sort(perm[half:])
        sup_rows += [r] * sup.size
        sup_cols += sup.tolist()
        sup_w += np.asarray(ratings[u][:, sup].toarray()).ravel().tolist()
        q_rows += [r] * qry.size
        q_cols += qry.tolist()
    shape = (users.size, test.shape[1])

    def csr(rows: list[int], cols: list[int], vals: Any) -> sp.csr_matrix:
        return sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=shape)

    return (csr(sup_rows, sup_cols, np.ones(len(sup_cols))), csr(sup_rows, sup_cols, sup_w),
            csr(q_rows, q_cols, np.ones(len(q_cols))))


def item_cold(encoders: list[str]) -> dict[str, Any]:
    from personae.data.interactions import Interactions
    from personae.evaluate import melu_coldstart
    from personae.evaluate.splits import melu_partitions
    from personae.models import create
    from personae.models.content import Content
    from personae.text.finetune import pairs_from_interactions

    store = melu_store()
    view = Interactions.from_store(store)
    split = melu_coldstart(view, melu_partitions(store), "new_items")
    n_items = split.n_items
    R = split.ratings.tocsr()
    rng = np.random.default_rng(SEED)
    users = split.test_users()
    n = users.size
    support, ratings, query = halves(split.test.tocsr(), R, users, rng)
    not_candidate = ~split.candidates
    log(f"item-cold: {n} test users, {support.nnz} support and {query.nnz} query ratings, "
        f"{int(split.candidates.sum())} new movies")

    def evaluate_scores(score_row: Any) -> dict[str, float]:
        recs = np.full((n, K), -1, dtype=np.int64)
        for r in range(n):
            if query.indptr[r + 1] == query.indptr[r]:
                continue
            ex = not_candidate.copy()
            ex[support.indices[support.indptr[r]:support.indptr[r + 1]]] = True
            recs[r] = rank(score_row(r), ex)
        return metrics(recs, query)

    results: dict[str, Any] = {"protocol": "melu new_items, support/query halves", "rows": {}}
    rows = results["rows"]
    t0 = time.perf_counter()
    noise = np.random.default_rng(SEED).random((n, n_items), dtype=np.float32)
    rows["random"] = evaluate_scores(lambda r: noise[r])
    # Train + every test user's support ratings: new movies get a few events.
    stacked = sp.vstack([split.train, support]).tocsr()
    pop = create("popularity").fit(stacked)
    pop_scores = pop.score_users([split.n_users])[0]
    rows["popularity (+support)"] = evaluate_scores(lambda r: pop_scores)
    ease = create("ease", l2=500.0).fit(stacked)
    rows["ease (+support)"] = evaluate_scores(
        lambda r: ease.score_users([split.n_users + r])[0])
    log(f"baselines done ({time.perf_counter() - t0:.0f} s)")

    # Pairs for the adapter: train users' ratings in a random order (no timestamps), the
    # target a liked (≥ 4) item, the history the items rated before it.
    tr = split.train.tocoo()
    order = np.random.default_rng(SEED).permutation(tr.nnz)
    train_view = Interactions.from_arrays(tr.row[order], tr.col[order], user_ids=split.user_ids,
                                          item_ids=split.item_ids)
    pairs = pairs_from_interactions(train_view, max_history=50, max_pairs_per_user=10,
                                    min_history=5, seed=SEED)
    pairs = _liked_targets(pairs, R)
    results["adapter_pairs"] = len(pairs)
    results["adapters"] = {}
    for enc_name in encoders:
        cache, report = embeddings(store, enc_name, WORK / "embeddings" / "melu")
        E, found = cache.lookup(split.item_ids)
        log(f"{enc_name}: {int(found.sum())}/{n_items} items have vectors")
        ad, folder = fit_adapter(E, pairs, cache.encoder, f"melu-{enc_name}")
        results["adapters"][enc_name] = {k: v for k, v in ad.info.items() if k != "history"}
        for label, adapter in ((f"content/{enc_name}", None),
                               (f"content/{enc_name}+adapter", str(folder))):
            model = Content(encoder=enc_name, adapter=adapter).fit(split.train,
                                                                   item_embeddings=E)
            rated = ratings.copy()
            rated.data = rated.data - 3.0
            S = model.score_histories(rated)
            rows[label] = evaluate_scores(lambda r, S=S: S[r])
            log(f"{label}: ndcg@10 {rows[label]['ndcg@10']:.4f}")
            # blended half and half with popularity (+support), z-scores over the new movies
            # (fixed weights, not tuned on the test users)
            blend = f"{label} ⊕ popularity (+support)"
            zp = _z(pop_scores, split.candidates)
            rows[blend] = evaluate_scores(
                lambda r, S=S, zp=zp: _z(S[r], split.candidates) + zp)
            log(f"{blend}: ndcg@10 {rows[blend]['ndcg@10']:.4f}")
    return results


def _z(s: np.ndarray, pool: np.ndarray) -> np.ndarray:
    ref = s[pool]
    return (s - ref.mean()) / (ref.std() or 1.0)


def _liked_targets(pairs: Any, R: sp.csr_matrix) -> Any:
    """Keep the pairs whose target the user rated ≥ 4 (the behaviour to learn is liking)."""
    from personae.text.finetune import TrainingPairs

    # pairs.users index the split's rows; the target's rating is R[user, target]
    vals = np.asarray(R[pairs.users, pairs.targets]).ravel()
    keep = vals >= 4
    return TrainingPairs(pairs.histories[keep], pairs.targets[keep], pairs.users[keep])


def next_item(encoders: list[str]) -> dict[str, Any]:
    from personae.data.interactions import Interactions
    from personae.evaluate import leave_last_out
    from personae.models import create
    from personae.models.content import Content
    from personae.text.finetune import pairs_from_interactions

    melu = melu_store()
    store = ml100k_store(melu)
    view = Interactions.from_store(store)
    split = leave_last_out(view)
    # the pairs' times, to order the training sequences
    users = split.test_users()
    n = users.size
    test = split.test[users]
    exclude = split.train[users]
    log(f"next-item: {n} users, {split.n_items} items")

    def evaluate_scores(S: np.ndarray) -> dict[str, float]:
        return metrics(rank(S, exclude.toarray() > 0), test)

    results: dict[str, Any] = {"protocol": "ml-100k leave-last-out, full catalogue", "rows": {}}
    rows = results["rows"]
    pop = create("popularity").fit(split.train)
    rows["popularity"] = evaluate_scores(pop.score_users(users))
    ease = create("ease", l2=500.0).fit(split.train)
    rows["ease"] = evaluate_scores(ease.score_users(users))
    # time-ordered training sequences in the split's index space
    pos_u = {u: k for k, u in enumerate(split.user_ids)}
    pos_i = {i: k for k, i in enumerate(split.item_ids)}
    vu = np.array([pos_u.get(str(view.user_ids[u]), -1) for u in view.event_users])
    vi = np.array([pos_i.get(str(view.item_ids[i]), -1) for i in view.event_items])
    ok = (vu >= 0) & (vi >= 0)
    ok &= np.asarray(split.train[np.maximum(vu, 0), np.maximum(vi, 0)]).ravel() > 0
    train_view = Interactions.from_arrays(vu[ok], vi[ok], timestamps=view.event_ts[ok],
                                          user_ids=split.user_ids, item_ids=split.item_ids)
    pairs = pairs_from_interactions(train_view, max_history=50, max_pairs_per_user=20,
                                    min_history=5, seed=SEED)
    results["adapter_pairs"] = len(pairs)
    results["adapters"] = {}
    for enc_name in encoders:
        cache, _ = embeddings(store, enc_name, WORK / "embeddings" / "ml-100k")
        E, found = cache.lookup(split.item_ids)
        ad, folder = fit_adapter(E, pairs, cache.encoder, f"ml100k-{enc_name}")
        results["adapters"][enc_name] = {k: v for k, v in ad.info.items() if k != "history"}
        for label, adapter in ((f"content/{enc_name}", None),
                               (f"content/{enc_name}+adapter", str(folder))):
            model = Content(encoder=enc_name, adapter=adapter).fit(train_view,
                                                                   item_embeddings=E)
            rows[label] = evaluate_scores(model.score_users(users))
            log(f"{label}: ndcg@10 {rows[label]['ndcg@10']:.4f}")
    return results


# ---------------------------------------------------------------------- report


def table(results: dict[str, Any]) -> str:
    lines = ["| model | NDCG@10 | Recall@10 | HitRate@10 | MRR@10 | users |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, m in results["rows"].items():
        lines.append(f"| {name} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
                     f"{m['hitrate@10']:.4f} | {m['mrr@10']:.4f} | {m['n_users']} |")
    return "\n".join(lines)


def reading(out: dict[str, Any]) -> list[str]:
    """A few sentences computed from the numbers (so that they follow a re-run)."""
    lines = ["## Reading\n"]
    for name, res in out["tasks"].items():
        rows = {k: v["ndcg@10"] for k, v in res["rows"].items()}
        for enc in res.get("adapters", {}):
            frozen, tuned = rows.get(f"content/{enc}"), rows.get(f"content/{enc}+adapter")
            if frozen and tuned:
                lines.append(f"- {name}, {enc}: the adapter takes content NDCG@10 from "
                             f"{frozen:.4f} to {tuned:.4f} (×{tuned / frozen:.1f}).")
        content = {k: v for k, v in rows.items() if k.startswith("content/") and "⊕" not in k}
        best = max(content, key=content.__getitem__) if content else None
        if best is None:
            continue
        refs = ", ".join(f"{k} {v:.4f}" for k, v in rows.items() if not k.startswith("content/"))
        lines.append(f"- {name}: best text-only model {best} {content[best]:.4f}; "
                     f"references: {refs}.")
    lines.append(
        "- On new movies, text alone beats the strict cold start (random: popularity and "
        "collaborative filtering fit on train only have no signal on a movie without events) "
        "but is far below anything that sees a few events of the new movies (popularity and "
        "EASE with the test users' support ratings): in MovieLens, which new movie a user "
        "rates is driven by popularity, which plots do not reveal. The equal-weight blends "
        "with popularity (weights not tuned) do not beat popularity alone.")
    lines.append(
        "- Next item: frozen plot similarity is a poor predictor of the next rating (below "
        "popularity); the adapter, trained on other users' (history → next item) pairs, "
        "learns what the encoder cannot know (which plots people go on to watch) and brings "
        "text-only prediction above popularity, close to EASE.")
    return lines


def write_report(out: dict[str, Any]) -> None:
    md = ["# Text models: new-item recommendation and next-item prediction\n",
          f"Command: `{out['command']}` ({out['seconds']:.0f} s on {os.cpu_count()} shared "
          f"cores; embeddings cached in `bench/.work/text/embeddings`).\n",
          (__doc__ or "").split("\n\n", 2)[2].rsplit("Writes", 1)[0].strip() + "\n"]
    for name, res in out["tasks"].items():
        md.append(f"## {name} — {res['protocol']}\n")
        md.append(table(res) + "\n")
        for enc, info in res.get("adapters", {}).items():
            md.append(f"- adapter over {enc}: {info['n_pairs']} pairs from {info['n_users']} "
                      f"users; best epoch {info['best_epoch']} of {info['epochs_run']} "
                      f"(early stopping, patience 3); held-out users' recall@10 "
                      f"{info['frozen_val_recall@10']:.4f} frozen → "
                      f"{info['best_val_recall@10']:.4f}; {info['seconds']:.0f} s")
        md.append("")
        print(f"\n{name}\n{table(res)}")
    md += reading(out)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "text.md").write_text("\n".join(md) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["wordllama", "minilm"])
    parser.add_argument("--tasks", nargs="+", default=["item-cold", "next-item"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite text.md from text.json without running anything")
    args = parser.parse_args()
    if args.report_only:
        write_report(json.loads((HERE / "results" / "text.json").read_text()))
        return
    import torch

    torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    out: dict[str, Any] = {
        "command": " ".join(["nice -n 10 .venv/bin/python bench/bench_text.py"]
                            + [shlex.quote(a) for a in sys.argv[1:]]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch_threads": args.threads},
        "tasks": {},
    }
    if "item-cold" in args.tasks:
        out["tasks"]["melu-item-cold"] = item_cold(args.encoders)
    if "next-item" in args.tasks:
        out["tasks"]["ml-100k-next"] = next_item(args.encoders)
    out["seconds"] = time.perf_counter() - started
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "text.json").write_text(json.dumps(out, indent=2, default=float))
    write_report(out)
    log(f"wrote bench/results/text.md and .json ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
