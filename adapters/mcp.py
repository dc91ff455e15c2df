"""A governing MCP proxy: an MCP server in front of an upstream MCP server, governing every ``tools/call``.

    from agt.adapters.mcp import GoverningProxy
    proxy = GoverningProxy(governor, upstream_server, agent_id="support-bot")
    async with mcp.Client(proxy.server) as client: ...          # or: await proxy.run_stdio()

or, from a shell (what an MCP client's config launches instead of the upstream server itself):

    agt mcp proxy --policy policy.yaml --agent support-bot -- python upstream_server.py

* ``tools/list`` passes the upstream's tools through (``hide_denied=True`` drops the tools this agent can
  never call: see :meth:`GoverningProxy.always_denied`).
* Every ``tools/call`` goes through agt's gates (:class:`~agt.adapters._core.ToolGate`) before the upstream
  sees it, and is audited. A denial is the tool's error result (``is_error=True``) carrying agt's text: the
  gate, the rule ids, the reasons, and "do not retry". A denied call never reaches the upstream.
* A call that needs a human approval waits on agt's approval store (``approvals="wait"``), or, with
  ``approvals="native"``, returns the 2026-07-28 protocol's ``InputRequiredResult`` naming agt's approval id
  in ``_meta`` and in its (sealed) ``requestState``; the client's retry finds the same request. A
  client on an older protocol version gets an error result naming the approval id; retrying the same call
  (same tool, same arguments) also finds the same request. agt's store decides either way.
* The arguments must match the upstream tool's own ``inputSchema`` (from its ``tools/list``) strictly, and
  the schema's defaults are filled in, both for the policy and in what is forwarded: the policy decides
  what the upstream gets. A call to a tool the upstream does not list is denied (``adapter-unknown-tool``).
* The calls held for an approval are remembered per connection up to :data:`HELD_LIMIT` (least recently
  used first out): the client picks the arguments, so nothing it sends may grow the proxy without bound.

The low-level ``Server`` and ``mcp.Client`` of the MCP Python SDK 2.x are used; ``mcp`` is imported lazily
(``pip install 'agt[mcp]'``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import sys
import uuid
from collections import OrderedDict
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping, Sequence

from agt.action import Action, Agent, Context, Operation, infer_kind
from agt.adapters import require
from agt.adapters._core import ADAPTER_GATE, ApprovalMode, Outcome, ToolGate, denial_text
from agt.adapters._schema import with_defaults
from agt.decision import Decision, Effect, Reason, RuleAction
from agt.runtime.governor import Governor
from agt.runtime.modes import apply_mode
from agt.runtime.trust import RING_KINDS, ring

__all__ = ["APPROVAL_META_KEY", "HELD_LIMIT", "GoverningProxy", "UpstreamToolError", "build_governor", "serve_stdio"]

APPROVAL_META_KEY = "agt/approval"
"""The ``_meta`` key of a pending result: ``{"id", "tool", "rule_ids", "message"}``."""
_STATE_KEY = "agt_approval"
HELD_LIMIT = 1024
"""How many calls awaiting an approval one connection remembers (least recently used first out). A call that
falls out is not lost: the Governor still decides it; its retry opens a new approval request."""
_LIST_PAGE_CAP = 100  # pages of an upstream tools/list the proxy reads to find one tool's schema
_log = logging.getLogger("agt.adapters.mcp")

# The fields a rule may read and still be a function of the tool name alone, for this proxy: the tool, its
# kind (the proxy never passes a kind, so the Governor infers it from the name) and the agent's id (fixed).
_NAME_ONLY_PATHS = frozenset({("action", "tool"), ("action", "kind"), ("agent", "id")})


class UpstreamToolError(RuntimeError):
    """The upstream's tool returned an error result: recorded as a failure (breakers, audit)."""


def _mcp() -> Any:
    return require("mcp", "mcp")


def _types() -> Any:
    return require("mcp.types", "mcp")


def _error_result(text: str, meta: Mapping[str, Any] | None = None) -> Any:
    t = _types()
    return t.CallToolResult(content=[t.TextContent(text=text)], is_error=True, **({"_meta": dict(meta)} if meta else {}))


def _content_key(tool: str, arguments: Any) -> str:
    """The call's identity by content: the same tool with the same arguments."""
    text = json.dumps([tool, arguments], sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


class _Bounded(OrderedDict):
    """A dict that keeps its ``limit`` most recently used entries."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = max(1, int(limit))

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass
class _Link:
    """One downstream connection: its upstream client, its gate, the upstream's tool schemas, and the calls
    held for an approval."""

    upstream: Any
    gate: ToolGate
    token: str
    # agt approval id → the call id that opened it; content key → call id, while the call is not settled.
    # Both are written by what the client sends, so both are bounded.
    by_approval: _Bounded = field(default_factory=lambda: _Bounded(HELD_LIMIT))
    held: _Bounded = field(default_factory=lambda: _Bounded(HELD_LIMIT))
    schemas: dict[str, Any] = field(default_factory=dict)  # tool name → inputSchema, from the upstream's tools/list

    def call_id(self, request_id: Any, tool: str, arguments: Any, request_state: str | None) -> tuple[str, str]:
        """The Governor's idempotency key for this call, and the call's content key.

        A retry carries the ``requestState`` this proxy minted (sealed by the SDK and bound to the same tool
        and arguments), or repeats the same tool with the same arguments: either way it gets the call id of
        the call that opened the approval request, so the Governor finds that request instead of opening
        another. A fresh call is keyed by its JSON-RPC id (and its content, so two connections or clients
        that reuse an id never share a key)."""
        key = _content_key(tool, arguments)
        approval = _approval_in_state(request_state)
        if approval is not None and approval in self.by_approval:
            return self.by_approval[approval], key
        if key in self.held:
            return self.held[key], key
        rid = "-" if request_id is None else str(request_id)
        call_id = f"mcp:{self.token}:{rid}:{key[:16]}"
        self.held[key] = call_id
        return call_id, key

    def settle(self, key: str, call_id: str | None) -> None:
        """The call was admitted (its approval, if any, is used up): a repeat is a new call."""
        self.held.pop(key, None)
        for approval in [a for a, c in self.by_approval.items() if c == call_id]:
            del self.by_approval[approval]

    def remember(self, tools: Sequence[Any]) -> None:
        """The schemas of a page of the upstream's tools/list (a later listing replaces a tool's schema)."""
        for t in tools:
            self.schemas[t.name] = t.input_schema

    async def schema(self, tool: str) -> tuple[bool, Any]:
        """(listed, inputSchema) of ``tool``. A tool not yet seen is looked for in a fresh listing, page by
        page (a client may call without listing, and the upstream's tools may have changed)."""
        if tool not in self.schemas:
            cursor: str | None = None
            for _ in range(_LIST_PAGE_CAP):
                page = await self.upstream.list_tools(cursor=cursor, cache_mode="refresh")
                self.remember(page.tools)
                cursor = page.next_cursor
                if cursor is None or tool in self.schemas:
                    break
        return (tool in self.schemas), self.schemas.get(tool)


def _approval_in_state(state: str | None) -> str | None:
    if not state:
        return None
    try:
        value = json.loads(state)
    except ValueError:
        return None
    approval = value.get(_STATE_KEY) if isinstance(value, dict) else None
    return approval if isinstance(approval, str) else None


class GoverningProxy:
    """An MCP server (``.server``, a low-level ``mcp.server.lowlevel.Server``) that forwards to ``upstream``
    the tool calls agt allows.

    ``upstream``: what ``mcp.Client`` connects to (an in-process ``Server`` or ``MCPServer``, a
    ``StdioServerParameters``, a URL or a transport), opened once per downstream connection and closed
    with it; or an ``mcp.Client`` the caller has already entered (and closes).
    ``agent_id``: the calling agent, an id or a registered :class:`agt.Agent` (an unregistered id gets the
    Governor's default trust, 500: ring 2). ``session``: the agt session of every call; by default each
    downstream connection is a session of its own. ``approvals``: ``"wait"`` (block on agt's store) or
    ``"native"`` (the protocol's ``InputRequiredResult``). ``hide_denied``: leave out of ``tools/list``
    the tools :meth:`always_denied` names.
    """

    def __init__(self, governor: Governor, upstream: Any, *, agent_id: Agent | str, session: str | None = None,
                 task: str | None = None, hide_denied: bool = False, approvals: ApprovalMode = "wait",
                 name: str = "agt-governing-proxy") -> None:
        mcp = _mcp()
        ToolGate(governor, agent=agent_id, session=session or "mcp", task=task, approvals=approvals)  # validates
        self.governor, self.upstream, self.agent, self.session, self.task = governor, upstream, agent_id, session, task
        self.hide_denied, self.approvals, self.name = hide_denied, approvals, name
        from mcp.server.lowlevel import Server
        from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity

        self.server = Server(name, version=_agt_version(), lifespan=self._lifespan,
                             on_list_tools=self._list_tools, on_call_tool=self._call_tool)
        # The client echoes requestState back: the SDK's boundary seals it (process-local key) and binds it to
        # the same tool and arguments, so this proxy only ever reads state it minted for that very call.
        self.server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=name))
        self._mcp = mcp

    @property
    def agent_id(self) -> str:
        return self.agent.id if isinstance(self.agent, Agent) else self.agent

    # --- the connection --------------------------------------------------------------------------
    @asynccontextmanager
    async def _lifespan(self, _server: Any) -> AsyncIterator[_Link]:
        token = uuid.uuid4().hex[:12]
        gate = ToolGate(self.governor, agent=self.agent, session=self.session or f"mcp-{token}", task=self.task,
                        approvals=self.approvals)
        async with AsyncExitStack() as stack:
            if isinstance(self.upstream, self._mcp.Client):
                client = self.upstream
            else:
                client = await stack.enter_async_context(self._mcp.Client(self.upstream, cache=None))
            yield _Link(client, gate, token)

    async def run_stdio(self) -> None:
        """Serve one downstream client over this process's stdin and stdout."""
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    # --- tools/list ------------------------------------------------------------------------------
    async def _list_tools(self, ctx: Any, params: Any) -> Any:
        link: _Link = ctx.lifespan_context
        listed = await link.upstream.list_tools(cursor=getattr(params, "cursor", None), cache_mode="refresh")
        link.remember(listed.tools)  # every tool, hidden or not: a hidden tool called anyway is still checked
        if not self.hide_denied:
            return listed
        shown = [t for t in listed.tools if self.always_denied(t.name) is None]
        return listed.model_copy(update={"tools": shown})

    def always_denied(self, tool: str) -> str | None:
        """The rule that denies every call of ``tool`` by this agent now, whatever its arguments, or None.

        Two kinds of refusal qualify, each only when the Governor's mode enforces it:

        * the trust-ring gate: the tool's kind (inferred from its name, as the Governor does for this
          proxy's calls) is not one the agent's current trust ring may run (``trust-ring``);
        * a YAML ``deny`` rule whose condition reads nothing but the tool name, the tool's kind and the
          agent id, and holds for this tool. A deny always wins (docs/decision-semantics.md), so no
          other rule can let such a call through.

        Nothing else is guessed: a rule that reads a param, a counter, the trust score or the time, a
        ``default_action: deny``, and every Cedar or OPA policy leave the tool listed. The kill switch
        does not hide tools (it is lifted as easily as set). Hiding is a convenience for the model; it
        is not enforcement: a call to a hidden tool is governed like any other.
        """
        gov = self.governor
        agent = self._agent()
        mode = gov.mode_for(agent.id)
        kind = infer_kind(tool)
        r = ring(agent.trust_score)
        if kind not in RING_KINDS[r]:
            d = Decision(Effect.DENY, (Reason("trust-ring", f"ring {r} may not run {kind.value} tools"),), engine="runtime")
            if apply_mode(d, mode, gov.critical_rules).effect is Effect.DENY:
                return "trust-ring"
        rules = getattr(getattr(gov.engine, "policy", None), "rules", None)
        if getattr(gov.engine, "name", None) != "yaml" or not rules:
            return None
        doc = Action(agent, Operation(tool, kind, {}), None, Context(session_id="-", task_id="-")).document
        for rule in rules:
            if rule.action is not RuleAction.DENY or not _reads_only(rule.condition, _NAME_ONLY_PATHS):
                continue
            try:
                hit = rule.evaluate(doc)
            except Exception:  # noqa: BLE001 - an erroring rule decides per call; keep the tool listed
                continue
            if hit:
                d = Decision(Effect.DENY, (Reason(rule.id, rule.message),), engine="yaml")
                if apply_mode(d, mode, gov.critical_rules).effect is Effect.DENY:
                    return rule.id
        return None

    def _agent(self) -> Agent:
        return self.governor.agent_now(self.agent)

    # --- tools/call ------------------------------------------------------------------------------
    async def _call_tool(self, ctx: Any, params: Any) -> Any:
        link: _Link = ctx.lifespan_context
        tool = params.name
        # What the client sent is what is decided and what is forwarded: a private copy, taken once.
        arguments = copy.deepcopy(params.arguments) if params.arguments is not None else {}
        try:
            listed, schema = await link.schema(tool)
        except Exception as exc:  # noqa: BLE001 - no schema to check the arguments against: not forwarded
            return self._refuse(link, tool, "adapter-error", f"the upstream's tools/list failed: {type(exc).__name__}: {exc}")
        if not listed:
            # Its arguments cannot be checked against a schema the upstream never declared; an upstream that
            # answers calls to tools it does not list would get them unchecked. (An unknown tool is refused
            # by the upstream too, so a call that could have run is never lost.)
            return self._refuse(link, tool, "adapter-unknown-tool", "the upstream MCP server does not list this tool")
        call_id, key = link.call_id(ctx.request_id, tool, arguments, params.request_state)
        ticket = await link.gate.abegin(tool, arguments, call_id=call_id, schema=schema)
        if isinstance(ticket, Outcome):
            return self._not_run(ctx, link, ticket, call_id, key)
        link.settle(key, call_id)
        arguments = with_defaults(arguments, schema)  # what the policy was shown is what the upstream gets
        try:
            result = await link.upstream.call_tool(tool, arguments)
        except self._mcp.MCPError as exc:
            link.gate.fail(ticket, exc)
            raise  # the upstream's protocol error (unknown tool, bad params) reaches the client as it was
        except Exception as exc:  # noqa: BLE001
            link.gate.fail(ticket, exc)
            return _error_result(f"the upstream MCP server failed on {tool!r}: {type(exc).__name__}: {exc}")
        except BaseException:  # cancelled: the tool may or may not have run upstream
            link.gate.abandon(ticket, "the downstream request was cancelled")
            raise
        if result.is_error:
            link.gate.fail(ticket, UpstreamToolError(_text(result)))
            return result
        outcome = link.gate.finish(ticket, result.model_dump(mode="json", by_alias=True, exclude_none=True))
        if not outcome.ran:
            return _error_result(outcome.message, {"agt/denied": {"gate": outcome.gate, "rule_ids": list(outcome.rule_ids)}})
        return result

    def _refuse(self, link: _Link, tool: str, rule: str, why: str) -> Any:
        """A denial of the proxy's own (the Governor never saw the call): audited, and the tool's error result."""
        decision = Decision(Effect.DENY, (Reason(rule, why),), engine="adapter")
        link.gate._audit_refusal(tool, decision)  # noqa: SLF001 - the core's audit of an adapter refusal
        return _error_result(denial_text(tool, decision, ADAPTER_GATE), {"agt/denied": {"gate": ADAPTER_GATE, "rule_ids": [rule]}})

    def _not_run(self, ctx: Any, link: _Link, outcome: Outcome, call_id: str | None, key: str) -> Any:
        if outcome.denied or outcome.approval_id is None:
            link.held.pop(key, None)
            return _error_result(outcome.message, {"agt/denied": {"gate": outcome.gate, "rule_ids": list(outcome.rule_ids)}})
        if call_id is not None:
            link.by_approval[outcome.approval_id] = call_id
        meta = {APPROVAL_META_KEY: {"id": outcome.approval_id, "tool": outcome.tool, "rule_ids": list(outcome.rule_ids),
                                    "message": outcome.message}}
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        t = _types()
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and hasattr(t, "InputRequiredResult"):
            return t.InputRequiredResult(request_state=json.dumps({_STATE_KEY: outcome.approval_id}), _meta=meta)
        return _error_result(f"{outcome.message} (approval id {outcome.approval_id}: call {outcome.tool!r} again with "
                             "the same arguments once it is approved)", meta)


def _reads_only(node: Any, allowed: frozenset[tuple[str, ...]]) -> bool:
    """Every field the condition reads is one of ``allowed``."""
    from agt.conditions.ast import Path, children

    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Path) and tuple(n.parts) not in allowed:
            return False
        stack.extend(children(n))
    return True


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in getattr(result, "content", ()) if getattr(c, "text", None)) or "error result"


def _agt_version() -> str:
    try:
        import agt

        return str(agt.__version__)
    except Exception:  # noqa: BLE001
        return ""


# --- the stand-alone proxy (`agt mcp proxy`) --------------------------------------------------------------
def build_governor(engine: str, policy: str, *, audit_log: str = ".agt/audit", audit_key: str | None = None,
                   approvals_db: str = ".agt/approvals.db", approvers: str | None = None, keys_dir: str | None = None,
                   approval_timeout: float = 300.0) -> Governor:
    """The Governor a stand-alone proxy runs (agt.runtime.assembly, as ``agt serve``'s): the policy, a signed
    audit log, the SQLite approval store that ``agt approvals --db`` reads, and the approver registry votes are
    verified against (the file ``approvers``, else the public keys in the approver key store)."""
    from pathlib import Path

    from agt.runtime import assembly
    from agt.runtime.approvals import SqliteApprovals

    Path(approvals_db).parent.mkdir(parents=True, exist_ok=True)
    return assembly.build_governor(engine, policy, audit_log=audit_log, audit_key=audit_key,
                                   approvals=SqliteApprovals(approvals_db), approvers=approvers, keys_dir=keys_dir,
                                   approval_timeout=approval_timeout)


def serve_stdio(governor: Governor, command: Sequence[str], *, agent_id: str, trust: int | None = None,
                hide_denied: bool = False, approvals: ApprovalMode = "wait", env: Mapping[str, str] | None = None,
                cwd: str | None = None) -> None:
    """Proxy the stdio MCP server ``command`` to this process's stdin and stdout until the client leaves.

    The upstream gets this process's environment (``env`` replaces it): the SDK would otherwise pass
    only a short safe list, and the upstream server needs what it would have had if the client had
    started it directly. Its stderr is this process's stderr; stdout carries only the protocol."""
    import anyio

    mcp = _mcp()
    if not command:
        raise ValueError("give the upstream server's command after --")
    agent: Agent | str = agent_id
    if trust is not None:
        agent = governor.register_agent(Agent(agent_id, trust_score=trust), trust_score=trust)
    upstream = mcp.StdioServerParameters(command=command[0], args=list(command[1:]),
                                         env=dict(os.environ if env is None else env), cwd=cwd)
    proxy = GoverningProxy(governor, upstream, agent_id=agent, hide_denied=hide_denied, approvals=approvals)
    try:
        anyio.run(proxy.run_stdio)
    finally:
        governor.close()
        sys.stderr.flush()
