//! Peer notification frames sent from the new active slave after a failover:
//! gratuitous ARP for each IPv4 address and an unsolicited neighbour
//! advertisement for each IPv6 address, so that switches relearn the bond's
//! MAC on the new port and neighbours refresh their caches.

use std::net::{Ipv4Addr, Ipv6Addr};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;

/// A gratuitous ARP request (sender = target = `ip`), broadcast, as the
/// kernel sends for NETDEV_NOTIFY_PEERS.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&1u16.to_be_bytes()); // htype Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
    f.push(6);
    f.push(4);
    f.extend_from_slice(&1u16.to_be_bytes()); // request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip.octets());
    f.resize(60, 0); // minimum Ethernet frame without FCS
    f
}

/// An unsolicited neighbour advertisement for `ip` to all-nodes (ff02::1),
/// override flag set, with the target link-layer address option (RFC 4861
/// §7.2.6).
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Vec<u8> {
    let dst_ip: Ipv6Addr = "ff02::1".parse().expect("constant");
    let mut icmp = Vec::with_capacity(32);
    icmp.push(136); // type: neighbour advertisement
    icmp.push(0); // code
    icmp.extend_from_slice(&[0, 0]); // checksum, filled below
    icmp.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // O flag
    icmp.extend_from_slice(&ip.octets());
    icmp.push(2); // option: target link-layer address
    icmp.push(1); // length in 8-byte units
    icmp.extend_from_slice(&mac);
    let csum = icmpv6_checksum(&ip, &dst_ip, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&0x6000_0000u32.to_be_bytes()); // version 6
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(58); // next header ICMPv6
    f.push(255); // hop limit, required for ND
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&dst_ip.octets());
    f.extend_from_slice(&icmp);
    f
}

fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, body: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += u32::from(w);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(body);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn garp_layout() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "ARP request");
        assert_eq!(&f[22..28], &MAC, "sender MAC");
        assert_eq!(&f[28..32], &[198, 18, 0, 1], "sender IP");
        assert_eq!(&f[38..42], &[198, 18, 0, 1], "target IP = sender IP");
    }

    #[test]
    fn na_checksum_verifies() {
        let ip: Ipv6Addr = "2001:2::1".parse().unwrap();
        let f = unsolicited_na(MAC, ip);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[14 + 7], 255, "hop limit must be 255 for ND");
        let body = &f[54..];
        assert_eq!(body[0], 136);
        assert_eq!(body[4] & 0x20, 0x20, "override flag");
        // Recomputing over the packet including its checksum gives 0.
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut with = body.to_vec();
        let c = u16::from_be_bytes([with[2], with[3]]);
        with[2] = 0;
        with[3] = 0;
        assert_eq!(icmpv6_checksum(&ip, &dst, &with), c);
        assert_ne!(c, 0);
    }
}
