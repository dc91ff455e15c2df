"""What the offline framework examples share: the policy, three plain tools, a governor and a CFO.

Each example (``adk_agent.py``, ``crewai_agent.py``, ``langchain_agent.py``, ``mcp_proxy.py``,
``openai_agents_agent.py``, ``pydantic_ai_agent.py``) imports this with ``from _offline import ...``,
which works because Python puts a script's own directory on ``sys.path``. The framework-specific part,
the scripted model and the one line that adds agt, stays in the example.

- ``POLICY``: ``offline_policy.yaml`` next to this file. Mail to ``@evil.example`` is denied
  (``block-external-email``); a transfer over 100 needs the CFO (``large-transfer-approval``).
- ``get_weather``, ``send_email``, ``transfer_funds``: plain functions; each body appends its name to
  ``RAN``, so an example can show which bodies agt let run.
- ``offline_governor()``: a ``Governor`` on that policy with a real, signed audit log in a temp dir, and
  a CFO whose own Ed25519 key signs the vote that approves (the only vote that counts).
- ``cfo_approves_when_asked()``: the CFO at ``agt approvals approve``, in another thread.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agt.audit import AuditLog
from agt.identity import IdentityKeys
from agt.runtime.approvals import ApprovalStatus, cast_vote
from agt.runtime.approvers import ApproverRegistry
from agt.runtime.governor import Governor

POLICY = Path(__file__).resolve().with_name("offline_policy.yaml")

RAN: list[str] = []


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    RAN.append("get_weather")
    return f"sunny in {city}"


def send_email(to: str, body: str) -> str:
    """Send an email."""
    RAN.append("send_email")
    return f"sent to {to}"


def transfer_funds(amount: int) -> str:
    """Transfer money."""
    RAN.append("transfer_funds")
    return f"transferred {amount}"


@dataclass
class Offline:
    """A governed run's setting: the governor, the CFO's keys, the approver registry, the work directory."""

    governor: Governor
    cfo: IdentityKeys
    approvers: ApproverRegistry
    work: Path

    @property
    def audit_dir(self) -> Path:
        return self.work / "audit"


@contextmanager
def offline_governor(name: str, *, keep: bool = False, approval_timeout: float = 60) -> Iterator[Offline]:
    """A Governor on ``POLICY`` with a signed AuditLog in a fresh temp dir, and a CFO who can approve.

    The governor is closed on exit; the directory is removed too unless ``keep`` (to look at the audit log)."""
    work = Path(tempfile.mkdtemp(prefix=f"agt-{name}-example-"))
    cfo = IdentityKeys.generate("cfo")  # in a deployment, the CFO's own key, used from `agt approvals approve`
    approvers = ApproverRegistry({"cfo": cfo.identity}, source="<example>")
    governor = Governor("yaml", str(POLICY), audit=AuditLog(work / "audit", key_path=work / "audit.key"),
                        approvers=approvers, approval_timeout=approval_timeout)
    try:
        yield Offline(governor, cfo, approvers, work)
    finally:
        governor.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def cfo_approves_when_asked(env: Offline, *, announce: bool = False) -> threading.Thread:
    """The CFO at `agt approvals approve`, in another thread: a signed yes on the first pending request."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for req in env.governor.approvals.list():
                if env.governor.approval_status(req.id).status is ApprovalStatus.PENDING:
                    if announce:
                        print(f"  [cfo] approving {req.id} ({req.tool}, rules {', '.join(req.rule_ids)})")
                    cast_vote(env.governor.approvals, req.id, env.cfo, True, registry=env.approvers)
                    return
            time.sleep(0.01)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t
