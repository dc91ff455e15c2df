"""A signed approval vote: an approver's Ed25519 signature over what they agreed to.

The signed payload (agt's canonical JSON) binds the request id, the digest of the action the request was
created for, the requesting agent, approve or deny, the approver's name and did, when the vote was cast and
until when it counts. A vote therefore cannot be moved to another request, another action or another agent,
and it stops counting on its own at ``expires_at``. Votes travel through the approval store, which is
untrusted: only :func:`check_vote` against the Governor's :class:`~agt.runtime.approvers.ApproverRegistry`
decides whether one counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from agt.identity import IdentityKeys
from agt.identity.envelope import b64url_decode, b64url_encode, canonical_json
from agt.runtime.approvers import ApproverRegistry

VOTE_TYPE = "agt.approval-vote/v1"
MAX_NOTE_LENGTH = 2_000
_FIELDS = ("type", "request_id", "digest", "agent_id", "approve", "approver", "did", "issued_at", "expires_at", "note")


class MalformedVoteError(ValueError):
    """A stored vote is not a vote envelope; the message names the field."""


@dataclass(frozen=True)
class SignedVote:
    request_id: str
    digest: str
    agent_id: str
    approve: bool
    approver: str
    did: str
    issued_at: float
    expires_at: float
    note: str
    signature: bytes

    def payload(self) -> dict[str, Any]:
        return {"type": VOTE_TYPE, "request_id": self.request_id, "digest": self.digest, "agent_id": self.agent_id,
                "approve": self.approve, "approver": self.approver, "did": self.did, "issued_at": self.issued_at,
                "expires_at": self.expires_at, "note": self.note}

    def signed_bytes(self) -> bytes:
        return canonical_json(self.payload())

    def to_dict(self) -> dict[str, Any]:
        return {**self.payload(), "signature": b64url_encode(self.signature)}

    @classmethod
    def from_dict(cls, doc: object) -> "SignedVote":
        """Parse a stored envelope; raise :class:`MalformedVoteError` naming the first bad field."""
        if not isinstance(doc, Mapping):
            raise MalformedVoteError(f"a vote is a JSON object, got {type(doc).__name__}")
        if doc.get("type") != VOTE_TYPE:
            raise MalformedVoteError(f"type must be {VOTE_TYPE!r}, got {doc.get('type')!r}")
        missing = [f for f in (*_FIELDS, "signature") if f not in doc]
        if missing:
            raise MalformedVoteError(f"missing {', '.join(missing)}")
        for name in ("request_id", "digest", "agent_id", "approver", "did", "note", "signature"):
            if not isinstance(doc[name], str):
                raise MalformedVoteError(f"{name} must be a string")
        if not isinstance(doc["approve"], bool):
            raise MalformedVoteError("approve must be true or false")
        for name in ("issued_at", "expires_at"):
            value = doc[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MalformedVoteError(f"{name} must be seconds since the Unix epoch")
        try:
            signature = b64url_decode(doc["signature"])
        except ValueError as exc:
            raise MalformedVoteError(f"signature: {exc}") from None
        if len(signature) != 64:
            raise MalformedVoteError("signature must be 64 bytes (Ed25519)")
        return cls(doc["request_id"], doc["digest"], doc["agent_id"], doc["approve"], doc["approver"], doc["did"],
                   doc["issued_at"], doc["expires_at"], doc["note"], signature)


def sign_vote(
    keys: IdentityKeys, *, request_id: str, digest: str, agent_id: str, approve: bool, issued_at: float,
    expires_at: float, note: str = "",
) -> SignedVote:
    """Sign a vote as ``keys.agent_id`` (the approver's name is the name of their key)."""
    if not isinstance(keys, IdentityKeys):
        raise TypeError("sign_vote needs the approver's IdentityKeys")
    if not expires_at > issued_at:
        raise ValueError("a vote must expire after it is cast")
    if len(note) > MAX_NOTE_LENGTH:
        raise ValueError(f"a note has at most {MAX_NOTE_LENGTH} characters")
    unsigned = SignedVote(request_id, digest, agent_id, bool(approve), keys.agent_id, keys.did, float(issued_at),
                          float(expires_at), note, b"")
    return SignedVote(**{**unsigned.__dict__, "signature": keys.sign(unsigned.signed_bytes())})


@dataclass(frozen=True)
class VoteCheck:
    """Whether one stored vote counts, and if not, why (for the audit record and the denial)."""

    vote: SignedVote | None
    problem: str | None = None


def check_vote(
    doc: object, registry: ApproverRegistry, *, request_id: str, digest: str, agent_id: str,
    agent_did: str | None, eligible: tuple[str, ...], deadline: float, now: float, max_future_skew: float,
) -> VoteCheck:
    """A vote counts only when its signature verifies against the registry key of the approver it names, it
    was cast for this request, this action and this agent, by an eligible approver who is not the requesting
    agent (by name or by key), before the request's deadline, and it has not expired."""
    try:
        vote = SignedVote.from_dict(doc)
    except MalformedVoteError as exc:
        return VoteCheck(None, f"malformed vote ignored: {exc}")
    who = f"vote by {vote.approver!r}"
    identity = registry.get(vote.approver)
    if identity is None:
        return VoteCheck(None, f"{who} ignored: not in the approver registry")
    if identity.did != vote.did or not identity.verify(vote.signature, vote.signed_bytes()):
        return VoteCheck(None, f"{who} ignored: not signed by {vote.approver!r}'s registered key")
    problem = None
    if vote.request_id != request_id:
        problem = f"it is for request {vote.request_id}"
    elif vote.digest != digest or vote.agent_id != agent_id:
        problem = "it was cast for a different action"
    elif vote.approver == agent_id or (agent_did is not None and identity.did == agent_did):
        problem = "the requesting agent cannot vote on its own request"
    elif vote.approver not in eligible:
        problem = f"not an approver of this request ({', '.join(eligible) or 'none'})"
    elif vote.issued_at > now + max_future_skew:
        problem = "it is dated in the future"
    elif vote.issued_at >= deadline:
        problem = "it was cast after the request's deadline"
    elif now >= vote.expires_at:
        problem = "it has expired"
    return VoteCheck(None, f"{who} ignored: {problem}") if problem else VoteCheck(vote)
