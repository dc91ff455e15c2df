# The Rego twin of policies/agtflat/agtflat.yaml. A flat name reads the params first, then context.attributes
# (an else chain); `user.role != 'admin'` is `not user_role == "admin"`, true when the role is missing.
package agt.policies.agtflat

default_action := "allow"

deny["block-destructive"] := "Destructive operations are blocked." if {
	input.action.type in {"drop", "delete", "truncate"}
}

user_role := v if {
	v := input.action.params.user.role
} else := v if {
	v := input.context.attributes.user.role
}

deny["admins-only-deploy"] := "Only admins deploy." if {
	input.action.tool == "deploy"
	not user_role == "admin"
}

approval["dev-writes-need-approval"] := {"message": "Writes in development need a lead.", "approvers": ["lead"]} if {
	input.context.environment == "development"
	input.action.kind == "write"
}

deny["low-trust-executes"] := "Low-trust agents do not execute." if {
	is_number(input.agent.trust_score)
	input.agent.trust_score < 300
	input.action.kind == "execute"
}
