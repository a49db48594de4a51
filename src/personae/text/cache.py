"""Item embeddings computed once per text version, kept on disk, refreshed when text changes.

One file pair per encoder version in the cache folder (the engine passes
``<data dir>/embeddings``)::

    <folder>/<encoder name>-<sha256(encoder version)[:12]>.npz    item_ids, text_sha256, vectors
    <folder>/<encoder name>-<sha256(encoder version)[:12]>.json   encoder name/version, dim, …

An item's vector is reused while the SHA-256 of its document (:func:`item_document`) is
unchanged; a changed text is re-embedded at the next :meth:`EmbeddingCache.update`, and two
items with the same text are embedded once. A new encoder version (another model, package
version or setting) writes a new file, so vectors of two versions never mix. Files are written
under a temporary name and renamed: a reader never sees half a file. Arrays are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from personae.errors import InvalidInput, PersonaeError
from personae.text.encoders import TextEncoder, get_encoder, item_document

if TYPE_CHECKING:
    from personae.store import Store

CACHE_FORMAT = "personae.embeddings/1"


@dataclass(frozen=True)
class EmbeddingUpdate:
    """What one :meth:`EmbeddingCache.update` did."""

    encoder: str
    version: str
    path: str
    n_items: int  # items in the cache after the update
    n_computed: int  # texts embedded now (new or changed)
    n_reused: int  # items whose text was unchanged
    n_empty: int  # items without any text (zero vectors)
    n_removed: int  # items dropped (prune)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EmbeddingCache:
    """Embeddings of items' text by one encoder, on disk under ``folder``.

    Parameters
    ----------
    folder : str or Path
        Where the ``.npz``/``.json`` files live (created on first write).
    encoder : str or TextEncoder, default "minilm"
        A registered encoder name (:data:`~personae.text.encoders.ENCODERS`) or an instance.
    **encoder_params
        Passed to the encoder when ``encoder`` is a name.
    """

    def __init__(self, folder: str | os.PathLike[str], encoder: str | TextEncoder = "minilm",
                 **encoder_params: Any) -> None:
        self.folder = Path(folder)
        self.encoder = get_encoder(encoder, **encoder_params)
        self._ids: np.ndarray | None = None
        self._sha: np.ndarray | None = None
        self._vectors: np.ndarray | None = None
        self._pos: dict[str, int] = {}

    # ------------------------------------------------------------------ files

    @property
    def path(self) -> Path:
        return self.folder / f"{self.encoder.key}.npz"

    @property
    def meta_path(self) -> Path:
        return self.folder / f"{self.encoder.key}.json"

    def _load(self) -> None:
        if self._ids is not None:
            return
        d = self.encoder.dim
        ids, sha, vecs = np.zeros(0, "U1"), np.zeros(0, "U64"), np.zeros((0, d), np.float32)
        if self.path.exists():
            try:
                meta = json.loads(self.meta_path.read_text())
            except (FileNotFoundError, json.JSONDecodeError) as exc:
                raise PersonaeError(f"embedding cache {self.meta_path} is unreadable ({exc}); "
                                    f"delete {self.path} and its .json to rebuild it") from None
            if meta.get("format") == CACHE_FORMAT and meta.get("version") == self.encoder.version:
                with np.load(self.path, allow_pickle=False) as npz:
                    ids, sha, vecs = npz["item_ids"], npz["text_sha256"], npz["vectors"]
                if vecs.shape[1:] != (d,):
                    raise PersonaeError(f"embedding cache {self.path} holds vectors of shape "
                                        f"{vecs.shape}, expected (n, {d})")
        self._set(ids, sha, vecs)

    def _set(self, ids: np.ndarray, sha: np.ndarray, vecs: np.ndarray) -> None:
        self._ids, self._sha, self._vectors = ids, sha, vecs.astype(np.float32, copy=False)
        self._pos = {str(k): n for n, k in enumerate(ids.tolist())}

    def _save(self, n_empty: int) -> None:
        from personae import __version__

        assert self._ids is not None and self._sha is not None and self._vectors is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")
        with open(tmp, "wb") as fh:
            np.savez(fh, item_ids=self._ids.astype(str), text_sha256=self._sha.astype("U64"),
                     vectors=self._vectors)
        meta = {"format": CACHE_FORMAT, "encoder": self.encoder.name,
                "version": self.encoder.version, "dim": self.encoder.dim,
                "n_items": int(self._ids.size), "n_empty": n_empty, "updated_at": time.time(),
                "personae_version": __version__}
        tmp_meta = self.meta_path.with_name(f".tmp-{os.getpid()}-{self.meta_path.name}")
        tmp_meta.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, self.path)
        os.replace(tmp_meta, self.meta_path)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        self._load()
        assert self._ids is not None
        return int(self._ids.size)

    def __contains__(self, item_id: object) -> bool:
        self._load()
        return str(item_id) in self._pos

    def lookup(self, item_ids: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of ``item_ids`` in that order.

        Returns
        -------
        vectors : ndarray of float32, shape (n, dim)
            Zero rows for items not in the cache (or without text).
        found : ndarray of bool, shape (n,)
            Whether the item is in the cache.
        """
        self._load()
        assert self._vectors is not None
        ids = [str(i) for i in item_ids]
        rows = np.array([self._pos.get(i, -1) for i in ids], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(ids), self.encoder.dim), dtype=np.float32)
        out[found] = self._vectors[rows[found]]
        return out, found

    def text_hashes(self, item_ids: Iterable[str]) -> list[str | None]:
        """The SHA-256 of the text each item was embedded from (None: not cached)."""
        self._load()
        assert self._sha is not None
        return [None if (r := self._pos.get(str(i))) is None else str(self._sha[r])
                for i in item_ids]

    # ------------------------------------------------------------------ updating

    def update(self, item_ids: Sequence[str], texts: Sequence[str], *, batch_size: int = 64,
               progress: bool = False, prune: bool = False) -> EmbeddingUpdate:
        """Embed the items whose text is new or changed; keep the others' vectors.

        Parameters
        ----------
        item_ids, texts : sequences of str, same length
            Each item's id and the document to embed (see :func:`item_document`).
        batch_size : int, default 64
            Texts per forward pass.
        progress : bool, default False
            Show a progress bar on stderr while embedding.
        prune : bool, default False
            Drop cached items not in ``item_ids`` (deleted from the catalogue).
        """
        started = time.perf_counter()
        ids = [str(i) for i in item_ids]
        docs = list(texts)
        if len(ids) != len(docs):
            raise InvalidInput(f"item_ids and texts must have the same length, got {len(ids)} "
                               f"and {len(docs)}")
        if len(set(ids)) != len(ids):
            raise InvalidInput("item_ids must be unique")
        for n, t in enumerate(docs):
            if not isinstance(t, str):
                raise InvalidInput(f"texts[{n}] (item {ids[n]!r}) must be a string, "
                                   f"got {type(t).__name__}")
        self._load()
        assert self._ids is not None and self._sha is not None and self._vectors is not None
        shas = [_sha256(t) for t in docs]
        # every known vector by text hash (two items with one text are embedded once)
        by_sha = {str(s): n for n, s in enumerate(self._sha.tolist())}
        todo: dict[str, str] = {}  # sha → text, in first-seen order
        reused = 0
        for item_id, sha, doc in zip(ids, shas, docs, strict=True):
            row = self._pos.get(item_id)
            if row is not None and str(self._sha[row]) == sha:
                reused += 1
            elif sha not in by_sha:
                todo.setdefault(sha, doc)
        new_vecs = self.encoder.encode(list(todo.values()), batch_size=batch_size,
                                       progress=progress)
        fresh = dict(zip(todo, new_vecs, strict=True))
        incoming = set(ids)
        stale = [n for n, k in enumerate(self._ids.tolist()) if k not in incoming]
        keep_old = [] if prune else stale  # cached items this update does not mention
        out_ids = [str(self._ids[n]) for n in keep_old] + ids
        out_sha = [str(self._sha[n]) for n in keep_old] + shas
        vecs = np.empty((len(out_ids), self.encoder.dim), dtype=np.float32)
        if keep_old:
            vecs[: len(keep_old)] = self._vectors[keep_old]
        for n, sha in enumerate(shas, start=len(keep_old)):
            vecs[n] = fresh[sha] if sha in fresh else self._vectors[by_sha[sha]]
        n_removed = len(stale) if prune else 0
        empty = int(sum(1 for d in docs if not d.strip()))
        self._set(np.array(out_ids, dtype=str), np.array(out_sha, dtype="U64"), vecs)
        self._save(empty)
        return EmbeddingUpdate(
            encoder=self.encoder.name, version=self.encoder.version, path=str(self.path),
            n_items=len(out_ids), n_computed=len(todo), n_reused=reused, n_empty=empty,
            n_removed=n_removed, seconds=time.perf_counter() - started,
        )

    def update_from_store(self, store: Store, *, batch_size: int = 64, progress: bool = False,
                          prune: bool = True) -> EmbeddingUpdate:
        """:meth:`update` with every item of ``store`` (documents by :func:`item_document`);
        items deleted from the store are dropped from the cache (``prune``)."""
        ids, docs = [], []
        for item in store.iter_items():
            ids.append(item.item_id)
            docs.append(item_document(item))
        return self.update(ids, docs, batch_size=batch_size, progress=progress, prune=prune)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
