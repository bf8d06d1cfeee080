//! active-backup end to end: the real bondd binary in namespaces, over veth
//! pairs and a Linux bridge (see `Topology`).
//!
//! Needs root and a built bondd (`cargo build --workspace --bins`).

use bondd_tests::*;
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Frames a backup slave may send in a measurement window (none expected:
/// slaves' IPv6 is off and bondd transmits on the active slave only).
const BACKUP_TX_SLACK: u64 = 5;

fn start(t: &Topology, cfg: &BondConfig) -> Bondd {
    let yaml = cfg.to_yaml();
    println!("config:\n{yaml}");
    let mut bondd = Bondd::start(&t.b, &yaml);
    let took = bondd.wait_ready(READY_TIMEOUT);
    println!("bondd ready after {took:?}");
    bondd
}

fn is_locally_administered_unicast(mac: &str) -> bool {
    let first = u8::from_str_radix(&mac[..2], 16).expect("mac");
    first & 0x02 != 0 && first & 0x01 == 0
}

/// bond0 exists with its addresses, the slaves carry its MAC, allmulticast
/// and an XDP program. Returns bond0's MAC.
fn check_bond_up(t: &Topology, interface: &str) -> String {
    let b = &t.b;
    assert!(b.link_exists("bond0"), "no bond0 in {}", b.name());
    match interface {
        "veth" => assert!(b.link_exists("bond0-dp"), "interface: veth but no bond0-dp"),
        "tap" => {
            let d = b.link_details("bond0");
            assert!(
                d.contains("tun"),
                "interface: tap but bond0 is not a tun/tap: {d}"
            );
            assert!(
                !b.link_exists("bond0-dp"),
                "interface: tap but bond0-dp exists"
            );
        }
        other => panic!("unknown interface kind {other}"),
    }
    let addrs = b.addrs("bond0");
    for want in [format!("{BOND_V4}/24"), format!("{BOND_V6}/64")] {
        assert!(addrs.contains(&want), "bond0 lacks {want}: {addrs:?}");
    }
    let mac = b.link_state("bond0").mac;
    assert!(
        is_locally_administered_unicast(&mac),
        "bond0 MAC {mac} is not locally administered unicast"
    );
    for s in t.slaves() {
        let st = b.link_state(s);
        assert_eq!(st.mac, mac, "slave {s} does not carry the bond MAC");
        assert!(
            st.allmulti_flag || st.allmulti > 0,
            "slave {s} not allmulticast: {st:?}"
        );
        assert!(
            b.has_xdp(s),
            "no XDP program on slave {s}:\n{}",
            b.link_details(s)
        );
    }
    println!("bond0 up: mac {mac}, addresses {addrs:?}");
    mac
}

/// Pings in both directions, v4 and v6: at least 4 of 5 answered.
fn ping_all(t: &Topology) {
    for (from, to, dst) in [
        (&t.b, "H", HOST_V4),
        (&t.h, "bond0", BOND_V4),
        (&t.b, "H", HOST_V6),
        (&t.h, "bond0", BOND_V6),
    ] {
        let got = from.ping(dst, 5, Duration::from_secs(8));
        println!("ping {to} {dst}: {got}/5");
        assert!(got >= 4, "ping {to} at {dst}: {got}/5 answered");
    }
}

/// Test (a), reused by (f) and (g): pings, then UDP streams both ways (v4
/// 2000 datagrams, v6 1000), ≥ 99 % delivered, no duplicates, and every frame
/// from bond0 left on `active` (index of the slave) only.
fn traffic_both_ways(t: &Topology, active: usize) {
    ping_all(t);
    let before = t.port_counters();
    let mut from_bond = 0;
    for (from, to, ip, port, count) in [
        (&t.b, &t.h, HOST_V4, 9000, 2000u64),
        (&t.h, &t.b, BOND_V4, 9001, 2000),
        (&t.b, &t.h, HOST_V6, 9002, 1000),
        (&t.h, &t.b, BOND_V6, 9003, 1000),
    ] {
        let r = udp_stream(from, to, ip, port, 2000, count);
        assert!(
            r.received() * 100 >= count * 99,
            "stream to {ip}: {} of {count} delivered: {}",
            r.received(),
            r.line
        );
        assert_eq!(
            r.duplicates(),
            0,
            "duplicates on the stream to {ip}: {}",
            r.line
        );
        if std::ptr::eq(from, &t.b) {
            from_bond += r.received();
        }
    }
    let after = t.port_counters();
    let d = [after[0].since(before[0]), after[1].since(before[1])];
    println!(
        "frames sent by s0: {}, by s1: {} (bond0 sent {from_bond} datagrams that arrived)",
        d[0].rx, d[1].rx
    );
    let backup = 1 - active;
    assert!(
        d[active].rx >= from_bond,
        "active slave s{active} sent only {} frames for {from_bond} datagrams",
        d[active].rx
    );
    assert!(
        d[backup].rx < BACKUP_TX_SLACK,
        "backup slave s{backup} sent {} frames",
        d[backup].rx
    );
}

/// The slaves are as before bondd: no bond0/bond0-dp, no XDP, same MAC,
/// MTU, allmulticast/promisc flags and counts.
fn check_restored(t: &Topology, before: &[LinkState; 2]) {
    let b = &t.b;
    assert!(!b.link_exists("bond0"), "bond0 still exists");
    assert!(!b.link_exists("bond0-dp"), "bond0-dp still exists");
    for (i, s) in t.slaves().into_iter().enumerate() {
        assert!(!b.has_xdp(s), "XDP still on {s}:\n{}", b.link_details(s));
        let now = b.link_state(s);
        assert_eq!(
            now, before[i],
            "slave {s} not restored (left: now, right: before bondd)"
        );
    }
    println!("slaves restored: {before:?}");
}

fn assert_exit_0(st: ExitStatus, bondd: &Bondd) {
    assert!(
        st.code() == Some(0),
        "bondd exited with {st}, want 0; log:\n{}",
        bondd.log()
    );
    // At exit the worker proves every UMEM frame is in exactly one place
    // (free list, fill/RX, TX/completion).
    assert!(
        bondd.log().contains("frame accounting balanced"),
        "no balanced frame accounting at exit; log:\n{}",
        bondd.log()
    );
}

/// Frames each slave sent while bond0 streams `count` datagrams to H.
fn bond_tx_split(t: &Topology, port: u16, count: u64) -> [u64; 2] {
    let before = t.port_counters();
    let r = udp_stream(&t.b, &t.h, HOST_V4, port, 2000, count);
    assert!(
        r.received() * 100 >= count * 99,
        "bond0 -> H: {} of {count}: {}",
        r.received(),
        r.line
    );
    let after = t.port_counters();
    [after[0].rx - before[0].rx, after[1].rx - before[1].rx]
}

#[test]
fn ab_traffic_both_ways_veth() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg);
    check_bond_up(&t, "veth");
    traffic_both_ways(&t, 0);
    let st = bondd.sigterm_and_wait();
    assert_exit_0(st, &bondd);
}

#[test]
fn ab_failover_under_load() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg);
    check_bond_up(&t, "veth");
    ping_all(&t);

    const PPS: u64 = 4000;
    const COUNT: u64 = 3 * PPS;
    let before = t.port_counters();
    let rx_h = UdpReceiver::start(
        &t.h,
        &sockaddr(HOST_V4, 9100),
        COUNT,
        PPS,
        Duration::from_secs(10),
    );
    let rx_b = UdpReceiver::start(
        &t.b,
        &sockaddr(BOND_V4, 9101),
        COUNT,
        PPS,
        Duration::from_secs(10),
    );
    let tx_b = UdpSender::start(&t.b, &sockaddr(HOST_V4, 9100), PPS, COUNT);
    let tx_h = UdpSender::start(&t.h, &sockaddr(BOND_V4, 9101), PPS, COUNT);
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let mid = t.port_counters();
    t.sw.link_down(&t.n.p0);
    println!("p0 down at {:?} after stream start", t0.elapsed());
    let sent_b = tx_b.finish();
    let sent_h = tx_h.finish();
    let rep_h = rx_h.finish();
    let rep_b = rx_b.finish();
    let after = t.port_counters();

    println!("bond0 -> H: sender {sent_b}; receiver {}", rep_h.line);
    println!("H -> bond0: sender {sent_h}; receiver {}", rep_b.line);
    println!(
        "LOSS WINDOW bond0 -> H: {:.1} ms (seq) {:.1} ms (max arrival gap); H -> bond0: {:.1} ms (seq) {:.1} ms (max arrival gap)",
        rep_h.loss_window_ms(),
        rep_h.max_gap_ms(),
        rep_b.loss_window_ms(),
        rep_b.max_gap_ms()
    );
    let d_before = [mid[0].since(before[0]), mid[1].since(before[1])];
    let d_after = [after[0].since(mid[0]), after[1].since(mid[1])];
    println!("before p0 down: p0 {:?} p1 {:?}", d_before[0], d_before[1]);
    println!("after p0 down:  p0 {:?} p1 {:?}", d_after[0], d_after[1]);
    let failovers = bondd.log_lines_with(&["failover", &t.n.s1]);
    println!("failover log lines: {failovers:?}");

    // Before the failure: bond0 sent on s0 only.
    assert!(
        d_before[0].rx >= PPS / 2,
        "s0 sent {} frames in the first second",
        d_before[0].rx
    );
    assert!(
        d_before[1].rx < BACKUP_TX_SLACK,
        "s1 sent {} frames before failover",
        d_before[1].rx
    );
    // After: traffic continues on s1, both ways.
    assert!(
        d_after[1].rx >= PPS,
        "s1 sent only {} frames after failover",
        d_after[1].rx
    );
    assert!(
        d_after[1].tx >= PPS,
        "s1 got only {} frames after failover",
        d_after[1].tx
    );
    assert!(
        !failovers.is_empty(),
        "no `failover ... {}` log line",
        t.n.s1
    );
    for (dir, r) in [("bond0 -> H", &rep_h), ("H -> bond0", &rep_b)] {
        assert_eq!(r.duplicates(), 0, "{dir}: duplicates: {}", r.line);
        assert!(
            r.loss_window_ms() <= 500.0,
            "{dir}: loss window {:.1} ms > 500 ms: {}",
            r.loss_window_ms(),
            r.line
        );
        assert!(
            r.received() + PPS / 2 >= COUNT,
            "{dir}: only {} of {COUNT} arrived: {}",
            r.received(),
            r.line
        );
    }
    let st = bondd.sigterm_and_wait();
    assert_exit_0(st, &bondd);
}

/// Test (c): primary s0 fails and returns; with `reselect` bondd goes back to
/// s0 (`expect_back`) or stays on s1.
fn primary_returns(reselect: &str, expect_back: bool) {
    let t = Topology::new();
    let mut cfg = BondConfig::active_backup(&t);
    cfg.primary = Some(t.n.s0.clone());
    cfg.primary_reselect = Some(reselect.into());
    let mut bondd = start(&t, &cfg);
    let mac = check_bond_up(&t, "veth");
    ping_all(&t);

    let split = bond_tx_split(&t, 9200, 500);
    println!("initially: s0 sent {}, s1 sent {}", split[0], split[1]);
    assert!(
        split[0] >= 500 && split[1] < BACKUP_TX_SLACK,
        "primary s0 not active: {split:?}"
    );

    let n_failover = bondd.log_lines_with(&["failover"]).len();
    t.sw.link_down(&t.n.p0);
    let line = bondd.wait_log_lines(&["failover"], n_failover + 1, Duration::from_secs(3));
    assert!(
        line.contains(&t.n.s1),
        "failover line does not name {}: {line}",
        t.n.s1
    );
    println!("after p0 down: {line}");
    let split = bond_tx_split(&t, 9201, 500);
    println!("after p0 down: s0 sent {}, s1 sent {}", split[0], split[1]);
    assert!(
        split[1] >= 500 && split[0] < BACKUP_TX_SLACK,
        "s1 not active: {split:?}"
    );

    t.sw.link_up(&t.n.p0);
    if expect_back {
        let line = bondd.wait_log_lines(&["failover"], n_failover + 2, Duration::from_secs(3));
        assert!(
            line.contains(&t.n.s0),
            "failover line does not name {}: {line}",
            t.n.s0
        );
        println!("after p0 up: {line}");
        // Let the gratuitous ARP(s) go out.
        thread::sleep(Duration::from_millis(200));
    } else {
        // miimon 100, updelay 0: 1.5 s is many monitor intervals.
        thread::sleep(Duration::from_millis(1500));
        let lines = bondd.log_lines_with(&["failover"]);
        assert_eq!(
            lines.len(),
            n_failover + 1,
            "primary_reselect {reselect}: unexpected failover after p0 came back: {:?}",
            &lines[n_failover..]
        );
    }
    // The bridge only knows what bondd announced: H -> bond0 first, before
    // bond0 sends any data on the (new) active slave.
    println!(
        "bridge has bond MAC {mac} on {:?} (p0 = {}, p1 = {})",
        t.sw.fdb_port_of(&t.n.br0, &mac),
        t.n.p0,
        t.n.p1
    );
    let r = udp_stream(&t.h, &t.b, BOND_V4, 9202, 2000, 1000);
    assert!(
        r.received() >= 990,
        "H -> bond0 after p0 came back ({reselect}): {} of 1000 (did bondd announce its MAC on the active slave?): {}",
        r.received(),
        r.line
    );
    let split = bond_tx_split(&t, 9203, 1000);
    println!("after p0 up: s0 sent {}, s1 sent {}", split[0], split[1]);
    let (active, backup) = if expect_back { (0, 1) } else { (1, 0) };
    assert!(
        split[active] >= 1000 && split[backup] < BACKUP_TX_SLACK,
        "primary_reselect {reselect}: want s{active} active, frames per slave {split:?}"
    );
    let st = bondd.sigterm_and_wait();
    assert_exit_0(st, &bondd);
}

#[test]
fn ab_primary_reselect_always_returns_to_primary() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    primary_returns("always", true);
}

#[test]
fn ab_primary_reselect_failure_stays_on_backup() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    primary_returns("failure", false);
}

#[test]
fn ab_primary_reselect_better_equal_speed_stays_on_backup() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    primary_returns("better", false);
}

fn signal_restores(sig: i32, interface: &str) {
    let t = Topology::new();
    let before = t.slave_states();
    let mut cfg = BondConfig::active_backup(&t);
    cfg.interface = interface.into();
    let mut bondd = start(&t, &cfg);
    check_bond_up(&t, interface);
    let got = t.b.ping(HOST_V4, 2, Duration::from_secs(5));
    assert!(got >= 1, "no ping through the bond before the signal");
    let t0 = Instant::now();
    let st = bondd.signal_and_wait(sig, Duration::from_secs(10));
    println!("bondd exited {st} {:?} after signal {sig}", t0.elapsed());
    assert_exit_0(st, &bondd);
    check_restored(&t, &before);
}

#[test]
fn ab_sigterm_restores_slaves() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    signal_restores(libc::SIGTERM, "veth");
}

#[test]
fn ab_sigint_restores_slaves() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    signal_restores(libc::SIGINT, "veth");
}

#[test]
fn ab_tap_traffic_both_ways() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let before = t.slave_states();
    let mut cfg = BondConfig::active_backup(&t);
    cfg.interface = "tap".into();
    let mut bondd = start(&t, &cfg);
    check_bond_up(&t, "tap");
    traffic_both_ways(&t, 0);
    let st = bondd.sigterm_and_wait();
    assert_exit_0(st, &bondd);
    check_restored(&t, &before);
}

#[test]
fn ab_restart_after_kill9() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let before = t.slave_states();
    let cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg);
    let mac1 = check_bond_up(&t, "veth");
    let st = bondd.kill9();
    println!("first bondd killed: {st}");
    println!(
        "stale state: bond0 {} bond0-dp {} xdp s0 {} s1 {}; s0 {:?}",
        t.b.link_exists("bond0"),
        t.b.link_exists("bond0-dp"),
        t.b.has_xdp(&t.n.s0),
        t.b.has_xdp(&t.n.s1),
        t.b.link_state(&t.n.s0)
    );

    bondd.restart(&t.b);
    let took = bondd.wait_ready(READY_TIMEOUT);
    println!("restarted bondd ready after {took:?}");
    let mac2 = check_bond_up(&t, "veth");
    assert_eq!(mac1, mac2, "bond MAC not stable across restarts");
    let addrs = t.b.addrs("bond0");
    let v4 = addrs.iter().filter(|a| a.starts_with("198.18.")).count();
    assert_eq!(v4, 1, "bond0 addresses after restart: {addrs:?}");
    traffic_both_ways(&t, 0);

    let st = bondd.sigterm_and_wait();
    assert_exit_0(st, &bondd);
    // The original MACs/flags were overwritten by the killed instance; a
    // full restore needs bondd to remember them across the crash.
    check_restored(&t, &before);
}
