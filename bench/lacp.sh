#!/usr/bin/env bash
# 802.3ad benchmark: two bondd instances back to back over two veth links
# (each the other's LACP partner), in namespaces of their own; removed on exit.
# Measures, as medians of RUNS runs:
#   - time from start to both ports collecting+distributing (lacp_rate fast);
#   - pps delivered through the aggregation, bond1 -> bond0, 64-byte frames
#     (trafgen pinned to CPU 1, both daemons pinned to CPU 0), with the
#     plain-veth ceiling of the same generator in the same run.
# Usage (root): bench/lacp.sh [RUNS] [SECS]
set -euo pipefail
RUNS=${1:-3}
SECS=${2:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BONDD=${BONDD_BIN:-$ROOT/target/release/bondd}
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "bench: trafgen missing (apt-get install netsniff-ng)" >&2; exit 1; }
[ -x "$BONDD" ] || (cd "$ROOT" && cargo build --release -p bondd)

ID=bdl$$; A=$ID-a; B=$ID-b
TMP=$(mktemp -d); PA=; PB=
cleanup() {
  set +e
  for p in $PA $PB; do kill -TERM "$p" 2>/dev/null; done
  for p in $PA $PB; do for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$p" 2>/dev/null; done
  ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
cnt() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }

ip netns add "$A"; ip netns add "$B"
for i in 0 1; do
  ip -n "$A" link add a$i type veth peer name b$i netns "$B"
  ip -n "$A" link set a$i up; ip -n "$B" link set b$i up
done
ip -n "$A" link add c0 type veth peer name cb0 netns "$B"
ip -n "$A" link set c0 up; ip -n "$B" link set cb0 up
ip -n "$A" link set c0 address 02:00:00:00:0c:00

cfg() { # file name slaves addr
  printf 'bonds:\n  - name: %s\n    mode: 802.3ad\n    slaves: [%s]\n    lacp_rate: fast\n    xmit_hash_policy: layer3+4\n    addresses: [%s]\n' "$2" "$3" "$4" > "$1"
}
cfg "$TMP/a.yaml" bond0 "a0, a1" 198.18.0.1/24
cfg "$TMP/b.yaml" bond1 "b0, b1" 198.18.0.2/24

dist_both() { # ns statedir -> 0 when both ports distribute
  ip netns exec "$1" "$BONDD" status --json --state-dir "$2" 2>/dev/null |
    python3 -c 'import json,sys; b=json.load(sys.stdin)[0]; sys.exit(0 if all(s["lacp"] and s["lacp"]["distributing"] for s in b["slaves"]) else 1)' 2>/dev/null
}

times=()
for r in $(seq "$RUNS"); do
  t0=$(date +%s%N)
  ip netns exec "$A" taskset -c 0 "$BONDD" --config "$TMP/a.yaml" --state-dir "$TMP/sa" --metrics off 2>"$TMP/a.log" & PA=$!
  ip netns exec "$B" taskset -c 0 "$BONDD" --config "$TMP/b.yaml" --state-dir "$TMP/sb" --metrics off 2>"$TMP/b.log" & PB=$!
  ok=
  for _ in $(seq 300); do
    if dist_both "$A" "$TMP/sa" && dist_both "$B" "$TMP/sb"; then ok=1; break; fi
    sleep 0.02
  done
  t1=$(date +%s%N)
  [ -n "$ok" ] || { tail "$TMP/a.log" "$TMP/b.log"; echo "bench: no aggregation within 6 s" >&2; exit 1; }
  times+=("$(( (t1 - t0) / 1000000 ))")
  if [ "$r" -lt "$RUNS" ]; then
    kill -TERM "$PA" "$PB"; wait "$PA" "$PB" 2>/dev/null || true; PA=; PB=
    sleep 0.5
  fi
done
echo "start -> collecting+distributing on both ports, both sides (ms): median $(printf '%s\n' "${times[@]}" | median) (runs: ${times[*]})"

MAC0=$(ip netns exec "$A" cat /sys/class/net/bond0/address)
MAC1=$(ip netns exec "$B" cat /sys/class/net/bond1/address)
ip netns exec "$B" ethtool -K bond1 tx off >/dev/null 2>&1 || true
echo "{ eth(da=$MAC0, sa=$MAC1), ipv4(sa=198.18.0.2, da=198.18.0.99, ttl=64), udp(sp=drnd(), dp=drnd()), fill(0x41, 18) }" > "$TMP/agg.cfg"
echo "{ eth(da=02:00:00:00:0c:00, sa=02:00:00:00:0c:01), ipv4(sa=198.18.1.2, da=198.18.1.99, ttl=64), udp(sp=drnd(), dp=drnd()), fill(0x41, 18) }" > "$TMP/ceil.cfg"
run() { # ns dev cfg countns countdev -> pps
  local b a
  b=$(cnt "$4" "$5")
  ip netns exec "$1" timeout -s INT "$SECS" taskset -c 1 trafgen -i "$3" -o "$2" -P 1 -q >/dev/null 2>&1 || true
  sleep 0.2
  a=$(cnt "$4" "$5")
  echo $(( (a - b) / SECS ))
}
agg=(); ceil=(); l0=(); l1=()
for r in $(seq "$RUNS"); do
  x0=$(cnt "$A" a0); x1=$(cnt "$A" a1)
  agg+=("$(run "$B" bond1 "$TMP/agg.cfg" "$A" bond0)")
  l0+=("$(( $(cnt "$A" a0) - x0 ))"); l1+=("$(( $(cnt "$A" a1) - x1 ))")
  ceil+=("$(run "$B" cb0 "$TMP/ceil.cfg" "$A" c0)")
done
ma=$(printf '%s\n' "${agg[@]}" | median); mc=$(printf '%s\n' "${ceil[@]}" | median)
echo "pps bond1 -> aggregation -> bond0: median $ma (runs: ${agg[*]}); per link frames a0 ${l0[*]} / a1 ${l1[*]}"
echo "pps plain veth (ceiling, same generator): median $mc (runs: ${ceil[*]}); ratio $(awk "BEGIN{printf \"%.2f\", $ma/$mc}")"
