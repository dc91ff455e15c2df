#!/usr/bin/env bash
# Make sure a real redis-server is on PATH for the state tests (Debian's redis-server package).
# Installs it where it is missing and the machine allows it (root with apt-get); otherwise says why and
# leaves the decision to the tests: they skip locally and fail under CI=true, as the OPA tests do.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server: installing Debian's redis-server package (first run on this machine only)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q redis-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }
  exit 0
fi
echo "redis-server: not installed, and this user cannot install it (needs root and apt-get); the Redis tests will skip, or fail under CI=true"
