"""The agt serve ASGI app: Starlette over one Governor (:class:`Service`, which answers the decision endpoint ahead
of Starlette's routing). The OPA-shaped decision API (agt.serve.decision_api)
and the runtime API (agt.serve.runtime_api) are its routes; ``extra_routes`` is the seam for more (the
Prometheus ``/metrics`` endpoint, a dashboard) without touching this module.

The app does not own the Governor: whoever built it closes it. It owns the tickets of calls begun over HTTP:
a background sweep abandons expired ones, and shutdown abandons those still open (their reservations are
released and the audit records them as not run)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from agt.runtime.governor import Governor
from agt.serve import decision_api, runtime_api
from agt.serve._http import INTERNAL, INVALID, NOT_FOUND, error_response
from agt.serve.auth import Credentials
from agt.serve.tickets import DEFAULT_CAPACITY, DEFAULT_TTL, TicketTable

_log = logging.getLogger("agt.serve")


def create_app(
    governor: Governor, *, credentials: Credentials | None = None, ticket_ttl: float = DEFAULT_TTL,
    max_tickets: int = DEFAULT_CAPACITY, extra_routes: Sequence[BaseRoute] = (), sweep_every: float | None = None,
) -> Service:
    """The service over ``governor``. ``credentials`` default to none at all: agent endpoints open, operator
    endpoints closed (the CLI decides when that is allowed). ``sweep_every`` (seconds) is how often expired
    tickets are abandoned, by default a tenth of ``ticket_ttl`` (at most 5 s)."""
    tickets = TicketTable(governor, ttl=ticket_ttl, capacity=max_tickets)
    every = sweep_every if sweep_every is not None else min(5.0, ticket_ttl / 10)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(_warm_up, governor)
        sweeper = asyncio.create_task(_sweep(tickets, every))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await run_in_threadpool(tickets.abandon_all, "agt serve stopped before the call's outcome was reported")

    app = Service(
        routes=[*decision_api.ROUTES, *runtime_api.ROUTES, *extra_routes],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},  # type: ignore[dict-item]
        lifespan=lifespan,
    )
    app.state.governor = governor
    app.state.credentials = credentials or Credentials()
    app.state.tickets = tickets
    return app


class Service(Starlette):
    """Starlette, with the sidecar's hot endpoint, ``POST /v1/data/agt/decision``, called ahead of its middleware
    stack and router: with Request, Response and the ``needs`` wrapper they took ~17 µs of the ~90 µs the app spent
    on a decision (issue 15's sidecar budget is 250 µs for the whole round trip). The endpoint is
    the same ASGI function its route calls (decision_api.decide_request: the same auth, limits and answers); what
    the dispatch skips is the routing, and it keeps what the middleware would have done for it: an exception
    still answers 500 ``internal_error`` (when nothing was sent yet) and propagates to the server."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != decision_api.DECISION_PATH or scope["method"] != "POST" \
                or scope.get("root_path"):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await decision_api.decide_request(scope, receive, sending)
        except Exception as exc:
            if not started:
                await (await _internal_error(None, exc))(scope, receive, send)  # type: ignore[arg-type]
            raise


WARM_UP = (
    {"agent": {"id": "agt-serve-warm-up"}, "action": {"tool": "run_shell", "params": {"command": "ls | wc -l"}}},
    {"agent": {"id": "agt-serve-warm-up"}, "action": {"tool": "query_db", "params": {"sql": "SELECT 1"}}},
)


def _warm_up(governor: Governor) -> None:
    """Decide two actions before serving (engine only: nothing counted or audited), so the first request does not
    pay about a second for what loads lazily: the shell and SQL parsers, the compiled action schema."""
    for doc in WARM_UP:
        decision_api.decide(governor.engine, doc)


async def _sweep(tickets: TicketTable, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(tickets.expire)
        except Exception:  # noqa: BLE001 - the sweep goes on; the failure is logged
            _log.exception("expiring tickets failed")


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    code = NOT_FOUND if exc.status_code == 404 else INVALID
    return error_response(exc.status_code, code, str(exc.detail))


async def _internal_error(_request: Request, exc: Exception) -> Response:
    _log.exception("agt serve: unhandled error", exc_info=exc)
    return error_response(500, INTERNAL, f"{type(exc).__name__}: {exc}")
