"""``agt verify``: the OWASP Agentic Top 10 (ASI01-ASI10) mapped onto agt's controls, checked against a
deployment's actual configuration and test results, with signed evidence a reviewer checks offline.

* :mod:`agt.verify.mapping`: the shipped mapping (``owasp.yaml``): risks, controls, test ids.
* :mod:`agt.verify.deployment`: the deployment file (``--config``) and flags.
* :mod:`agt.verify.facts`: what holds in the deployment, probed and checked.
* :mod:`agt.verify.junit`: test results from ``pytest --junitxml`` reports.
* :mod:`agt.verify.assess`: per risk, covered / partly / not covered, with the reasons.
* :mod:`agt.verify.evidence`: the evidence document, signed with the audit checkpoint key.
"""

from agt.verify.assess import COVERED, NOT_COVERED, PARTLY, Assessment, RiskStatus, assess
from agt.verify.deployment import ConfigError, Deployment, load_deployment
from agt.verify.evidence import EvidenceError, check_evidence, load_evidence
from agt.verify.mapping import MappingError, OwaspMapping, load_mapping
from agt.verify.run import Verification, verify_deployment, write_evidence

__all__ = [
    "COVERED", "NOT_COVERED", "PARTLY", "Assessment", "ConfigError", "Deployment", "EvidenceError", "MappingError",
    "OwaspMapping", "RiskStatus", "Verification", "assess", "check_evidence", "load_deployment", "load_evidence",
    "load_mapping", "verify_deployment", "write_evidence",
]
