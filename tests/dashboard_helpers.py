"""What the dashboard tests share: a real uvicorn server on a free loopback port, and a governed workload
(a Governor with the starter policy, a tamper-evident audit log and an approver registry)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from agt.action import Agent
from agt.audit import AuditLog
from agt.identity import IdentityKeys
from agt.resources import starter_policy
from agt.runtime.approvers import ApproverRegistry
from agt.runtime.governor import Governor
from agt.serve.dashboard import DashboardConfig, GovernorSource, dashboard_app

OPERATOR_TOKEN = "operator-secret-7f3a"
AGENT = "support-bot"
XSS = "<img src=x onerror=window.__xss=1>"
"""A param the agent controls: it must render as text, never as markup."""


class Served:
    """An ASGI app served by uvicorn in a thread, on a loopback port chosen by the OS."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> "Served":
        self._thread.start()
        deadline = time.monotonic() + 30  # an upper bound only: we return as soon as uvicorn says it started
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        closer = getattr(self.app, "close", None)
        if closer is not None:
            closer()  # open event streams end now, instead of holding the shutdown
        self.server.should_exit = True
        self._thread.join(30)
        self._sock.close()


@dataclass
class Workload:
    governor: Governor
    approver: IdentityKeys
    approver_key_file: Path
    log: Path
    tmp: Path

    def source(self) -> GovernorSource:
        return GovernorSource(self.governor)

    def app(self, **config: Any) -> Any:
        return dashboard_app(self.source(), DashboardConfig(operator_token=OPERATOR_TOKEN, **config))


def make_workload(tmp: Path, *, durability: str = "always", approval_timeout: float = 120.0, blocking: bool = True,
                  witness: Path | None = None) -> Workload:
    approver = IdentityKeys.generate("finance-lead")
    key_dir = tmp / "approver-keys"
    key_dir.mkdir()
    key_file = approver.save(key_dir / "finance-lead.pem")
    log = tmp / "audit"
    audit = AuditLog(log, key_path=tmp / "signing" / "audit.key", durability=durability, checkpoint_every=5,
                     witness=witness)
    registry = ApproverRegistry.from_mapping({"finance-lead": approver.did})
    governor = Governor("yaml", str(starter_policy("yaml")), audit=audit, approvers=registry,
                        approval_timeout=approval_timeout, blocking_approvals=blocking)
    # Ring 1: the trust ring lets a delete through, so the starter policy's own rules decide it.
    governor.register_agent(Agent(AGENT, attributes={"workspace": str(tmp / "ws")}), trust_score=750)
    return Workload(governor, approver, key_file, log, tmp)


def read_file(path: str) -> str:
    return f"contents of {path}"


def drop_table(table: str) -> str:
    return f"dropped {table}"


def refund(amount: int, order_id: str) -> str:
    return f"refunded {amount} on {order_id}"
