//! Client subcommands of the `tern` binary, modelled on the `nats` CLI:
//! `tern pub|sub|req|reply|bench|healthcheck`. They exist so a container image with
//! nothing but `/tern` can probe itself (Docker HEALTHCHECK, Helm tests) and so a new
//! user can try a cluster without installing anything else.
//!
//! Not part of the server: nothing here is used by `tern::run`. The protocol client is
//! the small raw one in [`conn`] (no client library in the binary).

mod bench;
pub mod conn;
mod health;
mod msgs;
mod tls;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// First arguments that select a client subcommand (checked by `cli::parse_args`).
pub const COMMANDS: &[&str] = &[
    "pub",
    "sub",
    "req",
    "request",
    "reply",
    "bench",
    "healthcheck",
];

#[derive(Parser, Debug)]
#[command(name = "tern", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Publish MSG to SUBJECT (`{{Count}}` in MSG is replaced by the message number)
    Pub {
        subject: String,
        #[arg(default_value = "")]
        msg: String,
        /// Number of messages to publish
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Delay between messages (e.g. 100ms)
        #[arg(long, value_parser = parse_duration)]
        sleep: Option<Duration>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Subscribe to SUBJECT and print what arrives
    Sub {
        subject: String,
        /// Exit after this many messages (0: run until interrupted)
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Join this queue group
        #[arg(long)]
        queue: Option<String>,
        /// Print only the payload, one per line
        #[arg(long)]
        raw: bool,
        /// Give up after this long without the expected messages
        #[arg(long, value_parser = parse_duration)]
        wait: Option<Duration>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Send MSG to SUBJECT and print the reply
    #[command(alias = "request")]
    Req {
        subject: String,
        #[arg(default_value = "")]
        msg: String,
        /// How long to wait for the reply
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
        /// Print only the payload
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Answer requests on SUBJECT with MSG
    Reply {
        subject: String,
        #[arg(default_value = "")]
        msg: String,
        /// Exit after this many requests (0: run until interrupted)
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Join this queue group
        #[arg(long)]
        queue: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// A short load on SUBJECT with a throughput summary
    Bench(bench::BenchArgs),
    /// Probe a monitoring endpoint; exit 0 when it answers 200 {"status":"ok"}
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8222/healthz")]
        url: String,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// Connection flags shared by the client commands (the nats CLI's names).
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// NATS server URLs, comma-separated (nats://[user:pass@]host:port);
    /// default $NATS_URL, else nats://127.0.0.1:4222
    #[arg(short = 's', long = "server")]
    pub server: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub password: Option<String>,
    #[arg(long)]
    pub token: Option<String>,
    /// User credentials file (user JWT + nkey seed, as `nsc` writes it): the INFO
    /// nonce is signed with the seed
    #[arg(long)]
    pub creds: Option<String>,
    /// File holding a user nkey seed (SU...): nkey authentication
    #[arg(long)]
    pub nkey: Option<String>,
    /// CA bundle to verify the server's certificate (turns TLS on)
    #[arg(long)]
    pub tlsca: Option<std::path::PathBuf>,
    /// Client certificate for mutual TLS (with --tlskey)
    #[arg(long)]
    pub tlscert: Option<std::path::PathBuf>,
    /// Client certificate's private key
    #[arg(long)]
    pub tlskey: Option<std::path::PathBuf>,
}

impl ConnArgs {
    pub fn servers(&self) -> anyhow::Result<(Vec<conn::ServerUrl>, conn::Auth)> {
        use anyhow::Context as _;
        let mut auth = conn::Auth {
            user: self.user.clone(),
            pass: self.password.clone(),
            token: self.token.clone(),
            tls: tls::TlsOpts {
                ca: self.tlsca.clone(),
                cert: self.tlscert.clone(),
                key: self.tlskey.clone(),
            },
            ..Default::default()
        };
        if let Some(path) = &self.creds {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading credentials {path}"))?;
            let (jwt, seed) =
                crate::auth::jwt::parse_creds(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            auth.jwt = Some(jwt);
            auth.seed = Some(seed);
        } else if let Some(path) = &self.nkey {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading nkey seed {path}"))?;
            let seed = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("SU"))
                .ok_or_else(|| anyhow::anyhow!("{path}: no user nkey seed (SU...) found"))?;
            auth.seed = Some(seed.to_string());
        }
        if let Some(seed) = &auth.seed {
            nkeys::KeyPair::from_seed(seed).map_err(|e| anyhow::anyhow!("bad nkey seed: {e}"))?;
        }
        let list = match &self.server {
            Some(s) => s.clone(),
            None => std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        };
        Ok((conn::parse_servers(&list)?, auth))
    }
}

/// `500ms`, `2s`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'));
    let (num, unit) = s.split_at(split.unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| format!("bad duration \"{s}\""))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in \"{s}\"")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Runs a client subcommand; `args` starts with the subcommand name. Returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once("tern".to_string()).chain(args)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if let Cmd::Healthcheck { url, timeout } = &cli.cmd {
        return health::check(url, *timeout);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tern: could not start the runtime: {e}");
            return 1;
        }
    };
    let res = rt.block_on(async move {
        match cli.cmd {
            Cmd::Pub {
                subject,
                msg,
                count,
                sleep,
                conn,
            } => msgs::publish(&conn, &subject, &msg, count, sleep).await,
            Cmd::Sub {
                subject,
                count,
                queue,
                raw,
                wait,
                conn,
            } => msgs::subscribe(&conn, &subject, queue.as_deref(), count, raw, wait).await,
            Cmd::Req {
                subject,
                msg,
                timeout,
                raw,
                conn,
            } => msgs::request(&conn, &subject, &msg, timeout, raw).await,
            Cmd::Reply {
                subject,
                msg,
                count,
                queue,
                conn,
            } => msgs::reply(&conn, &subject, &msg, count, queue.as_deref()).await,
            Cmd::Bench(args) => bench::run(args).await,
            Cmd::Healthcheck { .. } => Ok(()),
        }
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tern: {e:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn flags_parse() {
        let c = Cli::try_parse_from([
            "tern",
            "sub",
            "a.>",
            "--count",
            "3",
            "--queue",
            "q",
            "-s",
            "nats://h:1",
        ])
        .unwrap();
        match c.cmd {
            Cmd::Sub {
                subject,
                count,
                queue,
                conn,
                ..
            } => {
                assert_eq!((subject.as_str(), count), ("a.>", 3));
                assert_eq!(queue.as_deref(), Some("q"));
                assert_eq!(conn.server.as_deref(), Some("nats://h:1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["tern", "pub"]).is_err());
        let c = Cli::try_parse_from(["tern", "request", "s", "m", "--timeout", "500ms"]).unwrap();
        assert!(matches!(c.cmd, Cmd::Req { timeout, .. } if timeout == Duration::from_millis(500)));
    }
}
