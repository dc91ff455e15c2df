"""agt._canonical: one shared encoder writes exactly what json.dumps writes with the canonical options."""

from __future__ import annotations

import json
import math
import threading
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agt._canonical import canonical_json


def _documents(floats: st.SearchStrategy[float]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=20,
    )


_json_values = _documents(st.floats())
_finite_values = _documents(st.floats(allow_nan=False, allow_infinity=False))


def _dumps(value, allow_nan=True) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan).encode("utf-8")


@given(_json_values)
def test_the_shared_encoder_writes_what_json_dumps_writes(value):
    try:
        expected = _dumps(value)
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form either way
        with pytest.raises(UnicodeEncodeError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@given(_finite_values)
def test_allow_nan_false_writes_the_same_finite_documents(value):
    try:
        expected = _dumps(value, allow_nan=False)
    except UnicodeEncodeError:
        return
    assert canonical_json(value, allow_nan=False) == expected


def test_allow_nan_false_refuses_nan_and_allow_nan_true_writes_it():
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan}, allow_nan=False)
    assert canonical_json({"x": math.nan}) == b'{"x":NaN}'


def test_a_decimal_is_written_with_its_exact_digits():
    assert canonical_json({"b": Decimal("0.10000000000000000000001"), "a": [Decimal("1.5")]}) == \
        b'{"a":[1.5],"b":0.10000000000000000000001}'


def test_a_value_json_has_no_form_for_still_raises_type_error():
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_threads_sharing_the_encoder_each_get_their_own_document():
    docs = [{"n": i, "s": "é" * (i % 7), "l": list(range(i % 5))} for i in range(200)]
    results: dict[int, bytes] = {}

    def encode(i: int) -> None:
        for _ in range(50):
            results[i] = canonical_json(docs[i])

    threads = [threading.Thread(target=encode, args=(i,)) for i in range(len(docs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == _dumps(docs[i]) for i in range(len(docs)))
