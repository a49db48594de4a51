"""Reading the event log into numpy arrays, fast, per backend.

Training reads every event; row-by-row ORM objects would dominate the time. SQLite hands back
plain tuples that numpy converts in one call; PostgreSQL streams ``COPY … (FORMAT binary)``, whose
fixed-width rows numpy reads directly as a big-endian record array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection

_COLUMNS = "user_idx, item_idx, type_idx, value, ts"

#: ``(user_idx int32, item_idx int32, type_idx int16, value f64, ts f64)``.
EventArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# One row of COPY BINARY for (int4, int4, int2, float8, float8): a field count, then a length
# before each field.
_PG_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("l_user", ">i4"), ("user", ">i4"),
        ("l_item", ">i4"), ("item", ">i4"),
        ("l_type", ">i4"), ("type", ">i2"),
        ("l_value", ">i4"), ("value", ">f8"),
        ("l_ts", ">i4"), ("ts", ">f8"),
    ]
)
_PG_HEADER = 19  # signature (11) + flags (4) + header extension length (4)


def read_event_arrays(conn: Connection) -> EventArrays:
    """``(user_idx int32, item_idx int32, type_idx int16, value f64, ts f64)`` by arrival."""
    if conn.dialect.name == "postgresql":
        return _read_postgresql(conn)
    return _read_generic(conn)


def _read_generic(conn: Connection) -> EventArrays:
    # The DB-API cursor hands back plain tuples, which numpy converts in one call.
    cur = driver_connection(conn).cursor()
    try:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM events ORDER BY event_idx").fetchall()
    finally:
        cur.close()
    n = len(rows)
    if n == 0:
        return _empty()
    # None (missing value/time) becomes NaN in a float array.
    arr = np.array(rows, dtype=np.float64)
    return (
        arr[:, 0].astype(np.int32),
        arr[:, 1].astype(np.int32),
        arr[:, 2].astype(np.int16),
        np.ascontiguousarray(arr[:, 3]),
        np.ascontiguousarray(arr[:, 4]),
    )


def _read_postgresql(conn: Connection) -> EventArrays:
    raw = driver_connection(conn)
    sql = (
        "COPY (SELECT user_idx, item_idx, type_idx, coalesce(value, 'NaN'), coalesce(ts, 'NaN')"
        " FROM events ORDER BY event_idx) TO STDOUT (FORMAT binary)"
    )
    with raw.cursor() as cur:
        # Enough sort memory that ordering a few million rows stays off disk.
        cur.execute("SET LOCAL work_mem = '256MB'")
        with cur.copy(sql) as copy:
            data = b"".join(bytes(block) for block in copy)
    body = data[_PG_HEADER:-2]  # drop the header and the -1 trailer
    if not body:
        return _empty()
    rec = np.frombuffer(body, dtype=_PG_ROW)
    if not (rec["nfields"] == 5).all():  # pragma: no cover - a schema change would do this
        raise RuntimeError("unexpected COPY row layout while reading events")
    return (
        rec["user"].astype(np.int32),
        rec["item"].astype(np.int32),
        rec["type"].astype(np.int16),
        rec["value"].astype(np.float64),
        rec["ts"].astype(np.float64),
    )


def driver_connection(conn: Connection) -> Any:
    """The DB-API driver's own connection under ``conn`` (sqlite3 or psycopg)."""
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - only a detached or invalidated connection has none
        raise RuntimeError("the database connection was closed or invalidated")
    return raw


def _empty() -> EventArrays:
    return (
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        np.zeros(0, np.int16),
        np.zeros(0, np.float64),
        np.zeros(0, np.float64),
    )
