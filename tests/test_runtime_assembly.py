"""agt.runtime.assembly: the Governor a stand-alone process runs (agt serve, agt mcp proxy), and its agents file."""

from __future__ import annotations

import pytest

from agt.errors import AgtError, GovernanceDenied
from agt.runtime.assembly import build_governor, load_agents
from agt.runtime.backends import open_state
from serve_helpers import STARTER

AGENTS = """
agents:
  alice: {roles: [developer], trust_score: 720, attributes: {workspace: /ws/alice}}
  bot:
"""


def test_an_agents_file_declares_roles_attributes_and_trust(tmp_path):
    (tmp_path / "agents.yaml").write_text(AGENTS)
    alice, bot = load_agents(tmp_path / "agents.yaml")
    assert (alice.id, alice.roles, alice.trust_score, dict(alice.attributes)) == ("alice", ("developer",), 720,
                                                                                 {"workspace": "/ws/alice"})
    assert (bot.id, bot.roles, bot.trust_score) == ("bot", (), None)


@pytest.mark.parametrize("text, field", [
    ("agents: {alice: {role: [x]}}", "agents.alice: unknown field role"),
    ("agents: {alice: {trust_score: 5000}}", "agents.alice: agent.trust_score"),
    ("agents: {alice: {attributes: {workspace: 5}}}", "agents.alice: agent.attributes.workspace"),
    ("alice: {}", "expected one key, agents"),
    ("agents: [alice]", "expected one key, agents"),
    ("agents: {alice: [x]}", "agents.alice"),
    ("agents: {: x", "not YAML"),
])
def test_a_malformed_agents_file_is_refused_naming_the_field(tmp_path, text, field):
    (tmp_path / "agents.yaml").write_text(text)
    with pytest.raises(AgtError, match=field) as info:
        load_agents(tmp_path / "agents.yaml")
    assert str(tmp_path / "agents.yaml") in str(info.value)


def test_the_governor_knows_the_declared_agents(tmp_path):
    (tmp_path / "agents.yaml").write_text(AGENTS)
    gov = build_governor("yaml", STARTER, audit_log=str(tmp_path / "audit"), state=open_state("memory"),
                         agents=str(tmp_path / "agents.yaml"))
    try:
        assert gov.agent_now("alice").roles == ("developer",) and gov.trust.score("alice") == 720
        gov.finish(gov.begin("write_file", {"path": "/ws/alice/notes.md", "content": "x"}, agent="alice"), None)
        with pytest.raises(GovernanceDenied, match="workspace"):
            gov.begin("write_file", {"path": "/ws/bob/notes.md", "content": "x"}, agent="alice")
    finally:
        gov.close()


def test_state_and_an_approval_store_are_exclusive(tmp_path):
    from agt.runtime.approvals import MemoryApprovals

    with pytest.raises(ValueError, match="not both"):
        build_governor("yaml", STARTER, audit_log=str(tmp_path / "audit"), state=open_state("memory"),
                       approvals=MemoryApprovals())
