"""What a deployment of agt is made of, as ``agt verify`` reads it: a small YAML file (``--config``), flags, or both.

The file describes the Governor a deployment runs (the same parts ``agt mcp proxy`` and ``agt serve`` take as
flags), so a reviewer can check it without starting anything::

    engine: yaml                      # yaml | cedar | opa (guessed from the policy when omitted)
    policy: /etc/agt/policies/prod.yaml
    catalog: /etc/agt/catalog.yaml    # default: the catalog.yaml beside the policy
    mode: strict                      # default: the policy's governance.policy_mode, else strict
    state: sqlite:///var/lib/agt/state.db
    rate_limits: {"agent:*": "100/minute"}
    approvals: {store: /var/lib/agt/approvals.db, registry: /etc/agt/approvers.json}
    audit: {log: /var/log/agt/audit, key: /var/lib/agt/audit-key, public_key: /etc/agt/audit.pub,
            witness: /srv/witness/checkpoints.jsonl}
    identity: {require: true, require_delegation: true, trusted_roots: {ops: "did:key:z6Mk..."}}
    opa: {url: https://opa.internal:8181, token_file: /etc/agt/opa-token, unix_socket: false}
    output: {policy: /etc/agt/output.yaml, engine: yaml}
    mcp: {hide_denied: true}

Relative paths are relative to the file. Every error names the file, the line and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from agt.errors import AgtError, PolicyLoadError

ENGINES = ("yaml", "cedar", "opa")
MODES = ("strict", "permissive", "audit")


class ConfigError(AgtError):
    """A deployment file (or flag) that does not describe a deployment; names the file, line and field."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str | None = None) -> None:
        self.message, self.file, self.line, self.field = message, file, line, field
        where = ":".join(str(x) for x in (file, line) if x is not None)
        super().__init__(f"{where + ': ' if where else ''}{field + ': ' if field else ''}{message}")


@dataclass(frozen=True)
class Deployment:
    """One deployment's configuration; ``None`` means "not configured" (never a guessed value)."""

    policy: Path | None = None
    engine: str | None = None
    catalog: Path | None = None
    mode: str | None = None
    state: str | None = None
    rate_limits: Mapping[str, str] = field(default_factory=dict)
    approvals_store: Path | None = None
    approvers: Path | None = None
    """The approver registry file (name -> did:key) votes are verified against."""
    audit_log: Path | None = None
    audit_key: Path | None = None
    """The checkpoint signing key (private); it also signs ``agt verify --evidence``."""
    audit_public_key: Path | None = None
    audit_witness: str | None = None
    require_identity: bool = False
    require_delegation: bool = False
    trusted_roots: Mapping[str, str] = field(default_factory=dict)
    opa_url: str | None = None
    opa_token_file: Path | None = None
    opa_unix_socket: bool = False
    output_policy: Path | None = None
    output_engine: str | None = None
    mcp_hide_denied: bool | None = None
    """None: the deployment has no MCP proxy; else whether it hides the tools an agent can never call."""
    source: str = "<flags>"

    def merged(self, overrides: Mapping[str, Any]) -> "Deployment":
        """This deployment with the given fields replaced (flags over the file); None values are ignored."""
        given = {k: v for k, v in overrides.items() if v is not None and v != {} and v is not False}
        unknown = set(given) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"not a deployment field: {sorted(unknown)[0]}")
        return replace(self, **given)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as the evidence records it: paths as given, no secrets (the OPA token is a file name)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else (dict(value) if isinstance(value, Mapping) else value)
        return out


# --- the file ------------------------------------------------------------------------------------

_SECTIONS: dict[str, dict[str, tuple[str, type]]] = {
    "": {"engine": ("engine", str), "policy": ("policy", Path), "catalog": ("catalog", Path), "mode": ("mode", str),
         "state": ("state", str), "rate_limits": ("rate_limits", dict)},
    "approvals": {"store": ("approvals_store", Path), "registry": ("approvers", Path)},
    "audit": {"log": ("audit_log", Path), "key": ("audit_key", Path), "public_key": ("audit_public_key", Path),
              "witness": ("audit_witness", str)},
    "identity": {"require": ("require_identity", bool), "require_delegation": ("require_delegation", bool),
                 "trusted_roots": ("trusted_roots", dict)},
    "opa": {"url": ("opa_url", str), "token_file": ("opa_token_file", Path), "unix_socket": ("opa_unix_socket", bool)},
    "output": {"policy": ("output_policy", Path), "engine": ("output_engine", str)},
    "mcp": {"hide_denied": ("mcp_hide_denied", bool)},
}
"""section -> key -> (Deployment field, type). The top level is section ""."""


def _line(doc: Any, key: str) -> int | None:
    return getattr(doc, "key_lines", {}).get(key) or getattr(doc, "line", None)


def _value(raw: Any, kind: type, where: str, source: str, line: int | None, base: Path) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"expected {expected}, got {type(raw).__name__} {raw!r}", file=source, line=line, field=where)

    if kind is bool:
        if not isinstance(raw, bool):
            raise bad("true or false")
        return raw
    if kind is dict:
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items()):
            raise bad("a mapping of text to text")
        return {k: v for k, v in raw.items()}
    if not isinstance(raw, str) or not raw.strip():
        raise bad("non-empty text")
    if kind is Path:
        p = Path(os.path.expanduser(raw))
        return p if p.is_absolute() else base / p
    return raw


def load_deployment(path: str | os.PathLike[str]) -> Deployment:
    """Read a deployment file. Unknown sections and keys are errors, not ignored: a typo such as
    ``requre: true`` would otherwise read as "identity not required" without a word."""
    from agt.engines.yaml_policy import _read_yaml  # the YAML reader that keeps line numbers (bounded aliases)

    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise ConfigError("no such file", file=source)
    try:
        doc, _text = _read_yaml(p)
    except PolicyLoadError as exc:
        raise ConfigError(exc.message.replace("cannot read policy", "cannot read the deployment file"),
                          file=source, line=exc.line) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping (engine, policy, approvals, audit, identity, opa, output, mcp, ...)",
                          file=source, line=1)
    base = p.parent.resolve()
    values: dict[str, Any] = {}
    for key, raw in doc.items():
        if key in _SECTIONS[""]:
            name, kind = _SECTIONS[""][key]
            values[name] = _value(raw, kind, key, source, _line(doc, key), base)
        elif key in _SECTIONS and key:
            if not isinstance(raw, dict):
                raise ConfigError(f"expected a mapping of {', '.join(_SECTIONS[key])}", file=source,
                                  line=_line(doc, key), field=key)
            for sub, sub_raw in raw.items():
                if sub not in _SECTIONS[key]:
                    raise ConfigError(f"unknown key; expected one of {', '.join(_SECTIONS[key])}", file=source,
                                      line=_line(raw, sub), field=f"{key}.{sub}")
                name, kind = _SECTIONS[key][sub]
                values[name] = _value(sub_raw, kind, f"{key}.{sub}", source, _line(raw, sub), base)
            if key == "mcp":
                values.setdefault("mcp_hide_denied", False)
        else:
            known = [k for k in _SECTIONS[""]] + [k for k in _SECTIONS if k]
            raise ConfigError(f"unknown key; expected one of {', '.join(known)}", file=source, line=_line(doc, key),
                              field=str(key))
    deployment = Deployment(source=source, **values)
    check(deployment, source, lambda f: _field_line(doc, f))
    return deployment


def _field_line(doc: Any, dotted: str) -> int | None:
    section, _, key = dotted.rpartition(".")
    node = doc.get(section) if section else doc
    return _line(node, key) if isinstance(node, dict) else None


_FIELD_NAMES = {name: (f"{section}.{key}" if section else key)
                for section, keys in _SECTIONS.items() for key, (name, _kind) in keys.items()}


def check(deployment: Deployment, source: str = "<flags>", line_of: Any = lambda _f: None) -> None:
    """Values that have the right type but cannot work: an unknown engine or mode, a bad rate limit."""
    from agt.runtime.state import RateLimit

    def fail(name: str, message: str) -> ConfigError:
        where = _FIELD_NAMES[name] if source != "<flags>" else "--" + name.replace("_", "-")
        return ConfigError(message, file=None if source == "<flags>" else source, line=line_of(_FIELD_NAMES[name]), field=where)

    if deployment.engine is not None and deployment.engine not in ENGINES:
        raise fail("engine", f"expected one of {', '.join(ENGINES)}, got {deployment.engine!r}")
    if deployment.output_engine is not None and deployment.output_engine not in ENGINES:
        raise fail("output_engine", f"expected one of {', '.join(ENGINES)}, got {deployment.output_engine!r}")
    if deployment.mode is not None and deployment.mode not in MODES:
        raise fail("mode", f"expected one of {', '.join(MODES)}, got {deployment.mode!r}")
    for key, text in deployment.rate_limits.items():
        try:
            RateLimit.parse(text)
        except AgtError as exc:
            raise fail("rate_limits", f"{key}: {exc}") from None
    if deployment.state is not None and deployment.state.split(":", 1)[0] not in ("memory", "sqlite", "redis", "rediss"):
        raise fail("state", f"expected memory, sqlite:///path/state.db or redis://host:port/db, got {deployment.state!r}")
