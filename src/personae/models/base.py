"""The one model interface: fit on interactions, score, recommend, save and load.

Models live in *index space*: users are rows and items columns of the training matrix (see
:class:`personae.data.interactions.Interactions` for the id maps). Hyper-parameters are keyword
arguments of ``__init__``, stored as given and validated in :meth:`Recommender.fit`; learned
state ends in ``_``.

Optional abilities are class flags rather than separate types:

- ``scores_histories``: :meth:`Recommender.score_histories` scores a history that was not seen
  at fit time (a brand-new user, or a known user's events since training) without refitting.
- ``uses_context``: scores depend on the request context (device, time bucket, …).
- ``uses_event_order``: fitting reads the time order of each user's events (SASRec, EASE with a
  ``sequence_window``), so it is fit on an Interactions view with times.
"""

from __future__ import annotations

import inspect
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeAlias

import numpy as np
import scipy.sparse as sp

from personae.errors import InvalidInput, PersonaeError
from personae.models.topk import topk

ARTIFACT_FORMAT = "personae.model/1"


class NotFitted(PersonaeError, RuntimeError):
    """A model was used before :meth:`Recommender.fit`."""


class NotSupported(PersonaeError, TypeError):
    """A model was asked for an ability it does not have (see the class flags)."""


@dataclass(frozen=True, slots=True)
class Recommendations:
    """Ranked items for one request, best first (index space)."""

    items: np.ndarray  # int64 (k,)
    scores: np.ndarray  # float32 (k,)

    def __len__(self) -> int:
        return int(self.items.shape[0])


History: TypeAlias = (
    sp.csr_matrix | np.ndarray | Sequence[int] | tuple[Sequence[int], Sequence[float]]
)


class Recommender(ABC):
    """Base class of every model.

    Subclasses implement :meth:`_fit` and :meth:`_score_users`, and, when they can score
    unseen histories, :meth:`_score_histories` with ``scores_histories = True``. Arrays to
    persist are returned by :meth:`_get_state` and restored by :meth:`_set_state`.
    """

    #: Registry name (``personae.models.MODELS``).
    name: ClassVar[str] = ""
    #: Can score a history unseen at fit time (fold-in): new users personalised at once.
    scores_histories: ClassVar[bool] = False
    #: Scores depend on the request context.
    uses_context: ClassVar[bool] = False
    #: :meth:`score_history` reads its items as a sequence, oldest first (order matters,
    #: repeats are events): the service passes the user's events in time order.
    sequential: ClassVar[bool] = False
    #: Fitting reads the time order of each user's events, so it needs an Interactions view
    #: with event times, not a bare matrix (the evaluation fits such a model on
    #: ``Split.train_view()``).
    uses_event_order: ClassVar[bool] = False

    # fitted state common to every model
    n_users_: int
    n_items_: int
    fingerprint_: str
    fit_seconds_: float
    user_items_: sp.csr_matrix  # the training matrix, for excluding seen items

    # ------------------------------------------------------------------ parameters

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters, as given to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise InvalidInput(
                    f"{type(self).__name__} has no parameter {key!r}; valid: {', '.join(valid)}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> None:  # noqa: B027 - an optional hook
        """Raise :class:`InvalidInput` for a bad hyper-parameter (override per model)."""

    # ------------------------------------------------------------------ fitting

    def fit(self, data: Any) -> Self:
        """Learn from interactions.

        Parameters
        ----------
        data : Interactions or scipy.sparse matrix, shape (n_users, n_items)
            Positive interaction weights; zeros are "no interaction".
        """
        from personae.data.interactions import Interactions

        self._validate_params()
        if isinstance(data, Interactions):
            matrix, view = data.matrix, data
        elif sp.issparse(data):
            matrix, view = data, None
        else:
            raise InvalidInput(
                f"fit expects Interactions or a scipy.sparse matrix, got {type(data).__name__}"
            )
        X = sp.csr_matrix(matrix, dtype=np.float32)
        X.sum_duplicates()
        X.sort_indices()
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise InvalidInput(f"cannot fit on an empty matrix of shape {X.shape}")
        if X.nnz and X.data.min() < 0:
            raise InvalidInput("interaction weights must be >= 0 (negative feedback is handled "
                               "by the service layer, not by fitting)")
        started = time.perf_counter()
        self.n_users_, self.n_items_ = X.shape
        self.user_items_ = X
        self.fingerprint_ = view.fingerprint() if view is not None else _fingerprint(X)
        self._fit(X, view)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @abstractmethod
    def _fit(self, X: sp.csr_matrix, view: Any) -> None:
        """Learn from ``X`` (csr, float32). ``view`` is the Interactions when given, else None."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFitted(f"{type(self).__name__} is not fitted yet; call fit() first")

    # ------------------------------------------------------------------ scoring

    def score_users(self, users: np.ndarray | Sequence[int],
                    context: Mapping[str, Any] | None = None) -> np.ndarray:
        """Scores of every item for training users, shape (len(users), n_items), float32."""
        self._check_fitted()
        u = np.asarray(users, dtype=np.int64).reshape(-1)
        if u.size and (u.min() < 0 or u.max() >= self.n_users_):
            raise InvalidInput(
                f"user indices must be in [0, {self.n_users_}), got {int(u.min())}..{int(u.max())}"
            )
        return self._score_users(u, context)

    @abstractmethod
    def _score_users(self, users: np.ndarray, context: Mapping[str, Any] | None) -> np.ndarray:
        ...

    def score_histories(self, histories: sp.csr_matrix,
                        context: Mapping[str, Any] | None = None) -> np.ndarray:
        """Scores of every item for users given only by their histories (fold-in).

        ``histories`` is (n, n_items): each row a user's interaction weights. Raises
        :class:`NotSupported` for models without that ability (``scores_histories``).
        """
        self._check_fitted()
        if not self.scores_histories:
            raise NotSupported(
                f"{type(self).__name__} cannot score histories unseen at training time; "
                "use a model with scores_histories=True (itemknn, ease, als)"
            )
        H = sp.csr_matrix(histories, dtype=np.float32)
        if H.shape[1] != self.n_items_:
            raise InvalidInput(
                f"histories must have {self.n_items_} columns (items), got {H.shape[1]}"
            )
        return self._score_histories(H, context)

    def _score_histories(self, histories: sp.csr_matrix,
                         context: Mapping[str, Any] | None) -> np.ndarray:
        raise NotSupported(type(self).__name__)

    def score_history(self, items: np.ndarray | Sequence[int],
                      weights: np.ndarray | Sequence[float] | None = None,
                      context: Mapping[str, Any] | None = None) -> np.ndarray:
        """Scores of every item for one history: the serving path's single-user fold-in.

        Equals ``score_histories(H, context)[0]`` for the one-row matrix ``H`` holding
        ``weights`` at ``items`` (repeated items add up), without building a sparse matrix
        where the model has a faster way.

        Parameters
        ----------
        items : int array (n,)
            Item indices in ``[0, n_items_)``.
        weights : float array (n,), optional
            Interaction weights (default 1 each).
        context : mapping, optional
            The request context, for models that use it.

        Returns
        -------
        ndarray of float32, shape (n_items,)
        """
        self._check_fitted()
        if not self.scores_histories:
            raise NotSupported(
                f"{type(self).__name__} cannot score histories unseen at training time; "
                "use a model with scores_histories=True (itemknn, ease, als)"
            )
        idx = np.asarray(items, dtype=np.int64).reshape(-1)
        w = (np.ones(idx.size, dtype=np.float32) if weights is None
             else np.asarray(weights, dtype=np.float32).reshape(-1))
        if idx.shape != w.shape:
            raise InvalidInput(f"history items and weights must have the same length, got "
                               f"{idx.size} and {w.size}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_items_):
            raise InvalidInput(f"history item indices must be in [0, {self.n_items_}), got "
                               f"{int(idx.min())}..{int(idx.max())}")
        return self._score_history(idx, w, context)

    def _score_history(self, items: np.ndarray, weights: np.ndarray,
                       context: Mapping[str, Any] | None) -> np.ndarray:
        """One history (checked int64 ``items``, float32 ``weights``) → float32 (n_items,).

        The default builds the one csr row; models override it where a direct gather pays.
        """
        H = sp.csr_matrix((weights, items, np.array([0, items.size])),
                          shape=(1, self.n_items_))
        H.sum_duplicates()
        return np.asarray(self._score_histories(H, context), dtype=np.float32)[0]

    # ------------------------------------------------------------------ recommending

    def recommend(
        self,
        user: int | None = None,
        *,
        history: History | None = None,
        k: int = 10,
        context: Mapping[str, Any] | None = None,
        exclude: Sequence[int] | np.ndarray | None = None,
        allowed: np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> Recommendations:
        """The top ``k`` items for one user, given by index, by history, or both.

        Parameters
        ----------
        user : int, optional
            A training user's row.
        history : csr row, item indices, or (item indices, weights), optional
            The user's current history. When given, models with ``scores_histories`` score
            from it (a new user, or a known user's events since training); others fall back to
            ``user``'s learned scores.
        k : int
            Length of the list.
        context : mapping, optional
            The request context (device, time, …), for models that use it.
        exclude : item indices, optional
            Never return these.
        allowed : bool array (n_items,), optional
            Only return items where this is True (availability, category filters).
        exclude_seen : bool, default True
            Leave out items in the history (and, for a training user, their training items).
        """
        self._check_fitted()
        H = None if history is None else self._history_row(history)
        if H is not None and self.scores_histories:
            scores = self.score_histories(H, context)[0]
        elif user is not None:
            scores = self.score_users([user], context)[0]
        elif H is not None:
            raise NotSupported(
                f"{type(self).__name__} cannot score a history without a known user"
            )
        else:
            raise InvalidInput("recommend needs a user index, a history, or both")
        mask = np.zeros(self.n_items_, dtype=bool)
        if exclude_seen:
            if H is not None:
                mask[H.indices] = True
            if user is not None and H is None:
                row = self.user_items_
                mask[row.indices[row.indptr[user]:row.indptr[user + 1]]] = True
        if exclude is not None:
            ex = np.asarray(exclude, dtype=np.int64)
            mask[ex[(ex >= 0) & (ex < self.n_items_)]] = True
        if allowed is not None:
            mask |= ~np.asarray(allowed, dtype=bool)
        items, values = topk(np.array(scores, dtype=np.float32), k, exclude=mask)
        keep = items >= 0
        return Recommendations(items[keep], values[keep])

    def recommend_batch(
        self,
        users: np.ndarray | Sequence[int],
        k: int = 10,
        *,
        exclude: sp.csr_matrix | None = None,
        exclude_seen: bool = True,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` for many training users at once: (items, scores), each (n_users, k).

        ``exclude`` adds per-user exclusions (csr, n_users_total × n_items, rows by user index).
        Slots beyond a user's allowed items hold -1 / -inf.
        """
        self._check_fitted()
        u = np.asarray(users, dtype=np.int64)
        out_i = np.full((u.size, min(k, self.n_items_)), -1, dtype=np.int64)
        out_s = np.full(out_i.shape, -np.inf, dtype=np.float32)
        for start in range(0, u.size, batch_size):
            batch = u[start:start + batch_size]
            scores = np.array(self.score_users(batch), dtype=np.float32)
            ex = None
            if exclude_seen:
                ex = self.user_items_[batch]
            if exclude is not None:
                extra = sp.csr_matrix(exclude)[batch]
                ex = extra if ex is None else (ex + extra)
            items, vals = topk(scores, k, exclude=ex)
            out_i[start:start + batch.size, : items.shape[1]] = items
            out_s[start:start + batch.size, : vals.shape[1]] = vals
        return out_i, out_s

    def _history_row(self, history: History) -> sp.csr_matrix:
        if sp.issparse(history):
            H = sp.csr_matrix(history, dtype=np.float32)
            if H.shape[0] != 1:
                raise InvalidInput(f"history must be one row, got shape {H.shape}")
            return H
        if isinstance(history, tuple) and len(history) == 2:
            items = np.asarray(history[0], dtype=np.int64)
            weights = np.asarray(history[1], dtype=np.float32)
        else:
            items = np.asarray(history, dtype=np.int64).reshape(-1)
            weights = np.ones(items.shape[0], dtype=np.float32)
        if items.shape != weights.shape:
            raise InvalidInput("history items and weights must have the same length")
        if items.size and (items.min() < 0 or items.max() >= self.n_items_):
            raise InvalidInput(f"history item indices must be in [0, {self.n_items_})")
        H = sp.csr_matrix((weights, (np.zeros_like(items), items)), shape=(1, self.n_items_),
                          dtype=np.float32)
        H.sum_duplicates()
        return H

    # ------------------------------------------------------------------ persistence

    def forget_users(self, users: np.ndarray | Sequence[int]) -> None:
        """Remove what the model holds of these training users (rows), in place.

        Their rows of the training matrix and of every per-user state array (a learned array
        whose name starts with ``user`` and whose first axis is the users, e.g. ALS's
        ``user_factors``) are zeroed: scoring them falls back to what any unknown user gets.
        Item-side parameters still reflect their data until the model is retrained.
        """
        self._check_fitted()
        rows = np.asarray(users, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_users_):
            raise InvalidInput(f"user rows must be in [0, {self.n_users_}), got {rows.tolist()}")
        X = self.user_items_.tocsr(copy=True)
        for r in rows.tolist():
            X.data[X.indptr[r]:X.indptr[r + 1]] = 0.0
        X.eliminate_zeros()
        self.user_items_ = X
        state = self._get_state()
        changed = False
        for key, arr in state.items():
            if key.startswith("user") and arr.ndim >= 1 and arr.shape[0] == self.n_users_:
                arr = np.array(arr, copy=True)
                arr[rows] = 0
                state[key] = arr
                changed = True
        if changed:
            self._set_state(state)

    def _get_state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (beyond the training matrix, which is always saved)."""
        return {}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Restore what :meth:`_get_state` returned."""

    def _get_meta(self) -> dict[str, Any]:
        """Learned JSON-able values to save (override when a model has some)."""
        return {}

    def _set_meta(self, meta: Mapping[str, Any]) -> None:  # noqa: B027
        """Restore what :meth:`_get_meta` returned."""

    def _artifact_params(self) -> dict[str, Any]:
        """Hyper-parameters as written to ``model.json`` (override when some are not JSON)."""
        return self.get_params()

    def _save_extra(self, folder: Path) -> None:  # noqa: B027
        """Write more into the artifact folder (a blend's members, in sub-folders)."""

    def _load_extra(self, folder: Path) -> None:  # noqa: B027
        """Read what :meth:`_save_extra` wrote (called by :meth:`load` before ``_set_meta``)."""

    def save(self, path: str | Path) -> Path:
        """Write the model to the folder ``path``: ``model.json`` + ``arrays.npz`` (no pickle).

        Returns the folder. The metadata records the class, hyper-parameters, library version,
        training-data fingerprint, shapes and fit time.
        """
        from personae import __version__

        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        X = self.user_items_
        arrays = {f"state__{k}": np.asarray(v) for k, v in self._get_state().items()}
        arrays.update(X_indptr=X.indptr, X_indices=X.indices, X_data=X.data)
        for key, arr in arrays.items():
            if arr.dtype == object:
                raise PersonaeError(f"cannot save object array {key!r} without pickle")
        np.savez(folder / "arrays.npz", allow_pickle=False, **arrays)
        self._save_extra(folder)
        meta = {
            "format": ARTIFACT_FORMAT,
            "model": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "personae_version": __version__,
            "params": self._artifact_params(),
            "n_users": self.n_users_,
            "n_items": self.n_items_,
            "fingerprint": self.fingerprint_,
            "fit_seconds": self.fit_seconds_,
            "saved_at": time.time(),
            "learned": self._get_meta(),
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Read a model written by :meth:`save` (any registered model when called on the base).

        Arrays are read with ``allow_pickle=False``: an artifact cannot run code.
        """
        from personae.models import get_model_class

        folder = Path(path)
        try:
            meta = json.loads((folder / "model.json").read_text())
        except FileNotFoundError:
            raise InvalidInput(f"no model at {folder} (model.json is missing)") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{folder / 'model.json'} is not valid JSON: {exc}") from None
        if meta.get("format") != ARTIFACT_FORMAT:
            raise InvalidInput(
                f"{folder} holds format {meta.get('format')!r}; this personae reads "
                f"{ARTIFACT_FORMAT!r}"
            )
        model_cls = get_model_class(meta["model"])
        if cls is not Recommender and not issubclass(model_cls, cls):
            raise InvalidInput(f"{folder} holds a {meta['model']!r} model, not {cls.name!r}")
        model = model_cls(**meta["params"])
        with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        n_users, n_items = int(meta["n_users"]), int(meta["n_items"])
        model.user_items_ = sp.csr_matrix(
            (arrays.pop("X_data"), arrays.pop("X_indices"), arrays.pop("X_indptr")),
            shape=(n_users, n_items),
        )
        model.n_users_, model.n_items_ = n_users, n_items
        model.fingerprint_ = meta["fingerprint"]
        model.fit_seconds_ = float(meta["fit_seconds"])
        model._load_extra(folder)
        model._set_meta(meta.get("learned", {}))
        model._set_state({k.removeprefix("state__"): v for k, v in arrays.items()})
        return model


def check_pairs(users: Any, items: Any, n_users: int, n_items: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) index pairs as int64 arrays (n,), for rating predictions: the same
    length, users in ``[0, n_users)`` and items in ``[0, n_items)``, else InvalidInput."""
    u = np.asarray(users, dtype=np.int64).reshape(-1)
    i = np.asarray(items, dtype=np.int64).reshape(-1)
    if u.shape != i.shape:
        raise InvalidInput(f"users and items must have the same length, got {u.size} and "
                           f"{i.size}")
    if u.size and (u.min() < 0 or u.max() >= n_users):
        raise InvalidInput(f"user indices must be in [0, {n_users}), got "
                           f"{int(u.min())}..{int(u.max())}")
    if i.size and (i.min() < 0 or i.max() >= n_items):
        raise InvalidInput(f"item indices must be in [0, {n_items}), got "
                           f"{int(i.min())}..{int(i.max())}")
    return u, i


def _fingerprint(X: sp.csr_matrix) -> str:
    import hashlib

    h = hashlib.sha256()
    for arr in (X.indptr, X.indices, X.data):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(repr(X.shape).encode())
    return h.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in model.json")
