#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the dashboard's browser tests (tests/test_dashboard_browser.py).
# Installs it where it is missing and the machine allows it (root with apt-get); otherwise says why and leaves
# the decision to the tests: they skip locally and fail under CI=true. Playwright drives this system Chromium
# (executable_path); nothing is downloaded at test time and `playwright install` is never run.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium: installing Debian's chromium package (first run on this machine only)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
  exit 0
fi
echo "chromium: not installed, and this user cannot install it (needs root and apt-get); the browser tests will skip, or fail under CI=true"
