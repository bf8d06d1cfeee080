//! Pure bonding logic for bondd: configuration, slave link state and
//! active-slave choice. Nothing here does I/O or reads a clock, so every rule
//! can be tested deterministically in virtual time; the daemon feeds in events
//! and the current [`time::Instant`].
#![forbid(unsafe_code)]

pub mod config;
pub mod lacp;
pub mod link;
pub mod select;
pub mod time;
pub mod xmit;

pub use time::Instant;
