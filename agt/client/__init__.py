"""Clients of agt serve: RemoteGovernor (the Governor surface) and RemoteEngine (the Engine protocol).

    from agt.client import RemoteGovernor
    gov = RemoteGovernor("unix:///run/agt/agt.sock", token_file="/run/agt/agent.token")
    gov.call(send_email, kwargs={"to": "a@example.com"}, agent="support-bot")

Every fault of the service or the connection denies, naming the cause (docs/serve.md, "Clients").
"""

from agt.client._transport import RemoteError
from agt.client.engine import RemoteEngine
from agt.client.governor import RemoteGovernor, RemoteTicket

__all__ = ["RemoteEngine", "RemoteError", "RemoteGovernor", "RemoteTicket"]
