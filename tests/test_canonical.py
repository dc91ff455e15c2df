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


# --- the orjson fast path: kept only where its bytes are json's -------------------------------------------------

def _float_sample(seed: int, n: int) -> list[float]:
    import random
    import struct

    rnd = random.Random(seed)
    floats = [struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(64)))[0] for _ in range(n)]
    floats += [m * 10.0 ** e * s for e in range(-330, 309) for m in (1, 1.5, 9.999999999999999, 3.14159) for s in (1, -1)]
    floats += [1e16, 9999999999999998.0, 1e15, 1e-4, 1e-5, 0.0001234, 0.00001234, 5e-324, -0.0, 2.0 ** 53 + 2]
    return [f for f in floats if math.isfinite(f)]


def test_every_float_orjson_is_trusted_with_is_written_as_repr_writes_it():
    from agt._canonical import canonical_json_if_orjson

    trusted = 0
    for f in _float_sample(1, 200_000):
        fast = canonical_json_if_orjson([f])
        if fast is not None:
            trusted += 1
            assert fast == f"[{f!r}]".encode(), f
    assert trusted > 100_000  # the sample reaches the fast path, or this test would prove nothing


@pytest.mark.parametrize("value", [0.00001, 1e-7, -2.5e-300, math.nan, math.inf, None, {"a": [1, None]}])
def test_small_floats_nan_and_null_are_left_to_json(value):
    from agt._canonical import canonical_json_if_orjson

    assert canonical_json_if_orjson(value) is None
    assert canonical_json(value) == _dumps(value)


def test_a_string_that_looks_like_a_float_or_null_only_costs_the_slower_encoder():
    from agt._canonical import canonical_json_if_orjson

    for text in ("null", "re-run", "0.00001"):
        assert canonical_json_if_orjson({"s": text}) is None
        assert canonical_json({"s": text}) == _dumps({"s": text})
    assert canonical_json_if_orjson({"s": "plain"}) == b'{"s":"plain"}'


class _Items(dict):
    def items(self):  # json's encoder reads a dict subclass through its own methods
        return [("only", 1)]


@pytest.mark.parametrize("value", [
    {1: "int key", 2: True}, {"n": 2 ** 70}, {"n": -(2 ** 64)}, _Items(a=1), [[[]]] * 1 + [0],
    {"deep": json.loads("[" * 300 + "]" * 300)}, {"t": (1, "x", (2,))},
])
def test_what_orjson_refuses_or_reads_differently_gets_json_bytes(value):
    assert canonical_json(value) == _dumps(value)


def test_a_lone_surrogate_still_has_no_canonical_form():
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"s": "\ud800"})


def test_keys_sort_by_code_point_on_both_paths():
    doc = {"b": 1, "a": 2, "é": 3, "Z": 4, "\U0001f600": 5, "\uffff": 6, "": 7}
    assert canonical_json(doc) == _dumps(doc)


class _Colour(__import__("enum").Enum):
    RED = "red"


def test_an_enum_and_a_uuid_are_written_alike_whichever_encoder_writes():
    import uuid

    ident = uuid.UUID(int=5)
    fast = canonical_json({"c": _Colour.RED, "u": ident})
    slow = canonical_json({"c": _Colour.RED, "u": ident, "f": 1e-7})  # a small float: json writes this one
    assert fast == b'{"c":"red","u":"00000000-0000-0000-0000-000000000005"}'
    assert slow == b'{"c":"red","f":1e-07,"u":"00000000-0000-0000-0000-000000000005"}'
