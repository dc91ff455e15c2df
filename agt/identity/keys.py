"""Agent keys and ``did:key`` identifiers.

An agent's identity is an Ed25519 key pair. Its public half is published as a ``did:key``: the multicodec
prefix for an Ed25519 public key (``0xed 0x01``) followed by the 32 raw key bytes, base58btc-encoded with the
multibase prefix ``z``. A did:key needs no registry: the identifier *is* the public key, so anyone holding it
can check a signature without asking a server.

Two types keep the halves apart on purpose. :class:`Identity` is the public value (agent id and did) that may be
logged, printed and shared. :class:`IdentityKeys` holds the private key; its repr never shows it, and it is
written to disk only with mode 0600.

This module also holds the root of the identity error hierarchy, because every other identity module imports
from here and nothing here imports from them.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agt.errors import AgtError

DID_KEY_PREFIX = "did:key:"
ED25519_MULTICODEC = b"\xed\x01"
"""The unsigned-varint multicodec code 0xed (ed25519-pub), as it appears in front of the key bytes."""

AGENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Agent ids name files in an identity store, so they must be safe as a file name on every platform:
no path separators, no leading dot (so never ``.`` or ``..``), nothing a shell would mangle."""

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_MAX_DID_LENGTH = 128
"""An Ed25519 did:key is 56 characters. Refusing long input early keeps base58 decoding (quadratic) cheap."""


# --- errors ----------------------------------------------------------------------------------------


class IdentityError(AgtError):
    """Base class of every identity, signature and delegation error."""


class InvalidDidError(IdentityError, ValueError):
    """A string is not a did:key holding an Ed25519 public key."""


class InvalidAgentIdError(IdentityError, ValueError):
    """An agent id is empty, too long, or not safe as a file name."""


class KeyFileError(IdentityError):
    """A private key file cannot be read, is not PEM, or holds a key that is not Ed25519."""


def validate_agent_id(agent_id: object) -> str:
    """Return ``agent_id`` if it is a valid agent id, else raise :class:`InvalidAgentIdError`."""
    if not isinstance(agent_id, str) or not AGENT_ID_PATTERN.fullmatch(agent_id):
        raise InvalidAgentIdError(
            f"invalid agent id {agent_id!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', '\\' or leading '.')"
        )
    return agent_id


# --- base58btc (Bitcoin alphabet); no installed package provides it ---------------------------------


def b58encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58_ALPHABET[r])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Decode base58btc; raises ValueError naming the first character outside the alphabet."""
    n = 0
    for pos, ch in enumerate(text):
        digit = _B58_INDEX.get(ch)
        if digit is None:
            raise ValueError(f"{ch!r} at position {pos} is not a base58btc character")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


# --- did:key ----------------------------------------------------------------------------------------


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def did_from_public_key(public_key: Ed25519PublicKey) -> str:
    return DID_KEY_PREFIX + "z" + b58encode(ED25519_MULTICODEC + raw_public_key(public_key))


def public_key_from_did(did: object) -> Ed25519PublicKey:
    """Parse an Ed25519 did:key back into its public key; raise :class:`InvalidDidError` naming the defect."""
    if not isinstance(did, str):
        raise InvalidDidError(f"a did must be a string, got {type(did).__name__}")
    shown = did if len(did) <= _MAX_DID_LENGTH else did[:_MAX_DID_LENGTH] + "..."
    if not did.startswith(DID_KEY_PREFIX):
        raise InvalidDidError(f"{shown!r} is not a did:key (it must start with {DID_KEY_PREFIX!r})")
    if len(did) > _MAX_DID_LENGTH:
        raise InvalidDidError(f"{shown!r} is too long for an Ed25519 did:key")
    if "#" in did or "?" in did or "/" in did:
        raise InvalidDidError(f"{did!r} is a DID URL, not a did: drop everything from the first '#', '?' or '/'")
    encoded = did[len(DID_KEY_PREFIX):]
    if not encoded.startswith("z"):
        raise InvalidDidError(f"{did!r}: only base58btc did:keys (multibase prefix 'z') are supported")
    try:
        decoded = b58decode(encoded[1:])
    except ValueError as exc:
        raise InvalidDidError(f"{did!r}: {exc}") from None
    if not decoded.startswith(ED25519_MULTICODEC):
        raise InvalidDidError(f"{did!r} does not hold an Ed25519 public key (multicodec 0xed01 expected)")
    key = decoded[len(ED25519_MULTICODEC):]
    if len(key) != 32:
        raise InvalidDidError(f"{did!r} holds {len(key)} key bytes; an Ed25519 public key has 32")
    return Ed25519PublicKey.from_public_bytes(key)


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s Ed25519 signature over ``data``."""
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


# --- the public value -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who an agent is, publicly: its id and its did:key. The public key is derived from the did, so the
    two can never disagree."""

    agent_id: str
    did: str

    def __post_init__(self) -> None:
        validate_agent_id(self.agent_id)
        # Parse now so a malformed did fails at construction, not at the first signature check.
        self.__dict__["public_key"] = public_key_from_did(self.did)

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        return public_key_from_did(self.did)  # only reached if __post_init__ was bypassed

    @classmethod
    def from_public_key(cls, agent_id: str, public_key: Ed25519PublicKey) -> "Identity":
        return cls(agent_id, did_from_public_key(public_key))

    @property
    def public_key_b64(self) -> str:
        """The raw 32-byte public key, base64 (standard alphabet), for humans and other tools."""
        return base64.b64encode(raw_public_key(self.public_key)).decode("ascii")

    def verify(self, signature: bytes, data: bytes) -> bool:
        return verify_signature(self.public_key, signature, data)

    def to_dict(self) -> dict[str, str]:
        return {"agent_id": self.agent_id, "did": self.did, "key_type": "Ed25519", "public_key": self.public_key_b64}


# --- the private half -------------------------------------------------------------------------------


class IdentityKeys:
    """An agent's private key, with the :class:`Identity` it proves. Not a value: it never prints its key,
    and it is not comparable, so it does not end up in logs or sets by accident."""

    __slots__ = ("_private_key", "identity")

    def __init__(self, agent_id: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyFileError(f"agent {agent_id!r}: expected an Ed25519 private key, got {type(private_key).__name__}")
        self._private_key = private_key
        self.identity = Identity.from_public_key(agent_id, private_key.public_key())

    @classmethod
    def generate(cls, agent_id: str) -> "IdentityKeys":
        return cls(agent_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, agent_id: str, seed: bytes) -> "IdentityKeys":
        """Deterministic keys from a 32-byte Ed25519 seed (RFC 8032 private key); for tests and known answers."""
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise KeyFileError(f"agent {agent_id!r}: an Ed25519 seed is exactly 32 bytes")
        return cls(agent_id, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def agent_id(self) -> str:
        return self.identity.agent_id

    @property
    def did(self) -> str:
        return self.identity.did

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.identity.public_key

    def sign(self, data: bytes) -> bytes:
        return self._private_key.sign(data)

    def __repr__(self) -> str:
        return f"IdentityKeys(agent_id={self.agent_id!r}, did={self.did!r})"

    # PEM ------------------------------------------------------------------------------------------

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted: protect the file (mode 0600) or the disk, not the bytes."""
        return self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def from_pem(cls, agent_id: str, pem: bytes, *, source: str = "<pem>") -> "IdentityKeys":
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"{source}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{source}: holds a {type(key).__name__}; agt identities use Ed25519 keys")
        return cls(agent_id, key)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the PEM private key with mode 0600. Refuses to replace an existing file unless ``overwrite``."""
        path = Path(path)
        write_private_file(path, self.to_pem(), overwrite=overwrite)
        return path

    @classmethod
    def load(cls, agent_id: str, path: str | os.PathLike[str]) -> "IdentityKeys":
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read the private key: {exc.strerror or exc}") from None
        return cls.from_pem(agent_id, pem, source=str(path))


def write_private_file(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` so that no other user can ever read it, not even for a moment.

    The file is created 0600 (and chmod-ed again, since the umask can only remove bits). Without
    ``overwrite`` it is created with O_EXCL, so two writers never clobber each other. With ``overwrite``
    a temporary 0600 file replaces the old one atomically, which also drops any looser old mode.
    """
    target = path if not overwrite else path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise FileExistsError(f"{path} already exists") from None
    try:
        try:
            os.fchmod(fd, 0o600)
        except AttributeError:  # pragma: no cover - Windows has no fchmod; the mode was set at open
            pass
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(target, path)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
