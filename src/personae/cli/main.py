"""The ``personae`` command line: a thin layer over the Python API.

Exit codes: 0 success; 1 a personae error (bad input, unknown id, store problem), printed as one
message without a traceback; 2 a usage error (unknown option, missing argument).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from personae.cli.bandit import evaluate_off_policy
from personae.cli.profile import profile_command
from personae.errors import InvalidInput, PersonaeError

app = typer.Typer(
    name="personae",
    help="personae: a personalization engine. Events in, personal recommendations out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
import_app = typer.Typer(
    help="Import users, items and events from files (gzip-aware, one transaction per import).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(import_app, name="import")

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    # piped or redirected: rich would wrap the tables at 80 columns, which cuts every
    # number of `personae evaluate`'s table to an ellipsis
    console = Console(width=200)
err_console = Console(stderr=True)

T = TypeVar("T")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        envvar="PERSONAE_STORE",
        help="Store location: a data directory, a .db file or a URL "
        "(postgresql+psycopg://user@host/db). Default: ~/.local/share/personae "
        "($PERSONAE_HOME).",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="table for people, json for machines.")
]
ProgressOption = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show progress bars.")
]


@contextmanager
def _errors() -> Iterator[None]:
    """Print personae errors as one line and exit 1, instead of a traceback."""
    try:
        yield
    except PersonaeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except FileNotFoundError as exc:
        err_console.print(f"[bold red]error:[/] no such file: {exc.filename}", highlight=False)
        raise typer.Exit(1) from None


def _open_store(location: str | None, *, create: bool = True) -> Any:
    from personae.store import Store

    return Store(location, create=create)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------------- commands


@app.command()
def init(store: StoreOption = None) -> None:
    """Create an empty store (or upgrade an existing one) and say where it is."""
    with _errors(), _open_store(store) as s:
        console.print(
            f"store ready at [bold]{s.safe_url}[/] (schema revision {s.schema_revision()}, "
            f"{'pseudonymised' if s.pseudonymized else 'plain'} user ids)"
        )


@app.command()
def stats(
    store: StoreOption = None,
    top: Annotated[int, typer.Option(help="How many of the most active items to list.")] = 10,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Counts, sparsity, events per type, time range, top items and an activity histogram."""
    with _errors(), _open_store(store, create=False) as s:
        st = s.stats(top=top)
        if format is OutputFormat.json:
            _print_json({"store": s.safe_url, **st.to_dict()})
            return
        print_stats(st, title=s.safe_url)


def print_stats(st: Any, title: str = "") -> None:
    """Render :class:`~personae.store.StoreStats` as tables."""
    overview = Table(title=f"personae store {title}".strip(), show_header=False,
                     title_justify="left")
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    overview.add_row("users", f"{st.n_users:,}  ({st.n_users_with_events:,} with events)")
    overview.add_row("items", f"{st.n_items:,}  ({st.n_items_with_events:,} with events)")
    overview.add_row("events", f"{st.n_events:,}")
    overview.add_row("user–item pairs", f"{st.n_pairs:,}")
    overview.add_row("sparsity", f"{st.sparsity:.4%}")
    overview.add_row("time range", f"{_fmt_time(st.first_ts)} → {_fmt_time(st.last_ts)}")
    if st.events_per_user:
        epu = st.events_per_user
        overview.add_row(
            "events per user",
            f"min {epu['min']:.0f} · median {epu['median']:.0f} · mean {epu['mean']:.1f} · "
            f"max {epu['max']:.0f}",
        )
    console.print(overview)
    if st.events_per_type:
        types = Table(title="events per type", title_justify="left")
        types.add_column("type")
        types.add_column("events", justify="right")
        types.add_column("share", justify="right")
        for name, n in st.events_per_type.items():
            types.add_row(name, f"{n:,}", f"{n / st.n_events:.1%}")
        console.print(types)
    if st.top_items:
        top_t = Table(title="most active items", title_justify="left")
        top_t.add_column("item_id")
        top_t.add_column("title")
        top_t.add_column("events", justify="right")
        for item_id, title, n in st.top_items:
            top_t.add_row(item_id, title or "", f"{n:,}")
        console.print(top_t)
    if st.histogram:
        hist = Table(title="users by number of events", title_justify="left")
        hist.add_column("events")
        hist.add_column("users", justify="right")
        hist.add_column("")
        peak = max(n for _, n in st.histogram) or 1
        for label, n in st.histogram:
            hist.add_row(label, f"{n:,}", "█" * max(1 if n else 0, round(30 * n / peak)))
        console.print(hist)


@app.command("export-user")
def export_user(
    user_id: Annotated[str, typer.Argument(help="The user's id, as the application knows it.")],
    store: StoreOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Everything stored about a user, as JSON (for data-access requests)."""
    with _errors(), _open_store(store, create=False) as s:
        data = s.export_user(user_id)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        err_console.print(f"wrote {len(data['events'])} events of {user_id!r} to {output}")
    else:
        sys.stdout.write(text + "\n")


@app.command("forget-user")
def forget_user(
    user_id: Annotated[str, typer.Argument(help="The user's id, as the application knows it.")],
    store: StoreOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every row of a user; their data is refused if it is imported again.

    Their per-user state leaves the saved model versions at once; a running server retrains
    the active version within its retrain_after_forget. Each step is in the audit log.
    """
    from personae.service import Engine

    with _errors(), _open_store(store, create=False) as s:
        if not yes and sys.stdin.isatty():
            typer.confirm(f"Forget user {user_id!r} and all their events?", abort=True)
        engine = Engine(s)
        try:
            report = engine.forget_user(user_id)
        finally:
            engine.close()
    console.print(f"forgot {user_id!r}: deleted {report['events']:,} events and "
                  f"{report['users']} user row; per-user state removed from "
                  f"{len(report['model_state_removed'])} model version(s); "
                  f"{report['model_versions']} version(s) marked for retraining")


@app.command()
def audit(
    store: StoreOption = None,
    user_id: Annotated[str | None, typer.Option(
        "--user", help="Only the steps of this (forgotten) user.")] = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """What was done to whose data, and when: forgotten users, the model state removed with
    them, retraining. Users appear under a keyed hash of their id, never the id."""
    with _errors(), _open_store(store, create=False) as s:
        entries = s.audit_log(user_id=user_id)
    if format == OutputFormat.json:
        _print_json(entries)
        return
    table = Table("when (UTC)", "action", "subject", "detail", box=None)
    for e in entries:
        table.add_row(_fmt_time(e["ts"]), e["action"], (e["subject"] or "")[:12],
                      json.dumps(e["detail"], ensure_ascii=False)[:90])
    console.print(table if entries else "the audit log is empty")


# ---------------------------------------------------------------------- import

SkipBadOption = Annotated[
    bool,
    typer.Option(
        "--skip-bad",
        help="Skip malformed rows and report them, instead of aborting (by default one bad row "
        "aborts the import and nothing of it is stored).",
    ),
]
MapOption = Annotated[
    str,
    typer.Option(
        "--map",
        "-m",
        help="Which column holds what, e.g. 'user=reviewerID,item=asin,value=overall,"
        "time=unixReviewTime'.",
    ),
]
FileFormatOption = Annotated[
    str | None,
    typer.Option("--file-format", help="csv, tsv or jsonl (default: from the file name)."),
]
EncodingOption = Annotated[str, typer.Option(help="Text encoding of the file.")]


def _report(report: Any, format: OutputFormat) -> None:
    if format is OutputFormat.json:
        _print_json(report.to_dict())
    else:
        console.print(report.summary(), highlight=False)


def _import(store: str | None, format: OutputFormat, run: Callable[[Any], Any]) -> None:
    with _errors(), _open_store(store) as s:
        _report(run(s), format)


@import_app.command("movielens")
def import_movielens_cmd(
    path: Annotated[Path, typer.Argument(help="An ml-100k or ml-1m folder, or one of its files.")],
    store: StoreOption = None,
    skip_bad: SkipBadOption = False,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """MovieLens: ml-100k (u.data, u.item, u.user) or ml-1m style (ratings/movies/users.dat)."""
    from personae.data.importers import import_movielens

    _import(store, format,
            lambda s: import_movielens(s, path, skip_bad=skip_bad, progress=progress))


@import_app.command("melu")
def import_melu_cmd(
    path: Annotated[Path, typer.Argument(help="The ml-1m-melu-coldstart folder.")],
    users: Annotated[
        Path | None, typer.Option(help="users.dat (default: in the folder or ../ml-1m/).")
    ] = None,
    store: StoreOption = None,
    skip_bad: SkipBadOption = False,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """The MeLU ml-1m cold-start partitions: movies with plots and 359,761 ratings."""
    from personae.data.importers import import_melu

    _import(store, format, lambda s: import_melu(s, path, users_path=users, skip_bad=skip_bad,
                                                 progress=progress))


def _register_file_import(kind: str, doc: str) -> None:
    """``personae import events|items|users FILE --map …``: the generic file importers."""

    def command(
        path: Annotated[Path, typer.Argument(help="A CSV/TSV/JSON-lines file, optionally .gz.")],
        map: MapOption,
        store: StoreOption = None,
        file_format: FileFormatOption = None,
        encoding: EncodingOption = "utf-8",
        skip_bad: SkipBadOption = False,
        progress: ProgressOption = True,
        format: FormatOption = OutputFormat.table,
    ) -> None:
        from personae.data.importers import get_importer

        importer = get_importer(kind)
        _import(store, format, lambda s: importer(
            s, path, map, format=file_format, encoding=encoding, skip_bad=skip_bad,
            progress=progress))

    command.__doc__ = doc
    import_app.command(kind)(command)


_register_file_import("events", """Events from any CSV/TSV/JSON-lines export, with a column mapping.

    Mapping keys: user, item, value, time, type, default_type, event_id, context
    (';'-separated columns), time_unit (auto, s, ms, iso or a strptime pattern).
    """)
_register_file_import("items", """Items (the catalogue) from any CSV/TSV/JSON-lines export.

    Mapping keys: item, title, text, categories, attributes (';'-separated columns), available,
    categories_sep. HTML in titles and texts is cleaned; repeated rows of an item are merged.
    """)
_register_file_import("users", """Users from any CSV/TSV/JSON-lines export, with a column mapping.

    Mapping keys: user, attributes (';'-separated columns).
    """)


# ---------------------------------------------------------------------- synthetic data


@app.command()
def generate(
    users: Annotated[int, typer.Option(help="Number of users.")] = 1_000,
    items: Annotated[int, typer.Option(help="Number of items.")] = 500,
    events: Annotated[int, typer.Option(help="Number of events (exact).")] = 20_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 0,
    domain: Annotated[str, typer.Option(help="movies or shop.")] = "movies",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write users/items/events .jsonl.gz into this folder "
                     "instead of loading them into the store."),
    ] = None,
    store: StoreOption = None,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Synthetic users, items and events with planted tastes, context effects and texts."""
    from personae.data.synthetic import SyntheticConfig
    from personae.data.synthetic import generate as make

    with _errors():
        data = make(SyntheticConfig(n_users=users, n_items=items, n_events=events, seed=seed,
                                    domain=domain))
        if out is not None:
            paths, secs = _timed(lambda: data.write(out, progress=progress))
            result = {"wrote": {k: str(v) for k, v in paths.items()}, "seconds": secs,
                      "users": data.n_users, "items": data.n_items, "events": data.n_events}
            if format is OutputFormat.json:
                _print_json(result)
            else:
                console.print(f"wrote {data.n_users:,} users, {data.n_items:,} items and "
                              f"{data.n_events:,} events to {out} in {secs:.1f} s")
            return
        with _open_store(store) as s:
            res = data.to_store(s, progress=progress)
            if format is OutputFormat.json:
                _print_json({"store": s.safe_url, "users": res.users.inserted,
                             "items": res.items.inserted, "events": res.events.inserted,
                             "duplicates": res.events.duplicates, "seconds": res.seconds})
            else:
                console.print(
                    f"loaded {res.users.inserted:,} users, {res.items.inserted:,} items and "
                    f"{res.events.inserted:,} events ({res.events.duplicates:,} already there) "
                    f"into {s.safe_url} in {res.seconds:.1f} s"
                )


# ---------------------------------------------------------------------- evaluate

#: Hyper-parameters searched on the validation split by ``personae evaluate --tune``.
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "popularity": {},
    "itemknn": {"k": [50, 100, 200], "shrinkage": [0.0, 10.0], "similarity": ["cosine", "bm25"]},
    "rp3beta": {"alpha": [0.5, 0.75, 1.0], "beta": [0.3, 0.6], "k": [200, 800]},
    "ease": {"l2": [100.0, 250.0, 500.0, 1000.0], "dropout": [0.0, 0.5]},
    "gfcf": {"k": [32, 64, 128], "alpha": [0.3, 1.0]},
    # personae's ALS scales the confidences itself (1 + alpha·x), so its useful penalties are
    # tens, not implicit's hundredths: 20 on ml-100k P1 and 40 on MeLU P1 (bench_models)
    "als": {"factors": [64, 128], "regularization": [10.0, 20.0, 40.0], "iterations": [15]},
    "bpr": {"factors": [64], "learning_rate": [0.01, 0.05], "iterations": [100]},
    "twotower": {"l2": [1e-4, 3e-4, 1e-3]},
}

#: Added to a model's grid where the split's pairs carry event times (EASE's window of close
#: pairs in time: see personae.models.ease; 0 is no order).
TIMED_GRIDS: dict[str, dict[str, list[Any]]] = {
    "ease": {"sequence_window": [0, 5]},
}

#: ``--models ...,blend``: the blend's weight grid (per member: multiples of this step).
BLEND_STEP = 0.1

PROTOCOLS = ("p1", "p2", "temporal", "melu-new-users", "melu-new-items", "melu-new-users-items")


def _split_for(protocol: str, store: Any, view: Any) -> Any:
    from personae.evaluate import (
        leave_last_out,
        melu_coldstart,
        melu_partitions,
        random_holdout,
        temporal_split,
    )

    if protocol == "p1":
        return random_holdout(view)
    if protocol == "p2":
        return leave_last_out(view)
    if protocol == "temporal":
        return temporal_split(view)
    if protocol.startswith("melu-"):
        target = protocol.removeprefix("melu-").replace("-", "_")
        return melu_coldstart(view, melu_partitions(store), target)

    raise InvalidInput(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


@app.command()
def evaluate(
    protocol: Annotated[
        str, typer.Option("--protocol", "-p", help=f"One of: {', '.join(PROTOCOLS)}.")
    ] = "p1",
    models: Annotated[
        str, typer.Option("--models", "-m", help="Comma-separated registered model names.")
    ] = "popularity,itemknn,ease",
    data: Annotated[
        Path | None,
        typer.Option(help="A MovieLens or MeLU folder to evaluate on (imported into a "
                     "temporary store) instead of the store."),
    ] = None,
    store: StoreOption = None,
    tune: Annotated[
        bool, typer.Option("--tune/--no-tune", help="Search hyper-parameters on the validation "
                           "split (the test split is touched once).")
    ] = True,
    budget: Annotated[
        float, typer.Option(help="Seconds of hyper-parameter search per model.")
    ] = 120.0,
    ks: Annotated[str, typer.Option(help="Cut-offs, comma-separated.")] = "5,10,20",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write report.html and report.json into this folder."),
    ] = None,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
    off_policy: Annotated[
        Path | None,
        typer.Option("--off-policy", help="Instead of a protocol: estimate a bandit policy's "
                     "value from these logged rounds (JSON lines; IPS, SNIPS, DR), as "
                     "`personae evaluate-off-policy`.", show_default=False),
    ] = None,
    policy: Annotated[
        str, typer.Option(help="With --off-policy: the policy to evaluate, a folder written "
                          "by BanditPolicy.save or 'random'.")
    ] = "random",
    reward_model: Annotated[
        str, typer.Option(help="With --off-policy: 'ridge' (cross-fitted) or 'none'.")
    ] = "ridge",
    clip: Annotated[
        float | None, typer.Option(help="With --off-policy: cap on importance weights.")
    ] = None,
) -> None:
    """Evaluate models offline with a named protocol; prints a table, writes JSON and HTML.

    With ``--off-policy LOGS``: evaluate a bandit policy from logged rounds instead.
    """
    if off_policy is not None:
        evaluate_off_policy(off_policy, policy=policy, reward_model=reward_model, clip=clip,
                            l2=1.0, format=format.value)
        return
    import shlex
    import tempfile

    from personae.data.interactions import Interactions
    from personae.evaluate import evaluate as run_evaluation
    from personae.evaluate import render_table, tune_and_evaluate
    from personae.models import create, get_model_class

    with _errors():
        names = [m.strip() for m in models.split(",") if m.strip()]
        for name in names:
            get_model_class(name)  # fail early on a typo, listing the valid names
        if "blend" in names:
            names = [n for n in names if n != "blend"] + ["blend"]  # after its members
            if len(names) < 2:
                raise InvalidInput("--models blend fuses the other models of --models; name "
                                   "at least one more (e.g. --models ease,als,blend)")
        cutoffs = tuple(int(k) for k in ks.split(","))
        with tempfile.TemporaryDirectory(prefix="personae-eval-") as tmp:
            location = store
            if data is not None:
                from personae.data.importers import detect_format, get_importer

                fmt = detect_format(data)
                if fmt not in ("movielens", "melu"):
                    raise InvalidInput(f"{data} is not a MovieLens or MeLU folder")
                location = str(Path(tmp) / "eval.db")
                with _open_store(location) as s:
                    get_importer(fmt)(s, data, progress=progress)
            with _open_store(location, create=False) as s:
                view = Interactions.from_store(s)
                split = _split_for(protocol, s, view)
            err_console.print(f"{protocol}: {split.summary()}", highlight=False)
            results = []
            tuned: dict[str, dict[str, Any]] = {}
            for name in names:
                if name == "blend":
                    result = _evaluate_blend(
                        [(n, tuned.get(n, {})) for n in names if n != "blend"], split,
                        tune=tune, ks=cutoffs)
                    results.append(result)
                    continue
                grid = DEFAULT_GRIDS.get(name, {}) if tune else {}
                if grid and split.has_times:
                    grid = {**grid, **TIMED_GRIDS.get(name, {})}
                if grid and split.validation is not None:
                    tuning, result = tune_and_evaluate(
                        lambda name=name, **p: create(name, **p), grid, split, ks=cutoffs,
                        time_budget_s=budget)
                    tuned[name] = dict(tuning.best_params)
                    err_console.print(f"{name}: best {tuning.best_params} "
                                      f"(validation ndcg@10 {tuning.best_score:.4f}, "
                                      f"{len(tuning.trials)} trials)", highlight=False)
                else:
                    result = run_evaluation(create(name), split, ks=cutoffs)
                results.append(result)
        if format is OutputFormat.json:
            _print_json([r.to_dict() for r in results])
        else:
            console.print(render_table(results))
        if out is not None:
            from personae.evaluate.report import write_report

            command = "personae " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            path = write_report(results, out / "report.html",
                                title=f"personae evaluation · {protocol}", command=command)
            err_console.print(f"wrote {path} and {path.with_suffix('.json')}")


def _evaluate_blend(members: list[tuple[str, dict[str, Any]]], split: Any, *, tune: bool,
                    ks: tuple[int, ...]) -> Any:
    """``--models ...,blend``: the other models, each with the parameters its own row chose,
    fused by z-scores; the weights are chosen on the validation split (grid step
    :data:`BLEND_STEP`, coarser for many members), equal without one or with ``--no-tune``."""
    import time

    from personae.evaluate import evaluate as run_evaluation
    from personae.models.blend import (
        Blend,
        describe_members,
        fitting_step,
        tune_weights_on_folds,
    )

    weights = None
    if tune and split.validation is not None:
        step = fitting_step(len(members), BLEND_STEP)
        started = time.perf_counter()
        chosen, score = tune_weights_on_folds(
            members, [(split.validation.train_view(), split.validation.test)], normalize="zscore",
            k=10, step=step)
        weights = chosen.round(6).tolist()
        named = dict(zip([n for n, _ in members], weights, strict=True))
        err_console.print(f"blend: weights {named} (validation ndcg@10 {score:.4f}, step "
                          f"{step:g}, "
                          f"{time.perf_counter() - started:.1f} s)", highlight=False)
    else:
        err_console.print("blend: equal weights (" + ("--no-tune" if not tune else
                          "this protocol has no validation split") + ")", highlight=False)
    result = run_evaluation(Blend(members, weights=weights, normalize="zscore"), split, ks=ks)
    result.params = {"members": describe_members(members), "weights": weights,
                     "normalize": "zscore"}
    return result


# ---------------------------------------------------------------------- serving

keys_app = typer.Typer(
    help="API keys of the HTTP server (roles: reader ⊂ writer ⊂ admin).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(keys_app, name="keys")
app.command("profile")(profile_command)
app.command("evaluate-off-policy")(evaluate_off_policy)


class Role(StrEnum):
    reader = "reader"
    writer = "writer"
    admin = "admin"


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key (e.g. 'web-app').")],
    role: Annotated[Role, typer.Option(
        help="reader: recommendations; writer: + users, items, events; admin: + models, "
             "forgetting users.")] = Role.reader,
    store: StoreOption = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Create an API key and print its secret (shown this once; only a hash is stored)."""
    with _errors(), _open_store(store) as s:
        key, secret = s.create_api_key(name, role.value)
    if format is OutputFormat.json:
        _print_json({**key.to_dict(), "secret": secret})
        return
    console.print(f"created {key.role} key [bold]{key.key_id}[/] ({key.name!r}); its secret, "
                  "shown only now:", highlight=False)
    sys.stdout.write(secret + "\n")
    sys.stdout.flush()
    err_console.print("send it as 'Authorization: Bearer <secret>' or 'X-API-Key: <secret>'")


@keys_app.command("list")
def keys_list(store: StoreOption = None, format: FormatOption = OutputFormat.table) -> None:
    """Every key with its role and state (secrets are never stored, so never shown)."""
    with _errors(), _open_store(store, create=False) as s:
        keys = s.list_api_keys()
    if format is OutputFormat.json:
        _print_json([k.to_dict() for k in keys])
        return
    table = Table(title=f"{len(keys)} API key(s)", title_justify="left")
    for col in ("key_id", "name", "role", "created", "revoked"):
        table.add_column(col)
    for k in keys:
        table.add_row(k.key_id, k.name, k.role, _fmt_time(k.created_at),
                      _fmt_time(k.revoked_at) if k.revoked_at is not None else "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's public id (pk_…).")],
    store: StoreOption = None,
) -> None:
    """Revoke a key; servers refuse it within their key cache time (--key-cache-ttl, 5 s)."""
    with _errors(), _open_store(store, create=False) as s:
        key = s.revoke_api_key(key_id)
    console.print(f"revoked {key.key_id} ({key.name!r}, {key.role})", highlight=False)


@app.command()
def serve(
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (one per core is a good start).")] = 1,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Accept requests without an API key, as admin. Local use only.")
    ] = False,
    models_dir: Annotated[Path | None, typer.Option(
        help="Where model versions are kept (default: <store home>/models).")] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MB (413).")] = 10.0,
    max_batch: Annotated[int, typer.Option(
        min=1, help="Most records in one batch request (422).")] = 10_000,
    key_cache_ttl: Annotated[float, typer.Option(
        min=0.0, help="Seconds an API key is trusted without asking the store again (a "
                      "revoked key works at most this long).")] = 5.0,
    retrain_after_forget: Annotated[float, typer.Option(
        min=0.0, help="Seconds after a user is forgotten within which the serving model, "
                      "trained on their events, is retrained.")] = 3600.0,
    retrain_every: Annotated[float, typer.Option(
        min=0.0, help="Retrain the serving model every this many seconds (0: never on its "
                      "own); the new version serves only if it validates as well.")] = 0.0,
    text_encoder: Annotated[str, typer.Option(
        help="Encoder of item texts and natural-language requests: wordllama (fast), minilm "
             "(finer) or hashing (no model; tests).")] = "wordllama",
    text_adapter: Annotated[Path | None, typer.Option(
        help="A fine-tuned text adapter folder (personae text finetune).")] = None,
    llm_backend: Annotated[str, typer.Option(
        help="Who phrases explanation sentences: none (template), local (SmolLM2, offline) or "
             "openai (an OpenAI-compatible endpoint, --llm-url).")] = "none",
    llm_url: Annotated[str | None, typer.Option(
        help="Base URL of the OpenAI-compatible endpoint.")] = None,
    llm_model: Annotated[str | None, typer.Option(help="Model name at that endpoint.")] = None,
    maintenance_interval: Annotated[float, typer.Option(
        min=0.0, help="Seconds between two maintenance rounds of each worker (abandoned "
                      "training jobs, retraining after forgetting).")] = 10.0,
    access_log: Annotated[bool, typer.Option(
        "--access-log/--no-access-log", help="Log every request (costs throughput).")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (FastAPI under uvicorn); the OpenAPI docs are at /docs."""
    import os

    try:
        import uvicorn

        from personae.server import ServerSettings, create_app
    except ModuleNotFoundError as exc:
        err_console.print(f"[bold red]error:[/] {exc.name!r} is not installed; install it with: "
                          "pip install 'personae[server]'", highlight=False)
        raise typer.Exit(1) from None
    with _errors():
        settings = ServerSettings(
            store=store, models_dir=str(models_dir) if models_dir else None, auth=not no_auth,
            max_body_bytes=max(1, int(max_body_mb * 1_000_000)), max_batch=max_batch,
            key_cache_ttl=key_cache_ttl, retrain_after_forget=retrain_after_forget,
            maintenance_interval=maintenance_interval, text_encoder=text_encoder,
            retrain_every=retrain_every,
            text_adapter=str(text_adapter) if text_adapter else None, llm_backend=llm_backend,
            llm_url=llm_url, llm_model=llm_model)
        # Open (and create or upgrade) the store once here, so that the workers do not race on
        # migrations and a wrong location is one line, not a traceback per worker.
        with _open_store(store) as s:
            url, n_keys = s.url, len([k for k in s.list_api_keys() if k.active])
            safe = s.safe_url
        settings = settings.with_(store=url)
    if no_auth:
        err_console.print("[bold yellow]warning:[/] --no-auth: every request is treated as an "
                          "admin's; do not expose this server", highlight=False)
    elif n_keys == 0:
        err_console.print("no API keys yet: create one with [bold]personae keys create --name "
                          "me --role admin[/]" + (f" --store {store}" if store else ""))
    err_console.print(f"serving {safe} on http://{host}:{port} ({workers} worker(s)); "
                      f"docs at http://{host}:{port}/docs", highlight=False)
    options: dict[str, Any] = {"host": host, "port": port, "access_log": access_log,
                               "log_level": log_level, "loop": "auto", "http": "auto"}
    if workers == 1:
        with _errors():
            application = create_app(settings=settings)
        uvicorn.run(application, **options)
        return
    # Workers are separate processes started from an import string: they read the settings
    # from the environment, and sum their metrics through prometheus_client's multiprocess
    # files.
    import shutil
    import tempfile

    os.environ.update(settings.to_env())
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="personae-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        uvicorn.run("personae.server.app:create_app_from_env", factory=True, workers=workers,
                    **options)
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)


# ---------------------------------------------------------------------- quickstart


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="A registered model: ease, itemknn, als, bpr, "
                                              "sasrec, twotower, content, fedmf, …")] = "ease",
    params: Annotated[str | None, typer.Option(
        "--params", "-p", help="Hyper-parameters as JSON, e.g. '{\"l2\": 250}'.")] = None,
    store: StoreOption = None,
    models_dir: Annotated[Path | None, typer.Option(
        help="Where model versions are kept (default: <store home>/models).")] = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Train a new model version on the store's data, validate it against the active one and
    activate it unless it is worse (as POST /v1/models:train does, here in the foreground)."""
    from personae.service import Engine

    with _errors(), _open_store(store, create=False) as s:
        try:
            values = json.loads(params) if params else {}
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--params is not valid JSON: {exc}") from None
        if not isinstance(values, dict):
            raise InvalidInput(f"--params must be a JSON object, got {params!r}")
        engine = Engine(s, models_dir)
        try:
            err_console.print(f"training {model} on {s.safe_url} …", highlight=False)
            mv = engine.train(model, values, background=False)
        finally:
            engine.close()
    if format == OutputFormat.json:
        _print_json(mv.to_dict())
        return
    ndcg = (mv.metrics or {}).get("ndcg@10")
    console.print(f"{mv.version}: {mv.status}" + (f", validation NDCG@10 {ndcg:.4f}"
                                                  if isinstance(ndcg, float) else "")
                  + (f" ({mv.message})" if mv.message else ""), highlight=False)
    if mv.status == "failed":
        raise typer.Exit(1)


@app.command()
def recommend(
    user_id: Annotated[str | None, typer.Argument(help="The user (leave out with --describe "
                                                       "for someone new).")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="How many items.")] = 10,
    query: Annotated[str | None, typer.Option(
        "--query", "-q", help="A request in words, e.g. 'something light for tonight'.")] = None,
    describe: Annotated[str | None, typer.Option(
        "--describe", help="A self-description, for a user with little history.")] = None,
    category: Annotated[list[str] | None, typer.Option(
        help="Only items of these categories (repeat the option).")] = None,
    diversity: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Re-rank for diversity (0 = relevance only, 1 = most).")] = None,
    context: Annotated[str | None, typer.Option(
        help="The moment as JSON, e.g. '{\"device\": \"tv\"}'.")] = None,
    explain: Annotated[bool, typer.Option(help="Say why each item.")] = True,
    text_encoder: Annotated[str, typer.Option(help="Encoder for --query/--describe.")]
    = "wordllama",
    store: StoreOption = None,
    models_dir: Annotated[Path | None, typer.Option(
        help="Where model versions are kept (default: <store home>/models).")] = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Recommendations for a user from the active model version, as the server gives them:
    filters, context, diversity, natural-language requests, explanations."""
    from personae.service import Engine, Filters, RecommendRequest

    with _errors(), _open_store(store, create=False) as s:
        try:
            ctx = json.loads(context) if context else {}
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--context is not valid JSON: {exc}") from None
        engine = Engine(s, models_dir, text_encoder=text_encoder, log_impressions=False)
        try:
            res = engine.recommend(RecommendRequest(
                user_id, k=k, query=query, description=describe, context=ctx,
                filters=Filters(categories=category or None), diversity=diversity,
                explain=explain))
            titles = {i.item_id: i.title for i in s.iter_items()} \
                if format != OutputFormat.json else {}
        finally:
            engine.close()
    if format == OutputFormat.json:
        _print_json(res.to_dict())
        return
    table = Table("#", "item", "title", "score", "why", box=None,
                  title=f"{res.strategy} · {res.model_version or 'no model'}")
    for it in res.items:
        table.add_row(str(it.rank), it.item_id, titles.get(it.item_id) or "",
                      f"{it.score:.3f}", "; ".join(it.reasons or []))
    console.print(table)


@app.command()
def quickstart(
    data: Annotated[
        Path | None,
        typer.Option(help="A MovieLens folder (ml-100k or ml-1m style) to use instead of the "
                     "synthetic demo data."),
    ] = None,
    store: StoreOption = None,
    progress: ProgressOption = True,
) -> None:
    """Create the embedded store, load demo data (or --data MovieLens) and show its stats."""
    from personae.data.interactions import Interactions

    with _errors(), _open_store(store) as s:
        console.rule("[bold]personae quickstart")
        console.print(f"store: [bold]{s.safe_url}[/]")
        if data is not None:
            from personae.data.importers import import_movielens

            report = import_movielens(s, data, progress=progress)
            console.print(report.summary(), highlight=False)
        else:
            from personae.data.synthetic import SyntheticConfig
            from personae.data.synthetic import generate as make

            # Idiosyncratic users (low taste concentration, strong latent styles) and a milder
            # popularity curve than the generator's defaults: a demo where personal taste,
            # not the hit list, drives what people do.
            demo = make(SyntheticConfig(n_users=2_000, n_items=1_000, n_events=100_000, seed=0,
                                        taste_concentration=1.0, latent_strength=2.0,
                                        popularity_exponent=0.8))
            res = demo.to_store(s, progress=progress)
            console.print(
                f"synthetic demo data: {res.users.inserted:,} users, {res.items.inserted:,} "
                f"items, {res.events.inserted:,} new events ({res.events.duplicates:,} already "
                f"stored) in {res.seconds:.1f} s"
            )
        print_stats(s.stats(), title=s.safe_url)
        view, secs = _timed(lambda: Interactions.from_store(s))
        console.print(
            f"training view: {view.n_users:,} users × {view.n_items:,} items, "
            f"{view.nnz:,} interactions, read in {secs:.2f} s"
        )
        _quickstart_models(s, view)
        from personae.service import Engine

        with Engine(s) as engine:  # the model the server will serve: a stored, active version
            mv, secs = _timed(lambda: engine.train("ease", {"l2": 250.0}, background=False))
        console.print(f"model version [bold]{mv.version}[/] ({mv.status}"
                      f"{': ' + mv.message if mv.message else ''}) stored in {secs:.1f} s",
                      highlight=False)
        console.print(
            "next: [bold]personae evaluate --help[/], [bold]personae stats[/], "
            "[bold]personae import --help[/], [bold]personae export-user USER_ID[/]"
        )
        hint = f" --store {store}" if store else ""
        console.print(
            f"serve it: [bold]personae keys create --name me --role admin{hint}[/], then "
            f"[bold]personae serve{hint}[/] (API docs at http://127.0.0.1:8000/docs)"
        )


def _quickstart_models(store: Any, view: Any) -> None:
    """Train the default model, compare it with popularity on a validation split, show top-10s."""
    from personae.evaluate import evaluate as run_evaluation
    from personae.evaluate import random_holdout
    from personae.models import create

    # EASE learns an item × item matrix: the best default while the catalogue fits in memory.
    name, params = ("ease", {"l2": 250.0}) if view.n_items <= 20_000 else ("itemknn", {})
    console.rule(f"[bold]default model: {name}")
    split = random_holdout(view)
    results = [run_evaluation(create("popularity"), split, on="validation", memory="none"),
               run_evaluation(create(name, **params), split, on="validation", memory="none")]
    table = Table(title="validation split (P1 holdout; the test part is left for "
                        "`personae evaluate`)", title_justify="left")
    columns = ("ndcg@10", "recall@10", "hitrate@10", "coverage@10")
    for col in ("model", *columns, "fit s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        table.add_row(r.model, *(f"{r.metrics[c]:.4f}" for c in columns), f"{r.fit_seconds:.2f}")
    console.print(table)
    base, best = (r.metrics["ndcg@10"] for r in results)
    if base > 0:
        console.print(f"NDCG@10: {name} {best:.4f}, popularity {base:.4f} "
                      f"({(best - base) / base:+.0%})")
    model, secs = _timed(lambda: create(name, **params).fit(view))
    console.print(f"{name} trained on all {view.nnz:,} interactions in {secs:.2f} s")
    # a heavy, a typical and a light user (with at least 5 items, so there is a taste to show)
    counts = np.diff(view.matrix.indptr)
    active = [u for u in np.argsort(-counts, kind="stable") if counts[u] >= 5]
    shown = [int(active[i]) for i in (0, len(active) // 2, -1)] if len(active) >= 3 else []
    titles = {i.item_id: i.title for i in store.iter_items()}
    for u in shown:
        recs = model.recommend(u, k=10)
        table = Table(title=f"top-10 for user {view.user_ids[u]} "
                            f"({view.matrix.indptr[u + 1] - view.matrix.indptr[u]} items seen)",
                      title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("item_id")
        table.add_column("title")
        table.add_column("score", justify="right")
        for rank, (i, score) in enumerate(zip(recs.items, recs.scores, strict=True), 1):
            item_id = str(view.item_ids[i])
            table.add_row(str(rank), item_id, titles.get(item_id) or "", f"{score:.4f}")
        console.print(table)


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    import time

    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


from personae.cli.text import text_app  # noqa: E402 - it reuses the options above

app.add_typer(text_app, name="text")
from personae.cli.federated import app as federated_app  # noqa: E402 - same reason

app.add_typer(federated_app, name="federated")  # type: ignore[has-type]  # circular import


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
