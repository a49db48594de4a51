"""Load benchmark of the HTTP server: a real ``personae serve`` process on loopback, driven by wrk.

::

    .venv/bin/python bench/bench_server.py                        # the full run (~3 minutes)
    .venv/bin/python bench/bench_server.py --duration 5 --concurrency 16   # a quick look

Needs ``wrk`` on the PATH (Debian: ``apt-get install wrk``). Steps:

1. import the 359,761 MeLU ml-1m ratings (≈6,000 users, ≈3,500 items) from ``../shared/data``
   into a fresh SQLite store, train the model (``--model``, EASE by default) through
   :class:`personae.service.Engine` so it is the active version, create an admin API key;
2. start ``personae serve --workers N`` on a free loopback port and wait for ``/ready``;
3. recommendations alone: ``POST /v1/recommendations`` for random users (k = 10, every
   response logged as impressions, as in production) at each ``--concurrency``;
4. ingestion alone: ``POST /v1/events`` with batches of ``--batch`` new events (unique ids);
5. both at once: recommendations at the highest concurrency while ingestion runs.

wrk keeps ``C`` connections busy (closed loop), so requests/s is what the server sustains at
that concurrency. The load generator runs on the same 2 cores as the server. Writes
``bench/results/server.json`` and ``server.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("PERSONAE_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(HERE))

from bench_models import command_line, environment  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console(width=160)

LUA_COMMON = r"""
local counter = 0
local tid = 0
local threads = {}
setup = function(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
    .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer __SECRET__"
"""

LUA_RECOMMEND = LUA_COMMON + r"""
local users = {__USERS__}
request = function()
  local u = users[math.random(#users)]
  return wrk.format(nil, "/v1/recommendations", nil, '{"user_id": "' .. u .. '", "k": 10}')
end
"""

LUA_EVENTS = LUA_COMMON + r"""
local users = {__USERS__}
local items = {__ITEMS__}
local batch = __BATCH__
request = function()
  counter = counter + 1
  local parts = {}
  for j = 1, batch do
    parts[j] = string.format(
      '{"event_id": "bench-%d-%d-%d", "user_id": "%s", "item_id": "%s", "type": "click"}',
      tid, counter, j, users[math.random(#users)], items[math.random(#items)])
  end
  return wrk.format(nil, "/v1/events", nil, '{"events": [' .. table.concat(parts, ",") .. ']}')
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(workdir: Path, model: str) -> tuple[Path, str, list[str], list[str], dict[str, Any]]:
    """Store with MeLU imported and a trained active model; returns (store path, secret, ...)."""
    from personae.data.importers import import_melu
    from personae.service import Engine
    from personae.store import Store

    path = workdir / "store.db"
    store = Store(path)
    t0 = time.perf_counter()
    import_melu(store, SHARED / "ml-1m-melu-coldstart")
    imported = time.perf_counter() - t0
    engine = Engine(store, models_dir=workdir / "models")
    t0 = time.perf_counter()
    mv = engine.train(model, background=False)
    trained = time.perf_counter() - t0
    if mv.status != "active":
        raise SystemExit(f"training did not give an active model: {mv.status} {mv.message}")
    _, secret = store.create_api_key("bench", "admin")
    users = [u.user_id for u in store.iter_users()]
    items = [i.item_id for i in store.iter_items()]
    counts = store.counts()
    engine.close()
    store.close()
    info = {"import_s": round(imported, 1), "train_s": round(trained, 1), "model": model,
            "version": mv.version, "validation": mv.metrics, **counts}
    return path, secret, users, items, info


def start_server(store: Path, models: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "personae", "serve", "--store", str(store),
           "--models-dir", str(models), "--port", str(port), "--workers", str(workers),
           "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server not ready after 120 s")


def wrk(script: Path, port: int, connections: int, duration: float,
        threads: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:.0f}s", "--timeout", "10s",
         "-s", str(script), f"http://127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors",
                                             "status_errors", "timeouts"))
            return r
    raise RuntimeError(f"wrk gave no result:\n{out}")


def lua_list(values: list[str]) -> str:
    return ", ".join(json.dumps(v) for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ease")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16, 32, 64])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per scenario")
    parser.add_argument("--batch", type=int, default=500, help="events per ingestion request")
    parser.add_argument("--ingest-connections", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.exit(2, "bench_server: wrk is not installed (Debian: apt-get install wrk)\n")
    started = time.time()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="personae-bench-server-") as tmp:
        work = Path(tmp)
        console.print("[bold]preparing[/]: importing MeLU and training …")
        store, secret, users, items, info = prepare(work, args.model)
        console.print(f"  {info}")
        rec_lua = work / "recommend.lua"
        rec_lua.write_text(LUA_RECOMMEND.replace("__SECRET__", secret)
                           .replace("__USERS__", lua_list(users)))
        ev_lua = work / "events.lua"
        ev_lua.write_text(LUA_EVENTS.replace("__SECRET__", secret)
                          .replace("__USERS__", lua_list(users))
                          .replace("__ITEMS__", lua_list(items))
                          .replace("__BATCH__", str(args.batch)))
        port = free_port()
        server = start_server(store, work / "models", port, args.workers)
        try:
            wrk(rec_lua, port, 8, 3).communicate()  # warm-up: caches, first requests
            for c in args.concurrency:
                r = result(wrk(rec_lua, port, c, args.duration))
                rows.append({"scenario": "recommendations", "connections": c, **r})
                show(rows[-1])
            r = result(wrk(ev_lua, port, args.ingest_connections, args.duration))
            rows.append({"scenario": f"ingestion ({args.batch} events/request)",
                         "connections": args.ingest_connections, **r,
                         "events_per_s": r["rps"] * args.batch})
            show(rows[-1])
            c = max(args.concurrency)
            rec = wrk(rec_lua, port, c, args.duration)
            ing = wrk(ev_lua, port, args.ingest_connections, args.duration)
            r_rec, r_ing = result(rec), result(ing)
            rows.append({"scenario": "recommendations, during ingestion", "connections": c,
                         **r_rec})
            show(rows[-1])
            rows.append({"scenario": "ingestion, during recommendations",
                         "connections": args.ingest_connections, **r_ing,
                         "events_per_s": r_ing["rps"] * args.batch})
            show(rows[-1])
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    report = {"command": command_line(".venv/bin/python bench/bench_server.py", argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1), "setup": info, "workers": args.workers,
        "duration_s": args.duration, "environment": environment(), "rows": rows}
    table = Table(title=f"personae serve, {args.workers} workers, SQLite, MeLU ml-1m")
    for col in ("scenario", "conn", "req/s", "events/s", "p50 ms", "p95 ms", "p99 ms",
                "max ms", "errors"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for r in rows:
        table.add_row(*cells(r))
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "server.md").write_text(markdown(report))
    console.print(f"wrote {args.out / 'server.md'}")
    return 0


def cells(r: dict[str, Any]) -> list[str]:
    ev = r.get("events_per_s")
    return [r["scenario"], str(r["connections"]), f"{r['rps']:,.0f}",
            "—" if ev is None else f"{ev:,.0f}", f"{r['p50_us'] / 1e3:.1f}",
            f"{r['p95_us'] / 1e3:.1f}", f"{r['p99_us'] / 1e3:.1f}", f"{r['max_us'] / 1e3:.1f}",
            str(r["errors"])]


def show(r: dict[str, Any]) -> None:
    c = cells(r)
    console.print(f"  {c[0]} c={c[1]}: {c[2]} req/s, events/s {c[3]}, p50 {c[4]} ms, "
                  f"p95 {c[5]} ms, p99 {c[6]} ms, errors {c[8]}")


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    s = report["setup"]
    lines = [
        "# HTTP server under load",
        "",
        f"Made by `{report['command']}` on {report['started']} ({report['seconds']:.0f} s; "
        f"{env['cores']} cores, {env['platform']}; commit {env['git_commit']}"
        f"{' + local changes' if env['git_dirty'] else ''}).",
        "",
        f"A real `personae serve --workers {report['workers']}` process on loopback with the "
        f"embedded SQLite store holding the MeLU ml-1m data ({s.get('users', '?'):,} users, "
        f"{s.get('items', '?'):,} items, {s.get('events', '?'):,} events; import "
        f"{s['import_s']} s), model {s['model']} (version {s['version']}, trained in "
        f"{s['train_s']} s through the engine). Load from wrk on the same 2 cores, "
        f"{report['duration_s']:.0f} s per row; each recommendation reads the user's history "
        "from the store, scores it, filters seen items and logs the impression.",
        "",
        "| scenario | connections | requests/s | events/s | p50 ms | p95 ms | p99 ms | max ms "
        "| errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in report["rows"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
