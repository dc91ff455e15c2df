#!/usr/bin/env python3
"""Run each framework adapter's tests in that framework's own virtualenv.

    scripts/adapter_tests.py                 # every framework with adapters/requirements/<name>.txt
    scripts/adapter_tests.py langchain mcp   # just these
    scripts/adapter_tests.py mcp -- -k proxy # pytest options after --

The frameworks pin conflicting versions of shared dependencies, so each gets a virtualenv of its own,
cached outside the clone ($AGT_CACHE, default ~/.cache/agt, under venvs/) and keyed by what it installs:
the framework's requirements, agt's own dependencies and the Python version. A second run, or a fresh
clone on the same machine, reuses it; agt itself is installed into it (editable, no dependencies) on
every run, so the tests run this clone's code.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "adapters" / "requirements"
CACHE = Path(os.environ.get("AGT_CACHE") or Path.home() / ".cache" / "agt") / "venvs"


def frameworks() -> list[str]:
    return sorted(p.stem for p in REQUIREMENTS.glob("*.txt"))


def agt_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])


def venv_for(framework: str) -> Path:
    """The framework's cached virtualenv, built on first use (one builder at a time per environment)."""
    wanted = (REQUIREMENTS / f"{framework}.txt").read_text()
    key = hashlib.sha256("\n".join([sys.version, wanted, *agt_requirements()]).encode()).hexdigest()[:12]
    venv = CACHE / f"{framework}-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{framework}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".ready").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # a build that was cut short
        started = time.monotonic()
        print(f"[adapters] {framework}: building its virtualenv in {venv} (first run on this machine only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        # setuptools and wheel: agt is installed into it with --no-build-isolation on every run.
        subprocess.run([*pip, "--upgrade", "pip", "setuptools>=77", "wheel"], check=True)
        subprocess.run([*pip, "-r", str(REQUIREMENTS / f"{framework}.txt"), *agt_requirements()], check=True)
        (venv / ".ready").write_text(wanted)
        print(f"[adapters] {framework}: ready in {time.monotonic() - started:.0f}s", flush=True)
    return venv


def run(framework: str, pytest_args: list[str]) -> int:
    venv = venv_for(framework)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--no-build-isolation",
                    "-e", str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    tests = sorted(str(p) for p in (ROOT / "tests" / "adapters").glob(f"test_{framework}*.py"))
    if not tests:
        print(f"[adapters] {framework}: no tests/adapters/test_{framework}*.py", flush=True)
        return 1
    env = {**os.environ, "AGT_ADAPTER_FRAMEWORK": framework, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    print(f"[adapters] {framework}: pytest in {venv.name}", flush=True)
    return subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", *tests, *pytest_args], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    names, _, pytest_args = (argv[: argv.index("--")], None, argv[argv.index("--") + 1:]) if "--" in argv else (argv, None, [])
    known = frameworks()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown framework(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    failed = [n for n in (names or known) if run(n, pytest_args) != 0]
    if failed:
        print(f"[adapters] failed: {', '.join(failed)}", flush=True)
        return 1
    print(f"[adapters] all passed: {', '.join(names or known)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
