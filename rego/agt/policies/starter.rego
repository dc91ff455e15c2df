# agt starter governance policy in Rego: the same intent and rule ids as policies/starter.yaml
# and cedar/starter.cedar. Destructive commands and SQL are judged on input.action.facts (what the
# shell and SQL params mean, parsed once by agt); the text patterns read input.action.params_text, which
# agt has already folded (case, whitespace, quotes, Unicode), as a second line on text no parser read.
package agt.policies.starter

import data.agt

default_action := "allow"

destructive_db_tools := {"drop_table", "drop_database", "truncate_table", "delete_database", "db_drop", "db_truncate"}

deny["block-destructive-db-tools"] := "Destructive database tools are blocked." if {
	input.action.tool in destructive_db_tools
}

# --- on meaning: the facts agt derives from command and SQL params (input.action.facts) ---
shell := input.action.facts.shell

sql := input.action.facts.sql

deny["block-recursive-delete"] := "Recursive delete of /, ~, * or a system directory." if {
	shell.deletes_system_path == true
}

deny["block-disk-wipe"] := "Formatting a disk or writing to a device is blocked." if {
	"mkfs" in shell.program_families
}

deny["block-disk-wipe"] := "Formatting a disk or writing to a device is blocked." if {
	shell.writes_device == true
}

deny["block-destructive-sql"] := "DROP, TRUNCATE, and DELETE or UPDATE without WHERE are blocked." if {
	some t in sql.types
	t in {"drop", "truncate"}
}

deny["block-destructive-sql"] := "DROP, TRUNCATE, and DELETE or UPDATE without WHERE are blocked." if {
	some t in sql.without_where
	t in {"delete", "update"}
}

unparsed_message := "A command agt cannot see through (parse error, substitution, eval, pipe into a shell) is blocked."

deny["block-unparsed-command"] := unparsed_message if {
	input.action.kind == "execute"
	cannot_see_through
}

# SQL that does not parse, on a tool of any kind (a query tool infers kind read).
deny["block-unparsed-command"] := unparsed_message if sql.parse_error == true

cannot_see_through if input.action.facts.parse_error == true

cannot_see_through if {
	some marker in ["command_substitution", "process_substitution", "eval", "pipe_to_shell"]
	shell[marker] == true
}

# The second line: text patterns, only on text the parsers did not read (an input without facts included).
parsed(language) if input.action.facts[language].parsed == true

deny["block-destructive-patterns"] := "A parameter contains a destructive command (rm -rf /, DROP TABLE, DELETE FROM)." if {
	not parsed("shell")
	contains(input.action.params_text, "rm -rf /")
}

deny["block-destructive-patterns"] := "A parameter contains a destructive command (rm -rf /, DROP TABLE, DELETE FROM)." if {
	not parsed("sql")
	some pattern in ["drop table", "delete from"]
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

# amount is a decimal in policies/catalog.yaml; agt.greater refuses to order a string against a number.
approval["refund-approval"] := {
	"message": "Refunds over 100.00 need a finance approval.",
	"approvers": ["finance-lead"],
} if {
	input.action.tool == "refund"
	agt.greater(input.action.params.amount, 100.00)
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
