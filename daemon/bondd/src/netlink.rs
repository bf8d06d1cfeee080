//! rtnetlink: the control plane's view of links (carrier, MAC, MTU, flags,
//! XDP attachment), the changes bondd makes to them, and the link event
//! stream that drives failover.

use anyhow::{Context, Result, anyhow, bail};
use futures::{StreamExt, TryStreamExt, channel::mpsc::UnboundedReceiver};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    address::AddressAttribute,
    link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp, XdpAttached},
};
use netlink_sys::AsyncSocket;
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::net::IpAddr;

/// What bondd needs to know of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfoView {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Current MAC.
    pub mac: Option<[u8; 6]>,
    /// Permanent (factory) MAC, when the driver has one.
    pub perm_mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// Carrier present (lower layer up).
    pub carrier: bool,
    /// Promiscuous flag.
    pub promisc: bool,
    /// All-multicast flag.
    pub allmulti: bool,
    /// Interface alias (`ip link set X alias ...`).
    pub alias: Option<String>,
    /// Link kind ("veth", "tun", ...), if any.
    pub kind: Option<String>,
    /// Id of an XDP program attached, if any.
    pub xdp_prog_id: Option<u32>,
    /// XDP attach mode byte (XDP_ATTACHED_*), if attached.
    pub xdp_attached: Option<u8>,
}

fn mac6(v: &[u8]) -> Option<[u8; 6]> {
    v.try_into().ok()
}

impl LinkInfoView {
    fn from_msg(m: &LinkMessage) -> Self {
        let mut v = LinkInfoView {
            index: m.header.index,
            name: String::new(),
            mac: None,
            perm_mac: None,
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
            carrier: m.header.flags.contains(LinkFlags::LowerUp),
            promisc: m.header.flags.contains(LinkFlags::Promisc),
            allmulti: m.header.flags.contains(LinkFlags::Allmulti),
            alias: None,
            kind: None,
            xdp_prog_id: None,
            xdp_attached: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => v.name = n.clone(),
                LinkAttribute::Address(b) => v.mac = mac6(b),
                LinkAttribute::PermAddress(b) => v.perm_mac = mac6(b),
                LinkAttribute::Mtu(x) => v.mtu = *x,
                LinkAttribute::IfAlias(s) => v.alias = Some(s.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            v.kind = Some(kind_name(k));
                        }
                    }
                }
                LinkAttribute::Xdp(xs) => {
                    for x in xs {
                        match x {
                            LinkXdp::ProgId(id) if *id != 0 => v.xdp_prog_id = Some(*id),
                            LinkXdp::Attached(a) => {
                                v.xdp_attached = match a {
                                    XdpAttached::None => None,
                                    XdpAttached::Driver => Some(1),
                                    XdpAttached::SocketBuffer => Some(2),
                                    XdpAttached::Hardware => Some(3),
                                    XdpAttached::Multiple => Some(4),
                                    XdpAttached::Other(b) => Some(*b),
                                    _ => None,
                                };
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // IFF_LOWER_UP is the carrier as the stack sees it (netif_carrier_ok
        // on an up link), which is what the kernel bonding driver uses.
        v
    }
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Veth => "veth".into(),
        InfoKind::Tun => "tun".into(),
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Bond => "bond".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A change of a link seen on the event stream.
#[derive(Clone, Debug)]
pub enum LinkEvent {
    /// New or changed link.
    Changed(LinkInfoView),
    /// Link removed.
    Removed {
        /// Interface index.
        index: u32,
        /// Interface name.
        name: String,
    },
}

/// A netlink connection: requests through `handle`, link events on `events`.
pub struct Net {
    /// Request handle.
    pub handle: Handle,
    events:
        Option<UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, netlink_sys::SocketAddr)>>,
}

impl Net {
    /// Opens a connection subscribed to link events and spawns its driver
    /// on the current tokio runtime.
    pub fn open() -> Result<Self> {
        let (mut conn, handle, events) =
            rtnetlink::new_connection().context("opening rtnetlink socket")?;
        conn.socket_mut()
            .socket_mut()
            .bind(&netlink_sys::SocketAddr::new(
                0,
                rtnetlink::constants::RTMGRP_LINK,
            ))
            .context("subscribing to link events")?;
        tokio::spawn(conn);
        Ok(Self {
            handle,
            events: Some(events),
        })
    }

    /// Takes the link event stream (once).
    pub fn take_events(&mut self) -> impl futures::Stream<Item = LinkEvent> + Unpin + use<> {
        let rx = self.events.take().expect("events taken twice");
        rx.filter_map(|(msg, _)| async move {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    Some(LinkEvent::Changed(LinkInfoView::from_msg(&m)))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                    let v = LinkInfoView::from_msg(&m);
                    Some(LinkEvent::Removed {
                        index: v.index,
                        name: v.name,
                    })
                }
                _ => None,
            }
        })
        .boxed()
    }

    /// Looks a link up by name; `Ok(None)` if it does not exist.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<LinkInfoView>> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(LinkInfoView::from_msg(&m))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow!("looking up link {name}: {e}")),
        }
    }

    /// Looks a link up by index.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<LinkInfoView>> {
        let mut s = self.handle.link().get().match_index(index).execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(LinkInfoView::from_msg(&m))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow!("looking up link {index}: {e}")),
        }
    }

    async fn set(&self, msg: LinkMessage, what: &str) -> Result<()> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| anyhow!("{what}: {e}"))
    }

    /// Sets a link up or down.
    pub async fn set_up(&self, index: u32, up: bool) -> Result<()> {
        let b = LinkUnspec::new_with_index(index);
        let b = if up { b.up() } else { b.down() };
        self.set(b.build(), if up { "set link up" } else { "set link down" })
            .await
    }

    /// Sets the MAC address; takes the link down and up again for drivers
    /// that refuse a live change.
    pub async fn set_mac(&self, index: u32, mac: [u8; 6]) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .address(mac.to_vec())
            .build();
        if self.set(msg.clone(), "set MAC").await.is_ok() {
            return Ok(());
        }
        let was_up = self
            .link_by_index(index)
            .await?
            .map(|l| l.up)
            .unwrap_or(false);
        if was_up {
            self.set_up(index, false).await?;
        }
        let r = self.set(msg, "set MAC").await;
        if was_up {
            self.set_up(index, true).await?;
        }
        r
    }

    /// Sets the MTU.
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        self.set(
            LinkUnspec::new_with_index(index).mtu(mtu).build(),
            "set MTU",
        )
        .await
    }

    /// Sets promiscuous and all-multicast flags.
    pub async fn set_flags(&self, index: u32, promisc: bool, allmulti: bool) -> Result<()> {
        self.set(
            LinkUnspec::new_with_index(index)
                .promiscuous(promisc)
                .allmulticast(allmulti)
                .build(),
            "set promisc/allmulti",
        )
        .await
    }

    /// Sets the interface alias, which marks links bondd created.
    pub async fn set_alias(&self, index: u32, alias: &str) -> Result<()> {
        self.set(
            LinkUnspec::new_with_index(index).alias(alias).build(),
            "set alias",
        )
        .await
    }

    /// Creates a veth pair.
    /// Creates a veth pair with `queues` RX and TX queues on each end (one
    /// per data-plane worker).
    pub async fn add_veth(&self, name: &str, peer: &str, queues: u32) -> Result<()> {
        let q = queues.max(1);
        let peer_msg = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .append_extra_attribute(LinkAttribute::NumTxQueues(q))
            .append_extra_attribute(LinkAttribute::NumRxQueues(q))
            .build();
        let msg = LinkVeth::new(name, peer)
            .set_info_data(netlink_packet_route::link::InfoData::Veth(
                netlink_packet_route::link::InfoVeth::Peer(peer_msg),
            ))
            .append_extra_attribute(LinkAttribute::NumTxQueues(q))
            .append_extra_attribute(LinkAttribute::NumRxQueues(q))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| anyhow!("creating veth pair {name}/{peer}: {e}"))
    }

    /// Deletes a link.
    pub async fn del_link(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| anyhow!("deleting link {index}: {e}"))
    }

    /// Detaches whatever XDP program is attached through netlink (a leftover
    /// of a killed process that did not use a bpf_link).
    pub async fn detach_xdp(&self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::Xdp(vec![LinkXdp::Fd(-1)]))
            .build();
        self.set(msg, "detach XDP").await
    }

    /// Adds an address.
    pub async fn add_address(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        match self
            .handle
            .address()
            .add(index, addr, prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.code.map(|c| -c.get()) == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!("adding address {addr}/{prefix}: {e}")),
        }
    }

    /// Removes an address.
    pub async fn del_address(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(addr)
            .set_prefix_length_filter(prefix)
            .execute();
        while let Some(m) = s.try_next().await.context("dumping addresses")? {
            self.handle
                .address()
                .del(m)
                .execute()
                .await
                .map_err(|e| anyhow!("deleting address {addr}/{prefix}: {e}"))?;
        }
        Ok(())
    }

    /// Adds a default route through `gw` on link `index`.
    pub async fn add_default_route(&self, index: u32, gw: IpAddr) -> Result<()> {
        let msg = match gw {
            IpAddr::V4(g) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .gateway(g)
                .output_interface(index)
                .build(),
            IpAddr::V6(g) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .gateway(g)
                .output_interface(index)
                .build(),
        };
        match self.handle.route().add(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.code.map(|c| -c.get()) == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!("adding default route via {gw}: {e}")),
        }
    }

    /// The addresses on a link (for gratuitous ARP and unsolicited NA).
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpAddr>> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await.context("dumping addresses")? {
            if m.header.index != index {
                continue;
            }
            for a in &m.attributes {
                if let AddressAttribute::Address(ip) = a {
                    out.push(*ip);
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Fails with a message naming the link if it does not exist.
pub async fn require_link(net: &Net, name: &str, role: &str) -> Result<LinkInfoView> {
    match net.link_by_name(name).await? {
        Some(l) => Ok(l),
        None => bail!("{role} {name} does not exist"),
    }
}
