"""The ``agt`` command line: a thin shell over library calls.

Exit codes of ``agt eval``: 0 allow, 3 deny, 4 require_approval; 1 when the policy or the action
cannot be loaded; 2 for usage errors.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

import agt
from agt import _json
from agt.action import Action
from agt.decision import Decision, Effect
from agt.engines import available_engines, create_engine
from agt.errors import ActionError, AgtError, PolicyLoadError

EXIT_ALLOW, EXIT_ERROR, EXIT_DENY, EXIT_APPROVAL = 0, 1, 3, 4
EXIT_BY_EFFECT = {Effect.ALLOW: EXIT_ALLOW, Effect.DENY: EXIT_DENY, Effect.REQUIRE_APPROVAL: EXIT_APPROVAL}
EFFECT_STYLE = {Effect.ALLOW: "green", Effect.DENY: "bold red", Effect.REQUIRE_APPROVAL: "yellow"}

out = Console()
if not out.is_terminal:
    # Piped or captured (CI, `make demo | tee`): do not squeeze tables into 80 columns.
    out = Console(width=200)
err = Console(stderr=True, soft_wrap=True)


def guess_engine(path: str) -> str:
    """yaml for .yaml/.yml files and directories of them; cedar for .cedar files and directories of them."""
    p = Path(path)
    if p.is_dir():
        names = {f.suffix for f in p.iterdir()}
        if ".cedar" in names:
            return "cedar"
        if names & {".yaml", ".yml"}:
            return "yaml"
        raise click.UsageError(f"{path}: no .cedar or .yaml policies here; pass --engine")
    if p.suffix == ".cedar":
        return "cedar"
    return "yaml"


def _fail(exc: AgtError) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    sys.exit(EXIT_ERROR)


def _effect_text(d: Decision) -> str:
    return f"[{EFFECT_STYLE[d.effect]}]{d.effect.value}[/]"


def _opa_options(
    opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool = False
) -> dict[str, Any]:
    opts: dict[str, Any] = {"container": True} if opa_container else {}
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
    return fn


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


@cli.command("eval")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar", "opa"]), default=None, help="Engine; guessed from --policy when omitted.")
@click.option("--policy", "-p", "policy", type=click.Path(exists=True), default=None, help="Policy file or directory (default: the starter policy).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.argument("action_file", type=click.File("rb"), default="-")
@opa_flags
def eval_cmd(
    engine: str | None, policy: str | None, as_json: bool, action_file: Any,
    opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool,
) -> None:
    """Decide one action document (a file, or - for stdin).

    \b
    Exit code: 0 allow, 3 deny, 4 require_approval, 1 bad policy or action.
    Example:
      echo '{"agent":{"id":"a"},"action":{"tool":"send_email"}}' | agt eval -p policies/starter.yaml
    """
    if policy is None:
        from agt.demo import default_policy

        engine = engine or "yaml"
        policy = default_policy(engine)
    engine = engine or guess_engine(policy)
    try:
        source = getattr(action_file, "name", "-")
        action = Action.from_json(action_file.read(), source="<stdin>" if source in ("-", "<stdin>") else str(source))
        options = _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container) if engine == "opa" else {}
        eng = create_engine(engine, policy, **options)
    except (ActionError, AgtError) as exc:
        _fail(exc)
    try:
        decision = eng.evaluate(action)
    finally:
        eng.close()
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        out.print(f"{_effect_text(decision)}  ({engine}, {decision.revision})")
        for r in decision.reasons:
            out.print(f"  • [bold]{r.rule_id}[/]: {r.message}", highlight=False)
        if decision.approvers:
            out.print(f"  approvers: {', '.join(decision.approvers)}")
        for n in decision.notes:
            out.print(f"  note [dim]{n.rule_id}[/]: {n.message}", highlight=False)
    sys.exit(EXIT_BY_EFFECT[decision.effect])


@cli.command("check")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar"]), default=None, help="Engine; guessed from PATH when omitted.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.argument("path", type=click.Path(exists=True))
def check_cmd(engine: str | None, as_json: bool, path: str) -> None:
    """Load and validate a policy. Errors name the file, line and rule."""
    engine = engine or guess_engine(path)
    try:
        eng = create_engine(engine, path)
    except PolicyLoadError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": exc.message, "file": exc.file, "line": exc.line, "rule": exc.rule}))
            sys.exit(EXIT_ERROR)
        _fail(exc)
    rules = _rule_summary(eng)
    if as_json:
        click.echo(json.dumps({"ok": True, "engine": engine, "revision": eng.revision, "rules": rules}, indent=2))
        return
    table = Table(title=f"{path}: {len(rules)} rules ({engine}, {eng.revision})")
    for col in ("rule id", "action", "approvers", "message"):
        table.add_column(col)
    for r in rules:
        table.add_row(r["id"], r["action"], ", ".join(r["approvers"]), r["message"])
    out.print(table)
    out.print("[green]ok[/]")


def _rule_summary(eng: Any) -> list[dict[str, Any]]:
    if eng.name == "yaml":
        rules = [(r.id, r.action.value, r.approvers, r.message) for r in eng.policy.rules]
    else:
        rules = [(r.id, r.action.value, r.approvers, r.message) for r in eng.rules.values()]
    return [{"id": i, "action": a, "approvers": list(ap), "message": m} for i, a, ap, m in rules]


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--audit-log", default=None, type=click.Path(), help="Also check this audit log: writable, disk space, no key in its directory, verifies.")
@click.option("--audit-public-key", default=None, type=click.Path(exists=True, dir_okay=False), help="Verify --audit-log strictly against this key.")
@click.option("--opa-url", envvar="AGT_OPA_URL", default=None,
              help="An OPA you run: check whether its policy API answers without credentials (read-only probe).")
def doctor_cmd(as_json: bool, audit_log: str | None, audit_public_key: str | None, opa_url: str | None) -> None:
    """Report the engines available here and their versions.

    \b
    With --audit-log, also check the log's health (exit 1 on a problem). With --opa-url (or $AGT_OPA_URL),
    also say whether that OPA's policy API is open: a GET /v1/policies that answers 200 without credentials
    means anyone who reaches it can likely replace the policy.
    Example:
      agt doctor --opa-url http://127.0.0.1:8181 --audit-log .agt/audit --json
    """
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    from agt.opa import OpaNotFound, find_opa, opa_version

    try:
        opa: str | None = find_opa()
    except OpaNotFound:
        opa = None
    opa_ver = opa_version(opa) if opa else None
    report = {
        "agt": agt.__version__,
        "python": platform.python_version(),
        "engines": {
            "yaml": {"available": "yaml" in available_engines(), "version": f"pyyaml {pkg('pyyaml')}"},
            "cedar": {"available": "cedar" in available_engines(), "version": f"cedarpy {pkg('cedarpy')}"},
            "opa": {"available": bool(opa), "version": opa_ver, "path": opa},
        },
    }
    if audit_log:
        from agt.audit import load_public_key
        from agt.audit.health import check_log

        report["audit"] = check_log(audit_log, load_public_key(audit_public_key) if audit_public_key else None)
    if opa_url:
        from agt.opa.probe import probe_policy_api

        report["opa_policy_api"] = probe_policy_api(opa_url).to_dict()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        sys.exit(0 if report.get("audit", {}).get("ok", True) else EXIT_ERROR)
    table = Table(title=f"agt {agt.__version__} on Python {report['python']}")
    for col in ("engine", "available", "version"):
        table.add_column(col)
    for name, info in report["engines"].items():
        mark = "[green]yes[/]" if info["available"] else "[red]no[/]"
        table.add_row(name, mark, str(info.get("version") or "-"))
    out.print(table)
    probe = report.get("opa_policy_api")
    if probe:
        mark = {True: "[red]OPEN[/]", False: "[green]closed[/]", None: "[yellow]unknown[/]"}[probe["open"]]
        out.print(f"OPA policy API at {probe['url']}: {mark} — {probe['detail']}", highlight=False)
    if audit_log:
        audit = report["audit"]
        out.print(f"audit log {audit_log}: " + ("[green]ok[/]" if audit["ok"] else "[bold red]problems[/]"), highlight=False)
        for problem in audit["problems"]:
            out.print(f"  • {problem}", highlight=False)
        sys.exit(0 if audit["ok"] else EXIT_ERROR)


@cli.command("demo")
@click.option("--engines", default=None, help="Comma-separated engines to compare (default: yaml,cedar, plus opa when installed).")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON lines.")
def demo_cmd(engines: str, as_json: bool) -> None:
    """Play a scripted agent session through the starter policy on every engine."""
    from agt.demo import run_demo

    if engines is None:
        from agt.opa import OpaNotFound, find_opa

        names = ["yaml", "cedar"]
        try:
            find_opa()
            names.append("opa")
        except OpaNotFound as exc:
            err.print(f"[dim]opa not shown: {exc}[/]")
    else:
        names = [e.strip() for e in engines.split(",") if e.strip()]
    try:
        rows = run_demo(names)
    except AgtError as exc:
        _fail(exc)
    if as_json:
        for row in rows:
            click.echo(json.dumps({
                "step": row.step.label,
                "action": row.action.document,
                "decisions": {n: d.to_dict() for n, d in row.decisions.items()},
                "agree": row.agree,
            }, ensure_ascii=False))
        sys.exit(0 if all(r.agree for r in rows) else 1)
    table = Table(title="agt demo: one scripted session through the starter policy")
    table.add_column("#", justify="right", min_width=2)
    table.add_column("agent (trust)", no_wrap=True)
    table.add_column("tool", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("tokens/calls/files", justify="right", no_wrap=True)
    for n in names:
        table.add_column(n, no_wrap=True)
    table.add_column("reasons", no_wrap=True)
    table.add_column("=", no_wrap=True, min_width=1)
    for i, row in enumerate(rows, 1):
        a = row.action
        first = next(iter(row.decisions.values()))
        reasons = ", ".join(first.rule_ids)
        if first.approvers:
            reasons += f" → {', '.join(first.approvers)}"
        table.add_row(
            str(i),
            f"{a.agent.id} ({a.agent.trust_score})",
            a.action.tool,
            row.step.label,
            f"{a.context.tokens_used}/{a.context.tool_calls}/{a.context.files_changed}",
            *[_effect_text(row.decisions[n]) for n in names],
            reasons,
            "[green]✓[/]" if row.agree else "[bold red]✗[/]",
        )
    out.print(table)
    agree = sum(r.agree for r in rows)
    counts = {e: sum(1 for r in rows if next(iter(r.decisions.values())).effect is e) for e in Effect}
    out.print(
        f"{len(rows)} calls: [green]{counts[Effect.ALLOW]} allowed[/], [red]{counts[Effect.DENY]} denied[/], "
        f"[yellow]{counts[Effect.REQUIRE_APPROVAL]} need approval[/]; engines agree on {agree}/{len(rows)}"
    )
    out.print("[dim]tokens/calls/files count the task so far, including this call; = means every engine agreed on effect and reasons[/]")
    if agree != len(rows):
        sys.exit(1)


@cli.group("conformance")
def conformance_group() -> None:
    """Prove the engines agree: run parity suites, fuzz for disagreements."""


def _suite_paths(suites: tuple[str, ...]) -> list[Path]:
    if suites:
        return [Path(s) for s in suites]
    found = sorted(Path("conformance").glob("*.yaml"))
    if not found:
        raise click.UsageError("no suites given and none found in conformance/*.yaml")
    return found


def _engine_names(engines: str | None, suite: Any, opa_url: str | None) -> list[str]:
    if engines:
        return [e.strip() for e in engines.split(",") if e.strip()]
    names = [e for e in ("yaml", "cedar", "opa") if e in suite.policies]
    if "opa" in names and not opa_url:
        from agt.opa import OpaNotFound, find_opa

        try:
            find_opa()
        except OpaNotFound as exc:
            err.print(f"[yellow]skipping opa:[/] {exc}")
            names.remove("opa")
    return names


@conformance_group.command("run")
@click.argument("suites", nargs=-1, type=click.Path(exists=True))
@click.option("--engines", "-e", default=None, help="Comma-separated engines (default: every engine the suite has a policy for).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), default=None, help="Write a JSON report here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True), default=None, help="Write a JUnit XML report here.")
@click.option("--show", "show_failures", default=20, show_default=True, help="Print at most this many disagreements in full.")
@click.option("--coverage/--no-coverage", default=True, show_default=True, help="Print per-engine rule coverage.")
@opa_flags
def conformance_run(
    suites: tuple[str, ...], engines: str | None, json_path: str | None, junit_path: str | None,
    show_failures: int, coverage: bool, opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool,
) -> None:
    """Decide every case of each SUITE on every engine; exit 1 on any disagreement.

    \b
    Examples:
      agt conformance run                                   # every conformance/*.yaml
      agt conformance run conformance/starter.yaml -e yaml,cedar --junit report.xml
      agt conformance run --opa-url http://opa.internal:8181  # your own OPA
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agt.conformance import SuiteError, build_report, known_rule_ids, load_suite, open_engines, run_cases, write_json, write_junit

    reports = []
    for path in _suite_paths(suites):
        try:
            suite = load_suite(path)
            names = _engine_names(engines, suite, opa_url)
            opened = open_engines(suite, names, {"opa": _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container)})
        except (SuiteError, PolicyLoadError, AgtError) as exc:
            _fail(exc)
        try:
            with Progress(
                TextColumn(f"[bold]{suite.name}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err, transient=True,
            ) as progress:
                task = progress.add_task("cases", total=len(suite.cases))
                results = run_cases(suite.cases, opened, on_progress=lambda k: progress.advance(task, k))
            reports.append(build_report(suite.name, names, results, known_rule_ids(opened)))
        finally:
            for e in opened.values():
                e.close()
    for report in reports:
        _print_report(report, show_failures, coverage)
    if json_path:
        write_json(reports, json_path)
    if junit_path:
        write_junit(reports, junit_path)
    summary = Table(title="conformance summary")
    for col in ("suite", "engines", "cases", "passed", "failed", "not portable", "rules never determining"):
        summary.add_column(col)
    for r in reports:
        summary.add_row(
            r.suite, ",".join(r.engines), str(len(r.results)), f"[green]{len(r.results) - len(r.failures)}[/]",
            f"[red]{len(r.failures)}[/]" if r.failures else "0", str(len(r.not_portable)),
            ", ".join(r.never_determined()) or "-",
        )
    out.print(summary)
    sys.exit(0 if all(r.passed for r in reports) else 1)


def _print_report(report: Any, show_failures: int, coverage: bool) -> None:
    for r in report.failures[:show_failures]:
        out.rule(f"[red]✗ {report.suite}: {r.case.name}")
        exp = r.case.expect
        out.print(f"expected: {exp.effect.value} {list(exp.rules)}", highlight=False)
        for engine, d in r.decisions.items():
            mark = "[green]✓[/]" if r.matches_expectation(engine) else "[red]✗[/]"
            out.print(f"  {mark} {engine:6} {d.effect.value} {list(d.rule_ids)}"
                      + (f" approvers={list(d.approvers)}" if d.approvers else ""), highlight=False)
        out.print_json(_json.dumps(r.case.action.document, ensure_ascii=False))
    if len(report.failures) > show_failures:
        out.print(f"… and {len(report.failures) - show_failures} more disagreements (see --json)")
    if report.not_portable:
        table = Table(title=f"{report.suite}: cases not portable to every engine")
        table.add_column("case")
        table.add_column("engine: reason")
        for r in report.not_portable:
            table.add_row(r.case.name, "; ".join(f"{e}: {why}" for e, why in r.case.not_portable.items()))
        out.print(table)
    if coverage:
        table = Table(title=f"{report.suite}: rule coverage (determining / matched only)")
        table.add_column("rule")
        for e in report.engines:
            table.add_column(e, justify="right")
        for c in report.coverage:
            cells = []
            for e in report.engines:
                cells.append("[red]never[/]" if c.never(e) else f"{c.determining.get(e, 0)} / {c.matched.get(e, 0)}")
            table.add_row(c.rule_id, *cells)
        out.print(table)


@conformance_group.command("fuzz")
@click.argument("suite_path", metavar="SUITE", type=click.Path(exists=True))
@click.option("-n", "count", default=10_000, show_default=True, help="How many actions to generate.")
@click.option("--seed", default=0, show_default=True, help="Random seed; the same seed replays the same actions.")
@click.option("--engines", "-e", default=None, help="Comma-separated engines (default: every engine the suite has a policy for).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="conformance/regressions", show_default=True,
              help="Where shrunk disagreements are written as a case file.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@opa_flags
def conformance_fuzz(
    suite_path: str, count: int, seed: int, engines: str | None, out_dir: str, as_json: bool,
    opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool,
) -> None:
    """Differential fuzzing: generate actions from the policy's fields and literals, decide each on every
    engine, shrink any disagreement and write it out as a case file. Exit 1 on any disagreement."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agt.conformance import SuiteError, load_suite, open_engines
    from agt.conformance.fuzz import fuzz, write_cases

    try:
        suite = load_suite(suite_path)
        names = _engine_names(engines, suite, opa_url)
        opened = open_engines(suite, names, {"opa": _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container)})
    except (SuiteError, AgtError) as exc:
        _fail(exc)
    started = time.perf_counter()
    try:
        with Progress(TextColumn(f"[bold]fuzz {suite.name}[/] seed {seed}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("fuzz", total=count)
            result = fuzz(suite, opened, count, seed, on_progress=lambda k: progress.advance(task, k))
    finally:
        for e in opened.values():
            e.close()
    elapsed = time.perf_counter() - started
    written = str(write_cases(suite, result, seed, Path(out_dir))) if result.disagreements else None
    if as_json:
        click.echo(json.dumps({
            "suite": suite.name, "engines": names, "seed": seed, "generated": result.generated,
            "invalid": result.skipped_invalid, "disagreements": len(result.disagreements),
            "seconds": round(elapsed, 2), "cases_file": written,
        }, indent=2))
    else:
        colour = "red" if result.disagreements else "green"
        out.print(f"[{colour}]{len(result.disagreements)} disagreements[/] in {result.generated} actions on "
                  f"{', '.join(names)} (seed {seed}, {elapsed:.1f}s, {result.generated / elapsed:,.0f} actions/s)")
        if written:
            out.print(f"shrunk cases written to {written}")
    sys.exit(1 if result.disagreements else 0)


DEFAULT_APPROVALS_DB = ".agt/approvals.db"


def _approvals(db: str) -> Any:
    from agt.runtime.approvals import SqliteApprovals

    return SqliteApprovals(db)


def db_option(fn: Any) -> Any:
    return click.option(
        "--db", envvar="AGT_APPROVALS_DB", default=DEFAULT_APPROVALS_DB, show_default=True,
        help="The SQLite approvals store the governed agents use [env AGT_APPROVALS_DB].",
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


@cli.group("approvals")
def approvals_group() -> None:
    """Approval requests: list, inspect, and approve or deny them with a signed vote.

    \b
    One-time setup, as the approver's OS user (not the agent's):
      agt approvals keygen comms-lead --registry /etc/agt/approvers.json
    and give the Governor approvers="/etc/agt/approvers.json". Then:
      agt approvals list
      agt approvals approve apr_51d3f172851c429d --as comms-lead
    """


@approvals_group.command("list")
@db_option
@keys_option
@registry_option
@click.option("--status", type=click.Choice(["pending", "approved", "denied", "expired", "consumed", "all"]),
              default="pending", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def approvals_list(db: str, keys_dir: str | None, registry_file: str | None, status: str, as_json: bool) -> None:
    """List approval requests, with the status their verified votes give them."""
    registry = _registry(registry_file, keys_dir)
    try:
        rows = [(r, _state(r, registry)) for r in _approvals(db).list()]
    except AgtError as exc:
        _fail(exc)
    rows = [(r, s) for r, s in rows if status == "all" or s.status.value == status]
    if as_json:
        click.echo(_json.dumps([{**r.to_dict(), **s.to_dict()} for r, s in rows], indent=2, ensure_ascii=False))
        return
    import datetime as dt

    table = Table(title=f"approval requests ({status}) in {db}")
    for col in ("id", "agent", "tool", "rules", "approvers", "quorum", "votes", "status", "expires"):
        table.add_column(col)
    for r, s in rows:
        table.add_row(
            r.id, r.agent_id, r.tool, ", ".join(r.rule_ids), ", ".join(r.approvers) or "(any registered)", str(r.quorum),
            ", ".join(s.approvals) or "-", s.status.value,
            dt.datetime.fromtimestamp(r.expires_at).isoformat(timespec="seconds"),
        )
    out.print(table)


@approvals_group.command("show")
@db_option
@keys_option
@registry_option
@click.argument("request_id")
def approvals_show(db: str, keys_dir: str | None, registry_file: str | None, request_id: str) -> None:
    """Show one request: the action it is about, its verified status, and the votes cast on it."""
    try:
        req = _approvals(db).get(request_id)
    except AgtError as exc:
        _fail(exc)
    state = _state(req, _registry(registry_file, keys_dir))
    tampered = req.tampering()
    click.echo(_json.dumps({**req.to_dict(), **state.to_dict(), "votes": list(req.votes), "tampered": tampered},
                          indent=2, ensure_ascii=False))
    if tampered is not None:
        # What is shown is not what would be approved: say so loudly, and fail.
        err.print(f"[bold red]request {req.id} was edited in the store: {tampered}; do not approve it[/]")
        sys.exit(EXIT_ERROR)


def _vote(db: str, keys_dir: str | None, registry_file: str | None, request_id: str, approver: str, note: str,
          valid_for: float, approve: bool) -> None:
    from agt.identity import IdentityError, IdentityNotFoundError, IdentityStore
    from agt.runtime.approvals import cast_vote
    from agt.runtime.approvers import approver_key_store

    store = approver_key_store(keys_dir)
    try:
        keys = store.keys(approver)
    except IdentityNotFoundError:
        _fail(AgtError(f"no key for approver {approver!r} in the approver key store {store.directory}: only the holder "
                       f"of {approver}'s key can vote (create it as that user with: agt approvals keygen {approver})"))
    except IdentityError as exc:
        _fail(AgtError(f"cannot use {approver!r}'s key from {store.directory}: {exc}"))
    registry = _registry(registry_file, keys_dir)
    approvals = _approvals(db)
    try:
        cast_vote(approvals, request_id, keys, approve, note=note, valid_for=valid_for, registry=registry,
                  resolve_agent=IdentityStore().resolve)
        req = approvals.get(request_id)
    except AgtError as exc:
        _fail(exc)
    state = _state(req, registry)
    colour = {"approved": "green", "denied": "red"}.get(state.status.value, "yellow")
    out.print(f"{req.id}: [{colour}]{state.status.value}[/] ({len(state.approvals)}/{req.quorum} approvals); "
              f"vote signed by {approver}", emoji=False)


def _vote_options(fn: Any) -> Any:
    for option in reversed((
        db_option, keys_option, registry_option, click.argument("request_id"),
        click.option("--as", "approver", required=True, help="Who votes: the name of your key in the approver key store."),
        click.option("--note", default="", help="Why."),
        click.option("--valid-for", type=float, default=3600.0, show_default=True,
                     help="Seconds the vote counts for; the Governor may end the approval sooner."),
    )):
        fn = option(fn)
    return fn


@approvals_group.command("approve")
@_vote_options
def approvals_approve(db: str, keys_dir: str | None, registry_file: str | None, request_id: str, approver: str,
                      note: str, valid_for: float) -> None:
    """Approve a request with a vote signed by your key; it is granted once its quorum of approvers agreed."""
    _vote(db, keys_dir, registry_file, request_id, approver, note, valid_for, True)


@approvals_group.command("deny")
@_vote_options
def approvals_deny(db: str, keys_dir: str | None, registry_file: str | None, request_id: str, approver: str,
                   note: str, valid_for: float) -> None:
    """Deny a request with a vote signed by your key; one denial is final."""
    _vote(db, keys_dir, registry_file, request_id, approver, note, valid_for, False)


@approvals_group.command("keygen")
@click.argument("name")
@keys_option
@click.option("--registry", "registry_file", default=None, type=click.Path(dir_okay=False),
              help="Also add NAME's public key to this registry file (created if missing).")
@click.option("--overwrite", is_flag=True, help="Replace NAME's key (votes signed by the old key stop counting).")
@click.option("--json", "as_json", is_flag=True, help="Print the public key as JSON.")
def approvals_keygen(name: str, keys_dir: str | None, registry_file: str | None, overwrite: bool, as_json: bool) -> None:
    """Create approver NAME's key pair in the approver key store (mode 0700 directory, 0600 key) and print its
    public key (a did:key) for the Governor's approver registry. Run it as the approver's OS user."""
    from agt.runtime.approvers import ApproverRegistry, approver_key_store

    store = approver_key_store(keys_dir)
    try:
        identity = store.create(name, overwrite=overwrite).identity
        if registry_file is not None:
            path = Path(registry_file)
            current = ApproverRegistry.from_file(path) if path.exists() else ApproverRegistry(source=str(path))
            current.with_approver(identity).save(path)
    except AgtError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps({"name": name, "did": identity.did, "key_file": str(store.key_path(name))}, indent=2))
        return
    out.print(f"[green]created[/] approver [bold]{name}[/]  {identity.did}", highlight=False, emoji=False)
    out.print(f"  private key: {store.key_path(name)} (keep it where the agent cannot read it)", highlight=False, emoji=False)
    if registry_file is not None:
        out.print(f"  added to the registry {registry_file}", highlight=False, emoji=False)


@approvals_group.command("registry")
@keys_option
@click.option("--out", "out_file", default=None, type=click.Path(dir_okay=False), help="Write it here instead of stdout.")
def approvals_registry(keys_dir: str | None, out_file: str | None) -> None:
    """Print the approver registry (name -> did:key) for every key in the approver key store: the file the
    Governor is given with approvers=. Public keys only."""
    from agt.runtime.approvers import ApproverRegistry, approver_key_store

    try:
        registry = ApproverRegistry.from_store(approver_key_store(keys_dir))
    except AgtError as exc:
        _fail(exc)
    if out_file is not None:
        registry.save(out_file)
        err.print(f"{len(registry)} approver(s) written to {out_file}", highlight=False)
    else:
        click.echo(json.dumps(registry.to_dict(), indent=2))


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


@cli.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: verify, prove, tail, query, export."""


@audit_group.command("verify")
@log_argument
@key_option
@click.option("--strict", is_flag=True, help="Also fail on missing coverage: no trusted --key, a deleted or moved "
              "checkpoint, checkpoints from before the chain, or more records after the last checkpoint than its "
              "checkpoint_every (a live writer's tail).")
@click.option("--witness", default=None, metavar="PATH|URL", help="A witness of the checkpoints (a file, or an "
              "`agt bundle serve` URL): each checkpoint it holds must be in the log, unchanged.")
@click.option("--witness-token", envvar="AGT_WITNESS_TOKEN", default=None, help="Bearer token of an HTTP witness [env AGT_WITNESS_TOKEN].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(log: str, key_path: str | None, strict: bool, witness: str | None, witness_token: str | None,
                 as_json: bool) -> None:
    """Check the hash chain and every signed checkpoint; name the first bad record. Exit 1 if any.

    \b
    Example:
      agt audit verify --log .agt/audit --key /etc/agt/audit.pub --strict --witness /mnt/witness/checkpoints.jsonl
    """
    from agt.audit import load_public_key, verify_log
    from agt.audit.verify import UNTRUSTED_KEY

    try:
        report = verify_log(log, load_public_key(key_path) if key_path else None, strict=strict, witness=witness,
                            witness_token=witness_token)
    except AgtError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for w in report.warnings:
            err.print(f"[{'bold red' if w == UNTRUSTED_KEY else 'yellow'}]warning:[/] {w}", highlight=False)
        if report.uncovered:
            first_seq, last_seq = report.uncovered
            err.print(f"[yellow]not covered by any checkpoint:[/] records {first_seq}..{last_seq}")
        if report.ok:
            out.print(f"[green]ok[/]: {report.records} records chained, {report.covered} covered by "
                      f"{report.checkpoints} signed checkpoints"
                      + (f", {report.witnessed} witnessed" if witness else "") + (" (strict)" if strict else ""))
        else:
            out.print(f"[bold red]tampered[/]: first bad record at {report.first_problem}", highlight=False)
            for p in report.problems[1:5]:
                out.print(f"  also: {p}", highlight=False)
    sys.exit(0 if report.ok else 1)


@audit_group.command("checkpoint")
@log_argument
@audit_writer_options
def audit_checkpoint(log: str, audit_key: str, audit_witness: str | None, witness_token: str | None) -> None:
    """Sign the current tree head now (writers also do so every N records and when they close)."""
    with _open_audit_log(log, audit_key, audit_witness, witness_token) as writer:
        cp = writer.checkpoint()
        witness_error = writer.flush_witness() if audit_witness else None
    out.print(f"checkpoint over {cp['size'] if cp else 0} records")
    if witness_error:
        err.print(f"[bold red]not witnessed:[/] {witness_error}", highlight=False)
        sys.exit(EXIT_ERROR)


@audit_group.command("prove")
@log_argument
@click.argument("decision_id")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None, help="Write the proof here (default: stdout).")
def audit_prove(log: str, decision_id: str, out_path: str | None) -> None:
    """A Merkle inclusion proof that the record DECISION_ID is in the log, against a signed checkpoint."""
    from agt.audit import prove

    try:
        proof = prove(log, decision_id)
    except AgtError as exc:
        _fail(exc)
    text = json.dumps(proof, indent=2, ensure_ascii=False)
    if out_path:
        Path(out_path).write_text(text, "utf-8")
        out.print(f"proof for {decision_id} (leaf {proof['leaf_index']} of {proof['tree_size']}) written to {out_path}")
    else:
        click.echo(text)


@audit_group.command("verify-proof")
@click.argument("proof_file", type=click.File("r"))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), required=True, help="The checkpoint public key (PEM).")
def audit_verify_proof(proof_file: Any, key_path: str) -> None:
    """Check an inclusion proof on its own: record hash, Merkle path and checkpoint signature."""
    from agt.audit import load_public_key, verify_proof

    try:
        proof = json.load(proof_file)
        verify_proof(proof, load_public_key(key_path))
    except (AgtError, ValueError, KeyError) as exc:
        err.print(f"[bold red]invalid proof:[/] {exc}", highlight=False)
        sys.exit(EXIT_ERROR)
    out.print(f"[green]valid[/]: {proof['decision_id']} is record {proof['leaf_index']} of the {proof['tree_size']} "
              f"signed at {proof['checkpoint']['time']}")


def _filters(fn: Any) -> Any:
    for opt in (
        click.option("--agent", default=None, help="Only this agent."),
        click.option("--effect", type=click.Choice(["allow", "deny", "require_approval"]), default=None),
        click.option("--rule", default=None, help="Only decisions this rule id determined."),
        click.option("--kind", type=click.Choice(["decision", "approval", "trust", "kill_switch"]), default=None),
        click.option("--since", default=None, help="RFC 3339 time, e.g. 2026-11-23T08:00:00Z."),
        click.option("--until", default=None, help="RFC 3339 time."),
    ):
        fn = opt(fn)
    return fn


def _records_table(recs: list[dict], title: str) -> Table:
    table = Table(title=title)
    for col in ("seq", "time", "agent", "kind", "gate", "effect", "reasons", "tool"):
        table.add_column(col)
    for r in recs:
        result = r.get("result") or {}
        effect = result.get("effect", "")
        style = {"allow": "green", "deny": "red", "require_approval": "yellow"}.get(effect, "")
        tool = ((r.get("input") or {}).get("action") or {}).get("tool", "")
        table.add_row(
            str(r.get("seq")), str(r.get("timestamp", ""))[:23], str(r.get("agent_id", "")), str(r.get("kind", "")),
            str(r.get("path", "")), f"[{style}]{effect}[/]" if style else effect,
            ", ".join(x.get("id", "") for x in result.get("reasons", []) if isinstance(x, dict)), str(tool),
        )
    return table


@audit_group.command("query")
@log_argument
@_filters
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one record each.")
@click.option("--limit", default=200, show_default=True, help="At most this many (newest last).")
def audit_query(log: str, agent: str | None, effect: str | None, rule: str | None, kind: str | None,
                since: str | None, until: str | None, as_json: bool, limit: int) -> None:
    """Records matching every filter given."""
    from agt.audit import select

    recs = select(log, agent=agent, effect=effect, rule=rule, kind=kind, since=since, until=until)[-limit:]
    if as_json:
        for r in recs:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    out.print(_records_table(recs, f"{len(recs)} records in {log}"))


@audit_group.command("tail")
@log_argument
@click.option("-n", "count", default=20, show_default=True, help="How many of the newest records.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records until interrupted.")
def audit_tail(log: str, count: int, follow: bool) -> None:
    """The newest records."""
    import time as _time

    from agt.audit import select

    recs = select(log)
    out.print(_records_table(recs[-count:], f"last {min(count, len(recs))} of {len(recs)} records"))
    seen = len(recs)
    while follow:
        _time.sleep(0.5)
        recs = select(log)
        if len(recs) > seen:
            out.print(_records_table(recs[seen:], "new"))
            seen = len(recs)


@audit_group.command("export")
@log_argument
@_filters
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), required=True, help="JSON lines file to write.")
def audit_export(log: str, agent: str | None, effect: str | None, rule: str | None, kind: str | None,
                 since: str | None, until: str | None, out_path: str) -> None:
    """Export matching records as JSON lines (readable by tools that read OPA decision logs)."""
    from agt.audit import select

    recs = select(log, agent=agent, effect=effect, rule=rule, kind=kind, since=since, until=until)
    with open(out_path, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    out.print(f"{len(recs)} records written to {out_path}")


@cli.group("bundle")
def bundle_group() -> None:
    """OPA bundles: build (reproducibly), sign, and verify them."""


@bundle_group.command("build")
@click.argument("policy_dirs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), default=None, help="Directory of data.json / data.yaml files.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), required=True, help="The bundle to write (.tar.gz).")
@click.option("--revision", default=None, help="Manifest revision (default: a hash of the contents).")
@click.option("--root", "roots", multiple=True, help="Manifest roots (default: the top-level packages).")
@click.option("--signing-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM private key (RSA or EC) to sign with.")
@click.option("--signing-alg", default="RS256", show_default=True, help="RS256, RS384, RS512, PS256, ES256, ES384 or ES512.")
@click.option("--keyid", default="default", show_default=True, help="The key id OPA's verification config names.")
def bundle_build(policy_dirs: tuple[str, ...], data_dir: str | None, out_path: str, revision: str | None,
                 roots: tuple[str, ...], signing_key: str | None, signing_alg: str, keyid: str) -> None:
    """Build a standard OPA bundle from Rego directories (test files left out).

    \b
    Example:
      agt bundle build rego/ --out bundle.tar.gz --signing-key key.pem
      opa run --server --bundle bundle.tar.gz --verification-key pub.pem
    """
    from agt.bundle import build_bundle

    try:
        data = build_bundle(
            policy_dirs, data_dir=data_dir, revision=revision, roots=roots or None,
            signing_key=Path(signing_key).read_bytes() if signing_key else None, signing_alg=signing_alg, keyid=keyid,
        )
    except AgtError as exc:
        _fail(exc)
    Path(out_path).write_bytes(data)
    out.print(f"{out_path}: {len(data):,} bytes" + (f", signed ({signing_alg}, keyid {keyid})" if signing_key else ", unsigned"))


@bundle_group.command("verify")
@click.argument("bundle_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--verification-key", type=click.Path(exists=True, dir_okay=False), required=True, help="PEM public key.")
@click.option("--json", "as_json", is_flag=True, help="Print the verified signature payload as JSON.")
def bundle_verify(bundle_path: str, verification_key: str, as_json: bool) -> None:
    """Check a signed bundle the way OPA does: the JWS, and every file's hash. Exit 1 if it fails."""
    from agt.bundle import verify_bundle

    try:
        payload = verify_bundle(Path(bundle_path).read_bytes(), Path(verification_key).read_bytes())
    except AgtError as exc:
        err.print(f"[bold red]invalid bundle:[/] {exc}", highlight=False)
        sys.exit(EXIT_ERROR)
    if as_json:
        click.echo(json.dumps(payload, indent=2))
    else:
        out.print(f"[green]valid[/]: {len(payload.get('files', []))} files signed (keyid {payload.get('keyid', '-')})")


@bundle_group.command("serve")
@click.option("--bundle", "bundles", multiple=True, required=True, metavar="NAME=DIR[,DIR...]",
              help="A bundle to serve at /bundles/NAME, built from these Rego directories. Repeatable.")
@click.option("--data", "data_dirs", multiple=True, metavar="NAME=DIR", help="Data directory for bundle NAME.")
@click.option("--signing-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM private key to sign every bundle with.")
@click.option("--signing-alg", default="RS256", show_default=True)
@click.option("--keyid", default="agt", show_default=True)
@click.option("--token", envvar="AGT_BUNDLE_TOKEN", default=None, help="Bearer token clients must send [env AGT_BUNDLE_TOKEN].")
@log_argument
@audit_writer_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8282, show_default=True)
def bundle_serve(bundles: tuple[str, ...], data_dirs: tuple[str, ...], signing_key: str | None, signing_alg: str,
                 keyid: str, token: str | None, log: str, audit_key: str, audit_witness: str | None,
                 witness_token: str | None, host: str, port: int) -> None:
    """Serve bundles to an OPA fleet (ETag, 304, long polling), rebuilding and re-signing on every
    source change; receive OPA decision logs (/logs) into the audit log and status reports (/status), and
    witness other audit logs' checkpoints (/logs/checkpoints). SIGTERM or SIGINT closes the audit log with a
    final checkpoint.

    \b
    Example:
      agt bundle serve --bundle agt=rego/ --signing-key key.pem --token s3cret --audit-key /etc/agt/audit.key
      agt opa config --server http://127.0.0.1:8282 --token s3cret --verification-key pub.pem > config.yaml
      opa run --server --config-file config.yaml
    """
    import signal
    import threading

    from agt.bundle.server import BundleServer, BundleService, BundleSource

    data = dict(d.split("=", 1) for d in data_dirs if "=" in d)
    key = Path(signing_key).read_bytes() if signing_key else None
    sources = []
    for spec in bundles:
        if "=" not in spec:
            raise click.UsageError(f"--bundle {spec!r}: write NAME=DIR")
        name, dirs = spec.split("=", 1)
        sources.append(BundleSource(name, [Path(d) for d in dirs.split(",")], Path(data[name]) if name in data else None,
                                    key, signing_alg, keyid))
    audit = _open_audit_log(log, audit_key, audit_witness, witness_token)
    try:
        server = BundleServer(BundleService(sources, audit=audit, token=token), host, port).start()
    except (AgtError, OSError) as exc:
        audit.close()
        _fail(exc if isinstance(exc, AgtError) else AgtError(str(exc)))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # a service manager's stop must still leave a final checkpoint
    out.print(f"serving {', '.join('/bundles/' + s.name for s in sources)} at {server.url}; decision logs to {log}")
    try:
        stop.wait()
    finally:
        server.stop()
        audit.close()
        out.print(f"stopped; audit log closed with a checkpoint over {audit.size} records")


@cli.group("opa")
def opa_group() -> None:
    """Plugging into OPA deployments."""


@opa_group.command("config")
@click.option("--server", "server_url", required=True, help="The agt bundle service URL the fleet reaches.")
@click.option("--bundle", "bundles", multiple=True, default=("agt",), show_default=True, help="Bundle names to pull.")
@click.option("--token", default=None, help="Bearer token for the service.")
@click.option("--verification-key", type=click.Path(exists=True, dir_okay=False), default=None, help="PEM public key bundles are signed with.")
@click.option("--keyid", default="agt", show_default=True)
@click.option("--signing-alg", default="RS256", show_default=True)
@click.option("--long-poll", default=10, show_default=True, help="Long-polling timeout in seconds.")
def opa_config_cmd(server_url: str, bundles: tuple[str, ...], token: str | None, verification_key: str | None,
                   keyid: str, signing_alg: str, long_poll: int) -> None:
    """Print an OPA config.yaml: services, bundles (signed, long polling), decision_logs and status."""
    from agt.bundle.opa_config import opa_config

    click.echo(opa_config(server_url, bundles=bundles, token=token, keyid=keyid, algorithm=signing_alg,
                          verification_key=Path(verification_key).read_text() if verification_key else None,
                          long_poll_seconds=long_poll), nl=False)


@cli.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the action document."""
    from agt._schema import action_schema

    click.echo(json.dumps(action_schema(), indent=2))


def _register_groups() -> None:
    from agt.cli_identity import identity
    from agt.cli_mcp import mcp

    cli.add_command(identity)
    cli.add_command(mcp)


_register_groups()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
