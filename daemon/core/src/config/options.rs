//! The kernel option table and the per-bond validation built on it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::enums::KernelEnum;
use super::node::Node;
use super::{
    AdSelect, ArpAllTargets, ArpValidate, BOND_KEYS, BondConfig, Cx, FailOverMac, InterfaceKind,
    IpPrefix, LacpRate, Limits, Mode, PrimaryReselect, XdpMode, XmitHashPolicy, XmitHashTable,
    check_ifname, format_mac, parse_mac,
};

/// Canonical kernel options. Aliases map onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Mode,
    Miimon,
    Updelay,
    Downdelay,
    UseCarrier,
    ArpInterval,
    ArpIpTarget,
    NsIp6Target,
    ArpValidate,
    ArpAllTargets,
    ArpMissedMax,
    Primary,
    PrimaryReselect,
    FailOverMac,
    NumGratArp,
    PeerNotifDelay,
    ResendIgmp,
    AllSlavesActive,
    PacketsPerSlave,
    XmitHashPolicy,
    /// bondd-only.
    XmitHashTable,
    LacpRate,
    LacpActive,
    AdSelect,
    AdActorSysPrio,
    AdActorSystem,
    AdUserPortKey,
    MinLinks,
    CoupledControl,
    /// bondd-only.
    LacpFallbackAb,
    BroadcastNeighbor,
    TlbDynamicLb,
    LpInterval,
}

struct Spec {
    name: &'static str,
    opt: Opt,
    /// Modes the kernel supports the option in (§1.2 "Modes"); empty = all.
    modes: &'static [Mode],
}

const ALL: &[Mode] = &[];
const PRIMARY: &[Mode] = &[Mode::ActiveBackup, Mode::BalanceTlb, Mode::BalanceAlb];
const ARP: &[Mode] = &[
    Mode::BalanceRr,
    Mode::ActiveBackup,
    Mode::BalanceXor,
    Mode::Broadcast,
];
const HASH: &[Mode] = &[
    Mode::BalanceXor,
    Mode::Ieee8023ad,
    Mode::BalanceTlb,
    Mode::BalanceAlb,
];
const AD: &[Mode] = &[Mode::Ieee8023ad];
/// Modes with the xor transmit rule, where `xmit_hash_table` applies.
const XOR: &[Mode] = &[Mode::BalanceXor, Mode::Ieee8023ad];
const RR: &[Mode] = &[Mode::BalanceRr];
const TLB: &[Mode] = &[Mode::BalanceTlb, Mode::BalanceAlb];
const AB: &[Mode] = &[Mode::ActiveBackup];
/// Peer notification: active-backup, and 802.3ad with broadcast_neighbor.
const NOTIFY: &[Mode] = &[Mode::ActiveBackup, Mode::Ieee8023ad];

const fn spec(name: &'static str, opt: Opt, modes: &'static [Mode]) -> Spec {
    Spec { name, opt, modes }
}

/// Canonical names come first; aliases after, pointing at the same `Opt`.
const SPECS: &[Spec] = &[
    spec("mode", Opt::Mode, ALL),
    spec("miimon", Opt::Miimon, ALL),
    spec("updelay", Opt::Updelay, ALL),
    spec("downdelay", Opt::Downdelay, ALL),
    spec("use_carrier", Opt::UseCarrier, ALL),
    spec("arp_interval", Opt::ArpInterval, ARP),
    spec("arp_ip_target", Opt::ArpIpTarget, ARP),
    spec("ns_ip6_target", Opt::NsIp6Target, ARP),
    spec("arp_validate", Opt::ArpValidate, ARP),
    spec("arp_all_targets", Opt::ArpAllTargets, ARP),
    spec("arp_missed_max", Opt::ArpMissedMax, ARP),
    spec("primary", Opt::Primary, PRIMARY),
    spec("primary_reselect", Opt::PrimaryReselect, PRIMARY),
    spec("fail_over_mac", Opt::FailOverMac, AB),
    spec("num_grat_arp", Opt::NumGratArp, NOTIFY),
    spec("peer_notif_delay", Opt::PeerNotifDelay, ALL),
    spec("resend_igmp", Opt::ResendIgmp, ALL),
    spec("all_slaves_active", Opt::AllSlavesActive, ALL),
    spec("packets_per_slave", Opt::PacketsPerSlave, RR),
    spec("xmit_hash_policy", Opt::XmitHashPolicy, HASH),
    spec("xmit_hash_table", Opt::XmitHashTable, XOR),
    spec("lacp_rate", Opt::LacpRate, AD),
    spec("lacp_active", Opt::LacpActive, AD),
    spec("ad_select", Opt::AdSelect, AD),
    spec("ad_actor_sys_prio", Opt::AdActorSysPrio, AD),
    spec("ad_actor_system", Opt::AdActorSystem, AD),
    spec("ad_user_port_key", Opt::AdUserPortKey, AD),
    spec("min_links", Opt::MinLinks, AD),
    spec("coupled_control", Opt::CoupledControl, AD),
    spec("lacp_fallback_ab", Opt::LacpFallbackAb, AD),
    spec("broadcast_neighbor", Opt::BroadcastNeighbor, AD),
    spec("tlb_dynamic_lb", Opt::TlbDynamicLb, TLB),
    spec("lp_interval", Opt::LpInterval, TLB),
    // Aliases.
    spec("num_unsol_na", Opt::NumGratArp, NOTIFY),
    spec("active_slave", Opt::Primary, PRIMARY),
];

fn lookup(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

fn canonical(opt: Opt) -> &'static str {
    SPECS.iter().find(|s| s.opt == opt).map_or("", |s| s.name)
}

/// Maps an alias to its canonical option name; other names pass through.
pub(super) fn canonical_name(key: &str) -> &str {
    lookup(key).map_or(key, |s| canonical(s.opt))
}

/// Typed option value; compared to detect conflicting duplicates.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Mode(Mode),
    Num(u64),
    Bool(bool),
    V4(Vec<Ipv4Addr>),
    V6(Vec<Ipv6Addr>),
    Name(String),
    Mac(Option<[u8; 6]>),
    Reselect(PrimaryReselect),
    Fom(FailOverMac),
    Xmit(XmitHashPolicy),
    Table(XmitHashTable),
    Lacp(LacpRate),
    Ad(AdSelect),
    Validate(ArpValidate),
    ArpAll(ArpAllTargets),
}

impl Val {
    fn show(&self) -> String {
        fn list<T: ToString>(v: &[T]) -> String {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }
        match self {
            Val::Mode(m) => m.to_string(),
            Val::Num(n) => n.to_string(),
            Val::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            Val::V4(v) => list(v),
            Val::V6(v) => list(v),
            Val::Name(s) => s.clone(),
            Val::Mac(m) => m.map_or_else(|| "00:00:00:00:00:00".into(), |m| format_mac(&m)),
            Val::Reselect(v) => v.to_string(),
            Val::Fom(v) => v.to_string(),
            Val::Xmit(v) => v.to_string(),
            Val::Table(v) => v.to_string(),
            Val::Lacp(v) => v.to_string(),
            Val::Ad(v) => v.to_string(),
            Val::Validate(v) => v.to_string(),
            Val::ArpAll(v) => v.to_string(),
        }
    }
}

const MS: &str = "a number of milliseconds";
const INT_MAX: u64 = i32::MAX as u64;

fn parse_value(opt: Opt, node: &Node) -> Result<Val, String> {
    let n = |min, max, what| num(node, min, max, what).map(Val::Num);
    match opt {
        Opt::Mode => enumv(node).map(Val::Mode),
        Opt::Miimon | Opt::Updelay | Opt::Downdelay | Opt::ArpInterval => n(0, INT_MAX, MS),
        Opt::PeerNotifDelay => n(0, 300_000, MS),
        Opt::ArpMissedMax => n(1, 255, "a number"),
        Opt::NumGratArp | Opt::ResendIgmp => n(0, 255, "a number"),
        Opt::PacketsPerSlave => n(0, 65535, "a number"),
        Opt::AdActorSysPrio => n(1, 65535, "a number"),
        Opt::AdUserPortKey => n(0, 1023, "a number"),
        Opt::MinLinks => n(0, INT_MAX, "a number"),
        Opt::LpInterval => n(1, INT_MAX, "a number of seconds"),
        Opt::UseCarrier
        | Opt::AllSlavesActive
        | Opt::LacpActive
        | Opt::CoupledControl
        | Opt::LacpFallbackAb
        | Opt::BroadcastNeighbor
        | Opt::TlbDynamicLb => boolean(node).map(Val::Bool),
        Opt::ArpIpTarget => ip_list(node, v4_target).map(Val::V4),
        Opt::NsIp6Target => ip_list(node, v6_target).map(Val::V6),
        Opt::Primary => ifname(node).map(Val::Name),
        Opt::AdActorSystem => actor_system(node).map(Val::Mac),
        Opt::PrimaryReselect => enumv(node).map(Val::Reselect),
        Opt::FailOverMac => enumv(node).map(Val::Fom),
        Opt::XmitHashPolicy => enumv(node).map(Val::Xmit),
        Opt::XmitHashTable => enumv(node).map(Val::Table),
        Opt::LacpRate => enumv(node).map(Val::Lacp),
        Opt::AdSelect => enumv(node).map(Val::Ad),
        Opt::ArpValidate => enumv(node).map(Val::Validate),
        Opt::ArpAllTargets => enumv(node).map(Val::ArpAll),
    }
}

/// Integer in `min..=max`. Strings are accepted because values from
/// `options:` are text, and YAML users sometimes quote numbers.
fn num(node: &Node, min: u64, max: u64, what: &str) -> Result<u64, String> {
    let v: i128 = match node {
        Node::Int(i) => *i,
        Node::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected {what}, got {}", node.describe()))?,
        Node::Float(f) if f.fract() == 0.0 && f.abs() < 1e18 => *f as i128,
        _ => return Err(format!("expected {what}, got {}", node.describe())),
    };
    if v < i128::from(min) || v > i128::from(max) {
        return Err(format!(
            "{v} is out of range (the kernel accepts {min}..={max})"
        ));
    }
    Ok(v as u64)
}

/// on/off/1/0 as the kernel's table, plus YAML booleans.
fn boolean(node: &Node) -> Result<bool, String> {
    match node {
        Node::Bool(b) => Ok(*b),
        Node::Int(0) => Ok(false),
        Node::Int(1) => Ok(true),
        Node::Str(s) if matches!(s.trim(), "on" | "1") => Ok(true),
        Node::Str(s) if matches!(s.trim(), "off" | "0") => Ok(false),
        _ => Err(format!("expected on/off (or 1/0), got {}", node.describe())),
    }
}

fn enumv<T: KernelEnum>(node: &Node) -> Result<T, String> {
    let found = match node {
        Node::Int(i) => u64::try_from(*i).ok().and_then(T::from_num),
        Node::Str(s) => T::parse_value(s),
        _ => None,
    };
    found.ok_or_else(|| {
        let hint = match node {
            Node::Str(s) => did_you_mean(s.trim(), &T::names()),
            _ => String::new(),
        };
        format!(
            "expected one of {}, got {}{hint}",
            T::choices_text(),
            node.describe()
        )
    })
}

fn ifname(node: &Node) -> Result<String, String> {
    let s = node
        .as_text()
        .ok_or_else(|| format!("expected an interface name, got {}", node.describe()))?;
    check_ifname(&s)?;
    Ok(s)
}

fn actor_system(node: &Node) -> Result<Option<[u8; 6]>, String> {
    let s = match node {
        Node::Str(s) => s,
        _ => return Err(format!("expected a MAC address, got {}", node.describe())),
    };
    let mac =
        parse_mac(s).ok_or_else(|| format!("`{s}` is not a MAC address like 02:00:00:00:00:01"))?;
    if mac[0] & 1 == 1 {
        return Err(format!(
            "`{s}` is a multicast MAC; the LACP system id must be unicast"
        ));
    }
    Ok((mac != [0; 6]).then_some(mac))
}

/// Splits the kernel/nmcli list forms: a YAML list, or one string with
/// commas and/or spaces.
fn text_items(node: &Node) -> Result<Vec<String>, String> {
    match node {
        Node::Seq(items) => items
            .iter()
            .map(|i| {
                i.as_text()
                    .ok_or_else(|| format!("expected an address, got {}", i.describe()))
            })
            .collect(),
        Node::Str(s) => Ok(s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()),
        Node::Null => Ok(Vec::new()),
        _ => Err(format!(
            "expected a list of addresses, got {}",
            node.describe()
        )),
    }
}

/// Kernel `BOND_MAX_ARP_TARGETS`, also used for NS targets.
const MAX_TARGETS: usize = 16;

fn ip_list<T: PartialEq + ToString>(
    node: &Node,
    one: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items = text_items(node)?;
    if items.len() > MAX_TARGETS {
        return Err(format!(
            "at most {MAX_TARGETS} targets are allowed (kernel limit), got {}",
            items.len()
        ));
    }
    let mut out: Vec<T> = Vec::new();
    for s in items {
        let t = one(s.trim())?;
        if out.contains(&t) {
            return Err(format!("target {} is listed twice", t.to_string()));
        }
        out.push(t);
    }
    Ok(out)
}

/// The kernel refuses targets that cannot answer an ARP request.
fn v4_target(s: &str) -> Result<Ipv4Addr, String> {
    let a: Ipv4Addr = s
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address"))?;
    if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
        return Err(format!(
            "`{a}` cannot be an ARP target (unicast address needed)"
        ));
    }
    Ok(a)
}

fn v6_target(s: &str) -> Result<Ipv6Addr, String> {
    let a: Ipv6Addr = s
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv6 address"))?;
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
        return Err(format!(
            "`{a}` cannot be an NS target (unicast address needed)"
        ));
    }
    Ok(a)
}

/// ` (did you mean `x`?)`-style hint, or empty. Matches case and `-`/`_`
/// differences, and edit distance up to 2.
pub(super) fn did_you_mean(input: &str, candidates: &[&str]) -> String {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let n = norm(input);
    let best = candidates
        .iter()
        .map(|c| (levenshtein(&n, &norm(c)), *c))
        .filter(|(d, _)| *d <= 2 && *d < n.chars().count().max(1))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!("; did you mean `{c}`?"),
        None => String::new(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Where an option value came from, for messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Key,
    Options,
}

struct Setting {
    opt: Opt,
    spelled: &'static str,
    from: Source,
    val: Val,
}

fn describe_setting(s: &Setting) -> String {
    match s.from {
        Source::Key => format!("`{}: {}` (YAML key)", s.spelled, s.val.show()),
        Source::Options => format!("`{}={}` (in `options`)", s.spelled, s.val.show()),
    }
}

/// Splits an nmcli/sysfs style option string into (key, value) pairs.
/// Separators are commas and whitespace; a bare address following
/// `arp_ip_target=`/`ns_ip6_target=` continues that list (nmcli writes
/// `arp_ip_target=10.0.0.1,10.0.0.2`).
fn split_options(text: &str) -> Result<Vec<(String, Node)>, Vec<String>> {
    let mut out: Vec<(String, Node)> = Vec::new();
    let mut errs = Vec::new();
    for tok in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        if let Some((k, v)) = tok.split_once('=') {
            let node = if matches!(k, "arp_ip_target" | "ns_ip6_target") {
                Node::Seq(
                    (!v.is_empty())
                        .then(|| Node::Str(v.to_owned()))
                        .into_iter()
                        .collect(),
                )
            } else {
                Node::Str(v.to_owned())
            };
            out.push((k.to_owned(), node));
            continue;
        }
        match out.last_mut() {
            Some((k, Node::Seq(list)))
                if matches!(k.as_str(), "arp_ip_target" | "ns_ip6_target") =>
            {
                list.push(Node::Str(tok.to_owned()));
            }
            _ => errs.push(format!("`{tok}` is not of the form key=value")),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn bond_key_names() -> Vec<&'static str> {
    BOND_KEYS
        .iter()
        .copied()
        .chain(SPECS.iter().map(|s| s.name))
        .collect()
}

fn option_names() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}

pub(super) fn parse_bond(
    cx: &mut Cx<'_>,
    index: usize,
    node: &Node,
    limits: &Limits,
) -> BondConfig {
    let mut cfg = BondConfig::new(String::new(), Vec::new());
    let entries = match node {
        Node::Map(m) => m,
        other => {
            cx.err(
                Some(&format!("bonds[{index}]")),
                None,
                format!(
                    "expected a mapping with `name:` and `slaves:`, got {}",
                    other.describe()
                ),
            );
            return cfg;
        }
    };

    // The bond's label in messages: its name as written, else its position.
    let name_node = entries.iter().find(|(k, _)| k == "name").map(|(_, v)| v);
    let label = match name_node.and_then(Node::as_text) {
        Some(n) if !n.is_empty() => n,
        _ => format!("bonds[{index}]"),
    };
    let bond = Some(label.as_str());
    match name_node {
        None => cx.err(bond, Some("name"), "missing required key `name`"),
        Some(n) => match ifname(n) {
            Ok(n) => cfg.name = n,
            Err(e) => cx.err(bond, Some("name"), e),
        },
    }

    let mut settings: Vec<Setting> = Vec::new();
    let mut failed: BTreeSet<&'static str> = BTreeSet::new();
    let mut seen_slaves = false;
    for (key, value) in entries {
        let k = Some(key.as_str());
        match key.as_str() {
            "name" => {}
            "slaves" => {
                seen_slaves = true;
                parse_slaves(cx, bond, value, &mut cfg);
            }
            "interface" => match enumv::<InterfaceKind>(value) {
                Ok(v) => cfg.interface = v,
                Err(e) => cx.err(bond, k, e),
            },
            "mac" => match bond_mac(value) {
                Ok(m) => cfg.mac = Some(m),
                Err(e) => cx.err(bond, k, e),
            },
            "mtu" => match mtu(value, limits) {
                Ok(m) => cfg.mtu = m,
                Err(e) => cx.err(bond, k, e),
            },
            "addresses" => match addresses(value) {
                Ok(a) => cfg.addresses = a,
                Err(errs) => errs.into_iter().for_each(|e| cx.err(bond, k, e)),
            },
            "gateway" => match gateways(value) {
                Ok(g) => cfg.gateways = g,
                Err(e) => cx.err(bond, k, e),
            },
            "workers" => match small_count(value, 1, MAX_WORKERS, "a number of worker threads") {
                Ok(n) => cfg.workers = n,
                Err(e) => cx.err(bond, k, e),
            },
            "worker_cpus" => match cpu_list(value) {
                Ok(v) => cfg.worker_cpus = v,
                Err(e) => cx.err(bond, k, e),
            },
            "busy_poll" => match boolean(value) {
                Ok(b) => cfg.busy_poll = b,
                Err(e) => cx.err(bond, k, e),
            },
            "xdp_mode" => match enumv::<XdpMode>(value) {
                Ok(v) => cfg.xdp_mode = v,
                Err(e) => cx.err(bond, k, e),
            },
            "options" => match value {
                Node::Str(text) => match split_options(text) {
                    Ok(pairs) => {
                        for (ok, ov) in pairs {
                            option_source(
                                cx,
                                bond,
                                &ok,
                                &ov,
                                Source::Options,
                                &mut settings,
                                &mut failed,
                            );
                        }
                    }
                    Err(errs) => errs.into_iter().for_each(|e| cx.err(bond, k, e)),
                },
                Node::Null => {}
                other => cx.err(
                    bond,
                    k,
                    format!(
                        "expected a string like \"mode=802.3ad miimon=100\", got {}; \
                         options can also be written as keys of the bond",
                        other.describe()
                    ),
                ),
            },
            _ => option_source(
                cx,
                bond,
                key,
                value,
                Source::Key,
                &mut settings,
                &mut failed,
            ),
        }
        if BOND_KEYS.contains(&key.as_str()) && key != "options" {
            cfg.explicit.insert(key.clone());
        }
    }
    if !seen_slaves {
        cx.err(
            bond,
            Some("slaves"),
            "missing required key `slaves` (a list of interface names)",
        );
    }

    // One value per canonical option; the same value twice is harmless.
    let mut resolved: Vec<Setting> = Vec::new();
    for s in settings {
        match resolved.iter().find(|r| r.opt == s.opt) {
            Some(r) if r.val != s.val => cx.err(
                bond,
                Some(s.spelled),
                format!(
                    "conflicting values: {} and {}",
                    describe_setting(r),
                    describe_setting(&s)
                ),
            ),
            Some(_) => {}
            None => resolved.push(s),
        }
    }

    for s in &resolved {
        apply(&mut cfg, &s.val, s.opt);
        cfg.explicit.insert(canonical(s.opt).to_owned());
        if s.spelled == "active_slave" {
            cx.warn(
                &label,
                Some("active_slave"),
                "`active_slave` is a deprecated alias of `primary` (NetworkManager); use `primary`",
            );
        }
    }

    if let Some(p) = &cfg.primary
        && !cfg.slaves.is_empty()
        && !cfg.slaves.contains(p)
    {
        let key = resolved
            .iter()
            .find(|s| s.opt == Opt::Primary)
            .map(|s| s.spelled);
        cx.err(
            bond,
            key,
            format!(
                "`{p}` is not one of the bond's slaves ({})",
                cfg.slaves.join(", ")
            ),
        );
    }
    // Mode support is only meaningful if the mode itself parsed.
    if !failed.contains("mode") {
        check_modes(cx, bond, &cfg, &resolved);
    }
    check_bond(cx, &label, &mut cfg, &failed, limits);
    cfg
}

/// Parses one option occurrence (YAML key or `options` entry) into
/// `settings`, reporting unknown names and bad values.
fn option_source(
    cx: &mut Cx<'_>,
    bond: Option<&str>,
    key: &str,
    value: &Node,
    from: Source,
    settings: &mut Vec<Setting>,
    failed: &mut BTreeSet<&'static str>,
) {
    let suffix = if from == Source::Options {
        " (in `options`)"
    } else {
        ""
    };
    let Some(spec) = lookup(key) else {
        let reason = if from == Source::Options && BOND_KEYS.contains(&key) {
            format!("`{key}` is not a bonding option; write it as a key of the bond{suffix}")
        } else {
            let names = if from == Source::Key {
                bond_key_names()
            } else {
                option_names()
            };
            format!("unknown key{suffix}{}", did_you_mean(key, &names))
        };
        cx.err(bond, Some(key), reason);
        return;
    };
    match parse_value(spec.opt, value) {
        Ok(val) => settings.push(Setting {
            opt: spec.opt,
            spelled: spec.name,
            from,
            val,
        }),
        Err(e) => {
            failed.insert(canonical(spec.opt));
            cx.err(bond, Some(key), format!("{e}{suffix}"));
        }
    }
}

fn apply(cfg: &mut BondConfig, val: &Val, opt: Opt) {
    // Ranges were checked in `num`, so the narrowing casts cannot truncate.
    let n = match val {
        Val::Num(n) => *n,
        _ => 0,
    };
    let b = matches!(val, Val::Bool(true));
    match (opt, val) {
        (_, Val::Mode(m)) => cfg.mode = *m,
        (Opt::Miimon, _) => cfg.miimon = n as u32,
        (Opt::Updelay, _) => cfg.updelay = n as u32,
        (Opt::Downdelay, _) => cfg.downdelay = n as u32,
        (Opt::ArpInterval, _) => cfg.arp_interval = n as u32,
        (Opt::PeerNotifDelay, _) => cfg.peer_notif_delay = n as u32,
        (Opt::ArpMissedMax, _) => cfg.arp_missed_max = n as u8,
        (Opt::NumGratArp, _) => cfg.num_grat_arp = n as u8,
        (Opt::ResendIgmp, _) => cfg.resend_igmp = n as u8,
        (Opt::PacketsPerSlave, _) => cfg.packets_per_slave = n as u16,
        (Opt::AdActorSysPrio, _) => cfg.ad_actor_sys_prio = n as u16,
        (Opt::AdUserPortKey, _) => cfg.ad_user_port_key = n as u16,
        (Opt::MinLinks, _) => cfg.min_links = n as u32,
        (Opt::LpInterval, _) => cfg.lp_interval = n as u32,
        (Opt::UseCarrier, _) => cfg.use_carrier = b,
        (Opt::AllSlavesActive, _) => cfg.all_slaves_active = b,
        (Opt::LacpActive, _) => cfg.lacp_active = b,
        (Opt::CoupledControl, _) => cfg.coupled_control = b,
        (Opt::LacpFallbackAb, _) => cfg.lacp_fallback_ab = b,
        (Opt::BroadcastNeighbor, _) => cfg.broadcast_neighbor = b,
        (Opt::TlbDynamicLb, _) => cfg.tlb_dynamic_lb = b,
        (_, Val::V4(v)) => cfg.arp_ip_target = v.clone(),
        (_, Val::V6(v)) => cfg.ns_ip6_target = v.clone(),
        (_, Val::Name(s)) => cfg.primary = Some(s.clone()),
        (_, Val::Mac(m)) => cfg.ad_actor_system = *m,
        (_, Val::Reselect(v)) => cfg.primary_reselect = *v,
        (_, Val::Fom(v)) => cfg.fail_over_mac = *v,
        (_, Val::Xmit(v)) => cfg.xmit_hash_policy = *v,
        (_, Val::Table(v)) => cfg.xmit_hash_table = *v,
        (_, Val::Lacp(v)) => cfg.lacp_rate = *v,
        (_, Val::Ad(v)) => cfg.ad_select = *v,
        (_, Val::Validate(v)) => cfg.arp_validate = *v,
        (_, Val::ArpAll(v)) => cfg.arp_all_targets = *v,
        (_, Val::Num(_) | Val::Bool(_)) => {}
    }
}

fn check_modes(cx: &mut Cx<'_>, bond: Option<&str>, cfg: &BondConfig, resolved: &[Setting]) {
    let mode = cfg.mode;
    for s in resolved {
        let spec = lookup(s.spelled).expect("settings come from SPECS");
        if !spec.modes.is_empty() && !spec.modes.contains(&mode) {
            let list = spec
                .modes
                .iter()
                .map(|m| m.kernel_name())
                .collect::<Vec<_>>()
                .join(", ");
            let plural = if spec.modes.len() > 1 {
                "modes"
            } else {
                "mode"
            };
            let who = if matches!(s.opt, Opt::XmitHashTable | Opt::LacpFallbackAb) {
                "bondd"
            } else {
                "kernel"
            };
            cx.err(
                bond,
                Some(s.spelled),
                format!(
                    "option `{}` is not supported in mode {mode} ({who}: {plural} {list})",
                    s.spelled
                ),
            );
        } else if s.opt == Opt::NumGratArp && mode == Mode::Ieee8023ad && !cfg.broadcast_neighbor {
            cx.err(
                bond,
                Some(s.spelled),
                format!(
                    "option `{}` is used in mode 802.3ad only with `broadcast_neighbor: on` \
                     (kernel: peer notification is otherwise an active-backup feature)",
                    s.spelled
                ),
            );
        }
    }
}

/// Checks across options of one bond, and the kernel's normalisations.
fn check_bond(
    cx: &mut Cx<'_>,
    label: &str,
    cfg: &mut BondConfig,
    failed: &BTreeSet<&'static str>,
    limits: &Limits,
) {
    let bond = Some(label);
    if !cfg.worker_cpus.is_empty() && cfg.worker_cpus.len() != cfg.workers as usize {
        cx.err(
            bond,
            Some("worker_cpus"),
            format!(
                "lists {} CPU(s) for {} worker(s); give one CPU per worker, or none",
                cfg.worker_cpus.len(),
                cfg.workers
            ),
        );
    }
    if cfg.workers > 1 && cfg.interface == InterfaceKind::Tap {
        cx.err(
            bond,
            Some("workers"),
            format!(
                "{} workers need `interface: veth`: a TAP has one queue, which one worker reads",
                cfg.workers
            ),
        );
    }
    if cfg.miimon > 0 && cfg.arp_interval > 0 {
        cx.err(
            bond,
            Some("arp_interval"),
            format!(
                "`miimon` ({} ms) and `arp_interval` ({} ms) are mutually exclusive \
                 (kernel: enabling one disables the other); set only one",
                cfg.miimon, cfg.arp_interval
            ),
        );
    }
    if !failed.contains("mode")
        && matches!(
            cfg.mode,
            Mode::Ieee8023ad | Mode::BalanceTlb | Mode::BalanceAlb
        )
        && cfg.miimon == 0
    {
        cfg.miimon = 100;
        cx.warn(
            label,
            Some("miimon"),
            format!(
                "mode {} needs a link monitor; miimon set to 100 ms (as the kernel does)",
                cfg.mode
            ),
        );
    }
    if cfg.miimon > 0 {
        let miimon = cfg.miimon;
        for (key, v) in [
            ("updelay", &mut cfg.updelay),
            ("downdelay", &mut cfg.downdelay),
            ("peer_notif_delay", &mut cfg.peer_notif_delay),
        ] {
            if *v % miimon != 0 {
                let rounded = *v - *v % miimon;
                cx.warn(
                    label,
                    Some(key),
                    format!(
                        "{v} ms is not a multiple of miimon ({miimon} ms); rounded down to \
                         {rounded} ms (as the kernel does)"
                    ),
                );
                *v = rounded;
            }
        }
    } else if cfg.arp_interval > 0 && (cfg.updelay > 0 || cfg.downdelay > 0) {
        cx.warn(
            label,
            Some("updelay"),
            "updelay/downdelay apply to carrier changes only, not to the ARP monitor",
        );
    }
    if cfg.arp_interval > 0
        && cfg.arp_ip_target.is_empty()
        && cfg.ns_ip6_target.is_empty()
        && !failed.contains("arp_ip_target")
        && !failed.contains("ns_ip6_target")
    {
        cx.err(
            bond,
            Some("arp_interval"),
            "ARP monitoring needs at least one `arp_ip_target` or `ns_ip6_target`",
        );
    }
    if cfg.arp_interval == 0 && (!cfg.arp_ip_target.is_empty() || !cfg.ns_ip6_target.is_empty()) {
        cx.warn(
            label,
            Some("arp_ip_target"),
            "targets are unused without `arp_interval`",
        );
    }
    if !cfg.use_carrier {
        cx.warn(
            label,
            Some("use_carrier"),
            "use_carrier=0 is obsolete (current kernels accept only 1); bondd always uses the carrier state",
        );
    }
    if cfg.explicit.contains("xmit_hash_policy")
        && matches!(cfg.mode, Mode::BalanceTlb | Mode::BalanceAlb)
        && cfg.tlb_dynamic_lb
    {
        cx.warn(
            label,
            Some("xmit_hash_policy"),
            "has effect in tlb/alb only with `tlb_dynamic_lb: off`",
        );
    }
    if !cfg.explicit.contains("mtu") && cfg.mtu > limits.max_mtu {
        cx.err(
            bond,
            Some("mtu"),
            format!(
                "the default MTU {} is too large: XDP on the slaves allows at most {}; set `mtu:`",
                cfg.mtu, limits.max_mtu
            ),
        );
    }
    check_gateways(cx, bond, cfg);
}

fn check_gateways(cx: &mut Cx<'_>, bond: Option<&str>, cfg: &BondConfig) {
    let (v4, v6): (Vec<&IpAddr>, Vec<&IpAddr>) = cfg.gateways.iter().partition(|g| g.is_ipv4());
    for (list, fam) in [(&v4, "IPv4"), (&v6, "IPv6")] {
        if list.len() > 1 {
            cx.err(
                bond,
                Some("gateway"),
                format!("at most one {fam} gateway is allowed, got {}", list.len()),
            );
        }
        for g in list {
            if !cfg
                .addresses
                .iter()
                .any(|a| a.addr.is_ipv4() == g.is_ipv4())
            {
                cx.err(
                    bond,
                    Some("gateway"),
                    format!("gateway {g} needs an {fam} address in `addresses`"),
                );
            }
        }
    }
}

fn parse_slaves(cx: &mut Cx<'_>, bond: Option<&str>, node: &Node, cfg: &mut BondConfig) {
    let key = Some("slaves");
    let items = match node {
        Node::Seq(items) => items,
        other => {
            cx.err(
                bond,
                key,
                format!(
                    "expected a list of interface names, got {}",
                    other.describe()
                ),
            );
            return;
        }
    };
    if items.is_empty() {
        cx.err(bond, key, "a bond needs at least one slave");
    }
    for item in items {
        match ifname(item) {
            Ok(s) if cfg.slaves.contains(&s) => {
                cx.err(bond, key, format!("slave `{s}` is listed twice"));
            }
            Ok(s) => cfg.slaves.push(s),
            Err(e) => cx.err(bond, key, e),
        }
    }
    if !cfg.name.is_empty() && cfg.slaves.contains(&cfg.name) {
        cx.err(
            bond,
            key,
            format!("`{}` cannot be a slave of itself", cfg.name),
        );
    }
}

/// Most data-plane workers per bond: one per queue of a large NIC.
pub const MAX_WORKERS: u32 = 64;

/// A count that is not a kernel option (so the message names no kernel range).
fn small_count(node: &Node, min: u32, max: u32, what: &str) -> Result<u32, String> {
    match node {
        Node::Int(i) if *i >= i128::from(min) && *i <= i128::from(max) => Ok(*i as u32),
        Node::Int(i) => Err(format!("{i} is out of range ({min}..={max})")),
        other => Err(format!("expected {what}, got {}", other.describe())),
    }
}

/// `worker_cpus: [1, 2]`: distinct CPU numbers.
fn cpu_list(node: &Node) -> Result<Vec<u32>, String> {
    let Node::Seq(items) = node else {
        return Err(format!(
            "expected a list of CPU numbers like [1, 2], got {}",
            node.describe()
        ));
    };
    let mut out = Vec::new();
    for it in items {
        let c = small_count(it, 0, 4095, "a CPU number")?;
        if out.contains(&c) {
            return Err(format!(
                "CPU {c} is listed twice; each worker needs its own CPU"
            ));
        }
        out.push(c);
    }
    Ok(out)
}

fn bond_mac(node: &Node) -> Result<[u8; 6], String> {
    let Node::Str(s) = node else {
        return Err(format!(
            "expected a MAC address like 02:00:00:00:00:01, got {}",
            node.describe()
        ));
    };
    let mac =
        parse_mac(s).ok_or_else(|| format!("`{s}` is not a MAC address like 02:00:00:00:00:01"))?;
    if mac == [0; 6] {
        return Err("the all-zero MAC cannot be an interface address".into());
    }
    if mac[0] & 1 == 1 {
        return Err(format!(
            "`{s}` is a multicast MAC; a bond needs a unicast MAC"
        ));
    }
    Ok(mac)
}

fn mtu(node: &Node, limits: &Limits) -> Result<u32, String> {
    let v = num(node, 0, u64::from(u32::MAX), "a number of bytes")?;
    if v < 68 {
        return Err(format!(
            "MTU {v} is below the minimum of 68 (IPv4 requires it)"
        ));
    }
    if v > u64::from(limits.max_mtu) {
        return Err(format!(
            "MTU {v} is too large: XDP on the slaves allows at most {}",
            limits.max_mtu
        ));
    }
    Ok(v as u32)
}

fn addresses(node: &Node) -> Result<Vec<IpPrefix>, Vec<String>> {
    let items: Vec<&Node> = match node {
        Node::Seq(items) => items.iter().collect(),
        Node::Str(_) => vec![node],
        Node::Null => Vec::new(),
        other => {
            return Err(vec![format!(
                "expected a list of addresses like 192.0.2.10/24, got {}",
                other.describe()
            )]);
        }
    };
    let mut out: Vec<IpPrefix> = Vec::new();
    let mut errs = Vec::new();
    for item in items {
        let Node::Str(s) = item else {
            errs.push(format!(
                "expected an address like 192.0.2.10/24, got {}",
                item.describe()
            ));
            continue;
        };
        match s.trim().parse::<IpPrefix>() {
            Ok(p) if out.iter().any(|o| o.addr == p.addr) => {
                errs.push(format!("address {} is listed twice", p.addr));
            }
            Ok(p) => out.push(p),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn gateways(node: &Node) -> Result<Vec<IpAddr>, String> {
    let items: Vec<&Node> = match node {
        Node::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    items
        .into_iter()
        .map(|n| {
            let Node::Str(s) = n else {
                return Err(format!("expected a gateway address, got {}", n.describe()));
            };
            if s.contains('/') {
                return Err(format!(
                    "gateway `{s}` must be a plain address, without /prefix"
                ));
            }
            let a: IpAddr = s
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address"))?;
            if a.is_unspecified() || a.is_multicast() {
                return Err(format!("`{a}` cannot be a gateway"));
            }
            Ok(a)
        })
        .collect()
}

/// Names must be unique across bonds, and an interface can be enslaved once.
pub(super) fn cross_bond_checks(cx: &mut Cx<'_>, bonds: &[BondConfig]) {
    for (i, b) in bonds.iter().enumerate() {
        if b.name.is_empty() {
            continue;
        }
        if bonds[..i].iter().any(|o| o.name == b.name) {
            cx.err(
                Some(&b.name),
                Some("name"),
                "another bond has the same name",
            );
        }
        for s in &b.slaves {
            if let Some(o) = bonds[..i].iter().find(|o| o.slaves.contains(s)) {
                cx.err(
                    Some(&b.name),
                    Some("slaves"),
                    format!("slave `{s}` is also a slave of bond \"{}\"", o.name),
                );
            }
            if let Some(o) = bonds
                .iter()
                .enumerate()
                .find_map(|(j, o)| (j != i && o.name == *s).then_some(o))
            {
                cx.err(
                    Some(&b.name),
                    Some("slaves"),
                    format!("slave `{s}` is the name of bond \"{}\"", o.name),
                );
            }
        }
    }
}
