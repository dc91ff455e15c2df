"""agt.audit.text: the one rule that makes any event storable (escaped surrogates, safe fallbacks)."""

from __future__ import annotations

from agt.audit.text import MAX_DEPTH, escape_text, safe_document, safe_str


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_a_lone_surrogate_becomes_its_escape_text():
    assert escape_text("a\ud800b\udfff") == "a\\ud800b\\udfff"


def test_text_utf8_can_encode_is_unchanged():
    assert escape_text("naïve ☃ 𝄞") == "naïve ☃ 𝄞"


def test_safe_str_of_an_object_whose_str_raises_names_its_type():
    assert safe_str(Unprintable()) == "<Unprintable: str() raised RuntimeError>"


def test_safe_document_escapes_keys_and_values_at_any_depth():
    assert safe_document({"k\ud800": [{"v": "\udc00"}]}) == {"k\\ud800": [{"v": "\\udc00"}]}


def test_safe_document_turns_values_json_cannot_hold_into_text():
    assert safe_document({"when": Unprintable(), 1: b"x"}) == {"when": "<Unprintable: str() raised RuntimeError>", "1": "b'x'"}


def test_safe_document_cuts_a_circular_container():
    doc: dict = {}
    doc["self"] = doc
    assert safe_document(doc) == {"self": "<circular>"}


def test_safe_document_cuts_nesting_deeper_than_max_depth():
    doc: list = []
    inner = doc
    for _ in range(MAX_DEPTH + 10):
        inner.append([])
        inner = inner[0]
    out, depth = safe_document(doc), 0
    while isinstance(out, list):
        out, depth = out[0], depth + 1
    assert (out, depth) == ("<nested too deeply>", MAX_DEPTH)
