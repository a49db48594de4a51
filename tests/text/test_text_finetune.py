"""Fine-tuning: pairs from sequences, an adapter that learns a planted behaviour the frozen
text space gets wrong, its artifact round trip, and the content model using it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from personae.data.interactions import Interactions  # noqa: E402
from personae.errors import InvalidInput  # noqa: E402
from personae.models.content import Content  # noqa: E402
from personae.text.finetune import Adapter, pairs_from_interactions, train_adapter  # noqa: E402

DIM = 16


def test_pairs_follow_time_order() -> None:
    view = Interactions.from_arrays([0, 0, 0, 1], [2, 0, 1, 3], timestamps=[3.0, 1.0, 2.0, 1.0],
                                    n_items=4)
    pairs = pairs_from_interactions(view)
    hist = [pairs.histories[p].indices.tolist() for p in range(len(pairs))]
    assert list(zip(map(sorted, hist), pairs.targets.tolist(), strict=True)) == \
        [([0], 1), ([0, 1], 2)]
    short = pairs_from_interactions(view, max_history=1)
    assert [short.histories[p].indices.tolist() for p in range(2)] == [[0], [1]]
    with pytest.raises(InvalidInput, match="no user"):
        pairs_from_interactions(view, min_history=5)


def planted() -> tuple[np.ndarray, Interactions]:
    """60 items in 6 topics (text directions 0-5). Users who watch topic t (0-2) next watch
    topic t + 3: behaviour the frozen text space (where t and t + 3 share nothing) misses."""
    rng = np.random.default_rng(0)
    n_items = 60
    topic = np.arange(n_items) % 6
    E = 0.15 * rng.normal(size=(n_items, DIM)).astype(np.float32)
    E[np.arange(n_items), topic] += 1.0
    users, items, ts = [], [], []
    for u in range(240):
        t = u % 3
        first = rng.choice(np.flatnonzero(topic == t), 3, replace=False)
        second = rng.choice(np.flatnonzero(topic == t + 3), 2, replace=False)
        for n, i in enumerate([*first, *second]):
            users.append(u)
            items.append(int(i))
            ts.append(float(n))
    return E, Interactions.from_arrays(users, items, timestamps=ts, n_items=n_items)


def test_adapter_learns_what_the_frozen_encoder_misses(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    E, view = planted()
    pairs = pairs_from_interactions(view, min_history=3, max_pairs_per_user=1)
    ad = train_adapter(E, pairs, encoder="hashing", epochs=40, batch_size=64,
                       learning_rate=1e-2, patience=5)
    info = ad.info
    assert info["best_val_recall@10"] > info["frozen_val_recall@10"] + 0.3
    assert info["best_val_loss"] < info["frozen_val_loss"]
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= 40
    # artifact round trip
    loaded = Adapter.load(ad.save(tmp_path / "adapter"))
    assert loaded.version == ad.version and loaded.encoder == "hashing"
    np.testing.assert_array_equal(loaded.query_map, ad.query_map)
    # the content model with the adapter recommends the planted next topic, without it the same
    history = np.flatnonzero(np.arange(60) % 6 == 0)[:3]  # three topic-0 items
    frozen = Content(encoder="hashing").fit(view, item_embeddings=E)
    tuned = Content(encoder="hashing", adapter=str(tmp_path / "adapter")).fit(
        view, item_embeddings=E)
    top_frozen = frozen.recommend(history=history, k=5).items % 6
    top_tuned = tuned.recommend(history=history, k=5).items % 6
    assert (top_frozen == 0).all() and (top_tuned == 3).all()
    with pytest.raises(InvalidInput, match="encoder"):
        Content(encoder="minilm", adapter=str(tmp_path / "adapter")).fit(view, item_embeddings=E)
    # the artifact carries the adapter: it loads without the adapter folder
    folder = tuned.save(tmp_path / "model")
    (tmp_path / "adapter" / "adapter.npz").unlink()
    again = Content.load(folder)
    np.testing.assert_allclose(again.score_history(history), tuned.score_history(history))
