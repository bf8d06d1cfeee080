//! Operations: metrics (exact counts, promtool, a real Prometheus scraping
//! bondd), `bondd status` in the kernel's /proc/net/bonding format and as
//! JSON, hitless `bondd reload`, a refused bad config, `bondd set-active`,
//! and the root-only control socket.
//!
//! Needs root, a built bondd (`cargo build --workspace --bins`) and, for the
//! Prometheus tests, `prometheus` and `promtool` on PATH (Debian package
//! `prometheus`, installed by `.ci/install`).
//!
//! Metrics are fetched by a plain HTTP/1.0 GET from a thread of the test
//! process that has entered bondd's namespace (`setns`), so the requests
//! never leave that namespace's loopback.

use bondd_tests::*;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const METRICS_ADDR: &str = "127.0.0.1:9479";
/// Where the test's Prometheus listens, inside bondd's namespace.
const PROM_ADDR: &str = "127.0.0.1:19090";
/// Bytes of a `bdt-udp` datagram frame: Ethernet 14 + IPv4 20 + UDP 8 +
/// 64 bytes of payload (the tool's default size).
const UDP_FRAME_BYTES: u64 = 14 + 20 + 8 + 64;

// ---------------------------------------------------------------------------
// helpers: namespaces, HTTP, metrics

/// Runs `f` on a new thread that has entered `ns`'s network namespace (only
/// that thread's; the test process stays where it is).
fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{}", ns.name());
    thread::scope(|s| {
        s.spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: setns(2) on a namespace fd we own; affects this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// An HTTP/1.0 GET (no chunked encoding) to `addr` inside `ns`. Returns
/// (status code, body), or an error text. Bounded: 2 s connect, 5 s reads.
fn http_get(ns: &Netns, addr: &str, target: &str) -> Result<(u16, String), String> {
    let sa: SocketAddr = addr.parse().expect("socket address");
    in_netns(ns, || {
        let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(2))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let req = format!("GET {target} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .map_err(|e| format!("write to {addr}: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("read from {addr}: {e}"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP header end in {text:?}"))?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        Ok((code, body.to_owned()))
    })
}

/// `GET /metrics` from bondd in `ns`; panics unless 200.
fn scrape(ns: &Netns) -> String {
    match http_get(ns, METRICS_ADDR, "/metrics") {
        Ok((200, body)) => body,
        other => panic!(
            "GET http://{METRICS_ADDR}/metrics in {}: {other:?}",
            ns.name()
        ),
    }
}

/// One sample of the text exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A parsed Prometheus text exposition.
#[derive(Debug, Clone)]
struct Exposition {
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name_end = line.find(['{', ' ']).expect("sample line has a value");
            let name = line[..name_end].to_owned();
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(r) = rest.strip_prefix('{') {
                let mut chars = r.char_indices().peekable();
                let mut key = String::new();
                let mut end = r.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '}' => {
                            end = i + 1;
                            break;
                        }
                        ',' | ' ' => {}
                        '=' => {
                            let (_, q) = chars.next().expect("label value");
                            assert_eq!(q, '"', "label value not quoted in {line:?}");
                            let mut val = String::new();
                            while let Some((_, c)) = chars.next() {
                                match c {
                                    '\\' => match chars.next().map(|x| x.1) {
                                        Some('n') => val.push('\n'),
                                        Some(x) => val.push(x),
                                        None => {}
                                    },
                                    '"' => break,
                                    x => val.push(x),
                                }
                            }
                            labels.push((std::mem::take(&mut key), val));
                        }
                        x => key.push(x),
                    }
                }
                rest = &r[end..];
            }
            let value = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad value in sample {line:?}"));
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Exposition { samples }
    }

    /// The one sample of `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
            .collect();
        assert!(
            found.len() <= 1,
            "{name}{labels:?} matches {} samples",
            found.len()
        );
        found.first().copied()
    }

    /// Like [`Exposition::get`] but the sample must exist; as an integer.
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in the exposition"))
            as u64
    }

    /// Every sample whose name starts with `bondd_slave_` for `slave`
    /// (name and other labels → value), for comparing snapshots.
    fn slave_series(&self, slave: &str) -> Vec<(String, f64)> {
        self.samples
            .iter()
            .filter(|s| s.labels.iter().any(|(k, v)| k == "slave" && v == slave))
            .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
            .collect()
    }
}

/// The per-slave traffic counters of one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SlaveTraffic {
    rx_packets: u64,
    tx_packets: u64,
    rx_bytes: u64,
    tx_bytes: u64,
}

impl SlaveTraffic {
    fn of(e: &Exposition, slave: &str) -> SlaveTraffic {
        let l = [("bond", "bond0"), ("slave", slave)];
        SlaveTraffic {
            rx_packets: e.count("bondd_slave_rx_packets_total", &l),
            tx_packets: e.count("bondd_slave_tx_packets_total", &l),
            rx_bytes: e.count("bondd_slave_rx_bytes_total", &l),
            tx_bytes: e.count("bondd_slave_tx_bytes_total", &l),
        }
    }

    fn since(self, before: SlaveTraffic) -> SlaveTraffic {
        SlaveTraffic {
            rx_packets: self.rx_packets - before.rx_packets,
            tx_packets: self.tx_packets - before.tx_packets,
            rx_bytes: self.rx_bytes - before.rx_bytes,
            tx_bytes: self.tx_bytes - before.tx_bytes,
        }
    }
}

/// Scrapes until every `bondd_slave_*` series of `slaves` (and the kernel
/// counters of the bridge ports) stayed the same for `quiet`, at most
/// `limit`. Returns the last scrape; panics if the bond never went quiet.
fn wait_quiet(t: &Topology, slaves: &[&str], quiet: Duration, limit: Duration) -> Exposition {
    let start = Instant::now();
    let snap = |e: &Exposition| {
        let mut v: Vec<(String, f64)> = slaves.iter().flat_map(|s| e.slave_series(s)).collect();
        v.retain(|(k, _)| !k.starts_with("bondd_slave_tx_kicks_total"));
        (v, t.all_port_counters())
    };
    let mut last = Exposition::parse(&scrape(&t.b));
    let mut last_snap = snap(&last);
    let mut since = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(250));
        let e = Exposition::parse(&scrape(&t.b));
        let s = snap(&e);
        if s != last_snap {
            last_snap = s;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            println!(
                "bond quiet for {quiet:?} (after {:?})",
                start.elapsed() - quiet
            );
            return e;
        }
        last = e;
        assert!(
            start.elapsed() < limit,
            "slaves never quiet for {quiet:?} within {limit:?}; last scrape:\n{}",
            last.samples
                .iter()
                .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// helpers: bondd and its CLI

/// A config: the `bonds:` list of `cfg`, after the given top-level lines.
fn yaml_with(top: &str, cfg: &BondConfig) -> String {
    format!("{top}{}", cfg.to_yaml())
}

fn start(t: &Topology, yaml: &str) -> Bondd {
    println!("config:\n{yaml}");
    let mut bondd = Bondd::start(&t.b, yaml);
    let took = bondd.wait_ready(READY_TIMEOUT);
    println!("bondd ready after {took:?}");
    bondd
}

/// Runs `bondd ARGS` in `ns` (as root), bounded to 20 s.
fn cli(ns: &Netns, args: &[&str]) -> TimedOutput {
    let mut all: Vec<OsString> = vec![bondd_bin().into_os_string()];
    all.extend(args.iter().map(OsString::from));
    let out = ns.exec_timeout(&all, Duration::from_secs(20));
    assert!(
        out.status.is_some(),
        "bondd {args:?} did not finish in 20 s; stdout {:?} stderr {:?}",
        out.stdout,
        out.stderr
    );
    out
}

fn cli_ok(ns: &Netns, args: &[&str]) -> String {
    let out = cli(ns, args);
    assert!(
        out.status.is_some_and(|s| s.success()),
        "bondd {args:?}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// `bondd status bond0` (the daemon found by the namespace's default socket).
fn status_text(ns: &Netns) -> String {
    cli_ok(ns, &["status", "bond0"])
}

/// `bondd status bond0 --json`: the bond's object.
fn status_json(ns: &Netns) -> Json {
    let text = cli_ok(ns, &["status", "bond0", "--json"]);
    let v = Json::parse(&text).unwrap_or_else(|e| panic!("status --json: {e}: {text}"));
    let list = v.arr();
    assert_eq!(list.len(), 1, "status bond0 --json: {text}");
    list[0].clone()
}

/// The value of `Key: value` lines of a /proc-style status (first match
/// after `after`, a line that must exist when given).
fn field<'a>(text: &'a str, after: Option<&str>, key: &str) -> Option<&'a str> {
    let mut lines = text.lines();
    if let Some(a) = after {
        lines.find(|l| *l == a)?;
    }
    lines.find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
}

/// Polls `bondd status` until `pred` holds (at most `limit`); returns it.
fn wait_status(ns: &Netns, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let s = status_text(ns);
        if pred(&s) {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "status never showed {what} within {limit:?}:\n{s}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The topology with nothing but the test's datagrams on the slaves: IPv6
/// off in B (so bond0 sends no ND/MLD) and on h0, the bond with an IPv4
/// address only, and (after [`pin_neighbours`]) no ARP.
fn quiet_topology() -> Topology {
    let t = Topology::new();
    t.b.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
    t.b.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
    t.h.sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", t.n.h0), "1");
    t
}

fn quiet_config(t: &Topology) -> BondConfig {
    let mut cfg = BondConfig::active_backup(t);
    cfg.addresses = vec![format!("{BOND_V4}/24")];
    cfg
}

/// Permanent neighbour entries on both sides: no ARP during measurements.
fn pin_neighbours(t: &Topology) {
    let bond_mac = t.b.link_state("bond0").mac;
    let host_mac = t.h.link_state(&t.n.h0).mac;
    t.b.ip(&[
        "neigh",
        "replace",
        HOST_V4,
        "lladdr",
        &host_mac,
        "dev",
        "bond0",
        "nud",
        "permanent",
    ]);
    t.h.ip(&[
        "neigh",
        "replace",
        BOND_V4,
        "lladdr",
        &bond_mac,
        "dev",
        &t.n.h0,
        "nud",
        "permanent",
    ]);
    println!("neighbours pinned: bond0 {bond_mac}, h0 {host_mac}");
}

/// Exactly `n` datagrams each way (H → bond0, then bond0 → H), all delivered.
fn exact_datagrams(t: &Topology, n: u64, port: u16) {
    for (from, to, ip, port) in [(&t.h, &t.b, BOND_V4, port), (&t.b, &t.h, HOST_V4, port + 1)] {
        let r = udp_stream(from, to, ip, port, 1000, n);
        assert_eq!(r.received(), n, "stream to {ip}: {}", r.line);
        assert_eq!(r.duplicates(), 0, "stream to {ip}: {}", r.line);
    }
}

fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH: install the Debian package `prometheus` \
                 (it provides prometheus and promtool; .ci/install does)"
            )
        })
}

// ---------------------------------------------------------------------------
// a minimal JSON reader (status --json, the Prometheus API)

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
        let v = Json::value(b, &mut i)?;
        Json::ws(b, &mut i);
        if i != b.len() {
            return Err(format!("trailing data at {i}"));
        }
        Ok(v)
    }

    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }

    fn value(b: &[u8], i: &mut usize) -> Result<Json, String> {
        Json::ws(b, i);
        let lit = |i: &mut usize, word: &str, v: Json| {
            if b[*i..].starts_with(word.as_bytes()) {
                *i += word.len();
                Ok(v)
            } else {
                Err(format!("bad literal at {i}"))
            }
        };
        match b.get(*i) {
            None => Err("unexpected end".into()),
            Some(b'n') => lit(i, "null", Json::Null),
            Some(b't') => lit(i, "true", Json::Bool(true)),
            Some(b'f') => lit(i, "false", Json::Bool(false)),
            Some(b'"') => Json::string(b, i).map(Json::Str),
            Some(b'[') => {
                *i += 1;
                let mut v = Vec::new();
                Json::ws(b, i);
                if b.get(*i) == Some(&b']') {
                    *i += 1;
                    return Ok(Json::Arr(v));
                }
                loop {
                    v.push(Json::value(b, i)?);
                    Json::ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b']') => {
                            *i += 1;
                            return Ok(Json::Arr(v));
                        }
                        _ => return Err(format!("expected , or ] at {i}")),
                    }
                }
            }
            Some(b'{') => {
                *i += 1;
                let mut v = Vec::new();
                Json::ws(b, i);
                if b.get(*i) == Some(&b'}') {
                    *i += 1;
                    return Ok(Json::Obj(v));
                }
                loop {
                    Json::ws(b, i);
                    let k = Json::string(b, i)?;
                    Json::ws(b, i);
                    if b.get(*i) != Some(&b':') {
                        return Err(format!("expected : at {i}"));
                    }
                    *i += 1;
                    v.push((k, Json::value(b, i)?));
                    Json::ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b'}') => {
                            *i += 1;
                            return Ok(Json::Obj(v));
                        }
                        _ => return Err(format!("expected , or }} at {i}")),
                    }
                }
            }
            Some(_) => {
                let start = *i;
                while *i < b.len()
                    && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    *i += 1;
                }
                std::str::from_utf8(&b[start..*i])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad number at {start}"))
            }
        }
    }

    fn string(b: &[u8], i: &mut usize) -> Result<String, String> {
        if b.get(*i) != Some(&b'"') {
            return Err(format!("expected string at {i}"));
        }
        *i += 1;
        let mut out = Vec::new();
        loop {
            match b.get(*i) {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    *i += 1;
                    return String::from_utf8(out).map_err(|e| e.to_string());
                }
                Some(b'\\') => {
                    let c = *b.get(*i + 1).ok_or("bad escape")?;
                    *i += 2;
                    match c {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(b.get(*i..*i + 4).ok_or("bad \\u")?)
                                .map_err(|e| e.to_string())?;
                            let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            *i += 4;
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        x => out.push(x),
                    }
                }
                Some(&c) => {
                    out.push(c);
                    *i += 1;
                }
            }
        }
    }

    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(v) => v
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or(&Json::Null),
            _ => &Json::Null,
        }
    }

    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            other => panic!("not an array: {other:?}"),
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    fn bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

#[test]
fn json_reader_reads_what_serde_writes() {
    let v = Json::parse(
        r#"[{"name":"bond0","n":-1.5e2,"ok":true,"x":null,"l":[["a",1]],"s":"q\"\u00e9"}]"#,
    )
    .unwrap();
    let b = &v.arr()[0];
    assert_eq!(b.get("name").str(), Some("bond0"));
    assert_eq!(b.get("n").num(), Some(-150.0));
    assert_eq!(b.get("ok").bool(), Some(true));
    assert_eq!(b.get("x"), &Json::Null);
    assert_eq!(b.get("l").arr()[0].arr()[1].num(), Some(1.0));
    assert_eq!(b.get("s").str(), Some("q\"é"));
    let e = Exposition::parse(
        "# HELP a x\n# TYPE a counter\na_total{bond=\"b\",slave=\"s\\\"1\"} 12\nb 3\n",
    );
    assert_eq!(e.get("a_total", &[("slave", "s\"1")]), Some(12.0));
    assert_eq!(e.get("b", &[]), Some(3.0));
}

// ---------------------------------------------------------------------------
// Prometheus

/// A Prometheus server in a test namespace; SIGKILLed by pid and its
/// directory (config, TSDB, log) removed on drop.
struct Prometheus {
    // Field order: the process dies before its directory is removed.
    child: ChildGuard,
    dir: TempDir,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` in `ns` on [`PROM_ADDR`], scraping bondd's
    /// metrics every second.
    fn start(ns: &Netns) -> Prometheus {
        let bin = require_tool("prometheus");
        let dir = TempDir::new();
        let cfg = dir.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: bondd\n    static_configs:\n      - targets: [\"{METRICS_ADDR}\"]\n"
            ),
        );
        let tsdb = dir.path().join("tsdb");
        let log = dir.path().join("prometheus.log");
        let out = File::create(&log).expect("prometheus log");
        let err = out.try_clone().expect("clone log fd");
        let args: Vec<OsString> = vec![
            bin.into_os_string(),
            format!("--config.file={}", cfg.display()).into(),
            format!("--storage.tsdb.path={}", tsdb.display()).into(),
            format!("--web.listen-address={PROM_ADDR}").into(),
            "--web.enable-lifecycle".into(),
            "--storage.tsdb.retention.time=1h".into(),
        ];
        let child = ChildGuard::new(ns.spawn(&args, Stdio::from(out), Stdio::from(err)));
        println!("prometheus started (pid {})", child.pid());
        Prometheus { child, dir, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query; the `data.result` vector as (labels object, value).
    fn query(&mut self, ns: &Netns, promql: &str) -> Result<Vec<(Json, f64)>, String> {
        if let Ok(Some(st)) = self.child.child_mut().try_wait() {
            panic!("prometheus exited with {st}; log:\n{}", self.log());
        }
        let (code, body) = http_get(
            ns,
            PROM_ADDR,
            &format!("/api/v1/query?query={}", urlencode(promql)),
        )?;
        if code != 200 {
            return Err(format!("HTTP {code}: {body}"));
        }
        let v = Json::parse(&body).map_err(|e| format!("{e}: {body}"))?;
        if v.get("status").str() != Some("success") {
            return Err(format!("query {promql}: {body}"));
        }
        let mut out = Vec::new();
        for r in v.get("data").get("result").arr() {
            let val = r.get("value").arr()[1]
                .str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad value in {body}"))?;
            out.push((r.get("metric").clone(), val));
        }
        Ok(out)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- prometheus log ({}) ----\n{}\n---- end of prometheus log ----",
                self.dir.path().display(),
                self.log()
            );
        }
        // ChildGuard kills it (SIGKILL by pid), then TempDir is removed.
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// tests

/// Test 1: Exactly N datagrams each way: the active slave's rx and tx counters
/// grow by exactly N (and N × frame bytes), the backup's not at all, and
/// the kernel counters of the bridge port agree.
#[test]
fn metrics_count_exactly() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    const N: u64 = 1000;
    let t = quiet_topology();
    let cfg = quiet_config(&t);
    let _bondd = start(
        &t,
        &yaml_with("metrics:\n  listen: \"127.0.0.1:9479\"\n", &cfg),
    );
    pin_neighbours(&t);
    let (s0, s1) = (t.n.s0.as_str(), t.n.s1.as_str());
    let m0 = wait_quiet(
        &t,
        &[s0, s1],
        Duration::from_secs(2),
        Duration::from_secs(20),
    );
    let k0 = t.port_counters();
    exact_datagrams(&t, N, 9200);
    let m1 = wait_quiet(
        &t,
        &[s0, s1],
        Duration::from_secs(1),
        Duration::from_secs(10),
    );
    let k1 = t.port_counters();

    let d0 = SlaveTraffic::of(&m1, s0).since(SlaveTraffic::of(&m0, s0));
    let d1 = SlaveTraffic::of(&m1, s1).since(SlaveTraffic::of(&m0, s1));
    let kd = [k1[0].since(k0[0]), k1[1].since(k0[1])];
    println!("N = {N} datagrams each way, {UDP_FRAME_BYTES} bytes a frame");
    println!("metrics delta s0 (active): {d0:?}");
    println!("metrics delta s1 (backup): {d1:?}");
    println!(
        "kernel delta p0: rx {} (sent by s0) tx {}; p1: rx {} tx {}",
        kd[0].rx, kd[0].tx, kd[1].rx, kd[1].tx
    );
    assert_eq!(
        d0,
        SlaveTraffic {
            rx_packets: N,
            tx_packets: N,
            rx_bytes: N * UDP_FRAME_BYTES,
            tx_bytes: N * UDP_FRAME_BYTES,
        },
        "active slave's counters"
    );
    assert_eq!(d1, SlaveTraffic::default(), "backup slave's counters");
    assert_eq!(kd[0], Counters { rx: N, tx: N }, "kernel counters of p0");
    assert_eq!(kd[1], Counters::default(), "kernel counters of p1");
    for reason in ["inactive", "bond_full", "runt", "no_socket"] {
        for s in [s0, s1] {
            let l = [("slave", s), ("reason", reason)];
            let before = m0.count("bondd_slave_rx_dropped_total", &l);
            let after = m1.count("bondd_slave_rx_dropped_total", &l);
            assert_eq!(after, before, "rx dropped ({reason}) on {s}");
        }
    }
    for reason in ["ring_full", "error"] {
        for s in [s0, s1] {
            let l = [("slave", s), ("reason", reason)];
            assert_eq!(
                m1.count("bondd_slave_tx_dropped_total", &l),
                m0.count("bondd_slave_tx_dropped_total", &l),
                "tx dropped ({reason}) on {s}"
            );
        }
    }
    // The state series.
    assert_eq!(m1.count("bondd_bond_up", &[("bond", "bond0")]), 1);
    assert_eq!(m1.count("bondd_slave_up", &[("slave", s0)]), 1);
    assert_eq!(m1.count("bondd_slave_up", &[("slave", s1)]), 1);
    assert_eq!(m1.count("bondd_slave_active", &[("slave", s0)]), 1);
    assert_eq!(m1.count("bondd_slave_active", &[("slave", s1)]), 0);
    assert_eq!(m1.count("bondd_active_slave_info", &[("slave", s0)]), 1);
    assert_eq!(m1.get("bondd_active_slave_info", &[("slave", s1)]), None);
    assert_eq!(
        m1.count("bondd_slave_link_failures_total", &[("slave", s0)]),
        0
    );
}

/// Test 2: `promtool check metrics` accepts the exposition without a lint remark.
#[test]
fn promtool_accepts_metrics() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let promtool = require_tool("promtool");
    let t = Topology::new();
    let cfg = BondConfig::active_backup(&t);
    let _bondd = start(&t, &cfg.to_yaml());
    // Some traffic, so that counters are not all zero.
    let r = udp_stream(&t.h, &t.b, BOND_V4, 9210, 1000, 200);
    assert!(r.received() >= 190, "{}", r.line);
    let body = scrape(&t.b);
    // The achieved modes and the UMEM size are reported, not left empty.
    assert!(
        body.contains(r#"xdp="native",af_xdp="copy"}"#)
            || body.contains(r#"xdp="generic",af_xdp="copy"}"#),
        "no achieved XDP/AF_XDP mode in the metrics:\n{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("bondd_worker_umem_frames{") && !l.ends_with(" 0")),
        "UMEM frame count missing or 0:\n{body}"
    );
    let dir = TempDir::new();
    let file = dir.write("metrics.txt", &body);
    let series = body.lines().filter(|l| !l.starts_with('#')).count();
    let families = body.lines().filter(|l| l.starts_with("# TYPE ")).count();
    println!(
        "exposition: {} bytes, {families} families, {series} samples",
        body.len()
    );
    let out = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(File::open(&file).expect("metrics file"))
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "promtool check metrics: {} stdout {stdout:?} stderr {stderr:?}",
        out.status
    );
    assert!(
        out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics: {}\nstdout: {stdout}\nstderr: {stderr}\nexposition:\n{body}",
        out.status
    );
}

/// Test 3: A real Prometheus in bondd's namespace scrapes it; after a known
/// amount of traffic its view of the counters equals bondd's.
#[test]
fn prometheus_scrapes_bondd() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    const N: u64 = 500;
    let t = quiet_topology();
    let cfg = quiet_config(&t);
    let _bondd = start(&t, &cfg.to_yaml());
    pin_neighbours(&t);
    let (s0, s1) = (t.n.s0.as_str(), t.n.s1.as_str());
    let mut prom = Prometheus::start(&t.b);

    // Target up.
    let start = Instant::now();
    loop {
        match prom.query(&t.b, "up{job=\"bondd\"}") {
            Ok(v) if v.len() == 1 && v[0].1 == 1.0 => break,
            other => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "bondd target not up in Prometheus after 30 s: {other:?}\nprometheus log:\n{}",
                    prom.log()
                );
            }
        }
        thread::sleep(Duration::from_millis(250));
    }
    println!("prometheus: target up after {:?}", start.elapsed());

    let m0 = wait_quiet(
        &t,
        &[s0, s1],
        Duration::from_secs(1),
        Duration::from_secs(20),
    );
    exact_datagrams(&t, N, 9220);
    let m1 = wait_quiet(
        &t,
        &[s0, s1],
        Duration::from_secs(1),
        Duration::from_secs(10),
    );
    let d0 = SlaveTraffic::of(&m1, s0).since(SlaveTraffic::of(&m0, s0));
    println!("bondd: s0 grew by {d0:?}");
    assert_eq!(
        (d0.rx_packets, d0.tx_packets),
        (N, N),
        "bondd's own counters"
    );

    let want: Vec<(&str, &str, u64)> = [s0, s1]
        .into_iter()
        .flat_map(|s| {
            let l = [("bond", "bond0"), ("slave", s)];
            [
                (
                    "bondd_slave_tx_packets_total",
                    s,
                    m1.count("bondd_slave_tx_packets_total", &l),
                ),
                (
                    "bondd_slave_rx_packets_total",
                    s,
                    m1.count("bondd_slave_rx_packets_total", &l),
                ),
                (
                    "bondd_slave_tx_bytes_total",
                    s,
                    m1.count("bondd_slave_tx_bytes_total", &l),
                ),
            ]
        })
        .collect();
    let start = Instant::now();
    let mut last = Vec::new();
    loop {
        let mut got = Vec::new();
        for (metric, slave, _) in &want {
            let q = format!("{metric}{{job=\"bondd\",bond=\"bond0\",slave=\"{slave}\"}}");
            let v = prom
                .query(&t.b, &q)
                .unwrap_or_else(|e| panic!("query {q}: {e}"));
            got.push(v.first().map(|x| x.1 as u64));
        }
        let wanted: Vec<Option<u64>> = want.iter().map(|w| Some(w.2)).collect();
        if got == wanted {
            break;
        }
        last = got;
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "Prometheus does not show bondd's values after 15 s:\nwant {want:?}\ngot  {last:?}"
        );
        thread::sleep(Duration::from_millis(250));
    }
    for (m, s, v) in &want {
        println!("prometheus {m}{{slave={s}}} = {v} (= bondd)");
    }
    let _ = last;
    // The whole family through the API, as the brief's query.
    let all = prom
        .query(&t.b, "bondd_slave_tx_packets_total")
        .expect("query bondd_slave_tx_packets_total");
    assert_eq!(all.len(), 2, "one series per slave: {all:?}");
    for (labels, v) in &all {
        let slave = labels.get("slave").str().expect("slave label");
        let l = [("bond", "bond0"), ("slave", slave)];
        assert_eq!(
            *v as u64,
            m1.count("bondd_slave_tx_packets_total", &l),
            "{slave}"
        );
    }
    println!("prometheus scrape check done after {:?}", start.elapsed());
}

/// The expected /proc/net/bonding text of an active-backup bond0 with the
/// topology's slaves; `slave_lines` gives each slave's (MII, speed, duplex,
/// failures) lines.
fn proc_text(
    header: &str,
    primary: &str,
    active: &str,
    slaves: &[(&str, &str, String, String, u32, &str)],
) -> String {
    let mut s = format!(
        "{header}\n\nBonding Mode: fault-tolerance (active-backup)\n\
         Primary Slave: {primary} (primary_reselect always)\n\
         Currently Active Slave: {active}\nMII Status: up\nMII Polling Interval (ms): 100\n\
         Up Delay (ms): 0\nDown Delay (ms): 0\nPeer Notification Delay (ms): 0\n"
    );
    for (name, mii, speed, duplex, failures, mac) in slaves {
        s.push_str(&format!(
            "\nSlave Interface: {name}\nMII Status: {mii}\nSpeed: {speed}\nDuplex: {duplex}\n\
             Link Failure Count: {failures}\nPermanent HW addr: {mac}\nSlave queue ID: 0\n"
        ));
    }
    s
}

/// Speed and duplex of a link as the kernel's bonding prints them
/// ("10000 Mbps"/"full", or "Unknown"), from ethtool.
fn speed_duplex(ns: &Netns, ifname: &str) -> (String, String) {
    let out = ns.exec_ok(&["ethtool", ifname]);
    let speed = field_ws(&out, "Speed:")
        .and_then(|s| s.strip_suffix("Mb/s").map(|n| format!("{n} Mbps")))
        .unwrap_or_else(|| "Unknown".into());
    let duplex = match field_ws(&out, "Duplex:").as_deref() {
        Some("Full") => "full".to_owned(),
        Some("Half") => "half".to_owned(),
        _ => "Unknown".to_owned(),
    };
    (speed, duplex)
}

fn field_ws(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
}

/// Checks the JSON status against what the text showed.
fn check_json(j: &Json, text: &str, slaves: &[&str], perm: &[String]) {
    assert_eq!(j.get("name").str(), Some("bond0"));
    assert_eq!(j.get("mode").str(), Some("active-backup"));
    assert_eq!(
        j.get("mode_description").str(),
        field(text, None, "Bonding Mode")
    );
    assert_eq!(
        j.get("active_slave").str(),
        field(text, None, "Currently Active Slave")
    );
    let primary = field(text, None, "Primary Slave").expect("primary line");
    assert_eq!(
        j.get("primary")
            .str()
            .map(|p| format!("{p} (primary_reselect always)")),
        Some(primary.to_owned())
    );
    assert_eq!(j.get("primary_reselect").str(), Some("always"));
    assert_eq!(
        j.get("mii_up").bool(),
        Some(field(text, None, "MII Status") == Some("up"))
    );
    for (k, key) in [
        ("miimon", "MII Polling Interval (ms)"),
        ("updelay", "Up Delay (ms)"),
        ("downdelay", "Down Delay (ms)"),
        ("peer_notif_delay", "Peer Notification Delay (ms)"),
    ] {
        assert_eq!(
            j.get(k).num().map(|n| n.to_string()),
            field(text, None, key).map(str::to_owned),
            "{k}"
        );
    }
    let js = j.get("slaves").arr();
    assert_eq!(js.len(), slaves.len());
    for (i, s) in slaves.iter().enumerate() {
        let after = format!("Slave Interface: {s}");
        let a = Some(after.as_str());
        let o = &js[i];
        assert_eq!(o.get("name").str(), Some(*s));
        assert_eq!(
            o.get("link_failure_count").num().map(|n| n.to_string()),
            field(text, a, "Link Failure Count").map(str::to_owned),
            "{s} link failures"
        );
        assert_eq!(o.get("perm_hwaddr").str(), Some(perm[i].as_str()));
        assert_eq!(
            o.get("perm_hwaddr").str(),
            field(text, a, "Permanent HW addr")
        );
        assert_eq!(o.get("queue_id").num(), Some(0.0));
        let mii = field(text, a, "MII Status").expect("slave MII");
        assert_eq!(o.get("mii_up").bool(), Some(mii == "up"), "{s} MII");
        let speed = field(text, a, "Speed").expect("speed");
        match o.get("speed_mbps").num() {
            Some(n) => assert_eq!(speed, format!("{n} Mbps")),
            None => assert_eq!(speed, "Unknown"),
        }
        let active = field(text, None, "Currently Active Slave") == Some(*s);
        assert_eq!(o.get("active").bool(), Some(active), "{s} active");
    }
}

/// Test 4: `bondd status` prints exactly the kernel's /proc/net/bonding layout,
/// and `--json` the same data; a failover shows in both.
#[test]
fn status_text_matches_kernel_format() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let (s0, s1) = (t.n.s0.as_str(), t.n.s1.as_str());
    let perm: Vec<String> = t.slave_states().iter().map(|s| s.mac.clone()).collect();
    let sd: Vec<(String, String)> = [s0, s1].iter().map(|s| speed_duplex(&t.b, s)).collect();
    println!(
        "before bondd: {s0} {} {:?}, {s1} {} {:?}",
        perm[0], sd[0], perm[1], sd[1]
    );
    let cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg.to_yaml());

    let text = status_text(&t.b);
    println!("bondd status:\n{text}");
    let header = text.lines().next().expect("header").to_owned();
    assert!(
        header.starts_with("Ethernet Channel Bonding Driver: v"),
        "header {header:?}"
    );
    let want = proc_text(
        &header,
        s0,
        s0,
        &[
            (s0, "up", sd[0].0.clone(), sd[0].1.clone(), 0, &perm[0]),
            (s1, "up", sd[1].0.clone(), sd[1].1.clone(), 0, &perm[1]),
        ],
    );
    assert_eq!(text, want, "status (left) vs the kernel layout (right)");
    let j = status_json(&t.b);
    check_json(&j, &text, &[s0, s1], &perm);
    // The same status with an explicit --config finds the same daemon.
    let by_cfg = cli_ok(
        &t.b,
        &[
            "status",
            "--config",
            bondd.config_path().to_str().expect("utf-8"),
        ],
    );
    assert_eq!(by_cfg, text, "status --config");

    // Failover: s0 loses carrier.
    t.sw.link_down(&t.n.p0);
    bondd.wait_log_lines(&["failover"], 1, Duration::from_secs(5));
    let text = wait_status(&t.b, Duration::from_secs(5), "s0 failed", |s| {
        field(s, None, "Currently Active Slave") == Some(s1)
            && field(
                s,
                Some(&format!("Slave Interface: {s0}")),
                "Link Failure Count",
            ) == Some("1")
    });
    println!("after p0 down:\n{text}");
    let a0 = format!("Slave Interface: {s0}");
    assert_eq!(field(&text, Some(&a0), "MII Status"), Some("down"));
    // A slave without carrier: whatever it reports for speed (the kernel
    // shows Unknown); the layout is the same.
    let speed0 = field(&text, Some(&a0), "Speed").expect("speed").to_owned();
    let duplex0 = field(&text, Some(&a0), "Duplex")
        .expect("duplex")
        .to_owned();
    let want = proc_text(
        &header,
        s0,
        s1,
        &[
            (s0, "down", speed0, duplex0, 1, &perm[0]),
            (s1, "up", sd[1].0.clone(), sd[1].1.clone(), 0, &perm[1]),
        ],
    );
    assert_eq!(
        text, want,
        "status after failover (left) vs expected (right)"
    );
    let j = status_json(&t.b);
    check_json(&j, &text, &[s0, s1], &perm);
    assert!(j.get("failovers").num().unwrap_or(0.0) >= 1.0);

    // Back to the primary (primary_reselect always); the failure count stays.
    t.sw.link_up(&t.n.p0);
    let text = wait_status(&t.b, Duration::from_secs(5), "s0 back", |s| {
        field(s, None, "Currently Active Slave") == Some(s0)
    });
    println!("after p0 up:\n{text}");
    let want = proc_text(
        &header,
        s0,
        s0,
        &[
            (s0, "up", sd[0].0.clone(), sd[0].1.clone(), 1, &perm[0]),
            (s1, "up", sd[1].0.clone(), sd[1].1.clone(), 0, &perm[1]),
        ],
    );
    assert_eq!(text, want, "status after return (left) vs expected (right)");
    check_json(&status_json(&t.b), &text, &[s0, s1], &perm);
    // Unknown bond.
    let out = cli(&t.b, &["status", "bond9"]);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
    assert!(out.stderr.contains("no bond named bond9"), "{out:?}");
}

/// Writes `cfg` over the running daemon's config file and runs `bondd
/// reload --config FILE`; returns the daemon's message.
fn reload_with(bondd: &Bondd, ns: &Netns, yaml: &str) -> String {
    fs::write(bondd.config_path(), yaml).expect("write config");
    let path = bondd.config_path().to_str().expect("utf-8").to_owned();
    let t0 = Instant::now();
    let msg = cli_ok(ns, &["reload", "--config", &path]);
    println!("reload ({:?}): {}", t0.elapsed(), msg.trim());
    msg
}

/// Test 5: While a stream runs both ways over s0, reloads add s2 and then remove
/// s1: not one datagram lost.
#[test]
fn reload_add_and_remove_slave_loses_nothing_on_untouched_slave() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::build(TopologyOpts {
        extra_slaves: 1,
        ..Default::default()
    });
    let (s0, s1) = (t.n.s0.clone(), t.n.s1.clone());
    let s2 = t.n.extra[0].0.clone();
    let before_s1 = t.b.link_state(&s1);
    let mut cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg.to_yaml());
    let got = t.h.ping(BOND_V4, 3, Duration::from_secs(8));
    assert!(got >= 2, "ping bond0: {got}/3");
    let got = t.b.ping(HOST_V4, 3, Duration::from_secs(8));
    assert!(got >= 2, "ping H: {got}/3");

    const PPS: u64 = 2000;
    const COUNT: u64 = 6 * PPS;
    let rx_h = UdpReceiver::start(
        &t.h,
        &sockaddr(HOST_V4, 9300),
        COUNT,
        PPS,
        Duration::from_secs(12),
    );
    let rx_b = UdpReceiver::start(
        &t.b,
        &sockaddr(BOND_V4, 9301),
        COUNT,
        PPS,
        Duration::from_secs(12),
    );
    let tx_b = UdpSender::start(&t.b, &sockaddr(HOST_V4, 9300), PPS, COUNT);
    let tx_h = UdpSender::start(&t.h, &sockaddr(BOND_V4, 9301), PPS, COUNT);
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs(2));
    cfg.slaves = vec![s0.clone(), s1.clone(), s2.clone()];
    let m1 = reload_with(&bondd, &t.b, &cfg.to_yaml());
    println!("  at {:?}", t0.elapsed());
    assert!(m1.contains(&format!("added slave {s2}")), "reload: {m1}");
    thread::sleep((t0 + Duration::from_secs(4)).saturating_duration_since(Instant::now()));
    cfg.slaves = vec![s0.clone(), s2.clone()];
    let m2 = reload_with(&bondd, &t.b, &cfg.to_yaml());
    println!("  at {:?}", t0.elapsed());
    assert!(m2.contains(&format!("removed slave {s1}")), "reload: {m2}");
    let sent_b = tx_b.finish();
    let sent_h = tx_h.finish();
    let rep_h = rx_h.finish();
    let rep_b = rx_b.finish();
    println!("bond0 -> H: sender {sent_b}; receiver {}", rep_h.line);
    println!("H -> bond0: sender {sent_h}; receiver {}", rep_b.line);
    println!(
        "RELOAD LOSS bond0 -> H: {} of {COUNT}; H -> bond0: {} of {COUNT}",
        rep_h.lost(),
        rep_b.lost()
    );

    let text = status_text(&t.b);
    println!("status after the reloads:\n{text}");
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Slave Interface: "))
        .collect();
    assert_eq!(names, [s0.as_str(), s2.as_str()], "slaves after reload");
    assert_eq!(
        field(&text, None, "Currently Active Slave"),
        Some(s0.as_str())
    );
    // s1 is given back as it was; s2 carries the bond.
    let now_s1 = t.b.link_state(&s1);
    assert_eq!(now_s1, before_s1, "s1 restored after removal");
    assert!(!t.b.has_xdp(&s1), "XDP still on removed {s1}");
    assert!(t.b.has_xdp(&s2), "no XDP on added {s2}");
    assert_eq!(
        t.b.link_state(&s2).mac,
        t.b.link_state("bond0").mac,
        "s2 carries the bond MAC"
    );
    assert_eq!(rep_h.lost(), 0, "bond0 -> H lost datagrams: {}", rep_h.line);
    assert_eq!(rep_b.lost(), 0, "H -> bond0 lost datagrams: {}", rep_b.line);
    assert_eq!(rep_h.duplicates() + rep_b.duplicates(), 0);
    bondd.sigterm_and_wait();
    assert!(
        bondd.log().contains("frame accounting balanced"),
        "no balanced frame accounting at exit; log:\n{}",
        bondd.log()
    );
}

/// Test 6: A broken config is refused by `bondd reload` (and SIGHUP), naming the
/// file; the bond runs on unchanged.
#[test]
fn reload_bad_config_refused() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg.to_yaml());
    let before = status_text(&t.b);
    let json_before = status_json(&t.b);
    let good = fs::read_to_string(bondd.config_path()).expect("config");
    let path = bondd.config_path().to_str().expect("utf-8").to_owned();

    for (what, bad) in [
        (
            "unknown mode",
            good.replace("mode: active-backup", "mode: active-bakup"),
        ),
        ("missing slave", good.replace(&t.n.s1, "bdtnosuchslave")),
        ("not YAML", "bonds: [\n  - {name: bond0,\n".to_owned()),
    ] {
        fs::write(bondd.config_path(), &bad).expect("write config");
        // The daemon found by the namespace's default socket (the file
        // cannot be read for `control: socket:` any more).
        let out = cli(&t.b, &["reload"]);
        println!(
            "reload with {what}: exit {:?}; stderr: {}",
            out.status.and_then(|s| s.code()),
            out.stderr.trim()
        );
        assert_eq!(
            out.status.and_then(|s| s.code()),
            Some(1),
            "{what}: {out:?}"
        );
        assert!(
            out.stderr.contains("reload refused, nothing changed") && out.stderr.contains(&path),
            "{what}: the error must say refused and name {path}: {}",
            out.stderr
        );
        let now = status_text(&t.b);
        assert_eq!(now, before, "{what}: status changed");
    }
    // SIGHUP with the broken file: refused too, bondd keeps running.
    let n = bondd.log_lines_with(&["reload refused"]).len();
    // SAFETY: kill(2) of our own child bondd.
    unsafe {
        libc::kill(bondd.pid() as libc::pid_t, libc::SIGHUP);
    }
    let line = bondd.wait_log_lines(&["reload refused"], n + 1, Duration::from_secs(5));
    println!("SIGHUP: {line}");
    assert_eq!(status_text(&t.b), before, "SIGHUP: status changed");
    let json_now = status_json(&t.b);
    for k in [
        "name",
        "mode",
        "primary",
        "active_slave",
        "mii_up",
        "mac",
        "failovers",
    ] {
        assert_eq!(json_now.get(k), json_before.get(k), "json {k}");
    }
    // Traffic both ways still flows, on s0.
    let before_k = t.port_counters();
    for (from, to, ip, port) in [(&t.h, &t.b, BOND_V4, 9400), (&t.b, &t.h, HOST_V4, 9401)] {
        let r = udp_stream(from, to, ip, port, 2000, 2000);
        assert!(r.received() >= 1990, "stream to {ip}: {}", r.line);
    }
    let d = t.port_counters();
    println!(
        "after refused reloads: s0 sent {} frames, s1 {}",
        d[0].rx - before_k[0].rx,
        d[1].rx - before_k[1].rx
    );
    assert!(d[0].rx - before_k[0].rx >= 1990);
    // The good file back: reload accepted, nothing to change.
    fs::write(bondd.config_path(), &good).expect("write config");
    let msg = cli_ok(&t.b, &["reload", "--config", &path]);
    println!("reload with the good file: {}", msg.trim());
    assert!(msg.contains("unchanged"), "{msg}");
}

/// Test 7: `bondd set-active` moves transmission to the named slave; a slave
/// without link (or not a slave) is refused.
#[test]
fn set_active_switches_slave() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let (s0, s1) = (t.n.s0.as_str(), t.n.s1.as_str());
    let cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg.to_yaml());
    let got = t.h.ping(BOND_V4, 3, Duration::from_secs(8));
    assert!(got >= 2, "ping bond0: {got}/3");
    let m0 = Exposition::parse(&scrape(&t.b));
    let f0 = m0.count("bondd_failovers_total", &[("bond", "bond0")]);

    let msg = cli_ok(&t.b, &["set-active", "bond0", s1]);
    println!("set-active bond0 {s1}: {}", msg.trim());
    let text = status_text(&t.b);
    assert_eq!(
        field(&text, None, "Currently Active Slave"),
        Some(s1),
        "{text}"
    );
    bondd.wait_log_lines(&["set-active"], 1, Duration::from_secs(2));
    // Both directions now use s1 (bond0 announced itself there).
    let before = t.port_counters();
    for (from, to, ip, port) in [(&t.b, &t.h, HOST_V4, 9500), (&t.h, &t.b, BOND_V4, 9501)] {
        let r = udp_stream(from, to, ip, port, 2000, 2000);
        assert!(r.received() >= 1990, "stream to {ip}: {}", r.line);
    }
    let after = t.port_counters();
    let d = [after[0].since(before[0]), after[1].since(before[1])];
    println!(
        "after set-active {s1}: p0 rx {} tx {}, p1 rx {} tx {}",
        d[0].rx, d[0].tx, d[1].rx, d[1].tx
    );
    assert!(d[1].rx >= 2000, "s1 sent only {} frames", d[1].rx);
    assert!(d[1].tx >= 1990, "s1 received only {} frames", d[1].tx);
    assert!(d[0].rx < 5, "s0 still sent {} frames", d[0].rx);
    let text = status_text(&t.b);
    assert_eq!(
        field(&text, None, "Currently Active Slave"),
        Some(s1),
        "still s1:\n{text}"
    );
    let m1 = Exposition::parse(&scrape(&t.b));
    assert_eq!(m1.count("bondd_active_slave_info", &[("slave", s1)]), 1);
    assert_eq!(m1.count("bondd_slave_active", &[("slave", s1)]), 1);
    assert_eq!(m1.count("bondd_slave_active", &[("slave", s0)]), 0);
    assert_eq!(
        m1.count("bondd_failovers_total", &[("bond", "bond0")]),
        f0 + 1
    );

    // Already active: fine, nothing changes.
    let msg = cli_ok(&t.b, &["set-active", "bond0", s1]);
    assert!(msg.contains("already"), "{msg}");
    // Back to s0 by set-active, then take s1's link away and try it.
    cli_ok(&t.b, &["set-active", "bond0", s0]);
    t.sw.link_down(&t.n.p1);
    wait_status(&t.b, Duration::from_secs(5), "s1 down", |s| {
        field(s, Some(&format!("Slave Interface: {s1}")), "MII Status") == Some("down")
    });
    for (slave, why) in [(s1, "its link is"), ("bdtnosuchslave", "not a slave")] {
        let out = cli(&t.b, &["set-active", "bond0", slave]);
        println!(
            "set-active bond0 {slave}: exit {:?} {}",
            out.status.and_then(|s| s.code()),
            out.stderr.trim()
        );
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
        assert!(out.stderr.contains(why), "{out:?}");
    }
    let text = status_text(&t.b);
    assert_eq!(
        field(&text, None, "Currently Active Slave"),
        Some(s0),
        "{text}"
    );
    let out = cli(&t.b, &["set-active", "bond9", s0]);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
    assert!(out.stderr.contains("no bond named bond9"), "{out:?}");
}

/// Runs `f` on a new thread whose credentials (this thread's only: the
/// raw syscalls, not libc's process-wide wrappers) are uid/gid 65534
/// without supplementary groups. The thread ends with `f`, so no thread of
/// this process keeps them.
fn as_nobody_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|sc| {
        sc.spawn(|| {
            // SAFETY: raw setgroups/setresgid/setresuid of the calling thread;
            // no memory is passed except a null list of length 0.
            unsafe {
                assert_eq!(
                    libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
                    0
                );
                assert_eq!(libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534), 0);
                assert_eq!(libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534), 0);
            }
            // SAFETY: geteuid has no preconditions.
            assert_eq!(unsafe { libc::geteuid() }, 65534);
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// The socket bondd listens on by default (named after its namespace's
/// cookie, which only the daemon knows): read from its log.
fn default_socket(bondd: &Bondd) -> PathBuf {
    let log = bondd.log();
    let line = log
        .lines()
        .find(|l| l.contains("control socket listening"))
        .unwrap_or_else(|| panic!("no control socket line in the log:\n{log}"));
    let path = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("socket="))
        .unwrap_or_else(|| panic!("no socket= in {line:?}"));
    assert!(
        path.starts_with("/run/bondd/bondd-"),
        "not the default path: {path}"
    );
    PathBuf::from(path)
}

/// Test 8: The control socket is root's alone: mode 0600, owner root; a non-root
/// client gets EACCES, and even with the file mode opened up the daemon
/// refuses it by its peer credentials.
#[test]
fn control_socket_is_root_only() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let cfg = BondConfig::active_backup(&t);
    let mut bondd = start(&t, &cfg.to_yaml());
    let sock = default_socket(&bondd);
    let md = fs::metadata(&sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    println!(
        "{}: mode {:o} uid {} gid {}",
        sock.display(),
        md.mode() & 0o7777,
        md.uid(),
        md.gid()
    );
    assert!(
        std::os::unix::fs::FileTypeExt::is_socket(&md.file_type()),
        "not a socket"
    );
    assert_eq!(md.mode() & 0o7777, 0o600, "socket mode");
    assert_eq!(md.uid(), 0, "socket owner");
    // Root gets an answer.
    let s = sock.to_str().expect("utf-8");
    let text = cli_ok(&t.b, &["status", "--socket", s]);
    assert!(text.contains("Bonding Mode"), "{text}");

    // A copy of bondd that user nobody can execute (the build tree may not be).
    let dir = TempDir::new();
    let bin = dir.path().join("bondd");
    fs::copy(bondd_bin(), &bin).expect("copy bondd");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let setpriv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let as_nobody = |args: &[&str]| {
        let mut all: Vec<&str> = setpriv.to_vec();
        all.push(bin.to_str().expect("utf-8"));
        all.extend_from_slice(args);
        let out = t.b.exec_timeout(&all, Duration::from_secs(20));
        println!(
            "as nobody: bondd {args:?}: exit {:?} stdout {:?} stderr {:?}",
            out.status.and_then(|s| s.code()),
            out.stdout.trim(),
            out.stderr.trim()
        );
        out
    };
    let id = t.b.exec_ok(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "id",
        "-u",
    ]);
    assert_eq!(id.trim(), "65534", "setpriv did not drop to uid 65534");

    for args in [
        vec!["status", "--socket", s],
        vec!["set-active", "bond0", &t.n.s1, "--socket", s],
        vec!["reload", "--socket", s],
    ] {
        let out = as_nobody(&args);
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("Permission denied") || out.stderr.contains("permission denied"),
            "{out:?}"
        );
        assert!(out.stdout.trim().is_empty(), "non-root got output: {out:?}");
    }
    // The same from a client thread of this process running as nobody:
    // connect(2) itself is refused by the file mode.
    let r = as_nobody_thread(|| std::os::unix::net::UnixStream::connect(&sock).map(|_| ()));
    println!("raw connect as nobody: {r:?}");
    assert_eq!(
        r.as_ref().map_err(|e| e.kind()),
        Err(std::io::ErrorKind::PermissionDenied),
        "{r:?}"
    );

    // Open the file mode up: the daemon itself must refuse (peer uid check).
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).expect("chmod socket");
    let outs: Vec<TimedOutput> = [
        vec!["status", "--socket", s],
        vec!["set-active", "bond0", &t.n.s1, "--socket", s],
    ]
    .iter()
    .map(|a| as_nobody(a))
    .collect();
    // A client that only listens: the daemon's answer, deterministically.
    let answer = as_nobody_thread(|| {
        let mut c = std::os::unix::net::UnixStream::connect(&sock)?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut line = String::new();
        c.read_to_string(&mut line)?;
        Ok::<_, std::io::Error>(line)
    });
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o600)).expect("chmod socket back");
    println!("daemon's answer to uid 65534: {answer:?}");
    let answer = answer.expect("read the daemon's answer");
    let j = Json::parse(answer.trim()).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    assert_eq!(j.get("ok").bool(), Some(false), "{answer}");
    assert_eq!(
        j.get("error").str(),
        Some("permission denied: the control socket is root only"),
        "{answer}"
    );
    assert_eq!(j.get("bonds").arr().len(), 0, "{answer}");
    let mut epipe = 0;
    for out in &outs {
        assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
        assert!(out.stdout.trim().is_empty(), "non-root got output: {out:?}");
        if out.stderr.contains("Broken pipe") {
            // The daemon answers and closes without reading the request;
            // a client still writing it then gets EPIPE instead of the
            // answer. Still refused; reported as a daemon bug.
            epipe += 1;
        } else {
            assert!(
                out.stderr
                    .contains("permission denied: the control socket is root only"),
                "{out:?}"
            );
        }
    }
    if epipe > 0 {
        println!(
            "NOTE: {epipe} of {} refused CLI calls printed \"Broken pipe\" instead of the daemon's \
             answer (the daemon closes without reading the request)",
            outs.len()
        );
    }
    // Every refusal (2 CLI calls, 1 listening client) is in the log.
    bondd.wait_log_lines(&["refused a non-root client"], 3, Duration::from_secs(2));
    // Nothing changed: s0 still active.
    let text = status_text(&t.b);
    assert_eq!(
        field(&text, None, "Currently Active Slave"),
        Some(t.n.s0.as_str())
    );
}

/// Test 9: `control: socket:` moves the control socket (the CLI finds it
/// through `--config` or `--socket`; nothing at the default path) and
/// `metrics: listen: off` serves no metrics.
#[test]
fn control_socket_from_config_and_metrics_off() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    // Declared before bondd: removed after it stopped.
    let sockdir = TempDir::new();
    let sock = sockdir.path().join("run").join("ctl.sock");
    let s = sock.to_str().expect("utf-8").to_owned();
    let cfg = BondConfig::active_backup(&t);
    let yaml = yaml_with(
        &format!("metrics:\n  listen: off\ncontrol:\n  socket: \"{s}\"\n"),
        &cfg,
    );
    let mut bondd = start(&t, &yaml);
    let md = fs::metadata(&sock).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(md.mode() & 0o7777, 0o600, "socket mode");
    let c = bondd.config_path().to_str().expect("utf-8").to_owned();
    let by_cfg = cli_ok(&t.b, &["status", "--config", &c]);
    let by_sock = cli_ok(&t.b, &["status", "--socket", &s]);
    assert_eq!(by_cfg, by_sock);
    assert!(by_cfg.contains("Currently Active Slave: "), "{by_cfg}");
    let out = cli(&t.b, &["status"]);
    println!(
        "status at the default socket: exit {:?} {}",
        out.status.and_then(|s| s.code()),
        out.stderr.trim()
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
    let msg = cli_ok(&t.b, &["reload", "--config", &c]);
    assert!(msg.contains("unchanged"), "{msg}");
    let m = http_get(&t.b, METRICS_ADDR, "/metrics");
    println!("GET /metrics with metrics off: {m:?}");
    assert!(m.is_err(), "metrics served although off: {m:?}");
    bondd.sigterm_and_wait();
    assert!(!sock.exists(), "control socket left behind at exit");
}
