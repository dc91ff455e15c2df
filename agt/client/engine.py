"""RemoteEngine: the Engine protocol (agt.engines.base) answered by an agt serve, through its OPA-shaped
decision API (each action sent without the fields agt serve derives again, agt.serve.wire.action_input, once the
service said it is agt serve; a plain OPA gets whole documents).
The conformance suite, ``agt test`` or a Governor can use a remote service as they use a local engine. Every
fault is a fail-closed deny naming it (engine ``remote``): unreachable, timeout, an HTTP error, an answer that
is not JSON or not a decision."""

from __future__ import annotations

from typing import Any, Iterable

from agt.action import Action
from agt.client._transport import DEFAULT_TIMEOUT, RemoteError, Transport
from agt.decision import Decision, fail_closed
from agt.serve.wire import action_input, read_decision

DECISION_PATH, BATCH_PATH, INFO_PATH = "/v1/data/agt/decision", "/v1/data/agt/batch", "/v1/agt/info"
BATCH_SIZE = 200


class RemoteEngine:
    name = "remote"

    def __init__(self, url: str | None = None, *, token: str | None = None, token_file: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, verify: bool | str = True, cert: str | tuple[str, str] | None = None) -> None:
        """``url`` as :class:`agt.client.RemoteGovernor` takes it: ``unix:///path.sock`` or ``http(s)://host:port``."""
        self._transport = Transport(url, token=token, token_file=token_file, timeout=timeout, verify=verify, cert=cert)
        self.url = self._transport.url
        self._revision: str | None = None
        self._lean: bool | None = None

    @property
    def revision(self) -> str:
        """The served policy's revision (``remote:`` and the service's own), asked once; ``remote:<url>`` while the
        service cannot say."""
        if self._revision is None:
            try:
                info = self._transport.request("GET", INFO_PATH)
                served = info.get("revision") if isinstance(info, dict) else None
            except RemoteError:
                served = None
            if not isinstance(served, str):
                return f"remote:{self.url}"
            self._revision = f"remote:{served}"
        return self._revision

    def _input(self, document: Any) -> Any:
        """What is sent for one action: without the derived fields only to a service that said it is agt serve
        (its ``/v1/agt/info``), which derives them again. A plain OPA running the agt Rego library derives
        nothing: sent there without ``facts``, a rule on the facts (``rm -rf /``) would never fire."""
        if self._lean is None:
            try:
                info = self._transport.request("GET", INFO_PATH)
            except RemoteError as exc:
                if exc.status is None:
                    return document  # unreachable or timed out: ask again next time, send everything meanwhile
                info = None
            self._lean = isinstance(info, dict) and isinstance(info.get("revision"), str)
        return action_input(document) if self._lean else document

    def _fail(self, cause: str) -> Decision:
        return fail_closed(f"remote: {cause}", engine=self.name, revision=self._revision or f"remote:{self.url}")

    def _read(self, result: Any) -> Decision:
        return read_decision(result, engine=self.name, revision=self._revision or f"remote:{self.url}")

    def evaluate(self, action: Action) -> Decision:
        try:
            answer = self._transport.request("POST", DECISION_PATH, {"input": self._input(action.document)})
        except RemoteError as exc:
            return self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return self._fail(f"{type(exc).__name__}: {exc}")
        if not isinstance(answer, dict) or "result" not in answer:
            return self._fail(f"undefined result from {self.url}{DECISION_PATH}")
        return self._read(answer["result"])

    def evaluate_many(self, actions: Iterable[Action]) -> list[Decision]:
        """``BATCH_SIZE`` actions per POST to the batch endpoint; a POST that fails denies every action in it."""
        actions = list(actions)
        out: list[Decision] = []
        for start in range(0, len(actions), BATCH_SIZE):
            out += self._chunk(actions[start:start + BATCH_SIZE])
        return out

    def _chunk(self, actions: list[Action]) -> list[Decision]:
        try:
            answer = self._transport.request("POST", BATCH_PATH, {"input": {"inputs": [self._input(a.document) for a in actions]}})
        except RemoteError as exc:
            return [self._fail(str(exc))] * len(actions)
        except Exception as exc:  # noqa: BLE001 - any fault must still deny
            return [self._fail(f"{type(exc).__name__}: {exc}")] * len(actions)
        results = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(actions):
            shape = f"a list of {len(results)}" if isinstance(results, list) else type(results).__name__
            return [self._fail(f"the batch answered {shape} for {len(actions)} inputs")] * len(actions)
        return [self._read(r) for r in results]

    def close(self) -> None:
        self._transport.close()
