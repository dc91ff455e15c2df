"""The condition language of YAML rules: parse once into a safe AST, compile once into a closure."""

from agt.conditions.ast import Node
from agt.conditions.compiler import MISSING, EqualityKey, Evaluator, IndexKey, LowerBoundKey, compile_condition, compile_predicate, field_getter, index_key
from agt.conditions.parser import parse

__all__ = [
    "MISSING", "EqualityKey", "Evaluator", "IndexKey", "LowerBoundKey", "Node", "compile_condition", "compile_predicate", "field_getter", "index_key", "parse",
]
