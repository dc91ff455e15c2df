"""`python -m bench --quick --only serve --json` runs a real agt serve and reports its figures (shape only: no
figure here is a speed assertion)."""

import json
import subprocess
import sys

from bench import summary
from bench.serve import CLIENTS


def test_serve_section_runs_and_reports_its_keys(root):
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "serve", "--json"],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    extra = report["extra"]
    for key in ("serve_sidecar_p50_us", "serve_sidecar_p99_us", "serve_sidecar_floor_p50_us", "serve_tcp_p50_us",
                *(f"serve_throughput_{n}_per_s" for n in CLIENTS)):
        assert extra[key] > 0, key
    names = [f["name"] for f in report["figures"]]
    assert any(n.startswith("serve sidecar, unix socket: one decision") for n in names)
    rows = {r["workload"]: r for r in report["summary"]}
    assert rows["agt serve sidecar (unix) one decision p50"]["measured"] != summary.NOT_MEASURED
