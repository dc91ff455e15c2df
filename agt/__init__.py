"""agt: policy-as-code governance for AI agents.

Build an :class:`Action`, hand it to an engine, act on the :class:`Decision`::

    import agt
    engine = agt.create_engine("yaml", "policies/starter.yaml")
    decision = engine.evaluate(agt.from_call("send_email", {"to": "a@example.com"}))

The names below are imported on first use (PEP 562), so ``import agt`` and the ``agt`` command start fast;
``from agt import Action`` and ``agt.create_engine`` work as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Action", "Agent", "Context", "Kind", "Operation", "Resource", "Stage", "from_agt_context",
                     "from_call"), "agt.action"),
    **dict.fromkeys(("Decision", "Effect", "Reason", "RuleAction", "RuleMatch", "combine", "fail_closed"), "agt.decision"),
    **dict.fromkeys(("Engine", "available_engines", "create_engine"), "agt.engines"),
    **dict.fromkeys(("ActionError", "AgtError", "ConditionSyntaxError", "PolicyLoadError", "UnknownEngineError"),
                    "agt.errors"),
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from agt.action import Action, Agent, Context, Kind, Operation, Resource, Stage, from_agt_context, from_call
    from agt.decision import Decision, Effect, Reason, RuleAction, RuleMatch, combine, fail_closed
    from agt.engines import Engine, available_engines, create_engine
    from agt.errors import ActionError, AgtError, ConditionSyntaxError, PolicyLoadError, UnknownEngineError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif not name.startswith("__"):
        try:  # a submodule not imported yet: `import agt; agt.engines.base` worked when __init__ imported it
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
