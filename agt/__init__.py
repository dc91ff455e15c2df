"""agt: policy-as-code governance for AI agents.

Build an :class:`Action`, hand it to an engine, act on the :class:`Decision`::

    import agt
    engine = agt.create_engine("yaml", "policies/starter.yaml")
    decision = engine.evaluate(agt.from_call("send_email", {"to": "a@example.com"}))
"""

from agt.action import Action, Agent, Context, Kind, Operation, Resource, Stage, from_agt_context, from_call
from agt.decision import Decision, Effect, Reason, RuleAction, RuleMatch, combine, fail_closed
from agt.engines import Engine, available_engines, create_engine
from agt.errors import ActionError, AgtError, ConditionSyntaxError, PolicyLoadError, UnknownEngineError

__version__ = "0.1.0"

__all__ = [
    "Action", "ActionError", "Agent", "AgtError", "ConditionSyntaxError", "Context", "Decision", "Effect",
    "Engine", "Kind", "Operation", "PolicyLoadError", "Reason", "Resource", "RuleAction", "RuleMatch", "Stage",
    "UnknownEngineError", "available_engines", "combine", "create_engine", "fail_closed", "from_agt_context", "from_call",
]
