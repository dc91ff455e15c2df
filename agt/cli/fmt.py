"""``agt fmt``: format Cedar (cedarpy's formatter) and Rego (``opa fmt``) policy files; YAML is left alone."""

from __future__ import annotations

import json
import sys

import click

from agt.cli._common import err, out

EXIT_OK, EXIT_ERROR, EXIT_WOULD_CHANGE_FAIL = 0, 1, 2
EXIT_WOULD_CHANGE_CHECK = 1


@click.command("fmt")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--check", is_flag=True, help="Write nothing; list the files that would change and exit 1 if any would.")
@click.option("--diff", "-d", "show_diff", is_flag=True, help="Print a unified diff of the changes instead of the formatted text.")
@click.option("--list", "-l", "list_only", is_flag=True, help="Only list the files that would change (as opa fmt -l).")
@click.option("--write", "-w", is_flag=True, help="Overwrite the files with their formatted text.")
@click.option("--fail", is_flag=True, help="Exit 2 when a file would change (as opa fmt --fail).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run: every file, changed or not.")
def fmt_cmd(paths: tuple[str, ...], check: bool, show_diff: bool, list_only: bool, write: bool, fail: bool, as_json: bool) -> None:
    """Format policy files: .cedar through Cedar's formatter (cedarpy), .rego through `opa fmt`.

    PATH is a file or a directory (searched recursively). YAML policies are left as written: their comments,
    key order and style are the author's. Formatting never changes a policy's meaning: the result is parsed
    again and compared.

    \b
    Without --write, --list, --diff or --check the formatted text goes to stdout, as `opa fmt` does.

    \b
    Exit codes:
      0  done (nothing would change, or the files were written)
      1  --check: a file would change; or a file could not be formatted (does not parse)
      2  --fail: a file would change (as opa fmt --fail)

    \b
    Examples:
      agt fmt --check cedar/ rego/       # CI: fail when a file is not formatted
      agt fmt -w cedar/starter.cedar     # format in place
      agt fmt --diff rego/
    """
    from agt.authoring.fmt import FormatError, format_paths

    try:
        results = format_paths(paths)
    except FormatError as exc:
        _error(str(exc), as_json)
        sys.exit(EXIT_ERROR)
    changed = [r for r in results if r.changed]
    errors = [r for r in results if r.error]
    if write and not check:
        for r in changed:
            r.write()
    if as_json:
        click.echo(json.dumps({
            "files": [r.to_dict() for r in results], "changed": [r.path for r in changed],
            "written": bool(write and not check), "errors": [r.error for r in errors],
        }, indent=2))
    else:
        for r in results:
            if r.error:
                err.print(f"[bold red]error:[/] {r.error}", highlight=False)
            elif r.note and not (check or list_only):
                err.print(f"[dim]{r.path}: left alone ({r.note})[/]", highlight=False)
        if list_only or check:
            for r in changed:
                click.echo(r.path if list_only else f"would reformat {r.path}")
        if show_diff:
            for r in changed:
                click.echo(r.diff(), nl=False)
        elif write and not check:
            for r in changed:
                out.print(f"formatted {r.path}", highlight=False)
        elif not (list_only or check):
            for r in results:
                if r.formatted is not None:
                    click.echo(r.formatted, nl=False)
        if check and not changed and not errors:
            out.print(f"[green]{len(results)} file(s) already formatted[/]", highlight=False)
    if errors:
        sys.exit(EXIT_ERROR)
    if changed and check:
        sys.exit(EXIT_WOULD_CHANGE_CHECK)
    if changed and fail:
        sys.exit(EXIT_WOULD_CHANGE_FAIL)
    sys.exit(EXIT_OK)


def _error(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"files": [], "changed": [], "errors": [message]}))
    else:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
