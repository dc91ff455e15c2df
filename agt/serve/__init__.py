"""agt serve: the decision service, an ASGI app over the same Governor (OPA-shaped decision API, runtime API).

    from agt.serve import create_app, running
    with running(create_app(governor), unix="/run/agt/agt.sock") as url: ...

Names load lazily, so importing :mod:`agt.serve.wire` (the clients do) never imports Starlette or uvicorn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "agt.serve.app",
    "Credentials": "agt.serve.auth",
    "Role": "agt.serve.auth",
    "read_token_file": "agt.serve.auth",
    "Listen": "agt.serve.server",
    "running": "agt.serve.server",
    "serve": "agt.serve.server",
}
__all__ = ["Credentials", "Listen", "Role", "create_app", "read_token_file", "running", "serve"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agt.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
