"""The agt Rego library and the starter policies ship in the package (agt.resources), and the opa engine and
agt bundle build add the library to a policy that uses it but lacks it (agt.opa.library). Real opa throughout."""

import fnmatch
import io
import shutil
import tarfile
import tomllib
import warnings

import pytest

from agt import from_call
from agt.bundle import assemble_bundle
from agt.decision import Effect
from agt.engines import create_engine
from agt.opa.library import RegoLibrarySkew, plan_library, rego_sources
from agt import resources
from agt.resources import REGO_LIBRARY_FILES, rego_dir, rego_library_files, starter_policy

MINE = """package agt.policies.mine

import data.agt

deny["big-refund"] := "Refunds over 100 are blocked." if {
	input.action.tool == "refund"
	agt.greater(input.action.params.amount, 100)
}
"""

AUTHZ = """package authz

default allow := false

allow if input.action.tool == "read_file"
"""


@pytest.fixture
def mine(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "mine.rego").write_text(MINE)
    return d


def _own_copy(d, text_change=None):
    lib = d / "agt"
    lib.mkdir()
    for name in REGO_LIBRARY_FILES:
        text = (rego_dir() / name).read_text()
        if text_change and name.endswith("decision.rego"):
            text = text.replace(*text_change)
        (d / name).write_text(text)
    return lib


# --- where the shipped files are ---------------------------------------------------------------


def test_the_rego_dir_holds_the_library_and_the_starter_policy():
    assert {p.name for p in rego_library_files()} == {"decision.rego", "compare.rego", "batch.rego"}
    assert (rego_dir() / "agt" / "policies" / "starter.rego").is_file()


@pytest.mark.parametrize("engine,marker", [("yaml", "starter.yaml"), ("cedar", "starter.cedar"), ("opa", "agt/decision.rego")])
def test_every_engine_has_a_shipped_starter_policy(engine, marker):
    path = starter_policy(engine)
    assert (path if path.is_file() else path / marker).is_file()


@pytest.mark.parametrize("engine", ["yaml", "cedar"])
def test_the_shipped_yaml_and_cedar_starters_have_their_catalog(engine):
    path = starter_policy(engine)
    assert ((path if path.is_dir() else path.parent) / "catalog.yaml").is_file()


def test_an_installed_layout_is_preferred_over_the_checkout(tmp_path, monkeypatch):
    for sub, marker in (("rego", "agt/decision.rego"), ("cedar", "starter.cedar"), ("policies", "starter.yaml")):
        (tmp_path / "agt" / sub / marker).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "agt" / sub / marker).write_text("x")
    monkeypatch.setattr(resources, "_HERE", tmp_path / "agt")
    assert rego_dir() == tmp_path / "agt" / "rego"
    assert starter_policy("yaml") == tmp_path / "agt" / "policies" / "starter.yaml"


def test_package_data_covers_every_shipped_file(root):
    """What agt.resources reads must be in the wheel: pyproject maps each directory and lists its files."""
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    needed = {
        "agt.rego": [*REGO_LIBRARY_FILES, "agt/policies/starter.rego"],
        "agt.cedar": ["starter.cedar", "agt.cedarschema", "catalog.yaml"],
        "agt.policies": ["starter.yaml", "catalog.yaml"],
    }
    for package, files in needed.items():
        assert package in tool["packages"]
        source = root / tool["package-dir"][package]
        globs = tool["package-data"][package]
        for f in files:
            assert (source / f).is_file(), f
            assert any(fnmatch.fnmatch(f, g) for g in globs), f"{package}: {f} not in package-data"


# --- the plan ------------------------------------------------------------------------------------


def test_a_policy_without_the_library_gets_every_file(mine):
    plan = plan_library(rego_sources([mine]))
    assert plan.needed and plan.add == REGO_LIBRARY_FILES


def test_a_plain_package_needs_no_library(tmp_path):
    (tmp_path / "authz.rego").write_text(AUTHZ)
    plan = plan_library(rego_sources([tmp_path]))
    assert (plan.needed, plan.add) == (False, ())


def test_an_identical_own_copy_is_kept_without_skew(mine):
    _own_copy(mine)
    plan = plan_library(rego_sources([mine]))
    assert (plan.add, plan.skew, len(plan.own)) == ((), (), 3)


def test_a_differing_own_copy_is_version_skew(mine):
    _own_copy(mine, ("policy default is %s", "OWN COPY %s"))
    plan = plan_library(rego_sources([mine]))
    assert plan.add == () and [lib for lib, _ in plan.skew] == ["agt/decision.rego"]


def test_only_the_missing_library_file_is_added(mine):
    (mine / "agt").mkdir()
    shutil.copy(rego_dir() / "agt" / "decision.rego", mine / "agt" / "decision.rego")
    assert plan_library(rego_sources([mine])).add == ("agt/compare.rego", "agt/batch.rego")


# --- the opa engine (real opa) ------------------------------------------------------------------------


REFUND = from_call("refund", {"amount": 150.5})


def test_the_opa_engine_adds_the_library_to_a_policy_that_lacks_it(opa_binary, mine):
    engine = create_engine("opa", str(mine))
    try:
        d = engine.evaluate(REFUND)
    finally:
        engine.close()
    assert (d.effect, d.rule_ids) == (Effect.DENY, ("big-refund",))


def test_the_opa_engine_keeps_the_policys_own_copy_and_warns_on_skew(opa_binary, mine):
    _own_copy(mine, ("no rule matched; policy default is %s", "OWN COPY %s"))
    with pytest.warns(RegoLibrarySkew, match="decision.rego"):
        engine = create_engine("opa", str(mine))
    try:
        d = engine.evaluate(from_call("read_file", {"path": "/x"}))
    finally:
        engine.close()
    assert d.reasons[0].message == "OWN COPY deny"


def test_the_opa_engine_adds_nothing_with_rego_library_off(opa_binary, mine):
    (mine / "mine.rego").write_text(MINE.replace("import data.agt\n", "").replace(
        "agt.greater(input.action.params.amount, 100)", "input.action.params.amount > 100"))
    engine = create_engine("opa", str(mine), rego_library=False)
    try:
        d = engine.evaluate(REFUND)
    finally:
        engine.close()
    assert d.is_engine_error and "undefined" in d.reasons[0].message


def test_the_shipped_rego_dir_loads_without_skew(opa_binary):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegoLibrarySkew)
        engine = create_engine("opa", str(rego_dir()))
    try:
        assert engine.library.add == () and engine.library.skew == ()
    finally:
        engine.close()


# --- agt bundle build (real opa check) --------------------------------------------------------------


def _names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name.lstrip("/") for m in tar.getmembers()}


def test_a_bundle_of_a_policy_without_the_library_carries_it(opa_binary, mine):
    built = assemble_bundle([mine])
    assert {"mine.rego", *REGO_LIBRARY_FILES} <= _names(built.data)
    assert built.library.add == REGO_LIBRARY_FILES


def test_a_bundle_whose_roots_leave_agt_to_another_bundle_gets_no_library(opa_binary, tmp_path):
    (tmp_path / "p.rego").write_text("package agt.policies.mine\n\ndefault_action := \"allow\"\n")
    built = assemble_bundle([tmp_path], roots=["agt/policies/mine"])
    assert _names(built.data) == {"p.rego", ".manifest"}


def test_a_bundle_keeps_the_policys_own_copy(opa_binary, mine):
    _own_copy(mine, ("policy default is %s", "OWN COPY %s"))
    with pytest.warns(RegoLibrarySkew):
        built = assemble_bundle([mine])
    assert built.library.add == ()
    with tarfile.open(fileobj=io.BytesIO(built.data), mode="r:gz") as tar:
        assert b"OWN COPY" in tar.extractfile("/agt/decision.rego").read()


def test_bundle_build_cli_reports_the_added_library(opa_binary, mine, tmp_path):
    import json

    from click.testing import CliRunner

    from agt.cli import cli

    result = CliRunner().invoke(cli, ["bundle", "build", str(mine), "--out", str(tmp_path / "b.tar.gz"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rego_library"]["added"] == list(REGO_LIBRARY_FILES)
