"""Every error as one JSON shape: ``{"error": {"type", "message", "field"}}``.

Bad input is always a 4xx naming the field and the problem: pydantic's validation errors (422,
malformed JSON 400), :class:`~personae.errors.InvalidInput` (422),
:class:`~personae.errors.NotFound` (404), HTTP errors raised by the app or by Starlette (401,
403, 404, 405, 413). A store that cannot be reached answers 503. Anything else is a bug: 500,
with the traceback in the server's log and not in the response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from personae.errors import InvalidInput, NotFound, StoreError

log = logging.getLogger("personae.server")

_TYPES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
          415: "unsupported_media_type", 422: "invalid_input", 503: "unavailable"}


class FieldError(InvalidInput):
    """Bad input located at one field of the request (``field`` is e.g. ``events[3].type``).

    The message is used as given: it should start with where the problem is.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def error_response(status: int, message: str, *, type: str | None = None,
                   field: str | None = None, errors: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"type": type or _TYPES.get(status, "error"), "message": message,
                            "field": field}
    if errors is not None:
        body["errors"] = errors
    return Response(orjson.dumps({"error": body}), status_code=status,
                    media_type="application/json", headers=headers)


def field_path(loc: Sequence[Any]) -> str:
    """pydantic's ``("body", "events", 3, "user_id")`` → ``events[3].user_id``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            detail = ctx.get("error", err.get("msg", "invalid JSON"))
            pos = err.get("loc", ("body", "?"))[-1]
            return error_response(400, f"the request body is not valid JSON: {detail} "
                                       f"(at character {pos})", type="malformed_json")
    items = []
    for err in errors[:50]:
        loc = err.get("loc", ())
        path = field_path(loc)
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing" and tuple(loc) == ("body",):
            msg, path = "a JSON request body is required", ""
        got = err.get("input")
        if err.get("type") not in ("missing", "json_invalid") and _short(got):
            msg = f"{msg}, got {got!r}"
        items.append({"field": path or None, "message": msg, "type": err.get("type")})
    first = items[0] if items else {"field": None, "message": "invalid request"}
    where = f"{first['field']}: " if first["field"] else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return error_response(422, f"{where}{first['message']}{more}", type="validation_error",
                          field=first["field"], errors=items)


def _short(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(repr(value)) <= 80


def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; see /docs for the API"
    return error_response(exc.status_code, message,
                          headers=dict(exc.headers) if exc.headers else None)


#: A message that starts with a field path names the field: "filters.exclude[2] must be …".
_LEADING_PATH = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*|\[[^\]\s]{1,40}\])*)\s")
_REQUEST_FIELDS = frozenset({
    "user_id", "item_id", "event_id", "rec_id", "k", "context", "filters", "after",
    "session_items", "candidates", "reward", "timestamp", "type", "value", "attributes",
    "categories", "title", "text", "available", "created_at", "model", "params", "explain",
})


def _guess_field(message: str) -> str | None:
    match = _LEADING_PATH.match(message)
    if match is None:
        return None
    path = match.group(1)
    root = re.split(r"[.\[]", path, maxsplit=1)[0]
    return path if root in _REQUEST_FIELDS else None


def _invalid_input(_: Request, exc: Exception) -> Response:
    field = getattr(exc, "field", None) or _guess_field(str(exc))
    return error_response(422, str(exc), type="invalid_input", field=field)


def _not_found(_: Request, exc: Exception) -> Response:
    return error_response(404, str(exc), field=getattr(exc, "field", None))


def _unavailable(_: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", exc)
    return error_response(503, f"the store is unavailable: {type(exc).__name__}; retry later",
                          headers={"Retry-After": "1"})


def _internal(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal error; the server log has the details",
                          type="internal_error")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(StoreError, _unavailable)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(PoolTimeout, _unavailable)
    app.add_exception_handler(Exception, _internal)
