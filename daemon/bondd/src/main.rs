//! bondd: Linux link bonding in userspace on AF_XDP.
#![forbid(unsafe_code)]

mod bond;
mod control;
mod dataplane;
mod demo;
mod metrics;
mod netlink;
mod nm;
mod notify;
mod sdnotify;
mod state;
mod status;

use anyhow::{Context, Result};
use bond::Bond;
use bondd_core::config::{self, Limits};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use netlink::{LinkEvent, Net};
use std::{path::PathBuf, process::ExitCode, time::Duration};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "bondd",
    version,
    about = "Linux link bonding in userspace on AF_XDP",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Bond configuration (YAML). Runs the bonds it describes.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Where bondd records what it changed on the slaves, to restore it,
    /// and where its control socket lives.
    #[arg(long, default_value = "/run/bondd")]
    state_dir: PathBuf,
    /// Control socket path (default: STATE_DIR/bondd-<netns>.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Prometheus metrics listen address, or `off` (overrides the config's
    /// `metrics: listen:`; default 127.0.0.1:9479).
    #[arg(long)]
    metrics: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Validate a configuration without touching the system.
    Check {
        /// Bond configuration (YAML).
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
    /// Show bond state as /proc/net/bonding/<bond> does (or --json).
    Status {
        /// Only this bond.
        bond: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// The daemon's config (its `control: socket:` finds the daemon).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Control socket of the daemon.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// State directory of the daemon (finds its default socket).
        #[arg(long, default_value = "/run/bondd")]
        state_dir: PathBuf,
    },
    /// Make SLAVE the active slave of BOND (the kernel's active_slave).
    SetActive {
        /// Bond name.
        bond: String,
        /// Slave name.
        slave: String,
        /// The daemon's config (its `control: socket:` finds the daemon).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Control socket of the daemon.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// State directory of the daemon (finds its default socket).
        #[arg(long, default_value = "/run/bondd")]
        state_dir: PathBuf,
    },
    /// Re-read the daemon's configuration file and apply it (as SIGHUP).
    Reload {
        /// The daemon's config (its `control: socket:` finds the daemon).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Control socket of the daemon.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// State directory of the daemon (finds its default socket).
        #[arg(long, default_value = "/run/bondd")]
        state_dir: PathBuf,
    },
    /// Print a bondd config for the bonds in NetworkManager keyfiles
    /// (warnings about what does not carry over go to stderr).
    ImportNm {
        /// Directory of *.nmconnection keyfiles.
        #[arg(default_value = nm::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Self-contained demo on veth pairs in network namespaces.
    Demo {
        /// Seconds of traffic before and after the link failure.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BONDD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn limits() -> Limits {
    Limits {
        max_mtu: bond::MAX_MTU,
    }
}

/// A config anyone but root can write would let them reconfigure the
/// network as root: refused, as sshd refuses loose key files.
fn check_config_owner(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let file = path.display().to_string();
    let md = std::fs::metadata(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{file}: writable by group or others (mode {mode:04o}); bondd refuses it: chmod go-w {file}"
        ));
    }
    let me = bondd_xdp::sys::euid();
    if md.uid() != 0 && md.uid() != me {
        return Err(format!(
            "{file}: owned by uid {}, not root; bondd refuses it: chown root {file}",
            md.uid()
        ));
    }
    Ok(())
}

fn load_config(path: &std::path::Path) -> Result<config::Config, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let cfg = config::parse(&text, &file, &limits()).map_err(|e| e.to_string())?;
    let mut errs = Vec::new();
    for b in &cfg.bonds {
        if let Err(e) = bond::check_supported(b) {
            errs.push(format!("{file}: {e}"));
        }
    }
    if !errs.is_empty() {
        return Err(errs.join("\n"));
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    match cli.cmd {
        Some(Cmd::Check { config }) => {
            match check_config_owner(&config).and_then(|()| load_config(&config)) {
                Ok(cfg) => {
                    for w in &cfg.warnings {
                        warn!("{w}");
                    }
                    // Read-only look at the system: slaves exist, names free.
                    if let Err(e) = check_system(&cfg, &config.display().to_string()) {
                        eprintln!("{e:#}");
                        return ExitCode::from(1);
                    }
                    println!(
                        "{}: ok ({} bond{})",
                        config.display(),
                        cfg.bonds.len(),
                        if cfg.bonds.len() == 1 { "" } else { "s" }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Cmd::Status {
            bond,
            json,
            config,
            socket,
            state_dir,
        }) => {
            let path = find_socket(socket, config, &state_dir);
            match control::request(&path, &control::Request::Status { bond: bond.clone() }) {
                Ok(r) if r.ok => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&r.bonds).unwrap_or_default()
                        );
                    } else {
                        for (i, b) in r.bonds.iter().enumerate() {
                            if i > 0 {
                                println!();
                            }
                            print!(
                                "{}",
                                b.to_proc(&format!("{} (bondd)", env!("CARGO_PKG_VERSION")))
                            );
                        }
                    }
                    ExitCode::SUCCESS
                }
                Ok(r) => {
                    eprintln!("bondd: {}", r.error.unwrap_or_default());
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("bondd: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Cmd::SetActive {
            bond,
            slave,
            config,
            socket,
            state_dir,
        }) => {
            let path = find_socket(socket, config, &state_dir);
            simple_request(&path, &control::Request::SetActive { bond, slave })
        }
        Some(Cmd::Reload {
            config,
            socket,
            state_dir,
        }) => {
            let path = find_socket(socket, config, &state_dir);
            simple_request(&path, &control::Request::Reload)
        }
        Some(Cmd::ImportNm { dir }) => match nm::import_dir(&dir) {
            Ok(imp) => {
                for w in &imp.warnings {
                    eprintln!("warning: {w}");
                }
                print!("{}", imp.yaml);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bondd import-nm: {e:#}");
                ExitCode::from(1)
            }
        },
        Some(Cmd::Demo { seconds }) => match demo::run(seconds) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("demo failed: {e:#}");
                ExitCode::from(1)
            }
        },
        None => {
            let Some(path) = cli.config else {
                eprintln!(
                    "bondd: no --config given. Run `bondd --config bond.yaml`, `bondd check --config bond.yaml`, or `bondd demo` for a self-contained demo."
                );
                return ExitCode::from(2);
            };
            run(path, cli.state_dir, cli.socket, cli.metrics)
        }
    }
}

/// The control socket: `--socket`, else the config's `control: socket:`,
/// else the default for this network namespace.
fn find_socket(
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    state_dir: &std::path::Path,
) -> PathBuf {
    if let Some(s) = socket {
        return s;
    }
    if let Some(c) = config
        && let Ok(text) = std::fs::read_to_string(&c)
        && let Ok(cfg) = config::parse(&text, &c.display().to_string(), &limits())
        && let Some(p) = cfg.control_socket
    {
        return PathBuf::from(p);
    }
    control::default_socket(state_dir)
}

fn simple_request(path: &std::path::Path, req: &control::Request) -> ExitCode {
    match control::request(path, req) {
        Ok(r) if r.ok => {
            println!("{}", r.message.unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!("bondd: {}", r.error.unwrap_or_default());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("bondd: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The checks `bondd --config` makes before changing anything, for `check`.
/// They only read (netlink dumps), so they are safe on a live system.
fn check_system(cfg: &config::Config, file: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let net = Net::open()?;
        for b in &cfg.bonds {
            bond::preflight(&net, b, std::path::Path::new("/run/bondd"))
                .await
                .map_err(|e| anyhow::anyhow!("{file}: {e:#}"))?;
        }
        Ok(())
    })
}

fn run(
    path: PathBuf,
    state_dir: PathBuf,
    socket: Option<PathBuf>,
    metrics_listen: Option<String>,
) -> ExitCode {
    let cfg = match check_config_owner(&path).and_then(|()| load_config(&path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for w in &cfg.warnings {
        warn!("{w}");
    }
    // Command-line flags override the config file.
    let metrics_addr = match metrics_listen.as_deref() {
        None => cfg.metrics_listen,
        Some("off") => None,
        Some(a) => match a.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("bondd: --metrics {a}: not an address:port or `off`: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let socket = socket
        .or_else(|| cfg.control_socket.clone().map(PathBuf::from))
        .unwrap_or_else(|| control::default_socket(&state_dir));
    if !bondd_xdp::sys::is_root() {
        eprintln!(
            "bondd: needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW) to attach XDP and open AF_XDP sockets"
        );
        return ExitCode::from(1);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bondd: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let file = path.display().to_string();
    match rt.block_on(serve(
        cfg,
        path.clone(),
        &file,
        state_dir,
        socket,
        metrics_addr,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// Re-reads the configuration and applies it: all checks first, so an
/// invalid file changes nothing; then removed bonds stop, new ones start,
/// changed ones change in place or, where they must, are rebuilt alone.
async fn reload(
    bonds: &mut Vec<Bond>,
    net: &Net,
    path: &std::path::Path,
    state_dir: &std::path::Path,
    slow_notify: &std::sync::Arc<tokio::sync::Notify>,
) -> Result<String> {
    let file = path.display().to_string();
    let cfg = check_config_owner(path)
        .and_then(|()| load_config(path))
        .map_err(|e| anyhow::anyhow!("reload refused, nothing changed:\n{e}"))?;
    for b in &cfg.bonds {
        bond::preflight(net, b, state_dir)
            .await
            .map_err(|e| anyhow::anyhow!("reload refused, nothing changed: {file}: {e:#}"))?;
    }
    let mut report = Vec::new();
    // Bonds gone from the file stop.
    let mut i = 0;
    while i < bonds.len() {
        if cfg.bonds.iter().any(|b| b.name == bonds[i].cfg.name) {
            i += 1;
        } else {
            let mut b = bonds.remove(i);
            report.push(format!("{}: removed", b.cfg.name));
            b.teardown(net).await;
        }
    }
    for nb in cfg.bonds {
        let name = nb.name.clone();
        match bonds.iter().position(|b| b.cfg.name == name) {
            None => {
                bond::cleanup_stale(net, &nb, state_dir).await?;
                let b = Bond::start(net, nb, state_dir, slow_notify.clone())
                    .await
                    .with_context(|| format!("{file}: bond \"{name}\""))?;
                report.push(format!("{name}: started"));
                bonds.push(b);
            }
            Some(i) => match bonds[i].reload(net, nb.clone()).await? {
                bond::ReloadOutcome::Unchanged => report.push(format!("{name}: unchanged")),
                bond::ReloadOutcome::Updated(what) => {
                    report.push(format!("{name}: updated ({what})"))
                }
                bond::ReloadOutcome::NeedsRebuild(why) => {
                    warn!(bond = %name, "reload: {why}; rebuilding this bond");
                    let mut old = bonds.remove(i);
                    old.teardown(net).await;
                    let b = Bond::start(net, nb, state_dir, slow_notify.clone())
                        .await
                        .with_context(|| format!("{file}: bond \"{name}\""))?;
                    bonds.insert(i, b);
                    report.push(format!("{name}: rebuilt ({why})"));
                }
            },
        }
    }
    Ok(report.join("; "))
}

async fn serve(
    cfg: config::Config,
    cfg_path: PathBuf,
    file: &str,
    state_dir: PathBuf,
    socket: PathBuf,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<()> {
    let mut net = Net::open()?;
    let mut events = net.take_events();
    // Every check before any change: a bad slave or a busy interface leaves
    // the system untouched.
    for b in &cfg.bonds {
        bond::preflight(&net, b, &state_dir)
            .await
            .map_err(|e| anyhow::anyhow!("{file}: {e:#}"))?;
    }
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;

    let slow_notify = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut bonds: Vec<Bond> = Vec::new();
    for b in cfg.bonds {
        let name = b.name.clone();
        let started = async {
            bond::cleanup_stale(&net, &b, &state_dir).await?;
            Bond::start(&net, b, &state_dir, slow_notify.clone()).await
        }
        .await;
        match started {
            Ok(bd) => bonds.push(bd),
            Err(e) => {
                for mut bd in bonds {
                    bd.teardown(&net).await;
                }
                return Err(e.context(format!("{file}: bond \"{name}\"")));
            }
        }
    }
    let (ctl_tx, mut ctl_rx) = tokio::sync::mpsc::channel::<control::ControlMsg>(16);
    let (met_tx, mut met_rx) =
        tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<String>>(16);
    let started_services = async {
        let c = control::serve(&socket, ctl_tx)?;
        // Metrics are not worth losing the bond over: a bind failure (port
        // taken, no loopback in this namespace) is logged and bonding goes on.
        let m = match metrics_addr {
            Some(a) => match metrics::serve(a, met_tx).await {
                Ok(h) => Some(h),
                Err(e) => {
                    error!("{e:#}; running without metrics");
                    None
                }
            },
            None => None,
        };
        anyhow::Ok((c, m))
    }
    .await;
    let _services = match started_services {
        Ok(s) => s,
        Err(e) => {
            for mut bd in bonds {
                bd.teardown(&net).await;
            }
            return Err(e);
        }
    };
    info!(
        bonds = bonds.len(),
        "bondd ready: {}",
        bonds
            .iter()
            .map(|b| format!(
                "{} active {}",
                b.cfg.name,
                b.active_name().unwrap_or("none")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Setup is done: keep only the capabilities running and reloading need.
    let keep: Vec<u32> = bondd_xdp::sys::KEEP_CAPS.iter().map(|(c, _)| *c).collect();
    match if std::env::var_os("BONDD_NO_CAP_DROP").is_some() {
        Ok(())
    } else {
        bondd_xdp::sys::drop_capabilities(&keep)
    } {
        Ok(()) => info!(
            "dropped all capabilities but {}",
            bondd_xdp::sys::KEEP_CAPS
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => warn!("could not drop capabilities: {e}"),
    }
    sdnotify::ready(&ready_status(&bonds));
    let mut report = tokio::time::interval(Duration::from_secs(60));
    report.tick().await;
    loop {
        let now = bond::now();
        let wait = bonds
            .iter()
            .filter_map(|b| b.next_deadline())
            .min()
            .map(|d| Duration::from_nanos(d.0.saturating_sub(now.0)))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else {
                    error!("netlink event stream ended");
                    break;
                };
                match ev {
                    LinkEvent::Changed(l) => {
                        let mut rebuild = None;
                        for (k, b) in bonds.iter_mut().enumerate() {
                            if let Some(i) = b.slave_index(l.index) {
                                b.on_carrier(&net, i, l.carrier).await;
                                b.on_slave_changed(&net, i, &l).await;
                            } else if b.is_missing(&l.name) {
                                match b.on_slave_back(&net, &l.name).await {
                                    Ok(true) => rebuild = Some(k),
                                    Ok(false) => {}
                                    Err(e) => error!(bond = %b.cfg.name, slave = %l.name, "taking the slave back: {e:#}"),
                                }
                            }
                        }
                        if let Some(k) = rebuild {
                            let mut old = bonds.remove(k);
                            let cfg = old.cfg.clone();
                            warn!(bond = %cfg.name, "slave {} is back; rebuilding the 802.3ad bond", l.name);
                            old.teardown(&net).await;
                            match Bond::start(&net, cfg, &state_dir, slow_notify.clone()).await {
                                Ok(b) => bonds.insert(k, b),
                                Err(e) => error!("rebuilding: {e:#}"),
                            }
                        }
                    }
                    LinkEvent::Removed { index, name } => {
                        for b in bonds.iter_mut() {
                            if let Some(i) = b.slave_index(index) {
                                warn!(bond = %b.cfg.name, slave = %name, "slave link removed");
                                b.on_slave_removed(&net, i).await;
                            }
                        }
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {
                for b in bonds.iter_mut() {
                    b.on_tick(&net).await;
                }
            }
            _ = report.tick() => {
                for b in &bonds {
                    info!(bond = %b.cfg.name, failovers = b.failovers(), "{}", b.summary());
                }
            }
            Some(msg) = ctl_rx.recv() => {
                let resp = match msg.req {
                    control::Request::Status { bond } => {
                        let list: Vec<_> = bonds
                            .iter()
                            .filter(|b| bond.as_ref().is_none_or(|n| &b.cfg.name == n))
                            .map(|b| b.status())
                            .collect();
                        if let (Some(n), true) = (&bond, list.is_empty()) {
                            control::Response::err(format!("no bond named {n}"))
                        } else {
                            control::Response { ok: true, bonds: list, ..Default::default() }
                        }
                    }
                    control::Request::SetActive { bond, slave } => {
                        match bonds.iter_mut().find(|b| b.cfg.name == bond) {
                            None => control::Response::err(format!("no bond named {bond}")),
                            Some(b) => match b.set_active(&net, &slave).await {
                                Ok(m) => control::Response { ok: true, message: Some(m), ..Default::default() },
                                Err(e) => control::Response::err(format!("{e:#}")),
                            },
                        }
                    }
                    control::Request::Reload => {
                        sdnotify::reloading();
                        let r = reload(&mut bonds, &net, &cfg_path, &state_dir, &slow_notify).await;
                        sdnotify::ready(&ready_status(&bonds));
                        match r {
                            Ok(m) => {
                                info!("reload: {m}");
                                control::Response { ok: true, message: Some(m), ..Default::default() }
                            }
                            Err(e) => {
                                error!("{e:#}");
                                control::Response::err(format!("{e:#}"))
                            }
                        }
                    }
                };
                let _ = msg.reply.send(resp);
            }
            _ = slow_notify.notified() => {
                for b in bonds.iter_mut() {
                    b.on_slow_frames(&net).await;
                }
            }
            Some(reply) = met_rx.recv() => {
                let st: Vec<_> = bonds.iter().map(|b| b.status()).collect();
                let _ = reply.send(metrics::render(&st));
            }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => {
                info!("SIGHUP: reloading {}", cfg_path.display());
                sdnotify::reloading();
                match reload(&mut bonds, &net, &cfg_path, &state_dir, &slow_notify).await {
                    Ok(m) => info!("reload: {m}"),
                    Err(e) => error!("{e:#}"),
                }
                sdnotify::ready(&ready_status(&bonds));
            }
        }
    }
    sdnotify::stopping();
    for mut b in bonds {
        info!(bond = %b.cfg.name, failovers = b.failovers(), "{}", b.summary());
        b.teardown(&net).await;
    }
    // Keep the netlink connection alive until teardown is done.
    let _ = &mut net;
    let _ = std::fs::remove_file(&socket);
    info!("bondd stopped");
    Ok(())
}

/// systemd STATUS= line: each bond and its active slave.
fn ready_status(bonds: &[Bond]) -> String {
    bonds
        .iter()
        .map(|b| {
            format!(
                "{} active {}",
                b.cfg.name,
                b.active_name().unwrap_or("none")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
