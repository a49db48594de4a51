"""The MeLU cold-start partitions of MovieLens-1M, with the movies' IMDb text.

The folder (``ml-1m-melu-coldstart``, from the MeLU authors) holds:

- ``movies_extrainfos.dat``: UTF-8, ``::``-separated, 11 fields —
  ``movie_id::title::year::rated::released::genre::director::writer::actors::plot::poster_url``;
  lists inside a field are ``", "``-separated; ``N/A`` means missing;
- partitions as pairs ``<name>.json`` / ``<name>_y.json``: ``{"<user_id>": [movie ids]}`` and
  ``{"<user_id>": [ratings]}``, aligned position by position; no timestamps.

Ratings become ``rating`` events without a timestamp, whose context names their partition
(``{"melu_partition": "user_cold_state"}``), so the partitions can be told apart (and split on)
after the import.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from personae.data.importers.common import ImportReport, ImportRun, check_path, find_file
from personae.data.importers.movielens import read_ml1m_users
from personae.errors import ImportFormatError, InvalidInput
from personae.store import Event, Item, Store

ITEMS_FILE = "movies_extrainfos.dat"
#: The context key recording which partition an event came from.
PARTITION_KEY = "melu_partition"

_N_FIELDS = 11
_LIST_SEP = ", "


def import_melu(
    store: Store,
    path: str | os.PathLike[str],
    *,
    users_path: str | os.PathLike[str] | None = None,
    partitions: list[str] | None = None,
    skip_bad: bool = False,
    progress: bool = False,
) -> ImportReport:
    """Import the MeLU cold-start folder: movies with text, users, and the rated partitions.

    Parameters
    ----------
    store : Store
        Where to write (one transaction for the whole import).
    path : str | PathLike
        The folder holding ``movies_extrainfos.dat`` and the ``*_state.json`` /
        ``*_state_y.json`` pairs (any of them may be gzipped); a file inside it also works.
    users_path : str | PathLike | None
        ml-1m ``users.dat`` for the users' attributes. ``None`` looks for ``users.dat`` in the
        folder, then in a sibling ``../ml-1m/``; without one, users are created bare by their
        events (the report says so).
    partitions : list[str] | None
        Which partitions to import, e.g. ``["user_cold_state"]``; ``None``: every pair found.
    skip_bad : bool, default False
        False: the first malformed row (or a user whose two lists differ in length) raises
        :class:`~personae.errors.ImportFormatError` and nothing is stored. True: such rows are
        left out and counted in the report.
    progress : bool, default False
        Show a progress bar (bytes read) on stderr.

    Returns
    -------
    ImportReport
        With ``format="melu"``. On the published folder: 3,881 items, 6,040 users (from
        ``users.dat``), 359,761 events from 5,977 users on 3,497 movies.
    """
    p = check_path(path)
    folder = p if p.is_dir() else p.parent
    items_file = find_file(folder, ITEMS_FILE)
    found = _find_partitions(folder)
    if partitions is not None:
        unknown = sorted(set(partitions) - set(found))
        if unknown:
            raise ImportFormatError(
                str(folder), None,
                f"no partition {', '.join(map(repr, unknown))} here; found "
                f"{', '.join(sorted(found)) or 'none'}",
            )
        found = {name: found[name] for name in partitions}
    if items_file is None and not found:
        raise ImportFormatError(
            str(folder), None,
            f"not a MeLU folder: expected {ITEMS_FILE} and <partition>.json/<partition>_y.json "
            "pairs such as user_cold_state.json and user_cold_state_y.json",
        )
    users_file = _find_users(folder, users_path)

    with ImportRun(store, path, "melu", skip_bad=skip_bad, progress=progress) as run:
        if items_file is not None:
            run.write_items(_items(run, items_file))
        else:
            run.report.notes.append(f"no {ITEMS_FILE}: movies are created bare by their events")
        if users_file is not None:
            run.write_users(read_ml1m_users(run, users_file))
            run.report.notes.append(f"user attributes from {users_file}")
        else:
            run.report.notes.append(
                "no users.dat found (pass users_path=...): users are created bare by their events"
            )
        for name, (ids_file, ratings_file) in sorted(found.items()):
            run.write_events(_partition(run, name, ids_file, ratings_file))
    return run.report


def _find_partitions(folder: Path) -> dict[str, tuple[Path, Path]]:
    """``{name: (ids file, ratings file)}`` for every ``<name>.json`` with a ``<name>_y.json``."""
    out = {}
    for f in folder.iterdir():
        name = f.name
        for suffix in (".json", ".json.gz"):
            if name.endswith(suffix) and not name.endswith("_y" + suffix):
                stem = name[: -len(suffix)]
                ratings = find_file(folder, f"{stem}_y.json")
                if ratings is None:
                    raise ImportFormatError(
                        str(f), None, f"partition {stem!r} has no ratings file {stem}_y.json"
                    )
                out[stem] = (f, ratings)
    return out


def _find_users(folder: Path, users_path: str | os.PathLike[str] | None) -> Path | None:
    if users_path is not None:
        return check_path(users_path, want_dir=False)
    return find_file(folder, "users.dat") or find_file(folder.parent / "ml-1m", "users.dat")


def _missing(value: str) -> bool:
    return not value or value == "N/A"


def _split(value: str) -> list[str]:
    return [] if _missing(value) else [v.strip() for v in value.split(_LIST_SEP) if v.strip()]


def _items(run: ImportRun, path: Path) -> Iterator[Item]:
    report = run.report
    for n, line in run.lines(path, "utf-8"):
        report.rows_read += 1
        parts = line.split("::")
        if len(parts) != _N_FIELDS:
            run.bad(path, n, "fields",
                    f"expected {_N_FIELDS} '::'-separated fields (movie_id, title, year, rated, "
                    f"released, genre, director, writer, actors, plot, poster_url), "
                    f"got {len(parts)}")
            continue
        (movie_id, title, year, rated, released, genre, director, writer, actors, plot,
         poster) = parts
        attributes: dict[str, Any] = {}
        if not _missing(year):
            try:
                attributes["year"] = int(year)
            except ValueError:
                run.bad(path, n, "number", f"the year {year!r} is not a whole number")
                continue
        for key, value in (("rated", rated), ("released", released)):
            if not _missing(value):
                attributes[key] = value
        for key, value in (("director", director), ("writer", writer), ("actors", actors)):
            names = _split(value)
            if names:
                attributes[key] = names
        if not _missing(poster):
            attributes["poster_url"] = poster
        try:
            yield Item(movie_id, title=None if _missing(title) else title,
                       text=None if _missing(plot.strip()) else plot.strip(),
                       categories=_split(genre), attributes=attributes)
        except InvalidInput as exc:
            run.bad(path, n, "value", str(exc))


def _load_json(run: ImportRun, path: Path) -> dict[str, Any] | None:
    """The partition file's object; ``None`` (after :meth:`ImportRun.bad`) when unusable."""
    # Each partition file is one JSON object (about 1.3 MB for the largest): json.loads of the
    # whole file is simpler and faster than an incremental parser at this size.
    data = run.read_all(path)
    if not data.strip():
        run.bad(path, None, "empty", "the file is empty")
        return None
    try:
        obj = json.loads(data)
    except UnicodeDecodeError as exc:
        run.bad(path, None, "encoding", f"the file is not valid UTF-8 ({exc.reason})")
        return None
    except json.JSONDecodeError as exc:
        run.bad(path, exc.lineno, "json", f"invalid JSON: {exc.msg} (column {exc.colno})")
        return None
    if not isinstance(obj, dict):
        run.bad(path, None, "json",
                f"expected a JSON object {{user_id: [...]}}, got a {type(obj).__name__}")
        return None
    return obj


def _partition(run: ImportRun, name: str, ids_path: Path,
               ratings_path: Path) -> Iterator[Event]:
    movies_by_user = _load_json(run, ids_path)
    ratings_by_user = _load_json(run, ratings_path)
    if movies_by_user is None or ratings_by_user is None:
        return  # the problem is reported; with skip_bad the partition is left out
    report = run.report
    for user in ratings_by_user.keys() - movies_by_user.keys():
        run.bad(ratings_path, None, "mismatch",
                f"user {user!r} has ratings in {ratings_path.name} but no movie ids in "
                f"{ids_path.name}")
    for user, movies in movies_by_user.items():
        ratings = ratings_by_user.get(user)
        if ratings is None:
            run.bad(ids_path, None, "mismatch",
                    f"user {user!r} has movie ids in {ids_path.name} but no ratings in "
                    f"{ratings_path.name}")
            continue
        if not isinstance(movies, list) or not isinstance(ratings, list):
            run.bad(ids_path, None, "mismatch",
                    f"user {user!r}: expected a list of movie ids and a list of ratings, got "
                    f"{type(movies).__name__} and {type(ratings).__name__}")
            continue
        if len(movies) != len(ratings):
            run.bad(ids_path, None, "mismatch",
                    f"user {user!r}: {len(movies)} movie ids in {ids_path.name} but "
                    f"{len(ratings)} ratings in {ratings_path.name}")
            continue
        for pos, (movie, rating) in enumerate(zip(movies, ratings, strict=True)):
            report.rows_read += 1
            if type(rating) not in (int, float):
                run.bad(ratings_path, None, "number",
                        f"user {user!r}, position {pos}: the rating {rating!r} is not a number")
                continue
            try:
                yield Event(user, movie, "rating", float(rating), None, {PARTITION_KEY: name})
            except InvalidInput as exc:
                run.bad(ids_path, None, "value", f"user {user!r}, position {pos}: {exc}")
