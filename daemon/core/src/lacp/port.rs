//! One aggregation port: its variables and the per-port machines that need
//! nothing but the port itself (receive, periodic, churn, transmit), after
//! IEEE 802.1AX §6.4 as the kernel's `bond_3ad.c` implements them, with
//! deadlines instead of 100 ms ticks.

use std::time::Duration;

use super::pdu::{Lacpdu, PortInfo, PortState};
use super::{Aggregator, ChurnState, MuxState, PeriodicState, PortCounters, RxState, timers};
use crate::time::Instant;

/// Partner admin defaults (kernel `ad_initialize_port` template).
pub(super) const PARTNER_ADMIN: PortInfo = PortInfo {
    system_priority: 0xffff,
    system: [0; 6],
    key: 1,
    port_priority: 0xff,
    port: 1,
    state: PortState(0),
};

/// Default actor port priority (kernel: 0xff).
pub(super) const DEFAULT_PORT_PRIORITY: u16 = 0xff;

const DUPLEX_KEY_BIT: u16 = 0x1;
const SPEED_KEY_MASK: u16 = 0x3e;

/// The kernel's `enum ad_link_speed_type` (key bits 1..5) for a speed in
/// Mb/s; 0 for unknown or unlisted speeds.
pub fn speed_key(mbps: Option<u32>) -> u16 {
    match mbps {
        Some(10) => 2,
        Some(100) => 3,
        Some(1_000) => 4,
        Some(2_500) => 5,
        Some(5_000) => 6,
        Some(10_000) => 7,
        Some(14_000) => 8,
        Some(20_000) => 9,
        Some(25_000) => 10,
        Some(40_000) => 11,
        Some(50_000) => 12,
        Some(56_000) => 13,
        Some(100_000) => 14,
        Some(200_000) => 15,
        Some(400_000) => 16,
        Some(800_000) => 17,
        _ => 0,
    }
}

pub(super) struct Port {
    /// Caller's slave index.
    pub id: usize,
    pub number: u16,
    pub mac: [u8; 6],
    pub speed_mbps: Option<u32>,
    pub full_duplex: bool,
    /// Carrier (the standard's `Port_Enabled`).
    pub enabled: bool,
    pub priority: u16,
    pub admin_key: u16,
    pub oper_key: u16,
    pub actor_state: PortState,
    pub partner: PortInfo,
    pub partner_admin: PortInfo,

    pub begin: bool,
    pub lacp_enabled: bool,
    pub selected: bool,
    pub matched: bool,
    pub ready_n: bool,
    pub ntt: bool,
    /// Churn machines must (re)start monitoring.
    pub churned: bool,

    pub rx: RxState,
    pub current_while: Option<Instant>,
    pub periodic: PeriodicState,
    pub periodic_timer: Option<Instant>,
    /// `None` before the first BEGIN (the kernel's AD_MUX_DUMMY).
    pub mux: Option<MuxState>,
    pub wait_while: Option<Instant>,
    /// Last transmissions, oldest first (at most 3).
    pub tx_times: Vec<Instant>,

    pub actor_churn: ChurnState,
    pub partner_churn: ChurnState,
    pub actor_churn_timer: Option<Instant>,
    pub partner_churn_timer: Option<Instant>,
    pub actor_churn_count: u64,
    pub partner_churn_count: u64,

    /// The aggregator this port owns (the kernel keeps one per slave).
    pub agg: Aggregator,
    /// Id of the aggregator the port is attached to.
    pub aggregator: Option<u16>,
    /// The kernel's slave flags: receive / transmit enabled.
    pub rx_en: bool,
    pub tx_en: bool,

    pub markers: Vec<Vec<u8>>,
    pub counters: PortCounters,
}

impl Port {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        number: u16,
        mac: [u8; 6],
        speed_mbps: Option<u32>,
        full_duplex: bool,
        carrier: bool,
        agg_id: u16,
        cfg: &super::LacpConfig,
    ) -> Port {
        let mut actor_state = PortState::AGGREGATION;
        actor_state.set(PortState::ACTIVITY, cfg.active);
        actor_state.set(
            PortState::TIMEOUT,
            cfg.rate == crate::config::LacpRate::Fast,
        );
        let admin_key = (cfg.user_port_key & 0x3ff) << 6;
        let mut p = Port {
            id,
            number,
            mac,
            speed_mbps,
            full_duplex,
            enabled: carrier,
            priority: DEFAULT_PORT_PRIORITY,
            admin_key,
            oper_key: admin_key,
            actor_state,
            partner: PARTNER_ADMIN,
            partner_admin: PARTNER_ADMIN,
            begin: true,
            lacp_enabled: true,
            selected: false,
            matched: false,
            ready_n: false,
            ntt: false,
            churned: false,
            // BEGIN moves it to INITIALIZE, whose actions then run.
            rx: RxState::PortDisabled,
            current_while: None,
            periodic: PeriodicState::NoPeriodic,
            periodic_timer: None,
            mux: None,
            wait_while: None,
            tx_times: Vec::with_capacity(timers::MAX_TX_PER_WINDOW),
            actor_churn: ChurnState::Monitoring,
            partner_churn: ChurnState::Monitoring,
            actor_churn_timer: None,
            partner_churn_timer: None,
            actor_churn_count: 0,
            partner_churn_count: 0,
            agg: Aggregator::new(agg_id),
            aggregator: None,
            rx_en: false,
            tx_en: false,
            markers: Vec::new(),
            counters: PortCounters::default(),
        };
        p.update_keys(!carrier);
        p
    }

    /// The kernel's `ad_update_actor_keys`: speed and duplex bits of the
    /// key from the link (0 while down, or with `reset`). Only full-duplex
    /// ports run LACP; a speed change on a full-duplex port restarts the
    /// port's machines (BEGIN), which is what makes a link flap renegotiate.
    pub fn update_keys(&mut self, reset: bool) {
        let old = self.oper_key;
        let (speed, duplex) = if reset || !self.enabled {
            (0, 0)
        } else {
            (speed_key(self.speed_mbps), u16::from(self.full_duplex))
        };
        self.admin_key =
            (self.admin_key & !(SPEED_KEY_MASK | DUPLEX_KEY_BIT)) | (speed << 1) | duplex;
        self.oper_key = self.admin_key;
        if old != self.oper_key {
            self.lacp_enabled = duplex != 0;
            let old_speed = (old & SPEED_KEY_MASK) >> 1;
            if !reset && speed != 0 && duplex != 0 && old_speed != speed {
                self.begin = true;
            }
        }
    }

    pub fn actor_info(&self, system_priority: u16, system: [u8; 6]) -> PortInfo {
        PortInfo {
            system_priority,
            system,
            key: self.oper_key,
            port_priority: self.priority,
            port: self.number,
            state: self.actor_state,
        }
    }

    fn record_default(&mut self) {
        self.partner = self.partner_admin;
        self.actor_state.insert(PortState::DEFAULTED);
    }

    /// `__choose_matched` + `__record_pdu`.
    fn record_pdu(&mut self, pdu: &Lacpdu, me: &PortInfo) {
        let p = &pdu.partner;
        let agg = PortState::AGGREGATION;
        self.matched = (p.port == me.port
            && p.port_priority == me.port_priority
            && p.system == me.system
            && p.system_priority == me.system_priority
            && p.key == me.key
            && p.state.contains(agg) == me.state.contains(agg))
            || !pdu.actor.state.contains(agg);
        self.partner = pdu.actor;
        self.actor_state.remove(PortState::DEFAULTED);
        let sync = self.matched && pdu.actor.state.contains(PortState::SYNCHRONIZATION);
        self.partner.state.set(PortState::SYNCHRONIZATION, sync);
    }

    /// `__update_selected`: the partner's identity changed → unselected.
    fn update_selected(&mut self, pdu: &Lacpdu) {
        if !same_partner(&pdu.actor, &self.partner) {
            self.selected = false;
        }
    }

    /// `__update_default_selected`.
    fn update_default_selected(&mut self) {
        if !same_partner(&self.partner_admin, &self.partner) {
            self.selected = false;
        }
    }

    /// `__update_ntt`: the partner's view of us is stale → transmit.
    fn update_ntt(&mut self, pdu: &Lacpdu, me: &PortInfo) {
        let p = &pdu.partner;
        let bits = PortState::ACTIVITY
            | PortState::TIMEOUT
            | PortState::SYNCHRONIZATION
            | PortState::AGGREGATION;
        if p.port != me.port
            || p.port_priority != me.port_priority
            || p.system != me.system
            || p.system_priority != me.system_priority
            || p.key != me.key
            || (p.state.0 & bits.0) != (me.state.0 & bits.0)
        {
            self.ntt = true;
        }
    }

    fn current_while_time(&self) -> Duration {
        if self.actor_state.contains(PortState::TIMEOUT) {
            timers::SHORT_TIMEOUT
        } else {
            timers::LONG_TIMEOUT
        }
    }

    /// Receive machine. `pdu` is a received LACPDU (already checked not to
    /// be our own). Returns whether anything changed.
    pub fn rx_machine(&mut self, pdu: Option<&Lacpdu>, me: &PortInfo, now: Instant) -> bool {
        let last = self.rx;
        if self.begin {
            self.rx = RxState::Initialize;
            self.churned = true;
        } else if !self.enabled {
            self.rx = RxState::PortDisabled;
        } else if pdu.is_some()
            && matches!(
                self.rx,
                RxState::Expired | RxState::Defaulted | RxState::Current
            )
        {
            if self.rx != RxState::Current {
                self.churned = true;
            }
            self.current_while = None;
            self.rx = RxState::Current;
        } else if self.current_while.is_some_and(|t| now >= t) {
            self.current_while = None;
            match self.rx {
                RxState::Current => self.rx = RxState::Expired,
                RxState::Expired => self.rx = RxState::Defaulted,
                _ => {}
            }
        } else if self.rx == RxState::PortDisabled {
            self.rx = if self.lacp_enabled {
                RxState::Expired
            } else {
                RxState::LacpDisabled
            };
        }

        // A PDU re-runs only CURRENT's actions; in PORT_DISABLED or
        // LACP_DISABLED it is dropped (the kernel re-runs those states'
        // actions, which unselects a half-duplex port on every PDU).
        if self.rx == last && !(pdu.is_some() && self.rx == RxState::Current) {
            return false;
        }
        match self.rx {
            RxState::Initialize | RxState::PortDisabled => {
                if self.rx == RxState::Initialize {
                    self.lacp_enabled = self.oper_key & DUPLEX_KEY_BIT != 0;
                    self.selected = false;
                    self.record_default();
                    self.actor_state.remove(PortState::EXPIRED);
                    self.rx = RxState::PortDisabled;
                }
                self.matched = false;
                self.current_while = None;
                self.partner.state.remove(PortState::SYNCHRONIZATION);
            }
            RxState::LacpDisabled => {
                self.selected = false;
                self.record_default();
                self.partner.state.remove(PortState::AGGREGATION);
                self.matched = true;
                self.actor_state.remove(PortState::EXPIRED);
            }
            RxState::Expired => {
                self.matched = false;
                self.partner.state.remove(PortState::SYNCHRONIZATION);
                self.partner.state.insert(PortState::TIMEOUT);
                self.current_while = Some(now + timers::SHORT_TIMEOUT);
                self.actor_state.insert(PortState::EXPIRED);
                self.churned = true;
            }
            RxState::Defaulted => {
                self.update_default_selected();
                self.record_default();
                self.matched = true;
                self.actor_state.remove(PortState::EXPIRED);
            }
            RxState::Current => {
                if let Some(pdu) = pdu {
                    self.update_selected(pdu);
                    self.update_ntt(pdu, me);
                    self.record_pdu(pdu, me);
                    self.current_while = Some(now + self.current_while_time());
                    self.actor_state.remove(PortState::EXPIRED);
                }
            }
        }
        true
    }

    /// Periodic transmission machine.
    pub fn periodic_machine(&mut self, now: Instant) -> bool {
        let last = self.periodic;
        let partner_fast = self.partner.state.contains(PortState::TIMEOUT);
        let off = self.begin
            || !self.lacp_enabled
            || !self.enabled
            || (!self.actor_state.contains(PortState::ACTIVITY)
                && !self.partner.state.contains(PortState::ACTIVITY));
        let expired = self.periodic_timer.is_some_and(|t| now >= t);
        self.periodic = if off {
            PeriodicState::NoPeriodic
        } else {
            match self.periodic {
                PeriodicState::NoPeriodic => PeriodicState::Fast,
                PeriodicState::Fast if expired => PeriodicState::Tx,
                PeriodicState::Fast if !partner_fast => PeriodicState::Slow,
                PeriodicState::Slow if expired || partner_fast => PeriodicState::Tx,
                PeriodicState::Tx if partner_fast => PeriodicState::Fast,
                PeriodicState::Tx => PeriodicState::Slow,
                s => s,
            }
        };
        if self.periodic == last {
            return false;
        }
        match self.periodic {
            PeriodicState::NoPeriodic => self.periodic_timer = None,
            PeriodicState::Fast => self.periodic_timer = Some(now + timers::FAST_PERIODIC),
            PeriodicState::Slow => self.periodic_timer = Some(now + timers::SLOW_PERIODIC),
            PeriodicState::Tx => {
                self.periodic_timer = None;
                self.ntt = true;
            }
        }
        true
    }

    /// Churn detection (kernel `ad_churn_machine`): re-armed by BEGIN, by
    /// entering CURRENT from another state and by EXPIRED; 60 s later a
    /// side that is still out of sync is "churned".
    pub fn churn_machine(&mut self, now: Instant) -> bool {
        if self.churned {
            self.churned = false;
            self.actor_churn = ChurnState::Monitoring;
            self.partner_churn = ChurnState::Monitoring;
            let t = Some(now + timers::CHURN_DETECTION);
            self.actor_churn_timer = t;
            self.partner_churn_timer = t;
            return true;
        }
        let mut changed = false;
        if self.actor_churn_timer.is_some_and(|t| now >= t) {
            self.actor_churn_timer = None;
            if self.actor_churn == ChurnState::Monitoring {
                if self.actor_state.contains(PortState::SYNCHRONIZATION) {
                    self.actor_churn = ChurnState::NoChurn;
                } else {
                    self.actor_churn = ChurnState::Churned;
                    self.actor_churn_count += 1;
                }
            }
            changed = true;
        }
        if self.partner_churn_timer.is_some_and(|t| now >= t) {
            self.partner_churn_timer = None;
            if self.partner_churn == ChurnState::Monitoring {
                if self.partner.state.contains(PortState::SYNCHRONIZATION) {
                    self.partner_churn = ChurnState::NoChurn;
                } else {
                    self.partner_churn = ChurnState::Churned;
                    self.partner_churn_count += 1;
                }
            }
            changed = true;
        }
        changed
    }

    /// Whether the transmit machine may send at all: LACP on (full duplex),
    /// link up, and the periodic machine running. 802.1AX: in NO_PERIODIC
    /// nothing is sent and NTT is dropped, which is what keeps a passive
    /// port silent until an active partner speaks.
    pub fn may_transmit(&self) -> bool {
        self.lacp_enabled && self.enabled && self.periodic != PeriodicState::NoPeriodic
    }

    /// Earliest instant the rate limit (3 PDUs in any 1 s) allows the next
    /// PDU; `None` = now.
    pub fn tx_allowed_at(&self) -> Option<Instant> {
        if self.tx_times.len() < timers::MAX_TX_PER_WINDOW {
            None
        } else {
            Some(self.tx_times[0] + timers::TX_WINDOW)
        }
    }

    fn record_tx(&mut self, now: Instant) {
        if self.tx_times.len() >= timers::MAX_TX_PER_WINDOW {
            self.tx_times.remove(0);
        }
        self.tx_times.push(now);
        self.counters.lacpdu_tx += 1;
    }

    /// Transmit machine: a LACPDU frame if NTT is set and the rate limit
    /// allows it.
    pub fn tx_machine(&mut self, now: Instant, sys_prio: u16, system: [u8; 6]) -> Option<Vec<u8>> {
        if !self.ntt {
            return None;
        }
        if !self.may_transmit() {
            self.ntt = false;
            return None;
        }
        if self.tx_allowed_at().is_some_and(|t| now < t) {
            return None;
        }
        self.ntt = false;
        self.record_tx(now);
        let pdu = Lacpdu::new(self.actor_info(sys_prio, system), self.partner);
        Some(pdu.to_frame(self.mac))
    }

    /// The farewell PDU of `remove_port`: Synchronization, Collecting and
    /// Distributing cleared. Aggregation stays set (the kernel clears it
    /// too; some switches err-disable a port on an Aggregation=0 LACPDU).
    pub fn farewell(&mut self, now: Instant, sys_prio: u16, system: [u8; 6]) -> Option<Vec<u8>> {
        if !self.may_transmit() {
            return None;
        }
        let mut actor = self.actor_info(sys_prio, system);
        actor
            .state
            .remove(PortState::SYNCHRONIZATION | PortState::COLLECTING | PortState::DISTRIBUTING);
        self.record_tx(now);
        Some(Lacpdu::new(actor, self.partner).to_frame(self.mac))
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut take = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        };
        if matches!(self.rx, RxState::Current | RxState::Expired) {
            take(self.current_while);
        }
        if matches!(self.periodic, PeriodicState::Fast | PeriodicState::Slow) {
            take(self.periodic_timer);
        }
        if self.mux == Some(MuxState::Waiting) {
            take(self.wait_while);
        }
        take(self.actor_churn_timer);
        take(self.partner_churn_timer);
        if self.ntt && self.may_transmit() {
            take(self.tx_allowed_at());
        }
        d
    }
}

/// The partner-identity fields `__update_selected` compares.
fn same_partner(a: &PortInfo, b: &PortInfo) -> bool {
    a.port == b.port
        && a.port_priority == b.port_priority
        && a.system == b.system
        && a.system_priority == b.system_priority
        && a.key == b.key
        && a.state.contains(PortState::AGGREGATION) == b.state.contains(PortState::AGGREGATION)
}
