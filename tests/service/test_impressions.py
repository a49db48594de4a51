"""Impressions are queued and stored in batches off the request path (both backends): a list
is usable for paging and rewards at once, in this process and in another one, and nothing
queued is lost on close."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from personae import NotFound, Store
from personae.service import Engine, RecommendRequest


def _engine(store: Store, tmp_path: Path, **kw: object) -> Engine:
    return Engine(store, tmp_path / "models", refresh_interval=0.0, **kw)  # type: ignore[arg-type]


def test_a_queued_list_pages_and_takes_rewards_at_once(engine: Engine, tmp_path: Path) -> None:
    slow = _engine(engine.store, tmp_path, impression_interval=60.0)  # nothing written by time
    try:
        first = slow.recommend(RecommendRequest("u1", k=2))
        with pytest.raises(NotFound):  # still queued: the request did not write it
            slow.store.get_recommendation(first.rec_id)
        second = slow.recommend(RecommendRequest("u1", k=2, after=first.rec_id))
        assert second.page == 2 and not set(first.item_ids) & set(second.item_ids)
        third = slow.recommend(RecommendRequest("u1", k=2, after=second.rec_id))
        assert third.page == 3
        assert not (set(first.item_ids) | set(second.item_ids)) & set(third.item_ids)
        event_id = slow.reward(second.rec_id, second.item_ids[0], 1.0)
        assert [e for e in slow.store.user_events("u1") if e.event_id == event_id]
    finally:
        slow.close()
    for res in (first, second, third):  # close() wrote the queue
        assert slow.store.get_recommendation(res.rec_id).items == res.item_ids
    assert slow.store.get_recommendation(third.rec_id).parent_rec_id == second.rec_id


def test_nothing_queued_is_lost_on_close(engine: Engine, tmp_path: Path) -> None:
    slow = _engine(engine.store, tmp_path, impression_interval=60.0)
    # 300 lists: more than one batch (256, written at once by the thread), and a rest
    ids = [slow.recommend(RecommendRequest(f"u{n % 40}", k=3)).rec_id for n in range(300)]
    ids += [slow.rank("u3", ["a1", "b1"]).rec_id, slow.similar("a1", k=2).rec_id]
    slow.close()
    for rec_id in ids:
        slow.store.get_recommendation(rec_id)


def test_the_writer_thread_stores_lists_within_its_interval(engine: Engine) -> None:
    res = engine.recommend(RecommendRequest("u1", k=3))
    deadline = time.monotonic() + 5.0
    while True:  # no flush(): the background thread writes it (interval 0.05 s)
        try:
            assert engine.store.get_recommendation(res.rec_id).items == res.item_ids
            break
        except NotFound:
            assert time.monotonic() < deadline, "the queued list was never written"
            time.sleep(0.01)


def test_a_list_of_another_process_is_waited_for(
        engine: Engine, make_store: Callable[..., Store], tmp_path: Path) -> None:
    """Two workers: the list one issued is found by the other while it is still queued
    there (the second polls the store for up to 0.2 s)."""
    worker = _engine(make_store(), tmp_path, impression_interval=0.1)
    try:
        res = worker.recommend(RecommendRequest("u1", k=2))
        started = time.monotonic()
        page = engine.recommend(RecommendRequest("u1", k=2, after=res.rec_id))
        assert page.page == 2 and not set(page.item_ids) & set(res.item_ids)
        assert time.monotonic() - started < 1.0
        engine.reward(res.rec_id, res.item_ids[0], 1.0)
    finally:
        worker.close()


def test_an_unknown_rec_id_is_waited_for_only_when_it_is_new(engine: Engine) -> None:
    """Regression: every unknown id used to cost the full 0.2 s wait (a blocked worker). The
    id carries its issue time: a fresh unknown id is waited for, an old or foreign one not."""
    from personae.store.serving import new_rec_id, rec_id_time

    fresh = new_rec_id()
    assert abs(rec_id_time(fresh) - time.time()) < 1.0  # type: ignore[operator]
    started = time.monotonic()
    with pytest.raises(NotFound, match=fresh):
        engine.recommend(RecommendRequest("u1", after=fresh))
    assert 0.15 <= time.monotonic() - started < 2.0
    for old in ("r_nope", new_rec_id(time.time() - 3600)):
        started = time.monotonic()
        with pytest.raises(NotFound, match=old):
            engine.recommend(RecommendRequest("u1", after=old))
        assert time.monotonic() - started < 0.1
        with pytest.raises(NotFound, match=old):
            engine.reward(old, "a1", 1.0)


def test_lists_of_a_user_forgotten_before_the_write_are_dropped(
        engine: Engine, tmp_path: Path) -> None:
    slow = _engine(engine.store, tmp_path, impression_interval=60.0)
    gone = slow.recommend(RecommendRequest("u1", k=2))
    kept = slow.recommend(RecommendRequest("u2", k=2))
    slow.store.forget_user("u1")
    slow.close()
    with pytest.raises(NotFound):
        slow.store.get_recommendation(gone.rec_id)
    assert slow.store.get_recommendation(kept.rec_id).items == kept.item_ids


def test_interval_zero_writes_in_the_request(engine: Engine, tmp_path: Path) -> None:
    sync = _engine(engine.store, tmp_path, impression_interval=0)
    res = sync.recommend(RecommendRequest("u1", k=2))
    assert sync.store.get_recommendation(res.rec_id).items == res.item_ids
    sync.close()


def test_an_idle_writer_thread_ends_and_a_new_list_restarts_it(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from personae.service import impressions

    monkeypatch.setattr(impressions, "IDLE_EXIT", 0.05)
    fast = _engine(engine.store, tmp_path, impression_interval=0.01)
    log = fast._impressions
    try:
        first = fast.recommend(RecommendRequest("u1", k=2))
        thread = log._thread
        assert thread is not None
        thread.join(5.0)
        assert not thread.is_alive() and log._thread is None  # wrote, idled, ended
        fast.store.get_recommendation(first.rec_id)
        second = fast.recommend(RecommendRequest("u1", k=2, after=first.rec_id))
        assert log._thread is not None and log._thread is not thread
    finally:
        fast.close()
    assert fast.store.get_recommendation(second.rec_id).parent_rec_id == first.rec_id
