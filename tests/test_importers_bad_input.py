"""Bad input files, written by the tests: every importer fails cleanly and atomically.

For each bad file: by default the import raises ImportFormatError naming the file, the line and
the problem, and the store is exactly as before (data imported earlier included); with
``skip_bad=True`` the good rows are imported and the report counts the bad one by kind.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from personae import ImportFormatError
from personae.data.importers import (
    ImportReport,
    import_events_file,
    import_items_file,
    import_melu,
    import_movielens,
)
from personae.store import Event, Item, Store, User, Writer

GOOD_ITEMS = (
    "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|"
    "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|GoldenEye (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?GoldenEye|"
    "0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
)


def _ratings(n: int) -> str:
    return "".join(f"{u}\t{i}\t{1 + (u + i) % 5}\t{881250949 + u * 7 + i}\n"
                   for u in range(1, n + 1) for i in (1, 2))


def _ml100k(folder: Path, data: bytes | str, items: str = GOOD_ITEMS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.item").write_text(items, encoding="latin-1")
    if isinstance(data, str):
        data = data.encode("latin-1")
    (folder / "u.data").write_bytes(data)
    return folder


def _movielens(store: Store, path: Path, skip_bad: bool) -> ImportReport:
    return import_movielens(store, path, skip_bad=skip_bad)


def _events(mapping: str) -> Callable[[Store, Path, bool], ImportReport]:
    def run(store: Store, path: Path, skip_bad: bool) -> ImportReport:
        return import_events_file(store, path, mapping, skip_bad=skip_bad)

    return run


@dataclass
class Case:
    id: str
    write: Callable[[Path], Path]  # writes the bad input under a folder, returns the path
    run: Callable[[Store, Path, bool], ImportReport]
    file: str  # the file the error must name
    line: int | None  # None: no line number (file-level problem) or any line (gzip)
    problem: str  # a regular expression the problem must match
    kind: str
    good_events: int  # events imported with skip_bad=True


def _truncated_gzip(folder: Path) -> Path:
    folder.mkdir(parents=True)
    blob = gzip.compress(_ratings(3000).encode())
    (folder / "u.data.gz").write_bytes(blob[: len(blob) // 2])
    return folder / "u.data.gz"


def _melu_bad_utf8(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "movies_extrainfos.dat").write_bytes(
        b"1::Toy Story::1995::G::N/A::Comedy::N/A::N/A::N/A::A plot.::N/A\n"
        b"2::Am\xe9lie::2001::R::N/A::Comedy::N/A::N/A::N/A::Latin-1 here.::N/A\n")
    (folder / "user_cold_state.json").write_text('{"1": ["1", "2"]}')
    (folder / "user_cold_state_y.json").write_text('{"1": [5, 4]}')
    return folder


CASES = [
    Case("truncated-line", lambda d: _ml100k(d, "1\t1\t5\t881250949\n1\t2\t3\t881250950\n"
                                               "2\t1\t4\t881250951\n196\t24\n2\t2\t1\t8812509\n"),
         _movielens, "u.data", 4, r"expected 4 tab-separated fields .* got 2", "fields", 4),
    Case("garbled-binary-line", lambda d: _ml100k(d, b"1\t1\t5\t881250949\n\x00\x17\x8f\x02\n"),
         _movielens, "u.data", 2, r"not valid utf-8 \(byte 0x8f at offset 2\)", "encoding", 1),
    Case("wrong-field-count-u.item",
         lambda d: _ml100k(d, "1\t1\t5\t881250949\n",
                           items=GOOD_ITEMS.replace("|0|0|0\n", "|0|0\n")),
         _movielens, "u.item", 1, r"expected 24 '\|'-separated fields .* got 23", "fields", 1),
    Case("non-numeric-rating",
         lambda d: _ml100k(d, "1\t1\t5\t881250949\n1\t2\tfive\t881250950\n"),
         _movielens, "u.data", 2, r"the rating 'five' is not a number", "number", 1),
    Case("nan-rating", lambda d: _ml100k(d, "1\t1\tnan\t881250949\n1\t2\t4\t881250950\n"),
         _movielens, "u.data", 1, r"value must be a finite number", "value", 1),
    Case("bad-timestamp-ml1m",
         lambda d: (d.mkdir(), (d / "ratings.dat").write_text(
             "1::1::5::978300760\n1::2::3::978302109\n1::3::4::2000-12-31\n"), d)[-1],
         _movielens, "ratings.dat", 3, r"the timestamp '2000-12-31' is not a whole number",
         "timestamp", 2),
    Case("milliseconds-given-as-seconds",
         lambda d: (d.mkdir(), (d / "ev.csv").write_text(
             "user,item,ts\n1,1,1700000000\n1,2,1700000000000\n"), d / "ev.csv")[-1],
         _events("user=user,item=item,time=ts,time_unit=s"), "ev.csv", 3,
         r"ts '1700000000000': .*outside 1970–2200 .* divide by 1000", "timestamp", 1),
    Case("invalid-json-line",
         lambda d: (d.mkdir(), (d / "ev.jsonl").write_text(
             '{"user": "1", "item": "1"}\n{"user": "1", "item": \n{"user": "2", "item": "1"}\n'),
             d / "ev.jsonl")[-1],
         _events("user=user,item=item"), "ev.jsonl", 2, r"invalid JSON: .* at column", "json", 2),
    Case("python-dict-line",
         lambda d: (d.mkdir(), (d / "meta.json").write_text(
             '{"user": "1", "item": "1"}\n' "{'user': '1', 'item': '2'}\n"), d / "meta.json")[-1],
         _events("user=user,item=item"), "meta.json", 2, r"looks like a Python dict", "json", 1),
    Case("missing-required-field",
         lambda d: (d.mkdir(), (d / "ev.ndjson").write_text(
             '{"user": "1", "item": "1"}\n{"user": "1", "item": "2"}\n{"user": "1"}\n'),
             d / "ev.ndjson")[-1],
         _events("user=user,item=item"), "ev.ndjson", 3,
         r"the item id field 'item' is missing or empty", "missing", 2),
    Case("empty-required-csv-field",
         lambda d: (d.mkdir(), (d / "ev.csv").write_text("user,item\n1,1\n,2\n"), d / "ev.csv")[-1],
         _events("user=user,item=item"), "ev.csv", 3,
         r"the user id field 'user' is missing or empty", "missing", 1),
    Case("extra-csv-field",
         lambda d: (d.mkdir(), (d / "ev.csv").write_text("user,item\n1,1\n1,2,3\n"),
                    d / "ev.csv")[-1],
         _events("user=user,item=item"), "ev.csv", 3, r"expected 2 fields as in the header, got 3",
         "fields", 1),
    Case("wrong-encoding-bytes",
         lambda d: (d.mkdir(), (d / "ev.csv").write_bytes(
             b"user,item,city\n1,1,Paris\n1,2,Montr\xe9al\n2,2,Lyon\n"), d / "ev.csv")[-1],
         _events("user=user,item=item,context=city"), "ev.csv", 3,
         r"not valid utf-8 \(byte 0xe9 at offset 9\)", "encoding", 2),
    Case("wrong-encoding-melu", _melu_bad_utf8, lambda s, p, k: import_melu(s, p, skip_bad=k),
         "movies_extrainfos.dat", 2, r"not valid utf-8", "encoding", 2),
    Case("truncated-gzip", _truncated_gzip, _movielens, "u.data.gz", None,
         r"the gzip stream is truncated or corrupt", "gzip", -1),
    Case("empty-file", lambda d: _ml100k(d, b""), _movielens, "u.data", None,
         r"the file is empty", "empty", 0),
    Case("empty-jsonl", lambda d: (d.mkdir(), (d / "ev.jsonl").write_bytes(b""),
                                   d / "ev.jsonl")[-1],
         _events("user=user,item=item"), "ev.jsonl", None, r"the file is empty", "empty", 0),
]


def _seed(store: Store) -> dict[str, Any]:
    """Data stored before the bad import; the bad import touches user "1" and item "1"."""
    store.upsert_users([User("1", {"age": 99})])
    store.upsert_items([Item("1", title="Before", categories=["Old"])])
    store.add_events([Event("1", "1", "click", None, 1000.0, {"via": "seed"})])
    return _snapshot(store)


def _snapshot(store: Store) -> dict[str, Any]:
    _, users = store.user_index()
    _, items = store.item_index()
    return {
        "counts": store.counts(),
        "users": {u: store.get_user(u).to_dict() for u in users},
        "items": {i: store.get_item(i).to_dict() for i in items},
        "events": {u: [e.to_dict() for e in store.user_events(u)] for u in users},
        "weights": store.event_weights(),
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_file_aborts_cleanly_then_skips(case: Case, store: Store, tmp_path: Path) -> None:
    before = _seed(store)
    path = case.write(tmp_path / "in")

    with pytest.raises(ImportFormatError) as err:
        case.run(store, path, False)
    exc = err.value
    assert Path(exc.path).name == case.file
    assert case.file in str(exc)
    if case.line is not None:
        assert exc.line == case.line
        assert f"{case.file}:{case.line}: " in str(exc)
    assert re.search(case.problem, exc.problem), exc.problem
    assert _snapshot(store) == before, "a failed import must leave the store unchanged"

    report = case.run(store, path, True)
    assert report.bad_rows == 1
    assert report.bad_by_kind == {case.kind: 1}
    (example,) = report.bad_examples
    assert Path(example.path).name == case.file and re.search(case.problem, example.problem)
    if case.good_events >= 0:
        assert report.events.inserted == case.good_events
    assert store.counts()["events"] == before["counts"]["events"] + report.events.inserted


def test_truncated_gzip_imports_only_whole_lines(store: Store, tmp_path: Path) -> None:
    path = _truncated_gzip(tmp_path / "in")
    whole = {tuple(line.split("\t")) for line in _ratings(3000).splitlines()}

    report = import_movielens(store, path, skip_bad=True)

    assert 0 < report.events.inserted < 6000
    assert report.rows_read == report.events.inserted  # the cut line is not counted as read
    log = store.event_log()
    user_ids = dict(zip(*store.user_index(), strict=True))
    item_ids = dict(zip(*store.item_index(), strict=True))
    stored = {
        (user_ids[u], item_ids[i], str(int(v)), str(int(t)))
        for u, i, v, t in zip(log.user_idx, log.item_idx, log.value, log.ts, strict=True)
    }
    assert stored <= whole  # no half line (a cut timestamp, say) got in


def test_nonexistent_path_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "u.data"
    for run in (
        lambda k: import_movielens(store, missing, skip_bad=k),
        lambda k: import_melu(store, tmp_path / "nope", skip_bad=k),
        lambda k: import_events_file(store, tmp_path / "nope.csv", "user=u,item=i", skip_bad=k),
        lambda k: import_items_file(store, tmp_path / "nope.jsonl", "item=i", skip_bad=k),
    ):
        for skip_bad in (False, True):
            with pytest.raises(ImportFormatError, match="nope.*: no such file or directory"):
                run(skip_bad)
    with pytest.raises(ImportFormatError, match="expected a file, got a directory"):
        import_events_file(store, tmp_path, "user=u,item=i")


def test_failure_after_chunks_were_written_rolls_everything_back(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Writer, "chunk_size", 50)  # several INSERT batches before the bad row
    before = _seed(store)
    folder = _ml100k(tmp_path / "in", _ratings(100) + "1\t1\tbad\t881250949\n")

    with pytest.raises(ImportFormatError, match=r"u\.data:201: the rating 'bad'"):
        import_movielens(store, folder)
    assert _snapshot(store) == before

    report = import_movielens(store, folder, skip_bad=True)
    assert report.events.inserted == 200
    assert store.get_item("1").title == "Toy Story (1995)"


def test_many_bad_rows_keep_twenty_examples_and_count_all(store: Store, tmp_path: Path) -> None:
    lines = [f"{u}\t1\t{'x' if u % 2 else '4'}\t881250949\n" for u in range(1, 61)]
    lines += [f"{u}\t1\t4\n" for u in range(61, 66)]
    folder = _ml100k(tmp_path / "in", "".join(lines))

    report = import_movielens(store, folder, skip_bad=True)

    assert report.events.inserted == 30
    assert report.bad_rows == 35
    assert report.bad_by_kind == {"number": 30, "fields": 5}
    assert len(report.bad_examples) == 20
    assert [b.line for b in report.bad_examples[:3]] == [1, 3, 5]
    assert "… and 15 more" in report.summary()
