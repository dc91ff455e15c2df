"""Policy engines behind one protocol: ``yaml`` (native), ``cedar`` (embedded), and more by registry."""

from agt.engines.base import Engine, available_engines, create_engine, register

__all__ = ["Engine", "available_engines", "create_engine", "register"]
