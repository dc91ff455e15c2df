"""agt.cli.identity: the ``identity`` command group, run through click's test runner."""

import json
import stat

import pytest
from click.testing import CliRunner

from agt.cli.identity import EXIT_ERROR, identity
from agt.identity import IdentityStore, public_key_from_did


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.delenv("AGT_IDENTITY_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(identity, list(args))


def test_create_then_show_json(run, tmp_path):
    created = run("create", "planner", "--dir", "ids", "--json")
    assert created.exit_code == 0, created.output
    record = json.loads(created.output)
    shown = run("show", "planner", "--dir", "ids", "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.output) == record
    assert record["did"].startswith("did:key:z6Mk") and public_key_from_did(record["did"])
    assert stat.S_IMODE((tmp_path / "ids" / "planner.key").stat().st_mode) == 0o600


def test_create_prints_the_did_and_key_file(run):
    result = run("create", "planner")
    assert result.exit_code == 0
    assert "did:key:z6Mk" in result.output and "planner.key" in result.output


def test_create_uses_the_default_directory(run, tmp_path):
    assert run("create", "planner").exit_code == 0
    assert (tmp_path / ".agt" / "identities" / "planner.json").exists()


def test_directory_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(identity, ["create", "planner"], env={"AGT_IDENTITY_DIR": str(tmp_path / "env")})
    assert result.exit_code == 0
    assert IdentityStore(tmp_path / "env").get("planner")


def test_list_json_holds_every_identity_sorted(run):
    for name in ("zeta", "alpha"):
        assert run("create", name).exit_code == 0
    result = run("list", "--json")
    assert result.exit_code == 0
    assert [i["agent_id"] for i in json.loads(result.output)] == ["alpha", "zeta"]


def test_list_table_shows_agents_and_dids(run):
    run("create", "alpha")
    result = run("list")
    assert result.exit_code == 0 and "alpha" in result.output and "did:key:z6Mk" in result.output


def test_list_of_an_empty_store_says_how_to_create_one(run):
    result = run("list")
    assert result.exit_code == 0 and "agt identity create" in result.output


def test_create_twice_fails_without_overwrite(run):
    first = json.loads(run("create", "planner", "--json").output)
    again = run("create", "planner")
    assert again.exit_code == EXIT_ERROR and "already exists" in again.output
    assert json.loads(run("show", "planner", "--json").output)["did"] == first["did"]


def test_create_overwrite_replaces_the_key(run):
    first = json.loads(run("create", "planner", "--json").output)
    second = run("create", "planner", "--overwrite", "--json")
    assert second.exit_code == 0 and json.loads(second.output)["did"] != first["did"]


def test_show_of_an_unknown_identity_fails(run):
    result = run("show", "ghost")
    assert result.exit_code == EXIT_ERROR and "no identity 'ghost'" in result.output


def test_path_traversal_name_is_refused(run, tmp_path):
    result = run("create", "../escape")
    assert result.exit_code == EXIT_ERROR and "invalid agent id" in result.output
    assert not (tmp_path / "escape.json").exists() and not (tmp_path / ".agt").exists()


def test_show_never_prints_the_private_key(run, tmp_path):
    run("create", "planner")
    pem = (tmp_path / ".agt" / "identities" / "planner.key").read_text()
    body = "".join(pem.splitlines()[1:-1])
    for args in (("show", "planner"), ("show", "planner", "--json"), ("list", "--json")):
        assert body not in run(*args).output
