//! Command-line overrides: the last configuration layer (flags win over file and env).
//! Parsed by `cli.rs`, applied by `conf::load` to the typed `Config` after the file and
//! `TERN_` environment layers, before validation.

use std::path::PathBuf;

use crate::config::Config;

/// Values given on the command line; `None` = not given (the file/default stands).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<i32>,
    pub server_name: Option<String>,
    pub http_port: Option<i32>,
    pub https_port: Option<i32>,
    pub client_advertise: Option<String>,
    pub ports_file_dir: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub logtime: Option<bool>,
    pub debug: Option<bool>,
    pub trace: Option<bool>,
    pub user: Option<String>,
    pub pass: Option<String>,
    /// `--auth`: token.
    pub token: Option<String>,
    pub store_dir: Option<PathBuf>,
    pub jetstream: Option<bool>,
    pub log_size_limit: Option<u64>,
    /// `--log_json`: JSON log lines.
    pub log_json: Option<bool>,
    pub max_traced_msg_len: Option<i32>,
    /// `--cluster` / `--cluster_listen` URL, e.g. `nats://user:pass@0.0.0.0:6222`.
    pub cluster_listen: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_advertise: Option<String>,
    pub routes: Option<Vec<String>>,
    pub no_advertise: Option<bool>,
    pub connect_retries: Option<u32>,
    /// `--tls`, `--tlsverify`, `--tlscert`, `--tlskey`, `--tlscacert`.
    pub tls: Option<bool>,
    pub tls_verify: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca_cert: Option<PathBuf>,
    /// `--cluster_control host:port`: the gRPC control listener (Raft and admin).
    pub cluster_control: Option<String>,
}

impl Overrides {
    /// Applies the flags over `c` (nats-server MergeOptions: flags win over the file).
    pub fn apply(&self, c: &mut Config) -> Result<(), String> {
        fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *dst = v.clone();
            }
        }
        fn set_opt<T: Clone>(dst: &mut Option<T>, v: &Option<T>) {
            if v.is_some() {
                dst.clone_from(v);
            }
        }
        set(&mut c.host, &self.host);
        set(&mut c.port, &self.port);
        set_opt(&mut c.server_name, &self.server_name);
        set_opt(&mut c.http_port, &self.http_port);
        set_opt(&mut c.https_port, &self.https_port);
        set_opt(&mut c.client_advertise, &self.client_advertise);
        set_opt(&mut c.logging.ports_file_dir, &self.ports_file_dir);
        set_opt(&mut c.logging.log_file, &self.log_file);
        set_opt(&mut c.logging.pid_file, &self.pid_file);
        set(&mut c.logging.logtime, &self.logtime);
        set(&mut c.logging.debug, &self.debug);
        set(&mut c.logging.trace, &self.trace);
        set(&mut c.logging.log_size_limit, &self.log_size_limit);
        if let Some(json) = self.log_json {
            c.logging.log_format = if json {
                crate::config::LogFormat::Json
            } else {
                crate::config::LogFormat::Text
            };
        }
        set(&mut c.max_traced_msg_len, &self.max_traced_msg_len);
        set_opt(&mut c.authorization.user, &self.user);
        set_opt(&mut c.authorization.password, &self.pass);
        set_opt(&mut c.authorization.token, &self.token);
        set_opt(&mut c.store_dir, &self.store_dir);
        set(&mut c.jetstream, &self.jetstream);
        if let Some(url) = &self.cluster_listen {
            let l = parse_cluster_url(url)?;
            c.cluster.host = Some(l.host);
            c.cluster.port = Some(l.port);
            if l.user.is_some() {
                c.cluster.authorization.user = l.user;
                c.cluster.authorization.password = l.password;
            }
        }
        set_opt(&mut c.cluster.name, &self.cluster_name);
        set_opt(&mut c.cluster.advertise, &self.cluster_advertise);
        set(&mut c.cluster.routes, &self.routes);
        set(&mut c.cluster.no_advertise, &self.no_advertise);
        if self.connect_retries.is_some() {
            c.cluster.connect_retries = self.connect_retries;
        }
        self.apply_tls(c);
        set_opt(&mut c.cluster.control_listen, &self.cluster_control);
        Ok(())
    }

    /// nats-server: `--tlsverify` implies `--tls`; the file flags fill the tls block.
    fn apply_tls(&self, c: &mut Config) {
        let enable = self.tls == Some(true) || self.tls_verify == Some(true);
        let files = self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_ca_cert.is_some();
        if !(enable || (files && c.tls.is_some())) {
            return;
        }
        let t = c.tls.get_or_insert_with(Default::default);
        if let Some(v) = self.tls_verify {
            t.verify = v;
        }
        if self.tls_cert.is_some() {
            t.cert_file.clone_from(&self.tls_cert);
        }
        if self.tls_key.is_some() {
            t.key_file.clone_from(&self.tls_key);
        }
        if self.tls_ca_cert.is_some() {
            t.ca_file.clone_from(&self.tls_ca_cert);
        }
    }
}

/// A parsed `--cluster` URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterListen {
    pub host: String,
    pub port: i32,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// `nats://[user:pass@]host:port` (any scheme; `nats-route://` too).
pub fn parse_cluster_url(url: &str) -> Result<ClusterListen, String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host, port) = crate::conf::map::split_host_port(hostport)
        .map_err(|e| format!("invalid cluster URL \"{url}\": {e}"))?;
    let port =
        i32::try_from(port).map_err(|_| format!("invalid cluster URL \"{url}\": bad port"))?;
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
            None => (Some(u.to_string()), None),
        },
        None => (None, None),
    };
    Ok(ClusterListen {
        host: host.unwrap_or_else(|| crate::config::defaults::HOST.to_string()),
        port,
        user,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_args, Command};

    fn run_overrides(args: &[&str]) -> Overrides {
        match parse_args(args.iter().map(|s| s.to_string())) {
            Ok(Command::Run(r)) => r.overrides,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn overrides_apply_over_config() {
        let mut c = Config::default();
        let o = run_overrides(&[
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-DV",
            "--cluster",
            "nats://u:p@[::1]:6222",
            "--no_advertise",
            "--connect_retries",
            "2",
            "-T=false",
        ]);
        o.apply(&mut c).expect("applies");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", -1));
        assert!(c.logging.debug && c.logging.trace && !c.logging.logtime);
        assert_eq!(c.cluster.host.as_deref(), Some("::1"));
        assert_eq!(c.cluster.port, Some(6222));
        assert_eq!(c.cluster.authorization.user.as_deref(), Some("u"));
        assert_eq!(c.cluster.authorization.password.as_deref(), Some("p"));
        assert!(c.cluster.no_advertise);
        assert_eq!(c.cluster.connect_retries, Some(2));
        assert!(c.tls.is_none());
        let o = run_overrides(&[
            "--tlsverify",
            "--tlscert",
            "s.pem",
            "--tlskey",
            "k.pem",
            "--tlscacert",
            "ca.pem",
        ]);
        o.apply(&mut c).expect("applies");
        let t = c.tls.as_ref().expect("tls enabled");
        assert!(t.verify);
        assert_eq!(t.ca_file.as_deref(), Some(std::path::Path::new("ca.pem")));
        // Flags not given leave the config alone.
        let mut d = Config::default();
        Overrides::default().apply(&mut d).expect("applies");
        assert_eq!(d, Config::default());
    }

    #[test]
    fn cluster_url_forms() {
        let l = parse_cluster_url("nats://127.0.0.1:6222").expect("ok");
        assert_eq!((l.host.as_str(), l.port, l.user), ("127.0.0.1", 6222, None));
        let l = parse_cluster_url("nats-route://ruser:T0p@0.0.0.0:-1").expect("ok");
        assert_eq!(
            (l.port, l.user.as_deref(), l.password.as_deref()),
            (-1, Some("ruser"), Some("T0p"))
        );
        let l = parse_cluster_url("nats://:6222").expect("ok");
        assert_eq!(l.host, "0.0.0.0");
        assert!(parse_cluster_url("nats://host").is_err());
    }
}
