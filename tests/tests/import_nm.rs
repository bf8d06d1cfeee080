//! `bondd import-nm DIR`: NetworkManager keyfiles in, a config bondd accepts
//! out.
//!
//! For each case in `tests/fixtures/nm/`: the real binary prints YAML on
//! stdout (exit 0) with the expected bond, and what did not carry over on
//! stderr. As root, the output is then given to `bondd check --config` in a
//! fresh namespace where the slaves exist (veth links), which must accept
//! it; without root that part is skipped (the parse itself is covered by the
//! unit tests in `daemon/bondd/src/nm.rs`).

use bondd_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Case {
    dir: &'static str,
    bond: &'static str,
    slaves: &'static [&'static str],
    stdout_has: &'static [&'static str],
    stderr_has: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        dir: "active-backup",
        bond: "bond0",
        slaves: &["eth1", "eth2"],
        stdout_has: &[
            "  - name: bond0\n",
            "    mode: active-backup\n",
            "    slaves: [eth1, eth2]\n",
            "    miimon: 100\n",
            "    primary: eth1\n",
            "    addresses: [198.18.10.2/24, \"2001:2:0:10::2/64\"]\n",
            "    gateway: 198.18.10.1\n",
        ],
        stderr_has: &[],
    },
    Case {
        dir: "lacp",
        bond: "bond1",
        slaves: &["eth4", "eth3"],
        stdout_has: &[
            "    mode: 802.3ad\n",
            "    slaves: [eth4, eth3]\n",
            "    xmit_hash_policy: layer3+4\n",
            "    lacp_rate: fast\n",
            "    gateway: 198.18.20.1\n",
        ],
        stderr_has: &["mtu: 9000", "DNS servers"],
    },
    Case {
        dir: "dhcp",
        bond: "bond0",
        slaves: &["eth1", "eth2"],
        stdout_has: &["    mode: balance-xor\n", "    slaves: [eth1, eth2]\n"],
        stderr_has: &[
            "ipv4.method=auto (DHCP)",
            "nmcli connection add type ethernet ifname bond0",
            "foo_bar",
            "bond9",
            "VLAN 10 on bond0",
        ],
    },
];

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/nm")
        .join(case)
}

fn bondd(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bondd_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run bondd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn import_nm_fixtures() {
    for case in CASES {
        let dir = fixture(case.dir);
        let out = bondd(&["import-nm".as_ref(), dir.as_os_str()]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "{}: import-nm failed ({}):\n{stderr}",
            case.dir,
            out.status
        );
        assert!(
            stdout.contains("\nbonds:\n"),
            "{}: no bonds: in\n{stdout}",
            case.dir
        );
        for s in case.stdout_has {
            assert!(
                stdout.contains(s),
                "{}: stdout lacks {s:?}:\n{stdout}",
                case.dir
            );
        }
        for s in case.stderr_has {
            assert!(
                stderr.contains(s),
                "{}: stderr lacks {s:?}:\n{stderr}",
                case.dir
            );
        }
        if case.stderr_has.is_empty() {
            assert!(
                stderr.trim().is_empty(),
                "{}: unexpected warnings:\n{stderr}",
                case.dir
            );
        }
        // Warnings go to stderr only: stdout is the config, nothing else.
        assert!(
            !stdout.contains("warning"),
            "{}: warnings on stdout:\n{stdout}",
            case.dir
        );
        check_accepts(case, &stdout);
    }
}

/// `bondd check --config` on the output, in a namespace where the slaves
/// exist, must accept it.
fn check_accepts(case: &Case, yaml: &str) {
    if !require_root() {
        return;
    }
    let tmp = TempDir::new();
    let path = tmp.write("bond.yaml", yaml);
    let ns = Netns::new("N");
    // veth, not dummy: the dummy driver is not always built.
    for (i, s) in case.slaves.iter().enumerate() {
        let peer = format!("peer{i}");
        ns.ip(&["link", "add", s, "type", "veth", "peer", "name", &peer]);
        ns.link_up(s);
    }
    let bin = bondd_bin();
    let out = ns.exec(&[
        bin.as_os_str(),
        "check".as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{}: bondd check refused the imported config ({}):\n{stderr}\n--- config ---\n{yaml}",
        case.dir,
        out.status
    );
    assert!(stdout.contains("ok (1 bond)"), "{}: {stdout}", case.dir);
    assert!(
        !ns.link_exists(case.bond),
        "{}: check created {}",
        case.dir,
        case.bond
    );
}

#[test]
fn import_nm_errors() {
    // A directory that does not exist: non-zero, names it.
    let missing = std::env::temp_dir().join(unique_name("nonm"));
    let out = bondd(&["import-nm".as_ref(), missing.as_os_str()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
    assert!(text(&out.stdout).is_empty());

    // Keyfiles without a bond: non-zero, says so, and says why the port
    // found was not used.
    let tmp = TempDir::new();
    tmp.write(
        "port.nmconnection",
        "[connection]\nid=p\ntype=ethernet\ninterface-name=eth1\nmaster=bond7\nslave-type=bond\n",
    );
    let out = bondd(&["import-nm".as_ref(), tmp.path().as_os_str()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("no bond connection"), "{err}");
    assert!(err.contains("bond7"), "{err}");
}
