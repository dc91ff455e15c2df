"""The runtime API: the Governor's two-phase call, approvals, the kill switch and trust, over HTTP.

Every call goes through the one Governor the service was started with (``Governor.begin`` / ``finish`` /
``fail`` / ``abandon``, approval_status, kill, revive): the same code as a governed call in-process, so the
gates, counters, breakers, output check and audit record are the in-process ones. ``begin`` never waits for
a human: a call that needs approval answers ``pending`` with the request id, and the client asks again (with
the same ``call_id``, or ``approval_id``) once the request is decided.

What the request may say is limited to what the agent is entitled to say: the tool, its params, the
agent's id, session and task, the framework's call id. Roles and trust scores come from the service's own
configuration and state, never from the request (an agent could name itself an admin). Who may call what
is in docs/serve.md ("What if the agent calls this?").
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agt.action import Resource
from agt.decision import fail_closed
from agt.errors import ActionError, ApprovalRequired, GovernanceDenied
from agt.runtime.approvals import ApprovalError, ApprovalStatus, verify_vote
from agt.runtime.governor import Governor
from agt.runtime.trust import ring, tier
from agt.serve._http import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, BadRequest, json_object, json_response, needs, read_json
from agt.serve.auth import Role
from agt.serve.tickets import TicketTable, TicketTableFull
from agt.serve.wire import decision_doc

PREFIX = "/v1/agt"
_log = logging.getLogger("agt.serve")


class RemoteToolError(Exception):
    """A tool that failed on the client's side, as the client described the failure."""


# --- request fields -----------------------------------------------------------------------------------
_TYPE_NAMES = {str: "a string", dict: "an object", int: "an integer"}


def _field(body: dict, name: str, kind: type, *, required: bool = False, default: Any = None) -> Any:
    """``body[name]`` if it is a ``kind`` (null counts as absent); BadRequest naming the field otherwise."""
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(400, INVALID, f"{name} is required")
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadRequest(400, INVALID, f"{name} must be {_TYPE_NAMES.get(kind, kind.__name__)}, not {type(value).__name__}")
    return value


def _only(body: dict, allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(400, INVALID, f"unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


BEGIN_FIELDS = frozenset({"tool", "params", "agent", "session", "task", "kind", "resource", "call_id", "approval_id",
                          "action_type", "attributes"})


def _begin_arguments(body: dict) -> dict[str, Any]:
    _only(body, BEGIN_FIELDS)
    resource = _field(body, "resource", dict)
    if resource is not None:
        _only(resource, frozenset({"type", "id", "attributes"}))
        try:
            resource = Resource(_field(resource, "type", str, required=True), _field(resource, "id", str, required=True),
                                _field(resource, "attributes", dict, default={}))
        except ActionError as exc:
            raise BadRequest(400, INVALID, f"resource: {exc}") from None
    return {
        "tool": _field(body, "tool", str, required=True), "params": _field(body, "params", dict, default={}),
        "agent": _field(body, "agent", str, default="agent"), "session": _field(body, "session", str, default="default"),
        "task": _field(body, "task", str), "kind": _field(body, "kind", str), "resource": resource,
        "call_id": _field(body, "call_id", str), "approval_id": _field(body, "approval_id", str),
        "action_type": _field(body, "action_type", str), "attributes": _field(body, "attributes", dict),
    }


# --- two phases ---------------------------------------------------------------------------------------
def _refused(exc: GovernanceDenied) -> dict[str, Any]:
    return {"status": "denied", "gate": exc.gate, "decision": decision_doc(exc.decision)}  # type: ignore[arg-type]


def begin(governor: Governor, tickets: TicketTable, arguments: dict[str, Any]) -> dict[str, Any]:
    tool = arguments.pop("tool")
    try:
        ticket = governor.begin(tool, wait=False, **arguments)
    except GovernanceDenied as exc:
        return _refused(exc)
    except ApprovalRequired as exc:
        return {"status": "pending", "request_id": exc.request_id, "decision": decision_doc(exc.decision)}  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a store or engine fault denies, naming it
        _log.exception("begin %s failed", tool)
        return {"status": "denied", "gate": "runtime",
                "decision": decision_doc(fail_closed(f"runtime: {type(exc).__name__}: {exc}", engine="runtime"))}
    try:
        held = tickets.put(ticket)
    except TicketTableFull as exc:
        governor.abandon(ticket, f"agt serve could not hold the ticket: {exc}")
        return {"status": "denied", "gate": "runtime",
                "decision": decision_doc(fail_closed(f"runtime: {exc}", engine="runtime"))}
    return {"status": "admitted", "ticket": held.id, "expires_in": tickets.ttl, "decision": decision_doc(ticket.decision),
            "warnings": [{"gate": gate, "decision": decision_doc(d)} for gate, d in ticket.warnings]}


def _close(tickets: TicketTable, body: dict, allowed: frozenset[str], close: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    _only(body, allowed)
    ticket_id = _field(body, "ticket", str, required=True)
    ticket = tickets.take(ticket_id)
    if ticket is None:
        raise BadRequest(404, NOT_FOUND, f"no open call with ticket {ticket_id!r}: it expired, was already finished, "
                                         "failed or abandoned, or was never issued")
    return close(ticket)


def finish(governor: Governor, tickets: TicketTable, body: dict) -> dict[str, Any]:
    def close(ticket: Any) -> dict[str, Any]:
        try:
            governor.finish(ticket, body.get("result"))
        except GovernanceDenied as exc:
            return _refused(exc)
        return {"status": "finished"}

    return _close(tickets, body, frozenset({"ticket", "result"}), close)


def fail(governor: Governor, tickets: TicketTable, body: dict) -> dict[str, Any]:
    error = _field(body, "error", str, default="the tool failed")

    def close(ticket: Any) -> dict[str, Any]:
        governor.fail(ticket, RemoteToolError(error))
        return {"status": "failed"}

    return _close(tickets, body, frozenset({"ticket", "error"}), close)


def abandon(governor: Governor, tickets: TicketTable, body: dict) -> dict[str, Any]:
    reason = _field(body, "reason", str, default="the client abandoned the call")

    def close(ticket: Any) -> dict[str, Any]:
        governor.abandon(ticket, reason)
        return {"status": "abandoned"}

    return _close(tickets, body, frozenset({"ticket", "reason"}), close)


def _two_phase(fn: Callable[..., dict[str, Any]], parse: Callable[[dict], Any] = lambda body: body) -> Any:
    @needs(Role.AGENT)
    async def endpoint(request: Request) -> Response:
        body = parse(json_object(await read_json(request)))
        state = request.app.state
        return json_response(await run_in_threadpool(fn, state.governor, state.tickets, body))

    endpoint.__name__ = fn.__name__
    return endpoint


# --- approvals ----------------------------------------------------------------------------------------
def _request_doc(governor: Governor, req: Any) -> dict[str, Any]:
    return {**req.to_dict(), **governor.approval_status(req.id).to_dict()}


def _approval(governor: Governor, request_id: str) -> Any:
    try:
        return governor.approvals.get(request_id)
    except ApprovalError as exc:
        raise BadRequest(404, NOT_FOUND, str(exc)) from None


@needs(Role.AGENT)
async def list_approvals(request: Request) -> Response:
    wanted = request.query_params.get("status", "pending")
    statuses = {s.value for s in ApprovalStatus} | {"all"}
    if wanted not in statuses:
        raise BadRequest(400, INVALID, f"status must be one of {', '.join(sorted(statuses))}")
    governor: Governor = request.app.state.governor

    def rows() -> list[dict[str, Any]]:
        docs = [_request_doc(governor, r) for r in governor.approvals.list()]
        return [d for d in docs if wanted == "all" or d["status"] == wanted]

    return json_response(await run_in_threadpool(rows))


@needs(Role.AGENT)
async def show_approval(request: Request) -> Response:
    governor: Governor = request.app.state.governor

    def show() -> dict[str, Any]:
        req = _approval(governor, request.path_params["request_id"])
        return {**_request_doc(governor, req), "votes": list(req.votes), "tampered": req.tampering()}

    return json_response(await run_in_threadpool(show))


@needs(Role.AGENT)
async def vote(request: Request) -> Response:
    """A signed vote, stored only if it would count: its signature verifies against the approver registry the
    service started with, for this request's action and agent, by an eligible approver who is not the agent.
    The token only lets the vote be delivered; the signature is the authority."""
    body = json_object(await read_json(request, decimals=False))
    _only(body, frozenset({"vote"}))
    doc = _field(body, "vote", dict, required=True)
    governor: Governor = request.app.state.governor

    def cast() -> Response:
        req = _approval(governor, request.path_params["request_id"])
        tampered = req.tampering()
        if tampered is not None:
            raise BadRequest(409, CONFLICT, f"request {req.id} was edited in the store: {tampered}; no vote is taken on it")
        now = time.time()
        state = governor.approval_status(req.id)
        check = verify_vote(governor.approval_terms(req), doc, governor.approvers, now)
        if check.vote is None:
            raise BadRequest(403, FORBIDDEN, str(check.problem))
        if state.status not in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED) or (
                check.vote.approve and state.status is ApprovalStatus.APPROVED):
            raise BadRequest(409, CONFLICT, f"request {req.id} is already {state.status.value}")
        governor.approvals.add_vote(req.id, check.vote)
        after = governor.approval_status(req.id)
        return json_response({"id": req.id, "status": after.status.value, "approvals": list(after.approvals),
                              "quorum": governor.approval_terms(req).quorum, "voted_by": check.vote.approver,
                              "approve": check.vote.approve})

    return await run_in_threadpool(cast)


# --- kill switch and trust ------------------------------------------------------------------------------
def _trust_doc(governor: Governor, agent_id: str) -> dict[str, Any]:
    score = governor.trust.score(agent_id)
    return {"agent": agent_id, "score": score, "tier": tier(score), "ring": ring(score),
            "killed": governor.trust.is_killed(agent_id)}


def _switch(killed: bool) -> Any:
    @needs(Role.OPERATOR)
    async def endpoint(request: Request) -> Response:
        body = json_object(await read_json(request, empty={}))
        _only(body, frozenset({"agent"}))
        agent = _field(body, "agent", str)
        governor: Governor = request.app.state.governor
        await run_in_threadpool(governor.kill if killed else governor.revive, agent)
        return json_response({"killed": killed, "scope": agent or "all"})

    endpoint.__name__ = "kill" if killed else "revive"
    return endpoint


@needs(Role.AGENT)
async def get_trust(request: Request) -> Response:
    governor: Governor = request.app.state.governor
    return json_response(await run_in_threadpool(_trust_doc, governor, request.path_params["agent"]))


@needs(Role.OPERATOR)
async def set_trust(request: Request) -> Response:
    body = json_object(await read_json(request))
    _only(body, frozenset({"score"}))
    score = _field(body, "score", int, required=True)
    if not 0 <= score <= 1000:
        raise BadRequest(400, INVALID, "score must be an integer from 0 to 1000")
    governor: Governor = request.app.state.governor
    agent = request.path_params["agent"]

    def write() -> dict[str, Any]:
        governor.trust.set_score(agent, score, "set by an operator through agt serve")
        return _trust_doc(governor, agent)

    return json_response(await run_in_threadpool(write))


@needs(Role.AGENT)
async def info(request: Request) -> Response:
    import agt

    state = request.app.state
    engine = state.governor.engine
    return json_response({"version": agt.__version__, "engine": engine.name, "revision": engine.revision,
                          "open_tickets": len(state.tickets), "ticket_ttl": state.tickets.ttl,
                          "operator_endpoints": state.credentials.operator is not None})


ROUTES = [
    Route(f"{PREFIX}/begin", _two_phase(begin, _begin_arguments), methods=["POST"]),
    Route(f"{PREFIX}/finish", _two_phase(finish), methods=["POST"]),
    Route(f"{PREFIX}/fail", _two_phase(fail), methods=["POST"]),
    Route(f"{PREFIX}/abandon", _two_phase(abandon), methods=["POST"]),
    Route(f"{PREFIX}/approvals", list_approvals, methods=["GET"]),
    Route(f"{PREFIX}/approvals/{{request_id}}", show_approval, methods=["GET"]),
    Route(f"{PREFIX}/approvals/{{request_id}}/votes", vote, methods=["POST"]),
    Route(f"{PREFIX}/kill", _switch(True), methods=["POST"]),
    Route(f"{PREFIX}/revive", _switch(False), methods=["POST"]),
    Route(f"{PREFIX}/trust/{{agent}}", get_trust, methods=["GET"]),
    Route(f"{PREFIX}/trust/{{agent}}", set_trust, methods=["PUT"]),
    Route(f"{PREFIX}/info", info, methods=["GET"]),
]
