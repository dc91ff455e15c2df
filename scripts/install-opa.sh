#!/usr/bin/env bash
# Install the pinned OPA into a project-local tools directory, once.
# Usage: scripts/install-opa.sh VERSION TOOLS_DIR
# Order: a cached build in TOOLS_DIR; an `opa` of the pinned version on PATH (linked); `go install`
# where Go is present; otherwise the official release binary (needs internet).
set -euo pipefail
version="$1"
tools="$2"
bin="$tools/bin"
target="$bin/opa"
want="${version#v}"

have_version() { "$1" version 2>/dev/null | awk '/^Version:/ {print $2}'; }

if [[ -x "$target" && "$(have_version "$target")" == "$want" ]]; then
  exit 0
fi
mkdir -p "$bin"
if command -v opa >/dev/null 2>&1 && [[ "$(have_version "$(command -v opa)")" == "$want" ]]; then
  ln -sf "$(command -v opa)" "$target"
  echo "opa $version: using $(command -v opa)"
  exit 0
fi
if command -v go >/dev/null 2>&1; then
  echo "opa $version: building with go install (first run only; takes a few minutes)"
  GOTOOLCHAIN=local GOBIN="$(cd "$bin" && pwd)" GOFLAGS=-mod=mod \
    go install "github.com/open-policy-agent/opa@$version"
else
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  arch="$(uname -m)"; case "$arch" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; esac
  url="https://github.com/open-policy-agent/opa/releases/download/$version/opa_${os}_${arch}_static"
  echo "opa $version: downloading $url"
  curl -fsSL -o "$target.tmp" "$url"
  chmod +x "$target.tmp"
  mv "$target.tmp" "$target"
fi
got="$(have_version "$target")"
if [[ "$got" != "$want" ]]; then
  echo "opa: expected version $want at $target, found '${got:-nothing}'" >&2
  exit 1
fi
echo "opa $version installed at $target"
