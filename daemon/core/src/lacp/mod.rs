//! 802.3ad / IEEE 802.1AX link aggregation control (LACP), pure.
//!
//! The engine follows the kernel bonding driver's `bond_3ad.c` behaviour
//! (receive, periodic, mux, transmit, selection and churn machines; timer
//! values; aggregator selection with `ad_select`) behind an I/O-free API in
//! the style of Open vSwitch's `lib/lacp.c`: the daemon feeds in frames,
//! carrier changes and the current time, sends the frames [`Lacp::poll`]
//! returns, and applies [`Lacp::collecting`] / [`Lacp::distributing`] /
//! [`Lacp::bond_carrier`] in the data path.
//!
//! Time: every entry point takes `now`. Instead of the kernel's 100 ms tick
//! each timer is a deadline; [`Lacp::next_deadline`] says when to call
//! [`Lacp::poll`] next, and the machines then run to a fixed point at `now`.
//! So transitions happen at exact instants (a partner silent since `t` is
//! EXPIRED at exactly `t + 3 s` with `lacp_rate=fast`), never later than the
//! kernel's, and tests run in virtual time.
//!
//! Calling convention: after `add_port`, `remove_port`, `carrier` or
//! `rx_frame`, call `poll(now)` to collect the frames to send (LACPDUs,
//! marker responses); `next_deadline()` returns a past or present instant
//! while such work is pending. Collecting/distributing state is updated
//! by every entry point, so it can be read right after the event.
//!
//! ```
//! use bondd_core::Instant;
//! use bondd_core::lacp::{Lacp, LacpConfig};
//!
//! let mut lacp = Lacp::new(LacpConfig::new([0x02, 0, 0, 0, 0, 1]), Instant(0));
//! lacp.add_port(0, 1, [0x02, 0, 0, 0, 1, 1], Some(10_000), true, true, Instant(0));
//! // The daemon's loop: send what poll returns, sleep until next_deadline
//! // or the next frame / carrier event, whichever comes first.
//! let frames = lacp.poll(Instant(0));
//! assert_eq!(frames.len(), 1); // the first LACPDU, 124 bytes
//! assert_eq!(frames[0].1.len(), 124);
//! assert!(lacp.next_deadline().is_some());
//! // Until a partner answers, the kernel's "join individuals" rule lets
//! // the one partnerless aggregator carry traffic.
//! assert_eq!(lacp.distributing_ports(), vec![0]);
//! ```
//!
//! Not covered: changing `LacpConfig` at run time (create a new engine),
//! the marker protocol as a sender (like the kernel, markers are only
//! answered), Standby ports / port limits per aggregator.
//!
//! Differences from the kernel, on purpose:
//! - Timers are exact deadlines (see above); the 3-PDUs-per-second limit is
//!   802.1AX's "at most 3 in any 1 s window" rather than one PDU per 300 ms.
//! - A passive port (`lacp_active=off`) never transmits while its partner is
//!   passive or unknown (802.1AX: no transmission in NO_PERIODIC); the
//!   kernel sends one PDU when a port starts.
//! - The farewell PDU of [`Lacp::remove_port`] keeps the Aggregation bit
//!   (the kernel clears it; some switches err-disable a port on it).
//! - A port leaving an aggregator loses its collecting/distributing
//!   permission at once, instead of keeping the old aggregator's until the
//!   mux machine catches up.
//! - `agg_select_timer` is armed for one kernel tick (100 ms) by
//!   [`Lacp::new`] (the kernel's `bond_open`); ports are never held back by
//!   the 8 s enslave-time value.
//! - Optional fallback to active-backup while no partner answers
//!   (`fallback_ab`, Open vSwitch's `lacp-fallback-ab`).

mod agg;
pub mod pdu;
mod port;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::config::{AdSelect, BondConfig, LacpRate};
use crate::time::Instant;
use agg::Aggregator;
use pdu::{DecodeError, MarkerKind, PortInfo, PortState, SlowPdu};
use port::Port;

pub use port::speed_key;

/// Timer values (kernel "Timer definitions", 802.3ad 43.4.4).
pub mod timers {
    use std::time::Duration;

    /// Periodic transmission while the partner asks for the fast rate.
    pub const FAST_PERIODIC: Duration = Duration::from_secs(1);
    /// Periodic transmission while the partner asks for the slow rate.
    pub const SLOW_PERIODIC: Duration = Duration::from_secs(30);
    /// Partner timeout with our Timeout bit set (`lacp_rate=fast`).
    pub const SHORT_TIMEOUT: Duration = Duration::from_secs(3);
    /// Partner timeout with `lacp_rate=slow`.
    pub const LONG_TIMEOUT: Duration = Duration::from_secs(90);
    pub const CHURN_DETECTION: Duration = Duration::from_secs(60);
    /// wait_while in the mux WAITING state.
    pub const AGGREGATE_WAIT: Duration = Duration::from_secs(2);
    /// At most [`MAX_TX_PER_WINDOW`] LACPDUs per port in any such window.
    pub const TX_WINDOW: Duration = Duration::from_secs(1);
    pub const MAX_TX_PER_WINDOW: usize = 3;
    /// agg_select_timer on bond open (one kernel tick).
    pub const AGG_SELECT_ON_OPEN: Duration = Duration::from_millis(100);
}

/// Marker responses queued per port beyond which information PDUs are
/// answered no more until the next `poll` (a flood must not grow memory).
const MAX_QUEUED_MARKERS: usize = 16;
/// Bound on machine passes per evaluation; a fixed point is normally
/// reached in two or three.
const MAX_PASSES: usize = 16;

/// Engine configuration, from the bond's 802.3ad options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LacpConfig {
    /// `ad_actor_sys_prio`.
    pub system_priority: u16,
    /// `ad_actor_system`, or the bond MAC. Never changes when a slave fails.
    pub system_mac: [u8; 6],
    /// `lacp_rate`: our Timeout bit; partner timed out after 3 s / 90 s.
    pub rate: LacpRate,
    /// `lacp_active`: off = passive, never initiates.
    pub active: bool,
    pub ad_select: AdSelect,
    /// `ad_user_port_key`: upper 10 bits of the port key.
    pub user_port_key: u16,
    pub min_links: u32,
    /// `coupled_control`: off gives separate COLLECTING and DISTRIBUTING.
    pub coupled_control: bool,
    /// `lacp_fallback_ab` (bondd only): active-backup while no partner
    /// answers on any port.
    pub fallback_ab: bool,
}

impl LacpConfig {
    /// Kernel defaults with the given system MAC.
    pub fn new(system_mac: [u8; 6]) -> LacpConfig {
        LacpConfig {
            system_priority: 65535,
            system_mac,
            rate: LacpRate::Slow,
            active: true,
            ad_select: AdSelect::Stable,
            user_port_key: 0,
            min_links: 0,
            coupled_control: true,
            fallback_ab: false,
        }
    }

    /// From a parsed bond; the system MAC is `ad_actor_system` or the bond
    /// MAC (stable across slave failures and restarts).
    pub fn from_bond(b: &BondConfig) -> LacpConfig {
        LacpConfig {
            system_priority: b.ad_actor_sys_prio,
            system_mac: b.ad_actor_system.unwrap_or_else(|| b.bond_mac()),
            rate: b.lacp_rate,
            active: b.lacp_active,
            ad_select: b.ad_select,
            user_port_key: b.ad_user_port_key,
            min_links: b.min_links,
            coupled_control: b.coupled_control,
            fallback_ab: b.lacp_fallback_ab,
        }
    }
}

/// Receive machine states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RxState {
    Initialize,
    PortDisabled,
    LacpDisabled,
    Expired,
    Defaulted,
    Current,
}

/// Mux machine states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MuxState {
    Detached,
    Waiting,
    Attached,
    CollectingDistributing,
    /// Only with `coupled_control = false`.
    Collecting,
    /// Only with `coupled_control = false`.
    Distributing,
}

/// Periodic transmission machine states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeriodicState {
    NoPeriodic,
    Fast,
    Slow,
    Tx,
}

/// Churn machine state as /proc prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChurnState {
    Monitoring,
    Churned,
    NoChurn,
}

impl fmt::Display for ChurnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChurnState::Monitoring => "monitoring",
            ChurnState::Churned => "churned",
            ChurnState::NoChurn => "none",
        })
    }
}

/// Per-port counters: the kernel's `bond_3ad_stats` names, plus the
/// reasons of illegal frames and looped-back PDUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub lacpdu_rx: u64,
    pub lacpdu_tx: u64,
    /// Slow-protocol subtypes other than LACP and Marker.
    pub lacpdu_unknown_rx: u64,
    /// Sum of [`PortCounters::illegal`] over the reasons.
    pub lacpdu_illegal_rx: u64,
    /// LACPDUs carrying our own system id (also counted in `lacpdu_rx`).
    pub loopback_rx: u64,
    pub marker_rx: u64,
    /// Always 0: like the kernel, we only answer markers.
    pub marker_tx: u64,
    pub marker_resp_rx: u64,
    pub marker_resp_tx: u64,
    pub marker_unknown_rx: u64,
    /// Frames handed in that were not slow-protocol frames for us.
    pub ignored_rx: u64,
    illegal_by_reason: [u64; DecodeError::ALL.len()],
}

impl PortCounters {
    /// Illegal frames rejected for `reason`.
    pub fn illegal(&self, reason: DecodeError) -> u64 {
        self.illegal_by_reason[reason.index()]
    }

    fn count_illegal(&mut self, reason: DecodeError) {
        self.illegal_by_reason[reason.index()] += 1;
        self.lacpdu_illegal_rx += 1;
    }
}

/// What [`Lacp::rx_frame`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// A LACPDU went through the receive machine.
    Lacpdu,
    /// A LACPDU with our own system id: counted and ignored.
    Loopback,
    /// Marker information: a response is queued for `poll`.
    MarkerInformation,
    /// Marker response: counted and ignored (we never send markers).
    MarkerResponse,
    /// Marker PDU with an unknown TLV type.
    MarkerUnknown,
    /// Another slow protocol (OAM, ESMC, …).
    UnknownSubtype,
    /// Malformed; counted under the reason.
    Illegal(DecodeError),
    /// Not a slow-protocols frame to 01:80:C2:00:00:02; left to others.
    NotForLacp,
    /// No such port.
    UnknownPort,
}

/// The active aggregator, as /proc prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregatorStatus {
    pub id: u16,
    /// Ports with carrier ("Number of ports").
    pub ports: usize,
    pub actor_key: u16,
    pub partner_key: u16,
    pub partner_mac: [u8; 6],
}

/// One port, as /proc prints it, plus machine states and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    pub port: usize,
    pub carrier: bool,
    /// `None` prints as "N/A".
    pub aggregator_id: Option<u16>,
    pub actor_churn_state: ChurnState,
    pub partner_churn_state: ChurnState,
    pub actor_churned_count: u64,
    pub partner_churned_count: u64,
    /// "details actor lacp pdu": system priority, system mac, port key,
    /// port priority, port number, port state.
    pub actor: PortInfo,
    /// "details partner lacp pdu" (`key` is printed as "oper key").
    pub partner: PortInfo,
    pub rx_state: RxState,
    pub mux_state: MuxState,
    pub periodic_state: PeriodicState,
    pub collecting: bool,
    pub distributing: bool,
    pub counters: PortCounters,
}

/// Everything /proc/net/bonding prints for 802.3ad, and more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LacpStatus {
    pub lacp_active: bool,
    pub lacp_rate: LacpRate,
    pub min_links: u32,
    pub ad_select: AdSelect,
    pub system_priority: u16,
    pub system_mac: [u8; 6],
    /// `None` prints as "bond X has no active aggregator".
    pub active_aggregator: Option<AggregatorStatus>,
    pub bond_carrier: bool,
    pub fallback_active: Option<usize>,
    /// In port (slave index) order.
    pub ports: Vec<PortStatus>,
}

/// The LACP engine of one bond.
pub struct Lacp {
    cfg: LacpConfig,
    /// Sorted by slave index.
    ports: Vec<Port>,
    last_agg_id: u16,
    agg_select_timer: Option<Instant>,
    /// Work is pending for `poll` since this instant.
    pending: Option<Instant>,
    fallback: Option<usize>,
}

impl Lacp {
    /// A bond being opened: no ports yet.
    pub fn new(cfg: LacpConfig, now: Instant) -> Lacp {
        Lacp {
            cfg,
            ports: Vec::new(),
            last_agg_id: 0,
            agg_select_timer: Some(now + timers::AGG_SELECT_ON_OPEN),
            pending: None,
            fallback: None,
        }
    }

    pub fn config(&self) -> &LacpConfig {
        &self.cfg
    }

    fn idx(&self, port: usize) -> Option<usize> {
        self.ports.binary_search_by_key(&port, |p| p.id).ok()
    }

    fn touch(&mut self, now: Instant) {
        self.pending = Some(self.pending.map_or(now, |t| t.min(now)));
    }

    /// Adds a slave. `port` is the caller's stable slave index;
    /// `port_number` is the LACP port number (1-based: switches reject 0,
    /// so 0 is sent as 1). Adding an existing `port` replaces it.
    #[allow(clippy::too_many_arguments)]
    pub fn add_port(
        &mut self,
        port: usize,
        port_number: u16,
        mac: [u8; 6],
        speed_mbps: Option<u32>,
        full_duplex: bool,
        carrier: bool,
        now: Instant,
    ) {
        if self.idx(port).is_some() {
            self.detach_and_remove(port);
        }
        self.last_agg_id = self.last_agg_id.wrapping_add(1).max(1);
        let p = Port::new(
            port,
            port_number.max(1),
            mac,
            speed_mbps,
            full_duplex,
            carrier,
            self.last_agg_id,
            &self.cfg,
        );
        let at = self.ports.partition_point(|q| q.id < port);
        self.ports.insert(at, p);
        self.run_machines(now);
        self.touch(now);
    }

    /// Removes a slave. Returns the farewell LACPDU to send on it
    /// (Synchronization/Collecting/Distributing cleared, as the kernel's
    /// unbind), or `None` if the port could not transmit (link down, LACP
    /// off, or passive without an active partner).
    pub fn remove_port(&mut self, port: usize, now: Instant) -> Option<Vec<u8>> {
        let i = self.idx(port)?;
        self.run_machines(now);
        let (prio, sys) = (self.cfg.system_priority, self.cfg.system_mac);
        let frame = self.ports[i].farewell(now, prio, sys);
        self.detach_and_remove(port);
        self.agg_selection();
        self.run_machines(now);
        self.touch(now);
        frame
    }

    /// Removes a port, moving the other members of the aggregator it owns
    /// to a free aggregator first (kernel `bond_3ad_unbind_slave`).
    fn detach_and_remove(&mut self, port: usize) {
        let Some(i) = self.idx(port) else { return };
        let own = self.ports[i].agg;
        let others: Vec<usize> = self.members(own.id).filter(|&j| j != i).collect();
        if !others.is_empty() {
            let free = (0..self.ports.len())
                .find(|&k| k != i && self.members(self.ports[k].agg.id).all(|m| m == i));
            if let Some(k) = free {
                let new_id = self.ports[k].agg.id;
                self.ports[k].agg = Aggregator { id: new_id, ..own };
                for j in others {
                    self.ports[j].aggregator = Some(new_id);
                }
            }
        }
        self.ports.remove(i);
        self.clear_empty_aggs();
        self.update_fallback();
    }

    /// Carrier change of a slave (kernel `bond_3ad_handle_link_change`).
    pub fn carrier(&mut self, port: usize, up: bool, now: Instant) {
        let Some(i) = self.idx(port) else { return };
        self.run_machines(now);
        let p = &mut self.ports[i];
        if p.enabled == up {
            return;
        }
        p.enabled = up;
        if !up {
            p.rx_en = false;
            p.tx_en = false;
        }
        p.update_keys(!up);
        self.agg_selection();
        self.run_machines(now);
        self.touch(now);
    }

    /// Speed or duplex change of a slave (kernel
    /// `bond_3ad_adapter_speed_duplex_changed`): new key; a new speed
    /// restarts the port's machines.
    pub fn set_speed(
        &mut self,
        port: usize,
        speed_mbps: Option<u32>,
        full_duplex: bool,
        now: Instant,
    ) {
        let Some(i) = self.idx(port) else { return };
        self.run_machines(now);
        let p = &mut self.ports[i];
        p.speed_mbps = speed_mbps;
        p.full_duplex = full_duplex;
        p.update_keys(false);
        self.run_machines(now);
        self.touch(now);
    }

    /// Actor port priority of a slave (kernel per-slave `actor_port_prio`,
    /// default 255); used by `ad_select=actor_port_prio`.
    pub fn set_port_priority(&mut self, port: usize, priority: u16, now: Instant) {
        let Some(i) = self.idx(port) else { return };
        self.run_machines(now);
        let p = &mut self.ports[i];
        if p.priority != priority {
            p.priority = priority;
            p.ntt = true;
            self.agg_selection();
            self.run_machines(now);
            self.touch(now);
        }
    }

    /// A frame received on a slave: the whole Ethernet frame. Everything is
    /// counted; nothing here panics on any input.
    pub fn rx_frame(&mut self, port: usize, frame: &[u8], now: Instant) -> RxOutcome {
        let Some(i) = self.idx(port) else {
            return RxOutcome::UnknownPort;
        };
        self.run_machines(now);
        let subtype = frame.get(pdu::ETH_HEADER_LEN).copied();
        let outcome = match pdu::decode_frame(frame) {
            Err(DecodeError::NotSlowProtocols | DecodeError::BadDestination) => {
                self.ports[i].counters.ignored_rx += 1;
                return RxOutcome::NotForLacp;
            }
            Err(DecodeError::BadSubtype) => {
                self.ports[i].counters.lacpdu_unknown_rx += 1;
                return RxOutcome::UnknownSubtype;
            }
            Err(DecodeError::BadTlv) if subtype == Some(pdu::SUBTYPE_MARKER) => {
                self.ports[i].counters.marker_unknown_rx += 1;
                return RxOutcome::MarkerUnknown;
            }
            Err(e) => {
                self.ports[i].counters.count_illegal(e);
                return RxOutcome::Illegal(e);
            }
            Ok((_, SlowPdu::Lacp(pdu))) => {
                let p = &mut self.ports[i];
                p.counters.lacpdu_rx += 1;
                if pdu.actor.system == self.cfg.system_mac {
                    p.counters.loopback_rx += 1;
                    return RxOutcome::Loopback;
                }
                let me = p.actor_info(self.cfg.system_priority, self.cfg.system_mac);
                p.rx_machine(Some(&pdu), &me, now);
                self.run_machines(now);
                RxOutcome::Lacpdu
            }
            Ok((_, SlowPdu::Marker(m))) => {
                let p = &mut self.ports[i];
                match m.kind {
                    MarkerKind::Information => {
                        p.counters.marker_rx += 1;
                        if p.markers.len() < MAX_QUEUED_MARKERS {
                            p.markers.push(m.response().to_frame(p.mac));
                        }
                        RxOutcome::MarkerInformation
                    }
                    MarkerKind::Response => {
                        p.counters.marker_resp_rx += 1;
                        return RxOutcome::MarkerResponse;
                    }
                }
            }
        };
        self.touch(now);
        outcome
    }

    /// Runs every machine at `now` and returns the frames to send: marker
    /// responses, then LACPDUs (NTT, within the rate limit).
    pub fn poll(&mut self, now: Instant) -> Vec<(usize, Vec<u8>)> {
        self.run_machines(now);
        let (prio, sys) = (self.cfg.system_priority, self.cfg.system_mac);
        let mut out = Vec::new();
        for p in &mut self.ports {
            for m in p.markers.drain(..) {
                p.counters.marker_resp_tx += 1;
                out.push((p.id, m));
            }
        }
        for p in &mut self.ports {
            if let Some(f) = p.tx_machine(now, prio, sys) {
                out.push((p.id, f));
            }
        }
        self.pending = None;
        out
    }

    /// When `poll` must run next (`None`: only on an event).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.pending;
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |x: Instant| x.min(t)));
            }
        };
        take(self.agg_select_timer);
        for p in &self.ports {
            take(p.next_deadline());
        }
        d
    }

    /// Runs the machines of every port until nothing changes (kernel
    /// order per port: rx, periodic, selection, mux, churn).
    fn run_machines(&mut self, now: Instant) {
        if self.agg_select_timer.is_some_and(|t| now >= t) {
            self.agg_select_timer = None;
            self.agg_selection();
        }
        let (prio, sys) = (self.cfg.system_priority, self.cfg.system_mac);
        for _ in 0..MAX_PASSES {
            let mut changed = false;
            for i in 0..self.ports.len() {
                let me = self.ports[i].actor_info(prio, sys);
                changed |= self.ports[i].rx_machine(None, &me, now);
                changed |= self.ports[i].periodic_machine(now);
                changed |= self.port_selection(i);
                changed |= self.mux_machine(i, now);
                changed |= self.ports[i].churn_machine(now);
                if self.ports[i].begin {
                    self.ports[i].begin = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        self.update_fallback();
    }

    /// No port with carrier has heard from a partner.
    fn no_partner(&self) -> bool {
        !self
            .ports
            .iter()
            .any(|p| p.enabled && !p.actor_state.contains(PortState::DEFAULTED))
    }

    fn update_fallback(&mut self) {
        self.fallback = if !self.cfg.fallback_ab || !self.no_partner() {
            None
        } else {
            let keep = self
                .fallback
                .filter(|&id| self.idx(id).is_some_and(|i| self.ports[i].enabled));
            keep.or_else(|| self.ports.iter().find(|p| p.enabled).map(|p| p.id))
        };
    }

    fn port_collecting(&self, i: usize) -> bool {
        let p = &self.ports[i];
        p.enabled && p.rx_en && self.agg_of(i).is_some_and(|a| a.active)
    }

    fn port_distributing(&self, i: usize) -> bool {
        let p = &self.ports[i];
        p.enabled && p.tx_en && self.agg_of(i).is_some_and(|a| a.active)
    }

    /// Whether frames received on `port` go up to the bond.
    pub fn collecting(&self, port: usize) -> bool {
        if self.cfg.fallback_ab && self.fallback.is_some() {
            return self.fallback == Some(port);
        }
        self.idx(port).is_some_and(|i| self.port_collecting(i))
    }

    /// Whether the bond may transmit on `port`.
    pub fn distributing(&self, port: usize) -> bool {
        if self.cfg.fallback_ab && self.fallback.is_some() {
            return self.fallback == Some(port);
        }
        self.idx(port).is_some_and(|i| self.port_distributing(i))
    }

    /// The transmit set: distributing ports of the active aggregator, in
    /// slave index order (or the fallback port).
    pub fn distributing_ports(&self) -> Vec<usize> {
        if let Some(f) = self.fallback {
            return vec![f];
        }
        (0..self.ports.len())
            .filter(|&i| self.port_distributing(i))
            .map(|i| self.ports[i].id)
            .collect()
    }

    /// Bond carrier: an active aggregator with at least `min_links` (and
    /// at least one) ports with carrier; always on while falling back.
    pub fn bond_carrier(&self) -> bool {
        if self.fallback.is_some() {
            return true;
        }
        let need = (self.cfg.min_links as usize).max(1);
        self.active_agg()
            .is_some_and(|a| self.active_ports(self.ports[a].agg.id) >= need)
    }

    /// With `fallback_ab`: while no partner has answered on any port with
    /// carrier, the one port to run active-backup on (kept while it has
    /// carrier). `None` once a partner answers, or without `fallback_ab`.
    pub fn fallback_active(&self) -> Option<usize> {
        self.fallback
    }

    pub fn status(&self) -> LacpStatus {
        let (prio, sys) = (self.cfg.system_priority, self.cfg.system_mac);
        let active_aggregator = self.active_agg().map(|a| {
            let agg = &self.ports[a].agg;
            AggregatorStatus {
                id: agg.id,
                ports: self.active_ports(agg.id),
                actor_key: agg.actor_key,
                partner_key: agg.partner_key,
                partner_mac: agg.partner_system,
            }
        });
        let ports = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortStatus {
                port: p.id,
                carrier: p.enabled,
                aggregator_id: p.aggregator,
                actor_churn_state: p.actor_churn,
                partner_churn_state: p.partner_churn,
                actor_churned_count: p.actor_churn_count,
                partner_churned_count: p.partner_churn_count,
                actor: p.actor_info(prio, sys),
                partner: p.partner,
                rx_state: p.rx,
                mux_state: p.mux.unwrap_or(MuxState::Detached),
                periodic_state: p.periodic,
                collecting: self.collecting(p.id),
                distributing: self.distributing(p.id),
                counters: self.ports[i].counters,
            })
            .collect();
        LacpStatus {
            lacp_active: self.cfg.active,
            lacp_rate: self.cfg.rate,
            min_links: self.cfg.min_links,
            ad_select: self.cfg.ad_select,
            system_priority: prio,
            system_mac: sys,
            active_aggregator,
            bond_carrier: self.bond_carrier(),
            fallback_active: self.fallback,
            ports,
        }
    }
}
