"""Content: the conformance suite on planted text vectors, rating weighting, time decay."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from personae.data.interactions import Interactions
from personae.models.content import Content, decay_weights

from .conformance import N_ITEMS, ModelConformance


def planted_vectors(n_items: int = N_ITEMS, dim: int = 40) -> np.ndarray:
    """Item ``i``'s text vector: its parity direction plus a small direction of its own, so
    that even items read alike, odd items read alike, and the two groups share nothing."""
    E = np.zeros((n_items, dim), dtype=np.float32)
    E[np.arange(n_items), np.arange(n_items) % 2] = 1.0
    E[np.arange(n_items), 2 + np.arange(n_items) % (dim - 2)] += 0.3
    return E


class TestContent(ModelConformance):
    invalid_params = [("max_sim", 1.5), ("half_life_days", 0.0), ("encoder", "nope"),
                      ("rating_offset", "3"), ("embeddings_dir", 5)]

    def make_model(self, **params: Any) -> Content:
        return Content(**{"encoder": "hashing", **params})

    def fit_model(self, model: Any, data: Any) -> Any:
        return model.fit(data, item_embeddings=planted_vectors())


class TestContentMaxSim(TestContent):
    def make_model(self, **params: Any) -> Content:
        return Content(**{"encoder": "hashing", "max_sim": 0.5, "half_life_days": 30.0,
                          **params})


def test_new_items_without_events_are_scored_from_text() -> None:
    # items 0-3 have events; 4 (like 0 and 2) and 5 (like 1 and 3) have none
    E = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1], [1, 0.05], [0.05, 1]], np.float32)
    view = Interactions.from_arrays([0, 0, 1, 1], [0, 2, 1, 3], n_items=6)
    model = Content(encoder="hashing").fit(view, item_embeddings=E)
    assert model.recommend(0, k=1).items.tolist() == [4]
    assert model.recommend(1, k=1).items.tolist() == [5]
    # and a brand-new user by fold-in
    assert model.recommend(history=[3], k=1).items.tolist() == [5]


def test_rating_offset_makes_disliked_items_push_away() -> None:
    # user 0 rated item 0 (direction a) 5 stars and item 1 (direction b) 1 star
    E = np.array([[1, 0, 0], [0, 1, 0], [0.9, 0, 0.1], [0, 0.9, 0.1]], np.float32)
    view = Interactions.from_arrays([0, 0], [0, 1], values=[5.0, 1.0], n_items=4)
    plain = Content(encoder="hashing").fit(view, item_embeddings=E)
    rated = Content(encoder="hashing", rating_offset=3.0).fit(view, item_embeddings=E)
    s_plain, s_rated = plain.score_users([0])[0], rated.score_users([0])[0]
    assert s_plain[2] == pytest.approx(s_plain[3], abs=1e-6)  # the centroid sits between
    assert s_rated[2] > 0.5 > 0 > s_rated[3]
    np.testing.assert_allclose(rated.weights_.toarray()[0, :2], [2.0, -2.0])


def test_half_life_weighs_recent_events_more() -> None:
    day = 86400.0
    E = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1]], np.float32)
    # item 0 watched 60 days before item 1
    view = Interactions.from_arrays([0, 0], [0, 1], timestamps=[0.0 + day, 61 * day],
                                    n_items=4)
    model = Content(encoder="hashing", half_life_days=30.0).fit(view, item_embeddings=E)
    np.testing.assert_allclose(model.weights_.toarray()[0, :2], [0.25, 1.0], rtol=1e-5)
    assert model.recommend(0, k=1).items.tolist() == [3]
    np.testing.assert_allclose(decay_weights(np.array([0.0, 30 * day]), 30 * day, 30.0),
                               [0.5, 1.0])


def test_without_vectors_fit_says_how_to_get_them() -> None:
    view = Interactions.from_arrays([0], [0], n_items=2)
    with pytest.raises(ValueError, match="item_embeddings"):
        Content(encoder="hashing").fit(view)
    with pytest.raises(ValueError, match="shape"):
        Content(encoder="hashing").fit(view, item_embeddings=np.zeros((3, 4)))
