"""AGT's own policy documents (tests/agt_corpus/, see NOTICE.md there): every one that AGT's Python loaders accept
either loads in agt, or is refused with a PolicyLoadError naming the file, the line and the construct, and saying what
to write instead. The refusals are the explicit list below, and docs/agt-compatibility.md documents each construct.

The decision tests restate expectations from AGT's spec conformance tests (agent_os
tests/test_spec_policy_engine_conformance.py, v4.1.0) and the documents' own stated intent."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from agt.action import from_agt_context
from agt.engines.yaml import YamlEngine
from agt.engines.yaml_policy import load_policy
from agt.errors import PolicyLoadError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "agt_corpus"
DOCS = CORPUS / "docs"
MANIFEST = yaml.safe_load((CORPUS / "MANIFEST.yaml").read_text("utf-8"))
sys.path.insert(0, str(CORPUS))
from agt_acceptance import accepting_loader  # noqa: E402

# construct -> (text the error must hold, text of the suggested replacement it must hold)
CONSTRUCTS = {
    "limit": ("per-rule 'limit'", "context.tool_calls > N"),
    "sql-facets": ("derived sql facets", "action.facts.sql.types"),
    "k8s-facets": ("derived k8s facets", "context.attributes.k8s"),
    "ruleAction": ("'ruleAction' is not a rule key", "write action:"),
    "agent_os-scope": ("agent_os's 'scope'", "put the glob in a rule"),
    "override": ("'override: true'", "edit the rule in place"),
    "capabilities": ("'capabilities' is not supported", "rules on tool_name"),
    "re2-lookaround": ("RE2 has no lookaround", "and not (x matches"),
    "unknown-defaults": ("is not one of agent_os's defaults", "to enforce it write a rule"),
}

REFUSED = {
    "agent-governance-dotnet-examples-Quickstart-wire-protocol-rules-bf2ea1.yaml": "sql-facets",
    "agent-governance-python-agent-mesh-examples-policies-permissive-702c3c.yaml": "unknown-defaults",
    "agent-governance-python-agent-mesh-examples-policies-strict-6b3e41.yaml": "unknown-defaults",
    "agent-governance-typescript-examples-wire-protocol-rules-b35029.yaml": "ruleAction",
    "docs-WIRE-PROTOCOL-FACETS-L43-8090aa.yaml": "sql-facets",
    "docs-WIRE-PROTOCOL-FACETS-L95-ac0ac1.yaml": "k8s-facets",
    "docs-proposals-folder-level-governance-L100-5bdd34.yaml": "agent_os-scope",
    "docs-security-tenant-isolation-checklist-L121-cf46de.yaml": "ruleAction",
    "docs-specs-AGENT-OS-POLICY-ENGINE-1-5b3d76.yaml": "override",
    "docs-tutorials-35-policy-composition-L68-bd761b.yaml": "limit",
    # extends platform-shared.yaml (the block above it in the same tutorial), which sets a per-rule limit:
    "docs-tutorials-35-policy-composition-L96-e9330e.yaml": "limit",
    "docs-workshop-slides-L295-140b8f.yaml": "capabilities",
    "examples-atr-community-rules-atr-community-policy-full-87bda9.yaml": "re2-lookaround",
    "examples-policy-templates-general-saas-c7c669.yaml": "re2-lookaround",
    "examples-policy-templates-general-saas-7e3eac.yaml": "re2-lookaround",
    "examples-policy-templates-wire-protocol-rules-11e803.yaml": "sql-facets",
    "examples-smolagents-governed-policies-research-governance-policy-b0437b.yaml": "re2-lookaround",
}

FILES = [e["file"] for e in MANIFEST]
_NAMED = re.compile(r"^#\s*(?:policies/)?([\w.-]+\.ya?ml)\s*$", re.M)


def _place(tmp_path: Path, name: str) -> Path:
    """The document as AGT's loader would find it: an ``extends`` document next to the blocks it names, each saved
    under the file name its Markdown block gives (``# policies/platform-shared.yaml``)."""
    text = (DOCS / name).read_text("utf-8")
    if "extends" not in text:
        return DOCS / name
    source = next(s for s in next(e for e in MANIFEST if e["file"] == name)["sources"])
    md = source.split(":", 1)[1].split("#", 1)[0]
    for e in MANIFEST:
        if any(s.split(":", 1)[1].split("#", 1)[0] == md for s in e["sources"]):
            sibling = (DOCS / e["file"]).read_text("utf-8")
            m = _NAMED.search(sibling)
            if m:
                (tmp_path / m.group(1)).write_text(sibling, "utf-8")
    target = tmp_path / name
    target.write_text(text, "utf-8")
    return target


def test_the_manifest_and_the_corpus_directory_hold_the_same_files():
    assert sorted(FILES) == sorted(p.name for p in DOCS.glob("*.yaml"))


@pytest.mark.parametrize("name", FILES)
def test_every_corpus_document_is_one_agt_python_loader_accepts(name):
    data = yaml.safe_load((DOCS / name).read_text("utf-8"))
    assert accepting_loader(data) == next(e["loader"] for e in MANIFEST if e["file"] == name)


@pytest.mark.parametrize("name", sorted(set(FILES) - set(REFUSED)))
def test_document_loads(name, tmp_path):
    policy = load_policy(_place(tmp_path, name))
    assert policy.rules or policy.governance is not None or policy.default is not None


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_document_is_refused_naming_file_line_construct_and_replacement(name, tmp_path):
    with pytest.raises(PolicyLoadError) as info:
        load_policy(_place(tmp_path, name))
    err = info.value
    says, instead = CONSTRUCTS[REFUSED[name]]
    assert (err.file is not None and err.file.endswith(".yaml"), err.line is not None, says in err.message,
            instead in err.message) == (True, True, True, True), str(err)


def test_the_refusals_are_a_short_list():
    assert (len(CONSTRUCTS), len(REFUSED) <= len(FILES) // 4) == (9, True)


def test_every_refused_construct_is_documented():
    doc = (ROOT / "docs" / "agt-compatibility.md").read_text("utf-8")
    assert [c for c in CONSTRUCTS if f"`{c}`" not in doc] == []


def test_no_refusal_is_left_unlisted():
    refused = []
    for name in FILES:
        try:
            load_policy(DOCS / name)
        except PolicyLoadError:
            refused.append(name)
    # Documents that extend a sibling fail here for want of it; the placed copy above is the real test.
    assert sorted(set(refused) - set(REFUSED)) == []


# --- decisions: AGT's expectations -----------------------------------------------------------------


def decide(policy: str | Path, context: dict, tmp_path: Path | None = None, **kw):
    engine = YamlEngine(DOCS / policy if isinstance(policy, str) and not policy.startswith("/") else policy)
    return engine.evaluate(from_agt_context(context, **kw))


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text, "utf-8")
    return p


README = "README-L97-e5256e.yaml"
QUICKSTART = "docs-quickstart-L34-0d1778.yaml"
ENV = "docs-tutorials-policy-as-code-examples-04-env-policy-9800dd.yaml"
FIRST = "docs-tutorials-policy-as-code-examples-01-first-policy-1fe21f.yaml"


def test_readme_action_type_drop_is_denied():
    d = decide(README, {"tool_name": "sql", "action": {"type": "drop"}})
    assert (d.effect.value, d.rule_ids) == ("deny", ("block-destructive",))


def test_readme_action_type_truncate_is_denied_though_agt_kind_has_no_truncate():
    d = decide(README, {"tool_name": "run_sql", "action": {"type": "truncate"}})
    assert (d.effect.value, d.rule_ids) == ("deny", ("block-destructive",))


def test_readme_send_email_needs_approval():
    d = decide(README, {"tool_name": "send_email"})
    assert (d.effect.value, d.approvers) == ("require_approval", ("security-team",))


def test_readme_other_action_is_allowed_by_default():
    assert decide(README, {"tool_name": "read_file"}).effect.value == "allow"


def test_quickstart_ssn_regex_with_backslash_escapes_denies():
    d = decide(QUICKSTART, {"tool_name": "chat", "input_text": "my ssn is 123-45-6789"})
    assert (d.effect.value, d.rule_ids) == ("deny", ("block-pii",))


def test_quickstart_text_without_ssn_is_allowed():
    assert decide(QUICKSTART, {"tool_name": "chat", "input_text": "call 123-456"}).effect.value == "allow"


def test_env_policy_without_environment_falls_to_default_deny():
    # agt used to default environment to "development" and so allow: fail open (issue 12).
    d = decide(ENV, {"tool_name": "read_file"})
    assert (d.effect.value, d.rule_ids) == ("deny", ("default",))


def test_env_policy_with_development_allows():
    d = decide(ENV, {"tool_name": "read_file", "environment": "development"})
    assert (d.effect.value, d.rule_ids) == ("allow", ("allow-development",))


def test_first_policy_blocks_its_tool():
    d = decide(FIRST, {"tool_name": "delete_database"})
    assert (d.effect.value, d.rule_ids) == ("deny", ("block-delete-database",))


def test_first_policy_defaults_to_allow():
    assert decide(FIRST, {"tool_name": "search"}).effect.value == "allow"


AGENT_OS_ONE_RULE = """version: "1.0"
name: t
rules:
  - name: r1
    condition: {{field: {field}, operator: {op}, value: {value}}}
    action: {action}
"""

SPEC_OPERATORS = [  # (field, op, value, context): each rule matches, so the deny decides (spec 5.1)
    ("tool_name", "eq", "exec", {"tool_name": "exec"}),
    ("tool_name", "ne", "read", {"tool_name": "exec"}),
    ("count", "gt", 10, {"count": 15}),
    ("count", "lt", 10, {"count": 5}),
    ("count", "gte", 10, {"count": 10}),
    ("count", "lte", 10, {"count": 10}),
    ("tool_name", "in", '["exec", "delete"]', {"tool_name": "exec"}),
    ("args", "contains", "password", {"args": "user_password_hash"}),
    ("tool_name", "matches", '"^exec_.*"', {"tool_name": "exec_code"}),
]


@pytest.mark.parametrize("field, op, value, context", SPEC_OPERATORS, ids=[c[1] for c in SPEC_OPERATORS])
def test_agent_os_spec_operator_matches(tmp_path, field, op, value, context):
    path = write(tmp_path, AGENT_OS_ONE_RULE.format(field=field, op=op, value=value, action="deny"))
    assert YamlEngine(path).evaluate(from_agt_context(context)).effect.value == "deny"


def test_agent_os_spec_missing_field_does_not_match(tmp_path):
    path = write(tmp_path, AGENT_OS_ONE_RULE.format(field="nonexistent_field", op="eq", value="anything", action="deny"))
    assert YamlEngine(path).evaluate(from_agt_context({"tool_name": "exec"})).effect.value == "allow"


def test_agent_os_spec_ne_on_a_missing_field_does_not_match(tmp_path):
    # Spec 5.2: every condition on a missing field is false, ne included (agentmesh's text != differs; see docs).
    path = write(tmp_path, AGENT_OS_ONE_RULE.format(field="nonexistent_field", op="ne", value="x", action="deny"))
    assert YamlEngine(path).evaluate(from_agt_context({"tool_name": "exec"})).effect.value == "allow"


def test_agentmesh_not_equal_on_a_missing_field_matches(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\nrules:\n'
                           '  - {name: r, condition: "user.role != \'admin\'", action: deny}\n')
    assert YamlEngine(path).evaluate(from_agt_context({"tool_name": "x"})).rule_ids == ("r",)


@pytest.mark.parametrize("action, effect", [("allow", "allow"), ("deny", "deny"), ("block", "deny")])
def test_agent_os_spec_deciding_actions(tmp_path, action, effect):
    path = write(tmp_path, AGENT_OS_ONE_RULE.format(field="x", op="eq", value=1, action=action) + "defaults: {action: deny}\n"
                 if action == "allow" else AGENT_OS_ONE_RULE.format(field="x", op="eq", value=1, action=action))
    assert YamlEngine(path).evaluate(from_agt_context({"x": 1})).effect.value == effect


def test_agent_os_audit_is_recorded_and_does_not_decide(tmp_path):
    path = write(tmp_path, AGENT_OS_ONE_RULE.format(field="x", op="eq", value=1, action="audit"))
    d = YamlEngine(path).evaluate(from_agt_context({"x": 1}))
    assert (d.effect.value, d.rule_ids, tuple(n.rule_id for n in d.notes)) == ("allow", ("default",), ("r1",))


PRIORITY = """version: "1.0"
name: t
rules:
  - {name: low, condition: {field: x, operator: eq, value: 1}, action: allow, priority: 10}
  - {name: high, condition: {field: x, operator: eq, value: 1}, action: deny, priority: 100}
  - {name: first, condition: {field: y, operator: eq, value: 1}, action: allow, priority: 100}
  - {name: second, condition: {field: y, operator: eq, value: 1}, action: deny, priority: 50}
"""


def test_agent_os_spec_higher_priority_wins(tmp_path):
    d = YamlEngine(write(tmp_path, PRIORITY)).evaluate(from_agt_context({"x": 1}))
    assert (d.effect.value, d.rule_ids) == ("deny", ("high",))


def test_agent_os_spec_first_match_short_circuits_a_lower_deny(tmp_path):
    d = YamlEngine(write(tmp_path, PRIORITY)).evaluate(from_agt_context({"y": 1}))
    assert (d.effect.value, d.rule_ids) == ("allow", ("first",))


def test_agent_os_default_without_defaults_is_allow(tmp_path):
    path = write(tmp_path, AGENT_OS_ONE_RULE.format(field="x", op="eq", value=1, action="deny"))
    assert YamlEngine(path).evaluate(from_agt_context({"x": 2})).effect.value == "allow"


def test_field_action_matches_reads_the_action_verb_not_the_action_object(tmp_path):
    path = write(tmp_path, AGENT_OS_ONE_RULE.format(field="action", op="matches", value='"^(delete_|drop_)"', action="deny"))
    engine = YamlEngine(path)
    assert (engine.evaluate(from_agt_context({"action": "delete_user"})).effect.value,
            engine.evaluate(from_agt_context({"action": "read_user"})).effect.value) == ("deny", "allow")


def test_governance_block_alone_allows_what_it_does_not_limit(tmp_path):
    path = write(tmp_path, "governance:\n  max_tool_calls_per_task: 3\n")
    assert YamlEngine(path).evaluate(from_agt_context({"tool_name": "anything", "tool_call_count": 2})).effect.value == "allow"


def test_governance_block_alone_denies_over_its_limit(tmp_path):
    path = write(tmp_path, "governance:\n  max_tool_calls_per_task: 3\n")
    d = YamlEngine(path).evaluate(from_agt_context({"tool_name": "anything", "tool_call_count": 4}))
    assert (d.effect.value, d.rule_ids) == ("deny", ("governance.max_tool_calls_per_task",))


def test_comparison_outside_kinds_closed_set_is_a_load_error(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\nrules:\n'
                           '  - {name: r, condition: "action.kind == \'drop\'", action: deny}\n')
    with pytest.raises(PolicyLoadError) as info:
        load_policy(path)
    assert (info.value.line, "can never match" in info.value.message, "action.type" in info.value.message) == (4, True, True)


def test_agents_limits_rules_to_the_named_agents(tmp_path):
    (tmp_path / "a.yaml").write_text('apiVersion: governance.toolkit/v1\nname: a\nagents: [did:a]\ndefault_action: allow\n'
                                     'rules:\n  - {name: r, condition: "tool_name == \'x\'", action: deny}\n', "utf-8")
    (tmp_path / "b.yaml").write_text('apiVersion: governance.toolkit/v1\nname: b\ndefault_action: allow\nrules: []\n', "utf-8")
    engine = YamlEngine(tmp_path)
    assert (engine.evaluate(from_agt_context({"tool_name": "x", "agent_did": "did:a"})).effect.value,
            engine.evaluate(from_agt_context({"tool_name": "x", "agent_did": "did:b"})).effect.value) == ("deny", "allow")


def test_stage_limits_a_rule_to_its_stage(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\nrules:\n'
                           '  - {name: r, condition: "tool_name == \'x\'", action: deny, stage: post_tool}\n')
    engine = YamlEngine(path)
    assert (engine.evaluate(from_agt_context({"tool_name": "x", "stage": "post_tool"})).effect.value,
            engine.evaluate(from_agt_context({"tool_name": "x", "stage": "pre_tool"})).effect.value) == ("deny", "allow")


def test_extends_inherits_the_parents_rules(tmp_path):
    (tmp_path / "base.yaml").write_text('apiVersion: governance.toolkit/v1\nname: base\nrules:\n'
                                        '  - {name: no-x, condition: "tool_name == \'x\'", action: deny}\n')
    child = tmp_path / "child.yaml"
    child.write_text('apiVersion: governance.toolkit/v1\nname: child\nextends: base.yaml\ndefault_action: allow\nrules: []\n')
    assert YamlEngine(child).evaluate(from_agt_context({"tool_name": "x"})).rule_ids == ("no-x",)


def test_extends_refuses_a_child_that_weakens_a_parent_deny(tmp_path):
    (tmp_path / "base.yaml").write_text('apiVersion: governance.toolkit/v1\nname: base\nrules:\n'
                                        '  - {name: no-x, condition: "tool_name == \'x\'", action: deny}\n')
    child = tmp_path / "child.yaml"
    child.write_text('apiVersion: governance.toolkit/v1\nname: child\nextends: base.yaml\nrules:\n'
                     '  - {name: no-x, condition: "tool_name == \'x\'", action: allow}\n')
    with pytest.raises(PolicyLoadError) as info:
        load_policy(child)
    assert ("weakens the deny rule" in info.value.message, info.value.line) == (True, 5)


def test_extends_outside_the_policy_directory_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text('apiVersion: governance.toolkit/v1\nname: base\nrules: []\n')
    child = tmp_path / "sub" / "child.yaml"
    child.write_text('apiVersion: governance.toolkit/v1\nname: child\nextends: ../base.yaml\nrules: []\n')
    with pytest.raises(PolicyLoadError, match="outside the policy directory"):
        load_policy(child)


def test_rule_without_action_denies(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\nrules:\n'
                           '  - {name: r, condition: "tool_name == \'x\'"}\n')
    assert YamlEngine(path).evaluate(from_agt_context({"tool_name": "x"})).effect.value == "deny"


def test_flat_name_reads_a_param_before_an_attribute(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\nrules:\n'
                           '  - {name: r, condition: "message == \'go\'", action: deny}\n')
    engine = YamlEngine(path)
    assert (engine.evaluate(from_agt_context({"tool_name": "t", "message": "stop"}, params={"message": "go"})).effect.value,
            engine.evaluate(from_agt_context({"tool_name": "t", "message": "go"})).effect.value) == ("deny", "deny")


def test_dotted_flat_name_reads_nested_attributes(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\ndefault_action: allow\nrules:\n'
                           '  - {name: r, condition: "user.role == \'admin\'", action: deny}\n')
    assert YamlEngine(path).evaluate(from_agt_context({"tool_name": "t", "user": {"role": "admin"}})).rule_ids == ("r",)


def test_a_typo_of_a_well_known_name_is_still_a_load_error(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\nrules:\n'
                           '  - {name: r, condition: "tool_nme == \'x\'", action: deny}\n')
    with pytest.raises(PolicyLoadError, match="did you mean 'tool_name'"):
        load_policy(path)


def test_no_trust_score_is_invented(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\ndefault_action: deny\nrules:\n'
                           '  - {name: trusted, condition: "trust_score >= 500", action: allow}\n')
    engine = YamlEngine(path)
    assert (engine.evaluate(from_agt_context({"tool_name": "t"})).effect.value,
            engine.evaluate(from_agt_context({"tool_name": "t", "trust_score": 600})).effect.value) == ("deny", "allow")


# --- AGT's cross-SDK policy-parity expectations (agent-governance-typescript/tests/policy-parity.test.ts, v4.1.0):
# one allow rule, default deny; (condition, context, allowed).
PARITY = [
    ("action.type == 'read'", {"action": {"type": "read"}}, True),
    ("action.type == 'read'", {"action": {"type": "write"}}, False),
    ("count == 5", {"count": 5}, True),
    ("count == 5", {"count": 6}, False),
    ("data.is_pii == true", {"data": {"is_pii": True}}, True),
    ("data.is_pii == true", {"data": {"is_pii": False}}, False),
    ("role != 'admin'", {"role": "user"}, True),
    ("role != 'admin'", {"role": "admin"}, False),
    ("cost > 100", {"cost": 150}, True),
    ("cost > 100", {"cost": 50}, False),
    ("risk < 0.5", {"risk": 0.3}, True),
    ("risk < 0.5", {"risk": 0.8}, False),
    ("score >= 80", {"score": 80}, True),
    ("score >= 80", {"score": 79}, False),
    ("priority <= 3", {"priority": 3}, True),
    ("priority <= 3", {"priority": 4}, False),
    ("user.role in ['admin', 'operator']", {"user": {"role": "operator"}}, True),
    ("user.role in ['admin', 'operator']", {"user": {"role": "viewer"}}, False),
    ("env not in ['production', 'staging']", {"env": "development"}, True),
    ("env not in ['production', 'staging']", {"env": "production"}, False),
    ("data.contains_pii", {"data": {"contains_pii": True}}, True),
    ("data.contains_pii", {"data": {"contains_pii": False}}, False),
    ("data.contains_pii", {"data": {}}, False),
    ("action.type == 'write' and user.role == 'admin'", {"action": {"type": "write"}, "user": {"role": "admin"}}, True),
    ("action.type == 'write' and user.role == 'admin'", {"action": {"type": "write"}, "user": {"role": "user"}}, False),
    ("user.role == 'admin' or user.role == 'superuser'", {"user": {"role": "superuser"}}, True),
    ("user.role == 'admin' or user.role == 'superuser'", {"user": {"role": "viewer"}}, False),
    ("name == 'foo or bar'", {"name": "foo or bar"}, True),
    ("name == 'foo or bar'", {"name": "foo"}, False),
    ('label == "ham or eggs"', {"label": "ham or eggs"}, True),
    ("name == 'foo or bar' and role == 'admin'", {"name": "foo or bar", "role": "user"}, False),
    ("request.metadata.source == 'internal'", {"request": {"metadata": {"source": "internal"}}}, True),
    ("request.metadata.source == 'internal'", {"request": {"metadata": {"source": "external"}}}, False),
    ("missing.deep.path == 'value'", {}, False),
]


@pytest.mark.parametrize("condition, context, allowed", PARITY, ids=[f"{c}|{v}" for c, _, v in PARITY])
def test_agt_cross_sdk_parity_expression(tmp_path, condition, context, allowed):
    path = write(tmp_path, "apiVersion: governance.toolkit/v1\nname: test\nagents: ['*']\ndefault_action: deny\nrules:\n"
                           f"  - name: r1\n    condition: {condition!r}\n    action: allow\n".replace("\\'", "''"))
    d = YamlEngine(path).evaluate(from_agt_context({"tool_name": "t", **context}))
    assert d.effect.value == ("allow" if allowed else "deny")


def test_agt_parity_agent_scoped_policy_denies_other_agents_whatever_its_default(tmp_path):
    # policy-parity.test.ts: "fail closed when no policies apply".
    path = write(tmp_path, "apiVersion: governance.toolkit/v1\nname: p\nagent: did:agentmesh:bot:abc\ndefault_action: allow\n"
                           "rules:\n  - {name: r1, condition: \"tool_name == 'x'\", action: allow}\n")
    engine = YamlEngine(path)
    other = engine.evaluate(from_agt_context({"tool_name": "y", "agent_did": "did:agentmesh:other:xyz"}))
    mine = engine.evaluate(from_agt_context({"tool_name": "y", "agent_did": "did:agentmesh:bot:abc"}))
    assert ((other.effect.value, other.rule_ids), mine.effect.value) == (("deny", ("no-applicable-policy",)), "allow")


def test_comparing_a_counter_with_text_is_a_load_error(tmp_path):
    path = write(tmp_path, 'apiVersion: governance.toolkit/v1\nname: t\nrules:\n'
                           '  - {name: r, condition: "token_count > \'4096\'", action: deny}\n')
    with pytest.raises(PolicyLoadError, match="whole number, never '4096'"):
        load_policy(path)



def test_governance_block_beside_a_rules_file_keeps_the_rules_default(tmp_path):
    (tmp_path / "limits.yaml").write_text("governance:\n  max_tool_calls_per_task: 3\n", "utf-8")
    (tmp_path / "rules.yaml").write_text("apiVersion: governance.toolkit/v1\nname: r\nrules: []\n", "utf-8")
    assert YamlEngine(tmp_path).evaluate(from_agt_context({"tool_name": "t"})).effect.value == "deny"
