"""Signed action envelopes: proof that an action document came from the agent it names, just now, once.

An agent signs the canonical JSON of ``{"action", "agent_id", "did", "nonce", "issued_at"}`` with its Ed25519
key. The :class:`EnvelopeVerifier` at the trust gate accepts the envelope only if

1. it is well formed, and the action document does not name a different agent;
2. the did is the one registered for the claimed agent id (``resolve(agent_id) == did``), so a valid
   signature by *some* key is not enough;
3. the signature verifies under that did's key, so the action was not forged or changed;
4. ``issued_at`` lies within the window around now (too old: captured and replayed late; from the future:
   pre-signed or a broken clock); and
5. the nonce was not seen before within the window, so a captured envelope cannot be played twice.

Each cause has its own error type, all under :class:`EnvelopeError`. The checks run in that order on purpose:
the did binding is checked before any signature math (an unknown agent costs a dict lookup, not a
verification), and a nonce is remembered only after everything else passed, so a forged envelope cannot burn
the nonce of a genuine one.

Times are whole seconds since the Unix epoch: integers canonicalize identically in every JSON implementation,
floats do not.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from agt import _json
from agt._canonical import canonical_json as _canonical_json
from agt.identity.keys import (
    IdentityError,
    IdentityKeys,
    InvalidAgentIdError,
    InvalidDidError,
    public_key_from_did,
    validate_agent_id,
    verify_signature,
)

ENVELOPE_FIELDS = ("action", "agent_id", "did", "nonce", "issued_at")
"""The signed fields. The JSON form adds ``signature``."""

MAX_NONCE_LENGTH = 128
DEFAULT_WINDOW_SECONDS = 300
DEFAULT_MAX_NONCES = 100_000


# --- errors ----------------------------------------------------------------------------------------


class EnvelopeError(IdentityError):
    """An envelope was refused. Subclasses name the cause."""


class MalformedEnvelopeError(EnvelopeError, ValueError):
    """The envelope is not a well-formed signed envelope (missing or extra fields, wrong types, bad encoding)."""


class EnvelopeSignatureError(EnvelopeError):
    """The signature does not verify: the action or another field was changed, or another key signed it."""


class DidMismatchError(EnvelopeError):
    """The envelope's did is not the did registered for the agent it claims to be."""


class UnknownAgentError(DidMismatchError):
    """No did is registered for the claimed agent at all."""


class ActionAgentMismatchError(EnvelopeError):
    """The signed action document names a different agent than the envelope's signer."""


class EnvelopeWindowError(EnvelopeError):
    """``issued_at`` lies outside the accepted window around now."""


class ExpiredEnvelopeError(EnvelopeWindowError):
    """The envelope was issued longer ago than the window allows."""


class FutureEnvelopeError(EnvelopeWindowError):
    """The envelope claims to be issued in the future, beyond the allowed clock skew."""


class ReplayedNonceError(EnvelopeError):
    """The nonce was already used by this agent within the window: a replay."""


class NonceCacheFullError(EnvelopeError):
    """More envelopes arrived within one window than the verifier may remember. Refused rather than
    forgetting a nonce early, which would reopen the door to replays."""


# --- helpers ---------------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The exact bytes that get signed: agt's canonical JSON, with NaN and Infinity refused."""
    return _canonical_json(value, allow_nan=False)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: a signature has exactly one accepted encoding."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("expected unpadded base64url text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64url") from None
    if b64url_encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def _require_timestamp(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEnvelopeError(f"{field} must be whole seconds since the Unix epoch, got {value!r}")
    return value


def _require_nonce(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NONCE_LENGTH:
        raise MalformedEnvelopeError(f"nonce must be a non-empty string of at most {MAX_NONCE_LENGTH} characters")
    return value


def _action_agent_id(action: Mapping[str, Any]) -> Any:
    agent = action.get("agent")
    return agent.get("id") if isinstance(agent, Mapping) else None


# --- values ----------------------------------------------------------------------------------------


def _payload(action: Any, agent_id: str, did: str, nonce: str, issued_at: int) -> bytes:
    return canonical_json({"action": action, "agent_id": agent_id, "did": did, "nonce": nonce, "issued_at": issued_at})


@dataclass(frozen=True)
class SignedEnvelope:
    """An action document with its signer's claim and signature. Build one with :func:`sign_envelope` or
    :meth:`from_dict`; the verifier decides whether to believe it. Construction checks the shape only.

    ``action`` is a plain dict that went through a JSON round trip, so it equals what was signed; do not
    mutate it (a mutated envelope fails verification, which is the point). Unhashable, like the dict it holds.
    """

    action: dict[str, Any]
    agent_id: str
    did: str
    nonce: str
    issued_at: int
    signature: bytes

    __hash__ = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not isinstance(self.action, dict):
            raise MalformedEnvelopeError("action must be a JSON object (the action document)")
        try:
            validate_agent_id(self.agent_id)
        except InvalidAgentIdError as exc:
            raise MalformedEnvelopeError(f"agent_id: {exc}") from None
        if not isinstance(self.did, str):
            raise MalformedEnvelopeError("did must be a string")
        _require_nonce(self.nonce)
        _require_timestamp(self.issued_at, "issued_at")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            size = len(self.signature) if isinstance(self.signature, (bytes, bytearray)) else None
            raise MalformedEnvelopeError(f"signature must be 64 bytes (Ed25519), got {size if size is not None else type(self.signature).__name__}")

    def signed_payload(self) -> dict[str, Any]:
        return {"action": self.action, "agent_id": self.agent_id, "did": self.did,
                "nonce": self.nonce, "issued_at": self.issued_at}

    def signed_bytes(self) -> bytes:
        return _payload(self.action, self.agent_id, self.did, self.nonce, self.issued_at)

    def to_dict(self) -> dict[str, Any]:
        return {**_json.loads(self.signed_bytes()), "signature": b64url_encode(self.signature)}

    def to_json(self) -> str:
        return _json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, doc: Any) -> "SignedEnvelope":
        """Parse the JSON form. Checks shape only; :class:`EnvelopeVerifier` checks the claims."""
        if not isinstance(doc, Mapping):
            raise MalformedEnvelopeError(f"an envelope must be a JSON object, got {type(doc).__name__}")
        expected = set(ENVELOPE_FIELDS) | {"signature"}
        missing, extra = expected - doc.keys(), doc.keys() - expected
        if missing:
            raise MalformedEnvelopeError(f"envelope is missing {', '.join(sorted(missing))}")
        if extra:
            raise MalformedEnvelopeError(f"envelope has unknown fields: {', '.join(sorted(map(str, extra)))}")
        action = doc["action"]
        if not isinstance(action, Mapping):
            raise MalformedEnvelopeError("action must be a JSON object (the action document)")
        try:
            action = _json.loads(canonical_json(dict(action)))
        except (TypeError, ValueError, RecursionError) as exc:
            raise MalformedEnvelopeError(f"action is not plain JSON: {exc}") from None
        try:
            signature = b64url_decode(doc["signature"])
        except ValueError as exc:
            raise MalformedEnvelopeError(f"signature: {exc}") from None
        return cls(action, doc["agent_id"], doc["did"], doc["nonce"], doc["issued_at"], signature)

    @classmethod
    def from_json(cls, text: str | bytes) -> "SignedEnvelope":
        try:
            doc = _json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MalformedEnvelopeError(f"envelope is not valid JSON: {exc}") from None
        return cls.from_dict(doc)


@dataclass(frozen=True)
class VerifiedEnvelope:
    """What the verifier vouches for: this agent, holding this did, asked for this action at this time."""

    agent_id: str
    did: str
    action: dict[str, Any]
    nonce: str
    issued_at: int

    __hash__ = None  # type: ignore[assignment]


# --- signing ---------------------------------------------------------------------------------------


def sign_envelope(
    keys: IdentityKeys,
    action_document: Mapping[str, Any],
    *,
    nonce: str | None = None,
    issued_at: int | None = None,
) -> SignedEnvelope:
    """Sign ``action_document`` (an action's JSON document, for example ``Action.to_dict()``) as ``keys``.

    ``nonce`` defaults to 128 random bits; ``issued_at`` to now, in whole seconds.
    """
    if not isinstance(keys, IdentityKeys):
        raise TypeError("sign_envelope needs the signer's IdentityKeys")
    if not isinstance(action_document, Mapping):
        raise MalformedEnvelopeError("the action document must be a mapping (for example Action.to_dict())")
    claimed = _action_agent_id(action_document)
    if claimed is not None and claimed != keys.agent_id:
        raise ActionAgentMismatchError(
            f"agent {keys.agent_id!r} cannot sign an action for agent {claimed!r}; sign it with {claimed!r}'s keys"
        )
    try:
        # The round trip makes the stored action exactly what was signed (tuples become lists, and so on).
        action = _json.loads(canonical_json(dict(action_document)))
    except (TypeError, ValueError, RecursionError) as exc:
        raise MalformedEnvelopeError(f"the action document is not plain JSON: {exc}") from None
    nonce = _require_nonce(secrets.token_urlsafe(16) if nonce is None else nonce)
    issued_at = _require_timestamp(int(time.time()) if issued_at is None else issued_at, "issued_at")
    signature = keys.sign(_payload(action, keys.agent_id, keys.did, nonce, issued_at))
    return SignedEnvelope(action, keys.agent_id, keys.did, nonce, issued_at, signature)


# --- verifying -------------------------------------------------------------------------------------


class _NonceCache:
    """Nonces seen per did, each remembered until its envelope would be too old anyway.

    Keyed by (did, nonce), so one agent cannot spend another agent's nonce ahead of it. A min-heap of expiry
    times makes forgetting cheap; the size cap bounds memory even under a flood of valid envelopes.
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._expiry: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[int, str, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def _forget_before(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] < now:
            _, did, nonce = heapq.heappop(heap)
            expiry.pop((did, nonce), None)

    def forget_before(self, now: float) -> None:
        with self._lock:
            self._forget_before(now)

    def add(self, did: str, nonce: str, expires: int, now: float) -> None:
        """Remember a nonce, or raise if it is already remembered: check and add are one atomic step."""
        with self._lock:
            self._forget_before(now)
            if (did, nonce) in self._expiry:
                raise ReplayedNonceError(f"nonce {nonce!r} of {did} was already used: this envelope is a replay")
            if len(self._expiry) >= self._max:
                raise NonceCacheFullError(
                    f"more than {self._max} envelopes within one window; refusing rather than forgetting nonces "
                    "early (raise max_nonces or shorten window_seconds)"
                )
            self._expiry[(did, nonce)] = expires
            heapq.heappush(self._heap, (expires, did, nonce))


class EnvelopeVerifier:
    """Verifies signed envelopes for the trust gate. Thread-safe; one instance per process, so the replay
    cache sees every envelope.

    ``resolve(agent_id)`` returns the did registered for an agent, or None for an unknown agent
    (``IdentityStore.resolve`` fits). ``window_seconds`` is how old an envelope may be;
    ``max_future_skew`` how far ahead of this clock a signer's clock may run.
    """

    def __init__(
        self,
        resolve: Callable[[str], str | None],
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
        *,
        max_future_skew: float = 30.0,
        max_nonces: int = DEFAULT_MAX_NONCES,
    ) -> None:
        if not window_seconds > 0 or not math.isfinite(window_seconds):
            raise ValueError("window_seconds must be a positive number of seconds")
        if not 0 <= max_future_skew <= window_seconds:
            raise ValueError("max_future_skew must be between 0 and window_seconds")
        if max_nonces < 1:
            raise ValueError("max_nonces must be at least 1")
        self.resolve = resolve
        self.window_seconds = window_seconds
        self.max_future_skew = max_future_skew
        self.clock = clock
        self._nonces = _NonceCache(max_nonces)

    @property
    def nonce_count(self) -> int:
        """How many nonces are remembered right now (old ones are forgotten lazily, on the next verify)."""
        return len(self._nonces)

    def forget_expired(self) -> None:
        """Drop nonces whose envelopes have left the window. verify() does this itself; call it when idle."""
        self._nonces.forget_before(self.clock())

    def verify(self, envelope: SignedEnvelope | Mapping[str, Any]) -> VerifiedEnvelope:
        if isinstance(envelope, Mapping):
            envelope = SignedEnvelope.from_dict(envelope)
        elif not isinstance(envelope, SignedEnvelope):
            raise MalformedEnvelopeError(f"expected a SignedEnvelope or its JSON object, got {type(envelope).__name__}")
        agent_id, did = envelope.agent_id, envelope.did

        # 1. shape, and the action belongs to the signer
        try:
            public_key = public_key_from_did(did)
        except InvalidDidError as exc:
            raise MalformedEnvelopeError(f"did: {exc}") from None
        claimed = _action_agent_id(envelope.action)
        if claimed is not None and claimed != agent_id:
            raise ActionAgentMismatchError(f"the action is for agent {claimed!r} but the envelope is signed by {agent_id!r}")

        # 2. the did is the claimed agent's
        registered = self.resolve(agent_id)
        if registered is None:
            raise UnknownAgentError(f"agent {agent_id!r} has no registered identity; create one (agt identity create {agent_id})")
        if registered != did:
            raise DidMismatchError(f"{did} is not the did of agent {agent_id!r} (registered: {registered})")

        # 3. the signature
        try:
            payload = envelope.signed_bytes()
        except (TypeError, ValueError, RecursionError) as exc:
            raise MalformedEnvelopeError(f"the envelope cannot be canonicalized: {exc}") from None
        if not verify_signature(public_key, envelope.signature, payload):
            raise EnvelopeSignatureError(
                f"the signature of {agent_id!r}'s envelope does not verify: the action was changed after signing, "
                "or another key signed it"
            )

        # 4. the window
        now = self.clock()
        issued_at = envelope.issued_at
        age = now - issued_at
        if age > self.window_seconds:
            raise ExpiredEnvelopeError(
                f"{agent_id!r}'s envelope was issued {age:.0f}s ago; only {self.window_seconds:g}s are accepted"
            )
        if -age > self.max_future_skew:
            raise FutureEnvelopeError(
                f"{agent_id!r}'s envelope is dated {-age:.0f}s in the future (allowed skew {self.max_future_skew:g}s); "
                "check the signer's clock"
            )

        # 5. the nonce, last: only an otherwise valid envelope may use it up
        nonce = envelope.nonce
        self._nonces.add(did, nonce, math.ceil(issued_at + self.window_seconds), now)
        return VerifiedEnvelope(agent_id, did, envelope.action, nonce, issued_at)
