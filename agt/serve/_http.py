"""What every endpoint of agt serve shares: JSON in and out (exact decimals), OPA's error body, the body-size
cap, and the role an endpoint needs.

Errors have OPA's shape, ``{"code": ..., "message": ...}``, with OPA's codes where OPA has one
(``invalid_parameter``, ``unauthorized``, ``resource_not_found``, ``internal_error``), so an OPA client reports
them as it reports OPA's own."""

from __future__ import annotations

import functools
import json
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from agt import _json
from agt.serve.auth import Credentials, Role

MAX_BODY_BYTES = 1 << 20
"""One action is a few KB; a request body beyond this is refused before it is parsed."""
MAX_BATCH_BODY_BYTES = 16 << 20

INVALID, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, UNAVAILABLE, INTERNAL = (
    "invalid_parameter", "unauthorized", "forbidden", "resource_not_found", "conflict", "unavailable", "internal_error",
)

Endpoint = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """The request cannot be served as sent: an HTTP error with OPA's body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(_json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), status,
                    media_type="application/json")


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


async def read_json(request: Request, limit: int = MAX_BODY_BYTES, *, empty: Any = None, decimals: bool = True) -> Any:
    """The request body as JSON (numbers with a fraction as exact decimals, unless ``decimals`` is False: a signed
    vote's timestamps are floats); BadRequest when it is too large, not UTF-8 JSON, or nested too deeply. An empty
    body is ``empty`` where one is allowed, else BadRequest."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(413, INVALID, f"request body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, INVALID, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        if empty is not None:
            return empty
        raise BadRequest(400, INVALID, "request body is empty; send a JSON object")
    try:
        return _json.loads(body) if decimals else json.loads(body)
    except RecursionError:
        raise BadRequest(400, INVALID, "request body is nested too deeply to parse") from None
    except UnicodeDecodeError:
        raise BadRequest(400, INVALID, "request body is not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(400, INVALID, f"request body is not JSON: {exc}") from None


def json_object(doc: Any, what: str = "request body") -> dict:
    if not isinstance(doc, dict):
        raise BadRequest(400, INVALID, f"{what} must be a JSON object, not {type(doc).__name__}")
    return doc


def needs(role: Role) -> Callable[[Endpoint], Endpoint]:
    """An endpoint answers only a caller with at least ``role``: 401 without a valid token, 403 with the agent
    token where the operator's is needed. A BadRequest it raises becomes its error response."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            credentials: Credentials = request.app.state.credentials
            granted = credentials.role(request.headers.get("authorization"))
            if granted < role:
                if granted is Role.NONE:
                    return _unauthorized("a valid bearer token is required (Authorization: Bearer <token>)")
                if credentials.operator is None:
                    return error_response(403, FORBIDDEN, "operator endpoints are closed: this service was started "
                                                          "without --operator-token-file")
                return error_response(403, FORBIDDEN, "this endpoint needs the operator token, not the agent token")
            try:
                return await endpoint(request)
            except BadRequest as exc:
                return error_response(exc.status, exc.code, exc.message)

        return guarded

    return wrap


def _unauthorized(message: str) -> Response:
    response = error_response(401, UNAUTHORIZED, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="agt"'
    return response
