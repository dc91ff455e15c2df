# Ordering for policy rules: two numbers or two strings compare; anything else is a type error.
#
# Rego orders values across types, so any string sorts above any number: `"19.99" > 100` is true, and a
# money rule written with `>` asks for approval on a string amount, while `amount < 10` lets it through.
# Compare params through these functions instead:
#
#   approval["refund-approval"] := {...} if {
#   	input.action.tool == "refund"
#   	agt.greater(input.action.params.amount, 100)
#   }
#
# On a type mismatch `compare` produces two different values. That is an eval_conflict_error, which fails
# the whole query whatever flags the client sent: OPA answers HTTP 500 naming the values, and agt denies
# with engine_error, as the YAML engine does for the same comparison. A missing field stays undefined,
# so the rule does not match (the missing-field semantics of every agt engine).
package agt

# Both numbers (integers and decimals alike) or both strings.
comparable(a, b) if {
	is_number(a)
	is_number(b)
}

comparable(a, b) if {
	is_string(a)
	is_string(b)
}

# -1, 0 or 1; a type error for values that are not comparable.
compare(a, b) := -1 if {
	comparable(a, b)
	a < b
}

compare(a, b) := 0 if {
	comparable(a, b)
	a == b
}

compare(a, b) := 1 if {
	comparable(a, b)
	a > b
}

compare(a, b) := sprintf("agt: cannot order %s %v against %s %v", [type_name(a), a, type_name(b), b]) if {
	not comparable(a, b)
}

compare(a, b) := false if {
	not comparable(a, b)
}

greater(a, b) if compare(a, b) == 1

greater_or_equal(a, b) if compare(a, b) >= 0

less(a, b) if compare(a, b) == -1

less_or_equal(a, b) if compare(a, b) <= 0
