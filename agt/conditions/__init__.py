"""The condition language of YAML rules: parse once into a safe AST, compile once into a closure."""

from agt.conditions.ast import Node
from agt.conditions.compiler import MISSING, Evaluator, compile_condition, index_keys
from agt.conditions.parser import parse

__all__ = ["MISSING", "Evaluator", "Node", "compile_condition", "index_keys", "parse"]
