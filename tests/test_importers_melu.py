"""MeLU cold-start importer: the real partitions, and small hand-made folders for the edges."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from personae import ImportFormatError
from personae.data.importers import import_melu
from personae.data.importers.melu import PARTITION_KEY
from personae.store import Store

# movies_extrainfos.dat rows: 11 '::'-separated fields, lists ", "-separated, N/A = missing
_MOVIE_1 = ("1::Toy Story::1995::G::22 Nov 1995::Animation, Adventure, Comedy::John Lasseter::"
            "John Lasseter (story), Pete Docter (story)::Tom Hanks, Tim Allen::"
            "A cowboy doll is threatened by a new spaceman toy.::https://example.org/1.jpg")
_MOVIE_2 = "2::Jumanji::N/A::PG::N/A::Adventure::N/A::N/A::Robin Williams::N/A::N/A"
_MOVIE_3 = "3::Amélie::2001::R::25 Apr 2001::Comedy, Romance::Jean-Pierre Jeunet::J::A::  ::N/A"


def _melu_folder(folder: Path, partitions: dict[str, tuple[dict, dict]],
                 movies: tuple[str, ...] = (_MOVIE_1, _MOVIE_2, _MOVIE_3)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies_extrainfos.dat").write_bytes(
        "".join(m + "\r\n" for m in movies).encode("utf-8"))  # the real file has CRLF
    for name, (ids, ratings) in partitions.items():
        (folder / f"{name}.json").write_text(json.dumps(ids))
        (folder / f"{name}_y.json").write_text(json.dumps(ratings))
    return folder


@pytest.mark.shared_data
def test_real_partitions_exact_counts(store: Store, shared_data: Path) -> None:
    folder = shared_data / "ml-1m-melu-coldstart"
    report = import_melu(store, folder)

    assert report.format == "melu" and report.bad_rows == 0
    assert report.events.inserted == 359_761
    assert report.items.inserted == 3881
    assert report.users.inserted == 6040  # users.dat found in the sibling ../ml-1m
    assert any("ml-1m/users.dat" in n for n in report.notes)
    stats = store.stats()
    assert (stats.n_events, stats.n_users_with_events, stats.n_items_with_events) == (
        359_761, 5977, 3497)
    assert (stats.n_users, stats.n_items) == (6040, 3881)
    assert stats.events_per_type == {"rating": 359_761}
    assert stats.first_ts is None  # MeLU keeps no timestamps

    toy = store.get_item("1")
    assert toy.title == "Toy Story"
    assert toy.text.startswith("A little boy named Andy loves to be in his room")
    assert toy.categories == ["Animation", "Adventure", "Comedy"]
    assert toy.attributes["year"] == 1995 and toy.attributes["rated"] == "G"
    assert toy.attributes["director"] == ["John Lasseter"]
    assert toy.attributes["actors"] == ["Tom Hanks", "Tim Allen", "Don Rickles", "Jim Varney"]
    n_with_text = sum(1 for item in store.iter_items() if item.text)
    assert n_with_text == 3881 - 36  # the README: 36 movies have an empty or N/A plot

    # user 4926 is the first key of user_cold_state.json; its first movie is "1", rated 4
    events = store.user_events("4926")
    assert {e.context[PARTITION_KEY] for e in events} <= {
        "user_cold_state", "item_cold_state", "user_and_item_cold_state"}
    first = next(e for e in events if e.item_id == "1")
    assert (first.value, first.timestamp) == (4.0, None)
    assert first.context == {PARTITION_KEY: "user_cold_state"}
    assert store.get_user("4926").attributes["age_group"]

    again = import_melu(store, folder, partitions=["user_and_item_cold_state"])
    assert again.events.inserted == 0 and again.events.duplicates == 38_603
    assert store.counts() == {"users": 6040, "items": 3881, "events": 359_761}


def test_items_fields_na_and_crlf(store: Store, tmp_path: Path) -> None:
    folder = _melu_folder(tmp_path / "melu", {
        "user_cold_state": ({"10": ["1", "2"]}, {"10": [5, 3]}),
    })
    import_melu(store, folder)

    toy = store.get_item("1")
    assert toy.attributes == {
        "year": 1995, "rated": "G", "released": "22 Nov 1995", "director": ["John Lasseter"],
        "writer": ["John Lasseter (story)", "Pete Docter (story)"],
        "actors": ["Tom Hanks", "Tim Allen"], "poster_url": "https://example.org/1.jpg"}
    assert toy.text == "A cowboy doll is threatened by a new spaceman toy."  # no trailing \r
    jumanji = store.get_item("2")
    assert jumanji.text is None  # plot N/A
    assert jumanji.attributes == {"rated": "PG", "actors": ["Robin Williams"]}
    amelie = store.get_item("3")
    assert amelie.title == "Amélie" and amelie.text is None  # blank plot
    assert [(e.item_id, e.value) for e in store.user_events("10")] == [("1", 5.0), ("2", 3.0)]


def test_users_path_and_missing_users(store: Store, tmp_path: Path) -> None:
    folder = _melu_folder(tmp_path / "melu", {
        "item_cold_state": ({"7": ["3"]}, {"7": [4]}),
    })
    report = import_melu(store, folder)
    assert any("no users.dat" in n for n in report.notes)
    assert store.get_user("7").attributes == {}

    users = tmp_path / "elsewhere" / "users.dat.gz"
    users.parent.mkdir()
    with gzip.open(users, "wt") as f:
        f.write("7::F::25::12::02139\n")
    import_melu(store, folder, users_path=users)
    assert store.get_user("7").attributes == {
        "gender": "F", "age": 25, "age_group": "25-34", "occupation": "programmer",
        "zip": "02139"}
    assert store.counts()["events"] == 1


def test_length_mismatch_names_the_user(store: Store, tmp_path: Path) -> None:
    folder = _melu_folder(tmp_path / "melu", {
        "user_cold_state": ({"10": ["1", "2"], "11": ["1", "2", "3"]},
                            {"10": [5, 3], "11": [4, 4]}),
    })
    with pytest.raises(ImportFormatError) as err:
        import_melu(store, folder)
    msg = str(err.value)
    assert "user_cold_state.json" in msg
    assert "user '11': 3 movie ids in user_cold_state.json but 2 ratings" in msg
    assert store.counts() == {"users": 0, "items": 0, "events": 0}

    report = import_melu(store, folder, skip_bad=True)
    assert report.events.inserted == 2 and report.bad_by_kind == {"mismatch": 1}


def test_missing_ratings_file_and_unknown_partition(store: Store, tmp_path: Path) -> None:
    folder = _melu_folder(tmp_path / "melu", {"user_cold_state": ({"1": ["1"]}, {"1": [5]})})
    with pytest.raises(ImportFormatError, match="no partition 'warm_state' here"):
        import_melu(store, folder, partitions=["warm_state"])
    (folder / "warm_state.json").write_text("{}")
    with pytest.raises(ImportFormatError, match="has no ratings file warm_state_y.json"):
        import_melu(store, folder)


def test_not_a_melu_folder(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="not a MeLU folder"):
        import_melu(store, tmp_path)


def test_invalid_partition_json(store: Store, tmp_path: Path) -> None:
    folder = _melu_folder(tmp_path / "melu", {
        "user_cold_state": ({"10": ["1"]}, {"10": [5]}),
        "item_cold_state": ({"11": ["2"]}, {"11": [4]}),
    })
    (folder / "item_cold_state_y.json").write_text('{"11": [4,\n 5')
    with pytest.raises(ImportFormatError, match=r"item_cold_state_y\.json:2: invalid JSON"):
        import_melu(store, folder)
    assert store.counts() == {"users": 0, "items": 0, "events": 0}

    report = import_melu(store, folder, skip_bad=True)
    assert report.bad_by_kind == {"json": 1}
    assert report.events.inserted == 1  # user_cold_state only
    assert store.user_events("10")[0].context == {PARTITION_KEY: "user_cold_state"}
