"""``agt identity``: create, show and list agent identities. A thin shell over :class:`agt.identity.IdentityStore`.

Register it on the main group with ``cli.add_command(identity)``. Exit code 1 on any identity error.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from agt.cli._common import _LazyConsole, escape
from agt.identity import Identity, IdentityError, IdentityStore
from agt.identity.store import ENV_VAR, DEFAULT_DIRECTORY

EXIT_ERROR = 1

# emoji=False: rich would otherwise render the ":key:" inside every "did:key:..." as an emoji. Piped or captured,
# the console is 200 wide, so a did stays on one line.
out = _LazyConsole(stderr=False, emoji=False)
err = _LazyConsole(stderr=True, emoji=False)


def _dir_option(fn: Any) -> Any:
    return click.option(
        "--dir", "directory", envvar=ENV_VAR, default=None, type=click.Path(file_okay=False),
        help=f"Identity directory (default {DEFAULT_DIRECTORY}) [env {ENV_VAR}].",
    )(fn)


def _fail(exc: IdentityError) -> NoReturn:
    from agt.cli._common import _fail as fail, json_mode

    if json_mode():
        fail(exc)  # the JSON error object on stdout
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    sys.exit(EXIT_ERROR)


def _record(store: IdentityStore, identity: Identity) -> dict[str, str]:
    return {**identity.to_dict(), "public_file": str(store.public_path(identity.agent_id)),
            "key_file": str(store.key_path(identity.agent_id))}


@click.group("identity")
def identity() -> None:
    """Agent identities: Ed25519 keys named by did:key.

    \b
    Examples:
      agt identity create planner
      agt identity show planner --json
      agt identity list
    """


@identity.command("create")
@click.argument("name")
@_dir_option
@click.option("--overwrite", is_flag=True, help="Replace an existing identity (its old signatures stop verifying).")
@click.option("--json", "as_json", is_flag=True, help="Print the new identity as JSON.")
def create_cmd(name: str, directory: str | None, overwrite: bool, as_json: bool) -> None:
    """Create the identity NAME: a new key pair, stored as NAME.json and NAME.key (mode 0600)."""
    store = IdentityStore(directory)
    try:
        keys = store.create(name, overwrite=overwrite)
    except IdentityError as exc:
        _fail(exc)
    record = _record(store, keys.identity)
    if as_json:
        click.echo(json.dumps(record, indent=2, sort_keys=True))
        return
    out.print(f"[green]created[/] [bold]{name}[/]  {keys.did}", highlight=False)
    out.print(f"  private key: {escape(record['key_file'])} (keep it secret)", highlight=False)


@identity.command("show")
@click.argument("name")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the identity as JSON.")
def show_cmd(name: str, directory: str | None, as_json: bool) -> None:
    """Show the public identity NAME (never the private key)."""
    store = IdentityStore(directory)
    try:
        ident = store.get(name)
    except IdentityError as exc:
        _fail(exc)
    record = _record(store, ident)
    if as_json:
        click.echo(json.dumps(record, indent=2, sort_keys=True))
        return
    for label, key in (("agent", "agent_id"), ("did", "did"), ("key type", "key_type"),
                       ("public key", "public_key"), ("key file", "key_file")):
        out.print(f"[bold]{label:>10}[/]  {escape(record[key])}", highlight=False)


@identity.command("list")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the identities as a JSON array.")
def list_cmd(directory: str | None, as_json: bool) -> None:
    """List the identities in the store."""
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

    store = IdentityStore(directory)
    try:
        identities = store.list()
    except IdentityError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in identities], indent=2, sort_keys=True))
        return
    if not identities:
        out.print(f"no identities in {escape(str(store.directory))}; create one with: agt identity create NAME", highlight=False)
        return
    table = Table(title=escape(f"{store.directory}: {len(identities)} identities"))
    table.add_column("agent")
    table.add_column("did", no_wrap=True)
    for i in identities:
        table.add_row(i.agent_id, i.did)
    out.print(table)
