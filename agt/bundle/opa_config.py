"""An OPA ``config.yaml`` for a fleet that pulls bundles from agt and sends decision logs back."""

from __future__ import annotations

from typing import Any

import yaml


def opa_config(
    server_url: str,
    *,
    bundles: tuple[str, ...] = ("agt",),
    token: str | None = None,
    verification_key: str | None = None,
    keyid: str = "agt",
    algorithm: str = "RS256",
    long_poll_seconds: int = 10,
    log_min_delay: int = 1,
    log_max_delay: int = 5,
) -> str:
    service: dict[str, Any] = {"url": server_url.rstrip("/")}
    if token:
        service["credentials"] = {"bearer": {"token": token}}
    cfg: dict[str, Any] = {"services": {"agt": service}, "bundles": {}}
    for name in bundles:
        b: dict[str, Any] = {
            "service": "agt",
            "resource": f"bundles/{name}",
            "persist": False,
            "polling": {"min_delay_seconds": 1, "max_delay_seconds": 10, "long_polling_timeout_seconds": long_poll_seconds},
        }
        if verification_key:
            b["signing"] = {"keyid": keyid}
        cfg["bundles"][name] = b
    if verification_key:
        cfg["keys"] = {keyid: {"algorithm": algorithm, "key": verification_key}}
    cfg["decision_logs"] = {"service": "agt", "reporting": {"min_delay_seconds": log_min_delay, "max_delay_seconds": log_max_delay}}
    cfg["status"] = {"service": "agt"}
    return yaml.safe_dump(cfg, sort_keys=False)
