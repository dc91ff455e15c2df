# data.agt.batch: the decisions of many inputs in one query, in order, each equal to its own decision.
package agt.batch_test

import data.agt

policies := {"p": {"default_action": "allow"}}

approvals := {"p": {
	"default_action": "allow",
	"approval": {"mail": {"message": "mail needs a person", "approvers": ["ops"]}},
	"deny": {"drop": "no drop"},
}}

test_empty_batch_is_an_empty_list if {
	agt.batch == [] with data.agt.policies as policies with input as {"inputs": []}
}

test_one_input_is_its_own_decision if {
	x := {"action": {"tool": "read_file"}}
	b := agt.batch with data.agt.policies as policies with input as {"inputs": [x]}
	single := agt.decision with data.agt.policies as policies with input as x
	b == [single]
}

test_order_follows_the_inputs if {
	xs := [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]
	b := agt.batch with data.agt.policies as policies with input as {"inputs": xs}
	count(b) == 4
	every d in b {
		d.effect == "allow"
	}
}

# Inputs that decide differently (the starter policy, loaded beside this test) keep their places, each
# equal to its own decision.
base := {
	"agent": {"id": "alice", "roles": ["developer"], "trust_score": 720, "attributes": {"workspace": "/ws/alice"}},
	"action": {"tool": "read_file", "kind": "read", "params": {}, "params_text": ""},
	"resource": null,
	"context": {"tokens_used": 1000, "tool_calls": 3, "files_changed": 1, "environment": "development"},
}

with_tool(tool) := object.union(base, {"action": object.union(base.action, {"tool": tool})})

test_mixed_inputs_keep_their_places_and_decisions if {
	xs := [base, with_tool("drop_table"), base, with_tool("send_email"), with_tool("drop_table")]
	b := agt.batch with input as {"inputs": xs}
	[d.effect | some d in b] == ["allow", "deny", "allow", "require_approval", "deny"]
	every i, x in xs {
		b[i] == agt.decision with input as x
	}
}

test_what_the_library_gives_is_passed_through_in_place if {
	b := agt.batch with agt.decision as null with input as {"inputs": [base]}
	b == [null]
}

test_duplicates_are_decided_each_time if {
	x := {"action": {"tool": "read_file"}}
	b := agt.batch with data.agt.policies as policies with input as {"inputs": [x, x, x]}
	count(b) == 3
	b[0] == b[2]
}
