"""The embedded Cedar engine (cedarpy). Policies and schema are parsed and validated once at load.

Decisions map onto the contract like this: Cedar's forbid-overrides-permit gives deny; a satisfied
forbid annotated ``@approval`` gives require_approval instead; a permit annotated ``@id("default")``
is the policy default. ``@id`` annotations are the rule ids. Any NoDecision or diagnostics error is a
fail-closed deny, because Cedar skips a policy that errors and that could turn a forbid into an allow.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from collections.abc import Callable
from typing import Any, Iterable

import cedarpy

from agt._canonical import canonical_json_if_orjson
from agt.action import Action
from agt.catalog import CATALOG_FILE, Catalog, resolve_catalog
from agt.decision import DEFAULT_RULE_ID, Decision, Effect, RuleAction, RuleMatch, combine, fail_closed
from agt.engines import base
from agt.engines._cedar_guard import check_cedar_text
from agt.engines.cedar_diagnostics import statement_line, validation_diagnostics
from agt.engines.cedar_request import (ACTION_ENTITIES, CONTEXT_FIELDS, OPTIONAL_FIELDS, CedarEntity, cedar_entities, cedar_facts,
                                      cedar_request, entities_key, resource_uid)
from agt.facts import derive_facts
from agt.errors import PolicyLoadError


try:  # cedarpy's native entry point: the public wrapper re-encodes each request and wraps each result in objects
    from cedarpy._internal import is_authorized_batch as _native_batch
except ImportError:  # pragma: no cover - another cedarpy layout: the public API, same answers
    _native_batch = None


def _authorize_batch(requests: list[dict[str, Any]], policies: Any, entities: Any, schema: Any) -> list[str]:
    """Decide ``requests`` (each ``context`` already a JSON string) in one call into Cedar; one JSON response each,
    in order (``{"decision", "diagnostics": {"reason", "errors", "id_annotations_by_reason"}, ...}``)."""
    if _native_batch is not None and isinstance(entities, cedarpy.Entities):
        return _native_batch(requests, policies, entities._inner, schema, False)
    return [json.dumps({"decision": r.decision.value, "diagnostics": {
        "reason": list(r.diagnostics.reasons), "errors": [str(e) for e in r.diagnostics.errors],
        "id_annotations_by_reason": dict(r.diagnostics.id_annotations_by_reason)}})
        for r in cedarpy.is_authorized_batch(requests, policies, entities, schema)]


_EMPTY_FACTS = derive_facts("", "read", {})
"""The facts of an action without commands or SQL: one shared, read-only object (agt.facts.derive_facts)."""

_METRICS = ',"metrics":{'

SHARED_FACTS = {"type": "AgtFacts", "id": "no-commands-or-sql"}
"""The entity whose attributes are :data:`_EMPTY_FACTS` as Cedar sees them (:attr:`CedarEngine._facts_by_reference`).
Its type is in no schema, so no policy that passes validation can name it, and no action's entities have it."""


def _decision_key(response: str) -> str:
    """The response without its ``metrics`` (timings that differ call to call): what the decision depends on.
    Only text inside the metrics object is ever cut (JSON strings cannot hold an unescaped quote), so equal keys
    are equal responses apart from metrics, whatever the layout."""
    start = response.find(_METRICS)
    if start < 0:
        return response
    end = response.find("}", start + len(_METRICS))
    return response if end < 0 else response[:start] + response[end + 1:]


@dataclass(frozen=True)
class CedarRule:
    id: str
    action: RuleAction
    message: str
    approvers: tuple[str, ...]
    source: str
    line: int | None
    critical: bool = False
    """Marked ``@critical``: still enforced when the runtime runs in permissive mode."""


def bundled_schema_text() -> str:
    return resources.files("agt.schema").joinpath("agt.cedarschema").read_text("utf-8")


def _policy_files(path: Path) -> tuple[list[Path], Path | None]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".cedar" and p.is_file())
        schemas = sorted(p for p in path.iterdir() if p.suffix == ".cedarschema")
        if not files:
            raise PolicyLoadError("no .cedar policy files in directory", file=str(path))
        if len(schemas) > 1:
            raise PolicyLoadError(f"more than one .cedarschema: {', '.join(map(str, schemas))}", file=str(path))
        return files, (schemas[0] if schemas else None)
    if not path.exists():
        raise PolicyLoadError("policy file does not exist", file=str(path))
    schemas = sorted(path.parent.glob("*.cedarschema"))
    return [path], (schemas[0] if len(schemas) == 1 else None)


def _read(path: Path) -> str:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError(f"cannot read: {exc}", file=str(path)) from None
    check_cedar_text(text, str(path))  # before cedarpy: input too deep crashes its native parser
    return text


def _code(line: str) -> str:
    return line.split("//", 1)[0].strip()


def _locate_parse_error(text: str) -> int | None:
    """cedarpy reports parse errors without a position; find the first statement that fails to parse,
    and return the line it starts on (its first line that is not blank or a comment)."""
    lines = text.splitlines(keepends=True)
    start = 0
    for i, line in enumerate(lines):
        if _code(line).endswith(";"):
            try:
                cedarpy.PolicySet.from_str("".join(lines[: i + 1]))
            except ValueError:
                return _first_code_line(lines, start)
            start = i + 1
    return _first_code_line(lines, start) if start < len(lines) else None


def _first_code_line(lines: list[str], start: int) -> int:
    for j in range(start, len(lines)):
        if _code(lines[j]):
            return j + 1
    return start + 1


PARAMS_DECLARATION = "type Params = {};"
"""The line of the bundled schema that agt fills from the catalog (docs/cedar-mapping.md)."""


FACTS_DECLARATION = "type Facts = {"
"""A schema without it (a custom copy from before the facts) gets requests without ``context.facts``."""


def _schema_with_params(schema_text: str, catalog: Catalog | None, schema_src: str) -> str:
    """The schema with ``context.params`` typed from the catalog."""
    if catalog is None:
        return schema_text
    if PARAMS_DECLARATION not in schema_text:
        raise PolicyLoadError(
            f"the schema has no `{PARAMS_DECLARATION}` line for agt to fill from the catalog ({catalog.source}); "
            "copy it from agt/schema/agt.cedarschema", file=schema_src,
        )
    return schema_text.replace(PARAMS_DECLARATION, f"type Params = {catalog.cedar_type()};")


def _params_read(node: Any, found: set[str]) -> None:
    """Collect the attributes read from ``context.params`` (``.attr``, ``["attr"]`` and ``has attr``)."""
    if isinstance(node, dict):
        for op in (".", "has"):
            inner = node.get(op)
            if isinstance(inner, dict) and inner.get("left") == {".": {"left": {"Var": "context"}, "attr": "params"}}:
                found.add(str(inner.get("attr", "")))
        for v in node.values():
            _params_read(v, found)
    elif isinstance(node, list):
        for v in node:
            _params_read(v, found)


ReadTree = dict[str, Any]
"""The parts of ``context`` the policies read: attribute -> its own tree, or None where the whole value is read."""


class _Read:
    __slots__ = ("children", "whole")

    def __init__(self) -> None:
        self.children: dict[str, _Read] = {}
        self.whole = False

    def child(self, attr: str) -> _Read:
        return self.children.setdefault(attr, _Read())

    def tree(self) -> ReadTree | None:
        # A part only tested with `has`, with nothing read inside it, is sent whole too.
        if self.whole or not self.children:
            return None
        return {attr: child.tree() for attr, child in self.children.items()}


def _context_reads(ests: list[dict[str, Any]]) -> ReadTree | None:
    """The parts of ``context`` the policies read, as a tree (None: one of them reads ``context`` as a whole).

    ``context.a.b`` reads ``b`` inside ``a``; ``context has a`` (and ``context has a.b``, which Cedar desugars into
    ``has`` tests one level each) needs ``a`` present; a chain that ends anywhere else (``context.a.b.contains(x)``,
    ``context.a == {...}``) reads that value whole. Anything else that names ``context`` reads it whole."""
    root = _Read()

    def chain(node: dict[str, Any]) -> bool:
        """``node`` is a ``.``/``has`` chain rooted at ``context``: record it and return True."""
        path: list[tuple[str, str]] = []
        cur: Any = node
        while isinstance(cur, dict) and len(cur) == 1 and next(iter(cur)) in (".", "has"):
            op = next(iter(cur))
            inner = cur[op]
            if not isinstance(inner, dict) or not isinstance(inner.get("attr"), str):
                return False
            path.append((op, inner["attr"]))
            cur = inner.get("left")
        if cur != {"Var": "context"}:
            return False
        read = root
        for _op, attr in reversed(path):
            read = read.child(attr)
        if path[0][0] == ".":
            read.whole = True  # the chain's value is used as it is
        return True

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if len(node) == 1 and next(iter(node)) in (".", "has") and chain(node):
                return
            if node.get("Var") == "context":
                root.whole = True
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for est in ests:
        walk(est.get("staticPolicies", {}))
    return None if root.whole else (root.tree() if root.children else {})


_COMPARED = {"==": ("left", "right"), "!=": ("left", "right"), "in": ("right",), "is": ("in",),
             "contains": ("left", "right"), "containsAll": ("left", "right"), "containsAny": ("left", "right")}
"""Operands whose entity value is only compared by uid (``==``, the ancestor side of ``in``, set membership):
what they give does not depend on which entities the store holds."""


def _looks_into_named_entities(ests: list[dict[str, Any]]) -> bool:
    """Whether a policy condition may look into an entity it names (``Agent::"boss".trust_score``, ``Agent::"boss"
    has trust_score``, ``Directory::"/x" in resource``): what that finds depends on which entities the store holds,
    so such policies decide an action only with its own entity set (:meth:`CedarEngine.evaluate_many`). A literal
    only compared by uid (``principal == Agent::"x"``, ``principal in Role::"ops"``, an element of a set) is not
    looking; neither is an Action literal (the Action entities are the same in every store)."""

    def named(value: Any) -> bool:
        if isinstance(value, dict):
            uid = value.get("__entity")
            if isinstance(uid, dict) and uid.get("type") != "Action":
                return True
            return any(named(v) for v in value.values())
        return isinstance(value, list) and any(named(v) for v in value)

    def looks(node: Any, compared: bool) -> bool:
        if isinstance(node, list):
            return any(looks(v, False) for v in node)
        if not isinstance(node, dict):
            return False
        if len(node) == 1:
            (op, inner), = node.items()
            if op == "Value":
                return not compared and named(inner)
            if op == "Set" and isinstance(inner, list):  # no operation takes an element out of a set
                return any(looks(v, True) for v in inner)
            if op == "if-then-else" and isinstance(inner, dict):  # a branch's value is the whole expression's
                return looks(inner.get("if"), False) or looks(inner.get("then"), compared) or looks(inner.get("else"), compared)
            if isinstance(inner, dict) and op in _COMPARED:
                return any(looks(v, k in _COMPARED[op]) for k, v in inner.items())
        return any(looks(v, False) for v in node.values())

    return any(looks(policy.get("conditions"), False)
               for est in ests for policy in (est.get("staticPolicies") or {}).values())


def _pruned(value: Any, tree: ReadTree) -> Any:
    """``value`` cut down to the attributes ``tree`` reads. Only plain records are cut: an entity reference or an
    extension value (``{"__entity": ...}``, ``{"__extn": ...}``) is sent as it is."""
    if type(value) is not dict or "__entity" in value or "__extn" in value:
        return value
    return {k: v if sub is None else _pruned(v, sub) for k, sub in tree.items() if k in value for v in (value[k],)}


def _id_line(text: str, rule_id: str, occurrence: int = 0) -> int | None:
    """The line of the ``occurrence``-th ``@id("rule_id")`` annotation (-1: the last), ignoring comments."""
    found = list(re.finditer(r'^[ \t]*@id\(\s*"' + re.escape(rule_id) + r'"\s*\)', text, re.MULTILINE))
    if not found:
        return None
    m = found[occurrence] if -len(found) <= occurrence < len(found) else found[-1]
    return text.count("\n", 0, m.start()) + 1


def _combined(errors: list[PolicyLoadError]) -> PolicyLoadError:
    """One error for the validation errors of several files: the first file's headline, every finding listed."""
    if len(errors) == 1:
        return errors[0]
    found = tuple(d for e in errors for d in e.diagnostics)
    first = found[0]
    rest = "".join(f"\n  {d.location()}: rule {d.rule!r}: {d.message}" for d in found[1:])
    return PolicyLoadError(f"fails schema validation: {first.message}\n{len(found) - 1} more:{rest}",
                           file=first.file, line=first.line, rule=first.rule, diagnostics=found)


def _validation_hint(message: str) -> str:
    if "but saw decimal" in message:
        return '; Cedar orders decimals with methods: context.params.amount.greaterThan(decimal("100.00"))'
    return ""


class CedarEngine:
    name = "cedar"

    def __init__(
        self, policy: str | Path, *, validate_requests: bool | None = None, catalog: Catalog | str | Path | None = None
    ) -> None:
        """``validate_requests`` re-checks every request against the schema inside Cedar. It defaults
        to on only for a custom schema: requests built for the bundled schema fit it by construction
        (tests/test_cedar_request.py proves it), and skipping the check saves about a third of a
        decision. A runtime type error still denies either way, through Cedar's diagnostics.

        ``catalog`` types ``context.params`` (by default the catalog.yaml beside the policy); a policy that
        reads a param the catalog does not declare fails to load."""
        path = Path(policy)
        files, schema_path = _policy_files(path)
        self.catalog = resolve_catalog(catalog, policy)
        schema_text = _read(schema_path) if schema_path else bundled_schema_text()
        custom_schema = schema_text != bundled_schema_text()
        self.validate_requests = custom_schema if validate_requests is None else validate_requests
        if custom_schema and not self.validate_requests:
            raise PolicyLoadError("a custom schema needs validate_requests=True", file=str(schema_path))
        schema_src = str(schema_path) if schema_path else "agt/schema/agt.cedarschema"
        self._schema_has_params = PARAMS_DECLARATION in schema_text
        self._schema_has_facts = FACTS_DECLARATION in schema_text
        schema_text = _schema_with_params(schema_text, self.catalog, schema_src)
        try:
            self._schema = cedarpy.Schema.from_str(schema_text)
        except ValueError as exc:
            raise PolicyLoadError(f"schema does not parse: {exc}", file=schema_src) from None

        self.rules: dict[str, CedarRule] = {}
        self._has_default_permit = False
        texts: list[str] = []
        ests: list[dict[str, Any]] = []
        digest = hashlib.sha256(schema_text.encode())
        invalid: list[PolicyLoadError] = []
        for f in files:
            text = _read(f)
            digest.update(f.name.encode() + b"\0" + text.encode())
            try:
                ests.append(self._load_file(f, text))
            except PolicyLoadError as exc:
                if not exc.diagnostics:
                    raise
                invalid.append(exc)  # schema validation: go on, so every file's errors are reported at once
            texts.append(text)
        if invalid:
            raise _combined(invalid)
        joined = "\n".join(texts)
        self._policies = cedarpy.PolicySet.from_str(joined)
        # Cedar's runtime diagnostics name positional ids (policy0); errors are reported by @id instead.
        self._rule_of_policy = {
            pid: str((body.get("annotations") or {}).get("id") or pid)
            for pid, body in json.loads(cedarpy.policies_to_json_str(joined)).get("staticPolicies", {}).items()
        }
        self._context_reads = _context_reads(ests)
        self._own_entity_sets = _looks_into_named_entities(ests)
        self._decisions: dict[str, Decision] = {}
        reads = None if self.validate_requests else self._context_reads
        # The context attributes sent (all of them when requests are validated: the schema requires them), each
        # with what to read of it (None: all of it); context.facts is encoded on its own (_wire).
        self._wire_fields = tuple(
            (name, read, None if reads is None else reads[name]) for name, read in CONTEXT_FIELDS.items()
            if name != "facts" and (reads is None or name in reads) and (name != "params" or self._schema_has_params))
        self._send_facts = self._schema_has_facts and (reads is None or "facts" in reads)
        facts_read = None if reads is None else reads.get("facts")
        # Cedar builds a nested record in the context attribute by attribute, and the facts record is most of a
        # request (about 17 of the starter policy's 60 µs in Cedar). Most actions share one facts record, that of
        # an action without commands or SQL: it goes once into the base entity set as the attributes of the
        # SHARED_FACTS entity, and such a request's context.facts refers to it. An entity answers `.attr` and `has`
        # exactly as a record with the same attributes does, so this holds only when every policy reads
        # context.facts through those alone (a read tree below "facts"); never with validated requests (the schema
        # types context.facts as a record). tests/test_cedar_engine.py decides generated actions both ways.
        self._set_facts_by_reference(self._send_facts and isinstance(facts_read, dict))
        self._keyed_entities: dict[tuple[Any, ...], dict[tuple[str, str], str]] = {}
        self._revision = "sha256:" + digest.hexdigest()[:16]
        self.sources = tuple(str(f) for f in files)

    def _set_facts_by_reference(self, on: bool) -> None:
        """Send the shared facts by reference or not (tests decide both ways); before any handle is cached."""
        self._facts_by_reference = on
        base: list[CedarEntity] = list(ACTION_ENTITIES)
        if on:
            base.append({"uid": SHARED_FACTS, "attrs": self._facts_record(_EMPTY_FACTS), "parents": []})
            self._empty_facts_json = json.dumps({"__entity": SHARED_FACTS})
        else:
            self._empty_facts_json = self._facts_json(_EMPTY_FACTS)
        self._base_entities = cedarpy.Entities.from_json_str(json.dumps(base))
        self._entities_for_key: dict[tuple[Any, ...], Any] = {}

    def _load_file(self, f: Path, text: str) -> dict[str, Any]:
        """Parse, validate and index one policy file; returns its JSON form (EST) for later analysis."""
        try:
            est = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as exc:
            raise PolicyLoadError(f"Cedar does not parse: {exc}", file=str(f), line=_locate_parse_error(text)) from None
        except RecursionError:
            raise PolicyLoadError("a policy nests too deeply to load (split long && / || chains)", file=str(f)) from None
        if est.get("templates"):
            raise PolicyLoadError("policy templates are not supported; link them into static policies", file=str(f))
        self._check_params_declared(f, text, est)
        result = cedarpy.validate_policies(text, self._schema)
        if not result.validation_passed:
            # Every error, named by @id and located (agt.engines.cedar_diagnostics); the first is the headline.
            found = validation_diagnostics(text, str(f), result.errors, result.id_annotations_by_policy_id, _validation_hint)
            first = found[0]
            rest = "".join(f"\n  {d.location()}: rule {d.rule!r}: {d.message}" for d in found[1:])
            raise PolicyLoadError(
                f"fails schema validation: {first.message}" + (f"\n{len(found) - 1} more:{rest}" if rest else ""),
                file=str(f), line=first.line, rule=first.rule, diagnostics=tuple(found),
            )
        for pid, body in est.get("staticPolicies", {}).items():
            ann = body.get("annotations") or {}
            rid = ann.get("id")
            if not rid:
                raise PolicyLoadError("every policy needs an @id annotation (the rule id); the policy here has none",
                                      file=str(f), line=statement_line(text, pid))
            line = _id_line(text, rid)
            if rid in self.rules or (rid == DEFAULT_RULE_ID and self._has_default_permit):
                first = self.rules[rid] if rid in self.rules else None
                where = f" (first defined at {first.source}:{first.line})" if first else ""
                dup_line = _id_line(text, rid, -1) if first is None or first.source != str(f) else _id_line(text, rid, 1)
                raise PolicyLoadError(f"duplicate @id{where}", file=str(f), line=dup_line, rule=rid)
            approval = "approval" in ann
            effect = body.get("effect")
            if rid == DEFAULT_RULE_ID:
                unscoped = all((body.get(k) or {}).get("op") == "All" for k in ("principal", "action", "resource"))
                if effect != "permit" or approval or body.get("conditions") or not unscoped:
                    raise PolicyLoadError(
                        '@id("default") is reserved for an unconditional permit (default_action: allow)',
                        file=str(f), line=line, rule=rid,
                    )
                self._has_default_permit = True
                continue
            if approval and effect != "forbid":
                raise PolicyLoadError("@approval marks a forbid; a permit cannot ask for approval", file=str(f), line=line, rule=rid)
            if "approvers" in ann and not approval:
                raise PolicyLoadError("@approvers needs @approval", file=str(f), line=line, rule=rid)
            approvers = tuple(sorted({a.strip() for a in (ann.get("approvers") or "").split(",") if a.strip()}))
            action = RuleAction.ALLOW if effect == "permit" else (RuleAction.REQUIRE_APPROVAL if approval else RuleAction.DENY)
            self.rules[rid] = CedarRule(rid, action, ann.get("message") or "", approvers, str(f), line, "critical" in ann)
        return est

    def _check_params_declared(self, f: Path, text: str, est: dict[str, Any]) -> None:
        """A read of an undeclared param fails to load. Cedar's validator would reject ``context.params.x``,
        but it accepts ``context.params has x && ...`` as always false: a rule that silently never matches."""
        declared = self.catalog.declared_names() if self.catalog is not None else frozenset()
        for pid, body in est.get("staticPolicies", {}).items():
            found: set[str] = set()
            _params_read(body.get("conditions"), found)
            missing = sorted(found - declared)
            if missing:
                rid = (body.get("annotations") or {}).get("id")
                where = f"the catalog ({self.catalog.source})" if self.catalog is not None else f"a {CATALOG_FILE} beside the policy"
                raise PolicyLoadError(
                    f"reads context.params.{missing[0]}, a param no tool declares, so Cedar cannot see it; declare it in "
                    f"{where}: tools: {{<tool>: {{params: {{{missing[0]}: <type>}}}}}}",
                    file=str(f), line=_id_line(text, rid) if rid else None, rule=rid or pid,
                )

    def _by_rule_id(self, message: str) -> str:
        """``policy `policy3``` in a Cedar message becomes ``rule `<its @id>```."""
        return re.sub(r"policy `(policy\d+)`", lambda m: f"rule `{self._rule_of_policy.get(m.group(1), m.group(1))}`", message)

    @property
    def _eval_schema(self) -> cedarpy.Schema | None:
        return self._schema if self.validate_requests else None

    def _entity_handle(self, entities: list[CedarEntity]) -> Any:
        """Parse entities once into a handle: checked against the schema, or added to the
        pre-parsed Action hierarchy when requests skip schema validation."""
        return self._entity_handle_json(json.dumps(entities, separators=(",", ":")))

    def _entity_handle_json(self, entity_json: str) -> Any:
        if self.validate_requests:
            return cedarpy.Entities.from_json_str(entity_json, self._schema)
        return self._base_entities.with_added_json_str(entity_json)

    def _request(self, action: Action) -> tuple[dict[str, Any], Any]:
        """The request exactly as :meth:`evaluate` sends it (its context decoded), and the entity handle it sends
        with it: what raw cedarpy is given in the benchmark's floor (bench/core.py)."""
        request = self._wire(action)
        return {**request, "context": json.loads(request["context"])}, self._entities(action)

    def _entities(self, action: Action) -> Any:
        """The parsed entity handle for ``action``. Handles are cached by what they are built from:
        an agent's calls mostly repeat the same principal and resource, and parsing entities is a
        large share of a decision."""
        key = entities_key(action)
        handle = self._entities_for_key.get(key)
        if handle is None:
            handle = self._entity_handle(cedar_entities(action))
            if len(self._entities_for_key) >= 4096:
                self._entities_for_key.clear()
            self._entities_for_key[key] = handle
        return handle

    def _cedar_request(self, action: Action) -> dict[str, Any]:
        request = cedar_request(action, self.catalog)
        if not self._schema_has_params:
            del request["context"]["params"]  # a custom schema from before the catalog
        if not self._schema_has_facts:
            del request["context"]["facts"]  # a custom schema from before the facts
        return self._prune(request)

    def _prune(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.validate_requests and self._context_reads is not None:
            # Cedar's request builder costs per context attribute, nested ones included (the facts record is
            # most of a request); send only what the policies read (_context_reads). Unread parts cannot
            # change a decision, and every part a policy reads or tests with `has` is sent whole.
            request["context"] = _pruned(request["context"], self._context_reads)
        return request

    def explain_input(self, action: Action) -> dict[str, Any]:
        """What Cedar is asked for ``action`` (agt.explain): the request as sent (its context pruned to the
        attributes the policies read, unless requests are validated; ``context.facts`` as the record, which the
        engine may send by reference: :meth:`_set_facts_by_reference`) and every entity, the Action hierarchy included."""
        return {
            "request": self._cedar_request(action),
            "entities": [*ACTION_ENTITIES, *cedar_entities(action)],
            "context_pruned_to_read_attributes": not self.validate_requests and self._context_reads is not None,
        }

    @property
    def revision(self) -> str:
        return self._revision

    @property
    def default(self) -> Effect:
        return Effect.ALLOW if self._has_default_permit else Effect.DENY

    def _fail(self, cause: str) -> Decision:
        return fail_closed(f"cedar: {cause}", engine=self.name, revision=self._revision)

    def _decide(self, response: str) -> Decision:
        """The decision for one Cedar response. Decisions are immutable and a pure function of the response (its
        timings aside), so each distinct response is mapped once (:func:`_decision_key`); the cache is bounded."""
        key = _decision_key(response)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide_response(json.loads(response))
            if len(self._decisions) >= 1024:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _decide_response(self, response: dict[str, Any]) -> Decision:
        diagnostics = response.get("diagnostics") or {}
        errors = diagnostics.get("errors") or ()
        if errors:
            return self._fail("; ".join(self._by_rule_id(str(e)) for e in errors))
        verdict = response.get("decision")
        if verdict not in ("Allow", "Deny"):
            return self._fail("NoDecision" if verdict in (None, "NoDecision") else f"unknown decision {verdict!r}")
        ids = diagnostics.get("id_annotations_by_reason") or {}
        matches: list[RuleMatch] = []
        for reason in diagnostics.get("reason") or ():
            rid = ids.get(reason)
            if rid == DEFAULT_RULE_ID:
                continue
            rule = self.rules.get(rid or "")
            if rule is None:
                return self._fail(f"unknown determining policy {reason}")
            matches.append(RuleMatch(rule.id, rule.action, rule.message, rule.approvers))
        decision = combine(matches, self.default, engine=self.name, revision=self._revision)
        # Cedar's own verdict must agree with the combined one, or something is mis-mapped.
        if (verdict == "Allow") != (decision.effect is Effect.ALLOW):
            return self._fail(f"decision {verdict} disagrees with its reasons")
        return decision

    def _wire(self, action: Action) -> dict[str, Any]:
        """:meth:`_cedar_request` as Cedar's native entry point takes it, the context as JSON, built faster: only
        the attributes sent (``_wire_fields``) are read, and ``context.facts`` is encoded on its own, once per
        engine for the shared facts of an action without commands or SQL (most actions), which may go by
        reference (``_facts_by_reference``). tests/test_cedar_engine.py checks it decodes to :meth:`_cedar_request`."""
        catalog = self.catalog
        context: dict[str, Any] = {}
        for name, read, sub in self._wire_fields:
            value = read(action, catalog)
            if value is None and name in OPTIONAL_FIELDS:
                continue
            context[name] = value if sub is None else _pruned(value, sub)
        text = _context_json(context)
        if self._send_facts:
            facts = action.action.facts
            encoded = self._empty_facts_json if facts is _EMPTY_FACTS else self._facts_json(facts)
            text = ('{"facts": ' + encoded + "}") if not context else (text[:-1] + ', "facts": ' + encoded + "}")
        return {
            "principal": {"type": "Agent", "id": action.agent.id},
            "action": {"type": "Action", "id": action.action.kind.value},
            "resource": resource_uid(action),
            "context": text,
        }

    def _facts_record(self, facts: Any) -> dict[str, Any]:
        """``context.facts`` as the policies read it: the Facts record, pruned unless requests are validated."""
        record = cedar_facts(facts)
        sub = None if self.validate_requests or self._context_reads is None else self._context_reads.get("facts")
        return record if sub is None else _pruned(record, sub)

    def _facts_json(self, facts: Any) -> str:
        return _context_json(self._facts_record(facts))

    def evaluate(self, action: Action) -> Decision:
        try:
            # Inside the try: a value that is not an Action must deny here too, never raise.
            if self.catalog is not None and (denied := self.catalog.denial(action, self.name, self._revision)) is not None:
                return denied
            entities = self._entities(action)
            (response,) = _authorize_batch([self._wire(action)], self._policies, entities, self._eval_schema)
            return self._decide(response)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return self._fail(f"{type(exc).__name__}: {exc}")

    def evaluate_many(self, actions: Iterable[Action]) -> list[Decision]:
        """Batch through Cedar's batch entry point. An action whose entity handle single decisions already parsed
        (:meth:`_entities`) is sent with that handle, beside the others with the same key; parsing costs more than
        the rest of a decision in Cedar. The other requests share one entity store parsed once (cheaper than a
        handle each), so requests whose entities conflict (the same agent with another trust score, say) go in
        separate batches; when a policy looks into an entity it names (:func:`_looks_into_named_entities`), another
        action's entities could answer it, so every action goes with its own handle, as a single decision does."""
        actions = list(actions)
        out: list[Decision | None] = [None] * len(actions)
        parsed: dict[int, tuple[list[int], list[dict[str, Any]], Any]] = {}  # id(handle) -> its requests, handle
        # A shared store: its requests, and each entity's JSON by uid. `holding` says, per uid, which stores hold it
        # in which JSON, so a store an action's entities conflict with is found by lookup, not by comparing each.
        stores: list[tuple[list[int], list[dict[str, Any]], dict[tuple[str, str], str]]] = []
        holding: dict[tuple[str, str], dict[str, set[int]]] = {}
        for i, action in enumerate(actions):
            try:
                if self.catalog is not None and (denied := self.catalog.denial(action, self.name, self._revision)) is not None:
                    out[i] = denied
                    continue
                request = self._wire(action)
                key = entities_key(action)
                handle = self._entities_for_key.get(key)
                if handle is None and self._own_entity_sets:
                    handle = self._entities(action)  # another action's entities could answer what a policy looks up
                if handle is not None:
                    idxs, reqs, _ = parsed.setdefault(id(handle), ([], [], handle))
                    idxs.append(i)
                    reqs.append(request)
                    continue
                keyed = self._keyed_entities.get(key)
                if keyed is None:  # equal keys give equal entity sets (entities_key)
                    # An entity is known by its canonical JSON: equal JSON is the same entity to Cedar, so it is
                    # both what a conflict is judged by and what the store's handle is parsed from.
                    keyed = {(e["uid"]["type"], e["uid"]["id"]): _entity_json(e) for e in cedar_entities(action)}
                    if len(self._keyed_entities) >= 4096:
                        self._keyed_entities.clear()
                    self._keyed_entities[key] = keyed
            except Exception as exc:  # noqa: BLE001
                out[i] = self._fail(f"{type(exc).__name__}: {exc}")
                continue
            conflicting: set[int] = set()
            for uid, text in keyed.items():
                for other, held in holding.get(uid, {}).items():
                    if other != text:
                        conflicting |= held
            j = next((j for j in range(len(stores)) if j not in conflicting), len(stores))
            if j == len(stores):
                stores.append(([], [], {}))
            idxs, reqs, store = stores[j]
            idxs.append(i)
            reqs.append(request)
            for uid, text in keyed.items():
                if uid not in store:
                    store[uid] = text
                    holding.setdefault(uid, {}).setdefault(text, set()).add(j)
        jobs: list[tuple[list[int], list[dict[str, Any]], Callable[[], Any]]] = [
            *((idxs, reqs, lambda h=handle: h) for idxs, reqs, handle in parsed.values()),
            *((idxs, reqs, lambda s=store: self._entity_handle_json("[" + ",".join(s.values()) + "]"))
              for idxs, reqs, store in stores),
        ]
        for idxs, reqs, entities in jobs:
            try:
                responses = _authorize_batch(reqs, self._policies, entities(), self._eval_schema)
                if len(responses) != len(reqs):
                    raise RuntimeError(f"{len(responses)} responses for {len(reqs)} requests")
                for i, response in zip(idxs, responses):
                    out[i] = self._decide(response)
            except Exception:  # noqa: BLE001
                # One bad request fails the whole batch: decide its members one by one, so each
                # gets the decision (or the fail-closed deny) it would get alone.
                for i in idxs:
                    out[i] = self.evaluate(actions[i])
        return [d if d is not None else self._fail("no decision returned for this request") for d in out]

    def close(self) -> None:
        pass


def _entity_json(entity: CedarEntity) -> str:
    """One entity as JSON, its keys sorted: orjson's bytes where they are json's, else json's as a single decision sends
    them (text UTF-8 cannot hold, a lone surrogate, is escaped and Cedar refuses it there, as it does alone)."""
    fast = canonical_json_if_orjson(entity)
    return fast.decode("utf-8") if fast is not None else json.dumps(entity, separators=(",", ":"), sort_keys=True)


def _context_json(value: dict[str, Any]) -> str:
    """A request's context (or its facts record) as JSON: orjson's bytes where they are json's (agt._canonical), else
    json's; Cedar reads both alike, key order and spaces aside."""
    fast = canonical_json_if_orjson(value)
    return fast.decode("utf-8") if fast is not None else json.dumps(value)


def _factory(policy: str, *, validate_requests: bool | None = None, catalog: Any = None) -> CedarEngine:
    return CedarEngine(policy, validate_requests=validate_requests, catalog=catalog)


base.register("cedar", _factory)
