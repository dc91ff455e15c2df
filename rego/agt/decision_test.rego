# The combining rules of data.agt.decision, with policies injected through `with data...`.
package agt.decision_test

import data.agt

no_policies := {}

test_no_policy_denies_by_default if {
	d := agt.decision with data.agt.policies as no_policies with input as {}
	d.effect == "deny"
	d.reasons[0].id == "default"
}

test_allow_rule_allows if {
	d := agt.decision with data.agt.policies as {"p": {"allow": {"ok": "fine"}}} with input as {}
	d.effect == "allow"
	d.reasons == [{"id": "ok", "message": "fine"}]
}

test_approval_beats_allow_and_unions_approvers if {
	pols := {
		"p": {"allow": {"ok": "fine"}, "approval": {"b": {"message": "m", "approvers": ["x", "y"]}}},
		"q": {"approval": {"a": {"message": "n", "approvers": ["y", "z"]}}},
	}
	d := agt.decision with data.agt.policies as pols with input as {}
	d.effect == "require_approval"
	[r.id | some r in d.reasons] == ["a", "b"]
	d.approvers == ["x", "y", "z"]
}

test_deny_beats_everything if {
	pols := {"p": {
		"allow": {"ok": "fine"},
		"approval": {"b": {"message": "m", "approvers": ["x"]}},
		"deny": {"z": "no", "y": "no"},
	}}
	d := agt.decision with data.agt.policies as pols with input as {}
	d.effect == "deny"
	[r.id | some r in d.reasons] == ["y", "z"]
	d.approvers == []
}

test_default_allow_from_any_package if {
	d := agt.decision with data.agt.policies as {"p": {"default_action": "allow"}} with input as {}
	d.effect == "allow"
	d.reasons[0].id == "default"
}
