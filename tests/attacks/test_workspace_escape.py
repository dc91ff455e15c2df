"""Attacks on the starter policy's workspace rule, through the Governor with each real engine (yaml, cedar,
and opa on a real `opa`): an agent that writes outside its workspace with an empty or odd workspace, through a
delete/move/copy/patch tool, or through a path-bearing param other than `path`, must be denied with
`workspace-write-only` everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from agt.action import Action, Agent
from agt.engines.cedar import CedarEngine
from agt.engines.opa import OpaEngine
from agt.engines.yaml import YamlEngine
from agt.errors import ActionError, GovernanceDenied
from agt.runtime import Governor

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def opa_engine(opa_binary):
    engine = OpaEngine(ROOT / "rego")
    yield engine
    engine.close()


@pytest.fixture(params=["yaml", "cedar", "opa"])
def governor(request) -> Governor:
    if request.param == "opa":
        engine = request.getfixturevalue("opa_engine")
    elif request.param == "cedar":
        engine = CedarEngine(ROOT / "cedar")
    else:
        engine = YamlEngine(ROOT / "policies" / "starter.yaml")
    return Governor(engine)


def _refusal(gov: Governor, tool: str, params: dict, agent: Agent) -> tuple[str, ...]:
    ran: list = []
    with pytest.raises(GovernanceDenied) as info:
        gov.call(lambda **kw: ran.append(kw), kwargs=params, tool=tool, agent=agent)
    assert ran == []
    return info.value.decision.rule_ids


ALICE = Agent("alice", trust_score=720, attributes={"workspace": "/ws/alice"})


def test_empty_workspace_cannot_write_etc_passwd(governor):
    agent = Agent("mallory", trust_score=720, attributes={"workspace": ""})
    assert _refusal(governor, "write_file", {"path": "/etc/passwd", "text": "x"}, agent) == ("workspace-write-only",)


@pytest.mark.parametrize("workspace", [0, None, ["/"], True])
def test_non_string_workspace_never_reaches_an_engine(workspace):
    # Each engine would read it differently (yaml: a type error; opa: undefined; cedar: no attribute);
    # the action is refused where it is built, naming the field, so no engine can read it as "inside".
    with pytest.raises(ActionError, match="agent.attributes.workspace"):
        Action.from_dict({"agent": {"id": "mallory", "attributes": {"workspace": workspace}},
                          "action": {"tool": "write_file", "params": {"path": "/etc/passwd"}},
                          "resource": {"type": "file", "id": "/etc/passwd"}})


@pytest.mark.parametrize("tool", ["delete_file", "remove_file", "unlink"])
def test_delete_outside_workspace_is_denied(governor, tool):
    assert _refusal(governor, tool, {"path": "/etc/passwd"}, ALICE) == ("workspace-write-only",)


@pytest.mark.parametrize("tool", ["create_file", "patch_file", "apply_patch", "copy_file", "rename_file", "move_file"])
def test_file_tool_outside_workspace_is_denied(governor, tool):
    assert _refusal(governor, tool, {"path": "/etc/cron.d/x"}, ALICE) == ("workspace-write-only",)


@pytest.mark.parametrize("param", ["dest", "target", "destination", "dst", "output_path"])
def test_write_through_a_path_bearing_param_is_denied(governor, param):
    assert _refusal(governor, "write_file", {param: "/etc/passwd", "text": "x"}, ALICE) == ("workspace-write-only",)


def test_move_out_of_the_workspace_is_denied(governor):
    assert _refusal(governor, "move_file", {"src": "/ws/alice/a", "dest": "/etc/passwd"}, ALICE) == ("workspace-write-only",)


def test_move_from_outside_into_the_workspace_is_denied(governor):
    # A move deletes its source: the source path is written too, whatever the destination.
    assert _refusal(governor, "move_file", {"src": "/etc/shadow", "dest": "/ws/alice/a"}, ALICE) == ("workspace-write-only",)


def test_primary_path_inside_does_not_hide_a_second_path_outside(governor):
    assert _refusal(governor, "copy_file", {"path": "/ws/alice/a", "output_path": "/etc/profile"}, ALICE) == ("workspace-write-only",)


def test_bulk_delete_with_one_path_outside_is_denied(governor):
    assert _refusal(governor, "delete_files", {"paths": ["/ws/alice/a", "/etc/hosts"]}, ALICE) == ("workspace-write-only",)


def test_move_inside_the_workspace_runs(governor):
    ran: list = []
    governor.call(lambda **kw: ran.append(kw), kwargs={"src": "/ws/alice/a", "dest": "/ws/alice/b"}, tool="move_file", agent=ALICE)
    assert ran == [{"src": "/ws/alice/a", "dest": "/ws/alice/b"}]


@pytest.mark.parametrize("tool, params", [
    ("write_file", {"path": ["/etc/passwd"]}),  # a list in a single-path param
    ("write_file", {"paths": "/etc/passwd"}),  # one text in a list param
    ("write_file", {"Path": "/etc/passwd"}),  # the name in another case
    ("str_replace_based_edit_tool", {"path": "/etc/passwd", "new_str": "x"}),  # Anthropic's editor tool
    ("WriteFile", {"path": "/etc/passwd"}),
    ("writeFile", {"path": "/etc/passwd"}),
    ("fs_write", {"path": "/etc/passwd"}),
    ("tee", {"path": "/etc/passwd"}),
    ("chmod", {"path": "/etc/passwd", "mode": "777"}),
    ("ln", {"src": "/etc", "dest": "/ws/alice/etc"}),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_tool_and_param_spellings_do_not_escape_the_workspace(governor, tool, params):
    assert _refusal(governor, tool, params, ALICE) == ("workspace-write-only",)
