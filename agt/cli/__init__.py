"""The ``agt`` command line: a thin shell over library calls, one module per command group (as OPA's ``cmd/``).

Exit codes (docs/cli.md has the table for every command): 0 success or allow, 1 error, 2 usage error,
3 deny, 4 require_approval, 5 a fail-closed deny because the engine could not decide (engine_error).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

import agt
from agt.cli._common import (
    EXIT_ALLOW, EXIT_APPROVAL, EXIT_BY_EFFECT, EXIT_CODES_HELP, EXIT_DENY, EXIT_ENGINE_ERROR, EXIT_ERROR, EXIT_USAGE,
    error_document, exit_code, guess_engine,
)

__all__ = ["EXIT_ALLOW", "EXIT_APPROVAL", "EXIT_BY_EFFECT", "EXIT_DENY", "EXIT_ENGINE_ERROR", "EXIT_ERROR", "EXIT_USAGE",
           "cli", "exit_code", "guess_engine", "main"]


class AgtGroup(click.Group):
    """The top-level group: a usage error on a command run with ``--json`` is a JSON object on stdout too."""

    _raw_args: list[str] = []

    def main(self, args: Any = None, *pargs: Any, **kwargs: Any) -> Any:
        self._raw_args = list(args) if args is not None else sys.argv[1:]
        return super().main(args, *pargs, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if "--json" not in self._raw_args:
                raise
            click.echo(json.dumps(error_document(exc, exc.exit_code), ensure_ascii=False))
            ctx.exit(exc.exit_code)


@click.group(cls=AgtGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(agt.__version__, prog_name="agt")
def cli() -> None:
    """agt decides what an AI agent may do before it does it.

    \b
    Quick start:
      agt demo                                   play a scripted agent session
      agt eval --policy policies/starter.yaml action.json
      agt check cedar/                           validate a policy, with locations
      agt doctor                                 which engines are available
    """



def _register() -> None:
    from agt.cli.approvals import approvals_group
    from agt.cli.audit import audit_group
    from agt.cli.bundle import bundle_group
    from agt.cli.check import check_cmd
    from agt.cli.compile import compile_cmd
    from agt.cli.conformance import conformance_group
    from agt.cli.demo import demo_cmd
    from agt.cli.doctor import doctor_cmd
    from agt.cli.eval import eval_cmd
    from agt.cli.fmt import fmt_cmd
    from agt.cli.identity import identity
    from agt.cli.mcp import mcp
    from agt.cli.opa import opa_group
    from agt.cli.schema import schema_cmd
    from agt.cli.test import test_cmd

    for command in (eval_cmd, check_cmd, doctor_cmd, demo_cmd, conformance_group, approvals_group, audit_group,
                    bundle_group, opa_group, schema_cmd, identity, mcp, test_cmd, fmt_cmd, compile_cmd):
        cli.add_command(command)


_register()


def main() -> None:
    cli()
