"""Bulk event insertion on PostgreSQL through COPY.

Rows are streamed with ``COPY`` into a temporary staging table, then moved with one
``INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING``, which keeps writes idempotent while
running at COPY speed instead of one round trip per few hundred rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from personae.store.fastread import driver_connection

_STAGE = "personae_events_stage"
_COLS = ("event_id", "user_idx", "item_idx", "type_idx", "value", "ts", "context")


def copy_events(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert ``rows`` (tuples in ``EVENT_COLUMNS`` order, context as JSON text) unless their
    ``event_id`` is stored already.

    Returns the number of rows inserted. Runs inside the caller's transaction.
    """
    raw = driver_connection(conn)
    with raw.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
            " ord integer, event_id varchar(256) COLLATE \"C\", user_idx integer, item_idx integer,"
            " type_idx smallint, value double precision, ts double precision, context jsonb"
            ") ON COMMIT DELETE ROWS"
        )
        cur.execute(f"TRUNCATE {_STAGE}")
        with cur.copy(f"COPY {_STAGE} (ord, {', '.join(_COLS)}) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                copy.write_row((n, *row))
        cur.execute(
            f"INSERT INTO events ({', '.join(_COLS)})"
            f" SELECT {', '.join(_COLS)} FROM {_STAGE} ORDER BY ord"
            # No anti-join against events to drop known ids first: without fresh statistics
            # the planner hashes the whole events table for it, once per chunk (measured:
            # 0.7 s per 20k-row chunk at 1M events). The unique-index probe of ON CONFLICT
            # costs the same whether a row is new or not.
            " ON CONFLICT (event_id) DO NOTHING"
        )
        return cur.rowcount
