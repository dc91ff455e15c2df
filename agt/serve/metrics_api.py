"""``GET /metrics``: the Governor's Prometheus metrics (agt.runtime.metrics), for a scraper holding the agent token.

The metrics are counts and latencies by gate, engine, effect and rule: what an agent could learn from its own
denials anyway, and nothing that changes governance. A scraper is configured with a bearer token as it would be
for any protected target (``authorization: {credentials_file: agent.token}`` in Prometheus)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agt.serve._http import needs
from agt.serve.auth import Role

METRICS_PATH = "/metrics"


@needs(Role.AGENT)
async def metrics_endpoint(request: Request) -> Response:
    from agt.runtime.metrics import render

    body, content_type = render(request.app.state.governor)
    return Response(body, media_type=content_type)


ROUTES = [Route(METRICS_PATH, metrics_endpoint, methods=["GET"])]
