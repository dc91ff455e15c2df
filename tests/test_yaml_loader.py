"""agt._yaml: the bounded safe loader for user-written YAML (policies, suites, bundle data)."""

from __future__ import annotations

import pytest
import yaml

from agt import _yaml
from agt.bundle.build import BundleError, bundle_files


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_shared_anchors_within_the_bound_load_as_usual():
    assert _yaml.safe_load("base: &b {x: 1}\nfirst: *b\nsecond: {<<: *b, y: 2}\n") == {
        "base": {"x": 1}, "first": {"x": 1}, "second": {"x": 1, "y": 2},
    }


def test_alias_bomb_is_refused_with_the_line_that_passes_the_bound():
    with pytest.raises(_yaml.YamlBombError, match="expands to more than") as info:
        _yaml.safe_load(_bomb(6))
    assert info.value.problem_mark.line + 1 == 5  # a4 expands to 100,000+ nodes


def test_alias_bomb_error_is_a_marked_yaml_error_for_existing_handlers():
    with pytest.raises(yaml.MarkedYAMLError):
        _yaml.safe_load(_bomb(6))


def test_recursive_alias_is_refused():
    with pytest.raises(_yaml.YamlBombError, match="recursive alias"):
        _yaml.safe_load("a: &a [1, *a]\n")


def test_nesting_past_the_bound_is_refused_without_a_recursion_error():
    with pytest.raises(_yaml.YamlBombError, match="nests deeper than 64"):
        _yaml.safe_load("[" * 5000 + "]" * 5000)


def test_nesting_built_from_aliases_is_measured_expanded():
    lines = ["d0: &d0 [" * 1 + "x" + "]"] + [f"d{i}: &d{i} [*d{i - 1}]" for i in range(1, 70)]
    with pytest.raises(_yaml.YamlBombError, match="nests deeper than 64"):
        _yaml.safe_load("\n".join(lines) + "\n")


def test_bundle_data_yaml_bomb_is_a_bundle_error(tmp_path):
    (tmp_path / "p.rego").write_text("package x\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.yaml").write_text(_bomb(7))
    with pytest.raises(BundleError, match="not valid YAML"):
        bundle_files([tmp_path / "p.rego"], data)
