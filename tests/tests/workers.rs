//! Several data-plane workers (`workers`, `worker_cpus`) end to end: with
//! two-queue slaves, each worker owns one queue of every slave and one queue
//! of the logical veth, runs pinned to its CPU, and no datagram is lost in
//! either direction.
//!
//! Needs root and a built bondd (`cargo build --workspace --bins`).

use bondd_tests::*;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const N: u64 = 4000;
const PPS: u64 = 4000;
const FLOWS: u16 = 32;

/// CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status).
fn allowed_cpus() -> Vec<u32> {
    let st = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let list = st
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string();
    let mut out = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// (thread name, Cpus_allowed_list) of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let p = e.expect("entry").path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let st = std::fs::read_to_string(p.join("status")).unwrap_or_default();
        let cpus = st
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_string();
        out.push((comm.trim().to_string(), cpus));
    }
    out
}

/// `rx_queue_<q>_xdp_redirect` of each of the first `queues` queues.
fn redirects(ns: &Netns, dev: &str, queues: u32) -> Vec<u64> {
    let text = ns.exec_ok(&["ethtool", "-S", dev]);
    (0..queues)
        .map(|q| {
            let key = format!("rx_queue_{q}_xdp_redirect:");
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key.as_str()))
                .map(|v| v.trim().parse().expect("counter"))
                .unwrap_or_else(|| panic!("no {key} in ethtool -S {dev}:\n{text}"))
        })
        .collect()
}

#[test]
fn two_workers_own_a_queue_each_run_pinned_and_lose_nothing() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let cpus = allowed_cpus();
    let t = Topology::build(TopologyOpts {
        queues: 2,
        ..Default::default()
    });
    let mut cfg = BondConfig::active_backup(&t);
    cfg.extra.push("workers: 2".into());
    // Pinned in reverse order, so the test sees the config, not a default.
    let pins: Vec<u32> = if cpus.len() >= 2 {
        vec![cpus[1], cpus[0]]
    } else {
        println!("only CPU {cpus:?} available: workers run unpinned in this test");
        Vec::new()
    };
    if !pins.is_empty() {
        cfg.extra
            .push(format!("worker_cpus: [{}, {}]", pins[0], pins[1]));
    }
    let yaml = cfg.to_yaml();
    println!("config:\n{yaml}");
    let mut bondd = Bondd::start(&t.b, &yaml);
    let took = bondd.wait_ready(READY_TIMEOUT);
    println!("bondd ready after {took:?}");

    // One thread per worker, each on its own CPU.
    let th = threads(bondd.pid());
    println!("threads: {th:?}");
    for w in 0..2 {
        let name = format!("bondd-bond0/{w}");
        let (_, allowed) = th
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no worker thread {name}: {th:?}"));
        if let Some(cpu) = pins.get(w) {
            assert_eq!(allowed, &cpu.to_string(), "worker {w} CPUs");
        }
    }
    // The logical veth got one queue per worker.
    let queues = t.b.exec_ok(&["ls", "/sys/class/net/bond0-dp/queues"]);
    assert!(
        queues.contains("rx-0") && queues.contains("rx-1"),
        "bond0-dp queues: {queues}"
    );

    for (from, to, dst) in [(&t.b, "H", HOST_V4), (&t.h, "bond0", BOND_V4)] {
        let got = from.ping(dst, 5, Duration::from_secs(8));
        assert!(got >= 4, "ping {to} at {dst}: {got}/5 answered");
    }

    // H -> bond0, many flows: every datagram arrives, both queues of the
    // active slave carried some (so both workers forwarded).
    let s0_before = redirects(&t.b, &t.n.s0, 2);
    let bind = sockaddr(BOND_V4, 9400);
    let rx = UdpReceiver::start(&t.b, &bind, N, PPS, Duration::from_secs(N / PPS + 5));
    let tx = UdpSender::start_flows(&t.h, &bind, PPS, N, 20000, FLOWS);
    println!("H -> bond0: sender {}", tx.finish());
    let rep = rx.finish();
    let s0_after = redirects(&t.b, &t.n.s0, 2);
    let per_q: Vec<u64> = s0_after
        .iter()
        .zip(&s0_before)
        .map(|(a, b)| a - b)
        .collect();
    println!(
        "H -> bond0: {} of {N} received; frames per queue of {}: {per_q:?}",
        rep.received(),
        t.n.s0
    );
    assert_eq!(rep.received(), N, "H -> bond0: {}", rep.line);
    assert!(
        per_q.iter().all(|&n| n > 0),
        "every queue (worker) should carry some flows: {per_q:?}"
    );

    // bond0 -> H: the host spreads its flows over bond0's two queues, so
    // both workers transmit.
    let dp_before = redirects(&t.b, "bond0-dp", 2);
    let bind = sockaddr(HOST_V4, 9401);
    let rx = UdpReceiver::start(&t.h, &bind, N, PPS, Duration::from_secs(N / PPS + 5));
    let tx = UdpSender::start_flows(&t.b, &bind, PPS, N, 21000, FLOWS);
    println!("bond0 -> H: sender {}", tx.finish());
    let rep = rx.finish();
    let dp_after = redirects(&t.b, "bond0-dp", 2);
    let per_q: Vec<u64> = dp_after
        .iter()
        .zip(&dp_before)
        .map(|(a, b)| a - b)
        .collect();
    println!(
        "bond0 -> H: {} of {N} received; frames per queue of bond0-dp: {per_q:?}",
        rep.received()
    );
    assert_eq!(rep.received(), N, "bond0 -> H: {}", rep.line);
    assert!(
        per_q.iter().all(|&n| n > 0),
        "every logical queue (worker) should carry some flows: {per_q:?}"
    );

    let st = bondd.sigterm_and_wait();
    assert_eq!(st.code(), Some(0), "exit: log:\n{}", bondd.log());
    let log = bondd.log();
    for w in 0..2 {
        assert!(
            log.contains(&format!("worker={w} frames="))
                && log.contains("frame accounting balanced"),
            "worker {w}: no balanced frame accounting at exit; log:\n{log}"
        );
    }
}

#[test]
fn more_workers_than_slave_queues_is_refused_before_anything_changes() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let mut cfg = BondConfig::active_backup(&t);
    cfg.extra.push("workers: 2".into());
    let dir = TempDir::new();
    let path = dir.write("bond.yaml", &cfg.to_yaml());
    let mac_before =
        t.b.exec_ok(&["cat", &format!("/sys/class/net/{}/address", t.n.s0)]);
    let out = t.b.exec(&[
        bondd_bin().to_str().unwrap(),
        "--config",
        path.to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
        "--metrics",
        "off",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    println!("bondd: exit {:?}\n{err}", out.status.code());
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("key \"workers\": 2 workers need 2 queues on every slave")
            && err.contains(&format!("{} has 1", t.n.s0)),
        "error should name the key, the slave and its queues: {err}"
    );
    assert!(
        !t.b.link_exists("bond0"),
        "bond0 must not have been created"
    );
    assert!(!t.b.has_xdp(&t.n.s0), "no XDP may be attached");
    let mac_after =
        t.b.exec_ok(&["cat", &format!("/sys/class/net/{}/address", t.n.s0)]);
    assert_eq!(mac_before, mac_after, "slave MAC must be untouched");
}

#[test]
fn generic_xdp_and_busy_poll_forward_every_datagram() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let mut cfg = BondConfig::active_backup(&t);
    cfg.extra.push("xdp_mode: generic".into());
    cfg.extra.push("busy_poll: true".into());
    let napi = |s: &str| {
        let r = |f: &str| {
            t.b.exec_ok(&["cat", &format!("/sys/class/net/{s}/{f}")])
                .trim()
                .to_string()
        };
        (r("napi_defer_hard_irqs"), r("gro_flush_timeout"))
    };
    let before = napi(&t.n.s0);
    let yaml = cfg.to_yaml();
    println!("config:\n{yaml}");
    let mut bondd = Bondd::start(&t.b, &yaml);
    bondd.wait_ready(READY_TIMEOUT);
    // Preferred busy polling: the kernel's documented NAPI settings.
    assert_eq!(
        napi(&t.n.s0),
        ("2".into(), "200000".into()),
        "busy_poll NAPI settings"
    );
    for s in t.slaves() {
        let d = t.b.link_details(s);
        assert!(
            d.contains("xdpgeneric"),
            "{s} should run XDP in generic mode: {d}"
        );
    }
    let attached = bondd.log_lines_with(&["slave attached"]);
    assert!(
        attached.len() == 2 && attached.iter().all(|l| l.contains("xdp=generic")),
        "attach lines: {attached:?}"
    );
    assert!(
        bondd.log().contains("busy_poll=true"),
        "busy polling not reported; log:\n{}",
        bondd.log()
    );
    for (from, to, dst) in [(&t.b, "H", HOST_V4), (&t.h, "bond0", BOND_V4)] {
        let got = from.ping(dst, 5, Duration::from_secs(8));
        assert!(got >= 4, "ping {to} at {dst}: {got}/5 answered");
    }
    for (rx_ns, tx_ns, dst, port) in [(&t.b, &t.h, BOND_V4, 9410), (&t.h, &t.b, HOST_V4, 9411)] {
        let bind = sockaddr(dst, port);
        let rx = UdpReceiver::start(rx_ns, &bind, N, PPS, Duration::from_secs(N / PPS + 5));
        let tx = UdpSender::start_flows(tx_ns, &bind, PPS, N, 22000, FLOWS);
        tx.finish();
        let rep = rx.finish();
        println!("to {bind}: {}", rep.line);
        assert_eq!(rep.received(), N, "to {bind}: {}", rep.line);
    }
    let st = bondd.sigterm_and_wait();
    assert_eq!(st.code(), Some(0), "exit; log:\n{}", bondd.log());
    assert!(
        !t.b.has_xdp(&t.n.s0) && !t.b.has_xdp(&t.n.s1),
        "XDP must be detached at exit"
    );
    assert_eq!(napi(&t.n.s0), before, "NAPI settings restored at exit");
}
