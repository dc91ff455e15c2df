"""Facts about one deployment, checked rather than claimed: each says what holds, and why, in words.

A fact's ``ok`` is True (holds), False (does not) or None (does not apply here: an OPA fact for the yaml
engine, an MCP fact without an MCP proxy, an audit log with no records yet). Policy facts are *probes*:
the loaded engine decides actions agt makes up, so "default deny" means "a tool no rule mentions was
denied", on every engine alike, not "the file says default: deny".
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

FACTS: dict[str, str] = {
    "policy.default_deny": "a call to a tool no rule mentions is denied (the policy's default is deny)",
    "policy.budget_rules": "a call far over any per-task budget is denied by a rule, or rate limits are configured",
    "policy.approval_rules": "the policy has rules that ask for a human approval",
    "policy.files_protected": "the policy, catalog and registry files (and their directories) are not writable by group or others",
    "catalog.present": "a tool catalog types the tools' params",
    "mode.strict": "the enforcement mode is strict (permissive and audit run denied calls)",
    "state.persistent": "counters and rate windows survive a restart (sqlite or redis state)",
    "approvals.registry": "an approver registry is configured, loads, and names at least one approver",
    "audit.log": "an audit log is configured",
    "audit.key_outside_log": "the checkpoint signing key exists outside the log directory",
    "audit.key_protected": "the signing key is readable by its owner only",
    "audit.trusted_public_key": "a trusted public key is configured outside the log directory and matches the signing key",
    "audit.witness": "checkpoints are copied to a witness outside the log directory",
    "audit.verifies": "the audit log verifies strictly against the trusted key (and the witness)",
    "opa.control_plane": "OPA's policy and data APIs are closed to whoever can reach OPA",
    "identity.required": "every call must carry a signed action envelope",
    "identity.delegation": "every call must carry a delegation chain rooted in a configured trusted root",
    "output.check": "an output policy checks tool results before the agent sees them",
    "mcp.hide_denied": "the MCP proxy leaves out of tools/list the tools an agent can never call",
}
"""Every fact ``agt verify`` computes: id -> what it means when it holds."""

PROBE_AGENT = "agt-verify-probe"
PROBE_TOOL = "agt_verify_unlisted_tool"
"""A tool name no policy mentions: what the policy does with it is its default."""
OVER_BUDGET = {"tool_calls": 1_000_000, "tokens_used": 1_000_000_000, "files_changed": 1_000_000}


@dataclass(frozen=True)
class Fact:
    id: str
    ok: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "detail": self.detail}


# --- files ---------------------------------------------------------------------------------------


def loose_modes(paths: Iterable[Path]) -> list[str]:
    """Files (and the directories holding them) that group or others may write, as ``path (mode 0o664)``."""
    found: dict[str, str] = {}
    for p in paths:
        for target in (p, p.parent):
            try:
                mode = target.stat().st_mode
            except OSError:
                continue
            sticky_dir = stat.S_ISDIR(mode) and mode & stat.S_ISVTX  # /tmp-like: others cannot replace our files
            if mode & 0o022 and not sticky_dir:
                found.setdefault(str(target), f"{target} (mode {stat.S_IMODE(mode):o})")
    return list(found.values())


def policy_sources(policy: Path) -> list[Path]:
    if policy.is_dir():
        return sorted(p for p in policy.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".cedar",
                                                                                  ".cedarschema", ".rego", ".json"))
    return [policy]


# --- the policy probes ---------------------------------------------------------------------------


def _probe(engine: Any, **counters: int) -> Any:
    """The engine's decision on a call to :data:`PROBE_TOOL` by an agent with the trust score a Governor gives
    an agent it does not know yet, as the policy gate would see it."""
    from agt.action import Agent, Context, from_call
    from agt.runtime.trust import TrustManager

    agent = Agent(id=PROBE_AGENT, trust_score=TrustManager().score(PROBE_AGENT))
    return engine.evaluate(from_call(PROBE_TOOL, {}, agent=agent, context=Context(**counters)))


def default_deny(engine: Any) -> Fact:
    decision = _probe(engine)
    reasons = ", ".join(decision.rule_ids) or "no reason"
    if decision.is_engine_error:
        return Fact("policy.default_deny", False, f"the engine could not decide a probe call ({reasons}): fix the engine first")
    if decision.effect.value == "allow":
        return Fact("policy.default_deny", False,
                    f"a call to a tool no rule mentions ({PROBE_TOOL}) is allowed ({reasons}): the policy's default is "
                    "allow, so whatever no rule foresaw runs")
    said = "held for a human approval" if decision.effect.value == "require_approval" else "denied"
    return Fact("policy.default_deny", True, f"a call to a tool no rule mentions is {said} ({reasons})")


def budget_rules(engine: Any, rate_limits: dict[str, str]) -> Fact:
    base = set(_probe(engine).rule_ids)
    over = _probe(engine, **OVER_BUDGET)
    new = [r for r in over.rule_ids if r not in base]
    parts = []
    if over.effect.value == "deny" and new and not over.is_engine_error:
        parts.append(f"a call over every per-task budget is denied by {', '.join(new)}")
    if rate_limits:
        parts.append(f"rate limits {', '.join(f'{k}={v}' for k, v in sorted(rate_limits.items()))}")
    if parts:
        return Fact("policy.budget_rules", True, "; ".join(parts))
    return Fact("policy.budget_rules", False, "no rule denies a call with " + ", ".join(f"{k}={v:,}" for k, v in OVER_BUDGET.items())
                + " and no rate limits are configured: a runaway loop is bounded only by the breakers")


_REGO_RULE = re.compile(r'^\s*(deny|approval|allow)\["([^"]+)"\]', re.MULTILINE)


def rule_effects(engine: Any, sources: Iterable[Path]) -> dict[str, str]:
    """Rule id -> what it asks for (deny, require_approval, allow, ...), read from the loaded engine
    (YAML rules, Cedar annotations) or, for Rego, from the ``deny[id]``/``approval[id]``/``allow[id]`` heads."""
    policy = getattr(engine, "policy", None)
    if policy is not None and hasattr(policy, "rules"):
        return {r.id: r.action.value for r in policy.rules}
    rules = getattr(engine, "rules", None)
    if isinstance(rules, dict) and rules:
        return {rid: r.action.value for rid, r in rules.items()}
    out: dict[str, str] = {}
    for f in sources:
        if f.suffix == ".rego" and not f.name.endswith("_test.rego"):
            for head, rid in _REGO_RULE.findall(f.read_text(encoding="utf-8", errors="replace")):
                out.setdefault(rid, {"approval": "require_approval"}.get(head, head))
    return out


def approval_rules(effects: dict[str, str]) -> Fact:
    ids = sorted(r for r, e in effects.items() if e == "require_approval")
    if ids:
        return Fact("policy.approval_rules", True, f"approval rules: {', '.join(ids)}")
    return Fact("policy.approval_rules", False, "no rule asks for a human approval: every high-impact action is "
                "either allowed or denied outright")


# --- the facts -----------------------------------------------------------------------------------


def gather(deployment: Any, engine: Any, *, verify_log: Callable[..., Any] | None = None) -> tuple[Fact, ...]:
    """Every fact of :data:`FACTS` for ``deployment`` with its loaded policy ``engine``, in FACTS order."""
    d = deployment
    sources = policy_sources(d.policy)
    catalog = getattr(engine, "catalog", None)
    found = [
        default_deny(engine),
        budget_rules(engine, dict(d.rate_limits)),
        approval_rules(rule_effects(engine, sources)),
        _files_protected(d, sources, catalog),
        _catalog(catalog),
        _mode(d, engine),
        _state(d.state),
        _registry(d.approvers),
        *_audit(d),
        _opa(d),
        Fact("identity.required", d.require_identity, "calls must carry a signed action envelope" if d.require_identity
             else "identity is not required: any caller may name any agent"),
        _delegation(d),
        _output(d),
        _mcp(d.mcp_hide_denied),
    ]
    assert [f.id for f in found] == list(FACTS), "gather() and FACTS disagree"
    return tuple(found)


def _files_protected(d: Any, sources: list[Path], catalog: Any) -> Fact:
    files = list(sources)
    for extra in (getattr(catalog, "source", None), d.approvers, d.output_policy, d.audit_public_key):
        if extra and Path(extra).exists():
            files.append(Path(extra))
    loose = loose_modes(files)
    if loose:
        return Fact("policy.files_protected", False, "writable by group or others: " + "; ".join(loose))
    mine = [str(f) for f in files if f.exists() and f.stat().st_uid == os.geteuid()]
    note = (f"; {len(mine)} of them belong to the user running agt verify (uid {os.geteuid()}): if the agent runs as "
            "this user it can edit them (docs/security.md)") if mine else ""
    return Fact("policy.files_protected", True, f"{len(files)} files, none writable by group or others{note}")


def _catalog(catalog: Any) -> Fact:
    if catalog is None:
        return Fact("catalog.present", False, "no tool catalog: params reach the policy untyped (\"19.99\" is text)")
    return Fact("catalog.present", True, f"tool catalog {getattr(catalog, 'source', '')}".strip())


def _mode(d: Any, engine: Any) -> Fact:
    from agt.runtime.governor import _policy_mode  # the mode a Governor takes from the policy when not given

    mode = d.mode or _policy_mode(engine).value
    if mode == "strict":
        return Fact("mode.strict", True, "strict" + ("" if d.mode else " (from the policy)"))
    return Fact("mode.strict", False, f"{mode}: denied calls run as warnings (only critical rules, the kill switch, "
                "engine errors and identity failures are enforced)")


def _state(url: str | None) -> Fact:
    if url and url.split(":", 1)[0] in ("sqlite", "redis", "rediss"):
        return Fact("state.persistent", True, url.split("@")[-1] if url.startswith("redis") else url)
    return Fact("state.persistent", False, "memory state: a restart resets every budget and rate window")


def _registry(path: Path | None) -> Fact:
    from agt.errors import AgtError
    from agt.runtime.approvers import ApproverRegistry

    if path is None:
        return Fact("approvals.registry", False, "no approver registry: nothing can be approved, so every "
                    "require_approval is denied (approval-unavailable)")
    try:
        registry = ApproverRegistry.from_file(path)
    except AgtError as exc:
        return Fact("approvals.registry", False, str(exc))
    if not len(registry):
        return Fact("approvals.registry", False, f"{path} names no approver: nothing can be approved")
    return Fact("approvals.registry", True, f"{path}: {len(registry)} approvers ({', '.join(registry.names)})")


def _log_dir(log: Path) -> Path:
    return log.parent if log.suffix == ".db" else log


def _audit(d: Any) -> list[Fact]:
    from agt.audit.log import inside

    if d.audit_log is None:
        rest = ("audit.key_outside_log", "audit.key_protected", "audit.trusted_public_key", "audit.witness", "audit.verifies")
        return [Fact("audit.log", False, "no audit log configured: no record of what agents did"),
                *(Fact(f, None, "no audit log") for f in rest)]
    log_dir = _log_dir(d.audit_log)
    facts = [Fact("audit.log", True, str(d.audit_log))]
    key = d.audit_key
    if key is None:
        facts.append(Fact("audit.key_outside_log", False, "no signing key configured (--audit-key)"))
        facts.append(Fact("audit.key_protected", False, "no signing key configured"))
    elif inside(key, log_dir):
        facts.append(Fact("audit.key_outside_log", False, f"{key} lies in the log directory {log_dir}: whoever can "
                          "rewrite the log can re-sign it"))
        facts.append(_key_mode(key))
    elif not key.is_file():
        facts.append(Fact("audit.key_outside_log", False, f"{key}: no such file"))
        facts.append(Fact("audit.key_protected", False, f"{key}: no such file"))
    else:
        facts.append(Fact("audit.key_outside_log", True, f"{key}, outside {log_dir}"))
        facts.append(_key_mode(key))
    facts.append(_public_key(d, log_dir))
    facts.append(_witness(d.audit_witness, log_dir))
    facts.append(_log_verifies(d, facts[-2].ok))
    return facts


def _key_mode(key: Path) -> Fact:
    try:
        info = key.stat()
    except OSError as exc:
        return Fact("audit.key_protected", False, f"{key}: {exc.strerror}")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return Fact("audit.key_protected", False, f"{key} has mode {mode:o}: group or others can read or write it (chmod 600)")
    loose = loose_modes([key])
    if loose:
        return Fact("audit.key_protected", False, f"its directory can be written by group or others: {loose[0]}")
    return Fact("audit.key_protected", True, f"{key}: mode {mode:o}, owner uid {info.st_uid}")


def _public_key(d: Any, log_dir: Path) -> Fact:
    from agt.audit import load_public_key
    from agt.audit.log import inside, load_signing_key, public_pem
    from agt.errors import AgtError

    pub = d.audit_public_key
    if pub is None:
        return Fact("audit.trusted_public_key", False, "no trusted public key (--audit-public-key): a verifier would "
                    "trust checkpoint.pub in the log directory, which whoever rewrites the log can replace")
    if inside(pub, log_dir):
        return Fact("audit.trusted_public_key", False, f"{pub} lies in the log directory: it is not a trust anchor")
    try:
        key = load_public_key(pub)
    except (AgtError, OSError, ValueError) as exc:
        return Fact("audit.trusted_public_key", False, f"{pub}: {exc}")
    if d.audit_key is not None and d.audit_key.is_file():
        try:
            private = load_signing_key(d.audit_key)
        except (AgtError, OSError, ValueError):
            private = None  # not readable here: the other facts say so
        if private is not None and public_pem(private.public_key()) != public_pem(key):
            return Fact("audit.trusted_public_key", False, f"{pub} is not the public half of {d.audit_key}")
    return Fact("audit.trusted_public_key", True, str(pub))


def _witness(witness: str | None, log_dir: Path) -> Fact:
    from agt.audit.log import inside

    if not witness:
        return Fact("audit.witness", False, "no witness: a deleted or re-signed checkpoint goes unnoticed")
    if "://" not in witness and inside(Path(witness), log_dir):
        return Fact("audit.witness", False, f"{witness} lies in the log directory")
    return Fact("audit.witness", True, witness)


def _log_verifies(d: Any, trusted: bool | None) -> Fact:
    from agt.audit import load_public_key, verify_log
    from agt.errors import AgtError

    log = d.audit_log
    if not log.exists():
        return Fact("audit.verifies", None, f"{log} has no records yet")
    if not trusted:
        return Fact("audit.verifies", False, "cannot be verified without a trusted public key")
    try:
        report = verify_log(log, load_public_key(d.audit_public_key), strict=True, witness=d.audit_witness,
                            witness_token=os.environ.get("AGT_WITNESS_TOKEN"))
    except (AgtError, OSError) as exc:
        return Fact("audit.verifies", False, f"{log}: {exc}")
    if not report.ok:
        return Fact("audit.verifies", False, f"{log}: {report.first_problem}")
    return Fact("audit.verifies", True, f"{report.records} records, {report.checkpoints} checkpoints, "
                f"{report.witnessed} witnessed")


def _opa(d: Any) -> Fact:
    if (d.engine or "") != "opa":
        return Fact("opa.control_plane", None, "not an OPA deployment")
    if d.opa_url is None:
        socket = "a unix socket in a 0700 directory" if d.opa_unix_socket else \
            "loopback TCP (a same-user process could stand in for it: prefer opa.unix_socket)"
        return Fact("opa.control_plane", True, f"agt manages OPA: a fresh token per start, an authorization policy that "
                    f"refuses policy and data writes, listening on {socket}")
    from agt.opa.probe import probe_policy_api

    probe = probe_policy_api(d.opa_url)
    if probe.open is False:
        return Fact("opa.control_plane", True, f"{d.opa_url}: {probe.detail}")
    return Fact("opa.control_plane", False, f"{d.opa_url}: {probe.detail}" if probe.open else
                f"{d.opa_url}: could not tell whether its policy API is open: {probe.detail}")


def _delegation(d: Any) -> Fact:
    if not d.require_delegation:
        return Fact("identity.delegation", False, "delegation is not required: an agent acts with every capability "
                    "the policy grants it, not only those delegated to it")
    if not d.trusted_roots:
        return Fact("identity.delegation", False, "delegation is required but no trusted roots are configured: "
                    "no chain can verify")
    return Fact("identity.delegation", True, f"rooted in {', '.join(sorted(d.trusted_roots))}")


def _output(d: Any) -> Fact:
    if d.output_policy is None:
        return Fact("output.check", False, "no output policy: tool results are checked only against the size limit")
    from agt.authoring.check import guess_engine
    from agt.engines import create_engine
    from agt.errors import AgtError

    try:
        create_engine(d.output_engine or guess_engine(str(d.output_policy)), str(d.output_policy)).close()
    except (AgtError, OSError) as exc:
        return Fact("output.check", False, f"the output policy does not load: {exc}")
    return Fact("output.check", True, str(d.output_policy))


def _mcp(hide_denied: bool | None) -> Fact:
    if hide_denied is None:
        return Fact("mcp.hide_denied", None, "no MCP proxy in this deployment")
    if hide_denied:
        return Fact("mcp.hide_denied", True, "tools/list leaves out what this agent can never call")
    return Fact("mcp.hide_denied", False, "tools/list shows the agent every upstream tool, the ones it can never call too")
