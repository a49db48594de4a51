"""personae.client (sync and async) against the same real server as test_api.py."""

from __future__ import annotations

import asyncio

import pytest

from personae import Event, InvalidInput, Item, NotFound, User
from personae.client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    ModelList,
    NotFoundError,
    PersonaeHTTPError,
    Recommendations,
    Unauthorized,
    ValidationError,
    WriteResult,
)
from personae.store.serving import ModelVersion

from .live import LiveServer


def test_sync_client_covers_the_api(live: LiveServer, trained: str) -> None:
    with Client(live.url, api_key=live.keys["admin"]) as api:
        assert api.health() is True
        ready = api.ready()
        assert ready.ready and ready.model_version == trained
        assert api.put_user("cl-ann", {"age": 41}) == WriteResult(inserted=1)
        assert api.put_users([User("cl-ben"), {"user_id": "cl-ann", "attributes": {}}]) == \
            WriteResult(inserted=1, updated=1)
        user = api.get_user("cl-ann")
        assert isinstance(user, User) and user.attributes == {}
        assert api.put_item(Item("cl-sku", "Lamp", categories=["even"])).inserted == 1
        assert api.put_items([{"item_id": "cl-sku2", "title": "Desk"}]).inserted == 1
        item = api.get_item("cl-sku")
        assert isinstance(item, Item) and item.title == "Lamp" and item.available
        api.delete_item("cl-sku2")
        assert api.get_item("cl-sku2").available is False
        res = api.send_events([Event("cl-ann", "i00", "click", event_id="cl-e1"),
                               {"user_id": "cl-ann", "item_id": "i02", "type": "like"}])
        assert res == WriteResult(inserted=2)
        assert api.send_events([Event("cl-ann", "i00", "click", event_id="cl-e1")]) == \
            WriteResult(duplicates=1)

        recs = api.recommend("cl-ann", k=4, context={"device": "mobile"}, explain=True)
        assert isinstance(recs, Recommendations) and recs.strategy == "fold-in"
        assert len(recs.items) == 4 and recs.items[0].rank == 1 and recs.items[0].reasons
        assert not {"i00", "i02"} & set(recs.item_ids)
        nxt = api.recommend("cl-ann", k=4, after=recs.rec_id)
        assert nxt.page == 2 and not set(nxt.item_ids) & set(recs.item_ids)
        only_odd = api.recommend("cl-ann", k=3, filters={"categories": ["odd"]})
        assert all(int(i[1:]) % 2 == 1 for i in only_odd.item_ids)
        session = api.recommend(session_items=["i00", "i02"], k=3)
        assert session.strategy == "session" and session.user_id is None

        sim = api.similar("i00", k=3)
        assert sim.strategy == "similar" and "i00" not in sim.item_ids
        assert api.similar("i00", k=3, categories=["odd"]).item_ids
        ranked = api.rank(["i01", "i04", "i06"], "cl-ann", context={"hour": 21}, k=2)
        assert len(ranked.items) == 2 and set(ranked.item_ids) <= {"i04", "i06"}
        event_id = api.reward(ranked.rec_id, ranked.item_ids[0], 1.0)
        assert event_id and api.reward(ranked.rec_id, ranked.item_ids[0], 1.0) == event_id

        profile = api.profile("cl-ann")
        assert profile["user_id"] == "cl-ann" and profile["n_events"] >= 2
        said = api.correct_profile("cl-ann", likes=["odd"], note="short films")
        assert said["corrections"] == {"likes": ["odd"], "note": "short films"}
        assert "short films" in api.text_profile("cl-ann")["text"]
        assert api.delete_text_profile("cl-ann")["text"] == ""
        export = api.export_user("cl-ann")
        assert {e["event_id"] for e in export["events"]} >= {"cl-e1", event_id}

        models = api.models()
        assert isinstance(models, ModelList) and models.active == trained
        assert all(isinstance(v, ModelVersion) for v in models.versions)
        assert any(v.version == trained and v.status == "active" for v in models.versions)
        with pytest.raises(NotFoundError):
            api.activate("v-missing")

        deleted = api.forget_user("cl-ann")
        assert deleted["users"] == 1 and deleted["events"] >= 2
        with pytest.raises(NotFoundError) as info:
            api.get_user("cl-ann")
        assert info.value.status == 404 and "cl-ann" in info.value.message


def test_client_exceptions_carry_the_servers_message(live: LiveServer) -> None:
    with Client(live.url) as anonymous, pytest.raises(Unauthorized) as info:
        anonymous.get_user("u00")
    assert info.value.status == 401 and "API key" in info.value.message
    with Client(live.url, api_key=live.keys["revoked"]) as revoked, \
            pytest.raises(Unauthorized, match="revoked"):
        revoked.get_user("u00")
    with Client(live.url, api_key=live.keys["reader"]) as reader:
        with pytest.raises(Forbidden, match="needs the 'writer' role"):
            reader.send_events([Event("u00", "i00")])
        with pytest.raises(ValidationError) as bad:
            reader.recommend("u00", k=0)
        assert bad.value.field == "k" and bad.value.status == 422
        assert isinstance(bad.value, InvalidInput)  # except ValueError works too
        with pytest.raises(NotFound):  # NotFoundError is a personae NotFound (a KeyError)
            reader.get_item("no-such-item")
    with Client(live.url, api_key=live.keys["writer"]) as writer:
        with pytest.raises(ValidationError) as bad:
            writer.send_events([{"user_id": "u00", "item_id": "i00", "timestamp": 1e13}])
        assert bad.value.field == "events[0].timestamp"
        with pytest.raises(ValidationError) as big:  # over --max-batch 500
            writer.send_events([Event("cl-big", "i00", event_id=f"b{n}") for n in range(501)])
        assert big.value.field == "events"
        writer.put_user("cl-forgotten")
        with Client(live.url, api_key=live.keys["admin"]) as admin:
            admin.forget_user("cl-forgotten")
        with pytest.raises(Conflict) as conflict:
            writer.put_user("cl-forgotten")
        assert conflict.value.status == 409 and conflict.value.field == "user_id"
        assert isinstance(conflict.value, PersonaeHTTPError)


def test_async_client(live: LiveServer, trained: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(live.url, api_key=live.keys["writer"]) as api:
            assert await api.health()
            assert (await api.ready()).ready
            res = await api.send_events([Event("as-1", "i01", "click"),
                                         Event("as-1", "i03", "click")])
            assert res.inserted == 2
            many = await asyncio.gather(*(api.recommend("as-1", k=3) for _ in range(5)))
            assert len({r.rec_id for r in many}) == 5
            for r in many:
                assert r.strategy == "fold-in" and not {"i01", "i03"} & set(r.item_ids)
                assert all(int(i[1:]) % 2 == 1 for i in r.item_ids)
            assert (await api.put_user("as-1", {"tier": "gold"})).updated == 1
            assert (await api.get_user("as-1")).attributes == {"tier": "gold"}
            sim = await api.similar("i01", k=2)
            assert len(sim.items) == 2
            ranked = await api.rank(["i01", "i02"], "as-1")
            assert await api.reward(ranked.rec_id, "i02", 0.0)
            with pytest.raises(Forbidden):
                await api.forget_user("as-1")
            with pytest.raises(NotFoundError):
                await api.get_item("as-missing")

    asyncio.run(scenario())
