"""The OWASP Agentic Top 10 mapping: each risk, the agt controls that answer it, and the tests that prove them.

The mapping is package data (``agt/verify/owasp.yaml``); docs/owasp.md renders it for a reviewer. A control
names the deployment facts it needs (:data:`agt.verify.facts.FACTS`) and the pytest node ids that prove it;
tests/test_verify_mapping.py checks that every one of those ids exists, so the mapping cannot rot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

from agt.errors import AgtError
from agt.verify.facts import FACTS

RISK_IDS = tuple(f"ASI{n:02d}" for n in range(1, 11))
COVERAGE = ("full", "partial", "none")


class MappingError(AgtError):
    """The mapping file is malformed; the message names the field (``risks[2].controls``)."""

    def __init__(self, field: str, message: str, source: str = "owasp.yaml") -> None:
        self.field = field
        self.file = source
        self.message = f"{source}: {field}: {message}"
        super().__init__(self.message)


@dataclass(frozen=True)
class Control:
    id: str
    gate: str
    what: str
    requires: tuple[str, ...]
    """Fact ids (agt.verify.facts) that must hold in the deployment for the control to be effective."""
    tests: tuple[str, ...]
    """pytest node ids, without parameters (``tests/x.py::test_y`` covers every ``test_y[...]``)."""
    rules: tuple[str, ...] = ()
    """The starter policy's rules that implement it (for the reader; not a requirement)."""


@dataclass(frozen=True)
class Risk:
    id: str
    name: str
    summary: str
    coverage: str
    """What agt can offer at best: full, partial or none (the mapping's own, honest ceiling)."""
    reason: str
    controls: tuple[str, ...]


@dataclass(frozen=True)
class OwaspMapping:
    version: str
    source: Mapping[str, str]
    controls: Mapping[str, Control]
    risks: tuple[Risk, ...]
    sha256: str
    """The digest of the mapping file as shipped, recorded in the evidence."""

    def risk(self, risk_id: str) -> Risk:
        return next(r for r in self.risks if r.id == risk_id)

    def test_ids(self) -> tuple[str, ...]:
        """Every test id any control names, each once, in mapping order."""
        return tuple(dict.fromkeys(t for c in self.controls.values() for t in c.tests))


def _text(doc: Mapping[str, Any], key: str, field: str, source: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{field}.{key}" if field else key, "expected non-empty text", source)
    return value.strip()


def _names(doc: Mapping[str, Any], key: str, field: str, source: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise MappingError(f"{field}.{key}", "expected a list of names", source)
    if len(set(value)) != len(value):
        raise MappingError(f"{field}.{key}", "lists a name twice", source)
    return tuple(value)


def _control(cid: str, doc: Any, source: str) -> Control:
    field = f"controls.{cid}"
    if not isinstance(doc, dict):
        raise MappingError(field, "expected a mapping", source)
    unknown = set(doc) - {"gate", "what", "requires", "tests", "rules"}
    if unknown:
        raise MappingError(f"{field}.{sorted(unknown)[0]}", "unknown key", source)
    requires = _names(doc, "requires", field, source)
    for fact in requires:
        if fact not in FACTS:
            raise MappingError(f"{field}.requires", f"unknown fact {fact!r}; known: {', '.join(FACTS)}", source)
    tests = _names(doc, "tests", field, source)
    if not tests:
        raise MappingError(f"{field}.tests", "a control needs at least one test that proves it", source)
    for test in tests:
        if not test.startswith("tests/") or "::" not in test or "[" in test:
            raise MappingError(f"{field}.tests", f"{test!r} is not a pytest node id (tests/<file>.py::<test>, no parameters)", source)
    return Control(cid, _text(doc, "gate", field, source), " ".join(_text(doc, "what", field, source).split()),
                   requires, tests, _names(doc, "rules", field, source))


def _risk(index: int, doc: Any, controls: Mapping[str, Control], source: str) -> Risk:
    field = f"risks[{index}]"
    if not isinstance(doc, dict):
        raise MappingError(field, "expected a mapping", source)
    unknown = set(doc) - {"id", "name", "summary", "coverage", "reason", "controls"}
    if unknown:
        raise MappingError(f"{field}.{sorted(unknown)[0]}", "unknown key", source)
    rid = _text(doc, "id", field, source)
    if rid not in RISK_IDS:
        raise MappingError(f"{field}.id", f"{rid!r} is not one of ASI01..ASI10", source)
    coverage = _text(doc, "coverage", field, source)
    if coverage not in COVERAGE:
        raise MappingError(f"{field}.coverage", f"expected one of {', '.join(COVERAGE)}, got {coverage!r}", source)
    names = _names(doc, "controls", field, source)
    for name in names:
        if name not in controls:
            raise MappingError(f"{field}.controls", f"unknown control {name!r}", source)
    if coverage != "none" and not names:
        raise MappingError(f"{field}.controls", f"coverage {coverage} needs at least one control", source)
    return Risk(rid, _text(doc, "name", field, source), _text(doc, "summary", field, source), coverage,
                " ".join(_text(doc, "reason", field, source).split()), names)


def parse_mapping(text: str, source: str = "owasp.yaml") -> OwaspMapping:
    """Validate a mapping document; every problem names its field."""
    import yaml

    from agt._yaml import safe_load

    try:
        doc = safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError("", f"not valid YAML: {exc}", source) from None
    if not isinstance(doc, dict):
        raise MappingError("", "expected a mapping with version, source, controls and risks", source)
    unknown = set(doc) - {"version", "source", "controls", "risks"}
    if unknown:
        raise MappingError(sorted(unknown)[0], "unknown key", source)
    if not isinstance(doc.get("source"), dict):
        raise MappingError("source", "expected a mapping (title, publisher, edition, url)", source)
    raw_controls = doc.get("controls")
    if not isinstance(raw_controls, dict) or not raw_controls:
        raise MappingError("controls", "expected a mapping of control id to control", source)
    controls = {str(cid): _control(str(cid), body, source) for cid, body in raw_controls.items()}
    raw_risks = doc.get("risks")
    if not isinstance(raw_risks, list):
        raise MappingError("risks", "expected a list", source)
    risks = tuple(_risk(i, body, controls, source) for i, body in enumerate(raw_risks))
    ids = [r.id for r in risks]
    for rid in RISK_IDS:
        if ids.count(rid) != 1:
            raise MappingError("risks", f"{rid} appears {ids.count(rid)} times; every ASI id appears exactly once", source)
    return OwaspMapping(_text(doc, "version", "", source), {str(k): str(v) for k, v in doc["source"].items()},
                        controls, risks, hashlib.sha256(text.encode("utf-8")).hexdigest())


def load_mapping() -> OwaspMapping:
    """The mapping shipped with agt."""
    text = resources.files("agt.verify").joinpath("owasp.yaml").read_text(encoding="utf-8")
    return parse_mapping(text, "agt/verify/owasp.yaml")
