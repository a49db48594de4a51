"""FedMF: implicit matrix factorisation with global item factors and local user factors.

The model is the weighted least-squares objective of implicit ALS (Hu, Koren & Volinsky 2008)::

    L(X, Y) = sum_u sum_i c_ui (p_ui - x_u . y_i)^2 + regularization * (|X|^2 + |Y|^2)

with ``p_ui = 1`` for an observed pair, 0 otherwise, and confidence ``c_ui = 1 + alpha * r_ui``.
It is built so that the same model trains two ways:

- **centralised** (:meth:`FedMF.fit`): exact alternating least squares, ``iterations`` sweeps;
- **federated** (:mod:`personae.privacy.federated`): the server holds only the item factors
  ``Y``. A client (one user) solves its own ``x_u`` exactly against ``Y`` (the ALS user step,
  :func:`solve_users`), never sends it, and returns an update of ``Y`` from gradient steps on
  its own loss (:func:`client_update`). The server averages the updates and applies them.

Both end in the same kind of artifact: a normal personae model version (``fedmf`` in the
registry) whose scores are ``user_factors_ @ item_factors_.T`` and which folds in unseen
histories with the ALS user step, as a client does on its device.

Only numpy: no extra is needed for the model itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput
from personae.models._params import check_float, check_int, check_random_state
from personae.models.base import Recommender

# Users solved at once by solve_users: padded (n, L, f) float64 blocks of at most this many bytes.
_SOLVE_BYTES = 32 * 2**20


def solve_users(R: sp.csr_matrix, Y: np.ndarray, regularization: float,
                alpha: float) -> np.ndarray:
    """The exact ALS user step: each row's ``x_u`` against fixed item factors ``Y``.

    Solves ``(Y^T Y + sum_i (c_ui - 1) y_i y_i^T + lambda I) x_u = sum_i c_ui y_i`` over the
    row's observed items ``i`` (``c_ui = 1 + alpha * r_ui``). An empty row gives zeros.

    Parameters
    ----------
    R : csr_matrix, shape (n, n_items)
        Interaction weights, one row per user (or per item, with ``Y`` the user factors: the
        item step is the same problem transposed).
    Y : ndarray, shape (n_items, f)
    regularization, alpha : float

    Returns
    -------
    ndarray of float32, shape (n, f)
    """
    R = sp.csr_matrix(R, dtype=np.float64)
    Y64 = np.asarray(Y, dtype=np.float64)
    f = Y64.shape[1]
    base = Y64.T @ Y64 + float(regularization) * np.eye(f)
    out = np.zeros((R.shape[0], f), dtype=np.float32)
    lengths = np.diff(R.indptr)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    budget = max(1, _SOLVE_BYTES // (8 * f))
    start = 0
    while start < order.size:
        n_rows = np.arange(1, order.size - start + 1)
        cost = np.maximum(n_rows * lengths[order[start:]], n_rows * f)
        stop = start + max(1, int(np.searchsorted(cost, budget, side="right")))
        rows = order[start:stop]
        width = int(lengths[rows].max())
        slots = np.arange(width)
        present = slots[None, :] < lengths[rows][:, None]
        positions = (R.indptr[rows][:, None] + slots[None, :])[present]
        items = np.zeros((rows.size, width, f))
        conf = np.zeros((rows.size, width))
        items[present] = Y64[R.indices[positions]]
        conf[present] = 1.0 + float(alpha) * R.data[positions]
        weighted = items * (conf - present)[..., None]
        A = base + np.matmul(items.transpose(0, 2, 1), weighted)
        b = np.matmul(conf[:, None, :], items)[:, 0, :]
        out[rows] = np.linalg.solve(A, b[..., None])[..., 0]
        start = stop
    return out


def data_gradient(Y: np.ndarray, X: np.ndarray, P: sp.csr_matrix, alpha: float) -> np.ndarray:
    """Per-user residuals ``e_u = c_u * (Y x_u - p_u)``: the gradient of user ``u``'s data loss
    with respect to ``Y`` is the rank-one ``2 e_u x_u^T``.

    Parameters
    ----------
    Y : (n_items, f); X : (n, f) the users' factors; P : csr (n, n_items) their weights.

    Returns
    -------
    ndarray of float64, shape (n, n_items)
    """
    E = X.astype(np.float64) @ Y.astype(np.float64).T
    P = sp.csr_matrix(P, dtype=np.float64)
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    cols = P.indices
    # unobserved: c = 1, p = 0 -> e = y.x ; observed: e = (1 + alpha r) (y.x - 1)
    E[rows, cols] = (1.0 + float(alpha) * P.data) * (E[rows, cols] - 1.0)
    return E


def client_update(Y: np.ndarray, items: np.ndarray, weights: np.ndarray, *,
                  regularization: float, alpha: float, learning_rate: float,
                  local_epochs: int = 1, proximal_mu: float = 0.0,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One client's local training: its user vector, and its update of the item factors.

    Each local epoch solves the client's ``x_u`` exactly against its local copy of ``Y`` and
    takes one gradient step on ``Y`` for the client's mean loss per interaction,
    ``(1/n_u) sum_i c_ui (p_ui - x_u . y_i)^2`` (plus ``proximal_mu/2 |Y - Y_global|^2``,
    FedProx, when given). The item regularisation is applied by the server (it needs no data).

    Parameters
    ----------
    Y : ndarray, shape (n_items, f)
        The global item factors of this round.
    items, weights : int array (n_u,), float array (n_u,)
        The client's history (item indices, interaction weights).
    regularization, alpha : float
        The model's (see :class:`FedMF`).
    learning_rate : float
        Client step size.
    local_epochs : int, default 1
    proximal_mu : float, default 0.0

    Returns
    -------
    delta : ndarray of float32, shape (n_items, f)
        ``Y_local - Y``, the update sent to the server.
    x : ndarray of float32, shape (f,)
        The client's user vector, solved against the final local ``Y`` (kept on the client).
    """
    Y0 = np.asarray(Y, dtype=np.float64)
    Yl = Y0.copy()
    n_items = Y0.shape[0]
    row = sp.csr_matrix((np.asarray(weights, dtype=np.float64),
                         np.asarray(items, dtype=np.int64), [0, len(items)]),
                        shape=(1, n_items))
    row.sum_duplicates()
    n_u = max(1, row.nnz)
    for _ in range(int(local_epochs)):
        x = solve_users(row, Yl, regularization, alpha).astype(np.float64)
        e = data_gradient(Yl, x, row, alpha)[0]
        grad = (2.0 / n_u) * np.outer(e, x[0])
        if proximal_mu:
            grad += proximal_mu * (Yl - Y0)
        Yl -= learning_rate * grad
    x = solve_users(row, Yl, regularization, alpha)[0]
    return (Yl - Y0).astype(np.float32), x


def batch_updates(Y: np.ndarray, P: sp.csr_matrix, *, regularization: float, alpha: float,
                  learning_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`client_update` with one local epoch for many clients at once (no FedProx).

    The update of client ``u`` is the rank-one ``-learning_rate * (2 / n_u) e_u x_u^T``, so it
    is returned factored rather than as ``n`` dense matrices.

    Returns
    -------
    E : ndarray (n, n_items)
        Residuals ``e_u``.
    X : ndarray (n, f)
        User vectors ``x_u``.
    coef : ndarray (n,)
        ``-learning_rate * 2 / n_u``: client ``u``'s update is ``coef[u] * outer(E[u], X[u])``
        and its Frobenius norm ``|coef[u]| |E[u]| |X[u]|``.
    """
    P = sp.csr_matrix(P)
    X = solve_users(P, Y, regularization, alpha).astype(np.float64)
    E = data_gradient(Y, X, P, alpha)
    n_u = np.maximum(1, np.diff(P.indptr)).astype(np.float64)
    coef = -float(learning_rate) * 2.0 / n_u
    return E, X, coef


class FedMF(Recommender):
    """Implicit-feedback matrix factorisation with global item and local user factors.

    Parameters
    ----------
    factors : int, default 32
        Length ``f`` of the user and item vectors.
    regularization : float, default 20.0
        L2 penalty ``lambda`` (>= 0) on both factor matrices, in ALS units (not scaled by the
        number of interactions).
    alpha : float, default 2.0
        Confidence scale (> 0): an observed pair of weight ``r`` has confidence ``1 + alpha r``.
    iterations : int, default 15
        Alternating sweeps of the centralised fit.
    init_scale : float, default 0.01
        Standard deviation of the random initial item factors (shared by both trainings).
    random_state : int or None, default None
        Seed of the initial item factors.

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, factors)
        Solved from each training user's history against ``item_factors_`` (in a federated
        deployment these live on the clients; the server's copy is the fold-in of whatever
        histories it holds, zeros otherwise).
    item_factors_ : ndarray of float32, shape (n_items, factors)
    training_ : dict
        How the item factors were trained: ``{"mode": "centralised"|"federated", ...}``.
    privacy_ : dict or None
        The spent differential-privacy budget (``epsilon``, ``delta``, ``noise_multiplier``,
        ``clip_norm``, ``rounds``, ``sampling_rate``, ``accountant``), None when not private.
    """

    name = "fedmf"
    scores_histories = True

    user_factors_: np.ndarray
    item_factors_: np.ndarray
    training_: dict[str, Any] | None
    privacy_: dict[str, Any] | None

    def __init__(self, factors: int = 32, regularization: float = 20.0, alpha: float = 2.0,
                 iterations: int = 15, init_scale: float = 0.01,
                 random_state: int | None = None) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.init_scale = init_scale
        self.random_state = random_state

    def _validate_params(self) -> None:
        check_int("FedMF", "factors", self.factors, 1)
        check_float("FedMF", "regularization", self.regularization, strict=False)
        check_float("FedMF", "alpha", self.alpha, strict=True)
        check_int("FedMF", "iterations", self.iterations, 1)
        check_float("FedMF", "init_scale", self.init_scale, strict=True)
        check_random_state("FedMF", self.random_state)

    def initial_item_factors(self, n_items: int) -> np.ndarray:
        """The seeded starting point of both trainings: N(0, init_scale^2), (n_items, f)."""
        self._validate_params()
        rng = np.random.default_rng(self.random_state)
        return (rng.standard_normal((n_items, int(self.factors))) * self.init_scale
                ).astype(np.float32)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        Y = self.initial_item_factors(X.shape[1])
        XT = X.T.tocsr()
        lam, alpha = float(self.regularization), float(self.alpha)
        for _ in range(int(self.iterations)):
            U = solve_users(X, Y, lam, alpha)
            Y = solve_users(XT, U, lam, alpha)
        self.item_factors_ = Y
        self.user_factors_ = solve_users(X, Y, lam, alpha)
        self.training_ = {"mode": "centralised", "iterations": int(self.iterations)}
        self.privacy_ = None

    @classmethod
    def from_item_factors(cls, item_factors: np.ndarray, X: sp.csr_matrix | None = None, *,
                          params: Mapping[str, Any] | None = None,
                          training: Mapping[str, Any] | None = None,
                          privacy: Mapping[str, Any] | None = None,
                          n_users: int | None = None) -> FedMF:
        """A fitted model from trained (e.g. federated) item factors.

        Parameters
        ----------
        item_factors : ndarray, shape (n_items, f)
        X : csr_matrix (n_users, n_items), optional
            The histories the server holds, folded in as ``user_factors_`` and excluded at
            recommendation time. None: an empty matrix of ``n_users`` rows (default 0): the
            model then serves by history (``recommend(history=...)``) only.
        params : mapping, optional
            Hyper-parameters (``factors`` is taken from ``item_factors``).
        training, privacy : mapping, optional
            Recorded in ``model.json`` (``training_``, ``privacy_``).
        """
        import time

        from personae.models.base import _fingerprint

        Y = np.ascontiguousarray(item_factors, dtype=np.float32)
        if Y.ndim != 2 or not np.isfinite(Y).all():
            raise InvalidInput(f"item_factors must be a finite 2-d array, got shape {Y.shape}")
        model = cls(**{**dict(params or {}), "factors": int(Y.shape[1])})
        model._validate_params()
        if X is None:
            X = sp.csr_matrix((int(n_users or 0), Y.shape[0]), dtype=np.float32)
        X = sp.csr_matrix(X, dtype=np.float32)
        if X.shape[1] != Y.shape[0]:
            raise InvalidInput(f"X has {X.shape[1]} item columns but item_factors has "
                               f"{Y.shape[0]} rows")
        started = time.perf_counter()
        model.n_users_, model.n_items_ = X.shape
        model.user_items_ = X
        model.fingerprint_ = _fingerprint(X)
        model.item_factors_ = Y
        model.user_factors_ = solve_users(X, Y, float(model.regularization), float(model.alpha))
        model.training_ = dict(training or {"mode": "federated"})
        model.privacy_ = None if privacy is None else dict(privacy)
        seconds = model.training_.get("seconds", time.perf_counter() - started)
        model.fit_seconds_ = float(seconds)
        return model

    # ------------------------------------------------------------------ scoring

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """User vectors for histories (n, n_items): the ALS user step, as a client computes it."""
        self._check_fitted()
        return solve_users(sp.csr_matrix(histories), self.item_factors_,
                           float(self.regularization), float(self.alpha))

    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        return self.fold_in(histories) @ self.item_factors_.T

    # ------------------------------------------------------------------ persistence

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"user_factors": np.ascontiguousarray(self.user_factors_, dtype=np.float32),
                "item_factors": np.ascontiguousarray(self.item_factors_, dtype=np.float32)}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        U = np.asarray(arrays["user_factors"], dtype=np.float32)
        Y = np.asarray(arrays["item_factors"], dtype=np.float32)
        if U.shape[0] != self.n_users_ or Y.shape[0] != self.n_items_:
            raise InvalidInput(f"saved factors have shapes {U.shape} and {Y.shape}, expected "
                               f"{self.n_users_} users and {self.n_items_} items")
        self.user_factors_, self.item_factors_ = U, Y

    def _get_meta(self) -> dict[str, Any]:
        return {"training": getattr(self, "training_", None),
                "privacy": getattr(self, "privacy_", None)}

    def _set_meta(self, meta: Mapping[str, Any]) -> None:
        self.training_ = meta.get("training")
        self.privacy_ = meta.get("privacy")


def forget_user_state(path: Any, users: np.ndarray | list[int]) -> Any:
    """Remove ``users``' per-user state from a saved ``fedmf`` artifact folder, in place.

    Loads the model at ``path``, zeroes the users' factors and training rows
    (:meth:`Recommender.forget_users`) and saves it back; returns the folder. For deletion requests:
    the item factors still carry the users' past (clipped) contribution until a retrain.
    """
    model = FedMF.load(path)
    model.forget_users(users)
    return model.save(path)
