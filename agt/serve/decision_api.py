"""OPA's decision API over agt's engines: any OPA client can ask agt's yaml or cedar engine unchanged.

* ``POST /v1/data/agt/decision`` ``{"input": <action document>}`` answers ``{"result": <decision>}``, the
  decision in exactly the shape the agt Rego library's ``data.agt.decision`` gives:
  ``{"effect", "reasons": [{"id", "message"}], "approvers", "matched"}``.
* ``POST /v1/data/agt/batch`` ``{"input": {"inputs": [<action>, ...]}}`` answers ``{"result": [<decision>, ...]}``,
  one per input in order, as rego/agt/batch.rego does (open-source OPA has no batch endpoint; this rule is agt's).
* ``GET /health``: OPA's liveness check, ``200 {}``; ``500 {"error": ...}`` when the audit log cannot record
  (the runtime API would deny every call).

Decisions here are stateless, as OPA's are: the engine decides the document it is given, with no counters,
trust or approvals (those belong to the runtime API, which builds the document itself). A body that is not a
JSON object is OPA's ``400 invalid_parameter``; an input that is not a valid action document is decided as
what it is, a fail-closed deny naming the field (an OPA client enforces a result; it may not expect an error).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agt.action import Action
from agt.decision import Decision, fail_closed
from agt.engines import Engine
from agt.errors import ActionError
from agt.runtime.audit import sink_health
from agt.serve._http import (
    INVALID,
    MAX_BATCH_BODY_BYTES,
    MAX_BODY_BYTES,
    BadRequest,
    check_declared_length,
    check_role,
    json_bytes,
    json_object,
    json_response,
    needs,
    parse_json,
    read_json,
    receive_body,
)
from agt.serve.auth import Role
from agt.serve.wire import opa_result

DECISION_PATH = "/v1/data/agt/decision"
BATCH_PATH = "/v1/data/agt/batch"
IN_PROCESS_ENGINES = frozenset({"yaml", "cedar"})
"""Engines that decide in microseconds without I/O: they run on the event loop. Any other (opa, over HTTP) runs
in the thread pool, so one slow decision does not stall every connection."""


def action_of(doc: Any, engine: Engine) -> Action | Decision:
    """The action ``doc`` describes, or the fail-closed deny saying why it describes none."""
    if doc is None:
        return fail_closed("invalid action: the request has no input (send {\"input\": <action document>})",
                           engine=engine.name, revision=engine.revision)
    try:
        return Action.from_dict(doc)
    except ActionError as exc:
        return fail_closed(f"invalid action: {exc}", engine=engine.name, revision=engine.revision)
    except Exception as exc:  # noqa: BLE001 - a document that breaks the parser still gets a decision: deny
        return fail_closed(f"invalid action: {type(exc).__name__}: {exc}", engine=engine.name, revision=engine.revision)


def decide(engine: Engine, doc: Any) -> Decision:
    action = action_of(doc, engine)
    if isinstance(action, Decision):
        return action
    try:
        return engine.evaluate(action)
    except Exception as exc:  # noqa: BLE001 - an engine that raises still denies
        return fail_closed(f"{type(exc).__name__}: {exc}", engine=engine.name, revision=engine.revision)


def decide_many(engine: Engine, docs: list[Any]) -> list[Decision]:
    parsed = [action_of(doc, engine) for doc in docs]
    todo = [i for i, a in enumerate(parsed) if isinstance(a, Action)]
    try:
        decided = engine.evaluate_many([parsed[i] for i in todo])  # type: ignore[misc]
        if len(decided) != len(todo):
            raise RuntimeError(f"the engine answered {len(decided)} decisions for {len(todo)} actions")
    except Exception as exc:  # noqa: BLE001 - an engine that raises still denies
        decided = [fail_closed(f"{type(exc).__name__}: {exc}", engine=engine.name, revision=engine.revision)] * len(todo)
    out: list[Decision] = [a for a in parsed]  # type: ignore[misc]
    for i, d in zip(todo, decided):
        out[i] = d
    return out


async def _run(engine: Engine, fn: Any, *args: Any) -> Any:
    if engine.name in IN_PROCESS_ENGINES:
        return fn(engine, *args)
    return await run_in_threadpool(fn, engine, *args)


_JSON = b"application/json"


async def decide_request(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/data/agt/decision``, the sidecar's hot endpoint, as a plain ASGI app: its route and the app's
    dispatch ahead of routing (agt.serve.app.Service) both call it. It does what ``@needs(Role.AGENT)`` and
    :func:`read_json` do for the other endpoints, through the same checks (check_role, check_declared_length,
    receive_body, parse_json), without building a Request and a Response per decision."""
    state = scope["app"].state
    authorization = declared = None
    for name, value in scope["headers"]:  # the first of each, as Request.headers.get reads them
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"content-length" and declared is None:
            declared = value.decode("latin-1")
    try:
        check_role(state.credentials, authorization, Role.AGENT)
        check_declared_length(declared, MAX_BODY_BYTES)
        raw = await receive_body(receive, MAX_BODY_BYTES)
        if raw is None:
            return  # the client went away: nobody to answer
        body = json_object(parse_json(raw))
    except BadRequest as exc:
        await exc.response()(scope, receive, send)
        return
    engine: Engine = state.governor.engine
    decision = await _run(engine, decide, body.get("input"))
    answer = json_bytes({"result": opa_result(decision)})
    # The headers Starlette's Response(media_type="application/json") writes, in its order.
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(answer)), (b"content-type", _JSON)]})
    await send({"type": "http.response.body", "body": answer})


@needs(Role.AGENT)
async def batch_endpoint(request: Request) -> Response:
    body = json_object(await read_json(request, MAX_BATCH_BODY_BYTES))
    batch = body.get("input")
    inputs = batch.get("inputs") if isinstance(batch, dict) else None
    if not isinstance(inputs, list):
        raise BadRequest(400, INVALID, 'data.agt.batch takes {"input": {"inputs": [<action>, ...]}}')
    engine: Engine = request.app.state.governor.engine
    decisions = await _run(engine, decide_many, inputs)
    return json_response({"result": [opa_result(d) for d in decisions]})


async def health_endpoint(request: Request) -> Response:
    """No token needed: a probe learns only that the service is up (as OPA's /health, which probes reach)."""
    problem = sink_health(request.app.state.governor.audit)
    if problem is not None:
        return json_response({"error": f"the audit log cannot record: {problem}"}, 500)
    return json_response({})


class _Asgi:
    """A plain ASGI function as Starlette's Route takes one (it wraps a bare function as a Request endpoint)."""

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


ROUTES = [
    Route(DECISION_PATH, _Asgi(decide_request), methods=["POST"]),
    Route(BATCH_PATH, batch_endpoint, methods=["POST"]),
    Route("/health", health_endpoint, methods=["GET"]),
]
