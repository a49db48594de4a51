"""EASE's ``sequence_window`` on validation data only: how much the time order of events adds.

``EASE(sequence_window=w, sequence_weight=β)`` adds to the Gram matrix every two items a user
took within ``w`` places of each other in time, as pseudo-users of weight β (see
``personae.models.ease``). This script measures that on the validation splits the benchmark
tunes on, never on a test split:

- ml-100k P1: the 4 validation splits of ``bench_models.py``'s blend (test seed 2026,
  validation seeds 2027–2030), NDCG@10 over all their users together;
- ml-100k P2 (leave-last-out): its one validation split, where the held-out item is each
  user's second-last: the order-free neighbour of next-item prediction.

Rows: DLAE and EASE at the parameters ``bench_models.py`` chose for them, with windows 0 (no
order) to 30 and weights 0.5 and 1.

    .venv/bin/python bench/bench_sequence.py        # about a minute

Writes ``bench/results/sequence.json`` and ``sequence.md``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_models as bm  # noqa: E402
from bench_seeds import tuned_params  # noqa: E402

from personae.evaluate import Split, evaluate, leave_last_out, random_holdout  # noqa: E402
from personae.models.ease import EASE  # noqa: E402

#: The rows measured (label in the report: bench_models.py row), each at the parameters
#: bench_models.py chose for it on ml-100k P1 validation (read from bench/results/models.json).
ROWS = {"DLAE": "dlae", "EASE": "ease"}
WINDOWS = (1, 3, 5, 10, 30)
WEIGHTS = (0.5, 1.0)
METRIC = "ndcg@10"


def validation_score(params: dict[str, Any], splits: list[Split]) -> float:
    """NDCG@10 of ``EASE(**params)`` over the users of every split together."""
    total = users = 0.0
    for split in splits:
        result = evaluate(EASE(**params), split, ks=(10,), memory="none")
        total += result.metrics[METRIC] * result.n_users
        users += result.n_users
    return total / users


def bases() -> dict[str, dict[str, Any]]:
    """EASE's parameters for each row: the row's fixed ones and those it chose."""
    chosen = tuned_params(HERE / "results" / "models.json", "ml-100k-p1")
    return {label: {**bm.ENTRIES[row].fixed, **chosen[row]} for label, row in ROWS.items()}


def main() -> int:
    started = time.time()
    params_of = bases()
    with tempfile.TemporaryDirectory(prefix="personae-bench-sequence-") as tmp:
        bm.console.print("[bold]importing ml-100k[/] …")
        view = bm.load_view("ml-100k", Path(tmp))
    p1 = random_holdout(view)
    p2 = leave_last_out(view)
    assert p2.validation is not None
    protocols = {"P1 (4 validation splits)": bm.blend_validations(p1, "p1", 4, 0.2),
                 "P2 (validation split)": [p2.validation]}
    rows: list[dict[str, Any]] = []
    for base, params in params_of.items():
        for protocol, splits in protocols.items():
            plain = validation_score(params, splits)
            rows.append({"model": base, "protocol": protocol, "window": 0, "weight": 0.0,
                         METRIC: plain, "gain": 0.0})
            for window in WINDOWS:
                for weight in WEIGHTS:
                    score = validation_score({**params, "sequence_window": window,
                                              "sequence_weight": weight}, splits)
                    rows.append({"model": base, "protocol": protocol, "window": window,
                                 "weight": weight, METRIC: score, "gain": score - plain})
                    bm.console.print(f"  {base} {protocol} window {window} weight {weight}: "
                                     f"{score:.4f} ({score - plain:+.4f})")
    report = {"command": f"{bm.interpreter()} bench/bench_sequence.py",
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
              "seconds": round(time.time() - started, 1), "environment": bm.environment(),
              "bases": params_of, "rows": rows}
    out = HERE / "results"
    (out / "sequence.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (out / "sequence.md").write_text(text)
    print(text)
    return 0


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        "# EASE's sequence_window on ml-100k validation splits",
        "",
        f"Made by `{report['command']}` on {report['started']} ({report['seconds']:.0f} s; "
        f"commit {env['git_commit']}{' + local changes' if env['git_dirty'] else ''}).",
        "",
        f"{METRIC} on validation splits only (no test split is scored). Window 0 is the model "
        "without order; *gain*: the row minus window 0. Parameters: "
        + "; ".join(f"{k} {v}" for k, v in report["bases"].items()) + ".",
        "",
    ]
    for base in report["bases"]:
        for protocol in dict.fromkeys(r["protocol"] for r in report["rows"]):
            rows = [r for r in report["rows"] if r["model"] == base and r["protocol"] == protocol]
            best = max(r[METRIC] for r in rows)
            lines += [f"## {base}, {protocol}", "", "| window | weight | "
                      f"{METRIC} | gain |", "|---:|---:|---:|---:|"]
            for r in rows:
                cell = f"{r[METRIC]:.4f}"
                lines.append(f"| {r['window']} | {r['weight']:g} | "
                             + (f"**{cell}**" if r[METRIC] == best else cell)
                             + f" | {r['gain']:+.4f} |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
