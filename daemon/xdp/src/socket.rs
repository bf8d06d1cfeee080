//! AF_XDP sockets and the UMEM they share.
//!
//! One [`Umem`] per worker; the first socket registers it ("owner") and every
//! other socket of the worker binds with `XDP_SHARED_UMEM`, with its own fill
//! and completion rings because each (device, queue) pair needs its own. A frame
//! can then move from a slave's RX ring to the logical interface's TX ring (and
//! back the other way) without a byte being copied in userspace.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    ptr::NonNull,
    sync::atomic::AtomicU32,
};

use crate::ring::{ConsRing, ProdRing, RawRing, XdpDesc};

/// How the kernel moves frame data between the device and the UMEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// The driver DMAs straight into the UMEM.
    ZeroCopy,
    /// The kernel copies between its buffers and the UMEM.
    Copy,
}

impl std::fmt::Display for CopyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CopyMode::ZeroCopy => "zero-copy",
            CopyMode::Copy => "copy",
        })
    }
}

/// An anonymous or socket mmap, unmapped on drop.
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    fn anonymous(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(p as *mut u8).expect("mmap returned null"),
            len,
        })
    }

    fn socket(fd: RawFd, len: usize, pgoff: u64) -> io::Result<Self> {
        // SAFETY: maps a ring of a live AF_XDP socket at the kernel-defined
        // page offset; the kernel validates the length against the ring size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(p as *mut u8).expect("mmap returned null"),
            len,
        })
    }

    /// A pointer `off` bytes into the mapping, checked against its length.
    fn at<T>(&self, off: u64) -> NonNull<T> {
        assert!(
            off as usize + size_of::<T>() <= self.len,
            "ring offset out of the mapping"
        );
        // SAFETY: in bounds per the assert above.
        unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(off as usize) as *mut T) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the
        // mapping past its owner's drop (rings are dropped with their socket).
        unsafe {
            libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len);
        }
    }
}

// SAFETY: the mapping is plain memory; the owner moves between threads as a whole.
unsafe impl Send for Mmap {}

/// The packet buffer shared by all sockets of one worker: `frame_count`
/// frames of `frame_size` bytes, addressed by byte offset.
pub struct Umem {
    area: Mmap,
    frame_size: u32,
    frame_count: u32,
}

/// Headroom the kernel leaves in front of received frame data by default;
/// bondd asks for none of its own.
pub const XDP_PACKET_HEADROOM: u32 = 256;

impl Umem {
    /// Allocates the area. `frame_size` must be 2048 or 4096.
    pub fn new(frame_size: u32, frame_count: u32) -> io::Result<Self> {
        if frame_size != 2048 && frame_size != 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame size must be 2048 or 4096",
            ));
        }
        let area = Mmap::anonymous(frame_size as usize * frame_count as usize)?;
        Ok(Self {
            area,
            frame_size,
            frame_count,
        })
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// The base address (UMEM offset) of frame `i`.
    pub fn frame_addr(&self, i: u32) -> u64 {
        u64::from(i) * u64::from(self.frame_size)
    }

    /// Largest frame the kernel will place in a UMEM chunk.
    pub fn max_frame_len(&self) -> u32 {
        self.frame_size - XDP_PACKET_HEADROOM
    }

    fn check(&self, addr: u64, len: usize) -> usize {
        let off = addr as usize;
        let chunk_end = (off / self.frame_size as usize + 1) * self.frame_size as usize;
        assert!(
            off + len <= chunk_end && chunk_end <= self.area.len,
            "frame access {addr}+{len} outside its UMEM chunk"
        );
        off
    }

    /// The bytes of a frame bondd owns (taken from an RX or completion ring
    /// and not yet handed back). Panics if the range leaves its chunk.
    pub fn frame(&self, addr: u64, len: usize) -> &[u8] {
        let off = self.check(addr, len);
        // SAFETY: in bounds (checked); the caller owns this frame, so the
        // kernel is not writing it; other frames are disjoint memory.
        unsafe { std::slice::from_raw_parts(self.area.ptr.as_ptr().add(off), len) }
    }

    /// Mutable bytes of a frame bondd owns. Panics if the range leaves its chunk.
    pub fn frame_mut(&mut self, addr: u64, len: usize) -> &mut [u8] {
        let off = self.check(addr, len);
        // SAFETY: in bounds (checked); unique through &mut self; the caller
        // owns the frame, so the kernel neither reads nor writes it now.
        unsafe { std::slice::from_raw_parts_mut(self.area.ptr.as_ptr().add(off), len) }
    }

    /// Copies `len` bytes of one owned frame into another (broadcast's extra
    /// copies). Panics if either range leaves its chunk or they share one.
    pub fn copy_within(&mut self, src: u64, dst: u64, len: usize) {
        let s = self.check(src, len);
        let d = self.check(dst, len);
        let fs = self.frame_size as usize;
        assert!(s / fs != d / fs, "copy within one UMEM chunk");
        // SAFETY: both ranges are in bounds (checked) and in different chunks,
        // so they do not overlap; the caller owns both frames.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.area.ptr.as_ptr().add(s),
                self.area.ptr.as_ptr().add(d),
                len,
            );
        }
    }

    fn reg(&self) -> libc::xdp_umem_reg {
        // SAFETY: xdp_umem_reg is a plain C struct; all-zero is valid.
        let mut r: libc::xdp_umem_reg = unsafe { std::mem::zeroed() };
        r.addr = self.area.ptr.as_ptr() as u64;
        r.len = self.area.len as u64;
        r.chunk_size = self.frame_size;
        r.headroom = 0;
        r.flags = 0;
        r
    }
}

/// Ring sizes of one socket (all powers of two).
#[derive(Clone, Copy, Debug)]
pub struct RingSizes {
    /// RX and TX descriptor rings.
    pub rx_tx: u32,
    /// Fill and completion rings.
    pub fill_comp: u32,
}

/// 2048 entries: at 250 kpps a 1024-entry RX ring overflowed 0.2–3 % of
/// frames whenever the worker was held up by the kernel's transmit work for
/// a few ms; 2048 lost none in the same runs (bench/README.md).
impl Default for RingSizes {
    fn default() -> Self {
        Self {
            rx_tx: 2048,
            fill_comp: 2048,
        }
    }
}

/// Kernel AF_XDP statistics of one socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped for reasons other than invalid descriptors.
    pub rx_dropped: u64,
    /// Invalid RX descriptors.
    pub rx_invalid_descs: u64,
    /// Invalid TX descriptors.
    pub tx_invalid_descs: u64,
    /// Dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was empty when the kernel looked.
    pub tx_ring_empty_descs: u64,
}

/// One AF_XDP socket bound to one (device, queue), with its four rings.
pub struct Xsk {
    /// Frames received, for bondd to take.
    pub rx: ConsRing<XdpDesc>,
    /// Frames for the kernel to send.
    pub tx: ProdRing<XdpDesc>,
    /// Empty frames handed to the kernel for reception.
    pub fill: ProdRing<u64>,
    /// Frames the kernel has finished sending.
    pub comp: ConsRing<u64>,
    // Rings point into these; declared after the rings so they drop later.
    _maps: Vec<Mmap>,
    fd: OwnedFd,
    ifindex: u32,
    queue: u32,
    mode: CopyMode,
}

/// SOL_XDP option of Linux 6.17 (not in the libc crate yet).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live value of the type the option expects; the kernel
    // copies `size_of::<T>()` bytes from it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            val as *const T as *const libc::c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn sol_socket_opt(fd: RawFd, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: `val` is a live c_int, the type every SOL_SOCKET integer
    // option expects; the kernel copies its 4 bytes.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &val as *const libc::c_int as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("setsockopt SOL_SOCKET {opt}: {e}"),
        ))
    } else {
        Ok(())
    }
}

fn getsockopt<T>(fd: RawFd, opt: libc::c_int, out: &mut T) -> io::Result<usize> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `out` is a live, writable value of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            out as *mut T as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(len as usize)
    }
}

fn ctx(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Xsk {
    /// Creates the socket that registers `umem`, bound with need_wakeup in
    /// `mode`. Every other socket of the worker shares its UMEM.
    pub fn owner(
        umem: &Umem,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
        mode: CopyMode,
    ) -> io::Result<Self> {
        let fd = Self::socket()?;
        setsockopt(fd.as_raw_fd(), libc::XDP_UMEM_REG, &umem.reg())
            .map_err(|e| ctx(e, "XDP_UMEM_REG"))?;
        let mode_flag = match mode {
            CopyMode::ZeroCopy => libc::XDP_ZEROCOPY,
            CopyMode::Copy => libc::XDP_COPY,
        };
        Self::finish(
            fd,
            ifindex,
            queue,
            sizes,
            mode,
            libc::XDP_USE_NEED_WAKEUP | mode_flag,
            0,
        )
    }

    /// Creates a socket on another (device, queue) sharing `owner`'s UMEM.
    /// Copy mode and need_wakeup are inherited from the owner: the kernel
    /// rejects them on a shared bind (EINVAL), so none are passed.
    pub fn shared(owner: &Xsk, ifindex: u32, queue: u32, sizes: RingSizes) -> io::Result<Self> {
        Self::shared_with(owner.fd.as_raw_fd(), owner.mode, ifindex, queue, sizes)
    }

    /// Like [`Xsk::shared`], naming the UMEM by the fd of any live socket
    /// that uses it (for slaves added while the worker owns the others).
    pub fn shared_with(
        umem_fd: RawFd,
        mode: CopyMode,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
    ) -> io::Result<Self> {
        let fd = Self::socket()?;
        Self::finish(
            fd,
            ifindex,
            queue,
            sizes,
            mode,
            libc::XDP_SHARED_UMEM,
            umem_fd as u32,
        )
    }

    /// Closes the socket and returns every UMEM frame the kernel held for
    /// it (fill, RX, TX and completion rings), so a slave can leave a
    /// running worker without losing frames. The rings stay mapped until
    /// they have been read; after close the kernel no longer touches them.
    pub fn close_and_reclaim(self) -> Vec<u64> {
        let Xsk {
            mut rx,
            mut tx,
            mut fill,
            mut comp,
            _maps,
            fd,
            ..
        } = self;
        drop(fd);
        let mut out: Vec<u64> = fill.take_unconsumed();
        out.extend(comp.take_all());
        out.extend(rx.take_all().into_iter().map(|d| d.addr));
        out.extend(tx.take_unconsumed().into_iter().map(|d| d.addr));
        drop(_maps);
        out
    }

    fn socket() -> io::Result<OwnedFd> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(ctx(io::Error::last_os_error(), "socket(AF_XDP)"));
        }
        // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn finish(
        fd: OwnedFd,
        ifindex: u32,
        queue: u32,
        sizes: RingSizes,
        mode: CopyMode,
        bind_flags: u16,
        shared_fd: u32,
    ) -> io::Result<Self> {
        let raw = fd.as_raw_fd();
        setsockopt(raw, libc::XDP_UMEM_FILL_RING, &sizes.fill_comp)
            .map_err(|e| ctx(e, "XDP_UMEM_FILL_RING"))?;
        setsockopt(raw, libc::XDP_UMEM_COMPLETION_RING, &sizes.fill_comp)
            .map_err(|e| ctx(e, "XDP_UMEM_COMPLETION_RING"))?;
        setsockopt(raw, libc::XDP_RX_RING, &sizes.rx_tx).map_err(|e| ctx(e, "XDP_RX_RING"))?;
        setsockopt(raw, libc::XDP_TX_RING, &sizes.rx_tx).map_err(|e| ctx(e, "XDP_TX_RING"))?;

        // SAFETY: xdp_mmap_offsets is a plain C struct; all-zero is valid.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let got = getsockopt(raw, libc::XDP_MMAP_OFFSETS, &mut off)
            .map_err(|e| ctx(e, "XDP_MMAP_OFFSETS"))?;
        if got != size_of::<libc::xdp_mmap_offsets>() {
            return Err(io::Error::other(
                "kernel too old: XDP_MMAP_OFFSETS without ring flags (need Linux 5.4+)",
            ));
        }

        let desc = size_of::<XdpDesc>() as u64;
        let addr = size_of::<u64>() as u64;
        let rx_map = Mmap::socket(
            raw,
            (off.rx.desc + u64::from(sizes.rx_tx) * desc) as usize,
            0,
        )
        .map_err(|e| ctx(e, "mmap rx ring"))?;
        let tx_map = Mmap::socket(
            raw,
            (off.tx.desc + u64::from(sizes.rx_tx) * desc) as usize,
            libc::XDP_PGOFF_TX_RING as u64,
        )
        .map_err(|e| ctx(e, "mmap tx ring"))?;
        let fr_map = Mmap::socket(
            raw,
            (off.fr.desc + u64::from(sizes.fill_comp) * addr) as usize,
            libc::XDP_UMEM_PGOFF_FILL_RING,
        )
        .map_err(|e| ctx(e, "mmap fill ring"))?;
        let cr_map = Mmap::socket(
            raw,
            (off.cr.desc + u64::from(sizes.fill_comp) * addr) as usize,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        )
        .map_err(|e| ctx(e, "mmap completion ring"))?;

        fn raw_ring<T: Copy>(m: &Mmap, o: &libc::xdp_ring_offset, size: u32) -> RawRing<T> {
            // SAFETY: offsets come from the kernel for this very mapping and
            // `Mmap::at` bounds-checks each; the mapping outlives the ring
            // (both live in the same `Xsk`, mappings dropped last).
            unsafe {
                RawRing::new(
                    m.at::<AtomicU32>(o.producer),
                    m.at::<AtomicU32>(o.consumer),
                    m.at::<AtomicU32>(o.flags),
                    m.at::<T>(o.desc),
                    size,
                )
            }
        }
        let rx = ConsRing::new(raw_ring::<XdpDesc>(&rx_map, &off.rx, sizes.rx_tx));
        let tx = ProdRing::new(raw_ring::<XdpDesc>(&tx_map, &off.tx, sizes.rx_tx));
        let fill = ProdRing::new(raw_ring::<u64>(&fr_map, &off.fr, sizes.fill_comp));
        let comp = ConsRing::new(raw_ring::<u64>(&cr_map, &off.cr, sizes.fill_comp));

        // SAFETY: sockaddr_xdp is a plain C struct; all-zero is valid.
        let mut sa: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sa.sxdp_family = libc::AF_XDP as u16;
        sa.sxdp_flags = bind_flags;
        sa.sxdp_ifindex = ifindex;
        sa.sxdp_queue_id = queue;
        sa.sxdp_shared_umem_fd = shared_fd;
        // SAFETY: `sa` is a valid sockaddr_xdp of the length passed.
        let r = unsafe {
            libc::bind(
                raw,
                &sa as *const libc::sockaddr_xdp as *const libc::sockaddr,
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("bind AF_XDP to ifindex {ifindex} queue {queue} ({mode}): {e}"),
            ));
        }
        Ok(Self {
            rx,
            tx,
            fill,
            comp,
            _maps: vec![rx_map, tx_map, fr_map, cr_map],
            fd,
            ifindex,
            queue,
            mode,
        })
    }

    /// The socket's file descriptor (for the XSKMAP and for poll).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Device the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue the socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Copy or zero-copy, as bound.
    pub fn mode(&self) -> CopyMode {
        self.mode
    }

    /// Tells the kernel there is work on the TX ring. Only call when
    /// [`ProdRing::needs_wakeup`] says so: this is the per-batch syscall.
    pub fn kick_tx(&self) -> io::Result<()> {
        // SAFETY: zero-length sendto on our own socket; no buffer is passed.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // Busy/again: the kernel keeps the frames and tries later;
                // ENOBUFS: no skb right now. None of these lose frames.
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => Ok(()),
                _ => Err(e),
            }
        } else {
            Ok(())
        }
    }

    /// Wakes the kernel's RX processing after refilling the fill ring, when it
    /// asked for it (need_wakeup on the fill ring).
    pub fn wake_rx(&self) {
        // SAFETY: zero-length non-blocking recvfrom on our own socket.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    /// Lets one TX kick (sendto) in copy mode send up to `frames` frames
    /// instead of the kernel's default 32 (XDP_MAX_TX_SKB_BUDGET, Linux
    /// 6.17+): fewer syscalls per batch. Older kernels refuse it with
    /// ENOPROTOOPT, which the caller may ignore.
    pub fn set_tx_budget(&self, frames: u32) -> io::Result<()> {
        setsockopt(self.fd.as_raw_fd(), XDP_MAX_TX_SKB_BUDGET, &frames)
    }

    /// Turns on preferred busy polling for this socket (`busy_poll: true`):
    /// the kernel then runs the device's NAPI when the worker calls
    /// [`Xsk::busy_poll`], on the worker's CPU, instead of in softirq where
    /// the packet arrived. `usecs` bounds each busy loop, `budget` the
    /// frames per NAPI poll.
    pub fn set_busy_poll(&self, usecs: u32, budget: u32) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        sol_socket_opt(fd, libc::SO_PREFER_BUSY_POLL, 1)
            .and_then(|()| sol_socket_opt(fd, libc::SO_BUSY_POLL, usecs as libc::c_int))
            .and_then(|()| sol_socket_opt(fd, libc::SO_BUSY_POLL_BUDGET, budget as libc::c_int))
    }

    /// One busy-poll pass over the socket's NAPI context (a non-blocking
    /// zero-length recvfrom): per batch, only with `busy_poll: true`.
    pub fn busy_poll(&self) {
        self.wake_rx();
    }

    /// The kernel's counters for this socket.
    pub fn stats(&self) -> io::Result<XskStats> {
        // SAFETY: xdp_statistics is a plain C struct; all-zero is valid.
        let mut s: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        getsockopt(self.fd.as_raw_fd(), libc::XDP_STATISTICS, &mut s)?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }
}

/// The kernel's counters of an AF_XDP socket named by fd (the control plane
/// reads them while the worker owns the socket; getsockopt is read-only).
pub fn stats_of(fd: RawFd) -> io::Result<XskStats> {
    // SAFETY: xdp_statistics is a plain C struct; all-zero is valid.
    let mut s: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    getsockopt(fd, libc::XDP_STATISTICS, &mut s)?;
    Ok(XskStats {
        rx_dropped: s.rx_dropped,
        rx_invalid_descs: s.rx_invalid_descs,
        tx_invalid_descs: s.tx_invalid_descs,
        rx_ring_full: s.rx_ring_full,
        rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
        tx_ring_empty_descs: s.tx_ring_empty_descs,
    })
}

/// Waits until one of `fds` is readable or `timeout_ms` passes. Used by an
/// idle worker so it does not spin a core when no traffic flows.
pub fn poll_readable(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}
