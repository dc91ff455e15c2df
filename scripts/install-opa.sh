#!/usr/bin/env bash
# Install the pinned OPA into a project-local tools directory, once per machine.
# Usage: scripts/install-opa.sh VERSION TOOLS_DIR
# The build is cached outside the clone, keyed by version ($AGT_CACHE, default ~/.cache/agt), so a fresh
# clone (CI) links it instead of building again. Order: the cache; an `opa` of the pinned version on
# PATH; `go install` where Go is present; otherwise the official release binary (needs internet).
set -euo pipefail
version="$1"
tools="$2"
bin="$tools/bin"
target="$bin/opa"
want="${version#v}"
cache="${AGT_CACHE:-$HOME/.cache/agt}/opa/$version"
cached="$cache/opa"

have_version() { "$1" version 2>/dev/null | awk '/^Version:/ {print $2}'; }

if [[ -x "$target" && "$(have_version "$target")" == "$want" ]]; then
  exit 0
fi
mkdir -p "$bin" "$cache"
if [[ ! -x "$cached" || "$(have_version "$cached")" != "$want" ]]; then
  if command -v opa >/dev/null 2>&1 && [[ "$(have_version "$(command -v opa)")" == "$want" ]]; then
    cp "$(command -v opa)" "$cached.tmp"
  elif command -v go >/dev/null 2>&1; then
    echo "opa $version: building with go install (first run on this machine only; takes a few minutes)"
    gobin="$(mktemp -d)"
    GOTOOLCHAIN=local GOBIN="$gobin" GOFLAGS=-mod=mod go install "github.com/open-policy-agent/opa@$version"
    mv "$gobin/opa" "$cached.tmp"
    rmdir "$gobin"
  else
    os="$(uname -s | tr '[:upper:]' '[:lower:]')"
    arch="$(uname -m)"; case "$arch" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; esac
    url="https://github.com/open-policy-agent/opa/releases/download/$version/opa_${os}_${arch}_static"
    echo "opa $version: downloading $url"
    curl -fsSL -o "$cached.tmp" "$url"
  fi
  chmod +x "$cached.tmp"
  mv "$cached.tmp" "$cached"
fi
ln -sf "$cached" "$target"
got="$(have_version "$target")"
if [[ "$got" != "$want" ]]; then
  echo "opa: expected version $want at $target, found '${got:-nothing}'" >&2
  exit 1
fi
echo "opa $version at $target (cached in $cache)"
