"""Conformance suites: one policy in several languages, and cases every engine must decide alike.

A suite file (YAML) names the policy per engine (paths relative to the suite file), a ``defaults``
action merged under every case (a ``null`` removes a default), and the cases: an action plus the
expected effect and rule ids. A case may list engines it is ``not_portable`` to, with a reason.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from agt import _yaml
from agt.action import Action
from agt.decision import Effect
from agt.errors import ActionError, AgtError


class SuiteError(AgtError):
    """A suite file is malformed; the message names the file and the case."""


@dataclass(frozen=True)
class Expectation:
    effect: Effect
    rules: tuple[str, ...]
    approvers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    action: Action
    expect: Expectation
    not_portable: Mapping[str, str] = field(default_factory=dict)
    """engine name -> why this case cannot be expressed there."""


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    policies: Mapping[str, str]
    """engine -> policy path; several paths are joined with os.pathsep."""
    cases: tuple[Case, ...]
    description: str = ""


def deep_merge(base: Any, override: Any) -> Any:
    """Merge ``override`` onto ``base``: mappings merge key by key, a None value removes the key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif key in out:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_suite(path: str | Path) -> Suite:
    p = Path(path)
    try:
        data = _yaml.safe_load(p.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{p}: cannot read suite: {exc}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{p}: malformed YAML: {exc}") from None
    except RecursionError:
        raise SuiteError(f"{p}: YAML nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise SuiteError(f"{p}: a suite is a mapping with a 'cases' list")
    policies_raw = data.get("policies") or {}
    if not isinstance(policies_raw, dict) or not policies_raw:
        raise SuiteError(f"{p}: 'policies' must map engine names to policy paths")
    # A list of paths (OPA loads several) becomes one os.pathsep-separated string, like PATH.
    policies = {
        engine: os.pathsep.join(str((p.parent / str(r)).resolve()) for r in (rel if isinstance(rel, list) else [rel]))
        for engine, rel in policies_raw.items()
    }
    defaults = data.get("defaults") or {}
    cases = []
    seen: set[str] = set()
    for i, raw in enumerate(data["cases"]):
        where = f"{p}: case #{i + 1}"
        if not isinstance(raw, dict) or "name" not in raw:
            raise SuiteError(f"{where}: a case needs a name")
        name = str(raw["name"])
        where = f"{p}: case {name!r}"
        if name in seen:
            raise SuiteError(f"{where}: duplicate case name")
        seen.add(name)
        try:
            action = Action.from_dict(deep_merge(defaults, raw.get("action") or {}))
        except ActionError as exc:
            raise SuiteError(f"{where}: invalid action: {exc}") from None
        expect = raw.get("expect")
        if not isinstance(expect, dict) or "effect" not in expect:
            raise SuiteError(f"{where}: 'expect' needs an effect")
        try:
            effect = Effect(expect["effect"])
        except ValueError:
            raise SuiteError(f"{where}: unknown effect {expect['effect']!r}") from None
        rules = expect.get("rules") or []
        approvers = expect.get("approvers")
        not_portable = raw.get("not_portable") or {}
        if not isinstance(not_portable, dict):
            raise SuiteError(f"{where}: not_portable maps engine names to a reason")
        cases.append(Case(
            name=name,
            action=action,
            expect=Expectation(effect, tuple(sorted(rules)), tuple(sorted(approvers)) if approvers is not None else None),
            not_portable={str(k): str(v) for k, v in not_portable.items()},
        ))
    return Suite(str(data.get("suite", p.stem)), p, policies, tuple(cases), str(data.get("description", "")))
