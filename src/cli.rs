//! The nats-server-compatible command line, parsed the way Go's `flag` package does:
//! `-x` and `--x` are the same flag, values as `-p 4222` or `-p=4222`, booleans take no
//! value (or `=false`), multi-letter short flags (`-DV`, `-ms`, `-sl`), and parsing stops
//! at the first non-flag argument. Plus tern's subcommands `config check|print`.
//!
//! Parsing only: values become [`Overrides`] (defined in `conf/overrides.rs`, applied over
//! the file and env by `conf::load`); the signal is resolved to a pid but sent by main.
//! Printing for `config` commands and `-t` lives in `conf/commands.rs`.

use std::path::PathBuf;

pub use crate::conf::overrides::{parse_cluster_url, ClusterListen, Overrides};
use crate::config::size;

/// Everything needed to start (or `-t` test) a server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunArgs {
    pub config_file: Option<PathBuf>,
    pub overrides: Overrides,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(RunArgs),
    /// `tern config check FILE`
    ConfigCheck(PathBuf),
    /// `tern config print [--json] [FILE]`: TOML unless `json`.
    ConfigPrint {
        file: Option<PathBuf>,
        json: bool,
    },
    /// `-t`: load and validate, then exit.
    TestConfig(RunArgs),
    /// `--signal CMD[=PID|PIDFILE]`; `pid` is resolved to digits when a pid file was named
    /// (or taken from `-P`); a value with `*` is passed through as a glob.
    Signal {
        command: String,
        pid: Option<String>,
    },
    /// `tern pub|sub|req|reply|bench|healthcheck ...`: the client tools (`tools::main`),
    /// which parse their own flags.
    Tool(Vec<String>),
    /// `tern cluster ...`: the admin API client.
    Cluster(crate::admin::cli::ClusterArgs),
    Help,
    Version,
}

/// Signal commands accepted by `--signal` (nats-server's names).
pub const SIGNALS: &[&str] = &["stop", "quit", "term", "reload", "reopen", "ldm"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    #[error("flag provided but not defined: -{0}")]
    UnknownFlag(String),
    #[error("flag --{0} is not supported by tern yet")]
    Unsupported(String),
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    #[error("invalid value \"{value}\" for flag -{flag}: {reason}")]
    InvalidValue {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    #[error("unrecognized command: \"{0}\"")]
    UnexpectedArg(String),
    #[error("unknown signal \"{0}\" (expected one of stop, quit, term, reload, reopen, ldm)")]
    BadSignal(String),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// Go's flag package prints the usage after these.
    pub fn wants_usage(&self) -> bool {
        matches!(
            self,
            CliError::UnknownFlag(_) | CliError::BadSyntax(_) | CliError::MissingValue(_)
        )
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Value,
}

/// Which setting a flag feeds.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Target {
    Host,
    Port,
    Name,
    HttpPort,
    HttpsPort,
    Config,
    Test,
    Log,
    Pid,
    LogTime,
    Debug,
    Trace,
    DebugTrace,
    User,
    Pass,
    Auth,
    PortsFileDir,
    ClientAdvertise,
    Signal,
    StoreDir,
    JetStream,
    MaxTracedMsgLen,
    LogSizeLimit,
    LogJson,
    Cluster,
    ClusterName,
    ClusterAdvertise,
    Routes,
    NoAdvertise,
    ConnectRetries,
    Tls,
    TlsVerify,
    TlsCert,
    TlsKey,
    TlsCaCert,
    ClusterControl,
    Help,
    Version,
    Unsupported,
}

/// (names, kind, target). Names are matched after stripping one or two dashes.
const FLAGS: &[(&[&str], Kind, Target)] = &[
    (&["a", "addr", "net"], Kind::Value, Target::Host),
    (&["p", "port"], Kind::Value, Target::Port),
    (&["n", "name", "server_name"], Kind::Value, Target::Name),
    (&["m", "http_port"], Kind::Value, Target::HttpPort),
    (&["ms", "https_port"], Kind::Value, Target::HttpsPort),
    (&["c", "config"], Kind::Value, Target::Config),
    (&["t"], Kind::Bool, Target::Test),
    (&["l", "log"], Kind::Value, Target::Log),
    (&["P", "pid"], Kind::Value, Target::Pid),
    (&["T", "logtime"], Kind::Bool, Target::LogTime),
    (&["D", "debug"], Kind::Bool, Target::Debug),
    (&["V", "trace", "VV"], Kind::Bool, Target::Trace),
    (&["DV", "DVV"], Kind::Bool, Target::DebugTrace),
    (&["user"], Kind::Value, Target::User),
    (&["pass"], Kind::Value, Target::Pass),
    (&["auth"], Kind::Value, Target::Auth),
    (&["ports_file_dir"], Kind::Value, Target::PortsFileDir),
    (&["client_advertise"], Kind::Value, Target::ClientAdvertise),
    (&["sl", "signal"], Kind::Value, Target::Signal),
    (&["sd", "store_dir"], Kind::Value, Target::StoreDir),
    (&["js", "jetstream"], Kind::Bool, Target::JetStream),
    (
        &["max_traced_msg_len"],
        Kind::Value,
        Target::MaxTracedMsgLen,
    ),
    (&["log_size_limit"], Kind::Value, Target::LogSizeLimit),
    (&["log_json"], Kind::Bool, Target::LogJson),
    (&["cluster", "cluster_listen"], Kind::Value, Target::Cluster),
    (&["cluster_name"], Kind::Value, Target::ClusterName),
    (
        &["cluster_advertise"],
        Kind::Value,
        Target::ClusterAdvertise,
    ),
    (&["routes"], Kind::Value, Target::Routes),
    (&["no_advertise"], Kind::Bool, Target::NoAdvertise),
    (&["connect_retries"], Kind::Value, Target::ConnectRetries),
    (&["tls"], Kind::Bool, Target::Tls),
    (&["tlsverify"], Kind::Bool, Target::TlsVerify),
    (&["tlscert"], Kind::Value, Target::TlsCert),
    (&["tlskey"], Kind::Value, Target::TlsKey),
    (&["tlscacert"], Kind::Value, Target::TlsCaCert),
    (&["cluster_control"], Kind::Value, Target::ClusterControl),
    (&["h", "help"], Kind::Bool, Target::Help),
    (&["v", "version"], Kind::Bool, Target::Version),
    // nats-server flags for features tern does not have yet: a clear error, not "unknown".
    (
        &["s", "syslog", "help_tls", "logtime_utc"],
        Kind::Bool,
        Target::Unsupported,
    ),
    (
        &["r", "remote_syslog", "profile"],
        Kind::Value,
        Target::Unsupported,
    ),
];

/// Long names for the unsupported short flags, so the error names the familiar form.
fn long_name(name: &str) -> &str {
    match name {
        "s" => "syslog",
        "r" => "remote_syslog",
        other => other,
    }
}

/// Go's strconv.ParseBool.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `args` (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let args: Vec<String> = args.into_iter().collect();
    if args.first().map(String::as_str) == Some("config") {
        return parse_config_subcommand(&args[1..]);
    }
    if args
        .first()
        .is_some_and(|a| crate::tools::COMMANDS.contains(&a.as_str()))
    {
        return Ok(Command::Tool(args));
    }
    if args.first().map(String::as_str) == Some("cluster") {
        return crate::admin::cli::parse(&args[1..])
            .map(Command::Cluster)
            .map_err(CliError::Other);
    }
    let mut run = RunArgs::default();
    let o = &mut run.overrides;
    let (mut test, mut help, mut version) = (false, false, false);
    let mut signal: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        if arg == "--" {
            i += 1;
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(CliError::BadSyntax(arg.clone()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(_, kind, target)) = FLAGS.iter().find(|(names, _, _)| names.contains(&name))
        else {
            return Err(CliError::UnknownFlag(name.to_string()));
        };
        if target == Target::Unsupported {
            return Err(CliError::Unsupported(long_name(name).to_string()));
        }
        i += 1;
        let invalid = |value: &str, reason: &str| CliError::InvalidValue {
            flag: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if kind == Kind::Bool {
            let b = match &inline {
                Some(v) => parse_go_bool(v).ok_or_else(|| invalid(v, "parse error"))?,
                None => true,
            };
            match target {
                Target::Test => test = b,
                Target::LogTime => o.logtime = Some(b),
                Target::Debug => o.debug = Some(b),
                Target::Trace => o.trace = Some(b),
                Target::DebugTrace => {
                    o.debug = Some(b);
                    o.trace = Some(b);
                }
                Target::JetStream => o.jetstream = Some(b),
                Target::NoAdvertise => o.no_advertise = Some(b),
                Target::Tls => o.tls = Some(b),
                Target::TlsVerify => o.tls_verify = Some(b),
                Target::LogJson => o.log_json = Some(b),
                Target::Help => help = b,
                Target::Version => version = b,
                _ => {}
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .ok_or_else(|| CliError::MissingValue(name.to_string()))?;
                i += 1;
                v.clone()
            }
        };
        let int = |v: &str| -> Result<i64, CliError> {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid(v, "parse error"))
        };
        let port = |v: &str| -> Result<i32, CliError> {
            i32::try_from(int(v)?).map_err(|_| invalid(v, "value out of range"))
        };
        match target {
            Target::Host => o.host = Some(value),
            Target::Port => o.port = Some(port(&value)?),
            Target::Name => o.server_name = Some(value),
            Target::HttpPort => o.http_port = Some(port(&value)?),
            Target::HttpsPort => o.https_port = Some(port(&value)?),
            Target::Config => run.config_file = Some(PathBuf::from(value)),
            Target::Log => o.log_file = Some(PathBuf::from(value)),
            Target::Pid => o.pid_file = Some(PathBuf::from(value)),
            Target::User => o.user = Some(value),
            Target::Pass => o.pass = Some(value),
            Target::Auth => o.token = Some(value),
            Target::PortsFileDir => o.ports_file_dir = Some(PathBuf::from(value)),
            Target::ClientAdvertise => o.client_advertise = Some(value),
            Target::Signal => signal = Some(value),
            Target::StoreDir => o.store_dir = Some(PathBuf::from(value)),
            Target::MaxTracedMsgLen => o.max_traced_msg_len = Some(port(&value)?),
            Target::LogSizeLimit => {
                let n = size::parse_size(&value).map_err(|e| invalid(&value, &e))?;
                o.log_size_limit =
                    Some(u64::try_from(n).map_err(|_| invalid(&value, "must not be negative"))?);
            }
            Target::Cluster => {
                parse_cluster_url(&value).map_err(|e| invalid(&value, &e))?;
                o.cluster_listen = Some(value);
            }
            Target::ClusterName => o.cluster_name = Some(value),
            Target::TlsCert => o.tls_cert = Some(PathBuf::from(value)),
            Target::TlsKey => o.tls_key = Some(PathBuf::from(value)),
            Target::TlsCaCert => o.tls_ca_cert = Some(PathBuf::from(value)),
            Target::ClusterControl => o.cluster_control = Some(value),
            Target::ClusterAdvertise => o.cluster_advertise = Some(value),
            Target::Routes => {
                let routes = value
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect();
                o.routes = Some(routes);
            }
            Target::ConnectRetries => {
                o.connect_retries = Some(
                    u32::try_from(int(&value)?)
                        .map_err(|_| invalid(&value, "value out of range"))?,
                )
            }
            _ => {}
        }
    }
    if let Some(extra) = args.get(i) {
        return Err(CliError::UnexpectedArg(extra.clone()));
    }
    if help {
        return Ok(Command::Help);
    }
    if version {
        return Ok(Command::Version);
    }
    if let Some(sig) = signal {
        let pid_file = run.overrides.pid_file.clone();
        return parse_signal(&sig, pid_file.as_deref());
    }
    Ok(if test {
        Command::TestConfig(run)
    } else {
        Command::Run(run)
    })
}

fn parse_config_subcommand(args: &[String]) -> Result<Command, CliError> {
    let usage = "usage: tern config check FILE | tern config print [--json] [FILE]";
    match args.first().map(String::as_str) {
        Some("check") => match &args[1..] {
            [file] => Ok(Command::ConfigCheck(PathBuf::from(file))),
            _ => Err(CliError::Other(usage.into())),
        },
        Some("print") => {
            let mut json = false;
            let mut file = None;
            for a in &args[1..] {
                match a.as_str() {
                    "--json" | "-json" => json = true,
                    "--toml" | "-toml" => json = false,
                    f if !f.starts_with('-') && file.is_none() => file = Some(PathBuf::from(f)),
                    other => {
                        return Err(CliError::Other(format!(
                            "unexpected argument \"{other}\"; {usage}"
                        )))
                    }
                }
            }
            Ok(Command::ConfigPrint { file, json })
        }
        _ => Err(CliError::Other(usage.into())),
    }
}

/// `CMD[=PID|PIDFILE]`: validates the command and turns a pid file into its pid.
fn parse_signal(value: &str, pid_file: Option<&std::path::Path>) -> Result<Command, CliError> {
    let (command, target) = match value.split_once('=') {
        Some((c, t)) => (c, Some(t)),
        None => (value, None),
    };
    if !SIGNALS.contains(&command) {
        return Err(CliError::BadSignal(command.to_string()));
    }
    let read_pid = |path: &std::path::Path| -> Result<String, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Other(format!(
                "could not read pid file \"{}\": {e}",
                path.display()
            ))
        })?;
        let pid = text.trim();
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CliError::Other(format!(
                "pid file \"{}\" does not hold a pid",
                path.display()
            )));
        }
        Ok(pid.to_string())
    };
    let pid = match target {
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => Some(t.to_string()),
        Some(t) if t.contains('*') => Some(t.to_string()),
        Some("") => None,
        Some(t) => Some(read_pid(std::path::Path::new(t))?),
        None => match pid_file {
            Some(p) => Some(read_pid(p)?),
            None => None,
        },
    };
    Ok(Command::Signal {
        command: command.to_string(),
        pid,
    })
}

/// `tern --version` output.
pub fn version_string() -> String {
    format!(
        "tern: v{} (NATS protocol compatible with nats-server v2.x)",
        env!("CARGO_PKG_VERSION")
    )
}

/// `tern --help` output, in nats-server's layout.
pub fn usage() -> &'static str {
    USAGE
}

const USAGE: &str = "\
Usage: tern [options]
       tern config check FILE
       tern config print [--json] [FILE]
       tern pub|sub|req|reply|bench|healthcheck ... (client tools; --help for each)
       tern cluster [--server host:port] [--token T] [--json] status|members|remove NODE|
                    drain [NODE]|transfer-leader NODE|config get|set FILE [--dry-run]|history

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222; -1 = random)
    -n, --name, --server_name <name> Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file (nats conf, .toml or .yaml)
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to tern process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be a pid or a path to a pid file
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (same as -V in tern)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace
        --log_size_limit <limit>     Logfile size limit (default: auto)
        --log_json                   Log one JSON object per line (time, level, msg, pid)
        --max_traced_msg_len <len>   Maximum printable length for traced messages (default: unlimited)

JetStream Options:
    -js, --jetstream                 Accepted; JetStream is not supported yet
    -sd, --store_dir <dir>           JetStream storage directory (accepted)

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_listen <url>       Same as --cluster
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries
        --cluster_control <host:port> gRPC control listener for Raft and the admin API (default port 6250)

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version

Environment:
    TERN_<KEY>=value overrides a config key (TERN_MAX_PAYLOAD=2MB, TERN_CLUSTER__NAME=c1).

Not supported yet (rejected): --syslog, --remote_syslog, --profile, --help_tls
";

#[cfg(test)]
mod tests;
