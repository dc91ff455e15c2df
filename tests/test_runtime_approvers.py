"""agt.runtime.approvers: the approver registry (name -> did:key) and the approver key store location."""

from __future__ import annotations

import json

import pytest

from agt.identity import IdentityKeys, IdentityStore
from agt.runtime.approvers import ApproverRegistry, ApproverRegistryError, approver_key_store, as_registry

A, B = IdentityKeys.generate("a"), IdentityKeys.generate("b")


def test_from_mapping_accepts_dids_identities_and_public_keys():
    registry = ApproverRegistry.from_mapping({"a": A.did, "b": B.public_key, "c": IdentityKeys.generate("c").identity})
    assert registry.names == ("a", "b", "c") and registry.get("a").did == A.did


def test_two_names_sharing_one_key_are_refused():
    with pytest.raises(ApproverRegistryError, match="share one key"):
        ApproverRegistry.from_mapping({"a": A.did, "a2": A.did})


def test_a_bad_did_names_the_file_and_the_approver(tmp_path):
    path = tmp_path / "approvers.json"
    path.write_text(json.dumps({"approvers": {"ops": "did:key:nope"}}))
    with pytest.raises(ApproverRegistryError, match=r"approvers\.json: approvers\.ops"):
        ApproverRegistry.from_file(path)


@pytest.mark.parametrize("text", ["{", "[]", '{"approvers": []}'], ids=["json", "not-object", "approvers-not-object"])
def test_a_malformed_registry_file_is_an_error(tmp_path, text):
    path = tmp_path / "approvers.json"
    path.write_text(text)
    with pytest.raises(ApproverRegistryError, match="approvers.json"):
        ApproverRegistry.from_file(path)


def test_a_saved_registry_loads_back(tmp_path):
    registry = ApproverRegistry.from_mapping({"a": A.did, "b": B.did})
    assert ApproverRegistry.from_file(registry.save(tmp_path / "r.json")).to_dict() == registry.to_dict()


def test_from_store_holds_the_public_halves_of_the_key_store(tmp_path):
    store = IdentityStore(tmp_path)
    made = store.create("ops")
    assert ApproverRegistry.from_store(store).get("ops").did == made.did


def test_the_key_store_location_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGT_APPROVER_KEYS", str(tmp_path / "k"))
    assert approver_key_store().directory == tmp_path / "k"


def test_as_registry_of_none_is_empty():
    assert len(as_registry(None)) == 0
