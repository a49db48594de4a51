"""``cornac`` models: EASE, BPR, VAECF (CPU).

cornac keeps its own id maps (raw id → internal index, in order of first appearance). The
adapters hand it a ``cornac.data.Dataset`` whose maps are the identity over *all* users and
items of the training matrix (``uid_map[u] == u``), so cornac's internal indices are ours and
users or items without training data keep their rows (with cornac's initial/zero parameters).
:func:`_dataset` checks the identity before any model sees it.

Scoring reads the fitted parameters and computes, for a batch of users at once, what cornac's
per-user ``score(user_idx)`` returns (a Python loop over users in cornac itself).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import SEED, PeerModel, default_threads


def _dataset(X: sp.csr_matrix, seed: int) -> Any:
    """A cornac Dataset over ``X`` (users × items) whose internal indices equal ours."""
    from cornac.data import Dataset

    coo = X.tocoo()
    uid_map = OrderedDict((u, u) for u in range(X.shape[0]))
    iid_map = OrderedDict((i, i) for i in range(X.shape[1]))
    data = Dataset(
        num_users=X.shape[0], num_items=X.shape[1], uid_map=uid_map, iid_map=iid_map,
        uir_tuple=(coo.row.astype(np.int64), coo.col.astype(np.int64),
                   coo.data.astype(np.float64)),
        seed=seed,
    )
    M = data.matrix
    if M.shape != X.shape or (M != X).nnz:
        raise AssertionError("cornac's matrix differs from the training matrix: index mismatch")
    return data


class _Cornac(PeerModel):
    library = "cornac"
    modules = ("cornac.data", "cornac.models")

    def _model(self) -> Any:
        raise NotImplementedError

    def _fit(self, X: sp.csr_matrix) -> None:
        self.model_ = self._model()
        self.model_.fit(_dataset(X, self._params.get("seed", SEED)))


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for a block, then restored.

    On a busy machine OpenMP threads that outnumber the free cores make small torch models
    many times slower (one thread beat two by 20x for VAECF's layer sizes on a loaded 2-core
    box), hence an explicit count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class EASE(_Cornac):
    """cornac ``EASE`` (``EASEᴿ``): closed form in float64; ``posB`` clips negative weights."""

    name = "cornac.ease"
    defaults = {"lamb": 500, "posB": True}
    grid = {"lamb": [100, 250, 500, 1000], "posB": [True, False]}

    def __init__(self, lamb: float = 500.0, posB: bool = True, seed: int = SEED) -> None:
        super().__init__(lamb=lamb, posB=posB, seed=seed)

    def _model(self) -> Any:
        from cornac.models import EASE as CornacEASE

        p = self._params
        return CornacEASE(lamb=p["lamb"], posB=p["posB"], seed=p["seed"], verbose=False)

    def _score(self, users: np.ndarray) -> np.ndarray:
        # cornac: self.U[user_idx, :].dot(self.B), U being the training matrix
        return np.asarray(self.model_.U[users] @ self.model_.B)


class BPR(_Cornac):
    """cornac ``BPR`` (Cython SGD, item bias). With a seed cornac trains on one thread."""

    name = "cornac.bpr"
    defaults = {"k": 10, "max_iter": 100, "learning_rate": 0.001, "lambda_reg": 0.01}
    grid = {"k": [64, 128], "learning_rate": [0.01, 0.05], "lambda_reg": [0.001, 0.01]}

    def __init__(self, k: int = 64, max_iter: int = 100, learning_rate: float = 0.01,
                 lambda_reg: float = 0.01, seed: int = SEED) -> None:
        super().__init__(k=k, max_iter=max_iter, learning_rate=learning_rate,
                         lambda_reg=lambda_reg, seed=seed)

    def _model(self) -> Any:
        from cornac.models import BPR as CornacBPR

        p = self._params
        return CornacBPR(k=p["k"], max_iter=p["max_iter"], learning_rate=p["learning_rate"],
                         lambda_reg=p["lambda_reg"], seed=p["seed"], verbose=False,
                         num_threads=default_threads())

    def _score(self, users: np.ndarray) -> np.ndarray:
        m = self.model_
        # cornac: i_biases + u_factors[user_idx] · i_factors
        return m.u_factors[users] @ m.i_factors.T + m.i_biases[None, :]


class VAECF(_Cornac):
    """cornac ``VAECF`` (Mult-VAE, torch on CPU)."""

    name = "cornac.vaecf"
    modules = ("torch", "cornac.data", "cornac.models", "cornac.models.vaecf.vaecf")
    defaults = {"k": 10, "autoencoder_structure": [20], "n_epochs": 100, "batch_size": 100,
                "learning_rate": 0.001, "beta": 1.0}
    grid = {"k": [20, 50], "autoencoder_structure": [[200], [600]], "beta": [0.2, 1.0]}

    def __init__(self, k: int = 50, autoencoder_structure: list[int] | None = None,
                 act_fn: str = "tanh", likelihood: str = "mult", n_epochs: int = 100,
                 batch_size: int = 100, learning_rate: float = 0.001, beta: float = 1.0,
                 seed: int = SEED, num_threads: int | None = None) -> None:
        super().__init__(k=k, autoencoder_structure=autoencoder_structure or [200],
                         act_fn=act_fn, likelihood=likelihood, n_epochs=n_epochs,
                         batch_size=batch_size, learning_rate=learning_rate, beta=beta,
                         seed=seed, num_threads=num_threads)

    def _fit(self, X: sp.csr_matrix) -> None:
        with _torch_threads(self._params["num_threads"] or default_threads()):
            super()._fit(X)

    def _model(self) -> Any:
        from cornac.models import VAECF as CornacVAECF

        p = self._params
        return CornacVAECF(k=p["k"], autoencoder_structure=list(p["autoencoder_structure"]),
                           act_fn=p["act_fn"], likelihood=p["likelihood"],
                           n_epochs=p["n_epochs"], batch_size=p["batch_size"],
                           learning_rate=p["learning_rate"], beta=p["beta"],
                           seed=p["seed"], use_gpu=False, verbose=False)

    def _score(self, users: np.ndarray) -> np.ndarray:
        import torch

        m = self.model_
        # cornac: binarise the user's row, encode to the mean, decode
        x = m.r_mat[users].copy()
        x.data = np.ones_like(x.data)
        with _torch_threads(self._params["num_threads"] or default_threads()), torch.no_grad():
            mu, _ = m.vae.encode(torch.tensor(x.toarray(), dtype=torch.float32))
            return m.vae.decode(mu).numpy()
