//! What bondd changed on the system, written down before it changes it, so
//! that a clean exit restores it and a restart after a crash can too.
//!
//! One small text file per (network namespace, bond) under the state
//! directory (default /run/bondd, which is a tmpfs: a reboot forgets it, as
//! it should, since the changes are gone too).

use anyhow::{Context, Result, bail};
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

/// The original settings of one slave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedSlave {
    /// Interface name.
    pub name: String,
    /// MAC before enslaving.
    pub mac: [u8; 6],
    /// MTU before enslaving.
    pub mtu: u32,
    /// Was administratively up.
    pub up: bool,
    /// Promiscuous flag.
    pub promisc: bool,
    /// All-multicast flag.
    pub allmulti: bool,
    /// RX VLAN stripping, when the driver reports it.
    pub rxvlan: Option<bool>,
    /// `net.ipv6.conf.<slave>.disable_ipv6` before enslaving.
    pub ipv6_disabled: Option<bool>,
    /// `napi_defer_hard_irqs` and `gro_flush_timeout` before bondd changed
    /// them for `busy_poll` (None: not changed).
    pub napi: Option<(u32, u64)>,
}

/// The state file of one bond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondState {
    /// Process that owns the bond.
    pub pid: u32,
    /// Logical interface name.
    pub logical: String,
    /// Slaves and their original settings.
    pub slaves: Vec<SavedSlave>,
}

fn mac_str(m: &[u8; 6]) -> String {
    bondd_core::config::format_mac(m)
}

impl BondState {
    /// Serialises to the file format (`key=value` lines).
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# bondd restore state; do not edit");
        let _ = writeln!(s, "pid={}", self.pid);
        let _ = writeln!(s, "logical={}", self.logical);
        for sl in &self.slaves {
            let _ = writeln!(
                s,
                "slave={} mac={} mtu={} up={} promisc={} allmulti={}{}{}{}",
                sl.name,
                mac_str(&sl.mac),
                sl.mtu,
                u8::from(sl.up),
                u8::from(sl.promisc),
                u8::from(sl.allmulti),
                match sl.rxvlan {
                    Some(v) => format!(" rxvlan={}", u8::from(v)),
                    None => String::new(),
                },
                match sl.ipv6_disabled {
                    Some(v) => format!(" ipv6_disabled={}", u8::from(v)),
                    None => String::new(),
                },
                match sl.napi {
                    Some((d, g)) => format!(" napi_defer_hard_irqs={d} gro_flush_timeout={g}"),
                    None => String::new(),
                }
            );
        }
        s
    }

    /// Parses the file format; rejects anything malformed rather than
    /// restoring half-understood state.
    pub fn decode(text: &str) -> Result<Self> {
        let mut pid = None;
        let mut logical = None;
        let mut slaves = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(v) = line.strip_prefix("pid=") {
                pid = Some(v.parse().context("pid")?);
            } else if let Some(v) = line.strip_prefix("logical=") {
                logical = Some(v.to_string());
            } else if let Some(rest) = line.strip_prefix("slave=") {
                let mut parts = rest.split_whitespace();
                let name = parts.next().context("slave name")?.to_string();
                let mut sl = SavedSlave {
                    name,
                    mac: [0; 6],
                    mtu: 0,
                    up: false,
                    promisc: false,
                    allmulti: false,
                    rxvlan: None,
                    ipv6_disabled: None,
                    napi: None,
                };
                for kv in parts {
                    let (k, v) = kv.split_once('=').context("slave field")?;
                    match k {
                        "mac" => sl.mac = bondd_core::config::parse_mac(v).context("slave mac")?,
                        "mtu" => sl.mtu = v.parse().context("slave mtu")?,
                        "up" => sl.up = v == "1",
                        "promisc" => sl.promisc = v == "1",
                        "allmulti" => sl.allmulti = v == "1",
                        "rxvlan" => sl.rxvlan = Some(v == "1"),
                        "ipv6_disabled" => sl.ipv6_disabled = Some(v == "1"),
                        "napi_defer_hard_irqs" => {
                            let g = sl.napi.map_or(0, |n| n.1);
                            sl.napi = Some((v.parse().context("napi_defer_hard_irqs")?, g));
                        }
                        "gro_flush_timeout" => {
                            let d = sl.napi.map_or(0, |n| n.0);
                            sl.napi = Some((d, v.parse().context("gro_flush_timeout")?));
                        }
                        other => bail!("unknown slave field {other}"),
                    }
                }
                slaves.push(sl);
            } else {
                bail!("unknown line {line:?}");
            }
        }
        Ok(Self {
            pid: pid.context("missing pid")?,
            logical: logical.context("missing logical")?,
            slaves,
        })
    }
}

/// Where a bond's state file lives.
pub fn path(dir: &Path, netns: u64, bond: &str) -> PathBuf {
    dir.join(format!("{netns}-{bond}.state"))
}

/// Reads a state file if present.
pub fn load(p: &Path) -> Result<Option<BondState>> {
    match std::fs::read_to_string(p) {
        Ok(t) => Ok(Some(
            BondState::decode(&t).with_context(|| format!("state file {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Writes a state file atomically (write + rename).
pub fn store(p: &Path, st: &BondState) -> Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, st.encode()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, p).with_context(|| format!("renaming to {}", p.display()))?;
    Ok(())
}

/// True if `pid` is a live bondd process other than this one.
pub fn pid_is_live_bondd(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim() == "bondd")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let st = BondState {
            pid: 42,
            logical: "bond0".into(),
            slaves: vec![SavedSlave {
                name: "eth1".into(),
                mac: [2, 0, 0, 0, 0, 1],
                mtu: 9000,
                up: true,
                promisc: false,
                allmulti: true,
                rxvlan: Some(true),
                ipv6_disabled: Some(false),
                napi: Some((0, 20000)),
            }],
        };
        assert_eq!(BondState::decode(&st.encode()).unwrap(), st);
    }

    #[test]
    fn malformed_is_refused() {
        assert!(BondState::decode("pid=1\nlogical=b\nslave=x mac=zz\n").is_err());
        assert!(BondState::decode("logical=b\n").is_err());
        assert!(BondState::decode("pid=1\nlogical=b\nwhat=1\n").is_err());
    }
}
