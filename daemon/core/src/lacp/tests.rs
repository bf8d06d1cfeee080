//! Virtual-time scenarios: engines wired back to back through an in-test
//! wire that delivers each frame 1 ms after it is sent.

use std::time::Duration;

use super::pdu::{self, DecodeError, Lacpdu, Marker, MarkerKind, PortInfo, PortState};
use super::*;

const LATENCY: Duration = Duration::from_millis(1);
const GBIT: Option<u32> = Some(1_000);

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

fn sys_mac(node: usize) -> [u8; 6] {
    [0x02, 0xaa, 0, 0, 0, node as u8 + 1]
}

fn port_mac(node: usize, port: usize) -> [u8; 6] {
    [0x02, 0xbb, 0, 0, node as u8 + 1, port as u8 + 1]
}

fn cfg(node: usize) -> LacpConfig {
    LacpConfig {
        rate: LacpRate::Fast,
        ..LacpConfig::new(sys_mac(node))
    }
}

struct Wire {
    a: (usize, usize),
    b: (usize, usize),
    /// Frames pass (carrier is separate: a silent partner keeps the link up).
    pass: bool,
}

struct Sent {
    at: Instant,
    node: usize,
    port: usize,
    frame: Vec<u8>,
}

struct Net {
    nodes: Vec<Lacp>,
    wires: Vec<Wire>,
    now: Instant,
    inflight: Vec<(Instant, usize, usize, Vec<u8>)>,
    log: Vec<Sent>,
}

impl Net {
    fn new(cfgs: Vec<LacpConfig>) -> Net {
        Net {
            nodes: cfgs.into_iter().map(|c| Lacp::new(c, t(0))).collect(),
            wires: Vec::new(),
            now: t(0),
            inflight: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Node `a`'s port and node `b`'s port, both added with carrier up.
    fn connect(&mut self, a: (usize, usize), b: (usize, usize), speed: Option<u32>) {
        let now = self.now;
        for &(n, p) in &[a, b] {
            self.nodes[n].add_port(p, p as u16 + 1, port_mac(n, p), speed, true, true, now);
        }
        self.wires.push(Wire { a, b, pass: true });
    }

    /// Two nodes, `n` ports each, port i to port i.
    fn pair(a: LacpConfig, b: LacpConfig, n: usize) -> Net {
        let mut net = Net::new(vec![a, b]);
        for i in 0..n {
            net.connect((0, i), (1, i), GBIT);
        }
        net
    }

    fn peer(&self, n: usize, p: usize) -> Option<((usize, usize), bool)> {
        self.wires.iter().find_map(|w| {
            if w.a == (n, p) {
                Some((w.b, w.pass))
            } else if w.b == (n, p) {
                Some((w.a, w.pass))
            } else {
                None
            }
        })
    }

    fn set_pass(&mut self, end: (usize, usize), pass: bool) {
        for w in &mut self.wires {
            if w.a == end || w.b == end {
                w.pass = pass;
            }
        }
    }

    /// Carrier on both ends of the wire at `end`.
    fn set_carrier(&mut self, end: (usize, usize), up: bool) {
        let now = self.now;
        let other = self.peer(end.0, end.1).unwrap().0;
        for (n, p) in [end, other] {
            self.nodes[n].carrier(p, up, now);
        }
        self.set_pass(end, up);
    }

    fn route(&mut self, n: usize, out: Vec<(usize, Vec<u8>)>) {
        for (p, frame) in out {
            self.log.push(Sent {
                at: self.now,
                node: n,
                port: p,
                frame: frame.clone(),
            });
            if let Some(((dn, dp), true)) = self.peer(n, p) {
                self.inflight.push((self.now + LATENCY, dn, dp, frame));
            }
        }
    }

    fn poll_all(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        self.inflight.retain(|(at, n, p, f)| {
            if *at <= now {
                due.push((*n, *p, f.clone()));
                false
            } else {
                true
            }
        });
        for (n, p, f) in due {
            let o = self.nodes[n].rx_frame(p, &f, now);
            assert!(
                matches!(
                    o,
                    RxOutcome::Lacpdu
                        | RxOutcome::Loopback
                        | RxOutcome::MarkerInformation
                        | RxOutcome::UnknownPort
                ),
                "{o:?}"
            );
        }
        for n in 0..self.nodes.len() {
            let out = self.nodes[n].poll(now);
            self.route(n, out);
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let d = self.nodes.iter().filter_map(|n| n.next_deadline()).min();
        let f = self.inflight.iter().map(|x| x.0).min();
        match (d, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs events up to and including `end`; returns the first instant at
    /// which `cond` held (checked after every event), if any.
    fn run_until(&mut self, end: Instant, cond: impl Fn(&Net) -> bool) -> Option<Instant> {
        self.poll_all();
        if cond(self) {
            return Some(self.now);
        }
        let mut steps = 0;
        while let Some(next) = self.next_event() {
            if next > end {
                break;
            }
            assert!(next > self.now, "engine made no progress at {:?}", self.now);
            self.now = next;
            self.poll_all();
            if cond(self) {
                return Some(self.now);
            }
            steps += 1;
            assert!(steps < 1_000_000);
        }
        self.now = end;
        None
    }

    fn run_to(&mut self, end: Instant) {
        self.run_until(end, |_| false);
    }

    fn formed(&self, node: usize, ports: &[usize]) -> bool {
        self.nodes[node].distributing_ports() == ports
            && ports.iter().all(|&p| self.nodes[node].collecting(p))
    }

    fn port(&self, node: usize, port: usize) -> PortStatus {
        self.nodes[node]
            .status()
            .ports
            .into_iter()
            .find(|p| p.port == port)
            .unwrap()
    }

    fn lacpdus_sent(&self, node: usize, port: usize) -> Vec<Instant> {
        self.log
            .iter()
            .filter(|s| s.node == node && s.port == port)
            .filter(|s| matches!(pdu::decode_frame(&s.frame), Ok((_, pdu::SlowPdu::Lacp(_)))))
            .map(|s| s.at)
            .collect()
    }
}

fn state(bits: &[PortState]) -> PortState {
    bits.iter().fold(PortState(0), |a, &b| a | b)
}

const ACT: PortState = PortState::ACTIVITY;
const TMO: PortState = PortState::TIMEOUT;
const AGG: PortState = PortState::AGGREGATION;
const SYNC: PortState = PortState::SYNCHRONIZATION;
const COLL: PortState = PortState::COLLECTING;
const DIST: PortState = PortState::DISTRIBUTING;
const DEF: PortState = PortState::DEFAULTED;
const EXP: PortState = PortState::EXPIRED;

/// Asserts that no 1 s window holds more than 3 LACPDUs.
fn assert_rate_limited(times: &[Instant]) {
    for w in times.windows(4) {
        assert!(
            w[3].saturating_duration_since(w[0]) >= timers::TX_WINDOW,
            "4 PDUs within 1 s: {w:?}"
        );
    }
}

#[test]
fn two_engines_negotiate_within_kernel_bound() {
    let mut net = Net::pair(cfg(0), cfg(1), 2);
    let at = net
        .run_until(secs(10), |n| n.formed(0, &[0, 1]) && n.formed(1, &[0, 1]))
        .expect("never formed");
    // wait_while (2 s) dominates; the kernel needs 2 s plus up to a few
    // 100 ms ticks and 300 ms transmit spacing.
    assert!(at >= secs(2) && at <= secs(3), "formed at {at:?}");
    assert_eq!(at, t(2_001), "virtual negotiation time");
    // The partners' Collecting/Distributing PDUs arrive 1 ms later.
    net.run_to(t(2_100));

    for n in 0..2 {
        let st = net.nodes[n].status();
        let agg = st.active_aggregator.unwrap();
        assert_eq!(agg.ports, 2);
        assert_eq!(agg.actor_key, 9, "1G full duplex");
        assert_eq!(agg.partner_key, 9);
        assert_eq!(agg.partner_mac, sys_mac(1 - n));
        assert!(st.bond_carrier);
        for p in &st.ports {
            assert_eq!(p.actor.state, state(&[ACT, TMO, AGG, SYNC, COLL, DIST]));
            assert_eq!(p.actor.state.bits(), 63);
            assert_eq!(p.partner.state.bits(), 63);
            assert_eq!(p.aggregator_id, Some(agg.id));
            assert_eq!(p.mux_state, MuxState::CollectingDistributing);
            assert_eq!(p.rx_state, RxState::Current);
            assert_eq!(p.partner.system, sys_mac(1 - n));
            assert_eq!(p.actor.port, p.port as u16 + 1, "1-based port numbers");
        }
    }
    // Stays up; fast periodic keeps it alive; no churn after 60 s.
    net.run_to(secs(100));
    assert!(net.formed(0, &[0, 1]) && net.formed(1, &[0, 1]));
    let p = net.port(0, 0);
    assert_eq!(p.actor_churn_state, ChurnState::NoChurn);
    assert_eq!(p.partner_churn_state, ChurnState::NoChurn);
    assert_eq!((p.actor_churned_count, p.partner_churned_count), (0, 0));
    assert_eq!(p.counters.lacpdu_illegal_rx, 0);
    // Periodic at 1 s: roughly 100 PDUs in 100 s, never over the limit.
    let sent = net.lacpdus_sent(0, 0);
    assert!((100..=110).contains(&sent.len()), "{}", sent.len());
    assert_rate_limited(&sent);
}

#[test]
fn slow_rate_sends_every_30s() {
    let slow = |n| LacpConfig {
        rate: LacpRate::Slow,
        ..cfg(n)
    };
    let mut net = Net::pair(slow(0), slow(1), 1);
    net.run_until(secs(10), |n| n.formed(0, &[0]) && n.formed(1, &[0]))
        .expect("never formed");
    net.run_to(secs(10));
    let before = net.lacpdus_sent(0, 0).len();
    net.run_to(secs(10 + 300));
    let after = net.lacpdus_sent(0, 0).len();
    assert_eq!(after - before, 10, "one PDU per 30 s");
    assert!(net.formed(0, &[0]));
    assert_eq!(net.port(0, 0).actor.state.bits(), 0x3d);
}

/// Forms a pair, then stops frames from node 1 (carrier stays up).
fn silent_partner(rate: LacpRate) -> (Net, Instant) {
    let c = |n| LacpConfig { rate, ..cfg(n) };
    let mut net = Net::pair(c(0), c(1), 1);
    net.run_until(secs(10), |n| n.formed(0, &[0]) && n.formed(1, &[0]))
        .expect("never formed");
    net.run_to(secs(100));
    // Last frame from node 1 that node 0 received.
    net.set_pass((1, 0), false);
    let last = net
        .log
        .iter()
        .filter(|s| s.node == 1)
        .map(|s| s.at)
        .max()
        .unwrap()
        + LATENCY;
    (net, last)
}

#[test]
fn partner_silent_fast_expires_after_3s_then_defaults() {
    let (mut net, last) = silent_partner(LacpRate::Fast);
    let expired = net
        .run_until(secs(200), |n| n.port(0, 0).rx_state == RxState::Expired)
        .unwrap();
    assert_eq!(expired, last + Duration::from_secs(3));
    let p = net.port(0, 0);
    assert_eq!(p.actor.state, state(&[ACT, TMO, AGG, SYNC, EXP]));
    assert_eq!(p.partner.state, state(&[ACT, TMO, AGG, COLL, DIST]));
    assert_eq!(p.mux_state, MuxState::Attached);
    assert!(!net.nodes[0].distributing(0) && !net.nodes[0].collecting(0));

    let defaulted = net
        .run_until(secs(200), |n| n.port(0, 0).rx_state == RxState::Defaulted)
        .unwrap();
    assert_eq!(defaulted, expired + Duration::from_secs(3));
    let p = net.port(0, 0);
    // Reselected at once into a partnerless aggregator, which is active:
    // in sync (the kernel's /proc shows 77 = 0x4d for slow).
    assert_eq!(p.actor.state, state(&[ACT, TMO, AGG, SYNC, DEF]));
    assert_eq!(p.partner, port::PARTNER_ADMIN);
    // As the kernel: a partnerless active aggregator still carries
    // traffic ("join individuals").
    assert_eq!(net.nodes[0].distributing_ports(), vec![0]);
    assert_eq!(
        net.nodes[0].status().active_aggregator.unwrap().partner_mac,
        [0; 6]
    );
}

#[test]
fn partner_silent_slow_expires_after_90s() {
    let (mut net, last) = silent_partner(LacpRate::Slow);
    let expired = net
        .run_until(secs(400), |n| n.port(0, 0).rx_state == RxState::Expired)
        .unwrap();
    assert_eq!(expired, last + Duration::from_secs(90));
    assert_eq!(
        net.port(0, 0).actor.state,
        state(&[ACT, AGG, SYNC, EXP]),
        "slow: Timeout bit clear"
    );
    let defaulted = net
        .run_until(secs(400), |n| n.port(0, 0).rx_state == RxState::Defaulted)
        .unwrap();
    assert_eq!(defaulted, expired + Duration::from_secs(3));
    assert_eq!(net.port(0, 0).actor.state.bits(), 77);
}

#[test]
fn churn_detected_after_60s_without_sync() {
    // Two ports, nobody answers: each port sits in its own partnerless
    // aggregator. Port 0's is active, so its actor is in sync.
    let mut net = Net::new(vec![cfg(0), cfg(1)]);
    net.connect((0, 0), (1, 0), GBIT);
    net.connect((0, 1), (1, 1), GBIT);
    net.set_pass((1, 0), false);
    net.set_pass((1, 1), false);
    net.nodes[1] = Lacp::new(cfg(1), t(0)); // silent: no ports at all
    net.run_to(t(59_999));
    for p in 0..2 {
        let s = net.port(0, p);
        assert_eq!(s.actor_churn_state, ChurnState::Monitoring);
        assert_eq!(s.partner_churn_state, ChurnState::Monitoring);
    }
    net.run_to(secs(60));
    let p0 = net.port(0, 0);
    let p1 = net.port(0, 1);
    assert_eq!(p0.actor_churn_state, ChurnState::NoChurn);
    assert_eq!(p0.partner_churn_state, ChurnState::Churned);
    assert_eq!((p0.actor_churned_count, p0.partner_churned_count), (0, 1));
    assert_eq!(p1.actor_churn_state, ChurnState::Churned);
    assert_eq!(p1.partner_churn_state, ChurnState::Churned);
    assert_eq!((p1.actor_churned_count, p1.partner_churned_count), (1, 1));
    assert_ne!(p0.aggregator_id, p1.aggregator_id);
    // Counts do not grow without new churn events.
    net.run_to(secs(600));
    assert_eq!(net.port(0, 1).actor_churned_count, 1);
}

/// Node 0 with three ports: 0 and 1 to node 1, 2 to node 2.
fn split(ad_select: AdSelect, speed2: Option<u32>) -> Net {
    let a = LacpConfig {
        ad_select,
        ..cfg(0)
    };
    let mut net = Net::new(vec![a, cfg(1), cfg(2)]);
    net.connect((0, 0), (1, 0), GBIT);
    net.connect((0, 1), (1, 1), GBIT);
    net.connect((0, 2), (2, 0), speed2);
    net
}

fn agg_ids(net: &Net) -> Vec<Option<u16>> {
    (0..3).map(|p| net.port(0, p).aggregator_id).collect()
}

#[test]
fn different_partners_different_aggregators() {
    let mut net = split(AdSelect::Bandwidth, GBIT);
    net.run_to(secs(10));
    let ids = agg_ids(&net);
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    // 2 x 1G beats 1 x 1G.
    assert_eq!(net.nodes[0].distributing_ports(), vec![0, 1]);
    assert!(!net.nodes[0].collecting(2));
    let p2 = net.port(0, 2);
    assert_eq!(p2.mux_state, MuxState::Attached);
    assert!(
        !p2.actor.state.contains(SYNC),
        "not in the active aggregator"
    );
    assert!(net.formed(2, &[]));
}

#[test]
fn ad_select_bandwidth_vs_count() {
    // Port 2 is 10G: bandwidth prefers it alone over 2 x 1G.
    let mut net = split(AdSelect::Bandwidth, Some(10_000));
    net.run_to(secs(10));
    assert_eq!(net.nodes[0].distributing_ports(), vec![2]);
    assert_eq!(
        net.nodes[0].status().active_aggregator.unwrap().actor_key,
        15
    );
    // count prefers the two ports.
    let mut net = split(AdSelect::Count, Some(10_000));
    net.run_to(secs(10));
    assert_eq!(net.nodes[0].distributing_ports(), vec![0, 1]);
}

#[test]
fn ad_select_actor_port_prio() {
    let mut net = split(AdSelect::ActorPortPrio, GBIT);
    net.nodes[0].set_port_priority(2, 1000, t(0));
    net.run_to(secs(10));
    assert_eq!(
        net.nodes[0].distributing_ports(),
        vec![2],
        "1000 > 255 + 255"
    );
}

#[test]
fn ad_select_stable_keeps_current_bandwidth_moves() {
    for (policy, expect) in [
        (AdSelect::Stable, vec![2]),
        (AdSelect::Bandwidth, vec![0, 1]),
    ] {
        // Only node 2 is there at first.
        let a = LacpConfig {
            ad_select: policy,
            ..cfg(0)
        };
        let mut net = Net::new(vec![a, cfg(1), cfg(2)]);
        net.connect((0, 2), (2, 0), GBIT);
        net.run_until(secs(10), |n| n.formed(0, &[2])).unwrap();
        net.run_to(secs(10));
        net.connect((0, 0), (1, 0), GBIT);
        net.connect((0, 1), (1, 1), GBIT);
        net.run_to(secs(20));
        assert_eq!(net.nodes[0].distributing_ports(), expect, "{policy:?}");
    }
}

#[test]
fn min_links_drives_bond_carrier() {
    let a = LacpConfig {
        min_links: 2,
        ..cfg(0)
    };
    let mut net = Net::pair(a, cfg(1), 2);
    assert!(
        !net.nodes[0].bond_carrier(),
        "one port per aggregator at first"
    );
    net.run_to(secs(5));
    assert!(net.nodes[0].bond_carrier());
    net.set_carrier((0, 1), false);
    assert!(!net.nodes[0].bond_carrier());
    assert_eq!(net.nodes[0].distributing_ports(), vec![0]);
    assert!(net.nodes[1].bond_carrier(), "min_links 0 on node 1");
    net.set_carrier((0, 1), true);
    // BEGIN: the port rejoins the aggregator after one PDU exchange.
    assert!(!net.nodes[0].bond_carrier());
    net.run_to(net.now + Duration::from_millis(2));
    assert!(net.nodes[0].bond_carrier());
    net.set_carrier((0, 0), false);
    net.set_carrier((0, 1), false);
    assert!(!net.nodes[1].bond_carrier(), "no port up");
}

#[test]
fn passive_passive_never_forms_active_passive_does() {
    let passive = |n| LacpConfig {
        active: false,
        ..cfg(n)
    };
    let mut net = Net::pair(passive(0), passive(1), 2);
    net.run_to(secs(120));
    assert!(net.log.is_empty(), "passive ports never speak first");
    assert_eq!(net.port(0, 0).rx_state, RxState::Defaulted);
    assert_eq!(net.port(0, 0).periodic_state, PeriodicState::NoPeriodic);
    assert_eq!(net.port(0, 0).actor.state, state(&[TMO, AGG, DEF, SYNC]));
    assert!(net.nodes[0].status().active_aggregator.unwrap().partner_mac == [0; 6]);

    let mut net = Net::pair(cfg(0), passive(1), 2);
    let at = net
        .run_until(secs(10), |n| n.formed(0, &[0, 1]) && n.formed(1, &[0, 1]))
        .unwrap();
    assert!(at <= secs(3), "{at:?}");
    assert_eq!(
        net.port(1, 0).actor.state,
        state(&[TMO, AGG, SYNC, COLL, DIST])
    );
    // The passive side answers at the rate the active side asks for.
    net.run_to(secs(60));
    assert_rate_limited(&net.lacpdus_sent(1, 0));
    assert!(net.lacpdus_sent(1, 0).len() > 50);
}

#[test]
fn partner_key_or_system_change_reselects() {
    for change in ["key", "system"] {
        let mut net = Net::pair(cfg(0), cfg(1), 2);
        net.run_until(secs(10), |n| n.formed(0, &[0, 1])).unwrap();
        net.run_to(secs(10));
        let old_agg = net.port(0, 0).aggregator_id;
        // The switch is reconfigured: node 1 restarts with another key or
        // system id.
        let mut c = cfg(1);
        match change {
            "key" => c.user_port_key = 5,
            _ => c.system_mac = [0x02, 0xcc, 0, 0, 0, 9],
        }
        let now = net.now;
        net.nodes[1] = Lacp::new(c, now);
        for p in 0..2 {
            net.nodes[1].add_port(p, p as u16 + 1, port_mac(1, p), GBIT, true, true, now);
        }
        let unselected = net
            .run_until(secs(20), |n| n.nodes[0].distributing_ports().is_empty())
            .unwrap();
        assert!(
            unselected <= now + Duration::from_millis(5),
            "{change}: {unselected:?}"
        );
        let back = net
            .run_until(secs(20), |n| n.formed(0, &[0, 1]) && n.formed(1, &[0, 1]))
            .unwrap();
        assert!(back <= now + Duration::from_secs(3), "{change}: {back:?}");
        let st = net.nodes[0].status();
        let agg = st.active_aggregator.unwrap();
        match change {
            "key" => assert_eq!(agg.partner_key, (5 << 6) | 9),
            _ => assert_eq!(agg.partner_mac, [0x02, 0xcc, 0, 0, 0, 9]),
        }
        assert_eq!(agg.ports, 2);
        assert!(st.ports.iter().all(|p| p.aggregator_id == Some(agg.id)));
        let _ = old_agg;
    }
}

#[test]
fn link_flap_renegotiates() {
    let mut net = Net::pair(cfg(0), cfg(1), 2);
    net.run_until(secs(10), |n| n.formed(0, &[0, 1])).unwrap();
    net.run_to(secs(10));
    net.set_carrier((0, 0), false);
    // At once: the data path stops using the port.
    assert_eq!(net.nodes[0].distributing_ports(), vec![1]);
    assert!(!net.nodes[0].collecting(0));
    assert_eq!(net.nodes[1].distributing_ports(), vec![1]);
    assert_eq!(net.port(0, 0).rx_state, RxState::PortDisabled);
    assert!(net.nodes[0].bond_carrier());
    net.run_to(secs(15));
    assert_eq!(net.nodes[0].distributing_ports(), vec![1]);
    net.set_carrier((0, 0), true);
    let up = net.now;
    assert!(!net.nodes[0].distributing(0), "not before renegotiation");
    let back = net
        .run_until(secs(30), |n| n.formed(0, &[0, 1]) && n.formed(1, &[0, 1]))
        .unwrap();
    assert!(back >= up + timers::AGGREGATE_WAIT && back <= up + Duration::from_secs(3));
    // Fast flapping never panics and settles.
    for k in 0..20u64 {
        net.set_carrier((0, 1), k % 2 == 1);
        let n = net.now + Duration::from_millis(37 * k + 1);
        net.run_to(n);
    }
    net.run_to(net.now + Duration::from_secs(5));
    assert!(net.formed(0, &[0, 1]));
}

#[test]
fn ntt_storm_is_rate_limited() {
    // A partner sends a PDU every 10 ms whose view of us keeps changing,
    // so every PDU sets NTT.
    let mut lacp = Lacp::new(cfg(0), t(0));
    lacp.add_port(0, 1, port_mac(0, 0), GBIT, true, true, t(0));
    let mut sent = Vec::new();
    let mut now = t(0);
    for k in 0..500u64 {
        now = t(k * 10);
        let pdu = Lacpdu::new(
            PortInfo {
                system_priority: 1,
                system: sys_mac(1),
                key: 9,
                port_priority: 255,
                port: 1,
                state: state(&[ACT, TMO, AGG]),
            },
            PortInfo {
                key: (k % 7) as u16,
                ..PortInfo::default()
            },
        );
        assert_eq!(
            lacp.rx_frame(0, &pdu.to_frame(port_mac(1, 0)), now),
            RxOutcome::Lacpdu
        );
        while lacp.next_deadline().is_some_and(|d| d <= now) {
            for _ in lacp.poll(now) {
                sent.push(now);
            }
        }
    }
    assert_rate_limited(&sent);
    assert!(sent.len() >= 14, "{}: about 3 per second", sent.len());
    let c = lacp.status().ports[0].counters;
    assert_eq!(c.lacpdu_tx as usize, sent.len());
    assert_eq!(c.lacpdu_rx, 500);
    // The pending PDU goes out once the window allows.
    let d = lacp.next_deadline().unwrap();
    assert!(d > now);
    assert!(!lacp.poll(d).is_empty());
}

#[test]
fn loopback_pdu_is_counted_and_ignored() {
    let mut lacp = Lacp::new(cfg(0), t(0));
    lacp.add_port(0, 1, port_mac(0, 0), GBIT, true, true, t(0));
    lacp.add_port(1, 2, port_mac(0, 1), GBIT, true, true, t(0));
    let out = lacp.poll(t(0));
    assert_eq!(out.len(), 2);
    // Port 0's PDU comes back on port 1 (a loop in the switch).
    for k in 0..10 {
        let now = t(k * 100);
        assert_eq!(lacp.rx_frame(1, &out[0].1, now), RxOutcome::Loopback);
        lacp.poll(now);
    }
    let st = lacp.status();
    assert_eq!(st.ports[1].counters.loopback_rx, 10);
    assert_eq!(st.ports[1].counters.lacpdu_rx, 10);
    assert_ne!(st.ports[1].rx_state, RxState::Current);
    assert_eq!(st.ports[1].partner.system, [0; 6]);
    assert!(st.ports[1].actor.state.contains(DEF));
}

#[test]
fn malformed_frames_counted_per_reason_never_panic() {
    let mut lacp = Lacp::new(cfg(0), t(0));
    lacp.add_port(3, 1, port_mac(0, 0), GBIT, true, true, t(0));
    let good = Lacpdu::new(
        PortInfo {
            system: sys_mac(1),
            ..PortInfo::default()
        },
        PortInfo::default(),
    )
    .to_frame(port_mac(1, 0));
    let now = t(1);
    // Every truncation.
    for n in 0..good.len() {
        let o = lacp.rx_frame(3, &good[..n], now);
        assert_eq!(o, RxOutcome::Illegal(DecodeError::Short), "len {n}");
    }
    let mut expect_short = good.len() as u64;
    let with = |off: usize, v: u8| {
        let mut f = good.clone();
        f[pdu::ETH_HEADER_LEN + off] = v;
        f
    };
    let cases = [
        (with(1, 0), RxOutcome::Illegal(DecodeError::BadVersion)),
        (with(2, 7), RxOutcome::Illegal(DecodeError::BadTlv)),
        (with(3, 19), RxOutcome::Illegal(DecodeError::BadLength)),
        (with(23, 0), RxOutcome::Illegal(DecodeError::BadLength)),
        (with(43, 0xff), RxOutcome::Illegal(DecodeError::BadLength)),
        (with(42, 2), RxOutcome::Illegal(DecodeError::BadTlv)),
        (with(0, 3), RxOutcome::UnknownSubtype),
        (with(0, 10), RxOutcome::UnknownSubtype),
    ];
    for (f, o) in &cases {
        assert_eq!(lacp.rx_frame(3, f, now), *o);
    }
    let mut not_slow = good.clone();
    not_slow[12] = 0x86;
    assert_eq!(lacp.rx_frame(3, &not_slow, now), RxOutcome::NotForLacp);
    let mut marker = Marker {
        kind: MarkerKind::Information,
        requester_port: 1,
        requester_system: sys_mac(1),
        requester_transaction_id: 1,
    }
    .to_frame(port_mac(1, 0));
    marker[pdu::ETH_HEADER_LEN + 2] = 9;
    assert_eq!(lacp.rx_frame(3, &marker, now), RxOutcome::MarkerUnknown);
    assert_eq!(lacp.rx_frame(99, &good, now), RxOutcome::UnknownPort);

    // Random garbage, including valid headers with random payloads.
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for k in 0..5_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut f = good.clone();
        for _ in 0..(x % 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = pdu::ETH_HEADER_LEN + (x as usize) % pdu::LACPDU_LEN;
            f[pos] = (x >> 24) as u8;
        }
        f.truncate((x >> 40) as usize % (f.len() + 8));
        let o = lacp.rx_frame(3, &f, t(2 + k));
        if o == RxOutcome::Illegal(DecodeError::Short) {
            expect_short += 1;
        }
        lacp.poll(t(2 + k));
    }
    let c = lacp.status().ports[0].counters;
    assert_eq!(c.illegal(DecodeError::Short), expect_short);
    assert!(c.illegal(DecodeError::BadVersion) >= 1);
    assert!(c.illegal(DecodeError::BadTlv) >= 2);
    assert!(c.illegal(DecodeError::BadLength) >= 3);
    let sum: u64 = DecodeError::ALL.iter().map(|&r| c.illegal(r)).sum();
    assert_eq!(c.lacpdu_illegal_rx, sum);
    assert!(c.lacpdu_unknown_rx >= 2);
    assert!(c.marker_unknown_rx >= 1);
    assert!(c.ignored_rx >= 1);
}

#[test]
fn marker_information_gets_a_response() {
    let mut lacp = Lacp::new(cfg(0), t(0));
    lacp.add_port(0, 1, port_mac(0, 0), GBIT, true, true, t(0));
    lacp.poll(t(0));
    let info = Marker {
        kind: MarkerKind::Information,
        requester_port: 4,
        requester_system: sys_mac(1),
        requester_transaction_id: 0x0102_0304,
    };
    assert_eq!(
        lacp.rx_frame(0, &info.to_frame(port_mac(1, 0)), t(5)),
        RxOutcome::MarkerInformation
    );
    assert!(lacp.next_deadline().unwrap() <= t(5));
    let out = lacp.poll(t(5));
    assert_eq!(out.len(), 1);
    let (port, frame) = &out[0];
    assert_eq!(*port, 0);
    let mut golden = vec![0x01, 0x80, 0xc2, 0x00, 0x00, 0x02];
    golden.extend_from_slice(&port_mac(0, 0));
    golden.extend_from_slice(&[0x88, 0x09, 0x02, 0x01, 0x02, 0x10, 0x00, 0x04]);
    golden.extend_from_slice(&sys_mac(1));
    golden.extend_from_slice(&[0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0]);
    golden.extend_from_slice(&[0u8; 90]);
    assert_eq!(frame, &golden);
    // A response is counted and ignored.
    assert_eq!(
        lacp.rx_frame(0, &info.response().to_frame(port_mac(1, 0)), t(6)),
        RxOutcome::MarkerResponse
    );
    assert!(lacp.poll(t(6)).is_empty());
    let c = lacp.status().ports[0].counters;
    assert_eq!(
        (c.marker_rx, c.marker_resp_tx, c.marker_resp_rx, c.marker_tx),
        (1, 1, 1, 0)
    );
}

#[test]
fn fallback_ab_while_partner_silent() {
    let a = LacpConfig {
        fallback_ab: true,
        ..cfg(0)
    };
    // The switch side has no LACP configured yet: node 1 has no ports.
    let mut net = Net::new(vec![a, cfg(1)]);
    for p in 0..2 {
        net.nodes[0].add_port(p, p as u16 + 1, port_mac(0, p), GBIT, true, true, t(0));
        net.wires.push(Wire {
            a: (0, p),
            b: (1, p),
            pass: true,
        });
    }
    assert_eq!(net.nodes[0].fallback_active(), Some(0), "from the start");
    net.run_to(secs(10));
    assert_eq!(net.nodes[0].fallback_active(), Some(0));
    assert_eq!(net.nodes[0].distributing_ports(), vec![0]);
    assert!(net.nodes[0].collecting(0) && !net.nodes[0].collecting(1));
    assert!(!net.nodes[0].distributing(1));
    assert!(net.nodes[0].bond_carrier());
    // Active-backup failover over carrier, sticky on return.
    let now = net.now;
    net.nodes[0].carrier(0, false, now);
    assert_eq!(net.nodes[0].fallback_active(), Some(1));
    assert_eq!(net.nodes[0].distributing_ports(), vec![1]);
    net.nodes[0].carrier(0, true, now);
    net.run_to(secs(20));
    assert_eq!(net.nodes[0].fallback_active(), Some(1));
    assert_eq!(net.nodes[0].status().fallback_active, Some(1));

    // LACP is configured on the switch: LACP takes over at its first PDU.
    let now = net.now;
    for p in 0..2 {
        net.nodes[1].add_port(p, p as u16 + 1, port_mac(1, p), GBIT, true, true, now);
    }
    let answered = net
        .run_until(secs(40), |n| n.nodes[0].fallback_active().is_none())
        .unwrap();
    assert_eq!(answered, now + LATENCY);
    let formed = net
        .run_until(secs(40), |n| n.formed(0, &[0, 1]) && n.formed(1, &[0, 1]))
        .unwrap();
    assert!(formed <= answered + Duration::from_secs(3), "{formed:?}");

    // Silent again: after expiry and default (3 + 3 s) back to fallback.
    net.run_to(secs(50));
    net.set_pass((1, 0), false);
    net.set_pass((1, 1), false);
    let last_rx = net
        .log
        .iter()
        .filter(|s| s.node == 1)
        .map(|s| s.at)
        .max()
        .unwrap()
        + LATENCY;
    let back = net
        .run_until(secs(80), |n| n.nodes[0].fallback_active().is_some())
        .unwrap();
    assert_eq!(
        back,
        last_rx + Duration::from_secs(6),
        "expired + defaulted"
    );
    assert_eq!(net.nodes[0].distributing_ports().len(), 1);

    // Without fallback_ab the engine never reports one.
    let mut net = Net::pair(cfg(0), cfg(1), 2);
    net.set_pass((0, 0), false);
    net.set_pass((0, 1), false);
    net.run_to(secs(10));
    assert_eq!(net.nodes[0].fallback_active(), None);
}

#[test]
fn uncoupled_control_collects_before_distributing() {
    let u = |n| LacpConfig {
        coupled_control: false,
        ..cfg(n)
    };
    let mut net = Net::pair(u(0), u(1), 1);
    let coll = net
        .run_until(secs(10), |n| n.port(0, 0).mux_state == MuxState::Collecting)
        .unwrap();
    assert!(net.nodes[0].collecting(0) && !net.nodes[0].distributing(0));
    assert_eq!(
        net.port(0, 0).actor.state,
        state(&[ACT, TMO, AGG, SYNC, COLL])
    );
    let dist = net
        .run_until(secs(10), |n| n.formed(0, &[0]) && n.formed(1, &[0]))
        .unwrap();
    assert!(dist > coll && dist <= secs(3), "{coll:?} {dist:?}");
    assert_eq!(net.port(0, 0).mux_state, MuxState::Distributing);
    assert_eq!(net.port(0, 0).actor.state.bits(), 63);
    // Partner stops collecting (link down on its side only is not
    // possible on a wire; drop frames instead and let it expire).
    net.set_pass((1, 0), false);
    net.run_to(net.now + Duration::from_secs(4));
    assert!(!net.nodes[0].distributing(0));
}

#[test]
fn remove_port_sends_farewell_and_keeps_others() {
    let mut net = Net::pair(cfg(0), cfg(1), 3);
    net.run_until(secs(10), |n| n.formed(0, &[0, 1, 2]))
        .unwrap();
    net.run_to(secs(10));
    let agg_before = net.nodes[0].status().active_aggregator.unwrap().id;
    // Remove the port that owns the active aggregator.
    let owner = (0..3)
        .find(|&p| net.nodes[0].ports[net.nodes[0].idx(p).unwrap()].agg.id == agg_before)
        .unwrap();
    let now = net.now;
    let frame = net.nodes[0].remove_port(owner, now).expect("farewell");
    let (_, pdu::SlowPdu::Lacp(pdu)) = pdu::decode_frame(&frame).unwrap() else {
        panic!()
    };
    assert_eq!(pdu.actor.state, state(&[ACT, TMO, AGG]));
    let rest: Vec<usize> = (0..3).filter(|&p| p != owner).collect();
    assert_eq!(net.nodes[0].distributing_ports(), rest, "others unaffected");
    let st = net.nodes[0].status();
    assert_eq!(st.active_aggregator.unwrap().ports, 2);
    assert_ne!(st.active_aggregator.unwrap().id, agg_before, "migrated");
    assert!(net.nodes[0].remove_port(owner, now).is_none());
    // Node 1 sees the farewell: that port drops out on its side.
    net.nodes[1].rx_frame(owner, &frame, now + LATENCY);
    assert!(!net.nodes[1].distributing(owner));
    net.nodes[1].remove_port(owner, now + LATENCY);
    net.run_to(net.now + Duration::from_secs(10));
    assert!(net.formed(0, &rest) && net.formed(1, &rest));
}

#[test]
fn keys_follow_speed_and_duplex() {
    assert_eq!(speed_key(Some(1_000)), 4);
    for (speed, key) in [
        (1_000, 9),
        (10_000, 15),
        (25_000, 21),
        (40_000, 23),
        (100_000, 29),
    ] {
        let mut l = Lacp::new(cfg(0), t(0));
        l.add_port(0, 1, port_mac(0, 0), Some(speed), true, true, t(0));
        assert_eq!(l.status().ports[0].actor.key, key, "{speed}");
    }
    let c = LacpConfig {
        user_port_key: 1023,
        ..cfg(0)
    };
    let mut l = Lacp::new(c, t(0));
    l.add_port(0, 1, port_mac(0, 0), GBIT, true, true, t(0));
    assert_eq!(l.status().ports[0].actor.key, (1023 << 6) | 9);
    // Half duplex: LACP off, individual, silent.
    let mut l = Lacp::new(cfg(0), t(0));
    l.add_port(0, 1, port_mac(0, 0), GBIT, false, true, t(0));
    assert!(l.poll(t(0)).is_empty());
    let p = &l.status().ports[0];
    assert_eq!(p.rx_state, RxState::LacpDisabled);
    assert_eq!(p.actor.key, 8);
    // Speed change restarts the port with the new key.
    l.set_speed(0, Some(10_000), true, t(10));
    assert_eq!(l.status().ports[0].actor.key, 15);
    assert_eq!(l.status().ports[0].rx_state, RxState::Expired);
    assert_eq!(l.poll(t(10)).len(), 1);
}

#[test]
fn system_id_never_changes_when_a_slave_fails() {
    let mut net = Net::pair(cfg(0), cfg(1), 2);
    net.run_to(secs(5));
    net.set_carrier((0, 0), false);
    net.nodes[0].remove_port(0, net.now);
    net.run_to(secs(10));
    let st = net.nodes[0].status();
    assert_eq!(st.system_mac, sys_mac(0));
    assert_eq!(st.ports[0].actor.system, sys_mac(0));
    assert_eq!(net.port(1, 1).partner.system, sys_mac(0));
}

#[test]
fn next_deadline_is_quiet_when_idle() {
    let mut l = Lacp::new(cfg(0), t(0));
    assert_eq!(l.next_deadline(), Some(t(100)), "agg_select_timer");
    l.poll(t(100));
    assert_eq!(l.next_deadline(), None);
    l.add_port(0, 1, port_mac(0, 0), GBIT, true, false, t(200));
    l.poll(t(200));
    // A port without carrier still waits out wait_while and churn.
    let mut now = t(200);
    while let Some(d) = l.next_deadline() {
        assert!(d > now);
        now = d;
        assert!(l.poll(now).is_empty());
    }
    assert!(now <= t(200) + timers::CHURN_DETECTION);
}

#[test]
fn config_from_bond() {
    let mut b = BondConfig::new("bond0", vec!["eth0".into()]);
    b.lacp_rate = LacpRate::Fast;
    b.ad_user_port_key = 3;
    b.lacp_fallback_ab = true;
    let c = LacpConfig::from_bond(&b);
    assert_eq!(c.system_mac, b.bond_mac(), "bond MAC by default");
    assert_eq!(
        (c.rate, c.user_port_key, c.fallback_ab),
        (LacpRate::Fast, 3, true)
    );
    assert_eq!(c.system_priority, 65535);
    b.ad_actor_system = Some([2, 0, 0, 0, 0, 7]);
    assert_eq!(LacpConfig::from_bond(&b).system_mac, [2, 0, 0, 0, 0, 7]);
}
