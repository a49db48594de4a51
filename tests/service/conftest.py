"""A small store with planted tastes: users u0–u19 like the "A" items, u20–u39 the "B" items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personae import Event, Item, Store
from personae.service import Engine

N_PER_GROUP = 10


def populate(store: Store) -> None:
    items = []
    for group in ("A", "B"):
        for n in range(N_PER_GROUP):
            items.append(Item(
                f"{group.lower()}{n}", title=f"{group} item {n}",
                categories=[group, f"{group}{n % 2}"],
                attributes={"price": float(n), "brand": "acme" if n % 2 else "zeta"},
            ))
    store.upsert_items(items)
    rng = np.random.default_rng(0)
    events = []
    t = 1_700_000_000.0
    for u in range(40):
        group = "a" if u < 20 else "b"
        liked = rng.choice(N_PER_GROUP, size=6, replace=False)
        for n in liked:
            t += 1
            events.append(Event(f"u{u}", f"{group}{n}", "click", timestamp=t,
                                event_id=f"e{u}-{n}"))
    store.add_events(events)


@pytest.fixture
def planted(store: Store) -> Store:
    populate(store)
    return store


@pytest.fixture
def engine(planted: Store, tmp_path: Path) -> Engine:
    eng = Engine(planted, tmp_path / "models", refresh_interval=0.0)
    mv = eng.train("ease", {"l2": 1.0}, background=False)
    assert mv.status == "active", mv.message
    yield eng
    eng.close()
