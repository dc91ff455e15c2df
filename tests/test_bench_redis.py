"""`python -m bench --quick --only redis --json` runs on a real redis-server and reports its figures beside the floor.

Shape only: no figure here is a speed assertion."""

import json
import subprocess
import sys


def test_redis_section_reports_reserve_release_beside_the_incrby_floor(root, redis_binary):
    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "redis", "--json"],
                         cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    names = [f["name"] for f in report["figures"]]
    assert any(n.startswith("redis: raw redis-py INCRBY round trip") for n in names)
    assert any(n.startswith("redis: RedisStore reserve + release") for n in names)
    assert any(n.startswith("runtime: governed call, yaml engine, Redis state") for n in names)
    extra = report["extra"]
    assert extra["redis_reserve_release_over_floor_p50"] == extra["redis_reserve_release_p50_us"] / extra["redis_incrby_floor_p50_us"]
