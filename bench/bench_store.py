"""Store throughput: bulk ingestion and reading the log into training views, per backend.

Measures, on SQLite and PostgreSQL, each into a fresh store:

- importing MovieLens 100K (``../shared/data/ml-100k``: 100,000 ratings, users and items);
- ingesting a synthetic set of N events (default 1,000,000) with its users and items, from
  records in memory (``SyntheticData.to_store``) and from JSON-lines files (the generic importer);
- ingesting the same N events again (all duplicates: the idempotency check's cost);
- reading the whole log into a CSR matrix with id maps, plus per-user time-ordered sequences
  (``Interactions.from_store`` + ``.sequences()``), best of 3.

Targets (issue #3): ml-100k < 5 s, 1M events < 60 s, 1M-event read < 3 s, on 2 cores.

    python bench/bench_store.py                       # both backends, 1M events
    python bench/bench_store.py --events 200000 --backends sqlite

Prints a table and writes ``bench/results/store.json`` and ``store.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from personae.data.importers import import_events_file, import_movielens
from personae.data.importers.generic import EventMapping
from personae.data.interactions import Interactions
from personae.data.synthetic import SyntheticConfig, generate
from personae.store import Store

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("PERSONAE_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
PG_ADMIN = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
PG_DB = "personae_bench"

console = Console()


def fresh_store(backend: str, workdir: Path, name: str) -> Store:
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return Store(path)
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB}"))
        conn.execute(text(f"CREATE DATABASE {PG_DB}"))
    admin.dispose()
    return Store(f"postgresql+psycopg://root@127.0.0.1:5432/{PG_DB}")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="personae-bench-"))
    try:
        console.print(f"generating {args.events:,} synthetic events …")
        cfg = SyntheticConfig(n_users=args.events // 50, n_items=args.events // 200,
                              n_events=args.events, seed=1)
        data, gen_s = timed(lambda: generate(cfg))
        _, arrays_s = timed(data.event_arrays)
        console.print(f"  generated in {gen_s + arrays_s:.1f} s")
        files, write_s = timed(lambda: data.write(workdir / "synthetic", compress=True))
        console.print(f"  wrote JSON lines in {write_s:.1f} s")
        rows.append({"backend": "—", "task": f"generate {args.events:,} synthetic events",
                     "events": data.n_events, "seconds": gen_s + arrays_s})

        for backend in args.backends:
            console.rule(backend)
            ml100k = SHARED / "ml-100k"
            if ml100k.exists():
                store = fresh_store(backend, workdir, "ml100k")
                rep, s = timed(lambda store=store, path=ml100k: import_movielens(
                    store, path, progress=False))
                rows.append(_row(backend, "import ml-100k (100k ratings + users + items)",
                                 rep.events.inserted, s, target=5.0))
                store.close()
            else:
                console.print(f"[yellow]skipping ml-100k: not found at {ml100k}")

            store = fresh_store(backend, workdir, "synthetic")
            res, s = timed(lambda store=store: data.to_store(store, progress=args.progress))
            rows.append(_row(backend, f"ingest {args.events:,} synthetic events (records)",
                             res.events.inserted, s, target=60.0))
            res, s = timed(lambda store=store: data.to_store(store, progress=False))
            assert res.events.inserted == 0, "re-ingesting must store nothing new"
            rows.append(_row(backend, f"re-ingest the same {args.events:,} (all duplicates)",
                             res.events.duplicates, s))

            best = float("inf")
            for _ in range(3):
                (view, seqs), s = timed(lambda store=store: _read(store))
                best = min(best, s)
            assert view.n_events == data.n_events and seqs.lengths().sum() > 0
            rows.append(_row(backend, f"read {view.n_events:,} events → CSR + id maps + "
                             "sequences (best of 3)", view.n_events, best, target=3.0))
            store.close()

            store = fresh_store(backend, workdir, "synthetic-file")
            mapping = EventMapping(user="user_id", item="item_id", type="type", value="value",
                                   time="timestamp", event_id="event_id", context=("context",))
            rep, s = timed(lambda store=store, mapping=mapping: import_events_file(
                store, files["events"], mapping=mapping, progress=args.progress))
            rows.append(_row(backend, f"import {args.events:,} events from events.jsonl.gz",
                             rep.events.inserted, s, target=60.0))
            store.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def _read(store: Store) -> tuple[Interactions, Any]:
    view = Interactions.from_store(store)
    return view, view.sequences()


def _row(backend: str, task: str, events: int, seconds: float,
         target: float | None = None) -> dict[str, Any]:
    row = {"backend": backend, "task": task, "events": int(events), "seconds": seconds,
           "events_per_s": events / seconds if seconds else None, "target_s": target}
    ok = "" if target is None else (" ✓" if seconds < target else " ✗ over target")
    console.print(f"  {task}: {seconds:.2f} s, {row['events_per_s']:,.0f} events/s{ok}")
    return row


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> tuple[Table, str]:
    table = Table(title="personae store throughput", title_justify="left")
    for col, just in (("backend", "left"), ("task", "left"), ("events", "right"),
                      ("seconds", "right"), ("events/s", "right"), ("target", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    md = [
        "# Store throughput",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}  ",
        f"Date: {meta['date']}; peak RSS {meta['peak_rss_mb']:.0f} MB",
        "",
        "| backend | task | events | seconds | events/s | target |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        eps = f"{r['events_per_s']:,.0f}" if r.get("events_per_s") else "—"
        tgt = "—"
        if r.get("target_s"):
            tgt = f"< {r['target_s']:.0f} s " + ("✓" if r["seconds"] < r["target_s"] else "✗")
        table.add_row(r["backend"], r["task"], f"{r['events']:,}", f"{r['seconds']:.2f}", eps,
                      tgt)
        md.append(f"| {r['backend']} | {r['task']} | {r['events']:,} | {r['seconds']:.2f} | "
                  f"{eps} | {tgt} |")
    return table, "\n".join(md) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql",
                        type=lambda s: [b.strip() for b in s.split(",") if b.strip()])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = run(args)
    meta = {
        "command": "python bench/bench_store.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, {platform.system()}",
        "date": started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    table, md = render(rows, meta)
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (args.out / "store.md").write_text(md)
    console.print(f"wrote {args.out / 'store.md'} and store.json")


if __name__ == "__main__":
    main()
