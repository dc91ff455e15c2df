"""``agt serve``: the decision service (agt.serve) in the foreground. A thin shell: it reads the options, builds
the Governor (agt.runtime.assembly, as ``agt mcp proxy`` does), the credentials and the listen address, and
hands them to uvicorn. Exit codes: 1 when the policy, state, audit log, a token file or the address cannot be
used; 2 for usage errors (including a TCP service without a token that was not told --insecure-no-auth)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from agt.cli._common import DEFAULT_AUDIT_LOG

EXIT_ERROR, EXIT_USAGE = 1, 2


def _die(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"agt serve: {message}", err=True)
    sys.exit(code)


@click.command("serve")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar", "opa"]), default=None,
              help="Engine; guessed from --policy when omitted.")
@click.option("--policy", "-p", required=True, type=click.Path(exists=True), help="Policy file or directory.")
@click.option("--unix", "unix", default=None, type=click.Path(dir_okay=False),
              help="Listen on this unix socket (the sidecar shape). Its directory must be yours and mode 0700 "
                   "(created so if missing).")
@click.option("--addr", default=None, metavar="HOST:PORT", help="Listen on TCP (the remote shape) [default 127.0.0.1:8282].")
@click.option("--token-file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="The agents' bearer token: decisions and begin/finish/fail/abandon need it.")
@click.option("--operator-token-file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="The operator's bearer token, kept where agents cannot read it: the kill switch, revive and trust "
                   "writes need it. Without it those endpoints are closed.")
@click.option("--insecure-no-auth", is_flag=True,
              help="Serve TCP without --token-file. Allowed on a loopback address only.")
@click.option("--state", default="memory", show_default=True, metavar="URL",
              help="Runtime state: memory, sqlite:///path/state.db (shared with `agt approvals --db path/state.db`), "
                   "or redis://host:port/db.")
@click.option("--approvers", "approvers_file", envvar="AGT_APPROVER_REGISTRY", default=None, type=click.Path(dir_okay=False),
              help="Approver registry (name -> did:key) votes are verified with; default: the public keys in the "
                   "approver key store [env AGT_APPROVER_REGISTRY].")
@click.option("--agents", "agents_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="The agents this service knows: {agents: {id: {roles, attributes, trust_score}}} (YAML or JSON). "
                   "Callers name an agent by id; its roles and attributes come from here, never from the request.")
@click.option("--approval-timeout", type=float, default=300.0, show_default=True, help="Seconds an approval request stays open.")
@click.option("--audit-log", default=DEFAULT_AUDIT_LOG, show_default=True, type=click.Path(file_okay=False),
              help="Audit log directory.")
@click.option("--audit-key", envvar="AGT_AUDIT_KEY", default=None, type=click.Path(dir_okay=False),
              help="Checkpoint signing key, outside the log directory, created if missing "
                   "(default: audit.key beside the log directory) [env AGT_AUDIT_KEY].")
@click.option("--tls-cert", default=None, type=click.Path(dir_okay=False), help="Serve HTTPS with this certificate (PEM).")
@click.option("--tls-key", default=None, type=click.Path(dir_okay=False), help="The certificate's private key (PEM).")
@click.option("--tls-client-ca", default=None, type=click.Path(dir_okay=False),
              help="Mutual TLS: require a client certificate signed by this CA (PEM).")
@click.option("--ticket-ttl", type=float, default=600.0, show_default=True,
              help="Seconds a begun call may stay open before it is abandoned (released, audited as not run).")
@click.option("--max-tickets", type=click.IntRange(1), default=10_000, show_default=True,
              help="Calls that may be open at once; beyond that, begin denies.")
@click.option("--metrics/--no-metrics", default=True, show_default=True,
              help="Serve the Governor's Prometheus metrics at GET /metrics (agent token; docs/metrics.md).")
@click.option("--dashboard", is_flag=True,
              help="Also serve the operators' dashboard at /dashboard/ over this Governor (docs/dashboard.md); its kill "
                   "switch takes the operator token.")
@click.option("--suites", type=click.Path(exists=True, file_okay=False), default=None,
              help="With --dashboard: the conformance suites a rule's page shows its coverage in.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning",
              show_default=True, help="uvicorn's log level (info adds one line per request).")
def serve_cmd(engine: str | None, policy: str, unix: str | None, addr: str | None, token_file: str | None,
              operator_token_file: str | None, insecure_no_auth: bool, state: str, approvers_file: str | None,
              agents_file: str | None, approval_timeout: float, audit_log: str, audit_key: str | None, tls_cert: str | None, tls_key: str | None,
              tls_client_ca: str | None, ticket_ttl: float, max_tickets: int, metrics: bool, dashboard: bool, suites: str | None,
              log_level: str) -> None:
    """Serve decisions over HTTP: OPA's decision API for any OPA client, and agt's runtime API.

    \b
    Sidecar (unix socket):
      agt serve --policy policies/starter.yaml --unix /run/agt/agt.sock --token-file agent.token
    Remote (TCP, with an operator credential and mutual TLS):
      agt serve -p policy.yaml --addr 0.0.0.0:8282 --token-file agent.token \\
        --operator-token-file /etc/agt/operator.token --tls-cert c.pem --tls-key k.pem --tls-client-ca ca.pem
    Then:
      curl -s --unix-socket /run/agt/agt.sock -H "Authorization: Bearer $(cat agent.token)" \\
        -d '{"input": {"agent": {"id": "a"}, "action": {"tool": "read_file"}}}' http://agt/v1/data/agt/decision

    docs/serve.md has the API, the auth model, and what an agent can and cannot do with each endpoint.
    """
    from agt.cli._common import guess_engine
    from agt.errors import AgtError
    from agt.serve.auth import Credentials, read_token_file
    from agt.serve.server import DEFAULT_ADDR, Listen, ListenError

    if unix is not None and addr is not None:
        _die("give --unix or --addr, not both", EXIT_USAGE)
    try:
        tls = {"tls_cert": tls_cert, "tls_key": tls_key, "tls_client_ca": tls_client_ca}
        listen = Listen(unix=unix, **tls) if unix is not None else Listen.parse_addr(addr or DEFAULT_ADDR, **tls)
        listen.check()
        credentials = Credentials(read_token_file(token_file) if token_file else None,
                                  read_token_file(operator_token_file) if operator_token_file else None)
    except AgtError as exc:
        _die(str(exc))
    if listen.unix is None and credentials.open:
        if not insecure_no_auth:
            _die("a TCP service needs --token-file (any process that reaches the port could ask for decisions and "
                 "begin calls); for a local experiment, --insecure-no-auth on a loopback address", EXIT_USAGE)
        if not listen.loopback:
            _die(f"--insecure-no-auth is allowed on a loopback address only, not {listen.host}", EXIT_USAGE)

    from agt.runtime.assembly import build_governor
    from agt.runtime.backends import open_state

    try:
        runtime_state = open_state(state)
    except (AgtError, OSError) as exc:
        _die(str(exc))
    try:
        governor = build_governor(engine or guess_engine(policy), policy, audit_log=audit_log, audit_key=audit_key,
                                  state=runtime_state, approvers=approvers_file, approval_timeout=approval_timeout,
                                  agents=agents_file, blocking_approvals=False, metrics=metrics)
    except (AgtError, OSError, ValueError) as exc:
        runtime_state.close()
        _die(str(exc))
    from agt.serve import metrics_api
    from agt.serve.app import create_app
    from agt.serve.server import serve

    routes: list = list(metrics_api.ROUTES) if metrics else []
    board = None
    if dashboard:
        from starlette.routing import Mount

        from agt.serve.dashboard import DashboardConfig, GovernorSource, dashboard_app

        operator = credentials.operator.decode("utf-8", "surrogateescape") if credentials.operator else None
        board = dashboard_app(GovernorSource(governor), DashboardConfig(operator_token=operator, suites=suites))
        routes.append(Mount("/dashboard", app=board))
    where = listen.unix or f"{'https' if listen.tls else 'http'}://{listen.host}:{listen.port}"
    click.echo(f"agt serve: {governor.engine.name} engine ({governor.engine.revision}) on {where}; "
               f"state {runtime_state.url}; operator endpoints {'on' if credentials.operator else 'closed'}", err=True)
    try:
        serve(create_app(governor, credentials=credentials, ticket_ttl=ticket_ttl, max_tickets=max_tickets,
                         extra_routes=routes), listen, on_stop=board.close if board is not None else None,
              log_level=log_level)
    except ListenError as exc:
        _die(str(exc))
    except KeyboardInterrupt:
        pass  # SIGINT: uvicorn has stopped serving; close below
    finally:
        governor.close()
