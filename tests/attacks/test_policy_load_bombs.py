"""Attacks through policy input: files that used to hang the loader for minutes, overflow the stack, crash
the process, or load into rules that backtrack for seconds per decision. Each is refused at load with a
PolicyLoadError naming the file (and the line or the rule), and quickly: no bound below is ever close."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agt.action import from_call
from agt.conformance.suite import SuiteError, load_suite
from agt.engines.yaml import YamlEngine
from agt.engines.yaml_policy import load_policy
from agt.errors import AgtError, PolicyLoadError
from agt.runtime import Governor
from agt.runtime.state import RateLimit

HEADER = "apiVersion: governance.toolkit/v1\nname: attack\ndefault_action: allow\n"


def _alias_bomb(levels: int = 7, fan_out: int = 9) -> str:
    """A 'billion laughs': each anchor is a list of `fan_out` aliases to the one before."""
    lines = ["metadata:", "  l0: &a0 [\"tool_name == 'x'\", \"tool_name == 'x'\", \"tool_name == 'x'\"]"]
    lines += [f"  l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan_out) + "]" for i in range(1, levels)]
    lines += ["rules:", "  - name: bomb", "    action: deny", f"    condition: *a{levels - 1}"]
    return HEADER + "\n".join(lines) + "\n"


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _rule(condition_yaml: str) -> str:
    return HEADER + "rules:\n  - name: deep\n    action: deny\n    condition: " + condition_yaml + "\n"


def test_yaml_alias_bomb_is_refused_naming_the_file_and_line(tmp_path):
    path = _policy(tmp_path, _alias_bomb())
    assert len(path.read_bytes()) < 700
    with pytest.raises(PolicyLoadError, match="aliases count as copies") as info:
        load_policy(path)
    assert (info.value.file, info.value.line is not None) == (str(path), True)


def test_yaml_recursive_alias_is_refused(tmp_path):
    with pytest.raises(PolicyLoadError, match="recursive alias"):
        load_policy(_policy(tmp_path, _rule("&loop [*loop]")))


def test_yaml_nested_2000_levels_is_refused_with_its_line(tmp_path):
    with pytest.raises(PolicyLoadError, match="nests deeper than") as info:
        load_policy(_policy(tmp_path, _rule("[" * 2000 + "'x'" + "]" * 2000)))
    assert info.value.line == 7  # the condition's line


def test_condition_with_2000_parentheses_is_refused_naming_the_rule(tmp_path):
    with pytest.raises(PolicyLoadError, match="nests deeper than") as info:
        load_policy(_policy(tmp_path, _rule('"' + "(" * 2000 + "tool_name == 'x'" + ")" * 2000 + '"')))
    assert info.value.rule == "deep"


def test_condition_with_2000_nots_is_refused_naming_the_rule(tmp_path):
    with pytest.raises(PolicyLoadError, match="nests deeper than") as info:
        load_policy(_policy(tmp_path, _rule('"' + "not " * 2000 + "tool_name == 'x'" + '"')))
    assert info.value.rule == "deep"


def test_conformance_suite_alias_bomb_is_a_suite_error(tmp_path):
    lines = ["suite: bomb", "policies: {yaml: p.yaml}", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 8)]
    lines += ["cases: *a7"]
    path = tmp_path / "suite.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SuiteError, match="aliases count as copies"):
        load_suite(path)


@pytest.mark.parametrize("pattern", ["^(a|aa)+$", "(x+x+)+y", "^(\\w+\\s?)*$"])
def test_catastrophic_backtracking_pattern_decides_in_linear_time(tmp_path, pattern):
    # With Python's backtracking `re`, '^(a|aa)+$' took about a second at 31 characters and doubles
    # with each one more: 60 characters would take years. RE2 answers at once; no timing is asserted,
    # the test simply could not finish otherwise.
    policy = _policy(tmp_path, HEADER + "rules:\n  - name: redos\n    action: deny\n"
                     f"    condition: {{field: params.text, operator: matches, value: {pattern!r}}}\n")
    attack = "a" * 60 + "!" if "a|aa" in pattern else ("x" * 60 if "x+x+" in pattern else "word " * 30 + "!")
    decision = YamlEngine(policy).evaluate(from_call("read_doc", {"text": attack}))
    assert decision.rule_ids == ("default",)


@pytest.mark.parametrize(("pattern", "what"), [
    ("(a)\\1", "backreference"), ("(?=a)b", "lookahead"), ("(?<!a)b", "lookbehind"), ("a++", "possessive"),
])
def test_pattern_re2_cannot_run_is_refused_naming_the_rule(tmp_path, pattern, what):
    policy = _policy(tmp_path, HEADER + f"rules:\n  - name: needs-{what}\n    action: deny\n"
                     f"    condition: {{field: params.text, operator: matches, value: '{pattern}'}}\n")
    with pytest.raises(PolicyLoadError, match="RE2") as info:
        load_policy(policy)
    assert info.value.rule == f"needs-{what}"


@pytest.mark.parametrize("limit", ["2/0s", "0/minute"])
def test_rate_limit_that_limits_nothing_is_refused_at_construction(limit):
    with pytest.raises(AgtError, match="rate limit"):
        Governor("yaml", str(Path(__file__).resolve().parents[2] / "policies" / "starter.yaml"),
                 rate_limits={"tool:*": limit})


def test_zero_window_rate_limit_is_never_unlimited():
    with pytest.raises(AgtError):
        RateLimit.parse("1000000/0s")


CEDAR_CRASHERS = {
    "brackets": "[" * 800 + "]" * 800 + ".isEmpty()",
    "records": "{a: " * 800 + "1" + "}" * 800 + " == {}",
    "and-chain": " && ".join(["true"] * 100_000),
}


@pytest.mark.parametrize("shape", sorted(CEDAR_CRASHERS))
def test_deep_cedar_policy_is_refused_not_a_crash(tmp_path, shape):
    # Before the guard, cedarpy's native parser overflowed its stack: a segmentation fault killed the
    # process. Run the load in a child so a crash fails this test instead of the whole suite.
    (tmp_path / "deep.cedar").write_text(
        '@id("deep")\nforbid (principal, action, resource) when { ' + CEDAR_CRASHERS[shape] + " };\n")
    code = ("import sys\nfrom agt.engines.cedar import CedarEngine\nfrom agt.errors import PolicyLoadError\n"
            "try:\n    CedarEngine(sys.argv[1])\nexcept PolicyLoadError as exc:\n    print(exc)\n    sys.exit(3)\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert (run.returncode, str(tmp_path / "deep.cedar") in run.stdout) == (3, True), run.stderr[-2000:]
