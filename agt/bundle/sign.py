"""Bundle signatures exactly as OPA checks them (``.signatures.json``).

One JWS, whose payload lists every file with its SHA-256: ``data.json``, ``data.yaml`` and
``.manifest`` are hashed over OPA's canonical JSON form (keys sorted, no whitespace, no HTML
escaping); every other file over its raw bytes. Names are the tar paths without the leading slash.
JWS signing and verification are PyJWT's, not ours.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any, Mapping

import jwt
from agt import _yaml

from agt._canonical import canonical_json
from agt.errors import AgtError

SIGNATURES = ".signatures.json"
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256")


class BundleSignatureError(AgtError):
    pass


def file_hash(name: str, content: bytes) -> str:
    base = PurePosixPath(name).name
    if base in ("data.json", ".manifest"):
        return hashlib.sha256(canonical_json(json.loads(content))).hexdigest()
    if base == "data.yaml":
        return hashlib.sha256(canonical_json(_yaml.safe_load(content))).hexdigest()
    return hashlib.sha256(content).hexdigest()


def sign_files(files: Mapping[str, bytes], key_pem: bytes, algorithm: str = "RS256", keyid: str = "default") -> bytes:
    """The ``.signatures.json`` content for ``files`` (name without leading slash -> content)."""
    if algorithm not in ALGORITHMS:
        raise BundleSignatureError(f"unsupported signing algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    payload = {
        "files": [{"name": n, "hash": file_hash(n, c), "algorithm": "SHA-256"} for n, c in sorted(files.items())],
        "keyid": keyid,
    }
    try:
        token = jwt.encode(payload, _private_key(key_pem), algorithm=algorithm)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise BundleSignatureError(f"cannot sign with this key and {algorithm}: {exc}") from None
    return json.dumps({"signatures": [token]}, indent=2).encode()


@lru_cache(maxsize=8)
def _private_key(pem: bytes) -> Any:
    """Parsing (and validating) an RSA key costs tens of milliseconds; a server re-signing on every
    change should pay that once."""
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleSignatureError(f"the signing key is not a PEM private key: {exc}") from None


def read_bundle(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    f = tar.extractfile(member)
                    out[member.name.lstrip("/")] = f.read() if f else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleSignatureError(f"not a readable bundle (.tar.gz): {exc}") from None
    return out


def verify_bundle(data: bytes, public_key_pem: bytes, algorithms: tuple[str, ...] = ALGORITHMS) -> dict[str, Any]:
    """Check a signed bundle like OPA does; return the verified payload or raise BundleSignatureError."""
    files = read_bundle(data)
    raw = files.pop(SIGNATURES, None)
    if raw is None:
        raise BundleSignatureError("the bundle is not signed: no .signatures.json")
    try:
        sigs = json.loads(raw)["signatures"]
        if not isinstance(sigs, list) or len(sigs) != 1:
            raise ValueError("OPA expects exactly one signature")
        payload = jwt.decode(sigs[0], public_key_pem, algorithms=list(algorithms))
    except jwt.PyJWTError as exc:
        raise BundleSignatureError(f"signature does not verify: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleSignatureError(f"malformed .signatures.json: {exc}") from None
    listed = {f["name"].lstrip("/"): f for f in payload.get("files", [])}
    for name in sorted(set(listed) | set(files)):
        if name not in listed:
            raise BundleSignatureError(f"{name} is in the bundle but not in the signature")
        if name not in files:
            raise BundleSignatureError(f"{name} is signed but missing from the bundle")
        if listed[name].get("algorithm", "SHA-256") != "SHA-256" or file_hash(name, files[name]) != listed[name].get("hash"):
            raise BundleSignatureError(f"{name} does not match its signed hash")
    return payload
