"""Everything about running and reaching OPA: finding the binary, managing a local server."""

from agt.opa.binary import OpaNotFound, find_opa, opa_version
from agt.opa.server import ManagedOpa, OpaStartError

__all__ = ["ManagedOpa", "OpaNotFound", "OpaStartError", "find_opa", "opa_version"]
