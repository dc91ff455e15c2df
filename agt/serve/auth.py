"""Who is calling ``agt serve``: a bearer token from a file, compared in constant time, mapped to a role.

Two credentials, two roles (docs/serve.md, "Authentication"):

* the **agent token** (``--token-file``) is what governed agents hold: decisions, begin/finish/fail/abandon,
  reading approvals and trust. An agent has it, so nothing it unlocks may change governance itself.
* the **operator token** (``--operator-token-file``) is for people and control planes: the kill switch, revive
  and trust writes. It must differ from the agent token and live where the agent cannot read it.

A vote is never authorised by a token: it carries the approver's signature, checked against the approver
registry (agt.serve.runtime_api). Every comparison runs against every configured token, whichever matches, so
timing says nothing about which one was close.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from pathlib import Path

from agt.errors import AgtError

MIN_TOKEN_LENGTH = 16
"""Shorter secrets can be guessed over a loopback port at HTTP speed."""


class AuthError(AgtError):
    """A token file cannot be used; the message names the file."""


class Role(enum.IntEnum):
    """What a caller may do; a higher role may do everything a lower one may."""

    NONE = 0
    AGENT = 1
    OPERATOR = 2


@dataclass(frozen=True)
class Credentials:
    """The tokens this service accepts. ``agent`` None means agent endpoints need no token (a unix socket in a
    private directory, or ``--insecure-no-auth`` on loopback); ``operator`` None means operator endpoints are
    closed to everyone."""

    agent: bytes | None = None
    operator: bytes | None = None

    def __post_init__(self) -> None:
        if self.agent is not None and self.operator is not None and hmac.compare_digest(self.agent, self.operator):
            raise AuthError("the operator token must differ from the agent token: the agents hold theirs")

    @property
    def open(self) -> bool:
        """Agent endpoints answer without a token."""
        return self.agent is None

    def role(self, authorization: str | None) -> Role:
        """The role an ``Authorization`` header value grants."""
        presented = _bearer(authorization)
        is_operator = self.operator is not None and presented is not None and hmac.compare_digest(presented, self.operator)
        is_agent = self.agent is not None and presented is not None and hmac.compare_digest(presented, self.agent)
        if is_operator:
            return Role.OPERATOR
        if is_agent or self.agent is None:
            return Role.AGENT
        return Role.NONE


def _bearer(header: str | None) -> bytes | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip().encode("utf-8", "surrogateescape")


def read_token_file(path: str | Path) -> bytes:
    """The token in ``path`` (surrounding whitespace removed). A missing, empty or short token is an error
    naming the file: a service must never start believing it is protected when it is not."""
    p = Path(path)
    try:
        text = p.read_text("utf-8").strip()
    except OSError as exc:
        raise AuthError(f"{p}: cannot read the token file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AuthError(f"{p}: the token file is not UTF-8 text") from None
    if not text:
        raise AuthError(f"{p}: the token file is empty")
    if len(text) < MIN_TOKEN_LENGTH or any(c.isspace() for c in text):
        raise AuthError(f"{p}: a token is one word of at least {MIN_TOKEN_LENGTH} characters "
                        "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return text.encode("utf-8")
