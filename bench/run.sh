#!/usr/bin/env bash
# bench/run.sh: how fast, at what cost, against what.
#
# One command that measures bondd against DPDK testpmd's bonding PMD and
# against in-kernel XDP ceilings, on the same topology, cores and frames, in
# the same run, and writes bench/results/results.{md,csv,svg}.
#
#   namespace GEN                      namespace DUT
#   trafgen (CPU 0) -> g0 <== veth ==> s0 --+
#                      g1 <== veth ==> s1 --+-- data plane (CPU 1): bondd, or
#   [OVS LACP partner on g0+g1,             |   testpmd's forwarding lcore
#    802.3ad only]                          +-> bond0 (bondd) / dtap0 (DPDK)
#
# Per mode x direction x frame size, RUNS runs of SECS s each: delivered pps
# (wire->bond0: rx of bond0/tap; bond0->wire: rx of g0+g1), offered pps (tx
# of g0 / of bond0 or tap), CPU ns per delivered packet (schedstat of every
# thread of the data-plane process). Once per direction and size: the
# generator into XDP_DROP and a minimal XDP-redirect forwarder (the
# ceilings). Also bondd's idle CPU, RSS, and the active-backup failover loss
# window under a 50 kpps stream.
#
# Usage (root): bench/run.sh [--runs N] [--secs S] [--modes m1,m2]
#                  [--sizes 64,1500] [--subjects bondd,dpdk,ceiling] [--quick]
# Env: BONDD_BIN, BDT_UDP (binaries), BONDD_EXTRA (extra YAML lines for the
#      bond, newline-separated, e.g. "workers: 2"), SLAVE_QUEUES (RX/TX
#      queues per veth; default: the `workers:` of BONDD_EXTRA, else 1),
#      IDLE_SECS (default 10), KEEP_TMP=1 (keep the logs in /tmp/bbr<PID>.*),
#      BENCH_DEADLINE (global limit in s; default twice the estimate + 300).
#
# Bounded: every trafgen runs under `timeout`, every wait loop is bounded,
# and a watchdog ends the run at a global deadline. Everything it creates
# (namespaces bbr<PID>-gen/-dut with their veths, processes) is removed on
# exit, error or Ctrl-C. Addresses: 198.18.0.0/15 only. Nothing in the root
# namespace is touched.
set -Eeuo pipefail

RUNS=3
SECS=3
MODES=active-backup,balance-rr,balance-xor,broadcast,802.3ad
SIZES=64,1500
SUBJECTS=bondd,dpdk,ceiling
IDLE_SECS=${IDLE_SECS:-10}
QUEUES=${SLAVE_QUEUES:-$(sed -n 's/^[[:space:]]*workers:[[:space:]]*\([0-9]\{1,\}\).*/\1/p' <<< "${BONDD_EXTRA:-}" | head -n 1)}
QUEUES=${QUEUES:-1}

usage() { sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --subjects) SUBJECTS=$2; shift 2 ;;
    --quick) RUNS=1; SECS=2; MODES=active-backup,balance-xor; SIZES=64; IDLE_SECS=${IDLE_SECS_QUICK:-3}; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
CMDLINE="bench/run.sh --runs $RUNS --secs $SECS --modes $MODES --sizes $SIZES --subjects $SUBJECTS"
IFS=, read -r -a MODE_LIST <<< "$MODES"
IFS=, read -r -a SIZE_LIST <<< "$SIZES"
IFS=, read -r -a SUBJ_LIST <<< "$SUBJECTS"
for m in "${MODE_LIST[@]}"; do
  case $m in active-backup|balance-rr|balance-xor|broadcast|802.3ad) ;;
    *) echo "run.sh: unknown mode $m" >&2; exit 2 ;; esac
done
for s in "${SIZE_LIST[@]}"; do
  case $s in 64|1500) ;; *) echo "run.sh: frame size must be 64 or 1500, not $s" >&2; exit 2 ;; esac
done
for s in "${SUBJ_LIST[@]}"; do
  case $s in bondd|dpdk|ceiling) ;; *) echo "run.sh: unknown subject $s" >&2; exit 2 ;; esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ && $IDLE_SECS =~ ^[1-9][0-9]*$ && $QUEUES =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: --runs, --secs, IDLE_SECS and SLAVE_QUEUES must be positive integers" >&2; exit 2; }
FO_RUNS=$(( RUNS > 3 ? RUNS : 3 ))   # failover: at least 3 runs
has() { local x=$1; shift; local y; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BONDD=${BONDD_BIN:-$ROOT/target/release/bondd}
UDP=${BDT_UDP:-$ROOT/target/release/bdt-udp}
PY=/usr/bin/python3
OUT=$ROOT/bench/results

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
bash "$ROOT/bench/setup.sh"
if has bondd "${SUBJ_LIST[@]}" && { [ ! -x "$BONDD" ] || [ ! -x "$UDP" ]; }; then
  (cd "$ROOT" && cargo build --release -p bondd -p bondd-tests --bins)
fi
for t in trafgen timeout taskset ethtool stdbuf "$PY"; do
  command -v "$t" >/dev/null || { echo "run.sh: $t missing (bench/setup.sh)" >&2; exit 1; }
done

# ---------------------------------------------------------------- time plan
N_DIR=2
n_sizes=${#SIZE_LIST[@]}
RUN_COST=$((SECS + 2))           # warm-up, window, tail, counters
TOTAL=0; EST=0
if has ceiling "${SUBJ_LIST[@]}"; then
  TOTAL=$((TOTAL + 2 * N_DIR * n_sizes * RUNS)); EST=$((EST + 2 * N_DIR * n_sizes * RUNS * RUN_COST + 5))
fi
for m in "${MODE_LIST[@]}"; do
  if has bondd "${SUBJ_LIST[@]}"; then
    TOTAL=$((TOTAL + N_DIR * n_sizes * (RUNS + 1) + 1)); EST=$((EST + N_DIR * n_sizes * (RUNS + 1) * RUN_COST + IDLE_SECS + 6))
    if [ "$m" = active-backup ]; then TOTAL=$((TOTAL + FO_RUNS)); EST=$((EST + FO_RUNS * 6 + 3)); fi
  fi
  if has dpdk "${SUBJ_LIST[@]}"; then
    TOTAL=$((TOTAL + N_DIR * n_sizes * RUNS)); EST=$((EST + N_DIR * n_sizes * RUNS * RUN_COST + 10))
  fi
  if [ "$m" = 802.3ad ]; then EST=$((EST + 30)); fi
done
LIMIT=${BENCH_DEADLINE:-$((EST * 2 + 300))}   # global deadline (s)
STEP=0

# ---------------------------------------------------------------- state
ID=bbr$$
GEN=$ID-gen
DUT=$ID-dut
TMP=$(mktemp -d "/tmp/$ID.XXXXXX")
CSV=$TMP/results.csv
PIDS=()                          # every process we started (and still may own)
BPID=; TPID=; HOLDER=; TRICKLE=; OVSD=; WD=
BMAC=02:00:00:00:bb:01           # bond0 (bondd) and dtap0 (DPDK)
G0MAC=02:00:00:00:0a:00
BIP=198.19.0.1
GIP=198.19.0.2
LOGICAL=bond0

DPDK_RUNDIR_NEW=
[ -d /var/run/dpdk ] || DPDK_RUNDIR_NEW=1   # testpmd creates it even with --no-shconf
track() { PIDS+=("$1"); }
untrack() { local p q=(); for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || q+=("$p"); done; PIDS=("${q[@]}"); }
# is_ours PID [MARK]: a child of this script (PIDs are recycled quickly: pid_max
# may be 32768), or, with MARK, a process whose command line contains MARK
# (the detached OVS daemons, started with paths in our temporary directory).
is_ours() {
  local st ppid
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r _ ppid _ <<< "${st##*) }"
  [ "$ppid" = "$$" ] && return 0
  [ -n "${2:-}" ] && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}
stop_pid() { # pid [grace-seconds] [mark]: TERM, wait, KILL -- only if it is ours
  local p=$1 g=${2:-5} i
  [ -n "$p" ] || return 0
  is_ours "$p" "${3:-}" || { untrack "$p"; return 0; }
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < g * 10; i++)); do is_ours "$p" "${3:-}" || { untrack "$p"; return 0; }; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  untrack "$p"
}
ovs_stop() {
  local d=$OVSD f
  [ -n "$d" ] || return 0
  for f in ovs-vswitchd ovsdb-server; do
    [ -s "$d/$f.pid" ] && stop_pid "$(cat "$d/$f.pid")" 5 "$d/"
  done
  OVSD=
}
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM ERR
  set +e
  [ -n "$TPID" ] && is_ours "$TPID" && { tp_send quit; sleep 1; }
  ovs_stop
  for p in "${PIDS[@]}"; do stop_pid "$p" 3; done
  for p in $(jobs -p); do stop_pid "$p" 1; done
  # Anything still running inside our own namespaces was started by us.
  for p in $(ip netns pids "$GEN" 2>/dev/null) $(ip netns pids "$DUT" 2>/dev/null); do
    echo "run.sh: stopping leftover pid $p ($(cat "/proc/$p/comm" 2>/dev/null)) in our namespaces" >&2
    stop_pid "$p" 2
  done
  ip netns del "$GEN" 2>/dev/null
  ip netns del "$DUT" 2>/dev/null
  rm -rf "/var/run/dpdk/$ID" 2>/dev/null
  [ -n "$DPDK_RUNDIR_NEW" ] && rmdir /var/run/dpdk 2>/dev/null   # only if we created it and it is empty
  if [ "$rc" -ne 0 ] && [ -z "${KEEP_TMP:-}" ]; then
    echo "run.sh: failed (exit $rc); logs were in $TMP (set KEEP_TMP=1 to keep them)" >&2
  fi
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT
trap 'echo "run.sh: terminated (global deadline ${LIMIT}s or signal)" >&2; exit 143' TERM

# Watchdog: the global deadline.
( trap 'kill "$sp" 2>/dev/null; exit 0' TERM; sleep "$LIMIT" & sp=$!; wait "$sp"; kill -TERM $$ ) >/dev/null 2>&1 &
WD=$!; track "$WD"

ng() { ip netns exec "$GEN" "$@"; }
nd() { ip netns exec "$DUT" "$@"; }
ns_of() { case $1 in gen) echo "$GEN" ;; dut) echo "$DUT" ;; esac; }
# sum of counters: sumc NS STAT DEV... (one exec per namespace)
sumc() {
  local ns=$1 st=$2; shift 2
  local files=() d
  for d in "$@"; do files+=("/sys/class/net/$d/statistics/$st"); done
  ip netns exec "$ns" cat "${files[@]}" | awk '{s+=$1} END {printf "%.0f\n", s}'
}
cpu_ns() { # pid -> ns of CPU of all its threads (schedstat field 1)
  if [ -z "$1" ] || [ ! -d "/proc/$1" ]; then echo 0; return; fi
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {printf "%.0f\n", s}'
}
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<< "$1"; }
now_ns() { date +%s%N; }
step() { STEP=$((STEP + 1)); printf '[%d/%d] %s\n' "$STEP" "$TOTAL" "$*"; }
csv() { local IFS=,; echo "$*" >> "$CSV"; }
na() { # subject mode reason -- marks the (subject, mode) cells n/a, skips their steps
  local subj=$1 mode=$2 reason=${3//,/;} n
  n=$((N_DIR * n_sizes * RUNS))
  [ "$subj" = bondd ] && { n=$((n + 1)); [ "$mode" = active-backup ] && n=$((n + FO_RUNS)); }
  STEP=$((STEP + n))
  printf '[%d/%d] %s %s: n/a (%s)\n' "$STEP" "$TOTAL" "$subj" "$mode" "$3"
  csv na "$subj" "$mode" - - - - - - - - - "$reason"
}
elapsed() { echo $(( $(date +%s) - T_START )); }

echo "run.sh: $RUNS run(s) x ${SECS}s; modes: ${MODE_LIST[*]}; sizes: ${SIZE_LIST[*]}; subjects: ${SUBJ_LIST[*]}; queues per slave: $QUEUES"
echo "run.sh: $TOTAL steps, estimated total $((EST / 60)) min $((EST % 60)) s (hard limit ${LIMIT}s); load: $(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "kind,subject,mode,direction,frame_bytes,run,delivered_pps,offered_pps,delivered_pct,cpu_ns_per_pkt,value,unit,note" > "$CSV"

# ---------------------------------------------------------------- topology
ip netns add "$GEN"
ip netns add "$DUT"
for n in "$GEN" "$DUT"; do
  ip -n "$n" link set lo up
  # No IPv6 chatter (RS, MLD, DAD) on the measured links.
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
for i in 0 1; do
  ip -n "$GEN" link add "g$i" numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
    peer name "s$i" netns "$DUT" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
  ip -n "$GEN" link set "g$i" address "02:00:00:00:0a:0$i"
  ip -n "$DUT" link set "s$i" address "02:00:00:00:0b:0$i"
  ip -n "$GEN" link set "g$i" up
  ip -n "$DUT" link set "s$i" up
  ng ethtool -K "g$i" tx off >/dev/null 2>&1 || true
done

# trafgen configs: UDP, random source port; 64 B = 60 B + FCS, 1500 B = IP
# total length 1500 (1514 B on the wire). up = wire -> bond0, down = bond0 -> wire.
for sz in 64 1500; do
  fill=$(( sz == 64 ? 18 : 1472 ))
  echo "{ eth(da=$BMAC, sa=$G0MAC), ipv4(sa=$GIP, da=$BIP, ttl=64), udp(sp=drnd(), dp=9), fill(0x41, $fill) }" > "$TMP/up$sz.cfg"
  echo "{ eth(da=$G0MAC, sa=$BMAC), ipv4(sa=$BIP, da=$GIP, ttl=64), udp(sp=drnd(), dp=9), fill(0x41, $fill) }" > "$TMP/down$sz.cfg"
done

# ---------------------------------------------------------------- measuring
# one_run SUBJ MODE DIR SIZE RUN PID TXNS TXDEV OFFNS OFFDEV DELNS DELDEVS
# Starts trafgen (CPU 0), lets it warm up 0.5 s, then counts over a window
# of SECS seconds while it runs; prints a progress line and a CSV row.
one_run() {
  local subj=$1 mode=$2 dir=$3 size=$4 run=$5 pid=$6 txns=$7 txdev=$8 offns=$9 offdev=${10} delns=${11} dels=${12}
  local cfg tg o0 o1 d0 d1 c0 c1 t0 t1 dt del off pps opps pct nspp arrow
  [ "$dir" = up ] && cfg=$TMP/up$size.cfg || cfg=$TMP/down$size.cfg
  ip netns exec "$txns" timeout -s INT -k 2 $((SECS + 2)) taskset -c 0 trafgen -i "$cfg" -o "$txdev" -P 1 -q >/dev/null 2>&1 &
  tg=$!; track "$tg"
  sleep 0.5
  # shellcheck disable=SC2086
  { o0=$(sumc "$offns" tx_packets "$offdev"); d0=$(sumc "$delns" rx_packets $dels); c0=$(cpu_ns "$pid"); t0=$(now_ns); }
  sleep "$SECS"
  # shellcheck disable=SC2086
  { o1=$(sumc "$offns" tx_packets "$offdev"); d1=$(sumc "$delns" rx_packets $dels); c1=$(cpu_ns "$pid"); t1=$(now_ns); }
  wait "$tg" 2>/dev/null || true
  untrack "$tg"
  sleep 0.3
  dt=$((t1 - t0))
  del=$((d1 - d0)); off=$((o1 - o0))
  pps=$((del * 1000000000 / dt)); opps=$((off * 1000000000 / dt))
  pct=$(awk -v d="$del" -v o="$off" 'BEGIN { if (o > 0) printf "%.1f", 100 * d / o; else print "" }')
  nspp=
  [ -n "$pid" ] && [ "$del" -gt 0 ] && nspp=$(( (c1 - c0) / del ))
  [ "$dir" = up ] && arrow="wire->bond0" || arrow="bond0->wire"
  if [ "$opps" -eq 0 ]; then
    step "$subj $mode $arrow ${size}B run $run/$RUNS: $(commas "$pps") pps (offered 0: generator sent nothing)"
  else
    step "$subj $mode $arrow ${size}B run $run/$RUNS: $(commas "$pps") pps (offered $(commas "$opps"), ${pct}%)${nspp:+, ${nspp} ns CPU/pkt}"
  fi
  csv throughput "$subj" "$mode" "$dir" "$size" "$run" "$pps" "$opps" "$pct" "$nspp" "" "" ""
}

# paced_run SUBJ MODE DIR SIZE PID TXNS TXDEV DELNS DELDEVS
# "No loss below saturation": the same path offered a steady 90 % of the
# median rate this cell just delivered (bdt-udp pace: trafgen's own rate
# option sleeps per frame and cannot hold such rates), counting over SECS.
paced_run() {
  local subj=$1 mode=$2 dir=$3 size=$4 pid=$5 txns=$6 txdev=$7 delns=$8 dels=$9
  local sat rate fl dmac smac sip dip pp o0 o1 d0 d1 t0 t1 dt del off pps opps loss mult=1 arrow
  sat=$(awk -F, -v s="$subj" -v m="$mode" -v d="$dir" -v z="$size" \
    '$1 == "throughput" && $2 == s && $3 == m && $4 == d && $5 == z && $7 > 0 {print $7}' "$CSV" |
    sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}')
  [ -n "$sat" ] && [ "$sat" -gt 0 ] || return 0
  [ "$dir" = down ] && [ "$mode" = broadcast ] && mult=2   # delivered counts both slaves
  rate=$((sat * 9 / 10 / mult))
  [ "$rate" -ge 1 ] || return 0
  [ "$size" = 64 ] && fl=60 || fl=1514
  if [ "$dir" = up ]; then dmac=$BMAC; smac=$G0MAC; sip=$GIP; dip=$BIP; else dmac=$G0MAC; smac=$BMAC; sip=$BIP; dip=$GIP; fi
  ip netns exec "$txns" timeout -s INT -k 2 $((SECS + 3)) taskset -c 0 "$UDP" pace --iface "$txdev" \
    --dst-mac "$dmac" --src-mac "$smac" --src-ip "$sip" --dst-ip "$dip" --size "$fl" \
    --pps "$rate" --secs $((SECS + 1)) >/dev/null 2>&1 &
  pp=$!; track "$pp"
  sleep 0.5
  # shellcheck disable=SC2086
  { o0=$(sumc "$txns" tx_packets "$txdev"); d0=$(sumc "$delns" rx_packets $dels); t0=$(now_ns); }
  sleep "$SECS"
  # shellcheck disable=SC2086
  { o1=$(sumc "$txns" tx_packets "$txdev"); d1=$(sumc "$delns" rx_packets $dels); t1=$(now_ns); }
  wait "$pp" 2>/dev/null || true
  untrack "$pp"
  sleep 0.3
  dt=$((t1 - t0)); del=$((d1 - d0)); off=$((o1 - o0))
  pps=$((del * 1000000000 / dt)); opps=$((off * 1000000000 / dt))
  loss=$(awk -v d="$del" -v o="$off" -v m="$mult" 'BEGIN { if (o > 0) { l = 100 * (1 - d / (m * o)); if (l < 0) l = 0; printf "%.3f", l } }')
  [ "$dir" = up ] && arrow="wire->bond0" || arrow="bond0->wire"
  step "$subj $mode $arrow ${size}B paced at 90% of $(commas "$sat") pps: offered $(commas "$opps"), delivered $(commas "$pps"), loss ${loss:-?}%"
  csv paced "$subj" "$mode" "$dir" "$size" 1 "$pps" "$opps" "" "" "${loss:-}" "%" "saturating=$sat"
}

# probe DIR: a few hundred frames through the data plane; 0 when at least
# half arrive. Logical device = $LOGICAL.
probe() {
  local dir=$1 b a
  if [ "$dir" = up ]; then
    b=$(sumc "$DUT" rx_packets "$LOGICAL")
    ng timeout -s INT -k 1 3 trafgen -i "$TMP/up64.cfg" -o g0 -n 200 -t 1ms >/dev/null 2>&1 || true
    sleep 0.3
    a=$(sumc "$DUT" rx_packets "$LOGICAL")
  else
    b=$(sumc "$GEN" rx_packets g0 g1)
    nd timeout -s INT -k 1 3 trafgen -i "$TMP/down64.cfg" -o "$LOGICAL" -n 200 -t 1ms >/dev/null 2>&1 || true
    sleep 0.3
    a=$(sumc "$GEN" rx_packets g0 g1)
  fi
  [ $((a - b)) -ge 100 ]
}
probe_both() { # tries a few times (the first frames after start can be lost)
  local i
  for i in 1 2 3 4 5; do probe up && probe down && return 0; sleep 0.5; done
  return 1
}

# measure_subject SUBJ MODE PID: every direction x size x run
measure_subject() {
  local subj=$1 mode=$2 pid=$3 size r
  for size in "${SIZE_LIST[@]}"; do
    for r in $(seq "$RUNS"); do
      one_run "$subj" "$mode" up "$size" "$r" "$pid" "$GEN" g0 "$GEN" g0 "$DUT" "$LOGICAL"
    done
    if [ "$subj" = bondd ]; then paced_run "$subj" "$mode" up "$size" "$pid" "$GEN" g0 "$DUT" "$LOGICAL"; fi
    for r in $(seq "$RUNS"); do
      one_run "$subj" "$mode" down "$size" "$r" "$pid" "$DUT" "$LOGICAL" "$DUT" "$LOGICAL" "$GEN" "g0 g1"
    done
    if [ "$subj" = bondd ]; then paced_run "$subj" "$mode" down "$size" "$pid" "$DUT" "$LOGICAL" "$GEN" "g0 g1"; fi
  done
}

# ---------------------------------------------------------------- ceilings
ceilings() {
  local o size r ifx_up ifx_dn
  nd ip link add cb0 numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth \
    peer name cf0 numtxqueues "$QUEUES" numrxqueues "$QUEUES"
  nd ip link set cb0 address "$BMAC"
  nd ip link set cf0 address 02:00:00:00:0c:0f
  nd ip addr add "$BIP/24" dev cb0
  nd ip link set cf0 up
  nd ip link set cb0 up
  ifx_up=$(nd cat /sys/class/net/cf0/ifindex)
  ifx_dn=$(nd cat /sys/class/net/s0/ifindex)
  o=$TMP/xdp_ceiling.o
  clang-19 -O2 -target bpf -I/usr/include/x86_64-linux-gnu -DIFX_UP="$ifx_up" -DIFX_DN="$ifx_dn" \
    -c "$ROOT/bench/xdp_ceiling.c" -o "$o"
  xdp() { ip -n "$1" link set dev "$2" xdpdrv obj "$o" sec xdp program "$3"; }
  xoff() { ip -n "$1" link set dev "$2" xdpdrv off 2>/dev/null || true; }
  LOGICAL=cb0
  # generator into XDP_DROP: on s0 (wire side) / on the stand-in's far end
  xdp "$DUT" s0 xdp_drop
  xdp "$DUT" cf0 xdp_drop
  for size in "${SIZE_LIST[@]}"; do
    for r in $(seq "$RUNS"); do one_run xdp-drop - up "$size" "$r" "" "$GEN" g0 "$GEN" g0 "$DUT" s0; done
    for r in $(seq "$RUNS"); do one_run xdp-drop - down "$size" "$r" "" "$DUT" cb0 "$DUT" cb0 "$DUT" cf0; done
  done
  xoff "$DUT" s0; xoff "$DUT" cf0
  # XDP redirect: s0 -> cf0 (arrives at cb0, the stand-in bond0), and
  # cf0 -> s0 (arrives at g0); the receiving peers run XDP_PASS so NAPI runs.
  xdp "$DUT" s0 xdp_redir_up
  xdp "$DUT" cb0 xdp_pass
  xdp "$DUT" cf0 xdp_redir_dn
  xdp "$GEN" g0 xdp_pass
  for size in "${SIZE_LIST[@]}"; do
    for r in $(seq "$RUNS"); do one_run xdp-redirect - up "$size" "$r" "" "$GEN" g0 "$GEN" g0 "$DUT" cb0; done
    for r in $(seq "$RUNS"); do one_run xdp-redirect - down "$size" "$r" "" "$DUT" cb0 "$DUT" cb0 "$GEN" g0; done
  done
  xoff "$DUT" s0; xoff "$DUT" cb0; xoff "$DUT" cf0; xoff "$GEN" g0
  nd ip link del cb0
  LOGICAL=bond0
}

# ---------------------------------------------------------------- OVS (802.3ad partner)
ovs_start() {
  local d=$TMP/ovs i
  rm -rf "$d"; mkdir -p "$d"
  OVSD=$d
  export OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d OVS_SYSCONFDIR=$d
  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema || return 1
  ng timeout 20 taskset -c 0 ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/ovsdb-server.pid" \
    --unixctl="$d/ovsdb-server.ctl" --log-file="$d/ovsdb-server.log" --detach || return 1
  timeout 20 ovs-vsctl --db="unix:$d/db.sock" --no-wait init || return 1
  ng timeout 20 taskset -c 0 ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/ovs-vswitchd.pid" --unixctl="$d/ovs-vswitchd.ctl" \
    --log-file="$d/ovs-vswitchd.log" --detach || return 1
  # fail_mode=secure and no flows: data frames reaching g0/g1 are dropped
  # early; LACP is handled before the flow table.
  timeout 20 ovs-vsctl --db="unix:$d/db.sock" --timeout=15 \
    add-br "${ID}br" -- set bridge "${ID}br" datapath_type=netdev fail_mode=secure \
    -- add-bond "${ID}br" "${ID}bd" g0 g1 lacp=active bond_mode=balance-tcp other_config:lacp-time=fast || return 1
  for i in $(seq 50); do [ -S "$d/ovs-vswitchd.ctl" ] && return 0; sleep 0.1; done
  return 1
}
ovs_show() { timeout 5 ovs-appctl -t "$OVSD/ovs-vswitchd.ctl" bond/show 2>/dev/null || true; }
ovs_negotiated() { # both members usable and LACP negotiated
  local s
  s=$(ovs_show)
  grep -q 'lacp_status: negotiated' <<< "$s" && [ "$(grep -c 'may_enable: true' <<< "$s")" -ge 2 ]
}
wait_ovs() { # seconds
  local i
  for ((i = 0; i < $1 * 5; i++)); do ovs_negotiated && return 0; sleep 0.2; done
  return 1
}

# ---------------------------------------------------------------- bondd
bondd_start() { # mode -> 0 ready, 1 not (reason in $WHY)
  local mode=$1 i st
  {
    echo "bonds:"
    echo "  - name: bond0"
    echo "    mode: $mode"
    echo "    slaves: [s0, s1]"
    echo "    mac: $BMAC"
    echo "    addresses: [$BIP/24]"
    echo "    miimon: 100"
    case $mode in
      active-backup) echo "    primary: s0" ;;
      balance-xor) echo "    xmit_hash_policy: layer3+4" ;;
      802.3ad) echo "    lacp_rate: fast"; echo "    xmit_hash_policy: layer3+4" ;;
    esac
    if [ -n "${BONDD_EXTRA:-}" ]; then
      while IFS= read -r l; do [ -n "$l" ] && echo "    $l"; done <<< "$BONDD_EXTRA"
    fi
  } > "$TMP/bond.yaml"
  chmod 600 "$TMP/bond.yaml"
  rm -rf "$TMP/state"; mkdir -p "$TMP/state"
  ip netns exec "$DUT" taskset -c 1 "$BONDD" --config "$TMP/bond.yaml" --state-dir "$TMP/state" --socket "$TMP/bondd.sock" \
    --metrics off >"$TMP/bondd-$mode.log" 2>&1 &
  BPID=$!; track "$BPID"
  local lim=15
  [ "$mode" = 802.3ad ] && lim=40
  for ((i = 0; i < lim * 10; i++)); do
    if ! is_ours "$BPID"; then
      local rc=0
      wait "$BPID" 2>/dev/null || rc=$?
      WHY="bondd exited with status $rc: $(tail -n 2 "$TMP/bondd-$mode.log" | tr '\n' ' ')"
      return 1
    fi
    st=$(nd "$BONDD" status --json --socket "$TMP/bondd.sock" 2>/dev/null) || st=
    if [ -n "$st" ] && "$PY" -c '
import json, sys
mode = sys.argv[1]
b = json.loads(sys.stdin.read())[0]
ok = b["mii_up"] and all(s["mii_up"] for s in b["slaves"])
if mode == "active-backup":
    ok = ok and b["active_slave"] == "s0"
if mode == "802.3ad":
    ok = ok and all(s["lacp"] and s["lacp"]["distributing"] for s in b["slaves"])
sys.exit(0 if ok else 1)' "$mode" <<< "$st" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  [ "$i" -lt $((lim * 10)) ] || { WHY="not ready within ${lim}s (status: ${st:0:200})"; return 1; }
  [ "$(cat "/proc/$BPID/comm" 2>/dev/null)" = bondd ] || { WHY="pid $BPID is not bondd"; return 1; }
  if [ "$mode" = 802.3ad ]; then
    wait_ovs 30 || { WHY="Open vSwitch did not show LACP negotiated with bondd within 30s ($(ovs_show | grep -E 'lacp_status|may_enable' | tr -s ' \n' ' '))"; return 1; }
  fi
  probe_both || { WHY="frames do not pass after start"; return 1; }
  return 0
}
bondd_stop() {
  stop_pid "$BPID" 10; BPID=
  local i
  for i in 0 1; do ip -n "$DUT" link set "s$i" xdpdrv off 2>/dev/null || true; ip -n "$DUT" link set "s$i" xdpgeneric off 2>/dev/null || true; done
  for i in $(seq 50); do nd test -e /sys/class/net/bond0 || break; sleep 0.1; done
  ip -n "$GEN" link set g0 up; ip -n "$GEN" link set g1 up
  ip -n "$DUT" link set s0 up; ip -n "$DUT" link set s1 up
  sleep 0.3
}

bondd_idle() { # mode: CPU over IDLE_SECS with the bond up and no traffic
  local mode=$1 c0 c1 t0 t1 pct
  c0=$(cpu_ns "$BPID"); t0=$(now_ns)
  sleep "$IDLE_SECS"
  c1=$(cpu_ns "$BPID"); t1=$(now_ns)
  pct=$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.2f", 100 * c / t }')
  step "bondd $mode idle CPU over ${IDLE_SECS}s, bond up, no traffic: ${pct}% of one core"
  csv idle_cpu bondd "$mode" - - 1 - - - - "$pct" "%core" ""
}

bondd_failover() { # active-backup under a 50 kpps stream; the active slave's far end goes down
  local r out lw rp sp i st count=150000
  # A switch between the generator side and the slaves, for this part only.
  ng ip link add br0 type bridge stp_state 0 forward_delay 0
  ng ip link set g0 master br0; ng ip link set g1 master br0
  ng ip link set br0 up
  ng ip addr add "$GIP/24" dev br0
  ng ethtool -K br0 tx off >/dev/null 2>&1 || true
  sleep 1   # let the bridge ports settle before the first stream
  for r in $(seq "$FO_RUNS"); do
    ng timeout 5 "$UDP" ping --dst "$BIP" --count 3 --interval-ms 100 >/dev/null 2>&1 || true
    ip netns exec "$DUT" timeout 20 "$UDP" recv --bind "$BIP:9000" --expect "$count" --timeout-ms 12000 --pps 50000 \
      > "$TMP/recv.out" 2> "$TMP/recv.err" &
    rp=$!; track "$rp"
    for i in $(seq 50); do grep -q bound "$TMP/recv.err" 2>/dev/null && break; sleep 0.1; done
    ip netns exec "$GEN" timeout 20 taskset -c 0 "$UDP" send --dst "$BIP:9000" --pps 50000 --count "$count" --max-secs 8 \
      > "$TMP/send.out" 2>&1 &
    sp=$!; track "$sp"
    sleep 1.5
    ng ip link set g0 down
    wait "$sp" 2>/dev/null || true
    wait "$rp" 2>/dev/null || true
    untrack "$sp"; untrack "$rp"
    out=$(tr -d '\n' < "$TMP/recv.out")
    lw=$(sed -n 's/.*loss_window_ms=\([0-9.]*\).*/\1/p' <<< "$out")
    step "bondd active-backup failover under 50 kpps run $r/$FO_RUNS: loss_window_ms=${lw:-?} ($out)"
    csv failover bondd active-backup up 64 "$r" - - - - "${lw:-}" ms "${out//,/;}"
    ng ip link set g0 up
    # wait (bounded) for the primary s0 to be active again
    for i in $(seq 100); do
      st=$(nd "$BONDD" status --json --socket "$TMP/bondd.sock" 2>/dev/null) || st=
      grep -q '"active_slave":"s0"' <<< "${st// /}" && break
      sleep 0.1
    done
    sleep 1
  done
  ng ip link del br0
  ng ip link set g0 up; ng ip link set g1 up
  sleep 0.5
}

run_bondd() { # mode
  local mode=$1 rss
  if ! bondd_start "$mode"; then
    echo "run.sh: bondd $mode: $WHY" >&2
    bondd_stop; na bondd "$mode" "$WHY"; return 0
  fi
  echo "    bondd $mode ready (pid $BPID, $(elapsed)s elapsed)"
  bondd_idle "$mode"
  measure_subject bondd "$mode" "$BPID"
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$BPID/status" 2>/dev/null || echo "")
  echo "    bondd $mode RSS after traffic: ${rss:-?} kB"
  csv rss bondd "$mode" - - 1 - - - - "${rss:-}" kB ""
  [ "$mode" = active-backup ] && bondd_failover
  bondd_stop
}

# ---------------------------------------------------------------- DPDK testpmd
tp_send() { # write one line to testpmd's FIFO; bounded (opening a FIFO blocks while nobody reads it)
  # shellcheck disable=SC2016
  timeout 2 bash -c 'echo "$1" > "$2"' _ "$1" "$TMP/tp.in" 2>/dev/null || true
}
tp() { # send one CLI command to testpmd
  tp_send "$1"
  sleep 0.4
}
tp_wait() { # pattern seconds: wait for pattern in the testpmd log
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    grep -q -- "$1" "$TMP/tp.log" 2>/dev/null && return 0
    is_ours "$TPID" || return 1
    sleep 0.1
  done
  return 1
}
dpdk_start() { # mode -> 0 ready, 1 not (reason in $WHY)
  local mode=$1 num s0 s1 i lines
  case $mode in balance-rr) num=0 ;; active-backup) num=1 ;; balance-xor) num=2 ;; broadcast) num=3 ;; 802.3ad) num=4 ;; esac
  if [ "$num" = 4 ]; then
    # af_packet slaves cannot carry mode 4's LACP well; af_xdp slaves cannot
    # take the slave MAC changes modes 0-3 need (no mac_addr_set in 22.11).
    s0=net_af_xdp0,iface=s0,start_queue=0,queue_count=$QUEUES
    s1=net_af_xdp1,iface=s1,start_queue=0,queue_count=$QUEUES
  else
    s0=net_af_packet0,iface=s0,qpairs=1
    s1=net_af_packet1,iface=s1,qpairs=1
  fi
  # Slaves carry the bond MAC (the bond takes slave 0's), as with bondd.
  ip -n "$DUT" link set s0 address "$BMAC"; ip -n "$DUT" link set s1 address "$BMAC"
  rm -f "$TMP/tp.in"; mkfifo "$TMP/tp.in"
  # The holder keeps the FIFO open for writing, so testpmd never sees EOF.
  sleep "$LIMIT" > "$TMP/tp.in" &
  HOLDER=$!; track "$HOLDER"
  ip netns exec "$DUT" stdbuf -oL -eL dpdk-testpmd -l 0,1 --no-huge -m 768 --iova-mode=va --no-pci --no-shconf \
    --file-prefix="$ID" --vdev "$s0" --vdev "$s1" --vdev "net_tap0,iface=dtap0,mac=$BMAC" \
    -- -i --total-num-mbufs=32768 --forward-mode=io --disable-device-start \
    < "$TMP/tp.in" > "$TMP/tp.log" 2>&1 &
  TPID=$!; track "$TPID"
  tp_wait 'testpmd> ' 30 || { WHY="testpmd did not start: $(grep -iE 'error|fail|cannot' "$TMP/tp.log" | tail -n 2 | tr '\n' ' ')"; return 1; }
  lines=$(wc -l < "$TMP/tp.log")
  tp "create bonded device $num 0"
  tp_wait 'Created new bonded device' 10 || { WHY="bonded device not created: $(tail -n 3 "$TMP/tp.log" | tr '\n' ' ')"; return 1; }
  tp "add bonding slave 0 3"
  tp "add bonding slave 1 3"
  case $num in
    1) tp "set bonding primary 0 3" ;;
    2|4) tp "set bonding balance_xmit_policy 3 l34" ;;
  esac
  tp "port start 3"
  tp "port start 2"
  tp "set portlist 3,2"
  tp "set promisc all on"
  tp "start"
  tp_wait 'Logical Core 1' 10 || tp_wait 'io packet forwarding' 5 ||
    { WHY="forwarding did not start: $(tail -n +"$lines" "$TMP/tp.log" | grep -iE 'fail|error|invalid' | tail -n 3 | tr '\n' ' ')"; return 1; }
  if tail -n +"$lines" "$TMP/tp.log" | grep -qiE 'Fail to start port|Failed to (add|start)'; then
    WHY="$(tail -n +"$lines" "$TMP/tp.log" | grep -iE 'fail' | head -n 3 | tr '\n' ' ')"; return 1
  fi
  for i in $(seq 50); do nd test -e /sys/class/net/dtap0 && break; sleep 0.1; done
  nd ip addr add "$BIP/24" dev dtap0 2>/dev/null || true
  nd ip link set dtap0 up
  nd ethtool -K dtap0 tx off >/dev/null 2>&1 || true
  if [ "$num" = 4 ]; then
    # DPDK mode 4 sends LACPDUs only from the bond's tx_burst, which io
    # forwarding calls only when the tap has something: keep a trickle.
    ip netns exec "$DUT" timeout -s INT -k 2 "$LIMIT" taskset -c 0 trafgen -i "$TMP/down64.cfg" -o dtap0 -t 20ms -n $((LIMIT * 50)) \
      >/dev/null 2>&1 &
    TRICKLE=$!; track "$TRICKLE"
    wait_ovs 40 || { WHY="OVS did not negotiate LACP with DPDK mode 4 within 40s ($(ovs_show | grep -E 'lacp_status|may_enable' | tr -s ' \n' ' '))"; return 1; }
  fi
  probe_both || { WHY="frames do not pass through testpmd"; return 1; }
  return 0
}
dpdk_stop() {
  local i
  if [ -n "$TPID" ] && is_ours "$TPID"; then
    tp_send "show port stats all"; sleep 0.3   # kept in the log (KEEP_TMP=1)
    tp_send stop; sleep 0.3
    tp_send quit
    for i in $(seq 100); do is_ours "$TPID" || break; sleep 0.1; done
  fi
  stop_pid "$TPID" 2; TPID=
  stop_pid "$TRICKLE" 2; TRICKLE=
  stop_pid "$HOLDER" 1; HOLDER=
  for i in 0 1; do
    ip -n "$DUT" link set "s$i" xdpdrv off 2>/dev/null || true
    ip -n "$DUT" link set "s$i" xdpgeneric off 2>/dev/null || true
    ip -n "$DUT" link set "s$i" address "02:00:00:00:0b:0$i"
    ip -n "$DUT" link set "s$i" up
  done
  rm -rf "/var/run/dpdk/$ID" 2>/dev/null || true
  sleep 0.3
}
run_dpdk() { # mode
  local mode=$1
  LOGICAL=dtap0
  if ! dpdk_start "$mode"; then
    echo "run.sh: dpdk $mode: $WHY" >&2
    cp "$TMP/tp.log" "$TMP/tp-$mode-failed.log" 2>/dev/null || true
    dpdk_stop; LOGICAL=bond0; na dpdk "$mode" "$WHY"; return 0
  fi
  echo "    dpdk $mode ready (pid $TPID, $(elapsed)s elapsed)"
  measure_subject dpdk "$mode" "$TPID"
  dpdk_stop
  LOGICAL=bond0
}

# ---------------------------------------------------------------- main
if has ceiling "${SUBJ_LIST[@]}"; then
  echo "--- ceilings (generator into XDP_DROP; in-kernel XDP redirect)"
  ceilings
fi
for mode in "${MODE_LIST[@]}"; do
  echo "--- $mode ($(elapsed)s elapsed)"
  ovs_ok=1
  if [ "$mode" = 802.3ad ] && { has bondd "${SUBJ_LIST[@]}" || has dpdk "${SUBJ_LIST[@]}"; }; then
    if ! ovs_start >"$TMP/ovs-start.log" 2>&1; then
      ovs_ok=; WHY="Open vSwitch (LACP partner) did not start: $(tail -n 2 "$TMP/ovs-start.log" | tr '\n' ' ')"
      echo "run.sh: $WHY" >&2
    fi
  fi
  if has bondd "${SUBJ_LIST[@]}"; then
    if [ -n "$ovs_ok" ]; then run_bondd "$mode"; else na bondd "$mode" "$WHY"; fi
  fi
  if has dpdk "${SUBJ_LIST[@]}"; then
    if [ -n "$ovs_ok" ]; then run_dpdk "$mode"; else na dpdk "$mode" "$WHY"; fi
  fi
  [ "$mode" = 802.3ad ] && ovs_stop
done

# ---------------------------------------------------------------- report
T_END=$(date +%s)
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel=$(uname -r)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "nproc=$(nproc)"
  echo "mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)"
  echo "command=$CMDLINE${BONDD_EXTRA:+ (BONDD_EXTRA=$(tr '\n' ';' <<< "$BONDD_EXTRA"))}"
  echo "runs=$RUNS"
  echo "secs=$SECS"
  echo "idle_secs=$IDLE_SECS"
  echo "queues=$QUEUES"
  echo "modes=$MODES"
  echo "sizes=$SIZES"
  echo "subjects=$SUBJECTS"
  echo "duration_s=$((T_END - T_START))"
  echo "bondd=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- daemon ebpf 2>/dev/null || echo ' (+ uncommitted changes)'), binary $(date -u -r "$BONDD" '+%Y-%m-%d %H:%M' 2>/dev/null || echo '?')"
  echo "dpdk=$(dpkg-query -W -f '${Version}' dpdk-dev 2>/dev/null || echo '?')"
  echo "trafgen=$(dpkg-query -W -f '${Version}' netsniff-ng 2>/dev/null || echo '?')"
  echo "ovs=$(dpkg-query -W -f '${Version}' openvswitch-switch 2>/dev/null || echo '?')"
  echo "load_start=$LOAD_START"
  echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$TMP/meta.txt"
mkdir -p "$OUT"
cp "$CSV" "$OUT/results.csv"
cp "$TMP/meta.txt" "$OUT/meta.txt"
"$PY" "$ROOT/bench/plot.py" --csv "$OUT/results.csv" --meta "$OUT/meta.txt" --md "$OUT/results.md" --svg "$OUT/results.svg"
echo
cat "$OUT/results.md"
echo
echo "run.sh: done in $((T_END - T_START)) s; wrote $OUT/results.md, results.csv, results.svg"
