"""The service an OPA fleet talks to: bundles out, decision logs and status back.

* ``GET /bundles/<name>``: the bundle, with an ``ETag``. ``If-None-Match`` with the current ETag gets a
  304; with ``Prefer: wait=N`` the answer waits up to N seconds for a new build first (long polling),
  and replies carry ``Content-Type: application/vnd.openpolicyagent.bundles`` so OPA keeps polling long.
* ``POST /logs``: OPA's gzipped JSON arrays of decision events, appended to agt's tamper-evident
  audit log. ``POST /status``: status reports, the latest per OPA instance, bounded in size and number
  (``GET /status`` lists them).
* ``POST /logs/checkpoints``: a witness for other audit logs. Each body is one signed checkpoint, kept
  in this server's own audit log (``kind: audit_checkpoint``); ``GET /logs/checkpoints`` lists them.
* A bearer token, when configured, is required on every request.
* Sources are watched; a change rebuilds (and re-signs) the bundle and wakes the long polls.

Served with the standard library's ThreadingHTTPServer: one thread per connection, so long polls
do not block each other.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Sequence

from agt.bundle.build import build_bundle
from agt.errors import AgtError

log = logging.getLogger(__name__)

BUNDLE_CONTENT_TYPE = "application/vnd.openpolicyagent.bundles"
MAX_WAIT_SECONDS = 60
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_INFLATED_BYTES = 64 * 1024 * 1024
MAX_STATUS_BYTES = 64 * 1024
"""One instance's status report, as stored (OPA's are a few KiB)."""
MAX_STATUS_INSTANCES = 1000
"""Instances remembered; the one heard from least recently is forgotten first."""
CHECKPOINT_KIND = "audit_checkpoint"
CHECKPOINT_FIELDS = frozenset({"size", "root", "last_hash", "time", "signature", "public_key"})
log = logging.getLogger("agt.bundle")


class TooLarge(ValueError):
    pass


@dataclass
class BundleSource:
    """One bundle the server offers, built from policy directories (and data), signed if a key is set."""

    name: str
    policy_dirs: Sequence[Path]
    data_dir: Path | None = None
    signing_key: bytes | None = None
    signing_alg: str = "RS256"
    keyid: str = "default"
    content: bytes = b""
    etag: str = ""
    error: str = ""
    _fingerprint: tuple = field(default=(), repr=False)

    def fingerprint(self) -> tuple:
        paths = [p for d in self.policy_dirs for p in sorted(Path(d).rglob("*")) if p.is_file()]
        if self.data_dir:
            paths += [p for p in sorted(Path(self.data_dir).rglob("*")) if p.is_file()]
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)

    def rebuild(self) -> bool:
        """Build again if the sources changed; True when the bundle's bytes changed."""
        fp = self.fingerprint()
        if fp == self._fingerprint and self.content:
            return False
        self._fingerprint = fp
        try:
            data = build_bundle(self.policy_dirs, data_dir=self.data_dir, signing_key=self.signing_key,
                                signing_alg=self.signing_alg, keyid=self.keyid)
        except AgtError as exc:
            # Keep serving the last good bundle; a broken edit must not take the fleet's policy away.
            self.error = str(exc)
            log.error("bundle %s: rebuild failed, still serving %s: %s", self.name, self.etag or "nothing", exc)
            return False
        self.error = ""
        if data == self.content:
            return False
        self.content = data
        self.etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        return True


class BundleService:
    """The state behind the HTTP handler: bundles, the audit log for decisions, status reports."""

    def __init__(self, sources: Sequence[BundleSource], *, audit: Any = None, token: str | None = None,
                 watch_interval: float = 0.5) -> None:
        self.sources = {s.name: s for s in sources}
        self.audit = audit
        self.token = token
        self.watch_interval = watch_interval
        self._status: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._status_lock = threading.Lock()
        self.received_events = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        for s in self.sources.values():
            s.rebuild()
            if not s.content:
                raise AgtError(f"bundle {s.name!r} cannot be built: {s.error}")
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="agt-bundle-watch")

    def start_watching(self) -> None:
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_interval):
            self.refresh()

    def refresh(self) -> bool:
        changed = False
        for s in self.sources.values():
            changed |= s.rebuild()
        if changed:
            with self._changed:
                self._changed.notify_all()
        return changed

    def wait_for_change(self, source: BundleSource, etag: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._changed:
            while source.etag == etag and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def authorized(self, header: str | None) -> bool:
        if not self.token:
            return True
        expected = f"Bearer {self.token}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

    def accept_status(self, instance: str, report: dict[str, Any]) -> None:
        """Keep ``report`` as ``instance``'s latest: at most MAX_STATUS_BYTES each, MAX_STATUS_INSTANCES in all."""
        text = json.dumps(report, separators=(",", ":")).encode()
        if len(text) > MAX_STATUS_BYTES:
            raise TooLarge(f"a status report over {MAX_STATUS_BYTES} bytes ({len(text)})")
        with self._status_lock:
            self._status.pop(instance, None)
            self._status[instance] = text
            while len(self._status) > MAX_STATUS_INSTANCES:
                self._status.popitem(last=False)

    def status_json(self) -> bytes:
        """``{instance: latest report}``, assembled from the stored bytes (never re-encoded)."""
        with self._status_lock:
            items = list(self._status.items())
        return b"{" + b",".join(json.dumps(k).encode() + b":" + v for k, v in items) + b"}"

    @property
    def status(self) -> dict[str, Any]:
        """The latest report of each instance, parsed."""
        return json.loads(self.status_json())

    def accept_checkpoint(self, checkpoint: Any) -> None:
        """Witness another log's checkpoint: kept in this server's audit log, append-only for clients."""
        if not isinstance(checkpoint, dict) or not CHECKPOINT_FIELDS <= checkpoint.keys() or not isinstance(checkpoint.get("size"), int):
            raise ValueError(f"a checkpoint is a JSON object with {', '.join(sorted(CHECKPOINT_FIELDS))}")
        if self.audit is None:
            raise AgtError("this server has no audit log to keep checkpoints in")
        self.audit.append({
            "kind": CHECKPOINT_KIND, "decision_id": f"checkpoint-{checkpoint['size']}-{hashlib.sha256(json.dumps(checkpoint, sort_keys=True).encode()).hexdigest()[:16]}",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "agent_id": "", "path": "witness",
            "result": checkpoint,
        })

    def witnessed_checkpoints(self) -> list[dict[str, Any]]:
        if self.audit is None:
            raise AgtError("this server has no audit log to keep checkpoints in")
        from agt.audit import records

        self.audit.flush()
        return [rec["result"] for _, rec, _ in records(self.audit.backend) if rec and rec.get("kind") == CHECKPOINT_KIND]

    def accept_logs(self, events: list[Any]) -> int:
        """Append OPA decision events to the audit log; all or nothing per request is OPA's retry unit."""
        records = []
        for i, ev in enumerate(events):
            if not isinstance(ev, dict) or not isinstance(ev.get("decision_id"), str):
                raise ValueError(f"event {i} is not a decision event with a decision_id")
            inp = ev.get("input")
            agent = inp.get("agent", {}).get("id", "") if isinstance(inp, dict) and isinstance(inp.get("agent"), dict) else ""
            records.append({
                "kind": "opa_decision", "decision_id": ev["decision_id"], "timestamp": str(ev.get("timestamp", "")),
                "agent_id": str(agent), "path": str(ev.get("path", "")), "input": inp, "result": ev.get("result"),
                "labels": ev.get("labels") or {}, "metrics": ev.get("metrics") or {}, "bundles": ev.get("bundles") or {},
            })
        if self.audit is not None:
            for rec in records:
                self.audit.append(rec)
        self.received_events += len(records)
        return len(records)


_PREFER_WAIT = re.compile(r"wait=(\d+)")


def _handler(service: BundleService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "agt-bundle-service"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes = b"", content_type: str = "application/json", headers: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, code: int, message: str) -> None:
            self._send(code, json.dumps({"code": code, "message": message}).encode())

        def _auth(self) -> bool:
            if service.authorized(self.headers.get("Authorization")):
                return True
            self._error(401, "a valid bearer token is required")
            return False

        def do_GET(self) -> None:  # noqa: N802
            if not self._auth():
                return
            route = self.path.split("?", 1)[0].rstrip("/")
            if route == "/status":
                self._send(200, service.status_json())
                return
            if route == "/logs/checkpoints":
                try:
                    self._send(200, json.dumps({"checkpoints": service.witnessed_checkpoints()}).encode())
                except AgtError as exc:
                    self._error(503, str(exc))
                return
            m = re.fullmatch(r"/bundles/([\w.-]+?)(?:\.tar\.gz)?", self.path.split("?", 1)[0])
            source = service.sources.get(m.group(1)) if m else None
            if source is None:
                self._error(404, f"no bundle at {self.path}")
                return
            etag = self.headers.get("If-None-Match")
            wait = _PREFER_WAIT.search(self.headers.get("Prefer", ""))
            if etag and etag == source.etag and wait:
                service.wait_for_change(source, etag, min(int(wait.group(1)), MAX_WAIT_SECONDS))
            if etag and etag == source.etag:
                self._send(304, b"", BUNDLE_CONTENT_TYPE, {"ETag": source.etag})
                return
            self._send(200, source.content, BUNDLE_CONTENT_TYPE, {"ETag": source.etag})

        def _body(self) -> bytes | None:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._error(411, "Content-Length is required")
                return None
            if int(length) > MAX_BODY_BYTES:
                self._error(413, f"body over {MAX_BODY_BYTES} bytes")
                return None
            raw = self.rfile.read(int(length))
            if self.headers.get("Content-Encoding", "").lower() == "gzip" or raw[:2] == b"\x1f\x8b":
                try:
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    raw = d.decompress(raw, MAX_INFLATED_BYTES)
                    if d.unconsumed_tail:
                        self._error(413, f"body inflates past {MAX_INFLATED_BYTES} bytes")
                        return None
                except zlib.error as exc:
                    self._error(400, f"body is not valid gzip: {exc}")
                    return None
            return raw

        def do_POST(self) -> None:  # noqa: N802
            try:
                self._post()
            except Exception as exc:  # noqa: BLE001 - every request gets an answer, never a dropped connection
                log.exception("POST %s failed", self.path)
                self._error(500, f"{type(exc).__name__}: {exc}")

        def _post(self) -> None:
            if not self._auth():
                return
            route = self.path.split("?", 1)[0].rstrip("/")
            if route not in ("/logs", "/status", "/logs/checkpoints"):
                self._error(404, f"nothing to POST at {self.path}")
                return
            raw = self._body()
            if raw is None:
                return
            try:
                doc = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                self._error(400, f"body is not JSON: {exc}" if isinstance(exc, ValueError) else "body is nested too deeply")
                return
            if route == "/status":
                if not isinstance(doc, dict):
                    self._error(400, "a status report is a JSON object")
                    return
                labels = doc.get("labels") if isinstance(doc.get("labels"), dict) else {}
                try:
                    service.accept_status(str(labels.get("id", self.client_address[0])), doc)
                except TooLarge as exc:
                    self._error(413, str(exc))
                    return
                except RecursionError:
                    self._error(400, "status report is nested too deeply")
                    return
                self._send(200, b"{}")
                return
            if route == "/logs/checkpoints":
                try:
                    service.accept_checkpoint(doc)
                except ValueError as exc:
                    self._error(400, str(exc))
                    return
                except AgtError as exc:
                    self._error(503, f"cannot witness: {exc}")
                    return
                self._send(200, b"{}")
                return
            if not isinstance(doc, list):
                self._error(400, "decision logs are a JSON array of events")
                return
            try:
                n = service.accept_logs(doc)
            except ValueError as exc:
                self._error(400, str(exc))
                return
            except AgtError as exc:
                self._error(503, f"audit log unavailable: {exc}")  # OPA requeues and retries
                return
            self._send(200, json.dumps({"accepted": n}).encode())

        do_HEAD = do_GET

    return Handler


class BundleServer:
    """Run the service on a loopback port (or the address you give) in background threads."""

    def __init__(self, service: BundleService, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.httpd = ThreadingHTTPServer((host, port), _handler(service))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="agt-bundle-server")

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "BundleServer":
        self.service.start_watching()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.service.stop()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "BundleServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
