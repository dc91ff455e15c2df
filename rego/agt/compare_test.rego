# agt.compare and friends: numbers and strings order; decimals compare exactly.
# (A type mismatch fails the whole query, which `opa test` cannot catch: tests/test_rego_library.py checks it.)
package agt.compare_test

import data.agt

test_decimal_above_the_limit if agt.greater(100.01, 100)

test_decimal_at_the_limit_is_not_above if not agt.greater(100.00, 100)

test_decimal_below_the_limit if not agt.greater(19.99, 100)

test_more_digits_than_a_float_holds if agt.greater(100.0000000000000000001, 100)

test_greater_or_equal_at_the_limit if agt.greater_or_equal(100.00, 100)

test_less_and_less_or_equal if {
	agt.less(19.99, 100)
	agt.less_or_equal(100, 100.0)
	not agt.less(100, 100)
}

test_strings_order_as_strings if agt.greater("b", "a")

test_string_and_number_are_not_comparable if not agt.comparable("19.99", 100)

test_bool_and_number_are_not_comparable if not agt.comparable(true, 1)

test_null_and_number_are_not_comparable if not agt.comparable(null, 1)

over_limit if agt.greater(input.action.params.amount, 100)

test_missing_field_does_not_match if not over_limit with input as {"action": {"params": {}}}

test_present_field_matches if over_limit with input as {"action": {"params": {"amount": 100.01}}}
