"""The governance runtime: every governed call goes through the gates, and the tool runs only if all allow.

    trust gate → policy gate (engine) → reliability gate → tool → output check → audit record

Each gate can deny. Denials raise :class:`~agt.errors.GovernanceDenied`; a pending approval either
blocks until resolved or raises :class:`~agt.errors.ApprovalRequired` (non-blocking).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Collection, Iterator, Mapping, TypeVar

from agt.action import Action, Agent, Context, Kind, Operation, Resource, Stage, infer_kind
from agt.audit.text import safe_str
from agt.decision import Decision, Effect, Reason, fail_closed, strictest
from agt.engines import Engine, create_engine
from agt.errors import ActionError, ApprovalRequired, GovernanceDenied
from agt.runtime.approvals import (
    ApprovalError, ApprovalRequest, action_digest, ApprovalStatus, ApprovalStore, MemoryApprovals, Tally, Terms, effective_quorum,
    eligible_approvers, new_request, tally, wait, wait_async,
)
from agt.runtime.approvers import ApproverRegistry, PublicKeyLike, as_registry
from agt.runtime.audit import AuditRecord, AuditSink, MemoryAuditSink, new_decision_id, sink_health
from agt.runtime.breaker import BreakerBoard, BreakerPolicy, BreakerState
from agt.runtime.observe import ADMITTED, DENIED, HELD
from agt.runtime.modes import Mode, Verdict, apply_mode
from agt.runtime.state import MemoryStore, RateLimit, StateStore, StateUnavailable
from agt.runtime.trust import RING_KINDS, TrustChange, TrustManager, ring

F = TypeVar("F", bound=Callable[..., Any])

TRUST_GATE, POLICY_GATE, RATE_GATE, RELIABILITY_GATE, APPROVAL_GATE, OUTPUT_GATE = (
    "trust", "policy", "rate", "reliability", "approval", "output",
)
AUDIT_GATE = "audit"
STATE_GATE = "state"  # shared state (Redis) unreachable: denied in every mode, nobody demoted
_log = logging.getLogger("agt.runtime")
_COUNTS_FILES = frozenset({Kind.WRITE, Kind.DELETE})  # a call of these kinds on a file counts as a file changed


def _deny(gate_rule: str, message: str) -> Decision:
    return Decision(Effect.DENY, (Reason(gate_rule, message),), engine="runtime")


@dataclass(slots=True)
class _Prepared:
    action: Action
    reserved_calls: int
    reserved_files: int
    started: float
    mode: Mode
    """The agent's mode, read when the call is built: its gates and its audit records all go by this one."""


@dataclass(slots=True)
class _Ticket:
    """A call that passed the gates up to the policy and approval: what the rest of the pipeline needs."""

    prepared: _Prepared
    decision: Decision
    verdict: Verdict
    pending: ApprovalRequest | None = None
    approval: Terms | None = None
    warnings: list[tuple[str, Decision]] = field(default_factory=list)
    closed: bool = False

    @property
    def action(self) -> Action:
        """The action document the gates decided."""
        return self.prepared.action


Ticket = _Ticket
"""What :meth:`Governor.begin` returns: a call every gate admitted, whose tool may run now. Hand it to
exactly one of :meth:`Governor.finish`, :meth:`Governor.fail` or :meth:`Governor.abandon`."""


class Governor:
    def __init__(
        self,
        engine: Engine | str = "yaml",
        policy: str | None = None,
        *,
        mode: Mode | str | None = None,
        agent_modes: Mapping[str, Mode | str] | None = None,
        critical_rules: Collection[str] | None = None,
        store: StateStore | None = None,
        trust: TrustManager | None = None,
        breakers: BreakerBoard | BreakerPolicy | None = None,
        approvals: ApprovalStore | None = None,
        approval_timeout: float = 300.0,
        quorum: int = 1,
        blocking_approvals: bool = True,
        rate_limits: Mapping[str, str] | None = None,
        output_engine: Engine | None = None,
        output_limit: int = 65_536,
        audit: AuditSink | None = None,
        environment: str | None = None,
        engine_options: Mapping[str, Any] | None = None,
        identity: Any | None = None,
        trusted_roots: Mapping[str, str] | None = None,
        require_identity: bool = False,
        require_delegation: bool = False,
        approvers: ApproverRegistry | Mapping[str, PublicKeyLike] | str | None = None,
        approval_validity: float | None = None,
        catalog: Any | None = None,
        metrics: Any = None,
        tracing: Any = None,
    ) -> None:
        """``engine`` is an Engine, or an engine name with ``policy`` its policy path. A policy that
        cannot load raises here, before any call: an unloadable policy never governs (or allows) anything.

        ``mode`` defaults to the policy's own ``governance.policy_mode`` when it has one, else strict.
        ``identity`` is an :class:`agt.identity.EnvelopeVerifier`: calls may then carry a signed action
        envelope (and a delegation chain rooted in ``trusted_roots``); with ``require_identity`` they must,
        and with ``require_delegation`` every call must carry both (a delegation is bound to the envelope's signer).
        ``rate_limits`` maps a key to a limit: ``{"tool:send_email": "10/hour", "agent:*": "100/minute"}``.
        ``approvers`` is the approver registry (an :class:`ApproverRegistry`, a name → did:key mapping, or a
        registry file): only votes signed by its keys count, so without it nothing can be approved.
        ``approval_validity`` (seconds) ends an approval that long after it was granted; by default it ends
        at the request's deadline (``approval_timeout`` after the request).
        ``catalog`` is the tool catalog (agt.catalog) the engine checks params with; it goes with an engine name.
        ``environment`` (say ``"production"``) goes into every action's context; without it the field is missing,
        never a guessed value, so a rule on ``context.environment`` does not match (docs/agt-compatibility.md).
        ``metrics`` (True, or an agt.runtime.metrics.GovernorMetrics) keeps Prometheus metrics in
        :attr:`metrics`; ``tracing`` (True, a TracerProvider, or an agt.runtime.tracing.GovernorTracing) makes
        OpenTelemetry spans. Both are off by default, and off they cost nothing (docs/metrics.md).
        """
        if isinstance(engine, str):
            if policy is None:
                raise ValueError("give policy= with an engine name, or pass an Engine")
            options = {**dict(engine_options or {}), **({"catalog": catalog} if catalog is not None else {})}
            engine = create_engine(engine, policy, **options)
        elif catalog is not None:
            raise ValueError("catalog= goes with an engine name; give an Engine you build its catalog with create_engine(..., catalog=)")
        self.engine = engine
        self.mode = Mode(mode) if mode is not None else _policy_mode(engine)
        self.agent_modes = {k: Mode(v) for k, v in (agent_modes or {}).items()}
        self.critical_rules = frozenset(critical_rules) if critical_rules is not None else _critical_rules(engine)
        self.store = store or MemoryStore()
        self.audit = audit or MemoryAuditSink()
        mask = getattr(getattr(engine, "policy", None), "audit_mask", ())
        if mask and hasattr(self.audit, "add_mask"):
            self.audit.add_mask(mask)  # the policy says which params never reach the log
        self.trust = trust or TrustManager()
        if self.trust._on_change is None:  # noqa: SLF001 - record trust changes unless the owner did
            self.trust._on_change = self._audit_trust  # noqa: SLF001
        self.breakers = breakers if isinstance(breakers, BreakerBoard) else BreakerBoard(breakers or BreakerPolicy())
        self.approvals = approvals or MemoryApprovals()
        self.approval_timeout, self.quorum, self.blocking_approvals = approval_timeout, quorum, blocking_approvals
        if approval_validity is not None and not approval_validity > 0:
            raise ValueError("approval_validity must be a positive number of seconds, or None")
        self.approvers = as_registry(approvers)
        self.approval_validity = approval_validity
        # The Governor's own record of what it asked and what was used: the store is writable by the agent.
        self._approval_lock = threading.Lock()
        self._issued: dict[str, Terms] = {}
        self._used: dict[str, float] = {}
        self._by_call: dict[tuple[str, str, str], str] = {}  # (agent, session, framework call id) → request id
        self.rate_limits = {k: RateLimit.parse(v) for k, v in (rate_limits or {}).items()}
        self.output_engine = output_engine
        self.output_limit = output_limit
        self.environment = environment
        self.identity = identity
        self.trusted_roots = dict(trusted_roots or {})
        self.require_identity = require_identity
        self.require_delegation = require_delegation
        if require_delegation and identity is None:
            raise ValueError("require_delegation needs identity= (an EnvelopeVerifier): a delegation is checked against the envelope's signer")
        self._agents: dict[str, Agent] = {}
        self._scored: dict[str, tuple[Agent, Agent]] = {}  # agent id → (the agent given, it at its latest score)
        self.metrics, self._observer = None, None  # agt.runtime.observe: gates, engine and phases are wrapped
        if metrics or tracing:
            from agt.runtime.observe import attach

            self.metrics, self._observer = attach(self, metrics, tracing)

    # --- configuration ---------------------------------------------------------------------------
    def register_agent(self, agent: Agent, trust_score: int | None = None) -> Agent:
        """Declare an agent's roles and attributes. Its trust score is managed by the TrustManager from
        then on: ``trust_score`` (or, for an agent the manager has never seen, ``agent.trust_score``)
        sets it; a score the manager already holds (say, shared with another Governor) is kept."""
        self._agents[agent.id] = agent
        if trust_score is not None:
            self.trust.set_score(agent.id, trust_score, "registered")
        elif not self.trust.known(agent.id):
            self.trust.set_score(agent.id, agent.trust_score, "registered")
        return agent

    def agent_now(self, agent: Agent | str) -> Agent:
        """The agent as the gates see it now: its registered roles and attributes, and the score the
        TrustManager holds (an agent not seen before is registered with the default, as a call would)."""
        return self._agent(agent)

    def mode_for(self, agent_id: str) -> Mode:
        return self.agent_modes.get(agent_id, self.mode)

    def kill(self, agent_id: str | None = None) -> None:
        self.trust.kill(agent_id)
        self._record("kill_switch", agent_id or "*", result={"killed": True, "scope": agent_id or "all"})

    def revive(self, agent_id: str | None = None) -> None:
        self.trust.revive(agent_id)
        self._record("kill_switch", agent_id or "*", result={"killed": False, "scope": agent_id or "all"})

    def add_tokens(self, task: str, tokens: int) -> None:
        self.store.add_tokens(task, tokens)

    # --- gates -------------------------------------------------------------------------------------
    def _agent(self, agent: Agent | str) -> Agent:
        if isinstance(agent, Agent):
            base = agent
            if base.id not in self._agents:
                self.register_agent(base)
        else:
            found = self._agents.get(agent)  # registered under its id, so found.id == agent
            base = found if found is not None else self.register_agent(Agent(agent))
        agent_id = base.id
        score = self.trust.score(agent_id)  # read fresh on every call
        if score == base.trust_score:
            return base
        # The same agent at the same score is the same immutable value: reuse the last one built for it.
        last = self._scored.get(agent_id)
        if last is not None and last[0] is base and last[1].trust_score == score:
            return last[1]
        scored = base.with_trust_score(score)
        self._scored[agent_id] = (base, scored)
        return scored

    def _trust_gate(self, agent: Agent, kind: Kind) -> Decision | None:
        if self.trust.is_killed(agent.id):
            return _deny("kill-switch", f"agent {agent.id!r} is stopped by the kill switch")
        r = ring(agent.trust_score)
        if kind not in RING_KINDS[r]:
            allowed = ", ".join(sorted(k.value for k in RING_KINDS[r]))
            return _deny("trust-ring", f"agt's trust-ring gate, before any policy rule: agent {agent.id!r} has trust "
                                       f"{agent.trust_score} (ring {r}), and ring {r} may not run {kind.value} tools "
                                       f"(it may run {allowed}); register the agent with a higher trust_score to allow them")
        return None

    def _identity_gate(self, op: Operation, agent_id: str, envelope: Any, delegation: Any) -> Decision | None:
        """The signed envelope must verify, belong to the calling agent, be fresh and unreplayed, and
        describe this very call; a delegation must chain to a trusted root and cover the tool."""
        if delegation is None and self.require_delegation:
            return _deny("delegation-required", f"calls by {agent_id!r} must carry a delegation chain")
        if envelope is None:
            if self.require_identity:
                return _deny("identity-required", f"calls by {agent_id!r} must carry a signed action envelope")
            if delegation is not None:
                # A delegation names its holder; without a signed envelope nobody shows they are that holder.
                return _deny("delegation-invalid", "a delegation was given without the signed envelope of its holder")
            return None
        if self.identity is None:
            return _deny("identity-invalid", "an envelope was given but this Governor has no identity verifier")
        from agt.identity import IdentityError, allows, verify_chain

        try:
            verified = self.identity.verify(envelope)
        except IdentityError as exc:
            return _deny("identity-invalid", str(exc))
        if verified.agent_id != agent_id:
            return _deny("identity-invalid", f"the envelope is signed by {verified.agent_id!r}, the call is by {agent_id!r}")
        signed = verified.action.get("action") if isinstance(verified.action, Mapping) else None
        if not isinstance(signed, Mapping) or signed.get("tool") != op.tool or dict(signed.get("params") or {}) != dict(op.params):
            return _deny("identity-invalid", "the signed envelope describes a different call (tool or params differ)")
        if delegation is not None:
            try:
                caps = verify_chain(delegation, self.trusted_roots, holder_did=verified.did)
            except IdentityError as exc:
                return _deny("delegation-invalid", str(exc))
            if not allows(caps, op.tool, op.kind):
                return _deny("delegation-scope", f"the delegation does not grant {op.tool} ({op.kind.value})")
        return None

    def _rate_gate(self, agent: Agent, tool: str) -> Decision | None:
        for key, limit in self.rate_limits.items():
            scope, _, name = key.partition(":")
            if scope == "tool" and name in (tool, "*"):
                bucket = f"tool:{tool}"
            elif scope == "agent" and name in (agent.id, "*"):
                bucket = f"agent:{agent.id}"
            else:
                continue
            admitted, count = self.store.hit_rate(f"{key}|{bucket}", limit)
            if not admitted:
                return _deny(f"rate-limit:{key}", f"{count} calls in {limit.window_seconds:g}s (limit {limit.count})")
        return None

    def _reliability_gate(self, action: Action) -> Decision | None:
        """Both breakers must let the call through. Look first, then take the probes, so a half-open
        breaker's single probe is never taken for a call another breaker refuses."""
        akey, abreaker, tkey, tbreaker = self.breakers.pair(action.agent.id, action.action.tool)
        if abreaker._state is BreakerState.CLOSED and tbreaker._state is BreakerState.CLOSED:  # noqa: SLF001
            # Both closed when read (one atomic read each): would_allow and allow would both say yes and change
            # nothing, so no lock is needed. Any other state takes the locked path below.
            return None
        pairs = ((akey, abreaker), (tkey, tbreaker))
        for key, breaker in pairs:
            if not breaker.would_allow():
                return _deny(f"circuit-open:{key}", f"circuit breaker for {key} is open after repeated failures")
        for key, breaker in pairs:
            if not breaker.allow():
                return _deny(f"circuit-open:{key}", f"circuit breaker for {key} has its probe call out")
        return None

    def _record_breakers(self, action: Action, success: bool) -> None:
        self.breakers.record(action.agent.id, action.action.tool, success)

    def _check_output(self, action: Action, result: Any) -> Decision | None:
        if isinstance(result, str):
            text = result
        else:
            text, failure = _text_of(result)
            if failure is not None and self.output_engine is not None:
                return fail_closed(f"output cannot be checked: {failure}", engine="runtime")
        if len(text) > self.output_limit:
            return _deny("output-too-large", f"tool output of {len(text)} characters exceeds {self.output_limit}")
        if self.output_engine is None:
            return None
        try:
            out = Action(
                action.agent, Operation(action.action.tool, action.action.kind, {"output": text}), action.resource,
                Context(action.context.session_id, action.context.task_id, Stage.POST_TOOL, action.context.tokens_used,
                        action.context.tool_calls, action.context.files_changed, action.context.environment),
            )
            decision = self.output_engine.evaluate(out)
        except ActionError as exc:
            return fail_closed(f"output cannot be checked: {exc}", engine="runtime")
        except Exception as exc:  # noqa: BLE001 - an output engine that raises still denies
            return fail_closed(f"output engine: {type(exc).__name__}: {exc}", engine=getattr(self.output_engine, "name", ""))
        return None if decision.effect is Effect.ALLOW else decision

    def decide(self, action: Action) -> Decision:
        """The policy decision. A call whose params name several files (a move's source and destination)
        is decided once per file, each as the resource, and the strictest decision holds: a write outside
        the workspace through any path-bearing param is denied (docs/action-schema.md)."""
        resources, res = action.action.resources, action.resource
        if not resources or (len(resources) == 1 and resources[0] is res):
            return self._decide_one(action)  # the one resource is the action's own: nothing more to decide
        files = [r for r in resources if r.type == "file" and r is not res and r != res]
        if not files:
            return self._decide_one(action)
        variants = [action] + [Action(action.agent, action.action, r, action.context) for r in files]
        return strictest(self._decide_one(v) for v in variants)

    def _decide_one(self, action: Action) -> Decision:
        try:
            return self.engine.evaluate(action)
        except Exception as exc:  # noqa: BLE001 - an engine that raises still denies
            return fail_closed(f"{type(exc).__name__}: {exc}", engine=getattr(self.engine, "name", "engine"))

    # --- the pipeline ----------------------------------------------------------------------------
    def _build(self, who: Agent, op: Operation, res: Resource | None, session: str, task: str, reserve: bool,
               attributes: Mapping[str, Any] | None = None) -> _Prepared:
        files = 1 if op.kind in _COUNTS_FILES and res is not None and res.type == "file" else 0
        if reserve:
            counters = self.store.reserve(task, 1, files)
        else:
            seen = self.store.counters(task)
            counters = type(seen)(seen.tokens_used, seen.tool_calls + 1, seen.files_changed + files)
        ctx = Context._for_call(session, task, counters.tokens_used, counters.tool_calls, counters.files_changed,
                                self.environment, attributes)
        return _Prepared(Action(who, op, res, ctx), 1 if reserve else 0, files if reserve else 0, time.perf_counter(),
                         self.mode_for(who.id))

    def _release(self, p: _Prepared) -> None:
        if p.reserved_calls or p.reserved_files:
            self.store.release(p.action.context.task_id, p.reserved_calls, p.reserved_files)
            p.reserved_calls = p.reserved_files = 0

    def _deny_now(self, p: _Prepared | None, decision: Decision, gate: str, agent_id: str,
                  tool: Any = None) -> GovernanceDenied:
        """Release the reservation, record, demote; the caller raises what this returns. Without a prepared
        action (it could not be built), the record still names the tool that was asked for."""
        if p is not None:
            self._release(p)
            self._audit_decision(p, decision, gate, Verdict(Effect.DENY))
        else:
            if self._observer is not None:
                self._observer.decided(gate, decision, DENIED)
            asked = {"action": {"tool": safe_str(tool) if not isinstance(tool, str) else tool}} if tool is not None else None
            self._record("decision", agent_id, path=gate, result={**decision.to_dict(), "enforced": "deny"}, input=asked)
        if gate not in (TRUST_GATE, STATE_GATE):
            self.trust.record_denied(agent_id)
        return GovernanceDenied(decision, gate)

    def _enforce(self, t_or_p: _Ticket | _Prepared, decision: Decision, gate: str, warnings: list) -> None:
        """A gate said no: raise unless the mode lets the call run, in which case note a warning."""
        p = t_or_p.prepared if isinstance(t_or_p, _Ticket) else t_or_p
        verdict = apply_mode(decision, p.mode, self.critical_rules)
        if verdict.effect is not Effect.ALLOW:
            raise self._deny_now(p, decision, gate, p.action.agent.id)
        warnings.append((gate, decision))

    def _begin(
        self, tool: str, params: Mapping[str, Any] | None, agent: Agent | str, session: str, task: str | None,
        kind: Kind | str | None, resource: Resource | None, approval_id: str | None, call_id: str | None,
        envelope: Any, delegation: Any, wait: bool | None, action_type: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> _Ticket:
        """Every gate before the tool but the last ones (:meth:`_admit`): the action's shape, the audit log,
        identity, trust, counters, rate, policy and approval. Raises GovernanceDenied or ApprovalRequired, or
        returns a ticket; ``ticket.pending`` is an approval request the caller must wait for."""
        if not isinstance(tool, str) or not tool:
            raise self._deny_now(None, fail_closed(f"invalid action: the tool name must be a non-empty string, not {tool!r}",
                                                   engine="runtime"), POLICY_GATE, agent.id if isinstance(agent, Agent) else str(agent),
                                 tool)
        if params is None:
            params = {}
        elif type(params) is not dict and not isinstance(params, Mapping):  # dict: no ABC check
            raise self._deny_now(None, fail_closed(f"invalid action: params must be a mapping of names to values, not "
                                                   f"{type(params).__name__}", engine="runtime"), POLICY_GATE,
                                 agent.id if isinstance(agent, Agent) else str(agent), tool)
        if getattr(self.audit, "health", None) is not None:  # a sink without health() is healthy (sink_health)
            self._gate_audit(agent, tool)
        task = task or session
        warnings: list[tuple[str, Decision]] = []
        try:
            who = self._agent(agent)
            kind = Kind(kind) if kind else infer_kind(tool)
            op = Operation(tool, kind, params, type=action_type)
            if resource is not None:
                res = resource
            else:
                named = op.resources
                res = named[0] if named else None
            identity_blocked = self._identity_gate(op, who.id, envelope, delegation)
            blocked = identity_blocked or self._trust_gate(who, op.kind)
            p = self._build(who, op, res, session, task, blocked is None, attributes)
        except (ActionError, ValueError) as exc:
            raise self._deny_now(None, fail_closed(f"invalid action: {exc}", engine="runtime"), POLICY_GATE,
                                 agent.id if isinstance(agent, Agent) else agent, tool) from None
        except StateUnavailable as exc:
            raise self._deny_now(None, _deny("state-unavailable", str(exc)), STATE_GATE,
                                 agent.id if isinstance(agent, Agent) else agent, tool) from None
        agent_id = who.id  # the id asked for: _agent() keeps it
        if identity_blocked is not None:
            # A failed identity check is never relaxed by a mode: nobody knows who is calling.
            raise self._deny_now(p, identity_blocked, TRUST_GATE, agent_id)
        if blocked is not None:
            self._enforce(p, blocked, TRUST_GATE, warnings)
            # The mode let a ring refusal through: the call now counts like any other.
            with self._shared_state(p, agent_id):
                p = self._build(who, op, res, session, task, True, attributes)
        if self.rate_limits:  # without limits the gate loops over none (and touches no shared state)
            with self._shared_state(p, agent_id):
                blocked = self._rate_gate(who, tool)
            if blocked is not None:
                self._enforce(p, blocked, RATE_GATE, warnings)
        decision = self.decide(p.action)
        verdict = apply_mode(decision, p.mode, self.critical_rules)
        if verdict.effect is Effect.DENY:
            raise self._deny_now(p, decision, POLICY_GATE, agent_id)
        ticket = _Ticket(p, decision, verdict, warnings=warnings)
        if verdict.effect is Effect.REQUIRE_APPROVAL:
            blocking = self.blocking_approvals if wait is None else wait
            with self._shared_state(p, agent_id):
                ticket.pending = self._approval(ticket, approval_id, call_id, blocking)
        return ticket

    @contextlib.contextmanager
    def _shared_state(self, p: _Prepared | None, agent_id: str) -> Iterator[None]:
        """Shared state (Redis) that cannot be read or written denies the call, whatever the mode, naming the
        cause; the reservation is released (deferred until Redis returns) and the agent is not demoted."""
        try:
            yield
        except StateUnavailable as exc:
            raise self._deny_now(p, _deny("state-unavailable", str(exc)), STATE_GATE, agent_id) from None

    def _approval(self, t: _Ticket, approval_id: str | None, call_id: str | None = None,
                  blocking: bool = True) -> ApprovalRequest | None:
        """None when the call may go ahead now (``t.approval`` then holds the approval it uses up);
        otherwise the request to wait for."""
        action, decision = t.prepared.action, t.decision
        agent_id, digest = action.agent.id, action_digest(action)
        call_key = (agent_id, action.context.session_id, call_id) if call_id else None
        resumed = False
        if not approval_id and call_key is not None:
            with self._approval_lock:
                known = self._by_call.get(call_key)
            if known is not None and known not in self._used:
                approval_id, resumed = known, True
        if approval_id:
            try:
                req = self.approvals.get(approval_id)
            except ApprovalError as exc:
                raise self._deny_now(t.prepared, _deny("approval-unknown", str(exc)), APPROVAL_GATE, agent_id) from None
            own = self._issued.get(approval_id)
            if own is None and approval_id not in self._used:
                # Opened by another Governor, or before a restart: its use could only be recorded in the
                # store, which the agent can write, so a single-use approval could be used again.
                raise self._deny_now(t.prepared, _deny("approval-foreign", f"approval {approval_id} was not opened by this "
                                                       "Governor (a restart, or another process): ask again"),
                                     APPROVAL_GATE, agent_id)
            if (own.digest if own is not None else req.digest) != digest:
                raise self._deny_now(t.prepared, _deny("approval-mismatch", f"approval {approval_id} was granted for a different call"),
                                     APPROVAL_GATE, agent_id)
            # Terms from this Governor's record and this call; the stored deadline only for a request
            # another Governor made (the votes' own signed expiry still bounds it).
            terms = self._approval_terms(approval_id, action, decision, own.deadline if own is not None else req.expires_at)
            state = self._tally(terms, req)
            if self._observer is not None:
                self._observer.resolved(state.status.value, req.id)
            if state.status is ApprovalStatus.APPROVED:
                t.approval = terms
                return None
            if state.status is ApprovalStatus.PENDING:
                if resumed and blocking:
                    t.approval = terms  # the same call, back again: wait on the request it opened
                    return req
                self._release(t.prepared)
                if self._observer is not None:
                    self._observer.decided(APPROVAL_GATE, decision, HELD)
                raise ApprovalRequired(req.id, decision)
            raise self._deny_now(t.prepared, _approval_denial(req.id, state), APPROVAL_GATE, agent_id)
        now = time.time()
        terms = self._approval_terms("", action, decision, now + self.approval_timeout)
        unavailable = self._unapprovable(terms)
        if unavailable is not None:
            raise self._deny_now(t.prepared, _deny("approval-unavailable", unavailable), APPROVAL_GATE, agent_id)
        req = new_request(
            agent_id, action.action.tool, decision.rule_ids, decision.approvers, terms.quorum,
            self.approval_timeout, {"digest": digest, "document": dict(action.document)}, now,
        )
        terms = replace(terms, request_id=req.id, deadline=req.expires_at)
        with self._approval_lock:
            self._forget_old_requests(now)
            self._issued[req.id] = terms
            if call_key is not None:
                self._by_call[call_key] = req.id
        self.approvals.create(req)
        if self._observer is not None:
            self._observer.approval("opened", req.id, req.expires_at)
        self._record("approval", agent_id, result={"request": req.id, "status": "pending", "rules": list(decision.rule_ids),
                                                   **({"call_id": safe_str(call_id)} if call_id else {})})
        if not blocking:
            self._release(t.prepared)
            if self._observer is not None:
                self._observer.decided(APPROVAL_GATE, decision, HELD)
            raise ApprovalRequired(req.id, decision)
        t.approval = terms
        return req

    def _approval_terms(self, request_id: str, action: Action, decision: Decision, deadline: float) -> Terms:
        eligible = eligible_approvers(decision.approvers, self.approvers)
        return Terms(request_id, action.agent.id, action_digest(action), decision.approvers,
                     effective_quorum(self.quorum, eligible), deadline, self._agent_did(action.agent.id))

    def _agent_did(self, agent_id: str) -> str | None:
        """The requesting agent's own key, if this Governor knows it: an approver key equal to it never counts."""
        resolve = getattr(self.identity, "resolve", None)
        try:
            return resolve(agent_id) if resolve is not None else None
        except Exception:  # noqa: BLE001 - an unknown agent simply has no key to compare
            return None

    def _unapprovable(self, terms: Terms) -> str | None:
        """Why no vote could ever grant this request (asking would only wait out the deadline), or None."""
        eligible = eligible_approvers(terms.approvers, self.approvers)
        able = [a for a in eligible if a in self.approvers and a != terms.agent_id
                and self.approvers.get(a).did != terms.agent_did]  # type: ignore[union-attr]
        if len(able) >= terms.quorum:
            return None
        wanted = ", ".join(eligible) or "any configured approver"
        return (f"needs {terms.quorum} approval(s) from {wanted}, but only {len(able)} of them can vote: an approver "
                f"needs a key in this Governor's approver registry ({self.approvers.source}: "
                f"{', '.join(self.approvers.names) or 'empty'}) and cannot be the requesting agent")

    def _tally(self, terms: Terms, req: ApprovalRequest) -> Tally:
        used = req.consumed_at is not None or terms.request_id in self._used
        return tally(terms, req.votes, self.approvers, time.time(), approval_validity=self.approval_validity, consumed=used)

    def _forget_old_requests(self, now: float) -> None:
        """Requests whose every possible approval has ended; called with the lock held."""
        horizon = self.approval_validity or 0.0
        for rid in [rid for rid, terms in self._issued.items() if terms.deadline + horizon < now]:
            del self._issued[rid]
        for key in [key for key, rid in self._by_call.items() if rid not in self._issued]:
            del self._by_call[key]
        # A use forgotten here is still refused: an id this Governor neither issued nor used is approval-foreign.
        kept = self.approval_timeout + horizon
        for rid in [rid for rid, at in self._used.items() if at + kept < now]:
            del self._used[rid]

    def approval_status(self, request_id: str) -> Tally:
        """What this Governor makes of a request now, from the votes that verify against its registry."""
        req = self.approvals.get(request_id)
        return self._tally(self.approval_terms(req), req)

    def approval_terms(self, req: ApprovalRequest) -> Terms:
        """The terms this Governor holds ``req`` to (for checking a vote before it is stored): its own record of
        the request, else, for one another Governor opened, the store's."""
        return self._issued.get(req.id) or Terms.of(req, self._agent_did(req.agent_id))

    def _resolved(self, t: _Ticket, state: Tally) -> None:
        """After the wait: the kill switch, the trust ring, the mode and the policy are asked again, because any
        of them may have changed while a human was deciding."""
        p, terms = t.prepared, t.approval
        assert terms is not None
        agent_id = p.action.agent.id
        self._record("approval", agent_id, result={"request": terms.request_id, "status": state.status.value,
                                                   "approvals": list(state.approvals), "ignored": list(state.ignored)})
        if self._observer is not None:
            self._observer.resolved(state.status.value, terms.request_id)
        p.mode = self.mode_for(agent_id)
        who = self._agent(agent_id)
        blocked = self._trust_gate(who, p.action.action.kind)
        if blocked is not None:
            self._enforce(t, blocked, TRUST_GATE, t.warnings)
        if state.status is not ApprovalStatus.APPROVED:
            raise self._deny_now(p, _approval_denial(terms.request_id, state), APPROVAL_GATE, agent_id)
        again = self.decide(replace(p.action, agent=who))
        verdict = apply_mode(again, p.mode, self.critical_rules)
        if verdict.effect is Effect.DENY:
            raise self._deny_now(p, again, POLICY_GATE, agent_id)
        if verdict.effect is Effect.REQUIRE_APPROVAL:
            # The policy may now want other approvers: the votes already cast must satisfy those too.
            terms = self._approval_terms(terms.request_id, p.action, again, terms.deadline)
            try:
                state = self._tally(terms, self.approvals.get(terms.request_id))
            except ApprovalError as exc:
                raise self._deny_now(p, _deny("approval-unknown", str(exc)), APPROVAL_GATE, agent_id) from None
            if state.status is not ApprovalStatus.APPROVED:
                raise self._deny_now(p, _deny("approval-stale", f"the policy now asks approval {terms.request_id} of "
                                              f"{', '.join(again.approvers) or 'any approver'}; the votes cast do not satisfy it"),
                                     APPROVAL_GATE, agent_id)
            t.approval = terms

    def _consume_approval(self, t: _Ticket) -> None:
        """Use the approval up, just before the tool runs. This Governor's own record decides for its
        process; the mark in the shared store tells other Governors, and one found there is honoured."""
        if t.approval is None:
            return
        rid, now = t.approval.request_id, time.time()
        with self._approval_lock:
            fresh = rid not in self._used
            self._used[rid] = self._used.get(rid, now)
            self._issued.pop(rid, None)
        try:
            stored = self.approvals.consume(rid, now)
        except Exception as exc:  # noqa: BLE001 - a use that cannot be recorded is not made
            raise self._deny_now(t.prepared, _deny("approval-store", f"cannot record the use of approval {rid}: "
                                                   f"{type(exc).__name__}: {exc}"), APPROVAL_GATE, t.prepared.action.agent.id) from None
        if not (fresh and stored):
            raise self._deny_now(t.prepared, _deny("approval-consumed", f"approval {rid} was already used"),
                                 APPROVAL_GATE, t.prepared.action.agent.id)
        if self._observer is not None:
            self._observer.approval("consumed", rid)

    def _wait(self, t: _Ticket) -> Tally:
        try:
            with self._shared_state(t.prepared, t.action.agent.id):
                return wait(*self._wait_on(t))
        except ApprovalError as exc:
            raise self._deny_now(t.prepared, _deny("approval-unknown", str(exc)), APPROVAL_GATE, t.prepared.action.agent.id) from None

    async def _await(self, t: _Ticket) -> Tally:
        try:
            with self._shared_state(t.prepared, t.action.agent.id):
                return await wait_async(*self._wait_on(t))
        except ApprovalError as exc:
            raise self._deny_now(t.prepared, _deny("approval-unknown", str(exc)), APPROVAL_GATE, t.prepared.action.agent.id) from None

    def _wait_on(self, t: _Ticket) -> tuple:
        """What wait() needs: the store, the request, this Governor's tally, the deadline, and a stop when
        the agent is killed (a killed agent need not wait for a human)."""
        terms = t.approval
        assert terms is not None and t.pending is not None
        return (self.approvals, t.pending.id, lambda req: self._tally(terms, req), terms.deadline, 0.05, time.time,
                lambda: self.trust.is_killed(terms.agent_id))

    def _gate_audit(self, agent: Agent | str, tool: str, prepared: _Prepared | None = None) -> None:
        """A tool never runs unaudited: a sink that cannot record denies the call, whatever the mode, before
        anything is decided and again just before the tool runs. That sink cannot take the denial, so it
        is logged and raised."""
        problem = sink_health(self.audit)
        if problem is None:
            return
        agent_id = agent.id if isinstance(agent, Agent) else agent
        _log.error("denied %s for %r before the tool ran: the audit log cannot record: %s", tool, agent_id, problem)
        if prepared is not None:
            self._release(prepared)
        denial = _deny("audit-unavailable", f"the audit log cannot record this call: {problem}")
        if self._observer is not None:
            self._observer.decided(AUDIT_GATE, denial, DENIED)
        raise GovernanceDenied(denial, AUDIT_GATE)

    def call(
        self, fn: Callable[..., Any], args: tuple = (), kwargs: Mapping[str, Any] | None = None, *,
        tool: str | None = None, params: Mapping[str, Any] | None = None, agent: Agent | str = "agent",
        session: str = "default", task: str | None = None, kind: Kind | str | None = None,
        resource: Resource | None = None, approval_id: str | None = None, envelope: Any = None,
        delegation: Any = None, call_id: str | None = None, action_type: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` if every gate allows; ``params`` defaults to the bound arguments.
        ``envelope``/``delegation``: the caller's signed action envelope and delegation chain.
        ``call_id``: the framework's id for this tool call; a call repeated with it finds its approval request."""
        kwargs = dict(kwargs) if kwargs else {}
        name = tool or fn.__name__
        if params is None:
            params = _bind(fn, args, kwargs)
        observed = self._observer is not None
        if observed:
            # Tracing wraps the public phases: go through them, so their spans are this call's.
            t = self.begin(name, params, agent=agent, session=session, task=task, kind=kind, resource=resource,
                           approval_id=approval_id, envelope=envelope, delegation=delegation, call_id=call_id,
                           action_type=action_type, attributes=attributes)
        else:  # what begin() runs, without forwarding every argument through it
            t = self._begin(name, params, agent, session, task, kind, resource, approval_id, call_id, envelope,
                            delegation, None, action_type, attributes)
            if t.pending is not None:
                self._hold(t)
            self._admit(t)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self.fail(t, exc)
            raise
        if observed:
            return self.finish(t, result)
        t.closed = True  # what finish() does first: this ticket never left this call, so it is open and ours
        return self._after(t, result)

    async def acall(
        self, fn: Callable[..., Awaitable[Any]], args: tuple = (), kwargs: Mapping[str, Any] | None = None, *,
        tool: str | None = None, params: Mapping[str, Any] | None = None, agent: Agent | str = "agent",
        session: str = "default", task: str | None = None, kind: Kind | str | None = None,
        resource: Resource | None = None, approval_id: str | None = None, envelope: Any = None,
        delegation: Any = None, call_id: str | None = None, action_type: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Any:
        """The asyncio form of :meth:`call`: waiting for an approval awaits instead of blocking the loop."""
        kwargs = dict(kwargs or {})
        name = tool or fn.__name__
        t = await self.abegin(name, params if params is not None else _bind(fn, args, kwargs), agent=agent,
                              session=session, task=task, kind=kind, resource=resource, approval_id=approval_id,
                              envelope=envelope, delegation=delegation, call_id=call_id, action_type=action_type,
                              attributes=attributes)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.fail(t, exc)
            raise
        return self.finish(t, result)

    # --- two phases, for hooks that see only "before" and "after" ----------------------------------
    def begin(
        self, tool: str, params: Mapping[str, Any] | None = None, *, agent: Agent | str = "agent",
        session: str = "default", task: str | None = None, kind: Kind | str | None = None,
        resource: Resource | None = None, approval_id: str | None = None, call_id: str | None = None,
        envelope: Any = None, delegation: Any = None, wait: bool | None = None, action_type: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Ticket:
        """Every gate :meth:`call` runs before the tool. Returns a :data:`Ticket` when the tool may run now;
        raises :class:`GovernanceDenied`, or :class:`ApprovalRequired` when an approval is pending and this
        call does not wait for it (``wait=False``, or a Governor built with ``blocking_approvals=False``).

        ``call_id`` is the framework's id for this tool call (its idempotency key): a call that comes back
        with the same id (a resumed run) finds the approval request it opened instead of opening another.
        ``action_type`` is AGT's action type (the tool's own verb; default the tool name) and ``attributes`` the
        free-form context an AGT policy reads by name (docs/agt-compatibility.md)."""
        t = self._begin(tool, params, agent, session, task, kind, resource, approval_id, call_id, envelope,
                        delegation, wait, action_type, attributes)
        if t.pending is not None:
            self._hold(t)
        self._admit(t)
        return t

    async def abegin(
        self, tool: str, params: Mapping[str, Any] | None = None, *, agent: Agent | str = "agent",
        session: str = "default", task: str | None = None, kind: Kind | str | None = None,
        resource: Resource | None = None, approval_id: str | None = None, call_id: str | None = None,
        envelope: Any = None, delegation: Any = None, wait: bool | None = None, action_type: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Ticket:
        """The asyncio form of :meth:`begin`: waiting for an approval awaits instead of blocking the loop."""
        t = self._begin(tool, params, agent, session, task, kind, resource, approval_id, call_id, envelope,
                        delegation, wait, action_type, attributes)
        if t.pending is not None:
            try:
                state = await self._await(t)
            except BaseException:
                self._release(t.prepared)  # cancelled while waiting (a tool timeout, the run ending): never ran
                raise
            with self._shared_state(t.prepared, t.action.agent.id):
                self._resolved(t, state)
        self._admit(t)
        return t

    def finish(self, ticket: Ticket, result: Any) -> Any:
        """The tool ran and returned ``result``: the output check and the audit record, as in :meth:`call`.
        Returns ``result``, or raises :class:`GovernanceDenied` when the output check refuses it."""
        self._close(ticket)
        return self._after(ticket, result)

    def fail(self, ticket: Ticket, exc: BaseException) -> None:
        """The tool ran and raised ``exc``: the breakers count a failure and the audit records the error."""
        self._close(ticket)
        self._after_failure(ticket, exc)

    def abandon(self, ticket: Ticket, reason: str) -> None:
        """The tool never ran after all (the framework skipped it, or the run ended): the call stops counting
        against the task's budget, and the audit records that it was admitted but not run."""
        self._close(ticket)
        self._release(ticket.prepared)
        self._audit_decision(ticket.prepared, ticket.decision, POLICY_GATE, ticket.verdict,
                             tool_error=f"not run: {safe_str(reason)}")

    def _hold(self, t: _Ticket) -> None:
        """Wait for the approval ``t`` is pending on, then ask the gates again."""
        try:
            state = self._wait(t)
        except BaseException:
            self._release(t.prepared)  # interrupted while waiting: the call never ran
            raise
        with self._shared_state(t.prepared, t.action.agent.id):
            self._resolved(t, state)

    def _admit(self, t: _Ticket) -> None:
        """The last gates, just before the tool runs: the audit can still record, the approval is used up,
        and the breakers let the call through."""
        p = t.prepared
        if getattr(self.audit, "health", None) is not None:  # a sink without health() is healthy (sink_health)
            self._gate_audit(p.action.agent.id, p.action.action.tool, p)
        if t.approval is not None:
            self._consume_approval(t)
        blocked = self._reliability_gate(p.action)
        if blocked is not None:
            self._enforce(t, blocked, RELIABILITY_GATE, t.warnings)

    @staticmethod
    def _close(ticket: _Ticket) -> None:
        if not isinstance(ticket, _Ticket):
            raise TypeError(f"expected the Ticket begin() returned, not {type(ticket).__name__}")
        if ticket.closed:
            raise ValueError(f"this call to {ticket.action.action.tool} was already finished, failed or abandoned")
        ticket.closed = True

    def _after_failure(self, t: _Ticket, exc: BaseException) -> None:
        self._record_breakers(t.prepared.action, False)
        self._audit_decision(t.prepared, t.decision, POLICY_GATE, t.verdict, tool_error=f"{type(exc).__name__}: {safe_str(exc)}")

    def _after(self, t: _Ticket, result: Any) -> Any:
        p, warnings = t.prepared, t.warnings
        action = p.action
        agent_id = action.agent.id
        self.breakers.record(agent_id, action.action.tool, True)
        out_decision = self._check_output(action, result)
        if out_decision is not None:
            out_verdict = apply_mode(out_decision, p.mode, self.critical_rules)
            self._audit_decision(p, out_decision, OUTPUT_GATE, out_verdict)
            if out_verdict.effect is not Effect.ALLOW:
                self.trust.record_denied(agent_id)
                raise GovernanceDenied(out_decision, OUTPUT_GATE)
            warnings.append((OUTPUT_GATE, out_decision))
        for gate, warned in warnings:
            if gate != OUTPUT_GATE:
                self._audit_decision(p, warned, gate, Verdict(Effect.ALLOW, warning=True))
        self._audit_decision(p, t.decision, POLICY_GATE, t.verdict)
        if not warnings and not t.verdict.warning:
            self.trust.record_allowed(agent_id)
        return result

    # --- audit -------------------------------------------------------------------------------------
    def _audit_decision(self, p: _Prepared, decision: Decision, gate: str, verdict: Verdict, tool_error: str | None = None) -> None:
        if self._observer is not None:  # metrics and traces count what the audit log records (docs/metrics.md)
            self._observer.decided(gate, decision, DENIED if verdict.effect is Effect.DENY else ADMITTED)
        action = p.action
        self.audit.write(AuditRecord._of(
            new_decision_id(), time.time_ns(), "decision", action.agent.id, gate,
            action.document, _result(decision, verdict, p.mode, tool_error),  # type: ignore[arg-type]
            {"engine": decision.engine, "revision": decision.revision},
            {"latency_us": (time.perf_counter() - p.started) * 1e6},
        ))

    def _record(self, kind: str, agent_id: str, *, path: str = "", result: dict | None = None,
                input: dict | None = None) -> None:  # noqa: A002 - the audit record's field
        self.audit.write(AuditRecord(new_decision_id(), time.time_ns(), kind, agent_id, path=path, input=input,
                                     result=result or {}))

    def _audit_trust(self, change: TrustChange) -> None:
        self._record("trust", change.agent_id, result={"from": change.old_score, "to": change.new_score, "reason": change.reason})

    def close(self) -> None:
        self.engine.close()
        if self.output_engine is not None:
            self.output_engine.close()
        self.store.close()
        closer = getattr(self.audit, "close", None)
        if closer is not None:
            closer()


def _policy_mode(engine: Engine) -> Mode:
    policy = getattr(engine, "policy", None)
    mode = getattr(policy, "mode", None)
    return Mode(mode) if mode in {m.value for m in Mode} else Mode.STRICT


def _critical_rules(engine: Engine) -> frozenset[str]:
    policy = getattr(engine, "policy", None)
    if policy is not None and hasattr(policy, "rules"):
        return frozenset(r.id for r in policy.rules if getattr(r, "critical", False))
    rules = getattr(engine, "rules", None)
    if isinstance(rules, Mapping):
        return frozenset(rid for rid, r in rules.items() if getattr(r, "critical", False))
    return frozenset()


_SIGNATURES: dict[Any, inspect.Signature | None] = {}
_POSITIONAL: dict[Any, tuple[tuple[str, ...], bool] | None] = {}
"""fn → its positional parameters' names and whether one is self or cls (None: it takes *args, or has no
signature). Facts about the function, never about a call: the same for every call of it."""


def _positional_names(fn: Callable[..., Any], sig: inspect.Signature | None) -> tuple[tuple[str, ...], bool] | None:
    """Names for positional arguments, and whether self or cls is one, when the signature is plain (no *args),
    else None."""
    if sig is None:
        return None
    names = []
    for p in sig.parameters.values():
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
    return tuple(names), bool({"self", "cls"} & set(names))


def _learn(fn: Callable[..., Any]) -> tuple[tuple[str, ...], bool] | None:
    """Read ``fn``'s signature once, for every later call of it."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    _SIGNATURES[fn] = sig  # first: whoever finds fn in _POSITIONAL finds it here too
    positional = _POSITIONAL[fn] = _positional_names(fn, sig)
    return positional


def _bind(fn: Callable[..., Any], args: tuple, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The call's arguments by parameter name: what the policy sees as ``action.params``."""
    if not args:
        return dict(kwargs)
    positional = _POSITIONAL.get(fn, ...)
    if positional is ...:
        positional = _learn(fn)
    if positional is not None:
        names, has_self = positional
        if len(args) <= len(names) and not (kwargs and not kwargs.keys().isdisjoint(names[: len(args)])):
            out = dict(zip(names, args))
            if has_self:  # the instance or class a method is bound to is not a param
                out.pop("self", None)
                out.pop("cls", None)
            if kwargs:
                out.update(kwargs)
            return out
    sig = _SIGNATURES[fn]
    if sig is None:
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
    bound = sig.bind_partial(*args, **kwargs)
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        elif name not in ("self", "cls"):
            out[name] = value
    return out


def _result(decision: Decision, verdict: Verdict, mode: Mode, tool_error: str | None) -> dict[str, Any]:
    """A decision record's result: ``decision.to_dict()``, then what the runtime did with it. The usual decision
    (no approvers, no notes, an engine and a revision) is built as one dict: every governed call writes one, and
    a dict grown key by key is resized on the way. (``_value_``: ``.value`` is a descriptor call.)"""
    if tool_error is None and not decision.approvers and not decision.notes and decision.engine and decision.revision:
        return {"effect": decision.effect._value_,
                "reasons": [{"id": r.rule_id, "message": r.message} for r in decision.reasons],
                "engine": decision.engine, "revision": decision.revision,
                "enforced": verdict.effect._value_, "warning": verdict.warning, "mode": mode._value_}
    result = decision.to_dict()
    if tool_error is not None:
        result["tool_error"] = tool_error
    result["enforced"] = verdict.effect._value_
    result["warning"] = verdict.warning
    result["mode"] = mode._value_
    return result


def _text_of(result: Any) -> tuple[str, str | None]:
    """A tool result as text, and why it has no faithful text form (None when it has one). A result
    whose conversion raises gets a placeholder naming its type, so the call is still audited."""
    if result is None:
        return "", None
    if isinstance(result, (bytes, bytearray)):
        return bytes(result).decode("utf-8", "replace"), None
    try:
        return json.dumps(result, default=str, ensure_ascii=False), None
    except Exception:  # noqa: BLE001 - fall back to str(), then to the type
        pass
    try:
        text = str(result)
        if isinstance(text, str):
            return text, None
    except Exception:  # noqa: BLE001
        pass
    placeholder = f"<{type(result).__name__}: the tool result cannot be converted to text>"
    return placeholder, placeholder


def _approval_denial(request_id: str, state: Tally) -> Decision:
    by = f" by {state.denied_by}" if state.denied_by else ""
    ignored = f" ({'; '.join(state.ignored)})" if state.ignored else ""
    return _deny(f"approval-{state.status.value}", f"approval {request_id} was {state.status.value}{by}{ignored}")


def govern(
    fn: F | None = None, *, governor: Governor | None = None, policy: str | None = None, engine: Engine | str = "yaml",
    agent: Agent | str = "agent", session: str = "default", task: str | None = None, tool: str | None = None,
    kind: Kind | str | None = None, **governor_options: Any,
) -> Any:
    """Wrap a tool so every call is governed. Works as ``govern(fn, policy=...)`` and as a decorator
    ``@govern(policy=...)``, for sync and async functions; the wrapper keeps the signature and docstring.

    Pass ``governor=`` to share one Governor (state, trust, breakers, approvals) between tools.
    """
    if governor is None:
        governor = Governor(engine, policy, **governor_options)
    elif governor_options:
        raise TypeError(f"options {', '.join(governor_options)} belong to the Governor you passed")
    gov = governor

    def wrap(f: F) -> F:
        name = tool or f.__name__
        if inspect.iscoroutinefunction(f):
            @functools.wraps(f)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                extra = {k: kwargs.pop(f"_agt_{k}", None) for k in ("approval_id", "envelope", "delegation")}
                return await gov.acall(f, args, kwargs, tool=name, agent=agent, session=session, task=task,
                                       kind=kind, **extra)

            async_wrapper.governor = gov  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # Governance arguments travel as _agt_* keywords and never reach the tool.
            extra = {k: kwargs.pop(f"_agt_{k}", None) for k in ("approval_id", "envelope", "delegation")}
            return gov.call(f, args, kwargs, tool=name, agent=agent, session=session, task=task, kind=kind, **extra)

        wrapper.governor = gov  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap
