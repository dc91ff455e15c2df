"""The dashboard as an ASGI app: pages, a server-sent event stream, a small JSON API, and the two operator
actions (the kill switch, with the operator token; votes, with the approver's signature).

Who can do what (docs/dashboard.md has the threat answers):

* reading: anyone who reaches the socket and names an allowed ``Host`` (loopback by default: a page on another
  site that rebinds its DNS name to 127.0.0.1 is refused);
* the kill switch: ``Authorization: Bearer <operator token>``, compared in constant time. A header, not a
  cookie: another site cannot make the browser send it, so there is nothing to forge (CSRF);
* a vote: an Ed25519 signature by a key in the approver registry, made in the approver's browser. The server
  never sees an approver's private key; it verifies the vote as the CLI's votes are verified
  (:func:`agt.runtime.approvals.submit_vote`), and the Governor tallies it again itself.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agt.errors import AgtError
from agt.runtime.approvals import ApprovalError, ApprovalStatus, submit_vote
from agt.runtime.trust import ring, tier
from agt.serve.dashboard import pages, plots, stats
from agt.serve.dashboard.coverage import Coverage
from agt.serve.dashboard.source import DashboardSource, Unavailable

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
STREAM_BACKLOG = 200
"""Records a new stream (or one that reconnects after a gap) is sent before the live ones."""
_STATIC = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class DashboardConfig:
    """How the app behaves; the data comes from the source."""

    operator_token: str | None = None
    """The kill switch's credential; None turns the kill switch off (it answers 403, naming why)."""
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    suites: str | None = None
    """The conformance suites directory (rule coverage), or None."""
    poll_interval: float = 0.2
    """How often the event stream looks for new records."""
    heartbeat: float = 15.0
    clock: Callable[[], float] = field(default=time.time, repr=False)


class DashboardApp:
    """The dashboard's ASGI app: security headers on every answer, and only allowed Host names (DNS rebinding).
    :meth:`close` ends the open event streams, so a server shutting down need not wait them out."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...], stopping: threading.Event) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}
        self._stopping = stopping

    def close(self) -> None:
        self._stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        if "*" not in self.allowed and name not in self.allowed:
            response = PlainTextResponse(f"host {host!r} is not allowed here (allowed: {', '.join(sorted(self.allowed))})", 421)
            await response(scope, receive, send)
            return

        async def secured(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                         (b"cache-control", b"no-store")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, secured)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _html(body: Any, status: int = 200) -> HTMLResponse:
    return HTMLResponse(str(body), status)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status)


def _same_origin(request: Request) -> str | None:
    """Why a state-changing request is refused on origin grounds, or None. Browsers send Origin on a POST;
    one from another site never gets this far (it also lacks the token), this names it clearly."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser (curl, a script): the credential alone decides
        return None
    host = request.headers.get("host", "")
    if origin.split("://", 1)[-1] != host:
        return f"origin {origin!r} is not this dashboard ({host})"
    return None


def dashboard_routes(source: DashboardSource, config: DashboardConfig | None = None,
                     stopping: threading.Event | None = None) -> list[Route]:
    """The routes, for an app that adds its own (agt serve mounts :func:`dashboard_app` instead). Event streams
    end once ``stopping`` is set."""
    cfg = config or DashboardConfig()
    stopping = stopping or threading.Event()
    coverage = Coverage(cfg.suites)

    def _operator(request: Request) -> JSONResponse | None:
        if cfg.operator_token is None:
            return _error(403, "no operator token is configured for this dashboard (--operator-token-file): "
                               "the kill switch is off")
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), cfg.operator_token.encode()):
            return _error(401, "the kill switch needs the operator token (Authorization: Bearer ...)")
        return None

    async def stream_page(request: Request) -> Response:
        rows = await run_in_threadpool(source.feed.rows)
        now = cfg.clock()
        decided = stats.decisions(rows)
        denied = sum(1 for r in decided if r.effect == "deny")
        pending = await run_in_threadpool(_pending_count)
        lat = stats.latency_percentiles(rows).get("all")
        items = [("decisions", len(decided), ""), ("denied", denied, "deny" if denied else ""),
                 ("pending approvals", pending, "approval" if pending else ""), ("agents", len(stats.agents(rows)), ""),
                 ("p50 / p99 latency", f"{lat['p50']:.0f} / {lat['p99']:.0f} µs" if lat else "-", "")]
        lat_items = [(f"{gate} p{p}", v[f"p{p}"]) for gate, v in stats.latency_percentiles(rows).items() for p in (50, 90, 99)]
        figures = [("decisions per minute by effect (last 30 minutes, UTC)", plots.decisions_per_minute(stats.per_minute(rows, now))),
                   ("top denying rules", plots.horizontal_bars(stats.top_denying(rows), "top denying rules")),
                   ("latency percentiles by gate (µs)", plots.horizontal_bars(lat_items, "latency percentiles", " µs", "latency"))]
        body = pages.stream_page(_base(request), stats.Filters.of(request.query_params).query(), figures, pages.summary(items))
        return _html(pages.layout(_base(request), "decisions", body, "stream"))

    def _pending_count() -> int:
        store = source.approvals
        if store is None:
            return 0
        try:
            return sum(1 for r in store.list() if source.status_of(r).status is ApprovalStatus.PENDING)
        except AgtError:
            return 0

    async def events(request: Request) -> Response:
        """Server-sent events: one ``record`` event per audit record matching the filters, ``id`` its seq."""
        filters = stats.Filters.of(request.query_params)
        try:
            after = int(request.headers.get("last-event-id") or request.query_params.get("after") or -1)
        except ValueError:
            return _error(400, "Last-Event-ID / after must be a record seq (an integer)")

        async def body() -> AsyncIterator[bytes]:
            nonlocal after
            yield b"retry: 2000\n\n"
            backlog = after < 0
            quiet = 0.0
            while True:
                new = await run_in_threadpool(source.feed.after, after)
                rows = [r for r in new if filters.matches(r)]
                if backlog:
                    rows, backlog = rows[-STREAM_BACKLOG:], False
                for row in rows:
                    data = json.dumps(row.to_event(), default=str, ensure_ascii=False)
                    yield f"id: {row.seq}\nevent: record\ndata: {data}\n\n".encode()
                if new:
                    # Past every record read, matching or not: the next look starts after them (never after
                    # records another request's refresh brought in meanwhile, which this loop has not seen).
                    after, quiet = new[-1].seq, 0.0
                if stopping.is_set() or await request.is_disconnected():
                    return
                await asyncio.sleep(cfg.poll_interval)
                quiet += cfg.poll_interval
                if quiet >= cfg.heartbeat:
                    quiet = 0.0
                    yield b": keep-alive\n\n"

        return StreamingResponse(body(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    async def api_records(request: Request) -> Response:
        filters = stats.Filters.of(request.query_params)
        try:
            limit = max(1, min(5000, int(request.query_params.get("limit", 200))))
        except ValueError:
            return _error(400, "limit must be an integer")
        rows = [r for r in await run_in_threadpool(source.feed.rows) if filters.matches(r)][-limit:]
        return JSONResponse(json.loads(json.dumps([r.to_event() for r in rows], default=str)))

    async def rule_page(request: Request) -> Response:
        rule = request.path_params["rule"]
        rows = await run_in_threadpool(source.feed.rows)
        matches = [r for r in stats.decisions(rows) if rule in r.rules]
        index = await run_in_threadpool(coverage.index)
        body = pages.rule_page(_base(request), rule, matches, index.covering(rule), index.errors, cfg.suites)
        return _html(pages.layout(_base(request), f"rule {rule}", body, "rule"))

    def _agent_rows() -> list[list[Any]]:
        rows = source.feed.rows()
        out: list[list[Any]] = []
        for agent in stats.agents(rows):
            score = source.trust_score(agent, rows)
            killed = source.killed(agent, rows)
            mine = [r for r in stats.decisions(rows) if r.agent == agent]
            out.append([agent, "-" if score is None else score, "-" if score is None else ring(score),
                        "-" if score is None else tier(score), "-" if killed is None else ("STOPPED" if killed else "running"),
                        len(mine), sum(1 for r in mine if r.effect == "deny")])
        return out

    async def agents_page(request: Request) -> Response:
        rows = await run_in_threadpool(_agent_rows)
        base = _base(request)
        for row in rows:
            row[0] = pages.agent_link(base, row[0])
        return _html(pages.layout(base, "agents", pages.agents_page(base, rows), "agents"))

    def _agent_view(agent: str) -> dict[str, Any]:
        rows = source.feed.rows()
        score = source.trust_score(agent, rows)
        history = stats.trust_history(rows, agent)
        limits = source.limits()
        budgets = []
        for task in stats.tasks_of(rows, agent)[-10:]:
            used = source.counters(task)
            if used is None:
                continue
            for counter, value in used.items():
                limit = limits.get(counter)
                share = "" if not limit else f"{min(100.0, value / limit * 100):.0f}%"
                budgets.append((task, counter, value, "-" if limit is None else limit, share))
        try:
            mine = {k: v for k, v in source.breakers().items() if k == f"agent:{agent}" or
                    k in {f"tool:{r.tool}" for r in rows if r.agent == agent}}
            breakers: Any = sorted(mine.items())
        except Unavailable as exc:
            breakers = str(exc)
        return {"score": score, "history": history, "killed": source.killed(agent, rows), "budgets": budgets,
                "breakers": breakers, "recent": [r for r in rows if r.agent == agent], "kill_problem": source.kill_switch_problem()}

    async def agent_page(request: Request) -> Response:
        agent = request.path_params["agent"]
        view = await run_in_threadpool(_agent_view, agent)
        score = view["score"]
        ring_tier = "-" if score is None else f"ring {ring(score)} / {tier(score)}"
        body = pages.agent_page(_base(request), agent, score, ring_tier, view["killed"], view["kill_problem"],
                                plots.trust_over_time(view["history"], cfg.clock()), view["budgets"], view["breakers"],
                                view["recent"])
        return _html(pages.layout(_base(request), f"agent {agent}", body, "agent"))

    async def api_agent(request: Request) -> Response:
        agent = request.path_params["agent"]
        view = await run_in_threadpool(_agent_view, agent)
        return JSONResponse({"agent": agent, "trust": view["score"], "ring": None if view["score"] is None else ring(view["score"]),
                             "killed": view["killed"], "trust_history": view["history"],
                             "budgets": [dict(zip(("task", "counter", "used", "limit"), b[:4], strict=True)) for b in view["budgets"]],
                             "breakers": view["breakers"], "kill_switch_problem": view["kill_problem"]})

    async def kill(request: Request) -> Response:
        refused = _same_origin(request)
        if refused is not None:
            return _error(403, refused)
        denied = _operator(request)
        if denied is not None:
            return denied
        agent, action = request.path_params["agent"], request.path_params["action"]
        if action not in ("kill", "revive"):
            return _error(404, f"no action {action!r}: POST .../kill or .../revive")
        on = action == "kill"
        try:
            await run_in_threadpool(source.set_killed, agent, on)
        except Unavailable as exc:
            return _error(409, str(exc))
        rows = await run_in_threadpool(source.feed.rows)
        return JSONResponse({"ok": True, "agent": agent, "killed": source.killed(agent, rows)})

    def _approvals_view() -> dict[str, Any]:
        store = source.approvals
        if store is None:
            return {"problem": "no approvals store: give the state URL the Governor uses (agt dashboard --state URL)",
                    "pending": [], "others": []}
        pending, others = [], []
        for req in store.list():
            state = source.status_of(req)
            if state.status is ApprovalStatus.PENDING:
                pending.append({**req.to_dict(), **state.to_dict(), "digest": req.digest, "tampered": req.tampering(),
                                "document": (req.action or {}).get("document")})
            else:
                others.append((req.id, req.agent_id, req.tool, ", ".join(req.rule_ids), state.status.value,
                               ", ".join(state.approvals) or "-"))
        return {"problem": None, "pending": pending, "others": others[-50:][::-1]}

    async def approvals_page(request: Request) -> Response:
        try:
            view = await run_in_threadpool(_approvals_view)
        except AgtError as exc:
            view = {"problem": f"cannot read the approvals store: {exc}", "pending": [], "others": []}
        body = pages.approvals_page(_base(request), view["pending"], view["others"], view["problem"], source.registry.names)
        return _html(pages.layout(_base(request), "approvals", body, "approvals"))

    async def api_approvals(request: Request) -> Response:
        try:
            view = await run_in_threadpool(_approvals_view)
        except AgtError as exc:
            return _error(503, f"cannot read the approvals store: {exc}")
        if view["problem"]:
            return _error(503, view["problem"])
        return JSONResponse(json.loads(json.dumps(view["pending"], default=str)))

    async def api_approvers(request: Request) -> Response:
        """The registry's public keys, for the browser to find which approver a selected key file is."""
        registry = source.registry
        out = []
        for name in registry.names:
            identity = registry.get(name)
            assert identity is not None
            raw = base64.b64decode(identity.public_key_b64)
            out.append({"name": name, "did": identity.did,
                        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")})
        return JSONResponse({"approvers": out})

    async def vote(request: Request) -> Response:
        refused = _same_origin(request)
        if refused is not None:
            return _error(403, refused)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "a vote is a JSON document (Content-Type: application/json)")
        store = source.approvals
        if store is None:
            return _error(503, "no approvals store: give the state URL the Governor uses (agt dashboard --state URL)")
        body = await request.body()
        if len(body) > 16_384:
            return _error(413, "a vote envelope is small; this body is over 16 KiB")
        try:
            doc = json.loads(body)
        except ValueError as exc:
            return _error(400, f"not valid JSON: {exc}")
        request_id = request.path_params["request_id"]
        try:
            signed = await run_in_threadpool(submit_vote, store, request_id, doc, source.registry,
                                             resolve_agent=source.resolve_agent, clock=cfg.clock)
            state = await run_in_threadpool(lambda: source.status_of(store.get(request_id)))
        except ApprovalError as exc:
            return _error(403, str(exc))
        except AgtError as exc:
            return _error(503, f"cannot reach the approvals store: {exc}")
        return JSONResponse({"ok": True, "id": request_id, "voted_by": signed.approver, "approve": signed.approve,
                             "status": state.status.value, "approvals": list(state.approvals)})

    def _audit() -> Any:
        return source.audit_status()

    async def audit_page(request: Request) -> Response:
        status = await run_in_threadpool(_audit)
        return _html(pages.layout(_base(request), "audit log", pages.audit_page(status), "audit"))

    async def api_audit(request: Request) -> Response:
        status = await run_in_threadpool(_audit)
        return JSONResponse({"ok": status.ok, "location": status.location, "report": status.report,
                             "last_checkpoint": status.last_checkpoint, "witness": status.witness, "error": status.error,
                             "key": status.key})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return PlainTextResponse("not found", 404)
        data = resources.files("agt.serve.dashboard").joinpath("static", name).read_bytes()
        return Response(data, media_type=_STATIC[name])

    return [
        Route("/", stream_page),
        Route("/events", events),
        Route("/rules/{rule:path}", rule_page),
        Route("/agents", agents_page),
        Route("/agents/{agent}", agent_page),
        Route("/approvals", approvals_page),
        Route("/audit", audit_page),
        Route("/static/{name}", static),
        Route("/api/records", api_records),
        Route("/api/agents/{agent}", api_agent),
        Route("/api/agents/{agent}/{action}", kill, methods=["POST"]),
        Route("/api/approvals", api_approvals),
        Route("/api/approvers", api_approvers),
        Route("/api/approvals/{request_id}/vote", vote, methods=["POST"]),
        Route("/api/audit", api_audit),
    ]


def dashboard_app(source: DashboardSource, config: DashboardConfig | None = None) -> DashboardApp:
    """The dashboard as one ASGI app: run it alone (``agt dashboard``) or mount it into ``agt serve``:
    ``Mount("/dashboard", app=dashboard_app(GovernorSource(governor), DashboardConfig(operator_token=...)))``;
    call its ``close()`` when the server begins to shut down."""
    cfg = config or DashboardConfig()
    stopping = threading.Event()
    return DashboardApp(Starlette(routes=dashboard_routes(source, cfg, stopping)), cfg.allowed_hosts, stopping)
