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

# --- rules on facts (input.action.facts, as agt derives them) ------------------------------------

empty_shell := {
	"params": [], "parsed": false, "programs": [], "program_families": [], "program_flags": [], "program_args": [],
	"redirects": [], "recursive_deletes": [], "deletes_system_path": false, "writes_device": false,
	"command_substitution": false, "process_substitution": false, "variable_expansion": false, "eval": false,
	"pipe_to_shell": false, "parse_error": false,
}

empty_sql := {"params": [], "parsed": false, "types": [], "objects": [], "without_where": [], "parse_error": false}

with_facts(kind, shell, sql) := with_action({
	"tool": "run", "kind": kind, "params_text": "",
	"facts": {
		"shell": object.union(empty_shell, shell), "sql": object.union(empty_sql, sql),
		"parse_error": object.get(shell, "parse_error", false) == true,
	},
})

reason_ids(d) := [r.id | some r in d.reasons]

test_recursive_delete_of_a_system_path_denied if {
	d := agt.decision with input as with_facts("execute", {"parsed": true, "recursive_deletes": ["/"], "deletes_system_path": true}, {})
	reason_ids(d) == ["block-recursive-delete"]
}

test_recursive_delete_elsewhere_allowed if {
	d := agt.decision with input as with_facts("execute", {"parsed": true, "recursive_deletes": ["/tmp/x"]}, {})
	d.effect == "allow"
}

test_mkfs_denied if {
	d := agt.decision with input as with_facts("execute", {"parsed": true, "program_families": ["mkfs"]}, {})
	reason_ids(d) == ["block-disk-wipe"]
}

test_write_to_a_device_denied if {
	d := agt.decision with input as with_facts("execute", {"parsed": true, "writes_device": true}, {})
	reason_ids(d) == ["block-disk-wipe"]
}

test_drop_and_unfiltered_delete_denied if {
	reason_ids(agt.decision) == ["block-destructive-sql"] with input as with_facts("execute", {}, {"parsed": true, "types": ["drop"]})
	reason_ids(agt.decision) == ["block-destructive-sql"] with input as with_facts("execute", {}, {"parsed": true, "types": ["delete"], "without_where": ["delete"]})
}

test_filtered_delete_allowed_even_with_the_old_text if {
	inp := object.union(with_facts("execute", {}, {"parsed": true, "types": ["delete"]}), {"action": {"params_text": "delete from users where id = 3"}})
	d := agt.decision with input as inp
	d.effect == "allow"
}

test_unparsed_text_falls_back_to_patterns if {
	inp := object.union(with_facts("execute", {}, {"params": ["sql"], "parse_error": true}), {"action": {"params_text": "delete from users"}})
	d := agt.decision with input as inp
	"block-destructive-patterns" in reason_ids(d)
}

test_parse_error_denied_on_execute_only if {
	reason_ids(agt.decision) == ["block-unparsed-command"] with input as with_facts("execute", {"parse_error": true}, {})
	agt.decision.effect == "allow" with input as with_facts("read", {"parse_error": true}, {})
}

test_sql_parse_error_denied_on_any_kind if {
	some kind in ["read", "write", "execute"]
	d := agt.decision with input as with_facts(kind, {}, {"params": ["sql"], "parse_error": true})
	reason_ids(d) == ["block-unparsed-command"]
}

test_pipe_to_shell_denied if {
	d := agt.decision with input as with_facts("execute", {"parsed": true, "pipe_to_shell": true}, {})
	reason_ids(d) == ["block-unparsed-command"]
}

test_variable_expansion_alone_allowed if {
	d := agt.decision with input as with_facts("execute", {"parsed": true, "variable_expansion": true}, {})
	d.effect == "allow"
}

test_refund_over_the_limit_needs_approval if {
	d := agt.decision with input as with_action({"tool": "refund", "kind": "write", "params": {"amount": 100.01}})
	d.effect == "require_approval"
	d.approvers == ["finance-lead"]
	agt.decision.effect == "allow" with input as with_action({"tool": "refund", "kind": "write", "params": {"amount": 100.00}})
}
