//! Slow-protocol PDUs of link aggregation: the LACPDU and the Marker PDU
//! (IEEE 802.1AX, formerly 802.3 clause 43), as the Ethernet payload that
//! follows EtherType 0x8809.
//!
//! Layout (all multi-byte fields big-endian), from the kernel's
//! `struct lacpdu` / `struct bond_marker` and reference/linux-bonding.md §3.1:
//!
//! | off | len | LACPDU field                                   |
//! |-----|-----|------------------------------------------------|
//! | 0   | 1   | subtype = 1                                    |
//! | 1   | 1   | version = 1                                    |
//! | 2   | 2   | actor TLV: type 1, length 20                   |
//! | 4   | 15  | actor information ([`PortInfo`])               |
//! | 19  | 3   | reserved                                       |
//! | 22  | 2   | partner TLV: type 2, length 20                 |
//! | 24  | 15  | partner information                            |
//! | 39  | 3   | reserved                                       |
//! | 42  | 2   | collector TLV: type 3, length 16               |
//! | 44  | 2   | collector max delay                            |
//! | 46  | 12  | reserved                                       |
//! | 58  | 2   | terminator TLV: type 0, length 0               |
//! | 60  | 50  | reserved                                       |
//!
//! Marker PDU: subtype 2, version 1, TLV type 1 (information) or 2
//! (response), length 16, requester port (2), requester system (6),
//! requester transaction id (4), pad (2), terminator (0, 0), 90 reserved.
//!
//! Decoding never panics: every problem is a [`DecodeError`] reason, which
//! the engine counts per port.

use std::fmt;

/// Slow-protocols multicast destination (01:80:C2:00:00:02).
pub const SLOW_PROTOCOLS_DST: [u8; 6] = [0x01, 0x80, 0xC2, 0x00, 0x00, 0x02];
/// Slow-protocols EtherType.
pub const ETHERTYPE_SLOW_PROTOCOLS: u16 = 0x8809;
/// Destination, source, EtherType.
pub const ETH_HEADER_LEN: usize = 14;
/// Slow-protocol subtype of LACP.
pub const SUBTYPE_LACP: u8 = 0x01;
/// Slow-protocol subtype of the Marker protocol.
pub const SUBTYPE_MARKER: u8 = 0x02;
/// Bytes of a LACPDU after the EtherType.
pub const LACPDU_LEN: usize = 110;
/// Bytes of a Marker PDU after the EtherType.
pub const MARKER_PDU_LEN: usize = 110;
/// A whole LACP frame without FCS.
pub const LACP_FRAME_LEN: usize = ETH_HEADER_LEN + LACPDU_LEN;

const VERSION_1: u8 = 0x01;
const TLV_ACTOR: u8 = 0x01;
const TLV_PARTNER: u8 = 0x02;
const TLV_COLLECTOR: u8 = 0x03;
const TLV_TERMINATOR: u8 = 0x00;
const TLV_MARKER_INFO: u8 = 0x01;
const TLV_MARKER_RESPONSE: u8 = 0x02;
/// TLV header (2) + [`PortInfo`] (15) + reserved (3).
const INFO_TLV_LEN: u8 = 20;
const COLLECTOR_TLV_LEN: u8 = 16;
const MARKER_TLV_LEN: u8 = 16;
/// Encoded size of [`PortInfo`].
const PORT_INFO_LEN: usize = 15;

// LACPDU offsets.
const OFF_SUBTYPE: usize = 0;
const OFF_VERSION: usize = 1;
const OFF_ACTOR_TLV: usize = 2;
const OFF_ACTOR: usize = 4;
const OFF_PARTNER_TLV: usize = OFF_ACTOR_TLV + INFO_TLV_LEN as usize;
const OFF_PARTNER: usize = OFF_PARTNER_TLV + 2;
const OFF_COLLECTOR_TLV: usize = OFF_PARTNER_TLV + INFO_TLV_LEN as usize;
const OFF_COLLECTOR_DELAY: usize = OFF_COLLECTOR_TLV + 2;
const OFF_TERMINATOR: usize = OFF_COLLECTOR_TLV + COLLECTOR_TLV_LEN as usize;
const LACPDU_TAIL_RESERVED: usize = 50;

// The table above, checked by the compiler: a field moved by one byte
// fails the build instead of producing PDUs a switch silently drops.
const _: () = assert!(OFF_ACTOR + PORT_INFO_LEN + 3 == OFF_PARTNER_TLV);
const _: () = assert!(OFF_PARTNER_TLV == 22 && OFF_PARTNER == 24);
const _: () = assert!(OFF_PARTNER + PORT_INFO_LEN + 3 == OFF_COLLECTOR_TLV);
const _: () = assert!(OFF_COLLECTOR_TLV == 42 && OFF_COLLECTOR_DELAY == 44);
const _: () = assert!(OFF_COLLECTOR_DELAY + 2 + 12 == OFF_TERMINATOR);
const _: () = assert!(OFF_TERMINATOR == 58);
const _: () = assert!(OFF_TERMINATOR + 2 + LACPDU_TAIL_RESERVED == LACPDU_LEN);
const _: () = assert!(LACPDU_LEN == 110 && LACP_FRAME_LEN == 124);

// Marker offsets.
const OFF_M_TLV: usize = 2;
const OFF_M_PORT: usize = 4;
const OFF_M_SYSTEM: usize = 6;
const OFF_M_TRANSACTION: usize = 12;
const OFF_M_TERMINATOR: usize = 18;
const _: () = assert!(OFF_M_TLV + MARKER_TLV_LEN as usize == OFF_M_TERMINATOR);
const _: () = assert!(OFF_M_TERMINATOR + 2 + 90 == MARKER_PDU_LEN);

/// The LACP port state byte (actor_state / partner_state), bit names as in
/// IEEE 802.1AX and the kernel's `LACP_STATE_*`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PortState(pub u8);

impl PortState {
    /// 1 = active LACP, 0 = passive.
    pub const ACTIVITY: PortState = PortState(0x01);
    /// 1 = short timeout (fast rate asked of the partner), 0 = long.
    pub const TIMEOUT: PortState = PortState(0x02);
    /// 1 = aggregatable, 0 = individual.
    pub const AGGREGATION: PortState = PortState(0x04);
    /// In sync: attached to the right aggregator.
    pub const SYNCHRONIZATION: PortState = PortState(0x08);
    pub const COLLECTING: PortState = PortState(0x10);
    pub const DISTRIBUTING: PortState = PortState(0x20);
    /// The partner information is the administrative default.
    pub const DEFAULTED: PortState = PortState(0x40);
    /// The receive machine is in EXPIRED.
    pub const EXPIRED: PortState = PortState(0x80);

    const NAMES: [&'static str; 8] = [
        "Activity",
        "Timeout",
        "Aggregation",
        "Synchronization",
        "Collecting",
        "Distributing",
        "Defaulted",
        "Expired",
    ];

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, other: PortState) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: PortState) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: PortState) {
        self.0 &= !other.0;
    }

    pub fn set(&mut self, other: PortState, on: bool) {
        if on {
            self.insert(other);
        } else {
            self.remove(other);
        }
    }
}

impl std::ops::BitOr for PortState {
    type Output = PortState;
    fn bitor(self, rhs: PortState) -> PortState {
        PortState(self.0 | rhs.0)
    }
}

impl fmt::Debug for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortState({:#04x}", self.0)?;
        let mut sep = ": ";
        for (bit, name) in PortState::NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        f.write_str(")")
    }
}

/// Actor or partner information of a LACPDU (15 bytes on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PortInfo {
    pub system_priority: u16,
    pub system: [u8; 6],
    pub key: u16,
    pub port_priority: u16,
    pub port: u16,
    pub state: PortState,
}

impl PortInfo {
    fn write(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&self.system_priority.to_be_bytes());
        b[2..8].copy_from_slice(&self.system);
        b[8..10].copy_from_slice(&self.key.to_be_bytes());
        b[10..12].copy_from_slice(&self.port_priority.to_be_bytes());
        b[12..14].copy_from_slice(&self.port.to_be_bytes());
        b[14] = self.state.0;
    }

    /// `b` holds at least [`PORT_INFO_LEN`] bytes (checked by the caller).
    fn read(b: &[u8]) -> PortInfo {
        let mut system = [0u8; 6];
        system.copy_from_slice(&b[2..8]);
        PortInfo {
            system_priority: be16(b, 0),
            system,
            key: be16(b, 8),
            port_priority: be16(b, 10),
            port: be16(b, 12),
            state: PortState(b[14]),
        }
    }
}

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Why a frame or PDU was rejected. Each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// Fewer bytes than the header or PDU needs.
    Short,
    /// EtherType is not 0x8809 (not a slow-protocols frame at all).
    NotSlowProtocols,
    /// Slow-protocols EtherType but not sent to 01:80:C2:00:00:02
    /// (the kernel ignores these too).
    BadDestination,
    /// A slow protocol other than LACP or Marker (e.g. OAM, ESMC).
    BadSubtype,
    /// Version 0 (LACP) or not 1 (Marker).
    BadVersion,
    /// A TLV type that is not the one the layout requires at its offset.
    BadTlv,
    /// A TLV length that is not the one the layout requires.
    BadLength,
}

impl DecodeError {
    pub const ALL: [DecodeError; 7] = [
        DecodeError::Short,
        DecodeError::NotSlowProtocols,
        DecodeError::BadDestination,
        DecodeError::BadSubtype,
        DecodeError::BadVersion,
        DecodeError::BadTlv,
        DecodeError::BadLength,
    ];

    /// Stable label for metrics.
    pub const fn name(self) -> &'static str {
        match self {
            DecodeError::Short => "short",
            DecodeError::NotSlowProtocols => "not_slow_protocols",
            DecodeError::BadDestination => "bad_destination",
            DecodeError::BadSubtype => "bad_subtype",
            DecodeError::BadVersion => "bad_version",
            DecodeError::BadTlv => "bad_tlv",
            DecodeError::BadLength => "bad_length",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A LACPDU (subtype 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lacpdu {
    /// 1 when we send; any non-zero version is accepted on receive
    /// (802.1AX: a newer version is processed as version 1).
    pub version: u8,
    pub actor: PortInfo,
    pub partner: PortInfo,
    /// Tens of microseconds; the kernel (and we) send 0.
    pub collector_max_delay: u16,
}

impl Lacpdu {
    /// A version-1 PDU with collector max delay 0.
    pub fn new(actor: PortInfo, partner: PortInfo) -> Lacpdu {
        Lacpdu {
            version: VERSION_1,
            actor,
            partner,
            collector_max_delay: 0,
        }
    }

    pub fn encode(&self) -> [u8; LACPDU_LEN] {
        let mut b = [0u8; LACPDU_LEN];
        b[OFF_SUBTYPE] = SUBTYPE_LACP;
        b[OFF_VERSION] = self.version;
        b[OFF_ACTOR_TLV] = TLV_ACTOR;
        b[OFF_ACTOR_TLV + 1] = INFO_TLV_LEN;
        self.actor
            .write(&mut b[OFF_ACTOR..OFF_ACTOR + PORT_INFO_LEN]);
        b[OFF_PARTNER_TLV] = TLV_PARTNER;
        b[OFF_PARTNER_TLV + 1] = INFO_TLV_LEN;
        self.partner
            .write(&mut b[OFF_PARTNER..OFF_PARTNER + PORT_INFO_LEN]);
        b[OFF_COLLECTOR_TLV] = TLV_COLLECTOR;
        b[OFF_COLLECTOR_TLV + 1] = COLLECTOR_TLV_LEN;
        b[OFF_COLLECTOR_DELAY..OFF_COLLECTOR_DELAY + 2]
            .copy_from_slice(&self.collector_max_delay.to_be_bytes());
        b[OFF_TERMINATOR] = TLV_TERMINATOR;
        b[OFF_TERMINATOR + 1] = 0;
        b
    }

    /// Decodes the payload after the EtherType. Trailing bytes (padding,
    /// FCS) are ignored; reserved bytes are not checked (802.1AX: ignored
    /// on receipt).
    pub fn decode(p: &[u8]) -> Result<Lacpdu, DecodeError> {
        if p.len() < LACPDU_LEN {
            return Err(DecodeError::Short);
        }
        if p[OFF_SUBTYPE] != SUBTYPE_LACP {
            return Err(DecodeError::BadSubtype);
        }
        let version = p[OFF_VERSION];
        if version == 0 {
            return Err(DecodeError::BadVersion);
        }
        let tlv = |off: usize, ty: u8, len: u8| -> Result<(), DecodeError> {
            if p[off] != ty {
                Err(DecodeError::BadTlv)
            } else if p[off + 1] != len {
                Err(DecodeError::BadLength)
            } else {
                Ok(())
            }
        };
        tlv(OFF_ACTOR_TLV, TLV_ACTOR, INFO_TLV_LEN)?;
        tlv(OFF_PARTNER_TLV, TLV_PARTNER, INFO_TLV_LEN)?;
        tlv(OFF_COLLECTOR_TLV, TLV_COLLECTOR, COLLECTOR_TLV_LEN)?;
        // Version 2 (802.1AX-2014) may put more TLVs before the terminator.
        if version == VERSION_1 {
            tlv(OFF_TERMINATOR, TLV_TERMINATOR, 0)?;
        }
        Ok(Lacpdu {
            version,
            actor: PortInfo::read(&p[OFF_ACTOR..]),
            partner: PortInfo::read(&p[OFF_PARTNER..]),
            collector_max_delay: be16(p, OFF_COLLECTOR_DELAY),
        })
    }

    /// The whole frame: slow-protocols destination, `src`, 0x8809, PDU.
    pub fn to_frame(&self, src: [u8; 6]) -> Vec<u8> {
        build_frame(src, &self.encode())
    }
}

/// Marker information (sent by a partner to flush a conversation) or
/// marker response (our answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MarkerKind {
    Information,
    Response,
}

/// A Marker PDU (subtype 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub kind: MarkerKind,
    pub requester_port: u16,
    pub requester_system: [u8; 6],
    pub requester_transaction_id: u32,
}

impl Marker {
    pub fn encode(&self) -> [u8; MARKER_PDU_LEN] {
        let mut b = [0u8; MARKER_PDU_LEN];
        b[OFF_SUBTYPE] = SUBTYPE_MARKER;
        b[OFF_VERSION] = VERSION_1;
        b[OFF_M_TLV] = match self.kind {
            MarkerKind::Information => TLV_MARKER_INFO,
            MarkerKind::Response => TLV_MARKER_RESPONSE,
        };
        b[OFF_M_TLV + 1] = MARKER_TLV_LEN;
        b[OFF_M_PORT..OFF_M_PORT + 2].copy_from_slice(&self.requester_port.to_be_bytes());
        b[OFF_M_SYSTEM..OFF_M_SYSTEM + 6].copy_from_slice(&self.requester_system);
        b[OFF_M_TRANSACTION..OFF_M_TRANSACTION + 4]
            .copy_from_slice(&self.requester_transaction_id.to_be_bytes());
        b[OFF_M_TERMINATOR] = TLV_TERMINATOR;
        b[OFF_M_TERMINATOR + 1] = 0;
        b
    }

    /// Decodes the payload after the EtherType. An unknown marker TLV type
    /// is [`DecodeError::BadTlv`] (the kernel's `marker_unknown_rx`).
    pub fn decode(p: &[u8]) -> Result<Marker, DecodeError> {
        if p.len() < MARKER_PDU_LEN {
            return Err(DecodeError::Short);
        }
        if p[OFF_SUBTYPE] != SUBTYPE_MARKER {
            return Err(DecodeError::BadSubtype);
        }
        if p[OFF_VERSION] != VERSION_1 {
            return Err(DecodeError::BadVersion);
        }
        let kind = match p[OFF_M_TLV] {
            TLV_MARKER_INFO => MarkerKind::Information,
            TLV_MARKER_RESPONSE => MarkerKind::Response,
            _ => return Err(DecodeError::BadTlv),
        };
        if p[OFF_M_TLV + 1] != MARKER_TLV_LEN {
            return Err(DecodeError::BadLength);
        }
        if p[OFF_M_TERMINATOR] != TLV_TERMINATOR {
            return Err(DecodeError::BadTlv);
        }
        if p[OFF_M_TERMINATOR + 1] != 0 {
            return Err(DecodeError::BadLength);
        }
        let mut requester_system = [0u8; 6];
        requester_system.copy_from_slice(&p[OFF_M_SYSTEM..OFF_M_SYSTEM + 6]);
        Ok(Marker {
            kind,
            requester_port: be16(p, OFF_M_PORT),
            requester_system,
            requester_transaction_id: u32::from_be_bytes([
                p[OFF_M_TRANSACTION],
                p[OFF_M_TRANSACTION + 1],
                p[OFF_M_TRANSACTION + 2],
                p[OFF_M_TRANSACTION + 3],
            ]),
        })
    }

    /// The response to this marker: same requester fields, response TLV.
    pub fn response(&self) -> Marker {
        Marker {
            kind: MarkerKind::Response,
            ..*self
        }
    }

    pub fn to_frame(&self, src: [u8; 6]) -> Vec<u8> {
        build_frame(src, &self.encode())
    }
}

/// A decoded slow-protocols PDU this module understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPdu {
    Lacp(Lacpdu),
    Marker(Marker),
}

/// Decodes a slow-protocols payload (after the EtherType) by subtype.
pub fn decode_payload(p: &[u8]) -> Result<SlowPdu, DecodeError> {
    match p.first() {
        None => Err(DecodeError::Short),
        Some(&SUBTYPE_LACP) => Lacpdu::decode(p).map(SlowPdu::Lacp),
        Some(&SUBTYPE_MARKER) => Marker::decode(p).map(SlowPdu::Marker),
        Some(_) => Err(DecodeError::BadSubtype),
    }
}

/// Checks the Ethernet header (destination 01:80:C2:00:00:02, EtherType
/// 0x8809, no VLAN tag: slow protocols are untagged) and returns the
/// source MAC and the payload.
pub fn split_frame(frame: &[u8]) -> Result<([u8; 6], &[u8]), DecodeError> {
    if frame.len() < ETH_HEADER_LEN {
        return Err(DecodeError::Short);
    }
    if be16(frame, 12) != ETHERTYPE_SLOW_PROTOCOLS {
        return Err(DecodeError::NotSlowProtocols);
    }
    if frame[0..6] != SLOW_PROTOCOLS_DST {
        return Err(DecodeError::BadDestination);
    }
    let mut src = [0u8; 6];
    src.copy_from_slice(&frame[6..12]);
    Ok((src, &frame[ETH_HEADER_LEN..]))
}

/// Decodes a whole Ethernet frame.
pub fn decode_frame(frame: &[u8]) -> Result<([u8; 6], SlowPdu), DecodeError> {
    let (src, payload) = split_frame(frame)?;
    decode_payload(payload).map(|pdu| (src, pdu))
}

/// Ethernet header for a slow-protocols frame from `src`, then `payload`.
pub fn build_frame(src: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HEADER_LEN + payload.len());
    f.extend_from_slice(&SLOW_PROTOCOLS_DST);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE_SLOW_PROTOCOLS.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x11];

    fn sample() -> Lacpdu {
        Lacpdu::new(
            PortInfo {
                system_priority: 65535,
                system: [0x3c, 0x4a, 0x92, 0x7c, 0xef, 0xef],
                key: 9,
                port_priority: 255,
                port: 1,
                state: PortState(0x3f),
            },
            PortInfo {
                system_priority: 127,
                system: [0xa8, 0xd0, 0xe5, 0xbc, 0x77, 0xc0],
                key: 3,
                port_priority: 127,
                port: 4,
                state: PortState(0x3d),
            },
        )
    }

    /// Built by hand from the layout table, not from the encoder.
    fn golden_lacp_frame() -> Vec<u8> {
        let mut f = vec![
            0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, // dst
            0x02, 0x00, 0x00, 0x00, 0x00, 0x11, // src
            0x88, 0x09, // EtherType
            0x01, 0x01, // subtype LACP, version 1
            0x01, 0x14, // actor TLV, 20
            0xff, 0xff, // actor system priority 65535
            0x3c, 0x4a, 0x92, 0x7c, 0xef, 0xef, // actor system
            0x00, 0x09, // actor key 9
            0x00, 0xff, // actor port priority 255
            0x00, 0x01, // actor port 1
            0x3f, // actor state
            0x00, 0x00, 0x00, // reserved
            0x02, 0x14, // partner TLV, 20
            0x00, 0x7f, // partner system priority 127
            0xa8, 0xd0, 0xe5, 0xbc, 0x77, 0xc0, // partner system
            0x00, 0x03, // partner key 3
            0x00, 0x7f, // partner port priority 127
            0x00, 0x04, // partner port 4
            0x3d, // partner state
            0x00, 0x00, 0x00, // reserved
            0x03, 0x10, // collector TLV, 16
            0x00, 0x00, // collector max delay
        ];
        f.extend_from_slice(&[0u8; 12]); // reserved
        f.extend_from_slice(&[0x00, 0x00]); // terminator
        f.extend_from_slice(&[0u8; 50]); // reserved
        f
    }

    #[test]
    fn lacpdu_golden_bytes() {
        let golden = golden_lacp_frame();
        assert_eq!(golden.len(), LACP_FRAME_LEN);
        assert_eq!(sample().to_frame(SRC), golden);
        let (src, pdu) = decode_frame(&golden).unwrap();
        assert_eq!(src, SRC);
        assert_eq!(pdu, SlowPdu::Lacp(sample()));
    }

    #[test]
    fn marker_response_golden_bytes() {
        let mut info = vec![
            0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, // dst
            0x02, 0x00, 0x00, 0x00, 0x00, 0x99, // partner's src
            0x88, 0x09, // EtherType
            0x02, 0x01, // subtype marker, version 1
            0x01, 0x10, // marker information, 16
            0x00, 0x07, // requester port 7
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // requester system
            0xde, 0xad, 0xbe, 0xef, // transaction id
            0x00, 0x00, // pad
            0x00, 0x00, // terminator
        ];
        info.extend_from_slice(&[0u8; 90]);
        assert_eq!(info.len(), ETH_HEADER_LEN + MARKER_PDU_LEN);
        let (_, pdu) = decode_frame(&info).unwrap();
        let SlowPdu::Marker(m) = pdu else {
            panic!("not a marker: {pdu:?}")
        };
        assert_eq!(m.kind, MarkerKind::Information);
        assert_eq!(m.requester_port, 7);
        assert_eq!(m.requester_transaction_id, 0xdead_beef);

        let mut golden = info.clone();
        golden[6..12].copy_from_slice(&SRC);
        golden[ETH_HEADER_LEN + 2] = 0x02; // response TLV
        assert_eq!(m.response().to_frame(SRC), golden);
    }

    #[test]
    fn state_bits_and_debug() {
        let s = PortState::ACTIVITY | PortState::AGGREGATION | PortState::DEFAULTED;
        assert_eq!(s.bits(), 69);
        assert_eq!(
            format!("{s:?}"),
            "PortState(0x45: Activity|Aggregation|Defaulted)"
        );
        let mut t = s;
        t.set(PortState::DEFAULTED, false);
        t.insert(PortState::TIMEOUT);
        assert_eq!(t.bits(), 0x07);
        assert!(t.contains(PortState::ACTIVITY | PortState::TIMEOUT));
        assert!(!t.contains(PortState::EXPIRED));
    }

    #[test]
    fn every_truncation_is_short() {
        let f = golden_lacp_frame();
        for n in 0..f.len() {
            assert_eq!(decode_frame(&f[..n]), Err(DecodeError::Short), "len {n}");
        }
        // Padding/FCS after the PDU is fine.
        let mut long = f.clone();
        long.extend_from_slice(&[0xaa; 4]);
        assert!(decode_frame(&long).is_ok());
    }

    #[test]
    fn each_field_check_has_its_reason() {
        let base = golden_lacp_frame();
        let with = |off: usize, v: u8| {
            let mut f = base.clone();
            f[ETH_HEADER_LEN + off] = v;
            decode_frame(&f)
        };
        assert_eq!(with(0, 3), Err(DecodeError::BadSubtype));
        assert_eq!(with(1, 0), Err(DecodeError::BadVersion));
        assert_eq!(with(2, 9), Err(DecodeError::BadTlv));
        assert_eq!(with(3, 0x13), Err(DecodeError::BadLength));
        assert_eq!(with(22, 1), Err(DecodeError::BadTlv));
        assert_eq!(with(23, 0x15), Err(DecodeError::BadLength));
        assert_eq!(with(42, 0), Err(DecodeError::BadTlv));
        assert_eq!(with(43, 0x14), Err(DecodeError::BadLength));
        assert_eq!(with(58, 1), Err(DecodeError::BadTlv));
        assert_eq!(with(59, 2), Err(DecodeError::BadLength));
        // Version 2 may carry more TLVs where v1 has the terminator.
        let mut v2 = base.clone();
        v2[ETH_HEADER_LEN + 1] = 2;
        v2[ETH_HEADER_LEN + 58] = 4;
        v2[ETH_HEADER_LEN + 59] = 4;
        assert!(decode_frame(&v2).is_ok());

        let mut f = base.clone();
        f[12] = 0x08;
        f[13] = 0x00;
        assert_eq!(decode_frame(&f), Err(DecodeError::NotSlowProtocols));
        let mut f = base.clone();
        f[5] = 0x03;
        assert_eq!(decode_frame(&f), Err(DecodeError::BadDestination));
        assert_eq!(decode_payload(&[]), Err(DecodeError::Short));
    }

    #[test]
    fn marker_checks() {
        let m = Marker {
            kind: MarkerKind::Information,
            requester_port: 1,
            requester_system: [2, 0, 0, 0, 0, 1],
            requester_transaction_id: 5,
        };
        let b = m.encode();
        assert_eq!(Marker::decode(&b), Ok(m));
        for n in 0..b.len() {
            assert_eq!(decode_payload(&b[..n]), Err(DecodeError::Short));
        }
        let with = |off: usize, v: u8| {
            let mut x = b;
            x[off] = v;
            Marker::decode(&x)
        };
        assert_eq!(with(1, 2), Err(DecodeError::BadVersion));
        assert_eq!(with(2, 3), Err(DecodeError::BadTlv));
        assert_eq!(with(3, 0x16), Err(DecodeError::BadLength));
        assert_eq!(with(18, 1), Err(DecodeError::BadTlv));
        assert_eq!(with(19, 1), Err(DecodeError::BadLength));
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift: deterministic, no dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = golden_lacp_frame();
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x as usize) % buf.len();
            buf[pos] = (x >> 32) as u8;
            let len = if i % 3 == 0 {
                (x >> 40) as usize % (buf.len() + 1)
            } else {
                buf.len()
            };
            let _ = decode_frame(&buf[..len]);
            if i % 97 == 0 {
                buf = golden_lacp_frame();
            }
        }
    }
}
