"""The store: users, items and events in SQLite (default) or PostgreSQL, through one code path.

>>> store = Store("sqlite:///:memory:")
>>> store.add_events([Event("u1", "i1", "click")]).inserted
1
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from personae.errors import InvalidInput, NotFound, StoreError
from personae.privacy.pseudonym import Pseudonymizer
from personae.store import schema as S
from personae.store.fastread import driver_connection
from personae.store.records import (
    DEFAULT_EVENT_WEIGHTS,
    KNOWN_EVENT_TYPES,
    Event,
    Item,
    User,
    check_event_type,
    check_id,
    utcnow,
)
from personae.store.serving import (
    MODEL_STATUSES,
    ApiKey,
    ModelVersion,
    Recommendation,
    check_role,
)

#: Environment variables read by :func:`default_data_dir` and :class:`Store`.
ENV_HOME = "PERSONAE_HOME"
ENV_STORE = "PERSONAE_STORE"
ENV_PSEUDONYM_KEY = "PERSONAE_PSEUDONYM_KEY"

SQLITE_FILENAME = "personae.db"


def default_data_dir() -> Path:
    """``$PERSONAE_HOME``, else ``$XDG_DATA_HOME/personae``, else ``~/.local/share/personae``."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "personae"


def resolve_url(location: str | os.PathLike[str] | None) -> str:
    """Turn what a user typed into an SQLAlchemy URL.

    - ``None``: ``$PERSONAE_STORE`` if set, else ``<default data dir>/personae.db``;
    - a URL (``sqlite:///…``, ``postgresql://…``, ``postgresql+psycopg://…``): used as given,
      with ``postgresql://`` meaning the psycopg 3 driver;
    - a path ending in ``.db``/``.sqlite``/``.sqlite3``: that SQLite file;
    - any other path: a data directory holding ``personae.db``.
    """
    if location is None:
        location = os.environ.get(ENV_STORE) or default_data_dir()
    loc = os.fspath(location)
    if "://" in loc:
        try:
            url = make_url(loc)
        except ArgumentError as exc:
            raise StoreError(f"cannot parse the store URL {loc!r}: {exc}") from None
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise StoreError(
                f"unsupported store backend {url.get_backend_name()!r}; "
                "use sqlite:///path/to/personae.db or postgresql+psycopg://user@host/db"
            )
        return url.render_as_string(hide_password=False)
    path = Path(loc).expanduser()
    if path.suffix.lower() not in (".db", ".sqlite", ".sqlite3"):
        path = path / SQLITE_FILENAME
    return f"sqlite:///{path.resolve()}"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did. ``skipped`` counts rows refused because their user was forgotten."""

    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    skipped: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.duplicates + other.duplicates,
            self.skipped + other.skipped,
        )


@dataclass(frozen=True, slots=True)
class EventLog:
    """The whole interaction log as arrays, in arrival order (``event_idx`` ascending).

    ``user_idx``/``item_idx`` are the store's internal keys (see :meth:`Store.user_index` and
    :meth:`Store.item_index` for their external ids); ``type_idx`` indexes ``type_names`` and
    ``type_weights``. Missing values and times are ``NaN``.
    """

    user_idx: np.ndarray  # int32 (n,)
    item_idx: np.ndarray  # int32 (n,)
    type_idx: np.ndarray  # int16 (n,)
    value: np.ndarray  # float64 (n,)
    ts: np.ndarray  # float64 (n,)
    type_names: tuple[str, ...]
    type_weights: np.ndarray  # float64 (n_types,), indexed by type_idx

    def __len__(self) -> int:
        return int(self.user_idx.shape[0])


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Summary numbers of a store (see :meth:`Store.stats`)."""

    n_users: int
    n_items: int
    n_events: int
    n_users_with_events: int
    n_items_with_events: int
    n_pairs: int
    events_per_type: dict[str, int]
    first_ts: float | None
    last_ts: float | None
    top_items: list[tuple[str, str | None, int]]
    events_per_user: dict[str, float]
    histogram: list[tuple[str, int]] = field(default_factory=list)

    @property
    def density(self) -> float:
        """Distinct (user, item) pairs over users × items that have any event."""
        cells = self.n_users_with_events * self.n_items_with_events
        return self.n_pairs / cells if cells else 0.0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["density"] = self.density
        out["sparsity"] = self.sparsity
        return out


class Store:
    """Users, items and events, persisted in SQLite or PostgreSQL.

    Parameters
    ----------
    location : str | PathLike | None
        Where the store lives: an SQLAlchemy URL (``postgresql+psycopg://user@host/db``,
        ``sqlite:///file.db``), a path to a ``.db`` file, or a data directory (``personae.db``
        inside). ``None`` reads ``$PERSONAE_STORE``, then uses ``~/.local/share/personae``
        (or ``$PERSONAE_HOME``). See :func:`resolve_url`.
    pseudonymize_key : str | bytes | None
        Secret key for pseudonymised user ids (see :mod:`personae.privacy.pseudonym`).
        ``None`` reads ``$PERSONAE_PSEUDONYM_KEY``. A store is created with or without
        pseudonyms and must always be opened the same way; a wrong key is refused.
    create : bool, default True
        Create the store (and its directory) if it does not exist.
    upgrade : bool, default True
        Upgrade a store written by an older personae to the current schema.
    echo : bool, default False
        Log SQL statements (for debugging).
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | None = None,
        *,
        pseudonymize_key: str | bytes | None = None,
        create: bool = True,
        upgrade: bool = True,
        echo: bool = False,
    ) -> None:
        self.url = resolve_url(location)
        url = make_url(self.url)
        self.backend: str = url.get_backend_name()
        if self.backend == "sqlite":
            db = url.database
            if db and db != ":memory:":
                path = Path(db)
                if not path.exists() and not create:
                    raise StoreError(f"no store at {path}; run `personae init` to create one")
                path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = _make_engine(self.url, echo=echo)
        self._prepared: dict[Any, _Prepared] = {}
        if pseudonymize_key is None:
            pseudonymize_key = os.environ.get(ENV_PSEUDONYM_KEY) or None
        self._pseudo = Pseudonymizer(pseudonymize_key) if pseudonymize_key else None
        try:
            self._open(create=create, upgrade=upgrade)
        except OperationalError as exc:
            self.engine.dispose()
            raise StoreError(f"cannot open the store at {self.safe_url}: {exc.orig}") from None
        except BaseException:
            self.engine.dispose()
            raise

    # ------------------------------------------------------------------ lifecycle

    @property
    def safe_url(self) -> str:
        """The store URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def pseudonymized(self) -> bool:
        return self._pseudo is not None

    def close(self) -> None:
        """Release all connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    def _open(self, *, create: bool, upgrade: bool) -> None:
        from personae.store import migrate

        with self.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
        if not names:
            if not create:
                raise StoreError(f"the database at {self.safe_url} holds no personae store")
            migrate.upgrade(self.engine)
            self._initialise()
        else:
            current = migrate.current_revision(self.engine)
            if current is None:
                raise StoreError(
                    f"the database at {self.safe_url} holds tables but no personae schema "
                    f"version ({', '.join(sorted(names)[:5])}…); use an empty database"
                )
            if current not in migrate.known_revisions():
                raise StoreError(
                    f"the store at {self.safe_url} has schema revision {current}, newer than "
                    f"this personae knows (up to {S.SCHEMA_REVISION}); upgrade personae"
                )
            if current != S.SCHEMA_REVISION:
                if not upgrade:
                    raise StoreError(
                        f"the store at {self.safe_url} has schema revision {current}; "
                        f"this personae needs {S.SCHEMA_REVISION}: open it with upgrade=True"
                    )
                migrate.upgrade(self.engine)
            self._check_pseudonym_key()
        with self.engine.connect() as conn:
            self._salt = bytes.fromhex(
                conn.execute(select(S.meta.c.value).where(S.meta.c.key == "id_hash_salt"))
                .scalar_one()
            )

    def _initialise(self) -> None:
        from personae import __version__

        now = utcnow()
        with self._begin() as conn:
            rows = [
                {"key": "created_by", "value": f"personae {__version__}"},
                {"key": "created_at", "value": repr(now)},
                {"key": "id_hash_salt", "value": secrets.token_hex(32)},
                {"key": "pseudonymized", "value": "true" if self._pseudo else "false"},
            ]
            if self._pseudo:
                rows.append({"key": "pseudonym_key_check", "value": self._pseudo.check_value()})
            conn.execute(S.meta.insert(), rows)
            conn.execute(
                S.event_types.insert(),
                [
                    {"type_idx": i, "name": name, "weight": DEFAULT_EVENT_WEIGHTS.get(name, 1.0)}
                    for i, name in enumerate(KNOWN_EVENT_TYPES)
                ],
            )

    def _check_pseudonym_key(self) -> None:
        meta = self.meta()
        if "id_hash_salt" not in meta:  # created by revision 0001, before salts existed
            with self._begin() as conn:
                conn.execute(S.meta.insert(), {"key": "id_hash_salt",
                                               "value": secrets.token_hex(32)})
        stored = meta.get("pseudonymized", "false") == "true"
        if stored and self._pseudo is None:
            raise StoreError(
                "this store keeps pseudonymised user ids; open it with its key "
                f"(pseudonymize_key=… or ${ENV_PSEUDONYM_KEY})"
            )
        if not stored and self._pseudo is not None:
            raise StoreError(
                "this store was created without pseudonymised ids; a key cannot be added to it "
                "later (create a new store with the key and import into it)"
            )
        if stored and self._pseudo is not None and not hmac.compare_digest(
            meta.get("pseudonym_key_check", ""), self._pseudo.check_value()
        ):
            raise StoreError("the pseudonymisation key does not match the one of this store")

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite so writers queue, not fail)."""
        with self.engine.connect().execution_options(personae_write=True) as conn, conn.begin():
            yield conn

    def meta(self) -> dict[str, str]:
        """The store's key/value metadata (creator version, flags)."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(S.meta.c.key, S.meta.c.value)).all())

    def schema_revision(self) -> str:
        from personae.store import migrate

        rev = migrate.current_revision(self.engine)
        assert rev is not None
        return rev

    # ------------------------------------------------------------------ ids

    def stored_user_id(self, user_id: str) -> str:
        """The id under which a raw user id is stored (its pseudonym when configured)."""
        user_id = check_id(user_id, "user_id")
        return self._pseudo(user_id) if self._pseudo else user_id

    def _tombstone(self, stored_user_id: str) -> str:
        return hmac.new(self._salt, stored_user_id.encode("utf-8"), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ writes

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """One transaction for many writes: all of them are stored, or (on error) none.

        >>> with store.writer() as w:              # doctest: +SKIP
        ...     w.upsert_items(items)
        ...     w.add_events(events)
        """
        with self._begin() as conn:
            w = Writer(self, conn)
            yield w
            if w._catalog_changed:
                _touch_catalog(conn)

    def upsert_users(self, users: Iterable[User | Mapping[str, Any]]) -> WriteResult:
        """Insert or replace users (every field of a record is written)."""
        with self.writer() as w:
            return w.upsert_users(users)

    def upsert_items(self, items: Iterable[Item | Mapping[str, Any]]) -> WriteResult:
        """Insert or replace items (every field of a record is written)."""
        with self.writer() as w:
            return w.upsert_items(items)

    def add_events(self, events: Iterable[Event | Mapping[str, Any]], *,
                   stored_user_ids: bool = False) -> WriteResult:
        """Store events; an ``event_id`` already stored is counted as a duplicate, not stored.

        ``stored_user_ids``: the events' ``user_id`` are ids as stored (pseudonyms, as found in
        :class:`~personae.store.serving.Recommendation` rows), not raw ids to pseudonymise.
        """
        with self.writer() as w:
            return w.add_events(events, stored_user_ids=stored_user_ids)

    def set_event_weights(self, weights: Mapping[str, float]) -> None:
        """Set how strongly each event type counts in training views (new types are added)."""
        checked = {}
        for name, weight in weights.items():
            check_event_type(name)
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise InvalidInput(f"the weight of {name!r} must be a number, got {weight!r}")
            checked[name] = float(weight)
        with self.writer() as w:
            w._type_indices(list(checked))
            for name, weight in checked.items():
                w.conn.execute(
                    S.event_types.update().where(S.event_types.c.name == name).values(
                        weight=weight
                    )
                )
            w._catalog_changed = True

    def event_weights(self) -> dict[str, float]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(S.event_types.c.name, S.event_types.c.weight)).all()
        return {name: weight for name, weight in rows}

    def set_item_availability(self, item_id: str, available: bool) -> None:
        item_id = check_id(item_id, "item_id")
        with self._begin() as conn:
            res = conn.execute(
                S.items.update().where(S.items.c.item_id == item_id).values(
                    available=bool(available), updated_at=utcnow()
                )
            )
            if res.rowcount == 0:
                raise NotFound(f"unknown item_id {item_id!r}")
            _touch_catalog(conn)

    def delete_item(self, item_id: str) -> dict[str, int]:
        """Delete an item and every event on it (rows deleted per table).

        To stop recommending an item but keep its history, use
        :meth:`set_item_availability` instead. :class:`NotFound` when the item is unknown.
        """
        item_id = check_id(item_id, "item_id")
        with self._begin() as conn:
            item_idx = conn.execute(
                select(S.items.c.item_idx).where(S.items.c.item_id == item_id)
            ).scalar()
            if item_idx is None:
                raise NotFound(f"unknown item_id {item_id!r}")
            n_events = conn.execute(
                delete(S.events).where(S.events.c.item_idx == item_idx)
            ).rowcount
            n_items = conn.execute(delete(S.items).where(S.items.c.item_idx == item_idx)).rowcount
            _touch_catalog(conn)
        return {"items": n_items, "events": n_events}

    # ------------------------------------------------------------------ reads

    def get_user(self, user_id: str) -> User:
        """The user with this id; :class:`NotFound` if there is none."""
        sid = self.stored_user_id(user_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(S.users.c.attributes, S.users.c.created_at).where(S.users.c.user_id == sid)
            ).first()
        if row is None:
            raise NotFound(f"unknown user_id {user_id!r}")
        return User(user_id, attributes=row.attributes or {}, created_at=row.created_at)

    def get_item(self, item_id: str) -> Item:
        """The item with this id; :class:`NotFound` if there is none."""
        item_id = check_id(item_id, "item_id")
        with self.engine.connect() as conn:
            row = conn.execute(select(S.items).where(S.items.c.item_id == item_id)).first()
        if row is None:
            raise NotFound(f"unknown item_id {item_id!r}")
        return _item_from_row(row)

    def get_items(self, item_ids: Iterable[str]) -> dict[str, Item]:
        """The known items among ``item_ids`` (unknown ids are left out)."""
        ids = list(dict.fromkeys(check_id(i, "item_id") for i in item_ids))
        out: dict[str, Item] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids, 900):
                for row in conn.execute(select(S.items).where(S.items.c.item_id.in_(chunk))):
                    out[row.item_id] = _item_from_row(row)
        return out

    def iter_items(self, batch_size: int = 5000) -> Iterator[Item]:
        """Every item, in store order."""
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(
                select(S.items).order_by(S.items.c.item_idx)
            )
            for row in result:
                yield _item_from_row(row)

    def iter_users(self, batch_size: int = 5000) -> Iterator[User]:
        """Every user, in store order (``user_idx`` ascending).

        In a pseudonymised store ``user_id`` is the stored pseudonym: raw ids are not kept.
        """
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(
                select(S.users.c.user_id, S.users.c.attributes, S.users.c.created_at)
                .order_by(S.users.c.user_idx)
            )
            for row in result:
                yield User(row.user_id, attributes=row.attributes or {},
                           created_at=row.created_at)

    def event_contexts(self) -> list[dict[str, Any]]:
        """Every event's context, aligned with :meth:`event_log` (arrival order); ``{}`` when
        an event has none."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(S.events.c.context).order_by(S.events.c.event_idx))
            return [ctx or {} for (ctx,) in rows]

    def user_events(self, user_id: str, limit: int | None = None) -> list[Event]:
        """A user's events, oldest first (by time, then arrival); ``limit`` keeps the newest."""
        sid = self.stored_user_id(user_id)
        with self.engine.connect() as conn:
            user_idx = conn.execute(
                select(S.users.c.user_idx).where(S.users.c.user_id == sid)
            ).scalar()
            if user_idx is None:
                raise NotFound(f"unknown user_id {user_id!r}")
            q = (
                select(
                    S.events.c.event_id,
                    S.items.c.item_id,
                    S.event_types.c.name,
                    S.events.c.value,
                    S.events.c.ts,
                    S.events.c.context,
                )
                .join(S.items, S.items.c.item_idx == S.events.c.item_idx)
                .join(S.event_types, S.event_types.c.type_idx == S.events.c.type_idx)
                .where(S.events.c.user_idx == user_idx)
                .order_by(S.events.c.ts.desc().nulls_last(), S.events.c.event_idx.desc())
            )
            if limit is not None:
                q = q.limit(int(limit))
            rows = conn.execute(q).all()
        return [
            Event(user_id, r.item_id, r.name, r.value, r.ts, r.context or {}, r.event_id)
            for r in reversed(rows)
        ]

    def counts(self) -> dict[str, int]:
        """Numbers of users, items and events."""
        with self.engine.connect() as conn:
            return {
                "users": conn.execute(select(func.count()).select_from(S.users)).scalar_one(),
                "items": conn.execute(select(func.count()).select_from(S.items)).scalar_one(),
                "events": conn.execute(select(func.count()).select_from(S.events)).scalar_one(),
            }

    def user_index(self) -> tuple[np.ndarray, list[str]]:
        """``(user_idx, user_id)`` of every user, ``user_idx`` ascending."""
        return self._index(S.users.c.user_idx, S.users.c.user_id)

    def item_index(self) -> tuple[np.ndarray, list[str]]:
        """``(item_idx, item_id)`` of every item, ``item_idx`` ascending."""
        return self._index(S.items.c.item_idx, S.items.c.item_id)

    def _index(self, idx_col: Any, id_col: Any) -> tuple[np.ndarray, list[str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(idx_col, id_col).order_by(idx_col)).all()
        idx = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return idx, [r[1] for r in rows]

    def event_log(self) -> EventLog:
        """Every event as numpy arrays, in arrival order; the input of all training views."""
        from personae.store.fastread import read_event_arrays

        with self.engine.connect() as conn:
            types = conn.execute(
                select(S.event_types.c.type_idx, S.event_types.c.name, S.event_types.c.weight)
                .order_by(S.event_types.c.type_idx)
            ).all()
            arrays = read_event_arrays(conn)
        n_types = (max(t.type_idx for t in types) + 1) if types else 0
        names = [""] * n_types
        weights = np.zeros(n_types, dtype=np.float64)
        for t in types:
            names[t.type_idx] = t.name
            weights[t.type_idx] = t.weight
        return EventLog(*arrays, type_names=tuple(names), type_weights=weights)

    def stats(self, top: int = 10) -> StoreStats:
        """Counts, density, events per type, time range, top items and activity histogram."""
        with self.engine.connect() as conn:
            c = self.counts()
            per_type: dict[str, int] = dict(
                conn.execute(
                    select(S.event_types.c.name, func.count(S.events.c.event_idx))
                    .join(S.events, S.events.c.type_idx == S.event_types.c.type_idx)
                    .group_by(S.event_types.c.name)
                    .order_by(func.count(S.events.c.event_idx).desc())
                ).all()
            )
            first_ts, last_ts = conn.execute(
                select(func.min(S.events.c.ts), func.max(S.events.c.ts))
            ).one()
            pairs = select(S.events.c.user_idx, S.events.c.item_idx).distinct().subquery()
            n_pairs = conn.execute(select(func.count()).select_from(pairs)).scalar_one()
            n_iwe = conn.execute(
                select(func.count(func.distinct(S.events.c.item_idx)))
            ).scalar_one()
            per_user = np.array(
                conn.execute(
                    select(func.count()).select_from(S.events).group_by(S.events.c.user_idx)
                ).scalars().all(),
                dtype=np.int64,
            )
            cnt = func.count(S.events.c.event_idx).label("n")
            top_rows = conn.execute(
                select(S.items.c.item_id, S.items.c.title, cnt)
                .join(S.events, S.events.c.item_idx == S.items.c.item_idx)
                .group_by(S.items.c.item_idx, S.items.c.item_id, S.items.c.title)
                .order_by(cnt.desc(), S.items.c.item_id)
                .limit(top)
            ).all()
        if per_user.size:
            epu = {
                "min": float(per_user.min()),
                "median": float(np.median(per_user)),
                "mean": float(per_user.mean()),
                "max": float(per_user.max()),
            }
        else:
            epu = {}
        return StoreStats(
            n_users=c["users"],
            n_items=c["items"],
            n_events=c["events"],
            n_users_with_events=int(per_user.size),
            n_items_with_events=int(n_iwe),
            n_pairs=int(n_pairs),
            events_per_type=per_type,
            first_ts=first_ts,
            last_ts=last_ts,
            top_items=[(r.item_id, r.title, int(r.n)) for r in top_rows],
            events_per_user=epu,
            histogram=_log_histogram(per_user),
        )

    # ------------------------------------------------------------------ serving: reads

    def user_history(self, user_id: str, limit: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """A user's newest events as ``(item_idx, type_idx)`` arrays (int64), newest first.

        One indexed query (the serving path's read); empty arrays for an unknown user. Map
        ``type_idx`` to weights with :meth:`event_types`, ``item_idx`` with :meth:`item_index`.
        """
        sid = self.stored_user_id(user_id)
        rows = self._fast_read(_HISTORY_QUERY, uid=sid, n=int(limit))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # Through plain ints: np.array(rows) would probe each Row for array attributes.
        arr = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows))
        return arr[0::2], arr[1::2]

    def _fast_read(self, stmt: Any, **params: Any) -> list[tuple[Any, ...]]:
        """Run a read-only Core statement on a pooled DBAPI connection: the statement is
        compiled once per store, and no SQLAlchemy Connection, cache key or result object is
        made per call (the serving path's reads, ~50 µs less each).

        Each call is its own transaction (SQLite: autocommit; PostgreSQL: the pool rolls back
        on return), so it sees every write committed before it: read-your-writes holds.
        """
        prepared = self._prepared.get(stmt)
        if prepared is None:
            prepared = self._prepared[stmt] = _Prepared(stmt, self.engine.dialect)
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                cur.execute(prepared.sql, prepared.parameters(params))
                return list(cur.fetchall())
            finally:
                cur.close()
        finally:
            raw.close()

    def event_types(self) -> dict[int, tuple[str, float]]:
        """``type_idx → (name, weight)`` of every event type."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(S.event_types.c.type_idx, S.event_types.c.name, S.event_types.c.weight)
            ).all()
        return {int(r.type_idx): (r.name, float(r.weight)) for r in rows}

    def item_popularity(self) -> tuple[np.ndarray, np.ndarray]:
        """``(item_idx, n)``: events of positive weight per item, for items that have any.

        One aggregate query over the event log: call it when a catalogue is (re)built, not per
        request.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(S.events.c.item_idx, func.count())
                .join(S.event_types, S.event_types.c.type_idx == S.events.c.type_idx)
                .where(S.event_types.c.weight > 0)
                .group_by(S.events.c.item_idx)
            ).all()
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        arr = np.array(rows, dtype=np.int64)
        return arr[:, 0], arr[:, 1]

    def catalog_rows(self) -> Sequence[Any]:
        """Every item row (``item_idx``, ``item_id``, ``title``, ``categories``, ``attributes``,
        ``available``), ``item_idx`` ascending: what a serving catalogue is built from."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(S.items.c.item_idx, S.items.c.item_id, S.items.c.title,
                       S.items.c.categories, S.items.c.attributes, S.items.c.available)
                .order_by(S.items.c.item_idx)
            ).all()

    def serving_state(self) -> tuple[str | None, str | None, str | None, str | None]:
        """``(active model version, catalog version, model epoch, corrections version)`` in
        one small query.

        The catalog version changes whenever items or event types are created, changed or
        deleted; the model epoch when a served artifact was changed in place (a forgotten
        user's state removed, see :meth:`touch_model_epoch`); the corrections version when a
        user corrected their profile. Engines poll all four to reload what changed.
        """
        with self.engine.connect() as conn:
            rows = dict(conn.execute(_STATE_QUERY).all())
        return (rows.get("active_model_version"), rows.get("catalog_version"),
                rows.get("model_epoch"), rows.get("corrections_version"))

    # ------------------------------------------------------------------ profile corrections

    def profile_corrections(self, user_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Users' corrections of their text profile: ``{stored user id: data}`` (all users, or
        the one given; empty when there are none)."""
        q = select(S.profile_corrections.c.user_id, S.profile_corrections.c.data)
        if user_id is not None:
            q = q.where(S.profile_corrections.c.user_id == self.stored_user_id(user_id))
        with self.engine.connect() as conn:
            return {r.user_id: dict(r.data) for r in conn.execute(q).all()}

    def set_profile_corrections(self, user_id: str, data: Mapping[str, Any] | None) -> None:
        """Store (``data``) or remove (``None``) a user's corrections; :class:`NotFound` for an
        unknown user. Every engine picks the change up at its next refresh."""
        sid = self.stored_user_id(user_id)
        with self._begin() as conn:
            exists = conn.execute(select(S.users.c.user_idx).where(
                S.users.c.user_id == sid)).scalar()
            if exists is None:
                raise NotFound(f"unknown user_id {user_id!r}")
            conn.execute(delete(S.profile_corrections).where(
                S.profile_corrections.c.user_id == sid))
            if data is not None:
                conn.execute(S.profile_corrections.insert(),
                             {"user_id": sid, "data": dict(data), "updated_at": utcnow()})
            _set_meta(conn, "corrections_version", secrets.token_hex(8))

    def touch_model_epoch(self) -> None:
        """Tell every engine to reload the active artifact from disk (it changed in place)."""
        with self._begin() as conn:
            _set_meta(conn, "model_epoch", secrets.token_hex(8))

    # ------------------------------------------------------------------ serving: API keys

    def create_api_key(self, name: str, role: str) -> tuple[ApiKey, str]:
        """Create an API key; returns the key and its secret, which is shown only this once.

        The secret (``"<key_id>.<token>"``, 32 random bytes) is stored as its SHA-256 only.
        """
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInput(f"name must be a non-empty string of at most 200 characters, "
                               f"got {name!r}")
        role = check_role(role)
        key = ApiKey("pk_" + secrets.token_hex(6), name.strip(), role, utcnow())
        secret = f"{key.key_id}.{secrets.token_urlsafe(32)}"
        with self._begin() as conn:
            conn.execute(S.api_keys.insert(), {
                "key_id": key.key_id, "name": key.name, "role": key.role,
                "secret_hash": _secret_hash(secret), "created_at": key.created_at,
                "revoked_at": None,
            })
        return key, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, else ``None`` (unknown, malformed, revoked).

        One primary-key lookup and a constant-time comparison of the hashes.
        """
        if not isinstance(secret, str) or "." not in secret or len(secret) > 200:
            return None
        key_id = secret.split(".", 1)[0]
        with self.engine.connect() as conn:
            row = conn.execute(select(S.api_keys).where(S.api_keys.c.key_id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _secret_hash(secret)):
            return None
        return _api_key(row)

    def list_api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first (secrets are not kept)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(S.api_keys).order_by(S.api_keys.c.created_at)).all()
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key (it stops authenticating at once); :class:`NotFound` if unknown.

        Revoking a revoked key keeps its first revocation time.
        """
        with self._begin() as conn:
            row = conn.execute(select(S.api_keys).where(S.api_keys.c.key_id == key_id)).first()
            if row is None:
                raise NotFound(f"unknown key_id {key_id!r}")
            if row.revoked_at is None:
                conn.execute(S.api_keys.update().where(S.api_keys.c.key_id == key_id)
                             .values(revoked_at=utcnow()))
            row = conn.execute(select(S.api_keys).where(S.api_keys.c.key_id == key_id)).one()
        return _api_key(row)

    # ------------------------------------------------------------------ serving: models

    def add_model_version(self, version: ModelVersion) -> ModelVersion:
        """Record a new model version (usually with status ``training``)."""
        if version.status == "active":
            raise InvalidInput("add the version first, then activate_model_version() it")
        row = version.to_dict()
        with self._begin() as conn:
            exists = conn.execute(select(S.model_versions.c.version).where(
                S.model_versions.c.version == version.version)).first()
            if exists:
                raise InvalidInput(f"model version {version.version!r} exists already")
            conn.execute(S.model_versions.insert(), row)
        return version

    def update_model_version(self, version: str, **fields: Any) -> ModelVersion:
        """Change fields of a version (status, finished_at, metrics, message, sizes…).

        The status ``active`` is set only by :meth:`activate_model_version`.
        """
        allowed = set(ModelVersion.__dataclass_fields__) - {"version", "model", "created_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise InvalidInput(f"cannot update {', '.join(sorted(unknown))} of a model version; "
                               f"fields: {', '.join(sorted(allowed))}")
        status = fields.get("status")
        if status is not None and (status not in MODEL_STATUSES or status == "active"):
            raise InvalidInput(f"status must be one of training, ready, failed, retired "
                               f"(activate with activate_model_version), got {status!r}")
        with self._begin() as conn:
            if fields:
                res = conn.execute(S.model_versions.update()
                                   .where(S.model_versions.c.version == version).values(**fields))
                if res.rowcount == 0:
                    raise NotFound(f"unknown model version {version!r}")
            return self._model_version(conn, version)

    def model_versions(self) -> list[ModelVersion]:
        """Every model version, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(S.model_versions).order_by(
                S.model_versions.c.created_at.desc(), S.model_versions.c.version.desc())).all()
        return [_model_version(r) for r in rows]

    def get_model_version(self, version: str) -> ModelVersion:
        """One model version; :class:`NotFound` if unknown."""
        with self.engine.connect() as conn:
            return self._model_version(conn, version)

    def _model_version(self, conn: Connection, version: str) -> ModelVersion:
        row = conn.execute(select(S.model_versions)
                           .where(S.model_versions.c.version == version)).first()
        if row is None:
            raise NotFound(f"unknown model version {version!r}")
        return _model_version(row)

    def active_model_version(self) -> str | None:
        """The version that serves, or ``None`` before the first activation."""
        return self.serving_state()[0]

    def finish_model_version(self, version: str, *, activate: bool,
                             **fields: Any) -> ModelVersion:
        """End a training job in one transaction: store ``fields`` with status ``ready``, and
        activate the version when ``activate`` (nobody sees it "ready" in between)."""
        with self._begin() as conn:
            res = conn.execute(S.model_versions.update().where(
                S.model_versions.c.version == version).values(status="ready", **fields))
            if res.rowcount == 0:
                raise NotFound(f"unknown model version {version!r}")
            if activate:
                return self._activate(conn, version, push=True)
            return self._model_version(conn, version)

    def activate_model_version(self, version: str) -> ModelVersion:
        """Make ``version`` the one that serves, in one transaction.

        The previous active version becomes ``retired``; only ``ready``, ``retired`` (or the
        already active) versions can be activated. Engines pick the change up on their next
        :meth:`personae.service.Engine.refresh`.
        """
        with self._begin() as conn:
            return self._activate(conn, version, push=True)

    def rollback_model_version(self) -> ModelVersion:
        """Re-activate the version that served before the active one.

        Walks back the activation history (skipping versions that failed or were deleted);
        :class:`InvalidInput` when there is nothing to go back to.
        """
        with self._begin() as conn:
            meta = dict(conn.execute(select(S.meta.c.key, S.meta.c.value).where(
                S.meta.c.key.in_(("active_model_version", "model_version_history")))).all())
            current = meta.get("active_model_version")
            history: list[str] = json.loads(meta.get("model_version_history", "[]"))
            while history and history[-1] == current:
                history.pop()
            while history:
                candidate = history[-1]
                row = conn.execute(select(S.model_versions.c.status).where(
                    S.model_versions.c.version == candidate)).first()
                if row is not None and row.status in ("ready", "retired"):
                    _set_meta(conn, "model_version_history", json.dumps(history))
                    return self._activate(conn, candidate, push=False)
                history.pop()
            raise InvalidInput(
                "no earlier model version to roll back to"
                + (f" (active: {current})" if current else " (none is active)")
            )

    def claim_training(self, version: ModelVersion, *, stale_after: float) -> ModelVersion:
        """Record ``version`` as the one training job of this store, atomically.

        In one transaction (serialised across processes by a write on the meta row
        ``training_claim``): "training" rows whose heartbeat is older than ``stale_after``
        seconds are failed (their process died), then :class:`InvalidInput` if another job is
        still alive, else ``version`` is inserted with status ``training``.
        """
        now = utcnow()
        with self._begin() as conn:
            _set_meta(conn, "training_claim", version.version)  # takes the row/write lock
            self._fail_stale(conn, now, stale_after)
            running = conn.execute(select(S.model_versions.c.version, S.model_versions.c.created_at)
                                   .where(S.model_versions.c.status == "training")).first()
            if running is not None:
                raise InvalidInput(
                    f"model version {running.version} is being trained since "
                    f"{time.strftime('%H:%M:%S', time.gmtime(running.created_at))} UTC; wait "
                    "for it to finish")
            row = {**version.to_dict(), "status": "training", "heartbeat_at": now}
            conn.execute(S.model_versions.insert(), row)
            return self._model_version(conn, version.version)

    def heartbeat(self, version: str) -> None:
        """A training job's sign of life (see :meth:`claim_training`)."""
        with self._begin() as conn:
            conn.execute(S.model_versions.update().where(
                (S.model_versions.c.version == version)
                & (S.model_versions.c.status == "training")).values(heartbeat_at=utcnow()))

    def fail_stale_training(self, stale_after: float) -> list[str]:
        """Fail "training" versions whose job stopped beating ``stale_after`` seconds ago (its
        process died: a crash, a restart); returns their ids.

        Engines call this every few seconds: the usual answer (none) costs a read, and only
        when there is a stale row is the write transaction (and SQLite's write lock) taken.
        """
        now = utcnow()
        with self.engine.connect() as conn:
            if not conn.execute(_stale_query(now, stale_after)).first():
                return []
        with self._begin() as conn:
            return self._fail_stale(conn, now, stale_after)

    def _fail_stale(self, conn: Connection, now: float, stale_after: float) -> list[str]:
        mv = S.model_versions
        stale = conn.execute(_stale_query(now, stale_after)).all()
        for row in stale:
            conn.execute(mv.update().where(mv.c.version == row.version).values(
                status="failed", finished_at=now,
                message=(f"abandoned: its training job stopped at "
                         f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(row.beat))} UTC "
                         "(the process ended before it finished)")))
        return [row.version for row in stale]

    def audit(self, action: str, subject: str | None = None,
              detail: Mapping[str, Any] | None = None) -> None:
        """Append a row to the audit log (what was done to whose data, and when)."""
        with self._begin() as conn:
            _audit(conn, action, subject, detail)

    def audit_log(self, subject: str | None = None, *, user_id: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        """Audit rows, oldest first: all, those of ``subject``, or of a (forgotten) user given
        by id (their rows are kept under a keyed hash of the id, never the id)."""
        if user_id is not None:
            subject = self._tombstone(self.stored_user_id(user_id))
        q = select(S.audit_log).order_by(S.audit_log.c.audit_idx).limit(limit)
        if subject is not None:
            q = q.where(S.audit_log.c.subject == subject)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [{"ts": r.ts, "action": r.action, "subject": r.subject,
                 "detail": r.detail or {}} for r in rows]

    def _activate(self, conn: Connection, version: str, *, push: bool) -> ModelVersion:
        mv = self._model_version(conn, version)
        if mv.status not in ("ready", "retired", "active"):
            raise InvalidInput(
                f"model version {version!r} is {mv.status!r}; only ready or retired versions "
                "can be activated" + (f" ({mv.message})" if mv.message else "")
            )
        current = conn.execute(select(S.meta.c.value).where(
            S.meta.c.key == "active_model_version")).scalar()
        if current is not None and current != version:
            conn.execute(S.model_versions.update().where(
                S.model_versions.c.version == current).values(status="retired"))
        conn.execute(S.model_versions.update().where(
            S.model_versions.c.version == version).values(status="active"))
        _set_meta(conn, "active_model_version", version)
        if push:
            raw = conn.execute(select(S.meta.c.value).where(
                S.meta.c.key == "model_version_history")).scalar()
            history = json.loads(raw) if raw else []
            if not history or history[-1] != version:
                history.append(version)
            _set_meta(conn, "model_version_history", json.dumps(history[-100:]))
        return self._model_version(conn, version)

    # ------------------------------------------------------------------ serving: impressions

    def log_recommendation(self, rec: Recommendation) -> None:
        """Store one shown list (see :meth:`log_recommendations` for many)."""
        self.log_recommendations([rec])

    def log_recommendations(self, recs: Iterable[Recommendation]) -> int:
        """Store shown lists in one transaction; returns how many were stored.

        Lists of forgotten users are not stored (a serving process may write its queued lists
        just after :meth:`forget_user`).
        """
        rows = [r.to_dict() for r in recs]
        if not rows:
            return 0
        with self._begin() as conn:
            hashes = {self._tombstone(r["user_id"]): r["user_id"] for r in rows
                      if r["user_id"] is not None}
            if hashes:
                gone = conn.execute(select(S.forgotten_users.c.id_hash).where(
                    S.forgotten_users.c.id_hash.in_(list(hashes)))).scalars().all()
                if gone:
                    forgotten = {hashes[h] for h in gone}
                    rows = [r for r in rows if r["user_id"] not in forgotten]
            if rows:
                conn.execute(S.recommendations.insert(), rows)
        return len(rows)

    def get_recommendation(self, rec_id: str) -> Recommendation:
        """A logged list by its id; :class:`NotFound` if unknown (or its user was forgotten)."""
        if not isinstance(rec_id, str):
            raise InvalidInput(f"rec_id must be a string, got {type(rec_id).__name__}")
        with self.engine.connect() as conn:
            row = conn.execute(select(S.recommendations)
                               .where(S.recommendations.c.rec_id == rec_id)).first()
        if row is None:
            raise NotFound(f"unknown rec_id {rec_id!r}")
        return Recommendation(**{c: getattr(row, c) for c in Recommendation.__dataclass_fields__})

    # ------------------------------------------------------------------ privacy

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete every row of a user and refuse their data from now on.

        Returns the number of rows deleted per table. A keyed hash of the id is kept (not the
        id) so that a later import that still contains the user does not bring them back.
        :class:`NotFound` when the user is unknown (nothing is changed then).
        """
        sid = self.stored_user_id(user_id)
        with self._begin() as conn:
            user = conn.execute(
                select(S.users.c.user_idx, S.users.c.created_at).where(S.users.c.user_id == sid)
            ).first()
            if user is None:
                raise NotFound(f"unknown user_id {user_id!r}")
            user_idx, created_at = user
            n_events = conn.execute(
                delete(S.events).where(S.events.c.user_idx == user_idx)
            ).rowcount
            n_users = conn.execute(delete(S.users).where(S.users.c.user_idx == user_idx)).rowcount
            n_recs = conn.execute(
                delete(S.recommendations).where(S.recommendations.c.user_id == sid)
            ).rowcount
            conn.execute(delete(S.profile_corrections).where(
                S.profile_corrections.c.user_id == sid))
            now = utcnow()
            tombstone = self._tombstone(sid)
            conn.execute(
                _insert(conn, S.forgotten_users).on_conflict_do_nothing(),
                {"id_hash": tombstone, "forgotten_at": now},
            )
            # Every version trained since the user existed may hold their data: mark it, so
            # that the serving engines retrain (Engine.maintain) and say so.
            mv = S.model_versions
            tainted = conn.execute(select(mv.c.version).where(
                mv.c.status.in_(("training", "ready", "active", "retired"))
                & (mv.c.created_at >= (created_at or 0.0)))).scalars().all()
            if tainted:
                conn.execute(mv.update().where(mv.c.version.in_(tainted)
                                               & mv.c.invalidated_at.is_(None))
                             .values(invalidated_at=now))
            report = {"users": n_users, "events": n_events, "recommendations": n_recs,
                      "model_versions": len(tainted)}
            _audit(conn, "forget_user", tombstone, {**report, "invalidated": list(tainted)})
        return report

    def is_forgotten(self, user_id: str) -> bool:
        sid = self.stored_user_id(user_id)
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(S.forgotten_users.c.id_hash).where(
                        S.forgotten_users.c.id_hash == self._tombstone(sid)
                    )
                ).first()
                is not None
            )

    def unforget_user(self, user_id: str) -> bool:
        """Accept a forgotten user's data again (they came back and agreed). True if lifted."""
        sid = self.stored_user_id(user_id)
        with self._begin() as conn:
            res = conn.execute(
                delete(S.forgotten_users).where(S.forgotten_users.c.id_hash == self._tombstone(sid))
            )
        return res.rowcount > 0

    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored about a user, as a JSON-ready dict (for data-access requests)."""
        from personae import __version__

        user = self.get_user(user_id)
        events = self.user_events(user_id)
        return {
            "format": "personae.user-export/1",
            "exported_by": f"personae {__version__}",
            "exported_at": utcnow(),
            "user_id": user_id,
            "stored_user_id": self.stored_user_id(user_id),
            "attributes": user.attributes,
            "created_at": user.created_at,
            "events": [e.to_dict() for e in events],
        }


class Writer:
    """Writes inside one transaction (get one from :meth:`Store.writer`).

    Keeps the id → index maps it resolved, so a long import looks each id up once.
    """

    #: Rows per INSERT batch.
    chunk_size = 20_000

    def __init__(self, store: Store, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self._users: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._types: dict[str, int] = {}
        self._forgotten: set[str] | None = None
        self._json_cache: dict[tuple[Any, ...], str] = {}
        # Set when items or event types are created or changed: the store then bumps the meta
        # row "catalog_version", which serving engines poll to reload their catalogue.
        self._catalog_changed = False

    # -- helpers

    def _context_json(self, context: dict[str, Any]) -> str:
        """Compact JSON of a context, memoised: contexts repeat a lot (device × weather × …)."""
        try:
            # Types are part of the key: True == 1 == 1.0 hash alike but encode differently.
            key = (tuple(context.items()), tuple(map(type, context.values())))
            cached = self._json_cache.get(key)
        except TypeError:  # a nested list or dict: not hashable, encode every time
            return _compact_json(context)
        if cached is None:
            cached = _compact_json(context)
            if len(self._json_cache) < 100_000:
                self._json_cache[key] = cached
        return cached

    def _is_forgotten(self, stored_id: str) -> bool:
        if self._forgotten is None:
            self._forgotten = set(
                self.conn.execute(select(S.forgotten_users.c.id_hash)).scalars().all()
            )
        return bool(self._forgotten) and self.store._tombstone(stored_id) in self._forgotten

    def _resolve(self, table: Any, id_col: Any, idx_col: Any, cache: dict[str, int],
                 ids: Iterable[str], now: float) -> None:
        """Fill ``cache`` for ``ids``, creating bare rows for unknown ids."""
        missing = [i for i in dict.fromkeys(ids) if i not in cache]
        if not missing:
            return
        self._lookup(id_col, idx_col, cache, missing)
        new = [i for i in missing if i not in cache]
        if not new:
            return
        bare: dict[str, Any] = {"attributes": {}, "created_at": now, "updated_at": now}
        if table is S.items:
            bare.update(title=None, text=None, categories=[], available=True)
            self._catalog_changed = True
        self.conn.execute(
            _insert(self.conn, table).on_conflict_do_nothing(index_elements=[id_col.name]),
            [{id_col.name: i, **bare} for i in new],
        )
        self._lookup(id_col, idx_col, cache, new)

    def _lookup(self, id_col: Any, idx_col: Any, cache: dict[str, int], ids: list[str]) -> None:
        for chunk in _chunks(ids, 900):
            for key, idx in self.conn.execute(select(id_col, idx_col).where(id_col.in_(chunk))):
                cache[key] = idx

    def _type_indices(self, names: Iterable[str]) -> None:
        if not self._types:
            self._types = dict(
                self.conn.execute(select(S.event_types.c.name, S.event_types.c.type_idx)).all()
            )
        for name in dict.fromkeys(names):
            if name in self._types:
                continue
            next_idx = self.conn.execute(
                select(func.coalesce(func.max(S.event_types.c.type_idx), -1) + 1)
            ).scalar_one()
            self._catalog_changed = True
            self.conn.execute(
                _insert(self.conn, S.event_types).on_conflict_do_nothing(),
                {"type_idx": next_idx, "name": name,
                 "weight": DEFAULT_EVENT_WEIGHTS.get(name, 1.0)},
            )
            self._types = dict(
                self.conn.execute(select(S.event_types.c.name, S.event_types.c.type_idx)).all()
            )

    # -- users and items

    def upsert_users(self, users: Iterable[User | Mapping[str, Any]]) -> WriteResult:
        """Insert or replace users; a user forgotten earlier is skipped."""
        total = WriteResult()
        for chunk in _chunks(users, self.chunk_size):
            total += self._upsert_users(chunk)
        return total

    def _upsert_users(self, chunk: list[User | Mapping[str, Any]]) -> WriteResult:
        now = utcnow()
        latest: dict[str, User] = {}
        skipped = 0
        for rec in chunk:
            user = rec if isinstance(rec, User) else _record(User, rec)
            sid = self.store.stored_user_id(user.user_id)
            if self._is_forgotten(sid):
                skipped += 1
                continue
            latest[sid] = user
        duplicates = len(chunk) - skipped - len(latest)
        if not latest:
            return WriteResult(skipped=skipped, duplicates=duplicates)
        existing: dict[str, int] = {}
        self._lookup(S.users.c.user_id, S.users.c.user_idx, existing, list(latest))
        rows = [
            {"user_id": sid, "attributes": u.attributes,
             "created_at": u.created_at if u.created_at is not None else now, "updated_at": now}
            for sid, u in latest.items()
        ]
        set_ = {"attributes": "attributes", "updated_at": "updated_at"}
        self._upsert(S.users, "user_id", rows, set_, keep_created=[
            sid for sid, u in latest.items() if u.created_at is None])
        return WriteResult(
            inserted=len(latest) - len(existing), updated=len(existing),
            duplicates=duplicates, skipped=skipped,
        )

    def upsert_items(self, items: Iterable[Item | Mapping[str, Any]]) -> WriteResult:
        """Insert or replace items (within one call, the last record of an id wins)."""
        total = WriteResult()
        for chunk in _chunks(items, self.chunk_size):
            total += self._upsert_items(chunk)
        return total

    def _upsert_items(self, chunk: list[Item | Mapping[str, Any]]) -> WriteResult:
        now = utcnow()
        latest: dict[str, Item] = {}
        for rec in chunk:
            item = rec if isinstance(rec, Item) else _record(Item, rec)
            latest[item.item_id] = item
        existing: dict[str, int] = {}
        self._lookup(S.items.c.item_id, S.items.c.item_idx, existing, list(latest))
        self._catalog_changed = True
        rows = [
            {"item_id": i.item_id, "title": i.title, "text": i.text, "categories": i.categories,
             "attributes": i.attributes, "available": i.available,
             "created_at": i.created_at if i.created_at is not None else now, "updated_at": now}
            for i in latest.values()
        ]
        set_ = {c: c for c in ("title", "text", "categories", "attributes", "available",
                               "updated_at")}
        self._upsert(S.items, "item_id", rows, set_, keep_created=[
            i.item_id for i in latest.values() if i.created_at is None])
        return WriteResult(
            inserted=len(latest) - len(existing), updated=len(existing),
            duplicates=len(chunk) - len(latest),
        )

    def _upsert(self, table: Any, key: str, rows: list[dict[str, Any]], set_: dict[str, str],
                keep_created: list[str]) -> None:
        """INSERT … ON CONFLICT DO UPDATE; rows whose key is in ``keep_created`` keep the stored
        ``created_at``, the others overwrite it with the value given."""
        keep = set(keep_created)
        for group, overwrite_created in (
            ([r for r in rows if r[key] in keep], False),
            ([r for r in rows if r[key] not in keep], True),
        ):
            if not group:
                continue
            stmt = _insert(self.conn, table)
            cols = dict(set_)
            if overwrite_created:
                cols["created_at"] = "created_at"
            stmt = stmt.on_conflict_do_update(
                index_elements=[key], set_={c: stmt.excluded[v] for c, v in cols.items()}
            )
            self.conn.execute(stmt, group)

    # -- events

    def add_events(self, events: Iterable[Event | Mapping[str, Any]], *,
                   stored_user_ids: bool = False) -> WriteResult:
        """Store events; ids already stored (or repeated in the input) count as duplicates.

        Unknown users and items are created bare (no attributes); events of forgotten users are
        skipped. ``stored_user_ids``: the user ids are already as stored (not pseudonymised
        again).
        """
        total = WriteResult()
        for chunk in _chunks(events, self.chunk_size):
            rows, result = self._prepare_events(chunk, stored_user_ids)
            inserted = _insert_new_events(self.conn, rows) if rows else 0
            # rows not inserted were stored already: duplicates
            total += result + WriteResult(inserted=inserted, duplicates=len(rows) - inserted)
        return total

    def _prepare_events(
        self, chunk: list[Event | Mapping[str, Any]], stored_user_ids: bool = False
    ) -> tuple[list[tuple[Any, ...]], WriteResult]:
        """Validate a chunk, resolve its ids and build the rows to insert."""
        now = utcnow()
        pseudo = None if stored_user_ids else self.store._pseudo
        batch: dict[str, tuple[str, Event]] = {}
        skipped = 0
        seen_in_chunk = 0
        for rec in chunk:
            ev = rec if isinstance(rec, Event) else _record(Event, rec)
            sid = pseudo(ev.user_id) if pseudo else ev.user_id
            if self._is_forgotten(sid):
                skipped += 1
                continue
            eid = ev.ensure_id()
            if eid in batch:
                seen_in_chunk += 1
                continue
            batch[eid] = (sid, ev)
        if not batch:
            return [], WriteResult(duplicates=seen_in_chunk, skipped=skipped)
        pairs = list(batch.values())
        self._resolve(S.users, S.users.c.user_id, S.users.c.user_idx, self._users,
                      (sid for sid, _ in pairs), now)
        self._resolve(S.items, S.items.c.item_id, S.items.c.item_idx, self._items,
                      (ev.item_id for _, ev in pairs), now)
        self._type_indices(ev.type for _, ev in pairs)
        users, items, types = self._users, self._items, self._types
        encode = self._context_json
        # Plain tuples in EVENT_COLUMNS order: the bulk path skips per-row ORM processing.
        rows = [
            (eid, users[sid], items[ev.item_id], types[ev.type], ev.value, ev.timestamp,
             encode(ev.context) if ev.context else None)
            for eid, (sid, ev) in batch.items()
        ]
        return rows, WriteResult(duplicates=seen_in_chunk, skipped=skipped)


# ---------------------------------------------------------------------- internals


class _Prepared:
    """A Core statement compiled for one dialect, with its parameters in the driver's style."""

    def __init__(self, stmt: Any, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)  # e.g. SQLite's "OFFSET ?" of a LIMIT
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = {**self.defaults, **values}
        return merged if self.order is None else tuple(merged[k] for k in self.order)


def _make_engine(url: str, *, echo: bool) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo)
        memory = u.database in (None, "", ":memory:")

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("personae_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    try:
        return create_engine(url, echo=echo, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        from personae.errors import MissingExtra

        raise MissingExtra(exc.name or "psycopg", "postgres") from None


def _insert(conn: Connection, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT on both SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


# One encoder, reused: json.dumps with non-default separators builds a new one per call.
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: Column order of the rows given to :func:`_insert_new_events` (context as JSON text).
EVENT_COLUMNS = ("event_id", "user_idx", "item_idx", "type_idx", "value", "ts", "context")


def _insert_new_events(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert event rows whose ``event_id`` is not stored yet; return how many were new."""
    if conn.dialect.name == "postgresql":
        from personae.store.fastwrite import copy_events

        return copy_events(conn, rows)
    cur = driver_connection(conn).cursor()
    try:
        cur.executemany(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            rows,
        )
        return cur.rowcount
    finally:
        cur.close()


def _record(cls: type, data: Mapping[str, Any]) -> Any:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"expected a {cls.__name__} or a mapping, got {type(data).__name__}")
    names = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = set(data) - names
    if unknown:
        raise InvalidInput(
            f"unknown field(s) for {cls.__name__.lower()}: {', '.join(sorted(unknown))}; "
            f"expected some of {', '.join(sorted(names))}"
        )
    try:
        return cls(**data)
    except TypeError as exc:  # a required field missing
        raise InvalidInput(f"{cls.__name__.lower()}: {exc}") from None


def _item_from_row(row: Any) -> Item:
    return Item(
        row.item_id, title=row.title, text=row.text, categories=list(row.categories or []),
        attributes=row.attributes or {}, available=bool(row.available), created_at=row.created_at,
    )


def _chunks(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for v in values:
        chunk.append(v)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _log_histogram(counts: np.ndarray) -> list[tuple[str, int]]:
    """Users per activity bucket: 1, 2–4, 5–9, 10–19, 20–49, 50–99, 100–199, …"""
    if counts.size == 0:
        return []
    edges = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]
    top = int(counts.max())
    while edges[-1] <= top:
        edges.append(edges[-1] * 2)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        n = int(((counts >= lo) & (counts < hi)).sum())
        label = f"{lo}" if hi - lo == 1 else f"{lo}–{hi - 1}"
        if lo <= top:
            out.append((label, n))
    return out


# ---------------------------------------------------------------------- serving helpers

_HISTORY_QUERY = (
    select(S.events.c.item_idx, S.events.c.type_idx)
    .join(S.users, S.users.c.user_idx == S.events.c.user_idx)
    .where(S.users.c.user_id == bindparam("uid"))
    .order_by(S.events.c.ts.desc().nulls_last(), S.events.c.event_idx.desc())
    .limit(bindparam("n"))
)
_STATE_QUERY = select(S.meta.c.key, S.meta.c.value).where(
    S.meta.c.key.in_(("active_model_version", "catalog_version", "model_epoch",
                      "corrections_version"))
)


def _set_meta(conn: Connection, key: str, value: str) -> None:
    stmt = _insert(conn, S.meta)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"],
                                            set_={"value": stmt.excluded.value}),
                 {"key": key, "value": value})


def _stale_query(now: float, stale_after: float) -> Any:
    """"training" versions (id, last sign of life) silent for more than ``stale_after`` s."""
    mv = S.model_versions
    beat = func.coalesce(mv.c.heartbeat_at, mv.c.created_at)
    return select(mv.c.version, beat.label("beat")).where(
        (mv.c.status == "training") & (beat < now - stale_after))


def _audit(conn: Connection, action: str, subject: str | None,
           detail: Mapping[str, Any] | None) -> None:
    conn.execute(S.audit_log.insert(), {"ts": utcnow(), "action": action, "subject": subject,
                                        "detail": dict(detail) if detail else None})


def _touch_catalog(conn: Connection) -> None:
    """Give the catalogue a new version (items or event types changed)."""
    _set_meta(conn, "catalog_version", secrets.token_hex(8))


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _api_key(row: Any) -> ApiKey:
    return ApiKey(row.key_id, row.name, row.role, row.created_at, row.revoked_at)


def _model_version(row: Any) -> ModelVersion:
    return ModelVersion(**{c: getattr(row, c) for c in ModelVersion.__dataclass_fields__})


def dumps(obj: Any) -> str:
    """JSON for people: UTF-8 as is, two-space indent."""
    return json.dumps(obj, ensure_ascii=False, indent=2)


_ = text  # re-exported for migrations that need raw SQL
