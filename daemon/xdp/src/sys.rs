//! The few device ioctls bondd needs that netlink does not cover: ethtool
//! queries and feature switches, TAP creation, frame I/O on a TAP, and an
//! eventfd to wake an idle worker. Kept here so that all `unsafe` stays in
//! this crate.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

const IFNAMSIZ: usize = 16;
const ETHTOOL_GSET: u32 = 0x1;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_SFLAGS: u32 = 0x26;
const ETH_FLAG_TXVLAN: u32 = 1 << 7;
const ETH_FLAG_RXVLAN: u32 = 1 << 8;

#[repr(C)]
struct IfreqData {
    name: [libc::c_char; IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

#[repr(C)]
struct IfreqFlags {
    name: [libc::c_char; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

#[repr(C)]
#[derive(Default)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

#[repr(C)]
#[derive(Default)]
struct EthtoolCmd {
    cmd: u32,
    supported: u32,
    advertising: u32,
    speed: u16,
    duplex: u8,
    port: u8,
    phy_address: u8,
    transceiver: u8,
    autoneg: u8,
    mdio_support: u8,
    maxtxpkt: u32,
    maxrxpkt: u32,
    speed_hi: u16,
    eth_tp_mdix: u8,
    eth_tp_mdix_ctrl: u8,
    lp_advertising: u32,
    reserved: [u32; 2],
}

fn ifname(name: &str) -> io::Result<[libc::c_char; IFNAMSIZ]> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    let mut out = [0 as libc::c_char; IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Ok(out)
}

fn ctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ethtool<T>(dev: &str, cmd: &mut T) -> io::Result<()> {
    let sock = ctl_socket()?;
    let mut ifr = IfreqData {
        name: ifname(dev)?,
        data: cmd as *mut T as *mut libc::c_void,
        _pad: [0; 16],
    };
    // SAFETY: SIOCETHTOOL with an ifreq whose data points at a live ethtool
    // command struct of the layout the command number expects.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Number of active RX queues of a device (1 when the driver does not say).
pub fn rx_queue_count(dev: &str) -> u32 {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    match ethtool(dev, &mut ch) {
        Ok(()) => (ch.rx_count + ch.combined_count).max(1),
        Err(_) => 1,
    }
}

/// Link speed in Mb/s and full duplex, when the driver reports them.
pub fn link_speed(dev: &str) -> (Option<u32>, Option<bool>) {
    let mut c = EthtoolCmd {
        cmd: ETHTOOL_GSET,
        ..Default::default()
    };
    if ethtool(dev, &mut c).is_err() {
        return (None, None);
    }
    let speed = (u32::from(c.speed_hi) << 16) | u32::from(c.speed);
    let speed = (speed != 0 && speed != u32::MAX && speed != 0xffff).then_some(speed);
    let duplex = match c.duplex {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    };
    (speed, duplex)
}

/// Turns TX checksum offload on or off. bondd turns it off on the logical
/// interface: AF_XDP forwards frames byte for byte, so a partial checksum left
/// for "hardware" would reach the wire unfinished.
pub fn set_tx_checksum(dev: &str, on: bool) -> io::Result<()> {
    let mut v = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: u32::from(on),
    };
    ethtool(dev, &mut v)
}

/// 802.1Q VLAN offloads of a device: (rx stripping, tx insertion).
pub fn vlan_offload(dev: &str) -> io::Result<(bool, bool)> {
    let mut v = EthtoolValue {
        cmd: ETHTOOL_GFLAGS,
        data: 0,
    };
    ethtool(dev, &mut v)?;
    Ok((v.data & ETH_FLAG_RXVLAN != 0, v.data & ETH_FLAG_TXVLAN != 0))
}

/// Sets 802.1Q VLAN offloads. bondd turns them off where AF_XDP must see
/// the tag in the frame bytes: TX insertion on the logical interface (else
/// the host's tag travels as metadata and is lost) and RX stripping on the
/// slaves (else the NIC removes the tag before XDP sees the frame).
pub fn set_vlan_offload(dev: &str, rx: Option<bool>, tx: Option<bool>) -> io::Result<()> {
    let mut v = EthtoolValue {
        cmd: ETHTOOL_GFLAGS,
        data: 0,
    };
    ethtool(dev, &mut v)?;
    let mut f = v.data;
    if let Some(on) = rx {
        f = if on {
            f | ETH_FLAG_RXVLAN
        } else {
            f & !ETH_FLAG_RXVLAN
        };
    }
    if let Some(on) = tx {
        f = if on {
            f | ETH_FLAG_TXVLAN
        } else {
            f & !ETH_FLAG_TXVLAN
        };
    }
    if f == v.data {
        return Ok(());
    }
    let mut s = EthtoolValue {
        cmd: ETHTOOL_SFLAGS,
        data: f,
    };
    ethtool(dev, &mut s)
}

/// A TAP device owned by this process: it disappears when the fd closes, so a
/// killed bondd leaves no TAP behind.
pub struct Tap {
    fd: OwnedFd,
}

impl Tap {
    /// Creates (or attaches to) the TAP `name`, non-blocking, without packet info.
    pub fn create(name: &str) -> io::Result<Self> {
        let path = CString::new("/dev/net/tun").expect("static path");
        // SAFETY: open(2) of a constant path.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("open /dev/net/tun: {e}")));
        }
        // SAFETY: fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut ifr = IfreqFlags {
            name: ifname(name)?,
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        // SAFETY: TUNSETIFF with a valid ifreq.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("TUNSETIFF {name}: {e}")));
        }
        Ok(Self { fd })
    }

    /// The TAP's fd, for poll.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads one frame the host sent on the TAP into `buf`. `Ok(None)` when
    /// none is waiting.
    pub fn read_frame(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // SAFETY: read(2) into a live, exclusively borrowed buffer.
        let r = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(Some(r as usize))
    }

    /// Hands one frame to the host as if received on the TAP. Returns false
    /// when the TAP cannot take it now (the frame is dropped and counted).
    pub fn write_frame(&self, frame: &[u8]) -> io::Result<bool> {
        // SAFETY: write(2) from a live buffer.
        let r = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EIO) => Ok(false),
                _ => Err(e),
            };
        }
        Ok(true)
    }
}

/// An eventfd: the control plane writes it to wake an idle worker blocked in
/// poll when it publishes a new snapshot or a frame to send.
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain eventfd(2) call.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` was just returned by eventfd(2) (checked
            // non-negative above) and is owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Wakes the reader.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64, as eventfd requires.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            );
        }
    }

    /// Clears pending wakeups.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; non-blocking.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            );
        }
    }

    /// The fd, for poll.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An identity of this process's network namespace: bondd keys its restore
/// state and control socket by it, so bonds of the same name in different
/// namespaces do not clash. The namespace cookie (SO_NETNS_COOKIE, Linux
/// 5.14+) is never reused while the machine runs, unlike the namespace's
/// inode number, so a new namespace never finds a dead one's state; the inode
/// is the fallback on older kernels.
pub fn netns_id() -> u64 {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    if let Ok(sock) = ctl_socket() {
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: getsockopt on our own socket into a live u64 of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                &mut cookie as *mut u64 as *mut libc::c_void,
                &mut len,
            )
        };
        if r == 0 && cookie != 0 {
            return cookie;
        }
    }
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// Current CLOCK_MONOTONIC in nanoseconds: the time source the control plane
/// passes to the pure core.
pub fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain data; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid clock id and a live out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Capabilities bondd keeps after setup: netlink changes and ethtool
/// (NET_ADMIN), AF_XDP sockets for slaves added by a reload (NET_RAW),
/// pinned UMEM pages beyond RLIMIT_MEMLOCK (IPC_LOCK), XDP programs loaded
/// by a reload (BPF, PERFMON) and looking up attached programs by id
/// (SYS_ADMIN, for BPF_PROG_GET_FD_BY_ID).
pub const KEEP_CAPS: &[(u32, &str)] = &[
    (12, "CAP_NET_ADMIN"),
    (13, "CAP_NET_RAW"),
    (14, "CAP_IPC_LOCK"),
    (21, "CAP_SYS_ADMIN"),
    (38, "CAP_PERFMON"),
    (39, "CAP_BPF"),
];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability but `keep` from the bounding, effective,
/// permitted and inheritable sets of the process, for good. Called once
/// setup is done, so a compromised bondd cannot, say, read any file
/// (DAC_OVERRIDE) or trace other processes (SYS_PTRACE).
pub fn drop_capabilities(keep: &[u32]) -> io::Result<()> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for cap in 0..=last {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP, cap) takes plain integers.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            // EINVAL: a capability this kernel does not know.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    let mut hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a valid v3 header and room for two data words.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut mask = [0u32; 2];
    for &c in keep {
        mask[(c / 32) as usize % 2] |= 1 << (c % 32);
    }
    for (d, m) in data.iter_mut().zip(mask) {
        d.effective &= m;
        d.permitted &= m;
        d.inheritable = 0;
    }
    // SAFETY: capset with a valid v3 header and two data words.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to one CPU (a worker's `worker_cpus` entry).
pub fn pin_current_thread(cpu: u32) -> io::Result<()> {
    if cpu as usize >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` < CPU_SETSIZE was checked above, so CPU_SET stays in bounds.
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the
    // size passed.
    let r = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The CPUs this process may run on (its affinity mask), to validate
/// `worker_cpus` before anything is attached.
pub fn allowed_cpus() -> io::Result<Vec<u32>> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is writable and of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: i < CPU_SETSIZE, so CPU_ISSET stays in bounds.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .map(|i| i as u32)
        .collect())
}

/// The effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// True when running as root (tests skip otherwise).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
