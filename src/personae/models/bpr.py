"""BPR: Bayesian personalised ranking (Rendle et al. 2009) through ``implicit``.

Fitting runs ``implicit.cpu.bpr.BayesianPersonalizedRanking`` (the CPU backend, chosen
explicitly so that a machine with CUDA gives the same factors): SGD on the pairwise loss
``-log sigmoid(x_u . y_i - x_u . y_j)`` over (user, seen item i, unseen item j) triples.
Scores are ``user_factors_ @ item_factors_.T``.

BPR has no closed-form user step, so it does **not** score histories unseen at fit time
(``scores_histories = False``): a new user is served by a fold-in model (ALS, EASE,
item-kNN) or by popularity until the next fit.

Needs the ``models`` extra: ``pip install 'personae[models]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from personae.models._implicit import (
    FactorModel,
    check_float,
    import_implicit,
    single_threaded_blas,
)


class BPR(FactorModel):
    """Bayesian personalised ranking by SGD, with an item bias.

    Parameters
    ----------
    factors : int, default 64
        Length ``f`` of the user and item vectors. ``implicit`` appends one more column for
        an item bias, so the learned factors have ``f + 1`` columns.
    learning_rate : float, default 0.01
        SGD step size (> 0).
    regularization : float, default 0.01
        L2 penalty (>= 0) on the factors of each sampled triple.
    iterations : int, default 100
        Epochs: each samples as many triples as the training matrix has entries.
    random_state : int or None, default None
        Seed of the initial factors and of the triple sampling. Two fits with the same seed
        give identical factors when training runs on one thread (see ``num_threads``).
    num_threads : int, default 0
        Threads of ``implicit``'s SGD. Its threads update shared factors without locks
        (Hogwild), so with more than one thread the result depends on timing. 0 means: one
        thread when ``random_state`` is set (reproducible), all cores otherwise. An explicit
        value is used as given.

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, factors + 1)
        The last column is 1.
    item_factors_ : ndarray of float32, shape (n_items, factors + 1)
        The last column is the item bias.
    """

    name = "bpr"
    scores_histories = False

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int | None = None,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _validate_params(self) -> None:
        super()._validate_params()
        check_float("BPR", "learning_rate", self.learning_rate, strict=True)

    def _threads(self) -> int:
        """Threads to train on (see ``num_threads``)."""
        if self.num_threads == 0 and self.random_state is not None:
            return 1
        return int(self.num_threads)

    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        bpr = import_implicit("implicit.cpu.bpr")
        with single_threaded_blas():
            backend = bpr.BayesianPersonalizedRanking(
                factors=int(self.factors),
                learning_rate=float(self.learning_rate),
                regularization=float(self.regularization),
                dtype=np.float32,
                iterations=int(self.iterations),
                num_threads=self._threads(),
                random_state=None if self.random_state is None else int(self.random_state),
            )
            backend.fit(X, show_progress=False)
        self._store_factors(backend)
