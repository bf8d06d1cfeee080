//! bondd configuration: parse and validate `bond.yaml`.
//!
//! Option names, values, ranges, defaults and per-mode support follow the
//! kernel bonding driver, so a bond described for the kernel (sysfs, `ip
//! link`, or an nmcli `bond.options` line pasted into `options:`) means the
//! same here. Validation is stricter than the kernel where the kernel would
//! silently ignore an option: a config that says something bondd will not do
//! is rejected with a message naming file, bond and key.
//!
//! Every error found is reported, not only the first, so one edit cycle
//! fixes a whole file.

mod enums;
mod node;
mod options;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use enums::{
    AdSelect, ArpAllTargets, ArpValidate, FailOverMac, InterfaceKind, LacpRate, Mode,
    ParseEnumError, PrimaryReselect, XdpMode, XmitHashPolicy, XmitHashTable,
};

use node::Node;

/// Limits that depend on the host, passed in by the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest MTU the XDP attachment on the slaves allows.
    pub max_mtu: u32,
}

/// One problem in the config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    pub file: String,
    pub bond: Option<String>,
    pub key: Option<String>,
    pub reason: String,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut s = self.file.clone();
        if let Some(b) = &self.bond {
            s.push_str(&format!(": bond \"{b}\""));
        }
        if let Some(k) = &self.key {
            s.push_str(&format!(": key \"{k}\""));
        }
        s.push_str(": ");
        s.push_str(&self.reason);
        s
    }
}

/// All problems found; never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// A validated config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub bonds: Vec<BondConfig>,
    /// `metrics: listen:`: where Prometheus scrapes; `None` = `off`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `control: socket:`: the control socket path, if set.
    pub control_socket: Option<String>,
    /// Normalisations applied (as the kernel would) and deprecations; one
    /// line each, in the same format as errors.
    pub warnings: Vec<String>,
}

/// An interface address with its prefix length, e.g. `192.0.2.10/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpPrefix {
    type Err = String;

    /// The prefix is required: guessing /24 or /64 silently is how hosts end
    /// up with wrong on-link routes.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` has no /prefix (write e.g. `{s}/24`)"))?;
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("prefix `/{p}` of `{s}` is not a number in 0..={max}"))?;
        if addr.is_unspecified() || addr.is_multicast() {
            return Err(format!("`{addr}` cannot be an interface address"));
        }
        Ok(IpPrefix { addr, prefix })
    }
}

/// One bond, with every kernel option resolved to its value (kernel default
/// where not set). Delays are in milliseconds, `lp_interval` in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondConfig {
    pub name: String,
    pub mode: Mode,
    pub slaves: Vec<String>,
    pub interface: InterfaceKind,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub addresses: Vec<IpPrefix>,
    pub gateways: Vec<IpAddr>,
    pub miimon: u32,
    pub updelay: u32,
    pub downdelay: u32,
    pub use_carrier: bool,
    pub arp_interval: u32,
    pub arp_ip_target: Vec<Ipv4Addr>,
    pub ns_ip6_target: Vec<Ipv6Addr>,
    pub arp_validate: ArpValidate,
    pub arp_all_targets: ArpAllTargets,
    pub arp_missed_max: u8,
    pub primary: Option<String>,
    pub primary_reselect: PrimaryReselect,
    pub fail_over_mac: FailOverMac,
    /// Also `num_unsol_na`: one kernel value under two names.
    pub num_grat_arp: u8,
    pub peer_notif_delay: u32,
    pub resend_igmp: u8,
    pub all_slaves_active: bool,
    pub packets_per_slave: u16,
    pub xmit_hash_policy: XmitHashPolicy,
    /// bondd-only (not a kernel option): how the hash picks a slave.
    pub xmit_hash_table: XmitHashTable,
    pub lacp_rate: LacpRate,
    pub lacp_active: bool,
    pub ad_select: AdSelect,
    pub ad_actor_sys_prio: u16,
    /// `None` = use the bond MAC (the kernel's 00:00:00:00:00:00).
    pub ad_actor_system: Option<[u8; 6]>,
    pub ad_user_port_key: u16,
    pub min_links: u32,
    pub coupled_control: bool,
    /// bondd-only (Open vSwitch's `lacp-fallback-ab`): active-backup while
    /// no LACP partner answers on any slave.
    pub lacp_fallback_ab: bool,
    pub broadcast_neighbor: bool,
    pub tlb_dynamic_lb: bool,
    pub lp_interval: u32,
    /// bondd-only: data-plane worker threads. Worker `w` owns queue `q` of
    /// every slave where `q % workers == w`, and queue `w` of the logical
    /// veth, so each needs at least that many queues.
    pub workers: u32,
    /// bondd-only: the CPU each worker is pinned to; empty = not pinned.
    pub worker_cpus: Vec<u32>,
    /// bondd-only: preferred busy polling; the workers never sleep and run
    /// the slaves' NAPI themselves (a core each at 100%).
    pub busy_poll: bool,
    /// bondd-only: how the XDP program attaches to the slaves.
    pub xdp_mode: XdpMode,
    /// Canonical names (kernel option names, plus `name`, `slaves`,
    /// `interface`, `mac`, `mtu`, `addresses`, `gateway`) given in the file,
    /// so the daemon can refuse options it does not implement yet without
    /// tripping over defaults.
    pub explicit: BTreeSet<String>,
}

impl BondConfig {
    /// A bond with kernel defaults; the parser starts from this.
    pub fn new(name: impl Into<String>, slaves: Vec<String>) -> Self {
        BondConfig {
            name: name.into(),
            mode: Mode::BalanceRr,
            slaves,
            interface: InterfaceKind::Veth,
            mac: None,
            mtu: 1500,
            addresses: Vec::new(),
            gateways: Vec::new(),
            miimon: 0,
            updelay: 0,
            downdelay: 0,
            use_carrier: true,
            arp_interval: 0,
            arp_ip_target: Vec::new(),
            ns_ip6_target: Vec::new(),
            arp_validate: ArpValidate::None,
            arp_all_targets: ArpAllTargets::Any,
            arp_missed_max: 2,
            primary: None,
            primary_reselect: PrimaryReselect::Always,
            fail_over_mac: FailOverMac::None,
            num_grat_arp: 1,
            peer_notif_delay: 0,
            resend_igmp: 1,
            all_slaves_active: false,
            packets_per_slave: 1,
            xmit_hash_policy: XmitHashPolicy::Layer2,
            xmit_hash_table: XmitHashTable::Modulo,
            lacp_rate: LacpRate::Slow,
            lacp_active: true,
            ad_select: AdSelect::Stable,
            ad_actor_sys_prio: 65535,
            ad_actor_system: None,
            ad_user_port_key: 0,
            min_links: 0,
            coupled_control: true,
            lacp_fallback_ab: false,
            broadcast_neighbor: false,
            tlb_dynamic_lb: true,
            lp_interval: 1,
            workers: 1,
            worker_cpus: Vec::new(),
            busy_poll: false,
            xdp_mode: XdpMode::Auto,
            explicit: BTreeSet::new(),
        }
    }

    /// The bond's MAC: `mac` if set, else derived from the bond name only.
    /// The kernel takes the first slave's MAC, so the bond MAC (and the LACP
    /// system id) changes with enslave order and NIC swaps; a name-derived
    /// locally administered MAC stays the same across restarts and hardware.
    pub fn bond_mac(&self) -> [u8; 6] {
        self.mac.unwrap_or_else(|| derived_mac(&self.name))
    }

    /// The bond MAC for a host: `mac` if set, else derived from the host's
    /// identity (`/etc/machine-id`, passed in) and the bond name, as
    /// systemd's `MACAddressPolicy=persistent` does. Two hosts each with a
    /// `bond0` on one LAN (or LACP partners) must not share a MAC; one host
    /// gets the same MAC on every start, whatever its slaves.
    pub fn bond_mac_for_host(&self, host_id: &[u8]) -> [u8; 6] {
        if let Some(m) = self.mac {
            return m;
        }
        let mut salted = Vec::with_capacity(host_id.len() + 1 + self.name.len());
        salted.extend_from_slice(host_id);
        salted.push(b'/');
        salted.extend_from_slice(self.name.as_bytes());
        derived_mac_bytes(&salted)
    }

    /// Whether `key` was given in the file (YAML key or `options`). Aliases
    /// (`num_unsol_na`, `active_slave`) answer for their canonical option.
    pub fn explicitly_set(&self, key: &str) -> bool {
        self.explicit.contains(options::canonical_name(key))
    }
}

/// FNV-1a 64 of the name, first six bytes, with the locally administered
/// bit set and the multicast bit cleared.
fn derived_mac(name: &str) -> [u8; 6] {
    derived_mac_bytes(name.as_bytes())
}

fn derived_mac_bytes(input: &[u8]) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// Formats a MAC as the kernel prints it.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (hex, either case), the form sysfs and
/// `ip link` print.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.trim().split(':');
    for byte in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Linux `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or
/// whitespace.
pub fn check_ifname(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{name}` is not a valid interface name: {why}"));
    if name.is_empty() {
        return Err("an interface name cannot be empty".into());
    }
    if name.len() > 15 {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return bad(&format!("contains {c:?}"));
    }
    Ok(())
}

/// Keys of a bond that are not kernel bonding options.
const BOND_KEYS: &[&str] = &[
    "name",
    "slaves",
    "interface",
    "mac",
    "mtu",
    "addresses",
    "gateway",
    "options",
    "workers",
    "worker_cpus",
    "busy_poll",
    "xdp_mode",
];

/// Error/warning sink for one file.
struct Cx<'a> {
    file: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl Cx<'_> {
    fn make(&self, bond: Option<&str>, key: Option<&str>, reason: String) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            bond: bond.map(str::to_owned),
            key: key.map(str::to_owned),
            reason,
        }
    }

    fn err(&mut self, bond: Option<&str>, key: Option<&str>, reason: impl Into<String>) {
        let e = self.make(bond, key, reason.into());
        self.errors.push(e);
    }

    fn warn(&mut self, bond: &str, key: Option<&str>, reason: impl Into<String>) {
        let w = self.make(Some(bond), key, reason.into()).to_string();
        self.warnings.push(w);
    }
}

/// Parses and validates a config file's text. `file` is only used in
/// messages. Pure: no file system access.
/// Where metrics listen unless `metrics: listen:` says otherwise:
/// localhost only, a port of bondd's own.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9479";

fn scalar_text(n: &Node) -> Option<String> {
    match n {
        Node::Str(s) => Some(s.clone()),
        Node::Bool(b) => Some(if *b { "on".into() } else { "off".into() }),
        Node::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn parse_metrics(
    cx: &mut Cx,
    v: &Node,
    default: Option<std::net::SocketAddr>,
) -> Option<std::net::SocketAddr> {
    let Node::Map(entries) = v else {
        cx.err(
            None,
            Some("metrics"),
            format!(
                "expected a mapping like `listen: 127.0.0.1:9479`, got {}",
                v.describe()
            ),
        );
        return default;
    };
    let mut out = default;
    for (k, val) in entries {
        if k != "listen" {
            let hint = options::did_you_mean(k, &["listen"]);
            cx.err(
                None,
                Some(&format!("metrics.{k}")),
                format!("unknown key{hint}"),
            );
            continue;
        }
        match scalar_text(val).as_deref() {
            Some("off") | Some("false") => out = None,
            Some(t) => match t.parse::<std::net::SocketAddr>() {
                Ok(a) => out = Some(a),
                Err(_) => cx.err(
                    None,
                    Some("metrics.listen"),
                    format!("expected ADDRESS:PORT (e.g. 127.0.0.1:9479, [::1]:9479) or `off`, got {t:?}"),
                ),
            },
            None => cx.err(
                None,
                Some("metrics.listen"),
                format!("expected ADDRESS:PORT or `off`, got {}", val.describe()),
            ),
        }
    }
    out
}

fn parse_control(cx: &mut Cx, v: &Node) -> Option<String> {
    let Node::Map(entries) = v else {
        cx.err(
            None,
            Some("control"),
            format!(
                "expected a mapping like `socket: /run/bondd/bondd.sock`, got {}",
                v.describe()
            ),
        );
        return None;
    };
    let mut out = None;
    for (k, val) in entries {
        if k != "socket" {
            let hint = options::did_you_mean(k, &["socket"]);
            cx.err(
                None,
                Some(&format!("control.{k}")),
                format!("unknown key{hint}"),
            );
            continue;
        }
        match val {
            Node::Str(p) if p.starts_with('/') => out = Some(p.clone()),
            other => cx.err(
                None,
                Some("control.socket"),
                format!("expected an absolute path, got {}", other.describe()),
            ),
        }
    }
    out
}

pub fn parse(text: &str, file: &str, limits: &Limits) -> Result<Config, ConfigErrors> {
    let mut cx = Cx {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let root = match node::parse_yaml(text) {
        Ok(n) => n,
        Err(e) => {
            cx.err(None, None, e);
            return Err(ConfigErrors(cx.errors));
        }
    };
    let mut bonds = Vec::new();
    let mut metrics_listen = Some(DEFAULT_METRICS_LISTEN.parse().expect("constant address"));
    let mut control_socket = None;
    match root {
        Node::Map(entries) => {
            let mut seen_bonds = false;
            for (k, v) in &entries {
                if k == "metrics" {
                    metrics_listen = parse_metrics(&mut cx, v, metrics_listen);
                    continue;
                }
                if k == "control" {
                    control_socket = parse_control(&mut cx, v);
                    continue;
                }
                if k != "bonds" {
                    let hint = options::did_you_mean(k, &["bonds", "metrics", "control"]);
                    cx.err(
                        None,
                        Some(k),
                        format!(
                            "unknown top-level key; allowed: `bonds`, `metrics`, `control`{hint}"
                        ),
                    );
                    continue;
                }
                seen_bonds = true;
                match v {
                    Node::Seq(items) if !items.is_empty() => {
                        for (i, item) in items.iter().enumerate() {
                            bonds.push(options::parse_bond(&mut cx, i, item, limits));
                        }
                    }
                    Node::Seq(_) => cx.err(None, Some("bonds"), "the list of bonds is empty"),
                    other => cx.err(
                        None,
                        Some("bonds"),
                        format!("expected a list of bonds, got {}", other.describe()),
                    ),
                }
            }
            if !seen_bonds {
                cx.err(None, None, "missing `bonds:` (a list of bonds)");
            }
        }
        Node::Null => cx.err(
            None,
            None,
            "the file is empty; expected `bonds:` with a list of bonds",
        ),
        other => cx.err(
            None,
            None,
            format!("expected a mapping with `bonds:`, got {}", other.describe()),
        ),
    }
    options::cross_bond_checks(&mut cx, &bonds);
    if cx.errors.is_empty() {
        Ok(Config {
            bonds,
            metrics_listen,
            control_socket,
            warnings: cx.warnings,
        })
    } else {
        Err(ConfigErrors(cx.errors))
    }
}
