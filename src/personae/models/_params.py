"""Hyper-parameter checks shared by every model, with one wording for every error:

    The 'l2' parameter of EASE must be a float > 0. Got -3 instead.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from personae.errors import InvalidInput


def fail(model: str, name: str, expected: str, value: Any) -> InvalidInput:
    """The error for a bad parameter (raise it)."""
    return InvalidInput(
        f"The {name!r} parameter of {model} must be {expected}. Got {value!r} instead."
    )


def is_number(value: Any) -> bool:
    """A real number that is not a bool (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def check_number(model: str, name: str, value: Any, expected: str,
                 ok: Callable[[float], bool] = lambda v: True) -> None:
    """``value`` must be a finite real number for which ``ok`` holds."""
    if not is_number(value) or not np.isfinite(float(value)) or not ok(float(value)):
        raise fail(model, name, expected, value)


def check_int(model: str, name: str, value: Any, low: int) -> None:
    """``value`` must be an int >= ``low`` (bools are refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_) \
            or int(value) < low:
        raise fail(model, name, f"an int >= {low}", value)


def check_float(model: str, name: str, value: Any, *, strict: bool) -> None:
    """``value`` must be a finite real > 0 (``strict``) or >= 0."""
    if strict:
        check_number(model, name, value, "a float > 0", lambda v: v > 0)
    else:
        check_number(model, name, value, "a float >= 0", lambda v: v >= 0)


def check_choice(model: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise fail(model, name, f"one of {tuple(choices)}", value)


def check_bool(model: str, name: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise fail(model, name, "a bool", value)


def check_random_state(model: str, value: Any) -> None:
    """``random_state`` is None or an int >= 0 (stored in model.json, so no RNG objects)."""
    if value is None:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise fail(model, "random_state", "None or an int >= 0", value)
