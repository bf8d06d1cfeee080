use super::*;

const LIMITS: Limits = Limits { max_mtu: 3498 };

fn ok(text: &str) -> Config {
    match parse(text, "bond.yaml", &LIMITS) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn one(text: &str) -> BondConfig {
    let mut c = ok(text);
    assert_eq!(c.bonds.len(), 1);
    c.bonds.remove(0)
}

fn errs(text: &str) -> Vec<ConfigError> {
    match parse(text, "bond.yaml", &LIMITS) {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(e) => e.0,
    }
}

/// A bond with the given extra lines (indented under the list item).
fn bond(extra: &str) -> String {
    let mut s = String::from("bonds:\n  - name: bond0\n    slaves: [eth0, eth1]\n");
    for line in extra.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Asserts exactly one error, for bond0 and `key`, whose reason contains
/// every fragment.
fn one_err(text: &str, key: &str, fragments: &[&str]) -> ConfigError {
    let e = errs(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    let e = e.into_iter().next().unwrap();
    assert_eq!(e.file, "bond.yaml");
    assert_eq!(e.bond.as_deref(), Some("bond0"), "{e}");
    assert_eq!(e.key.as_deref(), Some(key), "{e}");
    for f in fragments {
        assert!(e.reason.contains(f), "`{f}` not in: {e}");
    }
    e
}

#[test]
fn minimal_bond_has_kernel_defaults() {
    let b = one(&bond(""));
    let d = BondConfig::new("bond0", vec!["eth0".into(), "eth1".into()]);
    assert_eq!(
        b,
        BondConfig {
            explicit: b.explicit.clone(),
            ..d
        }
    );
    assert_eq!(b.mode, Mode::BalanceRr);
    assert_eq!(b.interface, InterfaceKind::Veth);
    assert_eq!(b.mtu, 1500);
    assert_eq!(b.miimon, 0);
    assert_eq!(b.arp_missed_max, 2);
    assert_eq!(b.num_grat_arp, 1);
    assert_eq!(b.resend_igmp, 1);
    assert_eq!(b.packets_per_slave, 1);
    assert_eq!(b.ad_actor_sys_prio, 65535);
    assert!(b.lacp_active && b.coupled_control && b.tlb_dynamic_lb && b.use_carrier);
    assert_eq!(b.lp_interval, 1);
    assert!(b.explicitly_set("name") && b.explicitly_set("slaves"));
    assert!(!b.explicitly_set("miimon") && !b.explicitly_set("mode"));
}

#[test]
fn full_active_backup_bond() {
    let b = one(&bond(
        "mode: active-backup\nmiimon: 100\nupdelay: 200\ndowndelay: 100\nprimary: eth1\n\
         primary_reselect: better\nfail_over_mac: follow\nnum_grat_arp: 3\ninterface: tap\n\
         mac: 02:AB:cd:00:00:01\nmtu: 3000\naddresses: [192.0.2.10/24, 2001:db8::10/64]\n\
         gateway: [192.0.2.1, fe80::1]\nall_slaves_active: on",
    ));
    assert_eq!(b.mode, Mode::ActiveBackup);
    assert_eq!((b.miimon, b.updelay, b.downdelay), (100, 200, 100));
    assert_eq!(b.primary.as_deref(), Some("eth1"));
    assert_eq!(b.primary_reselect, PrimaryReselect::Better);
    assert_eq!(b.fail_over_mac, FailOverMac::Follow);
    assert_eq!(b.num_grat_arp, 3);
    assert_eq!(b.interface, InterfaceKind::Tap);
    assert_eq!(b.mac, Some([0x02, 0xab, 0xcd, 0, 0, 1]));
    assert_eq!(b.bond_mac(), [0x02, 0xab, 0xcd, 0, 0, 1]);
    assert_eq!(b.mtu, 3000);
    assert_eq!(b.addresses[0].to_string(), "192.0.2.10/24");
    assert_eq!(b.addresses[1].to_string(), "2001:db8::10/64");
    assert_eq!(b.gateways.len(), 2);
    assert!(b.all_slaves_active);
    assert!(b.explicitly_set("primary") && b.explicitly_set("mtu"));
    assert!(
        b.explicitly_set("num_unsol_na"),
        "alias answers for canonical"
    );
}

#[test]
fn lacp_bond_from_yaml_keys() {
    let b = one(&bond(
        "mode: 4\nlacp_rate: fast\nxmit_hash_policy: layer3+4\nad_select: count\n\
         ad_actor_sys_prio: 100\nad_actor_system: 02:00:00:00:00:09\nad_user_port_key: 1023\n\
         min_links: 1\ncoupled_control: off\nlacp_active: false\nmiimon: 50",
    ));
    assert_eq!(b.mode, Mode::Ieee8023ad);
    assert_eq!(b.lacp_rate, LacpRate::Fast);
    assert_eq!(b.xmit_hash_policy, XmitHashPolicy::Layer34);
    assert_eq!(b.ad_select, AdSelect::Count);
    assert_eq!(b.ad_actor_sys_prio, 100);
    assert_eq!(b.ad_actor_system, Some([2, 0, 0, 0, 0, 9]));
    assert_eq!(b.ad_user_port_key, 1023);
    assert_eq!(b.min_links, 1);
    assert!(!b.coupled_control && !b.lacp_active);
    assert_eq!(b.miimon, 50);
}

#[test]
fn enums_accept_numbers_in_yaml_and_options() {
    let b = one(&bond(
        "mode: 2\nxmit_hash_policy: 2\noptions: arp_validate=0",
    ));
    assert_eq!(b.mode, Mode::BalanceXor);
    assert_eq!(b.xmit_hash_policy, XmitHashPolicy::Layer23);
    assert_eq!(b.arp_validate, ArpValidate::None);
    let b = one(&bond("mode: \"1\"\nprimary_reselect: 2\nfail_over_mac: 1"));
    assert_eq!(b.mode, Mode::ActiveBackup);
    assert_eq!(b.primary_reselect, PrimaryReselect::Failure);
    assert_eq!(b.fail_over_mac, FailOverMac::Active);
}

#[test]
fn nmcli_options_string() {
    let b = one(&bond(
        "options: mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4",
    ));
    assert_eq!(b.mode, Mode::Ieee8023ad);
    assert_eq!(b.miimon, 100);
    assert_eq!(b.lacp_rate, LacpRate::Fast);
    assert_eq!(b.xmit_hash_policy, XmitHashPolicy::Layer34);
    assert!(b.explicitly_set("lacp_rate"));
}

#[test]
fn options_string_separators() {
    for opts in [
        "mode=active-backup miimon=100",
        "mode=active-backup,miimon=100",
        " mode=active-backup ,  miimon=100 ,",
        "mode=1\tmiimon=100",
    ] {
        let b = one(&bond(&format!("options: \"{opts}\"")));
        assert_eq!(b.mode, Mode::ActiveBackup, "{opts}");
        assert_eq!(b.miimon, 100, "{opts}");
    }
}

#[test]
fn arp_targets_in_all_forms() {
    let want: Vec<Ipv4Addr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
    for form in [
        "arp_ip_target: [10.0.0.1, 10.0.0.2]",
        "arp_ip_target: 10.0.0.1,10.0.0.2",
        "options: mode=1,arp_interval=1000,arp_ip_target=10.0.0.1,10.0.0.2",
        "options: mode=1 arp_interval=1000 arp_ip_target=10.0.0.1 10.0.0.2",
    ] {
        let text = bond(&format!("mode: 1\narp_interval: 1000\n{form}"));
        let b = one(&text);
        assert_eq!(b.arp_ip_target, want, "{form}");
        assert_eq!(b.arp_interval, 1000);
    }
    let b = one(&bond(
        "mode: 1\narp_interval: 500\nns_ip6_target: [2001:db8::1]",
    ));
    assert_eq!(
        b.ns_ip6_target,
        vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn arp_target_limits() {
    let many: Vec<String> = (1..=17).map(|i| format!("10.0.0.{i}")).collect();
    one_err(
        &bond(&format!(
            "arp_interval: 100\narp_ip_target: [{}]",
            many.join(", ")
        )),
        "arp_ip_target",
        &["at most 16"],
    );
    one_err(
        &bond("arp_interval: 100\narp_ip_target: [255.255.255.255]"),
        "arp_ip_target",
        &["cannot be an ARP target"],
    );
    one_err(
        &bond("arp_interval: 100\narp_ip_target: [10.0.0.1, 10.0.0.1]"),
        "arp_ip_target",
        &["listed twice"],
    );
    one_err(
        &bond("arp_interval: 100"),
        "arp_interval",
        &["at least one"],
    );
}

#[test]
fn error_display_format() {
    let e = one_err(&bond("miimon: fast"), "miimon", &[]);
    assert_eq!(
        e.to_string(),
        "bond.yaml: bond \"bond0\": key \"miimon\": expected a number of milliseconds, got \"fast\""
    );
    let e = ConfigError {
        file: "f.yaml".into(),
        bond: None,
        key: None,
        reason: "bad".into(),
    };
    assert_eq!(e.to_string(), "f.yaml: bad");
    let all = ConfigErrors(vec![e.clone(), e]);
    assert_eq!(all.to_string(), "f.yaml: bad\nf.yaml: bad");
}

#[test]
fn all_errors_are_collected() {
    let e = errs(&bond("miimon: fast\nmode: lacp\nmtu: 10\nbogus: 1"));
    let keys: Vec<_> = e.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(keys, ["miimon", "mode", "mtu", "bogus"], "{e:#?}");
}

#[test]
fn yaml_syntax_and_duplicate_keys() {
    let e = errs("bonds: [\n");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].bond.as_ref(), e[0].key.as_ref()), (None, None));
    assert!(e[0].reason.starts_with("invalid YAML: line"), "{}", e[0]);
    let e = errs(&bond("miimon: 100\nmiimon: 200"));
    assert!(
        e[0].reason.contains("duplicate mapping key: miimon"),
        "{}",
        e[0]
    );
}

#[test]
fn top_level_shape() {
    let e = errs("bond:\n  - name: bond0\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].key.as_deref(), Some("bond"));
    assert!(e[0].reason.contains("did you mean `bonds`?"));
    assert!(e[1].reason.contains("missing `bonds:`"));
    assert!(errs("")[0].reason.contains("empty"));
    assert!(errs("bonds: []")[0].reason.contains("empty"));
    assert!(
        errs("bonds: 3")[0]
            .reason
            .contains("expected a list of bonds, got 3")
    );
    assert!(errs("- a")[0].reason.contains("expected a mapping"));
}

#[test]
fn name_and_slaves_validation() {
    one_err(
        "bonds:\n  - name: bond0\n",
        "slaves",
        &["missing required key `slaves`"],
    );
    one_err(
        "bonds:\n  - name: bond0\n    slaves: []\n",
        "slaves",
        &["at least one slave"],
    );
    one_err(
        &bond("").replace("[eth0, eth1]", "[eth0, eth0]"),
        "slaves",
        &["listed twice"],
    );
    one_err(
        &bond("").replace("[eth0, eth1]", "[eth0, bond0]"),
        "slaves",
        &["slave of itself"],
    );
    one_err(
        &bond("").replace("[eth0, eth1]", "[eth0, \"eth 1\"]"),
        "slaves",
        &["' '"],
    );
    one_err(
        &bond("").replace("[eth0, eth1]", "eth0"),
        "slaves",
        &["expected a list"],
    );

    let e = errs("bonds:\n  - slaves: [eth0]\n");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].bond.as_deref(), Some("bonds[0]"));
    assert_eq!(e[0].key.as_deref(), Some("name"));

    for bad in ["averyveryverylongname", "a/b", "eth0:1", "..", "\"a b\""] {
        let e = errs(&format!("bonds:\n  - name: {bad}\n    slaves: [eth0]\n"));
        assert_eq!(e.len(), 1, "{bad}: {e:#?}");
        assert_eq!(e[0].key.as_deref(), Some("name"));
        assert!(
            e[0].reason.contains("not a valid interface name"),
            "{}",
            e[0]
        );
    }
    assert!(check_ifname("123456789012345").is_ok());
    assert!(check_ifname("1234567890123456").is_err());
    assert!(check_ifname("").is_err());
}

#[test]
fn cross_bond_checks() {
    let e = errs(
        "bonds:\n  - name: bond0\n    slaves: [eth0, eth1]\n  - name: bond1\n    slaves: [eth1, eth2]\n",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].bond.as_deref(), Some("bond1"));
    assert_eq!(e[0].key.as_deref(), Some("slaves"));
    assert!(
        e[0].reason.contains("`eth1`") && e[0].reason.contains("\"bond0\""),
        "{}",
        e[0]
    );

    let e =
        errs("bonds:\n  - name: bond0\n    slaves: [eth0]\n  - name: bond0\n    slaves: [eth1]\n");
    assert!(e[0].reason.contains("same name"), "{e:#?}");
}

#[test]
fn unknown_keys_suggest() {
    one_err(
        &bond("mimon: 100"),
        "mimon",
        &["unknown key", "did you mean `miimon`?"],
    );
    one_err(
        &bond("xmit-hash-policy: layer2"),
        "xmit-hash-policy",
        &["`xmit_hash_policy`"],
    );
    one_err(&bond("MTU: 1500"), "MTU", &["did you mean `mtu`?"]);
    one_err(
        &bond("gateways: 10.0.0.1"),
        "gateways",
        &["did you mean `gateway`?"],
    );
    let e = one_err(&bond("frobnicate: 1"), "frobnicate", &["unknown key"]);
    assert!(!e.reason.contains("did you mean"), "{e}");
    one_err(
        &bond("options: mode=1 miimonn=100"),
        "miimonn",
        &["unknown key (in `options`)", "did you mean `miimon`?"],
    );
    one_err(&bond("options: mtu=9000"), "mtu", &["not a bonding option"]);
    one_err(
        &bond("options: mode=1 miimon"),
        "options",
        &["`miimon` is not of the form key=value"],
    );
}

#[test]
fn value_suggestions() {
    one_err(
        &bond("mode: active_backup"),
        "mode",
        &[
            "expected one of balance-rr/0",
            "got \"active_backup\"",
            "did you mean `active-backup`?",
        ],
    );
    one_err(&bond("mode: 7"), "mode", &["got 7"]);
    one_err(
        &bond("options: lacp_rate=fats mode=4"),
        "lacp_rate",
        &["did you mean `fast`?", "(in `options`)"],
    );
}

#[test]
fn numbers_ranges_and_types() {
    one_err(
        &bond("miimon: -1"),
        "miimon",
        &["-1 is out of range", "0..=2147483647"],
    );
    one_err(&bond("miimon: 1.5"), "miimon", &["got 1.5"]);
    one_err(&bond("miimon: on"), "miimon", &["got true"]);
    one_err(&bond("arp_missed_max: 0"), "arp_missed_max", &["1..=255"]);
    one_err(
        &bond("peer_notif_delay: 300001"),
        "peer_notif_delay",
        &["0..=300000"],
    );
    one_err(
        &bond("mode: 4\nad_actor_sys_prio: 0"),
        "ad_actor_sys_prio",
        &["1..=65535"],
    );
    one_err(
        &bond("mode: 4\nad_user_port_key: 1024"),
        "ad_user_port_key",
        &["0..=1023"],
    );
    one_err(
        &bond("packets_per_slave: 65536"),
        "packets_per_slave",
        &["0..=65535"],
    );
    one_err(
        &bond("mode: 5\nlp_interval: 0"),
        "lp_interval",
        &["1..=2147483647"],
    );
    one_err(&bond("resend_igmp: 256"), "resend_igmp", &["0..=255"]);
    // Hex and quoted numbers are numbers.
    assert_eq!(one(&bond("miimon: 0x10")).miimon, 16);
    assert_eq!(one(&bond("miimon: \"100\"")).miimon, 100);
    assert_eq!(one(&bond("packets_per_slave: 0")).packets_per_slave, 0);
}

#[test]
fn booleans() {
    for (text, want) in [
        ("on", true),
        ("off", false),
        ("1", true),
        ("0", false),
        ("true", true),
        ("false", false),
        ("\"on\"", true),
        ("\"0\"", false),
    ] {
        assert_eq!(
            one(&bond(&format!("all_slaves_active: {text}"))).all_slaves_active,
            want,
            "{text}"
        );
    }
    one_err(
        &bond("all_slaves_active: 2"),
        "all_slaves_active",
        &["expected on/off (or 1/0), got 2"],
    );
    one_err(
        &bond("all_slaves_active: maybe"),
        "all_slaves_active",
        &["got \"maybe\""],
    );
    assert!(!one(&bond("options: mode=5 tlb_dynamic_lb=0")).tlb_dynamic_lb);
}

#[test]
fn conflicts_between_key_and_options() {
    let e = one_err(
        &bond("miimon: 100\noptions: miimon=200"),
        "miimon",
        &["conflicting values"],
    );
    assert!(e.reason.contains("`miimon: 100` (YAML key)"), "{e}");
    assert!(e.reason.contains("`miimon=200` (in `options`)"), "{e}");
    // Same value twice (even spelled differently) is fine.
    let b = one(&bond("mode: active-backup\noptions: mode=1 miimon=100"));
    assert_eq!(b.mode, Mode::ActiveBackup);
    one_err(
        &bond("options: miimon=100 miimon=200"),
        "miimon",
        &["conflicting"],
    );
}

#[test]
fn num_unsol_na_is_an_alias() {
    let b = one(&bond("mode: 1\nnum_unsol_na: 4"));
    assert_eq!(b.num_grat_arp, 4);
    let b = one(&bond("mode: 1\nnum_unsol_na: 4\nnum_grat_arp: 4"));
    assert_eq!(b.num_grat_arp, 4);
    one_err(
        &bond("mode: 1\nnum_grat_arp: 2\noptions: num_unsol_na=3"),
        "num_unsol_na",
        &["`num_grat_arp: 2`", "`num_unsol_na=3`"],
    );
}

#[test]
fn active_slave_is_a_deprecated_primary() {
    let c = ok(&bond("mode: 1\nactive_slave: eth1"));
    assert_eq!(c.bonds[0].primary.as_deref(), Some("eth1"));
    assert!(c.bonds[0].explicitly_set("primary"));
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("deprecated alias of `primary`"),
        "{:?}",
        c.warnings
    );
    assert!(c.warnings[0].starts_with("bond.yaml: bond \"bond0\": key \"active_slave\""));
    one_err(
        &bond("mode: 1\nactive_slave: eth1\nprimary: eth0"),
        "primary",
        &["conflicting"],
    );
    one_err(
        &bond("mode: 1\nactive_slave: eth9"),
        "active_slave",
        &["`eth9` is not one of the bond's slaves"],
    );
}

#[test]
fn primary_must_be_a_slave() {
    one_err(
        &bond("mode: 1\nprimary: eth9"),
        "primary",
        &["`eth9` is not one of the bond's slaves (eth0, eth1)"],
    );
}

#[test]
fn options_unsupported_in_mode() {
    let e = one_err(&bond("primary: eth0"), "primary", &[]);
    assert_eq!(
        e.reason,
        "option `primary` is not supported in mode balance-rr (kernel: modes active-backup, balance-tlb, balance-alb)"
    );
    one_err(
        &bond("mode: 1\nxmit_hash_policy: layer2"),
        "xmit_hash_policy",
        &["mode active-backup"],
    );
    one_err(
        &bond("mode: 2\nlacp_rate: fast"),
        "lacp_rate",
        &["(kernel: mode 802.3ad)"],
    );
    one_err(
        &bond("mode: 1\npackets_per_slave: 3"),
        "packets_per_slave",
        &["mode balance-rr"],
    );
    let e = errs(&bond("mode: 4\narp_interval: 100\narp_ip_target: 10.0.0.1"));
    let keys: Vec<_> = e.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(keys, ["arp_interval", "arp_ip_target"]);
    assert!(e[0].reason.contains("not supported in mode 802.3ad (kernel: modes balance-rr, active-backup, balance-xor, broadcast)"));
    one_err(
        &bond("mode: 1\ntlb_dynamic_lb: off"),
        "tlb_dynamic_lb",
        &["balance-tlb, balance-alb"],
    );
    one_err(
        &bond("mode: 0\nfail_over_mac: active"),
        "fail_over_mac",
        &["mode active-backup"],
    );
    one_err(&bond("mode: 2\nmin_links: 1"), "min_links", &["802.3ad"]);
    one_err(
        &bond("mode: 4\nnum_grat_arp: 2"),
        "num_grat_arp",
        &["broadcast_neighbor"],
    );
    let b = one(&bond("mode: 4\nnum_grat_arp: 2\nbroadcast_neighbor: on"));
    assert_eq!(b.num_grat_arp, 2);
    assert!(b.broadcast_neighbor);
    // Given in options the same check applies.
    one_err(
        &bond("options: mode=0 primary=eth0"),
        "primary",
        &["balance-rr"],
    );
    // An invalid mode does not cascade into mode-support errors.
    one_err(&bond("mode: nope\nprimary: eth0"), "mode", &[]);
}

#[test]
fn miimon_and_arp_are_exclusive() {
    one_err(
        &bond("mode: 1\nmiimon: 100\narp_interval: 100\narp_ip_target: 10.0.0.1"),
        "arp_interval",
        &["mutually exclusive"],
    );
}

#[test]
fn kernel_normalisations_warn() {
    for mode in ["802.3ad", "balance-tlb", "balance-alb"] {
        let c = ok(&bond(&format!("mode: {mode}")));
        assert_eq!(c.bonds[0].miimon, 100, "{mode}");
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].contains("miimon set to 100"),
            "{:?}",
            c.warnings
        );
    }
    let c = ok(&bond("mode: active-backup"));
    assert_eq!(c.bonds[0].miimon, 0, "kernel leaves AB without monitor");
    assert!(c.warnings.is_empty());

    let c = ok(&bond(
        "mode: 1\nmiimon: 100\nupdelay: 250\ndowndelay: 199\npeer_notif_delay: 300",
    ));
    let b = &c.bonds[0];
    assert_eq!(
        (b.updelay, b.downdelay, b.peer_notif_delay),
        (200, 100, 300)
    );
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains(
        "key \"updelay\": 250 ms is not a multiple of miimon (100 ms); rounded down to 200 ms"
    ));
}

#[test]
fn other_warnings() {
    let c = ok(&bond("use_carrier: 0"));
    assert!(!c.bonds[0].use_carrier);
    assert!(c.warnings.iter().any(|w| w.contains("obsolete")));
    let c = ok(&bond("arp_ip_target: 10.0.0.1"));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("unused without `arp_interval`"))
    );
}

#[test]
fn mtu_limits() {
    assert_eq!(one(&bond("mtu: 68")).mtu, 68);
    assert_eq!(one(&bond("mtu: 3498")).mtu, 3498);
    let e = one_err(&bond("mtu: 9000"), "mtu", &[]);
    assert_eq!(
        e.reason,
        "MTU 9000 is too large: XDP on the slaves allows at most 3498"
    );
    one_err(&bond("mtu: 67"), "mtu", &["minimum of 68"]);
    let small = Limits { max_mtu: 1400 };
    let e = parse(&bond(""), "bond.yaml", &small).unwrap_err().0;
    assert_eq!(e.len(), 1);
    assert!(
        e[0].reason.contains("default MTU 1500 is too large"),
        "{}",
        e[0]
    );
    assert!(parse(&bond("mtu: 1400"), "bond.yaml", &small).is_ok());
}

#[test]
fn mac_validation() {
    one_err(&bond("mac: 01:00:5e:00:00:01"), "mac", &["multicast"]);
    one_err(&bond("mac: 00:00:00:00:00:00"), "mac", &["all-zero"]);
    one_err(&bond("mac: 02:00:00:00:00"), "mac", &["not a MAC address"]);
    one_err(
        &bond("mac: 02:00:00:00:00:0g"),
        "mac",
        &["not a MAC address"],
    );
    one_err(
        &bond("mode: 4\nad_actor_system: 03:00:00:00:00:01"),
        "ad_actor_system",
        &["multicast"],
    );
    assert_eq!(
        one(&bond("mode: 4\nad_actor_system: 00:00:00:00:00:00")).ad_actor_system,
        None
    );
    assert_eq!(
        parse_mac("AA:bb:CC:dd:EE:ff"),
        Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
    );
    assert_eq!(format_mac(&[0xaa, 0, 1, 2, 3, 0xff]), "aa:00:01:02:03:ff");
}

#[test]
fn derived_mac_is_stable_local_unicast_and_name_only() {
    let a = BondConfig::new("bond0", vec!["eth0".into()]);
    let b = BondConfig::new("bond0", vec!["eth7".into(), "eth8".into()]);
    let c = BondConfig::new("bond1", vec!["eth0".into()]);
    assert_eq!(a.bond_mac(), b.bond_mac(), "slaves must not matter");
    assert_ne!(a.bond_mac(), c.bond_mac());
    for m in [a.bond_mac(), c.bond_mac()] {
        assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast: {m:02x?}");
    }
    // Pinned (FNV-1a 64 of "bond0" = 0x4de326b296c23f24): changing the
    // derivation would silently change every deployed bond's MAC.
    assert_eq!(a.bond_mac(), [0x4e, 0xe3, 0x26, 0xb2, 0x96, 0xc2]);
}

#[test]
fn addresses_and_gateways() {
    one_err(
        &bond("addresses: [192.0.2.1]"),
        "addresses",
        &["no /prefix"],
    );
    one_err(&bond("addresses: [192.0.2.1/33]"), "addresses", &["0..=32"]);
    one_err(
        &bond("addresses: [2001:db8::1/129]"),
        "addresses",
        &["0..=128"],
    );
    one_err(
        &bond("addresses: [banana/24]"),
        "addresses",
        &["not an IPv4 or IPv6"],
    );
    one_err(
        &bond("addresses: [192.0.2.1/24, 192.0.2.1/25]"),
        "addresses",
        &["listed twice"],
    );
    let b = one(&bond("addresses: 192.0.2.1/24\ngateway: 192.0.2.254"));
    assert_eq!(b.gateways, vec!["192.0.2.254".parse::<IpAddr>().unwrap()]);
    one_err(
        &bond("addresses: [192.0.2.1/24]\ngateway: 2001:db8::1"),
        "gateway",
        &["needs an IPv6 address"],
    );
    one_err(
        &bond("addresses: [192.0.2.1/24]\ngateway: [192.0.2.254, 192.0.2.253]"),
        "gateway",
        &["at most one IPv4 gateway"],
    );
    one_err(
        &bond("addresses: [192.0.2.1/24]\ngateway: 192.0.2.254/24"),
        "gateway",
        &["without /prefix"],
    );
}

#[test]
fn interface_kind() {
    assert_eq!(one(&bond("interface: tap")).interface, InterfaceKind::Tap);
    one_err(
        &bond("interface: tun"),
        "interface",
        &["veth/0, tap/1", "did you mean `tap`?"],
    );
}

#[test]
fn options_must_be_a_string() {
    one_err(
        &bond("options: {miimon: 100}"),
        "options",
        &["expected a string"],
    );
}

#[test]
fn xmit_hash_table_is_a_bondd_extension() {
    let b = one(&bond("mode: balance-xor"));
    assert_eq!(b.xmit_hash_table, XmitHashTable::Modulo);
    let b = one(&bond("mode: 2\nxmit_hash_table: stable"));
    assert_eq!(b.xmit_hash_table, XmitHashTable::Stable);
    assert!(b.explicitly_set("xmit_hash_table"));
    let b = one(&bond("options: mode=802.3ad xmit_hash_table=1"));
    assert_eq!(b.xmit_hash_table, XmitHashTable::Stable);
    let e = one_err(
        &bond("mode: 1\nxmit_hash_table: stable"),
        "xmit_hash_table",
        &[],
    );
    assert_eq!(
        e.reason,
        "option `xmit_hash_table` is not supported in mode active-backup (bondd: modes balance-xor, 802.3ad)"
    );
    one_err(
        &bond("mode: 2\nxmit_hash_table: consistent"),
        "xmit_hash_table",
        &["expected one of modulo/0, stable/1", "consistent"],
    );
    one_err(
        &bond("mode: 2\nxmit_hash_table: Stable"),
        "xmit_hash_table",
        &["did you mean `stable`?"],
    );
}

#[test]
fn lacp_fallback_ab_is_a_bondd_extension() {
    assert!(!one(&bond("mode: 4")).lacp_fallback_ab);
    let b = one(&bond("mode: 4\nlacp_fallback_ab: on"));
    assert!(b.lacp_fallback_ab);
    assert!(b.explicitly_set("lacp_fallback_ab"));
    assert!(one(&bond("options: mode=802.3ad lacp_fallback_ab=1")).lacp_fallback_ab);
    let e = errs(&bond("mode: 1\nlacp_fallback_ab: on"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].to_string().contains("(bondd: mode 802.3ad)"),
        "{}",
        e[0]
    );
}

#[test]
fn data_plane_keys_are_bondd_extensions_with_checked_values() {
    let b = one(&bond("mode: 1"));
    assert_eq!(
        (b.workers, b.worker_cpus.clone(), b.busy_poll, b.xdp_mode),
        (1, vec![], false, XdpMode::Auto)
    );
    let b = one(&bond(
        "workers: 2\nworker_cpus: [1, 3]\nbusy_poll: true\nxdp_mode: generic",
    ));
    assert_eq!(
        (b.workers, b.worker_cpus.clone(), b.busy_poll, b.xdp_mode),
        (2, vec![1, 3], true, XdpMode::Generic)
    );
    assert!(b.explicitly_set("workers") && b.explicitly_set("busy_poll"));
    one_err(
        &bond("workers: 0"),
        "workers",
        &["0 is out of range (1..=64)"],
    );
    one_err(
        &bond("workers: two"),
        "workers",
        &["expected a number of worker threads"],
    );
    one_err(
        &bond("workers: 2\nworker_cpus: [1]"),
        "worker_cpus",
        &["lists 1 CPU(s) for 2 worker(s)"],
    );
    one_err(
        &bond("workers: 2\nworker_cpus: [1, 1]"),
        "worker_cpus",
        &["CPU 1 is listed twice"],
    );
    one_err(
        &bond("workers: 2\ninterface: tap"),
        "workers",
        &["need `interface: veth`"],
    );
    one_err(
        &bond("xdp_mode: drv"),
        "xdp_mode",
        &["expected one of auto/0, native/1, generic/2"],
    );
    one_err(&bond("busy_poll: maybe"), "busy_poll", &[]);
}
