"""Conformance suites: one policy in several languages, and cases every engine must decide alike.

A suite file (YAML) names the policy per engine (paths relative to the suite file), a ``defaults``
action merged under every case (a ``null`` removes a default), and the cases: an action plus the
expected effect and rule ids. A case may list engines it is ``not_portable`` to, with a reason.

A suite may name a tool ``catalog`` (agt.catalog), given to every engine. Cedar sees only the params the
catalog declares, so a case whose params include one that a YAML rule reads but the catalog does not declare
for the case's tool is marked not portable to Cedar automatically, with the reason: it is never run there,
so it never passes by accident.

Every key is checked: a case needs ``name``, ``action`` and ``expect`` with ``effect`` and ``rules``; a missing
one, or one the loader does not know (a typo such as ``expected:``), is a :class:`SuiteError` naming the file,
the case and the key, never a silent expectation. ``observed`` and ``note`` are informational and ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import yaml

from agt import _yaml
from agt.action import Action
from agt.catalog import Catalog, find_catalog, load_catalog
from agt.conditions import EqualityKey, ast, index_key
from agt.decision import Effect
from agt.errors import ActionError, AgtError, PolicyLoadError


class SuiteError(AgtError):
    """A suite file is malformed; the message names the file and the case."""


SUITE_KEYS = frozenset({"suite", "description", "policies", "catalog", "defaults", "cases"})
CASE_KEYS = frozenset({"name", "action", "expect", "not_portable", "observed", "note"})
"""``observed`` (what each engine decided, written by ``agt conformance fuzz``) and ``note`` are for people."""
REQUIRED_CASE_KEYS = ("name", "action", "expect")
EXPECT_KEYS = frozenset({"effect", "rules", "approvers"})
REQUIRED_EXPECT_KEYS = ("effect", "rules")


def _check_keys(where: str, what: str, raw: Mapping[Any, Any], known: frozenset[str], required: tuple[str, ...]) -> None:
    """A missing required key or an unknown key is an error naming it; unknown ones list the known keys."""
    for key in required:
        if key not in raw:
            raise SuiteError(f"{where}: {what} lacks the required key {key!r}")
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise SuiteError(f"{where}: {what} has an unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


@dataclass(frozen=True)
class Expectation:
    effect: Effect
    rules: tuple[str, ...]
    approvers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    action: Action
    expect: Expectation
    not_portable: Mapping[str, str] = field(default_factory=dict)
    """engine name -> why this case cannot be expressed there."""


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    policies: Mapping[str, str]
    """engine -> policy path; several paths are joined with os.pathsep."""
    cases: tuple[Case, ...]
    description: str = ""
    catalog: str | None = None
    """The tool catalog every engine is given, when the suite names one."""
    portability: "Portability | None" = field(default=None, compare=False, repr=False)
    """The automatic not-portable marks (applied to the cases; the fuzzer applies them to generated actions)."""


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` onto ``base``: mappings merge key by key, a None value removes the key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif key in out:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _ExactLoader(_yaml.BoundedLoader):
    """YAML whose numbers with a fraction are exact decimals, as in an action: ``922337203685477.5807``
    would otherwise become the nearest float, and a suite could not state a value at a decimal limit."""


def _exact_float(loader: _ExactLoader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if ":" in text or text.lower().lstrip("+-") in (".inf", ".nan"):
        return loader.construct_yaml_float(node)
    return Decimal(text)


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _exact_float)


def load_suite(path: str | Path) -> Suite:
    p = Path(path)
    try:
        data = yaml.load(p.read_text("utf-8"), Loader=_ExactLoader)  # noqa: S506 - a bounded SafeLoader subclass
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{p}: cannot read suite: {exc}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{p}: malformed YAML: {exc}") from None
    except RecursionError:
        raise SuiteError(f"{p}: YAML nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise SuiteError(f"{p}: a suite is a mapping with a 'cases' list")
    _check_keys(str(p), "the suite", data, SUITE_KEYS, ("policies", "cases"))
    policies_raw = data.get("policies") or {}
    if not isinstance(policies_raw, dict) or not policies_raw:
        raise SuiteError(f"{p}: 'policies' must map engine names to policy paths")
    # A list of paths (OPA loads several) becomes one os.pathsep-separated string, like PATH.
    policies = {
        engine: os.pathsep.join(str((p.parent / str(r)).resolve()) for r in (rel if isinstance(rel, list) else [rel]))
        for engine, rel in policies_raw.items()
    }
    catalog_path = str((p.parent / str(data["catalog"])).resolve()) if data.get("catalog") else None
    params_read = _params_yaml_rules_read(p, policies.get("yaml"))
    attributes_read = [(path[2:], rule) for path, rule in _yaml_paths(p, policies.get("yaml")) if path[:2] == ("context", "attributes")]
    cedar_catalog = _cedar_catalog(p, catalog_path, policies.get("cedar")) if params_read else None
    portability = Portability(policies, params_read, cedar_catalog, attributes_read, _compiled_not_portable(p, policies))
    defaults = data.get("defaults") or {}
    cases = []
    seen: set[str] = set()
    for i, raw in enumerate(data["cases"]):
        where = f"{p}: case #{i + 1}"
        if not isinstance(raw, dict):
            raise SuiteError(f"{where}: a case is a mapping with {', '.join(map(repr, REQUIRED_CASE_KEYS))}")
        if "name" in raw:
            where = f"{p}: case {str(raw['name'])!r}"
        _check_keys(where, "the case", raw, CASE_KEYS, REQUIRED_CASE_KEYS)
        name = str(raw["name"])
        if name in seen:
            raise SuiteError(f"{where}: duplicate case name")
        seen.add(name)
        if not isinstance(raw["action"], dict):
            raise SuiteError(f"{where}: 'action' must be a mapping (merged onto the suite's defaults)")
        try:
            action = Action.from_dict(deep_merge(defaults, raw["action"]))
        except ActionError as exc:
            raise SuiteError(f"{where}: invalid action: {exc}") from None
        expect = raw["expect"]
        if not isinstance(expect, dict):
            raise SuiteError(f"{where}: 'expect' must be a mapping with 'effect' and 'rules'")
        _check_keys(where, "'expect'", expect, EXPECT_KEYS, REQUIRED_EXPECT_KEYS)
        try:
            effect = Effect(expect["effect"])
        except (ValueError, TypeError):
            raise SuiteError(f"{where}: unknown effect {expect['effect']!r} (one of: allow, deny, require_approval)") from None
        rules = expect["rules"]
        if not isinstance(rules, list) or not rules or not all(isinstance(r, str) for r in rules):
            raise SuiteError(f"{where}: 'expect.rules' must be a non-empty list of rule ids ([default] when no rule matches)")
        approvers = expect.get("approvers")
        if approvers is not None and (not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers)):
            raise SuiteError(f"{where}: 'expect.approvers' must be a list of names")
        not_portable = raw.get("not_portable") or {}
        if not isinstance(not_portable, dict):
            raise SuiteError(f"{where}: not_portable maps engine names to a reason")
        not_portable = {**portability.reasons(action), **not_portable}
        cases.append(Case(
            name=name,
            action=action,
            expect=Expectation(effect, tuple(sorted(rules)), tuple(sorted(approvers)) if approvers is not None else None),
            not_portable={str(k): str(v) for k, v in not_portable.items()},
        ))
    return Suite(str(data.get("suite", p.stem)), p, policies, tuple(cases), str(data.get("description", "")), catalog_path,
                 portability)


@dataclass(frozen=True)
class Portability:
    """Which engines an action is not portable to, and why: the automatic marks of a suite (applied to its cases,
    and by the fuzzer to every generated action). An explicit ``not_portable`` in a case file comes on top.

    * Cedar sees declared params only: an action carrying a param a YAML rule reads that the catalog does not
      declare for its tool; and String tags only: an attribute a rule reads holding something else.
    * A rule ``agt compile`` could not express in an engine (its ``agt-compile.manifest``): an action on which the
      YAML rule matches, or its condition errors, is decided differently by the twin without it.
    """

    policies: Mapping[str, str]
    params_read: list[tuple[str, str, frozenset[str] | None]]
    cedar_catalog: Catalog | None
    attributes_read: list[tuple[tuple[str, ...], str]]
    compiled: Mapping[str, list[tuple[Any, str]]] = field(default_factory=dict)
    """engine -> [(the YAML rule, the reason from the manifest)]."""

    def reasons(self, action: Action) -> dict[str, str]:
        out: dict[str, str] = {}
        if "cedar" in self.policies:
            reason = None
            if self.params_read:
                reason = _undeclared_for_cedar(action, self.params_read, self.cedar_catalog)
            if reason is None and self.attributes_read:
                reason = _non_string_attribute(action, self.attributes_read)
            if reason:
                out["cedar"] = reason
        if self.compiled:
            doc = action.document
            for engine, rules in self.compiled.items():
                if engine in out:
                    continue
                for rule, why in rules:
                    try:
                        decided = bool(rule.evaluate(doc))
                    except AgtError:
                        decided = True
                    if decided:
                        out[engine] = f"rule {rule.id!r} ({rule.source}:{rule.line}) is not portable to {engine}: {why}"
                        break
        return out


def _compiled_not_portable(suite: Path, policies: Mapping[str, str]) -> dict[str, list[tuple[Any, str]]]:
    """The rules ``agt compile`` left out of an engine's twin, from the manifest in that engine's policy paths."""
    from agt.compile.manifest import find_manifests

    found: dict[str, list[tuple[Any, str]]] = {}
    rules = None
    for engine, policy in policies.items():
        if engine == "yaml":
            continue
        try:
            manifests = find_manifests(policy)
        except (OSError, ValueError) as exc:
            raise SuiteError(f"{suite}: {exc}") from None
        for m in manifests:
            if not m.not_portable:
                continue
            if rules is None:
                if "yaml" not in policies:
                    raise SuiteError(f"{suite}: {m.path} lists rules not portable to {engine}; the suite needs the yaml policy")
                from agt.engines.yaml_policy import load_policy

                rules = {r.id: r for r in load_policy(policies["yaml"]).rules}
            for n in m.not_portable:
                if n.rule not in rules:
                    raise SuiteError(f"{suite}: {m.path} names rule {n.rule!r}, which the yaml policy does not have")
                found.setdefault(engine, []).append((rules[n.rule], n.reason))
    return found


def _params_yaml_rules_read(suite: Path, yaml_policy: str | None) -> list[tuple[str, str, frozenset[str] | None]]:
    """(param name, rule id, the tools the rule is pinned to or None) for every ``action.params.<name>`` a
    YAML rule reads; the name ``*`` when a rule reads the params as a whole."""
    if yaml_policy is None:
        return []
    from agt.engines.yaml_policy import load_policy

    try:
        rules = load_policy(yaml_policy).rules
    except PolicyLoadError as exc:
        raise SuiteError(f"{suite}: the YAML policy does not load: {exc}") from None
    read = []
    for rule in rules:
        key = index_key(rule.condition)
        tools = key.values if isinstance(key, EqualityKey) and key.path == ("action", "tool") else None
        for path in _paths(rule.condition):
            if path[:2] == ("action", "params"):
                read.append((path[2] if len(path) > 2 else "*", rule.id, tools))
    return read


def _yaml_paths(suite: Path, yaml_policy: str | None) -> list[tuple[tuple[str, ...], str]]:
    """(path, rule id) for every document path a YAML rule reads (a flat name: each path it may read)."""
    if yaml_policy is None:
        return []
    from agt.engines.yaml_policy import load_policy

    try:
        rules = load_policy(yaml_policy).rules
    except PolicyLoadError as exc:
        raise SuiteError(f"{suite}: the YAML policy does not load: {exc}") from None
    return [(path, rule.id) for rule in rules for path in _paths(rule.condition)]


def _non_string_attribute(action: Action, read: list[tuple[tuple[str, ...], str]]) -> str | None:
    """Cedar carries context.attributes as String tags only: a case whose attribute a rule reads holds something
    else there (a number, a boolean, a list) is not portable to Cedar."""
    for parts, rule in read:
        v: Any = action.context.attributes
        for part in parts:
            v = v.get(part) if isinstance(v, Mapping) else None
        if v is not None and not isinstance(v, str):
            return (f"rule {rule!r} reads context.attributes.{'.'.join(parts)}, a {type(v).__name__} here; Cedar carries "
                    "context.attributes as String tags only")
    return None


def _paths(node: Any) -> list[tuple[str, ...]]:
    if isinstance(node, ast.Path):
        return [node.parts]
    if isinstance(node, ast.FlatPath):
        return list(node.candidates)
    if isinstance(node, tuple):
        return [p for item in node for p in _paths(item)]
    if dataclasses.is_dataclass(node):
        return [p for f in dataclasses.fields(node) for p in _paths(getattr(node, f.name))]
    return []


def _cedar_catalog(suite: Path, catalog_path: str | None, cedar_policy: str | None) -> Catalog | None:
    """The catalog the suite's Cedar engine sees: the suite's, or the one beside the Cedar policy."""
    try:
        found = catalog_path or find_catalog(cedar_policy)
        return load_catalog(found) if found else None
    except PolicyLoadError as exc:
        raise SuiteError(f"{suite}: the catalog does not load: {exc}") from None


def _undeclared_for_cedar(
    action: Action, params_read: list[tuple[str, str, frozenset[str] | None]], catalog: Catalog | None
) -> str | None:
    op = action.action
    declared = catalog.params_of(op.tool) if catalog is not None else {}
    for name, rule, tools in params_read:
        if tools is not None and op.tool not in tools:
            continue  # the rule cannot match this tool
        undeclared = [p for p in sorted(op.params) if p not in declared and name in (p, "*")]
        if undeclared:
            return (
                f"rule {rule!r} reads action.params.{undeclared[0]}, which the catalog does not declare for tool "
                f"{op.tool!r}; Cedar sees declared params only"
            )
    return None
