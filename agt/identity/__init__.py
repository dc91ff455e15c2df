"""Agent identity: Ed25519 keys named by ``did:key``, signed action envelopes, and capability delegation.

* :mod:`agt.identity.keys`: :class:`Identity` (public) and :class:`IdentityKeys` (private), did:key encoding.
* :mod:`agt.identity.store`: :class:`IdentityStore`, one pair of files per agent.
* :mod:`agt.identity.envelope`: :func:`sign_envelope` and :class:`EnvelopeVerifier`, for the trust gate.
* :mod:`agt.identity.delegation`: :class:`Delegation` chains, :func:`verify_chain` and :func:`allows`.

Every error raised on purpose derives from :class:`IdentityError` (an :class:`agt.errors.AgtError`).
"""

from agt.identity.delegation import (
    MAX_CHAIN_DEPTH,
    BrokenChainError,
    ChainTooDeepError,
    Delegation,
    DelegationError,
    DelegationExpiredError,
    DelegationHolderError,
    DelegationNotYetValidError,
    DelegationSignatureError,
    InvalidCapabilityError,
    MalformedDelegationError,
    ScopeWidenedError,
    UntrustedRootError,
    allows,
    issue_delegation,
    verify_chain,
)
from agt.identity.envelope import (
    ActionAgentMismatchError,
    DidMismatchError,
    EnvelopeError,
    EnvelopeSignatureError,
    EnvelopeVerifier,
    EnvelopeWindowError,
    ExpiredEnvelopeError,
    FutureEnvelopeError,
    MalformedEnvelopeError,
    NonceCacheFullError,
    ReplayedNonceError,
    SignedEnvelope,
    UnknownAgentError,
    VerifiedEnvelope,
    sign_envelope,
)
from agt.identity.keys import (
    Identity,
    IdentityError,
    IdentityKeys,
    InvalidAgentIdError,
    InvalidDidError,
    KeyFileError,
    did_from_public_key,
    public_key_from_did,
)
from agt.identity.store import CorruptIdentityError, IdentityExistsError, IdentityNotFoundError, IdentityStore

__all__ = [
    "MAX_CHAIN_DEPTH", "ActionAgentMismatchError", "BrokenChainError", "ChainTooDeepError", "CorruptIdentityError",
    "Delegation", "DelegationError", "DelegationExpiredError", "DelegationHolderError", "DelegationNotYetValidError",
    "DelegationSignatureError", "DidMismatchError", "EnvelopeError", "EnvelopeSignatureError", "EnvelopeVerifier",
    "EnvelopeWindowError", "ExpiredEnvelopeError", "FutureEnvelopeError", "Identity", "IdentityError",
    "IdentityExistsError", "IdentityKeys", "IdentityNotFoundError", "IdentityStore", "InvalidAgentIdError",
    "InvalidCapabilityError", "InvalidDidError", "KeyFileError", "MalformedDelegationError",
    "MalformedEnvelopeError", "NonceCacheFullError", "ReplayedNonceError", "ScopeWidenedError", "SignedEnvelope",
    "UnknownAgentError", "UntrustedRootError", "VerifiedEnvelope", "allows", "did_from_public_key",
    "issue_delegation", "public_key_from_did", "sign_envelope", "verify_chain",
]
