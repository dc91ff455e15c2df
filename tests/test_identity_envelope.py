"""agt.identity.envelope: signed action envelopes and their verifier.

Real signatures throughout; only the clock is injected, so window tests do not sleep.
"""

import threading
from decimal import Decimal

import pytest

import agt
from agt.identity import (
    ActionAgentMismatchError,
    DidMismatchError,
    EnvelopeError,
    EnvelopeSignatureError,
    EnvelopeVerifier,
    ExpiredEnvelopeError,
    FutureEnvelopeError,
    IdentityError,
    IdentityKeys,
    IdentityStore,
    MalformedEnvelopeError,
    NonceCacheFullError,
    ReplayedNonceError,
    SignedEnvelope,
    UnknownAgentError,
    VerifiedEnvelope,
    sign_envelope,
)

T0 = 1_800_000_000
ACTION = {"agent": {"id": "alice"}, "action": {"tool": "read_file", "kind": "read", "params": {"path": "/ws/a.txt"}}}


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def alice():
    return IdentityKeys.generate("alice")


@pytest.fixture(scope="module")
def bob():
    return IdentityKeys.generate("bob")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(alice, bob, clock):
    registry = {"alice": alice.did, "bob": bob.did}
    return EnvelopeVerifier(registry.get, window_seconds=300, clock=clock)


def signed(keys, action=ACTION, **kw):
    kw.setdefault("issued_at", T0)
    return sign_envelope(keys, action, **kw)


# --- accepted ------------------------------------------------------------------------------------


def test_valid_envelope_is_accepted(verifier, alice):
    env = signed(alice, nonce="n-1")
    result = verifier.verify(env)
    assert isinstance(result, VerifiedEnvelope)
    assert (result.agent_id, result.did, result.nonce, result.issued_at) == ("alice", alice.did, "n-1", T0)
    assert result.action == ACTION


def test_envelope_survives_a_json_round_trip(verifier, alice):
    env = signed(alice)
    again = SignedEnvelope.from_json(env.to_json())
    assert again == env
    assert verifier.verify(again.to_dict()).agent_id == "alice"


def test_signed_bytes_are_the_canonical_json_of_the_five_fields(alice):
    env = signed(alice, nonce="n", action={"b": 1, "a": "é"})
    assert env.signed_bytes() == (
        '{"action":{"a":"é","b":1},"agent_id":"alice","did":"' + alice.did + '","issued_at":1800000000,"nonce":"n"}'
    ).encode()
    assert alice.identity.verify(env.signature, env.signed_bytes())


def test_an_exact_decimal_param_survives_signing_and_a_json_round_trip(verifier, alice):
    action = agt.from_call("refund", {"amount": Decimal("100.0000000000000000001")}, agent="alice")
    env = SignedEnvelope.from_json(signed(alice, action.to_dict()).to_json())
    result = verifier.verify(env)
    assert agt.Action.from_dict(result.action).action.params["amount"] == Decimal("100.0000000000000000001")


def test_a_real_action_document_round_trips_through_an_envelope(verifier, alice):
    action = agt.from_call("read_file", {"path": "/ws/a.txt"}, agent="alice")
    result = verifier.verify(signed(alice, action.to_dict()))
    assert agt.Action.from_dict(result.action).action.tool == "read_file"


def test_verifier_wires_to_an_identity_store(tmp_path, clock):
    store = IdentityStore(tmp_path)
    keys = store.create("alice")
    verifier = EnvelopeVerifier(store.resolve, clock=clock)
    assert verifier.verify(signed(store.keys("alice"))).did == keys.did


# --- refused -------------------------------------------------------------------------------------


def test_tampered_action_is_refused_as_a_bad_signature(verifier, alice):
    doc = signed(alice).to_dict()
    doc["action"]["action"]["params"]["path"] = "/etc/shadow"
    with pytest.raises(EnvelopeSignatureError, match="changed after signing"):
        verifier.verify(doc)


def test_tampered_timestamp_is_refused_as_a_bad_signature(verifier, alice):
    doc = signed(alice).to_dict()
    doc["issued_at"] += 1
    with pytest.raises(EnvelopeSignatureError):
        verifier.verify(doc)


def test_signature_by_another_key_under_the_agents_did_is_refused(verifier, alice):
    impostor = IdentityKeys.generate("alice")  # same agent id, different key
    doc = signed(impostor).to_dict()
    doc["did"] = alice.did  # claim the real did; the impostor's signature cannot match it
    with pytest.raises(EnvelopeSignatureError):
        verifier.verify(doc)


def test_impostor_signing_with_its_own_did_is_refused_as_a_did_mismatch(verifier):
    impostor = IdentityKeys.generate("alice")
    with pytest.raises(DidMismatchError, match="is not the did of agent 'alice'"):
        verifier.verify(signed(impostor))


def test_did_of_another_agent_is_refused(verifier, bob):
    # bob signs honestly with his own key, then claims to be alice
    doc = signed(bob, {"action": {"tool": "read_file"}}).to_dict()
    doc["agent_id"] = "alice"
    with pytest.raises(DidMismatchError) as info:
        verifier.verify(doc)
    assert not isinstance(info.value, UnknownAgentError)


def test_unknown_agent_is_refused(clock):
    carol = IdentityKeys.generate("carol")
    verifier = EnvelopeVerifier(lambda agent_id: None, clock=clock)
    with pytest.raises(UnknownAgentError, match="no registered identity"):
        verifier.verify(signed(carol, {"action": {"tool": "x"}}))


def test_action_naming_another_agent_is_refused_at_signing(bob):
    with pytest.raises(ActionAgentMismatchError):
        sign_envelope(bob, ACTION)


def test_action_naming_another_agent_is_refused_at_verification(verifier, alice):
    doc = signed(alice).to_dict()
    doc["action"]["agent"]["id"] = "bob"
    with pytest.raises(ActionAgentMismatchError):
        verifier.verify(doc)


def test_replayed_nonce_is_refused(verifier, alice):
    env = signed(alice, nonce="once")
    verifier.verify(env)
    with pytest.raises(ReplayedNonceError, match="replay"):
        verifier.verify(env)


def test_same_nonce_from_another_agent_is_not_a_replay(verifier, alice, bob):
    verifier.verify(signed(alice, nonce="shared"))
    assert verifier.verify(signed(bob, {"action": {"tool": "x"}}, nonce="shared")).agent_id == "bob"


def test_forged_envelope_does_not_use_up_the_genuine_nonce(verifier, alice):
    genuine = signed(alice, nonce="n-7")
    forged = genuine.to_dict()
    forged["action"]["action"]["tool"] = "delete_file"
    with pytest.raises(EnvelopeSignatureError):
        verifier.verify(forged)
    assert verifier.verify(genuine).nonce == "n-7"


def test_expired_envelope_is_refused(verifier, alice, clock):
    clock.now = T0 + 301
    with pytest.raises(ExpiredEnvelopeError, match="301s ago"):
        verifier.verify(signed(alice))


def test_envelope_exactly_at_the_window_edge_is_accepted(verifier, alice, clock):
    clock.now = T0 + 300
    assert verifier.verify(signed(alice)).issued_at == T0


def test_future_dated_envelope_is_refused(verifier, alice, clock):
    with pytest.raises(FutureEnvelopeError, match="in the future"):
        verifier.verify(signed(alice, issued_at=T0 + 31))


def test_small_clock_skew_is_tolerated(verifier, alice):
    assert verifier.verify(signed(alice, issued_at=T0 + 30)).issued_at == T0 + 30


def _doc(alice):
    return signed(alice).to_dict()


@pytest.mark.parametrize(
    "mutate,cause",
    [
        (lambda d: d.pop("nonce"), "missing nonce"),
        (lambda d: d.update(extra=1), "unknown fields: extra"),
        (lambda d: d.update(signature="!!!"), "signature"),
        (lambda d: d.update(signature="AAAA"), "64 bytes"),
        (lambda d: d.update(issued_at="yesterday"), "issued_at"),
        (lambda d: d.update(issued_at=True), "issued_at"),
        (lambda d: d.update(nonce=""), "nonce"),
        (lambda d: d.update(did="did:key:zNotAKey"), "did"),
        (lambda d: d.update(agent_id="../alice"), "agent_id"),
        (lambda d: d.update(action=["not", "an", "object"]), "action"),
    ],
    ids=["missing-field", "extra-field", "bad-base64", "short-signature", "string-time", "bool-time",
         "empty-nonce", "bad-did", "unsafe-agent-id", "action-not-object"],
)
def test_malformed_envelope_is_refused(verifier, alice, mutate, cause):
    doc = _doc(alice)
    mutate(doc)
    with pytest.raises(MalformedEnvelopeError, match=cause):
        verifier.verify(doc)


@pytest.mark.parametrize("text", ["not json", "[]", '"envelope"'])
def test_envelope_text_that_is_not_an_object_is_refused(text):
    with pytest.raises(MalformedEnvelopeError):
        SignedEnvelope.from_json(text)


def test_action_that_is_not_plain_json_cannot_be_signed(alice):
    with pytest.raises(MalformedEnvelopeError, match="not plain JSON"):
        sign_envelope(alice, {"action": {"tool": "x", "params": {"when": {1, 2}}}})


def test_every_refusal_is_an_identity_error():
    for cls in (EnvelopeSignatureError, DidMismatchError, ExpiredEnvelopeError, FutureEnvelopeError,
                ReplayedNonceError, MalformedEnvelopeError, ActionAgentMismatchError, NonceCacheFullError):
        assert issubclass(cls, EnvelopeError) and issubclass(cls, IdentityError)


# --- the nonce cache -----------------------------------------------------------------------------


def test_nonce_cache_forgets_nonces_once_they_leave_the_window(verifier, alice, clock):
    for i in range(5):
        verifier.verify(signed(alice, nonce=f"old-{i}"))
    assert verifier.nonce_count == 5
    clock.now = T0 + 301
    verifier.verify(signed(alice, nonce="new", issued_at=T0 + 301))
    assert verifier.nonce_count == 1


def test_nonce_cache_forget_expired_works_when_idle(verifier, alice, clock):
    verifier.verify(signed(alice))
    clock.now = T0 + 301
    verifier.forget_expired()
    assert verifier.nonce_count == 0


def test_full_nonce_cache_refuses_instead_of_forgetting_early(alice, clock):
    verifier = EnvelopeVerifier({"alice": alice.did}.get, clock=clock, max_nonces=2)
    verifier.verify(signed(alice, nonce="a"))
    verifier.verify(signed(alice, nonce="b"))
    with pytest.raises(NonceCacheFullError, match="max_nonces"):
        verifier.verify(signed(alice, nonce="c"))
    with pytest.raises(ReplayedNonceError):  # and the remembered nonces still block replays
        verifier.verify(signed(alice, nonce="a"))


def test_concurrent_replays_let_exactly_one_through(verifier, alice):
    env = signed(alice, nonce="race")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            verifier.verify(env)
            outcomes.append("ok")
        except ReplayedNonceError:
            outcomes.append("replay")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["replay"] * 7


def test_verifier_refuses_a_nonsensical_window():
    with pytest.raises(ValueError):
        EnvelopeVerifier(lambda _: None, window_seconds=0)
