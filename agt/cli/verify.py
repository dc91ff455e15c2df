"""``agt verify``: check a deployment against the OWASP Agentic Top 10 mapping; write and check signed evidence.

A thin shell over :mod:`agt.verify`. Exit codes: 0 the report was printed (with ``--strict``: every risk is
covered, or accepted at the coverage agt can give) or the evidence checks out; 1 a policy, deployment file,
report or key cannot be loaded, the evidence does not check out, or ``--strict`` found a risk not covered;
2 usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from agt.cli._common import EXIT_ERROR, EXIT_USAGE, _fail, json_option

_STATUS_STYLE = {"covered": "green", "partly": "yellow", "not covered": "bold red"}
_FACT_MARK = {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]n/a[/]"}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


@click.command("verify")
@click.option("--policy", "-p", type=click.Path(), default=None, help="The deployment's policy file or directory.")
@click.option("--engine", "-e", type=click.Choice(["yaml", "cedar", "opa"]), default=None,
              help="Engine; guessed from the policy when omitted.")
@click.option("--config", "-c", "config", type=click.Path(dir_okay=False), default=None,
              help="A deployment file (YAML: policy, approvals, audit, identity, opa, output, mcp; docs/owasp.md). "
                   "Flags override it.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help="The tool catalog (default: the one beside the policy).")
@click.option("--mode", type=click.Choice(["strict", "permissive", "audit"]), default=None,
              help="The Governor's mode (default: the policy's own, else strict).")
@click.option("--state", default=None, metavar="URL", help="The runtime state URL (memory, sqlite:///path, redis://...).")
@click.option("--approvers", envvar="AGT_APPROVER_REGISTRY", type=click.Path(dir_okay=False), default=None,
              help="The approver registry file votes are verified with [env AGT_APPROVER_REGISTRY].")
@click.option("--approvals", "approvals_store", type=click.Path(dir_okay=False), default=None, help="The approvals store (SQLite).")
@click.option("--audit-log", type=click.Path(), default=None, help="The audit log (a directory of JSONL files, or a .db).")
@click.option("--audit-key", envvar="AGT_AUDIT_KEY", type=click.Path(dir_okay=False), default=None,
              help="The checkpoint signing key; --evidence is signed with it [env AGT_AUDIT_KEY].")
@click.option("--audit-public-key", type=click.Path(dir_okay=False), default=None,
              help="The trusted checkpoint public key, kept outside the log directory.")
@click.option("--audit-witness", default=None, metavar="PATH|URL", help="Where checkpoints are copied.")
@click.option("--require-identity", is_flag=True, default=None, help="The deployment requires signed action envelopes.")
@click.option("--require-delegation", is_flag=True, default=None, help="The deployment requires delegation chains.")
@click.option("--opa-url", default=None, help="The OPA the deployment uses (omitted: agt manages OPA).")
@click.option("--opa-token-file", type=click.Path(dir_okay=False), default=None, help="A file holding that OPA's bearer token.")
@click.option("--opa-unix-socket", is_flag=True, default=None, help="The managed OPA listens on a unix socket.")
@click.option("--output-policy", type=click.Path(), default=None, help="The output policy tool results are checked with.")
@click.option("--hide-denied", "mcp_hide_denied", is_flag=True, default=None,
              help="The deployment's `agt mcp proxy` runs with --hide-denied.")
@click.option("--junit", multiple=True, type=click.Path(dir_okay=False), metavar="REPORT.xml",
              help="Test results (pytest --junitxml); repeat for several reports. A control counts only when its tests passed.")
@click.option("--accept", multiple=True, metavar="ASI0N",
              help="A risk whose stated limit of agt's coverage you accept: --strict then passes it once every "
                   "control it has is effective. Repeatable.")
@click.option("--strict", is_flag=True, help="Exit 1 on any risk not covered (and not accepted). Needs --junit.")
@click.option("--evidence", type=click.Path(dir_okay=False), default=None,
              help="Write the evidence (JSON), signed with the audit checkpoint key.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False), default=None,
              help="Check an evidence file offline (with --key) instead of verifying a deployment.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), default=None,
              help="With --check: the trusted checkpoint public key (PEM). With --check, --policy also compares "
                   "the evidence's policy hashes with those files.")
@json_option("Print the result as JSON (errors too).")
def verify_cmd(config: str | None, junit: tuple[str, ...], accept: tuple[str, ...], strict: bool, evidence: str | None,
               check_path: str | None, key_path: str | None, as_json: bool, **flags: Any) -> None:
    """Check a deployment against the OWASP Agentic Top 10 (ASI01-ASI10): per risk, covered, partly or not covered.

    \b
    The facts are checked, not claimed: the policy is loaded and probed (a tool no rule mentions must be
    denied; a call over every budget must be denied), the approver registry loaded, the audit key's place and
    mode checked, the audit log verified, a self-run OPA probed for an open policy API.
    Examples:
      agt verify --config /etc/agt/agt.yaml
      pytest --junitxml=reports/tests.xml
      agt verify --config /etc/agt/agt.yaml --junit reports/tests.xml --evidence reports/owasp.json --strict --accept ASI06
      agt verify --check reports/owasp.json --key /etc/agt/audit.pub
    """
    if check_path is not None:
        _check(check_path, key_path, flags["policy"], as_json)
        return
    if key_path is not None:
        raise click.UsageError("--key goes with --check (the key that signs --evidence is --audit-key)")
    if strict and not junit:
        raise click.UsageError("--strict needs --junit: a control counts as covered only when its tests passed")
    import agt
    from agt.errors import AgtError
    from agt.verify import Deployment, load_deployment, verify_deployment, write_evidence
    from agt.verify.deployment import check

    try:
        base = load_deployment(config) if config else Deployment()
        given = {k: _path(v) if k in _PATH_FLAGS else v for k, v in flags.items()}
        check(Deployment().merged(given))  # the flags' own values, named as flags
        result = verify_deployment(base.merged(given), junit=junit, accepted=accept)
        doc = write_evidence(result, evidence, agt.__version__) if evidence else None
    except AgtError as exc:
        _fail(exc)
    except OSError as exc:  # a file the deployment names cannot be read
        _fail(AgtError(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)))
    except ValueError as exc:  # --accept naming no risk
        _fail(click.UsageError(str(exc)), EXIT_USAGE)
    assessment = result.assessment
    failures = assessment.strict_failures
    if as_json:
        click.echo(json.dumps(_report(result, evidence, doc, strict), indent=2, ensure_ascii=False))
    else:
        _print(result, evidence)
        if strict and failures:
            from agt.cli._common import err

            err.print(f"[bold red]strict:[/] not covered: {', '.join(r.id for r in failures)}", highlight=False)
    sys.exit(EXIT_ERROR if strict and failures else 0)


_PATH_FLAGS = {"policy", "catalog", "approvers", "approvals_store", "audit_log", "audit_key", "audit_public_key",
               "opa_token_file", "output_policy"}


def _report(result: Any, evidence: str | None, doc: Any, strict: bool) -> dict[str, Any]:
    a = result.assessment
    return {
        "ok": not (strict and a.strict_failures),
        "mapping": {"version": result.mapping.version, "sha256": result.mapping.sha256},
        "engine": result.engine, "revision": result.revision,
        "risks": [r.to_dict() for r in a.risks],
        "facts": [f.to_dict() for f in a.facts],
        "tests": None if a.tests is None else [t.to_dict() for t in a.tests],
        "summary": {**a.counts(), "strict_failures": [r.id for r in a.strict_failures]},
        "evidence": evidence if doc is not None else None,
    }


def _print(result: Any, evidence: str | None) -> None:
    from rich.table import Table

    from agt.cli._common import out

    a = result.assessment
    table = Table(title=f"{result.mapping.source.get('title', 'OWASP Agentic Top 10')}: {result.engine} "
                        f"{result.deployment.policy}", show_lines=True)
    for col in ("risk", "status", "reason"):
        table.add_column(col, overflow="fold")
    for r in a.risks:
        status = f"[{_STATUS_STYLE[r.status]}]{r.status}[/]" + (" [dim](accepted)[/]" if r.accepted else "")
        reasons = "\n".join(f"• {x}" for x in r.reasons) or "every control is effective"
        table.add_row(f"{r.id} {r.name}", status, reasons)
    out.print(table)
    facts = Table(title="deployment facts", show_header=True)
    for col in ("fact", "holds", "detail"):
        facts.add_column(col, overflow="fold")
    for f in a.facts:
        facts.add_row(f.id, _FACT_MARK[f.ok], f.detail)
    out.print(facts)
    counts = a.counts()
    if a.tests is None:
        tests = "tests: not checked (give --junit REPORT.xml)"
    else:
        by = {s: sum(t.status == s for t in a.tests) for s in ("passed", "failed", "skipped", "missing")}
        tests = "tests: " + ", ".join(f"{n} {s}" for s, n in by.items())
    out.print(f"{counts['covered']} covered, {counts['partly']} partly, {counts['not covered']} not covered; {tests}"
              + (f"; evidence signed into {evidence}" if evidence else ""), highlight=False)


def _check(path: str, key_path: str | None, policy: str | None, as_json: bool) -> None:
    if key_path is None:
        raise click.UsageError("--check needs --key: the trusted public key of the audit checkpoint key")
    from agt.audit import load_public_key
    from agt.errors import AgtError
    from agt.verify import EvidenceError, check_evidence, load_evidence
    from agt.verify.evidence import compare_policy

    try:
        key = load_public_key(key_path)
    except (AgtError, OSError, ValueError) as exc:
        _fail(AgtError(f"{key_path}: not an Ed25519 public key: {exc}"))
    try:
        checked = check_evidence(load_evidence(path), key, source=path)
    except AgtError as exc:
        _fail(exc)
    doc = checked.document
    if policy is not None:
        if not Path(policy).exists():
            _fail(EvidenceError(f"{policy}: no such file or directory", "--policy"))
        differences = compare_policy(doc, Path(policy))
        if differences:
            _fail(EvidenceError("the evidence is not about this policy: " + "; ".join(differences), "policy.files", path))
    summary = doc["summary"]
    if as_json:
        click.echo(json.dumps({"ok": True, "file": path, "created": doc["header"]["created"],
                               "mapping": doc["header"]["mapping"], "policy_matches": policy,
                               "summary": summary}, indent=2))
        return
    from agt.cli._common import out

    out.print(f"[green]ok[/]: {path} is signed by {key_path}, created {doc['header']['created']} (mapping "
              f"{doc['header']['mapping']['version']}): {summary['covered']} covered, {summary['partly']} partly, "
              f"{summary['not covered']} not covered" + (f"; the policy files match {policy}" if policy else ""),
              highlight=False)
