//! Builds the XDP program from `ebpf/bondd.bpf.c` with clang, so no compiled
//! object is ever committed.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let src = manifest.join("../../ebpf/bondd.bpf.c");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bondd.bpf.o");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=CLANG");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => panic!("unsupported target arch {other} for the XDP build"),
    };
    let candidates: Vec<String> = match env::var("CLANG") {
        Ok(c) => vec![c],
        Err(_) => [
            "clang-19", "clang", "clang-18", "clang-17", "clang-16", "clang-15",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    for clang in &candidates {
        let status = Command::new(clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I/usr/include/{multiarch}"))
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => return,
            Ok(s) => panic!("{clang} failed to build {} ({s})", src.display()),
            Err(_) => continue,
        }
    }
    panic!(
        "no clang found to build the XDP program (tried {candidates:?}); install clang-19 and libbpf-dev (see .ci/install)"
    );
}
