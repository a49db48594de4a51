"""Generic CSV/TSV/JSON-lines importers on small messy exports written by the tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from personae import ImportFormatError, InvalidInput
from personae.data.importers import (
    EventMapping,
    ItemMapping,
    UserMapping,
    detect_file_format,
    import_events_file,
    import_items_file,
    import_users_file,
)
from personae.data.importers.common import clean_text
from personae.store import Store

REVIEW_MAPPING = "user=reviewerID,item=asin,value=overall,time=unixReviewTime"


def _jsonl(path: Path, rows: list[dict | str]) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _amazon_reviews(path: Path) -> Path:
    first = {"reviewerID": "A1ZZ0", "asin": "B0001", "overall": 5.0,
             "unixReviewTime": 1389744000, "reviewText": "Loved it", "summary": "Five stars"}
    return _jsonl(path, [
        first,
        json.dumps(first),  # an exact duplicate line, as real dumps have
        {"reviewerID": "A2YY1", "asin": "B0001", "overall": 3.0, "unixReviewTime": 1389830400,
         "reviewText": "ok"},
        {"reviewerID": "A2YY1", "asin": "B0002", "overall": "4", "unixReviewTime": "1389916800"},
        {"reviewerID": "A3XX2", "asin": "B0003", "overall": 1.0, "unixReviewTime": 1390003200,
         "vote": "2"},
    ])


def _amazon_metadata(path: Path) -> Path:
    return _jsonl(path, [
        {"asin": "B0001",
         "title": '<span class="a-size-large">Caf&eacute; &amp;  Bar</span>\n  Book',
         "description": ["<p>First paragraph.</p>", "Second &quot;quoted&quot;<br/>line"],
         "category": [["Books", "Fiction"], ["Books", "Literature &amp; Fiction"]],
         "brand": "Acme", "price": "$12.99"},
        # the same product again, sparser: nothing it lacks may blank the first row
        {"asin": "B0001", "title": "", "description": [], "category": [], "brand": "",
         "price": "$10.00", "rank": "5"},
        {"asin": "B0002", "title": "Plain Gadget", "category": "Electronics|Gadgets"},
        {"asin": "B0003"},
        {"asin": "B0003", "title": "Third, titled later", "description": "One string"},
    ])


def test_amazon_reviews_and_metadata(store: Store, tmp_path: Path) -> None:
    reviews = _amazon_reviews(tmp_path / "reviews_Books_5.json.gz")
    meta = _amazon_metadata(tmp_path / "meta_Books.json")

    items = import_items_file(store, meta, ItemMapping(
        item="asin", title="title", text="description", categories="category",
        attributes=["brand", "price", "rank"]))
    assert items.format == "items:jsonl"
    assert items.rows_read == 5
    assert (items.items.inserted, items.items.duplicates) == (3, 2)

    b1 = store.get_item("B0001")
    assert b1.title == "Café & Bar Book"
    assert b1.text == 'First paragraph.\nSecond "quoted"\nline'
    assert b1.categories == ["Books", "Fiction", "Literature & Fiction"]
    # first non-empty value wins, per attribute: price from row 1, rank only in row 2
    assert b1.attributes == {"brand": "Acme", "price": "$12.99", "rank": "5"}
    b2 = store.get_item("B0002")
    assert b2.categories == ["Electronics", "Gadgets"]
    assert b2.text is None and b2.attributes == {}
    b3 = store.get_item("B0003")
    assert (b3.title, b3.text) == ("Third, titled later", "One string")

    events = import_events_file(store, reviews, REVIEW_MAPPING)
    assert events.format == "events:jsonl"
    assert events.rows_read == 5
    assert (events.events.inserted, events.events.duplicates) == (4, 1)
    assert store.counts() == {"users": 3, "items": 3, "events": 4}
    a2 = store.user_events("A2YY1")
    assert [(e.item_id, e.type, e.value, e.timestamp) for e in a2] == [
        ("B0001", "rating", 3.0, 1389830400.0), ("B0002", "rating", 4.0, 1389916800.0)]
    assert store.get_item("B0001").title == "Café & Bar Book"  # events leave items alone

    again = import_events_file(store, reviews, EventMapping.parse(REVIEW_MAPPING))
    assert (again.events.inserted, again.events.duplicates) == (0, 5)
    assert store.counts()["events"] == 4


def test_csv_with_type_context_and_millisecond_times(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text(
        "\ufeffuser,item,action,ts_ms,device,country\n"  # a byte-order mark, as Excel writes
        "u1,i1,View,1700000000000,mobile,FR\n"
        "u1,i2,Purchase,1700000060000,desktop,\n"
        "\n"
        'u2,"i,3",,1700000120500,,DE\n'  # a quoted comma; no action → the default type
    )
    mapping = EventMapping.parse(
        "user=user,item=item,type=action,time=ts_ms,time_unit=ms,context=device;country,"
        "default_type=click")
    report = import_events_file(store, path, mapping)

    assert report.rows_read == 3 and report.events.inserted == 3
    u1 = store.user_events("u1")
    assert [(e.item_id, e.type, e.timestamp, e.context) for e in u1] == [
        ("i1", "view", 1700000000.0, {"device": "mobile", "country": "FR"}),
        ("i2", "purchase", 1700000060.0, {"device": "desktop"}),
    ]
    (u2,) = store.user_events("u2")
    assert (u2.item_id, u2.type, u2.timestamp, u2.context) == (
        "i,3", "click", 1700000120.5, {"country": "DE"})


def test_tsv_gz_iso_and_strptime_times_and_event_ids(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "log.tsv.gz"
    with gzip.open(path, "wt") as f:
        f.write("id\tuser\titem\twhen\n"
                "e1\tu1\ti1\t2024-05-01T18:30:00Z\n"
                "e2\tu1\ti2\t2024-05-01 19:00:00+02:00\n")
    report = import_events_file(store, path, EventMapping(
        user="user", item="item", time="when", time_unit="iso", event_id="id"))
    assert report.format == "events:tsv" and report.events.inserted == 2
    assert [(e.event_id, e.type, e.timestamp) for e in store.user_events("u1")] == [
        ("e2", "view", 1714582800.0), ("e1", "view", 1714588200.0)]

    amazon_2014 = tmp_path / "reviews.csv"
    amazon_2014.write_text("reviewerID,asin,overall,reviewTime\nA1,B1,5.0,\"01 15, 2014\"\n")
    import_events_file(store, amazon_2014, EventMapping(
        user="reviewerID", item="asin", value="overall", time="reviewTime",
        time_unit="%m %d, %Y"))
    (ev,) = store.user_events("A1")
    assert (ev.type, ev.value, ev.timestamp) == ("rating", 5.0, 1389744000.0)


def test_users_file_merges_repeats(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("id,age,country\n1,34,\n2,,DE\n1,35,FR\n")
    report = import_users_file(store, path, "user=id,attributes=age;country")
    assert (report.users.inserted, report.users.duplicates) == (2, 1)
    assert store.get_user("1").attributes == {"age": "34", "country": "FR"}
    assert store.get_user("2").attributes == {"country": "DE"}


def test_availability_column(store: Store, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "items.ndjson", [
        {"id": "a", "in_stock": "no"},
        {"id": "b", "in_stock": True},
        {"id": "c"},
        {"id": "c", "in_stock": 0},  # a repeat may give what the first row lacked
        {"id": "d", "in_stock": "maybe"},
    ])
    with pytest.raises(ImportFormatError, match=r"items\.ndjson:5: in_stock 'maybe' is not"):
        import_items_file(store, path, ItemMapping(item="id", available="in_stock"))
    report = import_items_file(store, path, ItemMapping(item="id", available="in_stock"),
                               skip_bad=True)
    assert report.bad_rows == 1
    assert {i: store.get_item(i).available for i in "abc"} == {
        "a": False, "b": True, "c": False}


def test_mapping_parse_errors() -> None:
    m = EventMapping.parse("user=u, item=i, context=a, context=b;c")
    assert (m.user, m.item, m.context, m.value, m.default_type) == (
        "u", "i", ("a", "b", "c"), None, None)
    with pytest.raises(InvalidInput, match="unknown EventMapping key 'usr'.*expected some of: "
                                           "user, item, value, time"):
        EventMapping.parse("usr=reviewerID,item=asin")
    with pytest.raises(InvalidInput, match="lacks item=<column>"):
        EventMapping.parse("user=reviewerID")
    with pytest.raises(InvalidInput, match="key=column"):
        EventMapping.parse("user")
    with pytest.raises(InvalidInput, match="given twice"):
        EventMapping.parse("user=a,user=b,item=c")
    with pytest.raises(InvalidInput, match="time_unit must be one of"):
        EventMapping(user="u", item="i", time_unit="minutes")
    with pytest.raises(InvalidInput, match="type must be a lower-case name"):
        EventMapping(user="u", item="i", default_type="Bad Type")
    assert ItemMapping.parse("item=asin,attributes=brand;price").attributes == ("brand", "price")
    assert UserMapping.parse("user=id").attributes == ()


def test_format_detection_and_errors(store: Store, tmp_path: Path) -> None:
    assert detect_file_format(tmp_path / "a.csv.gz") == "csv"
    assert detect_file_format(tmp_path / "a.TSV") == "tsv"
    assert detect_file_format(tmp_path / "a.ndjson") == "jsonl"
    assert detect_file_format(tmp_path / "reviews_Books_5.json.gz") == "jsonl"
    with pytest.raises(ImportFormatError, match="cannot tell the format from the suffix '.xlsx'"):
        detect_file_format(tmp_path / "a.xlsx")

    data = tmp_path / "events.txt"
    data.write_text('{"u": "1", "i": "2"}\n')
    with pytest.raises(ImportFormatError) as err:
        import_events_file(store, data, "user=u,item=i")
    assert "pass format=csv|tsv|jsonl" in str(err.value)
    assert import_events_file(store, data, "user=u,item=i", format="jsonl").events.inserted == 1

    array = tmp_path / "array.json"
    array.write_text('[{"u": "1", "i": "2"}]\n')
    with pytest.raises(ImportFormatError, match=r"array\.json:1: the file is one JSON array.*jq"):
        import_events_file(store, array, "user=u,item=i", skip_bad=True)

    header = tmp_path / "h.csv"
    header.write_text("user,item\n1,2\n")
    with pytest.raises(ImportFormatError, match=r"h\.csv:1: the mapping names column\(s\) "
                                                r"'rating' that the header lacks"):
        import_events_file(store, header, "user=user,item=item,value=rating")


def test_clean_text() -> None:
    assert clean_text("<b>Bold</b> &amp; <i>brave</i>") == "Bold & brave"
    assert clean_text("a\n\n  b\t c") == "a b c"
    assert clean_text("<p>one</p><p>two &lt;3</p>", keep_lines=True) == "one\ntwo <3"
    assert clean_text("5 < 6 and 7 > 2") == "5 < 6 and 7 > 2"


def test_user_repeats_merge_in_a_pseudonymised_store(make_store: Callable[..., Store],
                                                     tmp_path: Path) -> None:
    store = make_store(pseudonymize_key="test-key-of-32-characters-length")
    path = _jsonl(tmp_path / "users.jsonl", [
        {"id": "alice", "city": "Paris"}, {"id": "bob"}, {"id": "alice", "lang": "fr"}])
    report = import_users_file(store, path, UserMapping(user="id", attributes=["city", "lang"]))
    assert (report.users.inserted, report.users.duplicates) == (2, 1)
    assert store.get_user("alice").attributes == {"city": "Paris", "lang": "fr"}
    assert store.stored_user_id("alice") != "alice"


def test_events_of_forgotten_users_are_skipped_and_counted(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    path.write_text("user,item\ngone,i1\nkept,i1\ngone,i2\n")
    import_events_file(store, path, "user=user,item=item")
    store.forget_user("gone")

    report = import_events_file(store, path, "user=user,item=item")

    assert (report.events.inserted, report.events.duplicates, report.events.skipped) == (0, 1, 2)
    assert "2 skipped (forgotten users)" in report.summary()
    assert not store.is_forgotten("kept") and store.counts()["users"] == 1
