package agt.policies.starter_test

import data.agt

base := {
	"agent": {"id": "alice", "roles": ["developer"], "trust_score": 720, "attributes": {"workspace": "/ws/alice"}},
	"action": {"tool": "read_file", "kind": "read", "params": {}, "params_text": ""},
	"resource": null,
	"context": {"tokens_used": 1000, "tool_calls": 3, "files_changed": 1, "environment": "development"},
}

with_action(a) := object.union(base, {"action": object.union(base.action, a)})

with_context(c) := object.union(base, {"context": object.union(base.context, c)})

test_harmless_read_is_default_allow if {
	d := agt.decision with input as base
	d.effect == "allow"
	d.reasons == [{"id": "default", "message": "no rule matched; policy default is allow"}]
}

test_destructive_db_tool_denied if {
	d := agt.decision with input as with_action({"tool": "drop_table", "kind": "delete"})
	d.effect == "deny"
	[r.id | some r in d.reasons] == ["block-destructive-db-tools"]
}

test_destructive_pattern_denied if {
	d := agt.decision with input as with_action({"tool": "run_shell", "kind": "execute", "params_text": "sudo rm -rf /"})
	[r.id | some r in d.reasons] == ["block-destructive-patterns"]
}

test_token_budget_boundary if {
	agt.decision.effect == "allow" with input as with_context({"tokens_used": 8000})
	agt.decision.effect == "deny" with input as with_context({"tokens_used": 8001})
}

test_tool_call_boundary if {
	agt.decision.effect == "allow" with input as with_context({"tool_calls": 20})
	agt.decision.effect == "deny" with input as with_context({"tool_calls": 21})
}

test_files_changed_boundary if {
	agt.decision.effect == "allow" with input as with_context({"files_changed": 15})
	agt.decision.effect == "deny" with input as with_context({"files_changed": 16})
}

test_low_trust_may_not_execute if {
	inp := object.union(with_action({"tool": "run_shell", "kind": "execute"}), {"agent": object.union(base.agent, {"trust_score": 499})})
	[r.id | some r in agt.decision.reasons] == ["low-trust-no-shell"] with input as inp
}

test_trust_500_may_execute if {
	inp := object.union(with_action({"tool": "run_shell", "kind": "execute"}), {"agent": object.union(base.agent, {"trust_score": 500})})
	agt.decision.effect == "allow" with input as inp
}

test_write_inside_workspace_allowed if {
	inp := object.union(with_action({"tool": "write_file", "kind": "write"}), {"resource": {"type": "file", "id": "/ws/alice/x.md"}})
	agt.decision.effect == "allow" with input as inp
}

test_write_to_prefix_sibling_denied if {
	inp := object.union(with_action({"tool": "write_file", "kind": "write"}), {"resource": {"type": "file", "id": "/ws/alicebob/x"}})
	[r.id | some r in agt.decision.reasons] == ["workspace-write-only"] with input as inp
}

test_write_without_workspace_denied if {
	# object.union merges recursively, so build the agent without a workspace by filtering.
	agent := object.remove(base.agent, ["attributes"])
	inp := object.union(
		object.remove(with_action({"tool": "write_file", "kind": "write"}), ["agent"]),
		{"agent": agent, "resource": {"type": "file", "id": "/ws/alice/x"}},
	)
	agt.decision.effect == "deny" with input as inp
}

test_write_with_empty_workspace_denied if {
	inp := object.union(
		with_action({"tool": "write_file", "kind": "write"}),
		{"agent": {"attributes": {"workspace": ""}}, "resource": {"type": "file", "id": "/etc/passwd"}},
	)
	[r.id | some r in agt.decision.reasons] == ["workspace-write-only"] with input as inp
}

test_write_with_non_string_workspace_denied if {
	inp := object.union(
		with_action({"tool": "write_file", "kind": "write"}),
		{"agent": {"attributes": {"workspace": 7}}, "resource": {"type": "file", "id": "/etc/passwd"}},
	)
	[r.id | some r in agt.decision.reasons] == ["workspace-write-only"] with input as inp
}

test_delete_outside_workspace_denied if {
	inp := object.union(with_action({"tool": "delete_file", "kind": "delete"}), {"resource": {"type": "file", "id": "/etc/hosts"}})
	[r.id | some r in agt.decision.reasons] == ["workspace-write-only"] with input as inp
}

test_email_needs_approval if {
	d := agt.decision with input as with_action({"tool": "send_email", "kind": "message"})
	d.effect == "require_approval"
	d.approvers == ["comms-lead"]
}

test_production_write_needs_approval if {
	inp := object.union(with_context({"environment": "production"}), {"action": object.union(base.action, {"kind": "delete"})})
	d := agt.decision with input as inp
	d.effect == "require_approval"
	d.approvers == ["on-call-sre"]
}

test_deny_beats_approval if {
	d := agt.decision with input as with_action({"tool": "send_email", "kind": "message", "params_text": "drop table x"})
	d.effect == "deny"
	d.matched == ["block-destructive-patterns", "email-approval"]
}
