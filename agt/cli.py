"""The ``agt`` command line: a thin shell over library calls.

Exit codes of ``agt eval``: 0 allow, 3 deny, 4 require_approval; 1 when the policy or the action
cannot be loaded; 2 for usage errors.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

import agt
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
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar"]), default=None, help="Engine; guessed from --policy when omitted.")
@click.option("--policy", "-p", "policy", type=click.Path(exists=True), default=None, help="Policy file or directory (default: the starter policy).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.argument("action_file", type=click.File("rb"), default="-")
def eval_cmd(engine: str | None, policy: str | None, as_json: bool, action_file: Any) -> None:
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
        eng = create_engine(engine, policy)
    except (ActionError, PolicyLoadError) as exc:
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
def doctor_cmd(as_json: bool) -> None:
    """Report the engines available here and their versions."""
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    opa = shutil.which("opa")
    opa_version = None
    if opa:
        try:
            text = subprocess.run([opa, "version"], capture_output=True, text=True, timeout=10).stdout
            opa_version = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("Version:")), None)
        except (OSError, subprocess.TimeoutExpired):
            opa_version = None
    report = {
        "agt": agt.__version__,
        "python": platform.python_version(),
        "engines": {
            "yaml": {"available": "yaml" in available_engines(), "version": f"pyyaml {pkg('pyyaml')}"},
            "cedar": {"available": "cedar" in available_engines(), "version": f"cedarpy {pkg('cedarpy')}"},
            "opa": {"available": bool(opa), "version": opa_version, "path": opa},
        },
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"agt {agt.__version__} on Python {report['python']}")
    for col in ("engine", "available", "version"):
        table.add_column(col)
    for name, info in report["engines"].items():
        mark = "[green]yes[/]" if info["available"] else "[red]no[/]"
        table.add_row(name, mark, str(info.get("version") or "-"))
    out.print(table)


@cli.command("demo")
@click.option("--engines", default="yaml,cedar", show_default=True, help="Comma-separated engines to compare.")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON lines.")
def demo_cmd(engines: str, as_json: bool) -> None:
    """Play a scripted agent session through the starter policy on every engine."""
    from agt.demo import run_demo

    names = [e.strip() for e in engines.split(",") if e.strip()]
    try:
        rows = run_demo(names)
    except PolicyLoadError as exc:
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


@cli.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the action document."""
    from agt._schema import action_schema

    click.echo(json.dumps(action_schema(), indent=2))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
