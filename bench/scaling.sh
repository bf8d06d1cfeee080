#!/usr/bin/env bash
# bench/scaling.sh: 1 worker against 2 workers, on two-queue slaves.
#
# Topology: namespaces gen and dut, veth pairs g0-s0 and g1-s1 with
# QUEUES (default 2) RX/TX queues per end; bondd runs balance-xor
# (layer3+4) in dut. An AF_PACKET sender picks its TX queue by CPU, so the
# load is one generator per queue: trafgen -P QUEUES, one process per CPU,
# which spreads the frames over the queues of g0 and therefore of s0.
# For each worker count the same load runs RUNS times for SECS seconds;
# delivered pps is bond0's rx_packets (wire -> bond0) and g0+g1 rx_packets
# (bond0 -> wire, trafgen -P QUEUES into bond0, whose queues bondd made one
# per worker). It prints medians and every run.
#
# On a 2-CPU machine the generators and the workers share both CPUs, so the
# result says whether a second worker pays for itself when it has no core
# of its own; see bench/README.md for the reading and the 16-queue estimate.
#
# Usage (root): bench/scaling.sh [RUNS] [SECS]
# Bounded: every trafgen runs under timeout; namespaces (bbs<PID>-*) and
# bondd are removed on exit, error or Ctrl-C. Addresses: 198.18.0.0/15 only.
set -Eeuo pipefail

RUNS=${1:-5}
SECS=${2:-3}
QUEUES=${QUEUES:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BONDD=${BONDD_BIN:-$ROOT/target/release/bondd}
[ "$(id -u)" = 0 ] || { echo "scaling: needs root" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "scaling: trafgen missing (bench/setup.sh installs it)" >&2; exit 1; }
[ -x "$BONDD" ] || (cd "$ROOT" && cargo build --release -p bondd)
NCPU=$(nproc)

ID=bbs$$
GEN=$ID-gen
DUT=$ID-dut
TMP=$(mktemp -d)
BPID=
cleanup() {
  set +e
  if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
    kill -TERM "$BPID"
    for _ in $(seq 100); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BPID" 2>/dev/null
  fi
  ip netns del "$GEN" 2>/dev/null
  ip netns del "$DUT" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ng() { ip netns exec "$GEN" "$@"; }
nd() { ip netns exec "$DUT" "$@"; }
cnt() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

ip netns add "$GEN"; ip netns add "$DUT"
nd ip link set lo up
for i in 0 1; do
  nd ip link add s$i numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
    peer name g$i netns "$GEN" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
  ng ip link set g$i address 02:00:00:00:0a:0$i
  ng ip link set g$i up
  nd ip link set s$i up
done
BMAC=02:00:00:00:0b:00
# Destination not local: the host stack drops the frames after one lookup.
echo "{ eth(da=$BMAC, sa=02:00:00:00:0a:00), ipv4(sa=198.19.0.2, da=198.19.0.99, ttl=64), udp(sp=drnd(), dp=9), fill(0x41, 18) }" > "$TMP/up.cfg"
echo "{ eth(da=02:00:00:00:0a:00, sa=$BMAC), ipv4(sa=198.19.0.1, da=198.19.0.99, ttl=64), udp(sp=drnd(), dp=9), fill(0x41, 18) }" > "$TMP/down.cfg"

start_bondd() { # workers cpus
  cat > "$TMP/bond.yaml" <<EOF
metrics: {listen: "off"}
bonds:
  - name: bond0
    mode: balance-xor
    xmit_hash_policy: layer3+4
    slaves: [s0, s1]
    mac: "$BMAC"
    miimon: 100
    addresses: [198.19.0.1/24]
    workers: $1
    worker_cpus: [$2]
EOF
  chmod 600 "$TMP/bond.yaml"
  ip netns exec "$DUT" "$BONDD" --config "$TMP/bond.yaml" --state-dir "$TMP/state" --socket "$TMP/sock" 2>"$TMP/bondd.log" &
  BPID=$!
  for _ in $(seq 200); do grep -q "bondd ready" "$TMP/bondd.log" && break; sleep 0.1; done
  grep -q "bondd ready" "$TMP/bondd.log" || { cat "$TMP/bondd.log"; echo "scaling: bondd did not start" >&2; exit 1; }
  sleep 0.5
}
stop_bondd() {
  kill -TERM "$BPID"
  for _ in $(seq 100); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
  wait "$BPID" 2>/dev/null || true
  BPID=
}

run() { # ns dev cfg count-ns count-devs...
  local ns=$1 dev=$2 cfg=$3 cns=$4; shift 4
  local before=0 after=0 d
  for d in "$@"; do before=$((before + $(cnt "$cns" "$d" rx_packets))); done
  ip netns exec "$ns" timeout -s INT "$SECS" trafgen -i "$cfg" -o "$dev" -P "$QUEUES" -q >/dev/null 2>&1 || true
  sleep 0.2
  for d in "$@"; do after=$((after + $(cnt "$cns" "$d" rx_packets))); done
  echo $(( (after - before) / SECS ))
}

echo "scaling: $RUNS runs x $SECS s, $QUEUES queues per slave, trafgen -P $QUEUES, $NCPU CPUs"
printf '%-8s %-14s %12s   %s\n' workers direction "median pps" "runs"
for W in 1 2; do
  if [ "$W" = 1 ]; then CPUS=$((NCPU - 1)); else CPUS=$(seq -s, $((NCPU - W)) $((NCPU - 1))); fi
  start_bondd "$W" "$CPUS"
  up=(); down=()
  for _ in $(seq "$RUNS"); do
    up+=("$(run "$GEN" g0 "$TMP/up.cfg" "$DUT" bond0)")
    down+=("$(run "$DUT" bond0 "$TMP/down.cfg" "$GEN" g0 g1)")
  done
  stop_bondd
  printf '%-8s %-14s %12s   %s\n' "$W ($CPUS)" "wire->bond0" "$(printf '%s\n' "${up[@]}" | median)" "${up[*]}"
  printf '%-8s %-14s %12s   %s\n' "$W ($CPUS)" "bond0->wire" "$(printf '%s\n' "${down[@]}" | median)" "${down[*]}"
done
