"""The runtime's identity gate: signed envelopes and delegations checked before any other gate."""

from __future__ import annotations

import pytest

import agt
from agt.errors import GovernanceDenied
from agt.identity import EnvelopeVerifier, IdentityStore, issue_delegation, sign_envelope
from agt.runtime import Governor
from agt.runtime.modes import Mode

STARTER = "policies/starter.yaml"


@pytest.fixture
def world(tmp_path, root, monkeypatch):
    monkeypatch.chdir(root)
    store = IdentityStore(tmp_path / "ids")
    alice, bob, eve = store.create("alice"), store.create("bob"), store.create("eve")
    gov = Governor("yaml", STARTER, identity=EnvelopeVerifier(store.resolve), trusted_roots={"alice": alice.did},
                   require_identity=True)
    ran: list = []

    def read_file(path: str) -> str:
        ran.append(path)
        return "ok"

    return gov, alice, bob, eve, read_file, ran


def envelope(keys, tool: str, params: dict, agent: str):
    return sign_envelope(keys, agt.from_call(tool, params, agent=agt.Agent(agent)).to_dict())


def rules(fn) -> tuple[str, ...]:
    with pytest.raises(GovernanceDenied) as info:
        fn()
    assert info.value.gate == "trust"
    return info.value.rule_ids


def test_signed_call_runs(world):
    gov, alice, _, _, read_file, ran = world
    gov.call(read_file, ("/ws/a",), agent="alice", envelope=envelope(alice, "read_file", {"path": "/ws/a"}, "alice"))
    assert ran == ["/ws/a"]


def test_unsigned_call_is_refused_when_identity_is_required(world):
    gov, _, _, _, read_file, ran = world
    assert rules(lambda: gov.call(read_file, ("/ws/a",), agent="alice")) == ("identity-required",)
    assert ran == []


def test_replayed_envelope_is_refused(world):
    gov, alice, _, _, read_file, _ = world
    env = envelope(alice, "read_file", {"path": "/ws/a"}, "alice")
    gov.call(read_file, ("/ws/a",), agent="alice", envelope=env)
    assert rules(lambda: gov.call(read_file, ("/ws/a",), agent="alice", envelope=env)) == ("identity-invalid",)


def test_envelope_signed_by_another_key_is_refused(world):
    gov, _, _, eve, read_file, ran = world
    forged = envelope(eve, "read_file", {"path": "/ws/a"}, "eve")
    assert rules(lambda: gov.call(read_file, ("/ws/a",), agent="alice", envelope=forged)) == ("identity-invalid",)
    assert ran == []


def test_envelope_for_other_params_is_refused(world):
    gov, alice, _, _, read_file, _ = world
    env = envelope(alice, "read_file", {"path": "/ws/other"}, "alice")
    assert rules(lambda: gov.call(read_file, ("/ws/a",), agent="alice", envelope=env)) == ("identity-invalid",)


def test_delegated_capability_lets_the_child_act(world):
    gov, alice, bob, _, read_file, ran = world
    grant = issue_delegation(alice, bob.identity, {"tool:read_file"})
    gov.call(read_file, ("/ws/a",), agent="bob", envelope=envelope(bob, "read_file", {"path": "/ws/a"}, "bob"), delegation=grant)
    assert ran == ["/ws/a"]


def test_tool_outside_the_delegation_is_refused(world):
    gov, alice, bob, _, _, _ = world
    grant = issue_delegation(alice, bob.identity, {"tool:read_file"})
    env = envelope(bob, "write_file", {"path": "/ws/a"}, "bob")
    assert rules(lambda: gov.call(lambda path: None, kwargs={"path": "/ws/a"}, tool="write_file", agent="bob",
                                  envelope=env, delegation=grant)) == ("delegation-scope",)


def test_delegation_held_by_someone_else_is_refused(world):
    gov, alice, bob, eve, read_file, _ = world
    grant = issue_delegation(alice, bob.identity, {"tool:read_file"})
    env = envelope(eve, "read_file", {"path": "/ws/a"}, "eve")
    assert rules(lambda: gov.call(read_file, ("/ws/a",), agent="eve", envelope=env, delegation=grant)) == ("delegation-invalid",)


def test_identity_failure_is_enforced_even_in_audit_mode(tmp_path, root, monkeypatch):
    monkeypatch.chdir(root)
    store = IdentityStore(tmp_path / "ids")
    store.create("alice")
    gov = Governor("yaml", STARTER, mode="audit", identity=EnvelopeVerifier(store.resolve), require_identity=True)
    assert rules(lambda: gov.call(lambda: None, tool="read_doc", agent="alice")) == ("identity-required",)


def test_decorated_tool_takes_its_envelope_as_a_governance_keyword(world):
    from agt.runtime import govern

    gov, alice, _, _, _, _ = world
    seen: list = []

    @govern(governor=gov, agent="alice")
    def read_file(path: str) -> str:
        seen.append(path)
        return "ok"

    env = envelope(alice, "read_file", {"path": "/ws/a"}, "alice")
    assert read_file("/ws/a", _agt_envelope=env) == "ok"
    assert seen == ["/ws/a"]


# --- require_delegation ----------------------------------------------------------------------------


@pytest.fixture
def delegating(world):
    gov, alice, bob, eve, read_file, ran = world
    gov.require_delegation = True
    return gov, alice, bob, read_file, ran


def test_call_without_a_delegation_is_refused_when_delegation_is_required(delegating):
    gov, _, bob, read_file, ran = delegating
    env = envelope(bob, "read_file", {"path": "/ws/a"}, "bob")
    assert rules(lambda: gov.call(read_file, ("/ws/a",), agent="bob", envelope=env)) == ("delegation-required",)
    assert ran == []


def test_call_with_a_valid_delegation_runs_when_delegation_is_required(delegating):
    gov, alice, bob, read_file, ran = delegating
    grant = issue_delegation(alice, bob.identity, {"tool:read_file"})
    gov.call(read_file, ("/ws/a",), agent="bob", envelope=envelope(bob, "read_file", {"path": "/ws/a"}, "bob"), delegation=grant)
    assert ran == ["/ws/a"]


def test_missing_delegation_is_refused_even_in_audit_mode(world):
    gov, *_ = world
    gov.require_delegation, gov.mode = True, Mode.AUDIT
    assert rules(lambda: gov.call(lambda: None, tool="read_doc", agent="alice")) == ("delegation-required",)


def test_delegation_without_an_envelope_is_refused(tmp_path, root, monkeypatch):
    monkeypatch.chdir(root)
    store = IdentityStore(tmp_path / "ids")
    alice, bob = store.create("alice"), store.create("bob")
    gov = Governor("yaml", STARTER, identity=EnvelopeVerifier(store.resolve), trusted_roots={"alice": alice.did})
    grant = issue_delegation(alice, bob.identity, {"tool:read_file"})
    assert rules(lambda: gov.call(lambda: None, tool="read_doc", agent="bob", delegation=grant)) == ("delegation-invalid",)


def test_require_delegation_without_an_identity_verifier_is_refused_at_construction(root, monkeypatch):
    monkeypatch.chdir(root)
    with pytest.raises(ValueError, match="require_delegation needs identity"):
        Governor("yaml", STARTER, require_delegation=True)
