"""agt check for Cedar: unknown annotations warn (error with --strict); validation errors are all shown, named by
@id and pointed at their span (agt.authoring.check, agt.engines.cedar_diagnostics)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from agt.authoring.check import check_policy
from agt.cli import cli
from agt.engines.cedar_diagnostics import statements

TYPO_ANNOTATION = """\
@id("secret-approval")
@aproval
@message("Secret-store access needs approval.")
forbid (principal, action, resource)
when { context.tool == "read_secret" };
"""

BAD = """\
// a comment; with a semicolon
@id("ok")
permit (principal, action, resource);

@id("budget")
forbid (principal, action, resource)
when { context.token_used > 100 };

@id("trust")
forbid (principal, action, resource)
when { principal.trust < 10 };
"""


def _file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.cedar"
    p.write_text(text)
    return p


def test_an_unknown_annotation_is_a_warning_at_its_line_naming_the_rule(tmp_path):
    result = check_policy(_file(tmp_path, TYPO_ANNOTATION))
    assert result.ok
    [w] = result.warnings
    assert (w.line, w.column, w.rule) == (2, 1, "secret-approval")
    assert "@aproval" in w.message and "did you mean @approval?" in w.message


def test_strict_makes_an_unknown_annotation_an_error(tmp_path):
    result = check_policy(_file(tmp_path, TYPO_ANNOTATION), strict=True)
    assert not result.ok and result.errors[0].code == "unknown_annotation"


def test_the_annotations_agt_reads_give_no_warning(root):
    assert check_policy(root / "cedar", strict=True).diagnostics == ()


def test_every_validation_error_is_shown_not_the_first_and_a_count(tmp_path):
    result = check_policy(_file(tmp_path, BAD))
    assert [d.rule for d in result.errors] == ["budget", "trust"]


def test_validation_errors_name_the_rule_by_id_not_the_positional_policy_id(tmp_path):
    result = check_policy(_file(tmp_path, BAD))
    assert not any("policy" in (d.rule or "") or "policy1" in d.message for d in result.errors)


def test_validation_errors_point_at_the_failing_attribute(tmp_path):
    budget, trust = check_policy(_file(tmp_path, BAD)).errors
    assert (budget.line, budget.column) == (7, 16) and "token_used" in budget.message
    assert (trust.line, trust.column) == (11, 18) and "trust" in trust.message


def test_one_error_repeated_per_cedar_action_is_one_finding_listing_the_actions(tmp_path):
    budget = check_policy(_file(tmp_path, BAD)).errors[0]
    assert "for actions delegate, delete, execute, message, network, read, write" in budget.message


def test_statements_skip_semicolons_in_comments_and_strings():
    text = '// a; b\n@id("x;y")\npermit (principal, action, resource);\n@id("z") forbid (principal, action, resource);\n'
    assert [text[s.start:s.start + 9] for s in statements(text)] == ['@id("x;y"', '@id("z") ']


def test_the_engine_load_error_lists_every_error(tmp_path):
    from agt.engines import create_engine
    from agt.errors import PolicyLoadError

    try:
        create_engine("cedar", str(_file(tmp_path, BAD)))
    except PolicyLoadError as exc:
        assert "more" not in exc.message.split("\n")[0] and "rule 'trust'" in exc.message
        assert len(exc.diagnostics) == 2
    else:
        raise AssertionError("the policy loaded")


def test_cli_check_cedar_prints_every_error_and_the_warning(tmp_path):
    bad = BAD.replace('@id("trust")', '@id("trust")\n@critcal')
    result = CliRunner().invoke(cli, ["check", str(_file(tmp_path, bad))])
    assert result.exit_code == 1
    assert "warning: rule 'trust': unknown annotation @critcal; did you mean @critical?" in result.output
    assert "error: rule 'budget'" in result.output and "error: rule 'trust'" in result.output
    assert "(and" not in result.output


def test_cli_check_cedar_json_has_errors_and_warnings(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--json", str(_file(tmp_path, TYPO_ANNOTATION))])
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["ok"] and data["warnings"][0]["code"] == "unknown_annotation"


def test_a_runtime_cedar_error_names_the_rule_by_id(tmp_path):
    from agt.action import Action
    from agt.engines import create_engine

    p = _file(tmp_path, '@id("overflow-rule")\nforbid (principal, action, resource)\n'
                        'when { context.tokens_used + 9223372036854775807 > 0 };\n')
    engine = create_engine("cedar", str(p))
    decision = engine.evaluate(Action.from_dict({"agent": {"id": "a"}, "action": {"tool": "x", "kind": "read"},
                                                 "context": {"tokens_used": 5}}))
    assert decision.is_engine_error
    assert "rule `overflow-rule`" in decision.reasons[0].message and "policy0" not in decision.reasons[0].message


def test_validation_errors_of_every_file_in_a_directory_are_shown(tmp_path):
    (tmp_path / "a.cedar").write_text('@id("a")\nforbid (principal, action, resource) when { context.nope > 1 };\n')
    (tmp_path / "b.cedar").write_text('@id("b")\nforbid (principal, action, resource) when { context.nada > 1 };\n')
    result = check_policy(tmp_path, "cedar")
    assert [(Path(d.file).name, d.rule) for d in result.errors] == [("a.cedar", "a"), ("b.cedar", "b")]
