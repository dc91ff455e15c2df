"""``agt check``: validate a policy for any engine, with locations."""

from __future__ import annotations

import json
import sys

import click

from agt.cli._common import EXIT_ERROR, _fail, err, out


@click.command("check")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar", "opa", "rego"]), default=None,
              help="Engine (rego is opa); guessed from PATH when omitted: .cedar, .rego or .yaml files.")
@click.option("--strict", is_flag=True, help="Warnings are errors (Cedar: an annotation agt does not read).")
@click.option("--data", "-d", "data", multiple=True, type=click.Path(exists=True),
              help="Rego only: more Rego or data paths to load with the policy (the agt library, say); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.argument("path", type=click.Path(exists=True))
def check_cmd(engine: str | None, strict: bool, data: tuple[str, ...], as_json: bool, path: str) -> None:
    """Load and validate a policy. Every finding names the file, line and rule.

    \b
    yaml   the YAML engine's loader
    cedar  schema validation against agt's schema (every error, named by @id, at its span);
           an annotation agt does not read (@aproval) is a warning, an error with --strict
    rego   opa check --strict with agt's action JSON Schema as the input schema, so a misspelt
           field (input.context.token_used) is a type error at file:line

    \b
    Exit codes: 0 the policy is valid (warnings aside), 1 it is not.

    \b
    Examples:
      agt check cedar/
      agt check --strict cedar/starter.cedar
      agt check rego/ --json
      agt check -e rego my-policy/ --data rego/agt
    """
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

    from agt.authoring.check import check_policy
    from agt.errors import AgtError

    try:
        result = check_policy(path, engine, strict=strict, data=data)
    except AgtError as exc:
        _fail(exc)  # with --json: {"ok": false, "error", "file", "line", "rule", ...} on stdout
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        sys.exit(0 if result.ok else EXIT_ERROR)
    for d in result.diagnostics:
        style = "bold red" if d.severity == "error" else "yellow"
        where = d.location()
        rule = f"rule {d.rule!r}: " if d.rule else ""
        err.print(f"{where + ': ' if where else ''}[{style}]{d.severity}:[/] {rule}{d.message}", highlight=False)
    if not result.ok:
        err.print(f"[bold red]{len(result.errors)} error(s)[/]" + (f", {len(result.warnings)} warning(s)" if result.warnings else ""),
                  highlight=False)
        sys.exit(EXIT_ERROR)
    revision = f", {result.revision}" if result.revision else ""
    table = Table(title=f"{path}: {len(result.rules)} rules ({result.engine}{revision})")
    for col in ("rule id", "action", "approvers", "message"):
        table.add_column(col)
    for r in result.rules:
        table.add_row(r["id"], r["action"], ", ".join(r["approvers"]), r["message"])
    out.print(table)
    out.print("[green]ok[/]" + (f" ({len(result.warnings)} warning(s))" if result.warnings else ""))
