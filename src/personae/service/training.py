"""Training a model version: validate against the active one, fit on everything, save.

An artifact folder ``<models_dir>/<version>/`` holds ``model/`` (:meth:`Recommender.save`:
JSON + npz, no pickle) and ``index.json`` (the training matrix's ``item_ids``/``user_ids`` and
each item's count of positive events, for the popularity fallback). It is written under a
temporary name and renamed, so a reader never sees half an artifact.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from personae.errors import InvalidInput, PersonaeError
from personae.store.records import utcnow

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from personae.data.side import SideFeatures
    from personae.models.base import Recommender
    from personae.store import ModelVersion, Store


class _FitsWithSide(Protocol):
    def fit(self, data: Any, side: SideFeatures | None = None) -> Recommender: ...


INDEX_FORMAT = "personae.serving-index/1"
#: Validation metric deciding activation, and how much worse (relative) a new version may be.
VALIDATION_METRIC = "ndcg@10"
TOLERANCE = 0.01


@dataclass(frozen=True, eq=False)
class Artifact:
    """A loaded model version: the model and its index maps."""

    version: str
    model: Recommender
    item_ids: list[str]
    user_pos: dict[str, int]
    popularity: np.ndarray  # float64 (n_model_items,), positive events per model column
    #: The cold-start prior: popularity per user segment and time bucket (None: not trained)
    prior: Recommender | None = None
    #: The user attribute the prior's segments come from, and its bins (numeric attributes)
    segment: tuple[str, list[float] | None] | None = None

    def segment_of(self, attributes: dict[str, Any]) -> str | None:
        """A user's segment name in the prior, from their attributes (None: unknown)."""
        from personae.data.features import bin_label

        if self.segment is None:
            return None
        name, bins = self.segment
        value = attributes.get(name)
        label = bin_label(value, bins) if bins is not None else value
        return None if label is None else str(label)


#: User attributes tried, in order, for the cold-start prior's segments (bins for numbers):
#: the first that at least half of the users have.
SEGMENT_ATTRIBUTES: tuple[tuple[str, list[float] | None], ...] = (
    ("age", [18, 25, 35, 45, 50, 56]), ("age_group", None), ("gender", None), ("segment", None),
    ("country", None),
)


def fit_prior(store: Store, view: Any) -> tuple[Recommender, tuple[str, list[float] | None] | None]:
    """The cold-start prior of :class:`personae.service.coldstart.ColdStartPolicy`: item
    popularity per user segment (the first of :data:`SEGMENT_ATTRIBUTES` that most users
    have) and per daypart/weekpart of the event times."""
    from personae.data.features import user_segments_from_store
    from personae.models.popularity import Popularity

    ts = np.asarray(view.event_ts, dtype=np.float64)
    # time buckets only where the events have times (MeLU's ratings, say, have none)
    dated = ts.size > 0 and bool(np.isfinite(ts).all()) and float(np.ptp(ts)) > 0
    params: dict[str, Any] = {"time_buckets": "daypart_weekpart"} if dated else {}
    for name, bins in SEGMENT_ATTRIBUTES:
        codes, names = user_segments_from_store(store, view, name, bins=bins)
        if names and (codes >= 0).mean() >= 0.5:
            prior = Popularity(**params).fit(view, user_segments=codes, segment_names=names)
            return prior, (name, bins)
    return Popularity(**params).fit(view), None


#: Parameters a served version gets unless the request sets them: EASE scores in float32
#: (half the memory read per request; rankings equal to float64's up to ties).
SERVING_DEFAULTS: dict[str, dict[str, Any]] = {"ease": {"dtype": "float32"}}


def check_model(model: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a model name and its hyper-parameters now (not in the background thread);
    returns the parameters with :data:`SERVING_DEFAULTS` filled in."""
    from personae.models import get_model_class

    cls = get_model_class(model)
    params = {**SERVING_DEFAULTS.get(model, {}), **dict(params or {})}
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"params must be JSON numbers, strings, lists or objects: {exc}") \
            from None
    valid = cls._param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidInput(
            f"{cls.__name__} has no parameter {unknown[0]!r} (params); valid: {', '.join(valid)}"
        )
    cls(**params)._validate_params()
    return params


def new_version_id(model: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"v{stamp}-{model}-{os.urandom(2).hex()}"


def fit_model(model: Recommender, data: Any, side: SideFeatures | None = None) -> Recommender:
    """``model.fit(data)``, with ``side=side`` for the models whose ``fit`` takes side
    features (the two-tower model); the others ignore ``side``."""
    if side is not None and takes_side_features(model.name):
        return cast("_FitsWithSide", model).fit(data, side=side)
    return model.fit(data)


def takes_side_features(model: str) -> bool:
    """Whether ``model``'s ``fit`` takes side features (``fit(data, side=SideFeatures)``)."""
    import inspect

    from personae.models import get_model_class

    return "side" in inspect.signature(get_model_class(model).fit).parameters


def scores_user_attributes(model: Any) -> bool:
    """Whether ``model`` scores a user's stored attributes (demographics), given as
    ``context["user"]``: its ``fit`` takes side features and it kept the user fields to encode
    them with (the two-tower model; not its artifacts from before those were saved)."""
    return bool(getattr(model, "user_fields_", None)) and takes_side_features(model.name)


def side_features(store: Store, view: Any, models_dir: Path,
                  text_encoder: str | None) -> Any:
    """The item, user and context features a training job gives to models that take them:
    fields discovered in the store (:meth:`SideFeatures.discover`) and, with
    ``text_encoder``, each item's text embedding (the engine's embedding cache; only new or
    changed texts are encoded)."""
    from personae.data.side import SideFeatures
    from personae.errors import MissingExtra

    text = None
    if text_encoder:
        from personae.text.cache import EmbeddingCache

        try:
            cache = EmbeddingCache(models_dir / "embeddings", encoder=text_encoder)
            cache.update_from_store(store)
        except MissingExtra as exc:  # the text extra is optional: train without text
            log.warning("training without item text embeddings: %s", exc)
        else:
            vectors, found = cache.lookup(map(str, view.item_ids))
            text = vectors if found.any() and np.abs(vectors).sum() > 0 else None
    return SideFeatures.discover(store, view, item_text=text)


def train_version(store: Store, mv: ModelVersion, models_dir: Path,
                  active: ModelVersion | None, *, text_encoder: str | None = None
                  ) -> tuple[dict[str, Any], bool, str | None]:
    """Validate, fit and save ``mv``; returns (fields to store, activate?, message).

    Validation: P1 (:func:`personae.evaluate.random_holdout`) validation split of the current
    data; the new model and a fresh model of the active version's kind and parameters are fit
    on its train part and scored on its test part with NDCG@10. The new version is to be
    activated unless it is worse than the active one by more than :data:`TOLERANCE` (relative).

    Models whose ``fit`` takes side features (the two-tower model) get them from the store
    (:func:`side_features`, with text embeddings by ``text_encoder``); in validation without
    the per-event context, which a split's matrix does not carry.
    """
    from personae.data.interactions import Interactions
    from personae.evaluate import evaluate, random_holdout
    from personae.models import create

    view = Interactions.from_store(store)
    if view.nnz == 0:
        raise InvalidInput("the store holds no positive events to train on")
    split = random_holdout(view)
    side = None
    if takes_side_features(mv.model) or (active is not None
                                         and takes_side_features(active.model)):
        side = side_features(store, view, models_dir, text_encoder)

    def validate(model: str, params: dict[str, Any]) -> dict[str, float]:
        candidate = create(model, **params)
        if side is not None and takes_side_features(model):
            val = split.validation
            assert val is not None
            aligned = side.align(val.user_ids, val.item_ids, own_user_ids=view.user_ids,
                                 own_item_ids=view.item_ids)
            fit_model(candidate, val.train, side=replace(aligned, event_codes=None,
                                                         context_fields=(), context_vocab=()))
            res = evaluate(candidate, split, ks=(10,), on="validation", fit=False,
                           memory="none")
        else:
            res = evaluate(candidate, split, ks=(10,), on="validation", memory="none")
        return {"ndcg@10": res.metrics.get("ndcg@10", math.nan),
                "recall@10": res.metrics.get("recall@10", math.nan),
                "n_validation_users": res.n_users}

    metrics: dict[str, Any] = {"split": "p1-validation", **validate(mv.model, mv.params)}
    new_score = metrics[VALIDATION_METRIC]
    activate, message = True, None
    if active is not None:
        old = validate(active.model, active.params)
        metrics["active_version"] = active.version
        metrics[f"active_{VALIDATION_METRIC}"] = old[VALIDATION_METRIC]
        old_score = old[VALIDATION_METRIC]
        if math.isnan(new_score) or math.isnan(old_score):
            message = "activated without comparison: too few events for a validation split"
        elif new_score < old_score * (1.0 - TOLERANCE):
            activate = False
            message = (
                f"not activated: validation {VALIDATION_METRIC} {new_score:.4f} is worse than "
                f"the active version {active.version}'s {old_score:.4f} by more than "
                f"{TOLERANCE:.0%}; activate it by hand to serve it anyway"
            )
    model = fit_model(create(mv.model, **mv.params), view, side=side)
    popularity = _popularity(view)
    prior, segment = fit_prior(store, view)
    save_artifact(models_dir / mv.version, model, list(map(str, view.item_ids)),
                  list(map(str, view.user_ids)), popularity, prior=prior, segment=segment)
    fields = {
        "metrics": _finite(metrics), "fingerprint": model.fingerprint_,
        "n_users": view.n_users, "n_items": view.n_items, "n_events": view.n_events,
    }
    return fields, activate, message


def register_version(store: Store, model: Recommender, item_ids: list[str],
                     user_ids: list[str], *, models_dir: Path | None = None,
                     metrics: dict[str, Any] | None = None, message: str | None = None,
                     activate: bool = False) -> ModelVersion:
    """Make a model trained elsewhere (federated training, a notebook) a version of the store:
    its artifact is saved under ``models_dir/<version>/`` with the popularity prior, it is
    recorded ``ready`` with ``metrics``, and activated when asked (every engine on the store
    then serves it). ``item_ids``/``user_ids`` name the model's columns/rows."""
    from personae.data.interactions import Interactions
    from personae.service.engine import _default_models_dir
    from personae.store import ModelVersion

    if (len(user_ids), len(item_ids)) != (model.n_users_, model.n_items_):
        raise InvalidInput(f"the model is {model.n_users_} users x {model.n_items_} items but "
                           f"{len(user_ids)} user ids and {len(item_ids)} item ids were given")
    folder_root = Path(models_dir) if models_dir is not None else _default_models_dir(store)
    mv = ModelVersion(new_version_id(model.name), model.name, model.get_params(), "training",
                      utcnow())
    store.add_model_version(mv)
    view = Interactions.from_store(store)
    by_id = dict(zip(map(str, view.item_ids), _popularity(view).tolist(), strict=True))
    popularity = np.array([by_id.get(i, 0) for i in item_ids], dtype=np.int64)
    prior: Recommender | None
    segment: tuple[str, list[float] | None] | None
    prior, segment = fit_prior(store, view)
    if list(map(str, view.item_ids)) != list(item_ids):
        prior, segment = None, None  # the prior must share the model's columns
    save_artifact(folder_root / mv.version, model, list(item_ids), list(user_ids), popularity,
                  prior=prior, segment=segment)
    done = store.finish_model_version(
        mv.version, activate=activate, finished_at=utcnow(),
        metrics=_finite(dict(metrics or {})), message=message,
        fingerprint=model.fingerprint_, n_users=model.n_users_, n_items=model.n_items_)
    return done


def save_artifact(folder: Path, model: Recommender, item_ids: list[str], user_ids: list[str],
                  popularity: np.ndarray, *, prior: Recommender | None = None,
                  segment: tuple[str, list[float] | None] | None = None) -> Path:
    """Write a version's folder atomically (temporary name, then rename)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save(tmp / "model")
    if prior is not None:
        prior.save(tmp / "prior")
    index = {"format": INDEX_FORMAT, "item_ids": item_ids, "user_ids": user_ids,
             "popularity": [int(v) for v in popularity],
             "segment": list(segment) if segment is not None else None}
    (tmp / "index.json").write_text(json.dumps(index))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def load_artifact(folder: Path, version: str) -> Artifact:
    """Read a version's folder; :class:`PersonaeError` naming what is missing or wrong."""
    from personae.models import load_model

    try:
        index = json.loads((folder / "index.json").read_text())
    except FileNotFoundError:
        raise PersonaeError(
            f"model version {version!r} has no artifact at {folder} (was it trained with "
            "another models_dir?)"
        ) from None
    if index.get("format") != INDEX_FORMAT:
        raise PersonaeError(f"{folder / 'index.json'} has format {index.get('format')!r}, "
                            f"expected {INDEX_FORMAT!r}")
    model = load_model(folder / "model")
    item_ids, user_ids = index["item_ids"], index["user_ids"]
    if (len(user_ids), len(item_ids)) != (model.n_users_, model.n_items_):
        raise PersonaeError(f"{folder}: the index does not match the model's shape")
    prior = load_model(folder / "prior") if (folder / "prior").exists() else None
    segment = index.get("segment")
    return Artifact(version, model, item_ids, {u: n for n, u in enumerate(user_ids) if u},
                    np.asarray(index["popularity"], dtype=np.float64), prior,
                    (segment[0], segment[1]) if segment else None)


def forget_in_artifact(folder: Path, stored_user_id: str) -> bool:
    """Remove a user's per-user state from a saved version, in place; True if it had some.

    Their row of the training matrix and of every per-user array is zeroed
    (:meth:`Recommender.forget_users`) and their id in ``index.json`` is blanked, so no
    request can reach that row again. Positions of the other users do not move.
    """
    from personae.models import load_model

    index_path = folder / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        return False
    user_ids: list[str] = index["user_ids"]
    try:
        row = user_ids.index(stored_user_id)
    except ValueError:
        return False
    for part in ("model", "prior"):
        if not (folder / part).exists():
            continue
        model = load_model(folder / part)
        model.forget_users([row])
        tmp = folder / f".tmp-{part}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save(tmp)
        shutil.rmtree(folder / part)
        tmp.rename(folder / part)
    user_ids[row] = ""
    tmp_index = folder / f".tmp-index-{os.getpid()}.json"
    tmp_index.write_text(json.dumps(index))
    tmp_index.replace(index_path)
    return True


def _popularity(view: Any) -> np.ndarray:
    """Positive events per item of ``view`` (int64 (n_items,)): the serving fill-in order."""
    positive = view.event_weights > 0
    return np.bincount(view.event_items[positive], minlength=view.n_items)


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    """NaN → None, so that the metrics are valid JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in metrics.items()}
