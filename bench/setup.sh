#!/usr/bin/env bash
# Installs what bench/run.sh needs on Debian 12, idempotently: only the
# packages `dpkg -s` does not report as installed are passed to apt-get.
# Run as root. Safe to run repeatedly (does nothing when all are present).
set -euo pipefail

PKGS=(
  dpdk-dev                 # dpdk-testpmd (the `dpdk` package does not ship it)
  librte-net-af-xdp23      # DPDK PMDs used: af_xdp and af_packet slaves,
  librte-net-bond23        #   the bonding PMD, net_tap as bond0,
  librte-net-tap23
  librte-net-af-packet23
  librte-mempool-ring23    #   and the default mempool driver
  netsniff-ng              # trafgen, the generator
  openvswitch-switch       # userspace LACP partner for 802.3ad
  clang-19 libbpf-dev      # bench/xdp_ceiling.c
  linux-perf ethtool
)

[ "$(id -u)" = 0 ] || { echo "setup: needs root" >&2; exit 1; }
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
}
# A fresh machine may have no package lists yet; a concurrent apt-get can make
# dpkg fail once ("cannot access archive"): update and retry once.
if ! apt_install; then
  apt-get -o DPkg::Lock::Timeout=300 update
  apt_install
fi
# The Debian package starts the system OVS daemons; run.sh starts private
# instances in its own namespaces and does not need them.
