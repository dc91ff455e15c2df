"""``agt conformance``: run parity suites and the differential fuzzer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from agt import _json
from agt.errors import AgtError, PolicyLoadError
from agt.cli._common import _fail, _opa_options, err, opa_flags, out


@click.group("conformance")
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
    decision_path: str | None,
) -> None:
    """Decide every case of each SUITE on every engine; exit 1 on any disagreement.

    \b
    Examples:
      agt conformance run                                   # every conformance/*.yaml
      agt conformance run conformance/starter.yaml -e yaml,cedar --junit report.xml
      agt conformance run --opa-url http://opa.internal:8181  # your own OPA
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from agt.conformance import SuiteError, build_report, known_rule_ids, load_suite, open_engines, run_cases, write_json, write_junit

    reports = []
    for path in _suite_paths(suites):
        try:
            suite = load_suite(path)
            names = _engine_names(engines, suite, opa_url)
            opened = open_engines(suite, names, {"opa": _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container, decision_path)})
        except (SuiteError, PolicyLoadError, AgtError) as exc:
            _fail(exc)
        try:
            with Progress(
                TextColumn(f"[bold]{suite.name}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err.get(), transient=True,
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
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

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
    decision_path: str | None,
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
        opened = open_engines(suite, names, {"opa": _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container, decision_path)})
    except (SuiteError, AgtError) as exc:
        _fail(exc)
    started = time.perf_counter()
    try:
        with Progress(TextColumn(f"[bold]fuzz {suite.name}[/] seed {seed}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err.get(), transient=True) as progress:
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
