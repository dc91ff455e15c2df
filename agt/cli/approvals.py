"""``agt approvals``: list, show, and approve or deny requests with a signed vote."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from agt import _json
from agt.errors import AgtError
from agt.cli._common import EXIT_ERROR, _approvals, _fail, _registry, _state, db_option, err, json_option, keys_option, out, registry_option


@click.group("approvals")
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
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

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

    from agt.runtime._redis import redact

    table = Table(title=f"approval requests ({status}) in {redact(db)}")
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
@json_option("Accepted for uniformity: the request is always printed as JSON (errors too, with it).")
def approvals_show(db: str, keys_dir: str | None, registry_file: str | None, request_id: str, as_json: bool) -> None:
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
        sys.exit(EXIT_ERROR)  # stdout already holds the JSON document, with "tampered" set


def _vote(db: str, keys_dir: str | None, registry_file: str | None, request_id: str, approver: str, note: str,
          valid_for: float, approve: bool, as_json: bool = False) -> None:
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
    if as_json:
        click.echo(json.dumps({"id": req.id, "status": state.status.value, "approvals": len(state.approvals),
                               "quorum": req.quorum, "voted_by": approver, "approve": approve}, indent=2))
        return
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
        json_option("Print the request's status after the vote as JSON (errors too)."),
    )):
        fn = option(fn)
    return fn


@approvals_group.command("approve")
@_vote_options
def approvals_approve(db: str, keys_dir: str | None, registry_file: str | None, request_id: str, approver: str,
                      note: str, valid_for: float, as_json: bool) -> None:
    """Approve a request with a vote signed by your key; it is granted once its quorum of approvers agreed."""
    _vote(db, keys_dir, registry_file, request_id, approver, note, valid_for, True, as_json)


@approvals_group.command("deny")
@_vote_options
def approvals_deny(db: str, keys_dir: str | None, registry_file: str | None, request_id: str, approver: str,
                   note: str, valid_for: float, as_json: bool) -> None:
    """Deny a request with a vote signed by your key; one denial is final."""
    _vote(db, keys_dir, registry_file, request_id, approver, note, valid_for, False, as_json)


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
@json_option("Accepted for uniformity: the registry is JSON (errors too, with it).")
def approvals_registry(keys_dir: str | None, out_file: str | None, as_json: bool) -> None:
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
