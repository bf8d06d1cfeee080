//! `bondd import-nm`: turn NetworkManager keyfile bonds into a bondd config.
//!
//! Reads the `*.nmconnection` keyfiles of a directory (by default
//! `/etc/NetworkManager/system-connections`), finds the bond connections
//! (`[connection] type=bond`) and their ports (`type=ethernet` with
//! `master=`/`controller=` naming the bond by interface name, id or uuid and
//! `slave-type=`/`port-type=bond`), and writes the equivalent `bonds:` YAML.
//!
//! What cannot carry over (DHCP, DNS, routes, VLANs on the bond, options
//! NetworkManager would ignore, ...) is reported as a warning, never as an
//! error: the output is always a config that `bondd_core::config::parse`
//! accepts; each bond is validated with it and any value it refuses is left
//! out with the reason.
//!
//! NetworkManager's own normalisations are applied, so the bond behaves as it
//! did under NetworkManager: `miimon` defaults to 100 unless `arp_interval`
//! is set, a non-zero `miimon` clears `arp_interval`/`arp_ip_target`, and
//! options that do not apply to the mode are dropped (NetworkManager ignores
//! them too).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use bondd_core::config::{self, BondConfig, FailOverMac, Limits, Mode, parse_mac};

/// Where NetworkManager keeps its system connection profiles.
pub const DEFAULT_DIR: &str = "/etc/NetworkManager/system-connections";

/// The result of an import: the config, and what did not carry over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// Kernel bonding options carried over, in the order they are written.
/// `mode` is handled on its own.
const OPTIONS: &[&str] = &[
    "miimon",
    "updelay",
    "downdelay",
    "use_carrier",
    "arp_interval",
    "arp_ip_target",
    "ns_ip6_target",
    "arp_validate",
    "arp_all_targets",
    "arp_missed_max",
    "primary",
    "primary_reselect",
    "fail_over_mac",
    "num_grat_arp",
    "peer_notif_delay",
    "resend_igmp",
    "all_slaves_active",
    "packets_per_slave",
    "xmit_hash_policy",
    "lacp_rate",
    "lacp_active",
    "ad_select",
    "ad_actor_sys_prio",
    "ad_actor_system",
    "ad_user_port_key",
    "min_links",
    "coupled_control",
    "broadcast_neighbor",
    "tlb_dynamic_lb",
    "lp_interval",
];

/// NetworkManager spellings that are aliases of a kernel option.
const ALIASES: &[(&str, &str)] = &[
    ("num_unsol_na", "num_grat_arp"),
    ("active_slave", "primary"),
];

/// Options whose value is a list of addresses.
const LISTS: &[&str] = &["arp_ip_target", "ns_ip6_target"];

/// Reads the keyfiles of `dir` and converts their bonds.
pub fn import_dir(dir: &Path) -> Result<Import> {
    let mut names: Vec<String> = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot read", dir.display()))?
    {
        let entry = entry.with_context(|| format!("{}: cannot read", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".nmconnection") && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for name in names {
        match std::fs::read_to_string(dir.join(&name)) {
            Ok(text) => files.push((name, text)),
            Err(e) => warnings.push(format!("{name}: cannot read ({e}); skipped")),
        }
    }
    let limits = Limits {
        max_mtu: crate::bond::MAX_MTU,
    };
    let mut out = import(&files, &limits).with_context(|| format!("{}", dir.display()))?;
    warnings.append(&mut out.warnings);
    out.warnings = warnings;
    Ok(out)
}

/// Converts keyfiles given as (file name, text), in the order given.
pub fn import(files: &[(String, String)], limits: &Limits) -> Result<Import> {
    let mut w = Vec::new();
    let mut conns = Vec::new();
    for (name, text) in files {
        match Keyfile::parse(text) {
            Ok(kf) => conns.push(Conn::new(name, kf)),
            Err(e) => w.push(format!("{name}: not a keyfile ({e}); skipped")),
        }
    }

    // Bond connections, one per interface name.
    let mut bonds: Vec<Bond> = Vec::new();
    for (i, c) in conns.iter().enumerate() {
        if c.kind != "bond" {
            continue;
        }
        let Some(ifname) = c.ifname.clone() else {
            w.push(format!(
                "{}: bond connection {} has no interface-name; skipped",
                c.file,
                quote(&c.id)
            ));
            continue;
        };
        if let Some(b) = bonds.iter().find(|b| b.ifname == ifname) {
            w.push(format!(
                "{}: a second bond connection for {ifname} (the first is {}); only the first is imported",
                c.file, conns[b.conn].file
            ));
            continue;
        }
        bonds.push(Bond {
            conn: i,
            ifname,
            ports: Vec::new(),
        });
    }

    // Ports, VLANs and other connections stacked on a bond.
    for (i, c) in conns.iter().enumerate() {
        if c.kind == "bond" {
            if let Some(m) = &c.controller {
                w.push(format!(
                    "{}: {} is itself a port of {m} ({}) in NetworkManager; that is not carried over \
                     (bondd creates the bond only: attach bond0 to {m} with the tool that manages {m})",
                    c.file,
                    c.ifname.as_deref().unwrap_or(&c.id),
                    c.port_type.as_deref().unwrap_or("?"),
                ));
            }
            continue;
        }
        if c.kind == "vlan" {
            let parent = c.kf.get("vlan", "parent");
            if let Some(b) = parent.as_deref().and_then(|p| find_bond(&conns, &bonds, p)) {
                let vid = c.kf.get("vlan", "id").unwrap_or_else(|| "?".into());
                let ifname = &bonds[b].ifname;
                w.push(format!(
                    "{}: VLAN {vid} on {ifname} ({}) is not carried over: bondd creates no VLANs. \
                     Keep this profile in NetworkManager (it must then manage {ifname}, see the README), \
                     or create it with `ip link add link {ifname} name {ifname}.{vid} type vlan id {vid}`",
                    c.file,
                    c.ifname.as_deref().unwrap_or(&c.id),
                ));
            }
            continue;
        }
        let Some(m) = &c.controller else { continue };
        let to_bond = c.port_type.as_deref().is_none_or(|t| t == "bond");
        if !to_bond {
            continue;
        }
        let Some(b) = find_bond(&conns, &bonds, m) else {
            if c.port_type.as_deref() == Some("bond") {
                w.push(format!(
                    "{}: port {} names bond {m}, which is not among the imported bond connections; skipped",
                    c.file,
                    c.ifname.as_deref().unwrap_or(&c.id)
                ));
            }
            continue;
        };
        let bond_name = bonds[b].ifname.clone();
        if c.kind != "ethernet" {
            w.push(format!(
                "{}: port of {bond_name} has type {}; bondd bonds Ethernet devices only; skipped",
                c.file, c.kind
            ));
            continue;
        }
        if c.ifname.is_none() {
            let by_mac =
                c.kf.get("ethernet", "mac-address")
                    .map(|m| format!(" (NetworkManager matches it by MAC {m})"))
                    .unwrap_or_default();
            w.push(format!(
                "{}: port of {bond_name} has no interface-name{by_mac}; add its interface name to `slaves:` by hand",
                c.file
            ));
            continue;
        }
        bonds[b].ports.push(i);
    }

    // Stable slave order: autoconnect-priority (higher first), then file name.
    for b in &mut bonds {
        b.ports.sort_by(|&x, &y| {
            conns[y]
                .priority
                .cmp(&conns[x].priority)
                .then_with(|| conns[x].file.cmp(&conns[y].file))
        });
    }

    // One interface, one bond: later profiles for the same device lose.
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for b in &mut bonds {
        let mut keep = Vec::new();
        for &p in &b.ports {
            let c = &conns[p];
            let ifname = c.ifname.clone().unwrap_or_default();
            if let Some(owner) = taken.get(&ifname) {
                w.push(format!(
                    "{}: {ifname} already has a port profile ({owner}); only one is imported",
                    c.file
                ));
                continue;
            }
            taken.insert(ifname, c.file.clone());
            keep.push(p);
        }
        b.ports = keep;
    }

    let mut out = Vec::new();
    for b in &bonds {
        let c = &conns[b.conn];
        if b.ports.is_empty() {
            w.push(format!(
                "{}: bond {} has no port connections; not imported (bondd needs at least one slave)",
                c.file, b.ifname
            ));
            continue;
        }
        let mut draft = convert(c, b, &conns, &mut w);
        if validate(&mut draft, limits, &mut w) {
            out.push(draft);
        }
    }
    if out.is_empty() {
        let mut msg = String::from("no bond connection (type=bond with ports) to import");
        for x in &w {
            msg.push_str("\n  ");
            msg.push_str(x);
        }
        bail!(msg);
    }

    let yaml = render(&out, &conns, true);
    // Every bond passed on its own; this catches anything across bonds.
    let cfg = config::parse(&yaml, "import-nm", limits).map_err(|e| {
        anyhow::anyhow!("bug: the imported config does not parse:\n{e}\n--- config ---\n{yaml}")
    })?;
    for b in &cfg.bonds {
        not_implemented(b, &mut w);
    }
    Ok(Import { yaml, warnings: w })
}

/// What `bond::preflight` refuses today; keep in step with it.
fn not_implemented(b: &BondConfig, w: &mut Vec<String>) {
    let mut what = Vec::new();
    if matches!(b.mode, Mode::BalanceTlb | Mode::BalanceAlb) {
        what.push(format!("mode {}", b.mode));
    }
    if b.arp_interval > 0 {
        what.push("ARP monitoring (arp_interval)".to_string());
    }
    if b.fail_over_mac != FailOverMac::None {
        what.push(format!("fail_over_mac {}", b.fail_over_mac));
    }
    if !what.is_empty() {
        w.push(format!(
            "bond {}: bondd does not implement {} yet; `bondd check` refuses this bond until it is changed",
            b.name,
            what.join(", ")
        ));
    }
}

// ---------------------------------------------------------------------------
// Keyfiles

/// A parsed keyfile: sections in file order, raw (escaped) values.
#[derive(Debug, Default)]
struct Keyfile {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Keyfile {
    /// GKeyFile syntax as NetworkManager writes it: `[section]`, `key=value`,
    /// `#` comments, blank lines.
    fn parse(text: &str) -> Result<Keyfile, String> {
        let mut kf = Keyfile::default();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(rest) = l.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {}: unterminated section header", n + 1))?;
                kf.sections
                    .push((section_alias(name.trim()).to_owned(), Vec::new()));
                continue;
            }
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected key=value", n + 1))?;
            let Some((_, entries)) = kf.sections.last_mut() else {
                return Err(format!("line {}: key outside a [section]", n + 1));
            };
            // Localised keys (`key[de]=`) never matter here.
            if !k.contains('[') {
                entries.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        if kf.sections.is_empty() {
            return Err("no [section]".into());
        }
        Ok(kf)
    }

    /// Entries of all sections called `section`, in file order.
    fn entries<'a>(&'a self, section: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.sections
            .iter()
            .filter(move |(n, _)| n == section)
            .flat_map(|(_, e)| e.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn has_section(&self, section: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == section)
    }

    /// Last value of `key`, unescaped; empty values count as unset.
    fn get(&self, section: &str, key: &str) -> Option<String> {
        self.entries(section)
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| unescape(v))
            .filter(|v| !v.is_empty())
    }

    /// A `;`-separated list value (`dns=1.1.1.1;8.8.8.8;`).
    fn list(&self, section: &str, key: &str) -> Vec<String> {
        self.entries(section)
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| split_list(v))
            .unwrap_or_default()
    }
}

/// NetworkManager accepts the long setting names too.
fn section_alias(name: &str) -> &str {
    match name {
        "802-3-ethernet" => "ethernet",
        "802-11-wireless" => "wifi",
        "ipv4" | "ip4" => "ipv4",
        "ipv6" | "ip6" => "ipv6",
        other => other,
    }
}

/// GKeyFile escapes: `\s` `\n` `\t` `\r` `\\` (and `\;` inside lists).
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn split_list(v: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = it.next() {
                    cur.push(n);
                }
            }
            ';' => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
        .iter()
        .map(|s| unescape(s.trim()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `[connection]` facts of one profile.
#[derive(Debug)]
struct Conn {
    file: String,
    kf: Keyfile,
    id: String,
    uuid: String,
    kind: String,
    ifname: Option<String>,
    /// `master=` (NetworkManager < 1.46) or `controller=`.
    controller: Option<String>,
    /// `slave-type=` or `port-type=`.
    port_type: Option<String>,
    priority: i64,
}

impl Conn {
    fn new(file: &str, kf: Keyfile) -> Conn {
        let get = |k: &str| kf.get("connection", k);
        let kind = get("type").unwrap_or_default();
        let kind = match kind.as_str() {
            "802-3-ethernet" => "ethernet".to_owned(),
            "802-11-wireless" => "wifi".to_owned(),
            _ => kind,
        };
        Conn {
            file: file.to_owned(),
            id: get("id").unwrap_or_else(|| file.trim_end_matches(".nmconnection").to_owned()),
            uuid: get("uuid").unwrap_or_default(),
            kind,
            ifname: get("interface-name"),
            controller: get("controller").or_else(|| get("master")),
            port_type: get("port-type").or_else(|| get("slave-type")),
            priority: get("autoconnect-priority")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            kf,
        }
    }
}

struct Bond {
    conn: usize,
    ifname: String,
    ports: Vec<usize>,
}

/// The bond a `master=`/`controller=`/`parent=` value names: by uuid, then
/// interface name, then connection id (NetworkManager stores the first two;
/// nmcli also accepts the id).
fn find_bond(conns: &[Conn], bonds: &[Bond], name: &str) -> Option<usize> {
    let by = |f: &dyn Fn(&Conn, &Bond) -> bool| bonds.iter().position(|b| f(&conns[b.conn], b));
    by(&|c, _| !c.uuid.is_empty() && c.uuid.eq_ignore_ascii_case(name))
        .or_else(|| by(&|_, b| b.ifname == name))
        .or_else(|| by(&|c, _| c.id == name))
}

// ---------------------------------------------------------------------------
// Conversion

#[derive(Clone, Debug, PartialEq, Eq)]
enum Val {
    Scalar(String),
    List(Vec<String>),
}

impl Val {
    fn show(&self) -> String {
        match self {
            Val::Scalar(s) => s.clone(),
            Val::List(l) => l.join(","),
        }
    }
}

/// One bond being written: keys in output order.
struct Draft {
    file: String,
    conn: usize,
    ports: Vec<usize>,
    name: String,
    entries: Vec<(String, Val)>,
}

impl Draft {
    fn set(&mut self, key: &str, val: Val) {
        self.entries.push((key.to_owned(), val));
    }
}

fn convert(c: &Conn, b: &Bond, conns: &[Conn], w: &mut Vec<String>) -> Draft {
    let f = &c.file;
    let name = &b.ifname;
    let mut d = Draft {
        file: c.file.clone(),
        conn: b.conn,
        ports: b.ports.clone(),
        name: name.clone(),
        entries: Vec::new(),
    };
    let slaves: Vec<String> = b
        .ports
        .iter()
        .filter_map(|&p| conns[p].ifname.clone())
        .collect();

    // --- bond options
    let mut opts: BTreeMap<&'static str, (String, String)> = BTreeMap::new(); // canonical -> (spelled, value)
    let mut mode_text: Option<String> = None;
    let mut raw: Vec<(String, String)> = Vec::new();
    for (k, v) in c.kf.entries("bond") {
        if k == "options" {
            raw.extend(split_options(&unescape(v)));
        } else {
            raw.push((k.to_owned(), unescape(v)));
        }
    }
    let mut slb = false;
    for (k, v) in raw {
        let canonical = ALIASES
            .iter()
            .find(|(a, _)| *a == k)
            .map(|(_, c)| *c)
            .or_else(|| OPTIONS.iter().copied().find(|o| *o == k));
        if k == "mode" {
            if let Some(old) = &mode_text
                && *old != v
            {
                w.push(format!(
                    "{f}: bond {name}: mode given twice ({old}, {v}); using {v}"
                ));
            }
            mode_text = Some(v);
            continue;
        }
        if k == "balance-slb" {
            slb = matches!(v.as_str(), "1" | "on" | "true");
            if slb {
                w.push(format!(
                    "{f}: bond {name}: balance-slb=1 (NetworkManager's source-load-balancing) is carried over \
                     only as xmit_hash_policy vlan+srcmac; its receive filtering is not"
                ));
            }
            continue;
        }
        let Some(canon) = canonical else {
            w.push(format!(
                "{f}: bond {name}: unknown bond option `{k}={v}`; not carried over"
            ));
            continue;
        };
        if let Some((old_k, old_v)) = opts.get(canon)
            && *old_v != v
        {
            w.push(format!(
                "{f}: bond {name}: `{old_k}={old_v}` and `{k}={v}` disagree; using {v}"
            ));
        }
        opts.insert(canon, (k, v));
    }

    let mode = match mode_text.as_deref() {
        None => Mode::BalanceRr, // NetworkManager's default, as the kernel's
        Some(t) => Mode::parse(t).unwrap_or_else(|| {
            w.push(format!(
                "{f}: bond {name}: unknown mode `{t}`; using balance-rr (NetworkManager would refuse the profile)"
            ));
            Mode::BalanceRr
        }),
    };
    if slb && !opts.contains_key("xmit_hash_policy") {
        opts.insert(
            "xmit_hash_policy",
            ("balance-slb".into(), "vlan+srcmac".into()),
        );
    }

    // NetworkManager's normalisation (`_bond_get_option_normalized`): miimon
    // defaults to 100 unless ARP monitoring is on; a non-zero miimon turns
    // ARP monitoring off.
    let num = |o: &BTreeMap<&str, (String, String)>, k: &str| {
        o.get(k).and_then(|(_, v)| v.trim().parse::<u64>().ok())
    };
    let miimon = num(&opts, "miimon");
    let arp = num(&opts, "arp_interval").unwrap_or(0);
    if miimon.is_some_and(|m| m > 0) {
        for k in ["arp_interval", "arp_ip_target"] {
            if let Some((sk, v)) = opts.remove(k)
                && !(k == "arp_interval" && v.trim() == "0")
            {
                w.push(format!(
                    "{f}: bond {name}: `{sk}={v}` dropped: with miimon set, NetworkManager turns ARP monitoring off"
                ));
            }
        }
    } else if miimon.is_none() && arp == 0 {
        opts.insert("miimon", ("miimon".into(), "100".into()));
    }

    d.set("name", Val::Scalar(name.clone()));
    d.set("mode", Val::Scalar(mode.kernel_name().to_owned()));
    d.set("slaves", Val::List(slaves.clone()));

    // --- [ethernet] of the bond
    match c.kf.get("ethernet", "cloned-mac-address") {
        Some(m) if parse_mac(&m).is_some() => d.set("mac", Val::Scalar(m.to_ascii_lowercase())),
        Some(m) => w.push(format!(
            "{f}: bond {name}: cloned-mac-address={m} is not carried over (only a literal MAC is); \
             bondd derives a stable MAC from /etc/machine-id and the bond name"
        )),
        None => w.push(format!(
            "{f}: bond {name}: its MAC changes: the kernel bond took its first port's MAC, bondd derives \
             a stable one from /etc/machine-id and the name; to keep the old one (DHCP reservations, \
             switch ACLs), add `mac:` with what `ip link show {name}` prints before migrating"
        )),
    }
    let bond_mtu = c.kf.get("ethernet", "mtu").filter(|m| m != "0");
    if let Some(m) = &bond_mtu {
        d.set("mtu", Val::Scalar(m.clone()));
    }

    for o in OPTIONS {
        if let Some((_, v)) = opts.get(o) {
            let val = if LISTS.contains(o) {
                Val::List(
                    v.split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            } else {
                Val::Scalar(v.trim().to_owned())
            };
            d.set(o, val);
        }
    }

    // --- IP
    let mut addrs: Vec<String> = Vec::new();
    let mut gws: Vec<String> = Vec::new();
    let mut handoff: Vec<(&str, String)> = Vec::new();
    for sec in ["ipv4", "ipv6"] {
        match ip_config(c, sec, name, w) {
            IpConf::None => {}
            IpConf::Static(a, g) => {
                addrs.extend(a);
                gws.extend(g);
            }
            IpConf::Handoff(args) => handoff.push((sec, args)),
        }
    }
    if !handoff.is_empty() {
        let what: Vec<String> = handoff
            .iter()
            .map(|(sec, _)| {
                let how = if *sec == "ipv4" {
                    "DHCP"
                } else {
                    "SLAAC/DHCPv6"
                };
                format!("{sec}.method=auto ({how})")
            })
            .collect();
        let mut args: Vec<String> = handoff.iter().map(|(_, a)| a.clone()).collect();
        // IPv4 handed over, IPv6 not: keep NetworkManager off IPv6.
        if handoff.len() == 1 && handoff[0].0 == "ipv4" {
            args.push("ipv6.method ignore".into());
        }
        w.push(format!(
            "{f}: bond {name}: {} not carried over: bondd configures static addresses only. \
             Let NetworkManager configure {name} as a plain Ethernet device: \
             `nmcli connection add type ethernet ifname {name} con-name {name}-ip {}` \
             (README, \"DHCP, DNS and other managers\")",
            what.join(" and "),
            args.join(" ")
        ));
    }
    if !addrs.is_empty() {
        d.set("addresses", Val::List(addrs));
    }
    match gws.len() {
        0 => {}
        1 => d.set("gateway", Val::Scalar(gws[0].clone())),
        _ => d.set("gateway", Val::List(gws)),
    }

    // --- rest of the bond profile
    let get = |k: &str| c.kf.get("connection", k);
    if get("autoconnect").as_deref() == Some("false") {
        w.push(format!(
            "{f}: bond {name}: autoconnect=false in NetworkManager; bondd brings the bond up whenever it runs"
        ));
    }
    if let Some(p) = get("permissions") {
        w.push(format!(
            "{f}: bond {name}: permissions={p} is not carried over: bondd bonds are system-wide"
        ));
    }
    if let Some(z) = get("zone") {
        w.push(format!(
            "{f}: bond {name}: firewall zone {z} is not carried over: `firewall-cmd --permanent --zone={z} --add-interface={name}`"
        ));
    }
    other_sections(c, name, &["bond"], w);

    // --- ports
    for &p in &b.ports {
        let pc = &conns[p];
        let pf = &pc.file;
        let ifname = pc.ifname.as_deref().unwrap_or_default();
        if pc.kf.get("connection", "autoconnect").as_deref() == Some("false") {
            w.push(format!(
                "{pf}: port {ifname}: autoconnect=false in NetworkManager; bondd enslaves it whenever it runs"
            ));
        }
        if let Some(m) = pc.kf.get("ethernet", "mtu").filter(|m| m != "0")
            && Some(&m) != bond_mtu.as_ref()
        {
            w.push(format!(
                "{pf}: port {ifname}: mtu={m} is not carried over: bondd gives the slaves the bond's MTU"
            ));
        }
        if let Some(m) = pc.kf.get("ethernet", "cloned-mac-address") {
            w.push(format!(
                "{pf}: port {ifname}: cloned-mac-address={m} is not carried over: bondd gives the slaves the bond's MAC"
            ));
        }
        for (k, default) in [("queue-id", "0"), ("prio", "0")] {
            if let Some(v) = pc.kf.get("bond-port", k)
                && v != default
            {
                w.push(format!(
                    "{pf}: port {ifname}: bond-port.{k}={v} is not carried over (bondd has no per-slave {k})"
                ));
            }
        }
        other_sections(pc, ifname, &["bond-port"], w);
    }
    d
}

/// Splits an nmcli `bond.options` string; a bare address after
/// `arp_ip_target=`/`ns_ip6_target=` continues that list.
fn split_options(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for tok in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        if let Some((k, v)) = tok.split_once('=') {
            out.push((k.to_owned(), v.to_owned()));
        } else if let Some((k, v)) = out.last_mut()
            && LISTS.contains(&k.as_str())
        {
            v.push(',');
            v.push_str(tok);
        } else {
            out.push((tok.to_owned(), String::new()));
        }
    }
    out
}

/// Static addresses and gateway of `[ipv4]`/`[ipv6]`, with warnings for
/// what bondd does not do.
fn ip_config(c: &Conn, sec: &str, name: &str, w: &mut Vec<String>) -> IpConf {
    let f = &c.file;
    let v6 = sec == "ipv6";
    // NetworkManager's default for a bond profile without the setting.
    let method = c.kf.get(sec, "method").unwrap_or_else(|| "auto".into());
    let mut addrs: Vec<String> = Vec::new();
    let mut gw: Option<String> = None;
    // address1=, address2=, ... (also the old addresses1=), then addresses=.
    let mut numbered: Vec<(u32, String)> =
        c.kf.entries(sec)
            .filter_map(|(k, v)| {
                let n = k
                    .strip_prefix("addresses")
                    .or_else(|| k.strip_prefix("address"))?;
                let n: u32 = if n.is_empty() { 0 } else { n.parse().ok()? };
                Some((n, v.to_owned()))
            })
            .collect();
    numbered.sort_by_key(|(n, _)| *n);
    for (_, v) in numbered {
        for item in split_list(&v) {
            let mut parts = item.split(',');
            let a = parts.next().unwrap_or_default().trim().to_owned();
            let g = parts.next().map(|g| g.trim().to_owned());
            if a.is_empty() {
                continue;
            }
            let a = if a.contains('/') {
                a
            } else {
                let p = if v6 { 64 } else { 24 };
                w.push(format!(
                    "{f}: bond {name}: address {a} has no prefix; /{p} assumed as NetworkManager does"
                ));
                format!("{a}/{p}")
            };
            if addrs.is_empty() {
                gw = g.filter(|g| !g.is_empty());
            }
            addrs.push(a);
        }
    }
    if let Some(g) = c.kf.get(sec, "gateway") {
        gw = Some(g);
    }
    let fam = if v6 { "IPv6" } else { "IPv4" };
    if matches!(method.as_str(), "disabled" | "ignore") {
        if method == "disabled" && v6 {
            w.push(format!(
                "{f}: bond {name}: ipv6.method=disabled is not carried over: the kernel gives {name} \
                 a link-local address unless net.ipv6.conf.{name}.disable_ipv6=1"
            ));
        }
        return IpConf::None;
    }
    let dns = c.kf.list(sec, "dns");
    if !dns.is_empty() {
        w.push(format!(
            "{f}: bond {name}: {fam} DNS servers ({}) are not carried over: bondd does not configure DNS \
             (put them in /etc/resolv.conf or systemd-resolved)",
            dns.join(", ")
        ));
    }
    let search = c.kf.list(sec, "dns-search");
    if !search.is_empty() {
        w.push(format!(
            "{f}: bond {name}: DNS search domains ({}) are not carried over",
            search.join(", ")
        ));
    }
    let routes: Vec<String> =
        c.kf.entries(sec)
            .filter(|(k, _)| {
                k.strip_prefix("route")
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            })
            .map(|(_, v)| unescape(v))
            .chain(c.kf.list(sec, "routes"))
            .collect();
    if !routes.is_empty() {
        w.push(format!(
            "{f}: bond {name}: static {fam} routes ({}) are not carried over: add them with `ip route` \
             (or a unit ordered after bondd)",
            routes.join("; ")
        ));
    }
    if c.kf
        .entries(sec)
        .any(|(k, _)| k.starts_with("routing-rule"))
    {
        w.push(format!(
            "{f}: bond {name}: {fam} routing rules are not carried over"
        ));
    }
    match method.as_str() {
        "manual" => {}
        "link-local" if v6 => return IpConf::None,
        "auto" | "dhcp" => {
            let mut args = format!("{sec}.method {method}");
            if !addrs.is_empty() {
                let _ = write!(args, " {sec}.addresses \"{}\"", addrs.join(","));
            }
            return IpConf::Handoff(args);
        }
        other => {
            w.push(format!(
                "{f}: bond {name}: {sec}.method={other} is not carried over; {fam} on {name} must be set up by hand"
            ));
            return IpConf::None;
        }
    }
    if c.kf.get(sec, "never-default").as_deref() == Some("true") && gw.is_some() {
        w.push(format!(
            "{f}: bond {name}: never-default=true: the {fam} gateway is not used as a default route, so it is left out"
        ));
        gw = None;
    }
    IpConf::Static(addrs, gw)
}

/// One address family of a bond profile.
enum IpConf {
    /// Nothing for bondd to do (disabled, ignored, link-local only).
    None,
    /// `method=manual`: addresses and gateway.
    Static(Vec<String>, Option<String>),
    /// DHCP/SLAAC: to be handed to NetworkManager; the nmcli arguments.
    Handoff(String),
}

/// Warns about whole settings that have no bondd equivalent.
fn other_sections(c: &Conn, name: &str, own: &[&str], w: &mut Vec<String>) {
    const HANDLED: &[&str] = &["connection", "ethernet", "ipv4", "ipv6", "proxy"];
    let mut seen: HashSet<&str> = HashSet::new();
    for (sec, entries) in &c.kf.sections {
        if HANDLED.contains(&sec.as_str())
            || own.contains(&sec.as_str())
            || entries.is_empty()
            || !seen.insert(sec)
        {
            continue;
        }
        let keys: Vec<&str> = c.kf.entries(sec).map(|(k, _)| k).collect();
        w.push(format!(
            "{}: {name}: [{sec}] settings ({}) are not carried over",
            c.file,
            keys.join(", ")
        ));
    }
    if c.kf.has_section("proxy")
        && let Some(m) = c.kf.get("proxy", "method")
        && m != "none"
    {
        w.push(format!(
            "{}: {name}: proxy.method={m} is not carried over",
            c.file
        ));
    }
}

/// Checks one bond with the real parser; drops each refused key (with the
/// reason) until it passes. A bond whose name or slaves are refused is not
/// imported. Returns whether the bond is kept.
fn validate(d: &mut Draft, limits: &Limits, w: &mut Vec<String>) -> bool {
    for _ in 0..=d.entries.len() {
        let yaml = render_bond(d, None);
        match config::parse(&format!("bonds:\n{yaml}"), &d.file, limits) {
            Ok(cfg) => {
                w.extend(cfg.warnings);
                return true;
            }
            Err(errs) => {
                let mut removed: Vec<String> = Vec::new();
                for e in errs.0 {
                    if e.key.as_ref().is_some_and(|k| removed.contains(k)) {
                        continue;
                    }
                    let pos = e.key.as_deref().and_then(|k| {
                        d.entries
                            .iter()
                            .position(|(ek, _)| ek == k)
                            .filter(|_| !matches!(k, "name" | "slaves" | "mode"))
                    });
                    match pos {
                        Some(i) => {
                            let (k, v) = d.entries.remove(i);
                            let then = if k == "mtu" {
                                "; the bond and its slaves get the default 1500"
                            } else {
                                ""
                            };
                            w.push(format!(
                                "{}: bond {}: `{k}: {}` is not carried over: {}{then}",
                                d.file,
                                d.name,
                                v.show(),
                                e.reason
                            ));
                            removed.push(k);
                        }
                        None => {
                            w.push(format!("{e}; bond {} not imported", d.name));
                            return false;
                        }
                    }
                }
            }
        }
    }
    false
}

// ---------------------------------------------------------------------------
// YAML

fn render(bonds: &[Draft], conns: &[Conn], header: bool) -> String {
    let mut s = String::new();
    if header {
        let ids: Vec<String> = bonds
            .iter()
            .flat_map(|b| std::iter::once(b.conn).chain(b.ports.iter().copied()))
            .map(|i| shell_quote(&conns[i].id))
            .collect();
        let slaves: Vec<String> = bonds
            .iter()
            .flat_map(|b| b.ports.iter().filter_map(|&p| conns[p].ifname.clone()))
            .collect();
        let unmanaged: Vec<String> = slaves
            .iter()
            .map(|s| format!("interface-name:{s}"))
            .collect();
        s.push_str(
            "# Imported from NetworkManager keyfiles by `bondd import-nm`.\n\
             # Review it, then: bondd check --config /etc/bondd/bond.yaml\n\
             #\n\
             # Before starting bondd, take these bonds and their slaves away from\n\
             # NetworkManager, or it creates a kernel bond of the same name:\n",
        );
        let _ = writeln!(s, "#   nmcli connection delete {}", ids.join(" "));
        s.push_str("# and in /etc/NetworkManager/conf.d/bondd.conf:\n");
        let _ = writeln!(
            s,
            "#   [keyfile]\n#   unmanaged-devices={}",
            unmanaged.join(";")
        );
        s.push_str("bonds:\n");
    }
    for (i, b) in bonds.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&render_bond(b, Some(conns)));
    }
    s
}

fn render_bond(d: &Draft, conns: Option<&[Conn]>) -> String {
    let mut s = String::new();
    if let Some(conns) = conns {
        let c = &conns[d.conn];
        let _ = writeln!(
            s,
            "  # {} (connection {}, uuid {})",
            c.file,
            quote(&c.id),
            c.uuid
        );
        let ports: Vec<&str> = d.ports.iter().map(|&p| conns[p].file.as_str()).collect();
        let _ = writeln!(s, "  # ports: {}", ports.join(", "));
    }
    for (i, (k, v)) in d.entries.iter().enumerate() {
        let lead = if i == 0 { "  - " } else { "    " };
        let text = match v {
            Val::Scalar(x) => scalar(x),
            Val::List(l) => format!(
                "[{}]",
                l.iter().map(|x| scalar(x)).collect::<Vec<_>>().join(", ")
            ),
        };
        let _ = writeln!(s, "{lead}{k}: {text}");
    }
    s
}

/// A YAML scalar: plain where that reads back as the same string (or the
/// same integer), else double-quoted (JSON string syntax is valid YAML).
fn scalar(x: &str) -> String {
    let lower = x.to_ascii_lowercase();
    let plain = !x.is_empty()
        && x.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+/-".contains(c))
        && x.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !matches!(
            lower.as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
        )
        && !lower.starts_with("0x")
        && !lower.starts_with("0o")
        && (x.bytes().all(|b| b.is_ascii_digit()) || x.parse::<f64>().is_err());
    if plain {
        x.to_owned()
    } else {
        serde_json::to_string(x).unwrap_or_else(|_| format!("{x:?}"))
    }
}

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-/:@%=".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const LIMITS: Limits = Limits { max_mtu: 3500 };

    fn fixture(case: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/nm")
            .join(case)
    }

    fn run(case: &str) -> Import {
        let imp = import_dir(&fixture(case)).expect("import");
        let cfg = config::parse(&imp.yaml, case, &LIMITS)
            .unwrap_or_else(|e| panic!("{case}: output does not parse:\n{e}\n{}", imp.yaml));
        assert!(!cfg.bonds.is_empty());
        imp
    }

    /// The YAML without the header comment.
    fn body(yaml: &str) -> &str {
        &yaml[yaml.find("bonds:\n").expect("bonds:")..]
    }

    fn has(warnings: &[String], parts: &[&str]) {
        assert!(
            warnings.iter().any(|w| parts.iter().all(|p| w.contains(p))),
            "no warning with {parts:?} in:\n{}",
            warnings.join("\n")
        );
    }

    #[test]
    fn active_backup_golden() {
        let imp = run("active-backup");
        assert_eq!(
            body(&imp.yaml),
            r#"bonds:
  # bond0.nmconnection (connection "bond0", uuid 4a9c6c0e-3d57-4f1e-9b7e-2f3c1f0d5a11)
  # ports: bond-slave-eth1.nmconnection, bond0-port2.nmconnection
  - name: bond0
    mode: active-backup
    slaves: [eth1, eth2]
    mac: "02:00:00:00:10:01"
    miimon: 100
    primary: eth1
    addresses: [198.18.10.2/24, "2001:2:0:10::2/64"]
    gateway: 198.18.10.1
"#
        );
        assert!(imp.warnings.is_empty(), "{:#?}", imp.warnings);
        assert!(
            imp.yaml
                .contains("nmcli connection delete bond0 bond-slave-eth1 bond0-port2\n")
        );
        assert!(
            imp.yaml
                .contains("unmanaged-devices=interface-name:eth1;interface-name:eth2\n")
        );
        let cfg = config::parse(&imp.yaml, "x", &LIMITS).unwrap();
        let b = &cfg.bonds[0];
        assert_eq!(b.mode, Mode::ActiveBackup);
        assert_eq!(b.primary.as_deref(), Some("eth1"));
        assert_eq!(b.mac, Some([2, 0, 0, 0, 0x10, 1]));
        assert_eq!(b.gateways.len(), 1);
    }

    #[test]
    fn lacp_options_string_uuid_master_priority() {
        let imp = run("lacp");
        assert_eq!(
            body(&imp.yaml),
            r#"bonds:
  # bond1.nmconnection (connection "bond1", uuid 7d3e0f1a-8b2c-4e5d-a6f7-0123456789ab)
  # ports: bond1-port-eth4.nmconnection, bond1-port-eth3.nmconnection
  - name: bond1
    mode: 802.3ad
    slaves: [eth4, eth3]
    miimon: 100
    xmit_hash_policy: layer3+4
    lacp_rate: fast
    addresses: [198.18.20.2/24]
    gateway: 198.18.20.1
"#
        );
        let w = &imp.warnings;
        has(w, &["bond1.nmconnection", "`mtu: 9000`", "at most 3500"]);
        has(w, &["DNS servers (198.18.20.53)"]);
        has(w, &["search domains (example.net)"]);
        has(w, &["MAC changes"]);
        // Ports with the bond's MTU are not reported on their own.
        assert!(!w.iter().any(|x| x.contains("port eth")), "{w:#?}");
        assert_eq!(w.len(), 4, "{w:#?}");
    }

    #[test]
    fn dhcp_and_what_does_not_carry() {
        let imp = run("dhcp");
        assert_eq!(
            body(&imp.yaml),
            r#"bonds:
  # Bond connection 1.nmconnection (connection "Bond connection 1", uuid 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d)
  # ports: bond-slave-eth1.nmconnection, bond-slave-eth2.nmconnection
  - name: bond0
    mode: balance-xor
    slaves: [eth1, eth2]
    miimon: 100
    xmit_hash_policy: layer2+3
"#
        );
        assert!(imp.yaml.contains(
            "nmcli connection delete 'Bond connection 1' bond-slave-eth1 bond-slave-eth2\n"
        ));
        let w = &imp.warnings;
        has(
            w,
            &[
                "ipv4.method=auto (DHCP) and ipv6.method=auto (SLAAC/DHCPv6) not carried over",
                "`nmcli connection add type ethernet ifname bond0 con-name bond0-ip \
                 ipv4.method auto ipv6.method auto`",
            ],
        );
        has(w, &["DNS servers (198.18.0.53)"]);
        has(w, &["permissions=user:alice;"]);
        has(w, &["unknown bond option `foo_bar=1`"]);
        has(w, &["`primary: eth1`", "not supported in mode balance-xor"]);
        has(w, &["bond-slave-eth9.nmconnection", "bond9", "skipped"]);
        has(w, &["vlan-bond0.10.nmconnection", "VLAN 10 on bond0"]);
        has(w, &["MAC changes"]);
        assert_eq!(w.len(), 8, "{w:#?}");
    }

    fn import_texts(files: &[(&str, &str)]) -> Result<Import> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let imp = import(&files, &LIMITS)?;
        config::parse(&imp.yaml, "x", &LIMITS).expect("output parses");
        Ok(imp)
    }

    const PORT1: &str =
        "[connection]\nid=p1\ntype=ethernet\ninterface-name=eth1\nmaster=bond0\nslave-type=bond\n";
    const PORT2: &str = "[connection]\nid=p2\ntype=802-3-ethernet\ninterface-name=eth2\ncontroller=b0\nport-type=bond\n";

    fn bond_file(bond: &str, ipv4: &str) -> String {
        format!(
            "# written by hand\n[connection]\nid=b0\nuuid=u-1\ntype=bond\ninterface-name=bond0\n\n\
             [bond]\n{bond}\n\n[ipv4]\n{ipv4}\n\n[ipv6]\nmethod=ignore\n"
        )
    }

    #[test]
    fn nm_miimon_default_and_arp_normalisation() {
        // No miimon, no arp_interval: NetworkManager's miimon=100.
        let imp = import_texts(&[
            ("b.nmconnection", &bond_file("mode=1", "method=disabled")),
            ("p1.nmconnection", PORT1),
        ])
        .unwrap();
        assert!(imp.yaml.contains("    miimon: 100\n"));

        // miimon set: ARP monitoring is dropped, as NetworkManager does.
        let imp = import_texts(&[
            (
                "b.nmconnection",
                &bond_file(
                    "mode=active-backup\nmiimon=200\narp_interval=1000\narp_ip_target=198.18.0.1,198.18.0.2",
                    "method=disabled",
                ),
            ),
            ("p1.nmconnection", PORT1),
        ])
        .unwrap();
        assert!(imp.yaml.contains("    miimon: 200\n"));
        assert!(!imp.yaml.contains("arp_"), "{}", imp.yaml);
        has(&imp.warnings, &["`arp_interval=1000` dropped"]);
        has(
            &imp.warnings,
            &["`arp_ip_target=198.18.0.1,198.18.0.2` dropped"],
        );

        // ARP monitoring without miimon: kept, as a list, and flagged as not
        // implemented in bondd yet.
        let imp = import_texts(&[
            (
                "b.nmconnection",
                &bond_file(
                    "options=mode=active-backup,arp_interval=1000,arp_ip_target=198.18.0.1,198.18.0.2",
                    "method=disabled",
                ),
            ),
            ("p1.nmconnection", PORT1),
        ])
        .unwrap();
        assert!(
            imp.yaml
                .contains("    arp_interval: 1000\n    arp_ip_target: [198.18.0.1, 198.18.0.2]\n"),
            "{}",
            imp.yaml
        );
        assert!(!imp.yaml.contains("miimon"));
        has(&imp.warnings, &["does not implement ARP monitoring"]);
    }

    #[test]
    fn addresses_aliases_and_escapes() {
        let imp = import_texts(&[
            (
                "b.nmconnection",
                &bond_file(
                    "mode=balance-rr\nnum_unsol_na=2\npacket_per_slave=3",
                    "address2=198.18.1.3/24\naddress1=198.18.1.2/24,198.18.1.1\nroute1=198.51.100.0/24,198.18.1.254\nmethod=manual",
                ),
            ),
            ("p1.nmconnection", PORT1),
            ("p2.nmconnection", PORT2),
        ])
        .unwrap();
        assert!(
            imp.yaml.contains("    slaves: [eth1, eth2]\n"),
            "{}",
            imp.yaml
        );
        assert!(
            imp.yaml.contains(
                "    addresses: [198.18.1.2/24, 198.18.1.3/24]\n    gateway: 198.18.1.1\n"
            ),
            "{}",
            imp.yaml
        );
        has(&imp.warnings, &["unknown bond option `packet_per_slave=3`"]);
        // num_unsol_na is written as num_grat_arp, then refused in balance-rr.
        has(
            &imp.warnings,
            &[
                "`num_grat_arp: 2` is not carried over",
                "not supported in mode balance-rr",
            ],
        );
        has(
            &imp.warnings,
            &["static IPv4 routes (198.51.100.0/24,198.18.1.254)"],
        );

        assert_eq!(unescape(r"a\sb\\c"), r"a b\c");
        assert_eq!(
            split_list(r"a;b\;c;;"),
            vec!["a".to_string(), "b;c".to_string()]
        );
    }

    #[test]
    fn no_bond_is_an_error_and_bad_files_are_skipped() {
        let e = import_texts(&[("p1.nmconnection", PORT1), ("junk.nmconnection", "garbage")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no bond connection"), "{e}");
        assert!(e.contains("junk.nmconnection: not a keyfile"), "{e}");
        assert!(e.contains("names bond bond0"), "{e}");

        // A bond without ports is not imported; the others are.
        let lonely = "[connection]\nid=b9\ntype=bond\ninterface-name=bond9\n[bond]\nmode=1\n[ipv4]\nmethod=disabled\n[ipv6]\nmethod=ignore\n";
        let imp = import_texts(&[
            ("b.nmconnection", &bond_file("mode=1", "method=disabled")),
            ("b9.nmconnection", lonely),
            ("p1.nmconnection", PORT1),
        ])
        .unwrap();
        has(&imp.warnings, &["bond bond9 has no port connections"]);
        assert!(!imp.yaml.contains("bond9"));
    }

    #[test]
    fn jumbo_mtu_dropped_literal_mac_kept() {
        let bond = "[connection]\nid=b0\ntype=bond\ninterface-name=bond0\n[ethernet]\nmtu=3000\ncloned-mac-address=stable\n[bond]\nmode=802.3ad\n[ipv4]\nmethod=disabled\n[ipv6]\nmethod=disabled\n";
        let imp = import_texts(&[("b.nmconnection", bond), ("p1.nmconnection", PORT1)]).unwrap();
        assert!(imp.yaml.contains("    mtu: 3000\n"), "{}", imp.yaml);
        has(
            &imp.warnings,
            &["cloned-mac-address=stable is not carried over"],
        );
        has(&imp.warnings, &["ipv6.method=disabled", "disable_ipv6=1"]);
    }

    #[test]
    fn scalars_round_trip() {
        for (x, want) in [
            ("active-backup", "active-backup"),
            ("802.3ad", "802.3ad"),
            ("100", "100"),
            ("layer3+4", "layer3+4"),
            ("on", "\"on\""),
            ("1.5", "\"1.5\""),
            ("2001:db8::1", "\"2001:db8::1\""),
            ("a b", "\"a b\""),
        ] {
            assert_eq!(scalar(x), want);
        }
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
