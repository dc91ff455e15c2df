"""agt.runtime.votes: the signed vote envelope and the check that decides whether one counts."""

from __future__ import annotations

import time

import pytest

from agt.identity import IdentityKeys
from agt.runtime.approvers import ApproverRegistry
from agt.runtime.votes import MalformedVoteError, SignedVote, check_vote, sign_vote

KEYS = IdentityKeys.generate("comms-lead")
REGISTRY = ApproverRegistry({"comms-lead": KEYS.identity})
NOW = time.time()


def signed(**kw) -> SignedVote:
    args = dict(request_id="apr_1", digest="d1", agent_id="mailer", approve=True, issued_at=NOW, expires_at=NOW + 60)
    return sign_vote(KEYS, **{**args, **kw})


def check(doc, **kw):
    args = dict(request_id="apr_1", digest="d1", agent_id="mailer", agent_did=None, eligible=("comms-lead",),
                deadline=NOW + 300, now=NOW + 1, max_future_skew=30.0)
    return check_vote(doc, REGISTRY, **{**args, **kw})


def test_a_vote_round_trips_through_its_json_form():
    vote = signed(note="ok")
    assert SignedVote.from_dict(vote.to_dict()) == vote


def test_a_well_formed_vote_counts():
    assert check(signed().to_dict()).vote is not None


@pytest.mark.parametrize("field,value", [("approve", False), ("digest", "d2"), ("expires_at", NOW + 9999), ("note", "x")])
def test_editing_any_signed_field_breaks_the_signature(field, value):
    doc = {**signed().to_dict(), field: value}
    assert "registered key" in check(doc).problem


@pytest.mark.parametrize("doc,field", [
    ("text", "JSON object"), ({"type": "other"}, "type"), ({**signed().to_dict(), "approve": "yes"}, "approve"),
    ({**signed().to_dict(), "issued_at": float("nan")}, "issued_at"), ({**signed().to_dict(), "signature": "!!"}, "signature"),
], ids=["not-object", "type", "approve", "issued_at", "signature"])
def test_a_malformed_vote_is_ignored_naming_the_field(doc, field):
    with pytest.raises(MalformedVoteError, match=field):
        SignedVote.from_dict(doc)
    assert "malformed" in check(doc).problem


def test_a_vote_dated_in_the_future_is_ignored():
    assert "future" in check(signed(issued_at=NOW + 120, expires_at=NOW + 600).to_dict()).problem


def test_sign_vote_refuses_a_vote_that_expires_before_it_is_cast():
    with pytest.raises(ValueError, match="expire"):
        signed(expires_at=NOW - 1)
