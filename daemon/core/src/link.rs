//! Slave link state with updelay/downdelay, following the kernel's MII
//! monitor states (`BOND_LINK_UP/FAIL/DOWN/BACK`).
//!
//! Unlike the kernel, carrier changes arrive as events (netlink) instead of
//! being polled every `miimon` ms, so delays are measured exactly from the
//! carrier change: a downdelay of 200 ms expires at +200 ms, not at the next
//! tick. The daemon calls [`LinkMonitor::poll`] at [`LinkMonitor::next_deadline`].
//!
//! Slaves are addressed by index in enslave order (the same order as the
//! config's `slaves`). [`LinkMonitor::remove_slave`] shifts later indices down
//! by one, exactly like `Vec::remove`, so the caller keeps its own per-slave
//! vectors in step by removing the same index.

use std::fmt;
use std::time::Duration;

use crate::time::Instant;

/// Kernel `BOND_LINK_*` states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// Carrier up and usable.
    Up,
    /// Carrier lost, downdelay running: still used for traffic until it expires.
    Fail,
    /// Carrier down (or downdelay expired).
    Down,
    /// Carrier back, updelay running: not used yet.
    Back,
}

impl LinkState {
    /// Whether the slave may carry traffic. `Fail` still does: that is the
    /// point of downdelay (ride out a short carrier flap without failover).
    pub fn is_usable(self) -> bool {
        matches!(self, LinkState::Up | LinkState::Fail)
    }

    /// Lowercase name for logs and status output.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Fail => "fail",
            LinkState::Down => "down",
            LinkState::Back => "back",
        }
    }
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One state transition. Every transition is reported (the daemon logs them
/// all, like the kernel's "link status up again after N ms"); only those where
/// [`LinkEvent::usable_changed`] is true need a failover decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    pub slave: usize,
    pub from: LinkState,
    pub to: LinkState,
    /// When the transition took effect: the carrier event time, or for a
    /// delay expiry the exact deadline (even if `poll` ran a little later).
    pub at: Instant,
}

impl LinkEvent {
    pub fn usable_changed(&self) -> bool {
        self.from.is_usable() != self.to.is_usable()
    }
}

#[derive(Clone, Debug)]
struct Slave {
    state: LinkState,
    /// Set while in Fail (downdelay expiry) or Back (updelay expiry).
    deadline: Option<Instant>,
    failures: u32,
}

impl Slave {
    fn new(carrier: bool) -> Self {
        Slave {
            state: if carrier {
                LinkState::Up
            } else {
                LinkState::Down
            },
            deadline: None,
            failures: 0,
        }
    }
}

/// Per-bond link state machine for all slaves.
#[derive(Clone, Debug)]
pub struct LinkMonitor {
    slaves: Vec<Slave>,
    updelay: Duration,
    downdelay: Duration,
}

impl LinkMonitor {
    /// All slaves start Down until [`set_initial`](Self::set_initial) reports
    /// their carrier at enslave time.
    pub fn new(n_slaves: usize, updelay: Duration, downdelay: Duration) -> Self {
        LinkMonitor {
            slaves: (0..n_slaves).map(|_| Slave::new(false)).collect(),
            updelay,
            downdelay,
        }
    }

    pub fn len(&self) -> usize {
        self.slaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slaves.is_empty()
    }

    /// New delays apply to transitions started from now on; running delays
    /// keep their deadline (as the kernel keeps its countdown).
    pub fn set_delays(&mut self, updelay: Duration, downdelay: Duration) {
        self.updelay = updelay;
        self.downdelay = downdelay;
    }

    /// State at enslave time. Carrier up means Up at once with no updelay,
    /// as the kernel does in `bond_enslave`: a fresh slave has nothing to
    /// prove. Clears any running delay; no event.
    pub fn set_initial(&mut self, slave: usize, carrier: bool) {
        let failures = self.slaves[slave].failures;
        self.slaves[slave] = Slave::new(carrier);
        self.slaves[slave].failures = failures;
    }

    /// Appends a slave (enslave at runtime) and returns its index.
    pub fn add_slave(&mut self, carrier: bool) -> usize {
        self.slaves.push(Slave::new(carrier));
        self.slaves.len() - 1
    }

    /// Removes a slave; later indices shift down by one.
    pub fn remove_slave(&mut self, slave: usize) {
        self.slaves.remove(slave);
    }

    pub fn state(&self, slave: usize) -> LinkState {
        self.slaves[slave].state
    }

    /// Kernel "Link Failure Count": transitions into Down.
    pub fn link_failure_count(&self, slave: usize) -> u32 {
        self.slaves[slave].failures
    }

    /// Time left before a Back slave becomes Up; `None` if not in Back.
    pub fn remaining_updelay(&self, slave: usize, now: Instant) -> Option<Duration> {
        let s = &self.slaves[slave];
        match (s.state, s.deadline) {
            (LinkState::Back, Some(d)) => Some(d.saturating_duration_since(now)),
            _ => None,
        }
    }

    /// Carrier change reported by the kernel for `slave`. Repeating the
    /// current carrier is a no-op (netlink often repeats link messages).
    pub fn carrier(&mut self, slave: usize, up: bool, now: Instant) -> Vec<LinkEvent> {
        let (updelay, downdelay) = (self.updelay, self.downdelay);
        let s = &mut self.slaves[slave];
        let from = s.state;
        let to = match (from, up) {
            (LinkState::Up, false) if downdelay.is_zero() => LinkState::Down,
            (LinkState::Up, false) => {
                s.deadline = Some(now + downdelay);
                LinkState::Fail
            }
            // Flap shorter than downdelay: back to Up, nothing failed.
            (LinkState::Fail, true) => LinkState::Up,
            (LinkState::Down, true) if updelay.is_zero() => LinkState::Up,
            (LinkState::Down, true) => {
                s.deadline = Some(now + updelay);
                LinkState::Back
            }
            // Flap shorter than updelay: the slave never became usable.
            (LinkState::Back, false) => LinkState::Down,
            _ => return Vec::new(),
        };
        if matches!(to, LinkState::Up | LinkState::Down) {
            s.deadline = None;
        }
        if to == LinkState::Down {
            s.failures = s.failures.saturating_add(1);
        }
        s.state = to;
        vec![LinkEvent {
            slave,
            from,
            to,
            at: now,
        }]
    }

    /// Applies every delay that has expired at `now` (deadline <= now).
    pub fn poll(&mut self, now: Instant) -> Vec<LinkEvent> {
        let mut events = Vec::new();
        for (i, s) in self.slaves.iter_mut().enumerate() {
            let Some(deadline) = s.deadline else { continue };
            if deadline > now {
                continue;
            }
            let from = s.state;
            let to = match from {
                LinkState::Fail => {
                    s.failures = s.failures.saturating_add(1);
                    LinkState::Down
                }
                LinkState::Back => LinkState::Up,
                // Deadlines only exist in Fail/Back; stale ones are dropped.
                LinkState::Up | LinkState::Down => {
                    s.deadline = None;
                    continue;
                }
            };
            s.state = to;
            s.deadline = None;
            events.push(LinkEvent {
                slave: i,
                from,
                to,
                at: deadline,
            });
        }
        events
    }

    /// Earliest pending delay expiry, for the daemon's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slaves.iter().filter_map(|s| s.deadline).min()
    }

    /// Back → Up at once, skipping the rest of updelay. Used when no other
    /// slave can carry traffic: the kernel then makes the Back slave active
    /// "N ms earlier" rather than leave the bond without a link. Returns
    /// whether the slave was in Back.
    pub fn promote(&mut self, slave: usize) -> bool {
        let s = &mut self.slaves[slave];
        if s.state != LinkState::Back {
            return false;
        }
        s.state = LinkState::Up;
        s.deadline = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    fn d(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn ev(slave: usize, from: LinkState, to: LinkState, at: u64) -> LinkEvent {
        LinkEvent {
            slave,
            from,
            to,
            at: ms(at),
        }
    }

    use LinkState::*;

    #[test]
    fn initial_state_has_no_updelay() {
        let mut m = LinkMonitor::new(2, d(500), d(0));
        assert_eq!(m.state(0), Down);
        m.set_initial(0, true);
        m.set_initial(1, false);
        assert_eq!(m.state(0), Up);
        assert_eq!(m.state(1), Down);
        assert_eq!(m.next_deadline(), None);
        assert_eq!(m.link_failure_count(1), 0);
    }

    #[test]
    fn down_without_downdelay_is_immediate() {
        let mut m = LinkMonitor::new(1, d(0), d(0));
        m.set_initial(0, true);
        let e = m.carrier(0, false, ms(10));
        assert_eq!(e, vec![ev(0, Up, Down, 10)]);
        assert!(e[0].usable_changed());
        assert_eq!(m.link_failure_count(0), 1);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn downdelay_expires_exactly() {
        let mut m = LinkMonitor::new(1, d(0), d(200));
        m.set_initial(0, true);
        let e = m.carrier(0, false, ms(1000));
        assert_eq!(e, vec![ev(0, Up, Fail, 1000)]);
        assert!(!e[0].usable_changed(), "Fail still carries traffic");
        assert_eq!(m.next_deadline(), Some(ms(1200)));
        assert!(m.poll(ms(1199)).is_empty());
        assert_eq!(m.state(0), Fail);
        assert_eq!(m.link_failure_count(0), 0);
        assert_eq!(m.poll(ms(1200)), vec![ev(0, Fail, Down, 1200)]);
        assert_eq!(m.state(0), Down);
        assert_eq!(m.link_failure_count(0), 1);
        assert_eq!(m.next_deadline(), None);
        assert!(m.poll(ms(5000)).is_empty());
    }

    #[test]
    fn late_poll_reports_deadline_time() {
        let mut m = LinkMonitor::new(1, d(0), d(200));
        m.set_initial(0, true);
        m.carrier(0, false, ms(0));
        assert_eq!(m.poll(ms(350)), vec![ev(0, Fail, Down, 200)]);
    }

    #[test]
    fn flap_inside_downdelay_is_no_failure() {
        let mut m = LinkMonitor::new(1, d(0), d(200));
        m.set_initial(0, true);
        m.carrier(0, false, ms(0));
        let e = m.carrier(0, true, ms(150));
        assert_eq!(e, vec![ev(0, Fail, Up, 150)]);
        assert!(!e[0].usable_changed());
        assert_eq!(m.next_deadline(), None);
        assert!(m.poll(ms(200)).is_empty());
        assert_eq!(m.state(0), Up);
        assert_eq!(m.link_failure_count(0), 0);
    }

    #[test]
    fn updelay_expires_exactly() {
        let mut m = LinkMonitor::new(1, d(300), d(0));
        m.set_initial(0, false);
        let e = m.carrier(0, true, ms(100));
        assert_eq!(e, vec![ev(0, Down, Back, 100)]);
        assert!(!e[0].usable_changed());
        assert_eq!(m.next_deadline(), Some(ms(400)));
        assert_eq!(m.remaining_updelay(0, ms(250)), Some(d(150)));
        assert!(m.poll(ms(399)).is_empty());
        let e = m.poll(ms(400));
        assert_eq!(e, vec![ev(0, Back, Up, 400)]);
        assert!(e[0].usable_changed());
        assert_eq!(m.remaining_updelay(0, ms(400)), None);
    }

    #[test]
    fn flap_inside_updelay_returns_to_down() {
        let mut m = LinkMonitor::new(1, d(300), d(0));
        m.set_initial(0, false);
        m.carrier(0, true, ms(0));
        assert_eq!(m.carrier(0, false, ms(100)), vec![ev(0, Back, Down, 100)]);
        assert_eq!(m.next_deadline(), None);
        assert!(m.poll(ms(300)).is_empty());
        assert_eq!(m.state(0), Down);
        // Coming back restarts the full updelay.
        m.carrier(0, true, ms(1000));
        assert_eq!(m.next_deadline(), Some(ms(1300)));
    }

    #[test]
    fn updelay_zero_is_immediate_and_repeats_are_ignored() {
        let mut m = LinkMonitor::new(1, d(0), d(0));
        m.set_initial(0, false);
        assert!(m.carrier(0, false, ms(1)).is_empty());
        assert_eq!(m.carrier(0, true, ms(2)), vec![ev(0, Down, Up, 2)]);
        assert!(m.carrier(0, true, ms(3)).is_empty());
    }

    #[test]
    fn next_deadline_is_the_earliest() {
        let mut m = LinkMonitor::new(3, d(500), d(200));
        m.set_initial(0, true);
        m.set_initial(1, false);
        m.set_initial(2, true);
        m.carrier(1, true, ms(0)); // Back until 500
        m.carrier(0, false, ms(100)); // Fail until 300
        assert_eq!(m.next_deadline(), Some(ms(300)));
        assert_eq!(m.poll(ms(300)), vec![ev(0, Fail, Down, 300)]);
        assert_eq!(m.next_deadline(), Some(ms(500)));
        m.carrier(2, false, ms(310)); // Fail until 510
        assert_eq!(
            m.poll(ms(600)),
            vec![ev(1, Back, Up, 500), ev(2, Fail, Down, 510)]
        );
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn promote_skips_updelay_only_from_back() {
        let mut m = LinkMonitor::new(2, d(1000), d(0));
        m.set_initial(0, false);
        m.set_initial(1, true);
        assert!(!m.promote(1));
        assert!(!m.promote(0));
        m.carrier(0, true, ms(0));
        assert!(m.promote(0));
        assert_eq!(m.state(0), Up);
        assert_eq!(m.next_deadline(), None);
        assert!(m.poll(ms(1000)).is_empty());
    }

    #[test]
    fn back_to_down_counts_a_failure_like_the_kernel_commit() {
        let mut m = LinkMonitor::new(1, d(100), d(0));
        m.set_initial(0, false);
        m.carrier(0, true, ms(0));
        m.carrier(0, false, ms(50));
        assert_eq!(m.link_failure_count(0), 1);
    }

    #[test]
    fn add_and_remove_shift_indices() {
        let mut m = LinkMonitor::new(2, d(0), d(100));
        m.set_initial(0, true);
        m.set_initial(1, true);
        m.carrier(1, false, ms(0));
        let i = m.add_slave(false);
        assert_eq!(i, 2);
        assert_eq!(m.len(), 3);
        m.remove_slave(0);
        assert_eq!(m.len(), 2);
        assert_eq!(m.state(0), Fail);
        assert_eq!(m.state(1), Down);
        assert_eq!(m.poll(ms(100)), vec![ev(0, Fail, Down, 100)]);
    }

    /// Random carrier flaps (fixed seed) against invariants that must hold
    /// whatever the order of events.
    #[test]
    fn random_flaps_keep_invariants() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut m = LinkMonitor::new(3, d(300), d(200));
        let mut downs = [0u32; 3];
        let mut states = [Down; 3];
        let mut now = 0;
        for _ in 0..5000 {
            now += next(150);
            let mut events = m.poll(ms(now));
            if next(2) == 0 {
                let slave = next(3) as usize;
                events.extend(m.carrier(slave, next(2) == 0, ms(now)));
            }
            for e in events {
                assert_eq!(states[e.slave], e.from, "events chain per slave");
                assert!(e.at <= ms(now));
                states[e.slave] = e.to;
                downs[e.slave] += u32::from(e.to == Down);
            }
            for i in 0..3 {
                assert_eq!(m.state(i), states[i]);
                assert_eq!(m.link_failure_count(i), downs[i]);
            }
            let pending = (0..3).any(|i| matches!(m.state(i), Fail | Back));
            assert_eq!(m.next_deadline().is_some(), pending);
            assert!(m.next_deadline().is_none_or(|t| t > ms(now)));
        }
        assert!(
            downs.iter().all(|&n| n > 10),
            "the walk exercised failures: {downs:?}"
        );
    }
}
