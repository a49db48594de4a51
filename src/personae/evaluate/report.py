"""A self-contained HTML report of evaluation results, with plots.

The report holds every number (a table per K) and three plots, embedded as PNG so that the file
opens anywhere without a server: accuracy against K, accuracy against catalogue coverage, and
accuracy per user-activity bucket. matplotlib is an optional dependency (``personae[report]``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from personae.evaluate.metrics import RANKING_METRICS
from personae.evaluate.runner import EvaluationResult

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
td.best { font-weight: bold; }
img { max-width: 100%; } .meta { color: #666; font-size: 0.85rem; }
"""


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError:
        from personae.errors import MissingExtra

        raise MissingExtra("matplotlib", "report") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _label(r: EvaluationResult) -> str:
    return f"{r.model} · {r.split.get('name', '')}"


def plot_metric_vs_k(results: Sequence[EvaluationResult], metric: str = "ndcg") -> Any:
    """A line per result: ``metric@K`` for every K evaluated."""
    plt = _matplotlib()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        ks = sorted(r.ks)
        ax.plot(ks, [r.metrics.get(f"{metric}@{k}", float("nan")) for k in ks], marker="o",
                label=_label(r))
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K")
    ax.set_title(f"{metric} against list length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_accuracy_vs_coverage(results: Sequence[EvaluationResult], k: int = 10) -> Any:
    """One point per result: NDCG@k against catalogue coverage@k."""
    plt = _matplotlib()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        x = r.metrics.get(f"coverage@{k}", float("nan"))
        y = r.metrics.get(f"ndcg@{k}", float("nan"))
        ax.scatter([x], [y], s=40)
        ax.annotate(_label(r), (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(f"catalogue coverage@{k}")
    ax.set_ylabel(f"ndcg@{k}")
    ax.set_title("accuracy against coverage")
    ax.grid(alpha=0.3)
    return fig


def plot_buckets(results: Sequence[EvaluationResult], k: int = 10) -> Any:
    """Grouped bars: NDCG@k per user-activity bucket (training items per user)."""
    plt = _matplotlib()
    labels: list[str] = []
    for r in results:
        for b in r.buckets:
            if b not in labels:
                labels.append(b)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(results))
    for n, r in enumerate(results):
        ys = [r.buckets.get(b, {}).get(f"ndcg@{k}", float("nan")) for b in labels]
        ax.bar([i + n * width for i in range(len(labels))], ys, width=width, label=_label(r))
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
    ax.set_xticklabels(labels)
    ax.set_xlabel("training items per user")
    ax.set_ylabel(f"ndcg@{k}")
    ax.set_title("accuracy by user activity")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _table(results: Sequence[EvaluationResult], k: int) -> str:
    extra = [m for m in ("coverage", "gini", "novelty", "diversity")
             if any(f"{m}@{k}" in r.metrics for r in results)]
    metrics = [*RANKING_METRICS, *extra]
    best = {}
    for m in RANKING_METRICS:
        vals = [r.metrics.get(f"{m}@{k}") for r in results]
        finite = [v for v in vals if v is not None and v == v]
        best[m] = max(finite) if finite else None
    head = "".join(f"<th>{m}@{k}</th>" for m in metrics)
    rows = []
    for r in results:
        cells = []
        for m in metrics:
            v = r.metrics.get(f"{m}@{k}")
            text = "—" if v is None or v != v else f"{v:.4f}"
            cls = ' class="best"' if best.get(m) is not None and v == best[m] else ""
            cells.append(f"<td{cls}>{text}</td>")
        mem = "" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 2**20:.1f}"
        rows.append(
            f"<tr><td>{html.escape(r.model)}</td><td>{html.escape(str(r.split.get('name')))}"
            f"/{html.escape(r.on)}</td><td>{r.n_users}</td>{''.join(cells)}"
            f"<td>{r.fit_seconds:.3f}</td><td>{r.recommend_seconds:.3f}</td><td>{mem}</td></tr>"
        )
    return (f"<table><tr><th>model</th><th>split</th><th>users</th>{head}<th>fit s</th>"
            f"<th>recommend s</th><th>peak MiB</th></tr>{''.join(rows)}</table>")


def write_report(
    results: Sequence[EvaluationResult],
    path: str | Path,
    *,
    title: str = "personae evaluation",
    command: str | None = None,
) -> Path:
    """Write the HTML report (and ``<name>.json`` with every number beside it).

    Returns the HTML path.
    """
    if not results:
        from personae.errors import InvalidInput

        raise InvalidInput("write_report needs at least one evaluation result")
    plt = _matplotlib()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ks = sorted({k for r in results for k in r.ks})
    k_main = 10 if 10 in ks else ks[len(ks) // 2]
    figures = [
        ("NDCG against K", plot_metric_vs_k(results, "ndcg")),
        ("Recall against K", plot_metric_vs_k(results, "recall")),
        (f"Accuracy against coverage (K={k_main})", plot_accuracy_vs_coverage(results, k_main)),
        (f"Accuracy by user activity (K={k_main})", plot_buckets(results, k_main)),
    ]
    images = []
    for caption, fig in figures:
        images.append(f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' "
                      f"src='data:image/png;base64,{_png(fig)}'>")
        plt.close(fig)
    splits = {json.dumps(r.split, sort_keys=True, default=str) for r in results}
    meta = [f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
    if command:
        meta.append(f"command: <code>{html.escape(command)}</code>")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>{' · '.join(meta)}</p>",
        *(f"<h2>Results at K={k}</h2>{_table(results, k)}" for k in ks),
        *images,
        "<h2>Splits</h2>",
        *(f"<pre>{html.escape(s)}</pre>" for s in sorted(splits)),
    ]
    out.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>",
        encoding="utf-8",
    )
    out.with_suffix(".json").write_text(
        json.dumps({"title": title, "command": command,
                    "results": [r.to_dict() for r in results]}, indent=2),
        encoding="utf-8",
    )
    return out
