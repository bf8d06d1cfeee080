//! The load-balancing modes end to end: balance-rr, balance-xor and
//! broadcast, with the real bondd binary in namespaces (see `Topology`).
//!
//! The switch would be a static EtherChannel for these modes; the Linux
//! bridge of the topology simply sees the bond MAC on several ports. Frames
//! are counted per slave at the slaves' peers p0/p1/... in ns SW: the link
//! counters (everything the slave sent) and `bdt-udp sniff` (UDP frames per
//! flow, i.e. per source port, per slave).
//!
//! Needs root and a built bondd (`cargo build --workspace --bins`).

use bondd_tests::*;
use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Frames a slave may send besides the measured stream (ARP, ND, MLD).
const NOISE: u64 = 10;
/// Time for frames in flight to reach a sniffer before it stops.
const SETTLE: Duration = Duration::from_millis(150);

fn start(t: &Topology, cfg: &BondConfig) -> Bondd {
    let yaml = cfg.to_yaml();
    println!("config:\n{yaml}");
    let mut bondd = Bondd::start(&t.b, &yaml);
    let took = bondd.wait_ready(READY_TIMEOUT);
    println!("bondd ready after {took:?}");
    let all = t.all_slaves();
    wait_tx_set(&bondd, &all, Duration::from_secs(5));
    bondd
}

/// Waits until the latest `failover: transmitting slaves now [...]` line
/// names exactly `slaves` (in bond order); returns that line.
fn wait_tx_set(bondd: &Bondd, slaves: &[&str], timeout: Duration) -> String {
    let want = format!("transmitting slaves now [{}]", slaves.join(","));
    let start = Instant::now();
    loop {
        let lines = bondd.log_lines_with(&["transmitting slaves now"]);
        if let Some(l) = lines.last()
            && l.contains(&want)
        {
            return l.clone();
        }
        assert!(
            start.elapsed() < timeout,
            "no `{want}` as the latest transmit-set line after {timeout:?}; log:\n{}",
            bondd.log()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Pings H from bond0 and bond0 from H (IPv4): at least 4 of 5 answered.
/// Also warms ARP both ways before the measurements.
fn ping_both(t: &Topology) {
    for (from, to, dst) in [(&t.b, "H", HOST_V4), (&t.h, "bond0", BOND_V4)] {
        let got = from.ping(dst, 5, Duration::from_secs(8));
        println!("ping {to} {dst}: {got}/5");
        assert!(got >= 4, "ping {to} at {dst}: {got}/5 answered");
    }
}

/// SIGTERM: exit 0 and balanced UMEM frame accounting.
fn stop_clean(mut bondd: Bondd) {
    let st = bondd.sigterm_and_wait();
    assert!(
        st.code() == Some(0),
        "bondd exited with {st}, want 0; log:\n{}",
        bondd.log()
    );
    assert!(
        bondd.log().contains("frame accounting balanced"),
        "no balanced frame accounting at exit; log:\n{}",
        bondd.log()
    );
}

fn deltas(after: &[Counters], before: &[Counters]) -> Vec<Counters> {
    after.iter().zip(before).map(|(a, b)| a.since(*b)).collect()
}

/// Frames each slave sent (rx at its peer) and the UDP frames per flow and
/// slave while bond0 sends `count` datagrams in `flows` flows (source ports
/// `src_port..`) to H:`port`. Asserts ≥ 99 % delivery.
fn bond_to_host(
    t: &Topology,
    port: u16,
    pps: u64,
    count: u64,
    src_port: u16,
    flows: u16,
) -> (Vec<u64>, SniffReport, UdpReport) {
    let ports = t.all_ports();
    let before = t.all_port_counters();
    let sniff = Sniffer::start(&t.sw, &ports, port);
    let bind = sockaddr(HOST_V4, port);
    let rx = UdpReceiver::start(
        &t.h,
        &bind,
        count,
        pps,
        Duration::from_secs(count / pps + 5),
    );
    let tx = UdpSender::start_flows(&t.b, &bind, pps, count, src_port, flows);
    let sent = tx.finish();
    let rep = rx.finish();
    let sniffed = sniff.stop(SETTLE);
    let after = t.all_port_counters();
    let d: Vec<u64> = deltas(&after, &before).iter().map(|c| c.rx).collect();
    println!(
        "  bond0 -> {bind}, {flows} flow(s): sender {sent}; receiver {}",
        rep.line
    );
    println!(
        "  frames sent per slave (link counters): {d:?}; UDP frames of the stream per slave: {:?}",
        sniffed.per_iface()
    );
    assert!(
        rep.received() * 100 >= count * 99,
        "bond0 -> H: {} of {count} delivered: {}",
        rep.received(),
        rep.line
    );
    (d, sniffed, rep)
}

/// Which slave (index) carries each flow; panics if a flow used two slaves
/// or a flow is missing.
fn owners(rep: &SniffReport, src_port: u16, flows: u16) -> BTreeMap<u16, usize> {
    let owner = rep.flow_owner().unwrap_or_else(|split| {
        panic!("flows seen on more than one slave (frames per slave): {split:?}")
    });
    for p in src_port..src_port + flows {
        assert!(
            owner.contains_key(&p),
            "flow from source port {p} not seen on any slave: {:?}",
            rep.flows
        );
    }
    owner
}

/// Flows per slave.
fn flows_per_slave(owner: &BTreeMap<u16, usize>, slaves: usize) -> Vec<usize> {
    let mut v = vec![0; slaves];
    for &s in owner.values() {
        v[s] += 1;
    }
    v
}

// ---------------------------------------------------------------------------
// 1. balance-rr spreads evenly

fn rr_split(t: &Topology, port: u16, n: u64) {
    let (d, sniffed, _) = bond_to_host(t, port, 4000, n, 0, 1);
    let udp = sniffed.per_iface();
    let half = n / 2;
    let tol = n / 50 + NOISE;
    println!(
        "  RR SPREAD: s0 {} frames ({:.2} %), s1 {} frames ({:.2} %) of {n} datagrams; tolerance ±{tol}",
        d[0],
        d[0] as f64 * 100.0 / n as f64,
        d[1],
        d[1] as f64 * 100.0 / n as f64
    );
    for (i, &f) in d.iter().enumerate() {
        assert!(
            f.abs_diff(half) <= tol,
            "s{i} sent {f} frames, want {half} ± {tol} (all slaves: {d:?}, UDP only: {udp:?})"
        );
    }
}

#[test]
fn rr_spreads_evenly() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    const N: u64 = 4000;
    for pps_opt in [None, Some(4)] {
        let t = Topology::new();
        let mut cfg = BondConfig::balancing(&t, "balance-rr");
        if let Some(p) = pps_opt {
            cfg.extra.push(format!("packets_per_slave: {p}"));
        }
        let bondd = start(&t, &cfg);
        ping_both(&t);
        println!("packets_per_slave: {}", pps_opt.unwrap_or(1));
        rr_split(&t, 9300, N);
        stop_clean(bondd);
    }
}

// ---------------------------------------------------------------------------
// 2. balance-xor layer2: one peer MAC, one slave

#[test]
fn xor_layer2_one_peer_one_slave() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    // xmit_hash_policy not set: the default, layer2.
    let cfg = BondConfig::balancing(&t, "balance-xor");
    let bondd = start(&t, &cfg);
    ping_both(&t);
    const N: u64 = 2000;
    const FLOWS: u16 = 16;
    let (d, sniffed, rep) = bond_to_host(&t, 9310, 2000, N, 41000, FLOWS);
    let udp = sniffed.per_iface();
    let Some(used) = udp.iter().position(|&n| n > 0) else {
        panic!("no UDP frame seen on any slave");
    };
    let other = 1 - used;
    println!(
        "LAYER2: all {} UDP frames of {FLOWS} flows to H's MAC left on s{used} (s{other}: {} UDP frames, {} frames in all)",
        udp[used], udp[other], d[other]
    );
    assert!(
        udp[used] >= rep.received(),
        "s{used} carried {} UDP frames, H received {}",
        udp[used],
        rep.received()
    );
    assert_eq!(
        udp[other], 0,
        "layer2: UDP frames to one MAC on both slaves: {udp:?}"
    );
    assert!(
        d[other] < NOISE,
        "layer2: s{other} sent {} frames while all traffic went to one MAC",
        d[other]
    );
    stop_clean(bondd);
}

// ---------------------------------------------------------------------------
// 3. balance-xor layer3+4: a flow sticks to one slave, flows spread

#[test]
fn xor_layer34_flows_stick_and_spread() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let mut cfg = BondConfig::balancing(&t, "balance-xor");
    cfg.extra.push("xmit_hash_policy: layer3+4".into());
    let bondd = start(&t, &cfg);
    ping_both(&t);
    const FLOWS: u16 = 64;
    const PER_FLOW: u64 = 100;
    const BASE: u16 = 41100;
    let (d, sniffed, _) = bond_to_host(&t, 9320, 4000, u64::from(FLOWS) * PER_FLOW, BASE, FLOWS);
    let owner = owners(&sniffed, BASE, FLOWS);
    for (p, c) in &sniffed.flows {
        let total: u64 = c.iter().sum();
        assert!(
            total >= PER_FLOW * 99 / 100,
            "flow from port {p}: {total} of {PER_FLOW} frames seen on the slaves: {c:?}"
        );
    }
    let per = flows_per_slave(&owner, 2);
    let udp = sniffed.per_iface();
    println!(
        "LAYER3+4: {FLOWS} flows, each on exactly one slave; flows per slave {per:?}; UDP frames per slave {udp:?}; all frames {d:?}"
    );
    for (i, &n) in per.iter().enumerate() {
        assert!(
            n * 4 >= usize::from(FLOWS),
            "layer3+4: s{i} carries only {n} of {FLOWS} flows (< 25 %): {per:?}"
        );
    }
    stop_clean(bondd);
}

// ---------------------------------------------------------------------------
// 4. broadcast: every frame on every slave

#[test]
fn broadcast_every_frame_on_every_slave() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let cfg = BondConfig::balancing(&t, "broadcast");
    let bondd = start(&t, &cfg);
    ping_both(&t);
    const N: u64 = 2000;
    let (d, sniffed, rep) = bond_to_host(&t, 9330, 2000, N, 0, 1);
    let udp = sniffed.per_iface();
    println!(
        "BROADCAST: {N} datagrams; UDP frames per slave {udp:?}, all frames {d:?}; H received {} distinct, {} duplicates",
        rep.received(),
        rep.duplicates()
    );
    for i in 0..2 {
        assert!(
            udp[i] >= N && d[i] >= N,
            "broadcast: s{i} sent {} UDP frames ({} in all) for {N} datagrams",
            udp[i],
            d[i]
        );
    }
    assert!(
        rep.duplicates() * 10 >= N * 9,
        "broadcast: H got both copies of only {} of {N} datagrams: {}",
        rep.duplicates(),
        rep.line
    );
    stop_clean(bondd);
}

// ---------------------------------------------------------------------------
// 5. balance-xor failover: stable table vs the kernel's modulo

/// Flows of the failover tests, from bond0's source ports BASE.. to H.
const XF_FLOWS: u16 = 48;
const XF_BASE: u16 = 42000;
/// Their destination port: the same in every phase, since layer3+4 hashes it.
const XF_PORT: u16 = 9340;

/// Three slaves (with two, `hash % 2` and the stable table both keep every
/// surviving flow in place, so they could not be told apart). Flows run
/// from bond0 to H; p1 goes down mid-stream and comes back.
/// Returns (flows on survivors that moved during the failure, flows that
/// were on s0 or s2 before and are elsewhere after p1 returned).
fn xor_failover(table: &str) -> (usize, usize) {
    let t = Topology::build(TopologyOpts {
        extra_slaves: 1,
        ..TopologyOpts::default()
    });
    let mut cfg = BondConfig::balancing(&t, "balance-xor");
    cfg.extra.push("xmit_hash_policy: layer3+4".into());
    cfg.extra.push(format!("xmit_hash_table: {table}"));
    let bondd = start(&t, &cfg);
    ping_both(&t);
    let slaves = t.all_slaves();
    let ports = t.all_ports();

    // Before: which slave carries each flow.
    let (_, sn, _) = bond_to_host(
        &t,
        XF_PORT,
        4000,
        u64::from(XF_FLOWS) * 40,
        XF_BASE,
        XF_FLOWS,
    );
    let before = owners(&sn, XF_BASE, XF_FLOWS);
    let per_before = flows_per_slave(&before, 3);
    println!("[{table}] flows per slave before: {per_before:?}");
    assert!(
        per_before.iter().all(|&n| n > 0),
        "[{table}] a slave carries no flow before the failure: {per_before:?}"
    );

    // Under load: p1 goes down 1 s into a 3 s stream.
    const PPS: u64 = 4000;
    const COUNT: u64 = 3 * PPS;
    let bind = sockaddr(HOST_V4, XF_PORT);
    let rx = UdpReceiver::start(&t.h, &bind, COUNT, PPS, Duration::from_secs(10));
    let tx = UdpSender::start_flows(&t.b, &bind, PPS, COUNT, XF_BASE, XF_FLOWS);
    thread::sleep(Duration::from_secs(1));
    t.sw.link_down(&t.n.p1);
    let down_at = Instant::now();
    let line = wait_tx_set(&bondd, &[slaves[0], slaves[2]], Duration::from_secs(3));
    println!("[{table}] p1 down; {:?} later: {line}", down_at.elapsed());
    // Per-flow slaves during the failure, from a moment after it on.
    thread::sleep(Duration::from_millis(200));
    let sniff = Sniffer::start(&t.sw, &ports, XF_PORT);
    let sent = tx.finish();
    let rep = rx.finish();
    let during = sniff.stop(SETTLE);
    println!("[{table}] under load: sender {sent}; receiver {}", rep.line);
    // The failed slave's flows interleave with the others' in the sequence,
    // so its outage is the span from the first to the last lost datagram.
    println!(
        "[{table}] LOSS WINDOW {:.1} ms (first to last lost datagram), longest run {:.1} ms, max arrival gap {:.1} ms; lost {} of {COUNT}",
        rep.loss_span_ms(),
        rep.loss_window_ms(),
        rep.max_gap_ms(),
        rep.lost()
    );
    assert!(
        rep.loss_span_ms() <= 500.0,
        "[{table}] loss window {:.1} ms > 500 ms: {}",
        rep.loss_span_ms(),
        rep.line
    );
    assert!(
        rep.received() * 100 >= COUNT * 99,
        "[{table}] only {} of {COUNT} datagrams arrived across the failover: {}",
        rep.received(),
        rep.line
    );
    let mid = owners(&during, XF_BASE, XF_FLOWS);
    let per_mid = flows_per_slave(&mid, 3);
    println!("[{table}] flows per slave during the failure: {per_mid:?}");
    assert_eq!(per_mid[1], 0, "[{table}] flows on s1 while p1 is down");
    for (p, c) in &during.flows {
        assert!(
            c[0] + c[2] > 0,
            "[{table}] flow {p} stopped during the failure: {c:?}"
        );
    }
    let moved_mid: Vec<u16> = before
        .iter()
        .filter(|&(p, &s)| s != 1 && mid[p] != s)
        .map(|(&p, _)| p)
        .collect();
    println!(
        "[{table}] SURVIVOR FLOWS MOVED during the failure: {} of {} ({moved_mid:?})",
        moved_mid.len(),
        per_before[0] + per_before[2]
    );

    // p1 comes back (updelay 0).
    t.sw.link_up(&t.n.p1);
    let line = wait_tx_set(&bondd, &slaves, Duration::from_secs(3));
    println!("[{table}] p1 up: {line}");
    thread::sleep(Duration::from_millis(200));
    let (_, sn, _) = bond_to_host(
        &t,
        XF_PORT,
        4000,
        u64::from(XF_FLOWS) * 40,
        XF_BASE,
        XF_FLOWS,
    );
    let after = owners(&sn, XF_BASE, XF_FLOWS);
    let per_after = flows_per_slave(&after, 3);
    let moved_after: Vec<u16> = before
        .iter()
        .filter(|&(p, &s)| s != 1 && after[p] != s)
        .map(|(&p, _)| p)
        .collect();
    let s1_back = before
        .iter()
        .filter(|&(p, &s)| s == 1 && after[p] == 1)
        .count();
    println!(
        "[{table}] flows per slave after p1 returned: {per_after:?}; s1 took back {s1_back} of its {} flows; \
         flows of s0/s2 elsewhere than before: {} ({moved_after:?})",
        per_before[1],
        moved_after.len()
    );
    assert!(
        per_after[1] > 0,
        "[{table}] s1 carries no flow after it came back: {per_after:?}"
    );
    stop_clean(bondd);
    (moved_mid.len(), moved_after.len())
}

#[test]
fn xor_failover_moves_only_failed_slave_flows() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let (moved_mid, moved_after) = xor_failover("stable");
    assert_eq!(
        moved_mid, 0,
        "xmit_hash_table: stable moved {moved_mid} flows between surviving slaves"
    );
    assert_eq!(
        moved_after, 0,
        "xmit_hash_table: stable: {moved_after} flows of s0/s2 are elsewhere after s1 returned"
    );
}

#[test]
fn xor_failover_modulo_kernel_contrast() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let (moved_mid, moved_after) = xor_failover("modulo");
    // The kernel's `hash % count`: going from 3 to 2 usable slaves remaps
    // flows of the survivors too (deterministic for these fixed flows).
    assert!(
        moved_mid > 0,
        "xmit_hash_table: modulo moved no survivor flow: not the kernel's hash % count"
    );
    // Back to 3 slaves: hash % 3 again, every flow where it started.
    assert_eq!(
        moved_after, 0,
        "xmit_hash_table: modulo: {moved_after} flows elsewhere after all slaves returned"
    );
}

// ---------------------------------------------------------------------------
// 6. balance-rr failover under load

#[test]
fn rr_failover_under_load() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let cfg = BondConfig::balancing(&t, "balance-rr");
    let bondd = start(&t, &cfg);
    ping_both(&t);

    const PPS: u64 = 4000;
    const COUNT: u64 = 3 * PPS;
    let before = t.all_port_counters();
    let rx_h = UdpReceiver::start(
        &t.h,
        &sockaddr(HOST_V4, 9400),
        COUNT,
        PPS,
        Duration::from_secs(10),
    );
    let rx_b = UdpReceiver::start(
        &t.b,
        &sockaddr(BOND_V4, 9401),
        COUNT,
        PPS,
        Duration::from_secs(10),
    );
    let tx_b = UdpSender::start(&t.b, &sockaddr(HOST_V4, 9400), PPS, COUNT);
    let tx_h = UdpSender::start(&t.h, &sockaddr(BOND_V4, 9401), PPS, COUNT);
    thread::sleep(Duration::from_secs(1));
    let mid = t.all_port_counters();
    t.sw.link_down(&t.n.p0);
    let down_at = Instant::now();
    let line = wait_tx_set(&bondd, &[&t.n.s1], Duration::from_secs(3));
    println!("p0 down; {:?} later: {line}", down_at.elapsed());
    let sent_b = tx_b.finish();
    let sent_h = tx_h.finish();
    let rep_h = rx_h.finish();
    let rep_b = rx_b.finish();
    let after = t.all_port_counters();
    let d_before = deltas(&mid, &before);
    let d_after = deltas(&after, &mid);
    println!("bond0 -> H: sender {sent_b}; receiver {}", rep_h.line);
    println!("H -> bond0: sender {sent_h}; receiver {}", rep_b.line);
    // balance-rr interleaves the slaves, so the loss window is the span from
    // the first to the last lost datagram, not the longest run.
    println!(
        "LOSS WINDOW bond0 -> H: {:.1} ms (first to last lost; longest run {:.1} ms, max arrival gap {:.1} ms); \
         H -> bond0: {:.1} ms (longest run {:.1} ms, max arrival gap {:.1} ms)",
        rep_h.loss_span_ms(),
        rep_h.loss_window_ms(),
        rep_h.max_gap_ms(),
        rep_b.loss_span_ms(),
        rep_b.loss_window_ms(),
        rep_b.max_gap_ms()
    );
    println!("before p0 down: p0 {:?} p1 {:?}", d_before[0], d_before[1]);
    println!("after p0 down:  p0 {:?} p1 {:?}", d_after[0], d_after[1]);
    // Before: both slaves sent about half of the first second.
    for (i, d) in d_before.iter().enumerate() {
        assert!(
            d.rx >= PPS / 4,
            "s{i} sent only {} frames in the first second (rr over 2 slaves)",
            d.rx
        );
    }
    // After: traffic continues on s1, both ways.
    assert!(
        d_after[1].rx >= PPS,
        "s1 sent only {} frames after p0 went down",
        d_after[1].rx
    );
    assert!(
        d_after[1].tx >= PPS,
        "s1 got only {} frames after p0 went down",
        d_after[1].tx
    );
    for (dir, r) in [("bond0 -> H", &rep_h), ("H -> bond0", &rep_b)] {
        assert_eq!(r.duplicates(), 0, "{dir}: duplicates: {}", r.line);
        assert!(
            r.loss_span_ms() <= 500.0,
            "{dir}: loss window {:.1} ms > 500 ms: {}",
            r.loss_span_ms(),
            r.line
        );
        assert!(
            r.received() + PPS / 2 >= COUNT,
            "{dir}: only {} of {COUNT} arrived: {}",
            r.received(),
            r.line
        );
    }

    // p0 returns (updelay 0): both slaves transmit again.
    t.sw.link_up(&t.n.p0);
    let line = wait_tx_set(&bondd, &t.all_slaves(), Duration::from_secs(3));
    println!("p0 up: {line}");
    const N: u64 = 2000;
    let (d, _, _) = bond_to_host(&t, 9402, 2000, N, 0, 1);
    println!(
        "after p0 returned: s0 sent {}, s1 sent {} for {N} datagrams",
        d[0], d[1]
    );
    for (i, &f) in d.iter().enumerate() {
        assert!(
            f.abs_diff(N / 2) <= N / 50 + NOISE,
            "after p0 returned: s{i} sent {f} frames of {N}: {d:?}"
        );
    }
    let r = udp_stream(&t.h, &t.b, BOND_V4, 9403, 2000, N);
    assert!(
        r.received() * 100 >= N * 99,
        "H -> bond0 after p0 returned: {} of {N}: {}",
        r.received(),
        r.line
    );
    stop_clean(bondd);
}

// ---------------------------------------------------------------------------
// 7. receive rule: every slave delivers to bond0

/// Pins the bond MAC in the bridge to each bond port in turn (learning off,
/// static entry) and streams H -> bond0: the frames arrive on that slave
/// only and ≥ 99 % reach bond0.
fn rx_on_each_slave(mode: &str, extra: &[&str]) {
    let t = Topology::new();
    let mut cfg = BondConfig::balancing(&t, mode);
    cfg.extra.extend(extra.iter().map(|s| (*s).to_owned()));
    let bondd = start(&t, &cfg);
    ping_both(&t);
    let mac = t.b.link_state("bond0").mac;
    let sw = t.sw.name();
    let ports = t.all_ports();
    for p in &ports {
        run_ok(&[
            "bridge", "-n", sw, "link", "set", "dev", p, "learning", "off",
        ]);
    }
    const N: u64 = 2000;
    for (i, p) in ports.iter().enumerate() {
        run_ok(&[
            "bridge", "-n", sw, "fdb", "replace", &mac, "dev", p, "master", "static",
        ]);
        let before = t.all_port_counters();
        let r = udp_stream(&t.h, &t.b, BOND_V4, 9500 + i as u16, 2000, N);
        let d = deltas(&t.all_port_counters(), &before);
        let got: Vec<u64> = d.iter().map(|c| c.tx).collect();
        println!(
            "{mode}: bond MAC pinned to p{i}: frames towards the slaves {got:?}; bond0 received {} of {N}",
            r.received()
        );
        assert!(
            got[i] >= N,
            "{mode}: only {} frames went to s{i} (pinned)",
            got[i]
        );
        for (j, &g) in got.iter().enumerate() {
            assert!(
                j == i || g < NOISE,
                "{mode}: {g} frames went to s{j} while the MAC is pinned to p{i}"
            );
        }
        assert!(
            r.received() * 100 >= N * 99,
            "{mode}: frames arriving on s{i} do not reach bond0: {} of {N}: {}",
            r.received(),
            r.line
        );
    }
    stop_clean(bondd);
}

#[test]
fn rx_every_slave_delivers_balance_rr() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    rx_on_each_slave("balance-rr", &[]);
}

#[test]
fn rx_every_slave_delivers_balance_xor() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    rx_on_each_slave("balance-xor", &["xmit_hash_policy: layer3+4"]);
}

#[test]
fn rx_every_slave_delivers_broadcast() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    rx_on_each_slave("broadcast", &[]);
}
