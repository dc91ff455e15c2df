"""A small HTTP/1.1 client whose timeout is a total deadline per request: h11 over pooled keep-alive sockets.

httpx (httpcore) applies its timeouts to each read, so a server that trickles its reply one byte at a time
keeps a caller waiting without bound. Here every connect, TLS handshake, send and receive gets only the
time left until the request's deadline (CPython's TLS read and handshake also honour the socket timeout as
one deadline). No thread per call: the pool hands each caller a socket of its own.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

import h11

MAX_REPLY_BYTES = 8 * 1024 * 1024
"""A decision is a few hundred bytes; a reply beyond this is a fault, not something to buffer."""


class HttpError(Exception):
    """The request got no complete HTTP reply."""


class DeadlineExceeded(HttpError):
    pass


class Unreachable(HttpError):
    pass


class _Stale(Exception):
    """A pooled connection the server had already closed: nothing was answered, so retrying is safe."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


@dataclass(slots=True)
class _Conn:
    sock: socket.socket
    h11: h11.Connection


def ssl_context(verify: bool | str | ssl.SSLContext = True, cert: str | tuple[str, str] | None = None) -> ssl.SSLContext:
    """The TLS settings httpx takes: ``verify`` False, True, a CA bundle path or a context; ``cert`` a
    PEM file or a (cert, key) pair."""
    if isinstance(verify, ssl.SSLContext):
        ctx = verify
    elif verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if cert is not None:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


class DeadlineClient:
    """Requests to one origin (``http://``/``https://`` URL, or a unix socket with ``uds``)."""

    def __init__(
        self,
        url: str,
        *,
        uds: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        cert: str | tuple[str, str] | None = None,
        max_idle: int = 16,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._uds = uds
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._authority = (parts.netloc.rsplit("@", 1)[-1]).encode("ascii")
        self._prefix = parts.path.rstrip("/")
        self._tls = ssl_context(verify, cert) if parts.scheme == "https" else None
        self._max_idle = max_idle
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._closed = False

    def request(
        self, method: str, path: str, *, body: bytes = b"", headers: Sequence[tuple[str, str]] = (), timeout: float
    ) -> Reply:
        """One request and its whole reply within ``timeout`` seconds, or an HttpError saying why not."""
        deadline = time.monotonic() + timeout
        head = [("Host", self._authority), ("Content-Length", str(len(body))), *headers]
        target = (self._prefix + path).encode("ascii")
        conn = self._checkout()
        if conn is not None:
            try:
                return self._exchange(conn, method, target, head, body, deadline, reused=True)
            except _Stale:
                pass
        conn = self._connect(deadline)
        try:
            return self._exchange(conn, method, target, head, body, deadline, reused=False)
        except _Stale:  # only raised for reused connections
            raise HttpError("connection closed before the reply") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.sock.close()

    # connections -----------------------------------------------------------------------------------
    def _checkout(self) -> _Conn | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _checkin(self, conn: _Conn) -> None:
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            with self._lock:
                if not self._closed and len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    return
        conn.sock.close()

    def _connect(self, deadline: float) -> _Conn:
        where = self._uds or f"{self._host}:{self._port}"
        try:
            if self._uds is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(_remaining(deadline))
                    sock.connect(self._uds)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((self._host, self._port), timeout=_remaining(deadline))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                try:
                    sock.settimeout(_remaining(deadline))
                    sock = self._tls.wrap_socket(sock, server_hostname=self._host)
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError:
            raise DeadlineExceeded(f"connecting to {where}") from None
        except ssl.SSLError as exc:
            raise HttpError(f"TLS with {where}: {exc}") from None
        except OSError as exc:
            raise Unreachable(f"{where}: {exc}") from None
        return _Conn(sock, h11.Connection(h11.CLIENT))

    def _exchange(
        self, conn: _Conn, method: str, target: bytes, head: list, body: bytes, deadline: float, *, reused: bool
    ) -> Reply:
        try:
            reply = self._roundtrip(conn, method, target, head, body, deadline, reused)
        except BaseException:
            conn.sock.close()
            raise
        self._checkin(conn)
        return reply

    def _roundtrip(
        self, conn: _Conn, method: str, target: bytes, head: list, body: bytes, deadline: float, reused: bool
    ) -> Reply:
        h = conn.h11
        received = 0
        try:
            out = h.send(h11.Request(method=method, target=target, headers=head))
            out += h.send(h11.Data(data=body)) if body else b""
            out += h.send(h11.EndOfMessage())
            conn.sock.settimeout(_remaining(deadline))
            conn.sock.sendall(out)
            status: int | None = None
            chunks: list[bytes] = []
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    conn.sock.settimeout(_remaining(deadline))
                    data = conn.sock.recv(65536)
                    if not data and received == 0 and reused:
                        raise _Stale()
                    received += len(data)
                    if received > MAX_REPLY_BYTES:
                        raise HttpError(f"reply larger than {MAX_REPLY_BYTES} bytes")
                    h.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    assert status is not None
                    return Reply(status, b"".join(chunks))
                elif isinstance(event, h11.ConnectionClosed):
                    raise HttpError("connection closed before the reply ended")
                # InformationalResponse (1xx): the final response follows.
        except TimeoutError:
            raise DeadlineExceeded("no complete reply before the deadline") from None
        except h11.ProtocolError as exc:
            raise HttpError(f"malformed HTTP reply: {exc}") from None
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            if reused and received == 0:
                raise _Stale() from None
            raise HttpError(f"connection failed: {exc}") from None


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left
