//! The fast path: one worker thread moving frame descriptors between the
//! slaves' AF_XDP sockets and the logical interface, in batches.
//!
//! Per batch it reads the control plane's latest [`Snapshot`] (a plain
//! `Copy` value received over a channel, so no lock and no allocation),
//! then: slave RX → receive rule → logical TX, logical RX → transmit rule →
//! slave TX, completions back to the free list, fill rings topped up. A frame
//! is never copied: the descriptor of a slave's RX ring goes as it is onto
//! the logical interface's TX ring of the same UMEM. Syscalls happen per
//! batch (TX kick, RX wakeup) or when idle (poll), never per frame, except on
//! a TAP logical interface, whose only interface is one read/write per frame.

use bondd_core::xmit::{RrState, TxKind, TxPlan};
use bondd_xdp::{ConsRing, ProdRing, Umem, XdpDesc, Xsk, sys::EventFd, sys::Tap};
use std::{
    os::fd::RawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::Receiver,
    },
};

/// Descriptors handled per ring per step.
pub const BATCH: usize = 64;
/// Most slaves one bond can have (bit mask width in the snapshot).
pub const MAX_SLAVES: usize = 32;
/// EtherType of the slow protocols (LACP, marker): always for the control plane.
pub const ETH_P_SLOW: u16 = 0x8809;
/// Busy iterations without work before the worker sleeps in poll.
const SPIN_BEFORE_SLEEP: u32 = 256;
/// poll timeout when idle with frames waiting on a TX ring; bounds how late
/// a stalled ring (dead link) is retried.
const IDLE_POLL_MS: i32 = 10;
/// poll timeout when idle with nothing pending: every event that matters
/// (frames, snapshots, injected frames, stop) wakes the worker anyway, so
/// this only keeps an idle bond's CPU use near zero.
const IDLE_POLL_LONG_MS: i32 = 1000;
/// TX kicks per ring per step: a batch of 64 needs two in copy mode.
const MAX_KICKS_PER_STEP: u32 = 4;

/// What the fast path needs to know of the bond's state, published by the
/// control plane and read once per batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Transmit rule: which slave(s) a frame from the host leaves on.
    pub tx: TxPlan,
    /// Slaves whose received data frames go up to the host (bit i = slave i).
    pub rx_mask: u32,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            tx: TxPlan::none(),
            rx_mask: 0,
        }
    }
}

/// Longest slow-protocol frame handed to the control plane (LACPDU and
/// marker frames are 124 bytes); longer ones are dropped and counted.
pub const SLOW_FRAME_MAX: usize = 256;

/// A slow-protocol frame (LACP, marker) received on a slave, on its way to
/// the control plane. Fixed size, so the bounded channel carrying it never
/// allocates.
#[derive(Clone, Copy, Debug)]
pub struct SlowFrame {
    /// Slave index.
    pub slave: u8,
    /// Frame length.
    pub len: u16,
    /// Frame bytes (first `len` valid).
    pub data: [u8; SLOW_FRAME_MAX],
}

/// A frame built by the control plane (gratuitous ARP, NA, LACPDU) to send
/// out of one slave.
#[derive(Debug)]
pub struct Inject {
    /// Slave index.
    pub slave: usize,
    /// Frame bytes, Ethernet header first.
    pub frame: Vec<u8>,
}

/// Counters of one port, written only by the worker, read by anyone.
#[derive(Debug, Default)]
pub struct PortStats {
    /// Frames received from the port and passed on.
    pub rx_packets: AtomicU64,
    /// Bytes of those frames.
    pub rx_bytes: AtomicU64,
    /// Frames sent out of the port.
    pub tx_packets: AtomicU64,
    /// Bytes of those frames.
    pub tx_bytes: AtomicU64,
    /// Received on a port that must not deliver (inactive slave).
    pub rx_drop_inactive: AtomicU64,
    /// Slow-protocol frames received (handed to the control plane).
    pub rx_slow_proto: AtomicU64,
    /// Slow-protocol frames dropped: control plane busy or frame too long.
    pub rx_drop_slow: AtomicU64,
    /// Slow-protocol frames dropped because the mode has no use for them.
    pub rx_slow_unhandled: AtomicU64,
    /// Received but the other side's TX ring was full.
    pub rx_drop_peer_full: AtomicU64,
    /// Too short to be Ethernet.
    pub rx_drop_runt: AtomicU64,
    /// To transmit but this port's TX ring was full.
    pub tx_drop_ring_full: AtomicU64,
    /// To transmit but no slave may transmit (logical port only).
    pub tx_drop_no_slave: AtomicU64,
    /// Frames lost by a TAP write error.
    pub tx_drop_error: AtomicU64,
    /// TX kicks (sendto) made.
    pub tx_kicks: AtomicU64,
    /// Times a fill ring had no free frame to take.
    pub fill_starved: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Local {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    rx_drop_inactive: u64,
    rx_slow_proto: u64,
    rx_drop_slow: u64,
    rx_slow_unhandled: u64,
    rx_drop_peer_full: u64,
    rx_drop_runt: u64,
    tx_drop_ring_full: u64,
    tx_drop_no_slave: u64,
    tx_drop_error: u64,
    tx_kicks: u64,
    fill_starved: u64,
}

impl Local {
    fn publish(&self, s: &PortStats) {
        let r = Ordering::Relaxed;
        s.rx_packets.store(self.rx_packets, r);
        s.rx_bytes.store(self.rx_bytes, r);
        s.tx_packets.store(self.tx_packets, r);
        s.tx_bytes.store(self.tx_bytes, r);
        s.rx_drop_inactive.store(self.rx_drop_inactive, r);
        s.rx_slow_proto.store(self.rx_slow_proto, r);
        s.rx_drop_slow.store(self.rx_drop_slow, r);
        s.rx_slow_unhandled.store(self.rx_slow_unhandled, r);
        s.rx_drop_peer_full.store(self.rx_drop_peer_full, r);
        s.rx_drop_runt.store(self.rx_drop_runt, r);
        s.tx_drop_ring_full.store(self.tx_drop_ring_full, r);
        s.tx_drop_no_slave.store(self.tx_drop_no_slave, r);
        s.tx_drop_error.store(self.tx_drop_error, r);
        s.tx_kicks.store(self.tx_kicks, r);
        s.fill_starved.store(self.fill_starved, r);
    }
}

/// Where a socket's rings are and how to poke the kernel about them. Real
/// sockets implement it; tests implement it over in-memory rings.
pub trait Sock: Send {
    /// RX ring.
    fn rx(&mut self) -> &mut ConsRing<XdpDesc>;
    /// TX ring.
    fn tx(&mut self) -> &mut ProdRing<XdpDesc>;
    /// Fill ring.
    fn fill(&mut self) -> &mut ProdRing<u64>;
    /// Completion ring.
    fn comp(&mut self) -> &mut ConsRing<u64>;
    /// Asks the kernel to send what is on the TX ring; true if it took a syscall.
    fn kick_tx(&mut self) -> bool;
    /// Asks the kernel to look at the fill ring again.
    fn wake_rx(&mut self);
    /// One busy-poll pass over the socket's NAPI context (`busy_poll`).
    fn busy_poll(&mut self) {}
    /// fd to poll for readability, if any.
    fn poll_fd(&self) -> Option<RawFd>;
    /// Closes the socket and returns the frames the kernel held for it.
    fn reclaim(self) -> Vec<u64>
    where
        Self: Sized;
}

impl Sock for Xsk {
    fn rx(&mut self) -> &mut ConsRing<XdpDesc> {
        &mut self.rx
    }
    fn tx(&mut self) -> &mut ProdRing<XdpDesc> {
        &mut self.tx
    }
    fn fill(&mut self) -> &mut ProdRing<u64> {
        &mut self.fill
    }
    fn comp(&mut self) -> &mut ConsRing<u64> {
        &mut self.comp
    }
    fn kick_tx(&mut self) -> bool {
        if self.tx.needs_wakeup() {
            let _ = Xsk::kick_tx(self);
            true
        } else {
            false
        }
    }
    fn wake_rx(&mut self) {
        if self.fill.needs_wakeup() {
            Xsk::wake_rx(self);
        }
    }
    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.raw_fd())
    }
    fn busy_poll(&mut self) {
        Xsk::busy_poll(self);
    }
    fn reclaim(self) -> Vec<u64> {
        self.close_and_reclaim()
    }
}

/// One socket plus the running totals that let the worker prove every frame
/// is accounted for.
struct Port<S> {
    sock: S,
    filled: u64,
    received: u64,
    sent: u64,
    completed: u64,
    /// TX ring occupancy after the last kick, to avoid kicking a ring the
    /// kernel is not draining (dead link) on every iteration.
    last_kick_pending: u32,
}

impl<S: Sock> Port<S> {
    fn new(sock: S) -> Self {
        Self {
            sock,
            filled: 0,
            received: 0,
            sent: 0,
            completed: 0,
            last_kick_pending: 0,
        }
    }
}

/// The logical interface as the worker sees it.
pub enum LogicalIo<S> {
    /// The far end of the veth pair, through AF_XDP sockets (one per queue).
    Xsk(Vec<S>),
    /// A TAP device (one read/write per frame).
    Tap(Tap),
}

enum Logical<S> {
    Xsk(Vec<Port<S>>),
    Tap(Tap),
}

/// What the control plane tells a running worker, in order.
///
/// The snapshot is carried inline, not boxed: the bounded channel's slots
/// are allocated once, so a failover costs the worker no allocation or free.
#[allow(clippy::large_enum_variant)]
pub enum WorkerMsg<S> {
    /// A new state to forward by; the newest wins.
    Snapshot(Snapshot),
    /// A slave joins (reload): its sockets, already in its XDP program's
    /// XSKMAP, and its counters. It becomes the last slave index.
    AddSlave {
        /// One socket per queue; the first transmits.
        socks: Vec<S>,
        /// Its counters.
        stats: Arc<PortStats>,
    },
    /// Slave `i` leaves (reload); higher indices shift down by one. Its
    /// XDP program must already be detached.
    RemoveSlave(usize),
}

/// The control plane's handles on a running worker.
pub struct WorkerCtl<S> {
    /// Snapshots and slave changes; read once per batch.
    pub msgs: Receiver<WorkerMsg<S>>,
    /// Frames to send out of a slave.
    pub inject: Receiver<Inject>,
    /// Set to stop the worker.
    pub stop: Arc<AtomicBool>,
    /// Written to wake the worker when it sleeps.
    pub wake: Arc<EventFd>,
    /// CPU to pin the worker thread to (`worker_cpus`).
    pub cpu: Option<u32>,
    /// Preferred busy polling (`busy_poll: true`): never sleep, and drive
    /// the RX sockets' NAPI from this thread once per batch.
    pub busy_poll: bool,
}

/// Frame accounting summary: where every UMEM frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accounting {
    /// Frames in the UMEM.
    pub total: u64,
    /// On the free list.
    pub free: u64,
    /// Given to the kernel for reception and not yet received.
    pub in_fill_or_rx: u64,
    /// Given to the kernel for transmission and not yet completed.
    pub in_tx_or_comp: u64,
}

impl Accounting {
    /// True when every frame is in exactly one place.
    pub fn balanced(&self) -> bool {
        self.free + self.in_fill_or_rx + self.in_tx_or_comp == self.total
    }
}

/// The worker: owns the UMEM and every socket of one bond.
pub struct Worker<S> {
    umem: Umem,
    slaves: Vec<Vec<Port<S>>>,
    logical: Logical<S>,
    free: Vec<u64>,
    chunk_mask: u64,
    snap: Snapshot,
    slave_local: Vec<Local>,
    logical_local: Local,
    slave_stats: Vec<Arc<PortStats>>,
    logical_stats: Arc<PortStats>,
    headroom: u64,
    /// Per-worker round-robin state (never shared between workers).
    rr: RrState,
    /// Per-slave transmit staging for one batch, allocated once.
    staged: Vec<[XdpDesc; BATCH]>,
    staged_n: Vec<usize>,
    /// Where slow-protocol frames go (802.3ad); `None` drops them.
    slow_tx: Option<std::sync::mpsc::SyncSender<SlowFrame>>,
    slow_notify: Option<Arc<tokio::sync::Notify>>,
    /// Frames a removed socket held but did not give back (should stay 0).
    frames_lost: u64,
}

impl<S: Sock> Worker<S> {
    /// Builds a worker over `umem`, with every frame on the free list.
    /// `slaves[i]` are the sockets of slave i (one per queue); the first
    /// socket of a slave is the one it transmits on.
    pub fn new(umem: Umem, slaves: Vec<Vec<S>>, logical: LogicalIo<S>) -> Self {
        let n = umem.frame_count();
        let mut free = Vec::with_capacity(n as usize);
        for i in (0..n).rev() {
            free.push(umem.frame_addr(i));
        }
        let nslaves = slaves.len();
        assert!(nslaves <= MAX_SLAVES, "at most {MAX_SLAVES} slaves");
        Self {
            chunk_mask: !(u64::from(umem.frame_size()) - 1),
            headroom: u64::from(bondd_xdp::socket::XDP_PACKET_HEADROOM),
            umem,
            slaves: slaves
                .into_iter()
                .map(|v| v.into_iter().map(Port::new).collect())
                .collect(),
            logical: match logical {
                LogicalIo::Xsk(v) => Logical::Xsk(v.into_iter().map(Port::new).collect()),
                LogicalIo::Tap(t) => Logical::Tap(t),
            },
            free,
            snap: Snapshot::default(),
            rr: RrState::new(0x9e37_79b9_7f4a_7c15),
            staged: vec![[XdpDesc::default(); BATCH]; nslaves],
            staged_n: vec![0; nslaves],
            slow_tx: None,
            slow_notify: None,
            frames_lost: 0,
            slave_local: vec![Local::default(); nslaves],
            logical_local: Local::default(),
            slave_stats: (0..nslaves)
                .map(|_| Arc::new(PortStats::default()))
                .collect(),
            logical_stats: Arc::new(PortStats::default()),
        }
    }

    /// Sends slow-protocol frames to the control plane (802.3ad). The
    /// channel is bounded: under a flood the excess is dropped and counted,
    /// which is the rate limit on PDU processing.
    pub fn set_slow_channel(
        &mut self,
        tx: std::sync::mpsc::SyncSender<SlowFrame>,
        notify: Arc<tokio::sync::Notify>,
    ) {
        self.slow_tx = Some(tx);
        self.slow_notify = Some(notify);
    }

    /// Per-slave counters, for the control plane and metrics.
    pub fn slave_stats(&self) -> Vec<Arc<PortStats>> {
        self.slave_stats.clone()
    }

    /// Counters of the logical interface port.
    pub fn logical_stats(&self) -> Arc<PortStats> {
        self.logical_stats.clone()
    }

    /// Installs a snapshot directly (tests drive the worker step by step).
    #[cfg(test)]
    pub fn set_snapshot(&mut self, s: Snapshot) {
        self.snap = s;
    }

    /// Where every frame is right now.
    pub fn accounting(&self) -> Accounting {
        let mut a = Accounting {
            total: u64::from(self.umem.frame_count()) - self.frames_lost,
            free: self.free.len() as u64,
            in_fill_or_rx: 0,
            in_tx_or_comp: 0,
        };
        let mut add = |p: &Port<S>| {
            a.in_fill_or_rx += p.filled - p.received;
            a.in_tx_or_comp += p.sent - p.completed;
        };
        self.slaves.iter().flatten().for_each(&mut add);
        if let Logical::Xsk(ports) = &self.logical {
            ports.iter().for_each(&mut add);
        }
        a
    }

    /// Hands the fill rings their first frames, before traffic starts.
    pub fn prime(&mut self) {
        self.refill();
    }

    /// Runs until `ctl.stop` is set. Returns itself so the caller decides
    /// when sockets and UMEM go away (after XDP is detached).
    pub fn run(mut self, ctl: WorkerCtl<S>) -> Self {
        if let Some(cpu) = ctl.cpu {
            match bondd_xdp::sys::pin_current_thread(cpu) {
                Ok(()) => tracing::info!(cpu, "worker pinned"),
                Err(e) => tracing::warn!(cpu, "pinning the worker: {e}"),
            }
        }
        self.prime();
        let mut idle: u32 = 0;
        let mut pollfds: Vec<libc::pollfd> = Vec::with_capacity(64);
        while !ctl.stop.load(Ordering::Relaxed) {
            // The newest snapshot wins; the channel holds Copy values, so
            // taking one neither locks nor frees memory.
            while let Ok(m) = ctl.msgs.try_recv() {
                match m {
                    WorkerMsg::Snapshot(s) => self.snap = s,
                    WorkerMsg::AddSlave { socks, stats } => self.add_slave(socks, stats),
                    WorkerMsg::RemoveSlave(i) => self.remove_slave(i),
                }
            }
            let mut work = 0usize;
            while let Ok(inj) = ctl.inject.try_recv() {
                self.inject(inj.slave, &inj.frame);
                work += 1;
            }
            if ctl.busy_poll {
                self.busy_poll_rx();
            }
            work += self.step();
            self.publish();
            if work > 0 || ctl.busy_poll {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle < SPIN_BEFORE_SLEEP {
                std::hint::spin_loop();
                continue;
            }
            // Woken by a timeout, nothing happened: sleep again after one
            // pass instead of spinning (an idle bond costs ~no CPU).
            idle = if self.sleep(&ctl, &mut pollfds) {
                0
            } else {
                SPIN_BEFORE_SLEEP - 1
            };
        }
        self.publish();
        self
    }

    /// Adds a slave at the end (control path: allocates, which is fine
    /// here; frames come from the shared free list).
    pub fn add_slave(&mut self, socks: Vec<S>, stats: Arc<PortStats>) {
        if self.slaves.len() >= MAX_SLAVES {
            return;
        }
        self.slaves.push(socks.into_iter().map(Port::new).collect());
        self.slave_local.push(Local::default());
        self.slave_stats.push(stats);
        self.staged.push([XdpDesc::default(); BATCH]);
        self.staged_n.push(0);
        self.refill();
    }

    /// Removes slave `i`, taking back every frame its sockets held.
    pub fn remove_slave(&mut self, i: usize) {
        if i >= self.slaves.len() {
            return;
        }
        let ports = self.slaves.remove(i);
        self.slave_local.remove(i);
        self.slave_stats.remove(i);
        self.staged.remove(i);
        self.staged_n.remove(i);
        for p in ports {
            let held = (p.filled - p.received) + (p.sent - p.completed);
            let frames = p.sock.reclaim();
            if frames.len() as u64 != held {
                self.frames_lost += held.saturating_sub(frames.len() as u64);
            }
            for a in frames {
                self.free.push(a & self.chunk_mask);
            }
        }
    }

    /// Sleeps until a socket or the control plane has something; false if
    /// it woke by timeout.
    fn sleep(&mut self, ctl: &WorkerCtl<S>, pollfds: &mut Vec<libc::pollfd>) -> bool {
        pollfds.clear();
        let mut push = |fd: RawFd| {
            pollfds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
        };
        push(ctl.wake.raw_fd());
        for p in self.slaves.iter().flatten() {
            if let Some(fd) = p.sock.poll_fd() {
                push(fd);
            }
        }
        match &self.logical {
            Logical::Xsk(ports) => {
                for p in ports {
                    if let Some(fd) = p.sock.poll_fd() {
                        push(fd);
                    }
                }
            }
            Logical::Tap(t) => push(t.raw_fd()),
        }
        let mut pending = self
            .slaves
            .iter_mut()
            .flatten()
            .any(|p| p.sock.tx().outstanding() > 0);
        if let Logical::Xsk(ports) = &mut self.logical {
            pending |= ports.iter_mut().any(|p| p.sock.tx().outstanding() > 0);
        }
        let timeout = if pending {
            IDLE_POLL_MS
        } else {
            IDLE_POLL_LONG_MS
        };
        let woke = bondd_xdp::poll_readable(pollfds, timeout).unwrap_or(0) > 0;
        ctl.wake.drain();
        // A stalled TX ring gets another kick after the sleep.
        for p in self.slaves.iter_mut().flatten() {
            p.last_kick_pending = 0;
        }
        woke
    }

    /// Runs each RX socket's NAPI from this thread (preferred busy polling).
    fn busy_poll_rx(&mut self) {
        for p in self.slaves.iter_mut().flatten() {
            p.sock.busy_poll();
        }
        if let Logical::Xsk(ports) = &mut self.logical {
            for p in ports.iter_mut() {
                p.sock.busy_poll();
            }
        }
    }

    /// One pass over every ring. Returns the number of frames handled.
    pub fn step(&mut self) -> usize {
        let mut work = 0;
        work += self.reap_completions();
        for s in 0..self.slaves.len() {
            work += self.slave_rx(s);
        }
        work += self.logical_rx();
        self.refill();
        self.kick_all();
        work
    }

    fn publish(&self) {
        for (l, s) in self.slave_local.iter().zip(&self.slave_stats) {
            l.publish(s);
        }
        self.logical_local.publish(&self.logical_stats);
    }

    fn reap_completions(&mut self) -> usize {
        let mut buf = [0u64; BATCH];
        let mut work = 0;
        let mask = self.chunk_mask;
        let free = &mut self.free;
        let mut reap = |p: &mut Port<S>| {
            loop {
                let n = p.sock.comp().consume(&mut buf);
                if n == 0 {
                    break;
                }
                p.completed += n as u64;
                work += n;
                for a in &buf[..n] {
                    free.push(a & mask);
                }
            }
        };
        self.slaves.iter_mut().flatten().for_each(&mut reap);
        if let Logical::Xsk(ports) = &mut self.logical {
            ports.iter_mut().for_each(&mut reap);
        }
        work
    }

    /// Slave RX → receive rule → logical TX.
    fn slave_rx(&mut self, s: usize) -> usize {
        let mut descs = [XdpDesc::default(); BATCH];
        let mut up = [XdpDesc::default(); BATCH];
        let deliver = self.snap.rx_mask & (1 << s) != 0;
        let mut work = 0;
        for q in 0..self.slaves[s].len() {
            let port = &mut self.slaves[s][q];
            let n = port.sock.rx().consume(&mut descs);
            if n == 0 {
                continue;
            }
            port.received += n as u64;
            work += n;
            let local = &mut self.slave_local[s];
            let mut nup = 0;
            for d in &descs[..n] {
                if d.len < 14 {
                    local.rx_drop_runt += 1;
                    self.free.push(d.addr & self.chunk_mask);
                    continue;
                }
                let f = self.umem.frame(d.addr, 14);
                let ethertype = u16::from_be_bytes([f[12], f[13]]);
                if ethertype == ETH_P_SLOW {
                    // LACP/marker: the control plane's business, whatever
                    // the port's state; never forwarded to the host.
                    local.rx_slow_proto += 1;
                    let len = d.len as usize;
                    match &self.slow_tx {
                        Some(tx) if len <= SLOW_FRAME_MAX => {
                            let mut sf = SlowFrame {
                                slave: s as u8,
                                len: len as u16,
                                data: [0; SLOW_FRAME_MAX],
                            };
                            sf.data[..len].copy_from_slice(self.umem.frame(d.addr, len));
                            if tx.try_send(sf).is_ok() {
                                if let Some(n) = &self.slow_notify {
                                    n.notify_one();
                                }
                            } else {
                                local.rx_drop_slow += 1;
                            }
                        }
                        Some(_) => local.rx_drop_slow += 1,
                        None => local.rx_slow_unhandled += 1,
                    }
                    self.free.push(d.addr & self.chunk_mask);
                } else if deliver {
                    local.rx_packets += 1;
                    local.rx_bytes += u64::from(d.len);
                    up[nup] = *d;
                    nup += 1;
                } else {
                    local.rx_drop_inactive += 1;
                    self.free.push(d.addr & self.chunk_mask);
                }
            }
            let sent = self.push_to_logical(&up[..nup]);
            if sent < nup {
                self.slave_local[s].rx_drop_peer_full += (nup - sent) as u64;
                self.slave_local[s].rx_packets -= (nup - sent) as u64;
                for d in &up[sent..nup] {
                    self.slave_local[s].rx_bytes -= u64::from(d.len);
                    self.free.push(d.addr & self.chunk_mask);
                }
            }
        }
        work
    }

    /// Puts frames on the logical interface's TX (toward the host); returns
    /// how many it took. Frames taken by a TAP are freed at once.
    fn push_to_logical(&mut self, descs: &[XdpDesc]) -> usize {
        if descs.is_empty() {
            return 0;
        }
        match &mut self.logical {
            Logical::Xsk(ports) => {
                let p = &mut ports[0];
                let n = p.sock.tx().produce(descs);
                p.sent += n as u64;
                self.logical_local.tx_packets += n as u64;
                self.logical_local.tx_bytes +=
                    descs[..n].iter().map(|d| u64::from(d.len)).sum::<u64>();
                n
            }
            Logical::Tap(tap) => {
                for d in descs {
                    let frame = self.umem.frame(d.addr, d.len as usize);
                    match tap.write_frame(frame) {
                        Ok(true) => {
                            self.logical_local.tx_packets += 1;
                            self.logical_local.tx_bytes += u64::from(d.len);
                        }
                        Ok(false) => self.logical_local.tx_drop_ring_full += 1,
                        Err(_) => self.logical_local.tx_drop_error += 1,
                    }
                    self.free.push(d.addr & self.chunk_mask);
                }
                descs.len()
            }
        }
    }

    /// Logical RX (host → bond) → transmit rule → slave TX.
    fn logical_rx(&mut self) -> usize {
        let mut descs = [XdpDesc::default(); BATCH];
        let n = match &mut self.logical {
            Logical::Xsk(ports) => {
                let mut total = 0;
                for p in ports.iter_mut() {
                    let n = p.sock.rx().consume(&mut descs[total..]);
                    p.received += n as u64;
                    total += n;
                }
                total
            }
            Logical::Tap(tap) => {
                let mut n = 0;
                let max = self.umem.max_frame_len() as usize;
                while n < BATCH {
                    let Some(base) = self.free.pop() else {
                        self.logical_local.fill_starved += 1;
                        break;
                    };
                    let addr = base + self.headroom;
                    let buf = self.umem.frame_mut(addr, max);
                    match tap.read_frame(buf) {
                        Ok(Some(len)) if len > 0 => {
                            descs[n] = XdpDesc {
                                addr,
                                len: len as u32,
                                options: 0,
                            };
                            n += 1;
                        }
                        _ => {
                            self.free.push(base);
                            break;
                        }
                    }
                }
                n
            }
        };
        if n == 0 {
            return 0;
        }
        for d in &descs[..n] {
            self.logical_local.rx_packets += 1;
            self.logical_local.rx_bytes += u64::from(d.len);
        }
        let plan = self.snap.tx;
        match plan.kind() {
            TxKind::Single(t) if (t as usize) < self.slaves.len() => {
                let t = t as usize;
                self.staged[t][..n].copy_from_slice(&descs[..n]);
                self.staged_n[t] = n;
            }
            TxKind::RoundRobin | TxKind::Hash => {
                for d in &descs[..n] {
                    let frame = self.umem.frame(d.addr, d.len as usize);
                    match plan.select(frame, &mut self.rr) {
                        Some(t) if (t as usize) < self.slaves.len() => {
                            let t = t as usize;
                            self.staged[t][self.staged_n[t]] = *d;
                            self.staged_n[t] += 1;
                        }
                        _ => {
                            self.logical_local.tx_drop_no_slave += 1;
                            self.free.push(d.addr & self.chunk_mask);
                        }
                    }
                }
            }
            TxKind::Broadcast if !plan.usable().is_empty() => {
                let usable = plan.usable();
                for d in &descs[..n] {
                    // The original frame goes to the first slave; each
                    // extra slave gets a copy in a frame of its own.
                    for (k, &t) in usable.iter().enumerate() {
                        let t = t as usize;
                        if t >= self.slaves.len() {
                            continue;
                        }
                        let desc = if k == 0 {
                            *d
                        } else {
                            let Some(base) = self.free.pop() else {
                                self.slave_local[t].tx_drop_ring_full += 1;
                                continue;
                            };
                            let addr = base + self.headroom;
                            let len = d.len as usize;
                            self.umem.copy_within(d.addr, addr, len);
                            XdpDesc {
                                addr,
                                len: d.len,
                                options: 0,
                            }
                        };
                        self.staged[t][self.staged_n[t]] = desc;
                        self.staged_n[t] += 1;
                    }
                }
            }
            _ => {
                self.logical_local.tx_drop_no_slave += n as u64;
                for d in &descs[..n] {
                    self.free.push(d.addr & self.chunk_mask);
                }
            }
        }
        self.flush_staged();
        n
    }

    /// Puts each slave's staged descriptors on its TX ring in one produce.
    fn flush_staged(&mut self) {
        for t in 0..self.slaves.len() {
            let m = self.staged_n[t];
            if m == 0 {
                continue;
            }
            self.staged_n[t] = 0;
            let port = &mut self.slaves[t][0];
            let staged = &self.staged[t][..m];
            let sent = port.sock.tx().produce(staged);
            port.sent += sent as u64;
            let local = &mut self.slave_local[t];
            local.tx_packets += sent as u64;
            local.tx_bytes += staged[..sent].iter().map(|d| u64::from(d.len)).sum::<u64>();
            local.tx_drop_ring_full += (m - sent) as u64;
            for d in &staged[sent..m] {
                self.free.push(d.addr & self.chunk_mask);
            }
        }
    }

    /// Copies a control-plane frame into a free UMEM frame and queues it on
    /// the slave's TX ring. Rare (failover notifications, LACPDUs), so the
    /// one copy is fine.
    pub fn inject(&mut self, slave: usize, frame: &[u8]) -> bool {
        if slave >= self.slaves.len() || frame.len() > self.umem.max_frame_len() as usize {
            return false;
        }
        let Some(base) = self.free.pop() else {
            return false;
        };
        let addr = base + self.headroom;
        self.umem
            .frame_mut(addr, frame.len())
            .copy_from_slice(frame);
        let d = XdpDesc {
            addr,
            len: frame.len() as u32,
            options: 0,
        };
        let port = &mut self.slaves[slave][0];
        if port.sock.tx().produce(&[d]) == 1 {
            port.sent += 1;
            self.slave_local[slave].tx_packets += 1;
            self.slave_local[slave].tx_bytes += frame.len() as u64;
            true
        } else {
            self.free.push(base);
            self.slave_local[slave].tx_drop_ring_full += 1;
            false
        }
    }

    fn refill(&mut self) {
        let free = &mut self.free;
        let mut starved = 0u64;
        let mut fill = |p: &mut Port<S>| {
            let size = p.sock.fill().size();
            let room = p.sock.fill().free(size);
            if room == 0 {
                return;
            }
            let n = p.sock.fill().produce_with(room, || free.pop());
            p.filled += u64::from(n);
            if n < room && free.is_empty() {
                starved += 1;
            }
            if n > 0 {
                p.sock.wake_rx();
            }
        };
        self.slaves.iter_mut().flatten().for_each(&mut fill);
        if let Logical::Xsk(ports) = &mut self.logical {
            ports.iter_mut().for_each(&mut fill);
        }
        self.logical_local.fill_starved += starved;
    }

    fn kick_all(&mut self) {
        let kick = |p: &mut Port<S>, local: &mut Local| {
            let mut pending = p.sock.tx().outstanding();
            // Kick when frames wait and the last kick made progress (or new
            // frames arrived); a ring on a dead link is retried after idle.
            // In copy mode one kick sends at most 32 frames, so keep kicking
            // while each kick drains some (bounded per step).
            let mut kicks = 0;
            while pending > 0 && pending != p.last_kick_pending && kicks < MAX_KICKS_PER_STEP {
                if !p.sock.kick_tx() {
                    break;
                }
                local.tx_kicks += 1;
                kicks += 1;
                p.last_kick_pending = pending;
                pending = p.sock.tx().outstanding();
            }
            if pending == 0 {
                p.last_kick_pending = 0;
            }
        };
        for (s, ports) in self.slaves.iter_mut().enumerate() {
            for p in ports.iter_mut() {
                kick(p, &mut self.slave_local[s]);
            }
        }
        if let Logical::Xsk(ports) = &mut self.logical {
            for p in ports.iter_mut() {
                kick(p, &mut self.logical_local);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bondd_xdp::MemRing;

    /// A socket over in-memory rings, with the kernel's ends exposed so the
    /// test can play the kernel.
    struct MemSock {
        rx: ConsRing<XdpDesc>,
        tx: ProdRing<XdpDesc>,
        fill: ProdRing<u64>,
        comp: ConsRing<u64>,
        k_rx: ProdRing<XdpDesc>,
        k_tx: ConsRing<XdpDesc>,
        k_fill: ConsRing<u64>,
        k_comp: ProdRing<u64>,
        _mem: Vec<Box<dyn std::any::Any + Send>>,
    }

    impl MemSock {
        fn new(size: u32) -> Self {
            let rx = Box::new(MemRing::<XdpDesc>::new(size));
            let tx = Box::new(MemRing::<XdpDesc>::new(size));
            let fill = Box::new(MemRing::<u64>::new(size));
            let comp = Box::new(MemRing::<u64>::new(size));
            tx.set_need_wakeup(true);
            Self {
                rx: rx.consumer(),
                tx: tx.producer(),
                fill: fill.producer(),
                comp: comp.consumer(),
                k_rx: rx.producer(),
                k_tx: tx.consumer(),
                k_fill: fill.consumer(),
                k_comp: comp.producer(),
                _mem: vec![rx, tx, fill, comp],
            }
        }

        /// The "wire" delivers a frame: take a fill buffer, write it, post RX.
        fn deliver(&mut self, umem: &mut Umem, frame: &[u8]) -> bool {
            let mut a = [0u64; 1];
            if self.k_fill.consume(&mut a) == 0 {
                return false;
            }
            let addr = a[0] + 256;
            umem.frame_mut(addr, frame.len()).copy_from_slice(frame);
            self.k_rx.produce(&[XdpDesc {
                addr,
                len: frame.len() as u32,
                options: 0,
            }]) == 1
        }

        /// The "kernel" transmits everything queued; returns the frames.
        fn transmit(&mut self, umem: &Umem) -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            let mut d = [XdpDesc::default(); 1];
            while self.k_tx.consume(&mut d) == 1 {
                out.push(umem.frame(d[0].addr, d[0].len as usize).to_vec());
                assert_eq!(self.k_comp.produce(&[d[0].addr]), 1);
            }
            out
        }
    }

    impl Sock for MemSock {
        fn rx(&mut self) -> &mut ConsRing<XdpDesc> {
            &mut self.rx
        }
        fn tx(&mut self) -> &mut ProdRing<XdpDesc> {
            &mut self.tx
        }
        fn fill(&mut self) -> &mut ProdRing<u64> {
            &mut self.fill
        }
        fn comp(&mut self) -> &mut ConsRing<u64> {
            &mut self.comp
        }
        fn kick_tx(&mut self) -> bool {
            true
        }
        fn wake_rx(&mut self) {}
        fn poll_fd(&self) -> Option<RawFd> {
            None
        }
        fn reclaim(mut self) -> Vec<u64> {
            // The "kernel" gives back what it held: unconsumed fill entries,
            // unread RX, untransmitted TX and unread completions.
            let mut out = Vec::new();
            let mut a = [0u64; 1];
            while self.k_fill.consume(&mut a) == 1 {
                out.push(a[0]);
            }
            let mut d = [XdpDesc::default(); 1];
            while self.k_tx.consume(&mut d) == 1 {
                out.push(d[0].addr);
            }
            while self.rx.consume(&mut d) == 1 {
                out.push(d[0].addr);
            }
            while self.comp.consume(&mut a) == 1 {
                out.push(a[0]);
            }
            out
        }
    }

    fn frame(ethertype: u16, tag: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[14] = tag;
        f
    }

    fn setup() -> Worker<MemSock> {
        let umem = Umem::new(2048, 64).unwrap();
        let slaves = vec![vec![MemSock::new(16)], vec![MemSock::new(16)]];
        let logical = LogicalIo::Xsk(vec![MemSock::new(16)]);
        let mut w = Worker::new(umem, slaves, logical);
        w.set_snapshot(Snapshot {
            tx: TxPlan::single(0),
            rx_mask: 0b01,
        });
        w.prime();
        w
    }

    fn with_port<R>(
        w: &mut Worker<MemSock>,
        slave: Option<usize>,
        f: impl FnOnce(&mut MemSock, &mut Umem) -> R,
    ) -> R {
        // Disjoint field borrows: the socket and the UMEM it points into.
        let Worker {
            umem,
            slaves,
            logical,
            ..
        } = w;
        let sock = match slave {
            Some(s) => &mut slaves[s][0].sock,
            None => match logical {
                Logical::Xsk(p) => &mut p[0].sock,
                Logical::Tap(_) => unreachable!(),
            },
        };
        f(sock, umem)
    }

    #[test]
    fn active_backup_rx_and_tx_follow_the_snapshot_and_frames_stay_accounted() {
        let mut w = setup();
        assert!(w.accounting().balanced());
        // Host sends 5 frames: they leave on slave 0 only.
        for i in 0..5 {
            assert!(with_port(&mut w, None, |s, u| s.deliver(u, &frame(0x0800, i))));
        }
        w.step();
        let out0 = with_port(&mut w, Some(0), |s, u| s.transmit(u));
        let out1 = with_port(&mut w, Some(1), |s, u| s.transmit(u));
        assert_eq!(out0.len(), 5);
        assert_eq!(out1.len(), 0);
        assert_eq!(out0[3][14], 3, "frame bytes unchanged and in order");
        // Wire frames on the active slave go up; on the backup they are dropped.
        assert!(with_port(&mut w, Some(0), |s, u| s.deliver(u, &frame(0x0800, 7))));
        assert!(with_port(&mut w, Some(1), |s, u| s.deliver(u, &frame(0x0800, 8))));
        // A slow-protocol frame is never forwarded up.
        assert!(with_port(&mut w, Some(1), |s, u| s.deliver(u, &frame(ETH_P_SLOW, 9))));
        w.step();
        let up = with_port(&mut w, None, |s, u| s.transmit(u));
        assert_eq!(up.len(), 1);
        assert_eq!(up[0][14], 7);
        w.step(); // reap completions
        w.publish();
        assert_eq!(w.slave_stats[1].rx_drop_inactive.load(Ordering::Relaxed), 1);
        assert_eq!(w.slave_stats[1].rx_slow_proto.load(Ordering::Relaxed), 1);
        assert_eq!(w.slave_stats[0].tx_packets.load(Ordering::Relaxed), 5);
        let a = w.accounting();
        assert!(a.balanced(), "{a:?}");

        // Failover: the next batch uses slave 1.
        w.set_snapshot(Snapshot {
            tx: TxPlan::single(1),
            rx_mask: 0b10,
        });
        assert!(with_port(&mut w, None, |s, u| s.deliver(u, &frame(0x0800, 10))));
        w.step();
        assert_eq!(with_port(&mut w, Some(1), |s, u| s.transmit(u)).len(), 1);
        assert_eq!(with_port(&mut w, Some(0), |s, u| s.transmit(u)).len(), 0);
        w.step();
        assert!(w.accounting().balanced());
    }

    #[test]
    fn full_rings_drop_and_count_without_losing_frames() {
        let mut w = setup();
        // The slave's TX ring (16) is never drained by the "kernel": only 16
        // of 40 frames fit; the rest are dropped and counted, and every frame
        // is still accounted for.
        let mut sent = 0;
        for round in 0..4 {
            for i in 0..10 {
                if with_port(&mut w, None, |s, u| {
                    s.deliver(u, &frame(0x0800, round * 10 + i))
                }) {
                    sent += 1;
                }
            }
            w.step();
            assert!(w.accounting().balanced(), "{:?}", w.accounting());
        }
        w.publish();
        let queued = w.slave_stats[0].tx_packets.load(Ordering::Relaxed);
        let dropped = w.slave_stats[0].tx_drop_ring_full.load(Ordering::Relaxed);
        assert_eq!(queued, 16);
        assert_eq!(queued + dropped, sent);
        // No active slave: frames are dropped and counted on the logical port.
        w.set_snapshot(Snapshot {
            tx: TxPlan::none(),
            rx_mask: 0,
        });
        assert!(with_port(&mut w, None, |s, u| s.deliver(u, &frame(0x0800, 99))));
        w.step();
        w.publish();
        assert_eq!(w.logical_stats.tx_drop_no_slave.load(Ordering::Relaxed), 1);
        assert!(w.accounting().balanced());
    }

    #[test]
    fn round_robin_alternates_and_broadcast_copies_to_every_slave() {
        let mut w = setup();
        w.set_snapshot(Snapshot {
            tx: TxPlan::round_robin(&[0, 1], 1),
            rx_mask: 0b11,
        });
        for i in 0..6 {
            assert!(with_port(&mut w, None, |s, u| s.deliver(u, &frame(0x0800, i))));
        }
        w.step();
        let a = with_port(&mut w, Some(0), |s, u| s.transmit(u));
        let b = with_port(&mut w, Some(1), |s, u| s.transmit(u));
        assert_eq!((a.len(), b.len()), (3, 3));
        // Consecutive frames alternate slaves.
        let tags_a: Vec<u8> = a.iter().map(|f| f[14]).collect();
        let tags_b: Vec<u8> = b.iter().map(|f| f[14]).collect();
        assert!(tags_a.iter().all(|t| t % 2 == tags_a[0] % 2));
        assert!(tags_b.iter().all(|t| t % 2 != tags_a[0] % 2));
        // Both slaves deliver up in balance-rr.
        assert!(with_port(&mut w, Some(0), |s, u| s.deliver(u, &frame(0x0800, 20))));
        assert!(with_port(&mut w, Some(1), |s, u| s.deliver(u, &frame(0x0800, 21))));
        w.step();
        assert_eq!(with_port(&mut w, None, |s, u| s.transmit(u)).len(), 2);
        w.step();
        assert!(w.accounting().balanced());

        w.set_snapshot(Snapshot {
            tx: TxPlan::broadcast(&[0, 1]),
            rx_mask: 0b11,
        });
        for i in 0..4 {
            assert!(with_port(&mut w, None, |s, u| s.deliver(u, &frame(0x0800, 30 + i))));
        }
        w.step();
        let a = with_port(&mut w, Some(0), |s, u| s.transmit(u));
        let b = with_port(&mut w, Some(1), |s, u| s.transmit(u));
        assert_eq!(a.len(), 4);
        assert_eq!(a, b, "every slave sends every frame, byte for byte");
        w.step();
        let acc = w.accounting();
        assert!(acc.balanced(), "{acc:?}");
    }

    #[test]
    fn slaves_join_and_leave_a_running_worker_without_losing_frames() {
        let mut w = setup();
        // Frames in every place of slave 1: its fill ring (primed), its TX
        // ring (queued, not transmitted), and its RX ring (received, unread).
        w.set_snapshot(Snapshot {
            tx: TxPlan::single(1),
            rx_mask: 0b11,
        });
        for i in 0..3 {
            assert!(with_port(&mut w, None, |s, u| s.deliver(u, &frame(0x0800, i))));
        }
        w.step();
        assert!(with_port(&mut w, Some(1), |s, u| s.deliver(u, &frame(0x0800, 9))));
        w.remove_slave(1);
        let a = w.accounting();
        assert!(a.balanced(), "{a:?}");
        assert_eq!(w.frames_lost, 0);
        assert_eq!(w.slaves.len(), 1);
        // A new slave joins as index 1 and transmits.
        w.add_slave(vec![MemSock::new(16)], Arc::new(PortStats::default()));
        w.set_snapshot(Snapshot {
            tx: TxPlan::single(1),
            rx_mask: 0b11,
        });
        assert!(with_port(&mut w, None, |s, u| s.deliver(u, &frame(0x0800, 5))));
        w.step();
        let out = with_port(&mut w, Some(1), |s, u| s.transmit(u));
        assert_eq!(out.len(), 1);
        w.step();
        assert!(w.accounting().balanced(), "{:?}", w.accounting());
    }

    #[test]
    fn injected_frames_leave_on_the_named_slave() {
        let mut w = setup();
        assert!(w.inject(1, &frame(0x0806, 42)));
        w.step();
        let out = with_port(&mut w, Some(1), |s, u| s.transmit(u));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0][14], 42);
        assert!(!w.inject(5, &frame(0x0806, 1)), "no such slave");
        w.step();
        assert!(w.accounting().balanced());
    }
}
