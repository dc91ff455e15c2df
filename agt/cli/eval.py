"""``agt eval``: decide one action document, and with ``--explain`` say why."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import click

from agt import _json
from agt.action import Action
from agt.cli._common import (
    EXIT_CODES_HELP, _effect_text, _fail, _opa_options, err, escape, exit_code, guess_engine, opa_flags, out,
)
from agt.engines import create_engine
from agt.errors import ActionError, AgtError


@click.command("eval", epilog=EXIT_CODES_HELP)
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar", "opa"]), default=None, help="Engine; guessed from --policy when omitted.")
@click.option("--policy", "-p", "policy", type=click.Path(exists=True), default=None,
              help="Policy file or directory (default: the starter policy agt ships, for the engine chosen).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision (with --explain, the explanation) as JSON.")
@click.option("--explain", is_flag=True,
              help="Also show the normalized document the engine receives, every rule that matched, and the combining step.")
@click.argument("action_file", type=click.File("rb"), default="-")
@opa_flags
def eval_cmd(
    engine: str | None, policy: str | None, as_json: bool, explain: bool, action_file: Any,
    opa_url: str | None, opa_token: str | None, opa_timeout: float | None, opa_unix: bool, opa_container: bool,
    decision_path: str | None,
) -> None:
    """Decide one action document (a file, or - for stdin).

    \b
    Exit code: 0 allow, 3 deny, 4 require_approval, 5 engine error (a fail-closed deny),
    1 bad policy or action, 2 usage error.
    Examples:
      echo '{"agent":{"id":"a"},"action":{"tool":"send_email"}}' | agt eval
      agt eval -p policies/starter.yaml --explain action.json
      agt eval -e opa -p my-rego/ --decision-path data.authz.allow action.json
    """
    if policy is None:
        from agt.demo import default_policy

        engine = engine or "yaml"
        try:
            policy = default_policy(engine)
        except AgtError as exc:
            _fail(exc)
    engine = engine or guess_engine(policy)
    if decision_path and engine != "opa":
        raise click.UsageError("--decision-path names an OPA rule; use it with --engine opa")
    try:
        source = getattr(action_file, "name", "-")
        action = Action.from_json(action_file.read(), source="<stdin>" if source in ("-", "<stdin>") else str(source))
        options = _opa_options(opa_url, opa_token, opa_timeout, opa_unix, opa_container, decision_path) if engine == "opa" else {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            eng = create_engine(engine, policy, **options)
    except (ActionError, AgtError) as exc:
        _fail(exc)
    for w in caught:
        err.print(f"[yellow]warning:[/] {escape(str(w.message))}", highlight=False)
    try:
        if explain:
            from agt.explain import explain_engine

            explanation = explain_engine(eng, action)
            decision = explanation.decision
        else:
            decision = eng.evaluate(action)
    finally:
        eng.close()
    if explain:
        from agt.explain import Explanation

        whole = Explanation(action.document, (explanation,))
        if as_json:
            click.echo(_json.dumps(whole.to_dict(), indent=2, ensure_ascii=False))
        else:
            _print_explanation(whole)
    elif as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2))
    if not as_json:
        out.print(f"{_effect_text(decision)}  ({engine}, {decision.revision})")
        for r in decision.reasons:
            out.print(f"  • [bold]{escape(r.rule_id)}[/]: {escape(r.message)}", highlight=False)
        if decision.approvers:
            out.print(f"  approvers: {', '.join(decision.approvers)}")
        for n in decision.notes:
            out.print(f"  note [dim]{escape(n.rule_id)}[/]: {escape(n.message)}", highlight=False)
    sys.exit(exit_code(decision))


def _print_explanation(whole: Any) -> None:
    out.rule("[bold]the normalized action document[/] (what every engine starts from)")
    out.print_json(_json.dumps(whole.document, ensure_ascii=False))
    out.print(f"params_text: {json.dumps(whole.params_text, ensure_ascii=False)}", highlight=False, markup=False)
    for path, value in whole.decimals:
        out.print(f"decimal: {path} = {value} (exact: a JSON number with these digits for OPA, a Decimal for YAML, "
                  f'decimal("{value}") for Cedar where the catalog declares the param)', highlight=False, markup=False)
    for e in whole.engines:
        out.rule(f"[bold]{e.engine}[/] ({e.revision})")
        receives = dict(e.receives)
        if receives.get("document") is whole.document:
            out.print("receives: the document above (rules read its field paths)")
        elif receives.get("input") is whole.document:
            out.print(f"receives: {receives.get('query')} with input = the document above "
                      f"(decision path {receives.get('decision_path')})", highlight=False)
            lib = receives.get("rego_library")
            if lib and lib.get("added"):
                out.print(f"rego library: agt added {', '.join(lib['added'])} (the policy lacks them)", highlight=False)
        else:
            out.print("receives:")
            out.print_json(_json.dumps(receives, ensure_ascii=False))
        scope = "every rule that matched" if e.complete else "only the determining rules (this engine cannot tell more)"
        out.print(f"matched rules — {scope}:")
        if not e.rules:
            out.print("  (none)")
        for r in e.rules:
            mark = "[bold]determining[/]" if r.determining else "[dim]not determining[/]"
            who = f" → {', '.join(r.approvers)}" if r.approvers else ""
            out.print(f"  • [bold]{escape(r.rule_id)}[/]  {r.effect}{who}  {mark}  {escape(r.message)}", highlight=False)
        out.print(f"combining: {escape(e.combining)}", highlight=False)
