"""agt.verify.deployment: the deployment file agt verify reads; bad values name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.verify import ConfigError, Deployment, load_deployment
from verify_helpers import good_deployment, write_config


def test_a_written_deployment_reads_back_field_for_field(tmp_path):
    d = good_deployment(tmp_path)
    loaded = load_deployment(write_config(tmp_path / "agt.yaml", d))
    assert loaded.to_dict() == {**d.to_dict(), "source": str(tmp_path / "agt.yaml"), "approvals_store": str(d.approvals_store)}


def test_relative_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "agt.yaml"
    path.write_text("policy: policies/p.yaml\naudit:\n  log: ../log\n")
    d = load_deployment(path)
    assert d.policy == (tmp_path / "conf" / "policies" / "p.yaml")
    assert d.audit_log == tmp_path / "conf" / ".." / "log"


def test_an_mcp_section_without_hide_denied_means_the_proxy_shows_every_tool(tmp_path):
    path = tmp_path / "agt.yaml"
    path.write_text("policy: p.yaml\nmcp: {}\n")
    assert load_deployment(path).mcp_hide_denied is False
    path.write_text("policy: p.yaml\n")
    assert load_deployment(path).mcp_hide_denied is None


@pytest.mark.parametrize(("text", "field", "line", "message"), [
    ("policy: p.yaml\nidentity:\n  requre: true\n", "identity.requre", 3, "unknown key"),
    ("policy: p.yaml\naudits:\n  log: x\n", "audits", 2, "unknown key"),
    ("policy: p.yaml\nidentity:\n  require: yes please\n", "identity.require", 3, "expected true or false"),
    ("policy: p.yaml\nengine: rego\n", "engine", 2, "expected one of yaml, cedar, opa"),
    ("policy: p.yaml\nmode: lenient\n", "mode", 2, "expected one of strict, permissive, audit"),
    ("policy: p.yaml\nrate_limits:\n  'agent:*': 2/0s\n", "rate_limits", 2, "agent:\\*: rate limit"),
    ("policy: p.yaml\naudit: /var/log/agt\n", "audit", 2, "expected a mapping"),
    ("policy: 42\n", "policy", 1, "expected non-empty text"),
    ("policy: p.yaml\nstate: postgres://db\n", "state", 2, "expected memory, sqlite"),
])
def test_a_bad_value_names_the_file_line_and_field(tmp_path, text, field, line, message):
    path = tmp_path / "agt.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_deployment(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), line, field)
    assert str(info.value).startswith(f"{path}:{line}: {field}: ")


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "agt.yaml"
    path.write_text("policy: p.yaml\naudit:\n  log: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_deployment(path)
    assert info.value.file == str(path) and info.value.line is not None


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file") as info:
        load_deployment(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml")


def test_flags_override_the_file_and_unset_flags_do_not(tmp_path):
    d = Deployment(policy=Path("a.yaml"), require_identity=True, audit_log=Path("log"))
    merged = d.merged({"policy": Path("b.yaml"), "require_identity": None, "audit_log": None, "mode": "audit"})
    assert (merged.policy, merged.require_identity, merged.audit_log, merged.mode) == (Path("b.yaml"), True, Path("log"), "audit")


def test_the_evidence_form_holds_no_token_only_its_file(tmp_path):
    d = Deployment(policy=Path("p"), opa_url="http://opa", opa_token_file=Path("/etc/agt/opa-token"))
    assert d.to_dict()["opa_token_file"] == "/etc/agt/opa-token"
    assert "opa_token" not in d.to_dict()
