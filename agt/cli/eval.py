"""``agt eval``: decide one action document."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from agt.action import Action
from agt.engines import create_engine
from agt.errors import ActionError, AgtError
from agt.cli._common import EXIT_BY_EFFECT, _effect_text, _fail, _opa_options, guess_engine, opa_flags, out


@click.command("eval")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar", "opa"]), default=None, help="Engine; guessed from --policy when omitted.")
@click.option("--policy", "-p", "policy", type=click.Path(exists=True), default=None, help="Policy file or directory (default: the starter policy).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.argument("action_file", type=click.File("rb"), default="-")
@opa_flags
def eval_cmd(
    engine: str | None, policy: str | None, as_json: bool, action_file: Any,
    opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool,
) -> None:
    """Decide one action document (a file, or - for stdin).

    \b
    Exit code: 0 allow, 3 deny, 4 require_approval, 1 bad policy or action.
    Example:
      echo '{"agent":{"id":"a"},"action":{"tool":"send_email"}}' | agt eval -p policies/starter.yaml
    """
    if policy is None:
        from agt.demo import default_policy

        engine = engine or "yaml"
        policy = default_policy(engine)
    engine = engine or guess_engine(policy)
    try:
        source = getattr(action_file, "name", "-")
        action = Action.from_json(action_file.read(), source="<stdin>" if source in ("-", "<stdin>") else str(source))
        options = _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container) if engine == "opa" else {}
        eng = create_engine(engine, policy, **options)
    except (ActionError, AgtError) as exc:
        _fail(exc)
    try:
        decision = eng.evaluate(action)
    finally:
        eng.close()
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        out.print(f"{_effect_text(decision)}  ({engine}, {decision.revision})")
        for r in decision.reasons:
            out.print(f"  • [bold]{r.rule_id}[/]: {r.message}", highlight=False)
        if decision.approvers:
            out.print(f"  approvers: {', '.join(decision.approvers)}")
        for n in decision.notes:
            out.print(f"  note [dim]{n.rule_id}[/]: {n.message}", highlight=False)
    sys.exit(EXIT_BY_EFFECT[decision.effect])
