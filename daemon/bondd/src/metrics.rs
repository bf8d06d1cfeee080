//! Prometheus exposition of the bonds' state, and the small HTTP endpoint
//! that serves it.
//!
//! The text format is simple enough to write directly; a client library and
//! an HTTP stack would add two dozen crates to a daemon whose only HTTP need
//! is answering `GET /metrics`.

use crate::status::{BondStatus, SlaveStatus};
use anyhow::{Context, Result};
use std::{fmt::Write as _, net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::{mpsc, oneshot},
};
use tracing::info;

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            let _ = write!(self.out, "{{");
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    let _ = write!(self.out, ",");
                }
                let esc = val
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{esc}\"");
            }
            let _ = write!(self.out, "}}");
        }
        let _ = writeln!(self.out, " {v}");
    }
}

/// Renders every series for `bonds` in the Prometheus text format.
pub fn render(bonds: &[BondStatus]) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    type Get = fn(&SlaveStatus) -> u64;
    // Every per-slave series with one value: (name, type, help, value).
    let per_slave: [(&str, &str, &str, Get); 14] = [
        (
            "bondd_slave_rx_packets_total",
            "counter",
            "Frames received on the slave and passed to the bond.",
            |s| s.counters.rx_packets,
        ),
        (
            "bondd_slave_tx_packets_total",
            "counter",
            "Frames sent out of the slave.",
            |s| s.counters.tx_packets,
        ),
        (
            "bondd_slave_rx_bytes_total",
            "counter",
            "Bytes of frames received on the slave and passed to the bond.",
            |s| s.counters.rx_bytes,
        ),
        (
            "bondd_slave_tx_bytes_total",
            "counter",
            "Bytes of frames sent out of the slave.",
            |s| s.counters.tx_bytes,
        ),
        (
            "bondd_slave_up",
            "gauge",
            "1 if the slave's link is usable (MII status up).",
            |s| u64::from(s.mii_up),
        ),
        (
            "bondd_slave_active",
            "gauge",
            "1 if the slave transmits now (active slave, or in the usable set).",
            |s| u64::from(s.active),
        ),
        (
            "bondd_slave_link_failures_total",
            "counter",
            "Times the slave's link went down (Link Failure Count).",
            |s| u64::from(s.link_failure_count),
        ),
        (
            "bondd_slave_slow_proto_rx_total",
            "counter",
            "Slow-protocol (LACP, marker) frames received on the slave.",
            |s| s.counters.rx_slow_proto,
        ),
        (
            "bondd_slave_tx_kicks_total",
            "counter",
            "TX wakeups (sendto) made for the slave's AF_XDP sockets.",
            |s| s.counters.tx_kicks,
        ),
        (
            "bondd_xdp_redirected_total",
            "counter",
            "Frames the slave's XDP program redirected to bondd's AF_XDP sockets.",
            |s| s.counters.xdp_redirected,
        ),
        (
            "bondd_xsk_rx_ring_full_total",
            "counter",
            "Frames the kernel dropped because the slave socket's RX ring was full (the worker fell behind).",
            |s| s.counters.xsk_rx_ring_full,
        ),
        (
            "bondd_xsk_fill_ring_empty_total",
            "counter",
            "Times a frame arrived and the slave socket's fill ring was empty (no buffer to receive into).",
            |s| s.counters.xsk_fill_ring_empty,
        ),
        (
            "bondd_xsk_rx_dropped_total",
            "counter",
            "Frames the kernel dropped on the slave socket for other reasons.",
            |s| s.counters.xsk_rx_dropped,
        ),
        (
            "bondd_xsk_invalid_descs_total",
            "counter",
            "Invalid descriptors the kernel saw on the slave socket's rings (should stay 0).",
            |s| s.counters.xsk_invalid_descs,
        ),
    ];
    for (name, kind, help, get) in per_slave {
        f.head(name, kind, help);
        for b in bonds {
            for s in &b.slaves {
                f.sample(name, &[("bond", &b.name), ("slave", &s.name)], get(s));
            }
        }
    }
    // Per-slave counters by reason.
    type Reasons = fn(&SlaveStatus) -> &[(String, u64)];
    let by_reason: [(&str, &str, Reasons); 3] = [
        (
            "bondd_slave_rx_dropped_total",
            "Frames received on the slave and dropped, by reason.",
            |s| &s.counters.rx_dropped,
        ),
        (
            "bondd_slave_tx_dropped_total",
            "Frames meant for the slave and dropped, by reason.",
            |s| &s.counters.tx_dropped,
        ),
        (
            "bondd_xdp_dropped_total",
            "Frames the slave's XDP program dropped, by reason.",
            |s| &s.counters.xdp_dropped,
        ),
    ];
    for (name, help, get) in by_reason {
        f.head(name, "counter", help);
        for b in bonds {
            for s in &b.slaves {
                for (reason, v) in get(s) {
                    f.sample(
                        name,
                        &[("bond", &b.name), ("slave", &s.name), ("reason", reason)],
                        v,
                    );
                }
            }
        }
    }
    f.head(
        "bondd_slave_mode_info",
        "gauge",
        "Achieved XDP attach mode and AF_XDP copy mode of the slave (always 1).",
    );
    for b in bonds {
        for s in &b.slaves {
            f.sample(
                "bondd_slave_mode_info",
                &[
                    ("bond", &b.name),
                    ("slave", &s.name),
                    ("xdp", &s.xdp_mode),
                    ("af_xdp", &s.af_xdp_mode),
                ],
                1,
            );
        }
    }
    type LGet = fn(&crate::status::LacpPortStatus) -> u64;
    let lacp_series: [(&str, &str, &str, LGet); 6] = [
        (
            "bondd_lacp_pdus_rx_total",
            "counter",
            "LACPDUs received on the slave.",
            |p| p.lacpdu_rx,
        ),
        (
            "bondd_lacp_pdus_tx_total",
            "counter",
            "LACPDUs sent on the slave.",
            |p| p.lacpdu_tx,
        ),
        (
            "bondd_lacp_pdus_illegal_rx_total",
            "counter",
            "Malformed slow-protocol frames received on the slave.",
            |p| p.lacpdu_illegal_rx,
        ),
        (
            "bondd_lacp_actor_state",
            "gauge",
            "Actor LACP port state byte (802.1AX bits: 1 activity, 2 timeout, 4 aggregation, 8 sync, 16 collecting, 32 distributing, 64 defaulted, 128 expired).",
            |p| u64::from(p.actor.port_state),
        ),
        (
            "bondd_lacp_partner_state",
            "gauge",
            "Partner LACP port state byte, as last received.",
            |p| u64::from(p.partner.port_state),
        ),
        (
            "bondd_lacp_aggregator_id",
            "gauge",
            "Aggregator the slave is in (0: none).",
            |p| u64::from(p.aggregator_id.unwrap_or(0)),
        ),
    ];
    for (name, kind, help, get) in lacp_series {
        // A family with no samples is still valid exposition; emit the
        // LACP families only when some bond runs 802.3ad.
        if !bonds
            .iter()
            .any(|b| b.slaves.iter().any(|s| s.lacp.is_some()))
        {
            break;
        }
        f.head(name, kind, help);
        for b in bonds {
            for s in &b.slaves {
                if let Some(p) = &s.lacp {
                    f.sample(name, &[("bond", &b.name), ("slave", &s.name)], get(p));
                }
            }
        }
    }
    type BGet = fn(&crate::status::LogicalCounters) -> u64;
    let bond_series: [(&str, &str, &str, BGet); 6] = [
        (
            "bondd_logical_rx_packets_total",
            "counter",
            "Frames the host sent on the bond interface.",
            |l| l.rx_packets,
        ),
        (
            "bondd_logical_tx_packets_total",
            "counter",
            "Frames handed to the host on the bond interface.",
            |l| l.tx_packets,
        ),
        (
            "bondd_logical_tx_dropped_no_slave_total",
            "counter",
            "Frames from the host dropped because no slave could transmit.",
            |l| l.tx_drop_no_slave,
        ),
        (
            "bondd_logical_tx_dropped_ring_full_total",
            "counter",
            "Frames for the host dropped because its ring was full.",
            |l| l.tx_drop_ring_full,
        ),
        (
            "bondd_worker_fill_starved_total",
            "counter",
            "Times the worker had no free UMEM frame to refill a fill ring.",
            |l| l.fill_starved,
        ),
        (
            "bondd_worker_umem_frames",
            "gauge",
            "Frames in the worker's UMEM.",
            |l| l.umem_frames,
        ),
    ];
    for (name, kind, help, get) in bond_series {
        f.head(name, kind, help);
        for b in bonds {
            f.sample(name, &[("bond", &b.name)], get(&b.logical));
        }
    }
    f.head(
        "bondd_bond_up",
        "gauge",
        "1 if the bond has carrier (MII status up).",
    );
    for b in bonds {
        f.sample("bondd_bond_up", &[("bond", &b.name)], u8::from(b.mii_up));
    }
    f.head(
        "bondd_failovers_total",
        "counter",
        "Changes of the active slave (or of the transmitting set).",
    );
    for b in bonds {
        f.sample("bondd_failovers_total", &[("bond", &b.name)], b.failovers);
    }
    f.head(
        "bondd_active_slave_info",
        "gauge",
        "The active slave of an active-backup bond (always 1; absent when none).",
    );
    for b in bonds {
        if let Some(a) = &b.active_slave {
            f.sample(
                "bondd_active_slave_info",
                &[("bond", &b.name), ("slave", a)],
                1,
            );
        }
    }
    out
}

/// Serves `GET /metrics` on `addr`; each scrape asks the main loop for
/// the current state over `tx`.
pub async fn serve(
    addr: SocketAddr,
    tx: mpsc::Sender<oneshot::Sender<String>>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics: listening on {addr}"))?;
    info!(%addr, "metrics listening on http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                let head_done = loop {
                    let r = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf[n..]))
                        .await;
                    match r {
                        Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break false,
                        Ok(Ok(k)) => {
                            n += k;
                            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                                break true;
                            }
                            if n == buf.len() {
                                break false;
                            }
                        }
                    }
                };
                if !head_done {
                    return;
                }
                let req = String::from_utf8_lossy(&buf[..n]);
                let first = req.lines().next().unwrap_or("");
                let mut parts = first.split_whitespace();
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let path = target.split('?').next().unwrap_or("");
                let (status, ctype, body) = if method == "GET" && path == "/metrics" {
                    let (rtx, rrx) = oneshot::channel();
                    if tx.send(rtx).await.is_err() {
                        return;
                    }
                    match rrx.await {
                        Ok(body) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body),
                        Err(_) => return,
                    }
                } else if method == "GET" && path == "/" {
                    (
                        "200 OK",
                        "text/html; charset=utf-8",
                        "<html><body><a href=\"/metrics\">bondd metrics</a></body></html>\n"
                            .to_string(),
                    )
                } else {
                    (
                        "404 Not Found",
                        "text/plain; charset=utf-8",
                        "not found\n".to_string(),
                    )
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{SlaveCounters, SlaveStatus};

    #[test]
    fn every_series_has_help_and_type_and_labels_are_escaped() {
        let b = BondStatus {
            name: "bond0".into(),
            mii_up: true,
            active_slave: Some("eth1".into()),
            failovers: 2,
            slaves: vec![SlaveStatus {
                name: "eth\"1".into(),
                mii_up: true,
                active: true,
                counters: SlaveCounters {
                    rx_packets: 10,
                    rx_dropped: vec![("inactive".into(), 3)],
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&[b]);
        let mut families = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                families.insert(rest.split_whitespace().next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(families.contains(name), "{name} has no HELP");
            }
        }
        assert!(text.contains(r#"bondd_slave_rx_packets_total{bond="bond0",slave="eth\"1"} 10"#));
        assert!(text.contains(
            r#"bondd_slave_rx_dropped_total{bond="bond0",slave="eth\"1",reason="inactive"} 3"#
        ));
        assert!(text.contains(r#"bondd_failovers_total{bond="bond0"} 2"#));
        assert!(text.contains(r#"bondd_active_slave_info{bond="bond0",slave="eth1"} 1"#));
        assert!(
            !text.contains("bondd_lacp_"),
            "no LACP families for a non-LACP bond"
        );
    }

    #[test]
    fn lacp_series_for_802_3ad_bonds() {
        let b = BondStatus {
            name: "bond0".into(),
            slaves: vec![SlaveStatus {
                name: "eth1".into(),
                lacp: Some(crate::status::LacpPortStatus {
                    aggregator_id: Some(3),
                    lacpdu_rx: 7,
                    actor: crate::status::LacpDetails {
                        port_state: 63,
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&[b]);
        assert!(text.contains(r#"bondd_lacp_pdus_rx_total{bond="bond0",slave="eth1"} 7"#));
        assert!(text.contains(r#"bondd_lacp_actor_state{bond="bond0",slave="eth1"} 63"#));
        assert!(text.contains(r#"bondd_lacp_aggregator_id{bond="bond0",slave="eth1"} 3"#));
        assert!(text.contains("# HELP bondd_lacp_partner_state "));
    }
}
