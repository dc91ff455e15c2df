"""Differential fuzzing: generate actions from the fields and literals a policy uses, decide each on every
engine, and shrink any disagreement to a minimal action, written out as a new case file.

The generator is our own (seeded ``random.Random``), so a seed reproduces a run exactly and 10,000
actions cost milliseconds to make. It mutates policy literals the way attackers and accidents do:
case, whitespace, quotes, full-width forms, zero-width spaces, and paths with ``..`` segments. Shell
commands and SQL are also respelled the way a grammar allows (flag order and long forms, program paths,
quotes, wrappers, pipelines; SQL comments, case, aliases, extra statements), by the meaning-preserving
mutators of :mod:`agt.facts.spellings`, so a policy deciding on spelling rather than meaning shows up.
Amounts are drawn around the policy's numeric limits by :func:`money`: at the limit, a cent or Cedar's
smallest step either side, one digit past Cedar's four, as floats, with trailing zeros, and as strings.
"""

from __future__ import annotations

import copy
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml

from agt.action import Action, Kind
from agt.conditions import ast
from agt.conformance.suite import Suite
from agt.decision import Decision
from agt.engines import Engine
from agt.engines.yaml_policy import load_policy
from agt.errors import ActionError
from agt.facts.spellings import respell_command, respell_sql, wrap_respelled


@dataclass(frozen=True)
class Vocabulary:
    """What the generator draws from: literals the policy mentions, plus a few of its own."""

    strings: tuple[str, ...]
    ints: tuple[int, ...]
    decimals: tuple[Decimal, ...] = ()
    """Numeric limits the policy compares with, as decimals: the seeds of the money mutators."""
    tools: tuple[str, ...] = ()
    """Tool names the policy compares ``action.tool`` with, so generated amounts reach the rules on them."""


def vocabulary_from_policy(path: str | Path) -> Vocabulary:
    policy = load_policy(path)
    strings: set[str] = set()
    ints: set[int] = set()
    decimals: set[Decimal] = set()
    tools: set[str] = set()

    def walk(node: ast.Node) -> None:
        if isinstance(node, ast.Literal):
            if isinstance(node.value, str):
                strings.add(node.value)
            elif type(node.value) is int:
                ints.update({node.value - 1, node.value, node.value + 1})
                decimals.add(Decimal(node.value))
            elif isinstance(node.value, Decimal):
                decimals.add(node.value)
        elif isinstance(node, (ast.ListExpr, ast.Concat)):
            for n in node.items if isinstance(node, ast.ListExpr) else node.parts:
                walk(n)
        elif isinstance(node, ast.Compare):
            if node.left == ast.Path(("action", "tool")) and isinstance(node.right, ast.Literal) and isinstance(node.right.value, str):
                tools.add(node.right.value)
            walk(node.left)
            walk(node.right)
        elif isinstance(node, ast.Not):
            walk(node.operand)
        elif isinstance(node, (ast.And, ast.Or)):
            for n in node.operands:
                walk(n)

    for rule in policy.rules:
        walk(rule.condition)
    return Vocabulary(tuple(sorted(strings)), tuple(sorted(i for i in ints if i >= 0)), tuple(sorted(decimals)), tuple(sorted(tools)))


_KINDS = [k.value for k in Kind]
_ENVIRONMENTS = ["development", "staging", "production", "Production", ""]
_FILLER = ["hello", "SELECT 1", "ls -la", "report.pdf", "ok", "ünïcödé", "日本語", "🚀", "a  b", "'quoted'"]


_COMMANDS = ["rm -rf /", "rm -rf ~", "rm -rf *", "rm -rf /etc", "rm -f notes.txt", "ls -la", "mkfs.ext4 /dev/sda",
             "dd if=/dev/zero of=/dev/sda", "chmod -R 777 /", "cp -r src dst", "git status"]
_SQL = ["DROP TABLE users", "DELETE FROM users", "DELETE FROM users WHERE id = 3", "TRUNCATE TABLE users",
        "UPDATE users SET a = 1", "UPDATE users SET a = 1 WHERE id = 2", "SELECT * FROM users", "GRANT ALL ON t TO bob"]


_MONEY_STEPS = (Decimal("0"), Decimal("0.01"), Decimal("-0.01"), Decimal("0.0001"), Decimal("-0.0001"),
                Decimal("0.00001"), Decimal("-0.00001"))
"""Around a limit: at it, a cent and Cedar's smallest step either side, and one digit past Cedar's four."""


def money(rng: random.Random, limit: Decimal) -> Any:
    """An amount near ``limit`` the way money arrives: an exact decimal, an integer, a float, with trailing
    zeros, negative, or as a string (plain, with a currency sign or a thousands separator)."""
    value = limit + rng.choice(_MONEY_STEPS)
    choice = rng.randrange(9)
    if choice == 0:
        return int(value) if value == value.to_integral_value() else value
    if choice == 1:
        return float(value)
    if choice == 2:
        return Decimal(f"{value:f}00") if "." in f"{value:f}" else Decimal(f"{value:f}.00")
    if choice == 3:
        return -value
    if choice == 4:
        return f"{value:f}"
    if choice == 5:
        return rng.choice(["$", "€", "USD "]) + f"{value:f}"
    if choice == 6:
        return f"{value:,f}"
    return value


def _respell(rng: random.Random, text: str) -> str:
    """A meaning-preserving respelling: of a shell command, wrapped or not, or of SQL."""
    choice = rng.randrange(3)
    if choice == 0:
        return respell_command(rng, text)
    if choice == 1:
        return wrap_respelled(rng, text)
    return respell_sql(rng, text)


def _mutate(rng: random.Random, text: str) -> str:
    choice = rng.randrange(10)
    if choice == 9:
        return _respell(rng, text)
    if choice == 0:
        return text.upper()
    if choice == 1:
        return text.title()
    if choice == 2:
        return text.replace(" ", rng.choice(["  ", "\t", "\n", " \u00a0"]))
    if choice == 3:
        return f"'{text}'" if rng.random() < 0.5 else text.replace(" ", ' "', 1) + '"'
    if choice == 4:
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)  # full-width
    if choice == 5 and len(text) > 2:
        i = rng.randrange(1, len(text))
        return text[:i] + "\u200b" + text[i:]
    if choice == 6:
        return f"{rng.choice(_FILLER)} {text} {rng.choice(_FILLER)}"
    if choice == 7 and len(text) > 3:
        i = rng.randrange(1, len(text) - 1)
        return text[:i]  # a near miss
    return text


class ActionGenerator:
    def __init__(self, vocab: Vocabulary, seed: int) -> None:
        self.vocab = vocab
        self.rng = random.Random(seed)

    def _string(self) -> str:
        rng = self.rng
        if self.vocab.strings and rng.random() < 0.6:
            return _mutate(rng, rng.choice(self.vocab.strings))
        return rng.choice(_FILLER)

    def _int(self) -> int:
        rng = self.rng
        if self.vocab.ints and rng.random() < 0.7:
            return rng.choice(self.vocab.ints)
        return rng.randrange(0, 30_000)

    def _path(self, workspace: str | None) -> str:
        rng = self.rng
        base = workspace if workspace and rng.random() < 0.6 else rng.choice(["/ws/alice", "/ws/bob", "/etc", "/tmp", "", "/"])
        tail = rng.choice(["notes.md", "a/b.txt", "../bob/x", "./x", "", "../../etc/passwd", "日本/ノート.md"])
        sep = rng.choice(["/", "//"])
        return f"{base}{sep}{tail}" if base else tail

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            yield self.document()

    def document(self) -> dict[str, Any]:
        rng = self.rng
        workspace = rng.choice(["/ws/alice", "/ws/alice/", "/ws/bob", "/", None])
        attributes = {"workspace": workspace} if workspace is not None else {}
        tool = self._string() if rng.random() < 0.7 else rng.choice(["read_file", "write_file", "run_shell", "send_email"])
        params: dict[str, Any] = {}
        for _ in range(rng.randrange(4)):
            key = rng.choice(["command", "sql", "body", "path", "argv", "text", "n", "amount"])
            if key == "amount":
                params[key] = money(rng, rng.choice(self.vocab.decimals)) if self.vocab.decimals else self._int()
                if self.vocab.tools and rng.random() < 0.5:
                    tool = rng.choice(self.vocab.tools)
            elif key == "argv":
                params[key] = [self._string() for _ in range(rng.randrange(1, 4))]
            elif key == "n":
                params[key] = self._int()
            elif key in ("command", "sql") and rng.random() < 0.5:
                params[key] = _respell(rng, rng.choice(_COMMANDS if key == "command" else _SQL))
            else:
                params[key] = self._string()
        doc: dict[str, Any] = {
            "agent": {
                "id": rng.choice(["alice", "bob", "アリス", "agent-7"]),
                "roles": rng.sample(["developer", "admin", "intern"], rng.randrange(3)),
                "trust_score": rng.choice([0, 499, 500, 501, 720, 1000, rng.randrange(0, 1001)]),
                "attributes": attributes,
            },
            "action": {"tool": tool or "t", "kind": rng.choice(_KINDS), "params": params},
            "context": {
                "tokens_used": self._int(),
                "tool_calls": self._int(),
                "files_changed": self._int(),
                "environment": rng.choice(_ENVIRONMENTS + list(self.vocab.strings[:3])),
            },
        }
        r = rng.random()
        if r < 0.45:
            doc["resource"] = {"type": "file", "id": self._path(workspace)}
        elif r < 0.6:
            doc["resource"] = {"type": rng.choice(["table", "url", "directory"]), "id": self._string()}
        return doc


@dataclass(frozen=True)
class Disagreement:
    document: dict[str, Any]
    decisions: Mapping[str, Decision]
    reproduced: bool = True
    """False when deciding the action again, one at a time, gave agreement: ``decisions`` are then the batch's
    own, and an ``engine_error`` among them (a timeout on a loaded machine, say) is the likely cause."""

    def describe(self) -> str:
        """One line per engine: its effect and reasons, engine errors with their cause."""
        lines = [] if self.reproduced else ["not reproduced when decided again one at a time; the batch decided:"]
        for name, d in sorted(self.decisions.items()):
            if d.is_engine_error:
                lines.append(f"  {name}: ENGINE ERROR: {'; '.join(r.message for r in d.reasons)}")
            else:
                lines.append(f"  {name}: {d.effect.value} {list(d.rule_ids)}")
        tool = self.document.get("action", {}).get("tool")
        return f"action tool={tool!r}:\n" + "\n".join(lines)


@dataclass
class FuzzResult:
    generated: int = 0
    skipped_invalid: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    not_portable: dict[str, int] = field(default_factory=dict)
    """engine -> generated actions left out of its comparison, as not portable to it (Suite.portability)."""


def _disagree(doc: dict[str, Any], engines: Mapping[str, Engine], portability: Any = None) -> dict[str, Decision] | None:
    try:
        action = Action.from_dict(doc)
    except ActionError:
        return None
    skip = portability.reasons(action) if portability is not None else {}
    decisions = {n: e.evaluate(action) for n, e in engines.items() if n not in skip}
    return decisions if len({d.parity_key for d in decisions.values()}) > 1 else None


def _simplifications(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Smaller variants of ``doc``: each drops or resets one thing."""
    for key in list(doc["action"].get("params", {})):
        d = copy.deepcopy(doc)
        del d["action"]["params"][key]
        yield d
    for key, value in doc["action"].get("params", {}).items():
        if isinstance(value, list) and len(value) > 1:
            for i in range(len(value)):
                d = copy.deepcopy(doc)
                del d["action"]["params"][key][i]
                yield d
        if isinstance(value, str) and len(value) > 1:
            for cut in (value[: len(value) // 2], value[len(value) // 2 :], value.strip()):
                if cut != value:
                    d = copy.deepcopy(doc)
                    d["action"]["params"][key] = cut
                    yield d
    if "resource" in doc:
        d = copy.deepcopy(doc)
        del d["resource"]
        yield d
    for key, default in (("tokens_used", 0), ("tool_calls", 0), ("files_changed", 0), ("environment", "development")):
        if doc["context"].get(key) != default:
            d = copy.deepcopy(doc)
            d["context"][key] = default
            yield d
    for key, default in (("roles", []), ("trust_score", 500), ("id", "a")):
        if doc["agent"].get(key) != default:
            d = copy.deepcopy(doc)
            d["agent"][key] = default
            yield d
    if doc["agent"].get("attributes"):
        d = copy.deepcopy(doc)
        d["agent"]["attributes"] = {}
        yield d


def shrink(doc: dict[str, Any], engines: Mapping[str, Engine], budget: int = 400,
           portability: Any = None) -> tuple[dict[str, Any], dict[str, Decision]]:
    """Greedy shrinking: keep taking the first simplification that still disagrees (among the engines the
    simplified action is portable to)."""
    current = doc
    decisions = _disagree(doc, engines, portability) or {}
    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for candidate in _simplifications(current):
            tries += 1
            found = _disagree(candidate, engines, portability)
            if found is not None:
                current, decisions, improved = candidate, found, True
                break
            if tries >= budget:
                break
    return current, decisions


def fuzz(
    suite: Suite,
    engines: Mapping[str, Engine],
    n: int,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 200,
    max_disagreements: int = 20,
) -> FuzzResult:
    yaml_policy = suite.policies.get("yaml")
    if yaml_policy is None:
        raise ValueError(f"suite {suite.name!r} has no yaml policy to take a vocabulary from")
    gen = iter(ActionGenerator(vocabulary_from_policy(yaml_policy), seed))
    portability = suite.portability
    result = FuzzResult()
    seen: set[tuple[Any, ...]] = set()
    done = 0
    # Every engine decides each batch at once, one thread each: an OPA decides in its own process, so the wait
    # for its reply overlaps the in-process engines, and the next batch is generated (and its facts parsed) during
    # that wait. Each engine is only ever used by one thread at a time: shrinking runs once the batch is decided.
    with ThreadPoolExecutor(max_workers=max(1, len(engines)), thread_name_prefix="agt-fuzz") as pool:
        docs, actions = _next_batch(gen, min(chunk, n), result)
        while done < n:
            batch = min(chunk, n - done)
            running = {name: pool.submit(e.evaluate_many, actions) for name, e in engines.items()}
            following = _next_batch(gen, min(chunk, n - done - batch), result) if done + batch < n else ([], [])
            per_engine = {name: job.result() for name, job in running.items()}
            for i, doc in enumerate(docs):
                # The suite's automatic not-portable marks (undeclared params for Cedar, rules `agt compile` could not
                # express): an engine the action is not portable to is left out of the comparison, and counted.
                skip = portability.reasons(actions[i]) if portability is not None else {}
                for name in skip:
                    if name in per_engine:
                        result.not_portable[name] = result.not_portable.get(name, 0) + 1
                sigs = {name: ds[i].parity_key for name, ds in per_engine.items() if name not in skip}
                if len(set(sigs.values())) > 1 and len(result.disagreements) < max_disagreements:
                    small, decisions = shrink(doc, engines, portability=portability)
                    key = tuple(sorted((k, v) for k, v in sigs.items()))
                    if key not in seen:
                        seen.add(key)
                        if decisions:
                            result.disagreements.append(Disagreement(small, decisions))
                        else:
                            # Gone when decided again: keep what the batch saw, so the report names the engine
                            # and its error instead of an empty decision map.
                            batch_decisions = {name: ds[i] for name, ds in per_engine.items()}
                            result.disagreements.append(Disagreement(doc, batch_decisions, reproduced=False))
            done += batch
            result.generated = done
            if on_progress:
                on_progress(batch)
            docs, actions = following
    return result


def _next_batch(gen: Iterator[dict[str, Any]], size: int, result: FuzzResult) -> tuple[list[dict[str, Any]], list[Action]]:
    """The next ``size`` generated documents that are valid actions, and those actions with their documents built
    (here, once, not raced for by the engines' threads); the invalid ones are counted in ``result``."""
    docs: list[dict[str, Any]] = []
    actions: list[Action] = []
    for _ in range(size):
        doc = next(gen)
        try:
            actions.append(Action.from_dict(doc))
            docs.append(doc)
        except ActionError:
            result.skipped_invalid += 1
    for a in actions:
        _ = a.document
    return docs, actions


def write_cases(suite: Suite, result: FuzzResult, seed: int, out_dir: Path, reference: str = "yaml") -> Path:
    """Write the shrunk disagreements as a suite file. Expectations come from ``reference`` and must be
    checked by a person before the cases join a regression suite."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{suite.name}-fuzz-seed{seed}.yaml"
    cases = []
    for i, d in enumerate(result.disagreements, 1):
        ref = d.decisions.get(reference) or next(iter(d.decisions.values()))
        cases.append({
            "name": f"fuzz seed {seed} #{i}",
            "action": d.document,
            "expect": {"effect": ref.effect.value, "rules": list(ref.rule_ids)},
            "observed": {n: {"effect": x.effect.value, "rules": list(x.rule_ids)} for n, x in d.decisions.items()},
        })
    rel = {e: str(Path(p).resolve()) for e, p in suite.policies.items()}
    doc = {
        "suite": f"{suite.name}-fuzz-seed{seed}",
        "description": f"Disagreements found by `agt conformance fuzz` (seed {seed}); expectations taken from {reference}: verify them.",
        "policies": rel,
        "cases": cases,
    }
    path.write_text(yaml.dump(doc, Dumper=_CaseDumper, sort_keys=False, allow_unicode=True), "utf-8")
    return path


class _CaseDumper(yaml.SafeDumper):
    """Writes a decimal as a YAML float with its exact digits; the suite loader reads it back as that decimal."""


_CaseDumper.add_representer(
    Decimal, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:float", format(value, "f"))
)
