#!/usr/bin/env bash
# Whole-path benchmark of bondd, per mode.
#
# Builds its own topology (two namespaces, veth pairs, addresses in
# 198.18.0.0/15 only), removes it on exit (also on error or Ctrl-C), and
# measures, each as the median of RUNS runs of SECS seconds:
#   - pps delivered wire -> bond0 and bond0 -> wire with 64-byte frames
#     (trafgen pinned to CPU 1, bondd pinned to CPU 0);
#   - the same generator into a plain veth in the same run (the ceiling);
#   - bondd's CPU time (user+system, all threads) per delivered packet;
#   - the failover loss window under a 50 kpps UDP stream.
#
# Usage (root): bench/throughput.sh [RUNS] [SECS] [MODE...]
#   MODE: active-backup balance-rr balance-xor broadcast (default: all four)
set -euo pipefail

RUNS=${1:-3}
SECS=${2:-4}
shift $(( $# < 2 ? $# : 2 ))
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(active-backup balance-rr balance-xor broadcast)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BONDD=${BONDD_BIN:-$ROOT/target/release/bondd}
UDP=${BDT_UDP:-$ROOT/target/release/bdt-udp}

[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "bench: trafgen missing (apt-get install netsniff-ng)" >&2; exit 1; }
if [ ! -x "$BONDD" ] || [ ! -x "$UDP" ]; then
  (cd "$ROOT" && cargo build --release -p bondd -p bondd-tests --bins)
fi

ID=bdb$$
GEN=$ID-gen
DUT=$ID-dut
TMP=$(mktemp -d)
BPID=

cleanup() {
  set +e
  if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
    kill -TERM "$BPID"; for _ in $(seq 100); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
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
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

ip netns add "$GEN"; ip netns add "$DUT"
ng ip link add br0 type bridge stp_state 0 forward_delay 0
ng ip link set br0 up
for i in 0 1; do
  nd ip link add s$i type veth peer name g$i netns "$GEN"
  ng ip link set g$i address 02:00:00:00:0a:0$i
  ng ip link set g$i master br0 up
  nd ip link set s$i up
  ng ethtool -K g$i tx off >/dev/null
done
ng ethtool -K br0 tx off >/dev/null
ng ip addr add 198.18.0.2/24 dev br0
# The ceiling path: the same generator into a plain veth, no XDP.
nd ip link add c0 type veth peer name cg0 netns "$GEN"
nd ip link set c0 address 02:00:00:00:0c:00
nd ip link set c0 up; ng ip link set cg0 up
nd ip addr add 198.18.1.1/24 dev c0

start_bondd() { # mode
  {
    echo "bonds:"
    echo "  - name: bond0"
    echo "    mode: $1"
    echo "    slaves: [s0, s1]"
    echo "    miimon: 100"
    echo "    addresses: [198.18.0.1/24]"
    case $1 in
      active-backup) echo "    primary: s0" ;;
      balance-xor) echo "    xmit_hash_policy: layer3+4" ;;
    esac
  } > "$TMP/bond.yaml"
  ip netns exec "$DUT" taskset -c 0 "$BONDD" --config "$TMP/bond.yaml" --state-dir "$TMP/state" --metrics off 2>"$TMP/bondd.log" &
  BPID=$!
  for _ in $(seq 100); do grep -q "bondd ready" "$TMP/bondd.log" && break; sleep 0.1; done
  grep -q "bondd ready" "$TMP/bondd.log" || { cat "$TMP/bondd.log"; echo "bench: bondd did not start" >&2; exit 1; }
  BMAC=$(nd cat /sys/class/net/bond0/address)
}
stop_bondd() {
  kill -TERM "$BPID"; wait "$BPID" 2>/dev/null || true; BPID=
  ng ip link set g0 up; ng ip link set g1 up
  sleep 0.5
}
CMAC=02:00:00:00:0c:00
nd ethtool -K c0 tx off >/dev/null

# 60-byte frames (64 on the wire with FCS), varying source port; the
# destination IP is not local, so the host stack drops them cheaply.
frame() { # dst-mac src-mac src-ip
  echo "{ eth(da=$1, sa=$2), ipv4(sa=$3, da=198.18.0.99, ttl=64), udp(sp=drnd(), dp=9), fill(0x41, 18) }"
}
frame "$CMAC" 02:00:00:00:0a:02 198.18.1.2 > "$TMP/ceil.cfg"
frame 02:00:00:00:0a:02 "$CMAC" 198.18.1.1 > "$TMP/ceil_down.cfg"

# run NS DEV CFG COUNT_NS COUNT_DEVS... -> prints "pps ns_per_pkt"
run() {
  local ns=$1 dev=$2 cfg=$3 cns=$4; shift 4
  local before=0 after=0 c0 c1 d
  for d in "$@"; do before=$((before + $(cnt "$cns" "$d" rx_packets))); done
  c0=$( [ -n "$BPID" ] && cpu_ticks "$BPID" || echo 0)
  ip netns exec "$ns" timeout -s INT "$SECS" taskset -c 1 trafgen -i "$cfg" -o "$dev" -P 1 -q >/dev/null 2>&1 || true
  sleep 0.2
  c1=$( [ -n "$BPID" ] && cpu_ticks "$BPID" || echo 0)
  for d in "$@"; do after=$((after + $(cnt "$cns" "$d" rx_packets))); done
  local n=$((after - before))
  local pps=$((n / SECS))
  local nspp=0
  [ "$n" -gt 0 ] && nspp=$(( (c1 - c0) * 1000000000 / HZ / n ))
  echo "$pps $nspp"
}

measure() { # label ns dev cfg cns devs...
  local label=$1; shift
  local pps=() cpu=() r out
  for r in $(seq "$RUNS"); do
    out=$(run "$@")
    pps+=("${out% *}"); cpu+=("${out#* }")
  done
  local mp mc
  mp=$(printf '%s\n' "${pps[@]}" | median)
  mc=$(printf '%s\n' "${cpu[@]}" | median)
  echo "$mp $mc ${pps[*]}" > "$TMP/$label"
}

echo "bench: $RUNS runs x $SECS s, 64-byte frames, bondd on CPU 0, trafgen on CPU 1; modes: ${MODES[*]}"
measure ceil_up   "$GEN" cg0  "$TMP/ceil.cfg"      "$DUT" c0
measure ceil_down "$DUT" c0   "$TMP/ceil_down.cfg" "$GEN" cg0
read -r cu _ cur < "$TMP/ceil_up"
read -r cd _ cdr < "$TMP/ceil_down"
ratio() { awk "BEGIN{printf \"%.2f\", $1/$2}"; }
row() { printf '%-14s %-36s %10s %10s %16s   %s\n' "$@"; }
{
row "mode" "path" "median pps" "vs ceiling" "bondd CPU ns/pkt" "runs (pps)"
row "-" "wire -> plain veth (ceiling)" "$cu" "1.00" "-" "$cur"
row "-" "plain veth -> wire (ceiling)" "$cd" "1.00" "-" "$cdr"
} > "$TMP/table"

for MODE in "${MODES[@]}"; do
  start_bondd "$MODE"
  frame "$BMAC" 02:00:00:00:0a:00 198.18.0.2 > "$TMP/up.cfg"
  frame 02:00:00:00:0a:00 "$BMAC" 198.18.0.1 > "$TMP/down.cfg"
  echo "bench: $MODE ..."
  measure up   "$GEN" g0    "$TMP/up.cfg"   "$DUT" bond0
  measure down "$DUT" bond0 "$TMP/down.cfg" "$GEN" g0 g1
  read -r u uc ur < "$TMP/up"
  read -r d dc dr < "$TMP/down"
  note=""
  [ "$MODE" = broadcast ] && note=" (frames x2: both slaves)"
  row "$MODE" "wire -> bond0" "$u" "$(ratio "$u" "$cu")" "$uc" "$ur" >> "$TMP/table"
  row "$MODE" "bond0 -> wire$note" "$d" "$(ratio "$d" "$cd")" "$dc" "$dr" >> "$TMP/table"
  if [ "$MODE" = active-backup ]; then
    # Failover under load: a 50 kpps stream from the switch side to bond0;
    # the active slave's far end goes down 1.5 s in.
    nd "$UDP" recv --bind 198.18.0.1:9000 --expect 200000 --timeout-ms 12000 --pps 50000 > "$TMP/recv.out" 2>"$TMP/recv.err" &
    RPID=$!
    sleep 0.5
    ng "$UDP" send --dst 198.18.0.1:9000 --pps 50000 --count 200000 --max-secs 10 > "$TMP/send.out" 2>&1 &
    SPID=$!
    sleep 1.5
    ng ip link set g0 down
    wait "$SPID" || true
    wait "$RPID" || true
    echo "active-backup failover under 50 kpps (wire -> bond0): $(cat "$TMP/recv.out")" > "$TMP/failover"
  fi
  stop_bondd
done
echo
cat "$TMP/table"
if [ -f "$TMP/failover" ]; then echo; cat "$TMP/failover"; fi
