"""Where agt serve listens, and running it under uvicorn: in the foreground (``agt serve``) or in a thread
(tests, benchmarks, an application embedding the service).

A unix socket lives in a directory only its owner can enter (mode 0700, owned by the user running the
service): uvicorn makes the socket itself world-writable, so the directory is what keeps other OS users out.
A directory that is missing is created that way; one that exists with group or other access, or another
owner, is refused. TCP may carry TLS, and mutual TLS with a client CA (uvicorn's ssl options)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from agt.errors import AgtError

DEFAULT_ADDR = "127.0.0.1:8282"


class ListenError(AgtError):
    """The service cannot listen where it was asked to; the message names the path or address."""


@dataclass(frozen=True)
class Listen:
    """A unix socket path, or a TCP host and port (0: any free port), with optional TLS."""

    unix: str | None = None
    host: str = "127.0.0.1"
    port: int = 8282
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None

    @classmethod
    def parse_addr(cls, addr: str, **tls: str | None) -> "Listen":
        """``HOST:PORT`` (``[::1]:8282`` for IPv6) as a TCP listen address."""
        host, sep, port = addr.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ListenError(f"--addr {addr!r}: expected HOST:PORT, as 127.0.0.1:8282")
        return cls(host=host, port=int(port), **tls)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def loopback(self) -> bool:
        if self.unix is not None:
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def check(self) -> None:
        if self.unix is not None and (self.tls_cert or self.tls_client_ca):
            raise ListenError("TLS options go with --addr (TCP); a unix socket is protected by its directory")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ListenError("give --tls-cert and --tls-key together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ListenError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        for path in (self.tls_cert, self.tls_key, self.tls_client_ca):
            if path is not None and not Path(path).is_file():
                raise ListenError(f"{path}: no such file")


def private_socket(path: str) -> Path:
    """Make ``path`` ready to bind: its directory private to this user (created 0700 if missing), and no live
    server already on it (a stale socket file left by a crash is removed)."""
    sock_path = Path(path).expanduser().absolute()
    directory = sock_path.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    st = directory.stat()
    if st.st_uid != os.geteuid():
        raise ListenError(f"{directory}: the socket's directory belongs to uid {st.st_uid}, not to this user; "
                          "use a directory of your own (mode 0700)")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ListenError(f"{directory}: the socket's directory is open to other users (mode "
                          f"{stat.S_IMODE(st.st_mode):o}); chmod 700 it, or use a private directory")
    if sock_path.exists() or sock_path.is_symlink():
        if not stat.S_ISSOCK(sock_path.lstat().st_mode):
            raise ListenError(f"{sock_path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(sock_path))
        except OSError:
            sock_path.unlink()  # nobody answers: a stale socket
        else:
            raise ListenError(f"{sock_path}: another server is listening on this socket")
        finally:
            probe.close()
    return sock_path


def uvicorn_config(app: Any, listen: Listen, *, log_level: str = "warning", access_log: bool = False) -> Any:
    import uvicorn

    listen.check()
    options: dict[str, Any] = {"log_level": log_level, "access_log": access_log, "lifespan": "on",
                               "server_header": False, "date_header": False}
    if listen.unix is not None:
        options["uds"] = str(private_socket(listen.unix))
    else:
        options.update(host=listen.host, port=listen.port)
        if listen.tls:
            options.update(ssl_certfile=listen.tls_cert, ssl_keyfile=listen.tls_key)
            if listen.tls_client_ca is not None:
                options.update(ssl_ca_certs=listen.tls_client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return uvicorn.Config(app, **options)


def serve(app: Any, listen: Listen, *, on_stop: Callable[[], None] | None = None, **options: Any) -> None:
    """Serve ``app`` until SIGINT or SIGTERM (uvicorn drains open connections and runs the app's shutdown), then
    return, so the caller closes the Governor and its audit log. uvicorn re-raises the signal once it has stopped;
    a SIGTERM handler that does nothing makes that a return instead of the process dying mid-cleanup (SIGINT
    arrives as KeyboardInterrupt). ``on_stop`` runs as soon as a stop is asked for, before uvicorn drains
    connections: it ends what would otherwise hold the drain open (the dashboard's event streams)."""
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if on_stop is not None:
                on_stop()
            super().handle_exit(sig, frame)

    server = Server(uvicorn_config(app, listen, **options))
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if listen.unix is not None:
        with contextlib.suppress(OSError):
            Path(listen.unix).expanduser().unlink()
    if not server.started:
        raise ListenError(f"agt serve could not listen on {listen.unix or f'{listen.host}:{listen.port}'} (see the log above)")


def base_url(server: Any, listen: Listen) -> str:
    """The URL clients use: ``unix:///path`` for a socket, else ``http(s)://host:port`` with the bound port."""
    if listen.unix is not None:
        return "unix://" + str(Path(listen.unix).expanduser().absolute())
    port = server.servers[0].sockets[0].getsockname()[1]
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    return f"{'https' if listen.tls else 'http'}://{host}:{port}"


@contextlib.contextmanager
def running(app: Any, listen: Listen | None = None, *, timeout: float = 30.0, **options: Any) -> Iterator[str]:
    """Serve ``app`` in a thread while the block runs; yields its URL (see :func:`base_url`). Leaving the block
    stops the server (the app's shutdown runs: open tickets are abandoned)."""
    import uvicorn

    listen = listen or Listen(port=0)
    server = uvicorn.Server(uvicorn_config(app, listen, **options))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="agt-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            raise ListenError(f"agt serve did not start: {failure[0] if failure else 'see the log'}")
        time.sleep(0.01)
    try:
        yield base_url(server, listen)
    finally:
        server.should_exit = True
        thread.join(timeout)
