"""agt.identity.delegation: signed capability chains, checked link by link.

Links that issue_delegation would refuse to make (widened, mis-issued, too deep) are built and signed by
hand with dataclasses.replace, so verify_chain is tested on its own, as it would meet a hostile chain.
"""

import dataclasses

import pytest

from agt.action import Kind
from agt.identity import (
    MAX_CHAIN_DEPTH,
    BrokenChainError,
    ChainTooDeepError,
    Delegation,
    DelegationError,
    DelegationExpiredError,
    DelegationHolderError,
    DelegationNotYetValidError,
    DelegationSignatureError,
    IdentityKeys,
    InvalidCapabilityError,
    MalformedDelegationError,
    ScopeWidenedError,
    UntrustedRootError,
    allows,
    issue_delegation,
    verify_chain,
)

T0 = 1_800_000_000
HOUR = 3600


@pytest.fixture(scope="module")
def root():
    return IdentityKeys.generate("root")


@pytest.fixture(scope="module")
def alice():
    return IdentityKeys.generate("alice")


@pytest.fixture(scope="module")
def bob():
    return IdentityKeys.generate("bob")


@pytest.fixture(scope="module")
def mallory():
    return IdentityKeys.generate("mallory")


@pytest.fixture(scope="module")
def trusted(root):
    return {"root": root.did}


def grant(issuer, subject, caps, parent=None, *, not_before=T0, expires_at=T0 + HOUR):
    return issue_delegation(issuer, subject.identity, caps, parent=parent, not_before=not_before, expires_at=expires_at)


def forge(link: Delegation, signer: IdentityKeys, **changes) -> Delegation:
    """The link with ``changes``, signed by ``signer``: what an attacker can build without issue_delegation."""
    draft = dataclasses.replace(link, **changes)
    return dataclasses.replace(draft, signature=signer.sign(draft.signed_bytes()))


# --- valid chains --------------------------------------------------------------------------------


def test_one_link_chain_grants_its_capabilities(root, alice, trusted):
    link = grant(root, alice, {"tool:*"})
    assert verify_chain(link, trusted, T0) == frozenset({"tool:*"})


def test_two_link_chain_grants_the_narrowed_capabilities(root, alice, bob, trusted):
    parent = grant(root, alice, {"tool:*"})
    child = grant(alice, bob, {"tool:read_file", "kind:read"}, parent)
    caps = verify_chain(child, trusted, T0 + 60)
    assert caps == frozenset({"tool:read_file", "kind:read"})
    assert child.depth == 2 and child.chain == (parent, child)


def test_chain_survives_a_json_round_trip(root, alice, bob, trusted):
    child = grant(alice, bob, {"kind:read"}, grant(root, alice, {"kind:read", "kind:write"}))
    again = Delegation.from_json(child.to_json())
    assert again == child
    assert verify_chain(again, trusted, T0) == frozenset({"kind:read"})


def test_holder_check_accepts_the_subject(root, alice, trusted):
    assert verify_chain(grant(root, alice, {"tool:x"}), trusted, T0, holder_did=alice.did)


# --- allows and coverage -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "caps,tool,kind,expected",
    [
        ({"tool:*"}, "anything", "delete", True),
        ({"tool:read_file"}, "read_file", "read", True),
        ({"tool:read_file"}, "write_file", "write", False),
        ({"kind:read"}, "search", Kind.READ, True),
        ({"kind:read"}, "search", "write", False),
        (set(), "read_file", "read", False),
    ],
    ids=["wildcard", "named-tool", "other-tool", "kind", "other-kind", "nothing"],
)
def test_allows(caps, tool, kind, expected):
    assert allows(frozenset(caps), tool, kind) is expected


@pytest.mark.parametrize("bad", ["read_file", "tool:", "tool:read*", "kind:fly", "kind:*", "tool:a b", 7])
def test_invalid_capability_is_refused(root, alice, bad):
    with pytest.raises(InvalidCapabilityError):
        grant(root, alice, {bad})


def test_empty_capability_set_is_refused(root, alice):
    with pytest.raises(InvalidCapabilityError, match="at least one"):
        grant(root, alice, set())


# --- refused chains ------------------------------------------------------------------------------


def test_widened_scope_is_refused_naming_the_link(root, alice, bob, trusted):
    parent = grant(root, alice, {"kind:read"})
    child = grant(alice, bob, {"kind:read"}, parent)
    widened = forge(child, alice, capabilities=frozenset({"kind:read", "tool:shell"}))
    with pytest.raises(ScopeWidenedError, match=r"link 2 of 2 \(alice -> bob\).*tool:shell") as info:
        verify_chain(widened, trusted, T0)
    assert info.value.link == 2


def test_kind_capability_does_not_cover_a_tool_capability(root, alice, bob):
    with pytest.raises(ScopeWidenedError, match="tool:read_file"):
        grant(alice, bob, {"tool:read_file"}, grant(root, alice, {"kind:read"}))


def test_issue_refuses_to_widen_scope(root, alice, bob):
    with pytest.raises(ScopeWidenedError, match="kind:delete"):
        grant(alice, bob, {"kind:delete"}, grant(root, alice, {"kind:read"}))


def test_expired_link_is_refused_naming_the_link(root, alice, bob, trusted):
    parent = grant(root, alice, {"tool:*"}, expires_at=T0 + 60)
    child = grant(alice, bob, {"tool:x"}, parent, expires_at=T0 + HOUR)
    assert verify_chain(child, trusted, T0 + 59)
    with pytest.raises(DelegationExpiredError, match=r"link 1 of 2 \(root -> alice\): expired") as info:
        verify_chain(child, trusted, T0 + 60)
    assert info.value.link == 1


def test_expired_leaf_is_refused(root, alice, bob, trusted):
    child = grant(alice, bob, {"tool:x"}, grant(root, alice, {"tool:*"}), expires_at=T0 + 10)
    with pytest.raises(DelegationExpiredError, match="link 2 of 2"):
        verify_chain(child, trusted, T0 + 10)


def test_link_before_its_start_is_refused(root, alice, trusted):
    link = grant(root, alice, {"tool:*"}, not_before=T0 + 100, expires_at=T0 + HOUR)
    with pytest.raises(DelegationNotYetValidError, match="not valid before"):
        verify_chain(link, trusted, T0)


def test_forged_signature_is_refused(root, alice, mallory, trusted):
    genuine = grant(root, alice, {"kind:read"})
    forged = forge(genuine, mallory, capabilities=frozenset({"tool:*"}))  # claims root as issuer
    with pytest.raises(DelegationSignatureError, match="link 1 of 1"):
        verify_chain(forged, trusted, T0)


def test_altered_capabilities_break_the_signature(root, alice, trusted):
    altered = dataclasses.replace(grant(root, alice, {"kind:read"}), capabilities=frozenset({"tool:*"}))
    with pytest.raises(DelegationSignatureError):
        verify_chain(altered, trusted, T0)


def test_link_moved_under_another_parent_is_refused(root, alice, bob, trusted):
    narrow = grant(root, alice, {"tool:x"})
    wide = grant(root, alice, {"tool:*"}, expires_at=T0 + 2 * HOUR)
    child = grant(alice, bob, {"tool:x"}, narrow)
    moved = dataclasses.replace(child, parent=wide)
    with pytest.raises(DelegationSignatureError, match="link 2 of 2"):
        verify_chain(moved, trusted, T0)


def test_chain_not_rooted_in_a_trusted_root_is_refused(alice, bob, mallory, trusted):
    link = grant(mallory, alice, {"tool:*"})
    with pytest.raises(UntrustedRootError, match="'mallory' is not a trusted root"):
        verify_chain(grant(alice, bob, {"tool:x"}, link), trusted, T0)


def test_trusted_root_id_with_another_did_is_refused(alice, trusted):
    fake_root = IdentityKeys.generate("root")
    with pytest.raises(UntrustedRootError, match="not with"):
        verify_chain(grant(fake_root, alice, {"tool:*"}), trusted, T0)


def test_issuer_that_is_not_the_parents_subject_is_refused(root, alice, bob, mallory, trusted):
    parent = grant(root, alice, {"tool:*"})                 # granted to alice ...
    stolen = grant(mallory, bob, {"tool:*"})                # ... but mallory re-delegates it
    stolen = forge(stolen, mallory, parent=parent)
    with pytest.raises(BrokenChainError, match=r"link 2 of 2 \(mallory -> bob\).*granted to 'alice'"):
        verify_chain(stolen, trusted, T0)


def test_issue_refuses_to_delegate_a_parent_the_issuer_does_not_hold(root, alice, bob, mallory):
    with pytest.raises(BrokenChainError, match="does not hold"):
        grant(mallory, bob, {"tool:x"}, grant(root, alice, {"tool:*"}))


def test_chain_deeper_than_the_limit_is_refused(root, trusted):
    agents = [root] + [IdentityKeys.generate(f"a{i}") for i in range(MAX_CHAIN_DEPTH + 1)]
    link = None
    for i in range(MAX_CHAIN_DEPTH):
        link = grant(agents[i], agents[i + 1], {"tool:*"}, link)
    assert link.depth == MAX_CHAIN_DEPTH and verify_chain(link, trusted, T0)
    with pytest.raises(ChainTooDeepError):  # issue refuses the ninth link ...
        grant(agents[-2], agents[-1], {"tool:*"}, link)
    ninth = forge(grant(agents[-2], agents[-1], {"tool:*"}), agents[-2], parent=link)
    with pytest.raises(ChainTooDeepError, match=f"{MAX_CHAIN_DEPTH + 1} links"):  # ... and so does verify
        verify_chain(ninth, trusted, T0)


def test_max_depth_can_be_lowered(root, alice, bob, trusted):
    child = grant(alice, bob, {"tool:x"}, grant(root, alice, {"tool:*"}))
    with pytest.raises(ChainTooDeepError):
        verify_chain(child, trusted, T0, max_depth=1)


def test_delegation_presented_by_another_agent_is_refused(root, alice, mallory, trusted):
    with pytest.raises(DelegationHolderError, match="not to the agent presenting it"):
        verify_chain(grant(root, alice, {"tool:*"}), trusted, T0, holder_did=mallory.did)


@pytest.mark.parametrize(
    "mutate,cause",
    [
        (lambda d: d.pop("signature"), "link 1 of 1: missing signature"),
        (lambda d: d.update(capabilities="tool:*"), "link 1 of 1: capabilities must be a list"),
        (lambda d: d.update(capabilities=["tool:nope*"]), "link 1 of 1: invalid capability"),
        (lambda d: d.update(expires_at=d["not_before"]), "link 1 of 1: expires_at"),
        (lambda d: d["issuer"].update(did="did:key:zBad"), "link 1 of 1: issuer"),
        (lambda d: d.update(parent=[]), "parent of the link nested 1 deep must be a JSON object"),
    ],
    ids=["missing-signature", "capabilities-not-list", "bad-capability", "empty-span", "bad-did", "parent-not-object"],
)
def test_malformed_delegation_json_is_refused(root, alice, mutate, cause):
    doc = grant(root, alice, {"tool:*"}).to_dict()
    mutate(doc)
    with pytest.raises(MalformedDelegationError, match=cause):
        Delegation.from_dict(doc)


def test_hostile_nesting_is_refused_without_recursing():
    doc = None
    for _ in range(10_000):
        doc = {"parent": doc}
    with pytest.raises(MalformedDelegationError, match="more than"):
        Delegation.from_dict(doc)


def test_every_refusal_is_a_delegation_error():
    for cls in (ScopeWidenedError, DelegationExpiredError, DelegationSignatureError, UntrustedRootError,
                BrokenChainError, ChainTooDeepError, MalformedDelegationError, DelegationHolderError):
        assert issubclass(cls, DelegationError)
