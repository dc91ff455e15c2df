# agt starter governance policy in Rego: the same intent and rule ids as policies/starter.yaml
# and cedar/starter.cedar. Pattern rules read input.action.params_text, which agt has already
# folded (case, whitespace, quotes, Unicode), so every engine sees the same text.
package agt.policies.starter

default_action := "allow"

destructive_db_tools := {"drop_table", "drop_database", "truncate_table", "delete_database", "db_drop", "db_truncate"}

destructive_patterns := ["rm -rf /", "drop table", "delete from"]

deny["block-destructive-db-tools"] := "Destructive database tools are blocked." if {
	input.action.tool in destructive_db_tools
}

deny["block-destructive-patterns"] := "A parameter contains a destructive command (rm -rf /, DROP TABLE, DELETE FROM)." if {
	some pattern in destructive_patterns
	contains(input.action.params_text, pattern)
}

deny["token-budget"] := "Token budget of 8,000 per task exceeded." if {
	input.context.tokens_used > 8000
}

deny["tool-call-limit"] := "More than 20 tool calls in this task." if {
	input.context.tool_calls > 20
}

deny["files-changed-limit"] := "More than 15 files changed in this task." if {
	input.context.files_changed > 15
}

deny["low-trust-no-shell"] := "Agents with trust below 500 may not execute commands." if {
	input.action.kind == "execute"
	input.agent.trust_score < 500
}

deny["workspace-write-only"] := "Agents may write files only under their own workspace." if {
	input.action.kind in {"write", "delete"}
	input.resource.type == "file"
	not in_workspace
}

# Only a non-empty string workspace grants anything: "" + "/" would make every absolute path "inside".
in_workspace if {
	workspace := input.agent.attributes.workspace
	is_string(workspace)
	workspace != ""
	startswith(input.resource.id, concat("", [workspace, "/"]))
}

approval["email-approval"] := {
	"message": "Sending email needs a human approval.",
	"approvers": ["comms-lead"],
} if {
	input.action.tool == "send_email"
}

approval["production-write-approval"] := {
	"message": "Writes in production need a human approval.",
	"approvers": ["on-call-sre"],
} if {
	input.context.environment == "production"
	input.action.kind in {"write", "delete"}
}
