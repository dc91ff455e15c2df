"""``agt serve`` as a process: started with the CLI on a free loopback port and on a unix socket, driven with
RemoteGovernor and raw HTTP, and refusing the configurations that would leave it unprotected."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from agt.client import RemoteGovernor
from agt.errors import GovernanceDenied
from serve_helpers import AGT, STARTER, agt_serve, free_port, healthy, token_file



def test_agt_serve_on_tcp_governs_calls_with_its_token(tmp_path):
    agent, operator = token_file(tmp_path, "agent.token"), token_file(tmp_path, "operator.token")
    url = f"http://127.0.0.1:{free_port()}"
    with agt_serve(tmp_path, "--addr", url[len("http://"):], "--token-file", str(agent), "--operator-token-file",
                   str(operator), ready=healthy(url)) as proc:
        client = RemoteGovernor(url, token_file=str(agent), operator_token_file=str(operator))
        assert client.call(lambda path: "read", kwargs={"path": "/ws/a"}, tool="read_file", agent="a") == "read"
        client.kill("a")
        with pytest.raises(GovernanceDenied, match="kill"):
            client.begin("read_file", {"path": "/ws/a"}, agent="a")
        assert httpx.post(url + "/v1/data/agt/decision", json={"input": {}}).status_code == 401
    assert proc.returncode == 0
    assert any((tmp_path / "audit").iterdir())  # the signed audit log the calls were written to


def test_agt_serve_metrics_count_its_calls_for_the_agent_token_only(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    agent = token_file(tmp_path, "agent.token")
    url = f"http://127.0.0.1:{free_port()}"
    with agt_serve(tmp_path, "--addr", url[len("http://"):], "--token-file", str(agent), ready=healthy(url)):
        client = RemoteGovernor(url, token_file=str(agent))
        client.call(lambda path: "read", kwargs={"path": "/ws/a"}, tool="read_file", agent="a")
        assert httpx.get(url + "/metrics").status_code == 401
        r = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {agent.read_text().strip()}"})
    assert r.status_code == 200
    samples = [s for f in text_string_to_metric_families(r.text) for s in f.samples
               if s.name == "agt_decisions_total" and s.labels.get("gate") == "policy"]
    assert sum(s.value for s in samples if s.labels.get("effect") == "allow") == 1


def test_agt_serve_no_metrics_has_no_metrics_endpoint(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with agt_serve(tmp_path, "--addr", url[len("http://"):], "--insecure-no-auth", "--no-metrics", ready=healthy(url)):
        assert httpx.get(url + "/metrics").status_code == 404


def test_agt_serve_on_a_unix_socket_answers_the_opa_api(tmp_path):
    agent = token_file(tmp_path, "agent.token")
    sock = tmp_path / "run" / "agt.sock"
    transport = {"transport": httpx.HTTPTransport(uds=str(sock))}
    with agt_serve(tmp_path, "--unix", str(sock), "--token-file", str(agent), ready=healthy("http://agt", **transport)):
        assert (sock.parent.stat().st_mode & 0o777) == 0o700
        with httpx.Client(base_url="http://agt", **transport) as c:
            r = c.post("/v1/data/agt/decision", headers={"Authorization": f"Bearer {agent.read_text().strip()}"},
                       json={"input": {"agent": {"id": "a"}, "action": {"tool": "run_shell", "params": {"command": "rm -rf /"}}}})
        assert r.json()["result"]["effect"] == "deny"
    assert not sock.exists()


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AGT, "--policy", STARTER, "--audit-log", str(tmp_path / "audit"), *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


def test_tcp_without_a_token_refuses_to_start(tmp_path):
    done = run(tmp_path, "--addr", f"127.0.0.1:{free_port()}")
    assert done.returncode == 2 and "needs --token-file" in done.stderr


def test_insecure_no_auth_is_refused_off_loopback(tmp_path):
    done = run(tmp_path, "--addr", f"0.0.0.0:{free_port()}", "--insecure-no-auth")
    assert done.returncode == 2 and "loopback address only" in done.stderr


def test_a_socket_directory_open_to_others_refuses_to_start(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    done = run(tmp_path, "--unix", str(shared / "agt.sock"))
    assert done.returncode == 1 and "open to other users" in done.stderr


def test_the_same_token_for_agents_and_operators_refuses_to_start(tmp_path):
    agent = token_file(tmp_path, "agent.token")
    done = run(tmp_path, "--unix", str(tmp_path / "run" / "s.sock"), "--token-file", str(agent),
               "--operator-token-file", str(agent))
    assert done.returncode == 1 and "must differ" in done.stderr


def test_a_short_token_refuses_to_start(tmp_path):
    (tmp_path / "weak").write_text("hunter2")
    done = run(tmp_path, "--addr", f"127.0.0.1:{free_port()}", "--token-file", str(tmp_path / "weak"))
    assert done.returncode == 1 and "at least 16" in done.stderr


def test_an_unknown_state_url_refuses_to_start(tmp_path):
    done = run(tmp_path, "--unix", str(tmp_path / "run" / "s.sock"), "--state", "etcd://x")
    assert done.returncode == 1 and "etcd://x" in done.stderr


def test_help_lists_the_options():
    done = subprocess.run([*AGT, "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    for option in ("--unix", "--addr", "--token-file", "--operator-token-file", "--state", "--tls-client-ca"):
        assert option in done.stdout


def test_agt_serve_dashboard_shows_the_calls_it_governed(tmp_path):
    agent, operator = token_file(tmp_path, "agent.token"), token_file(tmp_path, "operator.token")
    url = f"http://127.0.0.1:{free_port()}"
    with agt_serve(tmp_path, "--addr", url[len("http://"):], "--token-file", str(agent), "--operator-token-file",
                   str(operator), "--dashboard", ready=healthy(url)) as proc:
        client = RemoteGovernor(url, token_file=str(agent))
        with pytest.raises(GovernanceDenied):
            client.begin("drop_table", {"table": "users"}, agent="bot")
        page = httpx.get(url + "/dashboard/agents/bot")
    assert page.status_code == 200 and "bot" in page.text
    assert proc.returncode == 0  # SIGTERM ended the dashboard's streams and the service stopped cleanly
