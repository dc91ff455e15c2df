"""The hand-written ``__init__`` of Agent, Operation, Resource, Context and Action against the slow path it replaces.

The reference classes below are what agt.action held before: frozen dataclasses with the *generated* ``__init__``
and the checks in ``__post_init__``. For any arguments, the fast and the reference constructor must build equal
values (same fields, same read-only views, same document parts) or refuse with the same field named.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import re
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agt import _normalize
from agt.action import (
    FILE_RESOURCE_TYPES,
    Action,
    Agent,
    Context,
    Kind,
    Operation,
    Resource,
    Stage,
    _enum,
    _require_count,
    _require_str,
    _set_mapping,
    infer_resources,
)
from agt.facts import derive_facts
from agt.errors import ActionError

_setattr = object.__setattr__


@dataclass(frozen=True)
class RefAgent:
    id: str
    roles: tuple[str, ...] = ()
    trust_score: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_str(self.id, "agent.id", allow_empty=False)
        roles = self.roles
        if isinstance(roles, str) or not isinstance(roles, (list, tuple, set, frozenset)):
            raise ActionError("agent.roles", "must be a list of strings")
        _setattr(self, "roles", tuple(sorted({_require_str(r, "agent.roles[]") for r in roles})))
        score = self.trust_score
        if score is not None and (isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 1000):
            raise ActionError("agent.trust_score", f"must be a whole number from 0 to 1000, got {score!r}")
        attributes = _normalize.normalize_mapping(self.attributes, "agent.attributes")
        if "workspace" in attributes:
            _require_str(attributes["workspace"], "agent.attributes.workspace")
            attributes["workspace"] = _normalize.canonical_path(attributes["workspace"])
        _set_mapping(self, "attributes", attributes)


@dataclass(frozen=True)
class RefOperation:
    tool: str
    kind: Kind = Kind.EXECUTE
    params: Mapping[str, Any] = field(default_factory=dict)
    type: str | None = None

    def __post_init__(self) -> None:
        _require_str(self.tool, "action.tool", allow_empty=False)
        if self.type is not None:
            _require_str(self.type, "action.type", allow_empty=False)
        _setattr(self, "kind", _enum(Kind, self.kind, "action.kind"))
        _set_mapping(self, "params", _normalize.normalize_mapping(self.params, "action.params"))

    # Derived from the params on first use, as Operation's were before it worked out most of them in __init__.
    @property
    def params_text(self) -> str:
        return _normalize.params_text(self._params_dict)  # type: ignore[attr-defined]

    @property
    def resources(self) -> tuple[Resource, ...]:
        return infer_resources(self._params_dict)  # type: ignore[attr-defined]

    @property
    def facts(self) -> Mapping[str, Any]:
        return derive_facts(self.tool, self.kind.value, self._params_dict)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefResource:
    type: str
    id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_str(self.type, "resource.type", allow_empty=False)
        rid = _require_str(self.id, "resource.id")
        if self.type in FILE_RESOURCE_TYPES:
            _setattr(self, "id", _normalize.canonical_path(rid))
        _set_mapping(self, "attributes", _normalize.normalize_mapping(self.attributes, "resource.attributes"))


@dataclass(frozen=True)
class RefContext:
    session_id: str = "default"
    task_id: str = ""
    stage: Stage = Stage.PRE_TOOL
    tokens_used: int = 0
    tool_calls: int = 0
    files_changed: int = 0
    environment: str | None = None
    timestamp: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_str(self.session_id, "context.session_id")
        _require_str(self.task_id, "context.task_id")
        _setattr(self, "stage", _enum(Stage, self.stage, "context.stage"))
        for name in ("tokens_used", "tool_calls", "files_changed"):
            _setattr(self, name, _require_count(getattr(self, name), f"context.{name}"))
        if self.environment is not None:
            _require_str(self.environment, "context.environment")
        _require_str(self.timestamp, "context.timestamp")
        if not self.timestamp:
            _setattr(self, "timestamp", "<now>")
        _set_mapping(self, "attributes", _normalize.normalize_mapping(self.attributes, "context.attributes"))


PAIRS = [(Agent, RefAgent), (Operation, RefOperation), (Resource, RefResource), (Context, RefContext)]


class Colour(enum.Enum):
    RED = "red"


def _outcome(make: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", make()
    except ActionError as exc:
        return "refused", exc.field
    except Exception as exc:  # noqa: BLE001 - any other refusal must be the reference's too (a TypeError is no deny)
        return "raised", type(exc).__name__


_DERIVED = ("params_text", "resources", "facts")


def _state(obj: Any, stamped_now: bool = False) -> dict[str, Any]:
    """Every field and the private dict behind each read-only view, with the view's type."""
    out = {}
    if isinstance(obj, (Operation, RefOperation)):  # derived values, whenever each is worked out: the same values
        out.update((name, getattr(obj, name)) for name in _DERIVED)
    for name, value in vars(obj).items():
        if name in _DERIVED:
            continue
        if name == "timestamp" and stamped_now and type(obj) is Context:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", value), value
            value = "<now>"  # the reference's stand-in for the clock
        out[name] = (type(value), dict(value) if isinstance(value, MappingProxyType) else value)
    return out


def _same(fast: Callable[[], Any], slow: Callable[[], Any], stamped_now: bool = False) -> None:
    got, want = _outcome(fast), _outcome(slow)
    assert got[0] == want[0], (got, want)
    if got[0] == "refused":
        assert got[1] == want[1]
        return
    assert _state(got[1], stamped_now) == _state(want[1])


texts = st.one_of(st.sampled_from(["", "a", "alice", "/ws/alice", "/ws/../etc", "developer", "é", "\udc80",
                                   "x" * (_normalize.MAX_STRING_LENGTH + 1), "2026-01-01T00:00:00Z",
                                   *(k.value for k in Kind), *(s.value for s in Stage)]),
                  st.text(max_size=8))
scalars = st.one_of(texts, st.integers(min_value=-(2**64), max_value=2**64), st.booleans(), st.none(),
                    st.floats(allow_nan=True), st.decimals(allow_nan=False, places=3), st.binary(max_size=4),
                    st.sampled_from([Colour.RED, Kind.READ, Stage.POST_TOOL, object(), 1.0, 3.5, -1]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner),
                                                        st.dictionaries(st.one_of(texts, st.integers(0, 3)), inner, max_size=3)),
                      max_leaves=8)
mappings = st.one_of(st.none(), st.dictionaries(st.one_of(texts, st.sampled_from(["workspace", "path"])), values, max_size=4),
                     st.dictionaries(texts, values, max_size=2).map(MappingProxyType), values)
anything = st.one_of(values, mappings, st.integers(-2, 2**64), st.booleans(), st.floats(), st.sampled_from([3.5, -1.0, "3"]), st.sampled_from([("a",), ("b", "a", "b"), ["x"], {"r"}, frozenset(), ("\udc80",), (1,)]))


words = st.one_of(st.sampled_from(["a", "alice", "/ws/alice", "/ws//a/../b", "developer", "é", "2026-01-01T00:00:00Z"]),
                  st.text(st.characters(codec="utf-8"), min_size=1, max_size=6))
"""Texts every string field accepts."""
kinds = st.sampled_from([*Kind, *(k.value for k in Kind)])
stages = st.sampled_from([*Stage, *(s.value for s in Stage)])
good_mappings = st.one_of(st.none(), st.dictionaries(st.one_of(words, st.sampled_from(["workspace", "path"])),
                                                     st.one_of(words, st.integers(-5, 5), st.decimals(places=2, allow_nan=False,
                                                                                                       allow_infinity=False)),
                                                     max_size=3))


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` seven times in eight, else anything at all: so most examples get past the other fields' checks.
    (Not ``st.one_of(good, good, good, anything)``: one_of flattens nested one_ofs and weighs each branch alike.)"""
    return st.tuples(st.integers(0, 7), good, anything).map(lambda pick: pick[1] if pick[0] else pick[2])


@settings(max_examples=400, deadline=None)
@given(mostly(words), mostly(st.one_of(st.sampled_from([(), ("developer",), ["b", "a", "b"], {"r"}]), st.lists(words, max_size=3))),
       mostly(st.one_of(st.none(), st.integers(0, 1000), st.just(720))), mostly(good_mappings))
def test_agent_matches_the_generated_init(agent_id, roles, score, attributes):
    _same(lambda: Agent(agent_id, roles, score, attributes), lambda: RefAgent(agent_id, roles, score, attributes))


@settings(max_examples=400, deadline=None)
@given(mostly(words), mostly(kinds), mostly(good_mappings), mostly(st.one_of(st.none(), words)))
def test_operation_matches_the_generated_init(tool, kind, params, action_type):
    _same(lambda: Operation(tool, kind, params, action_type), lambda: RefOperation(tool, kind, params, action_type))


@settings(max_examples=300, deadline=None)
@given(mostly(st.one_of(st.sampled_from(["file", "directory", "table", "url"]), words)),
       mostly(st.one_of(st.sampled_from(["", "/ws//a/../b", "a/./b/", "//x"]), words)),
       mostly(good_mappings))
def test_resource_matches_the_generated_init(rtype, rid, attributes):
    _same(lambda: Resource(rtype, rid, attributes), lambda: RefResource(rtype, rid, attributes))


good_counts = st.one_of(st.integers(0, 2**63 - 1), st.integers(0, 9), st.sampled_from([3.0, 0.0]))


@settings(max_examples=400, deadline=None)
@given(mostly(st.one_of(st.just(""), words)), mostly(st.one_of(st.just(""), words)), mostly(stages), mostly(good_counts),
       mostly(good_counts), mostly(good_counts), mostly(st.one_of(st.none(), words)), mostly(st.one_of(st.just(""), words)),
       mostly(good_mappings))
def test_context_matches_the_generated_init(session, task, stage, tokens, calls, files, env, stamp, attributes):
    args = (session, task, stage, tokens, calls, files, env, stamp, attributes)
    _same(lambda: Context(*args), lambda: RefContext(*args), stamped_now=stamp == "")


_agent, _op = Agent("a"), Operation("t")


@pytest.mark.parametrize("args", [
    (_agent, _op), (_agent, _op, None, Context()), (_agent, _op, Resource("file", "/x")), ("a", _op), (_agent, "t"),
    (_agent, _op, "x"), (_agent, _op, None, None), (_agent, _op, None, {"session_id": "s"}),
])
def test_action_refuses_what_the_generated_init_refused(args):
    @dataclass(frozen=True)
    class RefAction:
        agent: Agent
        action: Operation
        resource: Resource | None = None
        context: Context = field(default_factory=Context)

        def __post_init__(self) -> None:
            for name, cls in (("agent", Agent), ("action", Operation), ("context", Context)):
                if not isinstance(getattr(self, name), cls):
                    raise ActionError(name, f"must be an {cls.__name__}")
            if self.resource is not None and not isinstance(self.resource, Resource):
                raise ActionError("resource", "must be a Resource or None")

    got, want = _outcome(lambda: Action(*args)), _outcome(lambda: RefAction(*args))
    assert got[0] == want[0] and (got[0] == "ok" or got[1] == want[1])
    if got[0] == "ok":
        made = got[1]
        assert (made.agent, made.action, made.resource) == (want[1].agent, want[1].action, want[1].resource)
        assert type(made.context) is Context


@pytest.mark.parametrize("fast, slow", [*PAIRS, (Action, None)])
def test_signature_is_the_dataclass_fields_in_order_with_their_defaults(fast, slow):
    params = list(inspect.signature(fast).parameters.values())
    fields = dataclasses.fields(fast)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields):
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default
        elif f.default_factory is dataclasses.MISSING:
            assert p.default is inspect.Parameter.empty
        # a default_factory field: None (a new empty mapping) or Action's private marker (a new Context)


def test_positional_and_keyword_arguments_build_the_same_value():
    assert Agent("a", ("r",), 5, {"k": 1}) == Agent(id="a", roles=("r",), trust_score=5, attributes={"k": 1})
    assert Operation("t", "read", {"p": 1}, "v") == Operation(tool="t", kind=Kind.READ, params={"p": 1}, type="v")
    assert Resource("file", "/a/../b") == Resource(type="file", id="/b")
    ctx = Context("s", "t", "post_tool", 1, 2, 3, "prod", "T", {"a": Decimal("1.50")})
    assert ctx == Context(session_id="s", task_id="t", stage=Stage.POST_TOOL, tokens_used=1, tool_calls=2, files_changed=3,
                          environment="prod", timestamp="T", attributes={"a": Decimal("1.5")})
    with pytest.raises(TypeError):
        Agent()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Operation("t", params_text="x")  # type: ignore[call-arg]


def test_replace_and_fields_still_work():
    action = Action(Agent("a"), Operation("t", params={"p": "/x"}))
    moved = dataclasses.replace(action, agent=Agent("b"))
    assert moved.agent.id == "b" and moved.action is action.action and moved.context is action.context
    assert dataclasses.replace(Context(), tokens_used=3).tokens_used == 3
    with pytest.raises(ActionError):
        dataclasses.replace(Agent("a"), trust_score=2000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        moved.agent = Agent("c")  # type: ignore[misc]
    assert Action(Agent("a"), Operation("t")).context is not Action(Agent("a"), Operation("t")).context


class _Str(str):
    """A str subclass: every string field refuses it; a fast path that tests ``len``/``isascii`` alone would not."""


_MAX = _normalize.MAX_STRING_LENGTH
_EDGES: list[Any] = [
    "", "a", "x" * _MAX, "x" * (_MAX + 1), "\u00e9", "\udc80", _Str("a"), b"a", None, 0, 1, -1, True, 3.0, 2.5, float("nan"),
    1000, 1001, 2**63 - 1, 2**63, Decimal(3), (), ("a",), ("b", "a"), ["a"], {"r"}, (1,), (_Str("r"),), (b"r",), ("\u00e9",),
    ("x" * (_MAX + 1),), ("\udc80",), {}, {"k": 1}, {"workspace": "/a/../b"}, {"workspace": 1}, MappingProxyType({"p": "/x"}),
    Kind.READ, "read", Stage.POST_TOOL, "post_tool", "file", "directory", "/a/./b/",
]
"""The values at each fast path's edges: lengths at and past the limit, non-ASCII and unpaired-surrogate text, str, int and
tuple look-alikes, bools as ints, counts at the 64-bit bound, and the enums' members and values."""

_GOOD_ARGS = [(Agent, RefAgent, ("a", (), None, None)), (Operation, RefOperation, ("t", Kind.EXECUTE, None, None)),
              (Resource, RefResource, ("file", "/x", None)), (Context, RefContext, ("s", "t", Stage.PRE_TOOL, 0, 0, 0, None, "T", None))]


@pytest.mark.parametrize("fast, slow, good", _GOOD_ARGS, ids=lambda v: getattr(v, "__name__", ""))
def test_each_argument_at_the_fast_paths_edges_matches_the_generated_init(fast, slow, good):
    # Deterministic, beside the property tests above: one argument at a time takes each edge value, the others stay good,
    # so the one check that argument meets decides (random draws reach a one-in-a-thousand edge too rarely to count on).
    for position in range(len(good)):
        for edge in _EDGES:
            args = (*good[:position], edge, *good[position + 1:])
            _same(lambda a=args: fast(*a), lambda a=args: slow(*a), stamped_now=fast is Context and args[7] == "")
    if fast is Context:  # the one fast check on two fields: their total length
        for session, task in [("x" * _MAX, "t"), ("s", "x" * _MAX), ("x" * (_MAX + 1), ""), ("", "x" * (_MAX + 1))]:
            args = (session, task, *good[2:])
            _same(lambda a=args: fast(*a), lambda a=args: slow(*a))


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(10**15, 4_102_444_800 * 10**9),  # 1970-01-12 .. 2100: every clock agt meets
                          st.integers(1_764_000_000, 1_764_000_003).flatmap(  # a few seconds, each at its edges
                              lambda s: st.sampled_from([s * 10**9, s * 10**9 + 999, s * 10**9 + 1000,
                                                         s * 10**9 + 999_999_999, s * 10**9 + 999_999_000]))),
                min_size=1, max_size=8))
def test_the_clock_is_stamped_to_the_microsecond(clock):
    # _now formats a second once and slices the microseconds out of time_ns: against datetime's own formatting, for a
    # clock read in any order (the cached second is replaced on a step back as on a step forward).
    import agt.action as action_module

    with pytest.MonkeyPatch.context() as patch:
        readings = iter(clock)
        patch.setattr(action_module, "time", types.SimpleNamespace(time_ns=lambda: next(readings), strftime=time.strftime,
                                                                   gmtime=time.gmtime))
        patch.setattr(action_module, "_second_text", (-1, ""))
        for ns in clock:
            want = (_EPOCH + datetime.timedelta(microseconds=ns // 1000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            assert Context().timestamp == want, ns
