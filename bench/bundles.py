"""Bundle build + sign time for 10, 100 and 1,000 policy files, and the decision-log receiver's
throughput in events per second (gzipped batches POSTed over loopback by a bounded load loop)."""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Callable

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agt.audit import AuditLog
from agt.bundle import build_bundle
from agt.bundle.server import BundleServer, BundleService, BundleSource
from bench.stats import Figures, measure


def run(quick: bool = False, progress: Callable[[str], None] = print) -> tuple[list[Figures], dict[str, float]]:
    figures: list[Figures] = []
    extra: dict[str, float] = {}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with tempfile.TemporaryDirectory() as tmp:
        for n in (10, 100) if quick else (10, 100, 1000):
            progress(f"bundle build + sign, {n} files")
            d = Path(tmp) / f"p{n}"
            for i in range(n):
                (d / f"team{i % 10}").mkdir(parents=True, exist_ok=True)
                (d / f"team{i % 10}" / f"r{i}.rego").write_text(
                    f'package agt.policies.p{i}\n\ndeny["rule-{i}"] := "no" if input.action.tool == "tool_{i}"\n')
            rounds = 20 if n < 1000 else 5
            figures.append(measure(f"bundle build + sign (RS256), {n} policy files", lambda: build_bundle([d], signing_key=key),
                                   rounds, warmup=1))

        progress("decision-log receiver")
        rego = Path(tmp) / "rego"
        rego.mkdir()
        (rego / "p.rego").write_text("package agt.p\n\nx := 1\n")
        audit = AuditLog(Path(tmp) / "audit", durability="batch", checkpoint_every=1000, signing_key=Ed25519PrivateKey.generate())
        events = [{"decision_id": f"e{i}", "path": "agt/decision", "timestamp": "2026-11-23T08:00:00Z",
                   "input": {"agent": {"id": "a"}, "action": {"tool": "read_file"}}, "result": {"effect": "allow"},
                   "labels": {"id": "opa-1"}} for i in range(100)]
        body = gzip.compress(json.dumps(events).encode())
        batches = 20 if quick else 100
        with BundleServer(BundleService([BundleSource("agt", [rego])], audit=audit)) as server, httpx.Client() as client:
            start = time.perf_counter()
            for _ in range(batches):  # bounded: a fixed number of batches to loopback only
                r = client.post(server.url + "/logs", content=body, headers={"Content-Encoding": "gzip"})
                r.raise_for_status()
            accepted = time.perf_counter() - start
            audit.flush()
            durable = time.perf_counter() - start
        audit.close()
        extra["receiver_events_per_s_accepted"] = batches * len(events) / accepted
        extra["receiver_events_per_s_written"] = batches * len(events) / durable
    return figures, extra
