"""The scenario every adapter test drives through its framework's real agent loop.

* ``get_weather(city)`` is allowed;
* ``send_email(to, body)`` to ``@evil.example`` is denied by ``block-external-email``;
* ``transfer_funds(amount)`` over 100 needs the CFO's approval (``large-transfer-approval``);
* :func:`broken_governor` has an engine that raises, so every call must be denied (``engine-error``).

Each tool appends to :data:`RAN` when its body runs: a denied tool's body must never appear there.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from agt.audit import AuditLog
from agt.audit.log import select
from agt.engines.base import Engine
from agt.runtime.governor import Governor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/approval_helpers.py
from approval_helpers import Approvers, resolve_when_pending  # noqa: E402

POLICY = str(HERE / "scenario_policy.yaml")
DENY_RULE, APPROVAL_RULE = "block-external-email", "large-transfer-approval"
ALLOWED = ("get_weather", {"city": "Paris"})
DENIED = ("send_email", {"to": "boss@evil.example", "body": "the numbers"})
NEEDS_APPROVAL = ("transfer_funds", {"amount": 500})
RAN: list[tuple[str, dict]] = []


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    RAN.append(("get_weather", {"city": city}))
    return f"sunny in {city}"


def send_email(to: str, body: str) -> str:
    """Send an email."""
    RAN.append(("send_email", {"to": to, "body": body}))
    return f"sent to {to}"


def transfer_funds(amount: int) -> str:
    """Transfer money."""
    RAN.append(("transfer_funds", {"amount": amount}))
    return f"transferred {amount}"


TOOLS = (get_weather, send_email, transfer_funds)


class Scenario:
    """A Governor on the scenario policy, with a real audit log under ``tmp`` and a CFO whose signed vote counts."""

    def __init__(self, tmp: Path, **governor_options) -> None:
        RAN.clear()
        self.approvers = Approvers("cfo")
        self.log_dir = tmp / "audit"
        self.audit = AuditLog(self.log_dir, key_path=tmp / "audit.key")
        self.governor = Governor("yaml", POLICY, audit=self.audit, approvers=self.approvers.registry,
                                 approval_timeout=30, **governor_options)

    def audited_rules(self) -> set[str]:
        """Every rule id the audit log records a decision for."""
        self.audit.flush()
        return {r["id"] for rec in select(self.log_dir, kind="decision") for r in rec["result"].get("reasons", [])}

    def requests(self) -> list:
        return self.governor.approvals.list()

    def vote(self, request_id: str, approve: bool = True) -> None:
        """The CFO's signed vote, as `agt approvals approve` casts it."""
        self.approvers.vote(self.governor.approvals, request_id, "cfo", approve)

    def vote_when_pending(self, approve: bool = True, count: int = 1, timeout: float = 30.0) -> threading.Thread:
        """In another thread (a human at `agt approvals`): vote on the next ``count`` pending requests."""
        return resolve_when_pending(self.governor, self.approvers, "cfo", approve, count, timeout)

    def close(self) -> None:
        self.governor.close()


class RaisingEngine(Engine):
    """Fault injection: an engine whose every evaluation raises."""

    name = "broken"
    revision = "broken"

    def evaluate(self, action):  # noqa: ANN001
        raise RuntimeError("engine exploded")

    def evaluate_many(self, actions):  # noqa: ANN001
        return [self.evaluate(a) for a in actions]

    def close(self) -> None:
        pass


class BrokenScenario(Scenario):
    """The scenario with an engine that raises: every call is denied with ``engine_error``."""

    def __init__(self, tmp: Path) -> None:
        RAN.clear()
        self.approvers = Approvers("cfo")
        self.log_dir = tmp / "audit"
        self.audit = AuditLog(self.log_dir, key_path=tmp / "audit.key")
        self.governor = Governor(RaisingEngine(), audit=self.audit, approvers=self.approvers.registry)


ENGINE_ERROR = "engine_error"


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)
