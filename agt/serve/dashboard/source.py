"""Where the dashboard's data comes from: a live Governor (``agt serve --dashboard``), or an audit log and a
state URL on disk (``agt dashboard --log PATH --state URL``).

Both give the same things (audit records, the approvals store and the approver registry, trust, the kill
switch, breakers, counters, budget limits, audit verification); what one cannot give it says, with the reason,
instead of showing a made-up value. A log and a SQLite store, for instance, hold neither the breakers nor the
live kill switch: those live in the Governor's process.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

from agt.errors import AgtError
from agt.runtime.approvals import ApprovalRequest, ApprovalStore, Tally, Terms, tally
from agt.runtime.approvers import ApproverRegistry
from agt.serve.dashboard.budgets import budget_limits
from agt.serve.dashboard.feed import LogReader, MemoryReader, RecordFeed, Row
from agt.serve.dashboard.stats import killed_in_log, trust_history


class Unavailable(AgtError):
    """This source cannot do or show that; the message says why (and what would)."""


@dataclass(frozen=True)
class AuditStatus:
    location: str | None
    report: Mapping[str, Any] | None
    """:meth:`agt.audit.verify.VerifyReport.to_dict`, or None when the log could not be verified."""
    last_checkpoint: Mapping[str, Any] | None
    witness: str
    error: str | None = None
    key: str = ""
    """Which public key the checkpoints were checked against."""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.report and self.report.get("ok"))


class DashboardSource(Protocol):
    feed: RecordFeed
    label: str

    @property
    def approvals(self) -> ApprovalStore | None: ...

    @property
    def registry(self) -> ApproverRegistry: ...

    def status_of(self, req: ApprovalRequest) -> Tally: ...

    def resolve_agent(self, agent_id: str) -> str | None: ...

    def trust_score(self, agent: str, rows: list[Row]) -> int | None: ...

    def killed(self, agent: str, rows: list[Row]) -> bool | None: ...

    def kill_switch_problem(self) -> str | None:
        """None when :meth:`set_killed` works, else why not."""
        ...

    def set_killed(self, agent: str, killed: bool) -> None: ...

    def breakers(self) -> dict[str, str]:
        """Breaker key (``agent:<id>``, ``tool:<name>``) → state; raises :class:`Unavailable`."""
        ...

    def counters(self, task: str) -> dict[str, int] | None: ...

    def limits(self) -> dict[str, int]: ...

    def audit_status(self) -> AuditStatus: ...

    def close(self) -> None: ...


def _last_checkpoint(location: str) -> Mapping[str, Any] | None:
    from agt.audit.backends import open_backend

    backend = open_backend(location, create=False)
    try:
        line = backend.last_checkpoint()
    finally:
        backend.close()
    if line is None:
        return None
    try:
        doc = json.loads(line.text)
    except ValueError:
        return {"unreadable": line.where}
    return doc if isinstance(doc, dict) else {"unreadable": line.where}


def _verify(location: str | None, public_key: Any, key_label: str, strict: bool, witness: Any,
            witness_state: str) -> AuditStatus:
    from agt.audit import verify_log

    if location is None:
        return AuditStatus(None, None, None, witness_state, "the Governor's audit sink is in memory: there is no "
                           "tamper-evident log to verify (give the Governor an agt.audit.AuditLog)")
    if not Path(location).exists():
        return AuditStatus(location, None, None, witness_state, f"no audit log at {location} yet")
    try:
        report = verify_log(location, public_key, strict=strict, witness=witness).to_dict()
        last = _last_checkpoint(location)
    except (AgtError, OSError, ValueError) as exc:
        return AuditStatus(location, None, None, witness_state, f"cannot verify: {exc}", key_label)
    if witness is not None and report.get("ok"):
        witness_state = f"{witness_state}; {report.get('witnessed', 0)} witnessed checkpoint(s) match the log"
    return AuditStatus(location, report, last, witness_state, None, key_label)


def _counts(c: Any) -> dict[str, int]:
    return {"tokens_used": c.tokens_used, "tool_calls": c.tool_calls, "files_changed": c.files_changed}


def _location(sink: Any) -> str | None:
    backend = getattr(sink, "backend", None)
    where = getattr(backend, "dir", None) or getattr(backend, "path", None)
    return str(where) if where is not None else None


class GovernorSource:
    """A live Governor: everything is read from (and the kill switch set on) the Governor itself."""

    label = "governor"

    def __init__(self, governor: Any) -> None:
        self.governor = governor
        self.location = _location(governor.audit)
        if self.location is not None:
            reader: Callable[[], list[dict[str, Any]]] = LogReader(self.location)
        elif hasattr(governor.audit, "records"):
            reader = MemoryReader(governor.audit)
        else:
            reader = list  # a sink that cannot be read back shows no records
        self.feed = RecordFeed(reader)
        self._limits = budget_limits(governor.engine)

    @property
    def approvals(self) -> ApprovalStore:
        return self.governor.approvals

    @property
    def registry(self) -> ApproverRegistry:
        return self.governor.approvers

    def status_of(self, req: ApprovalRequest) -> Tally:
        return self.governor.approval_status(req.id)

    def resolve_agent(self, agent_id: str) -> str | None:
        resolve = getattr(self.governor.identity, "resolve", None)
        try:
            return resolve(agent_id) if resolve is not None else None
        except Exception:  # noqa: BLE001 - an agent without a key has no did to compare
            return None

    def trust_score(self, agent: str, rows: list[Row]) -> int | None:
        return self.governor.trust.score(agent)

    def killed(self, agent: str, rows: list[Row]) -> bool | None:
        return self.governor.trust.is_killed(agent)

    def kill_switch_problem(self) -> str | None:
        return None

    def set_killed(self, agent: str, killed: bool) -> None:
        (self.governor.kill if killed else self.governor.revive)(agent)

    def breakers(self) -> dict[str, str]:
        return {key: state.value for key, state in self.governor.breakers.states().items()}

    def counters(self, task: str) -> dict[str, int] | None:
        return _counts(self.governor.store.counters(task))

    def limits(self) -> dict[str, int]:
        return self._limits

    def audit_status(self) -> AuditStatus:
        sink = self.governor.audit
        witness = getattr(sink, "witness", None)
        problem = getattr(sink, "witness_error", None)
        state = "no witness configured" if witness is None else (f"{witness}: last copy failed: {problem}" if problem
                                                                 else f"{witness}: copies sent")
        key = getattr(getattr(sink, "signing_key", None), "public_key", None)
        # The writer's own key, from this process's memory: nothing in the log directory is trusted for it.
        return _verify(self.location, key() if key is not None else None, "the Governor's signing key",
                       key is not None, witness, state)

    def close(self) -> None:
        self.feed.close()


class LogSource:
    """An audit log and a state URL on disk, as another process's Governor writes them."""

    label = "log"

    def __init__(self, log: str | Path, state_url: str | None = None, *, approvers: str | Path | None = None,
                 audit_public_key: str | Path | None = None, witness: str | None = None,
                 witness_token: str | None = None, policy_engine: Any = None) -> None:
        from agt.audit import load_public_key
        from agt.runtime.backends import open_state

        self.location = str(log)
        self.feed = RecordFeed(LogReader(self.location))
        self.state = open_state(state_url) if state_url else None
        self._registry = ApproverRegistry.from_file(approvers) if approvers else ApproverRegistry(source="<none>")
        self._public_key = load_public_key(audit_public_key) if audit_public_key else None
        self._key_label = str(audit_public_key) if audit_public_key else "checkpoint.pub beside the log (untrusted)"
        self._witness = witness
        self._witness_token = witness_token
        self._limits = budget_limits(policy_engine) if policy_engine is not None else {}

    @property
    def approvals(self) -> ApprovalStore | None:
        return self.state.approvals if self.state is not None else None

    @property
    def registry(self) -> ApproverRegistry:
        return self._registry

    def status_of(self, req: ApprovalRequest) -> Tally:
        # The store's own terms: for display. The Governor that waits tallies with its own record.
        return tally(Terms.of(req), req.votes, self._registry, time.time(), consumed=req.consumed_at is not None)

    def resolve_agent(self, agent_id: str) -> str | None:
        return None

    def trust_score(self, agent: str, rows: list[Row]) -> int | None:
        history = trust_history(rows, agent)
        return history[-1][1] if history else None

    def killed(self, agent: str, rows: list[Row]) -> bool | None:
        if self._shared_trust():
            assert self.state is not None
            return self.state.trust.is_killed(agent)
        return killed_in_log(rows, agent)

    def _shared_trust(self) -> bool:
        return self.state is not None and urlsplit(self.state.url).scheme in ("redis", "rediss")

    def kill_switch_problem(self) -> str | None:
        if self._shared_trust():
            return None
        where = self.state.url if self.state is not None else "no --state"
        return (f"the kill switch lives in the Governor's process with state {where}: only a Redis state URL shares "
                "it; use agt serve --dashboard, or the Governor's own kill()")

    def set_killed(self, agent: str, killed: bool) -> None:
        problem = self.kill_switch_problem()
        if problem is not None:
            raise Unavailable(problem)
        assert self.state is not None
        (self.state.trust.kill if killed else self.state.trust.revive)(agent)

    def breakers(self) -> dict[str, str]:
        raise Unavailable("circuit breakers live in the Governor's process; a log and a store do not hold them "
                          "(agt serve --dashboard shows them)")

    def counters(self, task: str) -> dict[str, int] | None:
        if self.state is None:
            return None
        return _counts(self.state.store.counters(task))

    def limits(self) -> dict[str, int]:
        return self._limits

    def audit_status(self) -> AuditStatus:
        from agt.audit.witness import open_witness

        witness = open_witness(self._witness, self._witness_token) if self._witness else None
        state = "no witness given (--witness)" if witness is None else f"{witness}"
        return _verify(self.location, self._public_key, self._key_label, self._public_key is not None, witness, state)

    def close(self) -> None:
        self.feed.close()
        if self.state is not None:
            self.state.close()
