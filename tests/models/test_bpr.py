"""BPR: the conformance suite, determinism with a seed, the factor layout, no fold-in."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

from personae.errors import InvalidInput, MissingExtra
from personae.models.bpr import BPR

from .conformance import N_ITEMS, N_USERS, ModelConformance, checkerboard

pytest.importorskip("implicit", reason="BPR needs the 'models' extra (implicit)")

PARAMS: dict[str, Any] = {"factors": 8, "learning_rate": 0.05, "iterations": 50,
                          "random_state": 0}


class TestBPR(ModelConformance):
    invalid_params = [
        ("factors", 0), ("factors", "8"), ("learning_rate", 0.0), ("learning_rate", -0.1),
        ("regularization", -1.0), ("iterations", 0), ("iterations", 1.5), ("random_state", -1),
        ("num_threads", -1),
    ]

    def make_model(self, **params: Any) -> BPR:
        return BPR(**{**PARAMS, **params})


def test_error_message_names_value_and_expectation() -> None:
    with pytest.raises(InvalidInput) as err:
        BPR(learning_rate=-3).fit(checkerboard())
    assert str(err.value) == (
        "The 'learning_rate' parameter of BPR must be a float > 0. Got -3 instead."
    )


def test_factors_carry_an_item_bias_column() -> None:
    model = BPR(**PARAMS).fit(checkerboard())
    assert model.user_factors_.shape == (N_USERS, 9)
    assert model.item_factors_.shape == (N_ITEMS, 9)
    assert model.user_factors_.dtype == np.float32
    np.testing.assert_array_equal(model.user_factors_[:, -1], 1.0)


def test_a_seed_means_one_thread_unless_threads_are_asked_for() -> None:
    assert BPR(random_state=0)._threads() == 1
    assert BPR(random_state=None)._threads() == 0
    assert BPR(random_state=0, num_threads=4)._threads() == 4


def test_same_seed_same_factors_other_seed_other_factors() -> None:
    a = BPR(**PARAMS).fit(checkerboard())
    b = BPR(**PARAMS).fit(checkerboard())
    c = BPR(**{**PARAMS, "random_state": 1}).fit(checkerboard())
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_fit_without_implicit_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "implicit" or m.startswith("implicit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "implicit", None)
    with pytest.raises(MissingExtra, match=r"personae\[models\]"):
        BPR(**PARAMS).fit(checkerboard())
