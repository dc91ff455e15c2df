"""The OPA engine: each action goes to a real OPA as ``POST /v1/data/agt/decision {"input": <action>}``, and
evaluate_many sends 200 at a time as ``POST /v1/data/agt/batch {"input": {"inputs": [...]}}`` (rego/agt/batch.rego).

Three ways to an OPA: an existing deployment (``url=`` or ``AGT_OPA_URL``, with an optional bearer token
and TLS settings), a managed local ``opa run --server`` with the Rego library loaded (the default), or a
testcontainers-started image (see agt.opa.container). Everything that is not a well-formed decision is a
fail-closed deny naming the cause: connection refused, the deadline passed, any reply but 200 with a JSON
body, an undefined result, a wrong shape, an action that cannot be encoded. ``evaluate`` never raises.

``timeout`` is a total deadline per decision (connect, send and the whole reply), kept by agt.opa._http.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterable

from agt import _json
from agt._canonical import canonical_json_if_orjson
from agt.action import Action
from agt.catalog import Catalog, resolve_catalog, with_catalog
from agt.decision import Decision, fail_closed
from agt.engines import base
from agt.errors import PolicyLoadError
from agt.opa._http import DeadlineClient, DeadlineExceeded, HttpError, Unreachable
from agt.opa.decision_path import DecisionPathError, Interpreted, decision_ref, decision_url_path, interpret
from agt.opa.library import LibraryPlan, RegoLibrarySkew, plan_library, rego_sources
from agt.opa.server import BATCH_PATH, DECISION_PATH, ManagedOpa, OpaStartError
from agt.resources import rego_dir

__all__ = ["BATCH_PATH", "BATCH_SIZE", "DECISION_PATH", "OpaEngine"]


class OpaEngine:
    name = "opa"

    def __init__(
        self,
        policy: str | Path | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        unix_socket: bool = False,
        concurrency: int = 8,
        decision_path: str = DECISION_PATH,
        container: bool = False,
        catalog: Catalog | str | Path | None = None,
        rego_library: bool = True,
    ) -> None:
        """``policy`` is a Rego directory for a managed OPA; ignored when ``url`` points at your own.
        ``container=True`` runs the managed OPA as the openpolicyagent/opa image (testcontainers, Docker).
        ``timeout`` (seconds, a total per decision) defaults to ``AGT_OPA_TIMEOUT``, else 2.
        ``catalog``: the tool catalog checked before OPA is asked; by default the catalog.yaml beside the policy.
        ``decision_path``: the rule that decides, ``data.agt.decision`` by default; an entry point of your own
        (``data.authz.allow`` or ``/v1/data/authz/allow``) may return a boolean or a bridge object
        (agt.opa.decision_path).
        ``rego_library``: load the agt Rego library agt ships beside a managed OPA's policy when the policy uses it
        but lacks it (agt.opa.library); a policy's own copy is always kept."""
        try:
            self.decision_path = decision_url_path(decision_path)
            self.decision_ref = decision_ref(decision_path)
        except DecisionPathError as exc:
            raise PolicyLoadError(str(exc)) from None
        self.library: LibraryPlan | None = None
        """What the managed OPA loaded of the packaged Rego library (None for your own OPA or a container)."""
        self.catalog = resolve_catalog(catalog, policy)
        url = url or os.environ.get("AGT_OPA_URL") or None
        timeout = timeout if timeout is not None else _env_timeout()
        token = token or os.environ.get("AGT_OPA_TOKEN") or None
        self.timeout = timeout
        self.concurrency = concurrency
        self.server: ManagedOpa | None = None
        self._stack = ExitStack()
        if container and not url:
            if policy is None or len(str(policy).split(os.pathsep)) != 1:
                raise PolicyLoadError("container=True needs exactly one Rego directory")
            from agt.opa.container import opa_container

            url = self._stack.enter_context(opa_container(policy))
        if url:
            self.url = url.rstrip("/")
            self._revision = "opa:" + self.url
        else:
            if policy is None:
                raise PolicyLoadError("the opa engine needs a Rego directory, or url= for an existing OPA")
            paths = [Path(p) for p in str(policy).split(os.pathsep) if p]
            for path in paths:
                if not path.exists():
                    raise PolicyLoadError("Rego policy path does not exist", file=str(path))
            if rego_library:
                self.library = plan_library(rego_sources(paths))
                for message in self.library.warnings():
                    warnings.warn(RegoLibrarySkew(message), stacklevel=2)
                paths = paths + [rego_dir() / name for name in self.library.add]
            self._revision = _tree_revision(paths)
            try:
                self.server = ManagedOpa(paths, unix_socket=unix_socket, decision_path=self.decision_path).start()
            except OpaStartError as exc:
                # OPA refuses Rego that does not compile; its message names the file and line.
                raise PolicyLoadError(f"opa could not load the policy: {exc}", file=str(policy)) from None
            self.url = self.server.url
        self._revision = with_catalog(self._revision, self.catalog)
        self._token = token
        self._tls = {"verify": verify, "cert": cert}
        self._connect()
        self._pool: ThreadPoolExecutor | None = None
        self.batch_supported: bool | None = None if self.decision_path == DECISION_PATH else False
        """Does the OPA answer ``data.agt.batch``? None until evaluate_many first asks; False for a decision path
        of your own (the batch decides ``data.agt.decision``) and for an OPA whose library lacks it."""

    def _connect(self) -> None:
        """Keep-alive connections to the OPA (one per thread), with the managed OPA's current token (new on every
        restart) in request heads built once."""
        token = self.server.token if self.server is not None else self._token
        headers = [("Content-Type", "application/json"), ("Accept", "application/json")]
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        uds = self.server.socket_path if self.server is not None and self.server.unix_socket else None
        self._client = DeadlineClient(self.url, uds=uds, **self._tls)  # type: ignore[arg-type]
        self._decision_head = self._client.head("POST", self.decision_path, headers)
        self._batch_head = self._client.head("POST", BATCH_PATH, headers)

    @property
    def revision(self) -> str:
        return self._revision

    def explain_input(self, action: Action) -> dict[str, Any]:
        """What OPA is asked for ``action`` (agt.explain): the query and its ``input``, the action document."""
        out: dict[str, Any] = {"query": f"POST {self.decision_path}", "decision_path": self.decision_ref,
                               "input": action.document}
        if self.library is not None:
            out["rego_library"] = self.library.to_dict()
        return out

    # one decision ---------------------------------------------------------------------------------
    def evaluate(self, action: Action) -> Decision:
        try:
            return self._evaluate(action)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return self._fail(f"{type(exc).__name__}: {exc}")

    def _evaluate(self, action: Action) -> Decision:
        doc = self._before_opa(action)
        if isinstance(doc, Decision):
            return doc
        return self._decide_encoded(doc)

    def _decide_doc(self, doc: bytes) -> Decision:
        """:meth:`evaluate` of an action already checked and encoded by :meth:`_before_opa` (a batch's fallbacks)."""
        try:
            return self._decide_encoded(doc)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return self._fail(f"{type(exc).__name__}: {exc}")

    def _decide_encoded(self, doc: bytes) -> Decision:
        body = b'{"input":' + doc + b"}"
        decision = self._post(body)
        if decision.is_engine_error:
            restarted = self._restart()
            if restarted is True:
                decision = self._post(body)
            elif isinstance(restarted, Decision):
                decision = restarted
        return decision

    def _restart(self) -> bool | Decision:
        """After a failed POST: restart the managed OPA if it died (True; the caller tries once more, and a second
        failure stays a deny), or the deny of a failed restart. False when there is nothing to restart."""
        if self.server is None or self.server.alive():
            return False
        try:
            self.server.ensure_running()
        except OpaStartError as exc:
            return fail_closed(f"opa: restart failed: {exc}", engine=self.name, revision=self._revision)
        self._client.close()
        self.url = self.server.url
        self._connect()
        return True

    def _post(self, body: bytes) -> Decision:
        got = self._send(self._decision_head, self.decision_path, body)
        if isinstance(got, _Refused):
            return got.deny
        return got if isinstance(got, Decision) else self.parse_result(got)

    def _send(self, head: tuple[str, bytes], path: str, body: bytes) -> Any:
        """OPA's parsed JSON reply to one POST, or the fail-closed deny saying why there is none."""
        try:
            reply = self._client.send(head, body, timeout=self.timeout)
        except DeadlineExceeded as exc:
            return self._fail(f"timeout: {exc} within {self.timeout}s ({self.url})")
        except Unreachable as exc:
            return self._fail(f"unreachable ({self.url}): {exc}")
        except HttpError as exc:
            return self._fail(f"{exc} ({self.url})")
        if reply.status != 200:
            # Redirects included: a decision is only ever a 200, and following one would send the token elsewhere.
            return _Refused(reply.status, self._fail(f"HTTP {reply.status} from {self.url}{path}: {_error_text(reply.body)}"))
        try:
            return json.loads(reply.body)
        except RecursionError:
            return self._fail("response is nested too deeply to parse")
        except ValueError as exc:
            return self._fail(f"response is not JSON: {exc}")

    def _fail(self, cause: str) -> Decision:
        return fail_closed(f"opa: {cause}", engine=self.name, revision=self._revision)

    def parse_result(self, payload: Any) -> Decision:
        """Turn OPA's response body into a Decision, or a fail-closed deny saying what is wrong with it.
        The result may be the agt decision object, a boolean, or a bridge object (agt.opa.decision_path)."""
        if not isinstance(payload, dict) or "result" not in payload:
            return self._fail(f"undefined result for {self.decision_ref}{self._undefined_hint()}")
        got = interpret(payload["result"], self.decision_ref)
        if isinstance(got, str):
            return self._fail(got)
        return self._decision(got)

    def _decision(self, got: Interpreted) -> Decision:
        return Decision(effect=got.effect, reasons=got.reasons, approvers=got.approvers, matched=got.matched,
                        engine=self.name, revision=self._revision)

    def _undefined_hint(self) -> str:
        if self.decision_path != DECISION_PATH:
            return (" (no rule defined it for this input; give the rule a default, e.g. `default allow := false`, "
                    "or check the path)")
        if self.library is not None and not self.library.needed:
            return (" (the policy has no package under agt.policies; for an entry point of your own pass "
                    "decision_path=, on the CLI --decision-path data.<package>.<rule>)")
        return " (is the agt Rego library loaded?)"

    # many decisions -------------------------------------------------------------------------------
    def evaluate_many(self, actions: Iterable[Action]) -> list[Decision]:
        """Decide ``actions`` in order, ``BATCH_SIZE`` per POST to ``data.agt.batch`` (rego/agt/batch.rego).

        Each element of a batch reply is checked exactly as a single decision is, and a malformed one denies
        only its own action; a POST that fails (unreachable, the deadline, a reply that is not a JSON list of one
        element per input) denies every action in it, naming the cause. ``timeout`` bounds each POST. Where the
        batch cannot answer, actions are decided one call each, concurrently (``concurrency`` threads):
        * an OPA without ``data.agt.batch`` (your own, or a library copy from before it), told by its undefined
          result, a 404 or a 403, from then on;
        * a decision path of your own (the batch decides ``data.agt.decision``);
        * an HTTP 500, such as agt.compare's type error in one input, which fails the whole query: the chunk is
          halved until the failing input is alone, and that input gets the decision its own query gives (the
          others stay batched)."""
        actions = list(actions)
        if len(actions) <= 1 or self.batch_supported is False:
            return self._many(self.evaluate, actions)
        out: list[Decision | None] = [None] * len(actions)
        pending: list[int] = []
        bodies: list[bytes] = []
        for i, action in enumerate(actions):
            early = self._before_opa(action)
            if isinstance(early, Decision):
                out[i] = early
            else:
                pending.append(i)
                bodies.append(early)
        for start in range(0, len(pending), BATCH_SIZE):
            idx = pending[start:start + BATCH_SIZE]
            docs = bodies[start:start + BATCH_SIZE]
            if self.batch_supported is False:  # found missing on an earlier chunk
                got = self._many(self._decide_doc, docs)
            else:
                got = self._chunk(docs)
            for i, d in zip(idx, got):
                out[i] = d
        return out  # type: ignore[return-value]

    def _chunk(self, docs: list[bytes]) -> list[Decision]:
        """Decisions for ``docs`` (actions encoded once, by :meth:`_before_opa`, whatever path decides them)."""
        try:
            got = self._batch(docs)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return [self._fail(f"{type(exc).__name__}: {exc}")] * len(docs)
        if got is _UNSUPPORTED:
            return self._many(self._decide_doc, docs)
        if got is _SPLIT:
            # One input's error fails the whole query: halve until it is alone, then its own query names it.
            if len(docs) == 1:
                return [self._decide_doc(docs[0])]
            mid = len(docs) // 2
            return self._chunk(docs[:mid]) + self._chunk(docs[mid:])
        return got  # type: ignore[return-value]

    def _before_opa(self, action: Action) -> Decision | bytes:
        """The catalog's deny, or the action's JSON for OPA (a deny if it cannot be encoded)."""
        if self.catalog is not None and (denied := self.catalog.denial(action, self.name, self._revision)) is not None:
            return denied
        try:
            return _encode(action.document)
        except UnicodeEncodeError as exc:
            return self._fail(f"the action holds text that is not valid Unicode ({exc.reason} at {exc.start})")
        except (TypeError, ValueError, RecursionError) as exc:
            return self._fail(f"the action cannot be sent as JSON: {type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return self._fail(f"{type(exc).__name__}: {exc}")

    def _batch(self, docs: list[bytes]) -> list[Decision] | object:
        """One POST deciding ``docs`` (encoded action documents): their decisions, _UNSUPPORTED (the OPA has no
        data.agt.batch) or _SPLIT (an HTTP 500: decide the halves apart)."""
        body = b'{"input":{"inputs":[' + b",".join(docs) + b"]}}"
        got = self._send(self._batch_head, BATCH_PATH, body)
        if isinstance(got, Decision):
            restarted = self._restart()
            if restarted is True:
                got = self._send(self._batch_head, BATCH_PATH, body)
            elif isinstance(restarted, Decision):
                return [restarted] * len(docs)
        if isinstance(got, _Refused):
            if got.status in (403, 404) and self.batch_supported is None:
                self.batch_supported = False
                return _UNSUPPORTED
            if got.status == 500:
                return _SPLIT
            return [got.deny] * len(docs)
        if isinstance(got, Decision):
            return [got] * len(docs)
        if not isinstance(got, dict) or "result" not in got:
            if self.batch_supported is None:
                self.batch_supported = False  # the OPA's library has no data.agt.batch
                return _UNSUPPORTED
            return [self._fail(f"undefined result for data.agt.batch{self._undefined_hint()}")] * len(docs)
        self.batch_supported = True
        results = got["result"]
        if not isinstance(results, list) or len(results) != len(docs):
            shape = f"a list of {len(results)}" if isinstance(results, list) else type(results).__name__
            return [self._fail(f"data.agt.batch answered {shape} for {len(docs)} inputs")] * len(docs)
        return [self._element(r) for r in results]

    def _element(self, result: Any) -> Decision:
        if result is None:
            return self._fail(f"undefined result for {self.decision_ref} (in data.agt.batch){self._undefined_hint()}")
        got = interpret(result, self.decision_ref)
        return self._fail(got) if isinstance(got, str) else self._decision(got)

    def _many(self, decide: Callable[[Any], Decision], items: list[Any]) -> list[Decision]:
        """``decide`` (one call each: an action, or its encoded document) sent concurrently over per-thread connections."""
        if len(items) <= 1 or self.concurrency <= 1:
            return [decide(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="agt-opa")
        return list(self._pool.map(decide, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._client.close()
        if self.server is not None:
            self.server.stop()
        self._stack.close()


DEFAULT_TIMEOUT = 2.0
BATCH_SIZE = 200
"""Inputs per POST to data.agt.batch."""


_UNSUPPORTED = object()
_SPLIT = object()


class _Refused:
    """A reply other than 200: its status, and the deny that names it."""

    __slots__ = ("status", "deny")

    def __init__(self, status: int, deny: Decision) -> None:
        self.status, self.deny = status, deny


def _env_timeout() -> float:
    raw = os.environ.get("AGT_OPA_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise PolicyLoadError(f"AGT_OPA_TIMEOUT={raw!r} is not a positive number of seconds")
    return value


def _error_text(body: bytes) -> str:
    """OPA's evaluation errors (a type error in agt.greater, say) say what went wrong in ``errors[].message``."""
    try:
        messages = [e["message"] for e in json.loads(body).get("errors", []) if isinstance(e.get("message"), str)]
    except (ValueError, AttributeError, TypeError, KeyError, RecursionError):
        messages = []
    return ("; ".join(messages) or body[:300].decode("utf-8", "replace"))[:300]


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(doc: Any) -> bytes:
    # orjson's bytes where they are json's (agt._canonical: sorted keys, which OPA does not mind); else one encoder
    # built once (json.dumps with options builds one per call). Documents holding a Decimal go through agt._json:
    # JSON numbers with their exact digits, which OPA compares exactly.
    fast = canonical_json_if_orjson(doc)
    if fast is not None:
        return fast
    try:
        text = _ENCODER.encode(doc)
    except TypeError:
        text = _json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _tree_revision(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".rego", ".json", ".yaml")) if path.is_dir() else [path]
        for f in files:
            digest.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0" + f.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()[:16]


def _factory(policy: str | None = None, **options: Any) -> OpaEngine:
    return OpaEngine(policy, **options)


base.register("opa", _factory)
