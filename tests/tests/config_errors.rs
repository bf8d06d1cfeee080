//! Test (d): bad configs are refused with a useful message and change nothing.
//!
//! For each bad config, in a fresh topology where the slaves exist:
//! `bondd check --config F` and `bondd --config F` (both run in ns B) exit
//! non-zero, stderr names the file, the bond and the key (plus case-specific
//! words), and the system is untouched: no bond0/bond1 or their -dp peers, no
//! XDP on the slaves, slave MAC/MTU/flags unchanged.

use bondd_tests::*;
use std::time::Duration;

/// bondd must refuse within this time; if still running it is killed and
/// the test fails.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(10);

struct Case {
    what: &'static str,
    yaml: String,
    /// Strings stderr must contain (besides the file path).
    must_mention: Vec<String>,
}

fn good_bond(t: &Topology) -> BondConfig {
    BondConfig::active_backup(t)
}

fn assert_untouched(t: &Topology, before: &[LinkState; 2], ctx: &str) {
    for l in ["bond0", "bond0-dp", "bond1", "bond1-dp"] {
        assert!(
            !t.b.link_exists(l),
            "{ctx}: {l} exists after a refused config"
        );
    }
    for (i, s) in t.slaves().into_iter().enumerate() {
        assert!(!t.b.has_xdp(s), "{ctx}: XDP attached to {s}");
        assert_eq!(t.b.link_state(s), before[i], "{ctx}: slave {s} changed");
    }
}

fn assert_refused(out: &TimedOutput, path: &str, must: &[String], ctx: &str) {
    let Some(st) = out.status else {
        panic!(
            "{ctx}: still running after {REFUSE_TIMEOUT:?} (accepted a bad config?); stderr:\n{}",
            out.stderr
        );
    };
    assert!(
        !st.success(),
        "{ctx}: exit {st}, want failure; stderr:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(path),
        "{ctx}: stderr does not name the file {path}:\n{}",
        out.stderr
    );
    for m in must {
        assert!(
            out.stderr.contains(m.as_str()),
            "{ctx}: stderr does not mention {m:?}:\n{}",
            out.stderr
        );
    }
}

fn run_case(make: impl FnOnce(&Topology) -> Case) {
    let t = Topology::new();
    let before = t.slave_states();
    let case = make(&t);
    let dir = TempDir::new();
    let path = dir.write("bad.yaml", &case.yaml);
    let path_s = path.to_str().expect("utf-8 path").to_owned();
    let bin = bondd_bin();
    let bin = bin.to_str().expect("utf-8 path");
    println!("case {}: config:\n{}", case.what, case.yaml);

    let out =
        t.b.exec_timeout(&[bin, "check", "--config", &path_s], REFUSE_TIMEOUT);
    println!("bondd check: {:?}\n{}", out.status, out.stderr);
    assert_refused(
        &out,
        &path_s,
        &case.must_mention,
        &format!("{}: bondd check", case.what),
    );
    assert_untouched(&t, &before, &format!("{}: bondd check", case.what));

    let out =
        t.b.exec_timeout(&[bin, "--config", &path_s], REFUSE_TIMEOUT);
    println!("bondd --config: {:?}\n{}", out.status, out.stderr);
    assert_refused(
        &out,
        &path_s,
        &case.must_mention,
        &format!("{}: bondd --config", case.what),
    );
    assert_untouched(&t, &before, &format!("{}: bondd --config", case.what));
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn config_unknown_key_suggests_miimon() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    run_case(|t| {
        let yaml = good_bond(t).to_yaml().replace("miimon: 100", "miimom: 100");
        assert!(yaml.contains("miimom"));
        Case {
            what: "unknown key",
            yaml,
            must_mention: strings(&["bond0", "miimom", "miimon"]),
        }
    });
}

#[test]
fn config_bad_mode_value() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    run_case(|t| {
        let mut b = good_bond(t);
        b.mode = "fast-ish".into();
        Case {
            what: "bad value",
            yaml: b.to_yaml(),
            must_mention: strings(&["bond0", "mode", "fast-ish"]),
        }
    });
}

#[test]
fn config_slave_listed_twice() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    run_case(|t| {
        let mut b = good_bond(t);
        b.slaves = vec![t.n.s0.clone(), t.n.s1.clone(), t.n.s0.clone()];
        Case {
            what: "slave listed twice",
            yaml: b.to_yaml(),
            must_mention: vec!["bond0".into(), "slaves".into(), t.n.s0.clone()],
        }
    });
}

#[test]
fn config_slave_in_two_bonds() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    run_case(|t| {
        let mut b0 = good_bond(t);
        b0.slaves = vec![t.n.s0.clone()];
        let mut b1 = good_bond(t);
        b1.name = "bond1".into();
        b1.slaves = vec![t.n.s1.clone(), t.n.s0.clone()];
        b1.primary = Some(t.n.s1.clone());
        b1.addresses = vec!["198.18.1.1/24".into(), "2001:2:0:1::1/64".into()];
        Case {
            what: "slave in two bonds",
            yaml: config_yaml(&[b0, b1]),
            must_mention: vec![
                "bond0".into(),
                "bond1".into(),
                "slaves".into(),
                t.n.s0.clone(),
            ],
        }
    });
}

#[test]
fn config_missing_slave() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    run_case(|t| {
        let mut b = good_bond(t);
        b.slaves = vec![t.n.s0.clone(), "nosuchif0".into()];
        Case {
            what: "missing slave",
            yaml: b.to_yaml(),
            must_mention: strings(&["bond0", "slaves", "nosuchif0"]),
        }
    });
}

#[test]
fn config_option_not_supported_by_mode() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    run_case(|t| {
        let mut b = good_bond(t);
        b.extra.push("packets_per_slave: 2".into());
        Case {
            what: "option the mode does not support",
            yaml: b.to_yaml(),
            must_mention: strings(&["bond0", "packets_per_slave"]),
        }
    });
}

#[test]
fn config_primary_not_a_slave() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    run_case(|t| {
        // s1 exists but is not a slave of this bond.
        let mut b = good_bond(t);
        b.slaves = vec![t.n.s0.clone()];
        b.primary = Some(t.n.s1.clone());
        Case {
            what: "primary not a slave",
            yaml: b.to_yaml(),
            must_mention: vec!["bond0".into(), "primary".into(), t.n.s1.clone()],
        }
    });
}

#[test]
fn config_check_accepts_good_config() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    let t = Topology::new();
    let before = t.slave_states();
    let dir = TempDir::new();
    let yaml = good_bond(&t).to_yaml();
    let path = dir.write("good.yaml", &yaml);
    let bin = bondd_bin();
    let out = t.b.exec_timeout(
        &[
            bin.as_os_str(),
            "check".as_ref(),
            "--config".as_ref(),
            path.as_os_str(),
        ],
        REFUSE_TIMEOUT,
    );
    println!(
        "bondd check on a good config: {:?}\n{}",
        out.status, out.stderr
    );
    let st = out.status.expect("bondd check did not finish");
    assert!(
        st.success(),
        "bondd check refused a good config ({st}):\n{yaml}\n{}",
        out.stderr
    );
    // check validates only.
    assert_untouched(&t, &before, "bondd check on a good config");
}

#[test]
fn config_writable_by_others_refused() {
    if !require_root() {
        return;
    }
    let _serial = bondd_tests::setup!();
    use std::os::unix::fs::PermissionsExt;
    let t = Topology::new();
    let before = t.slave_states();
    let dir = TempDir::new();
    let path = dir.write("loose.yaml", &good_bond(&t).to_yaml());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let path_s = path.to_str().expect("utf-8 path").to_owned();
    let bin = bondd_bin();
    let bin = bin.to_str().expect("utf-8 path");
    for args in [
        vec![bin, "check", "--config", &path_s],
        vec![bin, "--config", &path_s],
    ] {
        let out = t.b.exec_timeout(&args, REFUSE_TIMEOUT);
        println!("{args:?}: {:?}\n{}", out.status, out.stderr);
        assert!(
            out.status.is_some_and(|s| !s.success()),
            "a config writable by others was accepted: {args:?}"
        );
        assert!(
            out.stderr.contains(&path_s),
            "error does not name the file: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("writable"),
            "error does not say why: {}",
            out.stderr
        );
        assert_untouched(&t, &before, "loose config");
    }
    // The same file with mode 0644 is accepted by check.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out =
        t.b.exec_timeout(&[bin, "check", "--config", &path_s], REFUSE_TIMEOUT);
    assert!(out.status.is_some_and(|s| s.success()), "{}", out.stderr);
}
