"""Approvers with real Ed25519 keys for tests: a registry for the Governor and signed votes for the store."""

from __future__ import annotations

import threading
import time

from agt.identity import IdentityKeys
from agt.runtime.approvals import ApprovalStatus, cast_vote
from agt.runtime.approvers import ApproverRegistry


class Approvers:
    def __init__(self, *names: str) -> None:
        self.keys = {n: IdentityKeys.generate(n) for n in names}
        self.registry = ApproverRegistry({n: k.identity for n, k in self.keys.items()}, source="<test approvers>")

    def vote(self, store, request_id: str, name: str, approve: bool = True, **kw):
        return cast_vote(store, request_id, self.keys[name], approve, registry=self.registry, **kw)


def resolve_when_pending(gov, approvers: Approvers, name: str, approve: bool, count: int = 1,
                         timeout: float = 30.0) -> threading.Thread:
    """In another thread (a human at `agt approvals`): vote on the next ``count`` pending requests."""

    def run() -> None:
        done: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(done) < count and time.monotonic() < deadline:
            for req in gov.approvals.list():
                if req.id not in done and gov.approval_status(req.id).status is ApprovalStatus.PENDING:
                    approvers.vote(gov.approvals, req.id, name, approve)
                    done.add(req.id)
            time.sleep(0.005)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def stored_call(agent: str, tool: str = "send_email", **params) -> dict:
    """What a Governor stores with a request: the call's document and the digest votes are bound to."""
    from agt.action import Action, Agent, Operation
    from agt.runtime.approvals import action_digest

    action = Action(Agent(agent), Operation(tool, params=params or {"to": "cfo@example.com"}))
    return {"digest": action_digest(action), "document": action.to_dict()}
