# The agt decision library: one decision per input, under the same combining rules as every agt engine.
#
# Policy packages live under data.agt.policies.<name> and contribute three partial objects keyed by rule id:
#   deny[id]     := message
#   approval[id] := {"message": message, "approvers": [names]}
#   allow[id]    := message
# and optionally `default_action := "allow"`. Query data.agt.decision (POST /v1/data/agt/decision).
package agt

# All matches across every policy package.
denies[id] := msg if {
	some pkg, id
	msg := data.agt.policies[pkg].deny[id]
}

approvals[id] := a if {
	some pkg, id
	a := data.agt.policies[pkg].approval[id]
}

allows[id] := msg if {
	some pkg, id
	msg := data.agt.policies[pkg].allow[id]
}

default default_effect := "deny"

default_effect := "allow" if {
	some pkg
	data.agt.policies[pkg].default_action == "allow"
}

# deny > require_approval > allow > the policy default (deny unless a package says allow).
effect := "deny" if {
	count(denies) > 0
} else := "require_approval" if {
	count(approvals) > 0
} else := "allow" if {
	count(allows) > 0
} else := default_effect

# The rules that determined the effect, sorted by id; "default" when nothing matched.
reasons := [{"id": id, "message": denies[id]} | some id in sort(object.keys(denies))] if {
	count(denies) > 0
} else := [{"id": id, "message": approvals[id].message} | some id in sort(object.keys(approvals))] if {
	count(approvals) > 0
} else := [{"id": id, "message": allows[id]} | some id in sort(object.keys(allows))] if {
	count(allows) > 0
} else := [{"id": "default", "message": sprintf("no rule matched; policy default is %s", [default_effect])}]

approvers := sort({name |
	some approval in approvals
	some name in approval.approvers
}) if effect == "require_approval"

default approvers := []

# Every rule that matched, whatever it decided: for rule coverage, not for parity.
matched := sort(((object.keys(denies) | object.keys(approvals)) | object.keys(allows)))

decision := {
	"effect": effect,
	"reasons": reasons,
	"approvers": approvers,
	"matched": matched,
}
