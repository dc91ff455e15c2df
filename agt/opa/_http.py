"""A small HTTP/1.1 client whose timeout is a total deadline per request: one keep-alive socket per thread.

The decision path is one POST after another to one OPA, so each thread keeps one connection open (TCP,
TLS or a unix socket) and sends a request head built once (:meth:`DeadlineClient.head`): method, path,
Host and the fixed headers, the token's included, up to ``Content-Length``. The reply is parsed by
httptools (llhttp, the parser uvicorn serves agt serve with: status line, Content-Length and chunked bodies,
keep-alive), fed from receives that each get only the time left until the request's deadline, and the whole
reply, headers included, is capped at :data:`MAX_REPLY_BYTES`. A server that trickles its reply one byte at a
time therefore still answers within ``timeout`` or not at all; per-read timeouts (httpx's, http.client's own)
would let it keep a caller waiting without bound. Connecting and the TLS handshake get the time left too
(CPython keeps one deadline over a whole handshake and a whole ``sendall``). http.client's reply parser was
the client's largest cost per request (~25 µs of email-header parsing for a 3-header reply; llhttp ~2 µs).

A connection that was idle in keep-alive and turns out closed by the server (nothing of the reply
arrived: a reset, a broken pipe, end of stream) is replaced once, within the same deadline; any other
failure is an :class:`HttpError`. One client serves http, https and unix sockets, so agt's decision path
needs neither httpx nor h11 (docs/rego-library.md, "The decision path's HTTP client").
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

import httptools

__all__ = ["DeadlineClient", "DeadlineExceeded", "HttpError", "MAX_REPLY_BYTES", "Reply", "Unreachable", "ssl_context"]

MAX_REPLY_BYTES = 8 * 1024 * 1024
"""A decision is a few hundred bytes (a batch of 200 some 100 KB); a reply beyond this is a fault."""
_RECV_BYTES = 65536
_PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)
"""What llhttp raises for a reply it will not parse; a 101 (an upgrade) is no HttpParserError, and no answer either."""


class HttpError(Exception):
    """The request got no complete HTTP reply."""


class DeadlineExceeded(HttpError):
    pass


class Unreachable(HttpError):
    pass


class _Stale(Exception):
    """A kept-alive connection the server had already closed: nothing was answered, so retrying is safe."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


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


class _Reading:
    """httptools' callbacks for one reply: the status, the body, and what the framing says about its end. Once the
    reply is complete, a message after it only marks ``extra``: its status, headers and body are not the reply's."""

    __slots__ = ("chunks", "complete", "extra", "framed", "keep_alive", "parser", "status", "too_large")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.chunks: list[bytes] = []
        self.framed = False  # Content-Length or Transfer-Encoding: the reply says where it ends
        self.too_large = False
        self.keep_alive = False  # read when the headers are in: llhttp resets it once the message is complete
        self.complete = False
        self.extra = False  # bytes after the reply: the connection is not in a state to reuse

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        name = name.lower()
        if name == b"content-length":
            self.framed = True
            if not value.strip().isdigit() or int(value) > MAX_REPLY_BYTES:
                self.too_large = True  # a malformed length makes llhttp refuse the reply anyway
        elif name == b"transfer-encoding":
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if 100 <= self.status < 200:  # an interim reply (100 Continue): the real one follows
            self.chunks, self.framed, self.status = [], False, 0
        else:
            self.complete = True


class _Conn:
    """One open socket; owned by one thread at a time."""

    __slots__ = ("sock", "buffer", "__weakref__")

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self.buffer = memoryview(bytearray(_RECV_BYTES))

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def __del__(self) -> None:  # a thread that ended took its connection with it
        self.close()


class DeadlineClient:
    """Requests to one origin (``http://``/``https://`` URL, or a unix socket with ``uds``), one keep-alive
    connection per calling thread."""

    def __init__(
        self,
        url: str,
        *,
        uds: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        cert: str | tuple[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._uds = uds
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._authority = parts.netloc.rsplit("@", 1)[-1]
        self._prefix = parts.path.rstrip("/")
        self._tls = ssl_context(verify, cert) if parts.scheme == "https" else None
        self._where = uds or f"{self._host}:{self._port}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: weakref.WeakSet[_Conn] = weakref.WeakSet()

    def head(self, method: str, path: str, headers: Sequence[tuple[str, str]] = ()) -> tuple[str, bytes]:
        """The request head for ``method path`` with ``headers``, built once for :meth:`send`."""
        if method.upper() == "HEAD":  # its reply has a Content-Length and no body: llhttp would wait for one
            raise ValueError("HEAD requests are not supported")
        for name, value in headers:
            if "\r" in name + value or "\n" in name + value or ":" in name:
                raise ValueError(f"header {name!r} cannot be sent")
        target = self._prefix + path
        if any(c in target for c in " \r\n"):
            raise ValueError(f"path {target!r} cannot be sent")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._authority}", *(f"{n}: {v}" for n, v in headers)]
        return method, ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    def request(
        self, method: str, path: str, *, body: bytes = b"", headers: Sequence[tuple[str, str]] = (), timeout: float
    ) -> Reply:
        """One request and its whole reply within ``timeout`` seconds, or an HttpError saying why not."""
        return self.send(self.head(method, path, headers), body, timeout=timeout)

    def send(self, head: tuple[str, bytes], body: bytes, *, timeout: float) -> Reply:
        """Send ``body`` after a head from :meth:`head`; the whole reply within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        method, prefix = head
        data = b"%s%d\r\n\r\n%s" % (prefix, len(body), body)
        conn: _Conn | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            try:
                return self._exchange(conn, method, data, deadline, reused=True)
            except _Stale:
                pass
        conn = self._connect(deadline)
        try:
            return self._exchange(conn, method, data, deadline, reused=False)
        except _Stale:  # only raised for reused connections
            raise HttpError("connection closed before the reply") from None

    def close(self) -> None:
        """Close every thread's connection; a later request opens a new one."""
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            conn.close()

    # connections -----------------------------------------------------------------------------------
    def _connect(self, deadline: float) -> _Conn:
        where = self._where
        try:
            left = _remaining(deadline)
            if self._uds is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(left)
                    sock.connect(self._uds)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((self._host, self._port), timeout=left)
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
        conn = _Conn(sock)
        old = getattr(self._local, "conn", None)
        if old is not None:
            old.close()
        self._local.conn = conn
        with self._lock:
            self._conns.add(conn)
        return conn

    def _exchange(self, conn: _Conn, method: str, data: bytes, deadline: float, *, reused: bool) -> Reply:
        sock = conn.sock
        assert sock is not None
        reading = _Reading()
        received = 0
        try:
            sock.settimeout(_remaining(deadline))
            sock.sendall(data)
            buffer = conn.buffer
            while not reading.complete:
                sock.settimeout(_remaining(deadline))
                n = sock.recv_into(buffer)
                if n == 0:
                    if received and reading.status and not reading.framed:
                        break  # a reply without a length ends when the server closes (RFC 9112, 6.3)
                    if received == 0:
                        raise ConnectionResetError("connection closed before the reply")
                    raise HttpError("connection closed before the reply was complete")
                received += n
                if received > MAX_REPLY_BYTES:
                    raise HttpError(f"reply larger than {MAX_REPLY_BYTES} bytes")
                try:
                    reading.parser.feed_data(buffer[:n])
                except _PARSER_ERRORS as exc:
                    if not reading.complete:  # after a whole reply, only what follows it is malformed
                        raise HttpError(f"malformed HTTP reply: {type(exc).__name__}: {exc}") from None
                    reading.extra = True
                if reading.too_large:
                    raise HttpError(f"reply larger than {MAX_REPLY_BYTES} bytes")
            if not reading.complete or reading.extra or not reading.keep_alive:
                conn.close()
            return Reply(reading.status, b"".join(reading.chunks))
        except BaseException as exc:
            conn.close()
            if isinstance(exc, HttpError):
                raise
            if isinstance(exc, TimeoutError):
                raise DeadlineExceeded("no complete reply before the deadline") from None
            if isinstance(exc, OSError):
                if reused and received == 0:
                    raise _Stale() from None
                raise HttpError(f"connection failed: {exc}") from None
            raise


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left
