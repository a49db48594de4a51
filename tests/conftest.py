"""Shared fixtures: a fresh store on every backend, and the shared data sets.

Storage tests take the ``store`` fixture (or ``store_url``/``make_store``) and run twice: on a
SQLite file and on a real PostgreSQL server. Each PostgreSQL test gets a schema of its own in
``$PERSONAE_TEST_PG`` (default ``postgresql+psycopg://root@127.0.0.1:5432/test``), dropped after.
With no server answering the PostgreSQL runs skip, with the reason shown; with
``PERSONAE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from personae.store import Store

PG_URL = os.environ.get("PERSONAE_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("PERSONAE_REQUIRE_POSTGRES") == "1"
SHARED_DATA = Path(
    os.environ.get("PERSONAE_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared"
                   / "data")
).resolve()
REQUIRE_SHARED = os.environ.get("PERSONAE_REQUIRE_SHARED_DATA") == "1"

_pg_error: str | None = None
_pg_checked = False


def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (``None`` when it can); checked once per run."""
    global _pg_checked, _pg_error
    if not _pg_checked:
        _pg_checked = True
        try:
            from sqlalchemy import create_engine, text

            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:  # noqa: BLE001 - any failure means "no usable server"
            _pg_error = f"no PostgreSQL server at {PG_URL}: {type(exc).__name__}: {exc}"
    return _pg_error


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        problem = _postgres_problem()
        if problem:
            if REQUIRE_PG:
                pytest.fail(f"PERSONAE_REQUIRE_POSTGRES=1 but {problem}")
            pytest.skip(problem)
    return request.param


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty place for a store on ``backend`` (removed after the test)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'personae.db'}"
        return
    from sqlalchemy import create_engine, text

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., Store]]:
    """Open (or reopen) the test's store; every store opened is closed after the test."""
    opened: list[Store] = []

    def make(**kwargs: object) -> Store:
        s = Store(store_url, **kwargs)  # type: ignore[arg-type]
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    """A fresh, empty store, on SQLite and on PostgreSQL."""
    return make_store()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (MovieLens 100K, ml-1m metadata, MeLU partitions)."""
    if not (SHARED_DATA / "ml-100k" / "u.data").exists():
        msg = f"shared data sets not found at {SHARED_DATA} (set PERSONAE_SHARED_DATA)"
        if REQUIRE_SHARED:
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA
