"""The FastAPI application: ``create_app(store, settings=...)`` builds one; nothing is global.

Every route is a thin translation between HTTP and the Python API: the store for users, items
and events, :class:`personae.service.Engine` for recommendations and models. Responses are
written with orjson straight from the service's dataclasses, and the response models in
:mod:`personae.server.schemas` document them in the OpenAPI schema.

Routes that write (users, items, events, models) are plain ``def`` functions: FastAPI runs them
in its thread pool, so a write waiting for SQLite's single writer slot never blocks the event
loop. The three read paths (recommendations, similar items, rank) are ``async`` and call the
engine inline: they are CPU work of about a millisecond, and the thread-pool hop would add a
fifth to a quarter of their cost; with one worker per core nothing runs beside them anyway.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# runtime, and some of them name objects local to create_app.
import asyncio
import contextlib
import dataclasses
import gc
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from personae.errors import InvalidInput
from personae.server import schemas as M
from personae.server.auth import ROLE_KEY, KeyCache
from personae.server.errors import FieldError, error_response, install
from personae.server.metrics import Metrics
from personae.server.middleware import Auth, BodyLimit, Timing
from personae.server.settings import ServerSettings
from personae.store import Event, Item, Store, User, to_timestamp

log = logging.getLogger("personae.server")

API_DESCRIPTION = """\
Events in, personal recommendations out.

**Auth.** Send an API key as `Authorization: Bearer <secret>` or `X-API-Key: <secret>`
(create one with `personae keys create --name app --role writer`). Roles nest:
*reader* (recommendations, similar items, rank, reads), *writer* (+ users, items, events,
rewards), *admin* (+ forgetting users, exports, models).

**Errors** are `{"error": {"type", "message", "field"}}`: 400 malformed JSON, 401 no or bad
key, 403 role too weak, 404 unknown id, 409 conflict, 413 body too large, 422 invalid field
(the `field` says which, e.g. `events[3].timestamp`), 503 store unavailable. A batch is
validated in full before anything of it is written: a request is stored entirely or not at all.
"""

_JSON = "application/json"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=_JSON)


def _plain(obj: Any) -> Any:
    """A service/store record as JSON-able data."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return obj


def _write(result: Any) -> dict[str, int]:
    return {"inserted": result.inserted, "updated": result.updated,
            "duplicates": result.duplicates, "skipped": result.skipped}


def _rec_json(resp: Any) -> dict[str, Any]:
    return {
        "rec_id": resp.rec_id,
        "user_id": resp.user_id,
        "items": [it.to_dict() for it in resp.items],
        "model_version": resp.model_version,
        "strategy": resp.strategy,
        "page": resp.page,
        "cold_start_path": resp.cold_start_path,
    }


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "Malformed JSON", 401: "No API key, or an unknown or revoked one",
            403: "The key's role is too weak", 404: "Unknown id", 409: "Conflict",
            413: "Request body too large", 422: "Invalid field (named in `field`)",
            503: "Store unavailable"}
    return {c: {"model": M.ErrorResponse, "description": text[c]} for c in codes}


def _located(cls: type, exc: InvalidInput, where: str = "") -> FieldError:
    """A record's validation error, located: ``events[3].timestamp: …``."""
    message = str(exc)
    first = message.split(" ", 1)[0]
    field = first if first in cls.__dataclass_fields__ else ""  # type: ignore[attr-defined]
    path = f"{where}.{field}" if where and field else where or field
    return FieldError(path, f"{where}: {message}" if where else message)


def _records(cls: type, rows: list[Any], name: str, max_batch: int,
             convert: Callable[[Any], Any]) -> list[Any]:
    """Validate a whole batch before anything is written; errors name ``name[i].field``."""
    if len(rows) > max_batch:
        raise FieldError(name, f"{name}: {len(rows):,} records in one request; at most "
                               f"{max_batch:,} are allowed (split the batch)")
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(convert(row))
        except InvalidInput as exc:
            raise _located(cls, exc, f"{name}[{i}]") from None
    return out


def _record(cls: type, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except InvalidInput as exc:
        raise _located(cls, exc) from None


def create_app(store: str | Store | None = None, *,
               settings: ServerSettings | None = None, engine: Any = None) -> FastAPI:
    """Build the HTTP application.

    Parameters
    ----------
    store : str | Store | None
        A store, or where to open one (see :class:`personae.Store`); ``None`` uses
        ``settings.store``, then ``$PERSONAE_STORE``, then the default data directory.
    settings : ServerSettings | None
        Auth, limits and refresh interval; default :class:`ServerSettings()`.
    engine : personae.service.Engine | None
        The recommendation engine; default ``Engine(store, models_dir=settings.models_dir)``,
        refreshed by a background task every ``settings.refresh_interval`` seconds (new model
        versions, changed items) so that requests never load anything themselves.
    """
    from personae.service.types import Filters, RecommendRequest

    settings = settings or ServerSettings()
    owns_store = not isinstance(store, Store)
    st: Store = store if isinstance(store, Store) else Store(store or settings.store)
    if engine is None:
        from personae.service import Engine

        # The refresh loop below loads new versions and catalogues in a background thread, so
        # the engine's own refresh at the start of each request is turned off: a request
        # never waits for a model to load.
        engine = Engine(st, models_dir=settings.models_dir, refresh_interval=math.inf,
                        retrain_after_forget=settings.retrain_after_forget,
                        retrain_every=settings.retrain_every,
                        text_encoder=settings.text_encoder,
                        text_adapter=settings.text_adapter,
                        llm={"backend": settings.llm_backend, "url": settings.llm_url,
                             "model": settings.llm_model, "timeout": settings.llm_timeout})
        background_refresh = True
    else:
        background_refresh = False
    eng = engine
    metrics = Metrics()
    keys = KeyCache(st, ttl=settings.key_cache_ttl)
    max_batch = settings.max_batch

    # ------------------------------------------------------------------ auth

    reader, writer, admin = _role("reader"), _role("writer"), _role("admin")

    # ------------------------------------------------------------------ lifecycle

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        metrics.set_model_version(eng.model_version)
        _freeze()
        tasks = [asyncio.create_task(_refresh_loop()), asyncio.create_task(_maintenance_loop())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            eng.flush()  # the impressions still queued (a running training job is not waited for)
            if owns_store:
                st.close()

    async def _maintenance_loop() -> None:
        # Stale training jobs, retraining after a user was forgotten (Engine.maintain).
        interval = max(settings.maintenance_interval, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                done = await run_in_threadpool(eng.maintain)
                if done.get("abandoned") or done.get("retrain"):
                    log.info("maintenance: %s", done)
            except Exception:  # the next round tries again; say why in the log
                log.exception("maintenance failed")

    async def _refresh_loop() -> None:
        # Pick up versions activated by another worker, the CLI or a training job.
        interval = max(settings.refresh_interval, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                if await run_in_threadpool(eng.refresh, background_refresh):
                    _freeze()
                metrics.set_model_version(eng.model_version)
            except Exception:  # keep serving the loaded model; say why in the log
                log.exception("model refresh failed; still serving %s", eng.model_version)

    from personae import __version__

    app = FastAPI(
        title="personae", version=__version__, description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "users", "description": "Create, read, forget users."},
            {"name": "items", "description": "The catalogue."},
            {"name": "events", "description": "What users do, in batches."},
            {"name": "recommendations", "description": "Lists for a user or session, similar "
                                                       "items, ranking and rewards."},
            {"name": "models", "description": "Training and model versions (admin)."},
            {"name": "operations", "description": "Health, readiness, metrics."},
        ],
    )
    app.state.store = st
    app.state.engine = eng
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.keys = keys
    install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    # Auth is checked by a middleware over a table of the routes' roles (built below, once the
    # routes exist), not by a FastAPI dependency: it costs a few microseconds per request
    # instead of a dependency resolution, and answers 401/403 before the body is read.
    route_roles: list[tuple[Any, Any, str]] = []
    app.add_middleware(Auth, table=route_roles, keys=keys, enabled=settings.auth)
    app.add_middleware(Timing, metrics=metrics)

    UserId = Annotated[str, Path(min_length=1, max_length=256, description="The user's id.")]
    ItemId = Annotated[str, Path(min_length=1, max_length=256, description="The item's id.")]

    # ------------------------------------------------------------------ users

    @app.put("/v1/users/{user_id}", tags=["users"], response_model=M.WriteOut,
             responses=_responses(401, 403, 409, 413, 422), openapi_extra=writer)
    def put_user(user_id: UserId, body: M.UserIn) -> Response:
        """Create or replace a user (attributes are replaced as a whole)."""
        user = _record(User, lambda: User(user_id, body.attributes,
                                          to_timestamp(body.created_at, "created_at")))
        result = st.upsert_users([user])
        if result.skipped:
            return error_response(409, f"user {user_id!r} was forgotten; their data is refused "
                                       "(lift it with Store.unforget_user if they came back)",
                                  field="user_id")
        return _json(_write(result))

    @app.post("/v1/users:batch", tags=["users"], response_model=M.WriteOut,
              responses=_responses(401, 403, 413, 422), openapi_extra=writer)
    def post_users(body: M.UsersBatch) -> Response:
        """Create or replace many users in one transaction (forgotten users are skipped)."""
        users = _records(User, body.users, "users", max_batch,
                         lambda u: User(u.user_id, u.attributes,
                                        to_timestamp(u.created_at, "created_at")))
        return _json(_write(st.upsert_users(users)))

    @app.get("/v1/users/{user_id}", tags=["users"], response_model=M.UserOut,
             responses=_responses(401, 403, 404), openapi_extra=reader)
    def get_user(user_id: UserId) -> Response:
        return _json(st.get_user(user_id).to_dict())

    @app.delete("/v1/users/{user_id}", tags=["users"], response_model=M.ForgetOut,
                responses=_responses(401, 403, 404), openapi_extra=admin)
    def delete_user(user_id: UserId) -> Response:
        """Forget a user: every row of theirs is deleted and their data is refused later.

        Their per-user state leaves every saved model version at once; the serving model, still
        trained on their events, is retrained within the server's `retrain_after_forget`.
        Each step is written to the audit log.
        """
        report = eng.forget_user(user_id)
        removed = report.pop("model_state_removed")
        return _json({"user_id": user_id, "deleted": report, "model_state_removed": removed})

    @app.get("/v1/audit", tags=["operations"], response_model=M.AuditOut,
             responses=_responses(401, 403, 404, 422), openapi_extra=admin)
    def audit(
        user_id: Annotated[str | None, Query(
            min_length=1, max_length=256,
            description="Only the steps of this (forgotten) user: forgetting, and the model "
                        "state removed.")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> Response:
        """What was done to whose data, and when (forgetting users, the model state removed
        with them, retraining), oldest first. Users appear under a keyed hash, never an id."""
        return _json({"entries": st.audit_log(user_id=user_id, limit=limit)})

    @app.get("/v1/users/{user_id}/profile", tags=["users"], response_model=M.ProfileOut,
             responses=_responses(401, 403, 404), openapi_extra=reader)
    def get_profile(user_id: UserId) -> Response:
        return _json(eng.profile(user_id))

    @app.get("/v1/users/{user_id}/profile/text", tags=["users"], response_model=M.TextProfileOut,
             responses=_responses(401, 403, 404), openapi_extra=reader)
    def get_text_profile(user_id: UserId) -> Response:
        """The profile an assistant is given, as compact text: the behaviour summary (each
        sentence from a figure), recent favourites, dislikes, and the user's own corrections."""
        return _json(eng.text_profile(user_id))

    @app.put("/v1/users/{user_id}/profile/text", tags=["users"], response_model=M.TextProfileOut,
             responses=_responses(401, 403, 404, 422), openapi_extra=writer)
    def correct_text_profile(user_id: UserId, body: M.ProfileCorrectionIn) -> Response:
        """The user corrects their profile: categories they like (lifted in their lists),
        categories they do not want (never shown to them), a note for the assistant. Their
        word overrides what was learned; it replaces earlier corrections."""
        return _json(eng.correct_profile(user_id, likes=body.likes, dislikes=body.dislikes,
                                         note=body.note))

    @app.delete("/v1/users/{user_id}/profile/text", tags=["users"],
                response_model=M.TextProfileOut, responses=_responses(401, 403, 404),
                openapi_extra=writer)
    def delete_text_profile(user_id: UserId) -> Response:
        """The user deletes their text profile: corrections gone, no text for the assistant
        until they correct it again."""
        return _json(eng.delete_text_profile(user_id))

    @app.get("/v1/users/{user_id}/export", tags=["users"], response_model=M.ExportOut,
             responses=_responses(401, 403, 404), openapi_extra=admin)
    def export_user(user_id: UserId) -> Response:
        """Everything stored about a user (for data-access requests)."""
        return _json(st.export_user(user_id))

    # ------------------------------------------------------------------ items

    def _item(item_id: str, body: M.ItemIn) -> Item:
        return Item(item_id, body.title, body.text, body.categories, body.attributes,
                    body.available, to_timestamp(body.created_at, "created_at"))

    @app.put("/v1/items/{item_id}", tags=["items"], response_model=M.WriteOut,
             responses=_responses(401, 403, 413, 422), openapi_extra=writer)
    def put_item(item_id: ItemId, body: M.ItemIn) -> Response:
        """Create or replace an item (every field is replaced)."""
        item = _record(Item, lambda: _item(item_id, body))
        return _json(_write(st.upsert_items([item])))

    @app.post("/v1/items:batch", tags=["items"], response_model=M.WriteOut,
              responses=_responses(401, 403, 413, 422), openapi_extra=writer)
    def post_items(body: M.ItemsBatch) -> Response:
        """Create or replace many items in one transaction."""
        items = _records(Item, body.items, "items", max_batch, lambda i: _item(i.item_id, i))
        return _json(_write(st.upsert_items(items)))

    @app.get("/v1/items/{item_id}", tags=["items"], response_model=M.ItemOut,
             responses=_responses(401, 403, 404), openapi_extra=reader)
    def get_item(item_id: ItemId) -> Response:
        return _json(st.get_item(item_id).to_dict())

    @app.delete("/v1/items/{item_id}", tags=["items"], response_model=M.ItemDeletedOut,
                responses=_responses(401, 403, 404), openapi_extra=writer)
    def delete_item(
        item_id: ItemId, request: Request,
        purge: Annotated[bool, Query(description=(
            "Delete the item and every event on it for good (needs the admin role) instead "
            "of withdrawing it."))] = False,
    ) -> Response:
        """Withdraw an item: it is marked unavailable and no longer recommended.

        Its history stays (it still teaches the models what goes with what); `PUT` it with
        `"available": true` to bring it back. With `purge=true` (admin) the item and its events
        are deleted instead.
        """
        if purge:
            principal = request.scope.get("state", {}).get("principal")
            if principal is None or not principal.allows("admin"):
                return error_response(403, "purge=true deletes data for good and needs the "
                                      "'admin' role", field="purge")
            deleted = st.delete_item(item_id)
            return _json({"item_id": item_id, "available": False, "deleted": deleted})
        st.set_item_availability(item_id, False)
        return _json({"item_id": item_id, "available": False})

    # ------------------------------------------------------------------ events

    def _event(e: M.EventIn, now: float) -> Event:
        context = e.context if e.rec_id is None else {**e.context, "rec_id": e.rec_id}
        ev = Event(e.user_id, e.item_id, e.type, e.value, to_timestamp(e.timestamp),
                   context, e.event_id)
        if ev.timestamp is None:
            # The id is derived before the time is filled in, so that resending the same
            # event without an id or a time is still stored once.
            ev.ensure_id()
            ev.timestamp = now
        return ev

    @app.post("/v1/events", tags=["events"], response_model=M.WriteOut,
              responses=_responses(401, 403, 413, 422), openapi_extra=writer)
    def post_events(body: M.EventsBatch) -> Response:
        """Store a batch of events in one transaction, idempotently by `event_id`.

        Unknown users and items are created bare; events without a `timestamp` get the time of
        arrival; events of forgotten users are counted as `skipped`. The next recommendation
        for the user sees these events (no retraining).
        """
        now = time.time()
        events = _records(Event, body.events, "events", max_batch, lambda e: _event(e, now))
        result = st.add_events(events)
        metrics.ingested(result.inserted, result.duplicates, result.skipped)
        return _json(_write(result))

    # ------------------------------------------------------------------ recommendations

    def _filters(f: M.FiltersIn) -> Any:
        return Filters(categories=f.categories, exclude_categories=f.exclude_categories,
                       attributes=f.attributes, available_only=f.available_only,
                       exclude_seen=f.exclude_seen, exclude=f.exclude)

    @app.post("/v1/recommendations", tags=["recommendations"], response_model=M.RecommendationsOut,
              responses=_responses(401, 403, 404, 413, 422), openapi_extra=reader)
    async def recommend(body: M.RecommendIn) -> Response:
        """Top-k items for a user (or an anonymous session), with filters and context.

        The user's events are read at request time: an event stored before the request counts.
        Pass the returned `rec_id` as `after` for the next page, and as `rec_id` on later events
        to attribute them.
        """
        req = RecommendRequest(user_id=body.user_id, session_items=body.session_items,
                               k=body.k, context=body.context, filters=_filters(body.filters),
                               explain=body.explain, after=body.after,
                               diversity=body.diversity, max_per_category=body.max_per_category,
                               query=body.query, description=body.description)
        resp = eng.recommend(req)
        metrics.served("recommend", resp.strategy)
        return _json(_rec_json(resp))

    @app.get("/v1/items/{item_id}/similar", tags=["recommendations"],
             response_model=M.RecommendationsOut, responses=_responses(401, 403, 404, 422),
             openapi_extra=reader)
    async def similar(
        item_id: ItemId,
        k: Annotated[int, Query(ge=1, le=1000, description="How many items.")] = 10,
        category: Annotated[list[str] | None, Query(
            description="Keep items in any of these categories (repeat the parameter).")] = None,
        available_only: Annotated[bool, Query()] = True,
    ) -> Response:
        """Items like this one."""
        resp = eng.similar(item_id, k=k, filters=Filters(categories=category or None,
                                                         available_only=available_only,
                                                         exclude_seen=False))
        metrics.served("similar", resp.strategy)
        return _json(_rec_json(resp))

    @app.post("/v1/rank", tags=["recommendations"], response_model=M.RecommendationsOut,
              responses=_responses(401, 403, 404, 413, 422), openapi_extra=reader)
    async def rank(body: M.RankIn) -> Response:
        """Order the candidates you send for a user and a context; send the reward later to
        `/v1/rewards` with the returned `rec_id`."""
        resp = eng.rank(body.user_id, list(body.candidates), body.context, k=body.k,
                        policy=body.policy)
        metrics.served("rank", resp.strategy)
        return _json(_rec_json(resp))

    @app.post("/v1/rewards", tags=["recommendations"], response_model=M.RewardOut,
              responses=_responses(401, 403, 404, 413, 422), openapi_extra=writer)
    def reward(body: M.RewardIn) -> Response:
        """The reward for an item of a ranking (or recommendation): stored as an event."""
        event_id = eng.reward(body.rec_id, body.item_id, body.reward, event_type=body.type,
                              ts=body.timestamp, user_id=body.user_id)
        return _json({"event_id": event_id})

    # ------------------------------------------------------------------ models

    @app.post("/v1/models:train", tags=["models"], response_model=M.ModelVersionOut,
              status_code=202, responses=_responses(401, 403, 413, 422), openapi_extra=admin)
    def train(body: M.TrainIn | None = None) -> Response:
        """Start training a new version in the background (202); the old one keeps serving.

        The new version is activated when done only if its validation NDCG@10 is within 1% of
        the active one's; `GET /v1/models` shows its status, metrics and message.
        """
        body = body or M.TrainIn(model="ease")
        mv = eng.train(body.model, body.params or None, background=True)
        return _json(_plain(mv), status=202)

    @app.get("/v1/models", tags=["models"], response_model=M.ModelsOut,
             responses=_responses(401, 403), openapi_extra=reader)
    def models() -> Response:
        """Every model version, newest first, with its validation numbers."""
        return _json({"active": st.active_model_version(),
                      "versions": [_plain(v) for v in eng.models()]})

    @app.post("/v1/models/{version}:activate", tags=["models"], response_model=M.ModelVersionOut,
              responses=_responses(401, 403, 404, 422), openapi_extra=admin)
    def activate(version: Annotated[str, Path(min_length=1, max_length=64)]) -> Response:
        """Serve this version (every worker switches within its refresh interval)."""
        mv = eng.activate(version)
        metrics.set_model_version(eng.model_version)
        return _json(_plain(mv))

    @app.post("/v1/models:rollback", tags=["models"], response_model=M.ModelVersionOut,
              responses=_responses(401, 403, 422), openapi_extra=admin)
    def rollback() -> Response:
        """Serve the version that served before the active one."""
        mv = eng.rollback()
        metrics.set_model_version(eng.model_version)
        return _json(_plain(mv))

    # ------------------------------------------------------------------ operations

    @app.get("/health", tags=["operations"], response_model=M.HealthOut)
    async def health() -> Response:
        """The process is up (no store access)."""
        return _json({"status": "ok"})

    @app.get("/ready", tags=["operations"], response_model=M.ReadyOut,
             responses={503: {"model": M.ReadyOut, "description": "Not ready"}})
    def ready() -> Response:
        """The store answers and a model (or the popularity fallback) is loaded."""
        try:
            st.serving_state()
        except Exception as exc:  # any failure to reach the store means "not ready"
            return _json({"status": "not ready", "reason": f"store: {type(exc).__name__}",
                          "store": st.safe_url}, status=503)
        metrics.set_model_version(eng.model_version)
        if not eng.ready:
            return _json({"status": "not ready", "reason": "no model loaded yet",
                          "store": st.safe_url}, status=503)
        return _json({"status": "ready", "model_version": eng.model_version,
                      "store": st.safe_url})

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}},
             "description": "Prometheus text format"}})
    def prometheus_metrics() -> Response:
        metrics.set_model_version(eng.model_version)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    for route in app.routes:
        role = (getattr(route, "openapi_extra", None) or {}).get(ROLE_KEY)
        if role is not None:
            route_roles.append((route.path_regex, route.methods, role))  # type: ignore[attr-defined]
    _document_security(app)
    return app


def _freeze() -> None:
    """Move what is alive now (the loaded model, catalogue, app) out of the cyclic garbage
    collector's reach: a full collection then scans only per-request objects, instead of
    pausing every request in flight for the ~10⁵ long-lived ones (a p99 latency spike)."""
    gc.collect()
    gc.freeze()


def _role(role: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that needs ``role``: read by the Auth middleware and
    shown in the OpenAPI schema."""
    return {ROLE_KEY: role, "security": [{"bearerAuth": []}, {"apiKeyHeader": []}]}


def _document_security(app: FastAPI) -> None:
    """Add the two ways of sending a key to the OpenAPI schema's security schemes."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "`Authorization: Bearer <secret>`"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": "The same secret in an `X-API-Key` header."},
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker (``personae serve --workers N``)."""
    return create_app(settings=ServerSettings.from_env())
