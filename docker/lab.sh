#!/usr/bin/env bash
# A small Sluice lab on net_tap: what docker/compose.yaml runs in its
# privileged container, and what runs on a host too (as root, from the
# workspace, after `cargo build --release --bins`).
#
# sluiced (conf/docker-lab.toml) creates tap interfaces sl-ext and sl-int;
# this script bridges them to a client namespace and two web server
# namespaces, then shows HTTP balanced over both servers, sluicectl and
# /metrics. With KEEP=1 it keeps everything running until stopped (the
# container's default); otherwise it tears down and exits 0 when every
# check passed.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
SLUICED="${SLUICED:-$here/target/release/sluiced}"
SLUICECTL="${SLUICECTL:-$here/target/release/sluicectl}"
CONF="${CONF:-$here/conf/docker-lab.toml}"
SERVER="${SERVER:-$here/tests/data/lab_server.py}"
SOCK=/run/sluice/docker-lab.sock
P=dl   # namespace and bridge prefix
log="$(mktemp -d)/sluiced.log"
pid=""

cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  for ns in $P-client $P-web1 $P-web2; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del $P-ext 2>/dev/null || true
  ip link del $P-int 2>/dev/null || true
}
trap cleanup EXIT

ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
host() { # NAME BRIDGE ADDR/LEN GATEWAY
  ip netns add "$1"
  ip link add "$1-v" type veth peer name eth0 netns "$1"
  ip link set "$1-v" master "$2" up
  ns "$1" ip link set lo up
  ns "$1" ip addr add "$3" dev eth0
  ns "$1" ip link set eth0 up
  ns "$1" ip route add default via "$4"
}

cleanup
ip link add $P-ext type bridge && ip link set $P-ext up
ip link add $P-int type bridge && ip link set $P-int up
host $P-client $P-ext 203.0.113.100/24 203.0.113.1
host $P-web1 $P-int 10.0.0.11/24 10.0.0.1
host $P-web2 $P-int 10.0.0.12/24 10.0.0.1
ns $P-web1 python3 "$SERVER" http 80 web1 >/dev/null 2>&1 &
ns $P-web2 python3 "$SERVER" http 80 web2 >/dev/null 2>&1 &

echo "lab: starting sluiced on $CONF"
RUST_LOG=info NO_COLOR=1 "$SLUICED" --config "$CONF" >"$log.out" 2>"$log" &
pid=$!
for _ in $(seq 100); do grep -q "sluiced ready" "$log" && break; sleep 0.1; done
grep -q "sluiced ready" "$log" || { cat "$log"; echo "lab: sluiced did not start" >&2; exit 1; }
# Once sluiced has set its taps up: net_tap may give the kernel side of a
# tap the DPDK port's MAC, and a bridge keeps frames to a member port's own
# MAC for itself, so the kernel side gets a MAC of its own before it joins.
ip link set sl-ext address 02:d1:00:00:00:01
ip link set sl-int address 02:d1:00:00:00:02
ip link set sl-ext master $P-ext up
ip link set sl-int master $P-int up

fail=0
check() { # WHAT COMMAND...
  local what=$1; shift
  if out="$("$@" 2>&1)"; then echo "  ok   $what"; else echo "  FAIL $what"; echo "$out" | sed 's/^/       /'; fail=1; fi
}
healthy() { "$SLUICECTL" --socket $SOCK --json health | python3 -c \
  'import json,sys; d=json.load(sys.stdin); sys.exit(0 if all(m["state"]=="up" for m in d["members"]) else 1)'; }
for _ in $(seq 50); do healthy && break; sleep 0.2; done
check "both web servers pass their probe" healthy
spread() {
  local seen
  seen="$(for _ in $(seq 20); do ns $P-client curl -s --max-time 2 http://203.0.113.10/; done | awk '{print $1}' | sort -u | tr '\n' ' ')"
  echo "answered by: $seen"
  [ "$seen" = "web1 web2 " ]
}
check "HTTP to 203.0.113.10 is balanced over web1 and web2" spread
check "sluicectl status" "$SLUICECTL" --socket $SOCK status
check "/metrics counts the requests" sh -c \
  "curl -s 127.0.0.1:9631/metrics | grep -q 'sluice_frontend_syns_total{rule=\"http\".*direction=\"in\"} [1-9]'"

if [ "${KEEP:-0}" = 1 ] || [ "${PAUSE:-0}" = 1 ]; then
  echo "lab: running (sluicectl --socket $SOCK ...; curl 127.0.0.1:9631/metrics); stop the container to end it"
  wait "$pid"
fi
exit $fail
