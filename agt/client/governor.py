"""RemoteGovernor: the Governor's surface (call, acall, begin, abegin, finish, fail, abandon, kill, revive,
approval_status, ...) answered by an agt serve, whose one Governor runs every gate, counter and audit record.

It raises what a Governor raises: :class:`~agt.errors.GovernanceDenied` (with the service's decision and gate)
and :class:`~agt.errors.ApprovalRequired`. A service it cannot reach, that times out, or that answers
something other than a well-formed outcome, is a GovernanceDenied at the ``remote`` gate naming the cause:
the tool never runs, and a result whose output check could not be made is never returned.

A call that needs approval: the service never waits. With ``blocking_approvals`` (the default, as a
Governor's) this client polls the request until it is decided, then asks again with its id; without it,
ApprovalRequired carries the request id to ask again with (``approval_id=``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from agt.action import Agent, Kind, Resource
from agt.client._transport import DEFAULT_TIMEOUT, RemoteError, Transport
from agt.decision import Decision, fail_closed
from agt.errors import ApprovalRequired, GovernanceDenied
from agt.runtime.approvals import ApprovalRequest, ApprovalStatus, Tally, cast_vote
from agt.runtime.governor import _bind, _text_of
from agt.serve.wire import read_decision

REMOTE_GATE = "remote"
PREFIX = "/v1/agt"
_log = logging.getLogger("agt.client")


@dataclass
class RemoteTicket:
    """What :meth:`RemoteGovernor.begin` returns: the service's ticket for a call whose tool may run now."""

    id: str
    tool: str
    decision: Decision
    warnings: list[tuple[str, Decision]] = field(default_factory=list)
    closed: bool = False


def _denied(cause: str) -> GovernanceDenied:
    return GovernanceDenied(fail_closed(f"remote: {cause}", engine="remote"), REMOTE_GATE)


class RemoteGovernor:
    def __init__(
        self, url: str | None = None, *, token: str | None = None, token_file: str | None = None,
        operator_token: str | None = None, operator_token_file: str | None = None, timeout: float = DEFAULT_TIMEOUT,
        blocking_approvals: bool = True, approval_timeout: float = 300.0, approval_poll: float = 0.25,
        verify: bool | str = True, cert: str | tuple[str, str] | None = None,
    ) -> None:
        """``url``: ``unix:///run/agt/agt.sock`` or ``http(s)://host:port`` (default ``$AGT_SERVE_URL``).
        ``token``/``token_file``: the agents' token. ``operator_token``/``operator_token_file``: only for
        :meth:`kill`, :meth:`revive` and :meth:`set_trust`; an agent's process should never hold it.
        ``approval_timeout`` bounds how long a blocking call waits for a decision on its approval request."""
        tls = {"verify": verify, "cert": cert}
        self._agent = Transport(url, token=token, token_file=token_file, timeout=timeout, **tls)  # type: ignore[arg-type]
        self.url = self._agent.url
        self._operator: Transport | None = None
        if operator_token is not None or operator_token_file is not None:
            self._operator = Transport(self.url, token=operator_token, token_file=operator_token_file, timeout=timeout,
                                       **tls)  # type: ignore[arg-type]
        self.blocking_approvals, self.approval_timeout, self.approval_poll = blocking_approvals, approval_timeout, approval_poll

    # --- two phases -------------------------------------------------------------------------------------
    def begin(
        self, tool: str, params: Mapping[str, Any] | None = None, *, agent: Agent | str = "agent",
        session: str = "default", task: str | None = None, kind: Kind | str | None = None,
        resource: Resource | None = None, approval_id: str | None = None, call_id: str | None = None,
        envelope: Any = None, delegation: Any = None, wait: bool | None = None, action_type: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> RemoteTicket:
        """As :meth:`agt.Governor.begin`. Signed envelopes and delegations are not carried to the service yet:
        a call that brings one is denied rather than decided without it."""
        body = self._begin_body(tool, params, agent, session, task, kind, resource, approval_id, call_id, envelope,
                                delegation, action_type, attributes)
        answer = self._post_begin(body)
        if isinstance(answer, RemoteTicket):
            return answer
        if not (self.blocking_approvals if wait is None else wait):
            raise ApprovalRequired(answer[0], answer[1])
        deadline = time.monotonic() + self.approval_timeout
        while self._still_pending(answer[0]) and time.monotonic() < deadline:
            time.sleep(self.approval_poll)
        return self._resume(body, answer)

    async def abegin(
        self, tool: str, params: Mapping[str, Any] | None = None, *, agent: Agent | str = "agent",
        session: str = "default", task: str | None = None, kind: Kind | str | None = None,
        resource: Resource | None = None, approval_id: str | None = None, call_id: str | None = None,
        envelope: Any = None, delegation: Any = None, wait: bool | None = None, action_type: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> RemoteTicket:
        """The asyncio form of :meth:`begin`: requests run in a worker thread, waiting awaits."""
        body = self._begin_body(tool, params, agent, session, task, kind, resource, approval_id, call_id, envelope,
                                delegation, action_type, attributes)
        answer = await asyncio.to_thread(self._post_begin, body)
        if isinstance(answer, RemoteTicket):
            return answer
        if not (self.blocking_approvals if wait is None else wait):
            raise ApprovalRequired(answer[0], answer[1])
        deadline = time.monotonic() + self.approval_timeout
        while await asyncio.to_thread(self._still_pending, answer[0]) and time.monotonic() < deadline:
            await asyncio.sleep(self.approval_poll)
        return await asyncio.to_thread(self._resume, body, answer)

    def finish(self, ticket: RemoteTicket, result: Any) -> Any:
        """As :meth:`agt.Governor.finish`: ``result`` once the service's output check passed it; GovernanceDenied
        when the check refuses it, or when the service cannot be asked (the result is then withheld)."""
        self._close(ticket)
        try:
            answer = self._agent.request("POST", f"{PREFIX}/finish", {"ticket": ticket.id, "result": _wire_result(result)})
        except RemoteError as exc:
            raise _denied(f"the output check could not be made, the result is withheld: {exc}") from None
        self._outcome(answer, "finished")
        return result

    def fail(self, ticket: RemoteTicket, exc: BaseException) -> None:
        """As :meth:`agt.Governor.fail`. A service that cannot be told is logged (the ticket then expires there
        and is audited as not run); the tool's own exception is what the caller goes on to raise."""
        self._close(ticket)
        self._report("fail", {"ticket": ticket.id, "error": f"{type(exc).__name__}: {exc}"})

    def abandon(self, ticket: RemoteTicket, reason: str) -> None:
        self._close(ticket)
        self._report("abandon", {"ticket": ticket.id, "reason": str(reason)})

    def call(
        self, fn: Callable[..., Any], args: tuple = (), kwargs: Mapping[str, Any] | None = None, *,
        tool: str | None = None, params: Mapping[str, Any] | None = None, **options: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` if the service admits it, as :meth:`agt.Governor.call`."""
        kwargs = dict(kwargs or {})
        t = self.begin(tool or fn.__name__, params if params is not None else _bind(fn, args, kwargs), **options)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self.fail(t, exc)
            raise
        return self.finish(t, result)

    async def acall(
        self, fn: Callable[..., Awaitable[Any]], args: tuple = (), kwargs: Mapping[str, Any] | None = None, *,
        tool: str | None = None, params: Mapping[str, Any] | None = None, **options: Any,
    ) -> Any:
        kwargs = dict(kwargs or {})
        t = await self.abegin(tool or fn.__name__, params if params is not None else _bind(fn, args, kwargs), **options)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            await asyncio.to_thread(self.fail, t, exc)
            raise
        return await asyncio.to_thread(self.finish, t, result)

    # --- approvals --------------------------------------------------------------------------------------
    def approvals(self, status: str = "pending") -> list[dict[str, Any]]:
        """The service's approval requests with its verified status (``status``: pending, approved, ..., all)."""
        return self._agent.request("GET", f"{PREFIX}/approvals?status={status}")

    def approval(self, request_id: str) -> dict[str, Any]:
        """One request: its action, verified status, the votes cast and whether the store was tampered with."""
        return self._agent.request("GET", f"{PREFIX}/approvals/{_segment(request_id)}")

    def approval_status(self, request_id: str) -> Tally:
        """What the service's Governor makes of a request now, from the votes that verify against its registry."""
        doc = self.approval(request_id)
        try:
            return Tally(ApprovalStatus(doc["status"]), tuple(doc.get("approvals") or ()), doc.get("denied_by"),
                         doc.get("approved_at"), doc.get("valid_until"), tuple(doc.get("ignored") or ()),
                         str(doc.get("note") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteError(f"malformed approval status from {self.url}: {type(exc).__name__}: {exc}") from None

    def vote(self, request_id: str, keys: Any, approve: bool, *, note: str = "", valid_for: float = 3600.0) -> dict[str, Any]:
        """Sign a vote with the approver's own ``keys`` (agt.identity.IdentityKeys) and deliver it: the same checks
        ``agt approvals approve`` makes (agt.runtime.approvals.cast_vote), and the service verifies it again
        against its approver registry before it stores it. The private key never leaves this process."""
        store = _RemoteApprovals(self)
        cast_vote(store, request_id, keys, approve, note=note, valid_for=valid_for)
        return store.last_answer

    # --- kill switch and trust ----------------------------------------------------------------------------
    def kill(self, agent_id: str | None = None) -> None:
        self._operator_request("POST", f"{PREFIX}/kill", {"agent": agent_id} if agent_id else {})

    def revive(self, agent_id: str | None = None) -> None:
        self._operator_request("POST", f"{PREFIX}/revive", {"agent": agent_id} if agent_id else {})

    def trust(self, agent_id: str) -> dict[str, Any]:
        """``{"agent", "score", "tier", "ring", "killed"}`` as the service holds them."""
        return self._agent.request("GET", f"{PREFIX}/trust/{_segment(agent_id)}")

    def trust_score(self, agent_id: str) -> int:
        return int(self.trust(agent_id)["score"])

    def set_trust(self, agent_id: str, score: int) -> dict[str, Any]:
        return self._operator_request("PUT", f"{PREFIX}/trust/{_segment(agent_id)}", {"score": score})

    def info(self) -> dict[str, Any]:
        return self._agent.request("GET", f"{PREFIX}/info")

    def close(self) -> None:
        self._agent.close()
        if self._operator is not None:
            self._operator.close()

    # --- the wire -----------------------------------------------------------------------------------------
    def _begin_body(self, tool: str, params: Mapping[str, Any] | None, agent: Agent | str, session: str,
                    task: str | None, kind: Kind | str | None, resource: Resource | None, approval_id: str | None,
                    call_id: str | None, envelope: Any, delegation: Any, action_type: str | None,
                    attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        if envelope is not None or delegation is not None:
            raise _denied("signed envelopes and delegations are not carried by the runtime API; "
                          "the call is denied rather than decided without them")
        body: dict[str, Any] = {
            "tool": tool, "params": dict(params) if isinstance(params, Mapping) else params,
            "agent": agent.id if isinstance(agent, Agent) else agent, "session": session, "task": task,
            "kind": kind.value if isinstance(kind, Kind) else kind,
            "resource": resource.to_dict() if resource is not None else None, "call_id": call_id,
            "approval_id": approval_id, "action_type": action_type,
            "attributes": dict(attributes) if attributes is not None else None,
        }
        return {k: v for k, v in body.items() if v is not None}

    def _post_begin(self, body: dict[str, Any]) -> RemoteTicket | tuple[str, Decision]:
        """The ticket of an admitted call, or (request id, decision) of a pending one; raises GovernanceDenied."""
        try:
            answer = self._agent.request("POST", f"{PREFIX}/begin", body)
        except RemoteError as exc:
            raise _denied(str(exc)) from None
        status, decision = self._outcome(answer, "admitted", "pending")
        if status == "pending":
            request_id = answer.get("request_id")
            if not isinstance(request_id, str):
                raise _denied("a pending answer without a request id")
            return request_id, decision
        ticket = answer.get("ticket")
        if not isinstance(ticket, str):
            raise _denied("an admitted answer without a ticket")
        warnings = [(str(w.get("gate", "")), read_decision(w.get("decision"))) for w in answer.get("warnings") or ()
                    if isinstance(w, dict)]
        return RemoteTicket(ticket, str(body["tool"]), decision, warnings)

    def _still_pending(self, request_id: str) -> bool:
        try:
            return self.approval_status(request_id).status is ApprovalStatus.PENDING
        except RemoteError as exc:
            raise _denied(f"waiting for approval {request_id}: {exc}") from None

    def _resume(self, body: dict[str, Any], pending: tuple[str, Decision]) -> RemoteTicket:
        """Ask again with the request's id, once it is decided (or the wait ran out): the service decides."""
        answer = self._post_begin({**body, "approval_id": pending[0]})
        if isinstance(answer, RemoteTicket):
            return answer
        raise ApprovalRequired(answer[0], answer[1])

    @staticmethod
    def _outcome(answer: Any, *ok: str) -> tuple[str, Decision]:
        """The status and decision of an answer whose status is one of ``ok``; GovernanceDenied otherwise."""
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
            raise _denied(f"malformed answer: {str(answer)[:200]}")
        status = answer["status"]
        decision = read_decision(answer.get("decision")) if "decision" in answer else None
        if status == "denied":
            gate = answer.get("gate") if isinstance(answer.get("gate"), str) else REMOTE_GATE
            raise GovernanceDenied(decision or fail_closed("remote: denied without a decision", engine="remote"), gate)
        if status not in ok:
            raise _denied(f"unexpected status {status!r}")
        if decision is not None and decision.is_engine_error and decision.engine == "remote":
            raise GovernanceDenied(decision, REMOTE_GATE)  # the answer's decision was malformed
        return status, decision or fail_closed("remote: no decision", engine="remote")

    @staticmethod
    def _close(ticket: RemoteTicket) -> None:
        if not isinstance(ticket, RemoteTicket):
            raise TypeError(f"expected the RemoteTicket begin() returned, not {type(ticket).__name__}")
        if ticket.closed:
            raise ValueError(f"this call to {ticket.tool} was already finished, failed or abandoned")
        ticket.closed = True

    def _report(self, what: str, body: dict[str, Any]) -> None:
        try:
            self._agent.request("POST", f"{PREFIX}/{what}", body)
        except RemoteError as exc:
            _log.warning("could not tell %s that ticket %s was %sed: %s", self.url, body["ticket"], what, exc)

    def _operator_request(self, method: str, path: str, doc: Any) -> Any:
        if self._operator is None:
            raise RemoteError("this needs the operator token: RemoteGovernor(..., operator_token_file=...)")
        return self._operator.request(method, path, doc)


class _RemoteApprovals:
    """The two store operations cast_vote needs, over the runtime API: read the request, deliver the vote."""

    def __init__(self, governor: RemoteGovernor) -> None:
        self._governor = governor
        self.last_answer: dict[str, Any] = {}

    def get(self, request_id: str) -> ApprovalRequest:
        doc = self._governor.approval(request_id)
        return ApprovalRequest.from_dict(doc, tuple(doc.get("votes") or ()))

    def add_vote(self, request_id: str, vote: Any) -> None:
        self.last_answer = self._governor._agent.request(  # noqa: SLF001 - the same client
            "POST", f"{PREFIX}/approvals/{_segment(request_id)}/votes", {"vote": vote.to_dict()})


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _wire_result(result: Any) -> Any:
    """The tool's result as the service's output check will read it: JSON as it is, else its text."""
    from agt import _json

    try:
        _json.dumps(result)
        return result
    except (TypeError, ValueError, RecursionError):
        return _text_of(result)[0]
