# Money and recipients: the same intent and rule ids as money.yaml and money.cedar. Numbers are compared
# through agt.greater (rego/agt/compare.rego): a string amount is a type error, hence a deny, never the
# approval that `"19.99" > 100` would give in plain Rego.
package agt.policies.money

import data.agt

default_action := "allow"

approval["refund-approval"] := {
	"message": "Refunds over 100.00 need a finance approval.",
	"approvers": ["finance-lead"],
} if {
	input.action.tool == "refund"
	agt.greater(input.action.params.amount, 100.00)
}

approval["external-email-approval"] := {
	"message": "Email to anyone outside example.com needs a human approval.",
	"approvers": ["comms-lead"],
} if {
	input.action.tool == "send_email"
	not endswith(input.action.params.to, "@example.com")
}

deny["credit-limit"] := "Credits over 500 are refused." if {
	input.action.tool == "issue_credit"
	agt.greater(input.action.params.credit, 500)
}
