"""One ``agt verify`` run: load the deployment's policy as its runtime would, gather the facts, read the
test reports, judge every risk, and (optionally) write signed evidence."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from agt.errors import AgtError
from agt.verify.assess import Assessment, assess
from agt.verify.deployment import ConfigError, Deployment
from agt.verify.facts import gather
from agt.verify.junit import JunitReports, read_reports
from agt.verify.mapping import OwaspMapping, load_mapping


@dataclass(frozen=True)
class Verification:
    deployment: Deployment
    mapping: OwaspMapping
    assessment: Assessment
    engine: str
    revision: str
    reports: JunitReports | None


def _engine_options(d: Deployment) -> dict[str, object]:
    options: dict[str, object] = {}
    if d.catalog is not None:
        options["catalog"] = str(d.catalog)
    if d.engine == "opa":
        if d.opa_url:
            options["url"] = d.opa_url
        if d.opa_token_file is not None:
            try:
                options["token"] = d.opa_token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the OPA token file: {exc.strerror or exc}", file=str(d.opa_token_file),
                                  field="opa.token_file") from None
        if d.opa_unix_socket:
            options["unix_socket"] = True
    return options


def verify_deployment(deployment: Deployment, *, junit: Iterable[str | os.PathLike[str]] = (),
                      accepted: Iterable[str] = (), mapping: OwaspMapping | None = None) -> Verification:
    """Raises AgtError (PolicyLoadError, ConfigError, JunitError) when an input cannot be read: a policy
    that does not load is an error, never a deployment judged without its policy."""
    from agt.authoring.check import guess_engine
    from agt.engines import create_engine

    if deployment.policy is None:
        raise ConfigError("no policy: give --policy or policy: in the deployment file", field="policy")
    if not deployment.policy.exists():
        raise ConfigError("no such file or directory", file=str(deployment.policy), field="policy")
    d = deployment if deployment.engine else deployment.merged({"engine": guess_engine(str(deployment.policy))})
    mapping = mapping or load_mapping()
    junit = list(junit)
    reports = read_reports(junit) if junit else None
    engine = create_engine(d.engine, str(d.policy), **_engine_options(d))  # type: ignore[arg-type]
    try:
        facts = gather(d, engine)
        revision = engine.revision
    finally:
        engine.close()
    return Verification(d, mapping, assess(mapping, facts, reports, accepted), d.engine or "", revision, reports)


def write_evidence(v: Verification, out: str | os.PathLike[str], agt_version: str) -> dict[str, object]:
    """Sign the evidence with the deployment's audit checkpoint key (never created here) and write it."""
    from agt.audit.log import load_signing_key
    from agt.verify.evidence import build_evidence, sign_evidence

    if v.deployment.audit_key is None:
        raise ConfigError("--evidence is signed with the audit checkpoint key: give --audit-key or audit.key",
                          field="audit.key")
    try:
        key = load_signing_key(v.deployment.audit_key)
    except OSError as exc:
        raise AgtError(f"{v.deployment.audit_key}: cannot read the signing key: {exc.strerror or exc}") from None
    sections = build_evidence(v.assessment, v.mapping, deployment=v.deployment.to_dict(), engine=v.engine,
                              revision=v.revision, policy=v.deployment.policy,  # type: ignore[arg-type]
                              junit_files=v.reports.files if v.reports else None, agt_version=agt_version)
    doc = sign_evidence(sections, key)
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return doc
