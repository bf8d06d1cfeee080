//! Aggregators: port selection, active-aggregator choice (`ad_select`) and
//! the mux machine, after the kernel's `ad_port_selection_logic`,
//! `ad_agg_selection_logic`, `ad_agg_selection_test` and `ad_mux_machine`.
//!
//! As in the kernel every port owns one aggregator (ids handed out in
//! `add_port` order), a port attaches to at most one aggregator, and an
//! aggregator's members are the ports whose `aggregator` names its id.

use super::pdu::PortState;
use super::{Lacp, MuxState, timers};
use crate::config::AdSelect;
use crate::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Aggregator {
    pub id: u16,
    pub individual: bool,
    pub actor_key: u16,
    pub partner_system: [u8; 6],
    pub partner_system_priority: u16,
    pub partner_key: u16,
    pub active: bool,
}

impl Aggregator {
    pub fn new(id: u16) -> Aggregator {
        Aggregator {
            id,
            individual: false,
            actor_key: 0,
            partner_system: [0; 6],
            partner_system_priority: 0,
            partner_key: 0,
            active: false,
        }
    }

    /// `ad_clear_agg`: keeps only the id.
    pub fn clear(&mut self) {
        *self = Aggregator::new(self.id);
    }

    /// A partner answered (non-zero partner system).
    pub fn has_partner(&self) -> bool {
        self.partner_system != [0; 6]
    }
}

impl Lacp {
    /// Index (into `ports`) of the port owning aggregator `id`.
    pub(super) fn agg_owner(&self, id: u16) -> Option<usize> {
        self.ports.iter().position(|p| p.agg.id == id)
    }

    pub(super) fn agg_of(&self, port: usize) -> Option<&Aggregator> {
        let id = self.ports[port].aggregator?;
        self.agg_owner(id).map(|o| &self.ports[o].agg)
    }

    /// Member port indices of aggregator `id`, in port order.
    pub(super) fn members(&self, id: u16) -> impl Iterator<Item = usize> + '_ {
        self.ports
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.aggregator == Some(id))
            .map(|(i, _)| i)
    }

    /// Index of the owner of the active aggregator.
    pub(super) fn active_agg(&self) -> Option<usize> {
        self.ports.iter().position(|p| p.agg.active)
    }

    /// Members with carrier (`__agg_active_ports`).
    pub(super) fn active_ports(&self, id: u16) -> usize {
        self.members(id).filter(|&i| self.ports[i].enabled).count()
    }

    fn bandwidth(&self, id: u16) -> u64 {
        let n = self.active_ports(id) as u64;
        let speed = self
            .members(id)
            .find(|&i| self.ports[i].enabled)
            .and_then(|i| self.ports[i].speed_mbps)
            .unwrap_or(0);
        n * u64::from(speed)
    }

    fn prio_sum(&self, id: u16) -> u64 {
        self.members(id)
            .filter(|&i| self.ports[i].enabled)
            .map(|i| u64::from(self.ports[i].priority))
            .sum()
    }

    /// `ad_agg_selection_test`: is owner `c`'s aggregator better than
    /// `best`'s? Ties keep `best`.
    fn better(&self, best: Option<usize>, c: usize) -> Option<usize> {
        let Some(b) = best else { return Some(c) };
        let (ba, ca) = (&self.ports[b].agg, &self.ports[c].agg);
        if ca.individual != ba.individual {
            return Some(if ca.individual { b } else { c });
        }
        if ca.has_partner() != ba.has_partner() {
            return Some(if ca.has_partner() { c } else { b });
        }
        let (bid, cid) = (ba.id, ca.id);
        let cmp_count = || self.active_ports(cid).cmp(&self.active_ports(bid));
        let cmp_bw = || self.bandwidth(cid).cmp(&self.bandwidth(bid));
        let ord = match self.cfg.ad_select {
            AdSelect::Stable | AdSelect::Bandwidth => cmp_bw(),
            AdSelect::Count => cmp_count().then_with(cmp_bw),
            AdSelect::ActorPortPrio => self
                .prio_sum(cid)
                .cmp(&self.prio_sum(bid))
                .then_with(cmp_count)
                .then_with(cmp_bw),
        };
        Some(if ord.is_gt() { c } else { b })
    }

    fn device_up(&self, id: u16) -> bool {
        self.active_ports(id) > 0
    }

    fn disable_port(&mut self, i: usize) {
        let p = &mut self.ports[i];
        p.rx_en = false;
        p.tx_en = false;
    }

    fn enable_port(&mut self, i: usize) -> bool {
        let p = &mut self.ports[i];
        if p.enabled && !(p.rx_en && p.tx_en) {
            p.rx_en = true;
            p.tx_en = true;
            return true;
        }
        false
    }

    /// `ad_agg_selection_logic`: choose the active aggregator.
    pub(super) fn agg_selection(&mut self) {
        let active = self.active_agg();
        let mut best = active.filter(|&a| self.device_up(self.ports[a].agg.id));
        for j in 0..self.ports.len() {
            self.ports[j].agg.active = false;
            if self.device_up(self.ports[j].agg.id) {
                best = self.better(best, j);
            }
        }
        if let (Some(b), Some(a), AdSelect::Stable) = (best, active, self.cfg.ad_select) {
            // Stable: keep the old active aggregator while it still has
            // ports up and a partner (or neither it nor the best has one),
            // unless it has key 0 and the best does not.
            let (aa, ba) = (self.ports[a].agg, self.ports[b].agg);
            if self.device_up(aa.id)
                && (aa.has_partner() || !ba.has_partner())
                && !(aa.actor_key == 0 && ba.actor_key != 0)
            {
                best = Some(a);
            }
        }
        match best {
            Some(b) if Some(b) == active => self.ports[b].agg.active = true,
            Some(b) => {
                self.ports[b].agg.active = true;
                if let Some(a) = active {
                    let old: Vec<usize> = self.members(self.ports[a].agg.id).collect();
                    for i in old {
                        self.disable_port(i);
                    }
                }
            }
            None => {}
        }
        // An active aggregator without a partner ("join individuals") has
        // its ports enabled anyway, as the kernel does.
        if let Some(a) = self.active_agg() {
            if !self.ports[a].agg.has_partner() {
                let ms: Vec<usize> = self.members(self.ports[a].agg.id).collect();
                for i in ms {
                    self.enable_port(i);
                }
            }
        }
    }

    /// Clears aggregators nobody is attached to (`ad_clear_agg`).
    pub(super) fn clear_empty_aggs(&mut self) {
        for j in 0..self.ports.len() {
            let id = self.ports[j].agg.id;
            if self.members(id).next().is_none() && self.ports[j].agg != Aggregator::new(id) {
                self.ports[j].agg.clear();
            }
        }
    }

    /// `ad_port_selection_logic` for an unselected port.
    pub(super) fn port_selection(&mut self, i: usize) -> bool {
        if self.ports[i].selected {
            return false;
        }
        // Leave the old aggregator. Unlike the kernel we also drop the
        // port's enable flags here: they belonged to the old aggregator.
        if self.ports[i].aggregator.take().is_some() {
            self.disable_port(i);
            self.clear_empty_aggs();
        }
        let p = &self.ports[i];
        let mut free = None;
        let mut found = None;
        for j in 0..self.ports.len() {
            let a = &self.ports[j].agg;
            if self.members(a.id).next().is_none() {
                if free.is_none() {
                    free = Some(j);
                }
                continue;
            }
            if a.actor_key == p.oper_key
                && a.partner_system == p.partner.system
                && a.partner_system_priority == p.partner.system_priority
                && a.partner_key == p.partner.key
                && a.has_partner()
                && !a.individual
            {
                found = Some(j);
                break;
            }
        }
        let owner = match (found, free) {
            (Some(j), _) => j,
            (None, Some(j)) => {
                let p = &self.ports[i];
                let a = Aggregator {
                    id: self.ports[j].agg.id,
                    individual: !p.full_duplex || !p.lacp_enabled,
                    actor_key: p.oper_key,
                    partner_system: p.partner.system,
                    partner_system_priority: p.partner.system_priority,
                    partner_key: p.partner.key,
                    active: false,
                };
                self.ports[j].agg = a;
                j
            }
            // Cannot happen: there are as many aggregators as ports.
            (None, None) => return false,
        };
        let id = self.ports[owner].agg.id;
        self.ports[i].aggregator = Some(id);
        self.ports[i].selected = true;
        self.agg_selection();
        if !self.ports[owner].agg.active {
            self.ports[i].actor_state.remove(PortState::SYNCHRONIZATION);
        }
        true
    }

    /// All members of the port's aggregator have waited (`READY`).
    fn agg_ready(&self, i: usize) -> bool {
        match self.ports[i].aggregator {
            Some(id) => self.members(id).all(|j| self.ports[j].ready_n),
            None => self.ports[i].ready_n,
        }
    }

    /// Mux machine (coupled control, or independent collecting and
    /// distributing with `coupled_control = false`).
    pub(super) fn mux_machine(&mut self, i: usize, now: Instant) -> bool {
        let last = self.ports[i].mux;
        let agg = self.agg_of(i).copied();
        let agg_active = agg.is_some_and(|a| a.active);
        let agg_partner = agg.is_some_and(|a| a.has_partner());
        let select_timer_running = self.agg_select_timer.is_some();
        let coupled = self.cfg.coupled_control;
        let mut changed = false;

        let p = &self.ports[i];
        let selected = p.selected;
        let partner_sync = p.partner.state.contains(PortState::SYNCHRONIZATION);
        let partner_coll = p.partner.state.contains(PortState::COLLECTING);
        let actor_sync = p.actor_state.contains(PortState::SYNCHRONIZATION);
        let back_to_attached = !selected || !partner_sync || !actor_sync;
        let begin = p.begin;
        let current = p.mux.unwrap_or(MuxState::Detached);

        let next = if begin {
            MuxState::Detached
        } else {
            match current {
                MuxState::Detached if selected => MuxState::Waiting,
                MuxState::Waiting if !selected => MuxState::Detached,
                MuxState::Waiting => {
                    if self.ports[i].wait_while.is_some_and(|t| now >= t) {
                        self.ports[i].wait_while = None;
                        self.ports[i].ready_n = true;
                        changed = true;
                    }
                    if self.ports[i].ready_n && self.agg_ready(i) {
                        MuxState::Attached
                    } else {
                        MuxState::Waiting
                    }
                }
                MuxState::Attached => {
                    if selected && partner_sync && !select_timer_running {
                        match (agg_active, coupled) {
                            (true, true) => MuxState::CollectingDistributing,
                            (true, false) => MuxState::Collecting,
                            (false, _) => MuxState::Attached,
                        }
                    } else if !selected {
                        MuxState::Detached
                    } else {
                        if agg_active && !actor_sync {
                            self.ports[i].actor_state.insert(PortState::SYNCHRONIZATION);
                            changed = true;
                        }
                        MuxState::Attached
                    }
                }
                MuxState::CollectingDistributing | MuxState::Collecting if back_to_attached => {
                    MuxState::Attached
                }
                MuxState::CollectingDistributing => {
                    if agg_active {
                        changed |= self.enable_port(i);
                    }
                    MuxState::CollectingDistributing
                }
                MuxState::Collecting => {
                    if selected && partner_sync && partner_coll {
                        MuxState::Distributing
                    } else {
                        let p = &mut self.ports[i];
                        if agg_active && p.enabled && !p.rx_en {
                            p.rx_en = true;
                            changed = true;
                        }
                        MuxState::Collecting
                    }
                }
                MuxState::Distributing if back_to_attached || !partner_coll => MuxState::Collecting,
                MuxState::Distributing => {
                    if agg_active {
                        changed |= self.enable_port(i);
                    }
                    MuxState::Distributing
                }
                s => s,
            }
        };

        if Some(next) == last {
            return changed;
        }
        self.ports[i].mux = Some(next);
        let sync = PortState::SYNCHRONIZATION;
        let coll = PortState::COLLECTING;
        let dist = PortState::DISTRIBUTING;
        match next {
            MuxState::Detached => {
                let p = &mut self.ports[i];
                p.ready_n = false;
                p.wait_while = None;
                p.actor_state.remove(sync | coll | dist);
                p.ntt = true;
                if agg_partner {
                    self.disable_port(i);
                }
            }
            MuxState::Waiting => {
                let p = &mut self.ports[i];
                p.wait_while = Some(now + timers::AGGREGATE_WAIT);
                p.ready_n = false;
            }
            MuxState::Attached => {
                let p = &mut self.ports[i];
                p.actor_state.set(sync, agg_active);
                p.actor_state.remove(coll | dist);
                p.ntt = true;
                if agg_partner {
                    self.disable_port(i);
                }
            }
            MuxState::CollectingDistributing => {
                let p = &mut self.ports[i];
                p.actor_state.insert(coll | dist | sync);
                p.ntt = true;
                if agg_active {
                    self.enable_port(i);
                }
            }
            MuxState::Collecting => {
                let p = &mut self.ports[i];
                p.actor_state.insert(coll | sync);
                p.actor_state.remove(dist);
                p.ntt = true;
                if agg_active && p.enabled {
                    p.rx_en = true;
                }
                if agg_partner {
                    p.tx_en = false;
                }
            }
            MuxState::Distributing => {
                self.ports[i].actor_state.insert(dist | sync);
                if agg_active {
                    self.enable_port(i);
                }
            }
        }
        true
    }
}
