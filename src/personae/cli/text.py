"""``personae text …``: item embeddings, natural-language requests and encoder fine-tuning.

A thin layer over :mod:`personae.text` and :class:`personae.models.content.Content`:

- ``personae text embed``: embed every item's text (new or changed texts only) into the cache;
- ``personae text recommend --query "…" [--user ID | --describe "…"]``: a request in words;
- ``personae text finetune``: train an adapter on the store's (history → next item) pairs.

Exit codes as for every command: 0 success, 1 a personae error, 2 a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from personae.cli.main import (
    FormatOption,
    OutputFormat,
    ProgressOption,
    StoreOption,
    _errors,
    _open_store,
    _print_json,
    console,
)

text_app = typer.Typer(
    help="Text: item embeddings, natural-language requests, fine-tuning the encoder.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EncoderOption = Annotated[
    str, typer.Option("--encoder", "-e", help="Text encoder: minilm, wordllama or hashing.")
]
DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Embedding cache folder. Default: <store folder>/embeddings.",
                 show_default=False),
]


def embeddings_dir(store: Any, folder: Path | None) -> Path:
    """``folder``, else ``embeddings/`` beside a SQLite store's file, else in the data dir."""
    if folder is not None:
        return folder
    from sqlalchemy.engine import make_url

    from personae.store.core import default_data_dir

    url = make_url(store.url)
    if store.backend == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / "embeddings"
    return default_data_dir() / "embeddings"


@text_app.command("embed")
def embed_cmd(
    store: StoreOption = None,
    encoder: EncoderOption = "minilm",
    folder: DirOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Embed the items' text (title, categories, description); unchanged texts are reused."""
    from personae.text.cache import EmbeddingCache

    with _errors(), _open_store(store) as st:
        cache = EmbeddingCache(embeddings_dir(st, folder), encoder)
        report = cache.update_from_store(st, batch_size=batch_size, progress=progress)
    if format == OutputFormat.json:
        _print_json(report.to_dict())
        return
    console.print(
        f"{report.n_items} items embedded with {report.encoder} in {report.path}: "
        f"{report.n_computed} texts computed, {report.n_reused} unchanged, "
        f"{report.n_empty} without text, {report.n_removed} removed "
        f"({report.seconds:.1f} s)"
    )


@text_app.command("recommend")
def recommend_cmd(
    query: Annotated[str | None, typer.Option("--query", "-q", help="What to look for, in "
                                              "words.", show_default=False)] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Whose history to use.",
                                             show_default=False)] = None,
    describe: Annotated[str | None, typer.Option(
        "--describe", help="A self-description instead of (or on top of) a history, e.g. "
        "'I like slow science fiction and old westerns'.", show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="How many items.")] = 10,
    category: Annotated[list[str] | None, typer.Option(
        "--category", help="Only items in this category (repeatable).",
        show_default=False)] = None,
    adapter: Annotated[Path | None, typer.Option("--adapter", help="A fine-tuned adapter "
                                                 "folder.", show_default=False)] = None,
    store: StoreOption = None,
    encoder: EncoderOption = "minilm",
    folder: DirOption = None,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Recommend items for a request in words, fitted to the user's history or description."""
    from personae.data.interactions import Interactions
    from personae.models.content import Content
    from personae.text.query import QueryRanker

    with _errors(), _open_store(store, create=False) as st:
        view = Interactions.from_store(st)
        model = Content(encoder=encoder, embeddings_dir=str(embeddings_dir(st, folder)),
                        adapter=None if adapter is None else str(adapter)).fit(view)
        items: dict[str, Any] = {it.item_id: it for it in st.iter_items()}
        allowed = np.array([items[str(i)].available if str(i) in items else False
                            for i in view.item_ids], dtype=bool)
        if category:
            wanted = set(category)
            allowed &= np.array([bool(wanted & set(items[str(i)].categories))
                                 if str(i) in items else False for i in view.item_ids])
        hist_items = hist_weights = None
        if user is not None:
            u = view.user_index(user)
            row = model.weights_
            lo, hi = row.indptr[u], row.indptr[u + 1]
            hist_items, hist_weights = row.indices[lo:hi], row.data[lo:hi]
        ranker = QueryRanker(model)
        res = ranker.rank(query, items=hist_items, weights=hist_weights, description=describe,
                          k=k, allowed=allowed)
    rows: list[dict[str, Any]] = []
    for rank, m in enumerate(res, 1):
        item_id = str(view.item_ids[m.item])
        rows.append({"rank": rank, "item_id": item_id,
                     "title": items[item_id].title if item_id in items else None,
                     "score": m.score, "matched": m.matched, "query_score": m.query_score,
                     "history_score": m.history_score})
    if format == OutputFormat.json:
        _print_json({"query": query, "user_id": user, "describe": describe, "items": rows})
        return
    from rich.table import Table

    table = Table(title=f"{query or ''}" + (f" — for {user}" if user else ""))
    for col in ("#", "item_id", "title", "score", "matched"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    for r in rows:
        table.add_row(str(r["rank"]), r["item_id"], r["title"] or "", f"{r['score']:.3f}",
                      r["matched"])
    console.print(table)


@text_app.command("finetune")
def finetune_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the adapter to.")],
    store: StoreOption = None,
    encoder: EncoderOption = "minilm",
    folder: DirOption = None,
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    patience: Annotated[int, typer.Option(min=1)] = 3,
    seed: int = 0,
    progress: ProgressOption = True,
    format: FormatOption = OutputFormat.table,
) -> None:
    """Train a contrastive adapter on the store's (history → next item) pairs."""
    from personae.data.interactions import Interactions
    from personae.text.cache import EmbeddingCache
    from personae.text.finetune import pairs_from_interactions, train_adapter

    with _errors(), _open_store(store, create=False) as st:
        view = Interactions.from_store(st)
        cache = EmbeddingCache(embeddings_dir(st, folder), encoder)
        E, found = cache.lookup(map(str, view.item_ids))
        pairs = pairs_from_interactions(view, items=found, seed=seed)
        ad = train_adapter(E, pairs, encoder=cache.encoder.name,
                           encoder_version=cache.encoder.version, epochs=epochs,
                           patience=patience, seed=seed, progress=progress)
        ad.info["fingerprint"] = view.fingerprint()
        path = ad.save(out)
    summary = {k: v for k, v in ad.info.items() if k != "history"}
    if format == OutputFormat.json:
        _print_json({"version": ad.version, "path": str(path), **summary})
        return
    console.print(
        f"adapter {ad.version} → {path}: {summary['n_pairs']} pairs, best epoch "
        f"{summary['best_epoch']} of {summary['epochs_run']}; validation recall@10 "
        f"{summary['frozen_val_recall@10']:.4f} (frozen) → {summary['best_val_recall@10']:.4f}"
    )
