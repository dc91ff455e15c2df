"""The ``agt`` command line: a thin shell over library calls, one module per command group (as OPA's ``cmd/``).

Exit codes of ``agt eval``: 0 allow, 3 deny, 4 require_approval; 1 when the policy or the action
cannot be loaded; 2 for usage errors.
"""

from __future__ import annotations

import click

import agt
from agt.cli._common import EXIT_ALLOW, EXIT_APPROVAL, EXIT_BY_EFFECT, EXIT_DENY, EXIT_ERROR, guess_engine

__all__ = ["EXIT_ALLOW", "EXIT_APPROVAL", "EXIT_BY_EFFECT", "EXIT_DENY", "EXIT_ERROR", "cli", "guess_engine", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    from agt.cli.conformance import conformance_group
    from agt.cli.demo import demo_cmd
    from agt.cli.doctor import doctor_cmd
    from agt.cli.eval import eval_cmd
    from agt.cli.fmt import fmt_cmd
    from agt.cli.identity import identity
    from agt.cli.opa import opa_group
    from agt.cli.schema import schema_cmd
    from agt.cli.test import test_cmd

    for command in (eval_cmd, check_cmd, doctor_cmd, demo_cmd, conformance_group, approvals_group, audit_group,
                    bundle_group, opa_group, schema_cmd, identity, test_cmd, fmt_cmd):
        cli.add_command(command)


_register()


def main() -> None:
    cli()
