//! AF_XDP layer of bondd: UMEM, rings, sockets, XDP program loading, and the
//! few device ioctls netlink does not cover. This is the only crate of bondd
//! with `unsafe` code; every block says why it is sound.

#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod program;
pub mod ring;
pub mod socket;
pub mod sys;

pub use program::{AttachMode, XdpCounters, XdpPort};
pub use ring::{ConsRing, MemRing, ProdRing, XdpDesc};
pub use socket::{CopyMode, RingSizes, Umem, Xsk, XskStats, poll_readable};
