"""agt.opa._http: the deadline-bounded HTTP/1.1 client the OPA engine uses (keep-alive, TLS, unix sockets)."""

from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agt.opa._http import DeadlineClient, DeadlineExceeded, HttpError, Unreachable
from agt.opa.server import free_port


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = self.headers.get("Authorization", "").encode() + b"|" + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
        self.server.connections.add(self.connection)  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.connections = set()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_reply_is_read_whole_with_headers_sent(echo):
    client = DeadlineClient(f"http://127.0.0.1:{echo.server_address[1]}")
    try:
        reply = client.request("POST", "/x", body=b"hello", headers=[("Authorization", "Bearer t")], timeout=30)
        assert (reply.status, reply.body) == (200, b"Bearer t|hello")
    finally:
        client.close()


def test_connections_are_kept_alive_and_reused(echo):
    client = DeadlineClient(f"http://127.0.0.1:{echo.server_address[1]}")
    try:
        for i in range(5):
            assert client.request("POST", "/x", body=str(i).encode(), timeout=30).body == b"|" + str(i).encode()
        assert len(echo.connections) == 1
    finally:
        client.close()


def test_a_connection_the_server_closed_while_idle_is_replaced(echo):
    client = DeadlineClient(f"http://127.0.0.1:{echo.server_address[1]}")
    try:
        client.request("POST", "/x", body=b"a", timeout=30)
        for conn in list(echo.connections):
            conn.shutdown(2)  # the server drops the idle keep-alive socket
        assert client.request("POST", "/x", body=b"b", timeout=30).body == b"|b"
    finally:
        client.close()


def test_nothing_listening_is_unreachable():
    client = DeadlineClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unreachable):
        client.request("POST", "/x", timeout=30)


def test_a_unix_socket_is_reached_through_uds(tmp_path):
    from socketserver import ThreadingMixIn, UnixStreamServer

    class Server(ThreadingMixIn, UnixStreamServer):
        daemon_threads = True
        connections: set = set()

    path = str(tmp_path / "s.sock")
    server = Server(path, _Echo)
    server.connections = set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # BaseHTTPRequestHandler wants a client address; a unix peer has none worth logging.
    try:
        client = DeadlineClient("http://opa", uds=path)
        assert client.request("POST", "/x", body=b"u", timeout=30).body == b"|u"
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return tmp / "cert.pem", tmp / "key.pem"


@pytest.fixture
def tls_echo(echo, tmp_path):
    cert, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    echo.socket = ctx.wrap_socket(echo.socket, server_side=True)
    return f"https://localhost:{echo.server_address[1]}", cert


def test_tls_verifies_against_the_given_ca(tls_echo):
    url, cert = tls_echo
    client = DeadlineClient(url, verify=str(cert))
    try:
        assert client.request("POST", "/x", body=b"s", timeout=30).body == b"|s"
    finally:
        client.close()


def test_tls_refuses_a_certificate_it_cannot_verify(tls_echo):
    url, _ = tls_echo
    with pytest.raises(HttpError, match="TLS"):
        DeadlineClient(url).request("POST", "/x", timeout=30)


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="http"):
        DeadlineClient("ftp://example.org")


# --- the deadline, reconnects, reply parsing (fault injection with raw sockets) -------------------------

import socket  # noqa: E402
import time  # noqa: E402


class _Raw:
    """A TCP server that runs ``serve(conn, n)`` on the n-th accepted connection, one thread each."""

    def __init__(self, serve) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self._serve = serve
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn, self.accepted), daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
    while len(body) < length:
        body += conn.recv(65536)
    return head


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_a_trickling_reply_is_cut_at_the_total_deadline():
    def serve(conn, n):
        _read_request(conn)
        try:
            for byte in OK[:-1]:  # one byte every 50 ms: each read is quick, the whole reply is not
                conn.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass

    server = _Raw(serve)
    client = DeadlineClient(server.url)
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        client.request("POST", "/x", body=b"a", timeout=0.5)
    # The reply would take 1.9 s to arrive; the deadline, not a per-read timeout, ended the wait.
    assert time.monotonic() - start < 1.5
    client.close()
    server.close()


def test_a_reset_of_a_kept_alive_connection_is_retried_once_on_a_new_one():
    def serve(conn, n):
        if n == 1:
            _read_request(conn)
            conn.sendall(OK)
        _read_request(conn)
        conn.close()  # every later request: read, then hang up without a reply

    server = _Raw(serve)
    client = DeadlineClient(server.url)
    assert client.request("POST", "/x", body=b"a", timeout=5).body == b"ok"
    with pytest.raises(HttpError, match="closed|connection"):
        client.request("POST", "/x", body=b"b", timeout=5)
    assert server.accepted == 2  # the reused connection, then exactly one reconnect
    client.close()
    server.close()


def test_a_fresh_connection_that_closes_is_not_retried():
    def serve(conn, n):
        _read_request(conn)
        conn.close()

    server = _Raw(serve)
    client = DeadlineClient(server.url)
    with pytest.raises(HttpError):
        client.request("POST", "/x", body=b"a", timeout=5)
    assert server.accepted == 1
    client.close()
    server.close()


def _serving(reply: bytes):
    def serve(conn, n):
        while _read_request(conn):
            conn.sendall(reply)
    return serve


def _replies(reply: bytes, n: int) -> tuple[list[bytes], int]:
    """The bodies of ``n`` requests to a server that answers every request with ``reply``, and how many
    connections it accepted for them."""
    server = _Raw(_serving(reply))
    client = DeadlineClient(server.url)
    try:
        return [client.request("POST", "/x", timeout=5).body for _ in range(n)], server.accepted
    finally:
        client.close()
        server.close()


def test_a_chunked_reply_is_read_whole():
    assert _replies(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 3) == ([b"abcde"] * 3, 1)


def test_a_reply_that_says_close_is_not_reused():
    assert _replies(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 2) == ([b"ok"] * 2, 2)


@pytest.mark.parametrize("reply,match", [
    (b"garbage\r\n\r\n", "malformed"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", "larger"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "connection|malformed"),
    (b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n" + OK, "malformed"),
], ids=["not-http", "too-large", "truncated", "upgrade"])
def test_a_broken_reply_is_an_error(reply, match):
    def serve(conn, n):
        _read_request(conn)
        conn.sendall(reply)
        conn.close()

    server = _Raw(serve)
    client = DeadlineClient(server.url)
    with pytest.raises(HttpError, match=match):
        client.request("POST", "/x", timeout=5)
    client.close()
    server.close()


def test_each_thread_keeps_its_own_connection(echo):
    client = DeadlineClient(f"http://127.0.0.1:{echo.server_address[1]}")

    def work() -> None:
        for _ in range(3):
            client.request("POST", "/x", body=b"t", timeout=30)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    work()
    assert len(echo.connections) == 4
    client.close()


def test_a_head_is_built_once_and_refuses_header_injection(echo):
    client = DeadlineClient(f"http://127.0.0.1:{echo.server_address[1]}")
    head = client.head("POST", "/x", [("Authorization", "Bearer t")])
    assert [client.send(head, str(i).encode(), timeout=30).body for i in range(2)] == [b"Bearer t|0", b"Bearer t|1"]
    with pytest.raises(ValueError):
        client.head("POST", "/x", [("Authorization", "Bearer t\r\nX-Evil: 1")])
    client.close()


def test_a_reply_without_a_length_ends_when_the_server_closes():
    def serve(conn, n):
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        conn.close()

    server = _Raw(serve)
    client = DeadlineClient(server.url)
    assert [client.request("POST", "/x", timeout=5).body for _ in range(2)] == [b"until the end"] * 2
    assert server.accepted == 2  # such a reply cannot leave the connection reusable
    client.close()
    server.close()


def test_an_interim_reply_is_skipped_for_the_real_one():
    server = _Raw(_serving(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew"))
    client = DeadlineClient(server.url)
    reply = client.request("POST", "/x", timeout=5)
    assert (reply.status, reply.body) == (201, b"new")
    client.close()
    server.close()


@pytest.mark.parametrize("after", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra",
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nextra",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
    b"garbage\r\n\r\n",
], ids=["200", "500", "interim", "too-large", "not-http"])
def test_bytes_after_a_reply_retire_the_connection(after):
    # whatever follows, the reply is the one asked for: its status and body, not the next message's
    server = _Raw(_serving(OK + after))
    client = DeadlineClient(server.url)
    assert [(r.status, r.body) for r in (client.request("POST", "/x", timeout=5) for _ in range(2))] == [(200, b"ok")] * 2
    assert server.accepted == 2  # the unasked-for second reply is never read as the answer to the next request
    client.close()
    server.close()


def test_an_upgrade_after_a_reply_retires_the_connection():
    # llhttp reports a 101 as HttpParserUpgrade, which is no HttpParserError: after a whole reply it is bytes after it
    assert _replies(OK + b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n", 2) == ([b"ok", b"ok"], 2)


def test_an_http_1_0_reply_closes_the_connection():
    assert _replies(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 2) == ([b"ok"] * 2, 2)


def test_headers_beyond_the_reply_cap_are_refused(monkeypatch):
    import agt.opa._http as http_module

    monkeypatch.setattr(http_module, "MAX_REPLY_BYTES", 1000)
    server = _Raw(_serving(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 2000 + b"\r\nContent-Length: 2\r\n\r\nok"))
    client = DeadlineClient(server.url)
    with pytest.raises(HttpError, match="larger"):
        client.request("POST", "/x", timeout=5)
    client.close()
    server.close()


def test_head_requests_are_refused():
    with pytest.raises(ValueError, match="HEAD"):
        DeadlineClient("http://127.0.0.1:1").head("HEAD", "/x")
