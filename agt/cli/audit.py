"""``agt audit``: verify, prove, tail, query and export the tamper-evident log."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agt.errors import AgtError
from agt.cli._common import _fail, _open_audit_log, audit_writer_options, err, json_option, key_option, log_argument, out

if TYPE_CHECKING:
    from rich.table import Table


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: verify, prove, tail, query, export."""


@audit_group.command("verify")
@log_argument
@key_option
@click.option("--strict", is_flag=True, help="Also fail on missing coverage: no trusted --key, a deleted or moved "
              "checkpoint, checkpoints from before the chain, or more records after the last checkpoint than its "
              "checkpoint_every (a live writer's tail).")
@click.option("--witness", default=None, metavar="PATH|URL", help="A witness of the checkpoints (a file, or an "
              "`agt bundle serve` URL): each checkpoint it holds must be in the log, unchanged.")
@click.option("--witness-token", envvar="AGT_WITNESS_TOKEN", default=None, help="Bearer token of an HTTP witness [env AGT_WITNESS_TOKEN].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(log: str, key_path: str | None, strict: bool, witness: str | None, witness_token: str | None,
                 as_json: bool) -> None:
    """Check the hash chain and every signed checkpoint; name the first bad record. Exit 1 if any.

    \b
    Example:
      agt audit verify --log .agt/audit --key /etc/agt/audit.pub --strict --witness /mnt/witness/checkpoints.jsonl
    """
    from agt.audit import load_public_key, verify_log
    from agt.audit.verify import UNTRUSTED_KEY

    try:
        report = verify_log(log, load_public_key(key_path) if key_path else None, strict=strict, witness=witness,
                            witness_token=witness_token)
    except AgtError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for w in report.warnings:
            err.print(f"[{'bold red' if w == UNTRUSTED_KEY else 'yellow'}]warning:[/] {w}", highlight=False)
        if report.uncovered:
            first_seq, last_seq = report.uncovered
            err.print(f"[yellow]not covered by any checkpoint:[/] records {first_seq}..{last_seq}")
        if report.ok:
            out.print(f"[green]ok[/]: {report.records} records chained, {report.covered} covered by "
                      f"{report.checkpoints} signed checkpoints"
                      + (f", {report.witnessed} witnessed" if witness else "") + (" (strict)" if strict else ""))
        else:
            out.print(f"[bold red]tampered[/]: first bad record at {report.first_problem}", highlight=False)
            for p in report.problems[1:5]:
                out.print(f"  also: {p}", highlight=False)
    sys.exit(0 if report.ok else 1)


@audit_group.command("checkpoint")
@log_argument
@audit_writer_options
@json_option("Print the checkpoint as JSON (errors too).")
def audit_checkpoint(log: str, audit_key: str, audit_witness: str | None, witness_token: str | None, as_json: bool) -> None:
    """Sign the current tree head now (writers also do so every N records and when they close)."""
    with _open_audit_log(log, audit_key, audit_witness, witness_token) as writer:
        cp = writer.checkpoint()
        witness_error = writer.flush_witness() if audit_witness else None
    if witness_error:
        _fail(AgtError(f"checkpoint over {cp['size'] if cp else 0} records written, but not witnessed: {witness_error}"))
    if as_json:
        click.echo(json.dumps({"ok": True, "checkpoint": cp}, indent=2, ensure_ascii=False, default=str))
        return
    out.print(f"checkpoint over {cp['size'] if cp else 0} records")


@audit_group.command("prove")
@log_argument
@click.argument("decision_id")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None, help="Write the proof here (default: stdout).")
@json_option("Accepted for uniformity: the proof is JSON (errors too, with it).")
def audit_prove(log: str, decision_id: str, out_path: str | None, as_json: bool) -> None:
    """A Merkle inclusion proof that the record DECISION_ID is in the log, against a signed checkpoint."""
    from agt.audit import prove

    try:
        proof = prove(log, decision_id)
    except AgtError as exc:
        _fail(exc)
    text = json.dumps(proof, indent=2, ensure_ascii=False)
    if out_path:
        Path(out_path).write_text(text, "utf-8")
        out.print(f"proof for {decision_id} (leaf {proof['leaf_index']} of {proof['tree_size']}) written to {out_path}")
    else:
        click.echo(text)


@audit_group.command("verify-proof")
@click.argument("proof_file", type=click.File("r"))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), required=True, help="The checkpoint public key (PEM).")
@json_option("Print the result as JSON (errors too).")
def audit_verify_proof(proof_file: Any, key_path: str, as_json: bool) -> None:
    """Check an inclusion proof on its own: record hash, Merkle path and checkpoint signature."""
    from agt.audit import load_public_key, verify_proof

    try:
        proof = json.load(proof_file)
        verify_proof(proof, load_public_key(key_path))
    except (AgtError, ValueError, KeyError) as exc:
        _fail(exc, label="invalid proof")
    if as_json:
        click.echo(json.dumps({"ok": True, "decision_id": proof["decision_id"], "leaf_index": proof["leaf_index"],
                               "tree_size": proof["tree_size"], "signed_at": proof["checkpoint"]["time"]}, indent=2))
        return
    out.print(f"[green]valid[/]: {proof['decision_id']} is record {proof['leaf_index']} of the {proof['tree_size']} "
              f"signed at {proof['checkpoint']['time']}")


def _filters(fn: Any) -> Any:
    for opt in (
        click.option("--agent", default=None, help="Only this agent."),
        click.option("--effect", type=click.Choice(["allow", "deny", "require_approval"]), default=None),
        click.option("--rule", default=None, help="Only decisions this rule id determined."),
        click.option("--kind", type=click.Choice(["decision", "approval", "trust", "kill_switch"]), default=None),
        click.option("--since", default=None, help="RFC 3339 time, e.g. 2026-11-23T08:00:00Z."),
        click.option("--until", default=None, help="RFC 3339 time."),
    ):
        fn = opt(fn)
    return fn


def _records_table(recs: list[dict], title: str) -> Table:
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

    table = Table(title=title)
    for col in ("seq", "time", "agent", "kind", "gate", "effect", "reasons", "tool"):
        table.add_column(col)
    for r in recs:
        result = r.get("result") or {}
        effect = result.get("effect", "")
        style = {"allow": "green", "deny": "red", "require_approval": "yellow"}.get(effect, "")
        tool = ((r.get("input") or {}).get("action") or {}).get("tool", "")
        table.add_row(
            str(r.get("seq")), str(r.get("timestamp", ""))[:23], str(r.get("agent_id", "")), str(r.get("kind", "")),
            str(r.get("path", "")), f"[{style}]{effect}[/]" if style else effect,
            ", ".join(x.get("id", "") for x in result.get("reasons", []) if isinstance(x, dict)), str(tool),
        )
    return table


@audit_group.command("query")
@log_argument
@_filters
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one record each.")
@click.option("--limit", default=200, show_default=True, help="At most this many (newest last).")
def audit_query(log: str, agent: str | None, effect: str | None, rule: str | None, kind: str | None,
                since: str | None, until: str | None, as_json: bool, limit: int) -> None:
    """Records matching every filter given."""
    from agt.audit import select

    recs = select(log, agent=agent, effect=effect, rule=rule, kind=kind, since=since, until=until)[-limit:]
    if as_json:
        for r in recs:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    out.print(_records_table(recs, f"{len(recs)} records in {log}"))


@audit_group.command("tail")
@log_argument
@click.option("-n", "count", default=20, show_default=True, help="How many of the newest records.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records until interrupted.")
@json_option("JSON lines, one record each (errors as one JSON object).")
def audit_tail(log: str, count: int, follow: bool, as_json: bool) -> None:
    """The newest records."""
    import time as _time

    from agt.audit import select

    def show(batch: list[dict], title: str) -> None:
        if as_json:
            for r in batch:
                click.echo(json.dumps(r, ensure_ascii=False))
        else:
            out.print(_records_table(batch, title))

    try:
        recs = select(log)
    except AgtError as exc:
        _fail(exc)
    show(recs[-count:], f"last {min(count, len(recs))} of {len(recs)} records")
    seen = len(recs)
    while follow:
        _time.sleep(0.5)
        recs = select(log)
        if len(recs) > seen:
            show(recs[seen:], "new")
            seen = len(recs)


@audit_group.command("export")
@log_argument
@_filters
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), required=True, help="JSON lines file to write.")
@json_option("Print the summary as JSON (errors too).")
def audit_export(log: str, agent: str | None, effect: str | None, rule: str | None, kind: str | None,
                 since: str | None, until: str | None, out_path: str, as_json: bool) -> None:
    """Export matching records as JSON lines (readable by tools that read OPA decision logs)."""
    from agt.audit import select

    recs = select(log, agent=agent, effect=effect, rule=rule, kind=kind, since=since, until=until)
    with open(out_path, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if as_json:
        click.echo(json.dumps({"ok": True, "records": len(recs), "out": out_path}))
        return
    out.print(f"{len(recs)} records written to {out_path}")
