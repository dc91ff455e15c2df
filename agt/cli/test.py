"""``agt test``: policy unit tests over conformance suites, like ``opa test``."""

from __future__ import annotations

import sys
from typing import Any

import click

from agt import _json
from agt.cli._common import _opa_options, err, opa_flags, out
from agt.errors import AgtError


def _engines(values: tuple[str, ...]) -> list[str] | None:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--engine", "-e", "engines", multiple=True, metavar="ENGINE",
              help="yaml, cedar or opa (rego); repeat or comma-separate. Default: every engine the suite has a policy for.")
@click.option("--verbose", "-v", is_flag=True, help="Print every test, not only the failures.")
@click.option("--coverage", "-c", is_flag=True, help="Rule coverage per engine, and Rego line coverage from OPA.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (and nothing else on stdout).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write a JUnit XML report: one testcase per case and engine.")
@opa_flags
def test_cmd(
    paths: tuple[str, ...], engines: tuple[str, ...], verbose: bool, coverage: bool, as_json: bool, junit_path: str | None,
    opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool,
    decision_path: str | None,
) -> None:
    """Run policy unit tests: every case of each suite (conformance/*.yaml by default) on each engine.

    Each (case, engine) is one test; it passes when that engine's decision meets the case's expectation
    (effect, rule ids, and approvers when given). PATH is a suite file or a directory of them.

    \b
    Exit codes (as `opa test`):
      0  every test passed
      2  at least one test failed
      1  an error: a suite or policy that does not load, an engine that cannot run

    \b
    Examples:
      agt test                                     # every conformance/*.yaml, every engine
      agt test conformance/starter.yaml -e cedar -v
      agt test --coverage --junit report.xml
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from agt.conformance.unit import EXIT_ERROR, run_tests

    options = {"opa": _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container, decision_path)}
    try:
        with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(),
                      console=err.get(), transient=True, disable=as_json) as progress:
            tasks: dict[str, Any] = {}

            def advance(suite: str, k: int, total: int) -> None:
                if suite not in tasks:
                    tasks[suite] = progress.add_task(suite, total=total)
                progress.advance(tasks[suite], k)

            run = run_tests(paths, _engines(engines), options, coverage=coverage, on_progress=advance)
    except AgtError as exc:
        if as_json:
            click.echo(_json.dumps({"passed": False, "exit_code": EXIT_ERROR, "error": str(exc)}))
        else:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_ERROR)
    if junit_path:
        run.write_junit(junit_path)
    if as_json:
        click.echo(_json.dumps(run.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print(run, verbose, coverage)
    sys.exit(run.exit_code)


_MARK = {"pass": "[green]PASS[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]SKIP[/]"}


def _print(run: Any, verbose: bool, coverage: bool) -> None:
    for note in run.notes + tuple(n for s in run.suites for n in s.notes):
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    for s in run.suites:
        shown = [o for o in s.outcomes if verbose or o.status == "fail"]
        if shown:
            out.print(f"[bold]{s.path}[/] ({s.suite}):", highlight=False)
        for o in shown:
            line = f"  {_MARK[o.status]} {o.engine:5} {o.case}"
            if o.reason and o.status != "pass":
                line += f": {o.reason}"
            out.print(line, highlight=False)
        if coverage:
            _print_coverage(s)
    outcomes = run.outcomes
    ran = [o for o in outcomes if o.status != "skip"]
    passed = sum(o.status == "pass" for o in ran)
    engines = sorted({o.engine for o in ran}, key=["yaml", "cedar", "opa"].index)
    per_engine = ", ".join(
        f"{e} {sum(o.status == 'pass' for o in ran if o.engine == e)}/{sum(o.engine == e for o in ran)}" for e in engines
    )
    out.print("-" * 80)
    out.print(f"PASS: {passed}/{len(ran)} ({per_engine})", highlight=False)
    if run.failures:
        out.print(f"[bold red]FAIL: {len(run.failures)}/{len(ran)}[/]", highlight=False)
    skipped = len(outcomes) - len(ran)
    if skipped:
        out.print(f"SKIP: {skipped} (not portable)", highlight=False)


def _print_coverage(s: Any) -> None:
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

    if s.rule_coverage is not None:
        table = Table(title=f"{s.suite}: rule coverage (determining / matched only)")
        table.add_column("rule")
        for e in s.engines:
            table.add_column(e, justify="right")
        for c in s.rule_coverage:
            table.add_row(c.rule_id, *("[red]never[/]" if c.never(e) else f"{c.determining.get(e, 0)} / {c.matched.get(e, 0)}"
                                       for e in s.engines))
        out.print(table)
    lc = s.line_coverage
    if lc is not None:
        table = Table(title=f"{s.suite}: Rego line coverage from OPA ({lc.inputs} inputs): {lc.percent:.1f}%")
        for col in ("file", "covered", "not covered", "%", "lines not covered"):
            table.add_column(col)
        for f in lc.files:
            d = f.to_dict()
            table.add_row(f.path, str(d["covered_lines"]), str(d["not_covered_lines"]), f"{f.percent:.1f}",
                          ", ".join(d["not_covered"]) or "-")
        out.print(table)
        if lc.errored:
            out.print(f"not measured: {len(lc.errored)} case(s) where OPA raised an evaluation error (a fail-closed deny)",
                      highlight=False)
        if lc.mismatches:
            err.print(f"[yellow]warning:[/] the coverage run decided {len(lc.mismatches)} case(s) differently from the "
                      f"engine, so the figures may not describe what the tests ran: {', '.join(lc.mismatches[:5])}",
                      highlight=False)
