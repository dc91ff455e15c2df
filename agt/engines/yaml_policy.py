"""The Agent Governance Toolkit policy format (``apiVersion: governance.toolkit/v1``) and the
``governance:`` config block, loaded into compiled rules. Every error names the file, line and rule."""

from __future__ import annotations

import hashlib
import json
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
_RULE_KEYS = {"name", "id", "condition", "conditions", "action", "approvers", "priority", "description", "message", "enabled", "critical"}
_TOP_KEYS = {"apiVersion", "kind", "name", "description", "version", "default_action", "rules", "governance", "metadata", "audit"}


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
    digest = hashlib.sha256()
    for f in files:
        data, text = _read_yaml(f)
        digest.update(f.name.encode() + b"\0" + text.encode() + b"\0")
        doc = _parse_document(data, str(f))
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
    default = defaults[0][0] if defaults else Effect.DENY
    return YamlPolicy(
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


def _parse_document(data: Any, source: str) -> _Document:
    if data is None:
        raise PolicyLoadError("the file is empty", file=source)
    if not isinstance(data, dict):
        raise PolicyLoadError(f"a policy file must be a mapping, got {type(data).__name__}", file=source, line=1)
    lines = getattr(data, "key_lines", {})
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise PolicyLoadError(
            f"unknown top-level key {unknown[0]!r}; expected some of {', '.join(sorted(_TOP_KEYS))}",
            file=source, line=lines.get(unknown[0]),
        )
    api = data.get("apiVersion")
    if "rules" in data and api != API_VERSION:
        raise PolicyLoadError(
            f"apiVersion must be {API_VERSION!r}, got {api!r}", file=source, line=lines.get("apiVersion", 1)
        )
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise PolicyLoadError("'name' must be text", file=source, line=lines.get("name"))
    default: Effect | None = None
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
    rules = [_parse_rule(r, source, i, lines.get("rules")) for i, r in enumerate(rules_data)]
    governance = None
    rule_ids = {r.id for r in rules}
    if "governance" in data:
        governance = _parse_governance(data["governance"], source, lines.get("governance"))
        rules.extend(r for r in _governance_rules(governance, source, lines.get("governance")) if r.id not in rule_ids)
    mask: tuple[str, ...] = ()
    if "audit" in data:
        audit = data["audit"]
        raw = audit.get("mask", []) if isinstance(audit, dict) else None
        if not isinstance(audit, dict) or set(audit) - {"mask"} or not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
            raise PolicyLoadError("'audit' takes one key, mask: a list of param names to mask", file=source, line=lines.get("audit"))
        mask = tuple(raw)
    return _Document(name, default, rules, governance, mask)


def _parse_rule(data: Any, source: str, index: int, list_line: int | None) -> Rule:
    if not isinstance(data, dict):
        raise PolicyLoadError(f"rule #{index + 1} must be a mapping", file=source, line=list_line)
    line = getattr(data, "line", None)
    lines = getattr(data, "key_lines", {})
    rid = data.get("name", data.get("id"))
    if not isinstance(rid, str) or not rid.strip():
        raise PolicyLoadError(f"rule #{index + 1} needs a 'name' (its rule id)", file=source, line=line)
    if rid in (DEFAULT_RULE_ID, ENGINE_ERROR_ID):
        raise PolicyLoadError(f"{rid!r} is a reserved rule id", file=source, line=line, rule=rid)
    unknown = sorted(set(map(str, data)) - _RULE_KEYS)
    if unknown:
        raise PolicyLoadError(
            f"unknown key {unknown[0]!r}; rules take {', '.join(sorted(_RULE_KEYS))}",
            file=source, line=lines.get(unknown[0], line), rule=rid,
        )
    raw_action = data.get("action")
    try:
        action = RuleAction(raw_action)
    except ValueError:
        allowed = ", ".join(a.value for a in RuleAction)
        raise PolicyLoadError(
            f"action must be one of {allowed}, got {raw_action!r}", file=source, line=lines.get("action", line), rule=rid
        ) from None
    cond_key = "condition" if "condition" in data else "conditions"
    if cond_key not in data:
        raise PolicyLoadError("rule has no 'condition'", file=source, line=line, rule=rid)
    cond_line = lines.get(cond_key, line)
    try:
        node, text = _condition_node(data[cond_key])
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
    )


def _never(doc: Mapping[str, Any]) -> bool:
    return False


class _StructuredError(Exception):
    pass


def _condition_node(cond: Any) -> tuple[Node, str]:
    """A condition is a string, a structured ``{field, operator, value}`` mapping, or a list of them (all must hold)."""
    if isinstance(cond, str):
        return parse(cond), cond
    if isinstance(cond, dict):
        return _structured(cond)
    if isinstance(cond, list) and cond:
        parts = [_condition_node(c) for c in cond]
        return ast.And(tuple(n for n, _ in parts)), " and ".join(f"({t})" for _, t in parts)
    raise _StructuredError(f"must be text, a {{field, operator, value}} mapping, or a list of them; got {cond!r}")


def _structured(cond: dict) -> tuple[Node, str]:
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
    if not isinstance(path, ast.Path):
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
