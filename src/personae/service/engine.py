"""The recommendation engine: ids in, ranked ids out, over the store and the active model.

>>> from personae import Store                                          # doctest: +SKIP
>>> from personae.service import Engine, RecommendRequest, Filters      # doctest: +SKIP
>>> engine = Engine(Store("demo.db"))                                   # doctest: +SKIP
>>> engine.train("ease", background=False).status                      # doctest: +SKIP
'active'
>>> engine.recommend(RecommendRequest("u1", k=5,                        # doctest: +SKIP
...                  filters=Filters(categories=["drama"]))).item_ids

Per request the engine reads the user's history from the store (one indexed query: an event
stored before the request is used at once, without retraining), scores it with the active
model (:meth:`~personae.models.base.Recommender.score_history`; the model is loaded once per
version), applies the filters as masks over the in-memory catalogue and queues what it shows
for the impression log (:mod:`personae.service.impressions`, written by a background
thread). Training runs in a background thread; a new version is swapped in by one
assignment, and other processes see it through :meth:`refresh`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy.engine import make_url

from personae.errors import InvalidInput, NotFound, PersonaeError
from personae.service.catalog import Catalog
from personae.service.impressions import ImpressionLog
from personae.service.policy import RANK_POLICIES, BanditRanker
from personae.service.training import (
    Artifact,
    check_model,
    forget_in_artifact,
    load_artifact,
    new_version_id,
    scores_user_attributes,
    train_version,
)
from personae.service.types import (
    MAX_IDS,
    Filters,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    _check_k,
    _id_list,
)
from personae.store import Event, ModelVersion, Recommendation, Store
from personae.store.core import default_data_dir
from personae.store.records import check_event_type, check_id, check_mapping, utcnow
from personae.store.serving import new_rec_id

log = logging.getLogger("personae.service")

#: User id under which rewards of anonymous rankings are stored as events.
ANONYMOUS_USER_ID = "_anonymous"
#: Pages followed back through ``after`` (each page a query).
MAX_PAGES = 100
#: Seconds between two heartbeats of a training job.
HEARTBEAT_INTERVAL = 5.0
#: A "training" row without a heartbeat for this long (seconds) belongs to a process that
#: died: it is failed and no longer blocks new jobs.
STALE_TRAINING_AFTER = 60.0


@dataclass(frozen=True, eq=False)
class _State:
    """Everything a request reads, swapped as one object (never mutated)."""

    catalog: Catalog
    artifact: Artifact | None
    col_of_pos: np.ndarray  # int64 (n_catalog,): model column of each position, -1 if none
    pos_of_col: np.ndarray  # int64 (n_model_items,): position of each model column, -1 if gone
    popularity: np.ndarray  # float64 (n_catalog,): share of positive events
    scored_cols: np.ndarray  # int64: model columns whose item is in the catalogue
    scored_pos: np.ndarray  # int64: their positions (same order)
    unscored: np.ndarray  # bool (n_catalog,): positions the model has no column for


@dataclass(frozen=True, eq=False)
class _History:
    """A user's (or session's) history in catalogue positions."""

    positive: np.ndarray  # positions with a net positive weight
    weights: np.ndarray  # their net weights
    seen: np.ndarray  # positions with any event of non-zero weight
    disliked: np.ndarray  # positions with net weight <= 0 and a negative event
    events: tuple[np.ndarray, np.ndarray, np.ndarray]  # every (position, weight, type_idx)

    def type_of(self, catalog: Catalog) -> dict[int, str]:
        """Position → its strongest positive event type (for explanations; -1 = session)."""
        pos, weights, types = self.events
        best: dict[int, str] = {}
        for j in np.argsort(-weights, kind="stable")[:200].tolist():
            p = int(pos[j])
            if p not in best and weights[j] > 0:
                t = int(types[j])
                best[p] = catalog.type_names[t] if t >= 0 else "view"
        return best


class Engine:
    """Serve recommendations, similar items and rankings from a store; train and swap models.

    Parameters
    ----------
    store : Store | str | None
        The store, or where it lives (see :class:`personae.Store`); a store opened here is
        closed by :meth:`close`.
    models_dir : str | Path, optional
        Where model versions are saved, one folder each. Default: ``models/`` next to a SQLite
        store's file, else ``<personae data dir>/models`` (every process serving one
        PostgreSQL store must see the same folder).
    refresh_interval : float, default 1.0
        Seconds between two checks of the store for a new active version or catalogue
        (:meth:`refresh`, run at the start of requests).
    history_limit : int, default 1000
        Newest events of a user read per request.
    dislike_strength : float, default 1.0
        How much the scores of items like the disliked ones are lowered: the model's scores
        of the negative history, times this, are subtracted (0: only the disliked items
        themselves are dropped).
    log_impressions : bool, default True
        Store every list shown in the ``recommendations`` table. Paging (``after``) and
        rewards need it.
    impression_interval : float, default 0.05
        Shown lists are queued and stored by a background thread in one transaction at most
        this many seconds later (see :mod:`personae.service.impressions`: paging and rewards
        find a queued list at once, and another process's within 0.2 s); 0 stores each list
        before the request returns. :meth:`flush` stores the queue now, :meth:`close` too.
    popularity_interval : float, default 300.0
        Without a model, seconds between two recounts of item popularity from the event log.
    retrain_after_forget : float, default 3600.0
        When a user is forgotten, their per-user state leaves the served artifacts at once
        (:meth:`forget_user`); the active version, still trained on their events, is retrained
        by :meth:`maintain` at most this many seconds later (0: at the next maintenance).
    retrain_every : float, default 0.0
        The schedule: :meth:`maintain` retrains the active version's model and parameters
        once it is older than this many seconds (0: no schedule). The new version is swapped
        in only if it validates as well, as any training job.
    explore_new_items : int, default 1
        Places at the end of each list (of k >= 3) given to items added since the model was
        trained that have no events yet, when their categories match the user's history
        (``source="exploration"``): new items are shown from day one. 0 turns it off.
    explore_budget : int, default 500
        The most lists a new item is explored in (per engine process) before it waits for its
        own events and the next training; among matching new items, those shown less go
        first (score / (1 + times shown)), so the places rotate. 0: no limit.
    rank_policy : {"model", "linucb", "thompson"}, default "model"
        How :meth:`rank` orders candidates when the request names no policy.
    cold_start_blend : float, default 2.0
        For a user the model was not trained on, with ``n`` history items, the fold-in's
        weight against the segment prior is ``n / (n + cold_start_blend)``
        (:class:`personae.service.coldstart.ColdStartPolicy`'s ``blend_k``): 2 clicks weigh
        50 %, 10 clicks 83 %, so that the first clicks count at once. On ml-100k's held-out
        users, a popularity-dominated set, 100–200 scored best offline
        (``bench/results/context.md``): raise it where popularity predicts that well.
    text_encoder : str, default "wordllama"
        The :mod:`personae.text` encoder of item texts and natural-language requests
        (``query``/``description``); "minilm" is slower and finer. Needs
        ``pip install 'personae[text]'``; item embeddings are cached in
        ``models_dir/embeddings``.
    text_adapter : str or Path, optional
        Folder of an adapter fine-tuned on this app's interactions
        (:func:`personae.text.finetune.train_adapter`, ``personae text finetune``), applied
        on top of ``text_encoder`` for requests in words.
    llm : LLMConfig or mapping, optional
        Which language model phrases the one-sentence explanation of each item
        (:class:`personae.llm.LLMConfig`: backend ``"none"`` (default: a template from the
        same facts), ``"local"`` (SmolLM2, offline) or ``"openai"`` (an OpenAI-compatible
        endpoint)). The sentence may only use facts it was given; any failure or refusal
        falls back to the template.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        models_dir: str | Path | None = None,
        *,
        refresh_interval: float = 1.0,
        history_limit: int = 1000,
        dislike_strength: float = 1.0,
        log_impressions: bool = True,
        popularity_interval: float = 300.0,
        impression_interval: float = 0.05,
        retrain_after_forget: float = 3600.0,
        rank_policy: str = "model",
        cold_start_blend: float = 2.0,
        retrain_every: float = 0.0,
        explore_new_items: int = 1,
        explore_budget: int = 500,
        text_encoder: str = "wordllama",
        text_adapter: str | Path | None = None,
        llm: Mapping[str, Any] | Any | None = None,
    ) -> None:
        self._owns_store = not isinstance(store, Store)
        self.store: Store = store if isinstance(store, Store) else Store(store)
        self.models_dir = Path(models_dir) if models_dir is not None else _default_models_dir(
            self.store)
        for name, value in (("refresh_interval", refresh_interval),
                            ("dislike_strength", dislike_strength),
                            ("popularity_interval", popularity_interval),
                            ("impression_interval", impression_interval),
                            ("retrain_after_forget", retrain_after_forget),
                            ("retrain_every", retrain_every)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInput(f"{name} must be a number >= 0, got {value!r}")
        self.refresh_interval = float(refresh_interval)
        if isinstance(history_limit, bool) or not isinstance(history_limit, int) \
                or history_limit < 1:
            raise InvalidInput(f"history_limit must be an integer >= 1, got {history_limit!r}")
        self.history_limit = history_limit
        self.dislike_strength = float(dislike_strength)
        self.log_impressions = bool(log_impressions)
        self.popularity_interval = float(popularity_interval)
        self.retrain_after_forget = float(retrain_after_forget)
        self.retrain_every = float(retrain_every)
        if isinstance(explore_new_items, bool) or not isinstance(explore_new_items, int) \
                or explore_new_items < 0:
            raise InvalidInput(f"explore_new_items must be an integer >= 0, got "
                               f"{explore_new_items!r}")
        self.explore_new_items = explore_new_items
        if isinstance(explore_budget, bool) or not isinstance(explore_budget, int) \
                or explore_budget < 0:
            raise InvalidInput(f"explore_budget must be an integer >= 0, got {explore_budget!r}")
        self.explore_budget = explore_budget
        self._explored: dict[str, int] = {}  # new item id → lists it was explored in
        self._explored_lock = threading.Lock()
        if rank_policy not in RANK_POLICIES:
            raise InvalidInput(f"rank_policy must be one of {', '.join(RANK_POLICIES)}, got "
                               f"{rank_policy!r}")
        self.rank_policy = rank_policy
        if isinstance(cold_start_blend, bool) or not isinstance(cold_start_blend, int | float) \
                or not cold_start_blend > 0:
            raise InvalidInput(f"cold_start_blend must be a number > 0, got {cold_start_blend!r}")
        self.cold_start_blend = float(cold_start_blend)
        self.text_encoder = text_encoder
        self.text_adapter = str(text_adapter) if text_adapter is not None else None
        if llm is not None:
            from personae.llm import LLMConfig

            llm = llm if isinstance(llm, LLMConfig) else LLMConfig.from_dict(dict(llm))
        self._llm_config = llm  # checked now: a wrong setting fails at start, not per request
        self._explainer: Any = None
        self._vocabulary: tuple[str | None, Any] | None = None
        self._text: tuple[str | None, Any] | None = None
        self._text_lock = threading.Lock()
        self._bandit = BanditRanker(self.models_dir / "bandit")
        self._impressions = ImpressionLog(self.store, interval=float(impression_interval))
        self._refresh_lock = threading.Lock()
        self._train_lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._job_version: str | None = None
        self._failed_loads: set[str] = set()
        self._policies: dict[str, Any] = {}  # version -> its ColdStartPolicy
        self._store_popularity: tuple[float, np.ndarray, np.ndarray] | None = None
        self._last_check = time.monotonic()
        abandoned = self.store.fail_stale_training(STALE_TRAINING_AFTER)
        if abandoned:
            log.warning("failed abandoned training jobs: %s", ", ".join(abandoned))
        active, catalog_version, self._model_epoch, self._corrections_version = \
            self.store.serving_state()
        self._corrections = self.store.profile_corrections()
        catalog = Catalog.load(self.store, catalog_version)
        artifact = None
        if active is not None:
            try:
                artifact = self._load(active)
            except PersonaeError as exc:  # keep serving popularity; say why
                log.error("cannot load the active model version %s: %s", active, exc)
                self._failed_loads.add(active)
        self._state = self._build_state(catalog, artifact)

    # ------------------------------------------------------------------ lifecycle

    @property
    def ready(self) -> bool:
        """True once the catalogue and a model or the popularity fallback are loaded."""
        return self._state is not None

    @property
    def model_version(self) -> str | None:
        """The version serving in this process (``None``: popularity fallback only)."""
        art = self._state.artifact
        return art.version if art is not None else None

    def flush(self) -> int:
        """Store the queued impressions (and the bandit's learned state) now; returns how
        many lists were written."""
        self._bandit.save()
        return self._impressions.flush()

    def close(self) -> None:
        """Store the queued impressions and the bandit's state, wait for a running training
        job, then close the store if this engine opened it."""
        self._impressions.close()
        self._bandit.save()
        job = self._job
        if job is not None:
            job.join()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Engine({self.store!r}, model_version={self.model_version!r})"

    def refresh(self, force: bool = False) -> bool:
        """Pick up a new active version or changed items from the store; True if anything
        changed.

        Cheap: at most once per ``refresh_interval`` (unless ``force``) it reads two meta rows;
        a new version is loaded completely before it replaces the old one in one assignment,
        so concurrent requests see either the old or the new state, never a mix.
        """
        now = time.monotonic()
        if not force and now - self._last_check < self.refresh_interval:
            return False
        if not self._refresh_lock.acquire(blocking=force):
            return False
        try:
            self._last_check = now
            active, catalog_version, epoch, corrections = self.store.serving_state()
            st = self._state
            catalog, artifact = st.catalog, st.artifact
            changed = False
            if corrections != self._corrections_version:
                self._corrections_version = corrections
                self._corrections = self.store.profile_corrections()
            if catalog_version != catalog.version:
                catalog, changed = Catalog.load(self.store, catalog_version), True
            current = artifact.version if artifact is not None else None
            if epoch != self._model_epoch:  # an artifact changed in place (forget_user)
                self._model_epoch, current = epoch, None
                self._failed_loads.discard(active)
            if active != current and active not in self._failed_loads:
                if active is None:
                    artifact, changed = None, True
                else:
                    try:
                        artifact, changed = self._load(active), True
                    except PersonaeError as exc:
                        log.error("cannot load model version %s: %s", active, exc)
                        self._failed_loads.add(active)
            stale_popularity = (
                artifact is None and self._store_popularity is not None
                and time.monotonic() - self._store_popularity[0] > self.popularity_interval
            )
            if stale_popularity:
                self._store_popularity, changed = None, True
            if changed:
                self._state = self._build_state(catalog, artifact)
            return changed
        finally:
            self._refresh_lock.release()

    def _load(self, version: str) -> Artifact:
        return load_artifact(self.models_dir / version, version)

    def _build_state(self, catalog: Catalog, artifact: Artifact | None) -> _State:
        n = len(catalog)
        if artifact is not None:
            pos = catalog.pos
            pos_of_col = np.fromiter((pos.get(i, -1) for i in artifact.item_ids),
                                     dtype=np.int64, count=len(artifact.item_ids))
            counts = np.zeros(n, dtype=np.float64)
            known = pos_of_col >= 0
            counts[pos_of_col[known]] = artifact.popularity[known]
        else:
            pos_of_col = np.zeros(0, dtype=np.int64)
            if self._store_popularity is None:
                idx, n_events = self.store.item_popularity()
                self._store_popularity = (time.monotonic(), idx, n_events)
            _, idx, n_events = self._store_popularity
            counts = np.zeros(n, dtype=np.float64)
            p = catalog.positions_of_store_idx(idx)
            counts[p[p >= 0]] = n_events[p >= 0]
        col_of_pos = np.full(n, -1, dtype=np.int64)
        known = pos_of_col >= 0
        scored_cols = np.flatnonzero(known)
        col_of_pos[pos_of_col[known]] = scored_cols
        total = counts.sum()
        return _State(catalog, artifact, col_of_pos, pos_of_col,
                      counts / total if total > 0 else counts,
                      scored_cols, pos_of_col[scored_cols], col_of_pos < 0)

    # ------------------------------------------------------------------ recommending

    def recommend(self, request: RecommendRequest | Mapping[str, Any]) -> RecommendResponse:
        """The top ``k`` items for a user or an anonymous session.

        - known user: their stored history (read now) plus ``session_items`` is scored by the
          model (``strategy="model"``, or ``"fold-in"`` for a user the model was not trained
          on; models that cannot score histories use the learned user);
        - anonymous: ``session_items`` is the history (``"session"``);
        - no usable history, or no model: popularity (``"cold-start-popularity"``).

        A model that scores demographics (the two-tower model trained with user attributes)
        gets the user's stored attributes as ``context["user"]`` (one more indexed read, shared
        with the cold-start segment), so a user who signed up after training is scored from
        their attributes too (a ``"user"`` the request's context sets itself wins); the
        request's context is logged as it was sent.

        Items the model cannot score (added since training) fill the list after the scored
        ones, by popularity (``source="popularity"``). Unknown item ids in ``session_items``
        or ``filters.exclude`` raise :class:`NotFound`; an unknown ``after`` too.
        """
        req = request if isinstance(request, RecommendRequest) else \
            RecommendRequest.from_dict(request)
        self.refresh()
        uid = req.user_id
        stored_uid = self.store.stored_user_id(uid) if uid is not None else None
        parent, shown = self._chain(req.after, stored_uid)
        raw = self._raw_history(uid)
        state = self._current(raw, req.filters.exclude, req.session_items or [],
                              filters=req.filters)
        exclude = self._positions(state, req.filters.exclude, "filters.exclude")
        session = self._positions(state, req.session_items or [], "session_items")
        hist = self._history(state, raw, session)
        allowed = state.catalog.mask(req.filters)
        allowed[exclude] = False
        allowed[hist.disliked] = False
        if req.filters.exclude_seen:
            allowed[hist.seen] = False
        if shown:
            allowed[np.fromiter((p for p in map(state.catalog.pos.get, shown) if p is not None),
                                dtype=np.int64)] = False
        said = self._corrections.get(stored_uid) if stored_uid is not None else None
        if said:
            # the user's own word: disliked categories never shown, liked ones lifted below
            for c in said.get("dislikes", []):
                mask = state.catalog.categories.get(c)
                if mask is not None:
                    allowed &= ~mask
        art = state.artifact
        path = segment = None
        cold = stored_uid not in art.user_pos if uid is not None and art is not None \
            else not hist.positive.size
        demographics = art is not None and scores_user_attributes(art.model)
        attributes = None
        if uid is not None and art is not None and (
                demographics or (cold and art.prior is not None and art.segment is not None)):
            # one read serves both: the prior's segment and the model's user features
            attributes = self._user_attributes(uid)
        context = _model_context(req.context, attributes if demographics else None)
        if art is not None and art.prior is not None and cold:
            # not a user the model was trained on (or an empty session): the cold-start
            # policy picks the path; a session with items is scored by the model as given
            scores, path, segment = self._cold_start(state, attributes, hist, context)
        else:
            scores = self._score(state, stored_uid, hist, context)
        if path == "segment_popularity":
            strategy = "cold-start-segment"
        elif path == "demographics":
            strategy = "cold-start-demographics"
        elif scores is None or art is None:
            strategy = "cold-start-popularity"
        elif uid is None:
            strategy = "session"
        else:
            strategy = "model" if stored_uid in art.user_pos else "fold-in"
        if said and said.get("likes") and scores is not None:
            scores = self._lift_liked(state, scores, said["likes"])
        rerank = req.diversity is not None or req.max_per_category is not None
        want = max(req.k * 5, 100) if rerank else req.k
        if req.query is not None or req.description is not None:
            items = self._text_top(state, scores, hist, allowed, want, req)
            strategy = "query"
        else:
            items = self._top(state, scores, allowed, want)
        if rerank:
            items = self._diversify(state, items, req)
        if self.explore_new_items and art is not None and strategy != "query":
            items = self._explore_new(state, items, hist, allowed, req.k)
        if req.explain:
            items = self._explain(state, items, hist, req.filters, context, path, segment)
            items = self._sentences(state, items, req.query)
        page = parent.page + 1 if parent is not None else 1
        request_log = {"k": req.k, "filters": req.filters.to_dict(), "strategy": strategy}
        if path is not None:
            request_log["cold_start_path"] = path
        if rerank:
            request_log.update(diversity=req.diversity, max_per_category=req.max_per_category)
        if req.session_items:
            request_log["session_items"] = req.session_items
        return self._respond("recommend", uid, stored_uid, items, strategy, req.context,
                             request_log, page, parent.rec_id if parent is not None else None,
                             path=path)

    def similar(self, item_id: str, k: int = 10,
                filters: Filters | Mapping[str, Any] | None = None) -> RecommendResponse:
        """Items like ``item_id``: the model's scores of a one-item history (people who liked
        it also liked…); for an item the model does not know, or a model that cannot score
        histories, the most popular items sharing one of its categories."""
        item_id = check_id(item_id, "item_id")
        k = _check_k(k)
        flt = Filters.from_dict(filters)
        self.refresh()
        state = self._current(None, [item_id], flt.exclude, filters=flt)
        pos = self._positions(state, [item_id], "item_id")[0]
        exclude = self._positions(state, flt.exclude, "filters.exclude")
        cat = state.catalog
        allowed = cat.mask(flt)
        allowed[exclude] = False
        allowed[pos] = False
        scores = None
        art = state.artifact
        col = state.col_of_pos[pos]
        if art is not None and col >= 0 and art.model.scores_histories:
            scores = art.model.score_history(np.array([col], dtype=np.int64))
        elif cat.item_categories[pos]:
            same = np.zeros(len(cat), dtype=bool)
            for c in cat.item_categories[pos]:
                same |= cat.categories[c]
            allowed &= same
        items = self._top(state, scores, allowed, k)
        return self._respond("similar", None, None, items, "similar", None,
                             {"item_id": item_id, "k": k, "filters": flt.to_dict()}, 1, None)

    def rank(self, user_id: str | None, candidates: Sequence[str],
             context: Mapping[str, Any] | None = None, k: int | None = None,
             policy: str | None = None) -> RecommendResponse:
        """Order the client's ``candidates`` for a user (or anonymously) in a context.

        Every candidate is ranked (seen or unavailable ones too; the client chose them).
        ``policy`` ``"model"`` (the default, or the engine's ``rank_policy``): those the model
        scores first, then the others by popularity. ``"linucb"`` / ``"thompson"``: a
        contextual bandit (:mod:`personae.service.policy`) orders them from the model's score,
        the items' categories and the context, exploring; each slot's propensity is logged
        with the list, and items shown to explore say so in ``source`` (``"exploration"``).
        Items the user disliked come last either way. ``k`` keeps the first ``k`` (default:
        all). The response's ``rec_id`` is what :meth:`reward` takes; rewards teach the
        bandit.
        """
        policy = policy or self.rank_policy
        if policy not in RANK_POLICIES:
            raise InvalidInput(f"policy must be one of {', '.join(RANK_POLICIES)}, got {policy!r}")
        uid = check_id(user_id, "user_id") if user_id is not None else None
        cands = _id_list(candidates, "candidates")
        if not cands:
            raise InvalidInput("candidates must hold at least one item id")
        if len(set(cands)) != len(cands):
            dup = next(c for n, c in enumerate(cands) if c in cands[:n])
            raise InvalidInput(f"candidates holds {dup!r} twice")
        k = len(cands) if k is None else _check_k(k)
        ctx = check_mapping(context, "context")
        self.refresh()
        raw = self._raw_history(uid)
        state = self._current(raw, cands)
        positions = self._positions(state, cands, "candidates")
        stored_uid = self.store.stored_user_id(uid) if uid is not None else None
        hist = self._history(state, raw, np.zeros(0, np.int64))
        art = state.artifact
        attributes = (self._user_attributes(uid) if uid is not None and art is not None
                      and scores_user_attributes(art.model) else None)
        scores = self._score(state, stored_uid, hist, _model_context(ctx, attributes))
        allowed = np.zeros(len(state.catalog), dtype=bool)
        allowed[positions] = True
        disliked = positions[np.isin(positions, hist.disliked)]
        allowed[disliked] = False
        propensities = None
        request: dict[str, Any] = {"candidates": cands, "k": k}
        if policy == "model":
            items = self._top(state, scores, allowed, k)
        else:
            items, propensities, model_scores = self._bandit_rank(
                policy, state, scores, allowed, k, ctx)
            request.update(policy=policy, model_scores=model_scores, ts=utcnow())
        # Negative feedback ranks last, below everything else, whatever the model says.
        low = min((it.score for it in items), default=0.0) - 1.0
        for p in disliked[: max(0, k - len(items))].tolist():
            items.append(RecommendedItem(state.catalog.item_ids[p], low, len(items) + 1,
                                         source="disliked"))
            if propensities is not None:
                propensities.append(1.0)
                request["model_scores"].append(None)
        return self._respond("rank", uid, stored_uid, items, "rank" if policy == "model"
                             else f"rank-{policy}", ctx, request, 1, None,
                             propensities=propensities)

    def _bandit_rank(self, policy: str, state: _State, scores: np.ndarray | None,
                     allowed: np.ndarray, k: int, ctx: Mapping[str, Any]
                     ) -> tuple[list[RecommendedItem], list[float], list[float | None]]:
        """The bandit's order of the allowed candidates, with propensities and the model
        scores it saw (logged, so that a reward rebuilds the same features)."""
        cat = state.catalog
        pos = np.flatnonzero(allowed)
        model = np.zeros(pos.size)
        if scores is not None and pos.size:
            cols = state.col_of_pos[pos]
            known = cols >= 0
            model[known] = scores[cols[known]]
            model[~np.isfinite(model)] = 0.0
        if not pos.size:
            return [], [], []
        X = self._bandit.features([cat.item_categories[p] for p in pos.tolist()],
                                  model.tolist(), ctx, utcnow())
        order, prop, explored = self._bandit.rank(policy, X, min(k, pos.size))
        items = [RecommendedItem(cat.item_ids[int(pos[j])], float(model[j]), r,
                                 source="exploration" if explored[r - 1] else "bandit")
                 for r, j in enumerate(order.tolist(), 1)]
        return items, [float(p) for p in prop], [float(model[j]) for j in order.tolist()]

    def reward(self, rec_id: str, item_id: str, reward: float, event_type: str = "reward",
               ts: Any = None, *, user_id: str | None = None) -> str:
        """Record the outcome of a shown item as an event; returns the event id.

        The event (type ``event_type``, value ``reward``) belongs to the list's user (for an
        anonymous list: ``user_id`` if given, else :data:`ANONYMOUS_USER_ID`) and carries the
        list's context plus ``rec_id``, ``rank`` and ``model_version``. The id is derived from
        (rec_id, item_id, event_type), so a retried call stores it once. Type ``reward`` has
        weight 0 in training views by default; pass ``event_type="click"`` (say) to make the
        reward count as that interaction.
        """
        rec_id = check_id(rec_id, "rec_id")
        item_id = check_id(item_id, "item_id")
        if isinstance(reward, bool) or not isinstance(reward, int | float) \
                or not math.isfinite(reward):
            raise InvalidInput(f"reward must be a finite number, got {reward!r}")
        event_type = check_event_type(event_type)
        rec = self._impressions.get(rec_id)
        if item_id not in rec.items:
            raise InvalidInput(f"item_id {item_id!r} was not shown in {rec_id!r}; it showed "
                               f"{len(rec.items)} items")
        stored = rec.user_id is not None
        if rec.user_id is not None:
            if user_id is not None and self.store.stored_user_id(user_id) != rec.user_id:
                raise InvalidInput(f"user_id {user_id!r} is not the user of {rec_id!r}")
            uid = rec.user_id
        else:
            uid = check_id(user_id, "user_id") if user_id is not None else ANONYMOUS_USER_ID
        key = f"{rec_id}\x1f{item_id}\x1f{event_type}".encode()
        event_id = "rw" + hashlib.sha256(key).hexdigest()[:32]
        context = {**(rec.context or {}), "rec_id": rec_id,
                   "rank": rec.items.index(item_id) + 1, "model_version": rec.model_version}
        written = self.store.add_events(
            [Event(uid, item_id, event_type, float(reward), ts if ts is not None else utcnow(),
                   context, event_id)],
            stored_user_ids=stored,
        )
        policy = (rec.request or {}).get("policy")
        if policy in RANK_POLICIES and policy != "model" and written.inserted:
            self._learn(policy, rec, item_id, float(reward))
        return event_id

    def _learn(self, policy: str, rec: Recommendation, item_id: str, reward: float) -> None:
        """Teach the bandit that ranked ``rec``: the features of ``item_id`` as they were
        then (its categories now, the logged context, time and model scores)."""
        cat = self._state.catalog
        p = cat.pos.get(item_id)
        shown = [cat.item_categories[cat.pos[i]] if i in cat.pos else [] for i in rec.items]
        logged = [s if s is not None else 0.0 for s in rec.request.get("model_scores", [])]
        if p is None or len(logged) != len(rec.items):
            log.warning("reward for %s in %s not learned: the list's features are gone",
                        item_id, rec.rec_id)
            return
        X = self._bandit.features(shown, logged, rec.context, rec.request.get("ts"))
        self._bandit.learn(policy, X[rec.items.index(item_id)], reward)

    def profile(self, user_id: str) -> dict[str, Any]:
        """What the engine knows of a user, JSON-ready: attributes, event counts per type,
        first/last seen, top categories, recent items, whether the model knows them.
        :class:`NotFound` for an unknown user."""
        user = self.store.get_user(user_id)
        events = self.store.user_events(user_id, limit=self.history_limit)
        state = self._state
        by_type: dict[str, int] = {}
        cats: dict[str, int] = {}
        weight_of = dict(zip(state.catalog.type_names, state.catalog.type_weights.tolist(),
                             strict=True))
        for ev in events:
            by_type[ev.type] = by_type.get(ev.type, 0) + 1
            p = state.catalog.pos.get(ev.item_id)
            if p is not None and weight_of.get(ev.type, 1.0) > 0:
                for c in state.catalog.item_categories[p]:
                    cats[c] = cats.get(c, 0) + 1
        times = [e.timestamp for e in events if e.timestamp is not None]
        art = state.artifact
        return {
            "user_id": user_id,
            "attributes": user.attributes,
            "created_at": user.created_at,
            "n_events": len(events),
            "events_by_type": by_type,
            "first_seen": min(times) if times else None,
            "last_seen": max(times) if times else None,
            "top_categories": [{"category": c, "events": n} for c, n in
                               sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
            "recent_items": [e.item_id for e in reversed(events[-10:])],
            "in_model": art is not None and self.store.stored_user_id(user_id) in art.user_pos,
            "model_version": art.version if art is not None else None,
            **self._behaviour(user_id),
        }

    def _lift_liked(self, state: _State, scores: np.ndarray, likes: Sequence[str]) -> np.ndarray:
        """Items of categories the user says they like gain one standard deviation of the
        scores: above the usual taste, not above everything."""
        liked = np.zeros(len(state.catalog), dtype=bool)
        for c in likes:
            mask = state.catalog.categories.get(c)
            if mask is not None:
                liked |= mask
        cols = state.col_of_pos[np.flatnonzero(liked)]
        cols = cols[cols >= 0]
        if not cols.size:
            return scores
        finite = np.isfinite(scores)
        lift = float(scores[finite].std()) if finite.any() else 0.0
        out = np.array(scores, dtype=np.float32, copy=True)
        out[cols] += np.float32(lift if lift > 0 else 1.0)
        return out

    # ------------------------------------------------------------------ text profile

    def text_profile(self, user_id: str) -> dict[str, Any]:
        """The profile an assistant is given, as compact text: the behaviour summary (every
        sentence from a figure), recent favourites, what the user disliked, and what they
        said themselves (their corrections, which override what was learned). After the user
        deleted it, the text is empty until they correct it again."""
        self.store.get_user(user_id)  # NotFound for an unknown user
        said = self.store.profile_corrections(user_id).get(
            self.store.stored_user_id(user_id), {})
        out: dict[str, Any] = {"user_id": user_id, "corrections": said,
                               "deleted": bool(said.get("deleted"))}
        if said.get("deleted"):
            return {**out, "text": "", "favourites": [], "disliked": []}
        state = self._state
        weights = dict(zip(state.catalog.type_names, state.catalog.type_weights.tolist(),
                           strict=True))
        events = self.store.user_events(user_id, limit=self.history_limit)
        best: dict[str, float] = {}
        disliked: list[str] = []
        for ev in reversed(events):  # newest first
            w = weights.get(ev.type, 1.0) * (ev.value if ev.type == "rating" and ev.value
                                             else 1.0)
            if weights.get(ev.type, 1.0) < 0 and ev.item_id not in disliked:
                disliked.append(ev.item_id)
            elif w > 0:
                best[ev.item_id] = max(best.get(ev.item_id, 0.0), w)

        def title(item_id: str) -> str:
            p = state.catalog.pos.get(item_id)
            return (state.catalog.titles[p] or item_id) if p is not None else item_id

        favourites = [title(i) for i, _ in sorted(best.items(), key=lambda kv: -kv[1])[:5]]
        lines = [self._behaviour(user_id)["summary"]] if events else []
        if favourites:
            lines.append("Recent favourites: " + "; ".join(favourites) + ".")
        if disliked:
            lines.append("Disliked: " + "; ".join(title(i) for i in disliked[:5]) + ".")
        if said.get("likes"):
            lines.append("Says they like: " + ", ".join(said["likes"]) + ".")
        if said.get("dislikes"):
            lines.append("Says they do not want: " + ", ".join(said["dislikes"]) + ".")
        if said.get("note"):
            lines.append(f"In their words: {said['note']}")
        return {**out, "text": " ".join(x for x in lines if x),
                "favourites": favourites, "disliked": [title(i) for i in disliked[:5]]}

    def correct_profile(self, user_id: str, *, likes: Sequence[str] | None = None,
                        dislikes: Sequence[str] | None = None,
                        note: str | None = None) -> dict[str, Any]:
        """The user corrects their text profile: categories they like (lifted in their
        lists), categories they do not want (never shown to them), a note for the assistant.
        Replaces earlier corrections; takes effect here at once and in every engine within
        its refresh interval."""
        data: dict[str, Any] = {}
        for name, values in (("likes", likes), ("dislikes", dislikes)):
            if values is not None:
                data[name] = _id_list(list(values), name)
        if note is not None:
            if not isinstance(note, str) or len(note) > 2000:
                raise InvalidInput(f"note must be a string of at most 2,000 characters, got "
                                   f"{note!r:.60}")
            data["note"] = note.strip()
        self.store.set_profile_corrections(user_id, data)
        self._corrections[self.store.stored_user_id(user_id)] = data  # here at once
        return self.text_profile(user_id)

    def delete_text_profile(self, user_id: str) -> dict[str, Any]:
        """The user deletes their text profile: the corrections go, and the assistant gets no
        text for them until they correct it again."""
        self.store.set_profile_corrections(user_id, {"deleted": True})
        self._corrections[self.store.stored_user_id(user_id)] = {"deleted": True}
        return self.text_profile(user_id)

    def _behaviour(self, user_id: str) -> dict[str, Any]:
        """The behaviour profile (:func:`personae.profile.build_profile`: activity, category
        preferences, time patterns, recency, ratings, demographics, favourite attributes) and
        its summary for an assistant, each sentence with the figures it came from."""
        from personae.profile import build_profile, summarize

        prof = build_profile(self.store, user_id)
        summary = summarize(prof)
        return {"behaviour": prof.to_dict(), "summary": summary.text,
                "summary_facts": summary.to_dict().get("facts", [])}

    # ------------------------------------------------------------------ request internals

    def _user_attributes(self, user_id: str) -> dict[str, Any] | None:
        """The user's stored attributes (None: not in the store): one indexed read."""
        try:
            return self.store.get_user(user_id).attributes
        except NotFound:
            return None

    def _raw_history(self, user_id: str | None) -> tuple[np.ndarray, np.ndarray] | None:
        """The user's newest events as store (item_idx, type_idx): the one query per request."""
        if user_id is None:
            return None
        return self.store.user_history(user_id, self.history_limit)

    def _current(self, raw: tuple[np.ndarray, np.ndarray] | None,
                 *id_lists: Sequence[str], filters: Filters | None = None) -> _State:
        """The state to answer with: the current one, reloaded first (once) when the request
        or the history names items, event types, categories or attribute keys newer than its
        catalogue. Every position of one request comes from this one state."""
        state = self._state
        cat = state.catalog
        stale = any(i not in cat.pos for ids in id_lists for i in ids)
        stale = stale or (filters is not None and not cat.knows(filters))
        if not stale and raw is not None and raw[0].size:
            idx, types = raw
            stale = bool((cat.positions_of_store_idx(idx) < 0).any()
                         or types.max() >= cat.type_weights.size)
        if stale:
            self.refresh(force=True)
            state = self._state
        return state

    def _positions(self, state: _State, ids: Sequence[str], field: str) -> np.ndarray:
        """Catalogue positions of item ids; :class:`NotFound` naming the first unknown one."""
        if not ids:
            return np.zeros(0, dtype=np.int64)
        got = state.catalog.positions(ids, field)
        if isinstance(got, str):
            raise NotFound(f"unknown item_id {got!r} in {field}")
        return got

    def _history(self, state: _State, raw: tuple[np.ndarray, np.ndarray] | None,
                 session: np.ndarray) -> _History:
        cat = state.catalog
        if raw is not None:
            idx, types = raw
            pos = cat.positions_of_store_idx(idx)
            keep = (pos >= 0) & (types < cat.type_weights.size)
            pos, types = pos[keep], types[keep]
            weights = cat.type_weights[types]
        else:
            pos, types = np.zeros(0, np.int64), np.zeros(0, np.int64)
            weights = np.zeros(0)
        if session.size:
            pos = np.concatenate([pos, session])
            weights = np.concatenate([weights, np.ones(session.size)])
            types = np.concatenate([types, np.full(session.size, -1)])
        if not pos.size:
            empty = np.zeros(0, np.int64)
            return _History(empty, np.zeros(0), empty, empty, (empty, np.zeros(0), empty))
        uniq, inv = np.unique(pos, return_inverse=True)
        net = np.bincount(inv, weights=weights)
        if (weights > 0).all():  # the usual history: only positive events
            return _History(uniq, net, uniq, np.zeros(0, np.int64), (pos, weights, types))
        negative = np.bincount(inv, weights=weights < 0) > 0
        nonzero = np.bincount(inv, weights=weights != 0) > 0
        pos_mask = net > 0
        return _History(uniq[pos_mask], net[pos_mask], uniq[nonzero],
                        uniq[(net <= 0) & negative], (pos, weights, types))

    def _cold_start(self, state: _State, attributes: Mapping[str, Any] | None, hist: _History,
                    context: Mapping[str, Any] | None
                    ) -> tuple[np.ndarray | None, str, str | None]:
        """Scores for a user the model was not trained on, by
        :class:`personae.service.coldstart.ColdStartPolicy`: popularity in the user's segment
        (from their stored ``attributes``; None: anonymous or not stored) and time bucket
        without history, the fold-in blended with it for a short history, the fold-in alone
        past ``full_history`` items. Returns (scores, path, the user's segment)."""
        from personae.service.coldstart import ColdStartPolicy, standardise

        art = state.artifact
        assert art is not None and art.prior is not None
        policy = self._policies.get(art.version)
        if policy is None:
            model = art.model if art.model.scores_histories else None
            policy = ColdStartPolicy(art.prior, model,  # type: ignore[arg-type]
                                     blend_k=self.cold_start_blend)
            self._policies = {art.version: policy}
        segment = art.segment_of(dict(attributes)) if attributes is not None else None
        ctx = dict(context or {})
        ctx.setdefault("ts", utcnow())
        cols = state.col_of_pos[hist.positive]
        known = cols >= 0
        out = policy.score(cols[known], hist.weights[known], segment=segment, context=ctx)
        if out.path != "segment_popularity" and self.dislike_strength > 0 \
                and hist.disliked.size and policy.model is not None:
            neg = state.col_of_pos[hist.disliked]
            neg = neg[neg >= 0]
            if neg.size:
                push = policy.model.score_history(neg, None, ctx)
                push = standardise(push, np.isfinite(push)).astype(np.float32)
                out_scores = out.scores - np.float32(self.dislike_strength) * push
                return out_scores, out.path, segment
        return out.scores, out.path, segment

    def _score(self, state: _State, stored_uid: str | None, hist: _History,
               context: Mapping[str, Any] | None) -> np.ndarray | None:
        """Model scores over the model's columns, or None (popularity)."""
        art = state.artifact
        if art is None:
            return None
        model = art.model
        if model.scores_histories and model.sequential:
            # the events in time order: the stored ones (read newest first) reversed, then
            # the session's (given oldest first); negative ones are left out
            pos, weights, _ = hist.events
            n_stored = pos.size - session_size(hist)
            order = np.r_[np.arange(n_stored)[::-1], np.arange(n_stored, pos.size)]
            pos, weights = pos[order], weights[order]
            cols = state.col_of_pos[pos]
            keep = (cols >= 0) & (weights > 0)
            if not keep.any():
                return None
            return model.score_history(cols[keep], weights[keep], context)
        if model.scores_histories:
            cols = state.col_of_pos[hist.positive]
            known = cols >= 0
            if not known.any():
                return None
            scores = model.score_history(cols[known], hist.weights[known], context)
            if self.dislike_strength > 0 and hist.disliked.size:
                neg_cols = state.col_of_pos[hist.disliked]
                neg_cols = neg_cols[neg_cols >= 0]
                if neg_cols.size:
                    scores = scores - np.float32(self.dislike_strength) * model.score_history(
                        neg_cols, None, context)
            return scores
        if stored_uid is not None and stored_uid in art.user_pos:
            return model.score_users([art.user_pos[stored_uid]], context)[0]
        return None

    def _top(self, state: _State, scores: np.ndarray | None, allowed: np.ndarray,
             k: int) -> list[RecommendedItem]:
        """Best ``k`` allowed positions: model-scored first, then by popularity."""
        ids = state.catalog.item_ids
        out: list[RecommendedItem] = []
        if scores is not None:
            ok = allowed[state.scored_pos]
            best, values = _best(state.scored_pos[ok], scores[state.scored_cols[ok]], k)
            out = [RecommendedItem(ids[p], v, r)
                   for r, (p, v) in enumerate(zip(best, values, strict=True), 1)]
            # the model's items were all considered above, scored or not (NaN)
            allowed = allowed & state.unscored
        if len(out) < k:
            rest = np.flatnonzero(allowed)
            best, values = _best(rest, state.popularity[rest], k - len(out))
            out += [RecommendedItem(ids[p], v, r, source="popularity")
                    for r, (p, v) in enumerate(zip(best, values, strict=True), len(out) + 1)]
        return out

    def _text_ranker(self, state: _State) -> Any:
        """The :class:`personae.text.query.QueryRanker` over the catalogue's item texts, built
        on first use and whenever the catalogue changes (embeddings are cached on disk, keyed
        by each item's text, so only new or changed texts are encoded)."""
        from personae.models.content import Content
        from personae.text.cache import EmbeddingCache
        from personae.text.query import QueryRanker

        cached = self._text
        if cached is not None and cached[0] == state.catalog.version:
            return cached[1]
        with self._text_lock:
            cached = self._text
            if cached is not None and cached[0] == state.catalog.version:
                return cached[1]
            cache = EmbeddingCache(self.models_dir / "embeddings", encoder=self.text_encoder)
            cache.update_from_store(self.store)
            vectors, _ = cache.lookup(state.catalog.item_ids)
            n = len(state.catalog)
            model = Content(encoder=self.text_encoder, adapter=self.text_adapter).fit(
                sp.csr_matrix((1, n), dtype=np.float32), item_embeddings=vectors)
            ranker = QueryRanker(model, cache.encoder)
            self._text = (state.catalog.version, ranker)
            return ranker

    def _text_top(self, state: _State, scores: np.ndarray | None, hist: _History,
                  allowed: np.ndarray, k: int, req: RecommendRequest) -> list[RecommendedItem]:
        """A natural-language request (and/or a self-description): the query's match with
        each item's text, plus the user's history as the model scores it (or, without model
        scores, as the content model does), each standardised; each item says which part
        matched."""
        ranker = self._text_ranker(state)
        n = len(state.catalog)
        history = None
        if scores is not None and req.description is None:
            # the collaborative model's scores, over catalogue positions (with a
            # self-description, the content model scores history and description together)
            history = np.full(n, np.nan, dtype=np.float32)
            history[state.scored_pos] = scores[state.scored_cols]
            floor = np.nanmin(history) if np.isfinite(history).any() else 0.0
            history = np.where(np.isfinite(history), history, floor).astype(np.float32)
        context = None
        art = state.artifact
        if art is not None and art.prior is not None and req.context:
            # the moment: the prior's popularity in this request's time bucket / context
            ctx = {**req.context, "ts": req.context.get("ts", utcnow())}
            prior = art.prior.score_history(np.zeros(0, np.int64), None, ctx)
            context = np.zeros(n, dtype=np.float32)
            context[state.scored_pos] = np.log(np.maximum(prior[state.scored_cols], 1e-12))
        res = ranker.rank(req.query, items=hist.positive, weights=hist.weights,
                          description=req.description, history_scores=history,
                          context_scores=context, k=k, allowed=allowed, exclude_seen=False)
        out = []
        for r, m in enumerate(res, 1):
            reason = {"query": "matches your request", "history": "fits your history",
                      "both": "matches your request and fits your history",
                      "context": "fits the moment", "none": "closest overall"}[m.matched]
            if req.description is not None and m.matched in ("history", "both"):
                reason = reason.replace("your history", "what you told us you like")
            out.append(RecommendedItem(
                state.catalog.item_ids[m.item], m.score, r, [reason], "query",
                {"method": "query", "matched": m.matched, "query_score": m.query_score,
                 "history_score": m.history_score, "score": m.score}))
        return out

    def _sentences(self, state: _State, items: list[RecommendedItem],
                   query: str | None) -> list[RecommendedItem]:
        """One sentence per item, phrased from the computed reasons only
        (:class:`personae.llm.Explainer`: a language model when configured, checked against
        the facts, else a template), in ``explanation["sentence"]``."""
        from personae.llm import Explainer, LLMConfig, Vocabulary

        cat = state.catalog
        if self._explainer is None:
            cfg = self._llm_config
            config = cfg if isinstance(cfg, LLMConfig) else LLMConfig.from_dict(dict(cfg or {}))
            self._explainer = Explainer(config)
        if self._vocabulary is None or self._vocabulary[0] != cat.version:
            vocab = Vocabulary([t for t in cat.titles if t], sorted(cat.categories))
            self._vocabulary = (cat.version, vocab)
            self._explainer.set_vocabulary(vocab)
        out = []
        for it in items:
            ex = dict(it.explanation or {})
            title = cat.titles[cat.pos[it.item_id]] or it.item_id
            because = []
            for r in ex.get("reasons", []):
                if r.get("kind") == "history" and r.get("item_id") in cat.pos:
                    because.append(cat.titles[cat.pos[r["item_id"]]] or r["item_id"])
            facts = {"item": title, "because": because[:3],
                     "exploration": it.source == "exploration",
                     "popular": it.source == "popularity" or ex.get("method") == "popularity"
                     or any(r.get("kind") in ("popularity", "segment", "context")
                            for r in ex.get("reasons", [])),
                     "query": query if it.source == "query" else None,
                     "matched": ex.get("matched") if it.source == "query" else None}
            sentence, source = self._explainer.explain_sentence(facts)
            ex.update(sentence=sentence, sentence_source=source)
            out.append(dataclasses.replace(it, explanation=ex))
        return out

    def _explore_new(self, state: _State, items: list[RecommendedItem], hist: _History,
                     allowed: np.ndarray, k: int) -> list[RecommendedItem]:
        """The exploration budget for new items (added since the model was trained, no
        events to learn from): up to ``explore_new_items`` of the last places of a list of at
        least 3 go to the allowed new items whose categories best match the user's history
        (Jaccard of category sets, summed over the history), flagged ``exploration`` and
        saying what they share. Nothing is inserted for a user whose history shares no
        category with any new item. Each new item is explored in at most ``explore_budget``
        lists; the less shown go first among good matches."""
        if k < 3 or not hist.positive.size:
            return items
        cat = state.catalog
        shown = {it.item_id for it in items}
        new = [int(p) for p in np.flatnonzero(allowed & state.unscored & (state.popularity == 0))
               if cat.item_ids[p] not in shown]
        if not new:
            return items
        liked: dict[str, float] = {}
        for p, w in zip(hist.positive.tolist(), hist.weights.tolist(), strict=True):
            for c in cat.item_categories[p]:
                liked[c] = liked.get(c, 0.0) + float(w)
        budget = self.explore_budget
        with self._explored_lock:
            explored = {cat.item_ids[p]: self._explored.get(cat.item_ids[p], 0) for p in new}
        scored = []
        for p in new:
            cats = cat.item_categories[p]
            common = [c for c in cats if c in liked]
            times = explored[cat.item_ids[p]]
            if common and (not budget or times < budget):
                score = sum(liked[c] for c in common) / len(set(cats) | set(liked))
                scored.append((score, score / (1 + times), p, common))
        if not scored:
            return items
        scored.sort(key=lambda t: (-t[1], t[2]))
        slots = min(self.explore_new_items, k - 1, len(scored))
        keep = items[: max(0, min(len(items), k) - slots)]
        with self._explored_lock:
            for _, _, p, _ in scored[:slots]:
                self._explored[cat.item_ids[p]] = self._explored.get(cat.item_ids[p], 0) + 1
        for score, _, p, common in scored[:slots]:
            keep.append(RecommendedItem(
                cat.item_ids[p], float(score), len(keep) + 1,
                [f"new: shares {', '.join(common[:3])} with what you liked"], "exploration",
                {"method": "exploration", "score": float(score), "shared": common,
                 "reasons": [{"kind": "exploration", "contribution": 0.0, "share": None}]}))
        return keep[:k]

    def _diversify(self, state: _State, items: list[RecommendedItem],
                   req: RecommendRequest) -> list[RecommendedItem]:
        """MMR over the best candidates (category overlap as similarity), and category caps.

        Relevance is the candidate's rank, scaled to (0, 1]: scores of the model and of the
        popularity fill-in are not on one scale.
        """
        from personae.service.diversity import ItemSimilarity, mmr

        if not items:
            return items
        cat = state.catalog
        names: dict[str, int] = {}
        local = [[names.setdefault(c, len(names)) for c in cat.item_categories[cat.pos[it.item_id]]]
                 for it in items]
        n = len(items)
        relevance = 1.0 - np.arange(n, dtype=np.float64) / n
        lam = 1.0 - (req.diversity or 0.0)  # the request's 0 = relevance only; mmr's lam = 1
        similarity = ItemSimilarity.from_categories(local, max(len(names), 1)) if names else None
        if similarity is None:
            lam = 1.0
        order = mmr(relevance, np.arange(n), similarity, lam, req.k,
                    categories=local if names else None,
                    max_per_category=req.max_per_category if names else None)
        return [dataclasses.replace(items[j], rank=r) for r, j in enumerate(order.tolist(), 1)]

    def _explain(self, state: _State, items: list[RecommendedItem], hist: _History,
                 filters: Filters, context: Mapping[str, Any] | None = None,
                 path: str | None = None, segment: str | None = None
                 ) -> list[RecommendedItem]:
        """Reasons from the model's own arithmetic (:func:`personae.service.explain.explain`):
        for model items, the history items whose terms make up most of the score, each with
        its share; on the cold-start path without history, the segment and context
        popularity that make up the prior; for popularity items, that they are popular (in
        the filtered categories).
        """
        from personae.service.explain import explain

        cat = state.catalog
        art = state.artifact
        by_col: dict[int, Any] = {}
        # without history the prior explains (on the demographics path it holds 1 -
        # demographics_weight of the score; the model's part names no history item)
        if art is not None and path in ("segment_popularity", "demographics") \
                and art.prior is not None:
            targets = np.array([state.col_of_pos[cat.pos[it.item_id]] for it in items
                                if it.source == "model"], dtype=np.int64)
            ctx = {**dict(context or {}), "ts": dict(context or {}).get("ts", utcnow())}
            if segment is not None:
                ctx["user_segment"] = segment
            if targets.size:
                for x in explain(art.prior, None, targets, context=ctx, top=3):
                    by_col[x.item_idx] = x
        elif art is not None:
            model_items = [it for it in items if it.source == "model"
                           and state.col_of_pos[cat.pos[it.item_id]] >= 0]
            cols = state.col_of_pos[hist.positive]
            known = cols >= 0
            if model_items and (known.any() or not art.model.scores_histories):
                targets = np.array([state.col_of_pos[cat.pos[it.item_id]] for it in model_items])
                history = (cols[known], hist.weights[known]) if known.any() else None
                for x in explain(art.model, history, targets, context=context, top=3):
                    by_col[x.item_idx] = x
        type_of: dict[int, str] | None = None
        out = []
        for it in items:
            if it.source in ("query", "exploration"):  # these explain themselves
                out.append(it)
                continue
            p = cat.pos[it.item_id]
            e = by_col.get(int(state.col_of_pos[p])) if it.source == "model" else None
            reasons: list[str] = []
            explanation: dict[str, Any] | None = None
            if e is not None:
                explanation = {"method": e.method, "score": e.score,
                               "total": None if math.isnan(e.total) else e.total, "reasons": []}
                for r in e.reasons:
                    share = "" if math.isnan(r.share) else f"{r.share:.0%} of the score"
                    part = r.to_dict()
                    part.pop("item_idx", None)
                    if r.kind == "history" and r.item_idx is not None:
                        hp = int(state.pos_of_col[r.item_idx])
                        if type_of is None:
                            type_of = hist.type_of(cat)
                        item_id = art.item_ids[r.item_idx]  # type: ignore[union-attr]
                        title = (cat.titles[hp] or item_id) if hp >= 0 else item_id
                        how = ", ".join(x for x in (type_of.get(hp, "view"), share) if x)
                        reasons.append(f"because of {title!r} ({how})")
                        part["item_id"] = item_id
                    else:
                        reasons.extend(dataclasses.replace(e, reasons=(r,)).texts())
                    explanation["reasons"].append(part)
            if it.source == "popularity":
                where = f" in {', '.join(filters.categories)}" if filters.categories else ""
                reasons = [f"popular{where}"]
                explanation = {"method": "popularity", "score": it.score, "total": it.score,
                               "reasons": [{"kind": "popularity", "contribution": it.score,
                                            "share": 1.0}]}
            if not reasons:
                reasons = ["matches your past activity"]
            out.append(dataclasses.replace(it, reasons=reasons, explanation=explanation))
        return out

    def _chain(self, after: str | None,
               stored_uid: str | None) -> tuple[Recommendation | None, set[str]]:
        """The page ``after`` names and every item its chain of pages has shown."""
        if after is None:
            return None, set()
        try:
            parent = self._impressions.get(after)
        except NotFound:
            raise NotFound(f"unknown rec_id {after!r} in after") from None
        if parent.kind != "recommend":
            raise InvalidInput(f"after must name a recommendation list; {after!r} is a "
                               f"{parent.kind!r} list")
        if parent.user_id != stored_uid:
            raise InvalidInput(f"after names {after!r}, a list for another user")
        shown = set(parent.items)
        cur = parent
        for _ in range(MAX_PAGES):
            if cur.parent_rec_id is None:
                break
            try:  # the parents were found before: do not wait for a forgotten one
                cur = self._impressions.get(cur.parent_rec_id, wait=False)
            except NotFound:
                break
            shown.update(cur.items)
        return parent, shown

    def _respond(self, kind: str, user_id: str | None, stored_uid: str | None,
                 items: list[RecommendedItem], strategy: str,
                 context: Mapping[str, Any] | None, request: dict[str, Any], page: int,
                 parent: str | None, *,
                 propensities: list[float] | None = None,
                 path: str | None = None) -> RecommendResponse:
        rec_id = new_rec_id()
        version = self.model_version
        if self.log_impressions:
            self._impressions.add(Recommendation(
                rec_id, kind, stored_uid, utcnow(), version, [it.item_id for it in items],
                [it.score for it in items], propensities,
                dict(context) if context else None, request, page, parent,
            ))
        return RecommendResponse(rec_id, user_id, items, version, strategy, page, path)

    # ------------------------------------------------------------------ models

    def train(self, model: str = "ease", params: Mapping[str, Any] | None = None, *,
              background: bool = True, reason: str | None = None) -> ModelVersion:
        """Train a new model version on the store's data; returns it (status ``training``,
        or its final status with ``background=False``).

        The model name and parameters are checked now (:class:`InvalidInput`). In the job:
        validation against the active version on a P1 validation split, fit on all data,
        save under ``models_dir/<version>/``; then the version is activated and swapped in,
        unless its validation NDCG@10 is more than 1 % worse than the active one's (status
        ``ready`` and a ``message`` saying why). A failure marks it ``failed`` with the error;
        the old version keeps serving. One job at a time: :class:`InvalidInput` while one runs
        (in this process, or in another whose job still sends heartbeats).

        ``reason`` ``"forget"`` (used by :meth:`maintain`) activates the new version whatever
        its validation score: it replaces a version trained on a forgotten user's data.
        """
        params = check_model(model, dict(params or {}))
        with self._train_lock:
            if self._job is not None and self._job.is_alive():
                raise InvalidInput(f"a training job is running ({self._job_version}); wait "
                                   "for it to finish")
            # Atomic across processes: one job per store; a dead process's job is failed.
            mv = self.store.claim_training(
                ModelVersion(new_version_id(model), model, params, "training", utcnow()),
                stale_after=STALE_TRAINING_AFTER)
            self._job_version = mv.version
            self._job = threading.Thread(target=self._run_training, args=(mv, reason),
                                         name=f"personae-train-{mv.version}", daemon=True)
            self._job.start()
        if not background:
            self._job.join()
            return self.store.get_model_version(mv.version)
        return mv

    def wait(self, timeout: float | None = None) -> ModelVersion | None:
        """Wait for the training job started here (if any); its version as stored now."""
        job, version = self._job, self._job_version
        if job is None or version is None:
            return None
        job.join(timeout)
        return self.store.get_model_version(version)

    def _run_training(self, mv: ModelVersion, reason: str | None = None) -> None:
        done = threading.Event()

        def beat() -> None:
            while not done.wait(HEARTBEAT_INTERVAL):
                try:
                    self.store.heartbeat(mv.version)
                except Exception:  # noqa: BLE001 - a missed beat is retried; never kill the job
                    log.warning("heartbeat of %s failed", mv.version, exc_info=True)

        threading.Thread(target=beat, name=f"personae-beat-{mv.version}", daemon=True).start()
        try:
            active_id = self.store.active_model_version()
            active = self.store.get_model_version(active_id) if active_id else None
            fields, activate, message = train_version(self.store, mv, self.models_dir, active,
                                                      text_encoder=self.text_encoder)
            if reason == "forget" and not activate:
                activate = True
                message = ("activated despite the comparison, to replace a version trained on "
                           f"a forgotten user's data ({message})")
            artifact = self._load(mv.version) if activate else None  # loads before it serves
            self.store.finish_model_version(mv.version, activate=activate, finished_at=utcnow(),
                                            message=message, **fields)
            if artifact is not None:
                self._swap(artifact)
            if reason == "forget":
                self.store.audit("model_retrained", None, {
                    "version": mv.version, "replaces": active_id, "activated": activate})
            log.info("trained %s: %s", mv.version, message or "activated")
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, the old model serves
            log.exception("training %s failed", mv.version)
            self.store.update_model_version(mv.version, status="failed", finished_at=utcnow(),
                                            message=f"{type(exc).__name__}: {exc}")
        finally:
            done.set()

    # ------------------------------------------------------------------ data lifecycle

    def forget_user(self, user_id: str) -> dict[str, Any]:
        """Forget a user: their rows leave the store (:meth:`Store.forget_user`), their
        per-user state leaves every saved model version at once (rows of the training matrix
        and user factors zeroed, the id dropped from the index), and every engine on the store
        reloads the served artifact. The active version is retrained within
        ``retrain_after_forget`` seconds (:meth:`maintain`). Each step is in the audit log.
        """
        stored = self.store.stored_user_id(user_id)
        report: dict[str, Any] = dict(self.store.forget_user(user_id))
        tombstone = self.store._tombstone(stored)
        cleaned = []
        for mv in self.store.model_versions():
            if mv.status in ("ready", "active", "retired") and \
                    forget_in_artifact(self.models_dir / mv.version, stored):
                cleaned.append(mv.version)
        if cleaned:
            self.store.touch_model_epoch()
            self.refresh(force=True)
        self.store.audit("model_state_removed", tombstone, {"versions": cleaned})
        report["model_state_removed"] = cleaned
        return report

    def maintain(self) -> dict[str, Any]:
        """Housekeeping, run every few seconds by the server (safe in every worker at once):
        fail training jobs whose process died, retrain the active version when it was
        trained on a user forgotten more than ``retrain_after_forget`` seconds ago, and on the
        ``retrain_every`` schedule."""
        done: dict[str, Any] = {"abandoned": self.store.fail_stale_training(STALE_TRAINING_AFTER)}
        active_id = self.store.active_model_version()
        if active_id is None:
            return done
        active = self.store.get_model_version(active_id)
        due = active.invalidated_at is not None and \
            utcnow() - active.invalidated_at >= self.retrain_after_forget
        busy = self._job is not None and self._job.is_alive()
        scheduled = self.retrain_every > 0 and utcnow() - active.created_at >= self.retrain_every
        if scheduled and not due and not busy:
            latest = max((mv.created_at for mv in self.store.model_versions()), default=0.0)
            if utcnow() - latest >= self.retrain_every:  # no newer try (even a rejected one)
                try:
                    mv = self.train(active.model, active.params)
                except InvalidInput as exc:  # another process is training
                    done["retrain"] = f"not started: {exc}"
                else:
                    self.store.audit("scheduled_retrain", None, {
                        "version": mv.version, "replaces": active_id})
                    done["retrain"] = mv.version
                return done
        if due and not busy:
            try:
                mv = self.train(active.model, active.params, reason="forget")
            except InvalidInput as exc:  # another process is training: it will do
                done["retrain"] = f"not started: {exc}"
            else:
                self.store.audit("retrain_after_forget", None, {
                    "version": mv.version, "replaces": active_id,
                    "invalidated_at": active.invalidated_at})
                done["retrain"] = mv.version
        return done

    def models(self) -> list[ModelVersion]:
        """Every model version, newest first, with status, metrics and message."""
        return self.store.model_versions()

    def activate(self, version: str) -> ModelVersion:
        """Serve ``version`` (``ready`` or ``retired``) from now on, here and, through
        :meth:`refresh`, in every process. Its artifact is loaded before anything changes."""
        mv = self.store.get_model_version(version)
        if mv.status not in ("ready", "retired", "active"):
            raise InvalidInput(f"model version {version!r} is {mv.status!r}; only ready or "
                               "retired versions can be activated")
        artifact = self._load(version)
        mv = self.store.activate_model_version(version)
        self._swap(artifact)
        return mv

    def rollback(self) -> ModelVersion:
        """Serve again the version that served before the active one."""
        mv = self.store.rollback_model_version()
        self._swap(self._load(mv.version))
        return mv

    def _swap(self, artifact: Artifact) -> None:
        with self._refresh_lock:
            self._failed_loads.discard(artifact.version)
            self._state = self._build_state(self._state.catalog, artifact)


def _model_context(context: Mapping[str, Any] | None,
                   attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The context a model scores with: the request's, plus the user's stored ``attributes``
    under ``"user"`` (:class:`personae.models.twotower.TwoTower`'s key) when given; a
    ``"user"`` the request sets itself is kept."""
    if not attributes:
        return context
    return {"user": dict(attributes), **(context or {})}


def _best(positions: np.ndarray, scores: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """The ``k`` highest finite ``scores`` and their ``positions``, best first (ties: lower
    position), as Python lists."""
    finite = np.isfinite(scores)
    if not finite.all():
        positions, scores = positions[finite], scores[finite]
    if not positions.size or k <= 0:
        return [], []
    if positions.size > k:
        # the k-th value and every tie of it, so that ties break by position below
        kth = np.partition(scores, positions.size - k)[positions.size - k]
        top = scores >= kth
        positions, scores = positions[top], scores[top]
    order = np.lexsort((positions, -scores))[:k]
    return positions[order].tolist(), scores[order].tolist()


def session_size(hist: _History) -> int:
    """How many of ``hist.events`` came from the request's session (type -1, at the end)."""
    return int((hist.events[2] == -1).sum())


def _default_models_dir(store: Store) -> Path:
    url = make_url(store.url)
    if store.backend == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).parent / "models"
    return default_data_dir() / "models"


__all__ = ["ANONYMOUS_USER_ID", "MAX_IDS", "Engine"]
