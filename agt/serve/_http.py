"""What every endpoint of agt serve shares: JSON in and out (exact decimals), OPA's error body, the body-size
cap, and the role an endpoint needs.

Errors have OPA's shape, ``{"code": ..., "message": ...}``, with OPA's codes where OPA has one
(``invalid_parameter``, ``unauthorized``, ``resource_not_found``, ``internal_error``), so an OPA client reports
them as it reports OPA's own."""

from __future__ import annotations

import functools
import json
from typing import Any, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive

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

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> Response:
        response = error_response(self.status, self.code, self.message)
        if self.headers:
            response.headers.update(self.headers)
        return response


def json_bytes(doc: Any) -> bytes:
    """A JSON answer's body: compact, UTF-8, exact decimals."""
    return _json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(json_bytes(doc), status, media_type="application/json")


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


async def read_json(request: Request, limit: int = MAX_BODY_BYTES, *, empty: Any = None, decimals: bool = True) -> Any:
    """The request body as JSON (numbers with a fraction as exact decimals, unless ``decimals`` is False: a signed
    vote's timestamps are floats); BadRequest when it is too large, not UTF-8 JSON, or nested too deeply. An empty
    body is ``empty`` where one is allowed, else BadRequest."""
    check_declared_length(request.headers.get("content-length"), limit)
    body = await receive_body(request.receive, limit)
    if body is None:
        raise ClientDisconnect()
    return parse_json(body, empty=empty, decimals=decimals)


async def receive_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body from ASGI ``receive``, or None when the client went away first; BadRequest 413 as
    soon as it passes ``limit`` bytes (before the rest is read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_declared_length(declared: str | None, limit: int) -> None:
    """BadRequest 413 when a ``Content-Length`` header announces more than ``limit`` bytes (or is no number)."""
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _too_large(limit)


def _too_large(limit: int) -> BadRequest:
    return BadRequest(413, INVALID, f"request body larger than {limit} bytes")


def parse_json(body: bytes, *, empty: Any = None, decimals: bool = True) -> Any:
    """A whole request body as JSON, as :func:`read_json` reads it."""
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


def check_role(credentials: Credentials, authorization: str | None, role: Role) -> None:
    """Nothing when ``authorization`` (the header's value) grants at least ``role``; else the refusal, as a
    BadRequest: 401 without a valid token, 403 with the agent token where the operator's is needed."""
    granted = credentials.role(authorization)
    if granted >= role:
        return
    if granted is Role.NONE:
        raise BadRequest(401, UNAUTHORIZED, "a valid bearer token is required (Authorization: Bearer <token>)",
                         headers={"WWW-Authenticate": 'Bearer realm="agt"'})
    if credentials.operator is None:
        raise BadRequest(403, FORBIDDEN, "operator endpoints are closed: this service was started "
                                         "without --operator-token-file")
    raise BadRequest(403, FORBIDDEN, "this endpoint needs the operator token, not the agent token")


def needs(role: Role) -> Callable[[Endpoint], Endpoint]:
    """An endpoint answers only a caller with at least ``role`` (:func:`check_role`). A BadRequest it raises
    becomes its error response."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                check_role(request.app.state.credentials, request.headers.get("authorization"), role)
                return await endpoint(request)
            except BadRequest as exc:
                return exc.response()

        return guarded

    return wrap
