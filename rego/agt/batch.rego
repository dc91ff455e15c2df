# Many decisions in one query: POST /v1/data/agt/batch {"input": {"inputs": [<action>, ...]}}.
#
# The result is a list with one element per input, in input order: exactly what data.agt.decision gives
# for that input alone, or null where it gives nothing (a library that leaves the decision undefined), so
# the list never shifts. Open-source OPA has no batch endpoint; this rule is agt's (the opa engine's
# evaluate_many). A type error in one input (agt.compare's eval_conflict_error) fails the whole query
# with HTTP 500, as it would fail that input's own query; agt then decides that chunk one input at a time.
package agt

# METADATA
# description: The decisions of input.inputs, in order (its input is a list of actions, not one action).
# schemas:
#   - input: {"type": "object", "properties": {"inputs": {"type": "array"}}, "required": ["inputs"]}
batch := [one_decision(x) | some x in input.inputs]

default one_decision(_) := null

one_decision(x) := d if {
	d := decision with input as x
}
