"""How much time leaks into P1's random holdout on ml-100k, measured on the blend of 2026-12-07.

P1 holds out random interactions, so every test item was rated inside its user's activity
window. An item first seen in the training pairs after the user's last training event is then
unlikely to be held out. This script fits the blend that ``bench/results/models.md`` held on
2026-12-07 (members, parameters and weights as there; its DLAE had no ``sequence_window`` yet)
on the P1 training split and scores the test split as it is, and with such items pushed to the
bottom of each user's ranking (beyond a margin of 0, 7 and 30 days). The rule is measured, not
used: in serving the request time is *now*.

    .venv/bin/python bench/bench_timeleak.py        # about a minute; prints a table

The numbers are in ``bench/results/models-blend-tries.md``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_models as bm  # noqa: E402

from personae.evaluate.metrics import ranking_metrics  # noqa: E402
from personae.evaluate.splits import random_holdout  # noqa: E402
from personae.models.blend import Blend  # noqa: E402
from personae.models.topk import topk  # noqa: E402

#: The blend of bench/results/models.md on 2026-12-07 (ml-100k P1), before dlae-seq.
MEMBERS = [("ease", {"dropout": 0.75, "zero_diagonal": False, "l2": 300.0}),
           ("gfcf", {"random_state": 2026, "alpha": 0.3, "k": 64}),
           ("als", {"random_state": 2026, "factors": 128, "regularization": 20.0}),
           ("twotower", {"random_state": 2026, "num_threads": 1, "l2": 0.0003})]
WEIGHTS = [0.15, 0.1, 0.15, 0.6]
MARGINS_DAYS = (0, 7, 30)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="personae-bench-timeleak-") as tmp:
        view = bm.load_view("ml-100k", Path(tmp))
    split = random_holdout(view)
    assert split.times is not None  # ml-100k's ratings have timestamps
    train_when = split.times.multiply(split.train).tocsr()
    user_last = np.asarray(train_when.max(axis=1).todense()).ravel()
    # first training event of each item (inf: never in training)
    first = np.full(split.n_items, np.inf)
    coo = train_when.tocoo()
    np.minimum.at(first, coo.col, coo.data)
    test = split.test.tocoo()
    late = first[test.col] > user_last[test.row]
    print(f"{int(late.sum())} of {test.nnz} test pairs have an item first seen after the "
          "user's last training event")

    bm.console.print("fitting the blend …")
    model = Blend(MEMBERS, weights=WEIGHTS, normalize="zscore").fit(split.train_view())
    users = split.test_users()
    scores = np.asarray(model.score_users(users), dtype=np.float32)
    seen = split.train[users]
    truth = split.test[users]

    def per_user(s: np.ndarray) -> np.ndarray:
        items, _ = topk(s, 10, exclude=seen)
        return np.asarray(ranking_metrics(items, truth, (10,))["ndcg@10"])

    base = per_user(scores)
    print("| items pushed down | test NDCG@10 | paired difference |")
    print("|---|---:|---:|")
    print(f"| none (the blend) | {base.mean():.4f} | |")
    low = np.float32(scores.min() - 1.0)
    for days in MARGINS_DAYS:
        pushed = scores.copy()
        pushed[first[None, :] > user_last[users, None] + days * 86400.0] = low
        diff = per_user(pushed) - base
        print(f"| first seen more than {days} days after the user's last training event | "
              f"{base.mean() + diff.mean():.4f} | {diff.mean():+.4f} ± "
              f"{diff.std(ddof=1) / np.sqrt(diff.size):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
