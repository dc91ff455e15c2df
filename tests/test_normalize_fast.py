"""The hot-path shortcuts of issue 14 give exactly what the plain code they replace gives."""

from __future__ import annotations

import re
import sys
from types import MappingProxyType

from hypothesis import given, settings, strategies as st

from agt import _normalize
from agt.action import PATH_LIST_PARAMS, PATH_PARAMS, Resource, infer_kind, infer_resources, _infer_kind
from agt.facts import classify_params

_WHITESPACE = re.compile(r"\s+")


def test_split_is_the_whitespace_regex_on_every_code_point():
    for c in range(sys.maxunicode + 1):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        assert (_WHITESPACE.fullmatch(ch) is not None) == ch.isspace(), hex(c)


def _reference_canonical_text(value: str) -> str:
    import unicodedata
    if value.isascii():
        text = value.lower().translate(_normalize._QUOTES)
    else:
        text = unicodedata.normalize("NFKC", value)
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
        text = text.casefold().translate(_normalize._QUOTES)
    return _WHITESPACE.sub(" ", text).strip()


def _reference_params_text(params) -> str:
    from collections.abc import Mapping
    lines: list[str] = []

    def walk(value):
        if isinstance(value, str):
            lines.append(_reference_canonical_text(value))
        elif isinstance(value, Mapping):
            for key in sorted(value):
                walk(value[key])
        elif isinstance(value, list):
            if value and all(not isinstance(v, (Mapping, list)) for v in value):
                lines.append(_reference_canonical_text(" ".join(v if isinstance(v, str) else _normalize._json.dumps(v) for v in value)))
            else:
                for item in value:
                    walk(item)

    walk(params)
    return "\n".join(line for line in lines if line)


_text = st.text(alphabet=st.sampled_from(list(" \t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u2028\u3000'\"`\u2019abcAB/.-_\uff21\u200b")), max_size=12)
_scalar = st.one_of(_text, st.integers(-5, 5), st.booleans(), st.none())
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.sampled_from(["a", "b", "path", "cmd"]), inner, max_size=4)),
                     max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["path", "Path", "x", "cmd", "b"]), _json, max_size=5))
def test_params_text_and_canonical_text_match_the_plain_code(params):
    assert _normalize.params_text(params) == _reference_params_text(params)
    assert _normalize.params_text(MappingProxyType(params)) == _reference_params_text(params)
    for value in params.values():
        if isinstance(value, str):
            assert _normalize.canonical_text(value) == _reference_canonical_text(value)


def _reference_infer_resources(params):
    found: list[str] = []
    by_name = {k.lower(): v for k, v in params.items()} if any(not k.islower() for k in params) else params
    for name in (*PATH_PARAMS, *PATH_LIST_PARAMS):
        value = by_name.get(name)
        if isinstance(value, str) and value:
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str) and v)
    if found:
        files = {Resource("file", p).id: None for p in found}
        return tuple(Resource("file", p) for p in files)
    for name, rtype in (("table", "table"), ("database", "database"), ("url", "url"), ("to", "recipient")):
        value = params.get(name)
        if isinstance(value, str) and value:
            return (Resource(rtype, value),)
    return ()


_names = st.sampled_from(["path", "PATH", "dest", "Dest", "src", "paths", "files", "table", "Table", "url", "to", "x", "1"])
_paths = st.one_of(st.sampled_from(["", "a", "/ws/a/../b", "//x//y/", "./c", "/ws/alice/README.md"]), st.integers(0, 3))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_names, st.one_of(_paths, st.lists(_paths, max_size=3)), max_size=6))
def test_infer_resources_matches_the_plain_code(params):
    want = _reference_infer_resources(params)
    got = infer_resources(params)
    assert got == want
    assert [r.attributes == {} and dict(r._attributes_dict) == dict(r.attributes) for r in got] == [True] * len(got)
    assert infer_resources(MappingProxyType(params)) == want


def test_cached_answers_are_the_computed_answers():
    for tool in ["read_file", "WriteFile", "fs_delete", "apply_patch", "x", "run_shell", "send-email"] * 2:
        assert infer_kind(tool) is _infer_kind(tool)
    for path in ["/a/../../b", "//x", "a/./b/", "/ws/alice"] * 2:
        assert _normalize.canonical_path(path) == __import__("posixpath").normpath(re.sub(r"^/+", "/", path))


def test_classify_params_shortcut_only_skips_names_without_a_role():
    for params in [{"path": "x", "encoding": "y"}, {"cmd": "ls"}, {"program": "ls", "args": ["-l"]}, {"query": "select 1"}]:
        assert classify_params("run_db", "execute", params) == classify_params("run_db", "execute", MappingProxyType(params))


_fact_names = st.sampled_from(["path", "cmd", "command", "args", "program", "sql", "query", "script", "x", "encoding"])
_fact_values = st.one_of(st.sampled_from(["ls -l /", "rm -rf /", "select 1", "DROP TABLE x", "", "/ws/a"]),
                         st.lists(st.sampled_from(["ls", "-rf", "/"]), max_size=3), st.integers(0, 3))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["read_file", "run_shell", "run_db_query", "python_exec"]), st.sampled_from(["read", "execute"]),
       st.dictionaries(_fact_names, _fact_values, max_size=4))
def test_derive_facts_shortcut_is_the_full_classification(tool, kind, params):
    # A read-only view of the same params takes neither shortcut (derive_facts's nor classify_params's).
    from agt.facts import derive_facts
    assert derive_facts(tool, kind, params) == derive_facts(tool, kind, MappingProxyType(params))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["path", "x"]), _json, min_size=1, max_size=1))
def test_params_text_of_one_param_is_the_plain_code(params):
    # One param, the shortcut's case: a text folds alone, anything else takes the loop.
    assert _normalize.params_text(params) == _reference_params_text(params)


def _reference_normalize_mapping(value, field):
    from collections.abc import Mapping
    from agt.errors import ActionError
    if value is None or (type(value) is dict and not value):
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):
        raise ActionError(field, f"must be an object, got {type(value).__name__}")
    return _normalize.normalize_dict(value, field, 0) if type(value) is dict else _normalize.normalize_value(value, field)


class _Dict(dict):
    """A dict subclass: a Mapping, but not the exact dict the first test takes."""


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), _json, st.dictionaries(st.one_of(_text, st.integers(0, 2)), _json, max_size=3),
                 st.dictionaries(_text, _json, max_size=3).map(MappingProxyType),
                 st.dictionaries(_text, _json, max_size=3).map(_Dict), st.sampled_from([(), [], "", 0, b"", {}])))
def test_normalize_mapping_is_the_plain_code(value):
    def outcome(make):
        try:
            got = make()
        except Exception as exc:  # noqa: BLE001 - the same refusal, naming the same field
            return "raised", type(exc).__name__, getattr(exc, "field", None), str(exc)
        return "ok", type(got), got

    got, want = outcome(lambda: _normalize.normalize_mapping(value, "f")), outcome(lambda: _reference_normalize_mapping(value, "f"))
    assert got == want
    if got[0] == "ok":
        assert _normalize.normalize_mapping(value, "f") is not _normalize.normalize_mapping(value, "f")  # a new dict each time


_file_texts = st.one_of(st.sampled_from(["a", "/ws/a/../b", "//x//y/", "./c", "/ws/alice/README.md", "é", "/ws/\udc80",
                                         "x" * _normalize.MAX_STRING_LENGTH, "y" * (_normalize.MAX_STRING_LENGTH + 1),
                                         "/" + "z" * 600]),
                        st.text(max_size=8))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["path", "PATH", "file", "dest", "paths", "x"]), _file_texts)
def test_one_file_param_is_the_plain_code_computed_or_cached(name, text):
    # The one-file shortcut keeps its answers by text: the first answer (computed) and the second (cached, if the text
    # is short enough) are the plain code's, and a text every Resource refuses is refused alike, naming resource.id.
    from agt.errors import ActionError

    def outcome(make):
        try:
            return "ok", make()
        except ActionError as exc:
            return "refused", exc.field

    want = outcome(lambda: _reference_infer_resources({name: text}))
    assert outcome(lambda: infer_resources({name: text})) == want
    assert outcome(lambda: infer_resources({name: text})) == want
    assert outcome(lambda: infer_resources(MappingProxyType({name: text}))) == want
