"""``agt doctor``: which engines are available, and whether OPA and the audit log are healthy."""

from __future__ import annotations

import json
import platform
import sys

import click

import agt
from agt.engines import available_engines
from agt.cli._common import EXIT_ERROR, out


@click.command("doctor")
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
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

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
