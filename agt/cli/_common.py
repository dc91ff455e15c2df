"""What the ``agt`` commands share: consoles, exit codes, option decorators, errors and small helpers.

Exit codes (docs/cli.md has the table for every command): 0 success or allow; 1 an error (the policy, the
action or another input cannot be loaded; a check failed); 2 a usage error; 3 deny; 4 require_approval;
5 a fail-closed deny because the engine could not decide (reason ``engine_error``: OPA unreachable, a timeout,
an undefined result, a Cedar NoDecision, a condition that errors).

With ``--json``, an error is one JSON object on stdout, ``{"ok": false, "error": <message>, "type": ...,
"file", "line", "rule", "field" (when known), "exit_code"}``, and nothing else is printed there.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

import click

from agt.decision import Decision, Effect
from agt.errors import AgtError

EXIT_ALLOW, EXIT_ERROR, EXIT_USAGE, EXIT_DENY, EXIT_APPROVAL, EXIT_ENGINE_ERROR = 0, 1, 2, 3, 4, 5
EXIT_BY_EFFECT = {Effect.ALLOW: EXIT_ALLOW, Effect.DENY: EXIT_DENY, Effect.REQUIRE_APPROVAL: EXIT_APPROVAL}

EXIT_CODES_HELP = """\b
Exit codes (every command; docs/cli.md):
  0  success; agt eval: allow
  1  error: a policy, action or other input cannot be loaded, or a check failed
  2  usage error (a bad option or argument)
  3  agt eval: deny
  4  agt eval: require_approval
  5  agt eval: deny because the engine could not decide (engine_error:
     OPA unreachable, timeout, undefined result, Cedar NoDecision)
With --json, errors are a JSON object on stdout: {"ok": false, "error": ..., "file", "line", "rule"}."""


def exit_code(decision: Decision) -> int:
    """The exit code for a decision: 0 allow, 3 deny, 4 require_approval, 5 a fail-closed engine error."""
    if decision.is_engine_error:
        return EXIT_ENGINE_ERROR
    return EXIT_BY_EFFECT[decision.effect]
EFFECT_STYLE = {Effect.ALLOW: "green", Effect.DENY: "bold red", Effect.REQUIRE_APPROVAL: "yellow"}



class _LazyConsole:
    """A rich Console made on first use: importing rich costs start-up (issue 14), and every command module imports
    ``out`` and ``err`` at its top. Attributes are the console's (``out.print``); :meth:`get` is the console
    itself, for what needs a real one (``Progress(console=err.get())``)."""

    __slots__ = ("_console", "_options", "_stderr")

    def __init__(self, *, stderr: bool, **options: Any) -> None:
        self._stderr, self._options = stderr, options
        self._console: Any = None

    def get(self) -> Any:
        if self._console is None:
            from rich.console import Console

            if self._stderr:
                console = Console(stderr=True, soft_wrap=True, **self._options)
            else:
                console = Console(**self._options)
                if not console.is_terminal:
                    # Piped or captured (CI, `make demo | tee`): do not squeeze tables into 80 columns.
                    console = Console(width=200, **self._options)
            self._console = console
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


out = _LazyConsole(stderr=False)
err = _LazyConsole(stderr=True)


def escape(text: str) -> str:
    """rich's markup escape, imported when first needed (rich.markup alone costs about 30 ms of start-up)."""
    from rich.markup import escape as _escape

    return _escape(text)


def guess_engine(path: str) -> str:
    """yaml, cedar or opa from the policy's files (agt.authoring.check.guess_engine)."""
    from agt.authoring.check import guess_engine as _guess
    from agt.errors import PolicyLoadError

    try:
        return _guess(path)
    except PolicyLoadError as exc:
        raise click.UsageError(str(exc)) from None


_LOCATION = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?P<column>\d+): ")


def json_mode() -> bool:
    """Whether the running command was asked for JSON (``--json``, as a flag or a report path)."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json") or ctx.params.get("json_path"):
            return True
        ctx = ctx.parent
    return False


def error_document(exc: BaseException, code: int = EXIT_ERROR) -> dict[str, Any]:
    """An error as the JSON object ``--json`` prints: the message, its type and what it locates."""
    message = getattr(exc, "message", None)
    doc: dict[str, Any] = {"ok": False, "error": message if isinstance(message, str) and message else str(exc),
                           "type": type(exc).__name__}
    for key in ("file", "line", "rule", "field"):
        value = getattr(exc, key, None)
        if value not in (None, "") and not callable(value):
            doc[key] = value
    where = _LOCATION.match(doc["error"]) if "file" not in doc else None
    if where:  # "<stdin>:2:1: not valid JSON" and the like
        doc.update(file=where["file"], line=int(where["line"]), column=int(where["column"]))
    if isinstance(exc, click.ClickException):
        doc["error"] = exc.format_message()
    doc["exit_code"] = code
    return doc


def json_option(help: str = "Print the result as JSON (errors too).") -> Any:
    """``--json``: the flag every command has."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def _fail(exc: BaseException, code: int = EXIT_ERROR, *, label: str = "error") -> NoReturn:
    """Report ``exc`` and exit with ``code``: a JSON object on stdout under --json, else a line on stderr."""
    if json_mode():
        click.echo(json.dumps(error_document(exc, code), ensure_ascii=False))
    else:
        err.print(f"[bold red]{label}:[/] {exc}", highlight=False)
    sys.exit(code)


def _effect_text(d: Decision) -> str:
    return f"[{EFFECT_STYLE[d.effect]}]{d.effect.value}[/]"


def _opa_options(
    opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool = False,
    decision_path: str | None = None,
) -> dict[str, Any]:
    opts: dict[str, Any] = {"container": True} if opa_container else {}
    if decision_path:
        opts["decision_path"] = decision_path
    if opa_url:
        opts["url"] = opa_url
    if opa_token:
        opts["token"] = opa_token
    if opa_timeout is not None:
        opts["timeout"] = opa_timeout
    if opa_unix:
        opts["unix_socket"] = True
    return opts


def opa_flags(fn: Any) -> Any:
    """--opa-url/--opa-token/--opa-timeout/--opa-unix-socket, shared by every command that may use OPA."""
    fn = click.option("--opa-container", is_flag=True, help="Run OPA as the openpolicyagent/opa image (needs Docker and testcontainers).")(fn)
    fn = click.option("--opa-unix-socket", "opa_unix", is_flag=True, help="Managed OPA listens on a unix socket instead of loopback TCP.")(fn)
    fn = click.option("--opa-timeout", type=float, default=None, help="Seconds per OPA decision, a total deadline (default $AGT_OPA_TIMEOUT, else 2).")(fn)
    fn = click.option("--opa-token", envvar="AGT_OPA_TOKEN", default=None, help="Bearer token for --opa-url [env AGT_OPA_TOKEN].")(fn)
    fn = click.option("--opa-url", envvar="AGT_OPA_URL", default=None, help="Use this OPA instead of starting one [env AGT_OPA_URL].")(fn)
    fn = click.option(
        "--decision-path", default=None, metavar="REF",
        help="The OPA rule that decides (default data.agt.decision): an entry point of your own, such as "
             "data.authz.allow; a boolean or {allow, reasons} result is read as a decision (docs/rego-library.md).",
    )(fn)
    return fn




DEFAULT_APPROVALS_DB = ".agt/approvals.db"


def _approvals(db: str) -> Any:
    """The store ``--db`` names: a SQLite file, or the Redis state URL the replicas share (docs/scale-out.md)."""
    if db.startswith(("redis://", "rediss://", "unix://")):
        from agt.runtime.redis_state import RedisApprovals

        return RedisApprovals(db)
    from agt.runtime.approvals import SqliteApprovals

    return SqliteApprovals(db)


def db_option(fn: Any) -> Any:
    return click.option(
        "--db", envvar="AGT_APPROVALS_DB", default=DEFAULT_APPROVALS_DB, show_default=True,
        help="The approvals store the governed agents use: a SQLite file, or a Redis state URL "
             "(redis://user:pass@host:6379/0?prefix=agt) [env AGT_APPROVALS_DB].",
    )(fn)


def keys_option(fn: Any) -> Any:
    from agt.runtime.approvers import DEFAULT_KEY_DIRECTORY, KEYS_ENV_VAR

    return click.option(
        "--keys", "keys_dir", envvar=KEYS_ENV_VAR, default=None, type=click.Path(file_okay=False),
        help=f"The approver key store: private keys the governed agent must not be able to read "
             f"(default {DEFAULT_KEY_DIRECTORY}) [env {KEYS_ENV_VAR}].",
    )(fn)


def registry_option(fn: Any) -> Any:
    from agt.runtime.approvers import REGISTRY_ENV_VAR

    return click.option(
        "--registry", "registry_file", envvar=REGISTRY_ENV_VAR, default=None, type=click.Path(dir_okay=False),
        help=f"The approver registry file (name -> did:key) the Governor verifies votes with; without it, the "
             f"public keys in --keys are used [env {REGISTRY_ENV_VAR}].",
    )(fn)


def _registry(registry_file: str | None, keys_dir: str | None) -> Any:
    """The registry to show statuses with: the file if given, else the key store's public halves, else none
    (then no vote verifies and nothing shows as approved)."""
    from agt.identity import IdentityError
    from agt.runtime.approvers import ApproverRegistry, approver_key_store

    if registry_file is not None:
        try:
            return ApproverRegistry.from_file(registry_file)
        except AgtError as exc:
            _fail(exc)
    try:
        return ApproverRegistry.from_store(approver_key_store(keys_dir))
    except (IdentityError, OSError):
        return None


def _state(req: Any, registry: Any) -> Any:
    import time as _time

    from agt.runtime.approvals import Terms, tally

    return tally(Terms.of(req), req.votes, registry, _time.time(), consumed=req.consumed_at is not None)


DEFAULT_AUDIT_LOG = ".agt/audit"


def log_argument(fn: Any) -> Any:
    return click.option(
        "--log", "log", envvar="AGT_AUDIT_LOG", default=DEFAULT_AUDIT_LOG, show_default=True,
        help="The audit log: a directory of JSONL files, or a .db file [env AGT_AUDIT_LOG].",
    )(fn)


def key_option(fn: Any) -> Any:
    return click.option(
        "--key", "key_path", envvar="AGT_AUDIT_PUBLIC_KEY", type=click.Path(exists=True, dir_okay=False), default=None,
        help="The checkpoint public key (PEM), kept where the log's writers cannot write [env AGT_AUDIT_PUBLIC_KEY]. "
        "Without it, checkpoint.pub beside the log is used with a warning (--strict then fails): whoever can "
        "rewrite the log can replace that file.",
    )(fn)


def audit_writer_options(fn: Any) -> Any:
    """How a command that writes an audit log signs and witnesses its checkpoints."""
    for opt in (
        click.option("--audit-key", "audit_key", envvar="AGT_AUDIT_KEY", type=click.Path(dir_okay=False), required=True,
                     help="The checkpoint signing key (Ed25519 PEM), created with its .pub if missing. It may not lie in "
                     "the log directory [env AGT_AUDIT_KEY]."),
        click.option("--audit-witness", "audit_witness", envvar="AGT_AUDIT_WITNESS", default=None, metavar="PATH|URL",
                     help="Also copy every checkpoint to this file, or to an `agt bundle serve` URL [env AGT_AUDIT_WITNESS]."),
        click.option("--witness-token", envvar="AGT_WITNESS_TOKEN", default=None,
                     help="Bearer token of an HTTP witness [env AGT_WITNESS_TOKEN]."),
    ):
        fn = opt(fn)
    return fn


def _open_audit_log(log: str, audit_key: str, audit_witness: str | None, witness_token: str | None) -> Any:
    from agt.audit import AuditLog

    try:
        return AuditLog(log, key_path=audit_key, witness=audit_witness, witness_token=witness_token)
    except (AgtError, OSError) as exc:
        _fail(exc if isinstance(exc, AgtError) else AgtError(str(exc)))

