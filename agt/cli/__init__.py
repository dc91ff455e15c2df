"""The ``agt`` command line: a thin shell over library calls, one module per command group (as OPA's ``cmd/``).

Exit codes (docs/cli.md has the table for every command): 0 success or allow, 1 error, 2 usage error,
3 deny, 4 require_approval, 5 a fail-closed deny because the engine could not decide (engine_error).
"""

from __future__ import annotations

import importlib
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


COMMANDS: dict[str, tuple[str, str, str]] = {
    "approvals": ("agt.cli.approvals", "approvals_group",
                  "Approval requests: list, inspect, and approve or deny them with a signed vote."),
    "audit": ("agt.cli.audit", "audit_group", "The tamper-evident audit log: verify, prove, tail, query, export."),
    "bundle": ("agt.cli.bundle", "bundle_group", "OPA bundles: build (reproducibly), sign, and verify them."),
    "check": ("agt.cli.check", "check_cmd", "Load and validate a policy. Every finding names the file, line and rule."),
    "compile": ("agt.cli.compile", "compile_cmd",
                "Compile a YAML policy into Rego for the agt library and Cedar for agt's schema."),
    "conformance": ("agt.cli.conformance", "conformance_group",
                    "Prove the engines agree: run parity suites, fuzz for disagreements."),
    "dashboard": ("agt.cli.dashboard", "dashboard_cmd", "Serve the operators' dashboard for an audit log and a state URL on disk."),
    "demo": ("agt.cli.demo", "demo_cmd", "Play a scripted agent session through the starter policy on every engine."),
    "doctor": ("agt.cli.doctor", "doctor_cmd", "Report the engines available here and their versions."),
    "eval": ("agt.cli.eval", "eval_cmd", "Decide one action document (a file, or - for stdin)."),
    "fmt": ("agt.cli.fmt", "fmt_cmd",
            "Format policy files: .cedar through Cedar's formatter (cedarpy), .rego through `opa fmt`."),
    "identity": ("agt.cli.identity", "identity", "Agent identities: Ed25519 keys named by did:key."),
    "mcp": ("agt.cli.mcp", "mcp",
            "Model Context Protocol: govern an MCP server's tools for the clients that reach it through agt."),
    "opa": ("agt.cli.opa", "opa_group", "Plugging into OPA deployments."),
    "schema": ("agt.cli.schema", "schema_cmd", "Print the JSON Schema of the action document."),
    "serve": ("agt.cli.serve", "serve_cmd",
              "Serve decisions over HTTP: OPA's decision API for any OPA client, and agt's runtime API."),
    "test": ("agt.cli.test", "test_cmd",
             "Run policy unit tests: every case of each suite (conformance/*.yaml by default) on each engine."),
    "verify": ("agt.cli.verify", "verify_cmd",
               "Check a deployment against the OWASP Agentic Top 10 (ASI01-ASI10): per risk, covered, partly or not covered."),
}
"""Every command: name -> (module, attribute, the first paragraph of its help). A command's module is imported
only when the command runs (or its own help is asked for), so ``agt --help`` and ``agt eval`` do not pay for the
imports of every other command (issue 14). The summaries are what ``agt --help`` lists; tests/test_cli_startup.py
checks each against the command's own help."""


class AgtGroup(click.Group):
    """The top-level group: commands load lazily (:data:`COMMANDS`), and a usage error on a command run with
    ``--json`` is a JSON object on stdout too."""

    _raw_args: list[str] = []

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attribute, _summary = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a command not loaded yet is listed by its summary, without importing it."""
        rows = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][2])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

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


def main() -> None:
    cli()
