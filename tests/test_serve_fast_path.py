"""agt serve's decision fast path (agt.serve.app.Service: POST /v1/data/agt/decision answered ahead of Starlette's
middleware and routing, by decision_api.decide_request) against the slow path it replaces: the same endpoint written
the Starlette way, ``@needs(Role.AGENT)`` + ``read_json`` + ``json_response``, routed by Starlette.

For any request (tokens right, wrong, missing or malformed; declared lengths honest, lying, huge or not numbers;
bodies valid, invalid, not JSON, not objects, empty, split over several ASGI messages, or over the size cap) the
two must answer with the same status, headers and body: the fast path refuses exactly what the slow path refuses.
The ASGI apps are called directly (no server), so each example costs microseconds."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serve_helpers import AGENT_TOKEN, OPERATOR_TOKEN, starter_governor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agt.serve import decision_api
from agt.serve._http import MAX_BODY_BYTES, json_object, json_response, needs, read_json
from agt.serve.app import create_app
from agt.serve.auth import Credentials, Role
from agt.serve.wire import opa_result

PATH = decision_api.DECISION_PATH
RM_ROOT = {"agent": {"id": "a"}, "action": {"tool": "run_shell", "params": {"command": "rm -rf /"}}}
READ = {"agent": {"id": "a"}, "action": {"tool": "read_file", "params": {"path": "/ws/a/x"}}}
EMAIL = {"agent": {"id": "a"}, "action": {"tool": "send_email", "params": {"to": "x@example.com"}}}


@needs(Role.AGENT)
async def _reference(request: Request) -> Response:
    """The decision endpoint as the other endpoints are written (and as it was before the fast path)."""
    body = json_object(await read_json(request))
    engine = request.app.state.governor.engine
    return json_response({"result": opa_result(decision_api.decide(engine, body.get("input")))})


@pytest.fixture(scope="module", params=[Credentials(AGENT_TOKEN.encode(), OPERATOR_TOKEN.encode()), Credentials()],
                ids=["tokens", "open"])
def apps(request):
    gov = starter_governor()
    fast = create_app(gov, credentials=request.param)
    slow = Starlette(routes=[Route(PATH, _reference, methods=["POST"])])
    slow.state.governor, slow.state.credentials = gov, request.param
    loop = asyncio.new_event_loop()
    yield fast, slow, loop
    loop.close()
    gov.close()


def _call(loop: asyncio.AbstractEventLoop, app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes],
          *, method: str = "POST", path: str = PATH, root_path: str = "", sent: list | None = None) -> tuple[int, list, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": root_path, "query_string": b"", "headers": headers,
             "server": None, "client": None, "state": {}}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    messages = messages or [{"type": "http.request", "body": b"", "more_body": False}]
    sent = [] if sent is None else sent

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    loop.run_until_complete(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], list(start["headers"]), body


def _same(apps, headers, chunks) -> tuple[int, list, bytes]:
    fast, slow, loop = apps
    answer = _call(loop, fast, headers, chunks)
    assert answer == _call(loop, slow, headers, chunks)
    return answer


def _doc_bytes(doc: Any) -> bytes:
    return json.dumps({"input": doc}).encode()


_documents = st.sampled_from([RM_ROOT, READ, EMAIL, {"agent": {"id": ""}, "action": {"tool": "x"}}, {"agent": {"id": "a"}},
                              {"action": {"tool": "x"}}, {"agent": {"id": "a"}, "action": {"tool": 5}}, None, [], "x", 1])
_bodies = st.one_of(
    _documents.map(_doc_bytes),
    _documents.map(lambda d: json.dumps(d).encode()),  # no "input": the body is the document itself
    st.sampled_from([b"", b"   ", b"{", b"null", b"[1]", b'"x"', b"\xff\xfe", b"{}", b'{"input": 1.5e3}', b"[" * 5000 + b"]" * 5000]),
    st.binary(max_size=64),
)
_tokens = st.sampled_from([None, f"Bearer {AGENT_TOKEN}", f"Bearer {OPERATOR_TOKEN}", f"bearer  {AGENT_TOKEN} ", "Bearer",
                           "Bearer wrong-token-wrong-token", f"Basic {AGENT_TOKEN}", f"Bearer {AGENT_TOKEN}\u00e9"])


@settings(max_examples=300, deadline=None)
@given(body=_bodies, token=_tokens, split=st.integers(1, 4), length=st.sampled_from(["honest", "none", "huge", "nan", "zero"]),
       twice=st.booleans())
def test_the_fast_path_answers_every_request_as_the_slow_path_does(apps, body, token, split, length, twice):
    headers: list[tuple[bytes, bytes]] = [(b"host", b"agt"), (b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", token.encode("utf-8")))
        if twice:  # a second Authorization header: the first one counts, on both paths
            headers.append((b"authorization", f"Bearer {AGENT_TOKEN}".encode()))
    declared = {"honest": str(len(body)), "huge": str(MAX_BODY_BYTES + 1), "nan": "12x", "zero": "0"}.get(length)
    if declared is not None:
        headers.append((b"content-length", declared.encode()))
    step = max(1, len(body) // split)
    chunks = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
    _same(apps, headers, chunks)


def test_a_body_over_the_cap_is_refused_alike_when_no_length_is_declared(apps):
    auth = [(b"authorization", f"Bearer {AGENT_TOKEN}".encode())]
    status, _, body = _same(apps, auth, [b" " * (MAX_BODY_BYTES // 2)] * 3)
    assert status == 413 and b"larger" in body


def test_a_refused_token_gets_the_same_401_and_challenge(apps):
    fast, _, _ = apps
    if fast.state.credentials.open:
        pytest.skip("no token configured: every caller is an agent")
    status, headers, _ = _same(apps, [(b"authorization", b"Bearer nope")], [_doc_bytes(READ)])
    assert status == 401 and (b"www-authenticate", b'Bearer realm="agt"') in headers


def test_a_decision_is_the_engines_and_travels_as_starlettes_json_response(apps):
    status, headers, body = _same(apps, [(b"authorization", f"Bearer {AGENT_TOKEN}".encode())], [_doc_bytes(RM_ROOT)])
    assert status == 200
    assert headers == [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    assert [r["id"] for r in json.loads(body)["result"]["reasons"]] == ["block-recursive-delete"]


@pytest.mark.parametrize("method,path,root_path", [("GET", PATH, ""), ("PUT", PATH, ""), ("POST", PATH + "/", ""),
                                                    ("POST", "/prefix" + PATH, "/prefix")])
def test_what_the_fast_path_does_not_take_goes_through_routing(apps, method, path, root_path):
    fast, _, loop = apps
    auth = [(b"authorization", f"Bearer {AGENT_TOKEN}".encode())]
    status, _, body = _call(loop, fast, auth, [_doc_bytes(READ)], method=method, path=path, root_path=root_path)
    routed = _call(loop, Starlette.__call__.__get__(fast), auth, [_doc_bytes(READ)], method=method, path=path,
                   root_path=root_path)
    assert (status, body) == routed[::2]


def test_an_exception_in_the_fast_path_answers_500_and_propagates(apps, monkeypatch):
    fast, _, loop = apps

    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(decision_api, "opa_result", broken)
    sent: list[dict] = []
    with pytest.raises(RuntimeError, match="boom"):  # so the server logs it, as Starlette's ServerErrorMiddleware does
        _call(loop, fast, [(b"authorization", f"Bearer {AGENT_TOKEN}".encode())], [_doc_bytes(READ)], sent=sent)
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"]) == {"code": "internal_error", "message": "RuntimeError: boom"}
