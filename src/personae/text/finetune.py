"""Fine-tuning on the app's own interactions: a contrastive adapter over a frozen encoder.

The seed's "item text as input, user behaviour as the supervision signal". The encoder stays
frozen (its item vectors are computed once, see :mod:`personae.text.cache`); two small residual
projections are learned on top of it:

- the **query map** ``Q`` turns a history's centroid ``h`` into ``unit(h + h Q)``;
- the **item map** ``M`` turns an item vector ``e`` into ``unit(e + e M)``;

so that the next item a user consumed scores highest among all training items (a full
softmax over the catalogue at temperature ``temperature``, the history's own items masked).
Both maps start at zero: epoch 0 *is* the frozen encoder, and weight decay pulls toward it.
Training stops early when the validation loss (held-out users' pairs) has not improved for
``patience`` epochs; the best epoch is kept.

Training runs on CPU in seconds to minutes (``torch``, imported here only); using the result
needs only numpy. The artifact is a folder ``adapter.npz`` + ``adapter.json`` (encoder name and
version, the training data's fingerprint and metrics, a version id), read without pickle.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput, MissingExtra

ADAPTER_FORMAT = "personae.text-adapter/1"


@dataclass(frozen=True, eq=False)
class TrainingPairs:
    """(history → next item) pairs in index space.

    Attributes
    ----------
    histories : csr_matrix, float32, shape (n_pairs, n_items)
        Row ``p``: the items consumed before pair ``p``'s target (weights 1).
    targets : ndarray of int64, shape (n_pairs,)
        The next item consumed.
    users : ndarray of int64, shape (n_pairs,)
        Whose history it is (pairs are split into train/validation by user).
    """

    histories: sp.csr_matrix
    targets: np.ndarray
    users: np.ndarray

    def __len__(self) -> int:
        return int(self.targets.shape[0])


def pairs_from_interactions(
    view: Any,
    *,
    max_history: int = 50,
    max_pairs_per_user: int = 20,
    min_history: int = 1,
    seed: int = 0,
    items: np.ndarray | None = None,
) -> TrainingPairs:
    """(history → next item) pairs from each user's time-ordered positive events.

    Parameters
    ----------
    view : Interactions
        Events in time order (:meth:`Interactions.sequences`; undated events keep their
        arrival order, which is then the order assumed).
    max_history : int, default 50
        The last ``max_history`` items before the target form the history.
    max_pairs_per_user : int, default 20
        Target positions drawn per user (without replacement), so heavy users do not dominate.
    min_history : int, default 1
        Fewest history items a pair has.
    seed : int, default 0
        Seed of the position draw.
    items : bool ndarray (n_items,), optional
        Use only these items (e.g. items with text); others are dropped from the sequences.
    """
    for name, value, low in (("max_history", max_history, 1),
                             ("max_pairs_per_user", max_pairs_per_user, 1),
                             ("min_history", min_history, 1)):
        if not isinstance(value, int) or value < low:
            raise InvalidInput(f"{name} must be an int >= {low}, got {value!r}")
    seqs = view.sequences()
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    targets: list[int] = []
    users: list[int] = []
    for u in range(len(seqs)):
        s = np.asarray(seqs[u], dtype=np.int64)
        if items is not None:
            s = s[np.asarray(items, dtype=bool)[s]]
        _, first = np.unique(s, return_index=True)  # a re-consumed item: its first time
        s = s[np.sort(first)]
        positions = np.arange(min_history, s.size)
        if positions.size == 0:
            continue
        if positions.size > max_pairs_per_user:
            positions = np.sort(rng.choice(positions, max_pairs_per_user, replace=False))
        for t in positions:
            rows.append(s[max(0, t - max_history):t])
            targets.append(int(s[t]))
            users.append(u)
    n_items = view.n_items
    if not rows:
        raise InvalidInput(f"no user has more than {min_history} positive events: no "
                           "(history → next item) pair to train on")
    lengths = np.array([r.size for r in rows])
    indptr = np.r_[0, np.cumsum(lengths)]
    H = sp.csr_matrix((np.ones(int(indptr[-1]), np.float32), np.concatenate(rows), indptr),
                      shape=(len(rows), n_items))
    return TrainingPairs(H, np.asarray(targets, np.int64), np.asarray(users, np.int64))


@dataclass(frozen=True, eq=False)
class Adapter:
    """A trained adapter: two residual maps over a frozen encoder's vectors.

    Attributes
    ----------
    query_map, item_map : ndarray of float32, shape (dim, dim)
        ``unit(h + h @ query_map)`` for history centroids and queries,
        ``unit(e + e @ item_map)`` for items.
    encoder, encoder_version : str
        The encoder whose vectors it was trained on.
    version : str
        ``"<encoder>-adapter-<UTC time>-<hash of the maps>"``.
    info : dict
        Training record: pairs, epochs, best epoch, losses, validation metrics, parameters.
    """

    query_map: np.ndarray
    item_map: np.ndarray
    encoder: str
    encoder_version: str
    version: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.item_map.shape[0])

    def transform_items(self, vectors: np.ndarray) -> np.ndarray:
        """Item vectors (n, dim) → unit vectors in the adapted space."""
        E = np.asarray(vectors, dtype=np.float32)
        return _unit(E + E @ self.item_map)

    def transform_queries(self, vectors: np.ndarray) -> np.ndarray:
        """History centroids or query vectors (n, dim) → unit vectors in the adapted space."""
        H = np.asarray(vectors, dtype=np.float32)
        return _unit(H + H @ self.query_map)

    def save(self, folder: str | Path) -> Path:
        """Write ``adapter.npz`` + ``adapter.json`` into ``folder``; returns the folder."""
        from personae import __version__

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "adapter.npz", query_map=self.query_map, item_map=self.item_map)
        meta = {"format": ADAPTER_FORMAT, "version": self.version, "encoder": self.encoder,
                "encoder_version": self.encoder_version, "dim": self.dim,
                "personae_version": __version__, "saved_at": time.time(), "info": self.info}
        (out / "adapter.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        return out

    @classmethod
    def load(cls, folder: str | Path) -> Adapter:
        """Read an adapter written by :meth:`save` (arrays without pickle)."""
        src = Path(folder)
        try:
            meta = json.loads((src / "adapter.json").read_text())
        except FileNotFoundError:
            raise InvalidInput(f"no adapter at {src} (adapter.json is missing)") from None
        if meta.get("format") != ADAPTER_FORMAT:
            raise InvalidInput(f"{src} holds format {meta.get('format')!r}, expected "
                               f"{ADAPTER_FORMAT!r}")
        with np.load(src / "adapter.npz", allow_pickle=False) as npz:
            q, m = npz["query_map"].astype(np.float32), npz["item_map"].astype(np.float32)
        return cls(q, m, meta["encoder"], meta["encoder_version"], meta["version"],
                   meta.get("info", {}))


def train_adapter(
    item_vectors: np.ndarray,
    pairs: TrainingPairs,
    *,
    encoder: str,
    encoder_version: str = "",
    epochs: int = 30,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-3,
    temperature: float = 0.05,
    validation_fraction: float = 0.1,
    patience: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> Adapter:
    """Train an :class:`Adapter` contrastively on (history → next item) pairs.

    Parameters
    ----------
    item_vectors : ndarray, shape (n_items, dim)
        The frozen encoder's item vectors, aligned with the pairs' item indices. Only items
        that occur in the pairs serve as negatives (items without events, e.g. new ones, are
        never pushed down).
    pairs : TrainingPairs
        From :func:`pairs_from_interactions`.
    encoder, encoder_version : str
        Recorded in the artifact (the adapter only fits that encoder's vectors).
    epochs : int, default 30
        Upper bound on passes over the training pairs.
    batch_size : int, default 256
        Pairs per step.
    learning_rate, weight_decay : float, defaults 1e-3, 1e-3
        AdamW; the decay pulls the maps toward zero (the frozen encoder).
    temperature : float, default 0.05
        Softmax temperature on cosines.
    validation_fraction : float, default 0.1
        Share of users whose pairs are held out for early stopping (in (0, 1)).
    patience : int, default 3
        Epochs without a better validation loss before stopping.
    seed : int, default 0
        Seeds the user split, the batch order and torch.
    progress : bool, default False
        A progress bar per epoch and one line per epoch on stderr.

    Returns
    -------
    Adapter
        The best epoch's maps; ``info`` records the frozen and best validation loss and
        recall@10, the epochs run and the pairs used.
    """
    try:
        import torch
    except ImportError:
        raise MissingExtra("torch", "text") from None
    if not 0.0 < validation_fraction < 1.0:
        raise InvalidInput(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    E_np = _unit(np.asarray(item_vectors, dtype=np.float32))
    n_items, dim = E_np.shape
    if pairs.histories.shape[1] != n_items:
        raise InvalidInput(f"the pairs index {pairs.histories.shape[1]} items but item_vectors "
                           f"has {n_items} rows")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    uniq = np.unique(pairs.users)
    val_users = rng.choice(uniq, max(1, int(round(validation_fraction * uniq.size))),
                           replace=False)
    is_val = np.isin(pairs.users, val_users)
    tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if tr.size == 0 or va.size == 0:
        raise InvalidInput(f"need pairs from at least 2 users to hold some out; got "
                           f"{uniq.size} user(s)")
    used = np.zeros(n_items, dtype=bool)
    used[pairs.targets] = True
    used[pairs.histories.indices] = True
    H = pairs.histories
    centroids = np.asarray(H @ E_np, dtype=np.float32) / np.maximum(
        np.diff(H.indptr), 1)[:, None].astype(np.float32)

    E = torch.from_numpy(E_np)
    C = torch.from_numpy(centroids)
    targets = torch.from_numpy(pairs.targets)
    negatives_off = torch.from_numpy(~used)
    Q = torch.zeros(dim, dim, requires_grad=True)
    M = torch.zeros(dim, dim, requires_grad=True)
    opt = torch.optim.AdamW([Q, M], lr=learning_rate, weight_decay=weight_decay)

    def logits(rows: np.ndarray, Qm: torch.Tensor, Mm: torch.Tensor) -> torch.Tensor:
        c = C[rows]
        q = torch.nn.functional.normalize(c + c @ Qm, dim=1)
        p = torch.nn.functional.normalize(E + E @ Mm, dim=1)
        out = (q @ p.T) / temperature
        mask = torch.from_numpy(H[rows].toarray() > 0) | negatives_off[None, :]
        mask[torch.arange(rows.size), targets[rows]] = False
        return out.masked_fill(mask, float("-inf"))

    def evaluate(Qm: torch.Tensor, Mm: torch.Tensor) -> tuple[float, float]:
        loss_sum, hits = 0.0, 0
        with torch.no_grad():
            for start in range(0, va.size, 1024):
                rows = va[start:start + 1024]
                lg = logits(rows, Qm, Mm)
                loss_sum += float(torch.nn.functional.cross_entropy(
                    lg, targets[rows], reduction="sum"))
                top = lg.topk(10, dim=1).indices
                hits += int((top == targets[rows][:, None]).any(dim=1).sum())
        return loss_sum / va.size, hits / va.size

    frozen_loss, frozen_recall = evaluate(Q.detach(), M.detach())
    best = (frozen_loss, frozen_recall, 0, Q.detach().clone(), M.detach().clone())
    history: list[dict[str, float]] = []
    stale = 0
    from personae.progress import ProgressBars

    epoch = 0
    with ProgressBars(progress) as bars:
        task = bars.add("adapter", epochs)
        for epoch in range(1, epochs + 1):
            order = rng.permutation(tr)
            total = 0.0
            for start in range(0, order.size, batch_size):
                rows = order[start:start + batch_size]
                loss = torch.nn.functional.cross_entropy(logits(rows, Q, M), targets[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * rows.size
            val_loss, val_recall = evaluate(Q.detach(), M.detach())
            history.append({"epoch": epoch, "train_loss": total / order.size,
                            "val_loss": val_loss, "val_recall@10": val_recall})
            bars.advance(task, 1)
            if progress:
                import sys

                print(f"epoch {epoch}: train loss {total / order.size:.4f}, validation loss "
                      f"{val_loss:.4f}, recall@10 {val_recall:.4f}", file=sys.stderr)
            if val_loss < best[0] - 1e-4:
                best = (val_loss, val_recall, epoch, Q.detach().clone(), M.detach().clone())
                stale = 0
            else:
                stale += 1
                if stale >= patience:
                    break
    q_np, m_np = best[3].numpy().astype(np.float32), best[4].numpy().astype(np.float32)
    digest = hashlib.sha256(q_np.tobytes() + m_np.tobytes()).hexdigest()[:8]
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    info = {
        "n_pairs": len(pairs), "n_train_pairs": int(tr.size), "n_validation_pairs": int(va.size),
        "n_users": int(uniq.size), "n_items_used": int(used.sum()),
        "epochs_run": epoch, "best_epoch": best[2], "stopped_early": epoch < epochs,
        "frozen_val_loss": frozen_loss, "frozen_val_recall@10": frozen_recall,
        "best_val_loss": best[0], "best_val_recall@10": best[1],
        "seconds": time.perf_counter() - started, "history": history,
        "params": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                   "weight_decay": weight_decay, "temperature": temperature,
                   "validation_fraction": validation_fraction, "patience": patience,
                   "seed": seed},
    }
    return Adapter(q_np, m_np, encoder, encoder_version, f"{encoder}-adapter-{stamp}-{digest}",
                   info)


def _unit(M: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(M, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (M / norms).astype(np.float32)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in adapter.json")
