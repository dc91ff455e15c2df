"""Capability delegation: a parent agent hands a child a signed subset of what it may do.

A :class:`Delegation` is one link: an issuer grants a subject some capabilities for a time span, and signs it.
A link carries the delegation its issuer itself holds (``parent``), so a chain reads leaf to root; the root
link's issuer is the authority the verifier must already trust.

Capabilities are strings:

* ``tool:NAME``: the tool called NAME, whatever its kind;
* ``tool:*``: every tool, so it covers every capability;
* ``kind:KIND``: every tool of one action kind (read, write, delete, execute, network, message, delegate).

An action is allowed when any capability matches it (:func:`allows`). A child's capabilities must be covered
by its parent's: ``tool:*`` covers everything, anything else covers only itself. ``kind:read`` does not cover
``tool:read_file``: a tool capability holds whatever kind the call declares, so it can be wider than a kind.

Each link signs the SHA-256 digest of its parent (the whole parent, signature included), so a link cannot be
lifted off its chain and hung under another parent.

:func:`verify_chain` checks every link, root first, and names the link that fails: its signature, that its
issuer is its parent's subject (same agent, same did), its time span, and that its scope only narrows.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping

from agt.action import Kind
from agt.identity.envelope import b64url_decode, b64url_encode, canonical_json
from agt.identity.keys import Identity, IdentityError, IdentityKeys, InvalidAgentIdError, InvalidDidError

MAX_CHAIN_DEPTH = 8
"""Links from the root issuer to the acting agent. Deep chains are hard to audit and cost a signature check each."""

_MAX_PARSE_DEPTH = 64
"""A hard cap for parsing untrusted JSON, far above any real chain, so a hostile document cannot recurse deep."""

_PAYLOAD_TYPE = "agt.delegation/1"
"""Domain separation: the signed bytes of a delegation can never be mistaken for any other signed object."""

KINDS = frozenset(k.value for k in Kind)


# --- errors ----------------------------------------------------------------------------------------


class DelegationError(IdentityError):
    """A delegation chain was refused. ``link`` is the 1-based position from the root, when one link is to blame."""

    def __init__(self, message: str, *, link: int | None = None) -> None:
        self.link = link
        super().__init__(message)


class InvalidCapabilityError(DelegationError, ValueError):
    """A capability string is not ``tool:NAME``, ``tool:*`` or ``kind:KIND``."""


class MalformedDelegationError(DelegationError, ValueError):
    """A delegation's JSON form is not well formed."""


class DelegationSignatureError(DelegationError):
    """A link's signature does not verify: forged, altered, or moved under another parent."""


class UntrustedRootError(DelegationError):
    """The root link's issuer is not one of the trusted roots (unknown agent, or a different did)."""


class BrokenChainError(DelegationError):
    """A link's issuer is not the subject of its parent link: it delegates what it was never given."""


class DelegationExpiredError(DelegationError):
    """A link's time span is over."""


class DelegationNotYetValidError(DelegationError):
    """A link's time span has not started."""


class ScopeWidenedError(DelegationError):
    """A link grants capabilities its parent link does not cover."""


class ChainTooDeepError(DelegationError):
    """A chain has more links than allowed."""


class DelegationHolderError(DelegationError):
    """The delegation was presented by an agent that is not its subject."""


# --- capabilities ----------------------------------------------------------------------------------


def validate_capability(capability: object) -> str:
    if isinstance(capability, str):
        prefix, _, rest = capability.partition(":")
        if prefix == "tool" and rest and (rest == "*" or "*" not in rest) and not any(c.isspace() for c in rest):
            return capability
        if prefix == "kind" and rest in KINDS:
            return capability
    raise InvalidCapabilityError(
        f"invalid capability {capability!r}: use 'tool:NAME', 'tool:*', or 'kind:KIND' with KIND one of "
        f"{', '.join(sorted(KINDS))} (no other wildcards)"
    )


def validate_capabilities(capabilities: Iterable[str]) -> frozenset[str]:
    if isinstance(capabilities, str):
        raise InvalidCapabilityError(f"capabilities must be a collection of strings, not the string {capabilities!r}")
    caps = frozenset(validate_capability(c) for c in capabilities)
    if not caps:
        raise InvalidCapabilityError("a delegation must grant at least one capability")
    return caps


def covers(parent: frozenset[str], capability: str) -> bool:
    """Does the parent's set grant at least what ``capability`` grants?"""
    return "tool:*" in parent or capability in parent


def uncovered(parent: frozenset[str], child: Iterable[str]) -> list[str]:
    return sorted(c for c in child if not covers(parent, c))


def allows(capabilities: Iterable[str], tool: str, kind: Kind | str) -> bool:
    """True when one of ``capabilities`` permits calling ``tool`` as an action of ``kind``."""
    caps = capabilities if isinstance(capabilities, (set, frozenset)) else frozenset(capabilities)
    kind_value = kind.value if isinstance(kind, Kind) else kind
    return "tool:*" in caps or f"tool:{tool}" in caps or f"kind:{kind_value}" in caps


# --- the link --------------------------------------------------------------------------------------


def _party_dict(identity: Identity) -> dict[str, str]:
    return {"agent_id": identity.agent_id, "did": identity.did}


@dataclass(frozen=True)
class Delegation:
    """One signed link of a delegation chain. Build with :func:`issue_delegation` or :meth:`from_dict`;
    believe only what :func:`verify_chain` returns. Times are whole seconds since the Unix epoch; a link is
    valid from ``not_before`` (inclusive) to ``expires_at`` (exclusive)."""

    issuer: Identity
    subject: Identity
    capabilities: frozenset[str]
    not_before: int
    expires_at: int
    parent: "Delegation | None"
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("issuer", "subject"):
            if not isinstance(getattr(self, name), Identity):
                raise MalformedDelegationError(f"{name} must be an Identity")
        object.__setattr__(self, "capabilities", validate_capabilities(self.capabilities))
        for name in ("not_before", "expires_at"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MalformedDelegationError(f"{name} must be whole seconds since the Unix epoch, got {value!r}")
        if self.expires_at <= self.not_before:
            raise MalformedDelegationError(f"expires_at ({self.expires_at}) must be after not_before ({self.not_before})")
        if self.parent is not None and not isinstance(self.parent, Delegation):
            raise MalformedDelegationError("parent must be a Delegation or None")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise MalformedDelegationError("signature must be 64 bytes (Ed25519)")

    # the chain ------------------------------------------------------------------------------------

    @property
    def chain(self) -> tuple["Delegation", ...]:
        """The links from the root to this one."""
        links: list[Delegation] = []
        link: Delegation | None = self
        while link is not None:
            links.append(link)
            link = link.parent
        return tuple(reversed(links))

    @property
    def depth(self) -> int:
        return len(self.chain)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of this link's canonical JSON, parent and signature included: what a child link signs."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()

    def signed_bytes(self) -> bytes:
        return _signed_bytes(self.issuer, self.subject, self.capabilities, self.not_before, self.expires_at, self.parent)

    def describe(self) -> str:
        return f"{self.issuer.agent_id} -> {self.subject.agent_id}"

    # JSON -----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "issuer": _party_dict(self.issuer),
            "subject": _party_dict(self.subject),
            "capabilities": sorted(self.capabilities),
            "not_before": self.not_before,
            "expires_at": self.expires_at,
            "parent": self.parent.to_dict() if self.parent is not None else None,
            "signature": b64url_encode(self.signature),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, doc: Any) -> "Delegation":
        # Iterative, root first, so a deeply nested document costs no recursion.
        docs: list[Mapping[str, Any]] = []
        while doc is not None:
            if len(docs) >= _MAX_PARSE_DEPTH:
                raise MalformedDelegationError(f"delegation nests more than {_MAX_PARSE_DEPTH} links")
            if not isinstance(doc, Mapping):
                what = f"the parent of the link nested {len(docs)} deep" if docs else "a delegation"
                raise MalformedDelegationError(f"{what} must be a JSON object, got {type(doc).__name__}")
            docs.append(doc)
            doc = doc.get("parent")
        parent: Delegation | None = None
        total = len(docs)
        for index, d in enumerate(reversed(docs), start=1):
            parent = _link_from_dict(d, parent, f"link {index} of {total}")
        assert parent is not None
        return parent

    @classmethod
    def from_json(cls, text: str | bytes) -> "Delegation":
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MalformedDelegationError(f"delegation is not valid JSON: {exc}") from None
        return cls.from_dict(doc)


_LINK_FIELDS = frozenset({"issuer", "subject", "capabilities", "not_before", "expires_at", "parent", "signature"})


def _link_from_dict(doc: Mapping[str, Any], parent: Delegation | None, where: str) -> Delegation:
    missing, extra = _LINK_FIELDS - doc.keys(), doc.keys() - _LINK_FIELDS
    if missing:
        raise MalformedDelegationError(f"{where}: missing {', '.join(sorted(missing))}")
    if extra:
        raise MalformedDelegationError(f"{where}: unknown fields {', '.join(sorted(map(str, extra)))}")

    def party(name: str) -> Identity:
        value = doc[name]
        if not isinstance(value, Mapping) or set(value.keys()) != {"agent_id", "did"}:
            raise MalformedDelegationError(f"{where}: {name} must be an object with agent_id and did")
        try:
            return Identity(value["agent_id"], value["did"])
        except (InvalidAgentIdError, InvalidDidError) as exc:
            raise MalformedDelegationError(f"{where}: {name}: {exc}") from None

    issuer, subject = party("issuer"), party("subject")
    caps = doc["capabilities"]
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise MalformedDelegationError(f"{where}: capabilities must be a list of strings")
    try:
        signature = b64url_decode(doc["signature"])
    except ValueError as exc:
        raise MalformedDelegationError(f"{where}: signature: {exc}") from None
    try:
        return Delegation(issuer, subject, frozenset(caps), doc["not_before"], doc["expires_at"], parent, signature)
    except DelegationError as exc:  # invalid capability, bad times, bad signature length
        raise MalformedDelegationError(f"{where}: {exc}") from None


def _signed_bytes(
    issuer: Identity, subject: Identity, capabilities: frozenset[str], not_before: int, expires_at: int,
    parent: Delegation | None,
) -> bytes:
    return canonical_json({
        "type": _PAYLOAD_TYPE,
        "issuer": _party_dict(issuer),
        "subject": _party_dict(subject),
        "capabilities": sorted(capabilities),
        "not_before": not_before,
        "expires_at": expires_at,
        "parent": parent.digest if parent is not None else None,
    })


# --- issuing ---------------------------------------------------------------------------------------


def issue_delegation(
    issuer: IdentityKeys,
    subject: Identity,
    capabilities: Iterable[str],
    *,
    parent: Delegation | None = None,
    not_before: int | None = None,
    expires_at: int | None = None,
    ttl_seconds: int = 3600,
) -> Delegation:
    """Sign a link granting ``subject`` ``capabilities``. Pass ``parent`` (the delegation the issuer holds)
    unless the issuer is a root. The span defaults to now .. now + ``ttl_seconds``.

    The chain rules are checked here too, so a bad link fails where it is made, not where it is used.
    """
    if not isinstance(issuer, IdentityKeys):
        raise TypeError("issue_delegation needs the issuer's IdentityKeys")
    if not isinstance(subject, Identity):
        raise TypeError("subject must be an Identity (agent id and did)")
    caps = validate_capabilities(capabilities)
    not_before = int(time.time()) if not_before is None else not_before
    expires_at = not_before + ttl_seconds if expires_at is None else expires_at
    if parent is not None:
        where = f"new link {parent.depth + 1} ({issuer.agent_id} -> {subject.agent_id})"
        if parent.subject != issuer.identity:
            raise BrokenChainError(
                f"{where}: {issuer.agent_id!r} does not hold the parent delegation "
                f"(it was granted to {parent.subject.agent_id!r}, {parent.subject.did})"
            )
        if parent.depth + 1 > MAX_CHAIN_DEPTH:
            raise ChainTooDeepError(f"{where}: a chain may have at most {MAX_CHAIN_DEPTH} links")
        wider = uncovered(parent.capabilities, caps)
        if wider:
            raise ScopeWidenedError(f"{where}: the parent does not grant {', '.join(wider)}")
    signature = issuer.sign(_signed_bytes(issuer.identity, subject, caps, not_before, expires_at, parent))
    return Delegation(issuer.identity, subject, caps, not_before, expires_at, parent, signature)


# --- verifying -------------------------------------------------------------------------------------


def verify_chain(
    delegation: Delegation,
    trusted_roots: Mapping[str, str],
    now: float | None = None,
    *,
    max_depth: int = MAX_CHAIN_DEPTH,
    holder_did: str | None = None,
) -> frozenset[str]:
    """Check every link of ``delegation``'s chain and return the capabilities its subject holds.

    ``trusted_roots`` maps agent id to did for the issuers allowed to start a chain. ``now`` defaults to the
    current time. Pass ``holder_did`` (the did of the agent presenting the delegation, for example from a
    verified envelope) to also check that the delegation was granted to that agent: a delegation is not a
    bearer token. Raises a :class:`DelegationError` subclass naming the failing link.
    """
    if not isinstance(delegation, Delegation):
        raise MalformedDelegationError(f"expected a Delegation, got {type(delegation).__name__}")
    now = time.time() if now is None else now
    chain = delegation.chain
    total = len(chain)
    if total > max_depth:
        raise ChainTooDeepError(f"the chain has {total} links; at most {max_depth} are allowed")

    def where(index: int, link: Delegation) -> str:
        return f"link {index} of {total} ({link.describe()})"

    root = chain[0]
    if trusted_roots.get(root.issuer.agent_id) != root.issuer.did:
        known = root.issuer.agent_id in trusted_roots
        raise UntrustedRootError(
            f"{where(1, root)}: {root.issuer.agent_id!r} "
            + (f"is a trusted root, but not with {root.issuer.did}" if known else "is not a trusted root"),
            link=1,
        )

    for index, link in enumerate(chain, start=1):
        if not link.issuer.verify(link.signature, link.signed_bytes()):
            raise DelegationSignatureError(
                f"{where(index, link)}: the signature does not verify under {link.issuer.did}: "
                "the link was forged, altered, or moved under another parent",
                link=index,
            )
        parent = link.parent
        if parent is not None and parent.subject != link.issuer:
            raise BrokenChainError(
                f"{where(index, link)}: issuer {link.issuer.agent_id!r} ({link.issuer.did}) is not the subject of "
                f"link {index - 1}, which was granted to {parent.subject.agent_id!r} ({parent.subject.did})",
                link=index,
            )
        if now >= link.expires_at:
            raise DelegationExpiredError(f"{where(index, link)}: expired at {_iso(link.expires_at)}", link=index)
        if now < link.not_before:
            raise DelegationNotYetValidError(f"{where(index, link)}: not valid before {_iso(link.not_before)}", link=index)
        if parent is not None:
            wider = uncovered(parent.capabilities, link.capabilities)
            if wider:
                raise ScopeWidenedError(
                    f"{where(index, link)}: widens its parent's scope with {', '.join(wider)}", link=index
                )

    if holder_did is not None and delegation.subject.did != holder_did:
        raise DelegationHolderError(
            f"this delegation was granted to {delegation.subject.agent_id!r} ({delegation.subject.did}), "
            f"not to the agent presenting it ({holder_did})",
            link=total,
        )
    return delegation.capabilities


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
