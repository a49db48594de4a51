"""``RecBole`` 1.2.1 models: SASRec, BPR, LightGCN (CPU), trained by RecBole's own Trainer.

RecBole reads *atomic files* and builds its own id maps and splits. The adapters write the
training matrix as a ``.inter`` file in a temporary folder, let RecBole split it with
``LS: valid_only`` (each user's last row to a validation set the adapters never use), and append
one extra copy of every user's last item as that last row: RecBole's training set is then
exactly the training matrix, and no personae code or split decides what RecBole sees. Scoring
maps our indices to RecBole's tokens and back; items RecBole never saw score ``-inf``.

**Order.** A csr matrix has no time: for ``recbole.sasrec`` the matrix's *values* must be each
pair's position in its user's time order (1 = oldest), as :func:`ordered_train` in
``bench/bench_neural.py`` writes them. The general models ignore the values.

**Shims** (RecBole 1.2.1 predates NumPy 2 and SciPy 1.12+; see the issue):

- ``recbole.quick_start`` is never imported (it imports ``ray``, whose import fails on new
  setuptools);
- ``np.float_``, ``np.complex_`` and ``np.unicode_`` are aliased before RecBole's ``Config``
  is imported;
- SciPy's removed private ``dok_matrix._update`` (used by LightGCN's adjacency matrix) is
  restored as a plain dict update.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import SEED, PeerModel, default_threads

_DATASET = "personae"


def apply_shims() -> None:
    """Make RecBole 1.2.1 importable and runnable next to NumPy 2 and SciPy >= 1.12."""
    for name, value in (("float_", np.float64), ("complex_", np.complex128),
                        ("unicode_", np.str_)):
        if not hasattr(np, name):
            setattr(np, name, value)
    if not hasattr(sp.dok_matrix, "_update"):
        def _update(self: Any, data: dict) -> None:
            store = getattr(self, "_dict", None)
            if store is not None:
                store.update(data)
            else:  # pragma: no cover - old SciPy keeps the method itself
                for key, value in data.items():
                    self[key] = value

        sp.dok_matrix._update = _update


class _RecBole(PeerModel):
    library = "recbole"
    modules = ("torch", "recbole.config", "recbole.data", "recbole.utils")
    #: RecBole's model class name.
    model_name = ""
    #: Sequential models read the values of the training matrix as time order.
    sequential = False

    @classmethod
    def import_library(cls) -> None:
        apply_shims()
        super().import_library()

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _fit(self, X: sp.csr_matrix) -> None:
        apply_shims()
        import torch
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import get_model, get_trainer, init_seed

        self._tmp = tempfile.TemporaryDirectory(prefix="recbole-")
        folder = Path(self._tmp.name) / _DATASET
        folder.mkdir()
        _write_inter(folder / f"{_DATASET}.inter", X, self.sequential)
        p = self._params
        config = Config(model=self.model_name, dataset=_DATASET, config_dict={
            "data_path": str(Path(self._tmp.name)),
            "checkpoint_dir": str(Path(self._tmp.name) / "saved"),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "eval_args": {"split": {"LS": "valid_only"}, "order": "TO", "group_by": "user",
                          "mode": "full"},
            "user_inter_num_interval": None, "item_inter_num_interval": None,
            "val_interval": None, "filter_inter_by_user_or_item": False,
            "device": "cpu", "use_gpu": False, "gpu_id": "", "seed": p.get("seed", SEED),
            "reproducibility": True, "show_progress": False, "state": "ERROR",
            "log_wandb": False, "save_dataset": False, "save_dataloaders": False,
            "worker": 0, "nproc": 1,
            **self._config(),
        })
        init_seed(config["seed"], config["reproducibility"])
        with _torch_threads(p.get("num_threads") or default_threads()):
            dataset = create_dataset(config)
            train_data, _valid, _test = data_preparation(config, dataset)
            model = get_model(config["model"])(config, train_data._dataset).to("cpu")
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            trainer.fit(train_data, valid_data=None, saved=False, show_progress=False)
        model.eval()
        self.model_, self.dataset_, self.config_ = model, dataset, config
        # our index -> RecBole's internal id (0 = RecBole's padding: never one of ours)
        self.item_map_ = _token_map(dataset, "item_id", X.shape[1])
        self.user_map_ = _token_map(dataset, "user_id", X.shape[0])
        self.torch_ = torch

    def _scores_to_ours(self, internal: np.ndarray) -> np.ndarray:
        out = np.full((internal.shape[0], self.n_items_), -np.inf, dtype=np.float32)
        known = self.item_map_ > 0
        out[:, known] = internal[:, self.item_map_[known]]
        return out


class SASRec(_RecBole):
    """RecBole ``SASRec`` with its cross-entropy loss over all items (``loss_type: CE``)."""

    name = "recbole.sasrec"
    model_name = "SASRec"
    sequential = True
    defaults = {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256,
                "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5, "epochs": 300,
                "learning_rate": 0.001, "train_batch_size": 2048, "MAX_ITEM_LIST_LENGTH": 50}
    grid: dict[str, list[Any]] = {}

    def __init__(self, epochs: int = 200, learning_rate: float = 0.001,
                 hidden_size: int = 64, n_layers: int = 2, n_heads: int = 2,
                 dropout: float = 0.5, max_len: int = 50, batch_size: int = 2048,
                 seed: int = SEED, num_threads: int | None = None) -> None:
        super().__init__(epochs=epochs, learning_rate=learning_rate, hidden_size=hidden_size,
                         n_layers=n_layers, n_heads=n_heads, dropout=dropout, max_len=max_len,
                         batch_size=batch_size, seed=seed, num_threads=num_threads)

    def _config(self) -> dict[str, Any]:
        p = self._params
        return {"epochs": p["epochs"], "learning_rate": p["learning_rate"],
                "hidden_size": p["hidden_size"], "inner_size": 4 * p["hidden_size"],
                "n_layers": p["n_layers"], "n_heads": p["n_heads"],
                "hidden_dropout_prob": p["dropout"], "attn_dropout_prob": p["dropout"],
                "MAX_ITEM_LIST_LENGTH": p["max_len"], "train_batch_size": p["batch_size"],
                "loss_type": "CE", "train_neg_sample_args": None}

    def _fit(self, X: sp.csr_matrix) -> None:
        super()._fit(X)
        # each user's training items in time order (the matrix values), for scoring
        self.seqs_ = [X.indices[X.indptr[u]:X.indptr[u + 1]][
            np.argsort(X.data[X.indptr[u]:X.indptr[u + 1]], kind="stable")]
            for u in range(X.shape[0])]

    def _score(self, users: np.ndarray) -> np.ndarray:
        from recbole.data.interaction import Interaction

        torch = self.torch_
        L = int(self._params["max_len"])
        seq = np.zeros((users.size, L), dtype=np.int64)
        lengths = np.ones(users.size, dtype=np.int64)
        for r, u in enumerate(users):
            ids = self.item_map_[self.seqs_[u]]
            ids = ids[ids > 0][-L:]
            seq[r, :ids.size] = ids  # RecBole pads on the right
            lengths[r] = max(ids.size, 1)
        inter = Interaction({"item_id_list": torch.from_numpy(seq),
                             "item_length": torch.from_numpy(lengths)})
        with _torch_threads(self._params["num_threads"] or default_threads()), \
                torch.no_grad():
            scores = self.model_.full_sort_predict(inter).reshape(users.size, -1).numpy()
        return self._scores_to_ours(scores)


class _General(_RecBole):
    def _score(self, users: np.ndarray) -> np.ndarray:
        from recbole.data.interaction import Interaction

        torch = self.torch_
        ids = self.user_map_[users]
        inter = Interaction({"user_id": torch.from_numpy(np.maximum(ids, 0))})
        with _torch_threads(self._params["num_threads"] or default_threads()), \
                torch.no_grad():
            scores = self.model_.full_sort_predict(inter).reshape(users.size, -1).numpy()
        scores = scores.astype(np.float32)
        scores[ids <= 0] = 0.0  # users RecBole never saw: no personal scores
        return self._scores_to_ours(scores)


class BPR(_General):
    """RecBole ``BPR`` (one uniform negative per positive)."""

    name = "recbole.bpr"
    model_name = "BPR"
    defaults = {"embedding_size": 64, "epochs": 300, "learning_rate": 0.001,
                "train_batch_size": 2048}
    grid = {"learning_rate": [0.001, 0.005]}

    def __init__(self, embedding_size: int = 64, epochs: int = 100,
                 learning_rate: float = 0.001, batch_size: int = 2048, seed: int = SEED,
                 num_threads: int | None = None) -> None:
        super().__init__(embedding_size=embedding_size, epochs=epochs,
                         learning_rate=learning_rate, batch_size=batch_size, seed=seed,
                         num_threads=num_threads)

    def _config(self) -> dict[str, Any]:
        p = self._params
        return {"embedding_size": p["embedding_size"], "epochs": p["epochs"],
                "learning_rate": p["learning_rate"], "train_batch_size": p["batch_size"],
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}


class LightGCN(_General):
    """RecBole ``LightGCN`` (BPR loss over the normalised user-item graph)."""

    name = "recbole.lightgcn"
    model_name = "LightGCN"
    defaults = {"embedding_size": 64, "n_layers": 2, "reg_weight": 1e-5, "epochs": 300,
                "learning_rate": 0.001, "train_batch_size": 2048}
    grid = {"n_layers": [2, 3]}

    def __init__(self, embedding_size: int = 64, n_layers: int = 2, reg_weight: float = 1e-4,
                 epochs: int = 100, learning_rate: float = 0.001, batch_size: int = 2048,
                 seed: int = SEED, num_threads: int | None = None) -> None:
        super().__init__(embedding_size=embedding_size, n_layers=n_layers,
                         reg_weight=reg_weight, epochs=epochs, learning_rate=learning_rate,
                         batch_size=batch_size, seed=seed, num_threads=num_threads)

    def _config(self) -> dict[str, Any]:
        p = self._params
        return {"embedding_size": p["embedding_size"], "n_layers": p["n_layers"],
                "reg_weight": p["reg_weight"], "epochs": p["epochs"],
                "learning_rate": p["learning_rate"], "train_batch_size": p["batch_size"],
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}


# ---------------------------------------------------------------------- helpers


def _write_inter(path: Path, X: sp.csr_matrix, sequential: bool) -> None:
    """The training pairs as an atomic ``.inter`` file, each user's rows in time order, plus
    one extra copy of the user's last item (RecBole's ``valid_only`` split takes it away)."""
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(X.shape[0]):
        items = X.indices[X.indptr[u]:X.indptr[u + 1]]
        if items.size == 0:
            continue
        if sequential:
            items = items[np.argsort(X.data[X.indptr[u]:X.indptr[u + 1]], kind="stable")]
        lines.extend(f"{u}\t{i}\t{t}" for t, i in enumerate(items, 1))
        lines.append(f"{u}\t{items[-1]}\t{items.size + 1}")
    path.write_text("\n".join(lines) + "\n")


def _token_map(dataset: Any, field: str, n: int) -> np.ndarray:
    """Our index -> RecBole's internal id (0 where RecBole has no such token)."""
    out = np.zeros(n, dtype=np.int64)
    vocab = dataset.field2token_id[field]
    for k in range(n):
        out[k] = vocab.get(str(k), 0)
    return out


class _torch_threads:
    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)


os.environ.setdefault("WANDB_MODE", "disabled")
