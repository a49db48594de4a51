"""The exception tree of personae.

Every error personae raises derives from :class:`PersonaeError` and, where it fits, from the
built-in exception a caller would already catch (``ValueError`` for bad input, ``KeyError`` for
an unknown id), so ``except ValueError`` keeps working for people who do not know personae.
"""

from __future__ import annotations


class PersonaeError(Exception):
    """Base class of every error raised by personae."""


class InvalidInput(PersonaeError, ValueError):
    """A value given to personae has the wrong type, range or shape.

    The message names the field, what was received and what was expected.
    """


class NotFound(PersonaeError, KeyError):
    """An id (user, item, event, model version) that the store does not know."""

    def __str__(self) -> str:  # KeyError would quote the message; keep it readable
        return str(self.args[0]) if self.args else ""


class StoreError(PersonaeError):
    """The store cannot be opened or used as asked (wrong URL, wrong key, newer schema, ...)."""


class ImportFormatError(InvalidInput):
    """A row of an input file cannot be read.

    Attributes
    ----------
    path : str
        The file being read.
    line : int | None
        1-based line (or record) number within the file, when known.
    problem : str
        What is wrong with the row.
    """

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class MissingExtra(PersonaeError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module!r} is not installed; install it with: pip install 'personae[{extra}]'"
        )
