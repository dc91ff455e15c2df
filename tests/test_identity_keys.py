"""agt.identity.keys and agt.identity.store: did:key encoding, key files, and the identity directory.

Real Ed25519 keys throughout. The known answers come from published did:key fixtures, so the encoding is
checked against other implementations, not only against itself.
"""

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agt.errors import AgtError
from agt.identity import (
    CorruptIdentityError,
    Identity,
    IdentityError,
    IdentityExistsError,
    IdentityKeys,
    IdentityNotFoundError,
    IdentityStore,
    InvalidAgentIdError,
    InvalidDidError,
    KeyFileError,
    did_from_public_key,
    public_key_from_did,
)
from agt.identity.keys import b58decode, b58encode, raw_public_key

# The all-zero seed: public key 3b6a27bc...da29 and its did:key, as published in did:key test fixtures.
ZERO_SEED = bytes(32)
ZERO_SEED_PUBLIC = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
ZERO_SEED_DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
# A second, unrelated seed from the Decentralized Web Node interop fixtures.
DWN_SEED = bytes.fromhex("7052adea8f9823817065456ecad5bf24dcd31a698f7bc9a0b5fc170849af4226")
DWN_DID = "did:key:z6MkwJSaEMnE4u6LiqrZV1BJHSkc9x8S4mTm3ArNL1m19BZR"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- did:key -------------------------------------------------------------------------------------


def test_did_key_known_answer_for_the_all_zero_seed():
    keys = IdentityKeys.from_seed("agent", ZERO_SEED)
    assert keys.did == ZERO_SEED_DID
    # Cross-check by decoding: the did carries exactly the RFC 8032 public key of that seed.
    assert raw_public_key(public_key_from_did(ZERO_SEED_DID)).hex() == ZERO_SEED_PUBLIC


def test_did_key_known_answer_for_a_second_seed():
    keys = IdentityKeys.from_seed("agent", DWN_SEED)
    assert keys.did == DWN_DID
    assert raw_public_key(public_key_from_did(DWN_DID)) == raw_public_key(keys.public_key)


def test_did_key_layout_is_multicodec_ed01_then_32_key_bytes():
    decoded = b58decode(ZERO_SEED_DID[len("did:key:z"):])
    assert decoded[:2] == b"\xed\x01" and decoded[2:].hex() == ZERO_SEED_PUBLIC


def test_did_key_round_trips_a_generated_key():
    keys = IdentityKeys.generate("agent")
    did = did_from_public_key(keys.public_key)
    assert did.startswith("did:key:z6Mk")
    assert did_from_public_key(public_key_from_did(did)) == did


def test_base58_keeps_leading_zero_bytes():
    for data in (b"", b"\0", b"\0\0\x01", b"\xff" * 40, bytes(range(64))):
        assert b58decode(b58encode(data)) == data
    assert b58encode(b"\0\0\x01") == "112"


def _did(payload: bytes) -> str:
    return "did:key:z" + b58encode(payload)


@pytest.mark.parametrize(
    "did,cause",
    [
        (42, "must be a string"),
        ("did:web:example.com", "is not a did:key"),
        ("did:key:" + "f" + "ed01" + "00" * 32, "base58btc"),
        ("did:key:z6Mk0OIl", "not a base58btc character"),
        (_did(b"\xe7\x01" + bytes(33)), "does not hold an Ed25519 public key"),
        (_did(b"\xed\x01" + bytes(31)), "holds 31 key bytes"),
        (_did(b"\xed\x01" + bytes(33)), "holds 33 key bytes"),
        (ZERO_SEED_DID + "#" + ZERO_SEED_DID[8:], "DID URL"),
        ("did:key:z" + "1" * 500, "too long"),
    ],
    ids=["not-a-string", "other-method", "other-multibase", "bad-base58", "other-key-type", "short-key",
         "long-key", "did-url", "too-long"],
)
def test_malformed_did_is_refused_naming_the_defect(did, cause):
    with pytest.raises(InvalidDidError, match=cause):
        public_key_from_did(did)


def test_identity_errors_are_agt_errors():
    assert issubclass(IdentityError, AgtError)
    assert issubclass(InvalidDidError, IdentityError)


# --- Identity and IdentityKeys -------------------------------------------------------------------


def test_identity_from_a_malformed_did_fails_at_construction():
    with pytest.raises(InvalidDidError):
        Identity("agent", "did:key:zzz")


@pytest.mark.parametrize("agent_id", ["", "../x", "a/b", "a\\b", ".hidden", "..", "x" * 129, None])
def test_identity_refuses_an_unsafe_agent_id(agent_id):
    with pytest.raises(InvalidAgentIdError):
        Identity(agent_id, ZERO_SEED_DID)


def test_identity_is_a_value_compared_by_agent_and_did():
    assert Identity("a", ZERO_SEED_DID) == Identity("a", ZERO_SEED_DID)
    assert Identity("a", ZERO_SEED_DID) != Identity("b", ZERO_SEED_DID)
    assert len({Identity("a", ZERO_SEED_DID), Identity("a", ZERO_SEED_DID)}) == 1


def test_signature_verifies_only_over_the_signed_bytes():
    keys = IdentityKeys.generate("agent")
    sig = keys.sign(b"hello")
    assert keys.identity.verify(sig, b"hello")
    assert not keys.identity.verify(sig, b"hellO")
    assert not IdentityKeys.generate("other").identity.verify(sig, b"hello")


def test_keys_repr_never_shows_the_private_key():
    keys = IdentityKeys.from_seed("agent", ZERO_SEED)
    pem = keys.to_pem().decode()
    body = "".join(pem.splitlines()[1:-1])
    assert "agent" in repr(keys) and body not in repr(keys) and "PRIVATE" not in repr(keys)


def test_pem_round_trip_keeps_the_did():
    keys = IdentityKeys.generate("agent")
    assert IdentityKeys.from_pem("agent", keys.to_pem()).did == keys.did


def test_saved_private_key_has_mode_0600_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        path = IdentityKeys.generate("agent").save(tmp_path / "agent.key")
    finally:
        os.umask(old)
    assert mode(path) == 0o600


def test_save_refuses_to_replace_a_key_without_overwrite(tmp_path):
    path = tmp_path / "agent.key"
    first = IdentityKeys.generate("agent")
    first.save(path)
    with pytest.raises(FileExistsError):
        IdentityKeys.generate("agent").save(path)
    assert IdentityKeys.load("agent", path).did == first.did


def test_overwrite_replaces_the_key_and_tightens_a_loose_mode(tmp_path):
    path = tmp_path / "agent.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    keys = IdentityKeys.generate("agent")
    keys.save(path, overwrite=True)
    assert mode(path) == 0o600 and IdentityKeys.load("agent", path).did == keys.did
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.key"]  # no temporary file left behind


def test_load_refuses_a_key_that_is_not_ed25519(tmp_path):
    path = tmp_path / "ec.key"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    with pytest.raises(KeyFileError, match="Ed25519"):
        IdentityKeys.load("agent", path)


def test_load_refuses_a_file_that_is_not_pem(tmp_path):
    path = tmp_path / "junk.key"
    path.write_bytes(b"not a key")
    with pytest.raises(KeyFileError, match="junk.key"):
        IdentityKeys.load("agent", path)


def test_from_seed_refuses_a_seed_of_the_wrong_length():
    with pytest.raises(KeyFileError, match="32 bytes"):
        IdentityKeys.from_seed("agent", bytes(31))


# --- IdentityStore -------------------------------------------------------------------------------


def test_store_create_get_and_list(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    a = store.create("alpha")
    b = store.create("beta")
    assert store.get("alpha") == a.identity
    assert [i.agent_id for i in store.list()] == ["alpha", "beta"]
    assert store.keys("beta").did == b.did
    assert store.resolve("alpha") == a.did
    assert (tmp_path / "ids" / "alpha.json").exists() and (tmp_path / "ids" / "alpha.key").exists()


def test_store_refuses_to_create_an_existing_id(tmp_path):
    store = IdentityStore(tmp_path)
    first = store.create("alpha")
    with pytest.raises(IdentityExistsError, match="already exists"):
        store.create("alpha")
    assert store.get("alpha").did == first.did


def test_store_overwrite_replaces_the_identity(tmp_path):
    store = IdentityStore(tmp_path)
    first = store.create("alpha")
    second = store.create("alpha", overwrite=True)
    assert second.did != first.did
    assert store.get("alpha").did == second.did == store.keys("alpha").did


def test_store_private_key_file_has_mode_0600(tmp_path):
    store = IdentityStore(tmp_path)
    store.create("alpha")
    assert mode(store.key_path("alpha")) == 0o600


@pytest.mark.parametrize("agent_id", ["../escape", "sub/dir", "/abs", "..", ".agt", "a\\b", "a\0b", ""])
def test_store_refuses_path_traversal_and_writes_nothing(tmp_path, agent_id):
    store = IdentityStore(tmp_path / "ids")
    with pytest.raises(InvalidAgentIdError):
        store.create(agent_id)
    assert list(tmp_path.rglob("*")) == []


def test_store_get_of_an_unknown_id_says_how_to_create_it(tmp_path):
    with pytest.raises(IdentityNotFoundError, match="agt identity create ghost"):
        IdentityStore(tmp_path).get("ghost")
    assert IdentityStore(tmp_path).resolve("ghost") is None


def test_store_lists_nothing_for_a_missing_directory(tmp_path):
    assert IdentityStore(tmp_path / "absent").list() == []


def test_store_default_directory_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGT_IDENTITY_DIR", str(tmp_path / "env-ids"))
    IdentityStore().create("alpha")
    assert (tmp_path / "env-ids" / "alpha.json").exists()


def test_store_default_directory_without_the_environment(monkeypatch):
    monkeypatch.delenv("AGT_IDENTITY_DIR", raising=False)
    assert IdentityStore().directory == Path(".agt/identities")


def test_store_detects_a_key_file_that_does_not_match(tmp_path):
    store = IdentityStore(tmp_path)
    store.create("alpha")
    IdentityKeys.generate("alpha").save(store.key_path("alpha"), overwrite=True)
    with pytest.raises(CorruptIdentityError, match="does not match"):
        store.keys("alpha")


def test_store_detects_an_edited_did(tmp_path):
    store = IdentityStore(tmp_path)
    store.create("alpha")
    path = store.public_path("alpha")
    path.write_text(path.read_text().replace(store.get("alpha").did, ZERO_SEED_DID))
    with pytest.raises(CorruptIdentityError, match="public_key does not match"):
        store.get("alpha")


def test_store_detects_a_file_renamed_to_another_agent(tmp_path):
    store = IdentityStore(tmp_path)
    store.create("alpha")
    store.public_path("alpha").rename(store.public_path("beta"))
    with pytest.raises(CorruptIdentityError, match="named for 'beta'"):
        store.get("beta")
