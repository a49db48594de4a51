"""Importers: MovieLens, the MeLU cold-start partitions, and any CSV/JSON-lines export.

Every importer takes the store and a path, reads the input as a stream (gzip-aware), writes it
in **one transaction** and returns an :class:`ImportReport`. By default the first malformed row
raises :class:`~personae.errors.ImportFormatError` (file, line, problem) and nothing of the
import is stored; with ``skip_bad=True`` bad rows are left out and reported.

>>> from personae.data.importers import import_movielens      # doctest: +SKIP
>>> print(import_movielens(store, "ml-100k").summary())        # doctest: +SKIP

:data:`IMPORTERS` names them for the command line; :func:`detect_format` guesses which one
fits a path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from personae.data.importers.common import (
    MAX_EXAMPLES,
    BadRow,
    ImportReport,
    base_name,
    find_file,
)
from personae.data.importers.generic import (
    FILE_FORMATS,
    EventMapping,
    ItemMapping,
    UserMapping,
    detect_file_format,
    import_events_file,
    import_items_file,
    import_users_file,
)
from personae.data.importers.melu import import_melu
from personae.data.importers.movielens import import_movielens
from personae.errors import InvalidInput

#: Importers by the name the command line uses (``personae import <name> PATH``).
IMPORTERS: dict[str, Callable[..., ImportReport]] = {
    "movielens": import_movielens,
    "melu": import_melu,
    "events": import_events_file,
    "items": import_items_file,
    "users": import_users_file,
}

_MOVIELENS_FILES = ("u.data", "u.item", "u.user", "ratings.dat", "movies.dat", "users.dat")


def get_importer(name: str) -> Callable[..., ImportReport]:
    """The importer called ``name``; an unknown name raises :class:`InvalidInput` listing the
    valid ones."""
    try:
        return IMPORTERS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown importer {name!r}; expected one of {', '.join(IMPORTERS)}"
        ) from None


def detect_format(path: str | os.PathLike[str]) -> str | None:
    """The name in :data:`IMPORTERS` that fits ``path``, or ``None`` when it cannot be told.

    A folder with ``movies_extrainfos.dat`` or ``*_state.json`` files is ``"melu"``; a folder
    or file named like MovieLens (``u.data``, ``ratings.dat``, ...) is ``"movielens"``. A CSV or
    JSON-lines file gives ``None``: it may hold events, items or users, so the caller says which.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if find_file(p, "movies_extrainfos.dat") or any(p.glob("*_state.json*")):
            return "melu"
        if find_file(p, *_MOVIELENS_FILES):
            return "movielens"
        return None
    name = base_name(p)
    if name == "movies_extrainfos.dat" or name.endswith("_state.json"):
        return "melu"
    if name in _MOVIELENS_FILES or name.startswith("u") and name.endswith((".base", ".test")):
        return "movielens"
    return None


__all__ = [
    "FILE_FORMATS",
    "IMPORTERS",
    "MAX_EXAMPLES",
    "BadRow",
    "EventMapping",
    "ImportReport",
    "ItemMapping",
    "UserMapping",
    "detect_file_format",
    "detect_format",
    "get_importer",
    "import_events_file",
    "import_items_file",
    "import_melu",
    "import_movielens",
    "import_users_file",
]
