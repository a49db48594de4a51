"""What ALS and BPR share: the lazy import of ``implicit``, parameter checks and factor state.

Both models learn a user factor matrix ``X`` (n_users, f) and an item factor matrix ``Y``
(n_items, f) with the CPU backend of the ``implicit`` library, and score ``X @ Y.T``. Nothing
here imports ``implicit`` at module import time: ``import personae.models.als`` stays cheap and
works without the extra installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import ModuleType
from typing import Any, cast

import numpy as np

from personae.errors import InvalidInput, MissingExtra
from personae.models._params import check_float, check_int, check_random_state
from personae.models.base import Recommender

#: The extra that installs ``implicit`` (``pip install 'personae[models]'``).
EXTRA = "models"


def import_implicit(module: str) -> ModuleType:
    """Import ``module`` of the ``implicit`` package, or raise :class:`MissingExtra`.

    Only a missing ``implicit`` (or its ``threadpoolctl`` dependency) becomes
    :class:`MissingExtra`; an installed but broken ``implicit`` raises its own error.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in ("implicit", "threadpoolctl"):
            raise MissingExtra(missing, EXTRA) from exc
        raise


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread while ``implicit`` runs its own thread pool.

    ``implicit`` parallelises over users/items itself; a multi-threaded OpenBLAS underneath
    oversubscribes the cores (``implicit`` warns that this can be 10x slower).
    """
    threadpoolctl = import_implicit("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, "blas"):
        yield


_numpy_blas: Any = None  # a threadpoolctl controller, made on first use (scanning takes ~2 ms)


def numpy_single_threaded_blas() -> AbstractContextManager[Any]:
    """One BLAS thread for many small numpy products (ALS fold-in), when threadpoolctl is here.

    Thousands of f × f products and solves gain nothing from BLAS threads, and on a busy
    machine OpenBLAS's spinning threads made fold-in of 943 users 20x slower (0.5 s → 13 s).
    Without threadpoolctl (a dependency of ``implicit``) this does nothing.
    """
    global _numpy_blas
    if _numpy_blas is None:
        try:
            threadpoolctl = importlib.import_module("threadpoolctl")
        except ImportError:
            return nullcontext()
        _numpy_blas = threadpoolctl.ThreadpoolController()
    return cast(AbstractContextManager[Any], _numpy_blas.limit(limits=1, user_api="blas"))


# ---------------------------------------------------------------------- the shared model


class FactorModel(Recommender):
    """A matrix-factorisation model: scores are ``user_factors_ @ item_factors_.T``.

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, f)
    item_factors_ : ndarray of float32, shape (n_items, f)
    """

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    # parameters every subclass has (declared for type checkers; set in ``__init__``)
    factors: int
    regularization: float
    iterations: int
    random_state: int | None
    num_threads: int

    def _validate_params(self) -> None:
        model = type(self).__name__
        check_int(model, "factors", self.factors, 1)
        check_float(model, "regularization", self.regularization, strict=False)
        check_int(model, "iterations", self.iterations, 1)
        check_random_state(model, self.random_state)
        check_int(model, "num_threads", self.num_threads, 0)

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "user_factors": np.ascontiguousarray(self.user_factors_, dtype=np.float32),
            "item_factors": np.ascontiguousarray(self.item_factors_, dtype=np.float32),
        }

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        user_factors = np.asarray(arrays["user_factors"], dtype=np.float32)
        item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        if user_factors.shape[0] != self.n_users_ or item_factors.shape[0] != self.n_items_:
            raise InvalidInput(
                f"saved factors have shapes {user_factors.shape} and {item_factors.shape}, "
                f"expected {self.n_users_} users and {self.n_items_} items"
            )
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors

    def _store_factors(self, backend: Any) -> None:
        """Copy the learned factors out of an ``implicit`` model, as float32."""
        self.user_factors_ = np.ascontiguousarray(backend.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(backend.item_factors, dtype=np.float32)
