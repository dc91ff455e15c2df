"""A directory of agent identities: ``<agent_id>.json`` (public: did and key) and ``<agent_id>.key`` (the PEM
private key, mode 0600) per agent.

The JSON file is written last, so its presence means the identity is complete; a lone ``.key`` file (from a
crash mid-create) still counts as taken, so nothing silently replaces a private key. Agent ids are checked
before any path is built from them, so an id can never reach outside the directory.

The default directory is ``.agt/identities`` under the working directory, or ``$AGT_IDENTITY_DIR``.
"""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path
from typing import Any

from agt.identity.keys import (
    Identity,
    IdentityError,
    IdentityKeys,
    InvalidAgentIdError,
    InvalidDidError,
    validate_agent_id,
)

DEFAULT_DIRECTORY = ".agt/identities"
ENV_VAR = "AGT_IDENTITY_DIR"


class IdentityExistsError(IdentityError):
    """An identity with this agent id is already in the store."""


class IdentityNotFoundError(IdentityError, LookupError):
    """No identity with this agent id is in the store."""


class CorruptIdentityError(IdentityError):
    """An identity file is unreadable or inconsistent (bad JSON, wrong agent id, key and did disagree)."""


def default_directory() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIRECTORY)


class IdentityStore:
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()

    def __repr__(self) -> str:
        return f"IdentityStore({str(self.directory)!r})"

    # paths ----------------------------------------------------------------------------------------

    def public_path(self, agent_id: str) -> Path:
        return self.directory / f"{validate_agent_id(agent_id)}.json"

    def key_path(self, agent_id: str) -> Path:
        return self.directory / f"{validate_agent_id(agent_id)}.key"

    def __contains__(self, agent_id: object) -> bool:
        try:
            return self.public_path(agent_id).exists() or self.key_path(agent_id).exists()  # type: ignore[arg-type]
        except InvalidAgentIdError:
            return False

    # writing --------------------------------------------------------------------------------------

    def create(self, agent_id: str, *, overwrite: bool = False) -> IdentityKeys:
        """Generate a key pair for ``agent_id`` and store it. Refuses an existing id unless ``overwrite``,
        which replaces the old key for good (signatures by it stop verifying)."""
        return self.add(IdentityKeys.generate(validate_agent_id(agent_id)), overwrite=overwrite)

    def add(self, keys: IdentityKeys, *, overwrite: bool = False) -> IdentityKeys:
        """Store existing keys (for example, imported from elsewhere)."""
        agent_id = keys.agent_id
        public, private = self.public_path(agent_id), self.key_path(agent_id)
        if not overwrite and agent_id in self:
            raise IdentityExistsError(
                f"identity {agent_id!r} already exists in {self.directory}; choose another id, or overwrite it "
                "(this replaces its key: signatures by the old key stop verifying)"
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            keys.save(private, overwrite=overwrite)
        except FileExistsError:  # another process created it between our check and our write
            raise IdentityExistsError(f"identity {agent_id!r} was just created by someone else in {self.directory}") from None
        tmp = public.with_name(f".{public.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(keys.identity.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, public)
        return keys

    # reading --------------------------------------------------------------------------------------

    def get(self, agent_id: str) -> Identity:
        """The public identity of ``agent_id``; raises :class:`IdentityNotFoundError` if there is none."""
        path = self.public_path(agent_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise IdentityNotFoundError(
                f"no identity {agent_id!r} in {self.directory}; create it with: agt identity create {agent_id}"
            ) from None
        except OSError as exc:
            raise CorruptIdentityError(f"{path}: cannot read: {exc.strerror or exc}") from None
        return _identity_from_json(text, agent_id, path)

    def keys(self, agent_id: str) -> IdentityKeys:
        """The private keys of ``agent_id``, checked against its public file."""
        identity = self.get(agent_id)
        keys = IdentityKeys.load(agent_id, self.key_path(agent_id))
        if keys.did != identity.did:
            raise CorruptIdentityError(
                f"{self.key_path(agent_id)} does not match {self.public_path(agent_id)} "
                f"(key proves {keys.did}, file says {identity.did}); restore one, or recreate the identity"
            )
        return keys

    def resolve(self, agent_id: str) -> str | None:
        """The did of ``agent_id``, or None if unknown. Fits ``EnvelopeVerifier(resolve=store.resolve)``."""
        try:
            return self.get(agent_id).did
        except (IdentityNotFoundError, InvalidAgentIdError):
            return None

    def list(self) -> builtins.list[Identity]:
        """Every complete identity in the store, sorted by agent id."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            agent_id = path.stem
            try:
                validate_agent_id(agent_id)
            except InvalidAgentIdError:
                continue  # not ours (a temporary file, or something a user put here)
            found.append(self.get(agent_id))
        return found


def _identity_from_json(text: str, agent_id: str, path: Path) -> Identity:
    try:
        doc: Any = json.loads(text)
    except ValueError as exc:
        raise CorruptIdentityError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("did"), str):
        raise CorruptIdentityError(f"{path}: expected an object with agent_id, did and public_key")
    if doc.get("agent_id") != agent_id:
        raise CorruptIdentityError(f"{path}: holds agent id {doc.get('agent_id')!r}, but the file is named for {agent_id!r}")
    try:
        identity = Identity(agent_id, doc["did"])
    except InvalidDidError as exc:
        raise CorruptIdentityError(f"{path}: {exc}") from None
    if "public_key" in doc and doc["public_key"] != identity.public_key_b64:
        raise CorruptIdentityError(f"{path}: public_key does not match the did; one of them was edited")
    return identity
