"""``agt compile``: a YAML policy into its Rego and Cedar twins (agt.compile)."""

from __future__ import annotations

import json
import sys

import click

from agt.cli._common import EXIT_ERROR, _fail, err, out


@click.command("compile")
@click.argument("policy", type=click.Path(exists=True))
@click.option("--to", "targets", default="rego,cedar", show_default=True, metavar="TARGETS",
              help="Comma-separated targets: rego, cedar.")
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory: writes OUT/rego/ and OUT/cedar/, each with an agt-compile.manifest.")
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Tool catalog (default: catalog.yaml beside the policy); types the params Cedar sees.")
@click.option("--package", default=None, help="Rego package (default: agt.policies.<policy name>).")
@click.option("--strict", is_flag=True, help="A rule a target cannot express is an error (exit 1), not a warning.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (errors too).")
def compile_cmd(policy: str, targets: str, out_dir: str, catalog: str | None, package: str | None, strict: bool,
                as_json: bool) -> None:
    """Compile a YAML policy into Rego for the agt library and Cedar for agt's schema.

    The twins keep the rule ids, messages, approvers and critical marks, and the policy's conflict strategy. The
    generated Rego is formatted by `opa fmt` and passes `opa check --strict` with the agt library; the generated
    Cedar is formatted by Cedar's formatter and validates against agt's schema.

    A rule a target cannot express (a regex in Cedar, a param the catalog does not declare, ...) is left out of
    that target, reported here with its file:line, and listed in the target's agt-compile.manifest; a
    conformance suite that names the compiled directory marks every case the rule decides as not portable to
    that engine. Nothing is written weaker than the YAML.

    \b
    Exit codes: 0 compiled (warnings aside), 1 error (or, with --strict, a rule not portable).

    \b
    Examples:
      agt compile policies/starter.yaml --out build/
      agt compile my-policy.yaml --to rego --out build/ --json
      agt conformance run my-suite.yaml          # a suite whose cedar/opa paths are build/cedar, build/rego
    """
    from agt.compile import compile_policy
    from agt.errors import AgtError

    wanted = tuple(t.strip() for t in targets.split(",") if t.strip())
    try:
        result = compile_policy(policy, out_dir, wanted, catalog=catalog, package=package)
    except AgtError as exc:
        _fail(exc)
    failed = strict and bool(result.not_portable)
    if as_json:
        doc = result.to_dict()
        doc["ok"] = not failed
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        sys.exit(EXIT_ERROR if failed else 0)
    for n in result.not_portable:
        label = "[bold red]error:[/]" if strict else "[yellow]warning:[/]"
        err.print(f"{n.where}: {label} rule {n.rule!r} is not portable to {n.engine} ({n.construct}): {n.reason}; left out "
                  "of that target and listed in its agt-compile.manifest", highlight=False)
    for s in result.skipped:
        err.print(f"[dim]{s['file']}:{s['line']}: rule {s['rule']!r} not written: {s['why']}[/]", highlight=False)
    for target, files in result.files.items():
        out.print(f"{target}: " + ", ".join(str(f) for f in files), highlight=False)
    out.print(f"{len(result.rules)} rules, strategy {result.strategy}; {len(result.not_portable)} not portable", highlight=False)
    if failed:
        sys.exit(EXIT_ERROR)
