"""MovieLens 100K (``u.data``/``u.item``/``u.user``) and 1M (``*.dat`` with ``::``) importers.

Ids are kept as the strings in the files (``"1"``, ``"242"``); ratings become ``rating`` events
with their value (1–5) and timestamp (epoch seconds).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from personae.data.importers.common import (
    ImportReport,
    ImportRun,
    base_name,
    check_path,
    find_file,
    sniff_first_line,
)
from personae.errors import ImportFormatError, InvalidInput
from personae.store import Event, Item, Store, User

#: The 19 genres of ml-100k, in the order of the flags in ``u.item`` (used without ``u.genre``).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)

#: ml-1m ``users.dat`` age codes → the labels of the ml-1m README.
ML1M_AGE_GROUPS = {
    1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+",
}

#: ml-1m ``users.dat`` occupation codes → names (the ml-1m README; 0 is "other or not
#: specified").
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)

_ML100K_RATINGS = re.compile(r"^u(?:\.data|[1-5ab]\.(?:base|test))$")
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
_YEAR_AT_END = re.compile(r"(\d{4})$")

# Which reader each single file is read with.
_SINGLE_FILES = {
    "u.item": ("ml-100k", "items"),
    "u.user": ("ml-100k", "users"),
    "ratings.dat": ("ml-1m", "ratings"),
    "movies.dat": ("ml-1m", "items"),
    "users.dat": ("ml-1m", "users"),
}


def import_movielens(
    store: Store,
    path: str | os.PathLike[str],
    *,
    skip_bad: bool = False,
    progress: bool = False,
) -> ImportReport:
    """Import a MovieLens data set (ml-100k or ml-1m) into ``store``, in one transaction.

    Parameters
    ----------
    store : Store
        Where to write.
    path : str | PathLike
        A MovieLens folder — ml-100k (``u.data``, ``u.item``, ``u.user``, ``u.genre``) or ml-1m
        (``ratings.dat``, ``movies.dat``, ``users.dat``; any of them may be missing) — or a
        single one of those files. Every file may be gzipped (``u.data.gz``). A single ratings
        file with another name is recognised by its separator (tab: ml-100k, ``::``: ml-1m).
    skip_bad : bool, default False
        False: the first malformed row raises :class:`~personae.errors.ImportFormatError`
        (file, line, problem) and nothing is stored. True: bad rows are left out and counted in
        the report.
    progress : bool, default False
        Show a progress bar (bytes read) on stderr.

    Returns
    -------
    ImportReport
        Users, items and events written; ``format`` is ``"ml-100k"`` or ``"ml-1m"``.
    """
    p = check_path(path)
    plan = _folder_plan(p) if p.is_dir() else _file_plan(p)
    flavour = plan[0][0]
    with ImportRun(store, path, flavour, skip_bad=skip_bad, progress=progress) as run:
        # Items and users first, so that events find them with their attributes already there.
        for fl, kind, file in sorted(plan, key=lambda t: ("items", "users", "ratings").index(t[1])):
            if kind == "items" and fl == "ml-100k":
                genres = _read_genres(run, file.parent)
                run.write_items(_ml100k_items(run, file, genres))
            elif kind == "items":
                run.write_items(_ml1m_items(run, file))
            elif kind == "users" and fl == "ml-100k":
                run.write_users(_ml100k_users(run, file))
            elif kind == "users":
                run.write_users(read_ml1m_users(run, file))
            else:
                run.write_events(_ratings(run, file, "\t" if fl == "ml-100k" else "::"))
        if p.is_dir() and not any(kind == "ratings" for _, kind, _ in plan):
            run.report.notes.append("no ratings file: users and items only, no events")
    return run.report


def _folder_plan(folder: Path) -> list[tuple[str, str, Path]]:
    plan = []
    for name, kind in (("u.data", "ratings"), ("u.item", "items"), ("u.user", "users")):
        found = find_file(folder, name)
        if found is not None:
            plan.append(("ml-100k", kind, found))
    if plan:
        return plan
    for name, kind in (("ratings.dat", "ratings"), ("movies.dat", "items"),
                       ("users.dat", "users")):
        found = find_file(folder, name)
        if found is not None:
            plan.append(("ml-1m", kind, found))
    if plan:
        return plan
    raise ImportFormatError(
        str(folder), None,
        "not a MovieLens folder: expected u.data (ml-100k) or ratings.dat, movies.dat, "
        "users.dat (ml-1m), possibly gzipped",
    )


def _file_plan(file: Path) -> list[tuple[str, str, Path]]:
    name = base_name(file)
    if _ML100K_RATINGS.match(name):
        return [("ml-100k", "ratings", file)]
    if name in _SINGLE_FILES:
        flavour, kind = _SINGLE_FILES[name]
        return [(flavour, kind, file)]
    first = sniff_first_line(file)
    if first.count("::") == 3:
        return [("ml-1m", "ratings", file)]
    if first.count("\t") == 3:
        return [("ml-100k", "ratings", file)]
    raise ImportFormatError(
        str(file), 1,
        "not a MovieLens file: expected u.data, u.item, u.user, ratings.dat, movies.dat or "
        "users.dat, or ratings as 'user<TAB>item<TAB>rating<TAB>timestamp' or "
        "'user::item::rating::timestamp'",
    )


# ---------------------------------------------------------------------- readers


def _ratings(run: ImportRun, path: Path, sep: str) -> Iterator[Event]:
    """``user, item, rating, timestamp`` rows (tab- or ``::``-separated)."""
    what = "tab" if sep == "\t" else "'::'"
    report = run.report
    for n, line in run.lines(path):
        report.rows_read += 1
        parts = line.split(sep)
        if len(parts) != 4:
            run.bad(path, n, "fields",
                    f"expected 4 {what}-separated fields (user, item, rating, timestamp), "
                    f"got {len(parts)}: {line[:80]!r}")
            continue
        user, item, rating, ts = parts
        try:
            value = float(rating)
        except ValueError:
            run.bad(path, n, "number", f"the rating {rating!r} is not a number")
            continue
        try:
            seconds = int(ts)
        except ValueError:
            run.bad(path, n, "timestamp",
                    f"the timestamp {ts!r} is not a whole number of epoch seconds")
            continue
        try:
            yield Event(user, item, "rating", value, seconds)
        except InvalidInput as exc:
            run.bad(path, n, "value", str(exc))


def _read_genres(run: ImportRun, folder: Path) -> tuple[str, ...]:
    """Genre names by flag position, from ``u.genre`` when present."""
    path = find_file(folder, "u.genre")
    if path is None:
        return ML100K_GENRES
    by_index: dict[int, str] = {}
    for n, line in run.lines(path, "latin-1"):
        name, _, idx = line.rpartition("|")
        if not name or not idx.strip().isdigit():
            run.bad(path, n, "fields", f"expected 'genre|index', got {line[:80]!r}")
            continue
        by_index[int(idx)] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise ImportFormatError(str(path), None,
                                f"genre indices must run 0..{len(by_index) - 1} without gaps, "
                                f"got {sorted(by_index)}")
    return tuple(by_index[i] for i in range(len(by_index)))


def _ml100k_items(run: ImportRun, path: Path, genres: tuple[str, ...]) -> Iterator[Item]:
    """``u.item``: ``id|title|release date|video release date|IMDb URL|<one 0/1 per genre>``,
    latin-1."""
    n_fields = 5 + len(genres)
    report = run.report
    for n, line in run.lines(path, "latin-1"):
        report.rows_read += 1
        parts = line.split("|")
        if len(parts) != n_fields:
            run.bad(path, n, "fields",
                    f"expected {n_fields} '|'-separated fields (id, title, release date, video "
                    f"release date, IMDb URL and {len(genres)} genre flags), got {len(parts)}")
            continue
        item_id, title, release, _video, url = parts[:5]
        flags = parts[5:]
        if any(f not in ("0", "1") for f in flags):
            run.bad(path, n, "value", f"genre flags must be 0 or 1, got {'|'.join(flags)!r}")
            continue
        attributes: dict[str, object] = {}
        if release:
            attributes["release_date"] = release
            m = _YEAR_AT_END.search(release)
            if m:
                attributes["year"] = int(m.group(1))
        if url:
            attributes["imdb_url"] = url
        try:
            yield Item(
                item_id, title=title or None,
                categories=[g for g, f in zip(genres, flags, strict=True) if f == "1"],
                attributes=attributes,
            )
        except InvalidInput as exc:
            run.bad(path, n, "value", str(exc))


def _ml100k_users(run: ImportRun, path: Path) -> Iterator[User]:
    """``u.user``: ``id|age|gender|occupation|zip code``."""
    report = run.report
    for n, line in run.lines(path, "latin-1"):
        report.rows_read += 1
        parts = line.split("|")
        if len(parts) != 5:
            run.bad(path, n, "fields",
                    f"expected 5 '|'-separated fields (id, age, gender, occupation, zip code), "
                    f"got {len(parts)}")
            continue
        user_id, age, gender, occupation, zip_code = parts
        try:
            age_years = int(age)
        except ValueError:
            run.bad(path, n, "number", f"the age {age!r} is not a whole number")
            continue
        try:
            yield User(user_id, attributes={
                "age": age_years, "gender": gender, "occupation": occupation, "zip": zip_code,
            })
        except InvalidInput as exc:
            run.bad(path, n, "value", str(exc))


def _ml1m_items(run: ImportRun, path: Path) -> Iterator[Item]:
    """``movies.dat``: ``MovieID::Title::Genres`` (genres ``|``-joined), latin-1."""
    report = run.report
    for n, line in run.lines(path, "latin-1"):
        report.rows_read += 1
        parts = line.split("::")
        if len(parts) != 3:
            run.bad(path, n, "fields",
                    f"expected 3 '::'-separated fields (MovieID, Title, Genres), got {len(parts)}")
            continue
        item_id, title, genres = parts
        m = _YEAR_IN_TITLE.search(title)
        try:
            yield Item(item_id, title=title or None,
                       categories=genres.split("|") if genres else [],
                       attributes={"year": int(m.group(1))} if m else {})
        except InvalidInput as exc:
            run.bad(path, n, "value", str(exc))


def read_ml1m_users(run: ImportRun, path: Path) -> Iterator[User]:
    """``users.dat``: ``UserID::Gender::Age::Occupation::Zip-code`` (age and occupation are
    codes)."""
    report = run.report
    for n, line in run.lines(path, "latin-1"):
        report.rows_read += 1
        parts = line.split("::")
        if len(parts) != 5:
            run.bad(path, n, "fields",
                    f"expected 5 '::'-separated fields (UserID, Gender, Age, Occupation, "
                    f"Zip-code), got {len(parts)}")
            continue
        user_id, gender, age, occupation, zip_code = parts
        try:
            age_code = int(age)
            occupation_code = int(occupation)
        except ValueError:
            run.bad(path, n, "number",
                    f"age and occupation must be numeric codes, got {age!r} and {occupation!r}")
            continue
        if age_code not in ML1M_AGE_GROUPS:
            run.bad(path, n, "value",
                    f"unknown age code {age_code}; expected one of {sorted(ML1M_AGE_GROUPS)}")
            continue
        if not 0 <= occupation_code < len(ML1M_OCCUPATIONS):
            run.bad(path, n, "value",
                    f"unknown occupation code {occupation_code}; expected 0 to "
                    f"{len(ML1M_OCCUPATIONS) - 1}")
            continue
        try:
            yield User(user_id, attributes={
                "gender": gender, "age": age_code, "age_group": ML1M_AGE_GROUPS[age_code],
                "occupation": ML1M_OCCUPATIONS[occupation_code], "zip": zip_code,
            })
        except InvalidInput as exc:
            run.bad(path, n, "value", str(exc))
