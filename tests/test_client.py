"""agt.client: RemoteEngine and RemoteGovernor against a real agt serve, and failing closed against faults: a dead
port, a server that never answers (a fake that injects the fault), garbage and non-2xx answers."""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

import pytest

import agt
from agt.client import RemoteEngine, RemoteGovernor
from agt.decision import Effect
from agt.errors import GovernanceDenied
from agt.serve.server import Listen
from serve_helpers import AGENT_TOKEN, served

READ = agt.from_call("read_file", {"path": "/ws/alice/a.md"}, agent="alice")
RM = agt.from_call("run_shell", {"command": "rm -rf /"}, agent="alice")


# --- against a real service --------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["tcp", "unix"])
def service(request, tmp_path_factory):
    listen = Listen(port=0) if request.param == "tcp" else Listen(unix=str(tmp_path_factory.mktemp("s") / "run" / "a.sock"))
    with served(listen=listen) as (url, gov):
        yield url, gov


def test_remote_engine_decides_as_the_served_engine(service):
    url, gov = service
    engine = RemoteEngine(url, token=AGENT_TOKEN)
    for action in (READ, RM):
        remote, local = engine.evaluate(action), gov.engine.evaluate(action)
        assert remote.parity_key == local.parity_key and remote.engine == "remote"
    engine.close()


def test_remote_engine_batches_in_order(service):
    url, _ = service
    engine = RemoteEngine(url, token=AGENT_TOKEN)
    assert [d.effect for d in engine.evaluate_many([READ, RM] * 150)] == [Effect.ALLOW, Effect.DENY] * 150


def test_remote_engine_reports_the_served_revision(service):
    url, gov = service
    assert RemoteEngine(url, token=AGENT_TOKEN).revision == f"remote:{gov.engine.revision}"


def test_remote_engine_with_a_wrong_token_denies_naming_401(service):
    url, _ = service
    decision = RemoteEngine(url, token="w" * 32).evaluate(READ)
    assert decision.effect is Effect.DENY and decision.is_engine_error and "HTTP 401" in decision.reasons[0].message


# --- faults -------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FaultyServer:
    """A TCP server that reads one request per connection and answers with ``reply(request_bytes)``: bytes, None
    (never answer, hold the connection open) or a function that gets the connection. Only for injecting faults;
    agt serve itself is never faked."""

    def __init__(self, reply: Callable[[bytes], bytes | None]) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            answer = self.reply(data)
            if answer is None:
                self.held.append(conn)
                continue
            if callable(answer):  # a behaviour of its own, on the connection
                self.held.append(conn)
                threading.Thread(target=answer, args=(conn,), daemon=True).start()
                continue
            conn.sendall(answer)
            conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        for c in self.held:
            c.close()


def http(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    return (f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


@pytest.fixture()
def faulty():
    servers: list[FaultyServer] = []

    def make(reply: Callable[[bytes], bytes | None]) -> FaultyServer:
        servers.append(FaultyServer(reply))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_a_dead_service_denies_naming_unreachable():
    decision = RemoteEngine(f"http://127.0.0.1:{free_port()}", timeout=2).evaluate(READ)
    assert decision.effect is Effect.DENY and "unreachable" in decision.reasons[0].message
    assert decision.engine == "remote"


def test_a_service_that_never_answers_denies_within_the_timeout(faulty):
    server = faulty(lambda request: None)
    started = time.monotonic()
    decision = RemoteEngine(server.url, timeout=0.3).evaluate(READ)
    assert decision.effect is Effect.DENY and "timeout" in decision.reasons[0].message
    assert time.monotonic() - started < 10  # bounded by the deadline, not by the server


def test_a_trickling_service_cannot_outlast_the_deadline(faulty):
    def trickle(conn: socket.socket) -> None:
        for byte in http(200, b'{"result": {"effect": "allow", "reasons": [{"id": "x"}]}}'):
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.05)  # each byte well within any per-read timeout; the whole answer far past the deadline

    server = faulty(lambda request: trickle)
    decision = RemoteEngine(server.url, timeout=0.5).evaluate(READ)
    assert decision.effect is Effect.DENY and "timeout" in decision.reasons[0].message


@pytest.mark.parametrize("reply, cause", [
    (http(200, b"<html>not json</html>", "text/html"), "not JSON"),
    (http(200, b'{"result": 5}'), "wrong shape"),
    (http(200, b'{"result": {"effect": "allow"}}'), "reasons"),
    (http(200, b'{"result": {"effect": "maybe", "reasons": [{"id": "x"}]}}'), "effect"),
    (http(200, b"{}"), "undefined result"),
    (http(500, b'{"code": "internal_error", "message": "boom"}'), "HTTP 500"),
    (http(302, b""), "HTTP 302"),
    (b"garbage, not HTTP\r\n\r\n", "malformed"),
])
def test_a_malformed_answer_denies_naming_the_cause(faulty, reply, cause):
    server = faulty(lambda request: reply)
    decision = RemoteEngine(server.url, timeout=2).evaluate(READ)
    assert decision.effect is Effect.DENY and decision.is_engine_error
    assert cause in decision.reasons[0].message


def test_a_malformed_batch_denies_every_action(faulty):
    server = faulty(lambda request: http(200, b'{"result": [{"effect": "allow", "reasons": [{"id": "a"}]}]}'))
    decisions = RemoteEngine(server.url, timeout=2).evaluate_many([READ, READ, READ])
    assert [d.effect for d in decisions] == [Effect.DENY] * 3 and "a list of 1 for 3" in decisions[0].reasons[0].message


def test_the_governor_client_never_runs_the_tool_when_the_service_is_dead():
    ran = []
    client = RemoteGovernor(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(GovernanceDenied) as info:
        client.call(lambda path: ran.append(path), kwargs={"path": "/x"}, tool="read_file")
    assert ran == [] and info.value.gate == "remote" and "unreachable" in str(info.value)


@pytest.mark.parametrize("reply, cause", [
    (http(200, b'{"status": "admitted"}'), "without a ticket"),
    (http(200, b'{"status": "sure"}'), "unexpected status"),
    (http(200, b'[1, 2]'), "malformed answer"),
    (http(200, b'{"status": "admitted", "ticket": "t", "decision": {"effect": 1}}'), "wrong shape"),
    (http(401, b'{"code": "unauthorized", "message": "no"}'), "HTTP 401"),
])
def test_the_governor_client_denies_a_malformed_begin(faulty, reply, cause):
    server = faulty(lambda request: reply)
    with pytest.raises(GovernanceDenied, match=cause):
        RemoteGovernor(server.url, timeout=2).begin("read_file", {"path": "/x"})


def test_a_finish_the_service_cannot_check_withholds_the_result(faulty):
    admitted = (b'{"status": "admitted", "ticket": "tkt_1", "decision": {"effect": "allow", '
                b'"reasons": [{"id": "default", "message": ""}], "engine": "yaml"}}')

    def reply(request: bytes) -> bytes:
        return http(200, admitted) if b"/begin" in request.split(b"\r\n", 1)[0] else http(503, b"{}")

    server = faulty(reply)
    client = RemoteGovernor(server.url, timeout=2)
    with pytest.raises(GovernanceDenied, match="result is withheld"):
        client.call(lambda: "secret", tool="read_file")


def test_a_slow_finish_withholds_the_result(faulty):
    admitted = (b'{"status": "admitted", "ticket": "tkt_1", "decision": {"effect": "allow", '
                b'"reasons": [{"id": "default", "message": ""}], "engine": "yaml"}}')
    server = faulty(lambda request: http(200, admitted) if b"/begin" in request.split(b"\r\n", 1)[0] else None)
    client = RemoteGovernor(server.url, timeout=0.3)
    with pytest.raises(GovernanceDenied, match="timeout"):
        client.call(lambda: "secret", tool="read_file")


def test_signed_envelopes_are_refused_rather_than_dropped():
    client = RemoteGovernor(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(GovernanceDenied, match="envelopes"):
        client.begin("read_file", envelope={"anything": 1})
