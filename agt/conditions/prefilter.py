"""Which conditions could hold for a document, found without evaluating them: the YAML engine's rule index.

Each condition gets a **trigger set**: atoms of which at least one fires whenever the condition is true *or
raises*. A condition none of whose atoms fires is false for that document, so it need not be evaluated; a
condition without a trigger set (``None``) is always evaluated. The index only narrows the candidates: every
candidate's whole condition still decides, and a condition that errors is always a candidate (fail closed).

Atoms, each over one field (a path, or AGT flat context):

* :class:`Equals` ``field == 'v'``, ``field in ['v', ...]``, ``field == true``: fires when the value is that string
  or that boolean (these never raise).
* :class:`Pattern` ``contains``/``startswith``/``endswith`` a string, ``matches`` a regex, ``'v' in field``: fires
  when the value is a string the pattern finds, or is present and not a string (a type error, an object's keys). On a
  list, ``contains`` (and ``'v' in field``) is membership, which never raises: it fires when a list item is that string;
  every other pattern raises on a list, so it fires. All the patterns on one field are compiled into one RE2 set, run
  once per decision.
* :class:`AtLeast` ``field > n``, ``field >= n`` (integer ``n``): fires unless the value is missing or an integer
  below the bound (a non-integer may compare or raise).

Trigger sets compose by the condition language's logic (see compiler._logical): a conjunction holds or raises
only if every part does, so one part's set serves; a disjunction, only if some part does, so the union of all
parts' sets; ``not x`` holds or raises exactly when ``x`` is false or raises, which no atom describes (so
``not (x contains 'y')`` is always evaluated), unless ``x`` is itself a negation or a logic of them.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import re2

from agt.conditions import ast
from agt.conditions.compiler import _RE2_OPTIONS, MISSING, compile_condition, compile_regex
from agt.facts import derive_facts

_FIELDS = (ast.Path, ast.FlatPath)

SHARED_FACTS = derive_facts("", "read", {})
"""The facts of every action without commands or SQL: one shared, read-only object (agt.facts.derive_facts), whose
fields the generated lookup reads once, when it is made (:meth:`Prefilter._generated`)."""
_FACTS = ("action", "facts")


@dataclass(frozen=True)
class Equals:
    field: ast.Node
    value: str | bool


@dataclass(frozen=True)
class Pattern:
    field: ast.Node
    op: str  # contains | startswith | endswith | matches
    text: str

    def regex(self) -> str:
        """The RE2 source that finds this pattern wherever the condition's own operator does."""
        if self.op == "matches":
            return self.text
        lit = re2.escape(self.text)
        if self.op == "startswith":
            return rf"\A(?:{lit})"
        if self.op == "endswith":
            return rf"(?:{lit})\z"
        return lit


@dataclass(frozen=True)
class AtLeast:
    field: ast.Node
    bound: int


Atom = Union[Equals, Pattern, AtLeast]
Triggers = frozenset  # of Atom


def triggers(node: ast.Node) -> frozenset[Atom] | None:
    """Atoms of which one fires whenever ``node`` is true or raises; None when no such set is known."""
    return _true_or_error(node)


def _true_or_error(node: ast.Node) -> frozenset[Atom] | None:
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.Not):
        return _false_or_error(node.operand)
    if isinstance(node, ast.And):
        return _best(_true_or_error(o) for o in node.operands)
    if isinstance(node, ast.Or):
        return _union(_true_or_error(o) for o in node.operands)
    return None


def _false_or_error(node: ast.Node) -> frozenset[Atom] | None:
    if isinstance(node, ast.Not):
        return _true_or_error(node.operand)
    if isinstance(node, ast.And):
        return _union(_false_or_error(o) for o in node.operands)
    if isinstance(node, ast.Or):
        return _best(_false_or_error(o) for o in node.operands)
    return None


def _union(sets: Iterable[frozenset[Atom] | None]) -> frozenset[Atom] | None:
    out: set[Atom] = set()
    for s in sets:
        if s is None:
            return None
        out |= s
    return frozenset(out)


def _rank(s: frozenset[Atom]) -> tuple[int, int, int]:
    """Cheaper and narrower first: the tool name, another equality, a pattern, a lower bound (tightest first)."""
    worst = -1
    for a in s:
        if isinstance(a, Equals):
            cls = 0 if a.field == ast.Path(("action", "tool")) else 1
        else:
            cls = 2 if isinstance(a, Pattern) else 3
        worst = max(worst, cls)
    tightest = min((a.bound for a in s if isinstance(a, AtLeast)), default=0)
    return (worst, len(s), -tightest)


def _best(sets: Iterable[frozenset[Atom] | None]) -> frozenset[Atom] | None:
    known = [s for s in sets if s is not None]
    return min(known, key=_rank) if known else None


def _compare(node: ast.Compare) -> frozenset[Atom] | None:
    op, left, right = node.op, node.left, node.right
    if isinstance(right, _FIELDS) and isinstance(left, ast.Literal) and type(left.value) is str:
        # 'v' == field is field == 'v'; 'v' in field is field contains 'v' (a substring, a member, a key).
        if op == "==":
            return frozenset({Equals(right, left.value)})
        if op == "in":
            return frozenset({Pattern(right, "contains", left.value)})
        return None
    if isinstance(right, _FIELDS) and isinstance(left, ast.Literal) and type(left.value) is bool and op == "==":
        return frozenset({Equals(right, left.value)})  # true == field
    if not isinstance(left, _FIELDS):
        return None
    if isinstance(right, ast.Literal):
        c = right.value
        if op == "==" and (type(c) is str or type(c) is bool):  # equality is strict: true never equals 1
            return frozenset({Equals(left, c)})
        if op in ("contains", "startswith", "endswith", "matches") and type(c) is str:
            return frozenset({Pattern(left, op, c)})
        if op in (">", ">=") and type(c) is int:
            return frozenset({AtLeast(left, c + 1 if op == ">" else c)})
        return None
    if op == "in" and isinstance(right, ast.ListExpr) and all(
        isinstance(i, ast.Literal) and type(i.value) is str for i in right.items
    ):
        return frozenset(Equals(left, i.value) for i in right.items)  # type: ignore[union-attr]
    return None


# --- the index -------------------------------------------------------------------------------------

# The conditions' own options, not a copy: a set that read patterns differently could miss a match the
# condition would find, and the rule would never be evaluated.
_SET_OPTIONS = _RE2_OPTIONS


_FEW_LITERALS = 8
"""Up to this many literal patterns on a field are tested one by one in Python; more go into an RE2 set."""


class _PatternSet:
    """Every pattern on one field in RE2 sets (one unless RE2 cannot compile so many at once).

    Pattern 0 of each set is the empty pattern, which matches any text: a set that reports nothing has failed
    (RE2's DFA out of memory), and then every pattern on the field counts as found.
    """

    def __init__(self, patterns: Sequence[tuple[str, list[int]]], on_string: list[int],
                 members: Mapping[str, list[int]] | None = None, on_list: Sequence[int] = (),
                 literals: Sequence[tuple[str, str, int]] | None = None) -> None:
        """``members``: for each ``contains`` literal, the keys it fires on a list holding that string; ``on_list``:
        the keys of every other pattern on the field (each raises on a list, so each fires). ``literals``: when
        every pattern on the field is a literal (op, text, key) and there are few, they are looked for with
        Python's own ``in``/``startswith``/``endswith``, the very operations the conditions run, instead of RE2:
        a handful of substring tests cost less than one call into an RE2 set."""
        self.sets: list[tuple[Any, list[list[int]]]] = []
        self.on_string = list(on_string)  # keys of patterns that match any string (or would not compile in a set)
        self.everything = sorted({k for _, keys in patterns for k in keys} | set(on_string))
        self.members = {text: tuple(keys) for text, keys in (members or {}).items()}
        self.on_list = sorted(set(on_list))
        self.literals = None if literals is None else tuple(
            tuple((text, key) for o, text, key in literals if o == op) for op in ("contains", "startswith", "endswith"))
        if self.literals is None:
            self._build(list(patterns))

    def _build(self, patterns: list[tuple[str, list[int]]]) -> None:
        if not patterns:
            return
        s = re2.Set.SearchSet(_SET_OPTIONS)
        s.Add("")
        keys: list[list[int]] = [[]]
        try:
            for regex, ks in patterns:
                s.Add(regex)
                keys.append(ks)
            s.Compile()
        except re2.error:
            if len(patterns) == 1:
                self.on_string.extend(patterns[0][1])
                return
            half = len(patterns) // 2
            self._build(patterns[:half])
            self._build(patterns[half:])
            return
        self.sets.append((s, keys))

    def found_in_list(self, items: list, out: list[int]) -> None:
        """The keys that fire on a list value: membership of a string item (``_member`` compares strictly, so only
        a ``str`` item equals a ``contains`` literal), and every pattern that is not a membership test."""
        out.extend(self.on_list)
        members = self.members
        if members:
            for item in items:
                if type(item) is str:
                    keys = members.get(item)
                    if keys:
                        out.extend(keys)

    def found(self, text: str, out: list[int]) -> None:
        if self.literals is not None:
            contains, starts, ends = self.literals
            out.extend(key for lit, key in contains if lit in text)
            if starts:
                out.extend(key for lit, key in starts if text.startswith(lit))
            if ends:
                out.extend(key for lit, key in ends if text.endswith(lit))
            return
        out.extend(self.on_string)
        for s, keys in self.sets:
            try:
                hits = s.Match(text)
            except Exception:  # noqa: BLE001 - text RE2 cannot take (a lone surrogate): let the conditions decide
                hits = None
            if not hits:
                for ks in keys:
                    out.extend(ks)
                continue
            for h in hits:
                if h:
                    out.extend(keys[h])


class Prefilter:
    """Conditions looked up by their trigger sets: ``candidates(doc)`` is, in order, the positions of the
    conditions that could be true or raise for ``doc``; every other condition is false for it."""

    def __init__(self, conditions: Sequence[ast.Node]) -> None:
        always: list[int] = []
        equal: dict[ast.Node, dict[str, list[int]]] = {}
        bounded: dict[ast.Node, list[tuple[int, int]]] = {}
        patterns: dict[ast.Node, dict[str, list[int]]] = {}
        on_string: dict[ast.Node, list[int]] = {}
        members: dict[ast.Node, dict[str, list[int]]] = {}
        on_list: dict[ast.Node, list[int]] = {}
        literals: dict[ast.Node, list[tuple[str, str, int]] | None] = {}  # None: a regex on the field
        for key, node in enumerate(conditions):
            atoms = triggers(node)
            if atoms is None:
                always.append(key)
                continue
            for atom in atoms:
                if isinstance(atom, Equals):
                    equal.setdefault(atom.field, {}).setdefault(atom.value, []).append(key)
                elif isinstance(atom, AtLeast):
                    bounded.setdefault(atom.field, []).append((atom.bound, key))
                else:
                    if atom.op == "contains":
                        members.setdefault(atom.field, {}).setdefault(atom.text, []).append(key)
                    else:
                        on_list.setdefault(atom.field, []).append(key)
                    plain = literals.setdefault(atom.field, [])
                    if plain is not None and atom.op != "matches" and len(plain) < _FEW_LITERALS:
                        plain.append((atom.op, atom.text, key))
                    else:
                        literals[atom.field] = None
                    regex = atom.regex()
                    patterns.setdefault(atom.field, {})
                    if _matches_empty(regex):
                        on_string.setdefault(atom.field, []).append(key)
                    else:
                        patterns[atom.field].setdefault(regex, []).append(key)
        self.always = always
        self._equal = [(_getter(f), {v: tuple(ks) for v, ks in table.items()}) for f, table in equal.items()]
        self._bounded: list[tuple[Callable[[Mapping[str, Any]], Any], list[int], list[int]]] = []
        for f, entries in bounded.items():
            entries.sort()
            self._bounded.append((_getter(f), [b for b, _ in entries], [k for _, k in entries]))
        self._patterns = [
            (_getter(f), _PatternSet(list(table.items()), on_string.get(f, []), members.get(f), on_list.get(f, ()),
                                     literals.get(f)))
            for f, table in patterns.items()
        ]

        if len(self._equal) == 1 and not (always or self._bounded or self._patterns):
            # Only equality rules on one field (say, every rule keyed by tool name): one lookup, nothing to merge.
            self.candidates = self._one_lookup  # type: ignore[method-assign]
        else:
            self.candidates = self._generated(list(equal), list(bounded), list(patterns))  # type: ignore[method-assign]

    def _generated(self, equal: list[ast.Node], bounded: list[ast.Node], patterns: list[ast.Node]
                   ) -> Callable[[Mapping[str, Any]], Sequence[int]]:
        """:meth:`scan` as one generated function for this index's fields (in ``_equal``, ``_bounded``, ``_patterns``
        order): each shared prefix of their paths (``action``, ``action.facts``, ``action.facts.shell``) is read
        once into a local, where each getter would read it again, the fields under one prefix share one test that it
        is a plain dict, and no getter is called. Where a prefix is not a plain dict all the way down (a Mapping, a
        list, missing), its fields are read by their own getters, as scan reads them, so a prefix read only ever
        short-cuts the getter's own dict path."""
        env: dict[str, Any] = {"MISSING": MISSING, "dict": dict, "str": str, "bool": bool, "int": int, "list": list,
                               "bisect_right": bisect_right, "scan": self.scan, "always": tuple(self.always),
                               "SHARED_FACTS": SHARED_FACTS}
        prefixes: dict[tuple[str, ...], str] = {}
        # Each field's read and tests, by where they go: the main body, or under action.facts (skipped for the one shared
        # facts object). (prefix path or None, getter number, last key, test lines); a None prefix is read by its getter.
        fields: dict[str, list[tuple[tuple[str, ...] | None, int, str, list[str]]]] = {"main": [], "shared": []}

        def prefix(parts: tuple[str, ...], lines: list[str]) -> str:
            name = prefixes.get(parts)
            if name is None:
                parent = prefix(parts[:-1], lines) if len(parts) > 1 else ""  # first: it takes the lower number
                name = prefixes[parts] = f"p{len(prefixes)}"
                if not parent:
                    lines.append(f"    {name} = doc.get({parts[0]!r})")
                else:
                    lines.append(f"    {name} = {parent}.get({parts[-1]!r}) if type({parent}) is dict else MISSING")
            return name

        def place(i: int, f: ast.Node, getter: Callable[[Mapping[str, Any]], Any], tests: list[str]) -> None:
            env[f"g{i}"] = getter
            if isinstance(f, ast.Path) and 2 <= len(f.parts) <= 4:  # the getters field_getter unrolls: dicts inside
                where = "shared" if f.parts[:2] == _FACTS and len(f.parts) > 2 else "main"
                fields[where].append((f.parts[:-1], i, f.parts[-1], tests))
            else:
                fields["main"].append((None, i, "", tests))

        def emit(entries: list[tuple[tuple[str, ...] | None, int, str, list[str]]], lines: list[str],
                 facts_inside: bool = False) -> None:
            """The fields under one prefix share one test that it is a plain dict: then each is read straight off it,
            else each by its own getter, as scan reads it. (``found`` is sorted at the end: the order of reads is free.)"""
            groups: dict[tuple[str, ...] | None, list[tuple[int, str, list[str]]]] = {}
            for parts, i, key, tests in entries:
                groups.setdefault(parts, []).append((i, key, tests))
            for parts, group in groups.items():
                if parts is None:
                    for i, _, tests in group:
                        lines.append(f"    v = g{i}(doc)")
                        lines.extend(tests)
                    continue
                p = prefix(parts, lines)
                # action.facts, wanted below, read within action's own test of being a dict
                facts = facts_inside and parts == _FACTS[:1] and _FACTS not in prefixes
                if facts:
                    prefixes[_FACTS] = f"p{len(prefixes)}"
                lines.append(f"    if type({p}) is dict:")
                if facts:
                    lines.append(f"        {prefixes[_FACTS]} = {p}.get({_FACTS[1]!r})")
                for _, key, tests in group:
                    lines.append(f"        v = {p}.get({key!r}, MISSING)")
                    lines.extend("    " + t for t in tests)
                lines.append("    else:")
                if facts:
                    lines.append(f"        {prefixes[_FACTS]} = MISSING")
                for i, _, tests in group:
                    lines.append(f"        v = g{i}(doc)")
                    lines.extend("    " + t for t in tests)

        n = 0
        for (get, table), f in zip(self._equal, equal):
            tests = []
            env[f"t{n}"] = table
            if all(type(value) is bool for value in table):  # True and False are singletons: `is` is the lookup
                for value in table:
                    tests.append(f"    if v is {value!r}:")
                    tests.append(f"        found.extend(t{n}[{value!r}])")
            else:
                tests.append("    if type(v) is str or type(v) is bool:")
                tests.append(f"        hit = t{n}.get(v)")
                tests.append("        if hit:")
                tests.append("            found.extend(hit)")
            place(n, f, get, tests)
            n += 1
        for (get, bounds, keys), f in zip(self._bounded, bounded):
            tests = []
            env[f"b{n}"], env[f"k{n}"] = bounds, keys
            tests.append("    if type(v) is int:")
            if bounds:  # below the lowest bound bisect_right finds none; the bound is passed, never written as source
                env[f"lo{n}"] = bounds[0]
                tests.append(f"        if v >= lo{n}:")
                tests.append(f"            found.extend(k{n}[: bisect_right(b{n}, v)])")
            tests.append("        pass")
            tests.append("    elif v is not MISSING:")
            tests.append(f"        found.extend(k{n})")
            place(n, f, get, tests)
            n += 1
        for (get, pset), f in zip(self._patterns, patterns):
            tests = []
            env[f"s{n}"] = pset
            tests.append("    if type(v) is str:")
            if pset.literals is None:
                tests.append(f"        s{n}.found(v, found)")
            else:  # found()'s few literals, unrolled: the same tests, in the same order
                for op, entries in zip(("in", "startswith", "endswith"), pset.literals):
                    for lit, key in entries:
                        test = f"{lit!r} in v" if op == "in" else f"v.{op}({lit!r})"
                        tests.append(f"        if {test}:")
                        tests.append(f"            found.append({key!r})")
                tests.append("        pass")
            tests.append("    elif type(v) is list:")  # found_in_list, unrolled
            env[f"l{n}"], env[f"m{n}"] = pset.on_list, pset.members
            if pset.on_list:
                tests.append(f"        found.extend(l{n})")
            if pset.members:
                tests.append("        for item in v:")
                tests.append("            if type(item) is str:")
                tests.append(f"                hit = m{n}.get(item)")
                tests.append("                if hit:")
                tests.append("                    found.extend(hit)")
            tests.append("        pass")
            tests.append("    elif v is not MISSING:")
            tests.append(f"        found.extend(s{n}.everything)")
            place(n, f, get, tests)
            n += 1
        main: list[str] = []
        shared: list[str] = []
        emit(fields["main"], main, facts_inside=bool(fields["shared"]))
        if fields["shared"]:
            prefix(_FACTS, main)  # the test of it below reads it: declared here unless a group above read it
            emit(fields["shared"], shared)
        head = ["    found = list(always)" if self.always else "    found = []", *main]
        if shared:
            # The facts of an action without commands or SQL are one shared object (agt.facts.SHARED_FACTS): what
            # its fields contribute is worked out here, once, by these very lines (on a document holding it).
            facts = prefixes[_FACTS]
            exec("\n".join(["def shared_part(doc):", "    found = []", f"    {facts} = SHARED_FACTS", *shared,
                            "    return found"]), env)  # noqa: S102 - the lines below, on the shared object
            env["shared_found"] = tuple(env["shared_part"]({"action": {"facts": SHARED_FACTS}}))
            head += [f"    if {facts} is SHARED_FACTS:",
                     "        found.extend(shared_found)" if env["shared_found"] else "        pass",
                     "    else:", *("    " + line for line in shared), "        pass"]
        body = ["def candidates(doc):",
                "    if type(doc) is not dict:",
                "        return scan(doc)",
                *head,
                "    if len(found) > 1:",
                "        return sorted(set(found))",
                "    return found"]
        exec("\n".join(body), env)  # noqa: S102 - source built above from the index's own field names (repr'd)
        return env["candidates"]  # type: ignore[no-any-return]

    def _one_lookup(self, doc: Mapping[str, Any]) -> Sequence[int]:
        get, table = self._equal[0]
        v = get(doc)
        return table.get(v, ()) if type(v) is str or type(v) is bool else ()

    def candidates(self, doc: Mapping[str, Any]) -> Sequence[int]:
        """The positions, ascending and distinct, of the conditions that could be true or raise for ``doc``
        (a sequence to read, not to change). Replaced per index by a function made for its fields (see
        :meth:`_generated`) that answers as :meth:`scan` does."""
        return self.scan(doc)

    def scan(self, doc: Mapping[str, Any]) -> Sequence[int]:
        """:meth:`candidates` field by field, each through its own getter: the reference the generated one follows."""
        found = list(self.always)
        for get, table in self._equal:
            v = get(doc)
            if type(v) is str or type(v) is bool:  # the types an Equals atom holds: 1 must not find True
                hit = table.get(v)
                if hit:
                    found.extend(hit)
        for get, bounds, keys in self._bounded:
            v = get(doc)
            if type(v) is int:
                found.extend(keys[: bisect_right(bounds, v)])
            elif v is not MISSING:
                found.extend(keys)  # not an integer: the comparison decides, or raises (fail closed)
        for get, pset in self._patterns:
            v = get(doc)
            if type(v) is str:
                pset.found(v, found)
            elif type(v) is list:
                pset.found_in_list(v, found)
            elif v is not MISSING:
                found.extend(pset.everything)  # a list, an object, a type error: the condition decides
        if len(found) > 1:
            return sorted(set(found))
        return found


def _getter(field: ast.Node) -> Callable[[Mapping[str, Any]], Any]:
    return compile_condition(field)


def _matches_empty(regex: str) -> bool:
    """A pattern found in the empty text is found in every text: no set needed to know it fires."""
    try:
        return compile_regex(regex).search("") is not None
    except Exception:  # noqa: BLE001 - cannot tell: treat it as found everywhere (evaluated on every string)
        return True
