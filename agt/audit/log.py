"""The tamper-evident audit log.

Every record commits to the one before it (``prev_hash``), and every ``checkpoint_every`` records a
checkpoint is signed with Ed25519 over the Merkle root of all record hashes so far. Editing, deleting,
inserting or reordering a record breaks the chain; rewriting the whole chain breaks the signed roots;
cutting records off the end falls short of the last checkpoint. ``agt audit verify`` checks all of it.

Field names follow OPA's decision-log event (decision_id, path, input, result, timestamp, labels,
metrics), plus ``kind``, ``agent_id``, ``seq``, ``prev_hash`` and ``hash``, and ``input_digest`` (the
digest of the unmasked input) on records whose input had values masked.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agt._canonical import canonical_json
from agt.audit import merkle
from agt.audit.backends import Backend, JsonlBackend, open_backend
from agt.errors import AgtError

GENESIS = "0" * 64
MASK = "***"
RESERVED_FIELDS = frozenset({"seq", "prev_hash", "hash", "input_digest"})


class Durability(str, enum.Enum):
    ALWAYS = "always"
    """Written and fsynced before append returns. A crash or power cut loses at most the record in flight."""
    BATCH = "batch"
    """append only queues the record; a writer thread chains, writes and fsyncs in batches (every 50 ms).
    The decision path does not wait on disk. A crash loses at most the records still queued (one batch
    window); what was written always verifies."""
    NONE = "none"
    """Written (handed to the OS) before append returns, never fsynced. A killed process loses at most the
    record in flight; a power cut may lose what the OS had not written yet."""


canonical = canonical_json
"""The one byte form every hash and signature in the log is computed over."""


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def checkpoint_message(cp: Mapping[str, Any]) -> bytes:
    return canonical({k: cp[k] for k in ("size", "root", "last_hash", "time")})


def load_or_create_key(directory: Path) -> Ed25519PrivateKey:
    """The log's checkpoint key, kept beside the log (0600) unless the caller supplies one."""
    key_path = directory / "checkpoint.key"
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AgtError(f"{key_path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Write under a temporary name, then link it into place: exactly one writer of a fresh log wins,
    # and nobody ever reads a half-written key.
    tmp = directory / f".checkpoint.key.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, key_path)
    except FileExistsError:
        return load_or_create_key(directory)  # another writer won; use its key
    finally:
        os.unlink(tmp)
    pub_tmp = directory / f".checkpoint.pub.{os.getpid()}.{threading.get_ident()}"
    pub_tmp.write_bytes(public_pem(key.public_key()))
    os.replace(pub_tmp, directory / "checkpoint.pub")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _rewrite(doc: Any, names: frozenset[str], secrets: frozenset[str]) -> Any:
    """Mask the values of keys in ``names`` and every string equal to one of ``secrets``, at any depth.
    Containers with nothing to mask are returned as they are, not copied."""
    if isinstance(doc, dict):
        out = None
        for k, v in doc.items():
            nv = MASK if k.lower() in names else _rewrite(v, names, secrets)
            if nv is not v:
                if out is None:
                    out = dict(doc)
                out[k] = nv
        return doc if out is None else out
    if isinstance(doc, list):
        items = [_rewrite(v, names, secrets) for v in doc]
        return doc if all(a is b for a, b in zip(items, doc)) else items
    return MASK if isinstance(doc, str) and doc in secrets else doc


def mask_document(doc: Any, names: frozenset[str]) -> Any:
    """Replace the values of keys named in ``names`` (case-insensitive), at any depth."""
    return _rewrite(doc, names, frozenset()) if names else doc


def _masked_strings(doc: Any, names: frozenset[str], found: set[str], inside: bool = False) -> None:
    """Every string that sits under a masked key, at any depth."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            _masked_strings(v, names, found, inside or k.lower() in names)
    elif isinstance(doc, list):
        for v in doc:
            _masked_strings(v, names, found, inside)
    elif inside and isinstance(doc, str) and doc:
        found.add(doc)


def mask_input(doc: Any, names: frozenset[str]) -> Any:
    """Mask an action document. ``params_text`` folds every param's text, so it is derived again from
    the masked params; and a masked value copied elsewhere (``resource.id`` from a ``path`` or ``url``
    param) is masked there too. Otherwise the secret would still be readable."""
    masked = mask_document(doc, names)
    if masked is doc:
        return doc
    secrets: set[str] = set()
    _masked_strings(doc, names, secrets)
    # Masked values copied elsewhere (resource.id from a masked url param) are masked there too.
    masked = _rewrite(masked, frozenset(), frozenset(secrets))
    action = masked.get("action") if isinstance(masked, dict) else None
    if isinstance(action, dict) and "params_text" in action:
        from agt._normalize import params_text

        action = masked["action"] = dict(action)
        params = action.get("params")
        action["params_text"] = params_text(params) if isinstance(params, dict) else MASK
        if "facts" in action:
            # Facts hold pieces of the params (operands, table names): derived again from the masked params.
            from agt.facts import derive_facts

            tool, kind = action.get("tool"), action.get("kind")
            action["facts"] = (derive_facts(tool, kind, params) if isinstance(params, dict) and isinstance(tool, str)
                               and isinstance(kind, str) else MASK)
    return masked


class AuditLog:
    """Append records; thread-safe, and safe for several processes sharing one log."""

    def __init__(
        self,
        location: str | Path | Backend,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        durability: Durability | str = Durability.BATCH,
        checkpoint_every: int = 100,
        mask: Iterable[str] = (),
        max_bytes: int = 64 * 1024 * 1024,
        batch_interval: float = 0.05,
        queue_limit: int = 10_000,
    ) -> None:
        self.backend: Backend = location if not isinstance(location, (str, Path)) else open_backend(location, max_bytes)
        key_dir = self.backend.dir if isinstance(self.backend, JsonlBackend) else Path(str(location)).parent
        self.signing_key = signing_key or load_or_create_key(Path(key_dir))
        self.durability = Durability(durability)
        self.checkpoint_every = checkpoint_every
        self.mask = frozenset(m.lower() for m in mask)
        self._lock = threading.Lock()
        self._position: object = None
        self._leaves: list[bytes] = []
        self._last_hash = GENESIS
        self._closed = threading.Event()
        self._batch_interval = batch_interval
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(maxsize=queue_limit)
        self._writer_error: BaseException | None = None
        with self.backend.locked():
            self.backend.repair_tail()  # type: ignore[attr-defined]
            self._catch_up()
        self._writer: threading.Thread | None = None
        if self.durability is Durability.BATCH:
            self._writer = threading.Thread(target=self._write_loop, daemon=True, name="agt-audit-writer")
            self._writer.start()

    def add_mask(self, names: Iterable[str]) -> None:
        self.mask = self.mask | {n.lower() for n in names}

    @property
    def size(self) -> int:
        return len(self._leaves)

    @property
    def last_hash(self) -> str:
        return self._last_hash

    def _catch_up(self) -> None:
        """Read what other writers appended since we last looked, so our chain continues theirs."""
        lines, self._position = self.backend.read_since(self._position)
        for line in lines:
            rec = json.loads(line.text)
            self._leaves.append(merkle.leaf_hash(bytes.fromhex(rec["hash"])))
            self._last_hash = rec["hash"]

    def append(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """Chain and store one event (a dict of OPA-style fields). Returns the stored record, or None
        with batch durability, where the writer thread stores it (see :meth:`flush`). The event must
        not be changed afterwards: with batch durability it is read later."""
        if self._writer_error is not None:
            raise AgtError(f"the audit writer stopped: {self._writer_error}")
        reserved = sorted(RESERVED_FIELDS & set(event))
        if reserved:
            raise AgtError(f"audit events may not set {', '.join(reserved)}: the log computes them")
        if self.durability is Durability.BATCH:
            if self._closed.is_set():
                raise AgtError("the audit log is closed")
            self._queue.put(event)  # blocks when the writer is behind: back-pressure, never dropping
            return None
        return self._append_now(event)

    def _append_now(self, event: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(event)
        if "input" in body and body["input"] is not None:
            masked = mask_input(body["input"], self.mask)
            if masked is not body["input"]:
                # The digest of what was masked lets its owner prove the original later.
                body["input_digest"] = "sha256:" + hashlib.sha256(canonical(body["input"])).hexdigest()
                body["input"] = masked
        with self._lock, self.backend.locked():
            self._catch_up()
            body["seq"] = len(self._leaves)
            body["prev_hash"] = self._last_hash
            text = canonical(body)
            body["hash"] = hashlib.sha256(text).hexdigest()
            # The stored line is the hashed canonical form plus the hash: one encoding, not two.
            self._position = self.backend.append(text[:-1].decode("utf-8") + f',"hash":"{body["hash"]}"}}')
            self._leaves.append(merkle.leaf_hash(bytes.fromhex(body["hash"])))
            self._last_hash = body["hash"]
            if self.durability is Durability.ALWAYS:
                self.backend.sync()
            if self.checkpoint_every and len(self._leaves) % self.checkpoint_every == 0:
                self._checkpoint_locked()
        return body

    def write(self, record: Any) -> None:
        """The runtime's AuditSink protocol: an agt.runtime.audit.AuditRecord."""
        self.append({
            "decision_id": record.decision_id, "timestamp": record.timestamp, "kind": record.kind,
            "agent_id": record.agent_id, "path": record.path, "input": record.input, "result": record.result,
            "labels": record.labels, "metrics": record.metrics,
        })

    def flush(self) -> None:
        """Wait until every queued record is written (batch durability) and synced."""
        if self._writer is not None and self._writer.is_alive():
            self._queue.join()
        if self._writer_error is not None:
            raise AgtError(f"the audit writer stopped: {self._writer_error}")
        self.backend.sync()

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign the current tree head now (also done every ``checkpoint_every`` records and on close)."""
        self.flush()
        with self._lock, self.backend.locked():
            self._catch_up()
            return self._checkpoint_locked()

    def _checkpoint_locked(self) -> dict[str, Any] | None:
        if not self._leaves:
            return None
        self.backend.sync()
        cp = {
            "size": len(self._leaves),
            "root": merkle.root(self._leaves).hex(),
            "last_hash": self._last_hash,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        cp["signature"] = base64.b64encode(self.signing_key.sign(checkpoint_message(cp))).decode()
        cp["public_key"] = base64.b64encode(self.signing_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
        self.backend.append_checkpoint(json.dumps(cp, sort_keys=True, separators=(",", ":")))
        return cp

    def _write_loop(self) -> None:
        """Batch durability: take what is queued, append it in order, fsync once per batch."""
        last_sync = time.monotonic()
        unsynced = False
        while True:
            try:
                item = self._queue.get(timeout=self._batch_interval)
            except queue.Empty:
                if unsynced:  # the log went quiet: make what was written durable now
                    try:
                        self.backend.sync()
                        unsynced = False
                        last_sync = time.monotonic()
                    except OSError as exc:
                        self._writer_error = exc
                continue
            stop = item is None
            batch = [] if stop else [item]
            while not stop and len(batch) < 1000:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                else:
                    batch.append(nxt)
            try:
                for event in batch:
                    self._append_now(event)
                unsynced = True
                if time.monotonic() - last_sync >= self._batch_interval or stop:
                    self.backend.sync()
                    last_sync = time.monotonic()
                    unsynced = False
            except BaseException as exc:  # noqa: BLE001 - surfaced on the next append or flush
                self._writer_error = exc
            finally:
                for _ in range(len(batch) + (1 if stop else 0)):
                    self._queue.task_done()
            if stop:
                return

    def close(self) -> None:
        if self._closed.is_set():
            return
        try:
            self.checkpoint()
        finally:
            self._closed.set()
            if self._writer is not None:
                self._queue.put(None)
                self._writer.join(timeout=10)
            self.backend.close()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def records(location: str | Path) -> list[tuple[str, dict[str, Any] | None, str]]:
    """Every stored line as (where, parsed record or None when it is not JSON, raw text)."""
    backend = open_backend(location, create=False)
    try:
        lines, _ = backend.read_since(None)
    finally:
        backend.close()
    out = []
    for line in lines:
        try:
            rec = json.loads(line.text)
            out.append((line.where, rec if isinstance(rec, dict) else None, line.text))
        except json.JSONDecodeError:
            out.append((line.where, None, line.text))
    return out


def select(
    location: str | Path, *, agent: str | None = None, effect: str | None = None, rule: str | None = None,
    kind: str | None = None, since: str | None = None, until: str | None = None,
) -> list[dict[str, Any]]:
    """Records matching every given filter; timestamps compare as RFC 3339 strings."""
    out = []
    for _, rec, _ in records(location):
        if rec is None:
            continue
        result = rec.get("result") or {}
        if agent and rec.get("agent_id") != agent:
            continue
        if kind and rec.get("kind") != kind:
            continue
        if effect and result.get("effect") != effect:
            continue
        if rule and rule not in {r.get("id") for r in result.get("reasons", []) if isinstance(r, dict)}:
            continue
        if since or until:
            ts = _instant(rec.get("timestamp"))
            if ts is None or (since and ts < _instant(since)) or (until and ts > _instant(until)):  # type: ignore[operator]
                continue
        out.append(rec)
    return out


def _instant(text: Any) -> Any:
    """An RFC 3339 time as an aware datetime (strings would sort '.5Z' before 'Z'); None if unreadable."""
    import datetime as dt

    if not isinstance(text, str):
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AgtError(f"not an RFC 3339 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

