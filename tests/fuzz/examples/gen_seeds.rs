//! Writes the seed corpus: `cargo run --example gen_seeds` in tests/fuzz
//! (rewrites corpus/<target>/seed-*; libFuzzer-found inputs are kept apart,
//! see README.md). LACPDUs and markers come from bondd-core's own encoders
//! and from a real 2-port handshake against the engine; the xmit frames are
//! built by hand from the header layouts.

use bondd_core::Instant;
use bondd_core::lacp::pdu::{self, Lacpdu, Marker, MarkerKind, PortInfo, PortState, SlowPdu};
use bondd_core::lacp::{Lacp, LacpConfig};
use std::fs;
use std::path::{Path, PathBuf};

/// As in fuzz_targets/lacpdu_decode.rs.
const SYSTEM: [u8; 6] = [0x02, 0xbd, 0, 0, 0, 0x01];
const PORT_MAC: [[u8; 6]; 2] = [[0x02, 0xbd, 0, 0, 1, 0], [0x02, 0xbd, 0, 0, 1, 1]];
const PARTNER: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    lacp_seeds(&root.join("lacpdu_decode"));
    xmit_seeds(&root.join("xmit_hash"));
    config_seeds(&root.join("config_parse"));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    let p: PathBuf = dir.join(format!("seed-{name}"));
    fs::write(&p, bytes).unwrap();
    println!("{} ({} bytes)", p.display(), bytes.len());
}

/// The partner's answer to our LACPDU `ours` (received on our port).
fn partner_reply(ours: &Lacpdu, port: u16, state: u8) -> Vec<u8> {
    let actor = PortInfo {
        system_priority: 32768,
        system: PARTNER,
        key: 13,
        port_priority: 32768,
        port,
        state: PortState(state),
    };
    Lacpdu::new(actor, ours.actor).to_frame([0x02, 0xaa, 0, 0, 2, port as u8])
}

/// One script record (see lacpdu_decode.rs): op, len, bytes.
fn rec(out: &mut Vec<u8>, port: u8, step: u8, action: u8, bytes: &[u8]) {
    out.push(port | (step << 2) | (action << 5));
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

fn lacp_seeds(dir: &Path) {
    // Our own first LACPDUs, from the engine.
    let mut lacp = Lacp::new(LacpConfig::new(SYSTEM), Instant(0));
    for (i, mac) in PORT_MAC.iter().enumerate() {
        lacp.add_port(i, i as u16 + 1, *mac, Some(10_000), true, true, Instant(0));
    }
    let ours: Vec<Lacpdu> = lacp
        .poll(Instant(0))
        .into_iter()
        .map(|(_, f)| match pdu::decode_frame(&f).unwrap().1 {
            SlowPdu::Lacp(p) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ours.len(), 2);
    // Partner: active, aggregatable, then in sync/collecting/distributing.
    let hello: Vec<Vec<u8>> = (0..2)
        .map(|i| partner_reply(&ours[i], i as u16 + 1, 0x05))
        .collect();
    let sync: Vec<Vec<u8>> = (0..2)
        .map(|i| partner_reply(&ours[i], i as u16 + 1, 0x3d))
        .collect();
    let marker = Marker {
        kind: MarkerKind::Information,
        requester_port: 1,
        requester_system: PARTNER,
        requester_transaction_id: 0xdead_beef,
    }
    .to_frame([0x02, 0xaa, 0, 0, 2, 1]);

    // Raw frames (the decoder alone, and the script on their bytes).
    write(dir, "lacpdu", &sync[0]);
    write(dir, "lacpdu-ours", &ours[0].to_frame(PORT_MAC[0]));
    write(dir, "marker-info", &marker);
    let mut v2 = sync[1].clone();
    v2[pdu::ETH_HEADER_LEN + 1] = 2;
    v2[pdu::ETH_HEADER_LEN + 58] = 4;
    v2[pdu::ETH_HEADER_LEN + 59] = 4;
    write(dir, "lacpdu-v2", &v2);

    // Scripts: config byte, then records.
    // Full handshake on both ports, fast rate, then a marker, then silence
    // past the 3 s timeout.
    let mut s = vec![0x01];
    for i in 0..2u8 {
        rec(&mut s, i, 1, 0, &hello[usize::from(i)]);
    }
    for i in 0..2u8 {
        rec(&mut s, i, 4, 0, &sync[usize::from(i)]);
    }
    rec(&mut s, 0, 3, 0, &marker);
    rec(&mut s, 0, 5, 4, &[]); // carrier down on port 0, 3 s later
    rec(&mut s, 1, 7, 0, &[]); // 90 s of silence: empty frame
    write(dir, "script-handshake", &s);

    // Passive, uncoupled, fallback, bandwidth select, min_links 2: the
    // partner answers on port 1 only, port 0 is removed and re-added.
    let mut s = vec![0x02 | 0x04 | 0x08 | 0x10 | 0x40];
    rec(&mut s, 1, 2, 0, &sync[1]);
    rec(&mut s, 0, 3, 6, &[]);
    rec(&mut s, 0, 4, 6, &[]);
    rec(&mut s, 1, 4, 5, &[100]);
    rec(&mut s, 1, 4, 7, &[7]);
    rec(&mut s, 0, 6, 0, &sync[0]);
    rec(&mut s, 3, 0, 0, &sync[0]); // unknown port
    write(dir, "script-passive", &s);

    // Looped-back PDU, a marker response, a malformed PDU, an OAM frame.
    let mut s = vec![0x01];
    rec(&mut s, 0, 1, 0, &ours[1].to_frame(PORT_MAC[0]));
    let mut resp = marker.clone();
    resp[pdu::ETH_HEADER_LEN + 2] = 2;
    rec(&mut s, 0, 1, 0, &resp);
    let mut bad = sync[0].clone();
    bad[pdu::ETH_HEADER_LEN + 23] = 0x13;
    rec(&mut s, 1, 1, 0, &bad);
    let mut oam = sync[0][..60].to_vec();
    oam[pdu::ETH_HEADER_LEN] = 3;
    rec(&mut s, 1, 1, 0, &oam);
    write(dir, "script-odd", &s);
}

// ---------------------------------------------------------------------------

const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

fn eth(proto: u16) -> Vec<u8> {
    [&DST[..], &SRC, &proto.to_be_bytes()].concat()
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend(len.to_be_bytes());
    h.extend([0x1c, 0x46, 0x40, 0x00, 64, proto, 0, 0]);
    h.extend([198, 18, 10, 2]);
    h.extend([198, 18, 10, 1]);
    h.extend(payload);
    h
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend((payload.len() as u16).to_be_bytes());
    h.extend([next, 64]);
    h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    h.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    h.extend(payload);
    h
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(sport.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h.extend(((8 + data.len()) as u16).to_be_bytes());
    h.extend([0, 0]);
    h.extend(data);
    h
}

fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(sport.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    h
}

fn icmp_echo(id: u16) -> Vec<u8> {
    let mut h = vec![8, 0, 0, 0];
    h.extend(id.to_be_bytes());
    h.extend([0, 1]);
    h.extend([0xab; 16]);
    h
}

fn xmit_seeds(dir: &Path) {
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "udp4",
            [eth(0x0800), ipv4(17, &udp(40000, 53, b"query"))].concat(),
        ),
        ("tcp4", [eth(0x0800), ipv4(6, &tcp(40001, 443))].concat()),
        ("icmp4", [eth(0x0800), ipv4(1, &icmp_echo(0x1234))].concat()),
        (
            "vlan-udp4",
            [
                &DST[..],
                &SRC,
                &[0x81, 0x00, 0x20, 0x0a, 0x08, 0x00],
                &ipv4(17, &udp(5000, 6000, b"x")),
            ]
            .concat(),
        ),
        (
            "qinq-tcp4",
            [
                &DST[..],
                &SRC,
                &[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00],
                &ipv4(6, &tcp(1, 2)),
            ]
            .concat(),
        ),
        ("tcp6", [eth(0x86dd), ipv6(6, &tcp(40002, 22))].concat()),
        (
            // UDP behind a hop-by-hop options header.
            "udp6-hbh",
            [
                eth(0x86dd),
                ipv6(
                    0,
                    &[&[17, 0, 1, 4, 0, 0, 0, 0][..], &udp(1, 2, b"")].concat(),
                ),
            ]
            .concat(),
        ),
        (
            "icmp6",
            [eth(0x86dd), ipv6(58, &[128, 0, 0, 0, 0, 7, 0, 1])].concat(),
        ),
        (
            // IPv4 fragment (offset > 0): no ports.
            "frag4",
            {
                let mut f = [eth(0x0800), ipv4(17, &udp(1, 2, b"frag"))].concat();
                f[14 + 6] = 0x00;
                f[14 + 7] = 0x10;
                f
            },
        ),
        (
            // GRE (version 0) carrying IPv4/UDP.
            "gre-udp4",
            [
                eth(0x0800),
                ipv4(
                    47,
                    &[&[0, 0, 0x08, 0x00][..], &ipv4(17, &udp(7, 8, b""))].concat(),
                ),
            ]
            .concat(),
        ),
        ("arp", [eth(0x0806), vec![0, 1, 8, 0, 6, 4, 0, 1]].concat()),
        ("short", DST.to_vec()),
    ];
    for (i, (name, f)) in frames.iter().enumerate() {
        // usable {0, 1, 2}, previously {0, 1, 2, 3}, pps 1, no table.
        let mut s = vec![0x07, 0, 0, 0, 0x0f, 0, 0, 0, i as u8, 1, 0, 0];
        s.extend(f);
        write(dir, name, &s);
    }
    // A slave returns (usable {0..=7} minus 5, before minus 2 and 5), pps 3,
    // and an arbitrary previous table.
    let mut s = vec![0xdf, 0, 0, 0, 0xdb, 0, 0, 0, 3, 3, 0, 1];
    s.extend((0..=255u8).map(|b| b % 8));
    s.extend(&frames[0].1);
    write(dir, "table-udp4", &s);
}

fn config_seeds(dir: &Path) {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut names: Vec<_> = fs::read_dir(&configs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    names.sort();
    for p in names {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        write(dir, &name, &fs::read(&p).unwrap());
    }
}
