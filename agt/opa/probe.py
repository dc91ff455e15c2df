"""Is an OPA's control plane open? ``agt doctor --opa-url`` asks this of an OPA the user runs.

The probe reads, never writes: ``GET /v1/policies`` without credentials. OPA checks every API call with the
same authorization, so if that answers 200, an anonymous ``PUT /v1/policies/...`` is very likely allowed as
well, and anyone who can reach the address (the governed agent included) can replace the policy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from agt.opa._http import DeadlineClient, HttpError


@dataclass(frozen=True, slots=True)
class PolicyApiProbe:
    url: str
    reachable: bool
    open: bool | None
    """True: the policy API answers without credentials. None: could not tell (unreachable, odd status)."""
    status: int | None
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def probe_policy_api(url: str, *, timeout: float = 5.0, verify: bool | str = True) -> PolicyApiProbe:
    try:
        client = DeadlineClient(url, verify=verify)
    except ValueError as exc:
        return PolicyApiProbe(url, False, None, None, str(exc))
    try:
        status = client.request("GET", "/v1/policies", headers=[("Accept", "application/json")], timeout=timeout).status
    except HttpError as exc:
        return PolicyApiProbe(url, False, None, None, f"no answer: {exc}")
    finally:
        client.close()
    if status == 200:
        return PolicyApiProbe(url, True, True, status, "GET /v1/policies answers without credentials: anyone who "
                              "can reach this OPA can likely read and replace its policies; run it with "
                              "--authentication=token --authorization=basic and a system.authz policy")
    if status in (401, 403):
        return PolicyApiProbe(url, True, False, status, "the policy API refuses requests without credentials")
    return PolicyApiProbe(url, True, None, status, f"GET /v1/policies answered HTTP {status}: not an OPA server API?")
