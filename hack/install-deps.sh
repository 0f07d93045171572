#!/usr/bin/env bash
# Installs what wukong's tests need on a fresh Debian machine, and nothing twice:
#   openssl, curl          certificates and health checks of the local control plane
#   containernetworking-plugins, iproute2, iputils-ping, busybox (udhcpd), socat
#                          the real CNI plugins and the network namespaces they run in
#   rustfmt, clippy        the Rust checks of `make test`
# Go (for the control plane) and Rust must already be installed, as they are on the
# development and CI machines.
set -euo pipefail

packages=(openssl curl ca-certificates containernetworking-plugins iproute2 iputils-ping busybox socat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

command -v go >/dev/null || { echo "install-deps: Go is required (>= 1.24) to build the control plane" >&2; exit 1; }
command -v cargo >/dev/null || { echo "install-deps: Rust (cargo) is required" >&2; exit 1; }
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >&2
  done
fi
