"""``agt dashboard``: the operators' dashboard over an audit log and a state URL on disk. A thin shell over
:mod:`agt.serve.dashboard` (``agt serve --dashboard`` mounts the same app over its live Governor)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click

from agt.cli._common import _fail, json_option, key_option, log_argument
from agt.errors import AgtError

DEFAULT_ADDR = "127.0.0.1:8282"


def _read_token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AgtError(f"{path}: cannot read the operator token: {exc.strerror or exc}") from None
    if not token:
        raise AgtError(f"{path}: the operator token file is empty")
    return token


def _split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{addr!r}: expected HOST:PORT, as 127.0.0.1:8282", param_hint="--addr")
    return host.strip("[]"), int(port)


def _socket_directory(path: Path) -> None:
    """The socket's directory must be this user's alone: whoever can enter it can read the dashboard."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        raise AgtError(f"{directory}: the socket's directory has mode {mode:o}; it must be 0700 (chmod 700 {directory})")


def _server_class() -> type:
    import uvicorn

    class DashboardServer(uvicorn.Server):
        """uvicorn, ending the dashboard's event streams as soon as it is asked to stop (Ctrl-C, SIGTERM)."""

        def handle_exit(self, sig: int, frame: object) -> None:
            self.config.app.close()
            super().handle_exit(sig, frame)

    return DashboardServer


@click.command("dashboard")
@log_argument
@click.option("--state", "state_url", envvar="AGT_STATE", default=None, metavar="URL",
              help="The runtime state the Governor uses (sqlite:///path/state.db, redis://...): approvals and counters "
                   "[env AGT_STATE]. Without it the approvals and budgets pages say so.")
@click.option("--approvers", "approvers_file", envvar="AGT_APPROVER_REGISTRY", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="The approver registry (name -> did:key) votes are checked against [env AGT_APPROVER_REGISTRY].")
@click.option("--operator-token-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="A file holding the operator token the kill switch needs. Without it the kill switch is off.")
@key_option
@click.option("--witness", default=None, metavar="PATH|URL", help="A witness of the checkpoints, compared on the audit page.")
@click.option("--witness-token", envvar="AGT_WITNESS_TOKEN", default=None, help="Bearer token of an HTTP witness [env AGT_WITNESS_TOKEN].")
@click.option("--policy", "policy_path", default=None, type=click.Path(exists=True),
              help="The YAML policy the Governor runs: its budget rules are shown beside the counters.")
@click.option("--suites", default=None, type=click.Path(file_okay=False),
              help="Conformance suites directory for rule coverage (default: ./conformance when it exists).")
@click.option("--addr", default=None, metavar="HOST:PORT", help=f"Listen on TCP (default {DEFAULT_ADDR}).")
@click.option("--unix", "unix_path", default=None, type=click.Path(dir_okay=False),
              help="Listen on a unix socket instead, in a 0700 directory.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this Host name (loopback names always; others are refused, against DNS rebinding).")
@json_option("Errors as one JSON object on stdout; the start-up line as JSON.")
def dashboard_cmd(log: str, state_url: str | None, approvers_file: str | None, operator_token_file: str | None,
                  key_path: str | None, witness: str | None, witness_token: str | None, policy_path: str | None,
                  suites: str | None, addr: str | None, unix_path: str | None, allow_hosts: tuple[str, ...],
                  as_json: bool) -> None:
    """Serve the operators' dashboard for an audit log and a state URL on disk.

    \b
    Live decisions (with filters), rules and their conformance coverage, agents (trust over time, budgets,
    kill switch), pending approvals voted on in the browser with the approver's own key, and the audit log's
    verification. Reads need no credential (keep it on loopback or a unix socket); the kill switch needs the
    operator token; a vote needs an approver's signature. docs/dashboard.md has the threat answers.

    \b
    Example:
      agt dashboard --log .agt/audit --state sqlite:///$PWD/.agt/state.db \\
        --approvers /etc/agt/approvers.json --operator-token-file /etc/agt/operator.token --key /etc/agt/audit.pub
    """
    if addr and unix_path:
        raise click.UsageError("give --addr or --unix, not both")
    import uvicorn

    from agt.serve.dashboard import DashboardConfig, LogSource, dashboard_app
    from agt.serve.dashboard.app import LOOPBACK_HOSTS

    try:
        token = _read_token(operator_token_file)
        engine = None
        if policy_path is not None:
            from agt.engines import create_engine

            engine = create_engine("yaml", policy_path)
        source = LogSource(log, state_url, approvers=approvers_file, audit_public_key=key_path, witness=witness,
                           witness_token=witness_token, policy_engine=engine)
        if suites is None and Path("conformance").is_dir():
            suites = "conformance"
        hosts = (*LOOPBACK_HOSTS, *allow_hosts)
        if unix_path:
            _socket_directory(Path(unix_path))
        else:
            host, port = _split_addr(addr or DEFAULT_ADDR)
            hosts = (*hosts, host)
    except (AgtError, OSError) as exc:
        _fail(exc if isinstance(exc, AgtError) else AgtError(str(exc)))
    app = dashboard_app(source, DashboardConfig(operator_token=token, allowed_hosts=hosts, suites=suites))
    where = f"unix:{unix_path}" if unix_path else f"http://{host}:{port}/"
    if as_json:
        click.echo(json.dumps({"ok": True, "listening": where, "log": log, "state": state_url, "kill_switch": bool(token)}))
    else:
        click.echo(f"agt dashboard: {where} (log {log}, state {state_url or 'none'}; kill switch "
                   f"{'needs the operator token' if token else 'off: no --operator-token-file'})", err=True)
    listen = {"uds": unix_path} if unix_path else {"host": host, "port": port}
    server = _server_class()(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5, **listen))
    try:
        server.run()
    finally:
        source.close()
        if unix_path and os.path.exists(unix_path):
            os.unlink(unix_path)
