//! Transmit selection for the non-LACP modes (and the 802.3ad transmit rule,
//! which is balance-xor's over the distributing ports), plus the per-mode
//! receive rule.
//!
//! The control plane builds an immutable [`TxPlan`] whenever the set of
//! usable slaves (or the active slave) changes and publishes it; a worker
//! calls [`TxPlan::select`] once per frame with its own [`RrState`]. Nothing
//! in the per-frame path allocates, locks or panics.
//!
//! # Hash
//!
//! [`hash`] reproduces the kernel's `bond_xmit_hash` (bond_main.c,
//! "Hashing Policies") bit for bit on the host it runs on: the kernel XORs
//! raw network-order words (`__be32` addresses, the port pair) as native
//! integers, so results differ between little- and big-endian hosts, exactly
//! as the kernel's do.
//!
//! The frame is what the host stack handed to the bond, from the destination
//! MAC on. The kernel's bond usually sees VLAN traffic with the tag
//! *offloaded* (bond devices advertise VLAN TX acceleration, so the
//! outermost tag travels in `skb->vlan_tci`, not in the bytes). bondd gets
//! bytes, so the outermost 802.1Q/802.1ad tag in the frame is treated as that
//! offloaded tag: it is skipped, `h_proto` is the ethertype behind it, and
//! vlan+srcmac uses its TCI. A second (inner) tag stays in the payload as in
//! the kernel, so QinQ frames fall back to layer2 under layer2+3/layer3+4
//! (the kernel does the same) while the encap policies dissect through it.
//! The daemon must therefore keep VLAN TX offload off on the logical
//! interface, or the tag is not in the frame at all.
//!
//! Differences from the kernel, all documented here:
//! - encap3+4: the kernel returns `skb->hash` when the skb already carries an
//!   L4 hash (`skb->l4_hash`, set by sockets and some tunnels). That value is
//!   random per socket and cannot be known from bytes; bondd always computes
//!   the dissector hash.
//! - encap2+3/encap3+4 follow the kernel's flow dissector (`flow_keys_bonding`
//!   keys, flags 0): through inline VLAN tags, PPPoE sessions, HSR/PRP, IPv6
//!   extension headers, IP-in-IP, IPv6-in-IP, MPLS-in-IP, GRE (version 0,
//!   including transparent Ethernet bridging) and PPTP (GRE version 1).
//!   UDP tunnels such as VXLAN or Geneve are *not* entered, because the
//!   kernel's dissector does not enter them either: it hashes the outer
//!   headers, which is fine in practice since VXLAN/Geneve senders put a hash
//!   of the inner flow into the outer UDP source port. Not dissected (they
//!   fall back to layer2 instead of the kernel's result): TIPC (its key is
//!   random for keepalives) and batman-adv.
//!
//! # Reduction
//!
//! [`Reduce::Modulo`] is the kernel's `usable[hash % count]`: when a slave
//! leaves or joins, most flows on the *surviving* slaves move too.
//! [`Reduce::Stable`] (bondd-only, config `xmit_hash_table: stable`) maps the
//! low 8 bits of the hash through a 256-bucket table: a failed slave's
//! buckets are spread over the survivors and nothing else moves; a returning
//! slave takes back at most its share, preferring the buckets it had, and
//! nothing else moves. See [`rebuild_buckets`].
//!
//! # Round robin
//!
//! balance-rr follows the kernel's `bond_rr_gen_slave_id`: a pre-incremented
//! counter (so the first frame goes to position 1), divided by
//! `packets_per_slave` when that is above 1, or a random number when it is 0;
//! then `% usable count`. Two deliberate differences: the kernel reduces
//! modulo *all* slaves and then walks forward to the next slave that can
//! transmit, which doubles the share of the slave after a down one; bondd
//! reduces modulo the usable slaves, which spreads evenly. And the kernel
//! always sends IGMP on the current active slave in balance-rr; bondd has
//! no current slave in balance-rr and treats IGMP like any other frame.

use std::fmt;

use crate::config::{Mode, XmitHashPolicy};

pub use crate::config::XmitHashTable;

/// Most slaves a bond can have in bondd (slave indices are `0..MAX_SLAVES`,
/// so a `u32` holds a set of them).
pub const MAX_SLAVES: usize = 32;

/// Number of buckets of the [`Reduce::Stable`] table.
pub const BUCKETS: usize = 256;

/// How a hash picks among usable slaves: the config's `xmit_hash_table`.
/// `Modulo` is the kernel's `hash % n`, `Stable` the 256-bucket table.
pub type Reduce = XmitHashTable;

/// [`rx_mask`] value meaning "every slave".
pub const ALL_SLAVES: u32 = u32::MAX;

// ---------------------------------------------------------------------------
// Frame access. Every read is bounds-checked; a read past the end is `None`.

const ETH_HLEN: usize = 14;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_RARP: u16 = 0x8035;
const ETH_P_MPLS_UC: u16 = 0x8847;
const ETH_P_MPLS_MC: u16 = 0x8848;
const ETH_P_PPP_SES: u16 = 0x8864;
const ETH_P_FCOE: u16 = 0x8906;
const ETH_P_1588: u16 = 0x88f7;
const ETH_P_HSR: u16 = 0x892f;
const ETH_P_PRP: u16 = 0x88fb;
const ETH_P_TEB: u16 = 0x6558;
const GRE_PROTO_PPP: u16 = 0x880b;

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_DCCP: u8 = 33;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_ESP: u8 = 50;
const IPPROTO_AH: u8 = 51;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_SCTP: u8 = 132;
const IPPROTO_UDPLITE: u8 = 136;
const IPPROTO_MPLS: u8 = 137;

#[inline(always)]
fn be16_at(f: &[u8], off: usize) -> Option<u16> {
    let b = f.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// A network-order 32-bit field read the way the kernel uses `__be32` in
/// arithmetic: as a native integer.
#[inline(always)]
fn raw32_at(f: &[u8], off: usize) -> Option<u32> {
    let b = f.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// `ipv6_addr_hash`: XOR of the four native 32-bit words (the 64-bit
/// variant of the kernel gives the same value).
#[inline(always)]
fn v6_fold(a: &[u8]) -> u32 {
    let w = |i: usize| u32::from_ne_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    w(0) ^ w(4) ^ w(8) ^ w(12)
}

/// The Ethernet header as the kernel's bond sees it.
#[derive(Clone, Copy)]
struct L2 {
    /// `skb->protocol`: the ethertype behind the (offloaded) outer tag.
    proto: u16,
    /// Offset of the network header in the frame.
    nhoff: usize,
    /// TCI of the offloaded outer tag, if the frame had one.
    tci: Option<u16>,
}

#[inline(always)]
fn l2(f: &[u8]) -> Option<L2> {
    let proto = be16_at(f, 12)?;
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        if let (Some(tci), Some(inner)) = (be16_at(f, 14), be16_at(f, 16)) {
            return Some(L2 {
                proto: inner,
                nhoff: ETH_HLEN + 4,
                tci: Some(tci),
            });
        }
    }
    Some(L2 {
        proto,
        nhoff: ETH_HLEN,
        tci: None,
    })
}

/// `bond_eth_hash`: last byte of each MAC and the ethertype.
#[inline(always)]
fn eth_hash(f: &[u8], l2: &L2) -> u32 {
    u32::from(f[5] ^ f[11]) ^ u32::from(l2.proto)
}

/// The parts of the kernel's `struct flow_keys` the bond hash reads.
#[derive(Clone, Copy, Default)]
struct Keys {
    /// `flow_get_u32_src/dst`: IPv4 address or folded IPv6 address, native.
    src: u32,
    dst: u32,
    /// `ports.ports`: the 32-bit (src, dst) port word as in the header.
    ports: u32,
    icmp_type: u8,
    icmp_code: u8,
    /// 0 = no identifier; otherwise the echo id (0 stored as 1).
    icmp_id: u16,
}

impl Keys {
    /// `memcpy(&hash, &flow.icmp, 4)`: type, code, then the host-order id.
    #[inline(always)]
    fn icmp_word(&self) -> u32 {
        let id = self.icmp_id.to_ne_bytes();
        u32::from_ne_bytes([self.icmp_type, self.icmp_code, id[0], id[1]])
    }
}

/// `proto_ports_offset` + `__skb_flow_get_ports`.
#[inline(always)]
fn ports_at(f: &[u8], thoff: usize, ip_proto: u8) -> u32 {
    let poff = match ip_proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_DCCP | IPPROTO_ESP | IPPROTO_SCTP | IPPROTO_UDPLITE => {
            0
        }
        IPPROTO_AH => 4,
        _ => return 0,
    };
    raw32_at(f, thoff + poff).unwrap_or(0)
}

/// `skb_flow_get_icmp_tci`: needs the whole 8-byte ICMP header.
#[inline(always)]
fn icmp_tci(f: &[u8], thoff: usize, k: &mut Keys) {
    let Some(h) = f.get(thoff..thoff + 8) else {
        return;
    };
    k.icmp_type = h[0];
    k.icmp_code = h[1];
    // icmp_has_id: echo, echo reply, timestamp(+reply), ICMPv6 echo(+reply);
    // the kernel checks the same list for both protocols.
    k.icmp_id = if matches!(h[0], 0 | 8 | 13 | 14 | 128 | 129) {
        match u16::from_be_bytes([h[4], h[5]]) {
            0 => 1,
            id => id,
        }
    } else {
        0
    };
}

/// `bond_flow_ip`: one IP header at `*nhoff`, then the ports if `l34`.
/// `ip_proto` is -1 until a non-fragment header sets it (and keeps its value
/// otherwise, as in the kernel).
#[inline(always)]
fn flow_ip(
    f: &[u8],
    proto: u16,
    nhoff: &mut usize,
    ip_proto: &mut i32,
    l34: bool,
    k: &mut Keys,
) -> bool {
    if proto == ETH_P_IP {
        let Some(h) = f.get(*nhoff..*nhoff + 20) else {
            return false;
        };
        k.src = u32::from_ne_bytes([h[12], h[13], h[14], h[15]]);
        k.dst = u32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
        *nhoff += usize::from(h[0] & 0x0f) << 2;
        // ip_is_fragment: MF set or a fragment offset.
        if u16::from_be_bytes([h[6], h[7]]) & 0x3fff == 0 {
            *ip_proto = i32::from(h[9]);
        }
    } else if proto == ETH_P_IPV6 {
        let Some(h) = f.get(*nhoff..*nhoff + 40) else {
            return false;
        };
        k.src = v6_fold(&h[8..24]);
        k.dst = v6_fold(&h[24..40]);
        *nhoff += 40;
        *ip_proto = i32::from(h[6]);
    } else {
        return false;
    }
    if l34 && *ip_proto >= 0 {
        k.ports = ports_at(f, *nhoff, *ip_proto as u8);
    }
    true
}

/// `bond_flow_dissect` for layer2+3 and layer3+4; `None` = use layer2.
#[inline(always)]
fn dissect_plain(f: &[u8], l2: &L2, l34: bool) -> Option<Keys> {
    let mut k = Keys::default();
    let mut nhoff = l2.nhoff;
    let mut ip_proto = -1;
    if !flow_ip(f, l2.proto, &mut nhoff, &mut ip_proto, l34, &mut k) {
        return None;
    }
    // ICMP errors carry the header of the packet that caused them: hash that
    // so the error follows its flow. Checked on ip_proto alone, as the kernel.
    let is_err = match ip_proto {
        1 => {
            icmp_tci(f, nhoff, &mut k);
            matches!(k.icmp_type, 3 | 4 | 5 | 11 | 12)
        }
        58 => {
            icmp_tci(f, nhoff, &mut k);
            matches!(k.icmp_type, 1..=4)
        }
        _ => false,
    };
    if is_err {
        nhoff += 8;
        if !flow_ip(f, l2.proto, &mut nhoff, &mut ip_proto, l34, &mut k) {
            return None;
        }
    }
    Some(k)
}

enum Step {
    Good,
    Bad,
    Continue,
    ProtoAgain,
    IpProtoAgain,
}

/// `MAX_FLOW_DISSECT_HDRS`.
const MAX_DISSECT_HDRS: u32 = 15;

/// `__skb_flow_dissect` with the bonding keys and no flags, for encap2+3 and
/// encap3+4; `None` = use layer2. Kept out of line so the common policies'
/// code stays small.
#[inline(never)]
fn dissect_encap(f: &[u8], l2: &L2) -> Option<Keys> {
    let mut k = Keys::default();
    let mut proto = l2.proto;
    let mut nhoff = l2.nhoff;
    let mut ip_proto: u8 = 0;
    let mut fragment = false;
    let mut num_hdrs = 0u32;
    let mut vlan_seen = false;
    'proto: loop {
        let step = match proto {
            ETH_P_IP => {
                let h = f.get(nhoff..nhoff + 20)?;
                let ihl = usize::from(h[0] & 0x0f);
                if ihl < 5 {
                    return None;
                }
                nhoff += ihl * 4;
                ip_proto = h[9];
                k.src = u32::from_ne_bytes([h[12], h[13], h[14], h[15]]);
                k.dst = u32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
                if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
                    // Any fragment (first ones too: no PARSE_1ST_FRAG flag).
                    return Some(k);
                }
                Step::Continue
            }
            ETH_P_IPV6 => {
                let h = f.get(nhoff..nhoff + 40)?;
                ip_proto = h[6];
                nhoff += 40;
                k.src = v6_fold(&h[8..24]);
                k.dst = v6_fold(&h[24..40]);
                Step::Continue
            }
            ETH_P_8021Q | ETH_P_8021AD => {
                if !vlan_seen && l2.tci.is_some() {
                    // The kernel takes skb->protocol for the first tag when a
                    // tag was offloaded, without moving in the data.
                    proto = l2.proto;
                } else {
                    proto = be16_at(f, nhoff + 2)?;
                    nhoff += 4;
                }
                vlan_seen = true;
                Step::ProtoAgain
            }
            ETH_P_PPP_SES => {
                let h = f.get(nhoff..nhoff + 8)?;
                // ver 1, type 1, code 0.
                if h[0] != 0x11 || h[1] != 0 {
                    return None;
                }
                let ppp = u16::from_be_bytes([h[6], h[7]]);
                nhoff += 8;
                match ppp {
                    0x0021 => {
                        proto = ETH_P_IP;
                        Step::ProtoAgain
                    }
                    0x0057 => {
                        proto = ETH_P_IPV6;
                        Step::ProtoAgain
                    }
                    0x0281 => {
                        proto = ETH_P_MPLS_UC;
                        Step::ProtoAgain
                    }
                    0x0283 => {
                        proto = ETH_P_MPLS_MC;
                        Step::ProtoAgain
                    }
                    // ppp_proto_is_valid
                    p if p & 0x0100 == 0 && p & 1 == 1 => Step::Good,
                    _ => Step::Bad,
                }
            }
            // No MPLS keys in the bonding dissector: stop, keys so far.
            ETH_P_MPLS_UC | ETH_P_MPLS_MC => Step::Good,
            // FCOE_HEADER_LEN = 14 + 24.
            ETH_P_FCOE if f.len().saturating_sub(nhoff) < 38 => Step::Bad,
            ETH_P_FCOE => Step::Good,
            // No ARP key: the dissector stops here, successfully.
            ETH_P_ARP | ETH_P_RARP => Step::Good,
            // struct ptp_header is 34 bytes.
            ETH_P_1588 if nhoff + 34 > f.len() => Step::Bad,
            ETH_P_1588 => Step::Good,
            ETH_P_HSR | ETH_P_PRP => {
                proto = be16_at(f, nhoff + 4)?;
                nhoff += 6;
                Step::ProtoAgain
            }
            _ => Step::Bad,
        };
        match step {
            Step::Good => return Some(k),
            Step::Bad => return None,
            Step::ProtoAgain => {
                num_hdrs += 1;
                if num_hdrs > MAX_DISSECT_HDRS {
                    return Some(k);
                }
                continue 'proto;
            }
            Step::Continue | Step::IpProtoAgain => {}
        }
        loop {
            let step = match ip_proto {
                IPPROTO_GRE => gre(f, &mut proto, &mut nhoff),
                IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS if proto == ETH_P_IPV6 => {
                    let o = f.get(nhoff..nhoff + 2)?;
                    ip_proto = o[0];
                    nhoff += (usize::from(o[1]) + 1) << 3;
                    Step::IpProtoAgain
                }
                IPPROTO_FRAGMENT if proto == ETH_P_IPV6 => {
                    let h = f.get(nhoff..nhoff + 8)?;
                    fragment = true;
                    nhoff += 8;
                    ip_proto = h[0];
                    Step::Good
                }
                IPPROTO_IPIP => {
                    proto = ETH_P_IP;
                    Step::ProtoAgain
                }
                IPPROTO_IPV6 => {
                    proto = ETH_P_IPV6;
                    Step::ProtoAgain
                }
                IPPROTO_MPLS => {
                    proto = ETH_P_MPLS_UC;
                    Step::ProtoAgain
                }
                IPPROTO_ICMP | IPPROTO_ICMPV6 => {
                    icmp_tci(f, nhoff, &mut k);
                    Step::Continue
                }
                _ => Step::Continue,
            };
            if !fragment {
                k.ports = ports_at(f, nhoff, ip_proto);
            }
            match step {
                Step::ProtoAgain => {
                    num_hdrs += 1;
                    if num_hdrs > MAX_DISSECT_HDRS {
                        return Some(k);
                    }
                    continue 'proto;
                }
                Step::IpProtoAgain => {
                    num_hdrs += 1;
                    if num_hdrs > MAX_DISSECT_HDRS {
                        return Some(k);
                    }
                }
                Step::Good | Step::Continue => return Some(k),
                Step::Bad => return None,
            }
        }
    }
}

/// `__skb_flow_dissect_gre`.
fn gre(f: &[u8], proto: &mut u16, nhoff: &mut usize) -> Step {
    let (Some(flags), Some(gproto)) = (be16_at(f, *nhoff), be16_at(f, *nhoff + 2)) else {
        return Step::Bad;
    };
    const CSUM: u16 = 0x8000;
    const ROUTING: u16 = 0x4000;
    const KEY: u16 = 0x2000;
    const SEQ: u16 = 0x1000;
    const ACK: u16 = 0x0080;
    if flags & ROUTING != 0 {
        return Step::Good;
    }
    let ver = flags & 7;
    if ver > 1 {
        return Step::Good;
    }
    *proto = gproto;
    if ver == 1 && !(gproto == GRE_PROTO_PPP && flags & KEY != 0) {
        return Step::Good;
    }
    let mut off = 4;
    if flags & CSUM != 0 {
        off += 4;
    }
    if flags & KEY != 0 {
        if *nhoff + off + 4 > f.len() {
            return Step::Bad;
        }
        off += 4;
    }
    if flags & SEQ != 0 {
        off += 4;
    }
    if ver == 0 {
        if gproto == ETH_P_TEB {
            let Some(inner) = be16_at(f, *nhoff + off + 12) else {
                return Step::Bad;
            };
            *proto = inner;
            off += ETH_HLEN;
        }
    } else {
        if flags & ACK != 0 {
            off += 4;
        }
        let Some(ppp) = be16_at(f, *nhoff + off + 2) else {
            return Step::Bad;
        };
        match ppp {
            0x0021 => *proto = ETH_P_IP,
            0x0057 => *proto = ETH_P_IPV6,
            _ => {}
        }
        off += 4;
    }
    *nhoff += off;
    Step::ProtoAgain
}

/// `bond_ip_hash`.
#[inline(always)]
fn ip_hash(mut h: u32, k: &Keys, l4: bool) -> u32 {
    h ^= k.dst ^ k.src;
    h ^= h >> 16;
    h ^= h >> 8;
    // "discard lowest hash bit to deal with the common even ports pattern"
    if l4 { h >> 1 } else { h }
}

/// Kernel-exact `bond_xmit_hash` for `policy` over an Ethernet frame (bytes
/// from the destination MAC on); see the module docs for VLAN handling and
/// the few documented differences. Never reads past `frame`; frames shorter
/// than an Ethernet header hash to 0, as in the kernel.
#[inline]
pub fn hash(policy: XmitHashPolicy, frame: &[u8]) -> u32 {
    let Some(l2) = l2(frame) else {
        return 0;
    };
    match policy {
        XmitHashPolicy::Layer2 => eth_hash(frame, &l2),
        XmitHashPolicy::VlanSrcMac => {
            // bond_vlan_srcmac_hash: the full TCI (priority bits included).
            let vendor = u32::from_be_bytes([0, frame[6], frame[7], frame[8]]);
            let dev = u32::from_be_bytes([0, frame[9], frame[10], frame[11]]);
            u32::from(l2.tci.unwrap_or(0)) ^ vendor ^ dev
        }
        XmitHashPolicy::Layer23 | XmitHashPolicy::Layer34 => {
            let l34 = policy == XmitHashPolicy::Layer34;
            let Some(k) = dissect_plain(frame, &l2, l34) else {
                return eth_hash(frame, &l2);
            };
            finish(policy, frame, &l2, &k)
        }
        XmitHashPolicy::Encap23 | XmitHashPolicy::Encap34 => {
            let Some(k) = dissect_encap(frame, &l2) else {
                return eth_hash(frame, &l2);
            };
            finish(policy, frame, &l2, &k)
        }
    }
}

#[inline(always)]
fn finish(policy: XmitHashPolicy, frame: &[u8], l2: &L2, k: &Keys) -> u32 {
    match policy {
        XmitHashPolicy::Layer23 | XmitHashPolicy::Encap23 => ip_hash(eth_hash(frame, l2), k, false),
        _ => {
            let h = if k.icmp_id != 0 {
                k.icmp_word()
            } else {
                k.ports
            };
            ip_hash(h, k, true)
        }
    }
}

// ---------------------------------------------------------------------------
// Reduction helpers.

/// Precomputed constant for [`fast_mod`]: `ceil(2^64 / d)`.
#[inline]
const fn fast_mod_m(d: u32) -> u64 {
    if d <= 1 {
        0
    } else {
        (u64::MAX / d as u64).wrapping_add(1)
    }
}

/// `a % d` without a division instruction (Lemire, Kaser, Kurz, "Faster
/// remainder by direct computation", 2019); exact for every 32-bit `a` and
/// `d >= 1` with `m = fast_mod_m(d)` (`d == 1` gives `m == 0`, result 0).
#[inline(always)]
fn fast_mod(a: u32, m: u64, d: u32) -> u32 {
    let low = m.wrapping_mul(u64::from(a));
    ((u128::from(low) * u128::from(d)) >> 64) as u32
}

/// `a / d` for `d >= 2` with `m = fast_mod_m(d)`; exact for 32-bit `a`.
#[inline(always)]
fn fast_div(a: u32, m: u64) -> u32 {
    ((u128::from(m) * u128::from(a)) >> 64) as u32
}

// ---------------------------------------------------------------------------
// Plans.

/// What a plan does with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxKind {
    /// Nothing can transmit: drop.
    None,
    /// active-backup (and tlb/alb's current slave): always this slave.
    Single(u8),
    /// balance-rr.
    RoundRobin,
    /// balance-xor and 802.3ad.
    Hash,
    /// broadcast: every usable slave.
    Broadcast,
}

/// Immutable transmit plan, published by the control plane to the fast path
/// (`Copy`, no heap, about 300 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TxPlan {
    kind: TxKind,
    policy: XmitHashPolicy,
    reduce: Reduce,
    count: u8,
    packets_per_slave: u16,
    usable: [u8; MAX_SLAVES],
    /// `fast_mod_m(count)`.
    count_m: u64,
    /// `fast_mod_m(packets_per_slave)`.
    pps_m: u64,
    /// Slave per bucket (Stable only; zeros otherwise).
    table: [u8; BUCKETS],
}

impl fmt::Debug for TxPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TxPlan");
        d.field("kind", &self.kind).field("usable", &self.usable());
        match self.kind {
            TxKind::RoundRobin => {
                d.field("packets_per_slave", &self.packets_per_slave);
            }
            TxKind::Hash => {
                d.field("policy", &self.policy)
                    .field("reduce", &self.reduce);
                if self.reduce == Reduce::Stable {
                    let counts: Vec<(u8, usize)> = self
                        .usable()
                        .iter()
                        .map(|&s| (s, self.table.iter().filter(|&&t| t == s).count()))
                        .collect();
                    d.field("buckets_per_slave", &counts);
                }
            }
            _ => {}
        }
        d.finish()
    }
}

/// Checks a usable list; a bad one is a control-plane bug.
fn usable_array(usable: &[u8]) -> [u8; MAX_SLAVES] {
    assert!(
        usable.len() <= MAX_SLAVES,
        "{} usable slaves, at most {MAX_SLAVES}",
        usable.len()
    );
    let mut seen = 0u32;
    let mut out = [0u8; MAX_SLAVES];
    for (i, &s) in usable.iter().enumerate() {
        assert!(
            usize::from(s) < MAX_SLAVES,
            "slave index {s} >= {MAX_SLAVES}"
        );
        assert!(seen & (1 << s) == 0, "slave index {s} listed twice");
        seen |= 1 << s;
        out[i] = s;
    }
    out
}

impl TxPlan {
    fn base(kind: TxKind, usable: &[u8]) -> Self {
        TxPlan {
            kind,
            policy: XmitHashPolicy::Layer2,
            reduce: Reduce::Modulo,
            count: usable.len() as u8,
            packets_per_slave: 1,
            usable: usable_array(usable),
            count_m: fast_mod_m(usable.len() as u32),
            pps_m: 0,
            table: [0; BUCKETS],
        }
    }

    /// Nothing transmits (no usable slave, bond down).
    pub fn none() -> Self {
        Self::base(TxKind::None, &[])
    }

    /// active-backup: everything goes out `slave`.
    pub fn single(slave: u8) -> Self {
        Self::base(TxKind::Single(slave), &[slave])
    }

    /// balance-rr over `usable` (slave indices in config order).
    /// `packets_per_slave` as the kernel option: 0 = a random slave per
    /// frame, N = N consecutive frames per slave.
    pub fn round_robin(usable: &[u8], packets_per_slave: u16) -> Self {
        let mut p = Self::base(TxKind::RoundRobin, usable);
        p.packets_per_slave = packets_per_slave;
        p.pps_m = fast_mod_m(u32::from(packets_per_slave));
        p
    }

    /// balance-xor / 802.3ad over `usable`. For [`Reduce::Stable`] the
    /// bucket table is rebuilt from `previous` (when that is a Stable hash
    /// plan) moving as few buckets as possible; see [`rebuild_buckets`].
    pub fn hash(
        usable: &[u8],
        policy: XmitHashPolicy,
        reduce: Reduce,
        previous: Option<&TxPlan>,
    ) -> Self {
        let mut p = Self::base(TxKind::Hash, usable);
        p.policy = policy;
        p.reduce = reduce;
        if reduce == Reduce::Stable {
            let prev = previous.filter(|q| q.kind == TxKind::Hash && q.reduce == Reduce::Stable);
            p.table = match prev {
                Some(q) => rebuild_buckets(Some(&q.table), q.usable(), usable),
                None => rebuild_buckets(None, &[], usable),
            };
        }
        p
    }

    /// broadcast: every usable slave gets a copy.
    pub fn broadcast(usable: &[u8]) -> Self {
        Self::base(TxKind::Broadcast, usable)
    }

    pub fn kind(&self) -> TxKind {
        self.kind
    }

    /// The usable slaves, in the order given (config order).
    pub fn usable(&self) -> &[u8] {
        &self.usable[..usize::from(self.count)]
    }

    /// The usable slaves as a bit set.
    pub fn usable_mask(&self) -> u32 {
        self.usable().iter().fold(0, |m, &s| m | 1 << s)
    }

    pub fn policy(&self) -> XmitHashPolicy {
        self.policy
    }

    pub fn reduce(&self) -> Reduce {
        self.reduce
    }

    pub fn packets_per_slave(&self) -> u16 {
        self.packets_per_slave
    }

    /// The Stable bucket table (all zeros for other plans).
    pub fn buckets(&self) -> &[u8; BUCKETS] {
        &self.table
    }

    /// The slave a hash value maps to (Hash plans with a usable slave).
    #[inline(always)]
    fn pick(&self, h: u32) -> u8 {
        match self.reduce {
            Reduce::Modulo => {
                let i = fast_mod(h, self.count_m, u32::from(self.count));
                self.usable[i as usize & (MAX_SLAVES - 1)]
            }
            Reduce::Stable => self.table[(h & 0xff) as usize],
        }
    }

    /// The slave for a given [`hash`] value, or `None` without a usable
    /// slave. Only meaningful for [`TxKind::Hash`] plans.
    pub fn slave_for_hash(&self, h: u32) -> Option<u8> {
        (self.kind == TxKind::Hash && self.count > 0).then(|| self.pick(h))
    }

    /// Per-frame choice; `rr` is the worker's own round-robin state (never
    /// shared between workers). `None` = drop. For [`TxKind::Broadcast`]
    /// this is the first usable slave; the worker sends copies to the rest of
    /// [`TxPlan::usable`].
    #[inline]
    pub fn select(&self, frame: &[u8], rr: &mut RrState) -> Option<u8> {
        match self.kind {
            TxKind::None => None,
            TxKind::Single(s) => Some(s),
            TxKind::Broadcast => self.usable().first().copied(),
            TxKind::RoundRobin => {
                if self.count == 0 {
                    return None;
                }
                let id = rr.next_id(self.packets_per_slave, self.pps_m);
                let i = fast_mod(id, self.count_m, u32::from(self.count));
                Some(self.usable[i as usize & (MAX_SLAVES - 1)])
            }
            TxKind::Hash => {
                if self.count == 0 {
                    return None;
                }
                Some(self.pick(hash(self.policy, frame)))
            }
        }
    }
}

/// Per-worker round-robin state: the kernel's per-CPU `rr_tx_counter`, and
/// a xorshift64* generator for `packets_per_slave = 0`.
#[derive(Clone, Debug)]
pub struct RrState {
    counter: u32,
    rng: u64,
}

impl RrState {
    /// `seed` only feeds the random mode; any value works (0 is remapped).
    pub fn new(seed: u64) -> Self {
        RrState {
            counter: 0,
            rng: if seed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                seed
            },
        }
    }

    /// `bond_rr_gen_slave_id`.
    #[inline(always)]
    fn next_id(&mut self, packets_per_slave: u16, pps_m: u64) -> u32 {
        match packets_per_slave {
            0 => {
                let mut x = self.rng;
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                self.rng = x;
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
            }
            1 => {
                self.counter = self.counter.wrapping_add(1);
                self.counter
            }
            _ => {
                self.counter = self.counter.wrapping_add(1);
                fast_div(self.counter, pps_m)
            }
        }
    }
}

/// Receive rule: the set of slaves whose data frames go up to the bond, as
/// the kernel's `bond_should_deliver_exact_match` decides per mode (frames on
/// "inactive" slaves are dropped unless `all_slaves_active`). Bit `i` is
/// slave index `i`; [`ALL_SLAVES`] means every slave.
///
/// - balance-rr, balance-xor, broadcast: every slave (the kernel never marks
///   a slave inactive in these modes, not even while its link is down).
/// - active-backup, balance-tlb: the active slave only.
/// - balance-alb: the active slave for broadcast/multicast; the kernel also
///   delivers *unicast* from every slave (that is how alb receive balancing
///   works). This mask is the broadcast/multicast rule; bondd does not
///   implement alb.
/// - 802.3ad: `usable`, which the caller sets to the collecting ports of the
///   active aggregator.
/// - `all_slaves_active` = every slave, in every mode.
///
/// Slow-protocol frames (LACP, marker) are not data frames: they always go
/// to the control plane.
pub fn rx_mask(mode: Mode, active: Option<u8>, usable: &[u8], all_slaves_active: bool) -> u32 {
    if all_slaves_active {
        return ALL_SLAVES;
    }
    let bit = |s: u8| {
        if usize::from(s) < MAX_SLAVES {
            1u32 << s
        } else {
            0
        }
    };
    match mode {
        Mode::BalanceRr | Mode::BalanceXor | Mode::Broadcast => ALL_SLAVES,
        Mode::ActiveBackup | Mode::BalanceTlb | Mode::BalanceAlb => active.map_or(0, bit),
        Mode::Ieee8023ad => usable.iter().fold(0, |m, &s| m | bit(s)),
    }
}

// ---------------------------------------------------------------------------
// Stable bucket table.

/// Affinity of bucket `b` for slave `s`: a fixed pseudo-random number, so the
/// same slave prefers the same buckets every time (murmur3 finaliser).
fn affinity(b: usize, s: u8) -> u32 {
    let mut h = ((u32::from(s) << 8) | b as u32).wrapping_add(0x9e37_79b9);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// (affinity, bucket, slave) packed so that sorting descending orders by
/// affinity, ties broken deterministically.
fn pref(b: usize, s: u8) -> u64 {
    (u64::from(affinity(b, s)) << 16) | ((b as u64) << 8) | u64::from(s)
}

/// Unpacks a [`pref`] value.
fn unpref(c: u64) -> (usize, u8) {
    (((c >> 8) & 0xff) as usize, (c & 0xff) as u8)
}

/// The table for `usable` built from nothing: buckets in decreasing order of
/// affinity, each slave up to `ceil(256/n)` buckets. Depends only on the set
/// of slaves, not on their order.
fn fresh_buckets(usable: &[u8]) -> [u8; BUCKETS] {
    let cap = BUCKETS.div_ceil(usable.len());
    let mut cands: Vec<u64> = (0..BUCKETS)
        .flat_map(|b| usable.iter().map(move |&s| pref(b, s)))
        .collect();
    cands.sort_unstable_by(|a, b| b.cmp(a));
    let mut table = [0u8; BUCKETS];
    let mut placed = [false; BUCKETS];
    let mut load = [0usize; MAX_SLAVES];
    for c in cands {
        let (b, s) = unpref(c);
        if !placed[b] && load[usize::from(s)] < cap {
            table[b] = s;
            placed[b] = true;
            load[usize::from(s)] += 1;
        }
    }
    table
}

/// Stable table maintenance: the table for `usable`, built from `prev` (the
/// table that served `prev_usable`) moving as few buckets as possible.
///
/// Every set of slaves has an *ideal* table (the one built from nothing,
/// by a fixed per-bucket affinity for each slave). Then:
///
/// - Buckets of slaves that stay usable stay where they are, except those a
///   newly usable slave takes.
/// - Buckets of slaves that left (or of any slave not in both lists) are
///   spread over the usable slaves: to the slave the ideal table names if it
///   has fewer than `ceil(256/n)` buckets, else by affinity under that cap.
/// - A slave that was not in `prev_usable` then takes buckets, up to
///   `floor(256/n)` in all, from slaves holding more than `floor(256/n)`:
///   first those the ideal table gives it, then by affinity. A slave that
///   comes back to the set it left therefore takes back the buckets it had.
///
/// No bucket ever moves between two slaves that were usable before and
/// after. Without `prev` (or with an empty `prev_usable`) the result is the
/// ideal table. With no usable slave the table is all zeros (and unused).
pub fn rebuild_buckets(prev: Option<&[u8; 256]>, prev_usable: &[u8], usable: &[u8]) -> [u8; 256] {
    let n = usable.len();
    if n == 0 {
        return [0; BUCKETS];
    }
    usable_array(usable);
    let ideal = fresh_buckets(usable);
    let Some(prev) = prev.filter(|_| !prev_usable.is_empty()) else {
        return ideal;
    };
    let cap = BUCKETS.div_ceil(n);
    let fair = BUCKETS / n;
    // Preference of slave `s` for bucket `b`: the ideal owner first.
    let key = |b: usize, s: u8| (u64::from(ideal[b] == s) << 48) | pref(b, s);

    let mut table = [0u8; BUCKETS];
    let mut placed = [false; BUCKETS];
    let mut load = [0usize; MAX_SLAVES];
    for b in 0..BUCKETS {
        let s = prev[b];
        if usable.contains(&s) && prev_usable.contains(&s) {
            table[b] = s;
            placed[b] = true;
            load[usize::from(s)] += 1;
        }
    }

    // Orphans, each slave up to `cap`. Room always suffices: n * cap >= 256.
    let mut cands: Vec<u64> = Vec::with_capacity(BUCKETS * n);
    for b in (0..BUCKETS).filter(|&b| !placed[b]) {
        cands.extend(usable.iter().map(|&s| key(b, s)));
    }
    cands.sort_unstable_by(|a, b| b.cmp(a));
    for &c in &cands {
        let (b, s) = unpref(c);
        if !placed[b] && load[usize::from(s)] < cap {
            table[b] = s;
            placed[b] = true;
            load[usize::from(s)] += 1;
        }
    }

    // Newcomers take their share from slaves above it.
    let newcomers: Vec<u8> = usable
        .iter()
        .copied()
        .filter(|s| !prev_usable.contains(s))
        .collect();
    if newcomers.is_empty() {
        return table;
    }
    cands.clear();
    for b in (0..BUCKETS).filter(|&b| !newcomers.contains(&table[b])) {
        cands.extend(newcomers.iter().map(|&s| key(b, s)));
    }
    cands.sort_unstable_by(|a, b| b.cmp(a));
    let mut moved = [false; BUCKETS];
    for &c in &cands {
        let (b, s) = unpref(c);
        let owner = usize::from(table[b]);
        if !moved[b] && load[usize::from(s)] < fair && load[owner] > fair {
            load[owner] -= 1;
            load[usize::from(s)] += 1;
            table[b] = s;
            moved[b] = true;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use XmitHashPolicy::*;

    // ------------------------------------------------------------------
    // Frame builders.

    /// dst 02:00:00:00:00:01, src 52:54:00:12:34:56: dst[5] ^ src[5] = 0x57.
    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const A1: [u8; 4] = [10, 0, 0, 1];
    const A2: [u8; 4] = [10, 0, 0, 2];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn eth(proto: u16) -> Vec<u8> {
        cat(&[&DST, &SRC, &proto.to_be_bytes()])
    }

    fn vlan_eth(tpid: u16, tci: u16, inner: u16) -> Vec<u8> {
        cat(&[
            &DST,
            &SRC,
            &tpid.to_be_bytes(),
            &tci.to_be_bytes(),
            &inner.to_be_bytes(),
        ])
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], frag: u16, payload: &[u8]) -> Vec<u8> {
        let len = (20 + payload.len()) as u16;
        let mut h = vec![0x45, 0];
        h.extend(len.to_be_bytes());
        h.extend([0x1c, 0x46]);
        h.extend(frag.to_be_bytes());
        h.extend([64, proto, 0, 0]);
        h.extend(src);
        h.extend(dst);
        h.extend(payload);
        h
    }

    fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend((payload.len() as u16).to_be_bytes());
        h.extend([next, 64]);
        h.extend(src);
        h.extend(dst);
        h.extend(payload);
        h
    }

    fn udp(sp: u16, dp: u16, payload: usize) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(sp.to_be_bytes());
        h.extend(dp.to_be_bytes());
        h.extend(((8 + payload) as u16).to_be_bytes());
        h.extend([0, 0]);
        h.resize(8 + payload, 0xab);
        h
    }

    fn tcp(sp: u16, dp: u16) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(sp.to_be_bytes());
        h.extend(dp.to_be_bytes());
        h.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
        h
    }

    fn icmp(ty: u8, code: u8, id: u16, rest: &[u8]) -> Vec<u8> {
        let mut h = vec![ty, code, 0, 0];
        h.extend(id.to_be_bytes());
        h.extend([0, 1]);
        h.extend(rest);
        h
    }

    const V6S: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6];
    const V6D: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x0a, 0, 0x0b, 0, 0x0c, 0, 0x0d, 0, 0x0e, 0, 0x0f,
    ];

    /// IPv4 UDP 10.0.0.1:1000 -> 10.0.0.2:2000, 18 bytes of payload.
    fn v4_udp() -> Vec<u8> {
        cat(&[&eth(0x0800), &ipv4(17, A1, A2, 0, &udp(1000, 2000, 18))])
    }

    fn v6_udp() -> Vec<u8> {
        cat(&[&eth(0x86dd), &ipv6(17, V6S, V6D, &udp(1000, 2000, 10))])
    }

    /// Outer 192.0.2.1 -> 198.51.100.7 (xor of native words 0x06663306).
    const O1: [u8; 4] = [192, 0, 2, 1];
    const O2: [u8; 4] = [198, 51, 100, 7];

    fn vxlan() -> Vec<u8> {
        let inner = v4_udp();
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vx.extend(&inner);
        let mut u = udp(49152, 4789, 0);
        u.extend(&vx);
        cat(&[
            &eth(0x0800),
            &ipv4(17, [192, 0, 2, 1], [192, 0, 2, 2], 0, &u),
        ])
    }

    /// Every policy's expected value for one frame.
    struct Vector {
        name: &'static str,
        frame: Vec<u8>,
        expect: [(XmitHashPolicy, u32); 6],
    }

    /// Kernel formula vectors, computed by hand from reference §1.3 (and the
    /// kernel's flow dissector for the encap policies). Native words are
    /// little-endian: bytes 0a 00 00 01 read as 0x0100000a.
    #[cfg(target_endian = "little")]
    fn vectors() -> Vec<Vector> {
        vec![
            Vector {
                name: "IPv4 UDP 10.0.0.1:1000 -> 10.0.0.2:2000",
                frame: v4_udp(),
                expect: [
                    // 0x57 ^ 0x0800
                    (Layer2, 0x0857),
                    // h = 0x0857 ^ (0x0100000a ^ 0x0200000a = 0x03000000) = 0x03000857
                    // h ^= h>>16 (0x0300): 0x03000b57; h ^= h>>8 (0x0003000b): 0x03030b5c
                    (Layer23, 0x0303_0b5c),
                    // ports bytes 03 e8 07 d0 -> 0xd007e803; ^ 0x03000000 = 0xd307e803
                    // ^ 0xd307 = 0xd3073b04; ^ 0x00d3073b = 0xd3d43c3f; >> 1 = 0x69ea1e1f
                    (Layer34, 0x69ea_1e1f),
                    // not a tunnel: as layer2+3 / layer3+4
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x69ea_1e1f),
                    // 0x525400 ^ 0x123456 = 0x406056, no tag
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "IPv4 TCP 192.168.1.10:443 -> 192.168.1.20:51000",
                frame: cat(&[
                    &eth(0x0800),
                    &ipv4(
                        6,
                        [192, 168, 1, 10],
                        [192, 168, 1, 20],
                        0x4000,
                        &tcp(443, 51000),
                    ),
                ]),
                expect: [
                    (Layer2, 0x0857),
                    // addrs 0x0a01a8c0 ^ 0x1401a8c0 = 0x1e000000; h = 0x1e000857
                    // ^ 0x1e00 = 0x1e001657; ^ 0x001e0016 = 0x1e1e1641
                    (Layer23, 0x1e1e_1641),
                    // ports 01 bb c7 38 -> 0x38c7bb01; ^ 0x1e000000 = 0x26c7bb01
                    // ^ 0x26c7 = 0x26c79dc6; ^ 0x0026c79d = 0x26e15a5b; >> 1 = 0x1370ad2d
                    // (DF set: not a fragment)
                    (Layer34, 0x1370_ad2d),
                    (Encap23, 0x1e1e_1641),
                    (Encap34, 0x1370_ad2d),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "IPv4 UDP first fragment (MF)",
                frame: cat(&[
                    &eth(0x0800),
                    &ipv4(17, A1, A2, 0x2000, &udp(1000, 2000, 18)),
                ]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0303_0b5c),
                    // ports not read: h = 0x03000000; ^ 0x0300 = 0x03000300;
                    // ^ 0x00030003 = 0x03030303; >> 1 = 0x01818181
                    (Layer34, 0x0181_8181),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x0181_8181),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "IPv4 non-first fragment (offset 185)",
                frame: cat(&[&eth(0x0800), &ipv4(17, A1, A2, 185, &[0u8; 16])]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0303_0b5c),
                    (Layer34, 0x0181_8181),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x0181_8181),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "IPv4 OSPF (no ports)",
                frame: cat(&[&eth(0x0800), &ipv4(89, A1, A2, 0, &[0u8; 24])]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0303_0b5c),
                    // as the fragment: L3 only
                    (Layer34, 0x0181_8181),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x0181_8181),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "ICMP echo request id 0x1234",
                frame: cat(&[
                    &eth(0x0800),
                    &ipv4(1, A1, A2, 0, &icmp(8, 0, 0x1234, &[0; 8])),
                ]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0303_0b5c),
                    // icmp word: type 8 | code 0 << 8 | id 0x1234 << 16 = 0x12340008
                    // ^ 0x03000000 = 0x11340008; ^ 0x1134 = 0x1134113c;
                    // ^ 0x00113411 = 0x1125252d; >> 1 = 0x08929296
                    (Layer34, 0x0892_9296),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x0892_9296),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "ICMP echo request id 0 (stored as 1)",
                frame: cat(&[&eth(0x0800), &ipv4(1, A1, A2, 0, &icmp(8, 0, 0, &[0; 8]))]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0303_0b5c),
                    // word 0x00010008 ^ 0x03000000 = 0x03010008; ^ 0x0301 = 0x03010309;
                    // ^ 0x00030103 = 0x0302020a; >> 1 = 0x01810105
                    (Layer34, 0x0181_0105),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x0181_0105),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "ICMP port unreachable 10.0.0.254 -> 10.0.0.1 embedding the UDP flow",
                frame: cat(&[
                    &eth(0x0800),
                    &ipv4(
                        1,
                        [10, 0, 0, 254],
                        A1,
                        0,
                        &icmp(3, 3, 0, &ipv4(17, A1, A2, 0, &udp(1000, 2000, 0))),
                    ),
                ]),
                expect: [
                    (Layer2, 0x0857),
                    // inner header: same addresses as the flow -> same as its layer2+3
                    (Layer23, 0x0303_0b5c),
                    // inner addresses and ports -> same as the UDP flow's layer3+4
                    (Layer34, 0x69ea_1e1f),
                    // the dissector does not enter ICMP errors: outer addresses
                    // 0xfe00000a ^ 0x0100000a = 0xff000000; h = 0xff000857;
                    // ^ 0xff00 = 0xff00f757; ^ 0x00ff00f7 = 0xffffa0 ^.. = 0xfffff7a0
                    (Encap23, 0xffff_f7a0),
                    // no id, no ports: 0xff000000; ^ 0xff00 = 0xff00ff00;
                    // ^ 0x00ff00ff = 0xffffffff; >> 1 = 0x7fffffff
                    (Encap34, 0x7fff_ffff),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "IPv6 UDP 2001:db8:1:2:3:4:5:6 -> 2001:db8:a:b:c:d:e:f",
                frame: v6_udp(),
                expect: [
                    // 0x57 ^ 0x86dd
                    (Layer2, 0x868a),
                    // src fold 0xb80d0120^0x02000100^0x04000300^0x06000500 = 0xb80d0620
                    // dst fold 0xb80d0120^0x0b000a00^0x0d000c00^0x0f000e00 = 0xb10d0920
                    // xor 0x09000f00; h = 0x0900898a; ^ 0x0900 = 0x0900808a;
                    // ^ 0x00090080 = 0x0909800a
                    (Layer23, 0x0909_800a),
                    // 0xd007e803 ^ 0x09000f00 = 0xd907e703; ^ 0xd907 = 0xd9073e04;
                    // ^ 0x00d9073e = 0xd9de393a; >> 1 = 0x6cef1c9d
                    (Layer34, 0x6cef_1c9d),
                    (Encap23, 0x0909_800a),
                    (Encap34, 0x6cef_1c9d),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "IPv6 hop-by-hop then UDP",
                frame: cat(&[
                    &eth(0x86dd),
                    &ipv6(
                        0,
                        V6S,
                        V6D,
                        &cat(&[&[17, 0, 1, 4, 0, 0, 0, 0], &udp(1000, 2000, 10)]),
                    ),
                ]),
                expect: [
                    (Layer2, 0x868a),
                    (Layer23, 0x0909_800a),
                    // bond_flow_ip does not walk extension headers: next header 0
                    // has no ports. 0x09000f00; ^ 0x0900 = 0x09000600;
                    // ^ 0x00090006 = 0x09090606; >> 1 = 0x04848303
                    (Layer34, 0x0484_8303),
                    (Encap23, 0x0909_800a),
                    // the dissector does: UDP ports -> same as plain IPv6 UDP
                    (Encap34, 0x6cef_1c9d),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "802.1Q tag (PCP 3, VID 100) + IPv4 UDP",
                frame: cat(&[&vlan_eth(0x8100, 0x6064, 0x0800), &v4_udp()[14..]]),
                expect: [
                    // the tag is the one the kernel has offloaded: h_proto = 0x0800
                    (Layer2, 0x0857),
                    (Layer23, 0x0303_0b5c),
                    (Layer34, 0x69ea_1e1f),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x69ea_1e1f),
                    // full TCI: 0x6064 ^ 0x406056
                    (VlanSrcMac, 0x0040_0032),
                ],
            },
            Vector {
                name: "QinQ: 802.1ad VID 10, 802.1Q VID 100, IPv4 UDP",
                frame: cat(&[
                    &vlan_eth(0x88a8, 0x000a, 0x8100),
                    &[0x00, 0x64, 0x08, 0x00],
                    &v4_udp()[14..],
                ]),
                expect: [
                    // inner tag inline: skb->protocol 0x8100; 0x57 ^ 0x8100
                    (Layer2, 0x8157),
                    // not IP for bond_flow_ip -> layer2
                    (Layer23, 0x8157),
                    (Layer34, 0x8157),
                    // the dissector skips inline tags; eth hash keeps 0x8100:
                    // h = 0x8157 ^ 0x03000000 = 0x03008157; ^ 0x0300 = 0x03008257;
                    // ^ 0x00030082 = 0x030382d5
                    (Encap23, 0x0303_82d5),
                    (Encap34, 0x69ea_1e1f),
                    // outer TCI 0x000a ^ 0x406056
                    (VlanSrcMac, 0x0040_605c),
                ],
            },
            Vector {
                name: "ARP (not IP)",
                frame: cat(&[&eth(0x0806), &[0, 1, 8, 0, 6, 4, 0, 1], &[0u8; 20]]),
                expect: [
                    // 0x57 ^ 0x0806
                    (Layer2, 0x0851),
                    (Layer23, 0x0851),
                    (Layer34, 0x0851),
                    // the dissector accepts ARP with no address key: bond_ip_hash
                    // of the eth hash with zero addresses: 0x0851 ^ 0x08 = 0x0859
                    (Encap23, 0x0859),
                    // ... and 0 for encap3+4: every ARP frame on one slave
                    (Encap34, 0),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "LLDP (unknown to the dissector)",
                frame: cat(&[&eth(0x88cc), &[0u8; 32]]),
                expect: [
                    // 0x57 ^ 0x88cc
                    (Layer2, 0x889b),
                    (Layer23, 0x889b),
                    (Layer34, 0x889b),
                    (Encap23, 0x889b),
                    (Encap34, 0x889b),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "SCTP 10.0.0.1:5000 -> 10.0.0.2:6000",
                frame: cat(&[&eth(0x0800), &ipv4(132, A1, A2, 0, &udp(5000, 6000, 8))]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0303_0b5c),
                    // ports 13 88 17 70 -> 0x70178813; ^ 0x03000000 = 0x73178813;
                    // ^ 0x7317 = 0x7317fb04; ^ 0x007317fb = 0x7364ecff; >> 1 = 0x39b2767f
                    (Layer34, 0x39b2_767f),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x39b2_767f),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "VXLAN 192.0.2.1:49152 -> 192.0.2.2:4789 carrying the UDP flow",
                frame: vxlan(),
                expect: [
                    (Layer2, 0x0857),
                    // outer 0x010200c0 ^ 0x020200c0 = 0x03000000 -> as the flow
                    (Layer23, 0x0303_0b5c),
                    // ports c0 00 12 b5 -> 0xb51200c0; ^ 0x03000000 = 0xb61200c0;
                    // ^ 0xb612 = 0xb612b6d2; ^ 0x00b612b6 = 0xb6a4a464; >> 1 = 0x5b525232
                    (Layer34, 0x5b52_5232),
                    // the kernel's dissector does not enter UDP tunnels: outer
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x5b52_5232),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "GRE 192.0.2.1 -> 198.51.100.7 carrying the UDP flow",
                frame: cat(&[
                    &eth(0x0800),
                    &ipv4(47, O1, O2, 0, &cat(&[&[0, 0, 0x08, 0x00], &v4_udp()[14..]])),
                ]),
                expect: [
                    (Layer2, 0x0857),
                    // outer 0x010200c0 ^ 0x076433c6 = 0x06663306; h = 0x06663b51;
                    // ^ 0x0666 = 0x06663d37; ^ 0x0006663d = 0x06605b0a
                    (Layer23, 0x0660_5b0a),
                    // no ports for GRE: 0x06663306; ^ 0x0666 = 0x06663560;
                    // ^ 0x00066635 = 0x06605355; >> 1 = 0x033029aa
                    (Layer34, 0x0330_29aa),
                    // inner headers: the flow's values
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x69ea_1e1f),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "GRE with key, transparent Ethernet bridging, carrying the flow",
                frame: cat(&[
                    &eth(0x0800),
                    &ipv4(
                        47,
                        O1,
                        O2,
                        0,
                        &cat(&[&[0x20, 0, 0x65, 0x58, 0, 0, 0, 7], &v4_udp()]),
                    ),
                ]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0660_5b0a),
                    (Layer34, 0x0330_29aa),
                    // eth hash is the outer one (0x0857), addresses the inner
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x69ea_1e1f),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
            Vector {
                name: "IP-in-IP carrying the flow",
                frame: cat(&[&eth(0x0800), &ipv4(4, O1, O2, 0, &v4_udp()[14..])]),
                expect: [
                    (Layer2, 0x0857),
                    (Layer23, 0x0660_5b0a),
                    (Layer34, 0x0330_29aa),
                    (Encap23, 0x0303_0b5c),
                    (Encap34, 0x69ea_1e1f),
                    (VlanSrcMac, 0x0040_6056),
                ],
            },
        ]
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn kernel_formula_vectors() {
        let mut bad = Vec::new();
        for v in vectors() {
            for (policy, want) in v.expect {
                let got = hash(policy, &v.frame);
                if got != want {
                    bad.push(format!(
                        "{}: {policy}: got {got:#010x}, want {want:#010x}",
                        v.name
                    ));
                }
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn truncated_icmp_error_falls_back_to_layer2() {
        // The embedded header is cut to 12 bytes: the kernel's second
        // bond_flow_ip fails and the whole dissection falls back to layer2.
        let inner = ipv4(17, A1, A2, 0, &[]);
        let f = cat(&[
            &eth(0x0800),
            &ipv4(1, [10, 0, 0, 254], A1, 0, &icmp(3, 3, 0, &inner[..12])),
        ]);
        assert_eq!(hash(Layer34, &f), 0x0857);
        assert_eq!(hash(Layer23, &f), 0x0857);
        // Truncated ports: L3 only.
        let f = v4_udp();
        assert_eq!(hash(Layer34, &f[..14 + 20 + 3]), 0x0181_8181);
    }

    #[test]
    fn never_reads_past_the_frame() {
        let mut frames: Vec<Vec<u8>> = vec![
            v4_udp(),
            v6_udp(),
            vxlan(),
            cat(&[
                &eth(0x8864),
                &[0x11, 0, 0, 1, 0, 30, 0, 0x21],
                &v4_udp()[14..],
            ]),
            cat(&[&eth(0x892f), &[0, 0, 0, 0, 0x08, 0x00], &v4_udp()[14..]]),
            // GRE version 1 (PPTP) with key, seq and ack, PPP IPv4 inside.
            cat(&[
                &eth(0x0800),
                &ipv4(
                    47,
                    O1,
                    O2,
                    0,
                    &cat(&[
                        &[0x30, 0x81, 0x88, 0x0b, 0, 20, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
                        &[0xff, 0x03, 0x00, 0x21],
                        &v4_udp()[14..],
                    ]),
                ),
            ]),
            // IPv6 fragment header, MPLS-in-IP, IPv6-in-IPv4, a bad ihl.
            cat(&[
                &eth(0x86dd),
                &ipv6(44, V6S, V6D, &[17, 0, 0, 1, 0, 0, 0, 9]),
            ]),
            cat(&[&eth(0x0800), &ipv4(137, O1, O2, 0, &[0, 0, 0x11, 0xff])]),
            cat(&[&eth(0x0800), &ipv4(41, O1, O2, 0, &v6_udp()[14..])]),
            cat(&[&eth(0x0800), &[0x41; 40]]),
        ];
        #[cfg(target_endian = "little")]
        frames.extend(vectors().into_iter().map(|v| v.frame));
        for f in &frames {
            for len in 0..=f.len() {
                // An exact-size copy: any read past it would panic.
                let t = f[..len].to_vec();
                for &p in XmitHashPolicy::ALL {
                    let _ = hash(p, &t);
                }
            }
        }
        for &p in XmitHashPolicy::ALL {
            assert_eq!(hash(p, &[]), 0);
            assert_eq!(hash(p, &[0xff; 13]), 0);
        }
    }

    #[test]
    fn tunnels_reach_the_inner_flow_under_encap() {
        // PPPoE session, HSR, PPTP and IPv6-in-IPv4 all hash like the inner
        // flow under encap3+4 (byte order independent: compare with it).
        let flow = hash(Encap34, &v4_udp());
        let flow6 = hash(Encap34, &v6_udp());
        let pppoe = cat(&[
            &eth(0x8864),
            &[0x11, 0, 0, 1, 0, 30, 0, 0x21],
            &v4_udp()[14..],
        ]);
        assert_eq!(hash(Encap34, &pppoe), flow);
        let hsr = cat(&[&eth(0x892f), &[0, 0, 0, 0, 0x08, 0x00], &v4_udp()[14..]]);
        assert_eq!(hash(Encap34, &hsr), flow);
        let pptp = cat(&[
            &eth(0x0800),
            &ipv4(
                47,
                O1,
                O2,
                0,
                &cat(&[
                    &[0x30, 0x81, 0x88, 0x0b, 0, 20, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
                    &[0xff, 0x03, 0x00, 0x21],
                    &v4_udp()[14..],
                ]),
            ),
        ]);
        assert_eq!(hash(Encap34, &pptp), flow);
        let six_in_four = cat(&[&eth(0x0800), &ipv4(41, O1, O2, 0, &v6_udp()[14..])]);
        assert_eq!(hash(Encap34, &six_in_four), flow6);
        // GRE with routing: not entered (outer addresses, no ports).
        let routed = cat(&[
            &eth(0x0800),
            &ipv4(
                47,
                O1,
                O2,
                0,
                &cat(&[&[0x40, 0, 0x08, 0x00], &v4_udp()[14..]]),
            ),
        ]);
        assert_eq!(hash(Encap34, &routed), hash(Layer34, &routed));
    }

    // ------------------------------------------------------------------
    // Distribution.

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    /// (src, dst, sport, dport, proto).
    type Flow = ([u8; 4], [u8; 4], u16, u16, u8);

    /// `n` random IPv4 UDP/TCP flows.
    fn random_flows(n: usize, seed: u64) -> Vec<Flow> {
        let mut r = XorShift(seed);
        (0..n)
            .map(|_| {
                let a = r.next();
                let b = r.next();
                let proto = if a & 1 == 0 { 17 } else { 6 };
                (
                    (a as u32).to_be_bytes(),
                    ((a >> 32) as u32).to_be_bytes(),
                    b as u16,
                    (b >> 16) as u16,
                    proto,
                )
            })
            .collect()
    }

    fn flow_frame(f: &Flow, payload: usize, ip_id: u16) -> Vec<u8> {
        let l4 = if f.4 == 17 {
            udp(f.2, f.3, payload)
        } else {
            let mut t = tcp(f.2, f.3);
            t.resize(20 + payload, 0x5a);
            t
        };
        let mut ip = ipv4(f.4, f.0, f.1, 0x4000, &l4);
        ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
        cat(&[&eth(0x0800), &ip])
    }

    fn assign(plan: &TxPlan, flows: &[Flow]) -> Vec<u8> {
        let mut rr = RrState::new(1);
        flows
            .iter()
            .map(|f| plan.select(&flow_frame(f, 18, 1), &mut rr).unwrap())
            .collect()
    }

    #[test]
    fn every_frame_of_a_flow_takes_one_slave() {
        let flows = random_flows(200, 7);
        for reduce in [Reduce::Modulo, Reduce::Stable] {
            for &policy in XmitHashPolicy::ALL {
                let plan = TxPlan::hash(&[0, 1, 2], policy, reduce, None);
                let mut rr = RrState::new(3);
                for f in &flows {
                    let first = plan.select(&flow_frame(f, 0, 0), &mut rr);
                    for (payload, id) in [(1, 7), (100, 8), (1400, 9)] {
                        let again = plan.select(&flow_frame(f, payload, id), &mut rr);
                        assert_eq!(first, again, "{policy} {reduce:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn layer34_spreads_evenly() {
        let flows = random_flows(10_000, 0x5eed);
        for reduce in [Reduce::Modulo, Reduce::Stable] {
            for n in 2u8..=4 {
                let usable: Vec<u8> = (0..n).collect();
                let plan = TxPlan::hash(&usable, Layer34, reduce, None);
                let mut counts = [0usize; MAX_SLAVES];
                for s in assign(&plan, &flows) {
                    counts[usize::from(s)] += 1;
                }
                let fair = 10_000 / usize::from(n);
                for &c in &counts[..usize::from(n)] {
                    assert!(
                        c.abs_diff(fair) * 10 <= fair,
                        "{reduce:?} n={n}: {:?}",
                        &counts[..usize::from(n)]
                    );
                }
            }
        }
    }

    #[test]
    fn stable_failure_moves_only_the_failed_slaves_flows() {
        let flows = random_flows(10_000, 99);
        let all = TxPlan::hash(&[0, 1, 2, 3], Layer34, Reduce::Stable, None);
        let before = assign(&all, &flows);
        let failed = TxPlan::hash(&[0, 1, 3], Layer34, Reduce::Stable, Some(&all));
        let after = assign(&failed, &flows);
        let mut got_orphans = [0usize; 4];
        for (b, a) in before.iter().zip(&after) {
            if *b == 2 {
                assert_ne!(*a, 2);
                got_orphans[usize::from(*a)] += 1;
            } else {
                assert_eq!(a, b, "a flow on a surviving slave moved");
            }
        }
        // The orphans are spread over all survivors.
        for s in [0, 1, 3] {
            assert!(got_orphans[s] > 500, "{got_orphans:?}");
        }
        // Buckets: nobody above ceil(256/3), and close to even.
        for s in [0u8, 1, 3] {
            let c = failed.buckets().iter().filter(|&&t| t == s).count();
            assert!((84..=86).contains(&c), "slave {s}: {c} buckets");
        }

        // The slave returns: only flows moving *to* it move, at most its share
        // of buckets, and mostly the buckets it had.
        let back = TxPlan::hash(&[0, 1, 2, 3], Layer34, Reduce::Stable, Some(&failed));
        let again = assign(&back, &flows);
        for (a, g) in after.iter().zip(&again) {
            if a != g {
                assert_eq!(*g, 2, "a flow moved between surviving slaves");
            }
        }
        let mine: Vec<usize> = (0..256).filter(|&b| back.buckets()[b] == 2).collect();
        assert!(mine.len() <= 64, "took {} buckets", mine.len());
        // Exactly the ones it had: the layout is back where it started.
        assert_eq!(back.buckets(), all.buckets());
        assert_eq!(again, before);
    }

    #[test]
    fn modulo_moves_most_flows_as_the_kernel_does() {
        // Documented contrast: with the kernel's hash % n, one slave failing
        // remaps most flows of the surviving slaves too.
        let flows = random_flows(10_000, 99);
        let all = TxPlan::hash(&[0, 1, 2, 3], Layer34, Reduce::Modulo, None);
        let failed = TxPlan::hash(&[0, 1, 3], Layer34, Reduce::Modulo, Some(&all));
        let before = assign(&all, &flows);
        let after = assign(&failed, &flows);
        let survivors = before.iter().filter(|&&b| b != 2).count();
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != 2 && a != b)
            .count();
        // In theory 2/3 of them.
        assert!(moved * 2 > survivors, "{moved} of {survivors} moved");
    }

    #[test]
    fn rebuild_buckets_invariants() {
        // Random membership changes: kept slaves never lose buckets to each
        // other, newcomers take at most ceil(256/n), all buckets are usable.
        let mut r = XorShift(4242);
        let mut usable: Vec<u8> = vec![0, 1, 2, 3, 4];
        let mut table = rebuild_buckets(None, &[], &usable);
        for _ in 0..300 {
            let mut next: Vec<u8> = (0..8u8).filter(|_| !r.next().is_multiple_of(3)).collect();
            if next.is_empty() {
                next.push((r.next() % 8) as u8);
            }
            let t2 = rebuild_buckets(Some(&table), &usable, &next);
            let n = next.len();
            let mut counts = [0usize; MAX_SLAVES];
            for b in 0..256 {
                assert!(next.contains(&t2[b]));
                counts[usize::from(t2[b])] += 1;
                let (old, new) = (table[b], t2[b]);
                if old != new && next.contains(&old) && usable.contains(&old) {
                    assert!(!usable.contains(&new), "moved between kept slaves");
                }
            }
            for &s in &next {
                if !usable.contains(&s) {
                    assert!(counts[usize::from(s)] <= 256usize.div_ceil(n));
                }
            }
            table = t2;
            usable = next;
        }
        assert_eq!(rebuild_buckets(None, &[], &[]), [0; 256]);
        // Fresh tables do not depend on the order of the usable list.
        assert_eq!(
            rebuild_buckets(None, &[], &[3, 1, 2]),
            rebuild_buckets(None, &[], &[1, 2, 3])
        );
    }

    // ------------------------------------------------------------------
    // Round robin, broadcast, single.

    fn rr_seq(plan: &TxPlan, rr: &mut RrState, n: usize) -> Vec<u8> {
        let f = v4_udp();
        (0..n).map(|_| plan.select(&f, rr).unwrap()).collect()
    }

    #[test]
    fn round_robin_exact_sequences() {
        // packets_per_slave 1: the pre-incremented counter 1, 2, 3, ... % 3.
        let p = TxPlan::round_robin(&[0, 1, 2], 1);
        assert_eq!(rr_seq(&p, &mut RrState::new(0), 7), [1, 2, 0, 1, 2, 0, 1]);
        // packets_per_slave 3 over slaves 4 and 6: counter 1..=9 / 3 =
        // 0,0,1,1,1,2,2,2,3 -> positions % 2.
        let p = TxPlan::round_robin(&[4, 6], 3);
        assert_eq!(
            rr_seq(&p, &mut RrState::new(0), 9),
            [4, 4, 6, 6, 6, 4, 4, 4, 6]
        );
        // State is per RrState: interleaving two workers does not mix them.
        let p = TxPlan::round_robin(&[0, 1, 2], 1);
        let (mut a, mut b) = (RrState::new(1), RrState::new(2));
        let mut sa = Vec::new();
        let mut sb = Vec::new();
        for _ in 0..4 {
            sa.extend(rr_seq(&p, &mut a, 1));
            sb.extend(rr_seq(&p, &mut b, 1));
        }
        assert_eq!(sa, [1, 2, 0, 1]);
        assert_eq!(sb, [1, 2, 0, 1]);
        // Wrap-around of the 32-bit counter stays in range.
        let mut w = RrState::new(0);
        w.counter = u32::MAX - 1;
        assert_eq!(rr_seq(&p, &mut w, 3), [(u32::MAX % 3) as u8, 0, 1]);
    }

    #[test]
    fn round_robin_random_spreads() {
        let p = TxPlan::round_robin(&[0, 1, 2], 0);
        let mut counts = [0usize; 3];
        for s in rr_seq(&p, &mut RrState::new(12345), 10_000) {
            counts[usize::from(s)] += 1;
        }
        for c in counts {
            assert!(c.abs_diff(3333) * 10 <= 3333, "{counts:?}");
        }
        // Different seeds, different sequences.
        assert_ne!(
            rr_seq(&p, &mut RrState::new(1), 32),
            rr_seq(&p, &mut RrState::new(2), 32)
        );
    }

    #[test]
    fn plan_kinds() {
        let f = v4_udp();
        let mut rr = RrState::new(1);
        assert_eq!(TxPlan::none().select(&f, &mut rr), None);
        assert_eq!(TxPlan::none().kind(), TxKind::None);
        let s = TxPlan::single(5);
        assert_eq!(s.select(&f, &mut rr), Some(5));
        assert_eq!(s.kind(), TxKind::Single(5));
        let b = TxPlan::broadcast(&[2, 0, 7]);
        assert_eq!(b.kind(), TxKind::Broadcast);
        assert_eq!(b.usable(), [2, 0, 7]);
        assert_eq!(b.usable_mask(), 0b1000_0101);
        assert_eq!(b.select(&f, &mut rr), Some(2));
        assert_eq!(TxPlan::broadcast(&[]).select(&f, &mut rr), None);
        assert_eq!(TxPlan::round_robin(&[], 1).select(&f, &mut rr), None);
        for reduce in [Reduce::Modulo, Reduce::Stable] {
            let h = TxPlan::hash(&[], Layer34, reduce, None);
            assert_eq!(h.select(&f, &mut rr), None);
            assert_eq!(h.slave_for_hash(7), None);
            let one = TxPlan::hash(&[9], Layer34, reduce, Some(&h));
            assert_eq!(one.select(&f, &mut rr), Some(9));
        }
        // Modulo is usable[hash % n], in the given order.
        let m = TxPlan::hash(&[3, 1, 2], Layer2, Reduce::Modulo, None);
        for h in [0u32, 1, 2, 3, 4, 0x0857, u32::MAX] {
            assert_eq!(m.slave_for_hash(h), Some([3, 1, 2][(h % 3) as usize]));
        }
        assert_eq!(
            m.select(&f, &mut rr),
            Some([3, 1, 2][hash(Layer2, &f) as usize % 3])
        );
        // Debug is short and names the counts.
        let st = TxPlan::hash(&[0, 1], Layer34, Reduce::Stable, None);
        assert!(format!("{st:?}").contains("buckets_per_slave: [(0, 128), (1, 128)]"));
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn duplicate_slaves_are_a_bug() {
        TxPlan::broadcast(&[1, 1]);
    }

    #[test]
    fn fast_mod_and_div_are_exact() {
        let mut r = XorShift(77);
        let mut samples: Vec<u32> = (0..20_000).map(|_| r.next() as u32).collect();
        samples.extend([0, 1, 2, 31, 32, 255, 256, u32::MAX, u32::MAX - 1, 1 << 31]);
        for d in 1..=MAX_SLAVES as u32 {
            let m = fast_mod_m(d);
            for &a in &samples {
                assert_eq!(fast_mod(a, m, d), a % d, "{a} % {d}");
            }
        }
        for d in (2..=65535u32).step_by(97).chain([2, 3, 1000, 65535]) {
            let m = fast_mod_m(d);
            for &a in &samples {
                assert_eq!(fast_div(a, m), a / d, "{a} / {d}");
            }
        }
    }

    // ------------------------------------------------------------------
    // Receive rule.

    #[test]
    fn rx_mask_per_mode() {
        let usable = [0u8, 2, 3];
        for mode in [Mode::BalanceRr, Mode::BalanceXor, Mode::Broadcast] {
            assert_eq!(rx_mask(mode, None, &usable, false), ALL_SLAVES);
        }
        for mode in [Mode::ActiveBackup, Mode::BalanceTlb, Mode::BalanceAlb] {
            assert_eq!(rx_mask(mode, Some(2), &usable, false), 0b100);
            assert_eq!(rx_mask(mode, None, &usable, false), 0);
        }
        assert_eq!(rx_mask(Mode::Ieee8023ad, Some(0), &usable, false), 0b1101);
        assert_eq!(rx_mask(Mode::Ieee8023ad, None, &[], false), 0);
        for &mode in Mode::ALL {
            assert_eq!(rx_mask(mode, Some(1), &usable, true), ALL_SLAVES);
        }
        assert_eq!(rx_mask(Mode::ActiveBackup, Some(31), &[], false), 1 << 31);
    }
}
