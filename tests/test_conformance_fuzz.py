"""agt.conformance.fuzz: the generator, shrinking, the case-file writer, and the bounded CI fuzz run."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agt.action import Action
from agt.conformance import load_suite, open_engines
from agt.conformance.fuzz import ActionGenerator, Vocabulary, fuzz, shrink, vocabulary_from_policy, write_cases
from agt.decision import Decision, Effect, Reason, fail_closed
from agt.errors import ActionError

ROOT = Path(__file__).resolve().parents[1]
STARTER = load_suite(ROOT / "conformance" / "starter.yaml")


def test_vocabulary_takes_literals_and_boundaries_from_the_policy():
    vocab = vocabulary_from_policy(ROOT / "policies" / "starter.yaml")
    assert {"send_email", "drop table", "production"} <= set(vocab.strings)
    assert {7999, 8000, 8001, 20, 21} <= set(vocab.ints)


def test_same_seed_generates_the_same_actions():
    vocab = Vocabulary(("send_email", "drop table"), (8000, 8001))
    a = [ActionGenerator(vocab, 5).document() for _ in range(1)]
    gen1, gen2 = ActionGenerator(vocab, 5), ActionGenerator(vocab, 5)
    assert [gen1.document() for _ in range(50)] == [gen2.document() for _ in range(50)]
    assert a


def test_generated_documents_are_valid_actions():
    gen = ActionGenerator(vocabulary_from_policy(ROOT / "policies" / "starter.yaml"), 11)
    for _ in range(300):
        Action.from_dict(gen.document())


class _Fixed:
    """An engine stand-in that disagrees whenever the tool is 'boom': a fault to find, not a real engine."""

    name = "fixed"
    revision = "r"

    def __init__(self, tool_to_deny: str | None) -> None:
        self.tool_to_deny = tool_to_deny

    def evaluate(self, action: Action) -> Decision:
        if action.action.tool == self.tool_to_deny:
            return Decision(Effect.DENY, (Reason("x"),))
        return Decision(Effect.ALLOW, (Reason("default"),))

    def evaluate_many(self, actions):
        return [self.evaluate(a) for a in actions]

    def close(self) -> None:
        pass


def test_shrink_removes_everything_that_does_not_matter():
    doc = {
        "agent": {"id": "zed", "roles": ["admin"], "trust_score": 12, "attributes": {"workspace": "/w"}},
        "action": {"tool": "boom", "kind": "write", "params": {"a": "long text here", "b": [1, 2, 3]}},
        "resource": {"type": "file", "id": "/x"},
        "context": {"tokens_used": 99, "tool_calls": 3, "files_changed": 2, "environment": "production"},
    }
    small, decisions = shrink(doc, {"a": _Fixed("boom"), "b": _Fixed(None)})
    assert small["action"]["params"] == {}
    assert "resource" not in small
    assert small["context"]["tokens_used"] == 0
    assert decisions["a"].effect is Effect.DENY and decisions["b"].effect is Effect.ALLOW


def test_fuzz_reports_and_writes_a_disagreement(tmp_path):
    result = fuzz(STARTER, {"a": _Fixed("send_email"), "b": _Fixed(None)}, 400, seed=3)
    assert result.disagreements
    path = write_cases(STARTER, result, 3, tmp_path, reference="b")
    written = load_suite(path)
    assert written.cases[0].action.action.tool == "send_email"
    assert written.cases[0].expect.effect is Effect.ALLOW


def test_bounded_fuzz_finds_no_disagreement_between_real_engines(opa_binary):
    """The CI fuzz: 2,000 actions, fixed seed, yaml vs cedar vs a real OPA."""
    engines = open_engines(STARTER, ("yaml", "cedar", "opa"))
    try:
        result = fuzz(STARTER, engines, 2000, seed=2026)
    finally:
        for e in engines.values():
            e.close()
    assert result.generated == 2000
    assert not result.disagreements, "\n".join(f"{d.describe()}\n  document: {d.document}" for d in result.disagreements[:3])


def test_fuzz_needs_a_yaml_policy_for_its_vocabulary():
    from dataclasses import replace

    no_yaml = replace(STARTER, policies={"cedar": STARTER.policies["cedar"]})
    with pytest.raises(ValueError, match="no yaml policy"):
        fuzz(no_yaml, {}, 1, seed=0)


class _TimesOutInBatches(_Fixed):
    """A fault: the first batch decision fails closed (as a timed-out OPA does), deciding again agrees."""

    def __init__(self) -> None:
        super().__init__(None)
        self.failed = False

    def evaluate_many(self, actions):
        out = [self.evaluate(a) for a in actions]
        if not self.failed:
            self.failed = True
            out[0] = fail_closed("opa: timeout: no complete reply before the deadline within 2.0s", engine="opa")
        return out


def test_a_disagreement_that_does_not_reproduce_names_the_engine_and_its_error():
    result = fuzz(STARTER, {"a": _Fixed(None), "b": _TimesOutInBatches()}, 50, seed=1)
    assert len(result.disagreements) == 1
    found = result.disagreements[0]
    assert not found.reproduced and set(found.decisions) == {"a", "b"}
    assert "b: ENGINE ERROR: opa: timeout" in found.describe()


def test_generator_respells_commands_and_sql_by_grammar():
    from agt.facts.shell import parse_shell
    from agt.facts.sql import parse_sql

    gen = ActionGenerator(Vocabulary((), ()), 7)
    params = [gen.document()["action"]["params"] for _ in range(1500)]
    commands = {p["command"] for p in params if isinstance(p.get("command"), str)}
    rm_root = {c for c in commands if ("rm", ("f", "r"), ("/",)) in
               {(x.program, x.flags, x.args) for x in parse_shell(c).commands}}
    assert len(rm_root - {"rm -rf /"}) >= 3, rm_root
    drops = {p["sql"] for p in params if isinstance(p.get("sql"), str) and "drop" in parse_sql(p["sql"]).to_dict()["types"]}
    assert len(drops - {"DROP TABLE users"}) >= 3, drops


def test_money_mutator_draws_around_the_limit_in_every_form():
    from decimal import Decimal

    from agt.conformance.fuzz import money

    rng = random.Random(3)
    amounts = [money(rng, Decimal("100")) for _ in range(400)]
    assert {Decimal("100.01"), Decimal("99.99"), Decimal("100.00001")} <= {a for a in amounts if isinstance(a, Decimal)}
    assert {"100.01", "$100.01"} & {a for a in amounts if isinstance(a, str)}
    assert any(isinstance(a, float) for a in amounts) and any(type(a) is int for a in amounts)


def test_generated_actions_reach_the_starters_fact_and_money_rules():
    from agt.engines import create_engine

    engine = create_engine("yaml", STARTER.policies["yaml"], catalog=STARTER.catalog)
    gen = ActionGenerator(vocabulary_from_policy(STARTER.policies["yaml"]), 2026)
    hit: set[str] = set()
    for _ in range(2000):
        try:
            hit.update(engine.evaluate(Action.from_dict(gen.document())).matched)
        except ActionError:
            continue
    assert {"refund-approval", "block-recursive-delete", "block-destructive-sql", "block-disk-wipe"} <= hit


class _Seen(_Fixed):
    """A spy: every document it is asked to decide, in order, and whether two threads ever asked at once."""

    def __init__(self) -> None:
        super().__init__(None)
        self.documents: list[dict] = []
        self.busy = self.overlapped = False

    def evaluate_many(self, actions):
        self.overlapped = self.overlapped or self.busy
        self.busy = True
        try:
            self.documents += [a.to_dict() for a in actions]
            return super().evaluate_many(actions)
        finally:
            self.busy = False


def _untimed(documents: list[dict]) -> list[dict]:
    """The documents with their context timestamp blanked: each build stamps its own time."""
    return [{**d, "context": {**d["context"], "timestamp": ""}} for d in documents]


@pytest.mark.parametrize("chunk", [1, 7, 200, 1000])
def test_batches_built_ahead_reach_the_engines_once_each_and_in_generated_order(chunk):
    gen = iter(ActionGenerator(vocabulary_from_policy(STARTER.policies["yaml"]), 5))
    valid = []
    skipped = 0
    for _ in range(333):
        try:
            valid.append(Action.from_dict(next(gen)).to_dict())
        except ActionError:
            skipped += 1
    spy = _Seen()
    result = fuzz(STARTER, {"a": spy, "b": _Fixed(None)}, 333, seed=5, chunk=chunk)
    assert result.generated == 333 and result.skipped_invalid == skipped
    assert _untimed(spy.documents) == _untimed(valid)
    assert not spy.overlapped


@pytest.mark.parametrize("text", ["rm -rf /", "rm -f notes.txt", "ls -la", "rm -rf $X", "echo $(ls)", "rm 'x", "a | b"])
def test_the_generator_wraps_exactly_what_a_parse_of_the_respelling_would_let_through(text):
    # The generator skips parsing a respelling (a respelling always parses): the stream must be the one that parse gave.
    from agt.conformance.fuzz import _respell
    from agt.facts.spellings import respell_command, respell_sql, wrap_command

    for seed in range(200):
        rng, expected = random.Random(seed), random.Random(seed)
        choice = expected.randrange(3)
        if choice == 0:
            want = respell_command(expected, text)
        elif choice == 1:
            want = wrap_command(expected, respell_command(expected, text))
        else:
            want = respell_sql(expected, text)
        assert _respell(rng, text) == want, (seed, text)
        assert rng.random() == expected.random()  # the same draws, so what follows is the same too
