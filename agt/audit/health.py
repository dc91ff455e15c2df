"""Whether an audit log can be written and trusted, as ``agt doctor --audit-log`` reports it.

A writer's own faults (its thread stopped, a failed write) show in ``AuditLog.health()`` and deny
governed calls in that process; this check is for the operator looking from outside: can a writer
append here, is there disk space, does the log verify, and is a private key lying in the log directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agt.audit.log import LEGACY_KEY_NAME
from agt.audit.verify import verify_log
from agt.errors import AgtError

MIN_FREE_BYTES = 16 * 1024 * 1024


def check_log(location: str | Path, public_key: Ed25519PublicKey | None = None) -> dict[str, Any]:
    """``{"log", "ok", "problems": [...], "records", "covered", "uncovered"}``; ``ok`` when nothing stops
    a writer and the log verifies (strictly, when ``public_key`` is given)."""
    path = Path(location)
    directory = path if path.suffix not in (".db", ".sqlite", ".sqlite3") else path.parent
    problems: list[str] = []
    out: dict[str, Any] = {"log": str(path), "records": None, "covered": None, "uncovered": None}
    if not path.exists():
        problems.append(f"no audit log at {path}")
    else:
        target = path if path.is_file() else directory
        if not os.access(target, os.W_OK):
            problems.append(f"{target} is not writable by this user: writers will fail and governed calls be denied")
        free = shutil.disk_usage(directory).free
        if free < MIN_FREE_BYTES:
            problems.append(f"only {free} bytes free on the log's disk")
        if (directory / LEGACY_KEY_NAME).exists():
            problems.append(f"a private checkpoint key lies in the log directory ({directory / LEGACY_KEY_NAME}): "
                            "whoever can rewrite the log can re-sign it")
        try:
            report = verify_log(path, public_key, strict=public_key is not None)
        except (AgtError, OSError) as exc:
            problems.append(f"cannot verify: {exc}")
        else:
            out.update(records=report.records, covered=report.covered, uncovered=report.uncovered)
            problems.extend(str(p) for p in report.problems[:5])
            if public_key is None:
                problems.append("verified only against checkpoint.pub in the log directory; pass --audit-public-key")
    out["problems"] = problems
    out["ok"] = not problems
    return out
