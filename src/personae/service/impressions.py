"""The impression log, written off the request path: shown lists are queued and a background
thread stores them in batches.

A request only appends its :class:`~personae.store.Recommendation` to an in-memory queue
(microseconds); a writer thread stores what waits every ``interval`` seconds (default 0.05), or
as soon as ``batch`` lists wait, in one transaction. So that paging (``after``) and rewards can
name a list at once, :meth:`ImpressionLog.get` looks in the queue first, then in the store,
and when the store does not have the list yet it polls the store for up to ``wait`` seconds
(default 0.2) before answering :class:`~personae.errors.NotFound`.

The bound, for a list issued by *another* process (a second uvicorn worker): it is found when
that process stored it within ``wait`` of the lookup, i.e. unless its writer is more than
``wait - interval`` (0.15 s by default) late: a database locked by a long write, an
unreachable PostgreSQL. Lists still queued when the process exits are written by
:meth:`ImpressionLog.close` (called by :meth:`personae.service.Engine.close`, and at
interpreter exit for logs that were not closed). A list logged for a user who is forgotten
before the batch is written is dropped by :meth:`personae.store.Store.log_recommendations`.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from personae.errors import NotFound, StoreError
from personae.store.serving import rec_id_time

if TYPE_CHECKING:
    from personae.store import Recommendation, Store

log = logging.getLogger("personae.service")

#: Lists kept queued when the store cannot be written; past this the oldest are dropped.
MAX_PENDING = 100_000
#: Longest pause (seconds) between two tries of a writer that cannot reach the store.
MAX_RETRY_PAUSE = 5.0
#: Seconds without a list after which the writer thread ends (the next list starts one).
IDLE_EXIT = 10.0


class ImpressionLog:
    """Queue shown lists and store them in batches from a background thread.

    Parameters
    ----------
    store : Store
    interval : float, default 0.05
        Seconds a list waits at most before its batch is written; 0 writes each list in the
        calling thread (no queue, no thread).
    batch : int, default 256
        Write at once when this many lists wait.
    wait : float, default 0.2
        Seconds :meth:`get` polls the store for a list it does not find (another process's
        list, not written yet) before :class:`NotFound`.
    """

    def __init__(self, store: Store, *, interval: float = 0.05, batch: int = 256,
                 wait: float = 0.2) -> None:
        self.store = store
        self.interval = float(interval)
        self.batch = int(batch)
        self.wait = float(wait)
        self._pending: dict[str, Recommendation] = {}  # rec_id → list, oldest first
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._write_lock = threading.Lock()  # one batch in flight: the thread's or flush()'s
        self._thread: threading.Thread | None = None
        self._closed = False

    def __len__(self) -> int:
        """Lists queued, not stored yet."""
        return len(self._pending)

    # ------------------------------------------------------------------ writing

    def add(self, rec: Recommendation) -> None:
        """Queue ``rec`` for writing (or write it now when ``interval`` is 0 or after
        :meth:`close`)."""
        with self._lock:
            queued = self.interval > 0 and not self._closed
            if queued:
                self._pending[rec.rec_id] = rec
                n = len(self._pending)
                if self._thread is None:
                    self._start()
                if n == 1 or n >= self.batch:
                    self._wake.notify()
        if not queued:
            self.store.log_recommendation(rec)

    def flush(self) -> int:
        """Store every queued list now, in this thread; returns how many were written."""
        return self._write()

    def close(self) -> None:
        """Write what is queued and stop the writer thread. Later lists are written at once."""
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._write()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="personae-impressions",
                                        daemon=True)
        self._thread.start()
        _open_logs.add(self)

    def _run(self) -> None:
        failures = 0
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    if not self._wake.wait(IDLE_EXIT) and not self._pending:
                        # idle: end, so that an unused log (and its store) can be collected;
                        # add() starts a new thread
                        self._thread = None
                        return
                if self._closed:
                    return  # close() writes the rest
                if len(self._pending) < self.batch:
                    # gather for one interval; woken early when a full batch waits or on close
                    self._wake.wait(self.interval)
            try:
                self._write()
                failures = 0
            except Exception:  # noqa: BLE001 - the thread must survive; the lists stay queued
                failures += 1
                pause = min(self.interval * 2.0 ** failures, MAX_RETRY_PAUSE)
                log.exception("writing %d impressions failed; retrying in %.2f s",
                              len(self._pending), pause)
                time.sleep(pause)

    def _write(self) -> int:
        with self._write_lock:
            with self._lock:
                batch = list(self._pending.values())
            if not batch:
                return 0
            try:
                self.store.log_recommendations(batch)
                written = batch
            except (DBAPIError, StoreError) as exc:
                if _unavailable(exc):
                    self._trim()
                    raise
                written = self._one_by_one(batch)
            with self._lock:
                for rec in written:
                    self._pending.pop(rec.rec_id, None)
            return len(written)

    def _one_by_one(self, batch: list[Recommendation]) -> list[Recommendation]:
        """A batch failed on its content: store the lists singly, drop the ones refused."""
        done = []
        for rec in batch:
            try:
                self.store.log_recommendation(rec)
            except (DBAPIError, StoreError) as exc:
                if _unavailable(exc):
                    break
                log.error("dropping impression %s, which the store refuses: %s", rec.rec_id, exc)
            done.append(rec)
        return done

    def _trim(self) -> None:
        with self._lock:
            extra = len(self._pending) - MAX_PENDING
            if extra > 0:
                log.error("the store cannot be written: dropping the %d oldest impressions",
                          extra)
                for rec_id in list(self._pending)[:extra]:
                    del self._pending[rec_id]

    # ------------------------------------------------------------------ reading

    def get(self, rec_id: str, *, wait: bool = True) -> Recommendation:
        """The list ``rec_id``: queued here, or in the store; :class:`NotFound` if unknown.

        With ``wait``, a list the store does not have is looked up again for up to
        ``self.wait`` seconds (10, 20, 40, … ms apart) when its id says it was issued within
        that time: another process's writer may not have stored it yet.
        """
        rec = self._pending.get(rec_id)
        if rec is not None:
            return rec
        # Only a list issued moments ago can still be on its way to the store: the id says
        # when it was issued, so an unknown or old id is answered at once.
        issued = rec_id_time(rec_id)
        patience = 0.0
        if wait and issued is not None:
            patience = min(self.wait, max(0.0, issued + self.wait + self.interval - time.time()))
        deadline = time.monotonic() + patience
        delay = 0.01
        while True:
            try:
                return self.store.get_recommendation(rec_id)
            except NotFound:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(delay, left))
                delay *= 2


def _unavailable(exc: Exception) -> bool:
    """Errors that say the store cannot be reached (keep the lists), not that one is bad."""
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated
                                             or type(exc).__name__ == "OperationalError")


_open_logs: weakref.WeakSet[ImpressionLog] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    # Writer threads are daemons (a server must be able to exit): write what they hold.
    for impressions in list(_open_logs):
        try:
            impressions.close()
        except Exception:  # noqa: BLE001 - at exit, say what was lost and go on
            log.exception("impressions not written at exit (%d lists)", len(impressions))
