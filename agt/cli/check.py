"""``agt check``: validate a policy, with locations."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from agt.engines import create_engine
from agt.errors import PolicyLoadError
from agt.cli._common import _fail, guess_engine, out


@click.command("check")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar"]), default=None, help="Engine; guessed from PATH when omitted.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.argument("path", type=click.Path(exists=True))
def check_cmd(engine: str | None, as_json: bool, path: str) -> None:
    """Load and validate a policy. Errors name the file, line and rule."""
    engine = engine or guess_engine(path)
    try:
        eng = create_engine(engine, path)
    except PolicyLoadError as exc:
        _fail(exc)  # with --json: {"ok": false, "error", "file", "line", "rule", ...} on stdout
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
