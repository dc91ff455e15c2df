"""``agt mcp``: a governing proxy in front of an MCP server. A thin shell over :mod:`agt.adapters.mcp`.

Register it on the main group with ``cli.add_command(mcp)``. stdout is the MCP protocol channel: every
message of this command goes to stderr. Exit codes: 2 for usage errors and a missing ``mcp`` package,
1 when the policy, the audit log or the approver registry cannot be loaded.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from agt.cli._common import DEFAULT_APPROVALS_DB, DEFAULT_AUDIT_LOG

EXIT_ERROR, EXIT_USAGE = 1, 2


def _die(message: str, code: int) -> NoReturn:
    click.echo(f"agt mcp: {message}", err=True)
    sys.exit(code)


@click.group("mcp")
def mcp() -> None:
    """Model Context Protocol: govern an MCP server's tools for the clients that reach it through agt.

    \b
    In the MCP client's config, launch the proxy instead of the server:
      agt mcp proxy --policy policy.yaml --agent support-bot -- python my_server.py
    """


@mcp.command("proxy")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar", "opa"]), default=None,
              help="Engine; guessed from --policy when omitted.")
@click.option("--policy", "-p", required=True, type=click.Path(exists=True), help="Policy file or directory.")
@click.option("--agent", "agent_id", required=True, help="The id of the agent whose calls come through this proxy.")
@click.option("--trust", type=click.IntRange(0, 1000), default=None,
              help="The agent's trust score (default: the Governor's default, 500, ring 2).")
@click.option("--audit-log", default=DEFAULT_AUDIT_LOG, show_default=True, type=click.Path(file_okay=False),
              help="Audit log directory.")
@click.option("--audit-key", envvar="AGT_AUDIT_KEY", default=None, type=click.Path(dir_okay=False),
              help="Checkpoint signing key, outside the log directory, created if missing "
                   "(default: audit.key beside the log directory) [env AGT_AUDIT_KEY].")
@click.option("--approvals", "approvals_db", envvar="AGT_APPROVALS_DB", default=DEFAULT_APPROVALS_DB, show_default=True,
              type=click.Path(dir_okay=False),
              help="The SQLite approval store; `agt approvals list --db` the same path shows its requests [env AGT_APPROVALS_DB].")
@click.option("--approvers", "approvers_file", envvar="AGT_APPROVER_REGISTRY", default=None, type=click.Path(dir_okay=False),
              help="Approver registry file (name -> did:key) votes are verified with; default: the public keys in "
                   "the approver key store, as `agt approvals` uses [env AGT_APPROVER_REGISTRY].")
@click.option("--approval-mode", type=click.Choice(["wait", "native"]), default="wait", show_default=True,
              help="wait: a call needing approval blocks until it is decided; native: return the protocol's "
                   "InputRequiredResult (or an error result on older clients) naming the approval id.")
@click.option("--approval-timeout", type=float, default=300.0, show_default=True,
              help="Seconds an approval request stays open.")
@click.option("--hide-denied", is_flag=True, help="Leave out of tools/list the tools this agent can never call.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def proxy(engine: str | None, policy: str, agent_id: str, trust: int | None, audit_log: str, audit_key: str | None,
          approvals_db: str, approvers_file: str | None, approval_mode: str, approval_timeout: float,
          hide_denied: bool, command: tuple[str, ...]) -> None:
    """Serve MCP on stdin/stdout, forwarding to the stdio MCP server COMMAND the tool calls the policy allows.

    \b
    Every tools/call is governed and audited; a denied call never reaches the server, and the client
    gets an error result naming agt's rule. tools/list passes through.
    Example:
      agt mcp proxy --policy policy.yaml --agent support-bot --approvals .agt/approvals.db -- python server.py
    """
    try:
        from agt.adapters import mcp as adapter

        adapter._mcp()  # noqa: SLF001 - the framework import, lazily, naming the extra
    except ImportError as exc:
        _die(str(exc), EXIT_USAGE)
    from agt.cli._common import guess_engine
    from agt.errors import AgtError

    try:
        governor = adapter.build_governor(
            engine or guess_engine(policy), policy, audit_log=audit_log, audit_key=audit_key,
            approvals_db=approvals_db, approvers=approvers_file, approval_timeout=approval_timeout)
    except (AgtError, OSError, ValueError) as exc:
        _die(str(exc), EXIT_ERROR)
    try:
        adapter.serve_stdio(governor, list(command), agent_id=agent_id, trust=trust, hide_denied=hide_denied,
                            approvals=approval_mode)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass
