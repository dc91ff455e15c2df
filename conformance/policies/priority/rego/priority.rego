# The Rego twin of policies/priority/priority.yaml under priority_first_match: each rule's body adds
# `not <every higher-priority rule's condition>` (ties: the rule written earlier counts as higher), so at most one
# rule matches and agt's combining returns exactly the winner.
package agt.policies.priority

admin_read if {
	"admin" in input.agent.roles
	input.action.kind == "read"
}

secret if input.action.tool == "read_secret"

read if input.action.kind == "read"

search if input.action.tool == "search"

allow["allow-admin-reads"] := "Admins may read anything." if admin_read

deny["deny-secrets"] := "Secrets are not read by agents." if {
	secret
	not admin_read
}

approval["approve-reads"] := {"message": "Reads need a lead's approval.", "approvers": ["lead"]} if {
	read
	not admin_read
	not secret
}

allow["allow-search"] := "Search is allowed." if {
	search
	not admin_read
	not secret
	not read
}
