"""``lightfm`` WARP (no side features: identity features, so rows and columns are ours)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import SEED, PeerModel, default_threads


class WARP(PeerModel):
    """lightfm ``LightFM(loss="warp")``, fitted on the binarised training matrix.

    Training is Hogwild SGD: with more than one thread it is not bit-for-bit repeatable even
    with ``random_state`` fixed; pass ``num_threads=1`` for that.
    """

    name = "lightfm.warp"
    library = "lightfm"
    modules = ("lightfm",)
    defaults = {"no_components": 10, "learning_rate": 0.05, "item_alpha": 0.0,
                "user_alpha": 0.0, "max_sampled": 10, "epochs": 1}
    grid = {"no_components": [64, 128], "learning_rate": [0.02, 0.05],
            "item_alpha": [0.0, 1e-6], "epochs": [30, 60]}

    def __init__(self, no_components: int = 64, learning_rate: float = 0.05,
                 item_alpha: float = 0.0, user_alpha: float = 0.0, max_sampled: int = 10,
                 epochs: int = 30, random_state: int = SEED,
                 num_threads: int | None = None) -> None:
        super().__init__(no_components=no_components, learning_rate=learning_rate,
                         item_alpha=item_alpha, user_alpha=user_alpha,
                         max_sampled=max_sampled, epochs=epochs, random_state=random_state,
                         num_threads=num_threads)

    def _fit(self, X: sp.csr_matrix) -> None:
        from lightfm import LightFM

        p = self._params
        self.model_: Any = LightFM(
            no_components=p["no_components"], loss="warp", learning_rate=p["learning_rate"],
            item_alpha=p["item_alpha"], user_alpha=p["user_alpha"],
            max_sampled=p["max_sampled"], random_state=p["random_state"],
        )
        B = X.tocoo()
        B.data = np.ones_like(B.data)
        self.model_.fit(B, epochs=p["epochs"], num_threads=p["num_threads"] or default_threads())
        u_bias, u_emb = self.model_.get_user_representations()
        i_bias, i_emb = self.model_.get_item_representations()
        self.user_embeddings_, self.user_biases_ = u_emb, u_bias
        self.item_embeddings_, self.item_biases_ = i_emb, i_bias

    def _score(self, users: np.ndarray) -> np.ndarray:
        # lightfm.predict(u, i) = u_emb·i_emb + u_bias + i_bias, for all items at once
        return (self.user_embeddings_[users] @ self.item_embeddings_.T
                + self.item_biases_[None, :] + self.user_biases_[users, None])
