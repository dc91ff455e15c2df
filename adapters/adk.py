"""Google ADK: a real ``google.adk.plugins.BasePlugin`` that governs every tool call of every agent a Runner runs.

    from agt.adapters.adk import GovernancePlugin
    runner = InMemoryRunner(agent=agent, plugins=[GovernancePlugin(governor)])

* ``before_tool_callback`` runs agt's gates. A refusal answers the call with ``{"error": <agt's reason>}``:
  returning a dict is ADK's documented way to stop the tool and hand that dict to the model as the tool's
  response (ADK's own confirmation gate answers with the same ``{"error": ...}`` shape). Nothing is raised
  through the agent loop.
* ``after_tool_callback`` closes the call (output check, audit); ``on_tool_error_callback`` records a tool
  that raised or was cancelled and leaves ADK's handling of it as it is.
* The call's ADK ``function_call_id`` is agt's ``call_id``, so a resumed call finds its approval request.
* Approvals: ``"wait"`` (default) holds the call until agt's approval store decides. ``"native"`` uses ADK's
  own tool-confirmation pause (``ToolContext.request_confirmation``): the run stops with an
  ``adk_request_confirmation`` call carrying agt's request id; answering it resumes the original call
  (same ``function_call_id``, so the same agt request), which then waits on agt's store if it has not
  decided yet. agt's store decides; an answer of "not confirmed" denies the call.
* The arguments must match the tool's own declared JSON Schema strictly (ADK's ``parameters_json_schema``,
  or its ``parameters`` Schema converted), and the schema's defaults are filled in, both for the policy and
  for the tool: the policy decides what the tool gets (``"recursive": "true"`` is not a boolean).
* A second call with the ``function_call_id`` of a call that is still open in the same invocation is refused
  (``adapter-duplicate-call-id``): one id, one ticket, one output check, one audit record.
* Any error inside the plugin denies the call; the plugin never raises into the Runner.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from dataclasses import dataclass
from typing import Any

from agt.action import Agent
from agt.adapters import require
from agt.adapters._core import ADAPTER_GATE, ApprovalMode, Gates, Outcome, ToolGate, denial_text
from agt.adapters._schema import with_defaults
from agt.decision import Decision, Effect, Reason
from agt.runtime.governor import Governor, Ticket

_plugins = require("google.adk.plugins", "adk")

__all__ = ["GovernancePlugin", "APPROVAL_PAYLOAD_KEY"]

APPROVAL_PAYLOAD_KEY = "agt_approval_id"
"""Key of agt's approval request id in the payload of the ``adk_request_confirmation`` call (native mode)."""

_log = logging.getLogger("agt.adapters.adk")


class GovernancePlugin(_plugins.BasePlugin):
    """Governs every tool call through ``governor``.

    ``agent_id``: the calling agent (an id or a registered :class:`agt.Agent`); ``None`` uses the name of
    the ADK agent making the call, so each agent of a multi-agent app is governed as itself.
    ``session``: agt's session; ``None`` uses the ADK session id.
    ``approvals``: ``"wait"`` or ``"native"`` (see the module docstring).
    """

    def __init__(self, governor: Governor, *, agent_id: Agent | str | None = None, session: str | None = None,
                 approvals: ApprovalMode = "wait", task: str | None = None, name: str = "agt_governance") -> None:
        super().__init__(name=name)
        # Validates governor / agent / approvals now, at construction, rather than on the first call.
        ToolGate(governor, agent=agent_id if agent_id is not None else "agent", session=session or "default",
                 task=task, approvals=approvals)
        self.governor, self.agent_id, self.session, self.approvals, self.task = governor, agent_id, session, approvals, task
        self._lock = threading.Lock()
        self._gates = Gates(governor, task=task)
        # (invocation id, function_call_id) → the open call: its gate, its ticket (None while agt decides), the
        # arguments agt allowed, and the ToolContext it belongs to (held, so its identity is never reused).
        self._tickets: dict[tuple[str, str], _Open] = {}

    # --- ADK's hooks -------------------------------------------------------------------------------
    async def before_tool_callback(self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any) -> dict | None:
        name = _tool_name(tool)
        key: tuple[str, str] | None = None
        try:
            key = _key(tool_context)
            with self._lock:
                duplicate = key in self._tickets
                if not duplicate:
                    # Reserved before agt decides, so a duplicate arriving while this call waits is refused too.
                    self._tickets[key] = _Open(tool_context)
            if duplicate:
                # The model gave two calls of one turn the same id. Each would take the other's ticket (the output
                # check and the audit record of one would be skipped), and ADK itself matches responses and
                # confirmations by this id. The call that holds the id keeps it; this one never runs.
                key = None
                return self._refuse(self._gate(tool_context), name, "adapter-duplicate-call-id",
                                    f"another call with the id {tool_context.function_call_id!r} is still open in "
                                    "this turn; every tool call needs its own id")
            call_id = tool_context.function_call_id or None
            confirmation = getattr(tool_context, "tool_confirmation", None)
            resumed = self.approvals == "native" and confirmation is not None
            if resumed and not confirmation.confirmed:
                # The app answered ADK's pause with "no": the call does not run, whatever agt's store says.
                return self._refuse(self._gate(tool_context), name, "adapter-confirmation-rejected",
                                    "the call was rejected at ADK's tool confirmation")
            # A resumed call cannot pause twice (ADK's resume path emits no second confirmation request),
            # so once the app has said "resume", the call waits on agt's store for the request it opened.
            gate = self._gate(tool_context, "wait" if resumed else self.approvals)
            try:
                schema = _schema_of(tool)
            except Exception as exc:  # noqa: BLE001 - a tool whose declaration cannot be read is not run
                return self._internal_error(name, exc, "adapter-schema", gate)
            begun = await gate.abegin(name, tool_args, call_id=call_id, schema=schema)
            if isinstance(begun, Outcome):
                if begun.pending:
                    tool_context.request_confirmation(hint=begun.message,
                                                      payload={APPROVAL_PAYLOAD_KEY: begun.approval_id})
                    # As ADK's own confirmation gate does: the pause is not a result for the model to act on.
                    tool_context.actions.skip_summarization = True
                return {"error": begun.message}
            # The tool gets the defaults the policy was shown (the schema's, for every argument the model left out).
            tool_args.update(with_defaults(tool_args, schema))
            with self._lock:
                self._tickets[key] = _Open(tool_context, gate, begun, _snapshot(tool_args))
            key = None  # open: closed by the after / error callback
            return None
        except BaseException as exc:  # noqa: BLE001 - the plugin fails closed and never raises into the Runner
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            return self._internal_error(name, exc)
        finally:
            if key is not None:  # not admitted: release the reservation this call made
                self._close(key, tool_context)

    async def after_tool_callback(self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any,
                                  result: Any) -> dict | None:
        name = _tool_name(tool)
        try:
            entry = self._close(_key(tool_context), tool_context)
            if entry is None or entry.ticket is None:
                return None  # agt answered this call itself (a denial or a pending approval): nothing ran
            gate, ticket, approved_args = entry.gate, entry.ticket, entry.args
            if _snapshot(tool_args) != approved_args:
                # A callback after this plugin (an agent's own before_tool_callback) rewrote the arguments
                # agt had allowed: the tool ran with arguments no policy saw, so its result is withheld.
                gate.fail(ticket, RuntimeError("the tool arguments changed after agt allowed the call"))
                return self._refuse(gate, name, "adapter-arguments-changed",
                                    "the tool arguments were changed after agt allowed the call; the result is withheld")
            outcome = gate.finish(ticket, result)
            if outcome.denied:
                return {"error": outcome.message}
            if outcome.result is result:
                return None
            return outcome.result if isinstance(outcome.result, dict) else {"result": outcome.result}
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            return self._internal_error(name, exc)

    async def on_tool_error_callback(self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any,
                                     error: BaseException) -> dict | None:
        try:
            entry = self._close(_key(tool_context), tool_context)
            if entry is not None and entry.ticket is not None:
                gate, ticket = entry.gate, entry.ticket
                if isinstance(error, asyncio.CancelledError):
                    gate.abandon(ticket, "the tool call was cancelled")
                else:
                    gate.fail(ticket, error)
        except Exception:  # noqa: BLE001 - the tool's own error is what ADK goes on to handle
            _log.exception("agt could not record the error of %s", _tool_name(tool))
        return None  # ADK handles the tool's error as it always does

    # --- helpers -----------------------------------------------------------------------------------
    def _close(self, key: tuple[str, str], tool_context: Any) -> _Open | None:
        """Remove and return the open call under ``key`` if it is this ``tool_context``'s: a refused duplicate's
        after callback (ADK runs it for a call a plugin answered) must not close the call that holds the id."""
        with self._lock:
            entry = self._tickets.get(key)
            if entry is None or entry.context is not tool_context:
                return None
            del self._tickets[key]
            return entry

    def _gate(self, tool_context: Any, approvals: ApprovalMode | None = None) -> ToolGate:
        agent = self.agent_id if self.agent_id is not None else (tool_context.agent_name or "agent")
        session = self.session if self.session is not None else str(tool_context.session.id)
        approvals = approvals or self.approvals
        return self._gates.get(agent, session, approvals)

    def _internal_error(self, tool: str, exc: BaseException, rule: str = "adapter-error",
                        gate: ToolGate | None = None) -> dict:
        _log.error("agt failed closed on %s: %s: %s", tool, type(exc).__name__, exc)
        return self._refuse(gate, tool, rule, f"{type(exc).__name__}: {exc}")

    def _refuse(self, gate: ToolGate | None, tool: str, rule: str, why: str) -> dict:
        """A denial the Governor never decided (the adapter's own): audited, and answered as ADK's error dict."""
        decision = Decision(Effect.DENY, (Reason(rule, why),), engine="adapter")
        try:
            gate = gate or ToolGate(self.governor, agent=self.agent_id if self.agent_id is not None else "agent",
                                    session=self.session or "default")
            gate._audit_refusal(tool, decision)
        except Exception:  # noqa: BLE001 - denied either way
            _log.exception("agt could not audit the denial of %s", tool)
        return {"error": denial_text(tool, decision, ADAPTER_GATE)}


@dataclass
class _Open:
    """One tool call agt is deciding (``ticket`` None) or has let run."""

    context: Any
    gate: ToolGate | None = None
    ticket: Ticket | None = None
    args: Any = None


def _schema_of(tool: Any) -> dict[str, Any] | None:
    """The JSON Schema of ``tool``'s arguments, as ADK declares the tool to the model.

    ``parameters_json_schema`` (what ADK builds, with pydantic from the function's signature, while its
    ``JSON_SCHEMA_FOR_FUNC_DECL`` feature is on, the default; also what MCP, OpenAPI and ADK's own tools
    declare) is used as it is. With the feature off a tool declares a ``google.genai`` ``Schema``; it is
    converted key by key (:func:`_from_genai`). A tool without a declaration (one ADK could not find, a
    tool that takes no arguments) has no schema: its arguments are decided as they are."""
    getter = getattr(tool, "_get_declaration", None)
    declaration = getter() if callable(getter) else None
    if declaration is None:
        return None
    json_schema = getattr(declaration, "parameters_json_schema", None)
    if json_schema is not None:
        if hasattr(json_schema, "model_dump"):
            json_schema = json_schema.model_dump(mode="json", exclude_none=True, by_alias=True)
        if not isinstance(json_schema, dict):
            raise TypeError(f"the tool's parameters_json_schema is not an object ({type(json_schema).__name__})")
        return json_schema
    parameters = getattr(declaration, "parameters", None)
    return None if parameters is None else _from_genai(parameters)


# google.genai Schema field → JSON Schema keyword, for the fields that are the same constraint in both.
_GENAI_SAME = {"format": "format", "title": "title", "description": "description", "pattern": "pattern",
               "minimum": "minimum", "maximum": "maximum", "min_length": "minLength", "max_length": "maxLength",
               "min_items": "minItems", "max_items": "maxItems", "min_properties": "minProperties",
               "max_properties": "maxProperties", "required": "required", "default": "default"}
_GENAI_IGNORED = {"example", "property_ordering"}  # annotations: nothing to check


def _from_genai(schema: Any) -> dict[str, Any]:
    """A ``google.genai.types.Schema`` as JSON Schema. Not genai's own ``Schema.json_schema``: that one drops
    ``default`` and every field it does not know, and reads ``nullable=False`` as nullable. A field this
    conversion does not know raises (the call is denied): a constraint silently dropped would let through
    arguments the declaration refuses."""
    data = schema.model_dump(exclude_none=True) if hasattr(schema, "model_dump") else dict(schema)
    out: dict[str, Any] = {}
    for field_name, value in data.items():
        if field_name == "type":
            kind = str(getattr(value, "value", value)).lower()
            if kind != "type_unspecified":
                out["type"] = kind
        elif field_name == "nullable":
            pass  # applied below, once the type is known
        elif field_name == "enum":
            out["enum"] = list(value)
        elif field_name == "items":
            out["items"] = _from_genai(getattr(schema, "items", None) or value)
        elif field_name == "properties":
            props = getattr(schema, "properties", None) or value
            out["properties"] = {k: _from_genai(v) for k, v in props.items()}
        elif field_name == "any_of":
            out["anyOf"] = [_from_genai(v) for v in (getattr(schema, "any_of", None) or value)]
        elif field_name in _GENAI_SAME:
            out[_GENAI_SAME[field_name]] = value
        elif field_name not in _GENAI_IGNORED:
            raise TypeError(f"agt cannot convert the Schema field {field_name!r} of the tool's declaration")
    if data.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


def _tool_name(tool: Any) -> str:
    try:
        return str(tool.name)
    except Exception:  # noqa: BLE001
        return "<unknown tool>"


def _key(tool_context: Any) -> tuple[str, str]:
    call_id = tool_context.function_call_id
    return (str(tool_context.invocation_id), str(call_id) if call_id else f"context-{id(tool_context)}")


def _snapshot(args: Any) -> Any:
    try:
        return copy.deepcopy(args)
    except Exception:  # noqa: BLE001 - compared by value only; an uncopyable value compares as itself
        return args
