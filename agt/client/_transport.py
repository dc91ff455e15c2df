"""JSON requests to agt serve over agt's deadline HTTP client (agt.opa._http): TCP, TLS or a unix socket, one
keep-alive connection per thread, and a timeout that bounds the whole exchange.

Not httpx: its timeouts are per read, so a server that trickles its answer could hold a governed call for
as long as it likes; the decision path must answer within its deadline or deny (docs/serve.md, "Clients").
Every failure is a :class:`RemoteError` whose message names the cause and the service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agt import _json
from agt.errors import AgtError
from agt.opa._http import DeadlineClient, DeadlineExceeded, HttpError, Unreachable

DEFAULT_TIMEOUT = 5.0
URL_ENV_VAR, TOKEN_ENV_VAR = "AGT_SERVE_URL", "AGT_SERVE_TOKEN"


class RemoteError(AgtError):
    """agt serve gave no usable answer. ``status`` is the HTTP status when there was one; ``code`` the
    ``code`` of its error body."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class Transport:
    def __init__(self, url: str | None = None, *, token: str | None = None, token_file: str | os.PathLike[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, verify: bool | str = True, cert: str | tuple[str, str] | None = None) -> None:
        """``url``: ``unix:///run/agt/agt.sock``, ``http://127.0.0.1:8282`` or ``https://...`` (default
        ``$AGT_SERVE_URL``). ``token`` or ``token_file`` (default ``$AGT_SERVE_TOKEN``) is sent as a bearer token."""
        url = url or os.environ.get(URL_ENV_VAR)
        if not url:
            raise ValueError(f"give the agt serve URL (unix:///path.sock or http://host:port), or set {URL_ENV_VAR}")
        if token is None and token_file is not None:
            token = Path(token_file).read_text("utf-8").strip()
        token = token if token is not None else os.environ.get(TOKEN_ENV_VAR) or None
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.url, self.timeout = url, timeout
        if url.startswith("unix://"):
            self._client = DeadlineClient("http://localhost", uds=url[len("unix://"):])
        else:
            self._client = DeadlineClient(url, verify=verify, cert=cert)
        self._headers = [("Content-Type", "application/json"), ("Accept", "application/json")]
        if token:
            self._headers.append(("Authorization", f"Bearer {token}"))
        self._heads: dict[tuple[str, str], tuple[str, bytes]] = {}

    def request(self, method: str, path: str, doc: Any = None, *, timeout: float | None = None) -> Any:
        """The parsed JSON of a 2xx answer, or a RemoteError saying why there is none."""
        head = self._heads.get((method, path))
        if head is None:
            head = self._heads[(method, path)] = self._client.head(method, path, self._headers)
        try:
            body = b"" if doc is None else _json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise RemoteError(f"the request cannot be sent as JSON: {type(exc).__name__}: {exc}") from None
        wait = timeout if timeout is not None else self.timeout
        try:
            reply = self._client.send(head, body, timeout=wait)
        except DeadlineExceeded as exc:
            raise RemoteError(f"timeout: {exc} within {wait:g}s ({self.url})") from None
        except Unreachable as exc:
            raise RemoteError(f"unreachable ({self.url}): {exc}") from None
        except HttpError as exc:
            raise RemoteError(f"{exc} ({self.url})") from None
        try:
            parsed = _json.loads(reply.body) if reply.body else None
        except (ValueError, RecursionError) as exc:
            if 200 <= reply.status < 300:
                raise RemoteError(f"the answer from {self.url}{path} is not JSON: {exc}", status=reply.status) from None
            parsed = None
        if not 200 <= reply.status < 300:
            code = parsed.get("code") if isinstance(parsed, dict) else None
            message = parsed.get("message") if isinstance(parsed, dict) else None
            text = message if isinstance(message, str) else reply.body[:200].decode("utf-8", "replace")
            raise RemoteError(f"HTTP {reply.status} from {self.url}{path}: {code + ': ' if isinstance(code, str) else ''}{text}",
                              status=reply.status, code=code if isinstance(code, str) else None)
        return parsed

    def close(self) -> None:
        self._client.close()
