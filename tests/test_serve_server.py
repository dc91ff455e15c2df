"""agt.serve.server: where the service listens (the unix socket's private directory, TCP addresses, TLS options)."""

from __future__ import annotations

import os
import socket

import httpx
import pytest

from agt.serve.server import Listen, ListenError, private_socket
from serve_helpers import AGENT_TOKEN, headers, served


def test_a_missing_socket_directory_is_created_private(tmp_path):
    path = private_socket(str(tmp_path / "run" / "agt.sock"))
    assert path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o777])
def test_a_socket_directory_open_to_others_is_refused(tmp_path, mode):
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(ListenError, match="open to other users"):
        private_socket(str(directory / "agt.sock"))


def test_a_socket_directory_of_another_user_is_refused(tmp_path, monkeypatch):
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(directory).st_uid + 1)
    with pytest.raises(ListenError, match="belongs to uid"):
        private_socket(str(directory / "agt.sock"))


def test_a_stale_socket_is_replaced(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(directory / "agt.sock"))
    stale.close()  # bound, never listening: what a crash leaves
    assert not private_socket(str(directory / "agt.sock")).exists()


def test_a_file_where_the_socket_goes_is_refused(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    (directory / "agt.sock").write_text("not a socket")
    with pytest.raises(ListenError, match="not a socket"):
        private_socket(str(directory / "agt.sock"))


def test_a_live_socket_is_not_taken_over(tmp_path):
    listen = Listen(unix=str(tmp_path / "run" / "agt.sock"))
    with served(listen=listen):
        with pytest.raises(ListenError, match="another server"):
            private_socket(listen.unix)


def test_the_service_answers_on_a_unix_socket(tmp_path):
    listen = Listen(unix=str(tmp_path / "run" / "agt.sock"))
    with served(listen=listen) as (url, _):
        assert url == "unix://" + listen.unix
        transport = httpx.HTTPTransport(uds=listen.unix)
        with httpx.Client(transport=transport, base_url="http://agt") as client:
            r = client.post("/v1/data/agt/decision", json={"input": {"agent": {"id": "a"}, "action": {"tool": "ls"}}},
                            headers=headers())
            assert r.json()["result"]["effect"] == "allow"


@pytest.mark.parametrize("addr, expect", [("127.0.0.1:8282", ("127.0.0.1", 8282)), ("[::1]:9", ("::1", 9)),
                                          ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_addr_parses_host_and_port(addr, expect):
    listen = Listen.parse_addr(addr)
    assert (listen.host, listen.port) == expect


@pytest.mark.parametrize("addr", ["8282", "host:", ":80", "h:99999", "h:x"])
def test_a_bad_addr_is_refused_naming_it(addr):
    with pytest.raises(ListenError, match="HOST:PORT"):
        Listen.parse_addr(addr)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("10.0.0.1", False), ("example.com", False)])
def test_loopback_is_recognised(host, loopback):
    assert Listen(host=host).loopback is loopback


def test_tls_options_are_checked_together(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ListenError, match="together"):
        Listen(tls_cert=str(cert)).check()
    with pytest.raises(ListenError, match="needs --tls-cert"):
        Listen(tls_client_ca=str(cert)).check()
    with pytest.raises(ListenError, match="go with --addr"):
        Listen(unix="/tmp/x.sock", tls_cert=str(cert), tls_key=str(cert)).check()


# --- TLS and mutual TLS (real handshakes, certificates made here) ------------------------------------------
def _certificate(tmp, name: str, issuer=None, *, ca: bool = False):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_cert, signer_key = issuer if issuer else (None, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer_key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return (cert, key), str(cert_path), str(key_path)


@pytest.fixture()
def pki(tmp_path):
    ca, ca_cert, _ = _certificate(tmp_path, "ca", ca=True)
    _, server_cert, server_key = _certificate(tmp_path, "server", ca)
    _, client_cert, client_key = _certificate(tmp_path, "client", ca)
    _, stranger_cert, stranger_key = _certificate(tmp_path, "stranger")  # self-signed: not from the CA
    return {"ca": ca_cert, "server": (server_cert, server_key), "client": (client_cert, client_key),
            "stranger": (stranger_cert, stranger_key)}


def _mtls(pki) -> Listen:
    cert, key = pki["server"]
    return Listen(host="localhost", port=0, tls_cert=cert, tls_key=key, tls_client_ca=pki["ca"])


def test_mutual_tls_admits_a_client_certificate_from_the_ca(pki):
    from agt.client import RemoteEngine
    import agt

    with served(listen=_mtls(pki)) as (url, _):
        assert url.startswith("https://")
        engine = RemoteEngine(url, token=AGENT_TOKEN, verify=pki["ca"], cert=pki["client"])
        try:
            assert engine.evaluate(agt.from_call("ls", agent="a")).allowed
        finally:
            engine.close()  # else the server's shutdown waits out asyncio's TLS close timeout for this connection


@pytest.mark.parametrize("who", ["none", "stranger"])
def test_mutual_tls_refuses_a_client_without_a_certificate_from_the_ca(pki, who):
    from agt.client import RemoteEngine
    import agt

    with served(listen=_mtls(pki)) as (url, _):
        cert = None if who == "none" else pki["stranger"]
        decision = RemoteEngine(url, token=AGENT_TOKEN, verify=pki["ca"], cert=cert, timeout=5).evaluate(
            agt.from_call("ls", agent="a"))
        assert decision.is_engine_error and not decision.allowed
