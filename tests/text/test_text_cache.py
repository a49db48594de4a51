"""The embedding cache: computed once per text version, refreshed when the text changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personae.data.interactions import Interactions
from personae.errors import InvalidInput
from personae.models.content import Content
from personae.store import Item, Store
from personae.text.cache import EmbeddingCache
from personae.text.encoders import HashingEncoder, item_document


class CountingEncoder(HashingEncoder):
    """The hashing encoder, counting the texts it is asked to embed."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__(dim=dim)
        self.seen: list[str] = []

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        return super()._encode_batch(texts)


def test_computed_once_refreshed_on_change(tmp_path: Path) -> None:
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path, enc)
    ids, texts = ["a", "b", "c"], ["space aliens", "old western", "space aliens"]
    first = cache.update(ids, texts)
    assert (first.n_computed, first.n_reused, first.n_items) == (2, 0, 3)
    assert enc.seen == ["space aliens", "old western"], "one text, one computation"
    E, found = cache.lookup(["c", "b", "zzz"])
    assert found.tolist() == [True, True, False] and not E[2].any()
    np.testing.assert_allclose(E[:2], HashingEncoder(dim=32).encode(["space aliens",
                                                                     "old western"]))
    # unchanged: nothing recomputed, also by a new cache object reading the files
    enc.seen.clear()
    again = EmbeddingCache(tmp_path, enc).update(ids, texts)
    assert (again.n_computed, again.n_reused) == (0, 3) and enc.seen == []
    # b's text changes: only b is embedded again, and its vector follows the new text
    changed = EmbeddingCache(tmp_path, enc).update(ids, ["space aliens", "romantic comedy",
                                                         "space aliens"])
    assert (changed.n_computed, changed.n_reused) == (1, 2) and enc.seen == ["romantic comedy"]
    b_new = EmbeddingCache(tmp_path, enc).lookup(["b"])[0][0]
    np.testing.assert_allclose(b_new, HashingEncoder(dim=32).encode(["romantic comedy"])[0])
    # another encoder version never mixes with this one
    other = EmbeddingCache(tmp_path, HashingEncoder(dim=16))
    assert other.path != cache.path and len(other) == 0


def test_prune_and_partial_updates(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, HashingEncoder(dim=16))
    cache.update(["a", "b"], ["one", "two"])
    cache.update(["c"], ["three"])  # a partial update keeps the others
    assert len(cache) == 3
    report = cache.update(["a", "c"], ["one", "three"], prune=True)
    assert report.n_removed == 1 and "b" not in cache and len(cache) == 2
    with pytest.raises(InvalidInput, match="same length"):
        cache.update(["a"], ["x", "y"])
    with pytest.raises(InvalidInput, match="unique"):
        cache.update(["a", "a"], ["x", "y"])


def test_from_store_and_content_model_reads_it(tmp_path: Path) -> None:
    with Store(tmp_path / "store.db") as store:
        store.upsert_items([
            Item("m1", title="Alien", text="space aliens attack a spaceship crew"),
            Item("m2", title="Stagecoach", text="an old western with cowboys"),
            Item("m3", title="Galaxy", text="space aliens and a spaceship adventure"),
            Item("m4", title="No text"),
        ])
        store.add_events([{"user_id": "u", "item_id": "m1", "type": "view"}])
        cache = EmbeddingCache(tmp_path / "emb", "hashing", dim=64)
        first = cache.update_from_store(store)
        assert (first.n_items, first.n_computed) == (4, 4)
        assert cache.text_hashes(["m1"])[0] is not None
        view = Interactions.from_store(store)
        model = Content(encoder="hashing", embeddings_dir=str(tmp_path / "emb"))
        # the model's encoder is get_encoder("hashing") (dim 256): no file for it yet
        with pytest.raises(InvalidInput, match="personae text embed"):
            model.fit(view)
        EmbeddingCache(tmp_path / "emb", "hashing").update_from_store(store)
        model.fit(view)
        u = view.user_index("u")
        top = view.item_ids[model.recommend(u, k=1).items[0]]
        assert top == "m3"
        # the text of m2 changes: the next update embeds only m2
        store.upsert_items([Item("m2", title="Stagecoach",
                                 text="space aliens in a spaceship, in the old west")])
        report = EmbeddingCache(tmp_path / "emb", "hashing").update_from_store(store)
        assert (report.n_computed, report.n_reused) == (1, 3)
        assert item_document(store.get_item("m2")).endswith("in the old west")


def test_content_from_the_registry_inside_a_blend(tmp_path: Path) -> None:
    """By name and JSON parameters only (as the engine trains it), alone and blended."""
    from personae.models import create
    from personae.models.blend import Blend

    texts = {"a": "space aliens spaceship", "b": "space aliens galaxy", "c": "old western",
             "d": "old western cowboys"}
    EmbeddingCache(tmp_path, "hashing").update(list(texts), list(texts.values()))
    view = Interactions.from_arrays([0, 1, 1], [0, 2, 3], item_ids=list(texts))
    params = {"encoder": "hashing", "embeddings_dir": str(tmp_path)}
    alone = create("content", **params).fit(view)
    assert view.item_ids[alone.recommend(0, k=1).items[0]] == "b"
    blend = Blend([("content", params), ("popularity", {})], weights=[0.9, 0.1]).fit(view)
    assert view.item_ids[blend.recommend(0, k=1).items[0]] == "b"
    loaded = type(alone).load(alone.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.score_users([0, 1]), alone.score_users([0, 1]))
