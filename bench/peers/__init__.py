"""Adapters that run peer libraries' models with one shape, beside personae's models.

Import from a bench script with ``bench/`` on ``sys.path``::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peers import PEERS, create
    model = create("cornac.ease", lamb=250).fit(train_csr)

Each adapter's library is imported only when that adapter is fitted.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import SEED, PeerModel, topk

#: name → "module:Class" (module relative to this package).
PEERS: dict[str, str] = {
    "implicit.als": "implicit_models:ALS",
    "implicit.bpr": "implicit_models:BPR",
    "implicit.cosine": "implicit_models:CosineKNN",
    "implicit.bm25": "implicit_models:BM25KNN",
    "cornac.ease": "cornac_models:EASE",
    "cornac.bpr": "cornac_models:BPR",
    "cornac.vaecf": "cornac_models:VAECF",
    "lightfm.warp": "lightfm_models:WARP",
    "recbole.sasrec": "recbole_models:SASRec",
    "recbole.bpr": "recbole_models:BPR",
    "recbole.lightgcn": "recbole_models:LightGCN",
}


def get_peer_class(name: str) -> type[PeerModel]:
    """The adapter registered as ``name``; an unknown name lists the valid ones."""
    try:
        target = PEERS[name]
    except KeyError:
        raise KeyError(f"unknown peer {name!r}; expected one of {', '.join(PEERS)}") from None
    module, _, attr = target.partition(":")
    cls: type[PeerModel] = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    return cls


def create(name: str, **params: Any) -> PeerModel:
    """A new, unfitted adapter with these hyper-parameters."""
    return get_peer_class(name)(**params)


__all__ = ["PEERS", "SEED", "PeerModel", "create", "get_peer_class", "topk"]
