//! `bondd demo`: a self-contained run on veth pairs in network namespaces,
//! for a machine with no spare NICs. A "switch" namespace holds a Linux
//! bridge; bondd runs in its own namespace with two veth "NICs" plugged into
//! the bridge, and a host namespace sits behind the bridge. The demo pings
//! across the bond, fails the active link, shows traffic carrying on, and
//! cleans everything up, even on error.

use anyhow::{Context, Result, bail};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

struct Topology {
    sw: String,
    b: String,
    h: String,
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.b, &self.h, &self.sw] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn nsx(ns: &str, args: &[&str]) -> Result<()> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    sh(&v)
}

/// Runs the demo; `seconds` of traffic before and after the failure.
pub fn run(seconds: u64) -> Result<()> {
    if !bondd_xdp::sys::is_root() {
        bail!("the demo creates network namespaces and needs root");
    }
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("bondd-demo-{pid}"));
    std::fs::create_dir_all(&dir)?;
    let mut t = Topology {
        sw: format!("bdd-demo-{pid}-sw"),
        b: format!("bdd-demo-{pid}-b"),
        h: format!("bdd-demo-{pid}-h"),
        child: None,
        dir: dir.clone(),
    };
    println!(
        "== bondd demo: namespaces {} (switch), {} (bondd), {} (host)",
        t.sw, t.b, t.h
    );
    for ns in [&t.sw, &t.b, &t.h] {
        sh(&["ip", "netns", "add", ns])?;
        nsx(ns, &["ip", "link", "set", "lo", "up"])?;
    }
    nsx(
        &t.sw,
        &[
            "ip",
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ],
    )?;
    nsx(&t.sw, &["ip", "link", "set", "br0", "up"])?;
    for (a, p, ns) in [("s0", "p0", &t.b), ("s1", "p1", &t.b), ("h0", "hp0", &t.h)] {
        nsx(
            ns,
            &[
                "ip", "link", "add", a, "type", "veth", "peer", "name", p, "netns", &t.sw,
            ],
        )?;
        nsx(&t.sw, &["ip", "link", "set", p, "master", "br0", "up"])?;
        nsx(ns, &["ip", "link", "set", a, "up"])?;
    }
    // The host's veth must send full checksums, as a real NIC on a wire does.
    nsx(&t.h, &["ethtool", "-K", "h0", "tx", "off"])?;
    nsx(&t.h, &["ip", "addr", "add", "198.18.0.2/24", "dev", "h0"])?;
    nsx(
        &t.h,
        &["ip", "addr", "add", "2001:2::2/64", "dev", "h0", "nodad"],
    )?;

    let cfg = dir.join("bond.yaml");
    std::fs::write(
        &cfg,
        "bonds:\n  - name: bond0\n    mode: active-backup\n    slaves: [s0, s1]\n    primary: s0\n    miimon: 100\n    addresses: [198.18.0.1/24, \"2001:2::1/64\"]\n",
    )?;
    println!(
        "== config ({}):\n{}",
        cfg.display(),
        std::fs::read_to_string(&cfg)?
    );
    let exe = std::env::current_exe()?;
    let child = Command::new("ip")
        .args(["netns", "exec", &t.b])
        .arg(&exe)
        .arg("--config")
        .arg(&cfg)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        .spawn()
        .context("starting bondd")?;
    t.child = Some(child);

    // Wait until the host can reach the bond.
    let t0 = Instant::now();
    loop {
        let ok = Command::new("ip")
            .args(["netns", "exec", &t.h, "ping", "-c1", "-W1", "198.18.0.1"])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            break;
        }
        if let Some(c) = t.child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            bail!("bondd exited early: {st}");
        }
        if t0.elapsed() > Duration::from_secs(20) {
            bail!("bond0 did not become reachable within 20 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "== bond0 reachable from the host after {} ms",
        t0.elapsed().as_millis()
    );
    sh(&["ip", "-n", &t.b, "-br", "addr", "show", "bond0"])?;
    let show = Command::new("ip")
        .args(["-n", &t.b, "-br", "addr", "show", "bond0"])
        .output()?;
    print!("{}", String::from_utf8_lossy(&show.stdout));

    // Ping at 100/s across a failure of the active link.
    let count = (seconds * 2 * 100).to_string();
    println!(
        "== pinging bond0 from the host, {count} pings at 10 ms; the active link fails after {seconds} s"
    );
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.h,
            "ping",
            "-q",
            "-c",
            &count,
            "-i",
            "0.01",
            "-W",
            "1",
            "198.18.0.1",
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_secs(seconds));
    println!("== switch port p0 (bond slave s0, the active one) goes down");
    nsx(&t.sw, &["ip", "link", "set", "p0", "down"])?;
    let out = ping.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let lost = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .and_then(|l| {
            let n: Vec<u64> = l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            (n.len() >= 2).then(|| n[0] - n[1])
        });
    match lost {
        Some(l) => println!(
            "== {l} of {count} pings unanswered across the failover (ping backs off when replies stop; the tests and bench/ measure the loss window precisely with sequence-numbered UDP)"
        ),
        None => println!("== could not read the ping summary"),
    }
    let v6 = Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.h,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "2001:2::1",
        ])
        .stdout(Stdio::null())
        .status()?
        .success();
    println!(
        "== IPv6 ping over the backup slave: {}",
        if v6 { "ok" } else { "FAILED" }
    );
    println!("== bondd status (as /proc/net/bonding/bond0 would show it):");
    let st = Command::new("ip")
        .args(["netns", "exec", &t.b])
        .arg(&exe)
        .args(["status", "--state-dir"])
        .arg(dir.join("state"))
        .output()?;
    print!("{}", String::from_utf8_lossy(&st.stdout));
    println!("== stopping bondd (SIGTERM); it restores the slaves and removes bond0");
    if let Some(mut c) = t.child.take() {
        sh(&["kill", "-TERM", &c.id().to_string()])?;
        let st = c.wait()?;
        println!("== bondd exited: {st}");
        if !st.success() {
            bail!("bondd exited with {st}");
        }
    }
    let left = Command::new("ip")
        .args(["-n", &t.b, "link", "show", "bond0"])
        .output()?;
    println!(
        "== bond0 after exit: {}",
        if left.status.success() {
            "still there (BUG)"
        } else {
            "gone"
        }
    );
    println!("== demo done; namespaces removed");
    Ok(())
}
