//! The control plane of one bond: checks before touching anything, setting
//! up the logical interface, the slaves, the sockets and the XDP programs,
//! reacting to carrier changes with the pure core's rules, and restoring
//! everything on the way out.

use crate::{
    dataplane::{Inject, LogicalIo, PortStats, SlowFrame, Snapshot, Worker, WorkerCtl, WorkerMsg},
    netlink::{LinkInfoView, Net},
    notify,
    state::{self, BondState, SavedSlave},
};
use anyhow::{Context, Result, anyhow, bail};
use bondd_core::{
    config::{BondConfig, FailOverMac, InterfaceKind, Mode, XdpMode, XmitHashTable, format_mac},
    lacp::{Lacp, LacpConfig},
    link::{LinkEvent, LinkMonitor, LinkState},
    select::{Selector, SlaveView},
    time::Instant,
    xmit::{self, Reduce, TxPlan},
};
use bondd_xdp::{
    AttachMode, CopyMode, RingSizes, Umem, XdpPort, Xsk,
    program::{PROGRAM_NAME, program_name},
    sys::{self, EventFd, Tap},
};
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{SyncSender, sync_channel},
    },
    thread::JoinHandle,
    time::Duration,
};
use tracing::{error, info, warn};

/// UMEM chunk size for MTUs up to [`SMALL_FRAME_MTU`]: half the memory of
/// 4 KiB chunks (a two-slave bond's UMEM is 12 MiB instead of 24).
const SMALL_FRAME_SIZE: u32 = 2048;
/// Largest MTU whose frames (plus Ethernet header and two VLAN tags) fit a
/// 2 KiB chunk after the kernel's 256-byte XDP headroom.
const SMALL_FRAME_MTU: u32 = 2048 - 256 - 14 - 8;
/// UMEM chunk size above that: room for a 3500-byte MTU frame.
const FRAME_SIZE: u32 = 4096;
/// UMEM frames per socket: a full fill ring (2048) plus as many in flight;
/// 8 MiB per socket with 2 KiB chunks, and room for slaves added by a
/// reload (the free list is shared).
const FRAMES_PER_SOCKET: u32 = 4096;
/// The largest MTU bondd accepts: single-buffer XDP in a 4 KiB page leaves
/// about 3.5 KB for the frame on common drivers (veth: 3506 bytes).
pub const MAX_MTU: u32 = 3500;
/// Slow-protocol frames a port may burst before the rate limit applies.
const SLOW_BURST: f64 = 50.0;
/// Slow-protocol frames per second a port may send in steady state (LACP
/// sends at most 3, markers are rare).
const SLOW_RATE: f64 = 20.0;
/// Marks links bondd created, so a restart can tell its leftovers from an
/// operator's interface of the same name.
const ALIAS_PREFIX: &str = "bondd:";

/// The control plane's clock: CLOCK_MONOTONIC, handed to the pure core.
pub fn now() -> Instant {
    Instant(sys::monotonic_ns())
}

/// This host's identity for deriving the bond MAC: /etc/machine-id (or
/// D-Bus's copy); empty when neither exists, which still gives a stable MAC.
pub fn host_id() -> Vec<u8> {
    for p in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() {
                return s.as_bytes().to_vec();
            }
        }
    }
    Vec::new()
}

fn ipv6_sysctl(dev: &str) -> String {
    format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
}

/// Whether IPv6 is disabled on `dev` (`None` without IPv6 in the kernel).
fn ipv6_disabled(dev: &str) -> Option<bool> {
    std::fs::read_to_string(ipv6_sysctl(dev))
        .ok()
        .map(|v| v.trim() == "1")
}

fn set_ipv6_disabled(dev: &str, on: bool) {
    if let Err(e) = std::fs::write(ipv6_sysctl(dev), if on { "1" } else { "0" }) {
        warn!(slave = %dev, "setting disable_ipv6={}: {e}", u8::from(on));
    }
}

/// `napi_defer_hard_irqs` and `gro_flush_timeout` for `busy_poll`: the
/// kernel's documented values for preferred busy polling (the device's
/// interrupts stay masked while the application polls; a 200 µs watchdog
/// takes over if it stops).
const BUSY_POLL_NAPI: (u32, u64) = (2, 200_000);

/// Reads a device's NAPI settings, only if /sys shows this namespace's
/// device (sysfs follows the mount namespace, not the network namespace).
fn napi_settings(dev: &str, ifindex: u32) -> Option<(u32, u64)> {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{dev}/{f}"))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if read("ifindex")? != u64::from(ifindex) {
        warn!(slave = %dev, "busy_poll: /sys is not this namespace's; NAPI settings left alone");
        return None;
    }
    Some((
        read("napi_defer_hard_irqs")? as u32,
        read("gro_flush_timeout")?,
    ))
}

/// Writes what [`napi_settings`] read (only called when it read them).
fn set_napi_settings(dev: &str, (defer, flush): (u32, u64)) {
    for (f, v) in [
        ("napi_defer_hard_irqs", u64::from(defer)),
        ("gro_flush_timeout", flush),
    ] {
        if let Err(e) = std::fs::write(format!("/sys/class/net/{dev}/{f}"), v.to_string()) {
            warn!(slave = %dev, "setting {f}={v}: {e}");
        }
    }
}

/// A slave must not speak for itself: with IPv6 on, the kernel sends router
/// solicitations, MLD reports and DAD probes from the slave with the bond
/// MAC as source, and a switch then learns the bond MAC on a backup port and
/// sends the bond's traffic there. The kernel's bonding driver keeps IPv6 off
/// its slaves for the same reason.
fn quiet_slave_ipv6(dev: &str, was_disabled: Option<bool>) {
    if was_disabled == Some(false) {
        set_ipv6_disabled(dev, true);
    }
}

/// One counter summed over the workers' copies.
fn sum(v: &[Arc<PortStats>], f: fn(&PortStats) -> &std::sync::atomic::AtomicU64) -> u64 {
    v.iter().map(|x| f(x).load(Ordering::Relaxed)).sum()
}

/// How long one busy-poll pass may spin in the kernel (`busy_poll: true`).
const BUSY_POLL_USECS: u32 = 20;

/// Frames one copy-mode TX kick may send: a whole batch (and then some),
/// so a batch costs one sendto instead of two at the kernel's default 32.
const TX_BUDGET: u32 = 4 * crate::dataplane::BATCH as u32;

/// Per-socket kernel settings: the TX budget, and busy polling if asked.
fn tune_socket(x: &Xsk, cfg: &BondConfig) -> Result<()> {
    if x.mode() == CopyMode::Copy {
        if let Err(e) = x.set_tx_budget(TX_BUDGET) {
            // Before Linux 6.17 the kernel sends 32 per kick; still correct.
            tracing::debug!("XDP_MAX_TX_SKB_BUDGET not set: {e}");
        }
    }
    if cfg.busy_poll {
        x.set_busy_poll(BUSY_POLL_USECS, crate::dataplane::BATCH as u32)
            .context("busy_poll: setting SO_PREFER_BUSY_POLL")?;
    }
    Ok(())
}

/// Attaches a slave's XDP program as `xdp_mode` says.
fn attach_as_configured(
    port: &mut XdpPort,
    name: &str,
    index: u32,
    mode: XdpMode,
) -> Result<AttachMode> {
    let got = port.attach(name, index, mode == XdpMode::Generic)?;
    if mode == XdpMode::Native && got != AttachMode::Native {
        port.detach();
        bail!(
            "slave {name}: key \"xdp_mode\": native XDP is not available on {name} (use auto or generic)"
        );
    }
    Ok(got)
}

/// Name of the far end of the logical veth pair (IFNAMSIZ-safe).
pub fn peer_name(bond: &str) -> String {
    if bond.len() <= 12 {
        format!("{bond}-dp")
    } else {
        // FNV-1a keeps it stable and unique enough within a namespace.
        let mut h: u32 = 0x811c9dc5;
        for b in bond.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("bdp{h:08x}")
    }
}

/// Everything that the daemon refuses before it changes anything.
pub async fn preflight(net: &Net, cfg: &BondConfig, state_dir: &Path) -> Result<()> {
    match cfg.mode {
        Mode::ActiveBackup
        | Mode::BalanceRr
        | Mode::BalanceXor
        | Mode::Broadcast
        | Mode::Ieee8023ad => {}
        other => bail!(
            "bond \"{}\": key \"mode\": {} is not implemented yet in bondd (balance-rr, active-backup, balance-xor, broadcast and 802.3ad run today)",
            cfg.name,
            other.kernel_name()
        ),
    }
    if cfg.arp_interval > 0 {
        bail!(
            "bond \"{}\": key \"arp_interval\": ARP monitoring is not implemented yet; use miimon (carrier is always watched)",
            cfg.name
        );
    }
    if cfg.fail_over_mac != FailOverMac::None {
        bail!(
            "bond \"{}\": key \"fail_over_mac\": only `none` is implemented yet",
            cfg.name
        );
    }
    for s in &cfg.slaves {
        let Some(l) = net.link_by_name(s).await? else {
            bail!(
                "bond \"{}\": key \"slaves\": slave {s} does not exist",
                cfg.name
            );
        };
        if l.kind.as_deref() == Some("bond") || s == "lo" {
            bail!(
                "bond \"{}\": key \"slaves\": {s} cannot be a slave",
                cfg.name
            );
        }
        if let Some(id) = l.xdp_prog_id {
            let name = program_name(id).unwrap_or_default();
            if name != PROGRAM_NAME {
                bail!(
                    "bond \"{}\": key \"slaves\": {s} already has an XDP program attached ({} id {id}); bondd will not replace it",
                    cfg.name,
                    if name.is_empty() { "unnamed" } else { &name }
                );
            }
        }
    }
    if cfg.workers > 1 {
        for s in &cfg.slaves {
            let q = sys::rx_queue_count(s);
            if q < cfg.workers {
                bail!(
                    "bond \"{}\": key \"workers\": {} workers need {} queues on every slave, and {s} has {q}; raise its queues (ethtool -L {s} combined {}) or lower workers",
                    cfg.name,
                    cfg.workers,
                    cfg.workers,
                    cfg.workers
                );
            }
        }
    }
    if !cfg.worker_cpus.is_empty() {
        let allowed = sys::allowed_cpus().context("reading the CPU affinity mask")?;
        if let Some(c) = cfg.worker_cpus.iter().find(|c| !allowed.contains(c)) {
            bail!(
                "bond \"{}\": key \"worker_cpus\": CPU {c} is not available to bondd (allowed: {})",
                cfg.name,
                allowed
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
    }
    let st_path = state::path(state_dir, sys::netns_id(), &cfg.name);
    if let Some(st) = state::load(&st_path).ok().flatten()
        && state::pid_is_live_bondd(st.pid)
    {
        bail!(
            "bond {} is already run by bondd pid {} in this namespace",
            cfg.name,
            st.pid
        );
    }
    for name in [cfg.name.clone(), peer_name(&cfg.name)] {
        if let Some(l) = net.link_by_name(&name).await?
            && !is_ours(&l, &cfg.name)
        {
            bail!(
                "bond \"{}\": key \"name\": interface {name} already exists and was not created by bondd",
                cfg.name
            );
        }
    }
    Ok(())
}

fn is_ours(l: &LinkInfoView, bond: &str) -> bool {
    l.alias.as_deref() == Some(&format!("{ALIAS_PREFIX}{bond}"))
}

/// Undoes what a killed bondd left: restores the slaves recorded in its
/// state file, detaches a leftover bondd XDP program, deletes the old logical
/// interface.
pub async fn cleanup_stale(net: &Net, cfg: &BondConfig, state_dir: &Path) -> Result<()> {
    let st_path = state::path(state_dir, sys::netns_id(), &cfg.name);
    match state::load(&st_path) {
        Ok(Some(st)) => {
            warn!(bond = %cfg.name, pid = st.pid, "found state of a bondd that did not exit cleanly; restoring its slaves");
            for s in &st.slaves {
                if let Some(l) = net.link_by_name(&s.name).await? {
                    restore_slave(net, &l, s).await;
                }
            }
            let _ = std::fs::remove_file(&st_path);
        }
        Ok(None) => {}
        Err(e) => {
            warn!(bond = %cfg.name, "ignoring unreadable state file: {e:#}");
            let _ = std::fs::remove_file(&st_path);
        }
    }
    for s in &cfg.slaves {
        if let Some(l) = net.link_by_name(s).await?
            && let Some(id) = l.xdp_prog_id
            && program_name(id).as_deref() == Some(PROGRAM_NAME)
        {
            warn!(slave = %s, prog_id = id, "detaching a leftover bondd XDP program");
            net.detach_xdp(l.index).await?;
        }
    }
    for name in [cfg.name.clone(), peer_name(&cfg.name)] {
        if let Some(l) = net.link_by_name(&name).await?
            && is_ours(&l, &cfg.name)
        {
            warn!(link = %name, "deleting a leftover logical interface");
            net.del_link(l.index).await?;
        }
    }
    Ok(())
}

async fn restore_slave(net: &Net, l: &LinkInfoView, s: &SavedSlave) {
    let idx = l.index;
    if l.mac != Some(s.mac)
        && let Err(e) = net.set_mac(idx, s.mac).await
    {
        warn!(slave = %s.name, "restoring MAC: {e:#}");
    }
    if l.mtu != s.mtu
        && let Err(e) = net.set_mtu(idx, s.mtu).await
    {
        warn!(slave = %s.name, "restoring MTU: {e:#}");
    }
    if let Err(e) = net.set_flags(idx, s.promisc, s.allmulti).await {
        warn!(slave = %s.name, "restoring flags: {e:#}");
    }
    if s.ipv6_disabled == Some(false) {
        set_ipv6_disabled(&s.name, false);
    }
    if let Some(n) = s.napi {
        set_napi_settings(&s.name, n);
    }
    if let Some(rx) = s.rxvlan
        && let Ok((now_rx, _)) = sys::vlan_offload(&s.name)
        && now_rx != rx
        && let Err(e) = sys::set_vlan_offload(&s.name, Some(rx), None)
    {
        warn!(slave = %s.name, "restoring RX VLAN stripping: {e}");
    }
    if l.up != s.up
        && let Err(e) = net.set_up(idx, s.up).await
    {
        warn!(slave = %s.name, "restoring up/down: {e:#}");
    }
}

struct SlaveRt {
    name: String,
    index: u32,
    saved: SavedSlave,
    xdp: Option<XdpPort>,
    speed: Option<u32>,
    duplex: Option<bool>,
    /// fds of its sockets (owned by the worker), to name the UMEM when a
    /// slave is added later.
    sock_fds: Vec<std::os::fd::RawFd>,
}

/// What a reload did to a bond.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Nothing to change.
    Unchanged,
    /// Changed in place; untouched slaves kept forwarding.
    Updated(String),
    /// The change needs the bond rebuilt (mode, interface, MAC, MTU, …).
    NeedsRebuild(String),
}

enum LogicalRt {
    Veth {
        index: u32,
        peer_index: u32,
        peer_xdp: Option<XdpPort>,
    },
    Tap {
        index: u32,
    },
}

/// The control plane's handles on one data-plane worker.
struct WorkerRt {
    msgs: SyncSender<WorkerMsg<Xsk>>,
    wake: Arc<EventFd>,
    join: Option<JoinHandle<Worker<Xsk>>>,
    /// A socket of this worker that lives as long as the bond (its logical
    /// veth socket), naming its UMEM for slaves added later.
    umem_fd: Option<std::os::fd::RawFd>,
}

/// The sockets of one worker, before it starts.
struct WorkerSocks {
    umem: Umem,
    slaves: Vec<Vec<Xsk>>,
    logical: Vec<Xsk>,
}

/// A running bond.
pub struct Bond {
    /// Its configuration.
    pub cfg: BondConfig,
    slaves: Vec<SlaveRt>,
    logical: Option<LogicalRt>,
    monitor: LinkMonitor,
    selector: Selector,
    active: Option<usize>,
    /// The data-plane workers, each with its own UMEM and sockets.
    workers: Vec<WorkerRt>,
    /// Frames to send out of a slave; worker 0 sends them.
    inject_tx: Option<SyncSender<Inject>>,
    /// Worker 0's wakeup (it sends injected frames).
    wake: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    /// Per slave, one counter set per worker.
    slave_stats: Vec<Vec<Arc<PortStats>>>,
    /// The logical port's counters, one set per worker.
    logical_stats: Vec<Arc<PortStats>>,
    state_path: PathBuf,
    failovers: u64,
    /// Peer notifications still to send: (when, how many left).
    notify_due: Option<(Instant, u8)>,
    next_miimon: Option<Instant>,
    mac: [u8; 6],
    /// The plan last published, so a stable hash table moves minimally.
    last_plan: TxPlan,
    /// Usable slaves at the last publish, to log changes of the set.
    last_usable: Vec<u8>,
    copy_mode: Option<CopyMode>,
    /// Frames in the worker's UMEM.
    umem_frames: u64,
    /// Configured slaves whose interface disappeared, to take back.
    missing: Vec<String>,
    /// Slow-protocol rate limit: per slave, (tokens, last refill).
    slow_tokens: Vec<(f64, Instant, f64)>,
    /// Each port's current partner system id, to exempt its PDUs from the
    /// rate limit that applies to everything else.
    partner_sys: Vec<[u8; 6]>,
    /// Slow-protocol frames dropped by the rate limit, per slave name.
    slow_rate_drops: std::collections::HashMap<String, u64>,
    /// The 802.3ad engine, in that mode.
    lacp: Option<Lacp>,
    slow_rx: Option<std::sync::mpsc::Receiver<SlowFrame>>,
    slow_notify: Arc<tokio::sync::Notify>,
}

impl Bond {
    /// Sets the bond up. On error, what was done is undone before returning.
    pub async fn start(
        net: &Net,
        cfg: BondConfig,
        state_dir: &Path,
        slow_notify: Arc<tokio::sync::Notify>,
    ) -> Result<Self> {
        let n = cfg.slaves.len();
        let mut selector = Selector::new(
            cfg.primary
                .as_ref()
                .and_then(|p| cfg.slaves.iter().position(|s| s == p)),
            cfg.primary_reselect,
        );
        let _ = &mut selector;
        let mut bond = Bond {
            monitor: LinkMonitor::new(
                n,
                Duration::from_millis(u64::from(cfg.updelay)),
                Duration::from_millis(u64::from(cfg.downdelay)),
            ),
            selector,
            slaves: Vec::new(),
            logical: None,
            active: None,
            workers: Vec::new(),
            inject_tx: None,
            wake: Arc::new(EventFd::new().context("eventfd")?),
            stop: Arc::new(AtomicBool::new(false)),
            slave_stats: Vec::new(),
            logical_stats: Vec::new(),
            state_path: state::path(state_dir, sys::netns_id(), &cfg.name),
            failovers: 0,
            notify_due: None,
            next_miimon: None,
            mac: cfg.bond_mac_for_host(&host_id()),
            last_plan: TxPlan::none(),
            last_usable: Vec::new(),
            copy_mode: None,
            umem_frames: 0,
            missing: Vec::new(),
            slow_tokens: Vec::new(),
            partner_sys: Vec::new(),
            slow_rate_drops: std::collections::HashMap::new(),
            lacp: None,
            slow_rx: None,
            slow_notify,
            cfg,
        };
        match bond.setup(net).await {
            Ok(()) => Ok(bond),
            Err(e) => {
                error!(bond = %bond.cfg.name, "setup failed, undoing: {e:#}");
                bond.teardown(net).await;
                Err(e)
            }
        }
    }

    async fn setup(&mut self, net: &Net) -> Result<()> {
        let name = self.cfg.name.clone();
        // 1. Record the slaves' original settings before touching them.
        for s in &self.cfg.slaves {
            let l = crate::netlink::require_link(net, s, "slave").await?;
            let (speed, duplex) = sys::link_speed(s);
            self.slaves.push(SlaveRt {
                name: s.clone(),
                index: l.index,
                saved: SavedSlave {
                    name: s.clone(),
                    mac: l.mac.unwrap_or([0; 6]),
                    mtu: l.mtu,
                    up: l.up,
                    promisc: l.promisc,
                    allmulti: l.allmulti,
                    rxvlan: sys::vlan_offload(s).ok().map(|(rx, _)| rx),
                    ipv6_disabled: ipv6_disabled(s),
                    napi: if self.cfg.busy_poll {
                        napi_settings(s, l.index)
                    } else {
                        None
                    },
                },
                xdp: None,
                speed,
                duplex,
                sock_fds: Vec::new(),
            });
        }
        state::store(
            &self.state_path,
            &BondState {
                pid: std::process::id(),
                logical: name.clone(),
                slaves: self.slaves.iter().map(|s| s.saved.clone()).collect(),
            },
        )?;

        // 2. The logical interface.
        let alias = format!("{ALIAS_PREFIX}{name}");
        let mut tap = None;
        match self.cfg.interface {
            InterfaceKind::Veth => {
                let peer = peer_name(&name);
                net.add_veth(&name, &peer, self.cfg.workers).await?;
                let l = crate::netlink::require_link(net, &name, "logical interface").await?;
                let p = crate::netlink::require_link(net, &peer, "logical interface peer").await?;
                self.logical = Some(LogicalRt::Veth {
                    index: l.index,
                    peer_index: p.index,
                    peer_xdp: None,
                });
                net.set_alias(l.index, &alias).await?;
                net.set_alias(p.index, &alias).await?;
                net.set_mac(l.index, self.mac).await?;
                net.set_mtu(l.index, self.cfg.mtu).await?;
                net.set_mtu(p.index, self.cfg.mtu).await?;
                sys::set_tx_checksum(&name, false)
                    .with_context(|| format!("turning TX checksum offload off on {name}"))?;
                if let Err(e) = sys::set_vlan_offload(&name, None, Some(false)) {
                    warn!(bond = %name, "turning TX VLAN offload off: {e}; tagged frames from the host may lose their tag");
                }
            }
            InterfaceKind::Tap => {
                let t = Tap::create(&name).with_context(|| format!("creating TAP {name}"))?;
                let l = crate::netlink::require_link(net, &name, "logical interface").await?;
                self.logical = Some(LogicalRt::Tap { index: l.index });
                net.set_alias(l.index, &alias).await?;
                net.set_mac(l.index, self.mac).await?;
                net.set_mtu(l.index, self.cfg.mtu).await?;
                tap = Some(t);
            }
        }

        // 3. Slaves carry the bond MAC (fail_over_mac=none) and accept all
        // multicast, since the host's multicast list is on bond0, not on them.
        for s in &self.slaves {
            quiet_slave_ipv6(&s.name, s.saved.ipv6_disabled);
            if s.saved.napi.is_some() {
                set_napi_settings(&s.name, BUSY_POLL_NAPI);
            }
            net.set_mac(s.index, self.mac)
                .await
                .with_context(|| format!("setting bond MAC on slave {}", s.name))?;
            net.set_mtu(s.index, self.cfg.mtu).await.with_context(|| {
                format!(
                    "setting MTU {} on slave {} (mtu: the slave refuses it)",
                    self.cfg.mtu, s.name
                )
            })?;
            net.set_flags(s.index, s.saved.promisc, true).await?;
            if s.saved.rxvlan == Some(true)
                && let Err(e) = sys::set_vlan_offload(&s.name, Some(false), None)
            {
                warn!(slave = %s.name, "turning RX VLAN stripping off: {e}; tagged frames may lose their tag");
            }
            net.set_up(s.index, true).await?;
        }

        // 4. Sockets, zero-copy first. Each worker's sockets share one UMEM
        // of that worker, and a shared UMEM has one mode: with the veth logical interface (which
        // cannot do zero-copy) in it, zero-copy cannot bind, so do not try.
        let (wsocks, copy_mode) = if self.cfg.interface == InterfaceKind::Veth {
            info!(bond = %name, "copy mode: the veth logical interface shares the UMEM and has no zero-copy");
            self.open_sockets(CopyMode::Copy)?
        } else {
            match self.open_sockets(CopyMode::ZeroCopy) {
                Ok(v) => v,
                Err(zc) => {
                    info!(bond = %name, "zero-copy not available ({zc:#}); using copy mode");
                    self.open_sockets(CopyMode::Copy)?
                }
            }
        };

        self.copy_mode = Some(copy_mode);
        self.umem_frames = wsocks.iter().map(|w| u64::from(w.umem.frame_count())).sum();
        for x in wsocks
            .iter()
            .flat_map(|w| w.slaves.iter().flatten().chain(w.logical.iter()))
        {
            tune_socket(x, &self.cfg)?;
        }

        // 5. XDP programs: load, register every worker's sockets, attach
        // (native, else generic, as xdp_mode says).
        for (i, s) in self.slaves.iter_mut().enumerate() {
            let socks: Vec<&Xsk> = wsocks.iter().flat_map(|w| w.slaves[i].iter()).collect();
            s.sock_fds = socks.iter().map(|x| x.raw_fd()).collect();
            let t0 = std::time::Instant::now();
            let mut port = XdpPort::load()?;
            tracing::debug!(slave = %s.name, ms = t0.elapsed().as_millis() as u64, "XDP program loaded");
            for x in &socks {
                port.register_socket(x.queue(), x.raw_fd())?;
            }
            let mode = attach_as_configured(&mut port, &s.name, s.index, self.cfg.xdp_mode)?;
            info!(bond = %name, slave = %s.name, xdp = %mode, af_xdp = %copy_mode, queues = socks.len(), "slave attached");
            s.xdp = Some(port);
        }
        if let Some(LogicalRt::Veth {
            peer_index,
            peer_xdp,
            ..
        }) = &mut self.logical
        {
            let mut port = XdpPort::load()?;
            for x in wsocks.iter().flat_map(|w| w.logical.iter()) {
                port.register_socket(x.queue(), x.raw_fd())?;
            }
            port.set_deliver(true)?;
            let peer = peer_name(&name);
            let mode = port.attach(&peer, *peer_index, false)?;
            info!(bond = %name, link = %peer, xdp = %mode, af_xdp = %copy_mode, "logical interface attached");
            if mode == AttachMode::Generic {
                warn!(bond = %name, "native XDP unavailable on the logical veth; generic mode is slower");
            }
            *peer_xdp = Some(port);
        }

        // 6. The workers. Worker 0 also sends the control plane's frames.
        let slow = (self.cfg.mode == Mode::Ieee8023ad).then(|| {
            // Bounded: under a PDU flood the workers drop the excess.
            let (tx, rx) = sync_channel::<SlowFrame>(4096);
            self.slow_rx = Some(rx);
            tx
        });
        let (inj_tx, inj_rx) = sync_channel(256);
        self.inject_tx = Some(inj_tx);
        let mut inj_rx = Some(inj_rx);
        let nworkers = wsocks.len();
        self.slave_stats = (0..self.slaves.len()).map(|_| Vec::new()).collect();
        self.logical_stats.clear();
        let mut tap = tap;
        for (w, ws) in wsocks.into_iter().enumerate() {
            let umem_fd = ws.logical.first().map(|x| x.raw_fd());
            let logical_io = match tap.take() {
                Some(t) => LogicalIo::Tap(t),
                None => LogicalIo::Xsk(ws.logical),
            };
            let mut worker = Worker::new(ws.umem, ws.slaves, logical_io);
            if let Some(tx) = &slow {
                worker.set_slow_channel(tx.clone(), self.slow_notify.clone());
            }
            for (i, st) in worker.slave_stats().into_iter().enumerate() {
                self.slave_stats[i].push(st);
            }
            self.logical_stats.push(worker.logical_stats());
            let (msg_tx, msg_rx) = sync_channel(64);
            let wake = if w == 0 {
                self.wake.clone()
            } else {
                Arc::new(EventFd::new().context("eventfd")?)
            };
            let ctl = WorkerCtl {
                msgs: msg_rx,
                // Only worker 0 sends injected frames; the others get a
                // channel whose sender is gone.
                inject: inj_rx.take().unwrap_or_else(|| sync_channel(1).1),
                stop: self.stop.clone(),
                wake: wake.clone(),
                cpu: self.cfg.worker_cpus.get(w).copied(),
                busy_poll: self.cfg.busy_poll,
            };
            let join = std::thread::Builder::new()
                .name(if nworkers == 1 {
                    format!("bondd-{name}")
                } else {
                    format!("bondd-{name}/{w}")
                })
                .spawn(move || worker.run(ctl))
                .context("starting a worker thread")?;
            self.workers.push(WorkerRt {
                msgs: msg_tx,
                wake,
                join: Some(join),
                umem_fd,
            });
        }
        if nworkers > 1 || !self.cfg.worker_cpus.is_empty() || self.cfg.busy_poll {
            info!(bond = %name, workers = nworkers, cpus = ?self.cfg.worker_cpus, busy_poll = self.cfg.busy_poll, "data-plane workers started");
        }

        // 7. Link state and the first active slave.
        let t = now();
        for (i, s) in self.slaves.iter().enumerate() {
            let l = net
                .link_by_index(s.index)
                .await?
                .context("slave vanished")?;
            self.monitor.set_initial(i, l.carrier);
            info!(bond = %name, slave = %s.name, carrier = l.carrier, "initial link state");
        }
        if self.cfg.mode == Mode::Ieee8023ad {
            let mut lcfg = LacpConfig::from_bond(&self.cfg);
            // The actor system id is the bond MAC (this host's), unless set.
            lcfg.system_mac = self.cfg.ad_actor_system.unwrap_or(self.mac);
            let mut lacp = Lacp::new(lcfg, t);
            for (i, s) in self.slaves.iter().enumerate() {
                // Port numbers are 1-based; LACPDUs carry the slave's own
                // (permanent) MAC as source, as the kernel's do.
                lacp.add_port(
                    i,
                    (i + 1) as u16,
                    s.saved.mac,
                    s.speed,
                    s.duplex.unwrap_or(true),
                    self.monitor.state(i).is_usable(),
                    t,
                );
            }
            info!(bond = %name, system = %format_mac(&lcfg.system_mac), rate = %self.cfg.lacp_rate.kernel_name(), active = self.cfg.lacp_active, "802.3ad: LACP started");
            self.lacp = Some(lacp);
            self.lacp_run(t);
        }
        self.reselect(net, t, "start").await;

        // 8. Bring the logical interface up with its addresses.
        match &self.logical {
            Some(LogicalRt::Veth {
                index, peer_index, ..
            }) => {
                net.set_up(*peer_index, true).await?;
                net.set_up(*index, true).await?;
            }
            Some(LogicalRt::Tap { index }) => net.set_up(*index, true).await?,
            None => {}
        }
        let idx = self.logical_index().expect("set above");
        for a in &self.cfg.addresses {
            net.add_address(idx, a.addr, a.prefix).await?;
        }
        for g in &self.cfg.gateways {
            net.add_default_route(idx, *g).await?;
        }
        if self.cfg.miimon > 0 {
            self.next_miimon = t.checked_add(Duration::from_millis(u64::from(self.cfg.miimon)));
        }
        // Tell the switch where the bond is now that it has addresses.
        if self.active.is_some() {
            self.notify_due = Some((now(), self.cfg.num_grat_arp.max(1)));
        }
        info!(bond = %name, mac = %format_mac(&self.mac), mtu = self.cfg.mtu, mode = %self.cfg.mode.kernel_name(), "bond up");
        Ok(())
    }

    /// Opens every worker's sockets. Worker `w` takes queue `q` of each
    /// slave where `q % workers == w` (so its first socket on a slave, the
    /// one it transmits on, is queue `w`), and queue `w` of the logical veth.
    fn open_sockets(&self, mode: CopyMode) -> Result<(Vec<WorkerSocks>, CopyMode)> {
        let sizes = RingSizes::default();
        let n = self.cfg.workers.max(1);
        let mut out = Vec::new();
        for w in 0..n {
            let mut plan: Vec<(Option<usize>, u32, u32)> = Vec::new(); // (slave, ifindex, queue)
            for (i, s) in self.slaves.iter().enumerate() {
                let nq = sys::rx_queue_count(&s.name);
                let mine: Vec<u32> = (0..nq).filter(|q| q % n == w).collect();
                if mine.is_empty() {
                    bail!(
                        "bond {}: workers: {n}: slave {} has {nq} queue(s), fewer than the workers",
                        self.cfg.name,
                        s.name
                    );
                }
                plan.extend(mine.into_iter().map(|q| (Some(i), s.index, q)));
            }
            if let Some(LogicalRt::Veth { peer_index, .. }) = &self.logical {
                plan.push((None, *peer_index, w));
            }
            let chunk = if self.cfg.mtu <= SMALL_FRAME_MTU {
                SMALL_FRAME_SIZE
            } else {
                FRAME_SIZE
            };
            let umem = Umem::new(chunk, FRAMES_PER_SOCKET * plan.len() as u32)
                .context("allocating the UMEM")?;
            let mut slaves: Vec<Vec<Xsk>> = (0..self.slaves.len()).map(|_| Vec::new()).collect();
            let mut logical = Vec::new();
            let mut owner: Option<Xsk> = None;
            let mut owner_slot = None;
            for (slave, ifindex, q) in plan {
                let x = match &owner {
                    None => Xsk::owner(&umem, ifindex, q, sizes, mode)?,
                    Some(o) => Xsk::shared(o, ifindex, q, sizes)?,
                };
                if owner.is_none() {
                    owner = Some(x);
                    owner_slot = Some(slave);
                    continue;
                }
                match slave {
                    Some(i) => slaves[i].push(x),
                    None => logical.push(x),
                }
            }
            // The owner goes first in its slave's list: it is the lowest queue.
            if let (Some(o), Some(slot)) = (owner, owner_slot) {
                match slot {
                    Some(i) => slaves[i].insert(0, o),
                    None => logical.insert(0, o),
                }
            }
            out.push(WorkerSocks {
                umem,
                slaves,
                logical,
            });
        }
        Ok((out, mode))
    }

    fn logical_index(&self) -> Option<u32> {
        match &self.logical {
            Some(LogicalRt::Veth { index, .. }) | Some(LogicalRt::Tap { index }) => Some(*index),
            None => None,
        }
    }

    /// The interfaces this bond watches, to route link events.
    pub fn slave_index(&self, ifindex: u32) -> Option<usize> {
        self.slaves.iter().position(|s| s.index == ifindex)
    }

    /// A carrier change of slave `i`.
    pub async fn on_carrier(&mut self, net: &Net, i: usize, carrier: bool) {
        let t = now();
        let events = self.monitor.carrier(i, carrier, t);
        self.apply(net, events, t).await;
    }

    async fn apply(&mut self, net: &Net, events: Vec<LinkEvent>, t: Instant) {
        if events.is_empty() {
            return;
        }
        if let Some(l) = self.lacp.as_mut() {
            for e in &events {
                if e.usable_changed() {
                    l.carrier(e.slave, e.to.is_usable(), t);
                }
            }
        }
        for e in &events {
            let s = &self.slaves[e.slave].name;
            match e.to {
                LinkState::Down => {
                    warn!(bond = %self.cfg.name, slave = %s, "link status definitely down, disabling slave")
                }
                LinkState::Up => {
                    info!(bond = %self.cfg.name, slave = %s, "link status definitely up")
                }
                LinkState::Fail => {
                    info!(bond = %self.cfg.name, slave = %s, downdelay_ms = self.cfg.downdelay, "link status down, disabling slave in {} ms", self.cfg.downdelay)
                }
                LinkState::Back => {
                    info!(bond = %self.cfg.name, slave = %s, updelay_ms = self.cfg.updelay, "link status up, enabling it in {} ms", self.cfg.updelay)
                }
            }
        }
        if self.lacp.is_some() {
            self.lacp_run(t);
        }
        self.reselect(net, t, "link change").await;
    }

    /// Runs the LACP machines: sends what they produce on their ports.
    fn lacp_run(&mut self, t: Instant) {
        let Some(l) = self.lacp.as_mut() else {
            return;
        };
        let frames = l.poll(t);
        if frames.is_empty() {
            return;
        }
        if let Some(tx) = &self.inject_tx {
            for (port, frame) in frames {
                let _ = tx.try_send(Inject { slave: port, frame });
            }
            self.wake.notify();
        }
    }

    /// Takes the slow-protocol frames the worker received into the LACP
    /// engine, then applies any change of aggregation.
    pub async fn on_slow_frames(&mut self, net: &Net) {
        let Some(rx) = &self.slow_rx else {
            return;
        };
        let t = now();
        let mut n = 0;
        while let Ok(f) = rx.try_recv() {
            let port = usize::from(f.slave);
            // Per-port token bucket: LACP needs at most a few PDUs a second;
            // a flood past SLOW_BURST then SLOW_RATE per second is dropped
            // and counted, so it cannot starve the control plane.
            if self.slow_tokens.len() < self.slaves.len() {
                self.slow_tokens
                    .resize(self.slaves.len(), (SLOW_BURST, t, SLOW_BURST));
            }
            // The current partner's own LACPDUs (same actor system id as the
            // partner this port has) are not rate limited with the rest: a
            // flood of other frames on the port must not starve them. They
            // have their own, generous, cap.
            let data = &f.data[..usize::from(f.len)];
            let from_partner = data.len() >= 26
                && data[14] == 1
                && self
                    .partner_sys
                    .get(port)
                    .is_some_and(|p| *p != [0; 6] && data[20..26] == p[..]);
            let Some((tokens, last, ptokens)) = self.slow_tokens.get_mut(port) else {
                continue;
            };
            let dt = t.saturating_duration_since(*last).as_secs_f64();
            *tokens = (*tokens + dt * SLOW_RATE).min(SLOW_BURST);
            *ptokens = (*ptokens + dt * SLOW_RATE).min(SLOW_BURST);
            *last = t;
            let tokens = if from_partner { ptokens } else { tokens };
            if *tokens < 1.0 {
                if let Some(s) = self.slaves.get(port) {
                    *self.slow_rate_drops.entry(s.name.clone()).or_default() += 1;
                }
                continue;
            }
            *tokens -= 1.0;
            if let Some(l) = self.lacp.as_mut() {
                l.rx_frame(port, &f.data[..usize::from(f.len)], t);
            }
            n += 1;
        }
        if n > 0 {
            self.lacp_run(t);
            if let Some(l) = &self.lacp {
                let st = l.status();
                self.partner_sys = (0..self.slaves.len())
                    .map(|i| {
                        st.ports
                            .iter()
                            .find(|p| p.port == i)
                            .map(|p| p.partner.system)
                            .unwrap_or([0; 6])
                    })
                    .collect();
            }
            self.reselect(net, t, "lacp").await;
        }
    }

    /// Timer work: delay expiries, miimon re-checks, peer notifications.
    pub async fn on_tick(&mut self, net: &Net) {
        let t = now();
        let events = self.monitor.poll(t);
        self.apply(net, events, t).await;
        if self.lacp.is_some() {
            self.lacp_run(t);
            self.reselect(net, t, "lacp").await;
        }
        if let Some(due) = self.next_miimon
            && t >= due
        {
            // The periodic re-check miimon asks for, on top of events:
            // catches a carrier change whose event was lost.
            for i in 0..self.slaves.len() {
                if let Ok(Some(l)) = net.link_by_index(self.slaves[i].index).await {
                    let usable = self.monitor.state(i).is_usable()
                        || self.monitor.state(i) == LinkState::Back;
                    if l.carrier != usable {
                        let ev = self.monitor.carrier(i, l.carrier, t);
                        self.apply(net, ev, t).await;
                    }
                }
            }
            self.next_miimon = t.checked_add(Duration::from_millis(u64::from(self.cfg.miimon)));
        }
        if let Some((due, left)) = self.notify_due
            && t >= due
        {
            self.send_peer_notifications(net).await;
            self.notify_due = if left > 1 {
                let gap = if self.cfg.peer_notif_delay > 0 {
                    self.cfg.peer_notif_delay
                } else if self.cfg.miimon > 0 {
                    self.cfg.miimon
                } else {
                    100
                };
                Some((
                    t.checked_add(Duration::from_millis(u64::from(gap)))
                        .unwrap_or(t),
                    left - 1,
                ))
            } else {
                None
            };
        }
    }

    /// When the control loop must wake for this bond next.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.monitor.next_deadline(),
            self.lacp.as_ref().and_then(|l| l.next_deadline()),
            self.next_miimon,
            self.notify_due.map(|(t, _)| t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn reselect(&mut self, net: &Net, t: Instant, why: &str) {
        if self.cfg.mode != Mode::ActiveBackup {
            // Load-balancing modes: every usable slave transmits; a change
            // of the usable set takes effect in the next batch.
            let before = self.last_usable.clone();
            self.publish();
            if self.last_usable != before {
                let names = |v: &[u8]| {
                    v.iter()
                        .map(|&i| self.slaves[i as usize].name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                if !before.is_empty() || why != "start" {
                    self.failovers += 1;
                }
                warn!(bond = %self.cfg.name, from = %names(&before), to = %names(&self.last_usable), reason = why, "failover: transmitting slaves now [{}]", names(&self.last_usable));
                let up = !self.last_usable.is_empty();
                if up == before.is_empty() || why == "start" {
                    self.set_logical_carrier(net, up).await;
                }
            }
            return;
        }
        let views: Vec<SlaveView> = (0..self.slaves.len())
            .map(|i| SlaveView {
                state: self.monitor.state(i),
                speed_mbps: self.slaves[i].speed,
                full_duplex: self.slaves[i].duplex,
                prio: 0,
                remaining_updelay: self.monitor.remaining_updelay(i, t),
            })
            .collect();
        let choice = self.selector.choose(&views, self.active);
        if choice.promote_from_back
            && let Some(a) = choice.active
        {
            let early = self.monitor.remaining_updelay(a, t).unwrap_or_default();
            self.monitor.promote(a);
            warn!(bond = %self.cfg.name, slave = %self.slaves[a].name, "making interface the new active one {} ms earlier", early.as_millis());
        }
        if choice.active == self.active {
            // Delivery may still change (all_slaves_active follows link state).
            self.publish();
            return;
        }
        let old = self.active;
        self.active = choice.active;
        self.publish();
        let name = |i: Option<usize>| {
            i.map(|i| self.slaves[i].name.clone())
                .unwrap_or_else(|| "none".into())
        };
        match choice.active {
            Some(_) => {
                if old.is_some() || why != "start" {
                    self.failovers += 1;
                }
                warn!(bond = %self.cfg.name, from = %name(old), to = %name(choice.active), reason = why, "failover: making interface {} the new active one", name(choice.active));
                if why != "start" {
                    self.notify_due = Some((t, self.cfg.num_grat_arp.max(1)));
                    if self.cfg.num_grat_arp == 0 {
                        self.notify_due = None;
                    }
                }
            }
            None => {
                error!(bond = %self.cfg.name, from = %name(old), "failover: no usable slave left, bond has no active slave");
            }
        }
        self.set_logical_carrier(net, choice.active.is_some()).await;
    }

    fn usable_slaves(&self) -> Vec<u8> {
        (0..self.slaves.len())
            .filter(|&i| self.monitor.state(i).is_usable())
            .map(|i| i as u8)
            .collect()
    }

    /// The transmit plan and receive mask for the current state, per mode.
    fn plan(&self) -> (TxPlan, u32) {
        let usable = self.usable_slaves();
        let active = self.active.map(|a| a as u8);
        let all = if self.slaves.len() >= 32 {
            u32::MAX
        } else {
            (1u32 << self.slaves.len()) - 1
        };
        if let Some(l) = &self.lacp {
            if let Some(fb) = l.fallback_active() {
                // lacp_fallback_ab: no partner anywhere, so active-backup.
                return (TxPlan::single(fb as u8), (1u32 << fb) & all);
            }
            let collecting: Vec<u8> = (0..self.slaves.len())
                .filter(|&i| l.collecting(i))
                .map(|i| i as u8)
                .collect();
            let dist: Vec<u8> = l
                .distributing_ports()
                .into_iter()
                .map(|i| i as u8)
                .collect();
            let rx =
                xmit::rx_mask(self.cfg.mode, None, &collecting, self.cfg.all_slaves_active) & all;
            let tx = if dist.is_empty() || !l.bond_carrier() {
                TxPlan::none()
            } else {
                TxPlan::hash(
                    &dist,
                    self.cfg.xmit_hash_policy,
                    match self.cfg.xmit_hash_table {
                        XmitHashTable::Modulo => Reduce::Modulo,
                        XmitHashTable::Stable => Reduce::Stable,
                    },
                    Some(&self.last_plan),
                )
            };
            return (tx, rx);
        }
        let rx = xmit::rx_mask(self.cfg.mode, active, &usable, self.cfg.all_slaves_active) & all;
        let tx = if usable.is_empty() && self.cfg.mode != Mode::ActiveBackup {
            TxPlan::none()
        } else {
            match self.cfg.mode {
                Mode::BalanceRr => TxPlan::round_robin(&usable, self.cfg.packets_per_slave),
                Mode::BalanceXor => TxPlan::hash(
                    &usable,
                    self.cfg.xmit_hash_policy,
                    match self.cfg.xmit_hash_table {
                        XmitHashTable::Modulo => Reduce::Modulo,
                        XmitHashTable::Stable => Reduce::Stable,
                    },
                    Some(&self.last_plan),
                ),
                Mode::Broadcast => TxPlan::broadcast(&usable),
                _ => active.map(TxPlan::single).unwrap_or_else(TxPlan::none),
            }
        };
        (tx, rx)
    }

    /// Publishes the snapshot for the worker and the XDP delivery flags.
    fn publish(&mut self) {
        let (tx, rx_mask) = self.plan();
        self.last_plan = tx;
        self.last_usable = if self.cfg.mode == Mode::ActiveBackup {
            self.active.map(|a| vec![a as u8]).unwrap_or_default()
        } else {
            tx.usable().to_vec()
        };
        let snap = Snapshot { tx, rx_mask };
        // Order matters for a clean switch: open the new port in XDP, publish
        // to the worker, then close the old port.
        for (i, s) in self.slaves.iter_mut().enumerate() {
            if rx_mask & (1 << i) != 0
                && let Some(x) = s.xdp.as_mut()
                && let Err(e) = x.set_deliver(true)
            {
                error!(slave = %s.name, "XDP config: {e}");
            }
        }
        for w in &self.workers {
            // Blocking send: a worker drains this channel every batch, and
            // a lost snapshot would leave it forwarding by stale state.
            let _ = w.msgs.send(WorkerMsg::Snapshot(snap));
            w.wake.notify();
        }
        for (i, s) in self.slaves.iter_mut().enumerate() {
            if rx_mask & (1 << i) == 0
                && let Some(x) = s.xdp.as_mut()
                && let Err(e) = x.set_deliver(false)
            {
                error!(slave = %s.name, "XDP config: {e}");
            }
        }
    }

    /// Carrier of the logical interface follows "has an active slave", as
    /// a kernel bond's does. For veth, the far end going down does it.
    async fn set_logical_carrier(&self, net: &Net, on: bool) {
        if let Some(LogicalRt::Veth { peer_index, .. }) = &self.logical
            && let Err(e) = net.set_up(*peer_index, on).await
        {
            warn!(bond = %self.cfg.name, "setting logical carrier: {e:#}");
        }
    }

    async fn send_peer_notifications(&self, net: &Net) {
        let (Some(a), Some(idx), Some(tx)) = (self.active, self.logical_index(), &self.inject_tx)
        else {
            return;
        };
        let addrs = match net.addresses(idx).await {
            Ok(a) => a,
            Err(e) => {
                warn!(bond = %self.cfg.name, "reading addresses for peer notification: {e:#}");
                return;
            }
        };
        let mut n = 0;
        for ip in addrs {
            let frame = match ip {
                IpAddr::V4(v4) => notify::gratuitous_arp(self.mac, v4),
                IpAddr::V6(v6) => notify::unsolicited_na(self.mac, v6),
            };
            if tx.try_send(Inject { slave: a, frame }).is_ok() {
                n += 1;
            }
        }
        self.wake.notify();
        info!(bond = %self.cfg.name, slave = %self.slaves[a].name, frames = n, "sent gratuitous ARP / unsolicited NA");
    }

    /// A slave's link disappeared from the system.
    pub async fn on_slave_removed(&mut self, net: &Net, i: usize) {
        let name = self.slaves[i].name.clone();
        error!(bond = %self.cfg.name, slave = %name, "slave interface was removed; it rejoins when an interface of that name appears again");
        self.on_carrier(net, i, false).await;
        if self.lacp.is_none() {
            // Its sockets are unbound by the kernel: take them (and the
            // frames they held) out of the worker now.
            if let Err(e) = self.remove_slave(net, i).await {
                warn!(bond = %self.cfg.name, slave = %name, "dropping removed slave: {e:#}");
            }
            let t = now();
            self.reselect(net, t, "slave removed").await;
        }
        if !self.missing.contains(&name) {
            self.missing.push(name);
        }
    }

    /// Whether `name` is a configured slave whose interface disappeared.
    pub fn is_missing(&self, name: &str) -> bool {
        self.missing.iter().any(|m| m == name)
    }

    /// A removed slave's interface exists again: take it back. Returns true
    /// when the bond must be rebuilt instead (802.3ad keeps LACP port
    /// numbers stable, so a port cannot be renumbered in place).
    pub async fn on_slave_back(&mut self, net: &Net, name: &str) -> Result<bool> {
        self.missing.retain(|m| m != name);
        if self.lacp.is_some() {
            return Ok(true);
        }
        self.add_slave(net, name).await?;
        let t = now();
        self.reselect(net, t, "slave back").await;
        self.publish();
        info!(bond = %self.cfg.name, slave = %name, "slave interface is back and rejoined the bond");
        Ok(false)
    }

    /// Someone changed a slave's MAC or MTU under bondd: put back what the
    /// bond needs (the bond MAC, the bond MTU) and say so.
    pub async fn on_slave_changed(&mut self, net: &Net, i: usize, l: &LinkInfoView) {
        let s = &self.slaves[i];
        let wrong = l.mac.is_some_and(|m| m != self.mac) || (l.mtu != 0 && l.mtu != self.cfg.mtu);
        if !wrong {
            return;
        }
        // Events queue up: one may describe the slave before bondd itself
        // set it up. Act only on what the link looks like now.
        let Ok(Some(now_l)) = net.link_by_index(s.index).await else {
            return;
        };
        let l = &now_l;
        if let Some(mac) = l.mac
            && mac != self.mac
        {
            warn!(bond = %self.cfg.name, slave = %s.name, mac = %format_mac(&mac), "slave MAC changed under bondd; setting the bond MAC back");
            if let Err(e) = net.set_mac(s.index, self.mac).await {
                error!(bond = %self.cfg.name, slave = %s.name, "restoring the bond MAC: {e:#}");
            }
        }
        if l.mtu != 0 && l.mtu != self.cfg.mtu {
            warn!(bond = %self.cfg.name, slave = %s.name, mtu = l.mtu, "slave MTU changed under bondd; setting the bond MTU {} back", self.cfg.mtu);
            if let Err(e) = net.set_mtu(s.index, self.cfg.mtu).await {
                error!(bond = %self.cfg.name, slave = %s.name, "restoring the bond MTU: {e:#}");
            }
        }
    }

    /// Stops the worker, detaches XDP, removes the logical interface and
    /// restores the slaves. Safe on a half-built bond.
    pub async fn teardown(&mut self, net: &Net) {
        let name = self.cfg.name.clone();
        if let (Some(l), Some(tx)) = (self.lacp.as_mut(), &self.inject_tx) {
            // As the kernel's unbind: a last LACPDU with Sync, Collecting
            // and Distributing cleared, so the partner stops using the links.
            let t = now();
            for i in 0..self.slaves.len() {
                if let Some(f) = l.remove_port(i, t) {
                    let _ = tx.try_send(Inject { slave: i, frame: f });
                }
            }
            self.wake.notify();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut done = Vec::new();
        for w in &mut self.workers {
            w.wake.notify();
            if let Some(j) = w.join.take()
                && let Ok(worker) = j.join()
            {
                done.push(worker);
            }
        }
        self.workers.clear();
        for s in &mut self.slaves {
            if let Some(mut x) = s.xdp.take() {
                x.detach();
            }
        }
        if let Some(LogicalRt::Veth { peer_xdp, .. }) = &mut self.logical
            && let Some(mut x) = peer_xdp.take()
        {
            x.detach();
        }
        for (i, w) in done.into_iter().enumerate() {
            let a = w.accounting();
            if a.balanced() {
                info!(bond = %name, worker = i, frames = a.total, "frame accounting balanced: every UMEM frame accounted for");
            } else {
                error!(bond = %name, worker = i, ?a, "frame accounting unbalanced");
            }
            drop(w); // closes the sockets and frees the UMEM
        }
        match self.logical.take() {
            Some(LogicalRt::Veth { index, .. }) => {
                if let Err(e) = net.del_link(index).await {
                    warn!(bond = %name, "deleting logical interface: {e:#}");
                }
            }
            Some(LogicalRt::Tap { .. }) => {} // the TAP went with its fd
            None => {}
        }
        for s in &self.slaves {
            if let Ok(Some(l)) = net.link_by_index(s.index).await {
                restore_slave(net, &l, &s.saved).await;
            }
        }
        let _ = std::fs::remove_file(&self.state_path);
        info!(bond = %name, "bond stopped, slaves restored");
    }

    /// Counters of the slaves (for logs and, later, metrics).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (i, st) in self.slave_stats.iter().enumerate() {
            let x = self.slaves[i]
                .xdp
                .as_ref()
                .and_then(|x| x.counters().ok())
                .unwrap_or_default();
            s.push_str(&format!(
                "{}: rx {} tx {} slow_proto {} tx_ring_full {} | xdp redirected {} dropped inactive {} no_socket {} runt {}; ",
                self.slaves[i].name,
                sum(st, |x| &x.rx_packets),
                sum(st, |x| &x.tx_packets),
                sum(st, |x| &x.rx_slow_proto),
                sum(st, |x| &x.tx_drop_ring_full),
                x.redirected + x.slow_proto,
                x.drop_inactive,
                x.drop_no_socket,
                x.drop_runt
            ));
        }
        let l = &self.logical_stats;
        s.push_str(&format!(
            "logical: rx {} tx {}",
            sum(l, |x| &x.rx_packets),
            sum(l, |x| &x.tx_packets)
        ));
        s
    }

    /// The bond's state for `bondd status` and the metrics.
    pub fn status(&self) -> crate::status::BondStatus {
        use crate::status::{BondStatus, SlaveCounters, SlaveStatus};
        let mode = self.cfg.mode;
        let hashes = matches!(mode, Mode::BalanceXor | Mode::Ieee8023ad)
            || (mode == Mode::BalanceTlb && !self.cfg.tlb_dynamic_lb);
        let lacp_st = self.lacp.as_ref().map(|l| l.status());
        let slaves = self
            .slaves
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let st = self.slave_stats.get(i).map(Vec::as_slice).unwrap_or(&[]);
                let get = |f: fn(&PortStats) -> &std::sync::atomic::AtomicU64| sum(st, f);
                let x = s
                    .xdp
                    .as_ref()
                    .and_then(|x| x.counters().ok())
                    .unwrap_or_default();
                let mut xs = bondd_xdp::XskStats::default();
                for fd in &s.sock_fds {
                    if let Ok(k) = bondd_xdp::socket::stats_of(*fd) {
                        xs.rx_dropped += k.rx_dropped;
                        xs.rx_invalid_descs += k.rx_invalid_descs;
                        xs.tx_invalid_descs += k.tx_invalid_descs;
                        xs.rx_ring_full += k.rx_ring_full;
                        xs.rx_fill_ring_empty_descs += k.rx_fill_ring_empty_descs;
                    }
                }
                let state = self.monitor.state(i);
                SlaveStatus {
                    name: s.name.clone(),
                    mii_up: state.is_usable(),
                    link_state: state.name().to_string(),
                    speed_mbps: s.speed,
                    full_duplex: s.duplex,
                    link_failure_count: self.monitor.link_failure_count(i),
                    perm_hwaddr: format_mac(&s.saved.mac),
                    queue_id: 0,
                    active: self.last_usable.contains(&(i as u8)),
                    xdp_mode: s
                        .xdp
                        .as_ref()
                        .and_then(|x| x.mode())
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    af_xdp_mode: self.copy_mode.map(|m| m.to_string()).unwrap_or_default(),
                    counters: SlaveCounters {
                        rx_packets: get(|p| &p.rx_packets),
                        rx_bytes: get(|p| &p.rx_bytes),
                        tx_packets: get(|p| &p.tx_packets),
                        tx_bytes: get(|p| &p.tx_bytes),
                        rx_dropped: vec![
                            (
                                "inactive".into(),
                                get(|p| &p.rx_drop_inactive) + x.drop_inactive,
                            ),
                            ("bond_full".into(), get(|p| &p.rx_drop_peer_full)),
                            ("runt".into(), get(|p| &p.rx_drop_runt) + x.drop_runt),
                            ("no_socket".into(), x.drop_no_socket),
                            ("slow_queue_full".into(), get(|p| &p.rx_drop_slow)),
                            ("slow_unhandled".into(), get(|p| &p.rx_slow_unhandled)),
                            (
                                "slow_rate".into(),
                                self.slow_rate_drops.get(&s.name).copied().unwrap_or(0),
                            ),
                        ],
                        tx_dropped: vec![
                            ("ring_full".into(), get(|p| &p.tx_drop_ring_full)),
                            ("error".into(), get(|p| &p.tx_drop_error)),
                        ],
                        rx_slow_proto: get(|p| &p.rx_slow_proto),
                        tx_kicks: get(|p| &p.tx_kicks),
                        xdp_redirected: x.redirected + x.slow_proto,
                        xdp_dropped: vec![
                            ("inactive".into(), x.drop_inactive),
                            ("no_socket".into(), x.drop_no_socket),
                            ("runt".into(), x.drop_runt),
                        ],
                        xsk_rx_ring_full: xs.rx_ring_full,
                        xsk_fill_ring_empty: xs.rx_fill_ring_empty_descs,
                        xsk_rx_dropped: xs.rx_dropped,
                        xsk_invalid_descs: xs.rx_invalid_descs + xs.tx_invalid_descs,
                    },
                    lacp: lacp_st
                        .as_ref()
                        .and_then(|l| l.ports.iter().find(|p| p.port == i))
                        .map(|p| {
                            let d =
                                |x: &bondd_core::lacp::pdu::PortInfo| crate::status::LacpDetails {
                                    system_priority: x.system_priority,
                                    system_mac: format_mac(&x.system),
                                    key: x.key,
                                    port_priority: x.port_priority,
                                    port_number: x.port,
                                    port_state: x.state.0,
                                };
                            crate::status::LacpPortStatus {
                                aggregator_id: p.aggregator_id,
                                actor_churn_state: p.actor_churn_state.to_string(),
                                partner_churn_state: p.partner_churn_state.to_string(),
                                actor_churned_count: p.actor_churned_count as u32,
                                partner_churned_count: p.partner_churned_count as u32,
                                actor: d(&p.actor),
                                partner: d(&p.partner),
                                lacpdu_rx: p.counters.lacpdu_rx,
                                lacpdu_tx: p.counters.lacpdu_tx,
                                lacpdu_illegal_rx: p.counters.lacpdu_illegal_rx,
                                lacpdu_unknown_rx: p.counters.lacpdu_unknown_rx,
                                marker_rx: p.counters.marker_rx,
                                marker_resp_tx: p.counters.marker_resp_tx,
                                collecting: p.collecting,
                                distributing: p.distributing,
                            }
                        }),
                }
            })
            .collect();
        BondStatus {
            name: self.cfg.name.clone(),
            mode: mode.kernel_name().to_string(),
            mode_description: mode.proc_name().to_string(),
            fail_over_mac: self.cfg.fail_over_mac.kernel_name().to_string(),
            xmit_hash_policy: hashes.then(|| {
                (
                    self.cfg.xmit_hash_policy.kernel_name().to_string(),
                    self.cfg.xmit_hash_policy.number(),
                )
            }),
            uses_primary: mode.uses_primary(),
            primary: self.cfg.primary.clone(),
            primary_reselect: self.cfg.primary_reselect.kernel_name().to_string(),
            active_slave: if mode.uses_primary() {
                self.active_name().map(str::to_string)
            } else {
                None
            },
            mii_up: !self.last_usable.is_empty(),
            miimon: self.cfg.miimon,
            updelay: self.cfg.updelay,
            downdelay: self.cfg.downdelay,
            peer_notif_delay: self.cfg.peer_notif_delay,
            arp_interval: self.cfg.arp_interval,
            mac: format_mac(&self.mac),
            interface: match self.cfg.interface {
                InterfaceKind::Veth => "veth".into(),
                InterfaceKind::Tap => "tap".into(),
            },
            failovers: self.failovers,
            lacp: lacp_st.as_ref().map(|l| crate::status::LacpBondStatus {
                active: l.lacp_active,
                rate: l.lacp_rate.kernel_name().to_string(),
                min_links: l.min_links,
                ad_select: l.ad_select.kernel_name().to_string(),
                system_priority: l.system_priority,
                system_mac: format_mac(&l.system_mac),
                active_aggregator: l.active_aggregator.map(|a| {
                    (
                        a.id,
                        a.ports as u32,
                        a.actor_key,
                        a.partner_key,
                        format_mac(&a.partner_mac),
                    )
                }),
            }),
            slaves,
            logical: if self.logical_stats.is_empty() {
                Default::default()
            } else {
                let l = &self.logical_stats;
                crate::status::LogicalCounters {
                    rx_packets: sum(l, |x| &x.rx_packets),
                    tx_packets: sum(l, |x| &x.tx_packets),
                    tx_drop_no_slave: sum(l, |x| &x.tx_drop_no_slave),
                    tx_drop_ring_full: sum(l, |x| &x.tx_drop_ring_full),
                    fill_starved: sum(l, |x| &x.fill_starved),
                    umem_frames: self.umem_frames,
                }
            },
        }
    }

    /// Forces the active slave, as writing the kernel's `active_slave`
    /// does: only in active-backup, only to a slave whose link is up.
    pub async fn set_active(&mut self, net: &Net, slave: &str) -> Result<String> {
        if !self.cfg.mode.uses_primary() {
            bail!(
                "bond {}: active_slave is not supported in mode {}",
                self.cfg.name,
                self.cfg.mode.kernel_name()
            );
        }
        let Some(i) = self.slaves.iter().position(|s| s.name == slave) else {
            bail!(
                "bond {}: {slave} is not a slave of this bond",
                self.cfg.name
            );
        };
        if self.monitor.state(i) != LinkState::Up {
            bail!(
                "bond {}: {slave} cannot become active: its link is {}",
                self.cfg.name,
                self.monitor.state(i)
            );
        }
        if self.active == Some(i) {
            return Ok(format!(
                "{slave} is already the active slave of {}",
                self.cfg.name
            ));
        }
        let old = self.active_name().unwrap_or("none").to_string();
        self.active = Some(i);
        self.publish();
        self.failovers += 1;
        warn!(bond = %self.cfg.name, from = %old, to = %slave, reason = "set-active", "failover: making interface {slave} the new active one");
        self.notify_due = (self.cfg.num_grat_arp > 0).then(|| (now(), self.cfg.num_grat_arp));
        self.set_logical_carrier(net, true).await;
        Ok(format!(
            "{slave} is now the active slave of {}",
            self.cfg.name
        ))
    }

    /// Applies a new configuration of this bond in place where it can:
    /// slaves added or removed (balance modes and active-backup), primary,
    /// delays, notification and hashing options. Untouched slaves keep
    /// forwarding throughout. Returns `NeedsRebuild` for what cannot change
    /// live; the caller then rebuilds this bond only.
    pub async fn reload(&mut self, net: &Net, new: BondConfig) -> Result<ReloadOutcome> {
        let old = self.cfg.clone();
        let mut why = Vec::new();
        if new.mode != old.mode {
            why.push("mode");
        }
        if new.interface != old.interface {
            why.push("interface");
        }
        if new.mac != old.mac {
            why.push("mac");
        }
        if new.mtu != old.mtu {
            why.push("mtu");
        }
        // The data plane's shape: sockets, threads, attach mode.
        if new.workers != old.workers {
            why.push("workers");
        }
        if new.worker_cpus != old.worker_cpus {
            why.push("worker_cpus");
        }
        if new.busy_poll != old.busy_poll {
            why.push("busy_poll");
        }
        if new.xdp_mode != old.xdp_mode {
            why.push("xdp_mode");
        }
        if old.mode == Mode::Ieee8023ad && new != old {
            why.push("802.3ad options or slaves");
        }
        if !why.is_empty() {
            return Ok(ReloadOutcome::NeedsRebuild(format!(
                "{} changed",
                why.join(", ")
            )));
        }
        let mut done = Vec::new();
        let removed: Vec<String> = old
            .slaves
            .iter()
            .filter(|s| !new.slaves.contains(s))
            .cloned()
            .collect();
        let added: Vec<String> = new
            .slaves
            .iter()
            .filter(|s| !old.slaves.contains(s))
            .cloned()
            .collect();
        for name in &removed {
            if let Some(i) = self.slaves.iter().position(|s| &s.name == name) {
                self.remove_slave(net, i).await?;
                done.push(format!("removed slave {name}"));
            }
        }
        for name in &added {
            self.add_slave(net, name).await?;
            done.push(format!("added slave {name}"));
        }
        // Options that apply live. The running slave order is kept: slaves
        // present before stay where they were, new ones come last.
        let mut cfg = new.clone();
        cfg.slaves = self.slaves.iter().map(|s| s.name.clone()).collect();
        if new.updelay != old.updelay || new.downdelay != old.downdelay {
            self.monitor.set_delays(
                Duration::from_millis(u64::from(new.updelay)),
                Duration::from_millis(u64::from(new.downdelay)),
            );
            done.push("updelay/downdelay".into());
        }
        let primary_idx = cfg
            .primary
            .as_ref()
            .and_then(|p| cfg.slaves.iter().position(|s| s == p));
        if new.primary != old.primary || !removed.is_empty() || !added.is_empty() {
            if new.primary != old.primary {
                done.push(format!(
                    "primary {}",
                    new.primary.as_deref().unwrap_or("none")
                ));
                self.selector.set_primary(primary_idx);
            } else {
                // Indices moved; keep the same primary without forcing it.
                let r = self.selector.reselect();
                self.selector = Selector::new(None, r);
                if primary_idx.is_some() {
                    self.selector.set_primary(primary_idx);
                }
            }
        }
        if new.primary_reselect != old.primary_reselect {
            self.selector.set_reselect(new.primary_reselect);
            done.push(format!(
                "primary_reselect {}",
                new.primary_reselect.kernel_name()
            ));
        }
        if new.miimon != old.miimon {
            self.next_miimon = (new.miimon > 0)
                .then(|| now().checked_add(Duration::from_millis(u64::from(new.miimon))))
                .flatten();
            done.push(format!("miimon {}", new.miimon));
        }
        for k in [
            "num_grat_arp",
            "peer_notif_delay",
            "all_slaves_active",
            "xmit_hash_policy",
            "xmit_hash_table",
            "packets_per_slave",
            "resend_igmp",
        ] {
            if new.explicitly_set(k) != old.explicitly_set(k) || option_differs(&old, &new, k) {
                done.push(k.to_string());
            }
        }
        let new_addrs: Vec<_> = new
            .addresses
            .iter()
            .filter(|a| !old.addresses.contains(a))
            .cloned()
            .collect();
        if let Some(idx) = self.logical_index() {
            for a in &new_addrs {
                net.add_address(idx, a.addr, a.prefix).await?;
                done.push(format!("address {}/{}", a.addr, a.prefix));
            }
            for a in old.addresses.iter().filter(|a| !new.addresses.contains(a)) {
                if let Err(e) = net.del_address(idx, a.addr, a.prefix).await {
                    warn!(bond = %self.cfg.name, "removing address {}/{}: {e:#}", a.addr, a.prefix);
                } else {
                    done.push(format!("removed address {}/{}", a.addr, a.prefix));
                }
            }
            for g in new.gateways.iter().filter(|g| !old.gateways.contains(g)) {
                net.add_default_route(idx, *g).await?;
                done.push(format!("gateway {g}"));
            }
        }
        self.cfg = cfg;
        let t = now();
        self.reselect(net, t, "reload").await;
        self.publish();
        self.store_state()?;
        if done.is_empty() {
            Ok(ReloadOutcome::Unchanged)
        } else {
            Ok(ReloadOutcome::Updated(done.join(", ")))
        }
    }

    fn store_state(&self) -> Result<()> {
        state::store(
            &self.state_path,
            &BondState {
                pid: std::process::id(),
                logical: self.cfg.name.clone(),
                slaves: self.slaves.iter().map(|s| s.saved.clone()).collect(),
            },
        )
    }

    async fn remove_slave(&mut self, net: &Net, i: usize) -> Result<()> {
        let name = self.slaves[i].name.clone();
        // No more frames from it: detach its XDP program first.
        if let Some(mut x) = self.slaves[i].xdp.take() {
            x.detach();
        }
        for w in &self.workers {
            let _ = w.msgs.send(WorkerMsg::RemoveSlave(i));
            w.wake.notify();
        }
        let s = self.slaves.remove(i);
        self.slave_stats.remove(i);
        self.monitor.remove_slave(i);
        self.selector.slave_removed(i);
        self.active = match self.active {
            Some(a) if a == i => None,
            Some(a) if a > i => Some(a - 1),
            other => other,
        };
        self.last_plan = TxPlan::none();
        if let Ok(Some(l)) = net.link_by_index(s.index).await {
            restore_slave(net, &l, &s.saved).await;
        }
        self.store_state()?;
        info!(bond = %self.cfg.name, slave = %name, "slave removed and restored");
        Ok(())
    }

    async fn add_slave(&mut self, net: &Net, name: &str) -> Result<()> {
        if self.slaves.len() >= crate::dataplane::MAX_SLAVES {
            bail!(
                "bond {}: at most {} slaves",
                self.cfg.name,
                crate::dataplane::MAX_SLAVES
            );
        }
        let l = crate::netlink::require_link(net, name, "slave").await?;
        let (speed, duplex) = sys::link_speed(name);
        let saved = SavedSlave {
            name: name.to_string(),
            mac: l.mac.unwrap_or([0; 6]),
            mtu: l.mtu,
            up: l.up,
            promisc: l.promisc,
            allmulti: l.allmulti,
            rxvlan: sys::vlan_offload(name).ok().map(|(rx, _)| rx),
            ipv6_disabled: ipv6_disabled(name),
            napi: if self.cfg.busy_poll {
                napi_settings(name, l.index)
            } else {
                None
            },
        };
        self.slaves.push(SlaveRt {
            name: name.to_string(),
            index: l.index,
            saved: saved.clone(),
            xdp: None,
            speed,
            duplex,
            sock_fds: Vec::new(),
        });
        self.store_state()?;
        let i = self.slaves.len() - 1;
        let r = async {
            quiet_slave_ipv6(name, saved.ipv6_disabled);
            if saved.napi.is_some() {
                set_napi_settings(name, BUSY_POLL_NAPI);
            }
            net.set_mac(l.index, self.mac).await?;
            net.set_mtu(l.index, self.cfg.mtu).await?;
            net.set_flags(l.index, saved.promisc, true).await?;
            if saved.rxvlan == Some(true) {
                let _ = sys::set_vlan_offload(name, Some(false), None);
            }
            net.set_up(l.index, true).await?;
            let mode = self.copy_mode.unwrap_or(CopyMode::Copy);
            let n = self.workers.len().max(1) as u32;
            let nq = sys::rx_queue_count(name);
            if nq < n {
                bail!("workers: {n}: slave {name} has {nq} queue(s), fewer than the workers");
            }
            // Per worker, its queues of the new slave, in its own UMEM.
            let mut per_worker: Vec<Vec<Xsk>> = Vec::new();
            for (w, wr) in self.workers.iter().enumerate() {
                let umem_fd = wr
                    .umem_fd
                    .or_else(|| {
                        // A single worker on a TAP: any slave's socket names the UMEM.
                        self.slaves.iter().flat_map(|s| s.sock_fds.iter()).next().copied()
                    })
                    .context("no socket left to share the UMEM with")?;
                let mut v = Vec::new();
                for q in (0..nq).filter(|q| q % n == w as u32) {
                    let x = Xsk::shared_with(umem_fd, mode, l.index, q, RingSizes::default())?;
                    tune_socket(&x, &self.cfg)?;
                    v.push(x);
                }
                per_worker.push(v);
            }
            let socks: Vec<&Xsk> = per_worker.iter().flatten().collect();
            let mut port = XdpPort::load()?;
            for x in &socks {
                port.register_socket(x.queue(), x.raw_fd())?;
            }
            let fds: Vec<_> = socks.iter().map(|x| x.raw_fd()).collect();
            let am = attach_as_configured(&mut port, name, l.index, self.cfg.xdp_mode)?;
            info!(bond = %self.cfg.name, slave = %name, xdp = %am, af_xdp = %mode, queues = socks.len(), "slave added");
            anyhow::Ok((per_worker, fds, port))
        }
        .await;
        let (per_worker, fds, port) = match r {
            Ok(v) => v,
            Err(e) => {
                let s = self.slaves.pop().expect("pushed above");
                if let Ok(Some(l)) = net.link_by_index(s.index).await {
                    restore_slave(net, &l, &s.saved).await;
                }
                let _ = self.store_state();
                return Err(e.context(format!("adding slave {name}")));
            }
        };
        self.slaves[i].sock_fds = fds;
        self.slaves[i].xdp = Some(port);
        let mut all = Vec::new();
        for (w, socks) in self.workers.iter().zip(per_worker) {
            let stats = Arc::new(PortStats::default());
            all.push(stats.clone());
            let _ = w.msgs.send(WorkerMsg::AddSlave { socks, stats });
            w.wake.notify();
        }
        self.slave_stats.push(all);
        let carrier = net
            .link_by_index(l.index)
            .await?
            .map(|x| x.carrier)
            .unwrap_or(false);
        self.monitor.add_slave(carrier);
        Ok(())
    }

    /// Failovers so far.
    pub fn failovers(&self) -> u64 {
        self.failovers
    }

    /// The current active slave's name.
    pub fn active_name(&self) -> Option<&str> {
        self.active.map(|a| self.slaves[a].name.as_str())
    }
}

fn option_differs(a: &BondConfig, b: &BondConfig, key: &str) -> bool {
    match key {
        "num_grat_arp" => a.num_grat_arp != b.num_grat_arp,
        "peer_notif_delay" => a.peer_notif_delay != b.peer_notif_delay,
        "all_slaves_active" => a.all_slaves_active != b.all_slaves_active,
        "xmit_hash_policy" => a.xmit_hash_policy != b.xmit_hash_policy,
        "xmit_hash_table" => a.xmit_hash_table != b.xmit_hash_table,
        "packets_per_slave" => a.packets_per_slave != b.packets_per_slave,
        "resend_igmp" => a.resend_igmp != b.resend_igmp,
        _ => false,
    }
}

/// Checks the mode and options bondd can run today, without the system.
pub fn check_supported(cfg: &BondConfig) -> Result<()> {
    if !matches!(
        cfg.mode,
        Mode::ActiveBackup
            | Mode::BalanceRr
            | Mode::BalanceXor
            | Mode::Broadcast
            | Mode::Ieee8023ad
    ) {
        return Err(anyhow!(
            "bond \"{}\": key \"mode\": {} is not implemented yet in bondd (balance-rr, active-backup, balance-xor, broadcast and 802.3ad run today)",
            cfg.name,
            cfg.mode.kernel_name()
        ));
    }
    Ok(())
}
