"""Schema versioning with Alembic, run programmatically on the store's own engine.

A store records its revision in ``alembic_version``; :class:`personae.Store` upgrades an older
store when it opens it, and refuses one newer than this code.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest) in one transaction."""
    with engine.connect().execution_options(personae_write=True) as conn, conn.begin():
        command.upgrade(_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The store's schema revision, or ``None`` when it has no personae schema."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def known_revisions() -> list[str]:
    """Every revision this code knows, oldest first."""
    script = ScriptDirectory.from_config(_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
