"""Models behind one interface (:class:`~personae.models.base.Recommender`).

:data:`MODELS` maps a name to ``module:Class``; classes are imported when first asked for, so
that heavy dependencies (``implicit``, ``torch``) load only for the models that need them.

>>> from personae.models import create                     # doctest: +SKIP
>>> model = create("ease", l2=500.0).fit(view)             # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from personae.errors import InvalidInput
from personae.models.base import (
    NotFitted,
    NotSupported,
    Recommendations,
    Recommender,
)

#: Registered models: name → "module:Class". Add a model here and it is found by the CLI,
#: the evaluation and the server.
MODELS: dict[str, str] = {
    "popularity": "personae.models.popularity:Popularity",
    "itemknn": "personae.models.itemknn:ItemKNN",
    "rp3beta": "personae.models.rp3beta:RP3beta",
    "ease": "personae.models.ease:EASE",
    "gfcf": "personae.models.gfcf:GFCF",
    "als": "personae.models.als:ALS",
    "bpr": "personae.models.bpr:BPR",
    "blend": "personae.models.blend:Blend",
    "fedmf": "personae.privacy.fedmf:FedMF",  # federated-ready MF (issue 9)
    "content": "personae.models.content:Content",
    "twotower": "personae.models.twotower:TwoTower",
    "sasrec": "personae.models.sasrec:SASRec",
}


def get_model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; an unknown name lists the valid ones."""
    try:
        target = MODELS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}"
        ) from None
    module, _, attr = target.partition(":")
    cls: type[Recommender] = getattr(importlib.import_module(module), attr)
    return cls


def create(name: str, **params: Any) -> Recommender:
    """A new, unfitted model of the registered ``name`` with these hyper-parameters."""
    return get_model_class(name)(**params)


def load_model(path: Any) -> Recommender:
    """Any model saved with :meth:`Recommender.save`."""
    return Recommender.load(path)


__all__ = [
    "MODELS",
    "NotFitted",
    "NotSupported",
    "Recommendations",
    "Recommender",
    "create",
    "get_model_class",
    "load_model",
]
