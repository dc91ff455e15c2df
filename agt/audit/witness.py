"""Witnesses: a second place every checkpoint is copied to, out of reach of whoever can rewrite the log.

A checkpoint signs the log's state, but a writer who can delete lines of ``checkpoints.jsonl`` can
still make history shorter. A witness keeps its own copy: a file elsewhere (another disk, another
user's directory), or an ``agt bundle serve`` receiver (``POST /logs/checkpoints``, stored in that
server's own audit log). ``agt audit verify --witness`` then reports any witnessed checkpoint the log
no longer holds, or holds in another form.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import httpx

from agt.errors import AgtError

CHECKPOINTS_ROUTE = "/logs/checkpoints"


class WitnessError(AgtError):
    pass


@dataclass(frozen=True)
class Witnessed:
    where: str
    """Where a person finds this copy: ``file:line`` or ``url#n``."""
    checkpoint: dict[str, Any] | None
    """The checkpoint, or None when the stored copy is not a JSON object."""


class Witness(Protocol):
    def send(self, checkpoint: Mapping[str, Any]) -> None: ...

    def checkpoints(self) -> list[Witnessed]: ...


def _line(checkpoint: Mapping[str, Any]) -> str:
    return json.dumps(checkpoint, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class FileWitness:
    """Checkpoints appended, one JSON line each, to a file (fsynced); give it a place the log's writer cannot rewrite."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)

    def send(self, checkpoint: Mapping[str, Any]) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (_line(checkpoint) + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise WitnessError(f"cannot write the witness {self.path}: {exc}") from None

    def checkpoints(self) -> list[Witnessed]:
        try:
            text = Path(self.path).read_text("utf-8")
        except OSError as exc:
            raise WitnessError(f"cannot read the witness {self.path}: {exc}") from None
        return [Witnessed(f"{Path(self.path).name}:{i + 1}", json_object(t)) for i, t in enumerate(text.split("\n")) if t.strip()]


@dataclass(frozen=True)
class HttpWitness:
    """The checkpoint receiver of ``agt bundle serve`` at ``url`` (its base URL), with its bearer token."""

    url: str
    token: str | None = None
    timeout: float = 5.0

    def __str__(self) -> str:
        return self.endpoint

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + CHECKPOINTS_ROUTE

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(self, checkpoint: Mapping[str, Any]) -> None:
        try:
            r = httpx.post(self.endpoint, content=_line(checkpoint), headers={**self._headers(), "Content-Type": "application/json"},
                           timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise WitnessError(f"witness {self.endpoint} unreachable: {exc}") from None
        if r.status_code != 200:
            raise WitnessError(f"witness {self.endpoint} refused the checkpoint: HTTP {r.status_code} {r.text[:200]}")

    def checkpoints(self) -> list[Witnessed]:
        try:
            r = httpx.get(self.endpoint, headers=self._headers(), timeout=self.timeout)
            doc = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise WitnessError(f"cannot read the witness {self.endpoint}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("checkpoints"), list):
            raise WitnessError(f"witness {self.endpoint} answered HTTP {r.status_code} without a checkpoint list")
        return [Witnessed(f"{self.endpoint}#{i + 1}", c if isinstance(c, dict) else None) for i, c in enumerate(doc["checkpoints"])]


def json_object(text: str) -> dict[str, Any] | None:
    """``text`` parsed, when it is a JSON object; None otherwise."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def open_witness(spec: "str | Path | Witness", token: str | None = None) -> Witness:
    """``http(s)://...`` is a bundle server's checkpoint receiver; any other string or path is a file."""
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if text.startswith(("http://", "https://")):
            return HttpWitness(text, token)
        return FileWitness(Path(text))
    return spec
