"""Clients of agt serve: RemoteGovernor (the Governor surface) and RemoteEngine (the Engine protocol)."""
