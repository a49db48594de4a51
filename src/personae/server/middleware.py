"""Two small pure-ASGI middlewares (Starlette's BaseHTTPMiddleware costs far more per request).

- :class:`BodyLimit`: a request body over ``max_bytes`` gets 413 before it is read (by its
  Content-Length), or as soon as a chunked body passes the limit.
- :class:`Auth`: the API key of a request, checked against the role its route needs (a table
  built from the routes), before the route reads the body: 401 or 403, or the caller's
  :class:`~personae.server.auth.Principal` in ``scope["state"]["principal"]``.
- :class:`Timing`: counts requests by route *template* (``/v1/users/{user_id}``, never the raw
  path, so the number of series stays bounded) and status, and records their latency.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personae.server.auth import LOCAL_ADMIN, KeyCache, secret_from_headers
from personae.server.errors import error_response
from personae.server.metrics import Metrics


def _too_large(max_bytes: int) -> str:
    return (f"the request body is larger than {max_bytes:,} bytes; split the batch into "
            "smaller requests")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length > self.max_bytes:
                    await error_response(413, _too_large(self.max_bytes))(scope, receive, send)
                    return
                if length >= 0:  # the server enforces Content-Length: nothing more to count
                    await self.app(scope, receive, send)
                    return
                break
        max_bytes = self.max_bytes
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    # Raised inside the endpoint's body read: the app's handler answers 413.
                    raise HTTPException(413, _too_large(max_bytes))
            return message

        await self.app(scope, limited_receive, send)


class Timing:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(template, scope["method"], status,
                                         time.perf_counter() - start)


_NO_KEY = ("an API key is required: send 'Authorization: Bearer <secret>' or "
           "'X-API-Key: <secret>'")


class Auth:
    def __init__(self, app: ASGIApp, table: list[tuple[Any, Any, str]], keys: KeyCache,
                 enabled: bool = True) -> None:
        self.app = app
        self.table = table  # (path regex, methods, role), filled once the routes exist
        self.keys = keys
        self.enabled = enabled

    def _role(self, path: str, method: str) -> str | None:
        for regex, methods, role in self.table:
            if regex.match(path) and (methods is None or method in methods):
                return role
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        role = self._role(scope["path"], scope["method"])
        if role is None:  # open routes, unknown paths (404) and wrong methods (405)
            await self.app(scope, receive, send)
            return
        if not self.enabled:
            scope.setdefault("state", {})["principal"] = LOCAL_ADMIN
            await self.app(scope, receive, send)
            return
        authorization = x_api_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                x_api_key = value.decode("latin-1")
        secret = secret_from_headers(authorization, x_api_key)
        if not secret:
            await error_response(401, _NO_KEY, headers={"WWW-Authenticate": "Bearer"})(
                scope, receive, send)
            return
        principal = await _lookup(self.keys, secret)
        if principal is None:
            await error_response(401, "unknown or revoked API key",
                                 headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        if not principal.allows(role):
            await error_response(
                403, f"this endpoint needs the {role!r} role; key {principal.key_id} "
                     f"({principal.name!r}) is a {principal.role!r}")(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _lookup(keys: KeyCache, secret: str) -> Any:
    cached = keys.cached(secret)
    if cached is not None:
        return cached[0]
    # a miss asks the store: off the event loop
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(keys.lookup, secret)
