#!/usr/bin/env bash
# Soak: bondd (active-backup) under a steady load for MINUTES (≤ 10), with a
# failover every FAILOVER_S seconds, sampling bondd's RSS and CPU every 10 s.
# The load is trafgen at a fixed rate (RATE pps, by default 80% of what
# bench/throughput.sh saturates at here), bounded in time and packets.
# Builds its own namespaces, removes them on exit. Not part of CI.
# Usage (root): bench/soak.sh [MINUTES] [RATE] [FAILOVER_S]
set -euo pipefail
MIN=${1:-5}
RATE=${2:-130000}
EVERY=${3:-5}
[ "$MIN" -le 10 ] || { echo "soak: at most 10 minutes" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BONDD=${BONDD_BIN:-$ROOT/target/release/bondd}
[ "$(id -u)" = 0 ] || { echo "soak: needs root" >&2; exit 1; }
[ -x "$BONDD" ] || (cd "$ROOT" && cargo build --release -p bondd)
ID=bdk$$; GEN=$ID-gen; DUT=$ID-dut; TMP=$(mktemp -d); BPID=; TPID=
cleanup() {
  set +e
  [ -n "$TPID" ] && kill "$TPID" 2>/dev/null
  if [ -n "$BPID" ]; then kill -TERM "$BPID"; wait "$BPID"; fi
  ip netns del "$GEN" 2>/dev/null; ip netns del "$DUT" 2>/dev/null; rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
ip netns add "$GEN"; ip netns add "$DUT"
ip -n "$GEN" link add br0 type bridge stp_state 0 forward_delay 0; ip -n "$GEN" link set br0 up
for i in 0 1; do
  ip -n "$DUT" link add s$i type veth peer name g$i netns "$GEN"
  ip -n "$GEN" link set g$i master br0 up; ip -n "$DUT" link set s$i up
done
printf 'bonds:\n  - name: bond0\n    mode: active-backup\n    slaves: [s0, s1]\n    miimon: 100\n    addresses: [198.18.0.1/24]\nmetrics:\n  listen: "off"\n' > "$TMP/bond.yaml"
ip netns exec "$DUT" taskset -c 0 "$BONDD" --config "$TMP/bond.yaml" --state-dir "$TMP/state" 2>"$TMP/bondd.log" &
BPID=$!
for _ in $(seq 100); do grep -q "bondd ready" "$TMP/bondd.log" && break; sleep 0.1; done
MAC=$(ip netns exec "$DUT" cat /sys/class/net/bond0/address)
echo "{ eth(da=$MAC, sa=02:00:00:00:0a:00), ipv4(sa=198.18.0.2, da=198.18.0.99, ttl=64), udp(sp=drnd(), dp=9), fill(0x41, 18) }" > "$TMP/f.cfg"
SECS=$((MIN * 60))
# The bridge forwards to whichever slave is active; trafgen sends into it
# through a third veth, rate-limited (-t gap per packet) and bounded (-n).
ip -n "$GEN" link add t0 type veth peer name t1; ip -n "$GEN" link set t1 master br0 up; ip -n "$GEN" link set t0 up
ip netns exec "$GEN" timeout -s INT "$SECS" taskset -c 1 trafgen -i "$TMP/f.cfg" -o t0 -P 1 -q -b "${RATE}pps" -n $((RATE * SECS)) >/dev/null 2>&1 &
TPID=$!
rss() { awk '/VmRSS/ {print $2}' "/proc/$BPID/status"; }
cpu() { awk '{print $14+$15}' "/proc/$BPID/stat"; }
HZ=$(getconf CLK_TCK)
echo "soak: $MIN min at $RATE pps, failover every $EVERY s; t(s) rss(KiB) cpu(% of a core) delivered(pps)"
t0=$(date +%s); lastc=$(cpu); lastp=$(ip netns exec "$DUT" cat /sys/class/net/bond0/statistics/rx_packets); lastt=$t0
n=0; flips=0
while [ $(( $(date +%s) - t0 )) -lt "$SECS" ]; do
  sleep "$EVERY"
  # Fail the active slave's far end, then bring it back: two failovers.
  act=$(ip netns exec "$DUT" "$BONDD" status --state-dir "$TMP/state" | awk -F': ' '/Currently Active Slave/ {print $2}')
  g=g${act#s}
  ip -n "$GEN" link set "$g" down; sleep 0.2; ip -n "$GEN" link set "$g" up
  flips=$((flips + 1))
  n=$((n + EVERY))
  if [ $((n % 10)) -lt "$EVERY" ]; then
    now=$(date +%s); c=$(cpu); p=$(ip netns exec "$DUT" cat /sys/class/net/bond0/statistics/rx_packets)
    dt=$((now - lastt)); [ "$dt" -gt 0 ] || dt=1
    echo "$((now - t0)) $(rss) $(( (c - lastc) * 100 / HZ / dt )) $(( (p - lastp) / dt ))"
    lastc=$c; lastp=$p; lastt=$now
  fi
done
echo "soak: $flips link failures, $(grep -c 'failover:' "$TMP/bondd.log") failovers logged"
kill -TERM "$BPID"; wait "$BPID" || true; BPID=
grep -E "frame accounting|s0: rx" "$TMP/bondd.log" | tail -2 | sed 's/^/soak: /'
cp "$TMP/bondd.log" "${SOAK_LOG:-/dev/null}" 2>/dev/null || true
