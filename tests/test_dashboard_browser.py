"""The dashboard in a real headless browser: Debian's Chromium, driven by Playwright (never `playwright
install`: the system browser is used, nothing is downloaded). A governed workload runs against the starter
policy; the page must show its denial with the rule id, render the agent's params as text, let an approver
approve a pending request with a vote signed in the browser (WebCrypto Ed25519) so the tool runs, and let an
operator with the token use the kill switch. Screenshots go to reports/.

Missing Chromium or Playwright skips locally with the reason, and fails under CI=true.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from agt.errors import GovernanceDenied
from tests.dashboard_helpers import AGENT, OPERATOR_TOKEN, XSS, Served, drop_table, make_workload, read_file, refund

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "reports"
TIMEOUT_MS = 30_000  # an upper bound for each wait on a loaded machine; every wait ends as soon as its condition holds


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason} (make test runs scripts/install-chromium.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        _unavailable("chromium is not installed (scripts/install-chromium.sh installs Debian's package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[browser]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def workload(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "signing").mkdir()
    w = make_workload(tmp_path, durability="batch")  # the default writer: records reach the log within a batch
    try:
        yield w
    finally:
        w.governor.close()


def _screenshot(page: Any, name: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / name), full_page=True)


def _wait_for_request(gov: Any) -> None:
    """Until the agent's thread has opened its approval request (an upper bound, not a pause)."""
    deadline = time.monotonic() + 30
    while not gov.approvals.list():
        assert time.monotonic() < deadline, "the governed call never opened its approval request"
        time.sleep(0.02)


def _vote_result(page: Any, card: Any) -> str:
    """The vote's outcome as the page reports it, once the page has one (the signing and the POST take a moment)."""
    handle = card.locator(".result").element_handle()
    page.wait_for_function("el => el.textContent && el.textContent !== 'signing…'", arg=handle, timeout=TIMEOUT_MS)
    return card.locator(".result").inner_text()


def _stream_row(page: Any, text: str) -> Any:
    return page.locator("#stream tbody tr", has_text=text).first


def test_a_denial_appears_in_the_live_stream_with_its_rule_id(page: Any, workload: Any) -> None:
    gov = workload.governor
    with Served(workload.app(suites=str(REPO / "conformance"))) as served:
        page.goto(served.url + "/")
        page.locator("#stream-state", has_text="live").wait_for()
        gov.call(read_file, ("notes.txt",), agent=AGENT)
        with pytest.raises(GovernanceDenied):
            gov.call(drop_table, ("users",), agent=AGENT)
        row = _stream_row(page, "block-destructive-db-tools")
        row.wait_for()
        assert row.locator("td").nth(3).inner_text() == "drop_table"
        assert row.locator("td").nth(5).inner_text() == "deny"
        assert row.locator("td").nth(7).inner_text() == "denied"
        row.locator("a.rule", has_text="block-destructive-db-tools").click()
        page.locator("h1", has_text="rule block-destructive-db-tools").wait_for()
        assert "coverage in the conformance suites" in page.content()
        assert page.locator("table tr", has_text="starter-matrix").count() > 0
    assert page.errors == []


def test_params_the_agent_controls_render_as_text_not_markup(page: Any, workload: Any) -> None:
    gov = workload.governor
    gov.call(read_file, (XSS,), agent=AGENT)
    workload.governor.audit.flush()
    with Served(workload.app()) as served:
        page.goto(served.url + "/")
        row = _stream_row(page, "onerror")
        row.wait_for()
        assert XSS in row.inner_text()
        assert page.locator("#stream img").count() == 0
        page.goto(served.url + "/agents/" + AGENT)
        page.locator("h1", has_text=AGENT).wait_for()
        assert page.locator("main img").count() == 0
        assert page.evaluate("window.__xss") is None


def test_an_approver_approves_a_pending_request_from_the_page_and_the_tool_runs(page: Any, workload: Any) -> None:
    gov = workload.governor
    ran: dict[str, Any] = {}

    def agent_asks() -> None:
        try:
            ran["result"] = gov.call(refund, kwargs={"amount": 250, "order_id": XSS}, agent=AGENT)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            ran["error"] = exc

    with pytest.raises(GovernanceDenied):
        gov.call(drop_table, ("users",), agent=AGENT)
    asking = threading.Thread(target=agent_asks, daemon=True)
    asking.start()
    with Served(workload.app()) as served:
        _wait_for_request(gov)
        page.goto(served.url + "/approvals")
        card = page.locator("article.approval", has_text="refund").first
        card.wait_for()
        assert "refund-approval" in card.inner_text()
        assert XSS in card.locator("pre.params").inner_text()
        page.set_input_files("#approver-key", str(workload.approver_key_file))
        page.locator("#signer", has_text="signing as finance-lead").wait_for()
        _screenshot(page, "dashboard-approvals.png")
        card.locator("button.approve").click()
        assert "counted: request approved" in _vote_result(page, card)
        asking.join(60)
        assert not asking.is_alive(), "the governed call is still waiting for its approval"
        assert ran.get("result") == f"refunded 250 on {XSS}", ran
        page.goto(served.url + "/")
        row = page.locator("#stream tbody tr", has_text="refund-approval").filter(has_text="ran").first
        row.wait_for()
        assert page.locator("#stream img").count() == 0
        _screenshot(page, "dashboard-stream.png")
    assert page.evaluate("window.__xss") is None
    assert page.errors == []


def test_a_key_outside_the_registry_cannot_sign_from_the_page(page: Any, workload: Any, tmp_path: Path) -> None:
    from agt.identity import IdentityKeys

    stranger = IdentityKeys.generate("finance-lead").save(tmp_path / "stranger.pem")
    with Served(workload.app()) as served:
        page.goto(served.url + "/approvals")
        page.set_input_files("#approver-key", str(stranger))
        page.locator("#signer", has_text="not in the approver registry").wait_for()


def test_the_kill_switch_needs_the_operator_token_then_stops_the_agent(page: Any, workload: Any) -> None:
    gov = workload.governor
    gov.call(read_file, ("notes.txt",), agent=AGENT)
    with Served(workload.app()) as served:
        page.goto(served.url + "/agents/" + AGENT)
        page.locator("button[data-on='1']").click()
        page.locator("#kill-result", has_text="refused").wait_for()
        assert not gov.trust.is_killed(AGENT)
        page.fill("#operator-token", OPERATOR_TOKEN)
        page.locator("button[data-on='1']").click()
        page.locator("#kill-state", has_text="STOPPED").wait_for()
        assert gov.trust.is_killed(AGENT)
        with pytest.raises(GovernanceDenied, match="kill-switch"):
            gov.call(read_file, ("notes.txt",), agent=AGENT)
        _screenshot(page, "dashboard-agent.png")


def test_an_approver_denies_a_pending_request_from_the_page_and_the_tool_never_runs(page: Any, workload: Any) -> None:
    gov = workload.governor
    outcome: dict[str, Any] = {}

    def agent_asks() -> None:
        try:
            outcome["result"] = gov.call(refund, kwargs={"amount": 900, "order_id": "o-9"}, agent=AGENT)
        except GovernanceDenied as exc:
            outcome["denied"] = exc

    asking = threading.Thread(target=agent_asks, daemon=True)
    asking.start()
    with Served(workload.app()) as served:
        _wait_for_request(gov)
        page.goto(served.url + "/approvals")
        page.set_input_files("#approver-key", str(workload.approver_key_file))
        page.locator("#signer", has_text="signing as finance-lead").wait_for()
        page.fill("#vote-note", "too large for one refund")
        card = page.locator("article.approval").first
        card.locator("button.danger").click()
        assert "counted: request denied" in _vote_result(page, card)
        asking.join(60)
    assert "result" not in outcome
    assert "approval-denied" in str(outcome["denied"])
