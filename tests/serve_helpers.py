"""A real agt serve (uvicorn, in a thread) over a Governor on the starter policy, for the serve and client tests."""

from __future__ import annotations

import contextlib
import secrets
import sys
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).parent))
from approval_helpers import Approvers  # noqa: E402

from agt.runtime.audit import MemoryAuditSink
from agt.runtime.governor import Governor
from agt.serve.app import create_app
from agt.serve.auth import Credentials
from agt.serve.server import Listen, running

ROOT = Path(__file__).resolve().parents[1]
STARTER = str(ROOT / "policies" / "starter.yaml")
AGENT_TOKEN = secrets.token_urlsafe(24)
OPERATOR_TOKEN = secrets.token_urlsafe(24)
CREDENTIALS = Credentials(AGENT_TOKEN.encode(), OPERATOR_TOKEN.encode())
APPROVERS = Approvers("comms-lead", "finance-lead")


def starter_governor(engine: str = "yaml", policy: str = STARTER, **options) -> Governor:
    options.setdefault("approvers", APPROVERS.registry)
    return Governor(engine, policy, audit=MemoryAuditSink(), blocking_approvals=False, **options)


@contextlib.contextmanager
def served(governor: Governor | None = None, *, credentials: Credentials = CREDENTIALS, listen: Listen | None = None,
           **app_options) -> Iterator[tuple[str, Governor]]:
    """(the service's URL, its Governor) while the block runs."""
    gov = governor or starter_governor()
    try:
        with running(create_app(gov, credentials=credentials, **app_options), listen or Listen(port=0)) as url:
            yield url, gov
    finally:
        gov.close()


def headers(token: str | None = AGENT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def decisions(gov: Governor) -> list:
    return [r for r in gov.audit.records if r.kind == "decision"]
