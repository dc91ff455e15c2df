"""Print benchmark figures: p50/p99 latency and throughput per engine and policy size."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from bench import core


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    quick = "--quick" in argv
    console = Console(stderr=True)
    with console.status("benchmarking") as status:
        figures = core.run(quick=quick, progress=lambda msg: status.update(f"benchmarking: {msg}"))
    if as_json:
        print(json.dumps([asdict(f) for f in figures], indent=2))
        return 0
    out = Console(width=max(Console().width, 120))
    table = Table(title=f"agt engines on {os.cpu_count()} cores, Python {platform.python_version()} (µs)")
    for col in ("benchmark", "p50 µs", "p99 µs", "mean µs", "per second", "samples"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for f in figures:
        table.add_row(*f.row())
    out.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
