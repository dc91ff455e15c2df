"""agt.bundle: reproducible OPA bundles, signed as OPA verifies them, checked by a real OPA."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agt.bundle import build_bundle, file_hash, verify_bundle
from agt.bundle.build import BundleError
from agt.bundle.sign import BundleSignatureError, read_bundle
from agt.cli import cli
from agt.opa import ManagedOpa, OpaStartError

ROOT = Path(__file__).resolve().parents[1]
REGO = ROOT / "rego"


def _pem_pair(kind: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture(scope="module")
def rsa_keys():
    return _pem_pair("rsa")


def _rebuild(bundle: bytes, changes: dict[str, bytes]) -> bytes:
    """The same tar with some files' contents replaced and everything else, signature included, kept."""
    files = read_bundle(bundle)
    files.update(changes)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo("/" + name)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue())


def test_build_is_reproducible(rsa_keys):
    assert build_bundle([REGO], signing_key=rsa_keys[0]) == build_bundle([REGO], signing_key=rsa_keys[0])


def test_bundle_holds_policies_and_manifest_but_not_tests():
    files = read_bundle(build_bundle([REGO]))
    assert {"agt/decision.rego", "agt/policies/starter.rego", ".manifest"} <= set(files)
    assert not any(n.endswith("_test.rego") for n in files)
    manifest = json.loads(files[".manifest"])
    assert manifest["roots"] == ["agt"] and manifest["rego_version"] == 1


def test_data_files_are_included(tmp_path):
    (tmp_path / "agt" / "limits").mkdir(parents=True)
    (tmp_path / "agt" / "limits" / "data.json").write_text('{"max": 3}')
    assert "agt/limits/data.json" in read_bundle(build_bundle([REGO], data_dir=tmp_path))


def test_data_and_manifest_are_hashed_over_canonical_json():
    assert file_hash("x/data.json", b'{ "b": 1,  "a": [1, 2] }') == file_hash("x/data.json", b'{"a":[1,2],"b":1}')
    assert file_hash("p.rego", b"package p\n") != file_hash("p.rego", b"package  p\n")


def test_hashes_match_what_opa_sign_computes(opa_binary, tmp_path, rsa_keys):
    """The real `opa sign` over the same files gives the same hashes as ours."""
    (tmp_path / "b" / "agt").mkdir(parents=True)
    (tmp_path / "b" / "agt" / "decision.rego").write_bytes((REGO / "agt" / "decision.rego").read_bytes())
    (tmp_path / "b" / "data.json").write_text('{ "agt": {"x": 1} }')
    (tmp_path / "k.pem").write_bytes(rsa_keys[0])
    subprocess.run([opa_binary, "sign", "--signing-key", "k.pem", "--bundle", "b", "-o", "."], cwd=tmp_path, check=True)
    import jwt

    token = json.loads((tmp_path / ".signatures.json").read_text())["signatures"][0]
    theirs = {f["name"].split("/", 1)[1]: f["hash"] for f in jwt.decode(token, options={"verify_signature": False})["files"]}
    ours = {name: file_hash(name, (tmp_path / "b" / name).read_bytes()) for name in theirs}
    assert ours == theirs


@pytest.mark.parametrize("kind,alg", [("rsa", "RS256"), ("ec", "ES256")])
def test_signed_bundle_verifies(kind, alg):
    private, public = _pem_pair(kind)
    payload = verify_bundle(build_bundle([REGO], signing_key=private, signing_alg=alg), public)
    assert {f["name"] for f in payload["files"]} >= {".manifest", "agt/decision.rego"}


def test_tampered_file_fails_verification(rsa_keys):
    bundle = build_bundle([REGO], signing_key=rsa_keys[0])
    bad = _rebuild(bundle, {"agt/policies/starter.rego": b"package agt.policies.starter\n\ndefault_action := \"allow\"\n"})
    with pytest.raises(BundleSignatureError, match="starter.rego"):
        verify_bundle(bad, rsa_keys[1])


def test_added_file_fails_verification(rsa_keys):
    bundle = build_bundle([REGO], signing_key=rsa_keys[0])
    with pytest.raises(BundleSignatureError, match="not in the signature"):
        verify_bundle(_rebuild(bundle, {"agt/extra.rego": b"package agt.extra\n"}), rsa_keys[1])


def test_wrong_key_fails_verification(rsa_keys):
    bundle = build_bundle([REGO], signing_key=rsa_keys[0])
    with pytest.raises(BundleSignatureError, match="does not verify"):
        verify_bundle(bundle, _pem_pair("rsa")[1])


def test_unsigned_bundle_fails_verification(rsa_keys):
    with pytest.raises(BundleSignatureError, match="not signed"):
        verify_bundle(build_bundle([REGO]), rsa_keys[1])


def test_garbage_is_not_a_bundle(rsa_keys):
    with pytest.raises(BundleSignatureError, match="not a readable bundle"):
        verify_bundle(b"not a tarball", rsa_keys[1])


def _opa_with(bundle: Path, pub: Path):
    # OPA demands a signature on every local bundle, so agt's authorization policy cannot load next to it:
    # these tests are about OPA's signature check, on an OPA only the test reaches.
    return ManagedOpa([], extra_args=["--bundle", str(bundle), "--verification-key", str(pub)], ready_timeout=60,
                      authorization=False)


def test_real_opa_accepts_a_good_bundle(opa_binary, tmp_path, rsa_keys):
    (tmp_path / "b.tar.gz").write_bytes(build_bundle([REGO], signing_key=rsa_keys[0]))
    (tmp_path / "pub.pem").write_bytes(rsa_keys[1])
    with _opa_with(tmp_path / "b.tar.gz", tmp_path / "pub.pem") as opa:
        r = httpx.post(opa.url + "/v1/data/agt/decision", json={"input": {"action": {"tool": "send_email"}, "context": {}}})
        assert r.json()["result"]["effect"] == "require_approval"


def test_real_opa_refuses_a_tampered_bundle(opa_binary, tmp_path, rsa_keys):
    bundle = build_bundle([REGO], signing_key=rsa_keys[0])
    (tmp_path / "b.tar.gz").write_bytes(_rebuild(bundle, {"agt/policies/starter.rego": b"package agt.policies.starter\n"}))
    (tmp_path / "pub.pem").write_bytes(rsa_keys[1])
    with pytest.raises(OpaStartError, match="verif|hash|digest"):
        with _opa_with(tmp_path / "b.tar.gz", tmp_path / "pub.pem"):
            pass


def test_real_opa_refuses_a_bundle_signed_with_another_key(opa_binary, tmp_path, rsa_keys):
    (tmp_path / "b.tar.gz").write_bytes(build_bundle([REGO], signing_key=rsa_keys[0]))
    (tmp_path / "pub.pem").write_bytes(_pem_pair("rsa")[1])
    with pytest.raises(OpaStartError, match="verif"):
        with _opa_with(tmp_path / "b.tar.gz", tmp_path / "pub.pem"):
            pass


def test_cli_build_and_verify(tmp_path, rsa_keys):
    (tmp_path / "k.pem").write_bytes(rsa_keys[0])
    (tmp_path / "pub.pem").write_bytes(rsa_keys[1])
    runner = CliRunner()
    built = runner.invoke(cli, ["bundle", "build", str(REGO), "--out", str(tmp_path / "b.tar.gz"), "--signing-key", str(tmp_path / "k.pem")])
    assert built.exit_code == 0, built.output
    checked = runner.invoke(cli, ["bundle", "verify", str(tmp_path / "b.tar.gz"), "--verification-key", str(tmp_path / "pub.pem")])
    assert checked.exit_code == 0 and "valid" in checked.output


def test_cli_verify_fails_on_the_wrong_key(tmp_path, rsa_keys):
    (tmp_path / "b.tar.gz").write_bytes(build_bundle([REGO], signing_key=rsa_keys[0]))
    (tmp_path / "pub.pem").write_bytes(_pem_pair("rsa")[1])
    result = CliRunner().invoke(cli, ["bundle", "verify", str(tmp_path / "b.tar.gz"), "--verification-key", str(tmp_path / "pub.pem")])
    assert result.exit_code == 1 and "does not verify" in result.output


def test_cli_build_without_rego_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["bundle", "build", str(tmp_path), "--out", str(tmp_path / "b.tar.gz")])
    assert result.exit_code == 1 and "no .rego files" in result.output


def test_rego_that_does_not_compile_is_not_bundled(opa_binary, tmp_path):
    (tmp_path / "agt").mkdir()
    (tmp_path / "agt" / "ok.rego").write_text("package agt.ok\n\nx := 1\n")
    (tmp_path / "agt" / "bad.rego").write_text("package agt.bad\n\ny := undefined_function(1)\n")
    with pytest.raises(BundleError, match=r"agt/bad\.rego:3: rego_type_error"):
        build_bundle([tmp_path])


def test_cli_build_exits_non_zero_on_rego_that_does_not_compile(opa_binary, tmp_path):
    (tmp_path / "bad.rego").write_text("package agt\n\ndecision := {\n")
    result = CliRunner().invoke(cli, ["bundle", "build", str(tmp_path), "--out", str(tmp_path / "b.tar.gz")])
    assert result.exit_code != 0
    assert "bad.rego:4" in result.output
    assert not (tmp_path / "b.tar.gz").exists()
