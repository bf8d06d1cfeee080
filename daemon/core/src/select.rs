//! Active-slave choice for the primary-using modes (active-backup, and the
//! current slave of tlb/alb), after the kernel's
//! `bond_choose_primary_or_current` + `bond_find_best_slave`.
//!
//! The daemon calls [`Selector::choose`] whenever a link event changes
//! whether a slave is usable, or the primary/reselect options change.
//!
//! Differences from the kernel, on purpose:
//! - A current slave in `Fail` (downdelay running) is kept: the kernel only
//!   reselects once downdelay has expired, and we may be asked earlier.
//! - Unknown speed/duplex rank lowest in `primary_reselect=better`. The
//!   kernel stores SPEED_UNKNOWN/DUPLEX_UNKNOWN as all-ones, which makes an
//!   unknown primary look faster than any known current slave.
//! - Without an up primary, a higher-`prio` Up slave preempts the current one
//!   (subject to `primary_reselect`, as the kernel does), but equal `prio`
//!   never moves traffic away from a working current slave. The kernel's
//!   code would return to the first Up slave if it happened to be called;
//!   its callers avoid that, and so do we, explicitly.

use std::time::Duration;

use crate::config::PrimaryReselect;
use crate::link::LinkState;

/// What the selector needs to know about one slave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaveView {
    pub state: LinkState,
    pub speed_mbps: Option<u32>,
    pub full_duplex: Option<bool>,
    /// Per-slave priority (kernel `prio`); higher is preferred.
    pub prio: i32,
    /// Only meaningful in `Back`; `None` is treated as the full updelay.
    pub remaining_updelay: Option<Duration>,
}

impl SlaveView {
    /// A view with only the link state set; handy for callers without
    /// speed information and for tests.
    pub fn with_state(state: LinkState) -> Self {
        SlaveView {
            state,
            speed_mbps: None,
            full_duplex: None,
            prio: 0,
            remaining_updelay: None,
        }
    }
}

/// Result of [`Selector::choose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub active: Option<usize>,
    /// The chosen slave is in `Back`: the caller must promote it to Up
    /// (`LinkMonitor::promote`), as the kernel does when nothing else is up.
    pub promote_from_back: bool,
}

#[derive(Clone, Debug)]
pub struct Selector {
    primary: Option<usize>,
    reselect: PrimaryReselect,
    force_primary: bool,
}

impl Selector {
    /// Starts with `force_primary` set when a primary is given, as setting
    /// the option in the kernel does: the first choice honours it.
    pub fn new(primary: Option<usize>, reselect: PrimaryReselect) -> Self {
        Selector {
            primary,
            reselect,
            force_primary: primary.is_some(),
        }
    }

    pub fn primary(&self) -> Option<usize> {
        self.primary
    }

    pub fn reselect(&self) -> PrimaryReselect {
        self.reselect
    }

    /// Changing the primary forces it once, whatever `primary_reselect` says
    /// (kernel `bond_option_primary_set` sets `force_primary`).
    pub fn set_primary(&mut self, primary: Option<usize>) {
        self.primary = primary;
        self.force_primary = primary.is_some();
    }

    pub fn set_reselect(&mut self, reselect: PrimaryReselect) {
        self.reselect = reselect;
    }

    /// Keeps the primary index valid when slave `removed` leaves and later
    /// indices shift down.
    pub fn slave_removed(&mut self, removed: usize) {
        self.primary = match self.primary {
            Some(p) if p == removed => None,
            Some(p) if p > removed => Some(p - 1),
            other => other,
        };
    }

    /// Picks the active slave. `current` is the slave active now, if any.
    pub fn choose(&mut self, slaves: &[SlaveView], current: Option<usize>) -> Choice {
        let up = |i: usize| slaves.get(i).is_some_and(|s| s.state == LinkState::Up);
        let curr = current.filter(|&c| slaves.get(c).is_some_and(|s| s.state.is_usable()));
        let pick = |i: usize| Choice {
            active: Some(i),
            promote_from_back: false,
        };

        if let Some(p) = self.primary.filter(|&p| up(p)) {
            if self.force_primary {
                self.force_primary = false;
                return pick(p);
            }
            return pick(self.reselect_between(slaves, p, curr));
        }

        // Highest prio among Up slaves; ties go to config order.
        let best = (0..slaves.len())
            .filter(|&i| up(i))
            .fold(None, |best: Option<usize>, i| match best {
                Some(b) if slaves[b].prio >= slaves[i].prio => Some(b),
                _ => Some(i),
            });
        match (curr, best) {
            (Some(c), Some(b)) if slaves[b].prio > slaves[c].prio => {
                return pick(self.reselect_between(slaves, b, Some(c)));
            }
            (Some(c), _) => return pick(c),
            (None, Some(b)) => return pick(b),
            (None, None) => {}
        }

        // Nothing usable: take the Back slave closest to the end of updelay.
        let back = (0..slaves.len())
            .filter(|&i| slaves[i].state == LinkState::Back)
            .min_by_key(|&i| (slaves[i].remaining_updelay.unwrap_or(Duration::MAX), i));
        Choice {
            active: back,
            promote_from_back: back.is_some(),
        }
    }

    /// `candidate` is Up; decide between it and the usable current slave.
    fn reselect_between(
        &self,
        slaves: &[SlaveView],
        candidate: usize,
        curr: Option<usize>,
    ) -> usize {
        let Some(c) = curr else { return candidate };
        if c == candidate {
            return c;
        }
        match self.reselect {
            PrimaryReselect::Always => candidate,
            PrimaryReselect::Failure => c,
            PrimaryReselect::Better => {
                let (p, cur) = (&slaves[candidate], &slaves[c]);
                let (ps, cs) = (p.speed_mbps.unwrap_or(0), cur.speed_mbps.unwrap_or(0));
                let (pd, cd) = (
                    p.full_duplex.unwrap_or(false),
                    cur.full_duplex.unwrap_or(false),
                );
                if ps > cs || (ps == cs && pd && !cd) {
                    candidate
                } else {
                    c
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;

    fn v(state: LinkState) -> SlaveView {
        SlaveView::with_state(state)
    }

    fn fast(state: LinkState, speed: u32, full: bool) -> SlaveView {
        SlaveView {
            speed_mbps: Some(speed),
            full_duplex: Some(full),
            ..v(state)
        }
    }

    fn active(c: Choice) -> Option<usize> {
        assert!(!c.promote_from_back);
        c.active
    }

    #[test]
    fn no_primary_keeps_current_and_falls_back_in_order() {
        let mut s = Selector::new(None, PrimaryReselect::Always);
        assert_eq!(active(s.choose(&[v(Up), v(Up)], None)), Some(0));
        // Slave 0 recovering must not take traffic back from a working slave 1.
        assert_eq!(active(s.choose(&[v(Up), v(Up)], Some(1))), Some(1));
        assert_eq!(active(s.choose(&[v(Down), v(Up), v(Up)], Some(0))), Some(1));
    }

    #[test]
    fn current_in_fail_is_kept_during_downdelay() {
        let mut s = Selector::new(None, PrimaryReselect::Always);
        assert_eq!(active(s.choose(&[v(Up), v(Fail)], Some(1))), Some(1));
    }

    #[test]
    fn primary_down_gives_backup_and_all_down_gives_none() {
        let mut s = Selector::new(Some(0), PrimaryReselect::Always);
        assert_eq!(active(s.choose(&[v(Down), v(Up)], Some(0))), Some(1));
        assert_eq!(active(s.choose(&[v(Down), v(Down)], Some(1))), None);
        assert_eq!(active(s.choose(&[], None)), None);
    }

    #[test]
    fn primary_in_fail_or_back_is_not_preferred() {
        let mut s = Selector::new(Some(0), PrimaryReselect::Always);
        s.choose(&[v(Up), v(Up)], None); // consume force_primary
        assert_eq!(active(s.choose(&[v(Back), v(Up)], Some(1))), Some(1));
        assert_eq!(active(s.choose(&[v(Fail), v(Up)], Some(1))), Some(1));
        // But the primary in Fail stays active while it is the current one.
        assert_eq!(active(s.choose(&[v(Fail), v(Up)], Some(0))), Some(0));
    }

    #[test]
    fn reselect_always_returns_to_primary() {
        let mut s = Selector::new(Some(0), PrimaryReselect::Always);
        s.choose(&[v(Down), v(Up)], Some(1));
        assert_eq!(active(s.choose(&[v(Up), v(Up)], Some(1))), Some(0));
    }

    #[test]
    fn reselect_failure_keeps_current_while_up() {
        let mut s = Selector::new(Some(0), PrimaryReselect::Failure);
        // A choice with the primary down does not consume force_primary.
        assert_eq!(active(s.choose(&[v(Down), v(Up)], Some(0))), Some(1));
        assert_eq!(
            active(s.choose(&[v(Up), v(Up)], Some(1))),
            Some(0),
            "forced once"
        );
        assert_eq!(active(s.choose(&[v(Down), v(Up)], Some(0))), Some(1));
        assert_eq!(active(s.choose(&[v(Up), v(Up)], Some(1))), Some(1));
        // Current fails: primary takes over.
        assert_eq!(active(s.choose(&[v(Up), v(Down)], Some(1))), Some(0));
    }

    #[test]
    fn reselect_better_compares_speed_then_duplex() {
        let mut s = Selector::new(Some(0), PrimaryReselect::Better);
        // Consume force_primary with a choice where the primary is up.
        let _ = s.choose(&[fast(Up, 1000, true), fast(Up, 1000, true)], None);
        let cur = Some(1);
        assert_eq!(
            active(s.choose(&[fast(Up, 10000, true), fast(Up, 1000, true)], cur)),
            Some(0)
        );
        assert_eq!(
            active(s.choose(&[fast(Up, 1000, true), fast(Up, 10000, true)], cur)),
            Some(1)
        );
        assert_eq!(
            active(s.choose(&[fast(Up, 1000, true), fast(Up, 1000, true)], cur)),
            Some(1)
        );
        assert_eq!(
            active(s.choose(&[fast(Up, 1000, true), fast(Up, 1000, false)], cur)),
            Some(0)
        );
        assert_eq!(
            active(s.choose(&[fast(Up, 1000, false), fast(Up, 1000, true)], cur)),
            Some(1)
        );
        // Unknown speed never counts as faster.
        assert_eq!(
            active(s.choose(&[v(Up), fast(Up, 10, false)], cur)),
            Some(1)
        );
        assert_eq!(s.reselect(), PrimaryReselect::Better);
    }

    #[test]
    fn force_primary_once_after_set_primary() {
        let mut s = Selector::new(None, PrimaryReselect::Failure);
        assert_eq!(active(s.choose(&[v(Up), v(Up)], Some(0))), Some(0));
        s.set_primary(Some(1));
        assert_eq!(s.primary(), Some(1));
        assert_eq!(
            active(s.choose(&[v(Up), v(Up)], Some(0))),
            Some(1),
            "forced"
        );
        // Afterwards `failure` applies again: current stays.
        s.choose(&[v(Up), v(Down)], Some(1));
        assert_eq!(active(s.choose(&[v(Up), v(Up)], Some(0))), Some(0));
    }

    #[test]
    fn highest_prio_up_slave_wins_ties_by_order() {
        let mut s = Selector::new(None, PrimaryReselect::Always);
        let mut views = [v(Up), v(Up), v(Up)];
        views[1].prio = 5;
        views[2].prio = 5;
        assert_eq!(active(s.choose(&views, None)), Some(1));
        assert_eq!(
            active(s.choose(&views, Some(0))),
            Some(1),
            "higher prio preempts"
        );
        assert_eq!(
            active(s.choose(&views, Some(2))),
            Some(2),
            "equal prio does not"
        );
        s.set_reselect(PrimaryReselect::Failure);
        assert_eq!(active(s.choose(&views, Some(0))), Some(0));
    }

    #[test]
    fn only_back_slaves_promote_the_closest() {
        let mut s = Selector::new(Some(0), PrimaryReselect::Always);
        let mut views = [v(Down), v(Back), v(Back)];
        views[1].remaining_updelay = Some(Duration::from_millis(300));
        views[2].remaining_updelay = Some(Duration::from_millis(100));
        let c = s.choose(&views, None);
        assert_eq!(
            c,
            Choice {
                active: Some(2),
                promote_from_back: true
            }
        );
        views[2].state = Down;
        assert_eq!(
            s.choose(&views, None),
            Choice {
                active: Some(1),
                promote_from_back: true
            }
        );
    }

    #[test]
    fn removal_shifts_primary() {
        let mut s = Selector::new(Some(2), PrimaryReselect::Always);
        s.slave_removed(0);
        assert_eq!(s.primary(), Some(1));
        s.slave_removed(1);
        assert_eq!(s.primary(), None);
    }
}
