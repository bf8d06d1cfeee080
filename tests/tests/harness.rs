//! Proves the harness without bondd: topology up, traffic through the bridge,
//! everything removed afterwards.

use bondd_tests::*;
use std::time::Duration;

#[test]
fn harness_self_test() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let prefix = name_prefix();
    let names;
    {
        let t = Topology::new();
        names = t.n.clone();
        // No bondd: put the bond's address straight on s0.
        t.b.add_addr(&t.n.s0, &format!("{BOND_V4}/24"));
        t.b.tx_csum_off(&t.n.s0);
        let before = t.port_counters();

        let got = t.b.ping(HOST_V4, 5, Duration::from_secs(5));
        println!("B -> H ping: {got}/5");
        assert!(got >= 4, "B -> H ping: {got}/5");
        let got = t.h.ping(BOND_V4, 5, Duration::from_secs(5));
        println!("H -> B ping: {got}/5");
        assert!(got >= 4, "H -> B ping: {got}/5");

        let r = udp_stream(&t.b, &t.h, HOST_V4, 9000, 2000, 2000);
        assert!(r.received() >= 1980, "B -> H: {}", r.line);
        let r = udp_stream(&t.h, &t.b, BOND_V4, 9001, 2000, 2000);
        assert!(r.received() >= 1980, "H -> B: {}", r.line);
        assert_eq!(r.duplicates(), 0);

        let d = t.port_counters();
        let (d0, d1) = (d[0].since(before[0]), d[1].since(before[1]));
        println!("p0 {d0:?} p1 {d1:?}");
        assert!(d0.rx >= 2000, "s0 sent {} frames", d0.rx);
        assert!(d1.rx < 5, "s1 sent {} frames (IPv6 chatter?)", d1.rx);
        // Unknown unicast is not flooded to p1: it saw none of H's stream.
        assert!(d1.tx < 20, "p1 got {} frames of the stream", d1.tx);

        // Setting a port down flushes what the bridge learned on it.
        let mac = t.b.link_state(&t.n.s0).mac;
        assert_eq!(
            t.sw.fdb_port_of(&t.n.br0, &mac).as_deref(),
            Some(t.n.p0.as_str())
        );
        t.sw.link_down(&t.n.p0);
        assert_eq!(t.sw.fdb_port_of(&t.n.br0, &mac), None);
        t.sw.link_up(&t.n.p0);
        assert!(t.b.has_xdp(&t.n.s0).eq(&false));
    }
    let left: Vec<String> = list_netns();
    let ours: Vec<&String> = left.iter().filter(|n| n.starts_with(&prefix)).collect();
    assert!(ours.is_empty(), "namespaces left behind: {ours:?}");
    let foreign: Vec<&String> = left.iter().filter(|n| n.starts_with("bdt")).collect();
    assert!(
        foreign.is_empty(),
        "bdt* namespaces of other processes exist (a concurrent run?): {foreign:?}"
    );
    // Our links never existed in the root namespace.
    let root = run_ok(&["ip", "-o", "link", "show"]);
    for n in [&names.s0, &names.p0, &names.h0, &names.hp0, &names.br0] {
        assert!(
            !root.contains(n.as_str()),
            "{n} visible in the root namespace"
        );
    }
}
