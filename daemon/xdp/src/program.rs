//! Loading and attaching bondd's XDP program (built from `ebpf/bondd.bpf.c`
//! by build.rs). One instance with its own maps is loaded per interface.

use aya::{
    Ebpf,
    maps::{Array, PerCpuArray, XskMap},
    programs::{Xdp, XdpMode, xdp::XdpLinkId},
};
use std::os::fd::RawFd;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bondd.bpf.o"));

/// Name of the program in the kernel (`bpftool prog` shows it), used to
/// recognise a leftover attachment of a killed bondd.
pub const PROGRAM_NAME: &str = "bondd_xdp";

/// Flag in the per-port config map: data frames may reach bondd.
const CFG_DELIVER: u32 = 0x1;

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (native XDP).
    Native,
    /// In the generic network stack (skb mode).
    Generic,
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        })
    }
}

/// The XDP program's counters for one port, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpCounters {
    /// Data frames redirected to bondd.
    pub redirected: u64,
    /// Slow-protocol (0x8809) frames redirected to bondd.
    pub slow_proto: u64,
    /// Dropped because the port must not deliver (inactive slave).
    pub drop_inactive: u64,
    /// Dropped because no socket was bound for the rx queue.
    pub drop_no_socket: u64,
    /// Dropped because shorter than an Ethernet header.
    pub drop_runt: u64,
}

/// Errors from loading or attaching.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// aya could not load the object or program.
    #[error("loading the XDP program: {0}")]
    Load(String),
    /// Attaching failed in every mode.
    #[error("attaching XDP to {iface}: native: {native}; generic: {generic}")]
    Attach {
        /// Interface name.
        iface: String,
        /// Native attach error.
        native: String,
        /// Generic attach error.
        generic: String,
    },
    /// A map operation failed.
    #[error("XDP map {map}: {err}")]
    Map {
        /// Map name.
        map: &'static str,
        /// Error text.
        err: String,
    },
}

/// One loaded instance of the program for one interface.
pub struct XdpPort {
    ebpf: Ebpf,
    link: Option<XdpLinkId>,
    mode: Option<AttachMode>,
}

impl XdpPort {
    /// Loads the program into the kernel (not attached yet). Starts with
    /// delivery off: a port delivers data only once bondd says so.
    pub fn load() -> Result<Self, ProgramError> {
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| ProgramError::Load(e.to_string()))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| ProgramError::Load(format!("no program {PROGRAM_NAME} in object")))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| ProgramError::Load(e.to_string()))?;
        prog.load().map_err(|e| ProgramError::Load(e.to_string()))?;
        let mut port = Self {
            ebpf,
            link: None,
            mode: None,
        };
        port.set_deliver(false)?;
        Ok(port)
    }

    /// Puts an AF_XDP socket in the XSKMAP slot of `queue`.
    pub fn register_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), ProgramError> {
        let map = self.ebpf.map_mut("xsks").ok_or(ProgramError::Map {
            map: "xsks",
            err: "missing".into(),
        })?;
        let mut xsks = XskMap::try_from(map).map_err(|e| ProgramError::Map {
            map: "xsks",
            err: e.to_string(),
        })?;
        xsks.set(queue, fd, 0).map_err(|e| ProgramError::Map {
            map: "xsks",
            err: e.to_string(),
        })
    }

    /// Whether data frames from this port reach bondd (slow protocols always do).
    pub fn set_deliver(&mut self, on: bool) -> Result<(), ProgramError> {
        let map = self.ebpf.map_mut("cfg").ok_or(ProgramError::Map {
            map: "cfg",
            err: "missing".into(),
        })?;
        let mut cfg: Array<_, u32> = Array::try_from(map).map_err(|e| ProgramError::Map {
            map: "cfg",
            err: e.to_string(),
        })?;
        cfg.set(0, if on { CFG_DELIVER } else { 0 }, 0)
            .map_err(|e| ProgramError::Map {
                map: "cfg",
                err: e.to_string(),
            })
    }

    /// Attaches to `ifindex`, native first and generic if the driver refuses.
    /// `force_generic` skips the native attempt.
    pub fn attach(
        &mut self,
        iface: &str,
        ifindex: u32,
        force_generic: bool,
    ) -> Result<AttachMode, ProgramError> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .expect("loaded above")
            .try_into()
            .expect("is XDP");
        let native = if force_generic {
            "skipped".to_string()
        } else {
            match prog.attach_to_if_index(ifindex, XdpMode::Driver) {
                Ok(id) => {
                    self.link = Some(id);
                    self.mode = Some(AttachMode::Native);
                    return Ok(AttachMode::Native);
                }
                Err(e) => error_chain(&e),
            }
        };
        match prog.attach_to_if_index(ifindex, XdpMode::Skb) {
            Ok(id) => {
                self.link = Some(id);
                self.mode = Some(AttachMode::Generic);
                Ok(AttachMode::Generic)
            }
            Err(e) => Err(ProgramError::Attach {
                iface: iface.to_string(),
                native,
                generic: error_chain(&e),
            }),
        }
    }

    /// The mode attached in, if attached.
    pub fn mode(&self) -> Option<AttachMode> {
        self.mode
    }

    /// Detaches the program (also happens when the port is dropped, and when
    /// the process dies, since it is attached through a bpf_link).
    pub fn detach(&mut self) {
        if let Some(id) = self.link.take() {
            let prog: &mut Xdp = self
                .ebpf
                .program_mut(PROGRAM_NAME)
                .expect("loaded")
                .try_into()
                .expect("is XDP");
            let _ = prog.detach(id);
        }
        self.mode = None;
    }

    /// Reads the per-CPU counters, summed.
    pub fn counters(&self) -> Result<XdpCounters, ProgramError> {
        let map = self.ebpf.map("counters").ok_or(ProgramError::Map {
            map: "counters",
            err: "missing".into(),
        })?;
        let arr: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|e| ProgramError::Map {
                map: "counters",
                err: e.to_string(),
            })?;
        let get = |i: u32| -> u64 { arr.get(&i, 0).map(|v| v.iter().copied().sum()).unwrap_or(0) };
        Ok(XdpCounters {
            redirected: get(0),
            slow_proto: get(1),
            drop_inactive: get(2),
            drop_no_socket: get(3),
            drop_runt: get(4),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The name of a loaded BPF program, by id (to recognise a leftover
/// `bondd_xdp` on a slave).
pub fn program_name(id: u32) -> Option<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .and_then(|p| p.name_as_str().map(str::to_string))
}
