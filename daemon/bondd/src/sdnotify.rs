//! systemd readiness notification (`sd_notify(3)`), without libsystemd.
//!
//! Under `Type=notify` systemd passes `NOTIFY_SOCKET`, a datagram socket
//! path or, with a leading `@`, a Linux abstract socket name. bondd sends
//! `READY=1` once its bonds are up, `RELOADING=1` / `READY=1` around a
//! SIGHUP reload, `STOPPING=1` on shutdown and `STATUS=...` lines that
//! `systemctl status bondd` shows. Outside systemd nothing is sent.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

/// Sends `state` (newline-separated `KEY=value` assignments, e.g.
/// `"READY=1\nSTATUS=2 bonds up"`) to the service manager. Returns false if
/// `NOTIFY_SOCKET` is not set (not started by systemd as `Type=notify`) or
/// the datagram could not be sent; that is never fatal.
pub fn notify(state: &str) -> bool {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    match notify_to(&socket, state) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("sd_notify to {}: {e}", Path::new(&socket).display());
            false
        }
    }
}

/// `READY=1` with a status line.
pub fn ready(status: &str) -> bool {
    notify(&format!("READY=1\nSTATUS={}", one_line(status)))
}

/// `RELOADING=1` at the start of a reload; send [`ready`] when done.
pub fn reloading() -> bool {
    notify("RELOADING=1\nSTATUS=reloading configuration")
}

/// `STOPPING=1` when shutdown (and slave restore) begins.
pub fn stopping() -> bool {
    notify("STOPPING=1\nSTATUS=stopping: restoring slaves")
}

/// A newline would start a new assignment; keep a status to one line.
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// Sends one datagram to `socket`: a filesystem path, or `@name` for an
/// abstract address.
pub(crate) fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is empty",
        ));
    }
    let sock = UnixDatagram::unbound()?;
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            let addr = SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?
        }
        None if bytes[0] == b'/' => sock.send_to(state.as_bytes(), Path::new(socket))?,
        // vsock: (systemd in a VM) and anything else: not supported.
        None => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "NOTIFY_SOCKET is neither an absolute path nor @abstract",
            ));
        }
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short datagram write",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::time::Duration;

    fn recv(l: &UnixDatagram) -> String {
        l.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = l.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn path_socket() {
        let dir = std::env::temp_dir().join(format!("bondd-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let l = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1\nSTATUS=1 bond up").unwrap();
        assert_eq!(recv(&l), "READY=1\nSTATUS=1 bond up");
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abstract_socket() {
        let name = format!("bondd-sdnotify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let l = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&OsString::from(format!("@{name}")), "STOPPING=1").unwrap();
        assert_eq!(recv(&l), "STOPPING=1");
    }

    #[test]
    fn bad_targets_are_errors() {
        assert!(notify_to(OsStr::new(""), "READY=1").is_err());
        assert!(notify_to(OsStr::new("vsock:2:1234"), "READY=1").is_err());
        // Nobody listening.
        let missing = std::env::temp_dir().join("bondd-sdnotify-nobody/notify");
        assert!(notify_to(missing.as_os_str(), "READY=1").is_err());
        assert_eq!(one_line("a\nb"), "a b");
    }
}
