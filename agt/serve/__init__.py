"""agt serve: the decision service, an ASGI app over the same Governor (OPA-shaped decision API, runtime API, metrics)."""
