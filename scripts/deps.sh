#!/usr/bin/env bash
# Installs what Sluice needs on Debian 12, only what is missing.
#   build: DPDK 22.11 (libdpdk-dev), clang/libclang for bindgen, pkg-config,
#          libsystemd-dev (a static build links it)
#   labs:  iproute2, ethtool, ping, arping, tcpdump, procps (kill), python3
#          (test servers), curl, socat, iperf3 (bulk TCP), nmap (port scans),
#          tracepath (Sluice's hop), frr and bird2 (the routing lab: FRR
#          routers, BIRD on the instances)
#   pkg:   cargo-deb (from crates.io, with cargo)
#   ops:   prometheus (promtool: the alert rules and a live scrape are
#          checked), systemd (systemd-analyze verify of the unit), man-db
# Needs root for apt-get; prints what it installs.
set -euo pipefail

PACKAGES=(
  dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config libpcap-dev libsystemd-dev
  iproute2 ethtool iputils-ping arping tcpdump procps python3 curl socat nginx-light openssl
  iperf3 nmap iputils-tracepath frr bird2 prometheus systemd man-db
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "deps: cargo not found; install Rust with rustup" >&2; exit 1; }
# cargo-deb builds the Debian package (`make deb`, and its test).
command -v cargo-deb >/dev/null || { echo "deps: installing cargo-deb"; cargo install -q cargo-deb --locked; }
echo "deps: ok (DPDK $(pkg-config --modversion libdpdk))"
