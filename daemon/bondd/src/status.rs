//! The running state of a bond as data (for `bondd status --json` and the
//! metrics), and its rendering in the format of `/proc/net/bonding/<bond>`,
//! field for field and in the kernel's order, so that scripts and habits
//! built on that file carry over.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One slave as `/proc/net/bonding` shows it, plus bondd's counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlaveStatus {
    /// Interface name.
    pub name: String,
    /// Carrier as the bond sees it (after up/down delays).
    pub mii_up: bool,
    /// Link state: up, fail (downdelay running), down, back (updelay running).
    pub link_state: String,
    /// Speed in Mb/s when known.
    pub speed_mbps: Option<u32>,
    /// Full duplex when known.
    pub full_duplex: Option<bool>,
    /// Times the link went down.
    pub link_failure_count: u32,
    /// The slave's own MAC before it was enslaved.
    pub perm_hwaddr: String,
    /// Kernel `queue_id` (always 0 in bondd).
    pub queue_id: u16,
    /// Transmits now (active slave, or in the usable set).
    pub active: bool,
    /// XDP attach mode ("native"/"generic").
    pub xdp_mode: String,
    /// AF_XDP mode ("copy"/"zero-copy").
    pub af_xdp_mode: String,
    /// Counters.
    pub counters: SlaveCounters,
    /// 802.3ad per-port section, when the bond runs LACP.
    pub lacp: Option<LacpPortStatus>,
}

/// Per-slave counters kept by the worker and the XDP program.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlaveCounters {
    /// Frames received and passed up.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Dropped on receive, by reason.
    pub rx_dropped: Vec<(String, u64)>,
    /// Dropped on transmit, by reason.
    pub tx_dropped: Vec<(String, u64)>,
    /// Slow-protocol frames received.
    pub rx_slow_proto: u64,
    /// TX kicks (sendto) made.
    pub tx_kicks: u64,
    /// XDP program: frames redirected to bondd (data and slow protocols).
    pub xdp_redirected: u64,
    /// XDP program: drops by reason.
    pub xdp_dropped: Vec<(String, u64)>,
    /// AF_XDP (kernel): frames dropped because the RX ring was full.
    pub xsk_rx_ring_full: u64,
    /// AF_XDP (kernel): times a frame found the fill ring empty.
    pub xsk_fill_ring_empty: u64,
    /// AF_XDP (kernel): other receive drops.
    pub xsk_rx_dropped: u64,
    /// AF_XDP (kernel): invalid descriptors on RX and TX.
    pub xsk_invalid_descs: u64,
}

/// LACP details of one port, as /proc prints them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LacpPortStatus {
    /// Aggregator the port is in, if any.
    pub aggregator_id: Option<u16>,
    /// `monitoring`, `churned` or `none`.
    pub actor_churn_state: String,
    /// Likewise for the partner.
    pub partner_churn_state: String,
    /// Churn counts.
    pub actor_churned_count: u32,
    /// Churn counts.
    pub partner_churned_count: u32,
    /// Actor: system priority, system MAC, key, port priority, port number, state.
    pub actor: LacpDetails,
    /// Partner: the same (key printed as "oper key").
    pub partner: LacpDetails,
    /// LACPDUs received.
    pub lacpdu_rx: u64,
    /// LACPDUs sent.
    pub lacpdu_tx: u64,
    /// Malformed slow-protocol frames received.
    pub lacpdu_illegal_rx: u64,
    /// Unknown slow-protocol subtypes received.
    pub lacpdu_unknown_rx: u64,
    /// Marker PDUs received.
    pub marker_rx: u64,
    /// Marker responses sent.
    pub marker_resp_tx: u64,
    /// Port is collecting.
    pub collecting: bool,
    /// Port is distributing.
    pub distributing: bool,
}

/// The six LACP identity fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LacpDetails {
    /// System priority.
    pub system_priority: u16,
    /// System MAC.
    pub system_mac: String,
    /// Key.
    pub key: u16,
    /// Port priority.
    pub port_priority: u16,
    /// Port number.
    pub port_number: u16,
    /// State byte.
    pub port_state: u8,
}

/// Bond-wide 802.3ad section.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LacpBondStatus {
    /// `lacp_active`.
    pub active: bool,
    /// `slow`/`fast`.
    pub rate: String,
    /// `min_links`.
    pub min_links: u32,
    /// `ad_select` name.
    pub ad_select: String,
    /// `ad_actor_sys_prio`.
    pub system_priority: u16,
    /// Actor system MAC.
    pub system_mac: String,
    /// Active aggregator: id, ports, actor key, partner key, partner MAC.
    pub active_aggregator: Option<(u16, u32, u16, u16, String)>,
}

/// One bond.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BondStatus {
    /// Bond name.
    pub name: String,
    /// Kernel mode name (`active-backup`).
    pub mode: String,
    /// /proc description (`fault-tolerance (active-backup)`).
    pub mode_description: String,
    /// `fail_over_mac` name.
    pub fail_over_mac: String,
    /// `(name, number)` when the mode hashes.
    pub xmit_hash_policy: Option<(String, u8)>,
    /// Whether the mode has a primary / active slave (1, 5, 6).
    pub uses_primary: bool,
    /// Primary slave.
    pub primary: Option<String>,
    /// `primary_reselect` name.
    pub primary_reselect: String,
    /// Current active slave.
    pub active_slave: Option<String>,
    /// Bond carrier.
    pub mii_up: bool,
    /// `miimon` (ms).
    pub miimon: u32,
    /// `updelay` (ms).
    pub updelay: u32,
    /// `downdelay` (ms).
    pub downdelay: u32,
    /// `peer_notif_delay` (ms).
    pub peer_notif_delay: u32,
    /// `arp_interval` (ms).
    pub arp_interval: u32,
    /// Bond MAC.
    pub mac: String,
    /// `veth` or `tap`.
    pub interface: String,
    /// Changes of active slave (or usable set) so far.
    pub failovers: u64,
    /// 802.3ad section.
    pub lacp: Option<LacpBondStatus>,
    /// Slaves in config order.
    pub slaves: Vec<SlaveStatus>,
    /// The logical interface's side of the worker.
    pub logical: LogicalCounters,
}

/// Counters of the logical interface's port of the worker.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogicalCounters {
    /// Frames from the host (to transmit on the slaves).
    pub rx_packets: u64,
    /// Frames to the host (received on the slaves).
    pub tx_packets: u64,
    /// Frames from the host dropped: no slave may transmit.
    pub tx_drop_no_slave: u64,
    /// Frames to the host dropped: its ring was full.
    pub tx_drop_ring_full: u64,
    /// Times the worker's free list could not refill a fill ring.
    pub fill_starved: u64,
    /// UMEM frames of the worker.
    pub umem_frames: u64,
}

fn onoff(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

impl BondStatus {
    /// Renders what `/proc/net/bonding/<name>` prints for this state.
    /// `version` fills the header line.
    pub fn to_proc(&self, version: &str) -> String {
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(w, "Ethernet Channel Bonding Driver: v{version}");
        let _ = writeln!(w);
        let fom = if self.mode == "active-backup" && self.fail_over_mac != "none" {
            format!(" (fail_over_mac {})", self.fail_over_mac)
        } else {
            String::new()
        };
        let _ = writeln!(w, "Bonding Mode: {}{fom}", self.mode_description);
        if let Some((name, n)) = &self.xmit_hash_policy {
            let _ = writeln!(w, "Transmit Hash Policy: {name} ({n})");
        }
        if self.uses_primary {
            match &self.primary {
                Some(p) => {
                    let _ = writeln!(
                        w,
                        "Primary Slave: {p} (primary_reselect {})",
                        self.primary_reselect
                    );
                }
                None => {
                    let _ = writeln!(w, "Primary Slave: None");
                }
            }
            let _ = writeln!(
                w,
                "Currently Active Slave: {}",
                self.active_slave.as_deref().unwrap_or("None")
            );
        }
        let _ = writeln!(w, "MII Status: {}", if self.mii_up { "up" } else { "down" });
        let _ = writeln!(w, "MII Polling Interval (ms): {}", self.miimon);
        let _ = writeln!(w, "Up Delay (ms): {}", self.updelay);
        let _ = writeln!(w, "Down Delay (ms): {}", self.downdelay);
        let _ = writeln!(w, "Peer Notification Delay (ms): {}", self.peer_notif_delay);
        if self.arp_interval > 0 {
            let _ = writeln!(w, "ARP Polling Interval (ms): {}", self.arp_interval);
        }
        if let Some(l) = &self.lacp {
            let _ = writeln!(w);
            let _ = writeln!(w, "802.3ad info");
            let _ = writeln!(w, "LACP active: {}", onoff(l.active));
            let _ = writeln!(w, "LACP rate: {}", l.rate);
            let _ = writeln!(w, "Min links: {}", l.min_links);
            let _ = writeln!(
                w,
                "Aggregator selection policy (ad_select): {}",
                l.ad_select
            );
            let _ = writeln!(w, "System priority: {}", l.system_priority);
            let _ = writeln!(w, "System MAC address: {}", l.system_mac);
            match &l.active_aggregator {
                None => {
                    let _ = writeln!(w, "bond {} has no active aggregator", self.name);
                }
                Some((id, ports, ak, pk, pmac)) => {
                    let _ = writeln!(w, "Active Aggregator Info:");
                    let _ = writeln!(w, "\tAggregator ID: {id}");
                    let _ = writeln!(w, "\tNumber of ports: {ports}");
                    let _ = writeln!(w, "\tActor Key: {ak}");
                    let _ = writeln!(w, "\tPartner Key: {pk}");
                    let _ = writeln!(w, "\tPartner Mac Address: {pmac}");
                }
            }
        }
        for sl in &self.slaves {
            let _ = writeln!(w);
            let _ = writeln!(w, "Slave Interface: {}", sl.name);
            // The kernel's bond_slave_link_status() words.
            let mii = match sl.link_state.as_str() {
                "fail" => "going down",
                "back" => "going back",
                "down" => "down",
                _ if sl.mii_up => "up",
                _ => "down",
            };
            let _ = writeln!(w, "MII Status: {mii}");
            match sl.speed_mbps {
                Some(sp) => {
                    let _ = writeln!(w, "Speed: {sp} Mbps");
                }
                None => {
                    let _ = writeln!(w, "Speed: Unknown");
                }
            }
            let _ = writeln!(
                w,
                "Duplex: {}",
                match sl.full_duplex {
                    Some(true) => "full",
                    Some(false) => "half",
                    None => "Unknown",
                }
            );
            let _ = writeln!(w, "Link Failure Count: {}", sl.link_failure_count);
            let _ = writeln!(w, "Permanent HW addr: {}", sl.perm_hwaddr);
            let _ = writeln!(w, "Slave queue ID: {}", sl.queue_id);
            if let Some(p) = &sl.lacp {
                match p.aggregator_id {
                    Some(id) => {
                        let _ = writeln!(w, "Aggregator ID: {id}");
                    }
                    None => {
                        let _ = writeln!(w, "Aggregator ID: N/A");
                    }
                }
                let _ = writeln!(w, "Actor Churn State: {}", p.actor_churn_state);
                let _ = writeln!(w, "Partner Churn State: {}", p.partner_churn_state);
                let _ = writeln!(w, "Actor Churned Count: {}", p.actor_churned_count);
                let _ = writeln!(w, "Partner Churned Count: {}", p.partner_churned_count);
                for (title, d, key) in [
                    ("details actor lacp pdu:", &p.actor, "port key"),
                    ("details partner lacp pdu:", &p.partner, "oper key"),
                ] {
                    let _ = writeln!(w, "{title}");
                    let _ = writeln!(w, "    system priority: {}", d.system_priority);
                    let _ = writeln!(w, "    system mac address: {}", d.system_mac);
                    let _ = writeln!(w, "    {key}: {}", d.key);
                    let _ = writeln!(w, "    port priority: {}", d.port_priority);
                    let _ = writeln!(w, "    port number: {}", d.port_number);
                    let _ = writeln!(w, "    port state: {}", d.port_state);
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slave(name: &str, mac: &str, failures: u32) -> SlaveStatus {
        SlaveStatus {
            name: name.into(),
            mii_up: true,
            link_state: "up".into(),
            speed_mbps: Some(10000),
            full_duplex: Some(true),
            link_failure_count: failures,
            perm_hwaddr: mac.into(),
            queue_id: 0,
            ..Default::default()
        }
    }

    #[test]
    fn active_backup_matches_the_kernel_layout() {
        let st = BondStatus {
            name: "bond0".into(),
            mode: "active-backup".into(),
            mode_description: "fault-tolerance (active-backup)".into(),
            fail_over_mac: "none".into(),
            uses_primary: true,
            primary: Some("eth1".into()),
            primary_reselect: "always".into(),
            active_slave: Some("eth1".into()),
            mii_up: true,
            miimon: 100,
            slaves: vec![
                slave("eth1", "02:00:00:0a:6c:4b", 0),
                slave("eth2", "02:0b:0c:0d:0e:02", 1),
            ],
            ..Default::default()
        };
        let want = "\
Ethernet Channel Bonding Driver: v6.18.44

Bonding Mode: fault-tolerance (active-backup)
Primary Slave: eth1 (primary_reselect always)
Currently Active Slave: eth1
MII Status: up
MII Polling Interval (ms): 100
Up Delay (ms): 0
Down Delay (ms): 0
Peer Notification Delay (ms): 0

Slave Interface: eth1
MII Status: up
Speed: 10000 Mbps
Duplex: full
Link Failure Count: 0
Permanent HW addr: 02:00:00:0a:6c:4b
Slave queue ID: 0

Slave Interface: eth2
MII Status: up
Speed: 10000 Mbps
Duplex: full
Link Failure Count: 1
Permanent HW addr: 02:0b:0c:0d:0e:02
Slave queue ID: 0
";
        assert_eq!(st.to_proc("6.18.44"), want);
    }

    #[test]
    fn ieee8023ad_matches_the_kernel_layout() {
        let mut s1 = slave("eth1", "3c:4a:92:7c:ef:ef", 0);
        s1.speed_mbps = Some(1000);
        s1.lacp = Some(LacpPortStatus {
            aggregator_id: Some(1),
            actor_churn_state: "none".into(),
            partner_churn_state: "none".into(),
            actor_churned_count: 0,
            partner_churned_count: 0,
            actor: LacpDetails {
                system_priority: 65535,
                system_mac: "3c:4a:92:7c:ef:ef".into(),
                key: 9,
                port_priority: 255,
                port_number: 1,
                port_state: 63,
            },
            partner: LacpDetails {
                system_priority: 127,
                system_mac: "a8:d0:e5:bc:77:c0".into(),
                key: 3,
                port_priority: 127,
                port_number: 4,
                port_state: 63,
            },
            ..Default::default()
        });
        let st = BondStatus {
            name: "bond0".into(),
            mode: "802.3ad".into(),
            mode_description: "IEEE 802.3ad Dynamic link aggregation".into(),
            fail_over_mac: "none".into(),
            xmit_hash_policy: Some(("layer2".into(), 0)),
            mii_up: true,
            miimon: 100,
            lacp: Some(LacpBondStatus {
                active: true,
                rate: "fast".into(),
                min_links: 0,
                ad_select: "stable".into(),
                system_priority: 65535,
                system_mac: "3c:4a:92:7c:ef:ef".into(),
                active_aggregator: Some((1, 1, 9, 3, "a8:d0:e5:bc:77:c0".into())),
            }),
            slaves: vec![s1],
            ..Default::default()
        };
        let want = "\
Ethernet Channel Bonding Driver: v6.18.44

Bonding Mode: IEEE 802.3ad Dynamic link aggregation
Transmit Hash Policy: layer2 (0)
MII Status: up
MII Polling Interval (ms): 100
Up Delay (ms): 0
Down Delay (ms): 0
Peer Notification Delay (ms): 0

802.3ad info
LACP active: on
LACP rate: fast
Min links: 0
Aggregator selection policy (ad_select): stable
System priority: 65535
System MAC address: 3c:4a:92:7c:ef:ef
Active Aggregator Info:
\tAggregator ID: 1
\tNumber of ports: 1
\tActor Key: 9
\tPartner Key: 3
\tPartner Mac Address: a8:d0:e5:bc:77:c0

Slave Interface: eth1
MII Status: up
Speed: 1000 Mbps
Duplex: full
Link Failure Count: 0
Permanent HW addr: 3c:4a:92:7c:ef:ef
Slave queue ID: 0
Aggregator ID: 1
Actor Churn State: none
Partner Churn State: none
Actor Churned Count: 0
Partner Churned Count: 0
details actor lacp pdu:
    system priority: 65535
    system mac address: 3c:4a:92:7c:ef:ef
    port key: 9
    port priority: 255
    port number: 1
    port state: 63
details partner lacp pdu:
    system priority: 127
    system mac address: a8:d0:e5:bc:77:c0
    oper key: 3
    port priority: 127
    port number: 4
    port state: 63
";
        assert_eq!(st.to_proc("6.18.44"), want);
    }

    #[test]
    fn json_round_trips() {
        let st = BondStatus {
            name: "bond0".into(),
            slaves: vec![slave("eth1", "02:00:00:00:00:01", 2)],
            ..Default::default()
        };
        let j = serde_json::to_string(&st).unwrap();
        assert_eq!(serde_json::from_str::<BondStatus>(&j).unwrap(), st);
    }
}
