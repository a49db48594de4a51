"""New items (MeLU item-cold): does the two-tower model with text features beat popularity and
content-only ranking?

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/bench_newitems.py          # tune + test
    .venv/bin/python bench/bench_newitems.py --report-only   # rewrite the .md from the .json

The protocol is :func:`bench_text.item_cold`'s (its loading, embedding and metric helpers are
imported from ``bench/bench_text.py``): split :func:`personae.evaluate.melu_coldstart`
``"new_items"`` — train = ``user_cold_state`` (old movies, ≤1997), test = ``item_cold_state``
(movies of 1998–2000 rated by users absent from train). Each test user shows half of their
ratings (drawn with seed 2026, the same draw as ``bench_text``) as their *support* history; the
other half are the positives to find among **all 733 new movies** minus the support. Rows:

- ``random``, ``popularity (+support)``, ``ease (+support)`` (l2 = 500),
  ``content/wordllama`` and ``content/wordllama+adapter``: as in ``bench_text``;
- ``twotower (+support), ids only``: :class:`~personae.models.twotower.TwoTower` fit on train
  **plus every test user's support ratings** (the same data as popularity and EASE (+support));
  a test user is scored from their support history;
- ``twotower (+support) + text features``: the same with item features through
  :class:`personae.data.side.SideFeatures`: the plot's text embedding (wordllama or MiniLM),
  optionally with genres, MPAA rating and year (``genres``) and the users' gender, age and
  occupation (``users``); the validation picks the set among those that include the text;
- ``… ⊕ popularity (+support)``: the row's scores and popularity (+support), each standardised
  over the new movies, added with the popularity weight that is best on the validation;
- ``twotower strict cold + features``: fit on **train only**: the new movies have no event, so
  the model drops their id vectors and scores them from their features alone (genres, text,
  credits, users: the validation picks); the test users are scored from their support history
  (features of the new movies they rated) and demographics (:meth:`TwoTower.user_vectors` ·
  :meth:`TwoTower.item_vectors`). This is the real "new item" case: no event of any user on a
  new movie is used for training — the fair references are random and the content rows.

``credits`` (directors, actors, writers credited on ≥ 2 movies, as categories) is one more
feature part the search may pick.

Hyper-parameters are tuned on a **validation built from train only**: the newest old movies
(1996–1997) play the new movies, half of the train users (drawn with seed 2026) play the test
users (their ratings of 1996–97 movies, halved into support and query the same way; their older
ratings dropped), the other half keep only their ratings of movies before 1996. A coordinate
search over feature set, epochs, learning rate, width, id dropout and L2 picks each two-tower
row's parameters by validation NDCG@10; the test users' positives are used once, for the table.

Writes ``bench/results/newitems.md`` and ``bench/results/newitems.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_text as bt  # noqa: E402 - the shared loading, embedding and metric helpers

#: The model file whose hash the results record (it was being tuned while this bench was made).
ROOT_MODEL = HERE.parent / "src" / "personae" / "models" / "twotower.py"
SEED = bt.SEED
K = bt.K
#: Movies of these years and later play the new movies in the validation.
PSEUDO_NEW_YEAR = 1996
#: A director/actor/writer becomes a feature when it is credited on this many movies or more.
MIN_CREDITS = 2
USER_ATTRIBUTES = ("gender", "age_group", "occupation")

#: Every TwoTower parameter, passed explicitly (the model's defaults may change; a parameter
#: the model has and this dict lacks is an error). The start of the search: the defaults the
#: model had when this bench was written (tuned on ml-100k).
BASE = {
    "factors": 256, "user_embedding": False, "user_mlp": False, "input_keep": 0.5,
    "targets": "all", "id_dropout": 0.1, "dropout": 0.0, "epochs": 40, "batch_size": 100,
    "learning_rate": 2e-3, "l2": 3e-4, "lr_decay": True, "loss": "softmax", "n_negatives": 1024,
    "init": "svd", "validation": 0.0, "patience": 5, "random_state": SEED, "num_threads": 1,
    "verbose": False,
}
TEXT_SETS = ["text/wordllama", "text/minilm", "text/wordllama+genres", "text/minilm+genres",
             "text/wordllama+genres+users", "text/wordllama+genres+credits"]
#: The two-tower rows: label → setting ("support": fit on train + support; "strict": train
#: only), the starting point of the search (a configuration, or (row, feature set): that row's
#: best with those features) and the coordinate search, one parameter at a time, in order.
VARIANTS: dict[str, dict[str, Any]] = {
    "twotower (+support), ids only": {
        "setting": "support", "start": {"features": None, **BASE},
        "search": [("epochs", [20, 40, 80]), ("learning_rate", [1e-3, 2e-3, 4e-3]),
                   ("factors", [64, 128, 256]), ("l2", [0.0, 1e-4, 3e-4, 1e-3]),
                   ("targets", ["all", "held_out"]), ("input_keep", [0.3, 0.5, 0.7]),
                   ("user_mlp", [False, True]), ("batch_size", [32, 100]),
                   ("epochs", [20, 40, 80])]},
    "twotower (+support) + text features": {
        "setting": "support", "start": ("twotower (+support), ids only", TEXT_SETS[0]),
        "search": [("features", TEXT_SETS), ("epochs", [20, 40, 80]),
                   ("id_dropout", [0.1, 0.3, 0.6]), ("l2", [1e-4, 3e-4, 1e-3]),
                   ("features", TEXT_SETS)]},
    "twotower strict cold + features": {
        "setting": "strict", "start": {"features": "genres", **BASE, "id_dropout": 0.5},
        "search": [("features", ["genres", "genres+users", "genres+credits", *TEXT_SETS]),
                   ("id_dropout", [0.3, 0.5, 0.8]), ("epochs", [10, 20, 40, 80]),
                   ("learning_rate", [1e-3, 2e-3, 4e-3]), ("factors", [64, 128, 256]),
                   ("l2", [0.0, 1e-4, 3e-4, 1e-3]), ("targets", ["all", "held_out"]),
                   ("user_mlp", [False, True])]},
}

#: Popularity weights tried for the "⊕ popularity" blends (scores standardised first).
BLEND_WEIGHTS = (0.125, 0.25, 0.5, 1.0, 2.0)
#: The search's trials, written after each row (``--reuse-tuning`` reads them back).
TUNING = bt.WORK / "newitems-tuning.json"

log = bt.log


# ---------------------------------------------------------------------- tasks


@dataclass
class Task:
    """One item-cold evaluation in a fixed index space.

    Attributes
    ----------
    train : csr float32 (n_users, n_items), 0/1
        What a strict cold-start model sees; the test users' rows are empty.
    users : int64 (n,)
        Each test user's row in ``train``.
    support, query : csr float32 (n, n_items), 0/1
        Shown history and hidden positives of each test user (rows may be empty).
    support_ratings : csr float32 (n, n_items)
        The support's star ratings.
    candidates : bool (n_items,)
        The new items (the ranking pool, minus each user's support).
    """

    name: str
    train: sp.csr_matrix
    users: np.ndarray
    support: sp.csr_matrix
    query: sp.csr_matrix
    support_ratings: sp.csr_matrix
    candidates: np.ndarray

    def with_support(self) -> sp.csr_matrix:
        """``train`` with each test user's support in their own row (the "+support" data)."""
        s = self.support.tocoo()
        placed = sp.csr_matrix((s.data, (self.users[s.row], s.col)), shape=self.train.shape)
        return sp.csr_matrix(self.train + placed, dtype=np.float32)

    def describe(self) -> str:
        return (f"{self.name}: {int(self.train.nnz)} train pairs, "
                f"{int((np.diff(self.query.indptr) > 0).sum())} test users, "
                f"{self.support.nnz} support and {self.query.nnz} query pairs, "
                f"{int(self.candidates.sum())} new items")


def test_task(split: Any) -> Task:
    R = split.ratings.tocsr()
    users = split.test_users()
    support, ratings, query = bt.halves(split.test.tocsr(), R, users,
                                        np.random.default_rng(SEED))
    return Task("test", sp.csr_matrix(split.train, dtype=np.float32), users, support, query,
                ratings, np.asarray(split.candidates, dtype=bool))


def validation_task(split: Any, years: np.ndarray) -> Task:
    """Train only: movies of ``PSEUDO_NEW_YEAR`` and later (among the old ones) are the new
    items; half of the train users are the test users (only their ratings of those movies kept),
    the other half keep only their ratings of older movies."""
    X = sp.csr_matrix(split.train, dtype=np.float32)
    R = split.ratings.tocsr()
    rng = np.random.default_rng(SEED)
    active = np.flatnonzero(np.diff(X.indptr) > 0)
    users = np.sort(rng.choice(active, size=active.size // 2, replace=False))
    new = (years >= PSEUDO_NEW_YEAR) & (np.asarray(X.sum(axis=0)).ravel() > 0)
    is_test = np.zeros(X.shape[0], bool)
    is_test[users] = True
    coo = X.tocoo()
    keep = ~is_test[coo.row] & ~new[coo.col]
    train = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=X.shape)
    held = is_test[coo.row] & new[coo.col]
    test = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=X.shape)
    # pseudo-new items nobody among the test users rated are not candidates (as in the split)
    candidates = new & (np.asarray(test.sum(axis=0)).ravel() > 0)
    support, ratings, query = bt.halves(test, R, users, rng)
    return Task("validation", train, users, support, query, ratings, candidates)


def evaluate(task: Task, S: np.ndarray | None = None, row: Any = None) -> dict[str, float]:
    """Metrics@10 of scores ``S`` (n, n_items) — or ``row(r)`` giving row r's scores —
    ranking the candidates minus each user's support."""
    n = task.users.size
    recs = np.full((n, K), -1, dtype=np.int64)
    not_candidate = ~task.candidates
    for r in range(n):
        if task.query.indptr[r + 1] == task.query.indptr[r]:
            continue
        ex = not_candidate.copy()
        ex[task.support.indices[task.support.indptr[r]:task.support.indptr[r + 1]]] = True
        recs[r] = bt.rank(S[r] if S is not None else row(r), ex)
    return bt.metrics(recs, task.query)


# ---------------------------------------------------------------------- features


def item_records(store: Any, item_ids: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per movie: ``genres`` and ``credits`` (directors, actors, writers credited on
    ``MIN_CREDITS`` movies or more, as ``"director=…"`` names), the MPAA rating and the year."""
    from collections import Counter

    from personae.data.attribute_groups import strip_parentheses

    items = store.get_items([str(i) for i in item_ids])
    credits: dict[str, list[str]] = {}
    for iid, it in items.items():
        attrs = it.attributes or {}
        names = [f"director={d}" for d in attrs.get("director", [])]
        names += [f"actor={a}" for a in attrs.get("actors", [])]
        names += [f"writer={strip_parentheses(w)}" for w in attrs.get("writer", [])]
        credits[iid] = list(dict.fromkeys(names))
    counts = Counter(n for names in credits.values() for n in names)
    return {iid: {"genres": [f"genre={g}" for g in it.categories or []],
                  "credits": [n for n in credits[iid] if counts[n] >= MIN_CREDITS],
                  "attributes": {"rated": (it.attributes or {}).get("rated"),
                                 "year": (it.attributes or {}).get("year")}}
            for iid, it in items.items()}


def side_features(kind: str, split: Any, records: dict[str, Any], users: dict[str, Any],
                  text: dict[str, np.ndarray]) -> Any:
    """``SideFeatures`` for ``kind``, parts joined by "+": ``text/<encoder>`` (the plot's
    embedding), ``genres`` (genres as categories, the MPAA rating as a code, the year as a
    number), ``credits`` (directors, actors, writers as categories), ``users`` (the users'
    gender, age group and occupation)."""
    from personae.data.side import SideFeatures

    parts = kind.split("+")
    unknown = [p for p in parts if p not in ("genres", "credits", "users")
               and not p.startswith("text/")]
    if unknown:
        raise ValueError(f"unknown feature parts {unknown}; expected text/<encoder>, genres, "
                         "credits, users")
    encoder = next((p.split("/", 1)[1] for p in parts if p.startswith("text/")), None)
    genres = "genres" in parts
    recs = {iid: {"categories": (r["genres"] if genres else [])
                  + (r["credits"] if "credits" in parts else []),
                  "attributes": r["attributes"]} for iid, r in records.items()}
    return SideFeatures.from_records(
        user_ids=split.user_ids, item_ids=split.item_ids, items=recs, users=users,
        item_attributes=("rated",) if genres else (),
        numeric_attributes=("year",) if genres else (),
        user_attributes=USER_ATTRIBUTES if "users" in parts else (),
        item_text=None if encoder is None else text[encoder])


# ---------------------------------------------------------------------- models


def twotower_scores(task: Task, setting: str, params: dict[str, Any], side: Any
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores (n, n_items) of the test users and fit facts; ``setting`` "support" fits on
    train + support, "strict" on train only (new items scored from features alone)."""
    from personae.models.twotower import TwoTower

    missing = set(TwoTower().get_params()) - set(params)
    if missing:
        raise ValueError(f"TwoTower has parameters this bench does not set: {sorted(missing)}; "
                         "add them to BASE (every parameter is passed explicitly)")
    model = TwoTower(**params)
    t0 = time.process_time()
    if setting == "support":
        model.fit(task.with_support(), side=side)
        S = model.score_users(task.users)
    else:
        model.fit(task.train, side=side)
        U = model.user_vectors(task.support, users=task.users)
        S = U @ model.item_vectors().T
    info = {"cpu_seconds": time.process_time() - t0, "best_epoch": model.best_epoch_,
            "new_items_with_id_vectors": int(model.warm_[task.candidates].sum())}
    return S, info


def tune(task: Task, setting: str, start: dict[str, Any],
         search: list[tuple[str, list[Any]]], make_side: Any) -> dict[str, Any]:
    """Coordinate search on the validation task from ``start``: each step tries the values of
    one parameter with the others at the best so far. Returns the best configuration, its
    validation NDCG@10 and every trial."""
    best = dict(start)
    trials: list[dict[str, Any]] = []
    seen: dict[str, float] = {}

    def score(cfg: dict[str, Any]) -> float:
        key = json.dumps(cfg, sort_keys=True)
        if key not in seen:
            params = {k: v for k, v in cfg.items() if k != "features"}
            side = make_side(cfg["features"]) if cfg["features"] else None
            S, info = twotower_scores(task, setting, params, side)
            m = evaluate(task, S)
            seen[key] = m["ndcg@10"]
            trials.append({"config": cfg, "ndcg@10": m["ndcg@10"], **info})
            log(f"  {setting} {_diff(cfg)}: val ndcg@10 {m['ndcg@10']:.4f} "
                f"({info['cpu_seconds']:.0f} s cpu)")
        return seen[key]

    best_score = score(best)
    for name, values in search:
        for v in values:
            cfg = {**best, name: v}
            s = score(cfg)
            if s > best_score:
                best, best_score = cfg, s
    return {"best": best, "val_ndcg@10": best_score, "trials": trials}


def _diff(cfg: dict[str, Any]) -> str:
    d = {k: v for k, v in cfg.items() if (k not in BASE or BASE[k] != v) and v is not None}
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "base"


def content_rows(task: Task, store: Any, split: Any, E: np.ndarray, enc: Any,
                 rows: dict[str, Any], out: dict[str, Any]) -> None:
    """``content/wordllama`` and ``+adapter`` (adapter trained on train only, as in
    bench_text; saved under its own tag so that bench_text's adapter is left alone)."""
    from personae.data.interactions import Interactions
    from personae.models.content import Content
    from personae.text.finetune import pairs_from_interactions

    tr = split.train.tocoo()
    order = np.random.default_rng(SEED).permutation(tr.nnz)
    train_view = Interactions.from_arrays(tr.row[order], tr.col[order], user_ids=split.user_ids,
                                          item_ids=split.item_ids)
    pairs = pairs_from_interactions(train_view, max_history=50, max_pairs_per_user=10,
                                    min_history=5, seed=SEED)
    pairs = bt._liked_targets(pairs, split.ratings.tocsr())
    ad, folder = bt.fit_adapter(E, pairs, enc, "newitems-melu-wordllama")
    out["adapter"] = {k: v for k, v in ad.info.items() if k != "history"}
    rated = task.support_ratings.copy()
    rated.data = rated.data - 3.0
    for label, adapter in (("content/wordllama", None),
                           ("content/wordllama+adapter", str(folder))):
        model = Content(encoder="wordllama", adapter=adapter).fit(split.train, item_embeddings=E)
        rows[label] = evaluate(task, model.score_histories(rated))
        log(f"{label}: ndcg@10 {rows[label]['ndcg@10']:.4f}")


# ---------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> dict[str, Any]:
    from personae.data.interactions import Interactions
    from personae.evaluate import melu_coldstart
    from personae.evaluate.splits import melu_partitions
    from personae.models import create

    store = bt.melu_store()
    view = Interactions.from_store(store)
    split = melu_coldstart(view, melu_partitions(store), "new_items")
    records = item_records(store, split.item_ids)
    years = np.array([(records.get(str(i)) or {"attributes": {}})["attributes"].get("year")
                      or 0 for i in split.item_ids])
    users = {u.user_id: u for u in store.iter_users()}
    text, caches = {}, {}
    for enc in ("wordllama", "minilm"):
        cache, _ = bt.embeddings(store, enc, bt.WORK / "embeddings" / "melu")
        text[enc], _ = cache.lookup(split.item_ids)
        caches[enc] = cache

    def make_side(kind: str) -> Any:
        return side_features(kind, split, records, users, text)

    val, test = validation_task(split, years), test_task(split)
    log(val.describe())
    log(test.describe())
    out: dict[str, Any] = {"validation": {"task": val.describe(), "tuning": {}, "rows": {}},
                           "test": {"task": test.describe(), "rows": {}, "fits": {}}}
    # references on the validation too (so the tuned numbers have a scale)
    pop = create("popularity").fit(val.with_support())
    out["validation"]["rows"]["popularity (+support)"] = evaluate(
        val, np.tile(pop.score_users(val.users[:1])[0], (val.users.size, 1)))
    ease = create("ease", l2=500.0).fit(val.with_support())
    out["validation"]["rows"]["ease (+support)"] = evaluate(val, ease.score_users(val.users))
    log("validation references: " + ", ".join(
        f"{k} {v['ndcg@10']:.4f}" for k, v in out["validation"]["rows"].items()))
    chosen: dict[str, dict[str, Any]] = {}
    sha = hashlib.sha256(ROOT_MODEL.read_bytes()).hexdigest()
    done = json.loads(TUNING.read_text()) if args.reuse_tuning and TUNING.exists() else {}
    if done.get("twotower_sha256") != sha:
        done = {}  # tuned against another version of the model: search again
    done = done.get("rows", {})
    for label, spec in VARIANTS.items():
        start = (spec["start"] if isinstance(spec["start"], dict)
                 else {**chosen[spec["start"][0]], "features": spec["start"][1]})
        if args.fixed:
            chosen[label] = dict(start)
            continue
        if (args.reuse_tuning and label in done and done[label]["start"] == start
                and done[label]["search"] == json.loads(json.dumps(spec["search"]))):
            res = done[label]
        else:
            log(f"tuning {label} on the validation …")
            res = tune(val, spec["setting"], start, spec["search"], make_side)
            res |= {"start": start, "search": spec["search"]}
        out["validation"]["tuning"][label] = res
        TUNING.write_text(json.dumps({"twotower_sha256": sha, "rows": out["validation"]["tuning"]},
                                     indent=2, default=float))
        chosen[label] = res["best"]
        out["validation"]["rows"][label] = {"ndcg@10": res["val_ndcg@10"]}

    weights = {} if args.fixed else blend_weights(val, chosen, make_side,
                                                  out["validation"].setdefault("blend", {}))
    rows = out["test"]["rows"]
    noise = np.random.default_rng(SEED).random((test.users.size, split.n_items), dtype=np.float32)
    rows["random"] = evaluate(test, noise)
    stacked = test.with_support()
    pop = create("popularity").fit(stacked)
    pop_scores = pop.score_users(test.users[:1])[0]
    rows["popularity (+support)"] = evaluate(test, row=lambda r: pop_scores)
    if not args.skip_content:
        content_rows(test, store, split, text["wordllama"], caches["wordllama"].encoder, rows,
                     out["test"])
    ease = create("ease", l2=500.0).fit(stacked)
    rows["ease (+support)"] = evaluate(test, ease.score_users(test.users))
    log(f"baselines: { {k: round(v['ndcg@10'], 4) for k, v in rows.items()} }")
    for label, spec in VARIANTS.items():
        cfg = chosen[label]
        params = {k: v for k, v in cfg.items() if k != "features"}
        side = make_side(cfg["features"]) if cfg["features"] else None
        S, info = twotower_scores(test, spec["setting"], params, side)
        rows[label] = evaluate(test, S)
        out["test"]["fits"][label] = {"config": cfg, **info}
        log(f"{label}: ndcg@10 {rows[label]['ndcg@10']:.4f} ({info['cpu_seconds']:.0f} s cpu)")
        if label in weights:
            name = f"{label} ⊕ popularity (+support)"
            rows[name] = evaluate(test, blend(S, pop_scores, test.candidates, weights[label]))
            log(f"{name}: ndcg@10 {rows[name]['ndcg@10']:.4f}")
    return out


def blend(S: np.ndarray, pop: np.ndarray, pool: np.ndarray, weight: float) -> np.ndarray:
    """``z(S) + weight · z(pop)``, each standardised over the new items (row by row for S)."""
    def z(x: np.ndarray) -> np.ndarray:
        ref = x[..., pool]
        return (x - ref.mean(-1, keepdims=True)) / np.maximum(ref.std(-1, keepdims=True), 1e-12)

    return z(S) + weight * z(pop)[None, :]


def blend_weights(task: Task, chosen: dict[str, dict[str, Any]], make_side: Any,
                  out: dict[str, Any]) -> dict[str, float]:
    """The popularity weight of each "+support" row's blend, picked on the validation among
    :data:`BLEND_WEIGHTS` (the row's tuned configuration refit there)."""
    from personae.models import create

    pop = create("popularity").fit(task.with_support()).score_users(task.users[:1])[0]
    picked = {}
    for label, spec in VARIANTS.items():
        if spec["setting"] != "support":
            continue
        cfg = chosen[label]
        params = {k: v for k, v in cfg.items() if k != "features"}
        S, _ = twotower_scores(task, "support", params,
                               make_side(cfg["features"]) if cfg["features"] else None)
        curve = {w: evaluate(task, blend(S, pop, task.candidates, w))["ndcg@10"]
                 for w in BLEND_WEIGHTS}
        picked[label] = max(curve, key=curve.__getitem__)
        out[label] = {"weights": curve, "picked": picked[label]}
        log(f"blend weight for {label}: {picked[label]} (val ndcg@10 {curve[picked[label]]:.4f})")
    return picked


# ---------------------------------------------------------------------- report


def table(rows: dict[str, Any]) -> str:
    lines = ["| model | NDCG@10 | Recall@10 | HitRate@10 | MRR@10 | users |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
                     f"{m['hitrate@10']:.4f} | {m['mrr@10']:.4f} | {m['n_users']} |")
    return "\n".join(lines)


def write_report(out: dict[str, Any]) -> None:
    doc = (__doc__ or "").split("\n\n", 2)[2].rsplit("Writes", 1)[0].strip()
    md = ["# New items (MeLU item-cold): two-tower with text features\n",
          f"Command: `{out['command']}` ({out['seconds']:.0f} s on {out['machine']['cpus']} "
          f"shared cores, torch on 1 thread; embeddings cached in "
          f"`bench/.work/text/embeddings`; `src/personae/models/twotower.py` sha256 "
          f"{out.get('twotower_sha256', '?')[:12]}).\n", doc + "\n",
          f"## Test — {out['test']['task']}\n", table(out["test"]["rows"]) + "\n"]
    for label, fit in out["test"]["fits"].items():
        cfg = ", ".join(f"{k}={v}" for k, v in fit["config"].items()
                        if k not in ("random_state", "num_threads", "verbose"))
        md.append(f"- {label}: {cfg}; {fit['cpu_seconds']:.0f} s CPU; "
                  f"{fit['new_items_with_id_vectors']} of the new items have id vectors")
    if "adapter" in out["test"]:
        a = out["test"]["adapter"]
        md.append(f"- adapter over wordllama: {a['n_pairs']} pairs; best epoch {a['best_epoch']} "
                  f"of {a['epochs_run']}; {a['seconds']:.0f} s")
    v = out["validation"]
    md.append(f"\n## Validation (train only) — {v['task']}\n")
    md.append("| model | val NDCG@10 | trials |\n|---|---:|---:|")
    for name, m in v["rows"].items():
        n = len(v["tuning"].get(name, {}).get("trials", []))
        md.append(f"| {name} | {m['ndcg@10']:.4f} | {n or ''} |")
    for name, b in v.get("blend", {}).items():
        curve = ", ".join(f"{w}: {x:.4f}" for w, x in b["weights"].items())
        md.append(f"\n{name} ⊕ popularity, val NDCG@10 by popularity weight: {curve} "
                  f"(picked {b['picked']})")
    for name, res in v["tuning"].items():
        md.append(f"\n<details><summary>{name}: {len(res['trials'])} trials</summary>\n")
        md.append("| config (differences from the base) | val NDCG@10 | best epoch | CPU s |")
        md.append("|---|---:|---:|---:|")
        for t in res["trials"]:
            md.append(f"| {_diff(t['config'])} | {t['ndcg@10']:.4f} | {t['best_epoch']} | "
                      f"{t['cpu_seconds']:.0f} |")
        md.append("\n</details>")
    md += ["", *reading(out)]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "newitems.md").write_text("\n".join(md) + "\n")
    print(table(out["test"]["rows"]))


def reading(out: dict[str, Any]) -> list[str]:
    """Sentences computed from the numbers (so that they follow a re-run)."""
    rows = out["test"]["rows"]
    lines = ["## Reading\n"]
    pop = rows.get("popularity (+support)")
    content = max((v["ndcg@10"] for k, v in rows.items() if k.startswith("content/")),
                  default=None)
    if pop is None:
        return lines
    for label, m in rows.items():
        if not label.startswith("twotower"):
            continue
        ref, ref_name = ((pop, "popularity (+support)") if "(+support)" in label
                         else (rows["random"], "random"))
        wins = [k for k in ("ndcg@10", "recall@10", "hitrate@10", "mrr@10") if m[k] > ref[k]]
        verdict = "beats" if m["ndcg@10"] > ref["ndcg@10"] else "does not beat"
        lines.append(
            f"- {label}: NDCG@10 {m['ndcg@10']:.4f}, {verdict} {ref_name} "
            f"({ref['ndcg@10']:.4f}); above it on {', '.join(wins) or 'no metric'}"
            + (f"; best content-only {content:.4f}" if content is not None else "") + ".")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--fixed", action="store_true",
                        help="skip the tuning: the base parameters (a smoke run)")
    parser.add_argument("--reuse-tuning", action="store_true",
                        help=f"take the rows already tuned from {TUNING.name} (same search)")
    parser.add_argument("--skip-content", action="store_true",
                        help="leave out the content rows (and the adapter training)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite newitems.md from newitems.json without running anything")
    args = parser.parse_args()
    if args.report_only:
        write_report(json.loads((HERE / "results" / "newitems.json").read_text()))
        return
    import torch

    torch.set_num_threads(1)
    bt.WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model_file = ROOT_MODEL.read_bytes()
    out = {"command": " ".join(["OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python "
                                "bench/bench_newitems.py"]
                               + [shlex.quote(a) for a in sys.argv[1:]]),
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "torch_threads": 1},
           "twotower_sha256": hashlib.sha256(model_file).hexdigest()}
    out |= run(args)
    if ROOT_MODEL.read_bytes() != model_file:
        out["twotower_sha256_changed"] = hashlib.sha256(ROOT_MODEL.read_bytes()).hexdigest()
        log("WARNING: src/personae/models/twotower.py changed during the run")
    out["seconds"] = time.perf_counter() - started
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "newitems.json").write_text(json.dumps(out, indent=2, default=float))
    write_report(out)
    log(f"wrote bench/results/newitems.md and .json ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
