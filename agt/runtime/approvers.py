"""Who may approve: the approver registry (name → Ed25519 public key) a Governor is given when it starts.

The registry holds public keys only, as ``did:key`` (the format :mod:`agt.identity` already uses). The private
halves live in an *approver key store*, an :class:`~agt.identity.IdentityStore` directory that the governed agent
must not be able to read (another OS user, or another machine). ``agt approvals keygen NAME`` creates a key there;
``agt approvals registry`` exports the public halves as a registry file:

.. code-block:: json

    {"approvers": {"comms-lead": "did:key:z6Mk..."}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Union

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agt.identity import Identity, IdentityError, IdentityStore

KEYS_ENV_VAR = "AGT_APPROVER_KEYS"
REGISTRY_ENV_VAR = "AGT_APPROVER_REGISTRY"
DEFAULT_KEY_DIRECTORY = "~/.config/agt/approver-keys"
"""Outside any project directory on purpose; a deployment puts it under an OS user the agent is not."""

PublicKeyLike = Union[str, Identity, Ed25519PublicKey]


class ApproverRegistryError(IdentityError):
    """A registry file or mapping is unreadable or malformed; the message names the file and the field."""


def default_key_directory() -> Path:
    return Path(os.environ.get(KEYS_ENV_VAR) or DEFAULT_KEY_DIRECTORY).expanduser()


def approver_key_store(directory: str | os.PathLike[str] | None = None) -> IdentityStore:
    """The approver key store: ``directory``, else ``$AGT_APPROVER_KEYS``, else :data:`DEFAULT_KEY_DIRECTORY`."""
    return IdentityStore(Path(directory).expanduser() if directory is not None else default_key_directory())


@dataclass(frozen=True)
class ApproverRegistry:
    """Approver names and the public key each one signs votes with. Two names never share a key: a quorum of
    two must be two key holders."""

    approvers: Mapping[str, Identity] = field(default_factory=dict)
    source: str = "<registry>"

    def __post_init__(self) -> None:
        owners: dict[str, str] = {}
        for name, identity in self.approvers.items():
            if identity.agent_id != name:
                raise ApproverRegistryError(f"{self.source}: approvers.{name}: identity is named {identity.agent_id!r}")
            if identity.did in owners:
                raise ApproverRegistryError(
                    f"{self.source}: approvers {owners[identity.did]!r} and {name!r} share one key; "
                    "give each approver a key of their own, or a quorum could be one person"
                )
            owners[identity.did] = name
        object.__setattr__(self, "approvers", MappingProxyType(dict(self.approvers)))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, PublicKeyLike], source: str = "<mapping>") -> "ApproverRegistry":
        """``{"comms-lead": "did:key:z6Mk..."}``; values may also be :class:`Identity` or Ed25519 public keys."""
        if not isinstance(mapping, Mapping):
            raise ApproverRegistryError(f"{source}: approvers must be a mapping of name to did:key")
        out: dict[str, Identity] = {}
        for name, key in mapping.items():
            try:
                if isinstance(key, Identity):
                    out[name] = key if key.agent_id == name else Identity(name, key.did)
                elif isinstance(key, Ed25519PublicKey):
                    out[name] = Identity.from_public_key(name, key)
                elif isinstance(key, str):
                    out[name] = Identity(name, key)
                else:
                    raise ApproverRegistryError(f"expected a did:key string, got {type(key).__name__}")
            except IdentityError as exc:
                raise ApproverRegistryError(f"{source}: approvers.{name}: {exc}") from None
        return cls(out, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "ApproverRegistry":
        path = Path(path)
        try:
            doc: Any = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ApproverRegistryError(f"{path}: cannot read the approver registry: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ApproverRegistryError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("approvers"), dict):
            raise ApproverRegistryError(f'{path}: expected {{"approvers": {{"name": "did:key:..."}}}}')
        return cls.from_mapping(doc["approvers"], source=str(path))

    @classmethod
    def from_store(cls, store: IdentityStore) -> "ApproverRegistry":
        """The public halves of every key in an approver key store."""
        return cls({i.agent_id: i for i in store.list()}, source=str(store.directory))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.approvers))

    def get(self, name: str) -> Identity | None:
        return self.approvers.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.approvers

    def __len__(self) -> int:
        return len(self.approvers)

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"approvers": {name: self.approvers[name].did for name in self.names}}

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def with_approver(self, identity: Identity) -> "ApproverRegistry":
        return ApproverRegistry({**self.approvers, identity.agent_id: identity}, self.source)


def as_registry(value: "ApproverRegistry | Mapping[str, PublicKeyLike] | str | os.PathLike[str] | None") -> ApproverRegistry:
    """What ``Governor(approvers=...)`` accepts: a registry, a name → key mapping, or a registry file path."""
    if value is None:
        return ApproverRegistry(source="<none>")
    if isinstance(value, ApproverRegistry):
        return value
    if isinstance(value, (str, os.PathLike)):
        return ApproverRegistry.from_file(value)
    return ApproverRegistry.from_mapping(value)
