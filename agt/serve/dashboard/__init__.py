"""The operators' dashboard: live decisions, rules and their coverage, agents (trust, budgets, breakers, the
kill switch), pending approvals voted on with signatures made in the approver's browser, and the audit log's
verification. One ASGI app over a :class:`DashboardSource`: a live Governor, or a log and a state URL on disk.

    from agt.serve.dashboard import DashboardConfig, GovernorSource, dashboard_app
    app = dashboard_app(GovernorSource(governor), DashboardConfig(operator_token=token))
    # agt serve mounts it: Mount("/dashboard", app=app)
"""

from agt.serve.dashboard.app import DashboardApp, DashboardConfig, dashboard_app, dashboard_routes
from agt.serve.dashboard.source import AuditStatus, DashboardSource, GovernorSource, LogSource, Unavailable

__all__ = ["AuditStatus", "DashboardApp", "DashboardConfig", "DashboardSource", "GovernorSource", "LogSource", "Unavailable",
           "dashboard_app", "dashboard_routes"]
