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
import collections
import enum
import functools
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agt._canonical import canonical_json, canonical_json_if_orjson
from agt.audit import merkle
from agt.audit.backends import Backend, JsonlBackend, open_backend
from agt.audit.text import safe_document
from agt.audit.witness import FileWitness, Witness, json_object, open_witness
from agt.errors import AgtError

GENESIS = "0" * 64
MASK = "***"
RESERVED_FIELDS = frozenset({"seq", "prev_hash", "hash", "input_digest"})
LEGACY_KEY_NAME = "checkpoint.key"
WITNESS_BACKLOG = 10_000
BATCH_LOCKED = 100
"""The most records the batch writer appends under one hold of the log's lock."""
log = logging.getLogger("agt.audit")


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


CHAINED_FIELDS = ("prev_checkpoint", "checkpoint_every")
"""Signed fields of chained checkpoints. Checkpoints written before the chain existed lack them; their
signature covers only the first four fields, and verify reports them (see docs/audit.md)."""


def checkpoint_message(cp: Mapping[str, Any]) -> bytes:
    fields = ("size", "root", "last_hash", "time") + tuple(k for k in CHAINED_FIELDS if k in cp)
    return canonical({k: cp[k] for k in fields})


def checkpoint_hash(line: str) -> str:
    """What the next checkpoint's ``prev_checkpoint`` holds: the SHA-256 of this one's stored line."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def inside(path: Path, directory: Path) -> bool:
    """``path`` lies in ``directory``, as written or once symlinks are resolved."""
    path, directory = Path(os.path.abspath(path)), Path(os.path.abspath(directory))
    return path.is_relative_to(directory) or path.resolve().is_relative_to(directory.resolve())


def public_key_path(key_path: Path) -> Path:
    return key_path.with_suffix(".pub")


def load_signing_key(key_path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key at ``key_path`` (PEM); never creates one."""
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except ValueError as exc:
        raise AgtError(f"{key_path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AgtError(f"{key_path} is not an Ed25519 private key")
    return key


def load_or_create_key(key_path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key at ``key_path`` (PEM), created there (0600) with its public half at
    ``<name>.pub`` when it does not exist yet."""
    key_path = Path(key_path)
    directory = key_path.parent
    if key_path.exists():
        return load_signing_key(key_path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Write under a temporary name, then link it into place: exactly one writer of a fresh log wins,
    # and nobody ever reads a half-written key.
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{key_path.name}.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, key_path)
    except FileExistsError:
        return load_or_create_key(key_path)  # another writer won; use its key
    finally:
        os.unlink(tmp)
    pub = public_key_path(key_path)
    pub_tmp = directory / f".{pub.name}.{os.getpid()}.{threading.get_ident()}"
    pub_tmp.write_bytes(public_pem(key.public_key()))
    os.replace(pub_tmp, pub)
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


_SEQUENCES = (list, tuple)
_CONTAINERS = (dict, list, tuple)
"""What the masking walks descend into: canonical JSON writes a tuple as a list, so it is read as one."""


def _rewrite(doc: Any, names: frozenset[str], secrets: frozenset[str]) -> Any:
    """Mask the values of keys in ``names`` and every string equal to one of ``secrets``, at any depth.
    Containers with nothing to mask are returned as they are, not copied. Scalars are handled in the
    loop, not by a call each: masking runs on every record the writer stores."""
    if isinstance(doc, dict):
        out = None
        for k, v in doc.items():
            if k.lower() in names:
                nv = MASK
            elif isinstance(v, str):
                nv = MASK if v in secrets else v
            elif isinstance(v, _CONTAINERS) and v:  # an empty one holds nothing to mask
                nv = _rewrite(v, names, secrets)
            else:
                continue
            if nv is not v:
                if out is None:
                    out = dict(doc)
                out[k] = nv
        return doc if out is None else out
    if isinstance(doc, _SEQUENCES):
        items = None
        for i, v in enumerate(doc):
            if isinstance(v, str):
                nv = MASK if v in secrets else v
            elif isinstance(v, _CONTAINERS) and v:
                nv = _rewrite(v, names, secrets)
            else:
                continue
            if nv is not v:
                if items is None:
                    items = list(doc)
                items[i] = nv
        return doc if items is None else items
    return MASK if isinstance(doc, str) and doc in secrets else doc


def mask_document(doc: Any, names: frozenset[str]) -> Any:
    """Replace the values of keys named in ``names`` (case-insensitive), at any depth."""
    return _rewrite(doc, names, frozenset()) if names else doc


def _strings(doc: Any, found: set[str]) -> None:
    """Every non-empty string in ``doc``, at any depth (values, not keys)."""
    if isinstance(doc, dict):
        for v in doc.values():
            _strings(v, found)
    elif isinstance(doc, _SEQUENCES):
        for v in doc:
            _strings(v, found)
    elif isinstance(doc, str) and doc:
        found.add(doc)


def _masked_strings(doc: Any, names: frozenset[str], found: set[str], skip: Any = None) -> bool:
    """Gather every string that sits under a key in ``names``, at any depth; True when masking changes
    ``doc`` (some such key holds anything but the mask itself). Read-only: nothing is copied. ``skip`` is
    a subtree known to hold no key in ``names``, left unread."""
    changed = False
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k.lower() in names:
                changed = changed or v != MASK
                _strings(v, found)
            elif v is not skip and isinstance(v, _CONTAINERS) and v:  # an empty one holds no key
                changed = _masked_strings(v, names, found, skip) or changed
    elif isinstance(doc, _SEQUENCES):
        for v in doc:
            if v is not skip and isinstance(v, _CONTAINERS) and v:
                changed = _masked_strings(v, names, found, skip) or changed
    return changed


@functools.lru_cache(maxsize=64)
def _key_texts(names: frozenset[str]) -> tuple[bytes, ...] | None:
    """Each name as a key reads in canonical JSON, ``"name":``; None when a name is not printable ASCII or holds a
    character JSON escapes (its text would then differ)."""
    if not all(n.isascii() and n.isprintable() and '"' not in n and "\\" not in n for n in names):
        return None
    return tuple(b'"' + n.encode("ascii") + b'":' for n in sorted(names))


_DECODER = json.JSONDecoder()


def _masked_strings_in_text(text: bytes, keys: tuple[bytes, ...], found: set[str]) -> bool:
    """:func:`_masked_strings`, read off the document's canonical JSON ``text`` from orjson, all ASCII: the same
    strings gathered, the same answer. A key is masked where the lower-cased text holds ``"name":`` right after
    ``{`` or ``,``. That is exact: inside a string every ``"`` is escaped (``\\"``), so a quote after ``{`` or
    ``,`` opens a key, and the quote before the colon closes it. ASCII letters are all ``str.lower`` changes in
    ASCII text. Only the values under masked keys are decoded; the rest is never walked."""
    lowered = text.lower()
    source: str | None = None
    changed = False
    for key in keys:
        at = lowered.find(key)
        while at >= 0:
            if at and lowered[at - 1] in b"{,":
                if source is None:
                    source = text.decode("ascii")
                value, _ = _DECODER.raw_decode(source, at + len(key))
                changed = changed or value != MASK
                _strings(value, found)
            at = lowered.find(key, at + 1)
    return changed


@functools.lru_cache(maxsize=1)
def _no_facts() -> tuple[Any, frozenset[str]]:
    """The facts of an action with no command or SQL param (one shared object, read-only) and every key in it
    at any depth: most records carry it, and it is the largest part of their document."""
    from agt.facts import derive_facts

    shape = derive_facts("", "read", {})
    keys: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            keys.update(value)
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(shape)
    return shape, frozenset(keys)


def mask_input(doc: Any, names: frozenset[str], text: bytes | None = None) -> Any:
    """Mask an action document. ``params_text`` folds every param's text, so it is derived again from
    the masked params; and a masked value copied elsewhere (``resource.id`` from a ``path`` or ``url``
    param) is masked there too. Otherwise the secret would still be readable.

    Two steps: one reads (which strings are secret, and is anything masked at all), one rewrites
    (masked keys and every copy of a secret at once). ``text``, the document's bytes from
    :func:`~agt._canonical.canonical_json_if_orjson`, lets the read search them instead of walking."""
    if not names:
        return doc
    secrets: set[str] = set()
    action = doc.get("action") if isinstance(doc, dict) else None
    rederived = isinstance(action, dict) and "params_text" in action and "facts" in action and "action" not in names
    keys = _key_texts(names) if text is not None and text.isascii() else None
    if keys is not None:
        changed = _masked_strings_in_text(text, keys, secrets)  # type: ignore[arg-type]
    else:
        skip = None
        if rederived:
            shape, shape_keys = _no_facts()
            if action["facts"] is shape and names.isdisjoint(shape_keys):
                skip = shape  # holds no key in names (its keys are lower case), so nothing to gather and no change
        changed = _masked_strings(doc, names, secrets, skip)
    if not changed:
        return doc
    source, facts_left_out = doc, False
    if rederived:
        # The facts are derived again below from the masked params; rewriting them first would be wasted.
        source, facts_left_out = {**doc, "action": {k: v for k, v in action.items() if k != "facts"}}, True
    masked = _rewrite(source, names, frozenset(secrets))
    action = masked.get("action") if isinstance(masked, dict) else None
    if isinstance(action, dict) and "params_text" in action:
        from agt._normalize import params_text

        action = masked["action"] = dict(action)
        params = action.get("params")
        action["params_text"] = params_text(params) if isinstance(params, dict) else MASK
        if facts_left_out or "facts" in action:
            # Facts hold pieces of the params (operands, table names): derived again from the masked params.
            from agt.facts import derive_facts

            tool, kind = action.get("tool"), action.get("kind")
            action["facts"] = (derive_facts(tool, kind, params) if isinstance(params, dict) and isinstance(tool, str)
                               and isinstance(kind, str) else MASK)
    return masked


class _Unencodable(Exception):
    """An event canonical JSON cannot encode as it is; it is stored in its safe form instead."""


def _encode(value: Any) -> bytes:
    try:
        return _canonical_sharing_facts(value)
    except (UnicodeEncodeError, TypeError, ValueError, RecursionError) as exc:
        raise _Unencodable(str(exc)) from None


_FACTS_MARK = "\x00agt:shared-facts\x00"


@functools.lru_cache(maxsize=1)
def _facts_bytes() -> tuple[bytes, bytes]:
    """The canonical bytes of the shared empty facts shape, and of the mark that stands in for it."""
    return canonical(_no_facts()[0]), canonical(_FACTS_MARK)


def _canonical_sharing_facts(value: Any) -> bytes:
    """``canonical(value)``, byte for byte. An action document (or a record body whose input is one) carrying the
    shared empty facts shape, about half of its bytes, is encoded with a mark in its place and the shape's bytes,
    encoded once, put back. The mark must occur exactly once in the output: any other occurrence (an agent can put
    any text in its params) means the text is encoded whole instead, so nothing an agent sends is ever replaced."""
    marked = None
    if type(value) is dict:
        inner = value.get("input")
        if type(inner) is dict:
            doc = _with_facts_marked(inner)
            marked = None if doc is None else {**value, "input": doc}
        else:
            marked = _with_facts_marked(value)
    if marked is None:
        return canonical(value)
    text = canonical(marked)
    shape, mark = _facts_bytes()
    if text.count(mark) != 1:
        return canonical(value)
    return text.replace(mark, shape)


def _with_facts_marked(doc: dict) -> dict | None:
    action = doc.get("action")
    if type(action) is dict and action.get("facts") is _no_facts()[0]:
        return {**doc, "action": {**action, "facts": _FACTS_MARK}}
    return None


def _event_of(record: Any) -> dict[str, Any]:
    """The event an AuditRecord is stored as."""
    return {
        "decision_id": record.decision_id, "timestamp": record.timestamp, "kind": record.kind,
        "agent_id": record.agent_id, "path": record.path, "input": record.input, "result": record.result,
        "labels": record.labels, "metrics": record.metrics,
    }


def _signed_size(line: Any) -> int | None:
    """The ``size`` a checkpoint line claims (checked against its signature later), or None."""
    cp = json_object(line.text) if line is not None else None
    size = cp.get("size") if cp is not None else None
    return size if isinstance(size, int) else None


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """The base64 Ed25519 signature of ``message``: how checkpoints (and agt verify's evidence) are signed."""
    return base64.b64encode(key.sign(message)).decode()


def signature_valid(key: Ed25519PublicKey, signature: Any, message: bytes) -> bool:
    """Whether ``signature`` (base64, as :func:`sign` writes it) is ``key``'s signature of ``message``."""
    try:
        key.verify(base64.b64decode(signature, validate=True), message)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def signature_ok(key: Ed25519PublicKey, cp: Mapping[str, Any]) -> bool:
    try:
        return signature_valid(key, cp["signature"], checkpoint_message(cp))
    except (KeyError, TypeError):
        return False


def log_directory(backend: Backend) -> Path | None:
    """The directory whose writers can rewrite the log: a JSONL log's own, a database's parent."""
    if isinstance(backend, JsonlBackend):
        return backend.dir
    path = getattr(backend, "path", None)
    return Path(path).parent if path else None


def resolve_signing_key(
    signing_key: Ed25519PrivateKey | None, key_path: str | Path | None, log_dir: Path | None, allow_key_in_log_dir: bool,
) -> Ed25519PrivateKey:
    """The checkpoint key, which by default never lives where the log's writers can write (docs/audit.md)."""
    if signing_key is not None and key_path is not None:
        raise ValueError("give signing_key or key_path, not both")
    if signing_key is not None:
        return signing_key
    if key_path is None:
        if not allow_key_in_log_dir or log_dir is None:
            legacy = log_dir / LEGACY_KEY_NAME if log_dir is not None else None
            hint = f" ({legacy} was left by an older agt: move it out of the log directory and pass its new path)" if legacy and legacy.exists() else ""
            raise AgtError(
                "no checkpoint signing key: pass signing_key= or key_path= (a file outside the log directory, created if "
                f"missing){hint}. CLI: --audit-key PATH or AGT_AUDIT_KEY")
        key_path = log_dir / LEGACY_KEY_NAME
    elif log_dir is not None and inside(Path(key_path), log_dir) and not allow_key_in_log_dir:
        raise AgtError(
            f"the checkpoint key {key_path} is inside the log directory {log_dir}: whoever can rewrite the log could re-sign "
            "it. Keep the key elsewhere (allow_key_in_log_dir=True is for tests and demos)")
    return load_or_create_key(Path(key_path))


class AuditLog:
    """Append records; thread-safe, and safe for several processes sharing one log.

    The checkpoint key is ``signing_key``, or the key file at ``key_path`` (created when missing, with its
    public half at ``<name>.pub``); it may not lie in the log directory unless ``allow_key_in_log_dir``,
    which alone (no key given) keeps the key at ``<log dir>/checkpoint.key``, for tests and demos.
    ``witness`` (a file path, a bundle server URL, or a :class:`~agt.audit.witness.Witness`) receives a
    copy of every checkpoint, from a thread of its own: a witness that fails never stops the log, and the
    failure is logged and kept in :attr:`witness_error`.
    """

    def __init__(
        self,
        location: str | Path | Backend,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        key_path: str | Path | None = None,
        allow_key_in_log_dir: bool = False,
        witness: "str | Path | Witness | None" = None,
        witness_token: str | None = None,
        durability: Durability | str = Durability.BATCH,
        checkpoint_every: int = 100,
        mask: Iterable[str] = (),
        max_bytes: int = 64 * 1024 * 1024,
        batch_interval: float = 0.05,
        queue_limit: int = 10_000,
    ) -> None:
        self.durability = Durability(durability)
        if checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be 0 (only on demand and on close) or more, not {checkpoint_every}")
        self.backend: Backend = location if not isinstance(location, (str, Path)) else open_backend(location, max_bytes)
        log_dir = log_directory(self.backend)
        try:
            self.signing_key = resolve_signing_key(signing_key, key_path, log_dir, allow_key_in_log_dir)
            self.witness: Witness | None = open_witness(witness, witness_token) if witness is not None else None
            if isinstance(self.witness, FileWitness) and log_dir is not None and inside(self.witness.path, log_dir):
                raise AgtError(f"the witness {self.witness.path} is inside the log directory {log_dir}: it must be out of the writer's reach")
        except BaseException:
            self.backend.close()
            raise
        self.checkpoint_every = checkpoint_every
        self.mask = frozenset(m.lower() for m in mask)
        self.witness_error: str | None = None
        self._witness_tries = 0
        self._witness_backlog: collections.deque[dict[str, Any]] = collections.deque(maxlen=WITNESS_BACKLOG)
        self._witness_wake = threading.Condition()
        self._lock = threading.Lock()
        self._position: object = None
        self._tree = merkle.Frontier()
        """The Merkle tree head, kept incrementally: a checkpoint costs the same at any log size."""
        self._last_hash = GENESIS
        self._closed = threading.Event()
        self._batch_interval = batch_interval
        # Batch durability: callers append to a deque (atomic, no lock, no wake-up per record); the writer
        # thread wakes every batch_interval, or at once for flush, close and back-pressure.
        self._pending: collections.deque[Any] = collections.deque()
        self._queue_limit = queue_limit
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._writer_error: BaseException | None = None
        try:
            with self.backend.locked():
                self.backend.repair_tail()  # type: ignore[attr-defined]
                last = self.backend.last_checkpoint()
                # Rebuilt once from the log; the root at the last checkpoint's size is kept on the way.
                self._catch_up(snapshot_at=_signed_size(last))
                self._check_last_checkpoint(last)
        except BaseException:
            self.backend.close()
            raise
        self._witness_thread: threading.Thread | None = None
        if self.witness is not None:
            self._witness_thread = threading.Thread(target=self._witness_loop, daemon=True, name="agt-audit-witness")
            self._witness_thread.start()
            self._wake_witness()
        self._writer: threading.Thread | None = None
        if self.durability is Durability.BATCH:
            self._writer = threading.Thread(target=self._write_loop, daemon=True, name="agt-audit-writer")
            self._writer.start()

    def add_mask(self, names: Iterable[str]) -> None:
        self.mask = self.mask | {n.lower() for n in names}

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def last_hash(self) -> str:
        return self._last_hash

    def backlog(self) -> tuple[int, float]:
        """What waits for the batch writer: the number of queued items, and how long (seconds) the oldest
        queued runtime record has waited since it was made ((0, 0.0) with sync durability). Read without a
        lock while the writer runs, for a metrics gauge: right to within the writer's own progress."""
        pending = self._pending
        depth = len(pending)
        for i in range(min(depth, 8)):  # the head is the oldest; flush markers and raw events carry no time
            try:
                item = pending[i]
            except IndexError:  # the writer took it meanwhile
                break
            if type(item) is tuple and item[0]:
                return depth, max(0.0, (time.time_ns() - item[1].time_ns) / 1e9)
        return depth, 0.0

    def health(self) -> str | None:
        """None while the log can record; otherwise why not. The Governor asks before every tool runs."""
        if self._writer_error is not None:
            return f"the audit writer stopped: {type(self._writer_error).__name__}: {self._writer_error}"
        if self._closed.is_set():
            return "the audit log is closed"
        if self._writer is not None and not self._writer.is_alive():
            return "the audit writer thread is not running"
        return None

    def _failed(self, exc: BaseException) -> None:
        """A write failed: the log stays unusable (fail closed) until it is opened again."""
        if self._writer_error is None:
            self._writer_error = exc
            log.error("audit log %s can no longer be written, governed calls will be denied: %s: %s",
                      log_directory(self.backend) or self.backend, type(exc).__name__, exc)

    def _catch_up(self, snapshot_at: int | None = None) -> None:
        """Read what other writers appended since we last looked, so our chain continues theirs. With
        ``snapshot_at``, keep the tree head at that size in :attr:`_snapshot` (None if never reached)."""
        lines, self._position = self.backend.read_since(self._position)
        tree = self._tree
        self._snapshot: bytes | None = tree.root() if snapshot_at == tree.size else None
        for line in lines:
            h = json.loads(line.text)["hash"]
            tree.append(merkle.leaf_hash(bytes.fromhex(h)))
            self._last_hash = h
            if tree.size == snapshot_at:
                self._snapshot = tree.root()

    def _check_last_checkpoint(self, last: Any) -> None:
        """At open, under the lock: never continue (and so sign) a log that no longer matches its last
        checkpoint (``last``, read before the records were). A fresh log gets a checkpoint of the empty
        log, so the chain of checkpoints has a known start and a deleted checkpoints file shows (see
        verify --strict)."""
        if last is None:
            if self._tree.size:
                log.warning("audit log %s has %d records and no checkpoint: verify --strict will fail until its "
                            "history is witnessed elsewhere", log_directory(self.backend), self._tree.size)
            else:
                self._checkpoint_locked(empty_ok=True)
            return
        cp = json_object(last.text)
        if cp is None or not signature_ok(self.signing_key.public_key(), cp):
            raise AgtError(f"{last.where}: the last checkpoint is not signed by this log's key; run `agt audit verify` "
                           "before writing to this log again")
        size = cp.get("size")
        if not isinstance(size, int) or size > self._tree.size or self._snapshot is None or self._snapshot.hex() != cp.get("root"):
            raise AgtError(f"{last.where}: the records no longer match the last signed checkpoint (size {size}): the log was "
                           "rewritten or cut; run `agt audit verify` before writing to this log again")

    def append(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """Chain and store one event (a dict of OPA-style fields). Returns the stored record, or None
        with batch durability, where the writer thread stores it (see :meth:`flush`). The event must
        not be changed afterwards: with batch durability it is read later. Text UTF-8 cannot encode
        is stored escaped (agt.audit.text)."""
        problem = self.health()
        if problem is not None:
            raise AgtError(problem)
        if not RESERVED_FIELDS.isdisjoint(event):
            reserved = sorted(RESERVED_FIELDS & set(event))
            raise AgtError(f"audit events may not set {', '.join(reserved)}: the log computes them")
        if self.durability is Durability.BATCH:
            self._enqueue((False, event))
            return None
        try:
            return self._append_now(event)
        except Exception as exc:
            self._failed(exc)
            raise

    def _append_now(self, event: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self._store(self._masked(dict(event)))
        except _Unencodable:
            # Checked only when encoding failed, so the common case pays nothing for it.
            return self._store(self._masked(safe_document(dict(event))))

    def _masked(self, body: dict[str, Any]) -> dict[str, Any]:
        original = body.get("input")
        if original is not None and self.mask:
            text = canonical_json_if_orjson(original)
            try:
                masked = mask_input(original, self.mask, text)
            except Exception as exc:  # noqa: BLE001 - e.g. non-text keys: retried in the safe form
                raise _Unencodable(str(exc)) from None
            if masked is not original:
                # The digest of what was masked lets its owner prove the original later.
                body["input_digest"] = "sha256:" + hashlib.sha256(text if text is not None else _encode(original)).hexdigest()
                body["input"] = masked
        return body

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock, self.backend.locked():
            self._catch_up()
            cp = self._store_locked(body)
        if cp is not None:
            self._wake_witness()
        return body

    def _store_many(self, events: list[Mapping[str, Any]]) -> None:
        """The batch writer's form of :meth:`_append_now`: mask every event first, then take the lock
        and catch up once for all of them (at most BATCH_LOCKED events, so other writers wait little)."""
        bodies = []
        for event in events:
            try:
                bodies.append(self._masked(dict(event)))
            except _Unencodable:
                bodies.append(self._masked(safe_document(dict(event))))
        signed = False
        with self._lock, self.backend.locked():
            self._catch_up()
            lines: list[str] = []
            for event, body in zip(events, bodies):
                try:
                    lines.append(self._chained_line(body))
                except _Unencodable:
                    lines.append(self._chained_line(self._masked(safe_document(dict(event)))))
                if self._checkpoint_due():
                    self._position = self.backend.append_many(lines)  # a checkpoint signs only what is written
                    lines = []
                    signed = self._checkpoint_locked() is not None or signed
            if lines:
                self._position = self.backend.append_many(lines)
        if signed:
            self._wake_witness()

    def _chained_line(self, body: dict[str, Any]) -> str:
        """Chain one masked body (under the lock, caught up) and return the line that stores it. The caller
        writes the line; until then the chain is ahead of the backend, and a failed write fails the log."""
        body["seq"] = self._tree.size
        body["prev_hash"] = self._last_hash
        text = _encode(body)
        digest = hashlib.sha256(text).hexdigest()
        body["hash"] = digest
        self._tree.append(merkle.leaf_hash(bytes.fromhex(digest)))
        self._last_hash = digest
        # The stored line is the hashed canonical form plus the hash: one encoding, not two.
        return text[:-1].decode("utf-8") + f',"hash":"{digest}"}}'

    def _checkpoint_due(self) -> bool:
        return bool(self.checkpoint_every) and self._tree.size % self.checkpoint_every == 0

    def _store_locked(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Chain, write and count one masked body; under the lock, caught up. Returns the checkpoint it
        signed, if it was due."""
        self._position = self.backend.append(self._chained_line(body))
        if self.durability is Durability.ALWAYS:
            self.backend.sync()
        return self._checkpoint_locked() if self._checkpoint_due() else None

    def write(self, record: Any) -> None:
        """The runtime's AuditSink protocol: an agt.runtime.audit.AuditRecord (frozen). With batch
        durability the record itself is queued and the writer thread turns it into an event, so the
        decision path pays only for the health check and the enqueue."""
        if self.durability is Durability.BATCH:
            problem = self.health()
            if problem is not None:
                raise AgtError(problem)
            self._enqueue((True, record))
            return
        self.append(_event_of(record))

    def _enqueue(self, item: tuple[bool, Any]) -> None:
        self._pending.append(item)  # atomic; the writer takes it within batch_interval
        if len(self._pending) >= self._queue_limit:
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        """The writer is behind: block until it catches up (back-pressure, never dropping)."""
        self._wake.set()
        with self._drained:
            while (len(self._pending) >= self._queue_limit and self._writer_error is None
                   and self._writer is not None and self._writer.is_alive()):
                self._drained.wait(0.05)

    def flush(self) -> None:
        """Wait until every queued record is written (batch durability) and synced."""
        if self._writer is not None and self._writer.is_alive():
            done = threading.Event()
            self._pending.append(done)  # behind every record queued before this call
            self._wake.set()
            while not done.wait(0.1) and self._writer.is_alive():
                pass
        if self._writer_error is not None:
            raise AgtError(f"the audit writer stopped: {self._writer_error}")
        self.backend.sync()

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign the current tree head now (also done every ``checkpoint_every`` records and on close)."""
        self.flush()
        with self._lock, self.backend.locked():
            self._catch_up()
            cp = self._checkpoint_locked()
        self._wake_witness()
        return cp

    def _checkpoint_locked(self, empty_ok: bool = False) -> dict[str, Any] | None:
        size = self._tree.size
        if not size and not empty_ok:
            return None
        last = self.backend.last_checkpoint()
        previous = json_object(last.text) if last is not None else None
        root = self._tree.root().hex()
        if previous is not None and previous.get("size") == size and previous.get("root") == root:
            return previous  # nothing new to sign
        self.backend.sync()
        cp: dict[str, Any] = {
            "size": size,
            "root": root,
            "last_hash": self._last_hash,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "prev_checkpoint": checkpoint_hash(last.text) if last is not None else GENESIS,
            "checkpoint_every": self.checkpoint_every,
        }
        cp["signature"] = sign(self.signing_key, checkpoint_message(cp))
        cp["public_key"] = base64.b64encode(self.signing_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
        self.backend.append_checkpoint(json.dumps(cp, sort_keys=True, separators=(",", ":")))
        if self.witness is not None:
            if len(self._witness_backlog) == self._witness_backlog.maxlen:
                self.witness_error = f"more than {WITNESS_BACKLOG} checkpoints could not reach the witness; the oldest were dropped"
            self._witness_backlog.append(cp)
        return cp

    # --- the witness -----------------------------------------------------------------------------
    def _wake_witness(self) -> None:
        if self._witness_thread is not None:
            with self._witness_wake:
                self._witness_wake.notify_all()

    def _witness_loop(self) -> None:
        """Copy checkpoints to the witness in order; after a failure, try again every second."""
        while not self._closed.is_set():
            with self._witness_wake:
                if not self._witness_backlog and not self._closed.is_set():
                    self._witness_wake.wait(1.0)
            if not self._send_to_witness():
                self._closed.wait(1.0)
        self._send_to_witness()  # one last try for the checkpoint close() signed

    def _send_to_witness(self) -> bool:
        assert self.witness is not None
        while self._witness_backlog:
            cp = self._witness_backlog[0]
            try:
                self.witness.send(cp)
            except Exception as exc:  # noqa: BLE001 - a witness never stops the log; it is reported
                self._witness_tries += 1
                message = f"checkpoint {cp['size']} not witnessed by {self.witness}: {exc}"
                if message != self.witness_error:
                    log.warning("audit log %s: %s", log_directory(self.backend), message)
                self.witness_error = message
                return False
            self._witness_backlog.popleft()
            self._witness_tries += 1
            self.witness_error = None
        return True

    def flush_witness(self, timeout: float = 30.0) -> str | None:
        """Wait until every checkpoint reached the witness, or a try made after this call failed;
        returns :attr:`witness_error` (None when all were witnessed)."""
        deadline = time.monotonic() + timeout
        tries = self._witness_tries
        self._wake_witness()
        while self._witness_backlog and time.monotonic() < deadline and self._witness_thread is not None and self._witness_thread.is_alive():
            if self.witness_error and self._witness_tries > tries:
                break
            time.sleep(0.01)
        return self.witness_error

    # --- the batch writer ------------------------------------------------------------------------
    def _write_loop(self) -> None:
        """Batch durability: take what is queued, append it in order, fsync once per batch (and when
        the log goes quiet). A flush marker is set once everything before it is written and synced."""
        pending, wake = self._pending, self._wake
        last_sync = time.monotonic()
        unsynced = False
        while True:
            if not pending:
                wake.wait(self._batch_interval)
                wake.clear()
                if not pending:
                    if unsynced:  # the log went quiet: make what was written durable now
                        try:
                            self.backend.sync()
                            unsynced = False
                            last_sync = time.monotonic()
                        except OSError as exc:
                            self._failed(exc)
                    continue
            stop = False
            markers: list[threading.Event] = []
            events: list[Mapping[str, Any]] = []
            try:
                for _ in range(1000):
                    if not pending:
                        break
                    item = pending.popleft()
                    if item is None:
                        stop = True
                        break
                    if type(item) is not tuple:
                        markers.append(item)  # flush(): set below, once synced
                        break
                    is_record, payload = item
                    events.append(_event_of(payload) if is_record else payload)
                    if len(events) == BATCH_LOCKED:
                        unsynced = True
                        self._store_many(events)
                        events = []
                if events:
                    unsynced = True
                    self._store_many(events)
                if unsynced and (markers or stop or time.monotonic() - last_sync >= self._batch_interval):
                    self.backend.sync()
                    last_sync = time.monotonic()
                    unsynced = False
            except BaseException as exc:  # noqa: BLE001 - surfaced by health(), the next append and flush
                self._failed(exc)
            finally:
                for m in markers:
                    m.set()
                if len(pending) < self._queue_limit:
                    with self._drained:
                        self._drained.notify_all()
            if stop:
                return

    def close(self) -> None:
        if self._closed.is_set():
            return
        try:
            if self._writer_error is None:
                self.checkpoint()
        finally:
            self._closed.set()
            if self._writer is not None:
                self._pending.append(None)
                self._wake.set()
                self._writer.join(timeout=10)
            if self._witness_thread is not None:
                self._wake_witness()
                self._witness_thread.join(timeout=15)
            self.backend.close()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def records(location: str | Path | Backend) -> list[tuple[str, dict[str, Any] | None, str]]:
    """Every stored line as (where, parsed record or None when it is not JSON, raw text); ``location``
    may also be an open backend (an AuditLog's), which is left open."""
    own = isinstance(location, (str, Path))
    backend = open_backend(location, create=False) if own else location
    try:
        lines, _ = backend.read_since(None)
    finally:
        if own:
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

