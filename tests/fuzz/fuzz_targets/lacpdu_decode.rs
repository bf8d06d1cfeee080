//! LACP receive path on arbitrary bytes.
//!
//! 1. The whole input as one Ethernet frame through `pdu::decode_frame`:
//!    never panics, and whatever decodes re-encodes to the same PDU.
//! 2. The input as a script driving a 2-port `Lacp` engine (frames,
//!    carrier/speed/priority changes, port removal, time steps), polled after
//!    every step: never panics, every frame it sends decodes, `rx_frame`'s
//!    outcome agrees with the decoder, and after `poll(now)` nothing is due
//!    at or before `now` (the daemon would spin).
//!
//! Script layout (examples/gen_seeds.rs writes seeds in it):
//! byte 0 = engine config: bit0 lacp_rate fast, bit1 passive, bit2
//! coupled_control off, bit3 fallback_ab, bits4-5 ad_select, bit6
//! min_links 2, bit7 port 1 starts without carrier. Then records
//! `[op][len][len bytes]`: op bits0-1 port (0, 1, 0, 7 = unknown port),
//! bits2-4 time step before the action (0, 1 ms, 50 ms, 100 ms, 1 s, 3 s,
//! 30 s, 90 s), bits5-7 action: 0-3 rx_frame(the `len` bytes), 4 carrier
//! toggle, 5 set_speed(len * 100 Mb/s, duplex = len odd), 6 remove and
//! re-add the port, 7 set_port_priority(len). Actions 4-7 take no bytes.
#![no_main]

use bondd_core::Instant;
use bondd_core::config::{AdSelect, LacpRate};
use bondd_core::lacp::pdu::{self, DecodeError, Lacpdu, Marker, MarkerKind, SlowPdu};
use bondd_core::lacp::{Lacp, LacpConfig, RxOutcome};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

const SYSTEM: [u8; 6] = [0x02, 0xbd, 0, 0, 0, 0x01];
const PORT_MAC: [[u8; 6]; 2] = [[0x02, 0xbd, 0, 0, 1, 0], [0x02, 0xbd, 0, 0, 1, 1]];
const PORTS: [usize; 4] = [0, 1, 0, 7];
const STEPS_MS: [u64; 8] = [0, 1, 50, 100, 1_000, 3_000, 30_000, 90_000];

fuzz_target!(|data: &[u8]| {
    let _ = check_decode(data);
    run_script(data);
});

/// The decoder alone: never panics; decoded PDUs round-trip.
fn check_decode(frame: &[u8]) -> Result<([u8; 6], SlowPdu), DecodeError> {
    let r = pdu::decode_frame(frame);
    match &r {
        Ok((src, SlowPdu::Lacp(p))) => {
            assert!(frame.len() >= pdu::LACP_FRAME_LEN);
            assert_eq!(Lacpdu::decode(&p.encode()), Ok(*p));
            let again = pdu::decode_frame(&p.to_frame(*src));
            assert_eq!(again, Ok((*src, SlowPdu::Lacp(*p))));
        }
        Ok((src, SlowPdu::Marker(m))) => {
            assert!(frame.len() >= pdu::ETH_HEADER_LEN + pdu::MARKER_PDU_LEN);
            assert_eq!(Marker::decode(&m.encode()), Ok(*m));
            let again = pdu::decode_frame(&m.to_frame(*src));
            assert_eq!(again, Ok((*src, SlowPdu::Marker(*m))));
        }
        Err(_) => {}
    }
    r
}

fn run_script(data: &[u8]) {
    let Some((&c, mut rest)) = data.split_first() else {
        return;
    };
    let mut cfg = LacpConfig::new(SYSTEM);
    cfg.rate = if c & 1 != 0 {
        LacpRate::Fast
    } else {
        LacpRate::Slow
    };
    cfg.active = c & 2 == 0;
    cfg.coupled_control = c & 4 == 0;
    cfg.fallback_ab = c & 8 != 0;
    cfg.ad_select = AdSelect::ALL[usize::from((c >> 4) & 3) % AdSelect::ALL.len()];
    cfg.min_links = if c & 0x40 != 0 { 2 } else { 0 };

    let mut now = Instant(0);
    let mut lacp = Lacp::new(cfg, now);
    let mut carrier = [true, c & 0x80 == 0];
    let mut present = [true, true];
    for (i, mac) in PORT_MAC.iter().enumerate() {
        lacp.add_port(i, i as u16 + 1, *mac, Some(10_000), true, carrier[i], now);
    }
    check_poll(&mut lacp, now, &present);

    while let [op, len, tail @ ..] = rest {
        let port = PORTS[usize::from(op & 3)];
        now = now + Duration::from_millis(STEPS_MS[usize::from((op >> 2) & 7)]);
        let action = op >> 5;
        if action < 4 {
            let n = usize::from(*len).min(tail.len());
            let (frame, next) = tail.split_at(n);
            rest = next;
            let decoded = check_decode(frame);
            let out = lacp.rx_frame(port, frame, now);
            check_outcome(port, &present, frame, decoded, out);
        } else {
            rest = tail;
            let Some(&known) = present.get(port) else {
                continue;
            };
            match action {
                4 if known => {
                    carrier[port] = !carrier[port];
                    lacp.carrier(port, carrier[port], now);
                }
                5 => lacp.set_speed(port, Some(u32::from(*len) * 100), len & 1 == 1, now),
                6 => {
                    if known {
                        if let Some(f) = lacp.remove_port(port, now) {
                            check_sent(port, &f, MarkerKind::Response);
                        }
                        present[port] = false;
                    } else {
                        let mac = PORT_MAC[port];
                        lacp.add_port(
                            port,
                            port as u16 + 1,
                            mac,
                            Some(1_000),
                            true,
                            carrier[port],
                            now,
                        );
                        present[port] = true;
                    }
                }
                7 => lacp.set_port_priority(port, u16::from(*len), now),
                _ => {}
            }
        }
        check_poll(&mut lacp, now, &present);
    }
}

/// `rx_frame` classifies a frame as the decoder does.
fn check_outcome(
    port: usize,
    present: &[bool; 2],
    frame: &[u8],
    decoded: Result<([u8; 6], SlowPdu), DecodeError>,
    out: RxOutcome,
) {
    if !present.get(port).copied().unwrap_or(false) {
        assert_eq!(out, RxOutcome::UnknownPort);
        return;
    }
    let want = match decoded {
        Ok((_, SlowPdu::Lacp(p))) if p.actor.system == SYSTEM => RxOutcome::Loopback,
        Ok((_, SlowPdu::Lacp(_))) => RxOutcome::Lacpdu,
        Ok((_, SlowPdu::Marker(m))) => match m.kind {
            MarkerKind::Information => RxOutcome::MarkerInformation,
            MarkerKind::Response => RxOutcome::MarkerResponse,
        },
        Err(DecodeError::NotSlowProtocols | DecodeError::BadDestination) => RxOutcome::NotForLacp,
        Err(DecodeError::BadSubtype) => RxOutcome::UnknownSubtype,
        Err(DecodeError::BadTlv)
            if frame.get(pdu::ETH_HEADER_LEN) == Some(&pdu::SUBTYPE_MARKER) =>
        {
            RxOutcome::MarkerUnknown
        }
        Err(e) => RxOutcome::Illegal(e),
    };
    assert_eq!(out, want);
}

/// A frame the engine sends: a LACPDU from our system, or a marker
/// response, from the port's MAC.
fn check_sent(port: usize, f: &[u8], marker: MarkerKind) {
    let (src, p) = pdu::decode_frame(f).expect("the engine sent a frame it cannot decode");
    assert_eq!(src, PORT_MAC[port]);
    match p {
        SlowPdu::Lacp(p) => {
            assert_eq!(f.len(), pdu::LACP_FRAME_LEN);
            assert_eq!(p.actor.system, SYSTEM);
            assert_ne!(p.actor.port, 0);
        }
        SlowPdu::Marker(m) => assert_eq!(m.kind, marker),
    }
}

fn check_poll(lacp: &mut Lacp, now: Instant, present: &[bool; 2]) {
    for (port, f) in lacp.poll(now) {
        assert!(
            present.get(port).copied().unwrap_or(false),
            "sent on port {port}"
        );
        check_sent(port, &f, MarkerKind::Response);
    }
    if let Some(d) = lacp.next_deadline() {
        assert!(
            d > now,
            "after poll({now:?}) next_deadline is {d:?}: the daemon would spin"
        );
    }
    let dist = lacp.distributing_ports();
    for &p in &dist {
        assert!(present[p] && lacp.distributing(p));
    }
    for p in 0..3 {
        assert_eq!(dist.contains(&p), lacp.distributing(p));
    }
    let st = lacp.status();
    assert_eq!(st.ports.len(), present.iter().filter(|&&x| x).count());
    assert_eq!(st.bond_carrier, lacp.bond_carrier());
}
