"""What the PyTorch models share: the lazy import, seeding, threads, the SVD start of item
vectors, batches, early stopping, progress lines, and state dicts as plain numpy arrays (saved
in the model's ``arrays.npz``).

Only :mod:`personae.models.twotower` and :mod:`personae.models.sasrec` import this module, so
``import personae`` never loads torch.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from personae.errors import InvalidInput


def import_torch() -> Any:
    """``torch``, or an ImportError that says which extra to install."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the neural models need PyTorch: pip install 'personae[neural]' "
            "(install torch first: pip install torch)"
        ) from exc
    return torch


def default_threads() -> int:
    """Cores this process may use (CPU affinity where the platform has it)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: every allowed core), then restore."""
    torch = import_torch()
    before = torch.get_num_threads()
    torch.set_num_threads(int(n) if n else default_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def svd_item_vectors(X: Any, factors: int, random_state: int | None, *,
                     torch: Any = None) -> np.ndarray | None:
    """Item vectors from a truncated SVD of the user × item matrix ``X``, for the models'
    ``init="svd"`` start: items of one taste start close.

    The columns are scaled by popularity^-0.25 (a user's share of an item's count) before the
    SVD; the result, shape (n_items, factors) float32, holds the top min(factors, min(X.shape)
    - 1) right singular vectors (the rest zero), scaled to a mean row norm of 1 (the caller
    sets the scale). None when there is nothing to decompose.

    Up to 20M cells the SVD is dense LAPACK (deterministic, also where singular values repeat,
    where ARPACK's basis depends on rounding): torch's when ``torch`` is given (it keeps to the
    fit's torch threads), else numpy's; larger matrices go to ``scipy.sparse.linalg.svds``
    seeded by ``random_state``.
    """
    import scipy.sparse as sp

    k = min(int(factors), min(X.shape) - 1)
    if k < 1 or X.nnz == 0:
        return None
    counts = np.asarray(X.sum(axis=0)).ravel()
    Xn = sp.csr_matrix(X @ sp.diags(1.0 / np.maximum(counts, 1.0) ** 0.25), dtype=np.float64)
    if Xn.shape[0] * Xn.shape[1] <= 20_000_000:
        if torch is not None:
            vt = torch.linalg.svd(torch.from_numpy(Xn.toarray()), full_matrices=False)[2]
            vt = vt[:k].numpy()
        else:
            vt = np.linalg.svd(Xn.toarray(), full_matrices=False)[2][:k]
    else:
        from scipy.sparse.linalg import svds

        v0 = np.random.default_rng(random_state).uniform(-1, 1, min(Xn.shape))
        vt = svds(Xn, k=k, v0=v0)[2]
    V = np.zeros((X.shape[1], int(factors)), dtype=np.float32)
    V[:, :k] = vt.T
    V /= max(float(np.linalg.norm(V, axis=1).mean()), 1e-12)
    return V


def generator(seed: int | None) -> Any:
    """A seeded ``torch.Generator`` (fresh entropy when ``seed`` is None) and the global seed.

    Dropout draws from torch's global generator, so it is seeded too: same seed, same model.
    """
    torch = import_torch()
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    torch.manual_seed(int(seed))
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def batches(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    """Index batches over ``range(n)``: shuffled with ``rng``, in order when it is None."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


class EarlyStopping:
    """Keep the best state by a validation metric; stop after ``patience`` epochs without gain.

    ``update(metric, state)`` returns True when training should stop. ``best_state`` is a copy
    of the state dict of the best epoch (tensors cloned).
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best = -math.inf
        self.best_epoch = -1
        self.best_state: dict[str, Any] | None = None
        self._bad = 0

    def update(self, epoch: int, metric: float, state: Mapping[str, Any]) -> bool:
        if metric > self.best + self.min_delta:
            self.best, self.best_epoch, self._bad = metric, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in state.items()}
            return False
        self._bad += 1
        return self._bad >= self.patience


class EpochLog:
    """One line per epoch on stderr (``verbose``): loss, validation metric, seconds.

    A line per epoch rather than a live bar: the fits are short and logs stay readable.
    """

    def __init__(self, model: str, epochs: int, verbose: bool) -> None:
        self.model, self.epochs, self.verbose = model, epochs, verbose
        self.started = time.perf_counter()
        self.history: list[dict[str, float]] = []

    def epoch(self, epoch: int, loss: float, metric: float | None = None) -> None:
        row = {"epoch": epoch + 1, "loss": loss, "seconds": time.perf_counter() - self.started}
        if metric is not None:
            row["val_ndcg@10"] = metric
        self.history.append(row)
        if self.verbose:
            val = f"  val ndcg@10 {metric:.4f}" if metric is not None else ""
            print(f"{self.model} epoch {epoch + 1:>3}/{self.epochs}  loss {loss:.4f}{val}  "
                  f"{row['seconds']:.1f}s", file=sys.stderr, flush=True)


def state_to_numpy(state: Mapping[str, Any], prefix: str) -> dict[str, np.ndarray]:
    """A torch state dict as numpy arrays named ``prefix + key`` (for ``arrays.npz``)."""
    return {prefix + k: v.detach().cpu().numpy().copy() for k, v in state.items()}


def numpy_to_state(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
    """The inverse of :func:`state_to_numpy`: the keys starting with ``prefix``, as tensors."""
    torch = import_torch()
    return {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
            if k.startswith(prefix)}


def ndcg_at_10(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean NDCG@10 of one target per row (the seen items must already be at -inf)."""
    if targets.size == 0:
        return float("nan")
    target_scores = scores[np.arange(targets.size), targets]
    rank = (scores > target_scores[:, None]).sum(axis=1)
    return float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).mean())


def check_matrix(model: str, name: str, value: Any, rows: int) -> np.ndarray:
    """A float32 (rows, d) matrix, or an :class:`InvalidInput` naming ``name``."""
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise InvalidInput(f"The {name!r} input of {model} must be a ({rows}, d) float matrix. "
                           f"Got shape {arr.shape} instead.")
    if not np.isfinite(arr).all():
        raise InvalidInput(f"The {name!r} input of {model} has NaN or infinite values")
    return arr
