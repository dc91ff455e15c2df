"""agt.catalog: the tool catalog, its loading errors, its type check, and the same check in every engine."""

from __future__ import annotations

import os
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import agt
from agt.action import from_call
from agt.catalog import CATALOG_FILE, Catalog, CatalogError, ParamType, find_catalog, load_catalog, resolve_catalog
from agt.decision import ENGINE_ERROR_ID, Effect
from agt.errors import ActionError, PolicyLoadError
from agt.runtime.governor import Governor

ROOT = Path(__file__).resolve().parents[1]
MONEY = ROOT / "conformance" / "policies" / "money"

REFUND = {"tools": {"refund": {"params": {"amount": "decimal", "order_id": {"type": "string", "required": True}}}}}


def write(directory: Path, text: str, name: str = CATALOG_FILE) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_catalog(write(tmp_path, text))
    return info.value


def check_error(catalog: Catalog, tool: str, params: dict) -> ActionError:
    with pytest.raises(ActionError) as info:
        catalog.check(from_call(tool, params))
    return info.value


# --- loading -------------------------------------------------------------------------------------


def test_shipped_example_catalog_loads_with_types_and_lines():
    catalog = load_catalog(MONEY / CATALOG_FILE)
    amount = catalog.params_of("refund")["amount"]
    assert (amount.type, amount.required, amount.line) == (ParamType.DECIMAL, True, 6)


def test_short_and_long_param_forms_mean_the_same_type():
    catalog = Catalog.from_dict({"tools": {"t": {"params": {"a": "long", "b": {"type": "long"}}}}})
    assert {p.type for p in catalog.params_of("t").values()} == {ParamType.LONG}


def test_every_type_name_is_accepted():
    names = ["string", "long", "decimal", "bool", "set<string>"]
    catalog = Catalog.from_dict({"tools": {"t": {"params": {f"p{i}": n for i, n in enumerate(names)}}}})
    assert [p.type.value for p in catalog.params_of("t").values()] == names


def test_unknown_type_names_file_line_and_field(tmp_path):
    err = load_error(tmp_path, """\
        tools:
          refund:
            params:
              amount: float
        """)
    assert (err.file, err.line) == (str(tmp_path / CATALOG_FILE), 4)
    assert "tools.refund.params.amount" in err.message and "unknown type 'float'" in err.message and "decimal" in err.message


def test_unknown_key_in_a_tool_names_its_line(tmp_path):
    err = load_error(tmp_path, """\
        tools:
          refund:
            parms: {amount: decimal}
        """)
    assert err.line == 3 and "unknown key 'parms'" in err.message


def test_unknown_key_in_a_param_is_an_error(tmp_path):
    err = load_error(tmp_path, "tools: {refund: {params: {amount: {type: decimal, optional: true}}}}\n")
    assert "unknown key 'optional'" in err.message


def test_required_must_be_a_boolean(tmp_path):
    err = load_error(tmp_path, "tools: {refund: {params: {amount: {type: decimal, required: yes please}}}}\n")
    assert "'required' must be true or false" in err.message


def test_same_param_name_with_two_types_is_an_error_naming_both_tools(tmp_path):
    err = load_error(tmp_path, """\
        tools:
          refund: {params: {amount: decimal}}
          charge: {params: {amount: long}}
        """)
    assert err.line == 3 and "'refund'" in err.message and "one type across tools" in err.message


def test_catalog_without_tools_is_an_error(tmp_path):
    assert "a 'tools' mapping" in load_error(tmp_path, "refund: {params: {amount: decimal}}\n").message


def test_param_name_with_a_quote_is_an_error(tmp_path):
    assert "printable text" in load_error(tmp_path, 'tools: {t: {params: {"a\\"b": string}}}\n').message


def test_malformed_yaml_names_the_line(tmp_path):
    err = load_error(tmp_path, "tools:\n  refund: {params: [\n")
    assert err.file == str(tmp_path / CATALOG_FILE) and err.line is not None and "malformed YAML" in err.message


def test_missing_catalog_file_is_an_error(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope.yaml")


def test_catalog_error_is_a_policy_load_error():
    assert issubclass(CatalogError, PolicyLoadError)


# --- finding it beside the policy -----------------------------------------------------------------


def test_catalog_is_found_in_a_policy_directory(tmp_path):
    write(tmp_path, "tools: {}\n")
    assert find_catalog(tmp_path) == tmp_path / CATALOG_FILE


def test_catalog_is_found_beside_a_policy_file(tmp_path):
    write(tmp_path, "tools: {}\n")
    assert find_catalog(tmp_path / "policy.yaml") == tmp_path / CATALOG_FILE


def test_no_catalog_beside_the_policy_is_none(tmp_path):
    assert find_catalog(tmp_path) is None and resolve_catalog(None, tmp_path) is None


def test_two_catalogs_among_several_policy_paths_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a", "tools: {}\n")
    write(tmp_path / "b", "tools: {}\n")
    with pytest.raises(CatalogError, match="more than one"):
        find_catalog(os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))


def test_resolve_takes_a_path_a_mapping_or_a_catalog(tmp_path):
    path = write(tmp_path, "tools: {refund: {params: {amount: decimal}}}\n")
    catalog = Catalog.from_dict(REFUND)
    assert resolve_catalog(str(path), None).params_of("refund")["amount"].type is ParamType.DECIMAL
    assert resolve_catalog(REFUND, None).params_of("refund")["amount"].type is ParamType.DECIMAL
    assert resolve_catalog(catalog, None) is catalog


def test_resolve_rejects_another_type():
    with pytest.raises(CatalogError, match="catalog= must be"):
        resolve_catalog(42, None)  # type: ignore[arg-type]


# --- the check -------------------------------------------------------------------------------------

CAT = Catalog.from_dict({"tools": {"t": {"params": {
    "s": "string", "n": "long", "d": "decimal", "b": "bool", "tags": "set<string>", "r": {"type": "string", "required": True},
}}}})


@pytest.mark.parametrize("params", [
    {"r": "x", "s": "text", "n": 3, "d": Decimal("19.99"), "b": False, "tags": ["a", "b"]},
    {"r": "x", "d": 150},
    {"r": "x", "d": Decimal("0.0001")},
    {"r": "x", "d": Decimal("922337203685477.5807")},
    {"r": "x", "undeclared": "anything", "also": 1.5},
], ids=["every-type", "int-as-decimal", "four-digits", "cedar-max", "undeclared-ignored"])
def test_params_that_fit_pass_the_check(params):
    CAT.check(from_call("t", params))


@pytest.mark.parametrize("name, value, words", [
    ("s", 5, "got integer 5"),
    ("n", Decimal("1.5"), "got decimal"),
    ("n", "3", 'got string "3"'),
    ("d", "19.99", 'got string "19.99"'),
    ("d", True, "got bool"),
    ("d", None, "got null"),
    ("d", Decimal("19.99999"), "more than 4 fractional digits"),
    ("d", 2**62, "outside Cedar's decimal range"),
    ("b", 1, "got integer"),
    ("tags", "a", "got string"),
    ("tags", ["a", 1], "every item must be a string"),
])
def test_a_param_that_does_not_fit_is_an_action_error_naming_it(name, value, words):
    err = check_error(CAT, "t", {"r": "x", name: value})
    assert err.field == f"action.params.{name}" and words in err.message and "'t'" in err.message


def test_a_missing_required_param_is_an_action_error():
    assert check_error(CAT, "t", {}).field == "action.params.r"


def test_a_tool_the_catalog_does_not_list_is_not_checked():
    CAT.check(from_call("other", {"d": "not a number"}))


def test_a_decimal_is_rejected_not_rounded():
    # 0.00005 would round to 0.0001 in Cedar; it is refused instead.
    assert "never rounded" in check_error(CAT, "t", {"r": "x", "d": Decimal("0.00005")}).message


def test_denial_is_a_fail_closed_deny_naming_the_catalog_line(tmp_path):
    catalog = load_catalog(write(tmp_path, "tools:\n  refund:\n    params:\n      amount: decimal\n"))
    decision = catalog.denial(from_call("refund", {"amount": "19.99"}), "yaml", "r1")
    assert decision.effect is Effect.DENY and decision.rule_ids == (ENGINE_ERROR_ID,)
    assert decision.reasons[0].message.startswith("catalog: action.params.amount") and f"{CATALOG_FILE}:4" in decision.reasons[0].message


def test_cedar_record_type_lists_every_declared_param_as_optional():
    assert CAT.cedar_type() == (
        '{"b"?: Bool, "d"?: decimal, "n"?: Long, "r"?: String, "s"?: String, "tags"?: Set<String>}'
    )


# --- every engine runs the same check ---------------------------------------------------------------

ENGINES_POLICIES = {
    "yaml": MONEY / "money.yaml",
    "cedar": MONEY,
}


@pytest.fixture(scope="module")
def money_engines(request):
    engines = {name: agt.create_engine(name, str(path)) for name, path in ENGINES_POLICIES.items()}
    request.getfixturevalue("opa_binary")
    rego = os.pathsep.join(str(p) for p in (ROOT / "rego" / "agt" / "decision.rego", ROOT / "rego" / "agt" / "compare.rego", MONEY / "rego"))
    engines["opa"] = agt.create_engine("opa", rego, catalog=str(MONEY / CATALOG_FILE))
    yield engines
    for e in engines.values():
        e.close()


@pytest.mark.parametrize("params", [{"amount": "19.99"}, {"amount": Decimal("100.00001")}, {"order_id": "o1"}],
                         ids=["string", "five-digits", "missing-required"])
def test_every_engine_denies_a_param_that_does_not_fit_with_the_same_message(money_engines, params):
    decisions = {n: e.evaluate(from_call("refund", params)) for n, e in money_engines.items()}
    assert {d.rule_ids for d in decisions.values()} == {(ENGINE_ERROR_ID,)}
    assert len({d.reasons[0].message for d in decisions.values()}) == 1


def test_engines_find_the_catalog_beside_the_policy(money_engines):
    assert money_engines["yaml"].catalog is not None and money_engines["cedar"].catalog is not None


def test_yaml_policy_directory_does_not_load_the_catalog_as_a_policy(tmp_path):
    write(tmp_path, "apiVersion: governance.toolkit/v1\nname: p\nrules: []\n", "p.yaml")
    write(tmp_path, "tools: {refund: {params: {amount: decimal}}}\n")
    engine = agt.create_engine("yaml", str(tmp_path))
    assert engine.policy.sources == (str(tmp_path / "p.yaml"),) and engine.catalog is not None


def test_create_engine_takes_catalog_as_an_option(tmp_path):
    policy = write(tmp_path, "apiVersion: governance.toolkit/v1\nname: p\ndefault_action: allow\nrules: []\n", "p.yaml")
    engine = agt.create_engine("yaml", str(policy), catalog=REFUND)
    assert engine.evaluate(from_call("refund", {"amount": "1"})).is_engine_error


def test_catalog_changes_the_engine_revision(tmp_path):
    policy = write(tmp_path, "apiVersion: governance.toolkit/v1\nname: p\nrules: []\n", "p.yaml")
    plain = agt.create_engine("yaml", str(policy))
    typed = agt.create_engine("yaml", str(policy), catalog=REFUND)
    assert plain.revision != typed.revision


def test_bad_catalog_fails_engine_creation(tmp_path):
    policy = write(tmp_path, "apiVersion: governance.toolkit/v1\nname: p\nrules: []\n", "p.yaml")
    write(tmp_path, "tools: {refund: {params: {amount: money}}}\n")
    with pytest.raises(CatalogError, match="unknown type 'money'"):
        agt.create_engine("yaml", str(policy))


def test_governor_takes_a_catalog_and_denies_a_param_that_does_not_fit(tmp_path):
    policy = write(tmp_path, "apiVersion: governance.toolkit/v1\nname: p\ndefault_action: allow\nrules: []\n", "p.yaml")
    gov = Governor("yaml", str(policy), catalog=REFUND)
    with pytest.raises(agt.errors.GovernanceDenied) as info:
        gov.call(lambda amount, order_id: "refunded", (), {"amount": "19.99", "order_id": "o1"}, tool="refund", agent="alice")
    assert ENGINE_ERROR_ID in info.value.rule_ids


def test_governor_refuses_a_catalog_beside_an_engine_it_did_not_build(tmp_path):
    policy = write(tmp_path, "apiVersion: governance.toolkit/v1\nname: p\nrules: []\n", "p.yaml")
    with pytest.raises(ValueError, match="catalog= goes with an engine name"):
        Governor(agt.create_engine("yaml", str(policy)), catalog=REFUND)
