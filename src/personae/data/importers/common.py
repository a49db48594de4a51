"""What every importer shares: streaming input, bad-row handling, progress and the report.

An import runs inside one :class:`ImportRun`, which holds one store transaction
(:meth:`personae.Store.writer`): either every row of the import is stored, or — when a malformed
row raises :class:`~personae.errors.ImportFormatError`, or anything else goes wrong — none is.

Input files are read line by line (never whole, except the small JSON files of the MeLU
partitions), transparently decompressed when they start with the gzip magic bytes, and decoded
one line at a time so that a wrong byte is reported with its line number.
"""

from __future__ import annotations

import gzip
import html
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from sqlalchemy import select

from personae.errors import ImportFormatError
from personae.progress import ProgressBars
from personae.store import Event, Item, Store, User, Writer, WriteResult
from personae.store import schema as S

#: How many bad rows a report keeps as examples (all of them are counted).
MAX_EXAMPLES = 20

_GZIP_MAGIC = b"\x1f\x8b"
# What a damaged gzip stream raises while it is read.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
#: Update the progress bar every this many lines (a power of two minus one, used as a mask).
_PROGRESS_EVERY = 4095


# ---------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class BadRow:
    """One row that could not be imported: where it is and what is wrong with it."""

    path: str
    line: int | None
    kind: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "kind": self.kind, "problem": self.problem}


@dataclass
class ImportReport:
    """What an import read and wrote.

    Attributes
    ----------
    source : str
        The path given to the importer.
    format : str
        What was imported: ``ml-100k``, ``ml-1m``, ``melu``, ``events:csv``, ``items:jsonl``, ...
    files : list[str]
        The files read, in order.
    rows_read : int
        Data rows seen in all files (good and bad; blank lines and CSV headers not counted).
    users, items, events : WriteResult
        What the store did with them: inserted, updated, duplicates, skipped (forgotten users).
        Items and users repeated within one file count as ``duplicates`` (they are merged).
    bad_rows : int
        Rows left out with ``skip_bad=True`` (including file-level problems such as a
        truncated gzip stream or an empty file).
    bad_by_kind : dict[str, int]
        ``bad_rows`` per kind of problem (``fields``, ``number``, ``timestamp``, ``json``,
        ``missing``, ``encoding``, ``gzip``, ``empty``, ``value``, ``mismatch``).
    bad_examples : list[BadRow]
        The first :data:`MAX_EXAMPLES` bad rows, with file, line and problem.
    notes : list[str]
        Things worth knowing that are not errors (which ``users.dat`` was used, ...).
    seconds : float
        Wall-clock time of the whole import, commit included.
    """

    source: str
    format: str
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    users: WriteResult = field(default_factory=WriteResult)
    items: WriteResult = field(default_factory=WriteResult)
    events: WriteResult = field(default_factory=WriteResult)
    bad_rows: int = 0
    bad_by_kind: dict[str, int] = field(default_factory=dict)
    bad_examples: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--format json``)."""

        def wr(r: WriteResult) -> dict[str, int]:
            return {"inserted": r.inserted, "updated": r.updated, "duplicates": r.duplicates,
                    "skipped": r.skipped}

        return {
            "source": self.source,
            "format": self.format,
            "files": list(self.files),
            "rows_read": self.rows_read,
            "users": wr(self.users),
            "items": wr(self.items),
            "events": wr(self.events),
            "bad_rows": self.bad_rows,
            "bad_by_kind": dict(self.bad_by_kind),
            "bad_examples": [b.to_dict() for b in self.bad_examples],
            "notes": list(self.notes),
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        """A few lines for people."""

        def wr(r: WriteResult, updates: bool = True) -> str:
            parts = [f"{r.inserted:,} new"]
            if updates:
                parts.append(f"{r.updated:,} updated")
            if r.duplicates:
                parts.append(f"{r.duplicates:,} duplicates")
            if r.skipped:
                parts.append(f"{r.skipped:,} skipped (forgotten users)")
            return ", ".join(parts)

        n_files = len(self.files)
        lines = [
            f"Imported {self.format} from {self.source} "
            f"({n_files} file{'s' if n_files != 1 else ''}) in {self.seconds:.2f} s",
            f"  rows read  {self.rows_read:,}",
            f"  users      {wr(self.users)}",
            f"  items      {wr(self.items)}",
            f"  events     {wr(self.events, updates=False)}",  # events are never updated
        ]
        if self.bad_rows:
            kinds = ", ".join(f"{k}: {n:,}" for k, n in sorted(self.bad_by_kind.items()))
            lines.append(f"  bad rows   {self.bad_rows:,} skipped ({kinds})")
            lines.extend(f"    {b}" for b in self.bad_examples)
            if self.bad_rows > len(self.bad_examples):
                lines.append(f"    … and {self.bad_rows - len(self.bad_examples):,} more")
        else:
            lines.append("  bad rows   0")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


# ---------------------------------------------------------------------- input files


def check_path(path: str | os.PathLike[str], *, want_dir: bool | None = None) -> Path:
    """``path`` as a :class:`Path`, or an :class:`ImportFormatError` saying why it cannot be read.

    ``want_dir``: ``True`` needs a directory, ``False`` a file, ``None`` either.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ImportFormatError(str(path), None, "no such file or directory")
    if want_dir is True and not p.is_dir():
        raise ImportFormatError(str(path), None, "expected a directory, got a file")
    if want_dir is False and p.is_dir():
        raise ImportFormatError(str(path), None, "expected a file, got a directory")
    return p


def base_name(path: Path) -> str:
    """The file name, lower-cased, without a ``.gz`` suffix (``u.data.gz`` → ``u.data``)."""
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def find_file(folder: Path, *names: str) -> Path | None:
    """The first of ``names`` (or ``name.gz``) that exists in ``folder``."""
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def open_binary(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """``(raw, stream)``: the file as opened (its ``tell()`` gives bytes read, for progress) and a
    buffered binary stream of its content, decompressed when it starts with the gzip magic."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise ImportFormatError(str(path), None, f"cannot read the file: {exc.strerror}") from None
    if raw.read(2) == _GZIP_MAGIC:
        raw.seek(0)
        # Read lines from the GzipFile itself (small internal buffer): a bigger buffer on top
        # would be twice as fast, but a truncated stream would then lose everything in the
        # buffer, up to megabytes of whole lines, instead of the last few kilobytes.
        return raw, cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    raw.seek(0)
    return raw, raw


def sniff_first_line(path: Path, encoding: str = "utf-8") -> str:
    """The first non-blank line of a (possibly gzipped) file, or ``""``."""
    raw, stream = open_binary(path)
    with raw, stream:
        try:
            for line in stream:
                text = line.decode(encoding, errors="replace").strip()
                if text:
                    return text
        except _GZIP_ERRORS:
            return ""
    return ""


# ---------------------------------------------------------------------- text cleaning

# A tag starts with a letter, "/" or "!" right after "<", so "5 < 6 and 7 > 2" survives.
_TAG = re.compile(r"<[/!]?[A-Za-z][^<>]*>")
_BREAK_TAG = re.compile(r"<\s*(?:br|/p|/div|/li|/h\d)\s*/?\s*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_ALL_SPACE = re.compile(r"\s+")


def clean_text(value: str, *, keep_lines: bool = False) -> str:
    """Strip HTML tags, unescape entities and collapse whitespace.

    ``keep_lines`` keeps line breaks (``<br>``, ``</p>`` and newlines become ``\\n``; blank lines
    are dropped), for descriptions; otherwise everything is one line, for titles.
    """
    if "<" in value:
        if keep_lines:
            value = _BREAK_TAG.sub("\n", value)
        value = _TAG.sub(" ", value)
    if "&" in value:
        value = html.unescape(value)
    if keep_lines:
        lines = (_SPACES.sub(" ", line).strip() for line in value.splitlines())
        return "\n".join(line for line in lines if line)
    return _ALL_SPACE.sub(" ", value).strip()


def flatten_strings(value: Any) -> list[str]:
    """Strings found in ``value``, nested lists flattened, in order (``None`` → ``[]``)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        out: list[str] = []
        for v in value:
            out.extend(flatten_strings(v))
        return out
    return [str(value)]


# ---------------------------------------------------------------------- the import run


class ImportRun:
    """One import: a store transaction, the bad-row policy, progress, and the report.

    Use as a context manager; on a clean exit the transaction commits and ``report.seconds`` is
    set. Records are written with :meth:`write_users`, :meth:`write_items` and
    :meth:`write_events`, which take (lazy) iterables, so a file streams from disk to the store.
    """

    def __init__(self, store: Store, source: str | os.PathLike[str], format: str, *,
                 skip_bad: bool, progress: bool) -> None:
        self.store = store
        self.skip_bad = skip_bad
        self.report = ImportReport(source=str(source), format=format)
        self._progress = ProgressBars(progress, unit="bytes")
        self._stack = ExitStack()
        self._start = 0.0
        self.writer: Writer

    def __enter__(self) -> ImportRun:
        self._start = time.perf_counter()
        with ExitStack() as stack:
            stack.enter_context(self._progress)
            self.writer = stack.enter_context(self.store.writer())
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None:
        suppressed = self._stack.__exit__(exc_type, exc, tb)
        self.report.seconds = time.perf_counter() - self._start
        return suppressed

    # -- bad rows

    def bad(self, path: str | os.PathLike[str], line: int | None, kind: str,
            problem: str) -> None:
        """A row cannot be imported: raise :class:`ImportFormatError`, or count it and go on
        when ``skip_bad``."""
        if not self.skip_bad:
            raise ImportFormatError(str(path), line, problem)
        r = self.report
        r.bad_rows += 1
        r.bad_by_kind[kind] = r.bad_by_kind.get(kind, 0) + 1
        if len(r.bad_examples) < MAX_EXAMPLES:
            r.bad_examples.append(BadRow(str(path), line, kind, problem))

    # -- reading

    def lines(self, path: Path, encoding: str = "utf-8", *,
              skip_blank: bool = True) -> Iterator[tuple[int, str]]:
        """``(line_number, text)`` of each line (1-based, without the line break).

        Undecodable lines and a damaged gzip stream go to :meth:`bad`; so does an empty file.
        A line is handed out only once the next one has been read, so that the last line of a
        truncated gzip stream — cut anywhere — is dropped rather than imported half.
        """
        self.report.files.append(str(path))
        raw, stream = open_binary(path)
        task = self._progress.add(path.name, os.path.getsize(path))
        n = 0
        pending: bytes | None = None
        with raw, stream:
            it = iter(stream)
            while True:
                try:
                    nxt = next(it, None)
                except _GZIP_ERRORS as exc:
                    self.bad(path, max(n, 1), "gzip",
                             f"the gzip stream is truncated or corrupt ({exc}); "
                             f"line {max(n, 1)} and anything after it are lost")
                    return
                if pending is not None:
                    try:
                        text = pending.rstrip(b"\r\n").decode(encoding)
                    except UnicodeDecodeError as exc:
                        byte = pending[exc.start]
                        self.bad(path, n, "encoding",
                                 f"the line is not valid {encoding} (byte 0x{byte:02x} at offset "
                                 f"{exc.start}); pass the file's real encoding")
                    else:
                        if n == 1 and text.startswith("\ufeff"):  # a UTF-8 byte-order mark
                            text = text[1:]
                        if not skip_blank or text.strip():
                            yield n, text
                if nxt is None:
                    break
                pending = nxt
                n += 1
                if not n & _PROGRESS_EVERY:
                    self._progress.update(task, raw.tell())
            self._progress.update(task, raw.tell())
        if n == 0:
            self.bad(path, None, "empty", "the file is empty")

    def read_all(self, path: Path) -> bytes:
        """The whole (decompressed) content of a small file, for formats that cannot stream."""
        self.report.files.append(str(path))
        raw, stream = open_binary(path)
        task = self._progress.add(path.name, os.path.getsize(path))
        chunks = []
        with raw, stream:
            try:
                while chunk := stream.read(1 << 20):
                    chunks.append(chunk)
                    self._progress.update(task, raw.tell())
            except _GZIP_ERRORS as exc:
                raise ImportFormatError(
                    str(path), None, f"the gzip stream is truncated or corrupt ({exc})"
                ) from None
        return b"".join(chunks)

    # -- writing

    def write_users(self, users: Iterable[User]) -> None:
        self.report.users += self.writer.upsert_users(users)

    def write_items(self, items: Iterable[Item]) -> None:
        self.report.items += self.writer.upsert_items(items)

    def write_events(self, events: Iterable[Event]) -> None:
        self.report.events += self.writer.add_events(events)

    def stored_items(self, item_ids: list[str]) -> dict[str, Item]:
        """Items as stored so far *in this transaction* (the store's own readers would not see
        rows this import has not committed yet)."""
        out: dict[str, Item] = {}
        for i in range(0, len(item_ids), 900):
            rows = self.writer.conn.execute(
                select(S.items).where(S.items.c.item_id.in_(item_ids[i:i + 900]))
            )
            for row in rows:
                out[row.item_id] = Item(
                    row.item_id, title=row.title, text=row.text,
                    categories=list(row.categories or []), attributes=row.attributes or {},
                    available=bool(row.available), created_at=row.created_at,
                )
        return out

    def stored_user_attributes(self, user_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Attributes of users as stored so far in this transaction, by their raw id."""
        stored = {self.store.stored_user_id(u): u for u in user_ids}
        keys = list(stored)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 900):
            rows = self.writer.conn.execute(
                select(S.users.c.user_id, S.users.c.attributes)
                .where(S.users.c.user_id.in_(keys[i:i + 900]))
            )
            for sid, attributes in rows:
                out[stored[sid]] = dict(attributes or {})
        return out


def is_blank(value: Any) -> bool:
    """``None``, an empty or all-space string, or an empty list/dict."""
    if value is None:
        return True
    cls = type(value)
    if cls is str:
        return not value or value.isspace()
    if cls is int or cls is float:  # the common cases first: this runs for every field
        return False
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return not value
    return False


def first_non_empty(values: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the keys of ``extra`` added where ``values`` has none (or a blank one)."""
    out = dict(values)
    for key, val in extra.items():
        if is_blank(out.get(key)) and not is_blank(val):
            out[key] = val
    return out
