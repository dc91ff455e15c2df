"""``agt demo``: a scripted agent session through every engine."""

from __future__ import annotations

import json
import sys

import click

from agt.decision import Effect
from agt.errors import AgtError
from agt.cli._common import _effect_text, _fail, err, out


@click.command("demo")
@click.option("--engines", default=None, help="Comma-separated engines to compare (default: yaml,cedar, plus opa when installed).")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON lines.")
def demo_cmd(engines: str, as_json: bool) -> None:
    """Play a scripted agent session through the starter policy on every engine."""
    from rich.table import Table  # here, not at import: rich costs start-up (issue 14)

    from agt.demo import run_demo

    if engines is None:
        from agt.opa import OpaNotFound, find_opa

        names = ["yaml", "cedar"]
        try:
            find_opa()
            names.append("opa")
        except OpaNotFound as exc:
            err.print(f"[dim]opa not shown: {exc}[/]")
    else:
        names = [e.strip() for e in engines.split(",") if e.strip()]
    try:
        rows = run_demo(names)
    except AgtError as exc:
        _fail(exc)
    if as_json:
        for row in rows:
            click.echo(json.dumps({
                "step": row.step.label,
                "action": row.action.document,
                "decisions": {n: d.to_dict() for n, d in row.decisions.items()},
                "agree": row.agree,
            }, ensure_ascii=False))
        sys.exit(0 if all(r.agree for r in rows) else 1)
    table = Table(title="agt demo: one scripted session through the starter policy")
    table.add_column("#", justify="right", min_width=2)
    table.add_column("agent (trust)", no_wrap=True)
    table.add_column("tool", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("tokens/calls/files", justify="right", no_wrap=True)
    for n in names:
        table.add_column(n, no_wrap=True)
    table.add_column("reasons", no_wrap=True)
    table.add_column("=", no_wrap=True, min_width=1)
    for i, row in enumerate(rows, 1):
        a = row.action
        first = next(iter(row.decisions.values()))
        reasons = ", ".join(first.rule_ids)
        if first.approvers:
            reasons += f" → {', '.join(first.approvers)}"
        table.add_row(
            str(i),
            f"{a.agent.id} ({a.agent.trust_score})",
            a.action.tool,
            row.step.label,
            f"{a.context.tokens_used}/{a.context.tool_calls}/{a.context.files_changed}",
            *[_effect_text(row.decisions[n]) for n in names],
            reasons,
            "[green]✓[/]" if row.agree else "[bold red]✗[/]",
        )
    out.print(table)
    agree = sum(r.agree for r in rows)
    counts = {e: sum(1 for r in rows if next(iter(r.decisions.values())).effect is e) for e in Effect}
    out.print(
        f"{len(rows)} calls: [green]{counts[Effect.ALLOW]} allowed[/], [red]{counts[Effect.DENY]} denied[/], "
        f"[yellow]{counts[Effect.REQUIRE_APPROVAL]} need approval[/]; engines agree on {agree}/{len(rows)}"
    )
    out.print("[dim]tokens/calls/files count the task so far, including this call; = means every engine agreed on effect and reasons[/]")
    if agree != len(rows):
        sys.exit(1)
