//! The control socket: a Unix socket (mode 0600, root only) through which
//! `bondd status`, `bondd set-active` and `bondd reload` talk to the running
//! daemon. One JSON request line in, one JSON response line out.
//!
//! The listener runs as its own task and hands each request to the main loop
//! over a channel, so all bond state stays owned by one place.

use crate::status::BondStatus;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader},
    net::UnixListener,
    sync::{mpsc, oneshot},
};
use tracing::{info, warn};

/// What a client asks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// State of one bond or all.
    Status {
        /// Bond name, or all bonds.
        bond: Option<String>,
    },
    /// Force the active slave (kernel `active_slave`).
    SetActive {
        /// Bond name.
        bond: String,
        /// Slave name.
        slave: String,
    },
    /// Re-read the configuration file.
    Reload,
}

/// The daemon's answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// A human message (set-active, reload).
    pub message: Option<String>,
    /// Bond states (status).
    pub bonds: Vec<BondStatus>,
}

impl Response {
    /// A failure.
    pub fn err(e: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(e.into()),
            ..Default::default()
        }
    }
}

/// A request on its way to the main loop.
pub struct ControlMsg {
    /// The request.
    pub req: Request,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Response>,
}

/// Default socket path for the daemon of this network namespace, so that
/// `ip netns exec NS bondd status` finds the daemon of NS.
pub fn default_socket(state_dir: &Path) -> PathBuf {
    state_dir.join(format!("bondd-{}.sock", bondd_xdp::sys::netns_id()))
}

/// Binds the socket (replacing a stale one), restricts it to root, and
/// serves requests until the task is dropped.
pub fn serve(path: &Path, tx: mpsc::Sender<ControlMsg>) -> Result<tokio::task::JoinHandle<()>> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "control socket {} is in use by another bondd",
                path.display()
            );
        }
        let _ = std::fs::remove_file(path);
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    info!(socket = %path.display(), "control socket listening");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
                let (rd, mut wr) = stream.into_split();
                let resp = if uid != 0 {
                    warn!(uid, "control socket: refused a non-root client");
                    Response::err("permission denied: the control socket is root only")
                } else {
                    let mut line = String::new();
                    let mut rd = TokioBufReader::new(rd).take(64 * 1024);
                    match tokio::time::timeout(Duration::from_secs(5), rd.read_line(&mut line))
                        .await
                    {
                        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim()) {
                            Ok(req) => {
                                let (rtx, rrx) = oneshot::channel();
                                if tx.send(ControlMsg { req, reply: rtx }).await.is_err() {
                                    Response::err("daemon is shutting down")
                                } else {
                                    rrx.await.unwrap_or_else(|_| Response::err("no answer"))
                                }
                            }
                            Err(e) => Response::err(format!("bad request: {e}")),
                        },
                        _ => Response::err("no request received"),
                    }
                };
                let mut out = serde_json::to_string(&resp).unwrap_or_default();
                out.push('\n');
                let _ = wr.write_all(out.as_bytes()).await;
            });
        }
    }))
}

use tokio::io::AsyncReadExt as _;

/// Client side: sends one request and waits for the answer.
pub fn request(path: &Path, req: &Request) -> Result<Response> {
    let mut s = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {} (is bondd running in this network namespace? use --socket or --config)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    // A refused client may find the socket closed under it: still read
    // whatever answer the daemon sent.
    let _ = s.write_all(line.as_bytes());
    let mut resp = String::new();
    BufReader::new(s).read_line(&mut resp)?;
    serde_json::from_str(resp.trim()).context("reading the daemon's answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        let r = Request::SetActive {
            bond: "bond0".into(),
            slave: "eth2".into(),
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"cmd":"set-active","bond":"bond0","slave":"eth2"}"#);
        assert_eq!(serde_json::from_str::<Request>(&j).unwrap(), r);
        let s: Request = serde_json::from_str(r#"{"cmd":"status","bond":null}"#).unwrap();
        assert_eq!(s, Request::Status { bond: None });
    }
}
