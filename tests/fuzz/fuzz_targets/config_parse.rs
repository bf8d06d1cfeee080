//! `config::parse` on arbitrary UTF-8: never panics (nor overflows the
//! stack); an error always carries at least one problem and renders; a
//! parsed config is usable (bond MAC, LACP config) and parsing is
//! deterministic.
#![no_main]

use bondd_core::config::{self, Limits};
use bondd_core::lacp::LacpConfig;
use libfuzzer_sys::fuzz_target;

/// The daemon's XDP MTU limit (`bond::MAX_MTU`).
const LIMITS: Limits = Limits { max_mtu: 3500 };

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let r = config::parse(text, "fuzz.yaml", &LIMITS);
    match &r {
        Ok(cfg) => {
            for b in &cfg.bonds {
                let _ = b.bond_mac();
                let _ = b.bond_mac_for_host(b"fuzz-host");
                let _ = LacpConfig::from_bond(b);
                let _ = b.explicitly_set("mode");
            }
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            assert!(!e.0.is_empty(), "an error without problems");
            let _ = e.to_string();
        }
    }
    assert_eq!(
        r,
        config::parse(text, "fuzz.yaml", &LIMITS),
        "not deterministic"
    );
});
