//! bdt-udp: one side of a sequence-numbered UDP stream, for bondd's tests.
//!
//! ```text
//! bdt-udp send --dst IP:PORT --pps N --count N [--src-port P] [--flows F] [--size B] [--max-secs S]
//! bdt-udp recv --bind IP:PORT --expect N --timeout-ms T [--pps N] [--idle-ms I]
//! bdt-udp ping --dst IP --count N [--interval-ms I] [--timeout-ms T]
//! bdt-udp sniff --ifaces IF[,IF...] --dst-port P [--max-ms T]
//! bdt-udp raw-send --iface IF --frames FILE --count N --pps N [--max-secs S]
//! bdt-udp pace --iface IF --dst-mac M --src-mac M --src-ip A --dst-ip B --size L --pps N --secs T
//! ```
//!
//! `pace` is a paced load generator for the benchmarks: UDP/IPv4 frames of
//! `--size` bytes (without FCS, 60..=1514) from 256 source ports, sent
//! through an AF_PACKET socket with qdisc bypass in `sendmmsg` batches at a
//! steady `--pps` (at most 5,000,000) for `--secs` (at most 60) seconds. It
//! prints `sent=N errors=E elapsed_ms=T`. trafgen's own rate option sleeps
//! per frame and falls short above ~50 kpps on this machine, hence this.
//!
//! `raw-send` transmits raw Ethernet frames (hostile input for the tests) on
//! one interface through an AF_PACKET socket (root). FILE holds one frame per
//! line in hex (blank lines and `#` comments are skipped); frame `i % F` is
//! sent as the i-th of `--count` transmissions, paced at `--pps`. Bounded:
//! `--pps` at most 20000, `--count` at most 200000, `--max-secs` (default
//! count/pps + 2) at most 10. The kernel may refuse a frame (e.g. shorter
//! than an Ethernet header, or longer than the MTU): such sends are counted
//! as errors, not fatal. At the end it prints one line per frame,
//! `frame=I len=L sent=S errors=E last_error=ERRNO`, then
//! `sent=N errors=E elapsed_ms=T`.
//!
//! `send --flows F` (F > 1, needs `--src-port P`) sends from F sockets bound
//! to source ports P..P+F-1: datagram `seq` leaves from port `P + seq % F`,
//! so the sequence numbers stay one stream for `recv` while the frames form
//! F UDP flows (for transmit hash tests).
//!
//! `sniff` counts, per interface and per UDP source port, the frames
//! *received* on the given interfaces (AF_PACKET, root) that carry UDP (IPv4
//! or IPv6, no extension headers) to `--dst-port`. It prints `bound sniff ...`
//! on stderr once its sockets are bound, runs until SIGTERM/SIGINT or
//! `--max-ms` (default 60000, at most 300000), then prints one line per
//! (interface, source port), `flow iface=IF src_port=P frames=N`, and
//! `sniffed=TOTAL`. Capture on the peer of an AF_XDP slave (the slave's own RX
//! is redirected before packet sockets see it).
//!
//! `ping` is a minimal ICMP/ICMPv6 echo client on a raw socket (root), so the
//! tests do not depend on iputils being installed. It prints
//! `sent=N received=R max_rtt_ms=M`; a reply counts if it arrives within
//! `--timeout-ms` (default 1000) of its request.
//!
//! Each datagram carries a u64 sequence number and the u64 CLOCK_MONOTONIC send
//! time in ns (big-endian), padded to `--size` bytes (default 64). Sender and
//! receiver run on the same machine (different network namespaces share the
//! clock), so the timestamps are comparable.
//!
//! `send` paces by sending every datagram that is due and sleeping until the
//! next is due (timer slack 1 µs), bounded by `--count` and by a hard time
//! limit (`--max-secs`, default count/pps + 5 s, at most 300 s). It prints
//! `sent=N errors=E elapsed_ms=T`; send errors (e.g. while a route is down)
//! are counted, not fatal.
//!
//! `recv` prints `bound ADDR` on stderr once its socket is bound, receives until
//! it has `--expect` distinct sequence numbers, until `--timeout-ms`, until it
//! has seen the last sequence number and nothing came for 300 ms, or until
//! nothing came for `--idle-ms` (default 2000) after the first datagram; then
//! prints one line on stdout:
//!
//! `received=R lost=L max_gap_ms=G loss_window_ms=W reordered=O duplicates=D loss_window_ts_ms=S max_latency_ms=M loss_span_ms=P loss_span_ts_ms=Q`
//!
//! - `received`: distinct sequence numbers in [0, expect) received
//! - `lost`: expect - received
//! - `max_gap_ms`: longest interval between two consecutive arrivals
//! - `loss_window_ms`: the longest run of missing sequence numbers (also at the
//!   start and end of the stream) converted to ms by the send rate (`--pps`,
//!   else estimated from the timestamps)
//! - `loss_window_ts_ms`: for the longest run, the sender-clock time between the
//!   datagrams received just before and just after it
//! - `loss_span_ms`: from the first to the last missing sequence number
//!   (inclusive), in ms of the send rate; 0 without loss. When several paths
//!   interleave (balance-rr, many flows over several slaves) the losses of one
//!   failed path are scattered between delivered datagrams, so the longest
//!   run understates the outage; the span does not
//! - `loss_span_ts_ms`: the same span in sender-clock time, between the
//!   datagrams received just before and just after it (by the rate at the
//!   head or tail of the stream)
//! - `reordered`: datagrams that arrived after one with a higher sequence number
//! - `duplicates`: datagrams whose sequence number had already arrived

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const HEADER: usize = 16;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Args {
    mode: String,
    kv: Vec<(String, String)>,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut it = std::env::args().skip(1);
        let mode = it.next().ok_or("missing mode: send, recv or ping")?;
        let mut kv = Vec::new();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {k:?}"))?
                .to_owned();
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            kv.push((key, v));
        }
        Ok(Args { mode, kv })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.kv
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn req<T: std::str::FromStr>(&self, key: &str) -> Result<T, String> {
        let v = self
            .get(key)
            .ok_or_else(|| format!("--{key} is required"))?;
        v.parse()
            .map_err(|_| format!("bad value for --{key}: {v:?}"))
    }

    fn opt<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("bad value for --{key}: {v:?}")),
        }
    }

    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        for (k, _) in &self.kv {
            if !known.contains(&k.as_str()) {
                return Err(format!("unknown option --{k} for {}", self.mode));
            }
        }
        Ok(())
    }
}

fn send(a: &Args) -> Result<(), String> {
    a.check_known(&[
        "dst", "pps", "count", "src-port", "flows", "size", "max-secs",
    ])?;
    let dst: SocketAddr = a.req("dst")?;
    let pps: u64 = a.req("pps")?;
    let count: u64 = a.req("count")?;
    let src_port: u16 = a.opt("src-port")?.unwrap_or(0);
    let flows: u16 = a.opt("flows")?.unwrap_or(1);
    if flows == 0 || flows > 1024 {
        return Err("--flows must be in 1..=1024".into());
    }
    if flows > 1 && (src_port == 0 || u32::from(src_port) + u32::from(flows) > 65536) {
        return Err("--flows > 1 needs --src-port P with P + flows - 1 <= 65535".into());
    }
    let size: usize = a.opt("size")?.unwrap_or(64).clamp(HEADER, 9000);
    if pps == 0 {
        return Err("--pps must be > 0".into());
    }
    let default_max = (count / pps + 5).min(300);
    let max_secs: u64 = a.opt("max-secs")?.unwrap_or(default_max).min(300);

    let mut socks = Vec::with_capacity(usize::from(flows));
    for i in 0..flows {
        let port = if src_port == 0 { 0 } else { src_port + i };
        let bind: SocketAddr = if dst.is_ipv6() {
            format!("[::]:{port}").parse().expect("addr")
        } else {
            format!("0.0.0.0:{port}").parse().expect("addr")
        };
        socks.push(UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?);
    }
    // SAFETY: prctl with an integer argument; affects only this process.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }

    let mut buf = vec![0u8; size];
    let start = Instant::now();
    let hard = Duration::from_secs(max_secs);
    let interval_ns = 1_000_000_000f64 / pps as f64;
    let mut seq = 0u64;
    let mut errors = 0u64;
    while seq < count {
        let elapsed = start.elapsed();
        if elapsed > hard {
            eprintln!("bdt-udp send: hard time limit {max_secs} s reached at seq {seq}");
            break;
        }
        let due = ((elapsed.as_nanos() as f64 / interval_ns) as u64 + 1).min(count);
        // At most 64 datagrams per burst, so a stall does not become a flood.
        let burst_end = due.min(seq + 64);
        while seq < burst_end {
            buf[..8].copy_from_slice(&seq.to_be_bytes());
            buf[8..16].copy_from_slice(&now_ns().to_be_bytes());
            let sock = &socks[(seq % u64::from(flows)) as usize];
            if sock.send_to(&buf, dst).is_err() {
                errors += 1;
            }
            seq += 1;
        }
        if seq >= count {
            break;
        }
        let next_due = Duration::from_nanos((seq as f64 * interval_ns) as u64);
        let now = start.elapsed();
        if next_due > now {
            let wait = next_due - now;
            if wait > Duration::from_micros(60) {
                std::thread::sleep(wait - Duration::from_micros(50));
            } else {
                std::hint::spin_loop();
            }
        }
    }
    println!(
        "sent={seq} errors={errors} elapsed_ms={:.1} flows={flows}",
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

fn recv(a: &Args) -> Result<(), String> {
    a.check_known(&["bind", "expect", "timeout-ms", "pps", "idle-ms"])?;
    let bind: SocketAddr = a.req("bind")?;
    let expect: u64 = a.req("expect")?;
    let timeout_ms: u64 = a.req("timeout-ms")?;
    let pps: Option<f64> = a.opt("pps")?;
    let idle_ms: u64 = a.opt("idle-ms")?.unwrap_or(2000);
    if expect == 0 || expect > 50_000_000 {
        return Err("--expect must be in 1..=50000000".into());
    }

    let sock = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    let rcvbuf: libc::c_int = 8 << 20;
    // SAFETY: setsockopt on our socket with a pointer to a local c_int.
    unsafe {
        let p = &rcvbuf as *const libc::c_int as *const libc::c_void;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            p,
            len,
        ) != 0
        {
            libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
        }
    }
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| e.to_string())?;
    eprintln!("bound {bind}");

    let n = expect as usize;
    // Send timestamp per sequence number; 0 = not received.
    let mut ts = vec![0u64; n];
    let mut received = 0u64;
    let mut duplicates = 0u64;
    let mut reordered = 0u64;
    let mut out_of_range = 0u64;
    let mut max_seq: Option<u64> = None;
    let mut last_arrival: Option<u64> = None;
    let mut max_gap_ns = 0u64;
    let mut max_latency_ns = 0u64;
    let mut buf = vec![0u8; 65536];

    let start = Instant::now();
    let deadline = start + Duration::from_millis(timeout_ms);
    while received < expect && Instant::now() < deadline {
        match sock.recv_from(&mut buf) {
            Ok((len, _)) if len >= HEADER => {
                let now = now_ns();
                let seq = u64::from_be_bytes(buf[..8].try_into().expect("8"));
                let sent = u64::from_be_bytes(buf[8..16].try_into().expect("8")).max(1);
                if let Some(prev) = last_arrival {
                    max_gap_ns = max_gap_ns.max(now.saturating_sub(prev));
                }
                last_arrival = Some(now);
                max_latency_ns = max_latency_ns.max(now.saturating_sub(sent));
                if seq >= expect {
                    out_of_range += 1;
                    continue;
                }
                if ts[seq as usize] != 0 {
                    duplicates += 1;
                    continue;
                }
                ts[seq as usize] = sent;
                received += 1;
                match max_seq {
                    Some(m) if seq < m => reordered += 1,
                    _ => max_seq = Some(seq),
                }
            }
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if let Some(prev) = last_arrival {
                    let idle = now_ns().saturating_sub(prev) / 1_000_000;
                    let saw_last = ts[n - 1] != 0;
                    if (saw_last && idle > 300) || idle > idle_ms {
                        break;
                    }
                }
            }
            Err(e) => return Err(format!("recv: {e}")),
        }
    }

    // Send interval: given, or estimated from the first and last received.
    let first = ts.iter().position(|&t| t != 0);
    let last = ts.iter().rposition(|&t| t != 0);
    let interval_ms = match (pps, first, last) {
        (Some(p), _, _) if p > 0.0 => 1e3 / p,
        (_, Some(f), Some(l)) if l > f => (ts[l] - ts[f]) as f64 / 1e6 / (l - f) as f64,
        _ => 0.0,
    };
    // Longest run of missing sequence numbers, including head and tail.
    let mut best_run = 0usize;
    let mut best_ts_ms = 0f64;
    let mut i = 0usize;
    while i < n {
        if ts[i] != 0 {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && ts[i] == 0 {
            i += 1;
        }
        let run = i - s;
        if run > best_run {
            best_run = run;
            best_ts_ms = if s > 0 && i < n {
                (ts[i] - ts[s - 1]) as f64 / 1e6
            } else {
                run as f64 * interval_ms
            };
        }
    }
    let loss_window_ms = best_run as f64 * interval_ms;
    let (loss_span_ms, loss_span_ts_ms) = match (
        ts.iter().position(|&t| t == 0),
        ts.iter().rposition(|&t| t == 0),
    ) {
        (Some(f), Some(l)) => {
            let by_rate = (l - f + 1) as f64 * interval_ms;
            let by_ts = if f > 0 && l + 1 < n {
                (ts[l + 1] - ts[f - 1]) as f64 / 1e6
            } else {
                by_rate
            };
            (by_rate, by_ts)
        }
        _ => (0.0, 0.0),
    };
    if out_of_range > 0 {
        eprintln!("bdt-udp recv: {out_of_range} datagrams with seq >= expect ignored");
    }
    println!(
        "received={received} lost={} max_gap_ms={:.1} loss_window_ms={:.1} reordered={reordered} \
         duplicates={duplicates} loss_window_ts_ms={:.1} max_latency_ms={:.1} loss_span_ms={:.1} \
         loss_span_ts_ms={:.1}",
        expect - received,
        max_gap_ns as f64 / 1e6,
        loss_window_ms,
        best_ts_ms,
        max_latency_ns as f64 / 1e6,
        loss_span_ms,
        loss_span_ts_ms,
    );
    Ok(())
}

fn icmp_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ping(a: &Args) -> Result<(), String> {
    use std::net::IpAddr;
    a.check_known(&["dst", "count", "interval-ms", "timeout-ms"])?;
    let dst: IpAddr = a.req("dst")?;
    let count: u16 = a.req("count")?;
    let interval = Duration::from_millis(a.opt("interval-ms")?.unwrap_or(200u64).max(10));
    let timeout = Duration::from_millis(a.opt("timeout-ms")?.unwrap_or(1000u64).clamp(10, 10_000));
    let (family, proto) = match dst {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
    };
    // SAFETY: plain socket(2); the fd is owned by the UdpSocket below, which
    // only uses generic sendto/recvfrom/setsockopt on it.
    let sock = unsafe {
        let fd = libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto);
        if fd < 0 {
            return Err(format!("raw socket: {}", std::io::Error::last_os_error()));
        }
        UdpSocket::from_raw_fd(fd)
    };
    let id = (std::process::id() & 0xffff) as u16;
    let to = SocketAddr::new(dst, 0);
    let mut sent = 0u32;
    let mut received = 0u32;
    let mut max_rtt = Duration::ZERO;
    let mut buf = [0u8; 2048];
    for seq in 0..count {
        let mut pkt = [0u8; 64];
        pkt[0] = if dst.is_ipv4() { 8 } else { 128 };
        pkt[4..6].copy_from_slice(&id.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        for (i, b) in pkt[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        if dst.is_ipv4() {
            let c = icmp_checksum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
        } // the kernel fills in the ICMPv6 checksum
        let t0 = Instant::now();
        if sock.send_to(&pkt, to).is_ok() {
            sent += 1;
        }
        let deadline = t0 + timeout;
        let mut got = false;
        while !got {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            sock.set_read_timeout(Some(deadline - now))
                .map_err(|e| e.to_string())?;
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if from.ip() != dst {
                continue;
            }
            let icmp = if dst.is_ipv4() {
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                if len < ihl + 8 {
                    continue;
                }
                &buf[ihl..len]
            } else {
                &buf[..len]
            };
            let reply_type = if dst.is_ipv4() { 0 } else { 129 };
            if len >= 8
                && icmp.len() >= 8
                && icmp[0] == reply_type
                && icmp[4..6] == id.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
            {
                got = true;
                received += 1;
                max_rtt = max_rtt.max(t0.elapsed());
            }
        }
        if seq + 1 < count {
            let spent = t0.elapsed();
            if spent < interval {
                std::thread::sleep(interval - spent);
            }
        }
    }
    println!(
        "sent={sent} received={received} max_rtt_ms={:.2}",
        max_rtt.as_secs_f64() * 1e3
    );
    Ok(())
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// UDP (source, destination) ports of an Ethernet frame carrying IPv4 or
/// IPv6 (no extension headers, not a non-first fragment).
fn udp_ports(f: &[u8]) -> Option<(u16, u16)> {
    let be16 = |o: usize| -> Option<u16> { Some(u16::from_be_bytes([*f.get(o)?, *f.get(o + 1)?])) };
    let l4 = match be16(12)? {
        0x0800 => {
            let ihl = usize::from(f.get(14)? & 0x0f) * 4;
            let frag_off = be16(14 + 6)? & 0x1fff;
            if *f.get(14 + 9)? != 17 || ihl < 20 || frag_off != 0 {
                return None;
            }
            14 + ihl
        }
        0x86dd => {
            if *f.get(14 + 6)? != 17 {
                return None;
            }
            14 + 40
        }
        _ => return None,
    };
    Some((be16(l4)?, be16(l4 + 2)?))
}

fn sniff(a: &Args) -> Result<(), String> {
    use std::collections::BTreeMap;
    use std::ffi::CString;
    a.check_known(&["ifaces", "dst-port", "max-ms"])?;
    let ifaces: Vec<String> = a
        .req::<String>("ifaces")?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let dst_port: u16 = a.req("dst-port")?;
    let max = Duration::from_millis(a.opt("max-ms")?.unwrap_or(60_000u64).min(300_000));
    if ifaces.is_empty() || ifaces.len() > 16 {
        return Err("--ifaces needs 1 to 16 interfaces".into());
    }
    let eth_p_all = (libc::ETH_P_ALL as u16).to_be();
    let mut fds = Vec::new();
    for name in &ifaces {
        let c = CString::new(name.as_str()).map_err(|_| format!("bad interface {name:?}"))?;
        // SAFETY: if_nametoindex reads a NUL-terminated string we own.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(format!("no interface {name}"));
        }
        // SAFETY: plain socket(2). Protocol 0 until bound, so no frame of
        // another interface is queued before bind.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(format!(
                "packet socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the fd is ours; OwnedFd closes it on every path.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: zeroed sockaddr_ll is valid; we fill the fields bind needs
        // and pass its exact size.
        let r = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = eth_p_all;
            sll.sll_ifindex = index as i32;
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(format!(
                "bind packet socket to {name}: {}",
                std::io::Error::last_os_error()
            ));
        }
        let rcvbuf: libc::c_int = 8 << 20;
        // SAFETY: setsockopt on our socket with a pointer to a local c_int.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &rcvbuf as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        fds.push(fd);
    }
    // SAFETY: the handler only stores into an atomic (async-signal-safe).
    unsafe {
        let h = on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGINT, h);
    }
    eprintln!("bound sniff {}", ifaces.join(","));

    let mut counts: BTreeMap<(usize, u16), u64> = BTreeMap::new();
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    let mut last_pass = false;
    loop {
        if !last_pass && (STOP.load(std::sync::atomic::Ordering::SeqCst) || start.elapsed() > max) {
            // One more pass drains what is already queued.
            last_pass = true;
        }
        let mut pfds: Vec<libc::pollfd> = fds
            .iter()
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let timeout = if last_pass { 0 } else { 20 };
        // SAFETY: poll over our own pollfd array of the given length.
        unsafe {
            libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout);
        }
        for (i, fd) in fds.iter().enumerate() {
            loop {
                // SAFETY: zeroed sockaddr_ll is valid output space.
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: recvfrom into our buffer and address, sizes given.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        libc::MSG_DONTWAIT,
                        &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                        &mut len,
                    )
                };
                if n < 0 {
                    break;
                }
                if sll.sll_pkttype == libc::PACKET_OUTGOING {
                    continue;
                }
                if let Some((sp, dp)) = udp_ports(&buf[..n as usize])
                    && dp == dst_port
                {
                    *counts.entry((i, sp)).or_default() += 1;
                }
            }
        }
        if last_pass {
            break;
        }
    }
    let mut total = 0;
    for ((i, sp), n) in &counts {
        println!("flow iface={} src_port={sp} frames={n}", ifaces[*i]);
        total += n;
    }
    println!("sniffed={total}");
    Ok(())
}

fn parse_hex_frames(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut frames = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let hex: Vec<u8> = line.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !hex.len().is_multiple_of(2) {
            return Err(format!("line {}: odd number of hex digits", n + 1));
        }
        let mut f = Vec::with_capacity(hex.len() / 2);
        for pair in hex.chunks(2) {
            let s = std::str::from_utf8(pair).map_err(|_| format!("line {}: not hex", n + 1))?;
            f.push(u8::from_str_radix(s, 16).map_err(|_| format!("line {}: not hex", n + 1))?);
        }
        frames.push(f);
    }
    if frames.is_empty() {
        return Err("no frames in the file".into());
    }
    Ok(frames)
}

/// A send-only AF_PACKET socket and the address of `iface` to send to
/// (raw-send and pace).
fn send_socket(iface: &str) -> Result<(std::os::fd::OwnedFd, libc::sockaddr_ll), String> {
    let c = std::ffi::CString::new(iface).map_err(|_| format!("bad interface {iface:?}"))?;
    // SAFETY: if_nametoindex reads a NUL-terminated string we own.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(format!("no interface {iface}"));
    }
    // SAFETY: plain socket(2); protocol 0: this socket never receives.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!(
            "packet socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the fd is ours; OwnedFd closes it on every path.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_ll is valid; the fields sending needs are set.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = index as i32;
    sll.sll_halen = 6;
    Ok((fd, sll))
}

fn raw_send(a: &Args) -> Result<(), String> {
    a.check_known(&["iface", "frames", "count", "pps", "max-secs"])?;
    let iface: String = a.req("iface")?;
    let path: String = a.req("frames")?;
    let count: u64 = a.req("count")?;
    let pps: u64 = a.req("pps")?;
    if pps == 0 || pps > 20_000 {
        return Err("--pps must be in 1..=20000".into());
    }
    if count == 0 || count > 200_000 {
        return Err("--count must be in 1..=200000".into());
    }
    let max_secs: u64 = a.opt("max-secs")?.unwrap_or(count / pps + 2).min(10);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let frames = parse_hex_frames(&text)?;
    let (fd, sll) = send_socket(&iface)?;
    // SAFETY: prctl with an integer argument; affects only this process.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
    let mut per_frame = vec![(0u64, 0u64, 0i32); frames.len()];
    let start = Instant::now();
    let hard = Duration::from_secs(max_secs);
    let interval_ns = 1_000_000_000f64 / pps as f64;
    let mut i = 0u64;
    while i < count {
        let elapsed = start.elapsed();
        if elapsed > hard {
            eprintln!("bdt-udp raw-send: hard time limit {max_secs} s reached after {i} frames");
            break;
        }
        let due = ((elapsed.as_nanos() as f64 / interval_ns) as u64 + 1).min(count);
        let burst_end = due.min(i + 64);
        while i < burst_end {
            let k = (i % frames.len() as u64) as usize;
            let f = &frames[k];
            // SAFETY: sendto from our buffer of its exact length to a
            // sockaddr_ll we own, with its exact size.
            let n = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    f.as_ptr() as *const libc::c_void,
                    f.len(),
                    0,
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if n < 0 {
                per_frame[k].1 += 1;
                per_frame[k].2 = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            } else {
                per_frame[k].0 += 1;
            }
            i += 1;
        }
        if i >= count {
            break;
        }
        let next_due = Duration::from_nanos((i as f64 * interval_ns) as u64);
        let now = start.elapsed();
        if next_due > now {
            let wait = next_due - now;
            if wait > Duration::from_micros(60) {
                std::thread::sleep(wait - Duration::from_micros(50));
            } else {
                std::hint::spin_loop();
            }
        }
    }
    let (mut sent, mut errors) = (0, 0);
    for (k, (s, e, errno)) in per_frame.iter().enumerate() {
        println!(
            "frame={k} len={} sent={s} errors={e} last_error={errno}",
            frames[k].len()
        );
        sent += s;
        errors += e;
    }
    println!(
        "sent={sent} errors={errors} elapsed_ms={:.1}",
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// UDP/IPv4 frame of `len` bytes (no FCS) from `sport` to port 9.
fn udp_frame(
    dst: [u8; 6],
    src: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    sport: u16,
    len: usize,
) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (len - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&sip);
    ip[16..20].copy_from_slice(&dip);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

fn parse_mac_arg(s: &str) -> Result<[u8; 6], String> {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC {s:?}"))?;
    v.try_into().map_err(|_| format!("bad MAC {s:?}"))
}

fn pace(a: &Args) -> Result<(), String> {
    a.check_known(&[
        "iface", "dst-mac", "src-mac", "src-ip", "dst-ip", "size", "pps", "secs",
    ])?;
    let iface: String = a.req("iface")?;
    let dst = parse_mac_arg(&a.req::<String>("dst-mac")?)?;
    let src = parse_mac_arg(&a.req::<String>("src-mac")?)?;
    let sip: std::net::Ipv4Addr = a.req("src-ip")?;
    let dip: std::net::Ipv4Addr = a.req("dst-ip")?;
    let size: usize = a.req("size")?;
    let pps: u64 = a.req("pps")?;
    let secs: u64 = a.req("secs")?;
    if !(60..=1514).contains(&size) {
        return Err("--size must be in 60..=1514".into());
    }
    if pps == 0 || pps > 5_000_000 {
        return Err("--pps must be in 1..=5000000".into());
    }
    if secs == 0 || secs > 60 {
        return Err("--secs must be in 1..=60".into());
    }
    let frames: Vec<Vec<u8>> = (0..256u16)
        .map(|k| udp_frame(dst, src, sip.octets(), dip.octets(), 1024 + k, size))
        .collect();
    let (fd, mut sll) = send_socket(&iface)?;
    let one: libc::c_int = 1;
    // SAFETY: PACKET_QDISC_BYPASS takes an int we own, with its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    const B: usize = 32;
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(B);
    // SAFETY: zeroed mmsghdr is valid; filled in per batch below.
    let mut msgs: Vec<libc::mmsghdr> = (0..B).map(|_| unsafe { std::mem::zeroed() }).collect();
    let start = Instant::now();
    let end = Duration::from_secs(secs);
    let interval_ns = 1_000_000_000f64 / pps as f64;
    let (mut sent, mut errors, mut k) = (0u64, 0u64, 0usize);
    loop {
        let elapsed = start.elapsed();
        if elapsed >= end {
            break;
        }
        let due = (elapsed.as_nanos() as f64 / interval_ns) as u64;
        if due <= sent + errors {
            std::hint::spin_loop();
            continue;
        }
        let n = ((due - sent - errors) as usize).min(B);
        iov.clear();
        for _ in 0..n {
            let f = &frames[k % frames.len()];
            k += 1;
            iov.push(libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            });
        }
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_name = &mut sll as *mut libc::sockaddr_ll as *mut libc::c_void;
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            m.msg_hdr.msg_iov = v as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first n headers point at live iovecs, frames and the
        // sockaddr_ll, all outliving the call.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
        if r < 0 {
            // Queue full (ENOBUFS) or similar: the batch is lost, counted.
            errors += n as u64;
        } else {
            sent += r as u64;
            errors += (n - r as usize) as u64;
        }
    }
    println!(
        "sent={sent} errors={errors} elapsed_ms={:.1}",
        start.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn main() -> ExitCode {
    let r = Args::parse().and_then(|a| match a.mode.as_str() {
        "send" => send(&a),
        "recv" => recv(&a),
        "ping" => ping(&a),
        "sniff" => sniff(&a),
        "raw-send" => raw_send(&a),
        "pace" => pace(&a),
        m => Err(format!(
            "unknown mode {m:?}: send, recv, ping, sniff, raw-send or pace"
        )),
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bdt-udp: {e}");
            ExitCode::from(2)
        }
    }
}
