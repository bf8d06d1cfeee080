//! Harness for bondd's namespace integration tests.
//!
//! Everything here works only inside network namespaces this process creates
//! itself. Names: every namespace and every link is `bdt<pid>-<counter><role>` (base 36)
//! (at most 15 characters), so nothing can collide with the host or with a
//! concurrent test run, and a stale namespace can be traced back to its (dead)
//! process. Links are always created directly inside a namespace (`ip -n NS link
//! add A type veth peer name B netns OTHER`), never in the root namespace.
//! Every namespace is deleted by [`Netns`]'s `Drop` (also when a test panics),
//! which removes its links too. Every process a test starts is held by a guard
//! that kills it (by PID) on drop.
//!
//! Addresses: 198.18.0.0/15 and 2001:2::/48 only.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Address of bond0 in the standard topology.
pub const BOND_V4: &str = "198.18.0.1";
/// Address of host H in the standard topology.
pub const HOST_V4: &str = "198.18.0.2";
/// IPv6 address of bond0 in the standard topology.
pub const BOND_V6: &str = "2001:2::1";
/// IPv6 address of host H in the standard topology.
pub const HOST_V6: &str = "2001:2::2";

// ---------------------------------------------------------------------------
// basics

/// True when running as root. Tests call it first:
/// `if !require_root() { return; }` — it prints the reason for skipping.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("skipping: needs root");
        return false;
    }
    true
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the namespace tests of one test binary: they share two CPU cores
/// and measure timing. A panicking test poisons the mutex; later tests still run.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// In an integration test: registers `env!("CARGO_BIN_EXE_bdt-udp")` with the
/// harness and takes the [`serial`] lock. `let _serial = bondd_tests::setup!();`
#[macro_export]
macro_rules! setup {
    () => {{
        $crate::set_udp_tool(env!("CARGO_BIN_EXE_bdt-udp"));
        $crate::serial()
    }};
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Lower-case base 36 (pid 4194304 = "2ivo0": 5 characters).
pub fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// The prefix of every name this process creates: `bdt<pid base36>-`.
pub fn name_prefix() -> String {
    format!("bdt{}-", base36(u64::from(std::process::id())))
}

/// A new name `bdt<pid base36>-<counter base36><role>`, unique on this machine
/// while this process lives. Panics if it would exceed 15 characters (IFNAMSIZ - 1).
pub fn unique_name(role: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{}{}{}", name_prefix(), base36(u64::from(n)), role);
    assert!(
        name.len() <= 15,
        "name {name:?} longer than 15 characters; use a shorter role than {role:?}"
    );
    name
}

/// Runs a command, returning its output. Panics only if it cannot be started.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    assert!(!args.is_empty());
    Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", args[0].as_ref()))
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = run(args);
    check_output(args, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_output<S: AsRef<OsStr>>(args: &[S], out: &Output) {
    if !out.status.success() {
        let cmd: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        panic!(
            "command failed ({}): {}\nstdout: {}\nstderr: {}",
            out.status,
            cmd.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Deletes namespaces left behind by earlier runs of this harness whose process
/// is gone (e.g. the test binary was SIGKILLed). Only names of our exact format
/// `bdt<base36 pid>-...` with a dead pid are touched.
pub fn sweep_stale_namespaces() {
    for ns in list_netns() {
        let Some(rest) = ns.strip_prefix("bdt") else {
            continue;
        };
        let Some((pid36, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = u32::from_str_radix(pid36, 36) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("harness: deleting stale namespace {ns} of dead process {pid}");
        let _ = run(&["ip", "netns", "del", &ns]);
    }
}

/// Names of all named network namespaces (`ip netns list`).
pub fn list_netns() -> Vec<String> {
    let out = run(&["ip", "netns", "list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------
// namespaces

/// A network namespace owned by the test; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `bdt<pid>-<n><role>` with `lo` up.
    pub fn new(role: &str) -> Netns {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale_namespaces);
        let name = unique_name(role);
        run_ok(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip netns exec NS args...`.
    pub fn exec<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]);
        cmd.args(args).stdin(Stdio::null());
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run ip netns exec {}: {e}", self.name))
    }

    /// Like [`Netns::exec`] but panics on failure; returns stdout.
    pub fn exec_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.exec(args);
        if !out.status.success() {
            let cmd: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
            panic!(
                "in netns {}: command failed ({}): {}\nstdout: {}\nstderr: {}",
                self.name,
                out.status,
                cmd.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `ip netns exec NS args...` (ip execs the program, so the child's
    /// pid is the program's). stdin is null; stdout/stderr as given.
    pub fn spawn<S: AsRef<OsStr>>(&self, args: &[S], stdout: Stdio, stderr: Stdio) -> Child {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot spawn in netns {}: {e}", self.name))
    }

    /// `ip -n NS args...`, must succeed; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        run_ok(&all)
    }

    /// `ip -n NS args...`, may fail.
    pub fn ip_try(&self, args: &[&str]) -> Output {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Sets a sysctl inside the namespace (`sysctl -w key=value`).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec_ok(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }

    pub fn link_exists(&self, ifname: &str) -> bool {
        self.ip_try(&["link", "show", "dev", ifname])
            .status
            .success()
    }

    pub fn link_up(&self, ifname: &str) {
        self.ip(&["link", "set", "dev", ifname, "up"]);
    }

    /// Sets a link administratively down. On a bridge port this also flushes
    /// the FDB entries learned on it.
    pub fn link_down(&self, ifname: &str) {
        self.ip(&["link", "set", "dev", ifname, "down"]);
    }

    pub fn add_addr(&self, ifname: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(&["addr", "add", cidr, "dev", ifname, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", ifname]);
        }
    }

    /// Reads `/sys/class/net/IF/statistics/NAME` inside the namespace.
    pub fn stat(&self, ifname: &str, name: &str) -> u64 {
        let out = self.exec_ok(&["cat", &format!("/sys/class/net/{ifname}/statistics/{name}")]);
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("bad counter {name} of {ifname}: {out:?}: {e}"))
    }

    /// `rx_packets` and `tx_packets` of a link.
    pub fn packets(&self, ifname: &str) -> Counters {
        let out = self.exec_ok(&[
            "cat",
            &format!("/sys/class/net/{ifname}/statistics/rx_packets"),
            &format!("/sys/class/net/{ifname}/statistics/tx_packets"),
        ]);
        let v: Vec<u64> = out
            .split_whitespace()
            .map(|s| s.parse().expect("counter"))
            .collect();
        assert_eq!(v.len(), 2, "counters of {ifname}: {out:?}");
        Counters { rx: v[0], tx: v[1] }
    }

    /// Turns TX checksum offload off (`ethtool -K IF tx off`). Needed on every
    /// test interface that sends UDP/TCP towards a slave: AF_XDP forwards the
    /// partial checksum of a veth frame verbatim and the receiver drops it.
    pub fn tx_csum_off(&self, ifname: &str) {
        self.exec_ok(&["ethtool", "-K", ifname, "tx", "off"]);
    }

    /// The state of a link that bondd must restore on exit.
    pub fn link_state(&self, ifname: &str) -> LinkState {
        let out = self.ip(&["-d", "-o", "link", "show", "dev", ifname]);
        LinkState::parse(&out)
            .unwrap_or_else(|| panic!("cannot parse `ip -d link show {ifname}`: {out}"))
    }

    /// The detailed link description (`ip -d link show dev IF`).
    pub fn link_details(&self, ifname: &str) -> String {
        self.ip(&["-d", "link", "show", "dev", ifname])
    }

    /// Whether an XDP program is attached to the link (any mode).
    pub fn has_xdp(&self, ifname: &str) -> bool {
        let d = self.link_details(ifname);
        // iproute2 prints "xdp", "xdpgeneric", "xdpdrv", "xdpoffload" or
        // "xdpmulti" and "prog/xdp id N" when a program is attached.
        d.split_whitespace()
            .any(|w| w.starts_with("xdp") || w.starts_with("prog/xdp"))
    }

    /// Addresses (CIDR) configured on a link.
    pub fn addrs(&self, ifname: &str) -> Vec<String> {
        let out = self.ip(&["-o", "addr", "show", "dev", ifname]);
        out.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.find(|x| *x == "inet" || *x == "inet6")?;
                w.next().map(str::to_owned)
            })
            .collect()
    }

    /// The bridge port on which `mac` is currently learned, if any.
    pub fn fdb_port_of(&self, bridge: &str, mac: &str) -> Option<String> {
        let out = run_ok(&["bridge", "-n", &self.name, "fdb", "show", "br", bridge]);
        let mac = mac.to_ascii_lowercase();
        out.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            if w.next()? != mac {
                return None;
            }
            if w.next()? != "dev" {
                return None;
            }
            w.next().map(str::to_owned)
        })
    }

    /// Pings `dst` (v4 or v6) with `bdt-udp ping` until one reply arrives or
    /// `timeout` passes (warms ARP/ND and waits out IPv6 DAD), then sends
    /// `count` echo requests 0.2 s apart and returns how many were answered
    /// within 1 s each.
    pub fn ping(&self, dst: &str, count: u32, timeout: Duration) -> u32 {
        let tool = udp_tool();
        let tool = tool.to_str().expect("utf-8 path");
        let start = Instant::now();
        loop {
            let out = self.exec(&[
                tool,
                "ping",
                "--dst",
                dst,
                "--count",
                "1",
                "--timeout-ms",
                "500",
            ]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "bdt-udp ping failed: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if parse_ping_received(&text) == Some(1) {
                break;
            }
            if start.elapsed() > timeout {
                return 0;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let out = self.exec(&[
            tool,
            "ping",
            "--dst",
            dst,
            "--count",
            &count.to_string(),
            "--interval-ms",
            "200",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        parse_ping_received(&text).unwrap_or(0)
    }

    /// Runs `ip netns exec NS args...` with a time limit; a process still
    /// running at the limit is killed and `status` is None.
    pub fn exec_timeout<S: AsRef<OsStr>>(&self, args: &[S], timeout: Duration) -> TimedOutput {
        let dir = TempDir::new();
        let out_path = dir.path().join("stdout");
        let err_path = dir.path().join("stderr");
        let out = File::create(&out_path).expect("create stdout file");
        let err = File::create(&err_path).expect("create stderr file");
        let mut child = ChildGuard::new(self.spawn(args, Stdio::from(out), Stdio::from(err)));
        let status = child.wait_timeout(timeout);
        TimedOutput {
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// Kills processes still inside the namespace (all of them were started
    /// by this test, since the namespace is ours). Returns their pids.
    fn kill_leftovers(&self) -> Vec<i32> {
        let out = run(&["ip", "netns", "pids", &self.name]);
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        for &pid in &pids {
            // SAFETY: plain kill(2) of a pid inside our own namespace.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        pids
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let pids = self.kill_leftovers();
        if !pids.is_empty() {
            eprintln!(
                "harness: killed leftover processes {pids:?} in {}",
                self.name
            );
        }
        let out = run(&["ip", "netns", "del", &self.name]);
        if !out.status.success() {
            eprintln!(
                "harness: ip netns del {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Result of [`Netns::exec_timeout`].
#[derive(Debug)]
pub struct TimedOutput {
    /// None: it was still running at the time limit and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Parses `received=N` out of `bdt-udp ping`'s summary.
pub fn parse_ping_received(text: &str) -> Option<u32> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("received="))?
        .parse()
        .ok()
}

/// Creates a veth pair `a_name` in `a` and `b_name` in `b`, both up. The
/// pair is created inside `a` with its peer placed directly in `b`.
pub fn veth(a: &Netns, a_name: &str, b: &Netns, b_name: &str) {
    a.ip(&[
        "link",
        "add",
        a_name,
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "netns",
        b.name(),
    ]);
    a.link_up(a_name);
    b.link_up(b_name);
}

/// Creates a Linux bridge in `ns` (STP off, forward delay 0, multicast
/// snooping off so multicast is simply flooded) and brings it up.
pub fn bridge(ns: &Netns, name: &str) {
    ns.ip(&[
        "link",
        "add",
        name,
        "type",
        "bridge",
        "stp_state",
        "0",
        "forward_delay",
        "0",
        "mcast_snooping",
        "0",
    ]);
    ns.link_up(name);
}

/// Makes `port` a port of `bridge`. With `flood == false` the bridge does not
/// flood unknown unicast to this port: a station behind it receives unicast
/// only once the bridge has learned its MAC there. This keeps a stale or
/// flushed FDB from hiding a missing gratuitous ARP after failover.
pub fn bridge_port(ns: &Netns, bridge: &str, port: &str, flood: bool) {
    ns.ip(&["link", "set", "dev", port, "master", bridge]);
    if !flood {
        ns.ip(&[
            "link",
            "set",
            "dev",
            port,
            "type",
            "bridge_slave",
            "flood",
            "off",
        ]);
    }
    ns.link_up(port);
}

// ---------------------------------------------------------------------------
// link state

/// `rx_packets`/`tx_packets` of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub rx: u64,
    pub tx: u64,
}

impl Counters {
    /// Growth since `earlier`.
    pub fn since(self, earlier: Counters) -> Counters {
        Counters {
            rx: self.rx.saturating_sub(earlier.rx),
            tx: self.tx.saturating_sub(earlier.tx),
        }
    }
}

/// What bondd changes on a slave and must restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub mac: String,
    pub mtu: u32,
    /// The IFF_ALLMULTI flag as set by users.
    pub allmulti_flag: bool,
    /// The IFF_PROMISC flag as set by users.
    pub promisc_flag: bool,
    /// Reference counts (`promiscuity N allmulti N` of `ip -d`).
    pub promiscuity: u32,
    pub allmulti: u32,
}

impl LinkState {
    /// Parses one line of `ip -d -o link show`.
    pub fn parse(line: &str) -> Option<LinkState> {
        let flags_start = line.find('<')?;
        let flags_end = line[flags_start..].find('>')? + flags_start;
        let flags: Vec<&str> = line[flags_start + 1..flags_end].split(',').collect();
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| -> Option<&str> {
            let i = words.iter().position(|w| *w == key)?;
            words.get(i + 1).copied()
        };
        Some(LinkState {
            mac: after("link/ether")?.to_owned(),
            mtu: after("mtu")?.parse().ok()?,
            allmulti_flag: flags.contains(&"ALLMULTI"),
            promisc_flag: flags.contains(&"PROMISC"),
            promiscuity: after("promiscuity")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            allmulti: after("allmulti").and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }
}

// ---------------------------------------------------------------------------
// processes

/// A child process killed (SIGKILL, by pid) and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already taken")
    }

    /// Waits up to `timeout` for exit; kills it if it is still running then
    /// and returns None.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// Takes the child out; the caller is now responsible for it.
    pub fn take(mut self) -> Child {
        self.child.take().expect("child already taken")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take()
            && let Ok(None) = c.try_wait()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A private temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(unique_name("tmp"));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` into file `name` of this directory.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::write(&p, contents).expect("write temp file");
        p
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The bondd binary: `$BONDD_BIN`, else `target/debug/bondd`, else
/// `target/release/bondd` of this workspace. Panics if none exists.
pub fn bondd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BONDD_BIN") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "BONDD_BIN={} does not exist", p.display());
        return p;
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("bondd");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "bondd binary not found (BONDD_BIN unset, no {0}/debug/bondd or {0}/release/bondd): \
         build it first: cargo build --workspace --bins",
        target.display()
    );
}

static UDP_TOOL: OnceLock<PathBuf> = OnceLock::new();

/// Tells the harness where bdt-udp is; integration tests call it with
/// `env!("CARGO_BIN_EXE_bdt-udp")` (only they get that variable).
pub fn set_udp_tool(path: &str) {
    let _ = UDP_TOOL.set(PathBuf::from(path));
}

/// The path of the bdt-udp tool: as set by [`set_udp_tool`], else
/// `$CARGO_BIN_EXE_bdt-udp` at run time, else next to the test binary's
/// `deps/` directory.
pub fn udp_tool() -> PathBuf {
    if let Some(p) = UDP_TOOL.get() {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_bdt-udp") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("profile dir")
    } else {
        dir
    };
    let p = dir.join("bdt-udp");
    assert!(p.exists(), "bdt-udp not found at {}", p.display());
    p
}

/// A running bondd. Killed (SIGKILL) on drop if still running; its log is
/// printed when the test is panicking.
#[derive(Debug)]
pub struct Bondd {
    child: ChildGuard,
    dir: TempDir,
    config_path: PathBuf,
    log_path: PathBuf,
    ns: String,
    exit: Option<ExitStatus>,
}

impl Bondd {
    /// Writes `config` to a temporary file and starts
    /// `ip netns exec NS bondd --config FILE`, stdout and stderr into a log file.
    pub fn start(ns: &Netns, config: &str) -> Bondd {
        let dir = TempDir::new();
        let config_path = dir.write("bondd.yaml", config);
        Bondd::start_file(ns, dir, config_path)
    }

    /// Starts bondd with an existing config file inside `dir` (kept alive by
    /// the guard).
    pub fn start_file(ns: &Netns, dir: TempDir, config_path: PathBuf) -> Bondd {
        let log_path = Bondd::new_log_path(dir.path());
        let child = Bondd::spawn(ns, &config_path, &log_path);
        Bondd {
            child: ChildGuard::new(child),
            dir,
            config_path,
            log_path,
            ns: ns.name().to_owned(),
            exit: None,
        }
    }

    /// Starts bondd again with the same config file (for the
    /// restart-after-kill test); the old process must have exited. The log
    /// of the new process goes to a new file.
    pub fn restart(&mut self, ns: &Netns) {
        assert!(
            self.exit.is_some() || self.child.child_mut().try_wait().ok().flatten().is_some(),
            "restart() of a bondd that is still running"
        );
        let log_path = Bondd::new_log_path(self.dir.path());
        self.child = ChildGuard::new(Bondd::spawn(ns, &self.config_path, &log_path));
        self.log_path = log_path;
        self.ns = ns.name().to_owned();
        self.exit = None;
    }

    fn new_log_path(dir: &Path) -> PathBuf {
        static STARTS: AtomicU32 = AtomicU32::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        dir.join(format!("bondd-{n}.log"))
    }

    fn spawn(ns: &Netns, config_path: &Path, log_path: &Path) -> Child {
        let log = File::create(log_path).expect("create log");
        let log2 = log.try_clone().expect("clone log fd");
        let bin = bondd_bin();
        ns.spawn(
            &[
                bin.as_os_str(),
                OsStr::new("--config"),
                config_path.as_os_str(),
            ],
            Stdio::from(log2),
            Stdio::from(log),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything bondd logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Lines of the log that contain all `needles`.
    pub fn log_lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned)
            .collect()
    }

    fn check_alive(&mut self, what: &str) {
        if let Ok(Some(st)) = self.child.child_mut().try_wait() {
            self.exit = Some(st);
            panic!(
                "bondd (in {}) exited with {st} while {what}; log:\n{}",
                self.ns,
                self.log()
            );
        }
    }

    /// Waits until the log contains `bondd ready`. Panics with the log on
    /// timeout or if bondd exits first.
    pub fn wait_ready(&mut self, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.log().contains("bondd ready") {
                return start.elapsed();
            }
            self.check_alive("waiting for `bondd ready`");
            if start.elapsed() > timeout {
                panic!(
                    "bondd (in {}) not ready after {timeout:?}; log:\n{}",
                    self.ns,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until at least `count` log lines contain all `needles`; returns
    /// the last such line. Panics (with the log) on timeout or exit.
    pub fn wait_log_lines(&mut self, needles: &[&str], count: usize, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let lines = self.log_lines_with(needles);
            if lines.len() >= count {
                return lines[count - 1].clone();
            }
            self.check_alive("waiting for a log line");
            if start.elapsed() > timeout {
                panic!(
                    "bondd (in {}): no {count}th log line containing {needles:?} after {timeout:?}; log:\n{}",
                    self.ns,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits (up to 10 s) for bondd to exit; panics with
    /// the log if it does not.
    pub fn sigterm_and_wait(&mut self) -> ExitStatus {
        self.signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
    }

    /// SIGKILLs bondd (no cleanup) and waits for it.
    pub fn kill9(&mut self) -> ExitStatus {
        self.signal_and_wait(libc::SIGKILL, Duration::from_secs(5))
    }

    /// Sends `sig` and waits up to `timeout` for bondd to exit; panics with
    /// the log if it does not (it is SIGKILLed then).
    pub fn signal_and_wait(&mut self, sig: i32, timeout: Duration) -> ExitStatus {
        if let Some(st) = self.exit {
            return st;
        }
        let pid = self.pid() as libc::pid_t;
        if let Ok(None) = self.child.child_mut().try_wait() {
            // SAFETY: kill(2) of our own child, which is not reaped yet.
            unsafe {
                libc::kill(pid, sig);
            }
        }
        match self.child.wait_timeout(timeout) {
            Some(st) => {
                self.exit = Some(st);
                st
            }
            None => panic!(
                "bondd (pid {pid}) did not exit within {timeout:?} after signal {sig} (killed now); log:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Bondd {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- bondd log ({}) ----\n{}\n---- end of bondd log ----",
                self.log_path.display(),
                self.log()
            );
        }
        // Stop it (if a test left it running) and remove what a killed bondd
        // leaves behind in its state directory: its restore state and its
        // control socket, named after its namespace's cookie, which its log
        // gives. A cleanly stopped bondd removed them itself.
        let c = self.child.child_mut();
        if let Ok(None) = c.try_wait() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let log = self.log();
        let sock = log
            .lines()
            .find(|l| l.contains("control socket listening"))
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("socket=")))
            .map(PathBuf::from);
        if let Some(sock) = sock
            && let (Some(dir), Some(name)) = (sock.parent(), sock.file_name())
            && let Some(cookie) = name
                .to_str()
                .and_then(|n| n.strip_prefix("bondd-"))
                .and_then(|n| n.strip_suffix(".sock"))
        {
            let _ = fs::remove_file(&sock);
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    if n.starts_with(&format!("{cookie}-")) && n.ends_with(".state") {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// topology

/// Unique link names of the standard topology.
#[derive(Debug, Clone)]
pub struct Names {
    /// Slaves, in ns B.
    pub s0: String,
    pub s1: String,
    /// Far ends of the slaves: ports of the bridge, in ns SW.
    pub p0: String,
    pub p1: String,
    /// Host interface in ns H.
    pub h0: String,
    /// Its far end: bridge port in ns SW.
    pub hp0: String,
    /// The bridge, in ns SW.
    pub br0: String,
    /// Further slaves s2, s3, ... and their bridge ports p2, p3, ...
    /// (`TopologyOpts::extra_slaves`): `(slave, port)`.
    pub extra: Vec<(String, String)>,
}

/// The standard topology:
///
/// ```text
///  ns B (bondd)            ns SW (switch)                ns H (host)
///   s0 ───────────── p0 ─┐
///                         br0 ─ hp0 ───────────── h0 198.18.0.2/24, 2001:2::2/64
///   s1 ───────────── p1 ─┘
/// ```
///
/// IPv6 is off on the slaves (the kernel does not run addrconf on bonding
/// slaves either; it would add the slaves' own ND/MLD frames to the counters)
/// and in SW. The bridge does not flood unknown unicast to p0/p1 (see
/// [`bridge_port`]), so bondd must announce its MAC on the new active slave
/// (gratuitous ARP, or any frame) before it can receive unicast there. TX
/// checksum offload is off on h0.
///
/// Fields drop in order: all namespaces (and so all links) are deleted.
#[derive(Debug)]
pub struct Topology {
    pub b: Netns,
    pub sw: Netns,
    pub h: Netns,
    pub n: Names,
}

/// Options of [`Topology::build`].
#[derive(Debug, Clone, Default)]
pub struct TopologyOpts {
    /// Flood unknown unicast to the bond's bridge ports (a lenient switch).
    pub flood_to_bond_ports: bool,
    /// Slaves beyond s0 and s1 (s2, s3, ...), wired like them.
    pub extra_slaves: usize,
    /// RX and TX queues of each slave veth and its peer (0 = the default, 1).
    pub queues: u32,
}

impl Topology {
    pub fn new() -> Topology {
        Topology::build(TopologyOpts::default())
    }

    pub fn build(opts: TopologyOpts) -> Topology {
        let b = Netns::new("B");
        let sw = Netns::new("SW");
        let h = Netns::new("H");
        let n = Names {
            s0: unique_name("s0"),
            s1: unique_name("s1"),
            p0: unique_name("p0"),
            p1: unique_name("p1"),
            h0: unique_name("h0"),
            hp0: unique_name("hp0"),
            br0: unique_name("br0"),
            extra: (2..2 + opts.extra_slaves)
                .map(|i| (unique_name(&format!("s{i}")), unique_name(&format!("p{i}"))))
                .collect(),
        };
        sw.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
        sw.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        bridge(&sw, &n.br0);
        let pairs = [(&n.s0, &n.p0), (&n.s1, &n.p1)]
            .into_iter()
            .chain(n.extra.iter().map(|(s, p)| (s, p)));
        let q = opts.queues.max(1).to_string();
        for (s, p) in pairs {
            b.ip(&[
                "link",
                "add",
                s,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                p,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "netns",
                sw.name(),
            ]);
            b.sysctl(&format!("net.ipv6.conf.{s}.disable_ipv6"), "1");
            bridge_port(&sw, &n.br0, p, opts.flood_to_bond_ports);
            b.link_up(s);
        }
        h.ip(&[
            "link",
            "add",
            &n.h0,
            "type",
            "veth",
            "peer",
            "name",
            &n.hp0,
            "netns",
            sw.name(),
        ]);
        bridge_port(&sw, &n.br0, &n.hp0, true);
        h.tx_csum_off(&n.h0);
        h.add_addr(&n.h0, &format!("{HOST_V4}/24"));
        h.add_addr(&n.h0, &format!("{HOST_V6}/64"));
        h.link_up(&n.h0);
        Topology { b, sw, h, n }
    }

    /// Slave names.
    pub fn slaves(&self) -> [&str; 2] {
        [&self.n.s0, &self.n.s1]
    }

    /// rx/tx counters of the far ends p0 and p1 (p's rx = what the slave sent).
    pub fn port_counters(&self) -> [Counters; 2] {
        [self.sw.packets(&self.n.p0), self.sw.packets(&self.n.p1)]
    }

    /// State of s0 and s1.
    pub fn slave_states(&self) -> [LinkState; 2] {
        [self.b.link_state(&self.n.s0), self.b.link_state(&self.n.s1)]
    }

    /// All slaves: s0, s1, then the extra ones.
    pub fn all_slaves(&self) -> Vec<&str> {
        let mut v = vec![self.n.s0.as_str(), self.n.s1.as_str()];
        v.extend(self.n.extra.iter().map(|(s, _)| s.as_str()));
        v
    }

    /// All bond ports of the bridge: p0, p1, then the extra ones.
    pub fn all_ports(&self) -> Vec<&str> {
        let mut v = vec![self.n.p0.as_str(), self.n.p1.as_str()];
        v.extend(self.n.extra.iter().map(|(_, p)| p.as_str()));
        v
    }

    /// rx/tx counters of all bond ports ([`Topology::all_ports`] order).
    pub fn all_port_counters(&self) -> Vec<Counters> {
        self.all_ports()
            .into_iter()
            .map(|p| self.sw.packets(p))
            .collect()
    }
}

impl Default for Topology {
    fn default() -> Self {
        Self::new()
    }
}

/// One bond of a bondd config.
#[derive(Debug, Clone)]
pub struct BondConfig {
    pub name: String,
    pub mode: String,
    pub slaves: Vec<String>,
    pub interface: String,
    pub miimon: u32,
    pub primary: Option<String>,
    pub primary_reselect: Option<String>,
    pub updelay: u32,
    pub downdelay: u32,
    /// `None`: not written (the option is refused outside active-backup).
    pub num_grat_arp: Option<u32>,
    pub addresses: Vec<String>,
    /// Extra `key: value` lines, written verbatim.
    pub extra: Vec<String>,
}

impl BondConfig {
    /// active-backup bond0 over the topology's s0,s1 with primary s0, the
    /// standard addresses and `interface: veth`.
    pub fn active_backup(t: &Topology) -> BondConfig {
        BondConfig {
            name: "bond0".into(),
            mode: "active-backup".into(),
            slaves: vec![t.n.s0.clone(), t.n.s1.clone()],
            interface: "veth".into(),
            miimon: 100,
            primary: Some(t.n.s0.clone()),
            primary_reselect: Some("always".into()),
            updelay: 0,
            downdelay: 0,
            num_grat_arp: Some(1),
            addresses: vec![format!("{BOND_V4}/24"), format!("{BOND_V6}/64")],
            extra: Vec::new(),
        }
    }

    /// A load-balancing bond0 (`mode` e.g. balance-rr, balance-xor,
    /// broadcast) over all of the topology's slaves: miimon 100, no
    /// primary, no peer notification options, the standard addresses and
    /// `interface: veth`. Mode options go into `extra`.
    pub fn balancing(t: &Topology, mode: &str) -> BondConfig {
        BondConfig {
            name: "bond0".into(),
            mode: mode.into(),
            slaves: t.all_slaves().into_iter().map(str::to_owned).collect(),
            interface: "veth".into(),
            miimon: 100,
            primary: None,
            primary_reselect: None,
            updelay: 0,
            downdelay: 0,
            num_grat_arp: None,
            addresses: vec![format!("{BOND_V4}/24"), format!("{BOND_V6}/64")],
            extra: Vec::new(),
        }
    }

    /// This bond as one item of the `bonds:` list.
    pub fn to_yaml_item(&self) -> String {
        let mut s = String::new();
        let q = |v: &str| format!("\"{v}\"");
        let _ = writeln!(s, "  - name: {}", self.name);
        let _ = writeln!(s, "    mode: {}", self.mode);
        let slaves: Vec<String> = self.slaves.iter().map(|x| q(x)).collect();
        let _ = writeln!(s, "    slaves: [{}]", slaves.join(", "));
        let _ = writeln!(s, "    interface: {}", self.interface);
        let _ = writeln!(s, "    miimon: {}", self.miimon);
        if let Some(p) = &self.primary {
            let _ = writeln!(s, "    primary: {}", q(p));
        }
        if let Some(p) = &self.primary_reselect {
            let _ = writeln!(s, "    primary_reselect: {p}");
        }
        let _ = writeln!(s, "    updelay: {}", self.updelay);
        let _ = writeln!(s, "    downdelay: {}", self.downdelay);
        if let Some(n) = self.num_grat_arp {
            let _ = writeln!(s, "    num_grat_arp: {n}");
        }
        let addrs: Vec<String> = self.addresses.iter().map(|x| q(x)).collect();
        let _ = writeln!(s, "    addresses: [{}]", addrs.join(", "));
        for e in &self.extra {
            let _ = writeln!(s, "    {e}");
        }
        s
    }

    /// A whole config file with just this bond.
    pub fn to_yaml(&self) -> String {
        config_yaml(std::slice::from_ref(self))
    }
}

/// A whole config file with these bonds.
pub fn config_yaml(bonds: &[BondConfig]) -> String {
    let mut s = String::from("bonds:\n");
    for b in bonds {
        s.push_str(&b.to_yaml_item());
    }
    s
}

// ---------------------------------------------------------------------------
// UDP streams (bdt-udp)

/// The report line of `bdt-udp recv`, parsed.
#[derive(Debug, Clone, Default)]
pub struct UdpReport {
    pub fields: BTreeMap<String, f64>,
    pub line: String,
}

impl UdpReport {
    pub fn parse(text: &str) -> Option<UdpReport> {
        let line = text.lines().rev().find(|l| l.contains("received="))?;
        let mut fields = BTreeMap::new();
        for kv in line.split_whitespace() {
            if let Some((k, v)) = kv.split_once('=')
                && let Ok(v) = v.parse::<f64>()
            {
                fields.insert(k.to_owned(), v);
            }
        }
        Some(UdpReport {
            fields,
            line: line.to_owned(),
        })
    }

    pub fn get(&self, key: &str) -> f64 {
        *self
            .fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in report {:?}", self.line))
    }

    pub fn received(&self) -> u64 {
        self.get("received") as u64
    }
    pub fn lost(&self) -> u64 {
        self.get("lost") as u64
    }
    pub fn duplicates(&self) -> u64 {
        self.fields.get("duplicates").copied().unwrap_or(0.0) as u64
    }
    pub fn reordered(&self) -> u64 {
        self.get("reordered") as u64
    }
    /// Longest interval between consecutive arrivals.
    pub fn max_gap_ms(&self) -> f64 {
        self.get("max_gap_ms")
    }
    /// Largest run of missing sequence numbers, in ms of the send rate.
    pub fn loss_window_ms(&self) -> f64 {
        self.get("loss_window_ms")
    }
    /// From the first to the last missing sequence number, in ms of the send
    /// rate (the outage when several paths interleave; see bdt-udp).
    pub fn loss_span_ms(&self) -> f64 {
        self.get("loss_span_ms")
    }
}

/// A running `bdt-udp recv`.
#[derive(Debug)]
pub struct UdpReceiver {
    child: ChildGuard,
    what: String,
}

impl UdpReceiver {
    /// Starts `bdt-udp recv` in `ns` and waits until its socket is bound.
    pub fn start(ns: &Netns, bind: &str, expect: u64, pps: u64, timeout: Duration) -> UdpReceiver {
        let tool = udp_tool();
        let mut child = ChildGuard::new(ns.spawn(
            &[
                tool.to_str().expect("utf-8 path"),
                "recv",
                "--bind",
                bind,
                "--expect",
                &expect.to_string(),
                "--pps",
                &pps.to_string(),
                "--timeout-ms",
                &timeout.as_millis().to_string(),
            ],
            Stdio::piped(),
            Stdio::piped(),
        ));
        // The tool prints "bound ..." on stderr once the socket is bound.
        let stderr = child.child_mut().stderr.take().expect("stderr");
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        assert!(
            line.starts_with("bound"),
            "bdt-udp recv in {} on {bind} did not start: {line:?}",
            ns.name()
        );
        // Keep draining stderr so the tool never blocks on it.
        thread::spawn(move || {
            let mut rest = String::new();
            while r.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
                eprint!("bdt-udp recv: {rest}");
                rest.clear();
            }
        });
        UdpReceiver {
            child,
            what: format!("recv {bind} in {}", ns.name()),
        }
    }

    /// Waits for the report (up to the receiver's own timeout plus 5 s).
    pub fn finish(self) -> UdpReport {
        let child = self.child.take();
        let out = child.wait_with_output().expect("wait bdt-udp recv");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: exit {}: {text}",
            self.what,
            out.status
        );
        UdpReport::parse(&text).unwrap_or_else(|| panic!("{}: no report in {text:?}", self.what))
    }
}

/// A running `bdt-udp send`.
#[derive(Debug)]
pub struct UdpSender {
    child: ChildGuard,
    what: String,
}

impl UdpSender {
    pub fn start(ns: &Netns, dst: &str, pps: u64, count: u64) -> UdpSender {
        UdpSender::start_args(ns, dst, pps, count, &[])
    }

    /// `count` datagrams at `pps` in `flows` UDP flows from source ports
    /// `src_port..src_port + flows` (datagram `seq` from `src_port + seq % flows`).
    pub fn start_flows(
        ns: &Netns,
        dst: &str,
        pps: u64,
        count: u64,
        src_port: u16,
        flows: u16,
    ) -> UdpSender {
        let sp = src_port.to_string();
        let fl = flows.to_string();
        UdpSender::start_args(ns, dst, pps, count, &["--src-port", &sp, "--flows", &fl])
    }

    fn start_args(ns: &Netns, dst: &str, pps: u64, count: u64, more: &[&str]) -> UdpSender {
        let tool = udp_tool();
        let pps_s = pps.to_string();
        let count_s = count.to_string();
        let mut args = vec![
            tool.to_str().expect("utf-8 path"),
            "send",
            "--dst",
            dst,
            "--pps",
            &pps_s,
            "--count",
            &count_s,
        ];
        args.extend_from_slice(more);
        let child = ChildGuard::new(ns.spawn(&args, Stdio::piped(), Stdio::piped()));
        UdpSender {
            child,
            what: format!("send {dst} from {}", ns.name()),
        }
    }

    /// Waits for the sender to finish; returns its summary line.
    pub fn finish(self) -> String {
        let child = self.child.take();
        let out = child.wait_with_output().expect("wait bdt-udp send");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success(),
            "{}: exit {}: {text} {}",
            self.what,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

/// Sends `count` datagrams at `pps` from `from` to `to_addr:port` (received in
/// `to`) and returns the receiver's report.
pub fn udp_stream(
    from: &Netns,
    to: &Netns,
    to_ip: &str,
    port: u16,
    pps: u64,
    count: u64,
) -> UdpReport {
    let bind = sockaddr(to_ip, port);
    let secs = count / pps.max(1) + 5;
    let rx = UdpReceiver::start(to, &bind, count, pps, Duration::from_secs(secs));
    let tx = UdpSender::start(from, &bind, pps, count);
    let sent = tx.finish();
    let rep = rx.finish();
    println!("  stream {bind}: sender: {sent}; receiver: {}", rep.line);
    rep
}

/// A running `bdt-udp sniff`: counts, per bridge port and UDP source port,
/// the frames the bond's slaves sent (captured at their peers).
#[derive(Debug)]
pub struct Sniffer {
    child: ChildGuard,
    ifaces: Vec<String>,
    what: String,
}

/// Flows seen on more than one interface: (source port, frames per interface).
pub type SplitFlows = Vec<(u16, Vec<u64>)>;

/// Frames per UDP source port (flow) and per interface, from [`Sniffer::stop`].
#[derive(Debug, Clone, Default)]
pub struct SniffReport {
    /// Interfaces in the order given to [`Sniffer::start`].
    pub ifaces: Vec<String>,
    /// Source port → frames per interface (same order as `ifaces`).
    pub flows: BTreeMap<u16, Vec<u64>>,
}

impl SniffReport {
    /// Frames per interface, all flows.
    pub fn per_iface(&self) -> Vec<u64> {
        let mut v = vec![0; self.ifaces.len()];
        for c in self.flows.values() {
            for (i, n) in c.iter().enumerate() {
                v[i] += n;
            }
        }
        v
    }

    /// For each flow, the single interface index that carried all its frames;
    /// `Err` lists the flows seen on more than one interface.
    pub fn flow_owner(&self) -> Result<BTreeMap<u16, usize>, SplitFlows> {
        let mut owner = BTreeMap::new();
        let mut split = Vec::new();
        for (&port, c) in &self.flows {
            let used: Vec<usize> = (0..c.len()).filter(|&i| c[i] > 0).collect();
            match used.as_slice() {
                [i] => {
                    owner.insert(port, *i);
                }
                [] => {}
                _ => split.push((port, c.clone())),
            }
        }
        if split.is_empty() {
            Ok(owner)
        } else {
            Err(split)
        }
    }
}

impl Sniffer {
    /// Starts `bdt-udp sniff` on `ifaces` of `ns` for UDP to `dst_port` and
    /// waits until its sockets are bound. It stops by itself after 60 s.
    pub fn start(ns: &Netns, ifaces: &[&str], dst_port: u16) -> Sniffer {
        let tool = udp_tool();
        let list = ifaces.join(",");
        let mut child = ChildGuard::new(ns.spawn(
            &[
                tool.to_str().expect("utf-8 path"),
                "sniff",
                "--ifaces",
                &list,
                "--dst-port",
                &dst_port.to_string(),
                "--max-ms",
                "60000",
            ],
            Stdio::piped(),
            Stdio::piped(),
        ));
        let stderr = child.child_mut().stderr.take().expect("stderr");
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        assert!(
            line.starts_with("bound"),
            "bdt-udp sniff in {} on {list} did not start: {line:?}",
            ns.name()
        );
        thread::spawn(move || {
            let mut rest = String::new();
            while r.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
                eprint!("bdt-udp sniff: {rest}");
                rest.clear();
            }
        });
        Sniffer {
            child,
            ifaces: ifaces.iter().map(|s| (*s).to_owned()).collect(),
            what: format!("sniff {list} in {}", ns.name()),
        }
    }

    /// Stops the sniffer (SIGTERM to its pid) after `settle` (frames in
    /// flight) and returns what it counted.
    pub fn stop(mut self, settle: Duration) -> SniffReport {
        thread::sleep(settle);
        let pid = self.child.pid() as libc::pid_t;
        if let Ok(None) = self.child.child_mut().try_wait() {
            // SAFETY: kill(2) of our own child, which is not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let child = self.child.take();
        let out = child.wait_with_output().expect("wait bdt-udp sniff");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("sniffed="),
            "{}: exit {}: {text}",
            self.what,
            out.status
        );
        let mut rep = SniffReport {
            ifaces: self.ifaces.clone(),
            flows: BTreeMap::new(),
        };
        for l in text.lines().filter(|l| l.starts_with("flow ")) {
            let mut iface = "";
            let mut port = 0u16;
            let mut frames = 0u64;
            for kv in l.split_whitespace() {
                match kv.split_once('=') {
                    Some(("iface", v)) => iface = v,
                    Some(("src_port", v)) => port = v.parse().expect("port"),
                    Some(("frames", v)) => frames = v.parse().expect("frames"),
                    _ => {}
                }
            }
            let i = self
                .ifaces
                .iter()
                .position(|x| x == iface)
                .unwrap_or_else(|| panic!("{}: unknown interface in {l:?}", self.what));
            rep.flows
                .entry(port)
                .or_insert_with(|| vec![0; self.ifaces.len()])[i] += frames;
        }
        rep
    }
}

/// `ip:port`, bracketing IPv6.
pub fn sockaddr(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

// ---------------------------------------------------------------------------
// metrics, status, CPU (for the fault and hostile-input tests)

/// Where bondd serves metrics by default, inside its namespace.
pub const METRICS_ADDR: &str = "127.0.0.1:9479";

/// Runs `f` on a new thread that has entered `ns`'s network namespace (only
/// that thread's; the test process stays where it is).
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsRawFd;
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

/// An HTTP/1.0 GET to `addr` inside `ns` (a thread that entered the
/// namespace, so the request never leaves its loopback). Returns (status
/// code, body) or an error text. Bounded: 2 s connect, 5 s reads.
pub fn http_get_in_netns(ns: &Netns, addr: &str, target: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let sa: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    in_netns(ns, || {
        let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(2))
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

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl MetricSample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed scrape of bondd's `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<MetricSample>,
}

impl Metrics {
    /// `GET /metrics` from the bondd in `ns` (default address).
    pub fn scrape(ns: &Netns) -> Result<Metrics, String> {
        match http_get_in_netns(ns, METRICS_ADDR, "/metrics")? {
            (200, body) => Ok(Metrics::parse(&body)),
            (code, body) => Err(format!("HTTP {code}: {body}")),
        }
    }

    /// Parses the text exposition (label values without `,`/`}` escapes
    /// beyond `\"`, `\\` and `\n`, which is all bondd writes).
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(name_end) = line.find(['{', ' ']) else {
                continue;
            };
            let name = line[..name_end].to_owned();
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(r) = rest.strip_prefix('{') {
                let b = r.as_bytes();
                let mut i = 0;
                let mut key = String::new();
                while i < b.len() {
                    match b[i] {
                        b'}' => {
                            i += 1;
                            break;
                        }
                        b',' | b' ' => i += 1,
                        b'=' => {
                            i += 2; // `="`
                            let mut val = String::new();
                            while i < b.len() && b[i] != b'"' {
                                if b[i] == b'\\' && i + 1 < b.len() {
                                    i += 1;
                                    val.push(if b[i] == b'n' { '\n' } else { b[i] as char });
                                } else {
                                    val.push(b[i] as char);
                                }
                                i += 1;
                            }
                            i += 1;
                            labels.push((std::mem::take(&mut key), val));
                        }
                        c => {
                            key.push(c as char);
                            i += 1;
                        }
                    }
                }
                rest = &r[i.min(r.len())..];
            }
            if let Some(value) = rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
                samples.push(MetricSample {
                    name,
                    labels,
                    value,
                });
            }
        }
        Metrics { samples }
    }

    /// Samples of `name` whose labels include all of `labels`.
    pub fn find<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a MetricSample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }

    /// Sum of the samples of `name` matching `labels` (0 if none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map(|s| s.value).sum()
    }

    /// Whether any sample of `name` matches `labels`.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.find(name, labels).next().is_some()
    }

    /// `name`'s samples matching `labels`, keyed by the value of label
    /// `by` (summed over the other labels).
    pub fn by_label(&self, name: &str, labels: &[(&str, &str)], by: &str) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for s in self.find(name, labels) {
            *m.entry(s.label(by).unwrap_or("").to_owned()).or_insert(0.0) += s.value;
        }
        m
    }
}

/// Runs `bondd ARGS` (the CLI) in `ns` as root, bounded to 20 s.
pub fn bondd_cli(ns: &Netns, args: &[&str]) -> TimedOutput {
    let mut all: Vec<std::ffi::OsString> = vec![bondd_bin().into_os_string()];
    all.extend(args.iter().map(std::ffi::OsString::from));
    ns.exec_timeout(&all, Duration::from_secs(20))
}

/// `bondd status BOND` (the /proc/net/bonding text) from the daemon of `ns`.
pub fn bondd_status(ns: &Netns, bond: &str) -> Result<String, String> {
    let out = bondd_cli(ns, &["status", bond]);
    match out.status {
        Some(s) if s.success() => Ok(out.stdout),
        st => Err(format!(
            "bondd status {bond}: {st:?}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        )),
    }
}

/// The value of `Key: value` in the bond part (before the first `Slave
/// Interface:`) of a /proc-style status text.
pub fn status_bond_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| !l.starts_with("Slave Interface:"))
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .map(str::to_owned)
}

/// The value of `Key: value` in slave `slave`'s section of a /proc-style
/// status text; None if the slave or the key is missing.
pub fn status_slave_field(text: &str, slave: &str, key: &str) -> Option<String> {
    let head = format!("Slave Interface: {slave}");
    text.lines()
        .skip_while(|l| *l != head)
        .skip(1)
        .take_while(|l| !l.starts_with("Slave Interface:"))
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .map(str::to_owned)
}

/// CPU time (user + system) a process used so far, from /proc/PID/stat.
pub fn proc_cpu_time(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces), from field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// Whether process `pid` still exists and is not a zombie.
pub fn proc_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 2..].split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// Formats frames as `bdt-udp raw-send` reads them: one hex line each.
pub fn hex_frames(frames: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for f in frames {
        for b in f {
            let _ = write!(s, "{b:02x}");
        }
        s.push('\n');
    }
    s
}

/// Per-frame result of `bdt-udp raw-send`.
#[derive(Debug, Clone, Default)]
pub struct RawSendReport {
    /// (len, sent, errors, last errno) per frame of the list, in order.
    pub frames: Vec<(usize, u64, u64, i32)>,
    pub sent: u64,
    pub errors: u64,
    pub line: String,
}

/// A running `bdt-udp raw-send`: raw Ethernet frames out of one interface
/// (hostile input). Bounded by the tool: ≤ 20000 pps, ≤ 200000 frames,
/// ≤ 10 s.
#[derive(Debug)]
pub struct RawSender {
    child: ChildGuard,
    _dir: TempDir,
    what: String,
}

impl RawSender {
    /// Sends `count` frames, cycling through `frames`, at `pps` out of
    /// `iface` in `ns`.
    pub fn start(ns: &Netns, iface: &str, frames: &[Vec<u8>], pps: u64, count: u64) -> RawSender {
        let dir = TempDir::new();
        let file = dir.write("frames.hex", &hex_frames(frames));
        let tool = udp_tool();
        let child = ChildGuard::new(ns.spawn(
            &[
                tool.as_os_str(),
                OsStr::new("raw-send"),
                OsStr::new("--iface"),
                OsStr::new(iface),
                OsStr::new("--frames"),
                file.as_os_str(),
                OsStr::new("--count"),
                OsStr::new(&count.to_string()),
                OsStr::new("--pps"),
                OsStr::new(&pps.to_string()),
            ],
            Stdio::piped(),
            Stdio::piped(),
        ));
        RawSender {
            child,
            _dir: dir,
            what: format!("raw-send on {iface} in {}", ns.name()),
        }
    }

    /// Waits for the sender (it stops by itself within 10 s).
    pub fn finish(self) -> RawSendReport {
        let out = self
            .child
            .take()
            .wait_with_output()
            .expect("wait bdt-udp raw-send");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: exit {}: {text} {}",
            self.what,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut rep = RawSendReport::default();
        let num = |l: &str, key: &str| -> i64 {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as i64
        };
        for l in text.lines() {
            if l.starts_with("frame=") {
                rep.frames.push((
                    num(l, "len") as usize,
                    num(l, "sent") as u64,
                    num(l, "errors") as u64,
                    num(l, "last_error") as i32,
                ));
            } else if l.starts_with("sent=") {
                rep.sent = num(l, "sent") as u64;
                rep.errors = num(l, "errors") as u64;
                rep.line = l.to_owned();
            }
        }
        rep
    }
}

/// Sends `count` frames (cycling through `frames`) at `pps` out of `iface`
/// in `ns` and waits for the sender.
pub fn raw_send(
    ns: &Netns,
    iface: &str,
    frames: &[Vec<u8>],
    pps: u64,
    count: u64,
) -> RawSendReport {
    RawSender::start(ns, iface, frames, pps, count).finish()
}

/// CLOCK_MONOTONIC in ns: the clock of the send time `bdt-udp send` puts
/// into every datagram (bytes 8..16).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One datagram seen by a [`StampedReceiver`].
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// `bdt-udp` sequence number.
    pub seq: u64,
    /// The sender's CLOCK_MONOTONIC at sending, in ns ([`monotonic_ns`]).
    pub sent_ns: u64,
    /// Arrival in this process.
    pub at: Instant,
}

/// A UDP receiver running on a thread of the test process inside a
/// namespace, bound to the wildcard address (so it survives its address
/// disappearing and coming back): it records the arrival time of every
/// `bdt-udp` datagram (sequence number and send time) for `run_for`.
#[derive(Debug)]
pub struct StampedReceiver {
    handle: Option<thread::JoinHandle<Vec<Stamp>>>,
}

impl StampedReceiver {
    /// Binds `0.0.0.0:port` (or `[::]:port` with `v6`) in `ns`; returns once
    /// the socket is bound. Receives until `run_for` from now.
    pub fn start(ns: &Netns, port: u16, v6: bool, run_for: Duration) -> StampedReceiver {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", ns.name());
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: setns(2) on a namespace fd we own; affects this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
            let bind = if v6 {
                format!("[::]:{port}")
            } else {
                format!("0.0.0.0:{port}")
            };
            let sock = std::net::UdpSocket::bind(&bind)
                .unwrap_or_else(|e| panic!("bind {bind} in {path}: {e}"));
            sock.set_read_timeout(Some(Duration::from_millis(20)))
                .expect("read timeout");
            let _ = tx.send(());
            let until = Instant::now() + run_for;
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while Instant::now() < until {
                if let Ok(n) = sock.recv(&mut buf)
                    && n >= 16
                {
                    got.push(Stamp {
                        seq: u64::from_be_bytes(buf[..8].try_into().expect("8 bytes")),
                        sent_ns: u64::from_be_bytes(buf[8..16].try_into().expect("8 bytes")),
                        at: Instant::now(),
                    });
                }
            }
            got
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("stamped receiver did not bind");
        StampedReceiver {
            handle: Some(handle),
        }
    }

    /// Waits for the receiver's end; returns the datagrams in arrival order.
    pub fn finish(mut self) -> Vec<Stamp> {
        self.handle
            .take()
            .expect("finished twice")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_parses_link_state() {
        let l = "3: s0@p0: <BROADCAST,MULTICAST,ALLMULTI,M-DOWN> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 1000\\    link/ether 42:8c:2c:86:c2:ef brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 1 minmtu 68 maxmtu 65535 \\    veth addrgenmode eui64";
        let s = LinkState::parse(l).unwrap();
        assert_eq!(s.mac, "42:8c:2c:86:c2:ef");
        assert_eq!(s.mtu, 1500);
        assert!(s.allmulti_flag);
        assert!(!s.promisc_flag);
        assert_eq!(s.allmulti, 1);
        assert_eq!(s.promiscuity, 0);
    }

    #[test]
    fn harness_parses_reports() {
        let r = UdpReport::parse(
            "x\nreceived=1990 lost=10 max_gap_ms=3.5 loss_window_ms=2.5 reordered=0 duplicates=1 loss_span_ms=7.5\n",
        )
        .unwrap();
        assert!((r.loss_span_ms() - 7.5).abs() < 1e-9);
        assert_eq!(r.received(), 1990);
        assert_eq!(r.lost(), 10);
        assert_eq!(r.duplicates(), 1);
        assert!((r.max_gap_ms() - 3.5).abs() < 1e-9);
        assert_eq!(
            parse_ping_received("sent=5 received=4 max_rtt_ms=0.20"),
            Some(4)
        );
    }

    #[test]
    fn harness_parses_metrics_and_status() {
        let m = Metrics::parse(
            "# HELP x\nbondd_bond_up{bond=\"bond0\"} 1\nbondd_slave_rx_dropped_total{bond=\"bond0\",slave=\"s0\",reason=\"slow_rate\"} 7\nbondd_slave_rx_dropped_total{bond=\"bond0\",slave=\"s0\",reason=\"inactive\"} 3\n",
        );
        assert_eq!(m.sum("bondd_bond_up", &[("bond", "bond0")]), 1.0);
        assert_eq!(
            m.sum("bondd_slave_rx_dropped_total", &[("slave", "s0")]),
            10.0
        );
        let r = m.by_label("bondd_slave_rx_dropped_total", &[], "reason");
        assert_eq!(r.get("slow_rate"), Some(&7.0));
        let st = "MII Status: up\nCurrently Active Slave: s0\n\nSlave Interface: s0\nMII Status: down\nLink Failure Count: 4\n\nSlave Interface: s1\nMII Status: up\n";
        assert_eq!(status_bond_field(st, "MII Status").as_deref(), Some("up"));
        assert_eq!(
            status_slave_field(st, "s0", "Link Failure Count").as_deref(),
            Some("4")
        );
        assert_eq!(
            status_slave_field(st, "s1", "MII Status").as_deref(),
            Some("up")
        );
        assert_eq!(status_slave_field(st, "s2", "MII Status"), None);
    }

    #[test]
    fn harness_unique_names_fit() {
        let a = unique_name("hp0");
        let b = unique_name("hp0");
        assert_ne!(a, b);
        assert!(a.len() <= 15 && a.starts_with("bdt"));
    }
}
