"""The Agent Governance Toolkit policy format (``apiVersion: governance.toolkit/v1``) and the
``governance:`` config block, loaded into compiled rules. Every error names the file, line and rule."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from agt import _normalize
from agt._yaml import BoundedLoader, YamlBombError
from agt.conditions import Evaluator, Node, ast, compile_predicate, parse
from agt.decision import DEFAULT_RULE_ID, ENGINE_ERROR_ID, Effect, RuleAction
from agt.errors import ConditionSyntaxError, PolicyLoadError

API_VERSION = "governance.toolkit/v1"
POLICY_MODES = ("strict", "permissive", "audit")

STRUCTURED_OPERATORS = {
    "eq": "==", "ne": "!=", "gt": ">", "lt": "<", "gte": ">=", "lte": "<=",
    "in": "in", "not_in": "not in", "matches": "matches", "contains": "contains",
    "startswith": "startswith", "endswith": "endswith",
}

# Rule ids the governance block generates; shared with the Cedar and Rego copies of a policy.
GOVERNANCE_RULE_IDS = {
    "max_tokens_per_task": "governance.max_tokens_per_task",
    "max_tool_calls_per_task": "governance.max_tool_calls_per_task",
    "max_files_changed": "governance.max_files_changed",
    "blocked_patterns": "governance.blocked_patterns",
}
_GOVERNANCE_COUNTERS = {
    "max_tokens_per_task": "tokens_used",
    "max_tool_calls_per_task": "tool_calls",
    "max_files_changed": "files_changed",
}
_RULE_KEYS = {"name", "id", "condition", "conditions", "action", "approvers", "priority", "description", "message", "enabled",
              "critical", "stage", "limit", "override"}
_TOP_KEYS = {"apiVersion", "kind", "name", "description", "version", "default_action", "rules", "governance", "metadata", "audit",
             "agent", "agents", "scope", "extends", "conflict_strategy", "defaults", "inherit", "tool_allowlist",
             "network_allowlist", "disclaimer"}
CONFLICT_STRATEGIES = ("deny_overrides", "priority_first_match", "most_specific_wins", "allow_overrides")
SCOPES = {"global": 0, "tenant": 1, "organization": 2, "agent": 3}
AGENT_OS_VERSION = "1.0"
# AGT actions onto agt's: block is deny; log is advisory like audit and warn (recorded, never deciding).
_ACTION_ALIASES = {"block": "deny", "log": "audit"}
_STAGES = ("pre_input", "pre_tool", "post_tool", "pre_output")
# What a rule can never match: a comparison of a closed-set field with a value outside its set.
_CLOSED_SETS = {
    ("action", "kind"): ("read", "write", "delete", "execute", "network", "message", "delegate"),
    ("context", "stage"): _STAGES,
}
# Refused keys, each with what to write instead (docs/agt-compatibility.md, "Refused").
_REFUSED_TOP = {
    "capabilities": "agt does not read a capability list from a policy; grant tools with rules on tool_name",
}
_REFUSED_RULE = {
    "ruleAction": "it is the key of AGT's TypeScript engine; AGT's Python loader ignores it and the rule then denies; "
                  "write action: <allow|deny|require_approval|...>",
}


@dataclass(frozen=True)
class Rule:
    id: str
    action: RuleAction
    condition_text: str
    condition: Node = field(repr=False, compare=False)
    evaluate: Evaluator = field(repr=False, compare=False)
    message: str = ""
    approvers: tuple[str, ...] = ()
    priority: int = 0
    critical: bool = False
    source: str = ""
    line: int | None = None
    specificity: int = 0
    """The AGT scope of the rule's document (global 0 … agent 3), for most_specific_wins."""


@dataclass(frozen=True)
class GovernanceSettings:
    enabled: bool = True
    max_tokens_per_task: int | None = None
    max_tool_calls_per_task: int | None = None
    max_files_changed: int | None = None
    blocked_patterns: tuple[str, ...] = ()
    policy_mode: str = "strict"


@dataclass(frozen=True)
class YamlPolicy:
    name: str
    default: Effect
    rules: tuple[Rule, ...]
    governance: GovernanceSettings | None
    revision: str
    sources: tuple[str, ...]
    audit_mask: tuple[str, ...] = ()
    """Param and attribute names whose values the audit log masks (``audit: {mask: [...]}``)."""
    conflict_strategy: str = "deny_overrides"
    """How matching rules combine: agt's deny > approval > allow, or one of AGT's priority strategies."""

    @property
    def mode(self) -> str:
        return self.governance.policy_mode if self.governance else "strict"


# --- YAML with line numbers ---------------------------------------------------------------------


class _LineDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(BoundedLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, bool, float)) or isinstance(key, bool):
            raise PolicyLoadError(f"mapping keys must be text, got {key!r}", line=key_node.start_mark.line + 1)
        if key in result:
            raise PolicyLoadError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError(f"cannot read policy: {exc}", file=str(path)) from None
    try:
        return yaml.load(text, Loader=_LineLoader), text  # noqa: S506 - a SafeLoader subclass
    except PolicyLoadError as exc:
        raise PolicyLoadError(exc.message, file=str(path), line=exc.line) from None
    except YamlBombError as exc:
        raise PolicyLoadError(f"refused YAML: {exc.problem}", file=str(path), line=exc.problem_mark.line + 1) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise PolicyLoadError(f"malformed YAML: {exc.problem or exc}", file=str(path), line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyLoadError(f"malformed YAML: {exc}", file=str(path)) from None
    except RecursionError:
        raise PolicyLoadError("YAML nested too deeply", file=str(path)) from None


# --- loading -------------------------------------------------------------------------------------


def policy_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        # catalog.yaml beside the policies is the tool catalog (agt.catalog), not a policy.
        files = sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file() and f.name != "catalog.yaml")
        if not files:
            raise PolicyLoadError("no .yaml or .yml policy files in directory", file=str(p))
        return files
    if not p.exists():
        raise PolicyLoadError("policy file does not exist", file=str(p))
    return [p]


def load_policy(path: str | Path) -> YamlPolicy:
    """Load one policy file, or every ``*.yaml``/``*.yml`` in a directory as one policy."""
    files = policy_files(path)
    rules: list[Rule] = []
    defaults: list[tuple[Effect, str]] = []
    governance: GovernanceSettings | None = None
    names: list[str] = []
    masks: list[str] = []
    strategies: list[tuple[str, str]] = []
    scoped: list[tuple[str, ...] | None] = []
    limits_only: list[bool] = []
    digest = hashlib.sha256()
    for f in files:
        data, text = _read_yaml(f)
        digest.update(f.name.encode() + b"\0" + text.encode() + b"\0")
        doc = _parse_document(data, str(f))
        if doc.parents:
            inherited: list[Rule] = []
            for parent in doc.parents:
                for r in _load_parent(parent, f, (f.resolve(),)):
                    if all(r.id != x.id for x in inherited):
                        inherited.append(r)
            for r in doc.rules:
                first = next((p for p in inherited if p.id == r.id), None)
                if first is not None and first.action is RuleAction.DENY and r.action is not RuleAction.DENY:
                    raise PolicyLoadError(
                        f"weakens the deny rule it inherits from {first.source}:{first.line}; AGT ignores such a rule, "
                        f"agt refuses it: rename it, or remove it", file=r.source, line=r.line, rule=r.id)
            doc.rules[:0] = [r for r in inherited if all(r.id != c.id for c in doc.rules)]
            digest.update(b"extends\0" + "\0".join(doc.parents).encode())
        strategies.append((doc.strategy, str(f)))
        scoped.append(doc.agents)
        limits_only.append(doc.limits_only)
        names.append(doc.name)
        if doc.default is not None:
            defaults.append((doc.default, str(f)))
        if doc.governance is not None:
            if governance is not None:
                raise PolicyLoadError("a second 'governance' block; keep one per policy", file=str(f))
            governance = doc.governance
        rules.extend(doc.rules)
        masks.extend(doc.audit_mask)
    if len({d for d, _ in defaults}) > 1:
        where = ", ".join(f"{src}: {d.value}" for d, src in defaults)
        raise PolicyLoadError(f"files disagree on default_action ({where})", file=str(path))
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            first = seen[rule.id]
            raise PolicyLoadError(
                f"duplicate rule id (first defined at {first.source}:{first.line})",
                file=rule.source, line=rule.line, rule=rule.id,
            )
        seen[rule.id] = rule
    # Only limits (the daemon's governance block, no rules anywhere): default allow, as in AGT's daemon.
    default = defaults[0][0] if defaults else (Effect.ALLOW if limits_only and all(limits_only) else Effect.DENY)
    if scoped and all(a is not None for a in scoped):
        agents = sorted({a for group in scoped for a in group})  # type: ignore[union-attr]
        text = f"agent_id not in {json.dumps(agents)}"
        node = parse(text)
        rules.append(Rule(id=NO_APPLICABLE_POLICY_ID, action=RuleAction.DENY, condition_text=text, condition=node,
                          evaluate=compile_predicate(node, text), critical=True, source=str(files[0]),
                          message=f"no policy applies to this agent (the policy names agents {', '.join(agents)})"))
    if len({st for st, _ in strategies}) > 1:
        where = ", ".join(f"{src}: {st}" for st, src in strategies)
        raise PolicyLoadError(f"files disagree on conflict_strategy ({where}); use one", file=str(path))
    return YamlPolicy(
        conflict_strategy=strategies[0][0] if strategies else "deny_overrides",
        name=names[0] if len(names) == 1 else Path(path).name,
        default=default,
        rules=tuple(rules),
        governance=governance,
        revision="sha256:" + digest.hexdigest()[:16],
        sources=tuple(str(f) for f in files),
        audit_mask=tuple(sorted(set(masks))),
    )


@dataclass(frozen=True)
class _Document:
    name: str
    default: Effect | None
    rules: list[Rule]
    governance: GovernanceSettings | None
    audit_mask: tuple[str, ...] = ()
    strategy: str = "deny_overrides"
    parents: tuple[str, ...] = ()
    agents: tuple[str, ...] | None = None
    limits_only: bool = False
    """A daemon ``governance:`` block standing alone: limits, not an allow-list."""


NO_APPLICABLE_POLICY_ID = "no-applicable-policy"
"""The rule a policy whose every document names its ``agents`` gets: deny any other agent, as AGT does when no
policy applies to an agent (fail closed), whatever the documents' default."""


def _load_parent(ref: str, child: Path, stack: tuple[Path, ...]) -> list[Rule]:
    """The rules of an ``extends`` parent, itself resolved; inside the child's directory, no cycles (as AGT)."""
    base = child.parent.resolve()
    target = (base / ref).resolve()
    if target != base and base not in target.parents:
        raise PolicyLoadError(f"extends {ref!r} resolves outside the policy directory {base}", file=str(child))
    if target in stack:
        raise PolicyLoadError("circular extends: " + " -> ".join(str(p) for p in (*stack, target)), file=str(child))
    if not target.is_file():
        raise PolicyLoadError(f"extends {ref!r}: no such file {target}", file=str(child))
    data, _ = _read_yaml(target)
    doc = _parse_document(data, str(target))
    rules: list[Rule] = []
    for parent in doc.parents:
        rules.extend(r for r in _load_parent(parent, target, (*stack, target)) if all(r.id != x.id for x in rules))
    rules.extend(r for r in doc.rules if all(r.id != x.id for x in rules))
    return rules


def _parse_document(data: Any, source: str) -> _Document:
    if data is None:
        raise PolicyLoadError("the file is empty", file=source)
    if not isinstance(data, dict):
        raise PolicyLoadError(f"a policy file must be a mapping, got {type(data).__name__}", file=source, line=1)
    lines = getattr(data, "key_lines", {})
    for key, instead in _REFUSED_TOP.items():
        if key in data:
            raise PolicyLoadError(f"'{key}' is not supported: {instead}", file=source, line=lines.get(key))
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise PolicyLoadError(
            f"unknown top-level key {unknown[0]!r}; expected some of {', '.join(sorted(_TOP_KEYS))}",
            file=source, line=lines.get(unknown[0]),
        )
    api = data.get("apiVersion")
    rules_raw = data.get("rules") if isinstance(data.get("rules"), list) else []
    structured_only = bool(rules_raw) and all(isinstance(r, dict) and isinstance(r.get("condition"), dict) for r in rules_raw)
    text_rules = any(isinstance(r, dict) and isinstance(r.get("condition"), str) for r in rules_raw)
    # agent_os's format: no apiVersion, version "1.0", structured conditions, a defaults block, first match by priority.
    agent_os = api is None and not text_rules and (data.get("version") == AGENT_OS_VERSION or "defaults" in data or structured_only)
    if api in (None, "1.0") and text_rules:
        # agentmesh reads a text-condition file without apiVersion, or with the deprecated "1.0", as governance.toolkit/v1.
        api = API_VERSION
    if api is None and "version" in data and not isinstance(data["version"], str):
        raise PolicyLoadError(f"version must be text such as \"1.0\" (quoted), got {data['version']!r}",
                              file=source, line=lines.get("version"))
    if "rules" in data and api != API_VERSION and not agent_os:
        raise PolicyLoadError(
            f"apiVersion must be {API_VERSION!r} (or, for agent_os's format, no apiVersion and version: \"1.0\"), got {api!r}",
            file=source, line=lines.get("apiVersion", 1)
        )
    if agent_os:
        for key in ("default_action", "agent", "agents", "extends", "governance"):
            if key in data:
                raise PolicyLoadError(f"'{key}' belongs to the governance.toolkit/v1 format; add apiVersion: {API_VERSION}"
                                      " or use agent_os's defaults: {action: ...}", file=source, line=lines.get(key))
    elif "defaults" in data or "tool_allowlist" in data or "network_allowlist" in data or "inherit" in data:
        key = next(k for k in ("defaults", "tool_allowlist", "network_allowlist", "inherit") if k in data)
        raise PolicyLoadError(f"'{key}' belongs to agent_os's version \"1.0\" format; in governance.toolkit/v1 write "
                              "default_action: and rules", file=source, line=lines.get(key))
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise PolicyLoadError("'name' must be text", file=source, line=lines.get("name"))
    default: Effect | None = None
    if agent_os:
        default = Effect.ALLOW  # agent_os's default when no rule matches (its spec, 3.2)
        d = data.get("defaults") or {}
        dl = getattr(d, "key_lines", {})
        if not isinstance(d, dict):
            raise PolicyLoadError("'defaults' must be a mapping", file=source, line=lines.get("defaults"))
        known = {"action", "max_tokens", "max_tool_calls", "confidence_threshold", "max_cpu", "max_memory_mb",
                 "timeout_seconds", "network_default"}
        extra = sorted(set(map(str, d)) - known)
        if extra:
            raise PolicyLoadError(
                f"defaults.{extra[0]} is not one of agent_os's defaults ({', '.join(sorted(known))}): AGT ignores it silently, "
                f"agt refuses it; to enforce it write a rule, e.g. {{name: {extra[0]}, condition: {{field: ..., operator: ..., "
                f"value: {d[extra[0]]!r}}}, action: deny}}", file=source, line=dl.get(extra[0], lines.get("defaults")))
        raw = d.get("action", "allow")
        if raw not in ("allow", "deny", "audit", "block"):
            raise PolicyLoadError(f"defaults.action must be allow, deny, audit or block, got {raw!r}",
                                  file=source, line=dl.get("action", lines.get("defaults")))
        default = Effect.ALLOW if raw in ("allow", "audit") else Effect.DENY  # audit allows (agent_os spec 6.1)
    if "default_action" in data:
        raw = data["default_action"]
        if raw not in ("allow", "deny"):
            raise PolicyLoadError(
                f"default_action must be 'allow' or 'deny', got {raw!r}", file=source, line=lines.get("default_action")
            )
        default = Effect(raw)
    rules_data = data.get("rules", [])
    if rules_data is None:
        rules_data = []
    if not isinstance(rules_data, list):
        raise PolicyLoadError("'rules' must be a list", file=source, line=lines.get("rules"))
    strategy = data.get("conflict_strategy", "priority_first_match" if agent_os else "deny_overrides")
    if strategy not in CONFLICT_STRATEGIES:
        raise PolicyLoadError(f"conflict_strategy must be one of {', '.join(CONFLICT_STRATEGIES)}, got {strategy!r}",
                              file=source, line=lines.get("conflict_strategy"))
    scope = data.get("scope", "global") if not agent_os else "global"
    if agent_os and data.get("scope") is not None:
        raise PolicyLoadError("agent_os's 'scope' (a path glob for folder-level discovery) is not supported: agt loads no "
                              "governance.yaml chain; put the glob in a rule instead, e.g. {field: path, operator: matches, "
                              "value: '^src/'}", file=source, line=lines.get("scope"))
    if scope not in SCOPES:
        raise PolicyLoadError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r} (AGT would silently treat it as global)",
                              file=source, line=lines.get("scope"))
    agents = _agents(data, source, lines)
    rules = [_parse_rule(r, source, i, lines.get("rules"), agent_os=agent_os, agents=agents, specificity=SCOPES[scope])
             for i, r in enumerate(rules_data)]
    allowlist = data.get("tool_allowlist") or []
    if not isinstance(allowlist, list) or not all(isinstance(t, str) for t in allowlist):
        raise PolicyLoadError("tool_allowlist must be a list of tool names", file=source, line=lines.get("tool_allowlist"))
    if allowlist:
        text = f"tool_name not in {json.dumps(sorted(allowlist))}"
        node = parse(text)
        rules.append(Rule(id="tool_allowlist", action=RuleAction.DENY, condition_text=text, condition=node,
                          evaluate=compile_predicate(node, text), message="the tool is not on the policy's tool_allowlist",
                          priority=10**9, source=source, line=lines.get("tool_allowlist")))
    if "inherit" in data and not isinstance(data["inherit"], bool):
        raise PolicyLoadError("inherit must be true or false", file=source, line=lines.get("inherit"))
    parents = data.get("extends") or []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise PolicyLoadError("extends must be a file path or a list of them", file=source, line=lines.get("extends"))
    governance = None
    rule_ids = {r.id for r in rules}
    if "governance" in data:
        governance = _parse_governance(data["governance"], source, lines.get("governance"))
        rules.extend(r for r in _governance_rules(governance, source, lines.get("governance")) if r.id not in rule_ids)
    limits_only = "governance" in data and "rules" not in data and default is None
    mask: tuple[str, ...] = ()
    if "audit" in data:
        audit = data["audit"]
        raw = audit.get("mask", []) if isinstance(audit, dict) else None
        if not isinstance(audit, dict) or set(audit) - {"mask"} or not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
            raise PolicyLoadError("'audit' takes one key, mask: a list of param names to mask", file=source, line=lines.get("audit"))
        mask = tuple(raw)
    return _Document(name, default, rules, governance, mask, strategy, tuple(parents), agents, limits_only)


def _agents(data: Any, source: str, lines: Mapping[str, int]) -> tuple[str, ...] | None:
    """AGT's ``agent:``/``agents:``: the agent ids the document's rules apply to; None for every agent (or ``*``)."""
    found: list[str] = []
    for key in ("agent", "agents"):
        if key not in data or data[key] is None:
            continue
        v = data[key]
        values = [v] if isinstance(v, str) else v
        if not isinstance(values, list) or not all(isinstance(a, str) and a for a in values):
            raise PolicyLoadError(f"'{key}' must be an agent id or a list of them", file=source, line=lines.get(key))
        found.extend(values)
    if not found or "*" in found:
        return None
    return tuple(sorted(set(found)))


def _parse_rule(data: Any, source: str, index: int, list_line: int | None, *, agent_os: bool = False,
                agents: tuple[str, ...] | None = None, specificity: int = 0) -> Rule:
    if not isinstance(data, dict):
        raise PolicyLoadError(f"rule #{index + 1} must be a mapping", file=source, line=list_line)
    line = getattr(data, "line", None)
    lines = getattr(data, "key_lines", {})
    rid = data.get("name", data.get("id"))
    if not isinstance(rid, str) or not rid.strip():
        raise PolicyLoadError(f"rule #{index + 1} needs a 'name' (its rule id)", file=source, line=line)
    if rid in (DEFAULT_RULE_ID, ENGINE_ERROR_ID):
        raise PolicyLoadError(f"{rid!r} is a reserved rule id", file=source, line=line, rule=rid)
    for key, instead in _REFUSED_RULE.items():
        if key in data:
            raise PolicyLoadError(f"'{key}' is not a rule key: {instead}", file=source, line=lines.get(key, line), rule=rid)
    unknown = sorted(set(map(str, data)) - _RULE_KEYS)
    if unknown:
        raise PolicyLoadError(
            f"unknown key {unknown[0]!r}; rules take {', '.join(sorted(_RULE_KEYS))}",
            file=source, line=lines.get(unknown[0], line), rule=rid,
        )
    if "limit" in data:
        raise PolicyLoadError(
            f"per-rule 'limit' ({data['limit']!r}) is not supported: agt keeps no per-rule rate windows in the engine; write "
            "the budget as a rule on a runtime counter (context.tool_calls > N) or a governance: block limit",
            file=source, line=lines.get("limit", line), rule=rid)
    if data.get("override"):
        raise PolicyLoadError("'override: true' replaces a parent rule in agent_os's folder merge, which agt does not do; "
                              "remove it and edit the rule in place", file=source, line=lines.get("override", line), rule=rid)
    # AGT's default action is deny (agentmesh); agent_os requires one.
    raw_action = data.get("action", "deny" if not agent_os else None)
    raw_action = _ACTION_ALIASES.get(raw_action, raw_action) if isinstance(raw_action, str) else raw_action
    try:
        action = RuleAction(raw_action)
    except ValueError:
        allowed = ", ".join([*(a.value for a in RuleAction), *_ACTION_ALIASES])
        raise PolicyLoadError(
            f"action must be one of {allowed}, got {raw_action!r}", file=source, line=lines.get("action", line), rule=rid
        ) from None
    cond_key = "condition" if "condition" in data else "conditions"
    if cond_key not in data:
        raise PolicyLoadError("rule has no 'condition'", file=source, line=line, rule=rid)
    cond_line = lines.get(cond_key, line)
    try:
        if agent_os and not isinstance(data[cond_key], dict):
            raise _StructuredError("agent_os's version \"1.0\" format takes one {field, operator, value} condition; "
                                   f"for a text condition use apiVersion: {API_VERSION}")
        node, text = _condition_node(data[cond_key], agent_os=agent_os)
        _check_closed_sets(node)
        stage = data.get("stage")
        if stage is not None:
            if stage not in _STAGES:
                raise _StructuredError(f"stage must be one of {', '.join(_STAGES)}, got {stage!r}")
            node, text = ast.And((ast.Compare("==", ast.Path(("context", "stage")), ast.Literal(stage)), node)), \
                f"context.stage == {json.dumps(stage)} and ({text})"
        if agents is not None:
            node = ast.And((ast.Compare("in", ast.Path(("agent", "id")), ast.ListExpr(tuple(ast.Literal(a) for a in agents))), node))
            text = f"agent_id in {json.dumps(list(agents))} and ({text})"
        evaluate = compile_predicate(node, text)
    except ConditionSyntaxError as exc:
        raise PolicyLoadError(f"condition: {exc}", file=source, line=cond_line, rule=rid) from None
    except _StructuredError as exc:
        raise PolicyLoadError(f"condition: {exc}", file=source, line=cond_line, rule=rid) from None
    approvers = data.get("approvers", [])
    if isinstance(approvers, str):
        approvers = [approvers]
    if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
        raise PolicyLoadError("approvers must be a list of names", file=source, line=lines.get("approvers", line), rule=rid)
    if approvers and action is not RuleAction.REQUIRE_APPROVAL:
        raise PolicyLoadError(
            "approvers only apply to action: require_approval", file=source, line=lines.get("approvers", line), rule=rid
        )
    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise PolicyLoadError("priority must be a whole number", file=source, line=lines.get("priority", line), rule=rid)
    message = data.get("message", data.get("description", ""))
    if not isinstance(message, str):
        raise PolicyLoadError("message must be text", file=source, line=lines.get("message", line), rule=rid)
    enabled = data.get("enabled", True)
    critical = data.get("critical", False)
    for key, value in (("enabled", enabled), ("critical", critical)):
        if not isinstance(value, bool):
            raise PolicyLoadError(f"{key} must be true or false", file=source, line=lines.get(key, line), rule=rid)
    if not enabled:
        # A disabled rule still has to be valid, but never matches.
        evaluate = _never
    return Rule(
        id=rid, action=action, condition_text=text, condition=node, evaluate=evaluate, message=message,
        approvers=tuple(sorted(set(approvers))), priority=priority, critical=critical, source=source, line=line,
        specificity=specificity,
    )


_WHOLE_NUMBER_FIELDS = frozenset({("context", "tokens_used"), ("context", "tool_calls"), ("context", "files_changed"),
                                   ("agent", "trust_score")})


def _check_closed_sets(node: Node) -> None:
    """A comparison that can never match is refused: a closed-set field (kind, stage) against a value outside the set,
    or a counter or trust score (whole numbers) against a value that is not a number."""
    stack = [node]
    while stack:
        n = stack.pop()
        stack.extend(ast.children(n))
        if (isinstance(n, ast.Compare) and isinstance(n.left, ast.Path) and n.left.parts in _WHOLE_NUMBER_FIELDS
                and n.op in ("==", "in", "<", "<=", ">", ">=")):
            lits = [n.right.value] if isinstance(n.right, ast.Literal) else (
                [i.value for i in n.right.items if isinstance(i, ast.Literal)] if isinstance(n.right, ast.ListExpr) else [])
            bad = [v for v in lits if isinstance(v, bool) or not isinstance(v, (int, Decimal))]
            if bad:
                raise _StructuredError(f"{'.'.join(n.left.parts)} is a whole number, never {bad[0]!r}: this comparison can "
                                       f"never match; write a number, e.g. {'.'.join(n.left.parts)} {n.op} 100")
        if not (isinstance(n, ast.Compare) and isinstance(n.left, ast.Path) and n.left.parts in _CLOSED_SETS):
            continue
        allowed = _CLOSED_SETS[n.left.parts]
        if n.op == "==" and isinstance(n.right, ast.Literal):
            values = [n.right.value]
        elif n.op == "in" and isinstance(n.right, ast.ListExpr):
            values = [i.value for i in n.right.items if isinstance(i, ast.Literal)]
        else:
            continue
        bad = [v for v in values if v not in allowed]
        if bad:
            field = ".".join(n.left.parts)
            hint = " (AGT's action.type is the tool's own verb: write action.type)" if field == "action.kind" else ""
            raise _StructuredError(f"{field} is never {bad[0]!r}: it is one of {', '.join(allowed)}, so this comparison "
                                   f"can never match{hint}")


def _never(doc: Mapping[str, Any]) -> bool:
    return False


class _StructuredError(Exception):
    pass


def _condition_node(cond: Any, agent_os: bool = False) -> tuple[Node, str]:
    """A condition is a string, a structured ``{field, operator, value}`` mapping, or a list of them (all must hold)."""
    if isinstance(cond, str):
        return parse(cond), cond
    if isinstance(cond, dict):
        return _structured(cond, agent_os)
    if isinstance(cond, list) and cond:
        parts = [_condition_node(c, agent_os) for c in cond]
        return ast.And(tuple(n for n, _ in parts)), " and ".join(f"({t})" for _, t in parts)
    raise _StructuredError(f"must be text, a {{field, operator, value}} mapping, or a list of them; got {cond!r}")


def _structured(cond: dict, agent_os: bool = False) -> tuple[Node, str]:
    missing = [k for k in ("field", "operator") if k not in cond]
    if missing:
        raise _StructuredError(f"structured condition needs {', '.join(missing)}")
    extra = sorted(set(cond) - {"field", "operator", "value"})
    if extra:
        raise _StructuredError(f"unknown key {extra[0]!r} in structured condition")
    op = cond["operator"]
    if op not in STRUCTURED_OPERATORS:
        raise _StructuredError(f"unknown operator {op!r}; use one of {', '.join(STRUCTURED_OPERATORS)}")
    field_text = cond["field"]
    if not isinstance(field_text, str):
        raise _StructuredError("field must be text")
    path = parse(field_text)
    if not isinstance(path, (ast.Path, ast.FlatPath)):
        raise _StructuredError(f"field must be a field path, got {field_text!r}")
    value = cond.get("value")
    if isinstance(value, dict):
        raise _StructuredError("value must be a scalar or a list")
    if isinstance(value, list):
        right: Node = ast.ListExpr(tuple(ast.Literal(v) for v in value))
    else:
        right = ast.Literal(value)
    symbol = STRUCTURED_OPERATORS[op]
    if symbol == "matches" and not isinstance(value, str):
        raise _StructuredError("operator 'matches' needs a string value (a regular expression)")
    text = f"{field_text} {symbol} {json.dumps(value)}"
    if symbol in ("!=", "not in") and not agent_os:
        # As in text conditions: a missing field is unequal to everything. agent_os's spec (5.2) instead makes every
        # condition on a missing field false, ne and not_in included: Compare("!=") means exactly that.
        return ast.Not(ast.Compare("==" if symbol == "!=" else "in", path, right)), text
    return ast.Compare(symbol, path, right), text


def _parse_governance(data: Any, source: str, line: int | None) -> GovernanceSettings:
    if not isinstance(data, dict):
        raise PolicyLoadError("'governance' must be a mapping", file=source, line=line)
    lines = getattr(data, "key_lines", {})
    known = {"enabled", "max_tokens_per_task", "max_tool_calls_per_task", "max_files_changed", "blocked_patterns", "policy_mode"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise PolicyLoadError(
            f"unknown governance key {unknown[0]!r}; expected some of {', '.join(sorted(known))}",
            file=source, line=lines.get(unknown[0], line),
        )
    values: dict[str, Any] = {}
    for key in ("max_tokens_per_task", "max_tool_calls_per_task", "max_files_changed"):
        if key in data and data[key] is not None:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise PolicyLoadError(f"governance.{key} must be a whole number ≥ 0", file=source, line=lines.get(key, line))
            values[key] = v
    patterns = data.get("blocked_patterns", []) or []
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise PolicyLoadError("governance.blocked_patterns must be a list of non-empty text", file=source, line=lines.get("blocked_patterns", line))
    mode = data.get("policy_mode", "strict")
    if mode not in POLICY_MODES:
        raise PolicyLoadError(f"governance.policy_mode must be one of {', '.join(POLICY_MODES)}, got {mode!r}", file=source, line=lines.get("policy_mode", line))
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PolicyLoadError("governance.enabled must be true or false", file=source, line=lines.get("enabled", line))
    return GovernanceSettings(enabled=enabled, blocked_patterns=tuple(patterns), policy_mode=mode, **values)


def _governance_rules(g: GovernanceSettings, source: str, line: int | None) -> list[Rule]:
    if not g.enabled:
        return []
    rules: list[Rule] = []
    for key, counter in _GOVERNANCE_COUNTERS.items():
        limit = getattr(g, key)
        if limit is None:
            continue
        text = f"context.{counter} > {limit}"
        node = parse(text)
        rules.append(Rule(
            id=GOVERNANCE_RULE_IDS[key], action=RuleAction.DENY, condition_text=text, condition=node,
            evaluate=compile_predicate(node, text), message=f"{counter} over the limit of {limit} per task",
            critical=True, source=source, line=line,
        ))
    if g.blocked_patterns:
        folded = sorted({_normalize.canonical_text(p) for p in g.blocked_patterns})
        node = ast.Or(tuple(ast.Compare("contains", ast.Path(("action", "params_text")), ast.Literal(p)) for p in folded))
        text = " or ".join(f"params_text contains {json.dumps(p)}" for p in folded)
        rules.append(Rule(
            id=GOVERNANCE_RULE_IDS["blocked_patterns"], action=RuleAction.DENY, condition_text=text, condition=node,
            evaluate=compile_predicate(node, text), message="a param contains a blocked pattern",
            critical=True, source=source, line=line,
        ))
    return rules
