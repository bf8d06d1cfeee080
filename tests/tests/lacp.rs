//! 802.3ad (LACP) end to end: the real bondd binary against a second bondd
//! and against Open vSwitch's userspace LACP, with tshark as the decoder of
//! bondd's LACPDUs.
//!
//! Needs root, a built bondd (`cargo build --workspace --bins`), and — these
//! tests FAIL rather than skip without them — `ovs-vswitchd`, `ovsdb-server`,
//! `ovsdb-tool`, `ovs-vsctl`, `ovs-appctl` (Debian `openvswitch-switch`) and
//! `tshark` (Debian `tshark`); `.ci/install` installs them.
//!
//! Topologies (all links created inside the test's own namespaces; v4 only,
//! IPv6 is off everywhere so that nothing but the test's traffic and LACP
//! moves):
//!
//! ```text
//! back to back:   ns A bond0 [a0 a1] ═══ veth pairs ═══ [b0 b1] bond1 ns B
//! wire tap:       ns A [a0 a1] ── [m0a m1a] ns M [m0b m1b] ── [b0 b1] ns B
//!                 (tc u32 + mirred ma_i<->mb_i; tshark listens on M)
//! OVS:            ns O OVS br [o0 o1] + tap "br" 198.18.0.2 ═══ [b0 b1] bond0 ns B
//! ```
//!
//! Every OVS process is started by the test inside its namespace, in the
//! foreground, with a private run/db directory; a Drop guard kills it by PID
//! and removes the directory (also on panic).

use bondd_tests::*;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Both ends must be collecting and distributing this soon after the later
/// daemon is ready (mux wait_while is 2 s).
const NEGOTIATE_LIMIT: Duration = Duration::from_secs(5);
const BOND_A_V4: &str = "198.18.0.1";
const BOND_B_V4: &str = "198.18.0.2";
/// Actor state with Activity, Timeout, Aggregation, Sync, Collecting and
/// Distributing: a fast active port in use.
const STATE_FAST_IN_USE: u64 = 0x3f;
const ST_DEFAULTED: u64 = 0x40;
const ST_EXPIRED: u64 = 0x80;

// ---------------------------------------------------------------------------
// tools

/// The path of a tool the 802.3ad tests need. Missing tools are a failure,
/// not a skip: CI installs them (`.ci/install`).
fn require_tool(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(d));
    }
    for d in dirs {
        let p = d.join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "required tool `{tool}` not found (PATH and /usr/sbin): install the Debian package \
         `{package}` (.ci/install does: apt-get install {package})"
    );
}

fn require_ovs() {
    for t in [
        "ovs-vswitchd",
        "ovsdb-server",
        "ovsdb-tool",
        "ovs-vsctl",
        "ovs-appctl",
    ] {
        require_tool(t, "openvswitch-switch");
    }
    assert!(
        Path::new(OVS_SCHEMA).exists(),
        "{OVS_SCHEMA} missing: install the Debian package openvswitch-switch (.ci/install)"
    );
}

/// Full path of an Open vSwitch program (ovs-vswitchd and ovsdb-server
/// live in /usr/sbin, which a test's PATH may lack).
fn ovs_tool(tool: &str) -> String {
    require_tool(tool, "openvswitch-switch")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

fn bondd_path() -> String {
    bondd_bin().to_str().expect("utf-8 bondd path").to_owned()
}

fn out_text(o: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
fn wait_for<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        thread::sleep(every);
    }
}

// ---------------------------------------------------------------------------
// a minimal JSON reader (for `bondd status --json`; the test crate has no
// serde)

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let b = text.as_bytes();
        let mut i = 0;
        let v = json_value(b, &mut i)?;
        json_ws(b, &mut i);
        if i != b.len() {
            return Err(format!("trailing data at {i}"));
        }
        Ok(v)
    }

    /// `a.b.0.c`: object keys and array indices.
    fn at(&self, path: &str) -> &Json {
        let mut cur = self;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            cur = match cur {
                Json::Obj(kv) => kv
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .unwrap_or(&Json::Null),
                Json::Arr(v) => key
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| v.get(n))
                    .unwrap_or(&Json::Null),
                _ => &Json::Null,
            };
        }
        cur
    }

    fn u64(&self, path: &str) -> u64 {
        match self.at(path) {
            Json::Num(n) => *n as u64,
            other => panic!("JSON {path}: not a number: {other:?}"),
        }
    }

    fn opt_u64(&self, path: &str) -> Option<u64> {
        match self.at(path) {
            Json::Num(n) => Some(*n as u64),
            _ => None,
        }
    }

    fn bool(&self, path: &str) -> bool {
        match self.at(path) {
            Json::Bool(b) => *b,
            other => panic!("JSON {path}: not a bool: {other:?}"),
        }
    }

    fn str(&self, path: &str) -> String {
        match self.at(path) {
            Json::Str(s) => s.clone(),
            other => panic!("JSON {path}: not a string: {other:?}"),
        }
    }

    fn len(&self) -> usize {
        match self {
            Json::Arr(v) => v.len(),
            _ => 0,
        }
    }
}

fn json_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn json_value(b: &[u8], i: &mut usize) -> Result<Json, String> {
    json_ws(b, i);
    let Some(&c) = b.get(*i) else {
        return Err("unexpected end".into());
    };
    match c {
        b'{' => {
            *i += 1;
            let mut kv = Vec::new();
            json_ws(b, i);
            if b.get(*i) == Some(&b'}') {
                *i += 1;
                return Ok(Json::Obj(kv));
            }
            loop {
                json_ws(b, i);
                let Json::Str(k) = json_value(b, i)? else {
                    return Err(format!("object key expected at {i}"));
                };
                json_ws(b, i);
                if b.get(*i) != Some(&b':') {
                    return Err(format!("':' expected at {i}"));
                }
                *i += 1;
                let v = json_value(b, i)?;
                kv.push((k, v));
                json_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') => {
                        *i += 1;
                        return Ok(Json::Obj(kv));
                    }
                    _ => return Err(format!("',' or '}}' expected at {i}")),
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut v = Vec::new();
            json_ws(b, i);
            if b.get(*i) == Some(&b']') {
                *i += 1;
                return Ok(Json::Arr(v));
            }
            loop {
                v.push(json_value(b, i)?);
                json_ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b']') => {
                        *i += 1;
                        return Ok(Json::Arr(v));
                    }
                    _ => return Err(format!("',' or ']' expected at {i}")),
                }
            }
        }
        b'"' => {
            *i += 1;
            let mut s = String::new();
            loop {
                let Some(&c) = b.get(*i) else {
                    return Err("unterminated string".into());
                };
                *i += 1;
                match c {
                    b'"' => return Ok(Json::Str(s)),
                    b'\\' => {
                        let e = *b.get(*i).ok_or("bad escape")?;
                        *i += 1;
                        match e {
                            b'n' => s.push('\n'),
                            b't' => s.push('\t'),
                            b'r' => s.push('\r'),
                            b'b' => s.push('\u{8}'),
                            b'f' => s.push('\u{c}'),
                            b'u' => {
                                let hex = std::str::from_utf8(b.get(*i..*i + 4).ok_or("bad \\u")?)
                                    .map_err(|e| e.to_string())?;
                                let n = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                s.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                                *i += 4;
                            }
                            other => s.push(other as char),
                        }
                    }
                    _ => {
                        // Copy a whole UTF-8 sequence.
                        let start = *i - 1;
                        let mut end = *i;
                        while end < b.len() && (b[end] & 0xc0) == 0x80 {
                            end += 1;
                        }
                        s.push_str(&String::from_utf8_lossy(&b[start..end]));
                        *i = end;
                    }
                }
            }
        }
        b't' if b[*i..].starts_with(b"true") => {
            *i += 4;
            Ok(Json::Bool(true))
        }
        b'f' if b[*i..].starts_with(b"false") => {
            *i += 5;
            Ok(Json::Bool(false))
        }
        b'n' if b[*i..].starts_with(b"null") => {
            *i += 4;
            Ok(Json::Null)
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            let t = std::str::from_utf8(&b[start..*i]).map_err(|e| e.to_string())?;
            t.parse::<f64>()
                .map(Json::Num)
                .map_err(|e| format!("bad number {t:?} at {start}: {e}"))
        }
    }
}

// ---------------------------------------------------------------------------
// bondd status

/// One slave's 802.3ad view, from `bondd status --json`.
#[derive(Debug, Clone, PartialEq)]
struct PortView {
    name: String,
    perm_mac: String,
    aggregator: Option<u64>,
    collecting: bool,
    distributing: bool,
    actor_state: u64,
    actor_key: u64,
    actor_port: u64,
    actor_system: String,
    actor_prio: u64,
    partner_system: String,
    partner_state: u64,
    partner_key: u64,
    pdu_rx: u64,
    pdu_tx: u64,
}

/// A bond's 802.3ad view.
#[derive(Debug, Clone)]
struct BondView {
    ports: Vec<PortView>,
    /// (id, number of ports, partner MAC).
    active_agg: Option<(u64, u64, String)>,
    json: Json,
}

impl BondView {
    fn all_in_use(&self) -> bool {
        !self.ports.is_empty() && self.ports.iter().all(|p| p.collecting && p.distributing)
    }

    fn port(&self, name: &str) -> &PortView {
        self.ports
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no slave {name} in status {:?}", self.ports))
    }

    fn summary(&self) -> String {
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}: agg {:?} coll {} dist {} actor 0x{:02x} partner {} 0x{:02x} pdus rx {} tx {}",
                    p.name,
                    p.aggregator,
                    p.collecting,
                    p.distributing,
                    p.actor_state,
                    p.partner_system,
                    p.partner_state,
                    p.pdu_rx,
                    p.pdu_tx
                )
            })
            .collect();
        format!("active agg {:?}; {}", self.active_agg, ports.join("; "))
    }
}

/// `bondd status BOND --json` in `ns` (the daemon's default socket there).
fn try_status(ns: &Netns, bond: &str) -> Result<BondView, String> {
    let bin = bondd_path();
    let out = ns.exec(&[bin.as_str(), "status", bond, "--json"]);
    if !out.status.success() {
        return Err(out_text(&out));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let all = Json::parse(&text).map_err(|e| format!("{e}: {text}"))?;
    let b = all.at("0").clone();
    if b == Json::Null {
        return Err(format!("no bond in {text}"));
    }
    let mut ports = Vec::new();
    for i in 0..b.at("slaves").len() {
        let s = b.at(&format!("slaves.{i}"));
        let l = s.at("lacp");
        if *l == Json::Null {
            return Err(format!("slave {i} has no lacp section: {text}"));
        }
        ports.push(PortView {
            name: s.str("name"),
            perm_mac: s.str("perm_hwaddr"),
            aggregator: l.opt_u64("aggregator_id"),
            collecting: l.bool("collecting"),
            distributing: l.bool("distributing"),
            actor_state: l.u64("actor.port_state"),
            actor_key: l.u64("actor.key"),
            actor_port: l.u64("actor.port_number"),
            actor_system: l.str("actor.system_mac"),
            actor_prio: l.u64("actor.system_priority"),
            partner_system: l.str("partner.system_mac"),
            partner_state: l.u64("partner.port_state"),
            partner_key: l.u64("partner.key"),
            pdu_rx: l.u64("lacpdu_rx"),
            pdu_tx: l.u64("lacpdu_tx"),
        });
    }
    let agg = b.at("lacp.active_aggregator");
    let active_agg = match agg {
        Json::Arr(_) => Some((agg.u64("0"), agg.u64("1"), agg.str("4"))),
        _ => None,
    };
    Ok(BondView {
        ports,
        active_agg,
        json: b,
    })
}

fn status(ns: &Netns, bond: &str) -> BondView {
    try_status(ns, bond).unwrap_or_else(|e| panic!("bondd status {bond} in {}: {e}", ns.name()))
}

/// Waits until every port of `bond` collects and distributes; returns the
/// time it took (from now) or panics with the status and log.
fn wait_in_use(ns: &Netns, bond: &str, timeout: Duration, d: &Bondd) -> (Duration, BondView) {
    let t0 = Instant::now();
    let mut last = String::new();
    let got = wait_for(timeout, Duration::from_millis(25), || {
        match try_status(ns, bond) {
            Ok(v) if v.all_in_use() => return Some(v),
            Ok(v) => last = v.summary(),
            Err(e) => last = e,
        }
        None
    });
    match got {
        Some(v) => (t0.elapsed(), v),
        None => panic!(
            "{bond}: not all ports collecting+distributing after {timeout:?}: {last}\nlog:\n{}",
            d.log()
        ),
    }
}

// ---------------------------------------------------------------------------
// configs and topologies

fn lacp_yaml(name: &str, slaves: &[&str], addr: &str, extra: &[&str]) -> String {
    let mut s = String::from("bonds:\n");
    s += &format!("  - name: {name}\n");
    s += "    mode: 802.3ad\n";
    let q: Vec<String> = slaves.iter().map(|x| format!("\"{x}\"")).collect();
    s += &format!("    slaves: [{}]\n", q.join(", "));
    s += "    interface: veth\n";
    s += "    miimon: 100\n";
    s += &format!("    addresses: [\"{addr}/24\"]\n");
    for e in extra {
        s += &format!("    {e}\n");
    }
    s
}

fn start_bondd(ns: &Netns, yaml: &str) -> Bondd {
    println!("config ({}):\n{yaml}", ns.name());
    Bondd::start(ns, yaml)
}

fn no_ipv6(ns: &Netns) {
    ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
    ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
}

/// Two hosts, A and B, whose slaves are wired pairwise by veth pairs.
struct BackToBack {
    a: Netns,
    b: Netns,
    a_sl: [String; 2],
    b_sl: [String; 2],
}

impl BackToBack {
    fn new() -> BackToBack {
        let a = Netns::new("A");
        let b = Netns::new("B");
        no_ipv6(&a);
        no_ipv6(&b);
        let a_sl = [unique_name("a0"), unique_name("a1")];
        let b_sl = [unique_name("b0"), unique_name("b1")];
        for i in 0..2 {
            veth(&a, &a_sl[i], &b, &b_sl[i]);
        }
        BackToBack { a, b, a_sl, b_sl }
    }

    fn a_slaves(&self) -> Vec<&str> {
        self.a_sl.iter().map(String::as_str).collect()
    }

    fn b_slaves(&self) -> Vec<&str> {
        self.b_sl.iter().map(String::as_str).collect()
    }
}

/// A and B with a tapped "wire" in ns M between them: a_i ── ma_i (M),
/// mb_i (M) ── b_i, and tc mirred forwards everything between ma_i and mb_i.
/// Packet sockets on ma_i see A's frames (received) and B's (sent).
struct WireTap {
    a: Netns,
    m: Netns,
    b: Netns,
    a_sl: [String; 2],
    b_sl: [String; 2],
    ma: [String; 2],
}

impl WireTap {
    fn new() -> WireTap {
        let a = Netns::new("A");
        let m = Netns::new("M");
        let b = Netns::new("B");
        for ns in [&a, &m, &b] {
            no_ipv6(ns);
        }
        let a_sl = [unique_name("a0"), unique_name("a1")];
        let b_sl = [unique_name("b0"), unique_name("b1")];
        let ma = [unique_name("ma0"), unique_name("ma1")];
        let mb = [unique_name("mb0"), unique_name("mb1")];
        for i in 0..2 {
            veth(&a, &a_sl[i], &m, &ma[i]);
            veth(&b, &b_sl[i], &m, &mb[i]);
            for (from, to) in [(&ma[i], &mb[i]), (&mb[i], &ma[i])] {
                m.exec_ok(&["tc", "qdisc", "add", "dev", from, "clsact"]);
                m.exec_ok(&[
                    "tc", "filter", "add", "dev", from, "ingress", "protocol", "all", "u32",
                    "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", to,
                ]);
            }
        }
        WireTap {
            a,
            m,
            b,
            a_sl,
            b_sl,
            ma,
        }
    }
}

// ---------------------------------------------------------------------------
// UDP flows

/// `n` UDP flows from `from` to `to_ip` (in `to`): flow i goes from source
/// port `base + 50 + 3i` to destination port `base + i`, one bdt-udp
/// sender/receiver pair per flow (fixed ports: the layer3+4 hash, and so the
/// link of each flow, is the same on every run).
struct Flows {
    rx: Vec<UdpReceiver>,
    tx: Vec<ChildGuard>,
    what: String,
}

impl Flows {
    fn start(
        from: &Netns,
        to: &Netns,
        to_ip: &str,
        base: u16,
        n: u16,
        pps: u64,
        count: u64,
    ) -> Flows {
        let tool = udp_tool();
        let tool = tool.to_str().expect("utf-8 path").to_owned();
        let secs = count / pps.max(1) + 6;
        let mut rx = Vec::new();
        for i in 0..n {
            rx.push(UdpReceiver::start(
                to,
                &sockaddr(to_ip, base + i),
                count,
                pps,
                Duration::from_secs(secs),
            ));
        }
        let mut tx = Vec::new();
        for i in 0..n {
            let dst = sockaddr(to_ip, base + i);
            let sp = (base + 50 + 3 * i).to_string();
            tx.push(ChildGuard::new(from.spawn(
                &[
                    tool.as_str(),
                    "send",
                    "--dst",
                    &dst,
                    "--pps",
                    &pps.to_string(),
                    "--count",
                    &count.to_string(),
                    "--src-port",
                    &sp,
                ],
                Stdio::piped(),
                Stdio::piped(),
            )));
        }
        Flows {
            rx,
            tx,
            what: format!("{} -> {to_ip}:{base}..+{n}", from.name()),
        }
    }

    /// Waits for all senders and receivers; returns the receivers' reports.
    fn finish(self) -> Vec<UdpReport> {
        for t in self.tx {
            let out = t.take().wait_with_output().expect("wait bdt-udp send");
            assert!(
                out.status.success(),
                "{}: sender failed: {}",
                self.what,
                out_text(&out)
            );
        }
        self.rx.into_iter().map(UdpReceiver::finish).collect()
    }
}

fn print_reports(what: &str, reps: &[UdpReport]) {
    for (i, r) in reps.iter().enumerate() {
        println!("  {what} flow {i}: {}", r.line);
    }
}

fn total_received(reps: &[UdpReport]) -> u64 {
    reps.iter().map(UdpReport::received).sum()
}

// ---------------------------------------------------------------------------
// metrics

/// `GET path` from `addr` inside network namespace `ns` (a thread that
/// joins the namespace, so the daemon's 127.0.0.1 is reachable).
fn http_get_in_netns(ns: &str, addr: &str, path: &str) -> Result<String, String> {
    let ns_path = format!("/run/netns/{ns}");
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let path = path.to_owned();
    thread::spawn(move || -> Result<String, String> {
        let f = File::open(&ns_path).map_err(|e| format!("{ns_path}: {e}"))?;
        // SAFETY: setns(2) on a namespace fd we hold; it changes only this
        // thread's network namespace, and the thread ends after the request.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(format!(
                "setns {ns_path}: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| format!("send: {e}"))?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)
            .map_err(|e| format!("read: {e}"))?;
        let (head, body) = resp
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP header end in {resp:?}"))?;
        if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1).is_none_or(|c| c != "200")
        {
            return Err(format!("HTTP status: {head}"));
        }
        Ok(body.to_owned())
    })
    .join()
    .map_err(|_| "metrics thread panicked".to_owned())?
}

/// Samples of metric `name`: labels → value.
fn metric_samples(body: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for l in body.lines() {
        if l.starts_with('#') {
            continue;
        }
        let Some(rest) = l.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            let Some((lab, v)) = r.split_once('}') else {
                continue;
            };
            (lab, v)
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue; // a longer metric name
        };
        let mut m = BTreeMap::new();
        for kv in labels.split(',').filter(|s| !s.is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                m.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
        if let Some(v) = value.split_whitespace().next().and_then(|v| v.parse().ok()) {
            out.push((m, v));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Open vSwitch (userspace datapath), started by the test

const OVS_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// One OVS instance (ovsdb-server + ovs-vswitchd) running in the foreground
/// inside a test namespace, with a private run/db/log directory. Drop kills
/// both processes by PID (ChildGuard) and removes the directory.
struct Ovs {
    ns: String,
    vswitchd: Option<ChildGuard>,
    db: Option<ChildGuard>,
    bond: String,
    members: Vec<String>,
    // Last: removed after the processes are gone.
    dir: TempDir,
}

impl Ovs {
    fn env(cmd: &mut Command, dir: &Path) {
        for k in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            cmd.env(k, dir);
        }
    }

    fn spawn_in(ns: &str, dir: &Path, args: &[String], log: &str) -> ChildGuard {
        let out = File::create(dir.join(log)).expect("ovs log");
        let err = out.try_clone().expect("clone fd");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(args);
        Ovs::env(&mut cmd, dir);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        ChildGuard::new(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", args[0])),
        )
    }

    /// Starts OVS in `ns` with bridge `bridge` (datapath netdev) and an
    /// LACP bond `bond` over `members` (`lacp=active`, `lacp-time=fast`,
    /// `balance-tcp`); the bridge's own tap gets `addr` and is brought up.
    fn start(ns: &Netns, bridge: &str, bond: &str, members: &[&str], addr: &str) -> Ovs {
        require_ovs();
        // The member veths have no address, but by default the kernel in
        // this namespace answers ARP for the tap's address on them too (with
        // the member's MAC): the peer would then address frames to one
        // member, and those arriving on the other would be dropped. Answer
        // ARP only on the interface that has the address.
        ns.sysctl("net.ipv4.conf.all.arp_ignore", "1");
        let dir = TempDir::new();
        let d = dir.path().to_path_buf();
        let ds = d.to_str().expect("utf-8").to_owned();
        let db_file = format!("{ds}/conf.db");
        let out = Command::new(ovs_tool("ovsdb-tool"))
            .args(["create", &db_file, OVS_SCHEMA])
            .output()
            .expect("run ovsdb-tool");
        assert!(
            out.status.success(),
            "ovsdb-tool create: {}",
            out_text(&out)
        );
        let db = Ovs::spawn_in(
            ns.name(),
            &d,
            &[
                ovs_tool("ovsdb-server"),
                db_file,
                format!("--remote=punix:{ds}/db.sock"),
                format!("--unixctl={ds}/ovsdb-server.ctl"),
                format!("--pidfile={ds}/ovsdb-server.pid"),
                format!("--log-file={ds}/ovsdb-server.log"),
            ],
            "ovsdb-server.out",
        );
        let mut ovs = Ovs {
            ns: ns.name().to_owned(),
            vswitchd: None,
            db: Some(db),
            bond: bond.to_owned(),
            members: members.iter().map(|s| (*s).to_owned()).collect(),
            dir,
        };
        let init = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            let o = ovs.vsctl_out(&["--no-wait", "init"]);
            o.status.success().then_some(())
        });
        assert!(
            init.is_some(),
            "ovsdb-server did not come up:\n{}",
            ovs.logs()
        );
        let vs = Ovs::spawn_in(
            ns.name(),
            &d,
            &[
                ovs_tool("ovs-vswitchd"),
                format!("unix:{ds}/db.sock"),
                format!("--unixctl={ds}/ovs-vswitchd.ctl"),
                format!("--pidfile={ds}/ovs-vswitchd.pid"),
                format!("--log-file={ds}/ovs-vswitchd.log"),
            ],
            "ovs-vswitchd.out",
        );
        ovs.vswitchd = Some(vs);
        let up = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            ovs.appctl_out(&["version"]).status.success().then_some(())
        });
        assert!(
            up.is_some(),
            "ovs-vswitchd did not come up:\n{}",
            ovs.logs()
        );
        ovs.vsctl(&[
            "add-br",
            bridge,
            "--",
            "set",
            "bridge",
            bridge,
            "datapath_type=netdev",
        ]);
        let mut args = vec!["add-bond", bridge, bond];
        args.extend_from_slice(members);
        args.extend_from_slice(&[
            "lacp=active",
            "bond_mode=balance-tcp",
            "other_config:lacp-time=fast",
        ]);
        ovs.vsctl(&args);
        let tap = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            ns.link_exists(bridge).then_some(())
        });
        assert!(
            tap.is_some(),
            "OVS created no tap {bridge}:\n{}",
            ovs.logs()
        );
        ns.add_addr(bridge, &format!("{addr}/24"));
        ns.link_up(bridge);
        // Full checksums on what the host behind OVS sends (a tap without
        // offloads computes them anyway; ignore a refusal).
        let _ = ns.exec(&["ethtool", "-K", bridge, "tx", "off"]);
        println!(
            "OVS up in {}: db pid {}, vswitchd pid {}, bridge {bridge} ({addr}), bond {bond} over {members:?}",
            ns.name(),
            ovs.db.as_ref().map(ChildGuard::pid).unwrap_or(0),
            ovs.vswitchd.as_ref().map(ChildGuard::pid).unwrap_or(0)
        );
        ovs
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn vsctl_out(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(ovs_tool("ovs-vsctl"));
        cmd.arg(format!("--db=unix:{}/db.sock", self.dir().display()))
            .arg("--timeout=20")
            .args(args);
        Ovs::env(&mut cmd, self.dir());
        cmd.stdin(Stdio::null()).output().expect("run ovs-vsctl")
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let o = self.vsctl_out(args);
        assert!(
            o.status.success(),
            "ovs-vsctl {args:?}: {}\n{}",
            out_text(&o),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn appctl_out(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(ovs_tool("ovs-appctl"));
        cmd.arg(format!(
            "--target={}/ovs-vswitchd.ctl",
            self.dir().display()
        ))
        .arg("--timeout=10")
        .args(args);
        Ovs::env(&mut cmd, self.dir());
        cmd.stdin(Stdio::null()).output().expect("run ovs-appctl")
    }

    fn appctl(&self, args: &[&str]) -> String {
        let o = self.appctl_out(args);
        assert!(o.status.success(), "ovs-appctl {args:?}: {}", out_text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn lacp_show(&self) -> String {
        self.appctl(&["lacp/show", &self.bond])
    }

    /// `lacp/show` says negotiated and every member `current attached`.
    fn negotiated(&self) -> bool {
        let o = self.appctl_out(&["lacp/show", &self.bond]);
        if !o.status.success() {
            return false;
        }
        let t = String::from_utf8_lossy(&o.stdout);
        t.contains("negotiated")
            && self
                .members
                .iter()
                .all(|m| t.contains(&format!("member: {m}: current attached")))
    }

    /// `lacp/show-stats`: member → (TX PDUs, RX PDUs).
    fn pdu_stats(&self) -> BTreeMap<String, (u64, u64)> {
        let t = self.appctl(&["lacp/show-stats", &self.bond]);
        let mut out = BTreeMap::new();
        let mut cur: Option<String> = None;
        for l in t.lines() {
            let l = l.trim();
            if let Some(m) = l.strip_prefix("member: ") {
                let m = m.trim_end_matches(':').to_owned();
                out.insert(m.clone(), (0, 0));
                cur = Some(m);
            } else if let Some(v) = l.strip_prefix("TX PDUs:") {
                if let Some(c) = &cur {
                    out.get_mut(c).expect("member").0 = v.trim().parse().unwrap_or(0);
                }
            } else if let Some(v) = l.strip_prefix("RX PDUs:")
                && let Some(c) = &cur
            {
                out.get_mut(c).expect("member").1 = v.trim().parse().unwrap_or(0);
            }
        }
        out
    }

    /// SIGKILLs ovs-vswitchd (no goodbye of any kind: its LACP just stops).
    fn kill_vswitchd(&mut self) {
        if let Some(mut g) = self.vswitchd.take() {
            let pid = g.pid();
            let st = g.wait_timeout(Duration::ZERO); // kills and reaps
            println!("ovs-vswitchd (pid {pid}) killed: {st:?}");
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        let names: Vec<String> = fs::read_dir(self.dir())
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        s += &format!("OVS dir {}: {names:?}\n", self.dir().display());
        for f in ["ovsdb-server.log", "ovs-vswitchd.log", "ovs-vswitchd.out"] {
            let t = fs::read_to_string(self.dir().join(f)).unwrap_or_default();
            let tail: Vec<&str> = t.lines().rev().take(40).collect();
            s += &format!("---- {f} (last 40 lines) ----\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("---- OVS in {} ----\n{}", self.ns, self.logs());
        }
        // Kill by PID (ChildGuard): vswitchd first, then the database; the
        // directory (TempDir) goes after them.
        self.vswitchd.take();
        self.db.take();
    }
}

// ---------------------------------------------------------------------------
// tshark

/// A running `tshark` capture of slow-protocol frames in `ns`.
struct Capture {
    child: ChildGuard,
    file: PathBuf,
}

impl Capture {
    /// Captures on `ifaces` of `ns` (capture filter `filter`) for at most
    /// `max` into a file in `dir`; returns once tshark is capturing.
    fn start(
        ns: &Netns,
        ifaces: &[&str],
        filter: Option<&str>,
        dir: &Path,
        max: Duration,
    ) -> Capture {
        let tshark = require_tool("tshark", "tshark");
        let file = dir.join(format!("{}.pcapng", ifaces.join("_")));
        let mut args: Vec<OsString> = vec![tshark.into()];
        for i in ifaces {
            args.push("-i".into());
            args.push((*i).into());
        }
        if let Some(f) = filter {
            args.push("-f".into());
            args.push(f.into());
        }
        for a in ["-q", "-a"] {
            args.push(a.into());
        }
        args.push(format!("duration:{}", max.as_secs().max(1)).into());
        args.push("-w".into());
        args.push(file.clone().into());
        let mut child = ChildGuard::new(ns.spawn(&args, Stdio::null(), Stdio::piped()));
        let stderr = child.child_mut().stderr.take().expect("stderr");
        let mut r = BufReader::new(stderr);
        let mut seen = String::new();
        let t0 = Instant::now();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("tshark ended before capturing: {seen}");
            }
            seen += &line;
            if line.contains("Capturing on") {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "tshark not capturing: {seen}"
            );
        }
        thread::spawn(move || {
            let mut rest = String::new();
            while r.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
                rest.clear();
            }
        });
        Capture { child, file }
    }

    /// Stops the capture (SIGINT, so tshark stops its dumpcap and closes
    /// the file) and returns the file.
    fn stop(mut self) -> PathBuf {
        let pid = self.child.pid() as libc::pid_t;
        if let Ok(None) = self.child.child_mut().try_wait() {
            // SAFETY: kill(2) of our own child (tshark), not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
        let st = self.child.wait_timeout(Duration::from_secs(10));
        assert!(
            st.is_some(),
            "tshark (pid {pid}) did not stop on SIGINT (killed)"
        );
        self.file.clone()
    }
}

fn tshark_read(file: &Path, args: &[&str]) -> String {
    let tshark = require_tool("tshark", "tshark");
    let out = Command::new(tshark)
        .arg("-r")
        .arg(file)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tshark -r");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        out_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// tests

/// Waits (up to 3 s) until both bonds see their partner's ports collecting
/// and distributing too (0x3f).
fn wait_partners_in_use(a: &Netns, bond_a: &str, b: &Netns, bond_b: &str) -> (BondView, BondView) {
    let t0 = Instant::now();
    let ok = |v: &BondView| {
        v.all_in_use() && v.ports.iter().all(|p| p.partner_state == STATE_FAST_IN_USE)
    };
    let got = wait_for(Duration::from_secs(3), Duration::from_millis(25), || {
        let va = try_status(a, bond_a).ok()?;
        let vb = try_status(b, bond_b).ok()?;
        (ok(&va) && ok(&vb)).then_some((va, vb))
    });
    let (va, vb) = got.unwrap_or_else(|| {
        panic!(
            "partners not both collecting+distributing (0x3f) after 3 s: {bond_a}: {} / {bond_b}: {}",
            status(a, bond_a).summary(),
            status(b, bond_b).summary()
        )
    });
    println!("partner states 0x3f on both sides {:?} later", t0.elapsed());
    (va, vb)
}

fn failover_lines(d: &Bondd) -> usize {
    d.log_lines_with(&["failover: transmitting slaves now"])
        .len()
}

/// Test 1: two bondd back to back, `lacp_rate: fast`, `layer3+4`.
#[test]
fn lacp_bondd_bondd_back_to_back() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = BackToBack::new();
    let extra = ["lacp_rate: fast", "xmit_hash_policy: layer3+4"];
    let ya = lacp_yaml("bond0", &t.a_slaves(), BOND_A_V4, &extra);
    let yb = lacp_yaml("bond1", &t.b_slaves(), BOND_B_V4, &extra);
    let t0 = Instant::now();
    let mut da = start_bondd(&t.a, &ya);
    let mut db = start_bondd(&t.b, &yb);
    da.wait_ready(READY_TIMEOUT);
    let ra = t0.elapsed();
    db.wait_ready(READY_TIMEOUT);
    let rb = t0.elapsed();
    let ready = Instant::now();
    println!("ready: bond0 (A) after {ra:?}, bond1 (B) after {rb:?}");
    let (_, va) = wait_in_use(&t.a, "bond0", NEGOTIATE_LIMIT, &da);
    let ta = t0.elapsed();
    let ta_r = ready.elapsed();
    let (_, vb) = wait_in_use(
        &t.b,
        "bond1",
        NEGOTIATE_LIMIT.saturating_sub(ready.elapsed()) + Duration::from_millis(100),
        &db,
    );
    let tb = t0.elapsed();
    println!(
        "NEGOTIATION bondd<->bondd: A collecting+distributing on both ports {ta:?} after start ({ta_r:?} after both ready), B {tb:?} after start"
    );
    println!("A: {}\nB: {}", va.summary(), vb.summary());
    // The PDUs announcing the other side's Collecting+Distributing follow
    // within the transmit rate limit.
    let (va, vb) = wait_partners_in_use(&t.a, "bond0", &t.b, "bond1");
    // Each side's partner is the other side.
    let sys_a = va.json.str("lacp.system_mac");
    let sys_b = vb.json.str("lacp.system_mac");
    assert_ne!(sys_a, sys_b, "both bonds have the same LACP system id");
    for p in &va.ports {
        assert_eq!(p.partner_system, sys_b, "A {} partner", p.name);
        assert_eq!(p.actor_state, STATE_FAST_IN_USE, "A {} actor state", p.name);
        assert_eq!(
            p.partner_state, STATE_FAST_IN_USE,
            "A {} partner state",
            p.name
        );
    }
    for p in &vb.ports {
        assert_eq!(p.partner_system, sys_a, "B {} partner", p.name);
        assert_eq!(p.actor_state, STATE_FAST_IN_USE, "B {} actor state", p.name);
    }
    let agg_a = va.active_agg.clone().expect("A has an active aggregator");
    assert_eq!(agg_a.1, 2, "A's active aggregator ports: {agg_a:?}");
    assert!(va.ports.iter().all(|p| p.aggregator == Some(agg_a.0)));
    let agg_b = vb.active_agg.clone().expect("B has an active aggregator");
    assert_eq!(agg_b.1, 2, "B's active aggregator ports: {agg_b:?}");

    // Warm ARP both ways.
    assert!(
        t.a.ping(BOND_B_V4, 3, Duration::from_secs(8)) >= 2,
        "A cannot ping B"
    );
    assert!(
        t.b.ping(BOND_A_V4, 3, Duration::from_secs(8)) >= 2,
        "B cannot ping A"
    );

    // Steady state: 8 flows each way, 250 pps each, 2 s.
    const FLOWS: u16 = 8;
    const PPS: u64 = 250;
    const COUNT: u64 = 500;
    let before: Vec<Counters> = t.a_sl.iter().map(|s| t.a.packets(s)).collect();
    let before_b: Vec<Counters> = t.b_sl.iter().map(|s| t.b.packets(s)).collect();
    let ab = Flows::start(&t.a, &t.b, BOND_B_V4, 9200, FLOWS, PPS, COUNT);
    let ba = Flows::start(&t.b, &t.a, BOND_A_V4, 9300, FLOWS, PPS, COUNT);
    let r_ab = ab.finish();
    let r_ba = ba.finish();
    let after: Vec<Counters> = t.a_sl.iter().map(|s| t.a.packets(s)).collect();
    let after_b: Vec<Counters> = t.b_sl.iter().map(|s| t.b.packets(s)).collect();
    print_reports("A->B", &r_ab);
    print_reports("B->A", &r_ba);
    let want = u64::from(FLOWS) * COUNT;
    let (got_ab, got_ba) = (total_received(&r_ab), total_received(&r_ba));
    println!("DELIVERY steady: A->B {got_ab}/{want}, B->A {got_ba}/{want}");
    assert!(got_ab * 100 >= want * 99, "A->B delivered {got_ab}/{want}");
    assert!(got_ba * 100 >= want * 99, "B->A delivered {got_ba}/{want}");
    let da_: Vec<Counters> = (0..2).map(|i| after[i].since(before[i])).collect();
    let db_: Vec<Counters> = (0..2).map(|i| after_b[i].since(before_b[i])).collect();
    println!(
        "PER LINK (veth counters): A {} tx {:?}, A {} tx {:?}; B {} tx {:?}, B {} tx {:?} (rx/tx)",
        t.a_sl[0], da_[0], t.a_sl[1], da_[1], t.b_sl[0], db_[0], t.b_sl[1], db_[1]
    );
    // Frames A sent on link i arrive at B's b_i (and vice versa).
    let link_ab = [db_[0].rx.max(da_[0].tx), db_[1].rx.max(da_[1].tx)];
    let link_ba = [da_[0].rx.max(db_[0].tx), da_[1].rx.max(db_[1].tx)];
    println!("LINK SPLIT A->B: {link_ab:?}, B->A: {link_ba:?}");
    for (dir, l) in [("A->B", link_ab), ("B->A", link_ba)] {
        for (i, n) in l.iter().enumerate() {
            assert!(
                *n >= COUNT / 2,
                "{dir}: link {i} carried only {n} frames: {l:?}"
            );
        }
    }

    // Failover: link 1 down (B's end, so A loses carrier too) under load.
    let fo_a = failover_lines(&da);
    let fo_b = failover_lines(&db);
    const F_PPS: u64 = 500;
    const F_COUNT: u64 = 2000; // 4 s per flow
    let ab = Flows::start(&t.a, &t.b, BOND_B_V4, 9400, FLOWS, F_PPS, F_COUNT);
    let ba = Flows::start(&t.b, &t.a, BOND_A_V4, 9500, FLOWS, F_PPS, F_COUNT);
    let s0 = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    t.b.link_down(&t.b_sl[1]);
    let down_at = s0.elapsed();
    println!("{} down at {down_at:?} after stream start", t.b_sl[1]);
    // The port leaves the aggregator on both sides.
    let left = wait_for(Duration::from_secs(2), Duration::from_millis(20), || {
        let a = try_status(&t.a, "bond0").ok()?;
        let b = try_status(&t.b, "bond1").ok()?;
        let pa = a.port(&t.a_sl[1]);
        let pb = b.port(&t.b_sl[1]);
        (!pa.distributing && !pa.collecting && !pb.distributing && !pb.collecting).then_some((a, b))
    });
    let left_after = s0.elapsed().saturating_sub(down_at);
    let r_ab = ab.finish();
    let r_ba = ba.finish();
    print_reports("A->B (failover)", &r_ab);
    print_reports("B->A (failover)", &r_ba);
    let (va, vb) = left.unwrap_or_else(|| {
        panic!(
            "link 1 down: port did not leave the aggregator within 2 s: A {} / B {}",
            status(&t.a, "bond0").summary(),
            status(&t.b, "bond1").summary()
        )
    });
    println!(
        "port left the aggregator within {left_after:?}: A {}\nB {}",
        va.summary(),
        vb.summary()
    );
    for (who, v) in [("A", &va), ("B", &vb)] {
        let agg = v.active_agg.clone().expect("still an active aggregator");
        assert_eq!(
            agg.1, 1,
            "{who}: active aggregator should have 1 port: {agg:?}"
        );
        assert!(
            v.ports[0].collecting && v.ports[0].distributing,
            "{who}: port 0 not in use: {}",
            v.summary()
        );
    }
    let win = |r: &[UdpReport]| r.iter().map(|x| x.loss_window_ms()).fold(0.0f64, f64::max);
    let want = u64::from(FLOWS) * F_COUNT;
    let (got_ab, got_ba) = (total_received(&r_ab), total_received(&r_ba));
    println!(
        "LOSS WINDOW bondd<->bondd link down: A->B max {:.1} ms ({got_ab}/{want} delivered), B->A max {:.1} ms ({got_ba}/{want} delivered)",
        win(&r_ab),
        win(&r_ba)
    );
    for (dir, r) in [("A->B", &r_ab), ("B->A", &r_ba)] {
        for (i, x) in r.iter().enumerate() {
            // Traffic continues: every flow got its tail (the last second).
            assert!(
                x.received() * 100 >= F_COUNT * 90,
                "{dir} flow {i}: only {} of {F_COUNT} after link down: {}",
                x.received(),
                x.line
            );
            assert!(
                x.loss_window_ms() < 500.0,
                "{dir} flow {i}: loss window {} ms: {}",
                x.loss_window_ms(),
                x.line
            );
        }
    }
    assert!(
        failover_lines(&da) > fo_a,
        "A logged no failover on link down"
    );
    assert!(
        failover_lines(&db) > fo_b,
        "B logged no failover on link down"
    );

    // Link back: the port rejoins on both sides.
    let up0 = Instant::now();
    t.b.link_up(&t.b_sl[1]);
    let (ja, va) = wait_in_use(&t.a, "bond0", Duration::from_secs(8), &da);
    let (_, vb) = wait_in_use(&t.b, "bond1", Duration::from_secs(8), &db);
    let jb = up0.elapsed();
    println!(
        "REJOIN after link up: A {ja:?}, B {jb:?}\nA: {}\nB: {}",
        va.summary(),
        vb.summary()
    );
    for (who, v) in [("A", &va), ("B", &vb)] {
        let agg = v.active_agg.clone().expect("active aggregator");
        assert_eq!(agg.1, 2, "{who}: active aggregator after rejoin: {agg:?}");
        assert!(
            v.ports.iter().all(|p| p.aggregator == Some(agg.0)),
            "{who}: {}",
            v.summary()
        );
    }
    let r = udp_stream(&t.a, &t.b, BOND_B_V4, 9600, 1000, 1000);
    assert!(r.received() >= 990, "A->B after rejoin: {}", r.line);
    da.sigterm_and_wait();
    db.sigterm_and_wait();
}

/// Polls bondd's status every 50 ms for `span`, recording per port the
/// instant its `lacpdu_rx` counter last changed.
fn watch_rx(ns: &Netns, bond: &str, span: Duration, last: &mut BTreeMap<String, (u64, Instant)>) {
    let t0 = Instant::now();
    while t0.elapsed() < span {
        if let Ok(v) = try_status(ns, bond) {
            let now = Instant::now();
            for p in &v.ports {
                let e = last.entry(p.name.clone()).or_insert((p.pdu_rx, now));
                if e.0 != p.pdu_rx {
                    *e = (p.pdu_rx, now);
                }
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Test 2: bondd against Open vSwitch's userspace LACP.
#[test]
fn lacp_with_openvswitch() {
    if !require_root() {
        return;
    }
    require_ovs();
    let _serial = bondd_tests::setup!();
    let o = Netns::new("O");
    let b = Netns::new("B");
    no_ipv6(&o);
    no_ipv6(&b);
    let o_m = [unique_name("o0"), unique_name("o1")];
    let b_sl = [unique_name("b0"), unique_name("b1")];
    for i in 0..2 {
        veth(&o, &o_m[i], &b, &b_sl[i]);
    }
    let bridge = unique_name("obr");
    let obond = unique_name("obd");
    let mut ovs = Ovs::start(
        &o,
        &bridge,
        &obond,
        &[&o_m[0], &o_m[1]],
        BOND_B_V4, // the IP host behind OVS: 198.18.0.2 on the bridge's tap
    );
    let yaml = lacp_yaml(
        "bond0",
        &[&b_sl[0], &b_sl[1]],
        BOND_A_V4,
        &["lacp_rate: fast", "xmit_hash_policy: layer3+4"],
    );
    let mut d = start_bondd(&b, &yaml);
    let ready = d.wait_ready(READY_TIMEOUT);
    let r0 = Instant::now();
    let (_, v) = wait_in_use(&b, "bond0", NEGOTIATE_LIMIT, &d);
    let t_bondd = r0.elapsed();
    let ovs_ok = wait_for(
        NEGOTIATE_LIMIT.saturating_sub(r0.elapsed()),
        Duration::from_millis(25),
        || ovs.negotiated().then_some(()),
    );
    let t_ovs = r0.elapsed();
    println!("OVS lacp/show:\n{}", ovs.lacp_show());
    assert!(
        ovs_ok.is_some(),
        "OVS not negotiated / current attached within 5 s of bondd ready"
    );
    println!(
        "NEGOTIATION bondd<->OVS: bondd ready after {ready:?}; bondd collecting+distributing on both ports {t_bondd:?} after ready ({:?} after start), OVS negotiated + both members current attached {t_ovs:?} after ready",
        t_bondd + ready
    );
    println!("bondd: {}", v.summary());
    let v = wait_for(Duration::from_secs(3), Duration::from_millis(25), || {
        let v = try_status(&b, "bond0").ok()?;
        (v.all_in_use() && v.ports.iter().all(|p| p.partner_state & 0x3d == 0x3d)).then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "OVS's ports not in sync/collecting/distributing in bondd's view: {}",
            status(&b, "bond0").summary()
        )
    });
    let bond_show = ovs.appctl(&["bond/show", &obond]);
    println!("OVS bond/show:\n{bond_show}");
    assert!(
        bond_show.contains("lacp_status: negotiated"),
        "OVS bond/show: {bond_show}"
    );
    let ovs_sys = v.ports[0].partner_system.clone();
    assert!(
        v.ports
            .iter()
            .all(|p| p.partner_system == ovs_sys && p.actor_state == STATE_FAST_IN_USE),
        "{}",
        v.summary()
    );

    // Traffic both ways, 8 flows each way.
    assert!(
        b.ping(BOND_B_V4, 3, Duration::from_secs(8)) >= 2,
        "bondd host cannot ping the host behind OVS"
    );
    assert!(
        o.ping(BOND_A_V4, 3, Duration::from_secs(8)) >= 2,
        "host behind OVS cannot ping bond0"
    );
    const FLOWS: u16 = 8;
    let before: Vec<Counters> = o_m.iter().map(|m| o.packets(m)).collect();
    let bo = Flows::start(&b, &o, BOND_B_V4, 9200, FLOWS, 250, 500);
    let ob = Flows::start(&o, &b, BOND_A_V4, 9300, FLOWS, 250, 500);
    let r_bo = bo.finish();
    let r_ob = ob.finish();
    let after: Vec<Counters> = o_m.iter().map(|m| o.packets(m)).collect();
    print_reports("bondd->OVS", &r_bo);
    print_reports("OVS->bondd", &r_ob);
    let want = u64::from(FLOWS) * 500;
    let (g_bo, g_ob) = (total_received(&r_bo), total_received(&r_ob));
    let dl: Vec<Counters> = (0..2).map(|i| after[i].since(before[i])).collect();
    println!(
        "DELIVERY bondd->OVS {g_bo}/{want}, OVS->bondd {g_ob}/{want}; per OVS member (rx = from bondd, tx = to bondd): {} {:?}, {} {:?}",
        o_m[0], dl[0], o_m[1], dl[1]
    );
    assert!(g_bo * 100 >= want * 99, "bondd->OVS {g_bo}/{want}");
    assert!(g_ob * 100 >= want * 99, "OVS->bondd {g_ob}/{want}");
    for (i, c) in dl.iter().enumerate() {
        assert!(
            c.rx >= 500,
            "bondd sent only {} frames on link {i}: {dl:?}",
            c.rx
        );
    }

    // One link down under load (OVS's member, so bondd sees the carrier go).
    let fo = failover_lines(&d);
    let bo = Flows::start(&b, &o, BOND_B_V4, 9400, FLOWS, 500, 2000);
    let ob = Flows::start(&o, &b, BOND_A_V4, 9500, FLOWS, 500, 2000);
    thread::sleep(Duration::from_millis(1500));
    o.link_down(&o_m[1]);
    let down = Instant::now();
    let left = wait_for(Duration::from_secs(2), Duration::from_millis(20), || {
        let v = try_status(&b, "bond0").ok()?;
        let p = v.port(&b_sl[1]);
        (!p.collecting && !p.distributing).then_some(v)
    });
    let left_after = down.elapsed();
    let r_bo = bo.finish();
    let r_ob = ob.finish();
    print_reports("bondd->OVS (failover)", &r_bo);
    print_reports("OVS->bondd (failover)", &r_ob);
    let v = left.unwrap_or_else(|| {
        panic!(
            "port {} still in use 2 s after link down: {}",
            b_sl[1],
            status(&b, "bond0").summary()
        )
    });
    println!("bondd port left within {left_after:?}: {}", v.summary());
    assert_eq!(
        v.active_agg.as_ref().map(|a| a.1),
        Some(1),
        "{}",
        v.summary()
    );
    let win = |r: &[UdpReport]| r.iter().map(|x| x.loss_window_ms()).fold(0.0f64, f64::max);
    let want = u64::from(FLOWS) * 2000;
    let (g_bo, g_ob) = (total_received(&r_bo), total_received(&r_ob));
    println!(
        "LOSS WINDOW bondd<->OVS link down: bondd->OVS max {:.1} ms ({g_bo}/{want}), OVS->bondd max {:.1} ms ({g_ob}/{want})",
        win(&r_bo),
        win(&r_ob)
    );
    for (dir, r) in [("bondd->OVS", &r_bo), ("OVS->bondd", &r_ob)] {
        for (i, x) in r.iter().enumerate() {
            assert!(
                x.received() * 100 >= 2000 * 90,
                "{dir} flow {i}: {}",
                x.line
            );
            assert!(x.loss_window_ms() < 1000.0, "{dir} flow {i}: {}", x.line);
        }
    }
    assert!(
        failover_lines(&d) > fo,
        "bondd logged no failover on link down"
    );
    o.link_up(&o_m[1]);
    let up = Instant::now();
    let (_, v) = wait_in_use(&b, "bond0", Duration::from_secs(8), &d);
    let ok = wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        ovs.negotiated().then_some(())
    });
    assert!(ok.is_some(), "OVS: member not back: {}", ovs.lacp_show());
    println!(
        "REJOIN after link up: {:?} (bondd {})",
        up.elapsed(),
        v.summary()
    );

    // 60 s without any data traffic: LACP alone keeps the bond up.
    thread::sleep(Duration::from_secs(2)); // let the rejoin's PDUs settle
    let fo = failover_lines(&d);
    let s0 = status(&b, "bond0");
    let o0 = ovs.pdu_stats();
    let show0 = ovs.lacp_show();
    let i0 = Instant::now();
    thread::sleep(Duration::from_secs(60));
    let s1 = status(&b, "bond0");
    let o1 = ovs.pdu_stats();
    let show1 = ovs.lacp_show();
    let dt = i0.elapsed().as_secs_f64();
    println!(
        "after {dt:.1} s idle: bondd {}\nOVS stats before {o0:?} after {o1:?}",
        s1.summary()
    );
    assert_eq!(show0, show1, "OVS lacp/show changed during the idle minute");
    assert!(ovs.negotiated(), "OVS no longer negotiated:\n{show1}");
    assert_eq!(
        failover_lines(&d),
        fo,
        "bondd changed its transmitting set while idle:\n{}",
        d.log()
    );
    let (lo, hi) = ((dt * 0.9 - 2.0) as u64, (dt * 1.1 + 2.0) as u64);
    for (p0, p1) in s0.ports.iter().zip(&s1.ports) {
        assert!(
            p1.collecting && p1.distributing,
            "{} not in use after the idle minute",
            p1.name
        );
        assert_eq!(
            p0.aggregator, p1.aggregator,
            "{}: aggregator changed",
            p0.name
        );
        assert_eq!(
            (
                p0.actor_state,
                p0.partner_state,
                &p0.partner_system,
                p0.partner_key
            ),
            (
                p1.actor_state,
                p1.partner_state,
                &p1.partner_system,
                p1.partner_key
            ),
            "{}: LACP state changed while idle",
            p0.name
        );
        let (drx, dtx) = (p1.pdu_rx - p0.pdu_rx, p1.pdu_tx - p0.pdu_tx);
        println!(
            "IDLE {dt:.1} s: bondd {} LACPDUs rx +{drx} tx +{dtx}",
            p0.name
        );
        assert!(
            (lo..=hi).contains(&drx) && (lo..=hi).contains(&dtx),
            "{}: rx +{drx} tx +{dtx}, want {lo}..={hi}",
            p0.name
        );
    }
    for m in &o_m {
        let (a, b) = (
            o0.get(m).copied().unwrap_or_default(),
            o1.get(m).copied().unwrap_or_default(),
        );
        let (dtx, drx) = (b.0 - a.0, b.1 - a.1);
        println!("IDLE {dt:.1} s: OVS {m} LACPDUs tx +{dtx} rx +{drx}");
        assert!(
            (lo..=hi).contains(&drx) && (lo..=hi).contains(&dtx),
            "OVS {m}: rx +{drx} tx +{dtx}, want {lo}..={hi}"
        );
    }

    // OVS stops dead: bondd's ports expire after 3 s, then go defaulted.
    let mut last = BTreeMap::new();
    watch_rx(&b, "bond0", Duration::from_millis(1500), &mut last);
    ovs.kill_vswitchd();
    let killed = Instant::now();
    let mut expired: BTreeMap<String, Instant> = BTreeMap::new();
    let mut defaulted: BTreeMap<String, Instant> = BTreeMap::new();
    while killed.elapsed() < Duration::from_secs(10) && defaulted.len() < 2 {
        if let Ok(v) = try_status(&b, "bond0") {
            let now = Instant::now();
            for p in &v.ports {
                let e = last.entry(p.name.clone()).or_insert((p.pdu_rx, now));
                if e.0 != p.pdu_rx {
                    *e = (p.pdu_rx, now);
                }
                if p.actor_state & ST_EXPIRED != 0 && !p.distributing {
                    expired.entry(p.name.clone()).or_insert(now);
                }
                if p.actor_state & ST_DEFAULTED != 0 {
                    defaulted.entry(p.name.clone()).or_insert(now);
                }
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    let v = status(&b, "bond0");
    println!("after OVS stopped: {}", v.summary());
    for p in &b_sl {
        let (_, l) = last[p];
        let e = expired
            .get(p)
            .unwrap_or_else(|| panic!("{p} never expired: {}", v.summary()));
        let df = defaulted
            .get(p)
            .unwrap_or_else(|| panic!("{p} never defaulted: {}", v.summary()));
        let (e_l, d_e) = (e.duration_since(l), df.duration_since(*e));
        println!(
            "EXPIRY {p}: last PDU seen {:?} before the kill; expired {e_l:?} after it ({:?} after the kill), defaulted {d_e:?} after expiry ({:?} after the kill)",
            killed.saturating_duration_since(l),
            e.duration_since(killed),
            df.duration_since(killed)
        );
        assert!(
            e_l >= Duration::from_millis(2500) && e_l <= Duration::from_secs(5),
            "{p}: expired {e_l:?} after the last PDU (want ~3 s)"
        );
        assert!(
            d_e >= Duration::from_millis(2500) && d_e <= Duration::from_secs(5),
            "{p}: defaulted {d_e:?} after expiry (want ~3 s)"
        );
        let pv = v.port(p);
        assert_eq!(
            pv.partner_system, "00:00:00:00:00:00",
            "{p}: partner still known after defaulting"
        );
    }
    d.sigterm_and_wait();
}

/// Test 3: bondd's LACPDUs, captured on the wire, decode cleanly in tshark
/// and carry the configured actor fields.
#[test]
fn lacp_pdus_decode_cleanly_with_tshark() {
    if !require_root() {
        return;
    }
    require_tool("tshark", "tshark");
    let _serial = bondd_tests::setup!();
    let t = WireTap::new();
    let scratch = TempDir::new();
    const SYS_PRIO: u64 = 1000;
    const SYSTEM: &str = "02:00:5e:c6:12:01";
    const USER_KEY: u64 = 5;
    let cap = Capture::start(
        &t.m,
        &[&t.ma[0], &t.ma[1]],
        Some("ether proto 0x8809"),
        scratch.path(),
        Duration::from_secs(60),
    );
    let ya = lacp_yaml(
        "bond0",
        &[&t.a_sl[0], &t.a_sl[1]],
        BOND_A_V4,
        &[
            "lacp_rate: fast",
            &format!("ad_actor_sys_prio: {SYS_PRIO}"),
            &format!("ad_actor_system: \"{SYSTEM}\""),
            &format!("ad_user_port_key: {USER_KEY}"),
        ],
    );
    let yb = lacp_yaml(
        "bond1",
        &[&t.b_sl[0], &t.b_sl[1]],
        BOND_B_V4,
        &["lacp_rate: fast"],
    );
    let mut da = start_bondd(&t.a, &ya);
    let mut db = start_bondd(&t.b, &yb);
    da.wait_ready(READY_TIMEOUT);
    db.wait_ready(READY_TIMEOUT);
    wait_in_use(&t.a, "bond0", NEGOTIATE_LIMIT, &da);
    wait_in_use(&t.b, "bond1", NEGOTIATE_LIMIT, &db);
    let (va, _) = wait_partners_in_use(&t.a, "bond0", &t.b, "bond1");
    // Steady state: 1 PDU/s each way (both ask for the fast rate).
    thread::sleep(Duration::from_secs(5));
    let va_end = status(&t.a, "bond0");
    let file = cap.stop();
    da.sigterm_and_wait();
    db.sigterm_and_wait();

    let verbose = tshark_read(&file, &["-V"]);
    let frames = verbose.lines().filter(|l| l.starts_with("Frame ")).count();
    println!("captured {frames} slow-protocol frames on {:?}", t.ma);
    for bad in ["Malformed", "Expert Info"] {
        let hits: Vec<&str> = verbose.lines().filter(|l| l.contains(bad)).collect();
        assert!(
            hits.is_empty(),
            "tshark -V reports {bad}: {hits:?}\n{verbose}"
        );
    }
    let fields = tshark_read(
        &file,
        &[
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.time_relative",
            "-e",
            "eth.src",
            "-e",
            "eth.dst",
            "-e",
            "frame.len",
            "-e",
            "lacp.version",
            "-e",
            "lacp.actor.sys_priority",
            "-e",
            "lacp.actor.sysid",
            "-e",
            "lacp.actor.key",
            "-e",
            "lacp.actor.port_priority",
            "-e",
            "lacp.actor.port",
            "-e",
            "lacp.actor.state",
            "-e",
            "lacp.partner.sysid",
            "-e",
            "lacp.collector.max_delay",
        ],
    );
    let num = |s: &str| -> u64 {
        let s = s.trim();
        match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap_or(u64::MAX),
            None => s.parse().unwrap_or(u64::MAX),
        }
    };
    let mut per_port: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let mut from_a = 0;
    for l in fields.lines() {
        let f: Vec<&str> = l.split('|').collect();
        assert_eq!(f.len(), 14, "tshark fields: {l:?}");
        assert_eq!(f[3], "01:80:c2:00:00:02", "LACPDU destination: {l}");
        assert_eq!(num(f[4]), 124, "LACPDU frame length: {l}");
        assert_eq!(num(f[5]), 1, "LACP version: {l}");
        let Some(p) = va.ports.iter().find(|p| p.perm_mac == f[2]) else {
            continue; // bond1's PDUs (also decoded cleanly above)
        };
        from_a += 1;
        assert_eq!(num(f[6]), SYS_PRIO, "actor system priority: {l}");
        assert_eq!(f[7], SYSTEM, "actor system: {l}");
        assert_eq!(num(f[8]), p.actor_key, "actor key vs status: {l}");
        assert_eq!(num(f[8]) >> 6, USER_KEY, "user bits of the actor key: {l}");
        assert_eq!(num(f[9]), 255, "actor port priority: {l}");
        assert_eq!(num(f[10]), p.actor_port, "actor port: {l}");
        assert_eq!(num(f[13]), 0, "collector max delay: {l}");
        // Each slave's PDUs leave on that slave: seen on its wire.
        let i = t.a_sl.iter().position(|s| *s == p.name).expect("slave");
        assert_eq!(
            f[0], t.ma[i],
            "PDU of {} seen on the wrong wire: {l}",
            p.name
        );
        per_port
            .entry(p.name.clone())
            .or_default()
            .push((f[1].parse().unwrap_or(0.0), num(f[11])));
    }
    println!(
        "bond0's PDUs: {from_a}; actor: system priority {SYS_PRIO}, system {SYSTEM}, key {} (user key {USER_KEY}), ports {:?}",
        va.ports[0].actor_key,
        va.ports.iter().map(|p| p.actor_port).collect::<Vec<_>>()
    );
    for p in &va.ports {
        let v = per_port.get(&p.name).cloned().unwrap_or_default();
        let states: Vec<String> = v.iter().map(|(_, s)| format!("{s:#04x}")).collect();
        // Steady state: from the first PDU in use on, one per second.
        let first = v.iter().position(|(_, s)| *s == STATE_FAST_IN_USE);
        let steady: Vec<f64> = first
            .map(|i| v[i..].iter().map(|(t, _)| *t).collect())
            .unwrap_or_default();
        let gaps: Vec<String> = steady
            .windows(2)
            .map(|w| format!("{:.2}", w[1] - w[0]))
            .collect();
        println!(
            "  {}: {} PDUs, states {states:?}; gaps in use (s): {gaps:?}",
            p.name,
            v.len()
        );
        assert!(
            steady.len() >= 4,
            "{}: only {} PDUs in use (0x3f) over 5 s: {states:?}",
            p.name,
            steady.len()
        );
        for w in steady.windows(2) {
            assert!(
                w[1] - w[0] <= 1.3,
                "{}: {:.2} s between PDUs at the fast rate",
                p.name,
                w[1] - w[0]
            );
        }
        let pv = va_end.port(&p.name);
        assert!(
            pv.pdu_tx >= v.len() as u64,
            "{}: status says {} sent, the wire saw {}",
            p.name,
            pv.pdu_tx,
            v.len()
        );
    }
}

/// Test 4: both ends passive: no LACPDU on the wire, no partner.
#[test]
fn lacp_passive_passive_never_forms() {
    if !require_root() {
        return;
    }
    require_tool("tshark", "tshark");
    let _serial = bondd_tests::setup!();
    let t = WireTap::new();
    let scratch = TempDir::new();
    let cap = Capture::start(
        &t.m,
        &[&t.ma[0], &t.ma[1]],
        None,
        scratch.path(),
        Duration::from_secs(60),
    );
    let extra = ["lacp_rate: fast", "lacp_active: off"];
    let ya = lacp_yaml("bond0", &[&t.a_sl[0], &t.a_sl[1]], BOND_A_V4, &extra);
    let yb = lacp_yaml("bond1", &[&t.b_sl[0], &t.b_sl[1]], BOND_B_V4, &extra);
    let t0 = Instant::now();
    let mut da = start_bondd(&t.a, &ya);
    let mut db = start_bondd(&t.b, &yb);
    da.wait_ready(READY_TIMEOUT);
    db.wait_ready(READY_TIMEOUT);
    let ready = t0.elapsed();
    // Some frames on the wire prove the tap sees it (ARP at least).
    let pings = t.a.ping(BOND_B_V4, 2, Duration::from_secs(3));
    thread::sleep(Duration::from_secs(5).saturating_sub(t0.elapsed().saturating_sub(ready)));
    let window = t0.elapsed();
    let va = status(&t.a, "bond0");
    let vb = status(&t.b, "bond1");
    let file = cap.stop();
    println!(
        "passive/passive after {window:?} ({ready:?} to ready; pings answered {pings}/2)\nA: {}\nB: {}",
        va.summary(),
        vb.summary()
    );
    let all = tshark_read(&file, &["-T", "fields", "-e", "frame.number"])
        .lines()
        .count();
    let slow = tshark_read(
        &file,
        &[
            "-Y",
            "eth.type == 0x8809",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )
    .lines()
    .count();
    println!(
        "WIRE (both links, both directions, {:?} from bondd start): {all} frames, {slow} slow-protocol frames",
        window
    );
    assert!(
        all > 0,
        "the wire tap captured nothing at all: the capture is broken"
    );
    if slow > 0 {
        println!("{}", tshark_read(&file, &["-Y", "eth.type == 0x8809"]));
    }
    assert_eq!(slow, 0, "LACPDUs on the wire between two passive bonds");
    for (who, v) in [("A", &va), ("B", &vb)] {
        for p in &v.ports {
            assert_eq!(
                (p.pdu_tx, p.pdu_rx),
                (0, 0),
                "{who} {}: LACPDUs counted",
                p.name
            );
            assert_eq!(
                p.partner_system, "00:00:00:00:00:00",
                "{who} {}: a partner appeared",
                p.name
            );
            assert_eq!(
                p.actor_state & 0x01,
                0,
                "{who} {}: actor is not passive",
                p.name
            );
            assert_ne!(
                p.actor_state & ST_DEFAULTED,
                0,
                "{who} {}: not defaulted",
                p.name
            );
        }
        if let Some(agg) = &v.active_agg {
            assert_eq!(
                agg.2, "00:00:00:00:00:00",
                "{who}: active aggregator has a partner"
            );
        }
    }
    da.sigterm_and_wait();
    db.sigterm_and_wait();
}

/// Test 5: /metrics agrees with `bondd status --json` while the bonds of
/// test 1's topology carry traffic.
#[test]
fn lacp_metrics_consistent_with_status() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = BackToBack::new();
    let extra = ["lacp_rate: fast", "xmit_hash_policy: layer3+4"];
    let mut da = start_bondd(&t.a, &lacp_yaml("bond0", &t.a_slaves(), BOND_A_V4, &extra));
    let mut db = start_bondd(&t.b, &lacp_yaml("bond1", &t.b_slaves(), BOND_B_V4, &extra));
    da.wait_ready(READY_TIMEOUT);
    db.wait_ready(READY_TIMEOUT);
    wait_in_use(&t.a, "bond0", NEGOTIATE_LIMIT, &da);
    wait_in_use(&t.b, "bond1", NEGOTIATE_LIMIT, &db);
    wait_partners_in_use(&t.a, "bond0", &t.b, "bond1");
    let flows = Flows::start(&t.a, &t.b, BOND_B_V4, 9700, 4, 250, 750);
    thread::sleep(Duration::from_secs(1));
    for (ns, bond) in [(&t.a, "bond0"), (&t.b, "bond1")] {
        let before = status(ns, bond);
        let body = http_get_in_netns(ns.name(), "127.0.0.1:9479", "/metrics")
            .unwrap_or_else(|e| panic!("GET /metrics in {}: {e}", ns.name()));
        let after = status(ns, bond);
        let get = |name: &str| -> BTreeMap<String, f64> {
            let s: BTreeMap<String, f64> = metric_samples(&body, name)
                .into_iter()
                .filter(|(l, _)| l.get("bond").is_none_or(|b| b == bond))
                .filter_map(|(l, v)| Some((l.get("slave")?.clone(), v)))
                .collect();
            assert!(
                !s.is_empty(),
                "{bond}: no per-slave {name} samples in /metrics:\n{body}"
            );
            s
        };
        let rx = get("bondd_lacp_pdus_rx_total");
        let st = get("bondd_lacp_actor_state");
        let agg = get("bondd_lacp_aggregator_id");
        println!("METRICS {bond}: pdus_rx {rx:?}, actor_state {st:?}, aggregator_id {agg:?}");
        for (p0, p1) in before.ports.iter().zip(&after.ports) {
            let r = rx
                .get(&p0.name)
                .copied()
                .unwrap_or_else(|| panic!("{bond}: no pdus_rx for {}", p0.name))
                as u64;
            assert!(
                (p0.pdu_rx..=p1.pdu_rx).contains(&r),
                "{bond} {}: bondd_lacp_pdus_rx_total {r} not between status {} and {}",
                p0.name,
                p0.pdu_rx,
                p1.pdu_rx
            );
            let s = st[&p0.name] as u64;
            assert_eq!(
                s, STATE_FAST_IN_USE,
                "{bond} {}: bondd_lacp_actor_state",
                p0.name
            );
            assert_eq!(
                s, p1.actor_state,
                "{bond} {}: actor state metric vs status",
                p0.name
            );
            let a = agg[&p0.name] as u64;
            assert_eq!(
                Some(a),
                p1.aggregator,
                "{bond} {}: aggregator id metric vs status",
                p0.name
            );
        }
    }
    let reps = flows.finish();
    assert!(
        total_received(&reps) * 100 >= 4 * 750 * 99,
        "traffic during the metrics check"
    );
    da.sigterm_and_wait();
    db.sigterm_and_wait();
}
