"""The engine protocol and the registry engines are found in by name."""

from __future__ import annotations

import importlib
from typing import Callable, Iterable, Protocol, runtime_checkable

from agt.action import Action
from agt.decision import Decision
from agt.errors import UnknownEngineError


@runtime_checkable
class Engine(Protocol):
    """What every engine implements. ``evaluate`` never raises for a bad action or an engine fault:
    it returns a fail-closed deny naming the cause."""

    name: str

    @property
    def revision(self) -> str:
        """Identifies the loaded policy (a content hash), for audit records and parity reports."""
        ...

    def evaluate(self, action: Action) -> Decision: ...

    def evaluate_many(self, actions: Iterable[Action]) -> list[Decision]: ...

    def close(self) -> None: ...


EngineFactory = Callable[..., Engine]
_REGISTRY: dict[str, EngineFactory] = {}


def register(name: str, factory: EngineFactory) -> None:
    _REGISTRY[name] = factory


def available_engines() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_REGISTRY))


def create_engine(name: str, policy: str, **options: object) -> Engine:
    """Build the engine registered as ``name`` for the policy at ``policy`` (a file or directory).

    ``catalog=`` (a path, an :class:`agt.catalog.Catalog` or a mapping) is the tool catalog every built-in
    engine checks params against; without it, each uses the ``catalog.yaml`` beside the policy, if any.

    Raises PolicyLoadError when the policy cannot be loaded: a policy that fails to load never
    becomes an engine that allows.
    """
    _load_builtin(name)
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownEngineError(
            f"no engine named {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return factory(policy, **options)


_BUILTIN = ("yaml", "cedar", "opa")


def _load_builtin(name: str | None = None) -> None:
    """Import the built-in engines (only ``name``'s, when it is one of them). Imported lazily so that `import agt`
    stays cheap, a yaml decision never imports cedarpy or httpx, and an engine's optional dependency breaks only
    that engine."""
    for builtin in (name,) if name in _BUILTIN else _BUILTIN:
        if builtin not in _REGISTRY:
            importlib.import_module(f"agt.engines.{builtin}")
