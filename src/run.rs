//! Running tern as a process the way nats-server runs: pid and ports files, signals
//! (SIGINT/SIGTERM stop, SIGHUP reload, SIGUSR2 lame duck), and `--signal` to another
//! process. `main.rs` parses the command line and calls [`run`] or [`send_signal`].

mod reload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::server::{fmt_host_port, Server, ServerShared};

/// Reloads the configuration from its sources (file, environment, flags).
pub type Reloader = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Addresses a listener bound to `host` can be reached on: every interface address
/// for an unspecified host (as nats-server lists them), else the host itself.
pub fn reachable_hosts(host: &str) -> Vec<String> {
    let unspecified = host.is_empty() || host == "0.0.0.0" || host == "::";
    if !unspecified {
        return vec![host.to_string()];
    }
    let mut out: Vec<String> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.into_iter().map(|i| i.ip().to_string()).collect())
        .unwrap_or_default();
    // Loopback first, as nats-server orders them.
    out.sort_by_key(|h| !(h == "127.0.0.1" || h == "::1"));
    out
}

fn urls(scheme: &str, host: &str, port: u16) -> Vec<String> {
    reachable_hosts(host)
        .into_iter()
        .map(|h| format!("{scheme}://{}", fmt_host_port(&h, port)))
        .collect()
}

/// What a ports file lists: each listener with the scheme a client of it uses.
pub struct ListenerUrls<'a> {
    pub host: &'a str,
    pub client: SocketAddr,
    /// The client listener has a `tls` block: `tls://`.
    pub client_tls: bool,
    pub http_host: &'a str,
    /// The monitoring listener, and whether it is HTTPS.
    pub monitor: Option<(SocketAddr, bool)>,
    pub cluster_host: &'a str,
    pub cluster: Option<SocketAddr>,
    /// The websocket listener: host, port and `ws`/`wss`.
    pub websocket: Option<(&'a str, u16, &'static str)>,
}

/// Writes `<exe>_<pid>.ports` into `dir`, as nats-server does; returns its path.
pub fn write_ports_file(dir: &Path, l: &ListenerUrls<'_>) -> std::io::Result<PathBuf> {
    let exe = std::env::args()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "tern".into());
    let path = dir.join(format!("{exe}_{}.ports", std::process::id()));
    let scheme = if l.client_tls { "tls" } else { "nats" };
    let mut v = serde_json::json!({ "nats": urls(scheme, l.host, l.client.port()) });
    if let Some((m, https)) = l.monitor {
        let scheme = if https { "https" } else { "http" };
        v["monitoring"] = serde_json::json!(urls(scheme, l.http_host, m.port()));
    }
    if let Some(c) = l.cluster {
        // nats-server lists routes as nats:// whether or not they use TLS.
        v["cluster"] = serde_json::json!(urls("nats", l.cluster_host, c.port()));
    }
    if let Some((host, port, scheme)) = l.websocket {
        v["websocket"] = serde_json::json!(urls(scheme, host, port));
    }
    std::fs::write(&path, v.to_string())?;
    Ok(path)
}

/// Starts the server and serves until a stop signal. Returns the process exit code.
pub async fn run(config: Config, reload: Reloader) -> i32 {
    let pid_file = config.logging.pid_file.clone();
    let ports_dir = config.logging.ports_file_dir.clone();
    // Handlers go in before "Server is ready": a harness may signal right after it.
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::user_defined1()),
    );
    let (Ok(mut int), Ok(mut term), Ok(mut hup), Ok(mut usr2), Ok(mut usr1)) = signals else {
        crate::logging::fatal("could not install signal handlers");
        return 1;
    };
    if let Some(p) = &pid_file {
        // Written before "Server is ready": harnesses read it when they see that line.
        // Digits only, no newline: they parse it strictly.
        if let Err(e) = std::fs::write(p, std::process::id().to_string()) {
            crate::logging::fatal(&format!("Could not write pidfile: {e}"));
            return 1;
        }
    }
    let handle = match Server::start(config).await {
        Ok(h) => h,
        Err(e) => {
            crate::logging::fatal(&e.to_string());
            return 1;
        }
    };
    let shared = handle.shared.clone();
    let mut ports_file = None;
    if let Some(dir) = &ports_dir {
        let cfg = shared.config();
        let http_host = cfg.http_host.clone().unwrap_or_else(|| cfg.host.clone());
        // As the monitor starts: `http_port` wins, else `https_port`.
        let https = cfg.http_port.is_none() && cfg.https_port.is_some();
        let cluster_host = cfg.cluster.host.clone().unwrap_or_else(|| cfg.host.clone());
        let ws = handle.websocket();
        let urls = ListenerUrls {
            host: &cfg.host,
            client: handle.client_addr(),
            client_tls: cfg.tls.is_some(),
            http_host: &http_host,
            monitor: handle.monitor_addr().map(|m| (m, https)),
            cluster_host: &cluster_host,
            cluster: handle.cluster_addr(),
            websocket: ws
                .as_ref()
                .map(|w| (w.host.as_str(), w.port, w.setup.scheme())),
        };
        match write_ports_file(dir, &urls) {
            Ok(p) => ports_file = Some(p),
            Err(e) => tracing::error!("Error writing ports file ({e})"),
        }
    }

    loop {
        tokio::select! {
            _ = handle.wait() => break,
            _ = int.recv() => {
                tracing::info!("Trapped \"interrupt\" signal");
                break;
            }
            _ = term.recv() => {
                // nats-server ignores SIGTERM while lame duck mode runs.
                if shared.is_lame_duck() {
                    continue;
                }
                tracing::info!("Trapped \"terminated\" signal");
                break;
            }
            _ = hup.recv() => {
                tracing::info!("Trapped \"hangup\" signal");
                apply_reload(&shared, &reload);
            }
            _ = usr1.recv() => {
                // Log rotation: reopen the log file (`--signal reopen`).
                if let Err(e) = crate::logging::reopen() {
                    tracing::error!("Could not reopen log file: {e}");
                } else {
                    tracing::info!("Reopened log file");
                }
            }
            _ = usr2.recv() => {
                tracing::info!("Trapped \"user defined signal 2\" signal");
                let s = shared.clone();
                tokio::spawn(async move { s.enter_lame_duck().await });
            }
        }
    }
    tracing::info!("Initiating Shutdown...");
    handle.shutdown().await;
    if let Some(p) = ports_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("Server Exiting..");
    0
}

/// Reload: re-read the configuration and apply what can change at run time; settings
/// that cannot (ports, hosts, paths) are reported by name and keep their old values.
pub fn apply_reload(shared: &Arc<ServerShared>, reload: &Reloader) {
    let started = std::time::SystemTime::now();
    let new = match reload() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("Failed to reload server configuration: {e}");
            return;
        }
    };
    let old = shared.config();
    let mut merged = new.clone();
    let mut refused = Vec::new();
    macro_rules! keep {
        ($($field:ident).+, $name:expr) => {
            if merged.$($field).+ != old.$($field).+ {
                refused.push($name);
                merged.$($field).+ = old.$($field).+.clone();
            }
        };
    }
    keep!(host, "host");
    keep!(port, "port");
    keep!(http_port, "http_port");
    keep!(http_host, "http_host");
    keep!(https_port, "https_port");
    keep!(server_name, "server_name");
    // The advertised client URLs are fixed when the listener starts.
    keep!(client_advertise, "client_advertise");
    keep!(cluster, "cluster");
    keep!(store_dir, "store_dir");
    keep!(logging.pid_file, "pid_file");
    keep!(logging.ports_file_dir, "ports_file_dir");
    keep!(logging.log_file, "log_file");
    keep!(logging.log_format, "log_format");
    keep!(telemetry, "telemetry");
    merged.config_file = old.config_file.clone();
    for name in &refused {
        tracing::warn!(
            "Reload: config option \"{name}\" cannot be changed at run time, keeping the old value"
        );
    }
    // Users, permissions and certificates: rebuilt now, used by new connections. A bad
    // certificate keeps the whole old configuration.
    let security = match crate::net::Security::build(&merged) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("Failed to reload server configuration: {e}");
            return;
        }
    };
    shared.set_security(security);
    if reload::auth_changed(&old, &merged) {
        // Connected clients are checked again by their own read loops (users gone,
        // credentials no longer valid, new permissions), as nats-server does on reload.
        for c in shared.clients.iter() {
            c.value().request_auth_recheck();
        }
    }
    if merged.logging.debug != old.logging.debug || merged.logging.trace != old.logging.trace {
        crate::logging::set_level(merged.logging.debug, merged.logging.trace);
    }
    crate::logging::set_size_limit(merged.logging.log_size_limit);
    crate::logging::set_max_num(merged.logging.log_max_num);
    reload::enforce_max_connections(shared, &old, &merged);
    reload::log_changes(&old, &merged);
    shared.set_config(merged);
    tracing::info!("Reloaded server configuration");
    let refused = refused.join(",");
    crate::telemetry::admin(
        shared,
        "tern.server.reload",
        started,
        vec![opentelemetry::KeyValue::new("nats.reload.refused", refused)],
    );
}

/// `--signal CMD[=PID|PIDFILE]`: sends the matching signal to a running server.
pub fn send_signal(command: &str, pid: Option<&str>) -> Result<(), String> {
    use nix::sys::signal::{kill, Signal};
    let sig = match command {
        "stop" => Signal::SIGKILL,
        "quit" => Signal::SIGINT,
        "term" => Signal::SIGTERM,
        "reload" => Signal::SIGHUP,
        "reopen" => Signal::SIGUSR1,
        "ldm" => Signal::SIGUSR2,
        other => return Err(format!("unknown signal \"{other}\"")),
    };
    let pid = match pid {
        Some(p) if p.chars().all(|c| c.is_ascii_digit()) => p.to_string(),
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| format!("could not read pid file {file}: {e}"))?
            .trim()
            .to_string(),
        None => return Err("no pid given: use --signal CMD=PID".into()),
    };
    let pid: i32 = pid.parse().map_err(|_| format!("invalid pid \"{pid}\""))?;
    kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| format!("failed to signal {pid}: {e}"))
}
