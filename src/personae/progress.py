"""Progress bars for long work (imports, data generation, training), on stderr.

One small wrapper over ``rich.progress`` that does nothing when disabled, so library code can
always call it; output goes to stderr so that ``--format json`` on stdout stays clean.
"""

from __future__ import annotations

from typing import Any, Literal


class ProgressBars:
    """A set of progress bars, or nothing when ``enabled`` is false.

    Parameters
    ----------
    enabled : bool
        Show bars; when false every method is a no-op.
    unit : {"count", "bytes"}, default "count"
        What the totals count: items (shown as ``n/total``) or bytes read (with a speed).
    """

    def __init__(self, enabled: bool, unit: Literal["count", "bytes"] = "count") -> None:
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        if unit == "bytes":
            columns: tuple[Any, ...] = (TextColumn("[bold]{task.description}"), BarColumn(),
                                        DownloadColumn(), TransferSpeedColumn(),
                                        TimeRemainingColumn())
        else:
            columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TimeRemainingColumn())
        self._bar = Progress(*columns, console=Console(stderr=True))

    def __enter__(self) -> ProgressBars:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def add(self, label: str, total: int | None) -> Any:
        """A new bar; returns its handle for :meth:`advance` / :meth:`update`."""
        return self._bar.add_task(label, total=total) if self._bar is not None else None

    def advance(self, task: Any, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(task, n)

    def update(self, task: Any, completed: int) -> None:
        if self._bar is not None:
            self._bar.update(task, completed=completed)
