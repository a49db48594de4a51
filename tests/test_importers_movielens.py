"""MovieLens importers: the real ml-100k and ml-1m files, single files, gzip, ml-1m codes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from personae import ImportFormatError
from personae.data.importers import IMPORTERS, detect_format, get_importer, import_movielens
from personae.errors import InvalidInput
from personae.store import Store


@pytest.mark.shared_data
def test_ml100k_folder_exact_counts_attributes_and_idempotent(store: Store,
                                                              shared_data: Path) -> None:
    report = import_movielens(store, shared_data / "ml-100k")

    assert report.format == "ml-100k"
    assert report.bad_rows == 0
    assert (report.users.inserted, report.items.inserted, report.events.inserted) == (
        943, 1682, 100_000)
    assert store.counts() == {"users": 943, "items": 1682, "events": 100_000}

    toy = store.get_item("1")
    assert toy.title == "Toy Story (1995)"
    assert toy.categories == ["Animation", "Children's", "Comedy"]
    assert toy.attributes["release_date"] == "01-Jan-1995"
    assert toy.attributes["year"] == 1995
    assert toy.attributes["imdb_url"].startswith("http://us.imdb.com/M/title-exact?Toy")
    # u.item is latin-1: byte 0xE9 must come back as "é", not mojibake or U+FFFD
    assert store.get_item("543").title == "Misérables, Les (1995)"
    assert store.get_item("1633").title.startswith("Á köldum klaka")
    unknown = store.get_item("267")  # the data set's own placeholder row
    assert unknown.title == "unknown" and unknown.categories == ["unknown"]
    assert "release_date" not in unknown.attributes and "imdb_url" not in unknown.attributes

    assert store.get_user("1").attributes == {
        "age": 24, "gender": "M", "occupation": "technician", "zip": "85711"}
    assert store.get_user("2").attributes["gender"] == "F"

    # u.data line 1 is "196\t242\t3\t881250949"
    ev = next(e for e in store.user_events("196") if e.item_id == "242")
    assert (ev.type, ev.value, ev.timestamp) == ("rating", 3.0, 881250949.0)

    log = store.event_log()
    assert sorted(set(log.value.tolist())) == [1.0, 2.0, 3.0, 4.0, 5.0]

    again = import_movielens(store, shared_data / "ml-100k")
    assert again.events.inserted == 0 and again.events.duplicates == 100_000
    assert again.users.inserted == 0 and again.items.inserted == 0
    assert store.counts() == {"users": 943, "items": 1682, "events": 100_000}
    assert store.get_item("1") == toy


@pytest.mark.shared_data
def test_ml1m_folder_without_ratings_gives_users_and_items(store: Store,
                                                           shared_data: Path) -> None:
    report = import_movielens(store, shared_data / "ml-1m")

    assert report.format == "ml-1m"
    assert store.counts() == {"users": 6040, "items": 3883, "events": 0}
    assert any("no ratings file" in n for n in report.notes)
    # users.dat line 1: 1::F::1::10::48067 — age and occupation are codes
    assert store.get_user("1").attributes == {
        "gender": "F", "age": 1, "age_group": "Under 18", "occupation": "K-12 student",
        "zip": "48067"}
    assert store.get_user("2").attributes["occupation"] == "self-employed"  # code 16
    assert store.get_user("2").attributes["age_group"] == "56+"
    # movies.dat is latin-1 as well
    les_mis = store.get_item("73")
    assert les_mis.title == "Misérables, Les (1995)"
    assert les_mis.categories == ["Drama", "Musical"]
    assert les_mis.attributes == {"year": 1995}
    assert store.get_item("1").categories == ["Animation", "Children's", "Comedy"]


def _gzip_head(src: Path, dest: Path, n: int) -> list[str]:
    with open(src, encoding="latin-1") as f:
        lines = [next(f) for _ in range(n)]
    with gzip.open(dest, "wt", encoding="latin-1") as f:
        f.writelines(lines)
    return lines


@pytest.mark.shared_data
def test_single_gzipped_ratings_file(store: Store, shared_data: Path, tmp_path: Path) -> None:
    lines = _gzip_head(shared_data / "ml-100k" / "u.data", tmp_path / "u.data.gz", 500)
    report = import_movielens(store, tmp_path / "u.data.gz")

    assert report.events.inserted == 500 and report.rows_read == 500
    assert store.counts()["events"] == 500
    user, item, rating, ts = lines[-1].split("\t")
    ev = next(e for e in store.user_events(user) if e.item_id == item)
    assert (ev.value, ev.timestamp) == (float(rating), float(ts))


def test_single_file_named_otherwise_is_sniffed(store: Store, tmp_path: Path) -> None:
    (tmp_path / "my_ratings.txt").write_text("1::10::4::978300760\n2::10::5::978300761\n")
    (tmp_path / "other.txt").write_text("1\t11\t4\t978300760\n")
    assert import_movielens(store, tmp_path / "my_ratings.txt").format == "ml-1m"
    assert import_movielens(store, tmp_path / "other.txt").format == "ml-100k"
    assert store.counts()["events"] == 3
    (tmp_path / "notes.txt").write_text("hello world\n")
    with pytest.raises(ImportFormatError, match="not a MovieLens file"):
        import_movielens(store, tmp_path / "notes.txt")


def test_ml1m_style_folder_with_ratings_gzipped(store: Store, tmp_path: Path) -> None:
    (tmp_path / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "73::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1"))
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    with gzip.open(tmp_path / "ratings.dat.gz", "wt") as f:
        f.write("1::1::5::978300760\n1::73::3::978302109\n2::1::4::978301968\n")

    report = import_movielens(store, tmp_path)

    assert report.format == "ml-1m"
    assert store.counts() == {"users": 2, "items": 2, "events": 3}
    assert [(e.item_id, e.value, e.timestamp) for e in store.user_events("1")] == [
        ("1", 5.0, 978300760.0), ("73", 3.0, 978302109.0)]
    assert store.get_item("73").title == "Misérables, Les (1995)"


def test_ml1m_unknown_codes_are_bad_rows(store: Store, tmp_path: Path) -> None:
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::57::16::70072\n"
                                        "3::M::25::21::55117\n")
    with pytest.raises(ImportFormatError, match=r"users\.dat:2: unknown age code 57"):
        import_movielens(store, tmp_path)
    report = import_movielens(store, tmp_path, skip_bad=True)
    assert report.users.inserted == 1 and report.bad_by_kind == {"value": 2}
    assert "unknown occupation code 21" in str(report.bad_examples[1])


def test_folder_that_is_not_movielens(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="not a MovieLens folder"):
        import_movielens(store, tmp_path)


@pytest.mark.shared_data
def test_registry_and_detection(shared_data: Path, tmp_path: Path) -> None:
    assert IMPORTERS["movielens"] is import_movielens
    assert get_importer("movielens") is import_movielens
    with pytest.raises(InvalidInput, match="expected one of movielens, melu, events"):
        get_importer("movielense")
    assert detect_format(shared_data / "ml-100k") == "movielens"
    assert detect_format(shared_data / "ml-1m") == "movielens"
    assert detect_format(shared_data / "ml-100k" / "u1.base") == "movielens"
    assert detect_format(tmp_path / "ratings.dat.gz") == "movielens"
    assert detect_format(shared_data / "ml-1m-melu-coldstart") == "melu"
    assert detect_format(tmp_path / "reviews.jsonl") is None
    assert detect_format(tmp_path) is None


def test_report_summary_and_dict(store: Store, tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t2\t3\t881250949\n1\t3\tx\t881250949\n")
    report = import_movielens(store, tmp_path, skip_bad=True)
    d = report.to_dict()
    assert d["events"] == {"inserted": 1, "updated": 0, "duplicates": 0, "skipped": 0}
    assert d["bad_rows"] == 1 and d["bad_by_kind"] == {"number": 1}
    assert d["bad_examples"][0]["line"] == 2
    text = report.summary()
    assert "1 new" in text and "u.data:2: the rating 'x' is not a number" in text


def test_progress_bar_goes_to_stderr(store: Store, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "u.data").write_text("1\t2\t3\t881250949\n")
    import_movielens(store, tmp_path, progress=True)
    out = capsys.readouterr()
    assert out.out == ""
    assert store.counts()["events"] == 1


def test_genre_names_come_from_u_genre_when_present(store: Store, tmp_path: Path) -> None:
    flags = "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"  # Animation, Children's, Comedy
    (tmp_path / "u.item").write_text(f"1|Toy Story (1995)|01-Jan-1995||url|{flags}\n")
    (tmp_path / "u.data").write_text("1\t1\t5\t881250949\n")
    import_movielens(store, tmp_path)
    assert store.get_item("1").categories == ["Animation", "Children's", "Comedy"]

    names = ["unknown", "Action", "Adventure", "Cartoon", "Kids", "Comedy"] + [
        f"G{i}" for i in range(6, 19)]
    (tmp_path / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(names)) + "\n")
    import_movielens(store, tmp_path)
    assert store.get_item("1").categories == ["Cartoon", "Kids", "Comedy"]
