"""``agt compile``: a YAML policy into its Rego and Cedar twins, with the same rule ids, messages, approvers and
critical marks, and a manifest naming what a target could not express (see :mod:`agt.compile.manifest`)."""

from agt.compile._walk import NotPortable, Plan, plan
from agt.compile.compiler import CompileError, CompileResult, TARGETS, compile_policy

__all__ = ["CompileError", "CompileResult", "NotPortable", "Plan", "TARGETS", "compile_policy", "plan"]
