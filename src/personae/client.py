"""A Python client for the personae HTTP API: :class:`Client` (sync) and :class:`AsyncClient`.

>>> from personae.client import Client
>>> with Client("http://127.0.0.1:8000", api_key="pk_….…") as api:     # doctest: +SKIP
...     api.send_events([{"user_id": "u1", "item_id": "sku-1", "type": "click"}])
...     recs = api.recommend("u1", k=5, context={"device": "mobile"})
...     [it.item_id for it in recs.items]

One method per endpoint, typed results (dataclasses), and one exception per kind of refusal,
carrying the server's message: :class:`Unauthorized` (401), :class:`Forbidden` (403),
:class:`NotFoundError` (404, also a :class:`~personae.errors.NotFound`),
:class:`ValidationError` (400/413/422, also an :class:`~personae.errors.InvalidInput`), all
:class:`PersonaeHTTPError`. Needs httpx (``pip install 'personae[server]'``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from personae.errors import InvalidInput, MissingExtra, NotFound, PersonaeError
from personae.store.core import WriteResult
from personae.store.records import Event, Item, User
from personae.store.serving import ModelVersion

try:
    import httpx
except ModuleNotFoundError:  # pragma: no cover - depends on the install
    httpx = None  # type: ignore[assignment]

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "Forbidden",
    "ModelList",
    "NotFoundError",
    "PersonaeHTTPError",
    "Ready",
    "RecommendedItem",
    "Recommendations",
    "ServerError",
    "Unauthorized",
    "ValidationError",
    "WriteResult",
]

DEFAULT_TIMEOUT = 10.0


# ---------------------------------------------------------------------- errors


class PersonaeHTTPError(PersonaeError):
    """The server refused a request or failed.

    Attributes
    ----------
    status : int
        The HTTP status.
    type : str
        The server's error type (``validation_error``, ``not_found``, …).
    message : str
        The server's explanation.
    field : str | None
        The request field at fault, when the server named one (``events[3].timestamp``).
    """

    def __init__(self, status: int, type: str, message: str, field: str | None = None,
                 body: Any = None) -> None:
        self.status = status
        self.type = type
        self.message = message
        self.field = field
        self.body = body
        super().__init__(f"{status} {type}: {message}")

    def __str__(self) -> str:
        return f"{self.status} {self.type}: {self.message}"


class Unauthorized(PersonaeHTTPError):
    """401: no API key, or an unknown or revoked one."""


class Forbidden(PersonaeHTTPError):
    """403: the key's role does not allow this endpoint."""


class NotFoundError(PersonaeHTTPError, NotFound):
    """404: an unknown user, item, model version or recommendation id."""


class ValidationError(PersonaeHTTPError, InvalidInput):
    """400, 413 or 422: the request was malformed, too large, or a field was invalid."""


class Conflict(PersonaeHTTPError):
    """409: e.g. writing a user who was forgotten."""


class ServerError(PersonaeHTTPError):
    """5xx: the server failed or its store is unavailable."""


_ERRORS: dict[int, type[PersonaeHTTPError]] = {
    400: ValidationError, 401: Unauthorized, 403: Forbidden, 404: NotFoundError,
    409: Conflict, 413: ValidationError, 422: ValidationError,
}


def _raise_for(response: Any) -> None:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        kind, message, where = (str(err.get("type", "error")), str(err.get("message", "")),
                                err.get("field"))
    else:
        kind, message, where = "error", (response.text or response.reason_phrase)[:500], None
    cls = _ERRORS.get(status, ServerError if status >= 500 else PersonaeHTTPError)
    raise cls(status, kind, message, where, body)


# ---------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class RecommendedItem:
    item_id: str
    score: float
    rank: int
    reasons: list[str] | None = None
    source: str = "model"
    explanation: dict[str, Any] | None = None  # with explain: the model's split of the score


@dataclass(frozen=True, slots=True)
class Recommendations:
    """A list from ``recommend``, ``similar`` or ``rank``; keep ``rec_id`` for attribution
    (``rec_id=`` on later events, ``reward``) and for the next page (``after=``)."""

    rec_id: str
    user_id: str | None
    items: list[RecommendedItem]
    model_version: str | None
    strategy: str
    page: int = 1
    cold_start_path: str | None = None  # the cold-start policy's path, for a new user

    @property
    def item_ids(self) -> list[str]:
        return [it.item_id for it in self.items]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recommendations:
        return cls(
            rec_id=data["rec_id"], user_id=data.get("user_id"),
            items=[RecommendedItem(it["item_id"], it["score"], it["rank"], it.get("reasons"),
                                   it.get("source", "model"), it.get("explanation"))
                   for it in data["items"]],
            model_version=data.get("model_version"), strategy=data["strategy"],
            page=data.get("page", 1), cold_start_path=data.get("cold_start_path"))


@dataclass(frozen=True, slots=True)
class ModelList:
    """``GET /v1/models``: the active version and every version, newest first."""

    active: str | None
    versions: list[ModelVersion] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Ready:
    """``GET /ready``: ``ready`` is False (with a ``reason``) while the server cannot serve."""

    ready: bool
    status: str
    model_version: str | None = None
    store: str | None = None
    reason: str | None = None


def _write_result(data: Mapping[str, Any]) -> WriteResult:
    return WriteResult(data.get("inserted", 0), data.get("updated", 0),
                       data.get("duplicates", 0), data.get("skipped", 0))


def _model_version(data: Mapping[str, Any]) -> ModelVersion:
    known = ModelVersion.__dataclass_fields__
    return ModelVersion(**{k: v for k, v in data.items() if k in known})


def _as_dict(record: Any, cls: type) -> dict[str, Any]:
    if isinstance(record, cls):
        return record.to_dict()  # type: ignore[attr-defined]
    if isinstance(record, Mapping):
        return dict(record)
    raise InvalidInput(f"expected a {cls.__name__} or a mapping, got {type(record).__name__}")


def _event_dict(event: Any) -> dict[str, Any]:
    data = _as_dict(event, Event)
    # Event.to_dict() writes every field; leave out the empty ones to keep requests small.
    return {k: v for k, v in data.items() if v is not None and v != {}}


# ---------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    json: Any = None
    params: Any = None
    parse: Any = None  # callable(json) -> result; None returns the JSON as is


def _path_id(value: str) -> str:
    from urllib.parse import quote

    if not isinstance(value, str) or not value:
        raise InvalidInput(f"ids must be non-empty strings, got {value!r}")
    return quote(value, safe="")


def _recommend_body(user_id: str | None, k: int, context: Mapping[str, Any] | None,
                    filters: Mapping[str, Any] | None, session_items: list[str] | None,
                    explain: bool, after: str | None,
                    options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"k": k}
    body.update({key: value for key, value in (options or {}).items() if value is not None})
    if user_id is not None:
        body["user_id"] = user_id
    if session_items is not None:
        body["session_items"] = list(session_items)
    if context:
        body["context"] = dict(context)
    if filters:
        body["filters"] = dict(filters)
    if explain:
        body["explain"] = True
    if after is not None:
        body["after"] = after
    return body


class _Calls:
    """The requests of every endpoint; :class:`Client` and :class:`AsyncClient` send them."""

    @staticmethod
    def health() -> _Call:
        return _Call("GET", "/health", parse=lambda d: d.get("status") == "ok")

    @staticmethod
    def put_user(user_id: str, attributes: Mapping[str, Any] | None,
                 created_at: Any) -> _Call:
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if created_at is not None:
            body["created_at"] = created_at
        return _Call("PUT", f"/v1/users/{_path_id(user_id)}", body, parse=_write_result)

    @staticmethod
    def put_users(users: Iterable[User | Mapping[str, Any]]) -> _Call:
        return _Call("POST", "/v1/users:batch", {"users": [_as_dict(u, User) for u in users]},
                     parse=_write_result)

    @staticmethod
    def get_user(user_id: str) -> _Call:
        return _Call("GET", f"/v1/users/{_path_id(user_id)}",
                     parse=lambda d: User(d["user_id"], d.get("attributes") or {},
                                          d.get("created_at")))

    @staticmethod
    def forget_user(user_id: str) -> _Call:
        return _Call("DELETE", f"/v1/users/{_path_id(user_id)}",
                     parse=lambda d: dict(d["deleted"]))

    @staticmethod
    def profile(user_id: str) -> _Call:
        return _Call("GET", f"/v1/users/{_path_id(user_id)}/profile")

    @staticmethod
    def text_profile(user_id: str, method: str = "GET",
                     body: dict[str, Any] | None = None) -> _Call:
        return _Call(method, f"/v1/users/{_path_id(user_id)}/profile/text", body)

    @staticmethod
    def export_user(user_id: str) -> _Call:
        return _Call("GET", f"/v1/users/{_path_id(user_id)}/export")

    @staticmethod
    def put_item(item: Item | Mapping[str, Any]) -> _Call:
        data = _as_dict(item, Item)
        item_id = data.pop("item_id", None)
        if item_id is None:
            raise InvalidInput("put_item needs an item_id")
        return _Call("PUT", f"/v1/items/{_path_id(item_id)}", data, parse=_write_result)

    @staticmethod
    def put_items(items: Iterable[Item | Mapping[str, Any]]) -> _Call:
        return _Call("POST", "/v1/items:batch", {"items": [_as_dict(i, Item) for i in items]},
                     parse=_write_result)

    @staticmethod
    def get_item(item_id: str) -> _Call:
        return _Call("GET", f"/v1/items/{_path_id(item_id)}", parse=lambda d: Item(**d))

    @staticmethod
    def delete_item(item_id: str, purge: bool = False) -> _Call:
        return _Call("DELETE", f"/v1/items/{_path_id(item_id)}",
                     params={"purge": "true"} if purge else None,
                     parse=lambda d: dict(d["deleted"]) if d.get("deleted") else None)

    @staticmethod
    def send_events(events: Iterable[Event | Mapping[str, Any]]) -> _Call:
        return _Call("POST", "/v1/events", {"events": [_event_dict(e) for e in events]},
                     parse=_write_result)

    @staticmethod
    def recommend(*args: Any) -> _Call:
        return _Call("POST", "/v1/recommendations", _recommend_body(*args),
                     parse=Recommendations.from_json)

    @staticmethod
    def similar(item_id: str, k: int, categories: list[str] | None,
                available_only: bool) -> _Call:
        params: dict[str, Any] = {"k": k}
        if categories:
            params["category"] = list(categories)
        if not available_only:
            params["available_only"] = "false"
        return _Call("GET", f"/v1/items/{_path_id(item_id)}/similar", params=params,
                     parse=Recommendations.from_json)

    @staticmethod
    def rank(candidates: list[str], user_id: str | None, context: Mapping[str, Any] | None,
             k: int | None, policy: str | None = None) -> _Call:
        body: dict[str, Any] = {"candidates": list(candidates)}
        if policy is not None:
            body["policy"] = policy
        if user_id is not None:
            body["user_id"] = user_id
        if context:
            body["context"] = dict(context)
        if k is not None:
            body["k"] = k
        return _Call("POST", "/v1/rank", body, parse=Recommendations.from_json)

    @staticmethod
    def reward(rec_id: str, item_id: str, reward: float, type: str, timestamp: Any) -> _Call:
        body: dict[str, Any] = {"rec_id": rec_id, "item_id": item_id, "reward": reward,
                                "type": type}
        if timestamp is not None:
            body["timestamp"] = timestamp
        return _Call("POST", "/v1/rewards", body, parse=lambda d: str(d["event_id"]))

    @staticmethod
    def train(model: str, params: Mapping[str, Any] | None) -> _Call:
        return _Call("POST", "/v1/models:train", {"model": model, "params": dict(params or {})},
                     parse=_model_version)

    @staticmethod
    def models() -> _Call:
        return _Call("GET", "/v1/models", parse=lambda d: ModelList(
            d.get("active"), [_model_version(v) for v in d.get("versions", [])]))

    @staticmethod
    def activate(version: str) -> _Call:
        return _Call("POST", f"/v1/models/{_path_id(version)}:activate", parse=_model_version)

    @staticmethod
    def rollback() -> _Call:
        return _Call("POST", "/v1/models:rollback", parse=_model_version)


def _ready(response: Any) -> Ready:
    data = response.json()
    return Ready(response.status_code == 200 and data.get("status") == "ready",
                 str(data.get("status")), data.get("model_version"), data.get("store"),
                 data.get("reason"))


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _need_httpx() -> None:
    if httpx is None:
        raise MissingExtra("httpx", "server")


def _finish(call: _Call, response: Any) -> Any:
    if response.status_code >= 400:
        _raise_for(response)
    data = response.json()
    return call.parse(data) if call.parse is not None else data


# ---------------------------------------------------------------------- clients


class Client:
    """A synchronous client (``httpx.Client`` underneath, one connection pool).

    Parameters
    ----------
    base_url : str
        Where the server listens, e.g. ``http://127.0.0.1:8000``.
    api_key : str | None
        The secret from ``personae keys create``; ``None`` for a ``--no-auth`` server.
    timeout : float, default 10.0
        Seconds per request.
    transport : httpx.BaseTransport | None
        For tests (e.g. ``httpx.ASGITransport``/``MockTransport``).
    """

    def __init__(self, base_url: str, api_key: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, transport: Any = None) -> None:
        _need_httpx()
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=_headers(api_key),
                                  timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: _Call) -> Any:
        response = self._http.request(call.method, call.path, json=call.json,
                                      params=call.params)
        return _finish(call, response)

    # -- operations
    def health(self) -> bool:
        """True when the process answers."""
        return bool(self._send(_Calls.health()))

    def ready(self) -> Ready:
        """Whether the store answers and a model (or the popularity fallback) is loaded."""
        return _ready(self._http.get("/ready"))

    # -- users
    def put_user(self, user_id: str, attributes: Mapping[str, Any] | None = None,
                 created_at: Any = None) -> WriteResult:
        """Create or replace a user."""
        return self._send(_Calls.put_user(user_id, attributes, created_at))

    def put_users(self, users: Iterable[User | Mapping[str, Any]]) -> WriteResult:
        """Create or replace many users, in one transaction (at most the server's batch limit)."""
        return self._send(_Calls.put_users(users))

    def get_user(self, user_id: str) -> User:
        return self._send(_Calls.get_user(user_id))

    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete every row of a user (admin); returns rows deleted per table."""
        return self._send(_Calls.forget_user(user_id))

    def profile(self, user_id: str) -> dict[str, Any]:
        return self._send(_Calls.profile(user_id))

    def text_profile(self, user_id: str) -> dict[str, Any]:
        """The compact text an assistant is given about the user, with their corrections."""
        return self._send(_Calls.text_profile(user_id))

    def correct_profile(self, user_id: str, *, likes: list[str] | None = None,
                        dislikes: list[str] | None = None,
                        note: str | None = None) -> dict[str, Any]:
        """The user's own word: liked categories lifted, disliked ones never shown."""
        body = {k: v for k, v in (("likes", likes), ("dislikes", dislikes), ("note", note))
                if v is not None}
        return self._send(
            _Calls.text_profile(user_id, "PUT", body))

    def delete_text_profile(self, user_id: str) -> dict[str, Any]:
        return self._send(
            _Calls.text_profile(user_id, "DELETE"))

    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored about a user (admin)."""
        return self._send(_Calls.export_user(user_id))

    # -- items
    def put_item(self, item: Item | Mapping[str, Any]) -> WriteResult:
        """Create or replace an item (an :class:`~personae.Item` or a mapping with item_id)."""
        return self._send(_Calls.put_item(item))

    def put_items(self, items: Iterable[Item | Mapping[str, Any]]) -> WriteResult:
        return self._send(_Calls.put_items(items))

    def get_item(self, item_id: str) -> Item:
        return self._send(_Calls.get_item(item_id))

    def delete_item(self, item_id: str, *, purge: bool = False) -> dict[str, int] | None:
        """Mark an item unavailable (its history is kept); with ``purge`` (admin) delete it
        and its events for good and return the rows deleted per table."""
        return self._send(_Calls.delete_item(item_id, purge))

    # -- events
    def send_events(self, events: Iterable[Event | Mapping[str, Any]]) -> WriteResult:
        """Store a batch of events (idempotent by event_id) in one transaction."""
        return self._send(_Calls.send_events(events))

    # -- recommendations
    def recommend(self, user_id: str | None = None, *, k: int = 10,
                  context: Mapping[str, Any] | None = None,
                  filters: Mapping[str, Any] | None = None,
                  session_items: list[str] | None = None, explain: bool = False,
                  after: str | None = None, diversity: float | None = None,
                  max_per_category: int | None = None, query: str | None = None,
                  description: str | None = None) -> Recommendations:
        """Top-k items for a user (or an anonymous session given ``session_items``).

        ``filters`` keys: categories, exclude_categories, attributes, available_only,
        exclude_seen, exclude. ``after``: a previous ``rec_id``, for the next page.
        ``diversity`` (0–1) re-ranks by maximal marginal relevance; ``max_per_category`` caps
        each category. ``query``: a request in words, combined with the user's history;
        ``description``: a self-description, for a user with little history.
        """
        return self._send(_Calls.recommend(
            user_id, k, context, filters, session_items, explain, after,
            {"diversity": diversity, "max_per_category": max_per_category, "query": query,
             "description": description}))

    def similar(self, item_id: str, k: int = 10, *, categories: list[str] | None = None,
                available_only: bool = True) -> Recommendations:
        return self._send(
            _Calls.similar(item_id, k, categories, available_only))

    def rank(self, candidates: list[str], user_id: str | None = None, *,
             context: Mapping[str, Any] | None = None, k: int | None = None,
             policy: str | None = None) -> Recommendations:
        """Order your candidates for a user and context; reward later with the ``rec_id``.
        ``policy``: "model", or a contextual bandit ("linucb", "thompson") that explores."""
        return self._send(_Calls.rank(candidates, user_id, context, k, policy))

    def reward(self, rec_id: str, item_id: str, reward: float, *, type: str = "reward",
               timestamp: Any = None) -> str:
        """Record the reward of an item of a ranking; returns the stored event's id."""
        return self._send(
            _Calls.reward(rec_id, item_id, reward, type, timestamp))

    # -- models
    def train(self, model: str = "ease", params: Mapping[str, Any] | None = None
              ) -> ModelVersion:
        """Start training in the background (admin); poll :meth:`models` for the outcome."""
        return self._send(_Calls.train(model, params))

    def models(self) -> ModelList:
        return self._send(_Calls.models())

    def activate(self, version: str) -> ModelVersion:
        return self._send(_Calls.activate(version))

    def rollback(self) -> ModelVersion:
        return self._send(_Calls.rollback())


class AsyncClient:
    """The asynchronous twin of :class:`Client` (``httpx.AsyncClient``); same methods,
    awaited. Use ``async with AsyncClient(...) as api:``."""

    def __init__(self, base_url: str, api_key: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, transport: Any = None) -> None:
        _need_httpx()
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"),
                                       headers=_headers(api_key), timeout=timeout,
                                       transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: _Call) -> Any:
        response = await self._http.request(call.method, call.path, json=call.json,
                                            params=call.params)
        return _finish(call, response)

    async def health(self) -> bool:
        return bool(await self._send(_Calls.health()))

    async def ready(self) -> Ready:
        return _ready(await self._http.get("/ready"))

    async def put_user(self, user_id: str, attributes: Mapping[str, Any] | None = None,
                       created_at: Any = None) -> WriteResult:
        return await self._send(_Calls.put_user(user_id, attributes, created_at))

    async def put_users(self, users: Iterable[User | Mapping[str, Any]]) -> WriteResult:
        return await self._send(_Calls.put_users(users))

    async def get_user(self, user_id: str) -> User:
        return await self._send(_Calls.get_user(user_id))

    async def forget_user(self, user_id: str) -> dict[str, int]:
        return await self._send(_Calls.forget_user(user_id))

    async def profile(self, user_id: str) -> dict[str, Any]:
        return await self._send(_Calls.profile(user_id))

    async def text_profile(self, user_id: str) -> dict[str, Any]:
        return await self._send(_Calls.text_profile(user_id))

    async def correct_profile(self, user_id: str, *, likes: list[str] | None = None,
                              dislikes: list[str] | None = None,
                              note: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in (("likes", likes), ("dislikes", dislikes), ("note", note))
                if v is not None}
        return await self._send(
            _Calls.text_profile(user_id, "PUT", body))

    async def delete_text_profile(self, user_id: str) -> dict[str, Any]:
        return await self._send(
            _Calls.text_profile(user_id, "DELETE"))

    async def export_user(self, user_id: str) -> dict[str, Any]:
        return await self._send(_Calls.export_user(user_id))

    async def put_item(self, item: Item | Mapping[str, Any]) -> WriteResult:
        return await self._send(_Calls.put_item(item))

    async def put_items(self, items: Iterable[Item | Mapping[str, Any]]) -> WriteResult:
        return await self._send(_Calls.put_items(items))

    async def get_item(self, item_id: str) -> Item:
        return await self._send(_Calls.get_item(item_id))

    async def delete_item(self, item_id: str, *,
                          purge: bool = False) -> dict[str, int] | None:
        return await self._send(_Calls.delete_item(item_id, purge))

    async def send_events(self, events: Iterable[Event | Mapping[str, Any]]) -> WriteResult:
        return await self._send(_Calls.send_events(events))

    async def recommend(self, user_id: str | None = None, *, k: int = 10,
                        context: Mapping[str, Any] | None = None,
                        filters: Mapping[str, Any] | None = None,
                        session_items: list[str] | None = None, explain: bool = False,
                        after: str | None = None, diversity: float | None = None,
                        max_per_category: int | None = None, query: str | None = None,
                        description: str | None = None) -> Recommendations:
        return await self._send(_Calls.recommend(
            user_id, k, context, filters, session_items, explain, after,
            {"diversity": diversity, "max_per_category": max_per_category, "query": query,
             "description": description}))

    async def similar(self, item_id: str, k: int = 10, *, categories: list[str] | None = None,
                      available_only: bool = True) -> Recommendations:
        return await self._send(
            _Calls.similar(item_id, k, categories, available_only))

    async def rank(self, candidates: list[str], user_id: str | None = None, *,
                   context: Mapping[str, Any] | None = None,
                   k: int | None = None, policy: str | None = None) -> Recommendations:
        return await self._send(
            _Calls.rank(candidates, user_id, context, k, policy))

    async def reward(self, rec_id: str, item_id: str, reward: float, *, type: str = "reward",
                     timestamp: Any = None) -> str:
        return await self._send(
            _Calls.reward(rec_id, item_id, reward, type, timestamp))

    async def train(self, model: str = "ease", params: Mapping[str, Any] | None = None
                    ) -> ModelVersion:
        return await self._send(_Calls.train(model, params))

    async def models(self) -> ModelList:
        return await self._send(_Calls.models())

    async def activate(self, version: str) -> ModelVersion:
        return await self._send(_Calls.activate(version))

    async def rollback(self) -> ModelVersion:
        return await self._send(_Calls.rollback())
