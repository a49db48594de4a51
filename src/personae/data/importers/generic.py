"""Events, items and users from any CSV/TSV or JSON-lines export, through a column mapping.

Real exports are messy; these importers take care of the usual mess:

- exact duplicate event lines are stored once (their content-derived ids are equal, see
  :meth:`personae.Event.ensure_id`) and counted as ``duplicates``;
- an item (or user) repeated within a file is merged: **for each field, the first non-empty
  value wins** (title, text, categories, availability, and each attribute key separately), so a
  later, sparser row never blanks a richer earlier one;
- HTML in titles, descriptions and categories is cleaned (tags stripped, entities unescaped,
  whitespace collapsed); a description given as a list of strings is joined with newlines;
  categories given as a list, or nested lists (``[["Books", "Fiction"]]``), are flattened;
- missing optional fields become ``None``; a missing user or item id makes the row bad.

Files stream line by line; ``.gz`` files are decompressed on the fly. The format comes from the
suffix (``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``/``.json`` — JSON *lines*, one object
per line — each optionally followed by ``.gz``) unless ``format=`` says otherwise.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personae.data.importers.common import (
    ImportReport,
    ImportRun,
    base_name,
    check_path,
    clean_text,
    first_non_empty,
    flatten_strings,
    is_blank,
)
from personae.errors import ImportFormatError, InvalidInput
from personae.store import Event, Item, Store, User, WriteResult, to_timestamp
from personae.store.records import check_event_type

#: File formats the generic importers read, by name.
FILE_FORMATS = ("csv", "tsv", "jsonl")
_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".json": "jsonl",
}
#: Units of :attr:`EventMapping.time_unit` besides ``strptime`` patterns (which contain ``%``).
TIME_UNITS = ("auto", "s", "ms", "us", "ns", "iso")
_DIVISORS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


# ---------------------------------------------------------------------- mappings


def _parse_mapping(cls: type, text: str) -> Any:
    """Build a mapping dataclass from ``"key=column,key=column,..."``.

    Fields holding several columns take ``;``-separated names or repeated keys
    (``context=device;country`` or ``context=device,context=country``).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"a {cls.__name__} needs text like 'user=col,item=col', got {text!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    list_fields = {name for name, f in fields.items() if f.default_factory is tuple}
    kwargs: dict[str, Any] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise InvalidInput(f"mapping entries look like key=column; got {part!r} in {text!r}")
        if key not in fields:
            raise InvalidInput(
                f"unknown {cls.__name__} key {key!r} in {text!r}; expected some of: "
                f"{', '.join(fields)}"
            )
        if key in list_fields:
            kwargs.setdefault(key, []).extend(v.strip() for v in value.split(";") if v.strip())
            continue
        if key in kwargs:
            raise InvalidInput(f"the mapping key {key!r} is given twice in {text!r}")
        if not value:
            raise InvalidInput(f"the mapping key {key!r} has no column name in {text!r}")
        kwargs[key] = value
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in kwargs]
    if missing:
        raise InvalidInput(
            f"the mapping {text!r} lacks {', '.join(f'{m}=<column>' for m in missing)}"
        )
    return cls(**kwargs)


def _as_columns(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{name} must be a list of column names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class EventMapping:
    """Which column of the file holds which part of an event.

    Parameters
    ----------
    user, item : str
        Columns of the user and item ids (required in every row).
    value : str | None
        Column of the value (the rating for ``rating`` events).
    time : str | None
        Column of the time; see ``time_unit``. Rows without one get no timestamp.
    type : str | None
        Column of the event type (lower-cased, e.g. ``Purchase`` → ``purchase``); rows without
        one, or every row when ``None``, get ``default_type``.
    default_type : str | None
        ``None``: ``"rating"`` when ``value`` is mapped, else ``"view"``.
    event_id : str | None
        Column of the client's event id; without one, ids derive from the content, so exact
        duplicate rows are stored once.
    context : tuple[str, ...]
        Columns copied into the event context under their own names (blank values left out);
        a column holding a JSON object contributes its keys instead.
    time_unit : str, default "auto"
        ``"auto"``: numbers are epoch seconds, strings epoch seconds or ISO-8601; ``"s"``,
        ``"ms"``, ``"us"``, ``"ns"``: epoch numbers in that unit; ``"iso"``: ISO-8601 strings;
        or a :func:`~datetime.datetime.strptime` pattern such as ``"%m %d, %Y"`` (taken as
        UTC).
    """

    user: str
    item: str
    value: str | None = None
    time: str | None = None
    type: str | None = None
    default_type: str | None = None
    event_id: str | None = None
    context: tuple[str, ...] = field(default_factory=tuple)
    time_unit: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "context", _as_columns(self.context, "context"))
        if self.time_unit not in TIME_UNITS and "%" not in self.time_unit:
            raise InvalidInput(
                f"time_unit must be one of {', '.join(TIME_UNITS)} or a strptime pattern such "
                f"as '%Y-%m-%d %H:%M:%S', got {self.time_unit!r}"
            )
        if self.default_type is not None:
            check_event_type(self.default_type)

    @classmethod
    def parse(cls, text: str) -> EventMapping:
        """From ``"user=reviewerID,item=asin,value=overall,time=unixReviewTime"``.

        Keys are the field names; ``context`` takes ``;``-separated columns. An unknown key
        raises :class:`~personae.errors.InvalidInput` listing the valid ones.
        """
        return _parse_mapping(cls, text)

    def columns(self) -> list[str]:
        """Every column this mapping reads."""
        named = [self.user, self.item, self.value, self.time, self.type, self.event_id]
        return [c for c in named if c is not None] + list(self.context)


@dataclass(frozen=True, slots=True)
class ItemMapping:
    """Which column of the file holds which part of an item.

    Parameters
    ----------
    item : str
        Column of the item id (required in every row).
    title, text : str | None
        Columns of the title and the description (a list of strings is joined with newlines).
    categories : str | None
        Column of the categories: a list, nested lists, or a string split on
        ``categories_sep``.
    attributes : tuple[str, ...]
        Columns copied into the attributes under their own names (blank values left out);
        a column holding a JSON object contributes its keys instead.
    available : str | None
        Column of the availability (true/false, 1/0, yes/no); rows without one are available.
    categories_sep : str | None, default "|"
        Separator of categories given as one string; ``None`` keeps the string whole.
    """

    item: str
    title: str | None = None
    text: str | None = None
    categories: str | None = None
    attributes: tuple[str, ...] = field(default_factory=tuple)
    available: str | None = None
    categories_sep: str | None = "|"

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _as_columns(self.attributes, "attributes"))

    @classmethod
    def parse(cls, text: str) -> ItemMapping:
        """From ``"item=asin,title=title,text=description,categories=category,attributes=brand;price"``."""  # noqa: E501
        return _parse_mapping(cls, text)

    def columns(self) -> list[str]:
        named = [self.item, self.title, self.text, self.categories, self.available]
        return [c for c in named if c is not None] + list(self.attributes)


@dataclass(frozen=True, slots=True)
class UserMapping:
    """Which column holds the user id, and which are copied into the attributes."""

    user: str
    attributes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _as_columns(self.attributes, "attributes"))

    @classmethod
    def parse(cls, text: str) -> UserMapping:
        """From ``"user=id,attributes=age;country"``."""
        return _parse_mapping(cls, text)

    def columns(self) -> list[str]:
        return [self.user, *self.attributes]


# ---------------------------------------------------------------------- public functions


def detect_file_format(path: str | os.PathLike[str]) -> str:
    """``"csv"``, ``"tsv"`` or ``"jsonl"`` from the file name (a ``.gz`` suffix is looked
    through); :class:`ImportFormatError` when the name does not tell."""
    suffix = Path(base_name(Path(path))).suffix
    try:
        return _SUFFIX_FORMATS[suffix]
    except KeyError:
        raise ImportFormatError(
            str(path), None,
            f"cannot tell the format from the suffix {suffix!r}; expected one of "
            f"{', '.join(_SUFFIX_FORMATS)} (optionally .gz), or pass format="
            f"{'|'.join(FILE_FORMATS)}",
        ) from None


def import_events_file(
    store: Store,
    path: str | os.PathLike[str],
    mapping: EventMapping | str,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    skip_bad: bool = False,
    progress: bool = False,
) -> ImportReport:
    """Import events from a CSV/TSV (with a header row) or JSON-lines file, in one transaction.

    Parameters
    ----------
    store : Store
        Where to write.
    path : str | PathLike
        The file; gzipped files are read transparently.
    mapping : EventMapping | str
        Which column is what (a string is parsed with :meth:`EventMapping.parse`).
    format : str | None
        ``"csv"``, ``"tsv"`` or ``"jsonl"``; ``None`` decides from the suffix.
    encoding : str, default "utf-8"
        Text encoding of the file, ASCII-compatible (UTF-8, latin-1, cp1252, ...); a UTF-8
        byte-order mark is ignored. A line that does not decode is a bad row.
    skip_bad : bool, default False
        False: the first malformed row raises :class:`~personae.errors.ImportFormatError` and
        nothing is stored. True: bad rows are left out and counted in the report.
    progress : bool, default False
        Show a progress bar (bytes read) on stderr.
    """
    m = mapping if isinstance(mapping, EventMapping) else EventMapping.parse(mapping)
    p, fmt = _prepare(path, format)
    with ImportRun(store, path, f"events:{fmt}", skip_bad=skip_bad, progress=progress) as run:
        run.write_events(_events(run, p, _rows(run, p, fmt, encoding, m.columns()), m))
    return run.report


def import_items_file(
    store: Store,
    path: str | os.PathLike[str],
    mapping: ItemMapping | str,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    clean_html: bool = True,
    skip_bad: bool = False,
    progress: bool = False,
) -> ImportReport:
    """Import items (product or content metadata) from a CSV/TSV or JSON-lines file.

    Items repeated in the file are merged, the first non-empty value of each field winning;
    they count as ``duplicates`` in ``report.items``. ``clean_html`` strips tags and unescapes
    entities in titles, texts and categories. Other parameters as in
    :func:`import_events_file`.
    """
    m = mapping if isinstance(mapping, ItemMapping) else ItemMapping.parse(mapping)
    p, fmt = _prepare(path, format)
    with ImportRun(store, path, f"items:{fmt}", skip_bad=skip_bad, progress=progress) as run:
        rows = _rows(run, p, fmt, encoding, m.columns())
        _write_items(run, p, rows, m, clean_html)
    return run.report


def import_users_file(
    store: Store,
    path: str | os.PathLike[str],
    mapping: UserMapping | str,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    skip_bad: bool = False,
    progress: bool = False,
) -> ImportReport:
    """Import users and their attributes from a CSV/TSV or JSON-lines file.

    Users repeated in the file are merged (per attribute, the first non-empty value wins).
    Users forgotten earlier are skipped. Other parameters as in :func:`import_events_file`.
    """
    m = mapping if isinstance(mapping, UserMapping) else UserMapping.parse(mapping)
    p, fmt = _prepare(path, format)
    with ImportRun(store, path, f"users:{fmt}", skip_bad=skip_bad, progress=progress) as run:
        _write_users(run, p, _rows(run, p, fmt, encoding, m.columns()), m)
    return run.report


# ---------------------------------------------------------------------- rows


def _prepare(path: str | os.PathLike[str], format: str | None) -> tuple[Path, str]:
    p = check_path(path, want_dir=False)
    if format is None:
        return p, detect_file_format(p)
    if format not in FILE_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FILE_FORMATS)}, got {format!r}")
    return p, format


def _rows(run: ImportRun, path: Path, fmt: str, encoding: str,
          columns: list[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line number, row)`` of each data row; bad rows go to ``run.bad``."""
    if fmt == "jsonl":
        return _json_rows(run, path, encoding)
    return _csv_rows(run, path, "\t" if fmt == "tsv" else ",", encoding, columns)


def _json_rows(run: ImportRun, path: Path,
               encoding: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    report = run.report
    first = True
    for n, line in run.lines(path, encoding):
        if first and line.lstrip().startswith("["):
            raise ImportFormatError(
                str(path), n,
                "the file is one JSON array; personae reads JSON lines (one object per line) so "
                "that big files stream. Convert it with: jq -c '.[]' FILE > FILE.jsonl",
            )
        first = False
        report.rows_read += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = ""
            if line.lstrip().startswith("{'"):
                hint = " (single quotes: this looks like a Python dict, not JSON)"
            run.bad(path, n, "json", f"invalid JSON: {exc.msg} at column {exc.colno}{hint}")
            continue
        if not isinstance(obj, dict):
            run.bad(path, n, "json", f"expected a JSON object, got {type(obj).__name__}")
            continue
        yield n, obj


def _csv_rows(run: ImportRun, path: Path, delimiter: str, encoding: str,
              columns: list[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    report = run.report
    line_no = 0

    def text() -> Iterator[str]:
        nonlocal line_no
        for n, line in run.lines(path, encoding, skip_blank=False):
            line_no = n
            yield line + "\n"  # the csv module keeps line breaks inside quoted fields

    reader = csv.reader(text(), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            run.bad(path, line_no, "fields", f"unreadable CSV row: {exc}")
            continue
        if row is None:
            return
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        if header is None:
            header = [h.strip() for h in row]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ImportFormatError(
                    str(path), line_no,
                    f"the mapping names column(s) {', '.join(map(repr, missing))} that the "
                    f"header lacks; the header has {', '.join(map(repr, header))}",
                )
            continue
        report.rows_read += 1
        if len(row) != len(header):
            run.bad(path, line_no, "fields",
                    f"expected {len(header)} fields as in the header, got {len(row)}")
            continue
        yield line_no, dict(zip(header, row, strict=True))


# ---------------------------------------------------------------------- events


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            return None
    return None


def _time_parser(unit: str) -> Any:
    if unit == "auto":
        return to_timestamp
    if unit in _DIVISORS:
        divisor = _DIVISORS[unit]

        def epoch(raw: Any) -> float | None:
            number = _number(raw)
            if number is None:
                raise InvalidInput(f"expected epoch {unit}")
            return to_timestamp(number / divisor)

        return epoch
    if unit == "iso":

        def iso(raw: Any) -> float | None:
            if not isinstance(raw, str):
                raise InvalidInput("expected an ISO-8601 string")
            try:
                dt = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInput(
                    "expected an ISO-8601 time such as 2024-05-01T18:30:00Z"
                ) from None
            return to_timestamp(dt)

        return iso

    def pattern(raw: Any) -> float | None:
        try:
            dt = datetime.strptime(str(raw).strip(), unit)
        except ValueError:
            raise InvalidInput(f"does not match the pattern {unit!r}") from None
        return to_timestamp(dt if dt.tzinfo else dt.replace(tzinfo=UTC))

    return pattern


def _events(run: ImportRun, path: Path, rows: Iterator[tuple[int, Mapping[str, Any]]],
            m: EventMapping) -> Iterator[Event]:
    default_type = m.default_type or ("rating" if m.value is not None else "view")
    parse_time = _time_parser(m.time_unit)
    for n, rec in rows:
        user: Any = rec.get(m.user)  # str, or int in JSON; the record checks it
        item: Any = rec.get(m.item)
        if is_blank(user) or is_blank(item):
            which, what = (m.user, "user id") if is_blank(user) else (m.item, "item id")
            run.bad(path, n, "missing", f"the {what} field {which!r} is missing or empty")
            continue
        value = None
        if m.value is not None:
            raw = rec.get(m.value)
            if not is_blank(raw):
                value = _number(raw)
                if value is None or not math.isfinite(value):
                    run.bad(path, n, "number", f"{m.value} {raw!r} is not a finite number")
                    continue
        ts = None
        if m.time is not None:
            raw = rec.get(m.time)
            if not is_blank(raw):
                try:
                    ts = parse_time(raw)
                except (InvalidInput, OverflowError) as exc:
                    run.bad(path, n, "timestamp", f"{m.time} {raw!r}: {exc}")
                    continue
        kind = default_type
        if m.type is not None:
            raw = rec.get(m.type)
            if not is_blank(raw):
                kind = str(raw).strip().lower().replace(" ", "_")
        context = _attributes(rec, m.context)
        event_id = None
        if m.event_id is not None:
            raw = rec.get(m.event_id)
            event_id = None if is_blank(raw) else str(raw)
        try:
            yield Event(user, item, kind, value, ts, context, event_id)
        except InvalidInput as exc:
            run.bad(path, n, "value", str(exc))


# ---------------------------------------------------------------------- items and users


def _text(raw: Any, *, keep_lines: bool, clean: bool) -> str | None:
    if is_blank(raw):
        return None
    pieces = flatten_strings(raw)
    if clean:
        pieces = [clean_text(p, keep_lines=keep_lines) for p in pieces]
    else:
        pieces = [p.strip() for p in pieces]
    out = ("\n" if keep_lines else " ").join(p for p in pieces if p)
    return out or None


def _categories(raw: Any, sep: str | None, clean: bool) -> list[str]:
    out = []
    for c in flatten_strings(raw):
        for part in c.split(sep) if sep else (c,):
            part = clean_text(part) if clean else part.strip()
            if part:
                out.append(part)
    return out


def _availability(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _attributes(rec: Mapping[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """The named columns as a key/value mapping (blank values left out).

    A column holding a JSON object contributes its keys (one level), so that a file written by
    personae itself (``"context": {"device": "tv"}``) reads back as ``{"device": "tv"}``.
    """
    out: dict[str, Any] = {}
    for c in columns:
        val = rec.get(c)
        if is_blank(val):
            continue
        if isinstance(val, Mapping):
            out.update((k, v) for k, v in val.items() if not is_blank(v))
        else:
            out[c] = val.strip() if isinstance(val, str) else val
    return out


def _write_items(run: ImportRun, path: Path, rows: Iterator[tuple[int, Mapping[str, Any]]],
                 m: ItemMapping, clean: bool) -> None:
    # Items are written as they stream; a repeated id is held back (only the repeats are kept
    # in memory) and merged into the stored item at the end, in the same transaction.
    seen: set[str] = set()
    repeats: dict[str, list[tuple[Item, bool]]] = {}  # later rows, with "gave availability"
    given_availability: set[str] = set()  # ids whose first row gave the availability
    n_repeats = 0

    def items() -> Iterator[Item]:
        nonlocal n_repeats
        for n, rec in rows:
            raw_id: Any = rec.get(m.item)
            if is_blank(raw_id):
                run.bad(path, n, "missing", f"the item id field {m.item!r} is missing or empty")
                continue
            available = True
            given = False
            if m.available is not None and not is_blank(rec.get(m.available)):
                parsed = _availability(rec.get(m.available))
                if parsed is None:
                    run.bad(path, n, "value",
                            f"{m.available} {rec.get(m.available)!r} is not true/false")
                    continue
                available, given = parsed, True
            try:
                item = Item(
                    raw_id,
                    title=_text(rec.get(m.title), keep_lines=False, clean=clean)
                    if m.title else None,
                    text=_text(rec.get(m.text), keep_lines=True, clean=clean) if m.text else None,
                    categories=_categories(rec.get(m.categories), m.categories_sep, clean)
                    if m.categories else [],
                    attributes=_attributes(rec, m.attributes),
                    available=available,
                )
            except InvalidInput as exc:
                run.bad(path, n, "value", str(exc))
                continue
            if item.item_id in seen:
                repeats.setdefault(item.item_id, []).append((item, given))
                n_repeats += 1
                continue
            seen.add(item.item_id)
            if given:
                given_availability.add(item.item_id)
            yield item

    run.write_items(items())
    ids = list(repeats)
    for i in range(0, len(ids), 5000):
        stored = run.stored_items(ids[i:i + 5000])
        merged = []
        for item_id, item in stored.items():
            new = item
            for later, given in repeats[item_id]:
                new = _merge_item(new, later, given and item_id not in given_availability)
                if given:
                    given_availability.add(item_id)
            if new != item:
                merged.append(new)
        run.writer.upsert_items(merged)  # counted below as the repeats they came from
    run.report.items += WriteResult(duplicates=n_repeats)


def _merge_item(first: Item, later: Item, take_availability: bool) -> Item:
    return Item(
        first.item_id,
        title=first.title if not is_blank(first.title) else later.title,
        text=first.text if not is_blank(first.text) else later.text,
        categories=first.categories or later.categories,
        attributes=first_non_empty(first.attributes, later.attributes),
        available=later.available if take_availability else first.available,
        created_at=first.created_at,
    )


def _write_users(run: ImportRun, path: Path, rows: Iterator[tuple[int, Mapping[str, Any]]],
                 m: UserMapping) -> None:
    seen: set[str] = set()
    repeats: dict[str, list[dict[str, Any]]] = {}
    n_repeats = 0

    def users() -> Iterator[User]:
        nonlocal n_repeats
        for n, rec in rows:
            raw_id: Any = rec.get(m.user)
            if is_blank(raw_id):
                run.bad(path, n, "missing", f"the user id field {m.user!r} is missing or empty")
                continue
            try:
                user = User(raw_id, attributes=_attributes(rec, m.attributes))
            except InvalidInput as exc:
                run.bad(path, n, "value", str(exc))
                continue
            if user.user_id in seen:
                repeats.setdefault(user.user_id, []).append(user.attributes)
                n_repeats += 1
                continue
            seen.add(user.user_id)
            yield user

    run.write_users(users())
    ids = list(repeats)
    for i in range(0, len(ids), 5000):
        stored = run.stored_user_attributes(ids[i:i + 5000])
        merged = []
        for user_id, attributes in stored.items():  # forgotten users are not stored
            new = attributes
            for later in repeats[user_id]:
                new = first_non_empty(new, later)
            if new != attributes:
                merged.append(User(user_id, attributes=new))
        run.writer.upsert_users(merged)
    run.report.users += WriteResult(duplicates=n_repeats)
