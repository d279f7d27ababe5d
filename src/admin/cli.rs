//! `tern cluster status|members|remove|drain|transfer-leader|config get|set|history`:
//! a thin AdminService client. `--server host:port` (default 127.0.0.1:6250),
//! `--token T` (or `TERN_CONTROL_TOKEN`), `--json` for machine-readable output.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::cluster::network::{channel, request};
use crate::cluster::proto::admin::admin_service_client::AdminServiceClient;
use crate::cluster::proto::admin::*;
use crate::cluster::shared_config::SharedConfig;

/// A parsed `tern cluster ...` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterArgs {
    pub server: String,
    pub token: Option<String>,
    pub json: bool,
    pub cmd: ClusterCmd,
    /// TLS to a `control_tls` listener: `--tlscacert` turns it on; `--tlscert` and
    /// `--tlskey` present a client certificate (needed with `verify: true`).
    pub tls: ClientTls,
}

/// `--tlscacert`, `--tlscert`, `--tlskey`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClusterCmd {
    Status,
    Members,
    Remove(u64),
    /// Removes every member whose server name is not listed (Helm scale-in hook).
    RemoveAllExcept(Vec<String>),
    Drain(u64),
    TransferLeader(u64),
    ConfigGet,
    ConfigSet {
        file: PathBuf,
        dry_run: bool,
    },
    ConfigHistory,
}

pub const USAGE: &str = "usage: tern cluster [--server host:port] [--token T] [--json] \
[--tlscacert CA [--tlscert CERT --tlskey KEY]] \
status | members | remove NODE | remove --all-except NAME... | drain [NODE] | transfer-leader NODE | \
config get | config set FILE [--dry-run] | config history";

/// Parses the arguments after `cluster`.
pub fn parse(args: &[String]) -> Result<ClusterArgs, String> {
    let mut server = "127.0.0.1:6250".to_string();
    let mut token = std::env::var("TERN_CONTROL_TOKEN").ok();
    let (mut json, mut dry_run, mut all_except) = (false, false, false);
    let mut tls = ClientTls::default();
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let flag = a.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let value = |i: &mut usize| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            *i += 1;
            args.get(*i)
                .cloned()
                .ok_or_else(|| format!("flag --{name} needs a value"))
        };
        match (a.starts_with('-'), name) {
            (true, "server" | "s") => server = value(&mut i)?,
            (true, "token") => token = Some(value(&mut i)?),
            (true, "json") => json = true,
            (true, "tlscacert") => tls.ca = Some(value(&mut i)?.into()),
            (true, "tlscert") => tls.cert = Some(value(&mut i)?.into()),
            (true, "tlskey") => tls.key = Some(value(&mut i)?.into()),
            (true, "dry-run" | "dry_run") => dry_run = true,
            (true, "all-except" | "all_except") => all_except = true,
            (true, other) => return Err(format!("unknown flag --{other}; {USAGE}")),
            (false, _) => words.push(a.to_string()),
        }
        i += 1;
    }
    let node = |w: Option<&String>| -> Result<u64, String> {
        w.ok_or_else(|| format!("a node id is needed; {USAGE}"))?
            .parse()
            .map_err(|_| format!("node ids are numbers (see `tern cluster members`); {USAGE}"))
    };
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let cmd = match w.as_slice() {
        ["status"] => ClusterCmd::Status,
        ["members"] => ClusterCmd::Members,
        ["remove", keep @ ..] if all_except => {
            if keep.is_empty() {
                return Err(format!("--all-except needs the names to keep; {USAGE}"));
            }
            ClusterCmd::RemoveAllExcept(keep.iter().map(|s| s.to_string()).collect())
        }
        ["remove", _] => ClusterCmd::Remove(node(words.get(1))?),
        ["drain"] => ClusterCmd::Drain(0),
        ["drain", _] => ClusterCmd::Drain(node(words.get(1))?),
        ["transfer-leader", _] => ClusterCmd::TransferLeader(node(words.get(1))?),
        ["config", "get"] => ClusterCmd::ConfigGet,
        ["config", "set", f] => ClusterCmd::ConfigSet {
            file: PathBuf::from(f),
            dry_run,
        },
        ["config", "history"] => ClusterCmd::ConfigHistory,
        _ => return Err(USAGE.into()),
    };
    if tls.ca.is_none() && (tls.cert.is_some() || tls.key.is_some()) {
        return Err(format!("--tlscert/--tlskey need --tlscacert; {USAGE}"));
    }
    Ok(ClusterArgs {
        server,
        token,
        json,
        cmd,
        tls,
    })
}

/// Reads a cluster config file: `.toml` as TOML, anything else as JSON.
pub fn read_config_file(file: &std::path::Path) -> Result<SharedConfig, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let toml = file.extension().and_then(|e| e.to_str()) == Some("toml");
    let c = SharedConfig::parse(&text, toml).map_err(|e| format!("{}: {e}", file.display()))?;
    let errs = c.validate();
    if errs.is_empty() {
        Ok(c)
    } else {
        Err(format!("{}: {}", file.display(), errs.join("; ")))
    }
}

/// Runs the command; returns the process exit code. Output goes to stdout, errors to
/// stderr as one line.
pub async fn run(a: ClusterArgs) -> i32 {
    match execute(&a).await {
        Ok(out) => {
            println!("{out}");
            0
        }
        Err(e) => {
            eprintln!("tern cluster: {e}");
            1
        }
    }
}

async fn execute(a: &ClusterArgs) -> Result<String, String> {
    let tls = match &a.tls.ca {
        Some(ca) => Some(crate::cluster::control_tls::client_config(
            Some(ca),
            a.tls.cert.as_deref(),
            a.tls.key.as_deref(),
        )?),
        None => None,
    };
    let mut c = AdminServiceClient::new(channel(&a.server, tls.as_ref())?);
    let t = a.token.as_deref();
    let to = Duration::from_secs(15);
    let err = |s: tonic::Status| format!("{} ({:?})", s.message(), s.code());
    match &a.cmd {
        ClusterCmd::Status | ClusterCmd::Members => {
            let s = c
                .status(request(StatusRequest {}, t, to))
                .await
                .map_err(err)?
                .into_inner();
            Ok(render_status(&s, a.json, a.cmd == ClusterCmd::Members))
        }
        ClusterCmd::Remove(id) => {
            c.remove_node(request(RemoveNodeRequest { node_id: *id }, t, to))
                .await
                .map_err(err)?;
            Ok(if a.json {
                json!({"removed": id}).to_string()
            } else {
                format!("node {id} removed")
            })
        }
        ClusterCmd::RemoveAllExcept(keep) => {
            let s = c
                .status(request(StatusRequest {}, t, to))
                .await
                .map_err(err)?
                .into_inner();
            let gone = members_to_remove(&s.members, keep)?;
            for m in &gone {
                c.remove_node(request(RemoveNodeRequest { node_id: m.0 }, t, to))
                    .await
                    .map_err(|e| format!("removing node {} ({}): {}", m.0, m.1, err(e)))?;
            }
            Ok(if a.json {
                json!({"removed": gone.iter().map(|m| m.0).collect::<Vec<_>>()}).to_string()
            } else if gone.is_empty() {
                "no member to remove".to_string()
            } else {
                let names: Vec<String> =
                    gone.iter().map(|m| format!("{} ({})", m.0, m.1)).collect();
                format!("removed {}", names.join(", "))
            })
        }
        ClusterCmd::Drain(id) => {
            c.drain(request(DrainRequest { node_id: *id }, t, to))
                .await
                .map_err(err)?;
            Ok(format!("lame duck mode started on node {id}"))
        }
        ClusterCmd::TransferLeader(id) => {
            let r = c
                .transfer_leader(request(TransferLeaderRequest { to_node_id: *id }, t, to))
                .await
                .map_err(err)?
                .into_inner();
            Ok(format!(
                "election started on node {id} (leader now {})",
                r.leader_id
            ))
        }
        ClusterCmd::ConfigGet => {
            let r = c
                .get_config(request(GetConfigRequest {}, t, to))
                .await
                .map_err(err)?
                .into_inner();
            let v: serde_json::Value = serde_json::from_str(&r.json).unwrap_or(json!({}));
            Ok(if a.json {
                json!({"version": r.version, "config": v}).to_string()
            } else {
                format!(
                    "version {}\n{}",
                    r.version,
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                )
            })
        }
        ClusterCmd::ConfigSet { file, dry_run } => {
            let cfg = read_config_file(file)?;
            let r = c
                .set_config(request(
                    SetConfigRequest {
                        json: cfg.to_json(),
                        dry_run: *dry_run,
                    },
                    t,
                    to,
                ))
                .await
                .map_err(err)?
                .into_inner();
            if a.json {
                return Ok(
                    json!({"version": r.version, "committed": r.committed, "diff": r.diff})
                        .to_string(),
                );
            }
            let mut out = if r.diff.is_empty() {
                "no changes".to_string()
            } else {
                r.diff.join("\n")
            };
            out.push_str(&if r.committed {
                format!("\ncommitted as version {}", r.version)
            } else {
                format!(
                    "\ndry run: valid on the leader, nothing committed (version {})",
                    r.version
                )
            });
            Ok(out)
        }
        ClusterCmd::ConfigHistory => {
            let r = c
                .config_history(request(ConfigHistoryRequest {}, t, to))
                .await
                .map_err(err)?
                .into_inner();
            if a.json {
                let v: Vec<_> = r
                    .versions
                    .iter()
                    .map(|v| {
                        json!({"version": v.version, "log_index": v.log_index, "unix_ms": v.unix_ms,
                               "config": serde_json::from_str::<serde_json::Value>(&v.json).unwrap_or_default()})
                    })
                    .collect();
                return Ok(serde_json::Value::Array(v).to_string());
            }
            let lines: Vec<String> = r
                .versions
                .iter()
                .map(|v| {
                    format!(
                        "v{}  index {}  {}ms  {}",
                        v.version, v.log_index, v.unix_ms, v.json
                    )
                })
                .collect();
            Ok(if lines.is_empty() {
                "no cluster configuration was set".into()
            } else {
                lines.join("\n")
            })
        }
    }
}

fn render_status(s: &StatusReply, json: bool, members_only: bool) -> String {
    let members: Vec<serde_json::Value> = s
        .members
        .iter()
        .map(|m| {
            json!({"node_id": m.node_id, "name": m.name, "role": m.role,
                   "control_addr": m.control_addr, "route_url": m.route_url, "lag": m.lag})
        })
        .collect();
    if json {
        if members_only {
            return serde_json::Value::Array(members).to_string();
        }
        return json!({
            "node_id": s.node_id, "state": s.state, "leader_id": s.leader_id,
            "leader_addr": s.leader_addr, "term": s.term, "last_applied": s.last_applied,
            "config_version": s.config_version, "cluster_id": s.cluster_id,
            "cluster_name": s.cluster_name, "members": members, "removed": s.removed,
        })
        .to_string();
    }
    let mut out = String::new();
    if !members_only {
        out.push_str(&format!(
            "cluster {} ({})\nnode {} is {}; leader {} at {}; term {}; applied {}; config v{}\n",
            s.cluster_name,
            s.cluster_id,
            s.node_id,
            s.state,
            s.leader_id,
            s.leader_addr,
            s.term,
            s.last_applied,
            s.config_version
        ));
    }
    out.push_str(&format!(
        "{:<20} {:<12} {:<8} {:<22} {:<30} {}",
        "NODE", "NAME", "ROLE", "CONTROL", "ROUTE", "LAG"
    ));
    for m in &s.members {
        let lag = if m.lag < 0 {
            "-".to_string()
        } else {
            m.lag.to_string()
        };
        out.push_str(&format!(
            "\n{:<20} {:<12} {:<8} {:<22} {:<30} {}",
            m.node_id, m.name, m.role, m.control_addr, m.route_url, lag
        ));
    }
    if !s.removed.is_empty() {
        out.push_str(&format!("\nremoved: {:?}", s.removed));
    }
    out
}

/// The (id, name) of the members not named in `keep`. Refuses when no member is named
/// in `keep`: a wrong name prefix must not empty the cluster.
fn members_to_remove(members: &[Member], keep: &[String]) -> Result<Vec<(u64, String)>, String> {
    if !members.iter().any(|m| keep.contains(&m.name)) {
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        return Err(format!(
            "none of {keep:?} is a member (members: {names:?}); refusing to remove anything"
        ));
    }
    Ok(members
        .iter()
        .filter(|m| !keep.contains(&m.name))
        .map(|m| (m.node_id, m.name.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<ClusterArgs, String> {
        parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_commands_and_flags() {
        let a = p(&["status", "--server", "h:1", "--json"]).unwrap();
        assert_eq!(
            (a.server.as_str(), a.json, a.cmd),
            ("h:1", true, ClusterCmd::Status)
        );
        assert_eq!(p(&["remove", "42"]).unwrap().cmd, ClusterCmd::Remove(42));
        assert_eq!(
            p(&["config", "set", "c.json", "--dry-run", "--token=t"]).unwrap(),
            ClusterArgs {
                server: "127.0.0.1:6250".into(),
                token: Some("t".into()),
                json: false,
                cmd: ClusterCmd::ConfigSet {
                    file: "c.json".into(),
                    dry_run: true
                },
                tls: ClientTls::default(),
            }
        );
        assert!(p(&["remove", "abc"]).is_err());
        assert_eq!(
            p(&["remove", "--all-except", "t-0", "t-1"]).unwrap().cmd,
            ClusterCmd::RemoveAllExcept(vec!["t-0".into(), "t-1".into()])
        );
        assert!(p(&["remove", "--all-except"]).is_err());
        assert!(p(&["frob"]).is_err());
        assert!(p(&["status", "--bogus"]).is_err());
    }

    #[test]
    fn all_except_keeps_named_members_and_refuses_a_wrong_prefix() {
        let m = |id: u64, name: &str| Member {
            node_id: id,
            name: name.into(),
            ..Default::default()
        };
        let members = [m(1, "t-0"), m(2, "t-1"), m(3, "t-2"), m(4, "t-3")];
        let keep = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            members_to_remove(&members, &keep(&["t-0", "t-1", "t-2"])).unwrap(),
            vec![(4, "t-3".to_string())]
        );
        assert!(
            members_to_remove(&members, &keep(&["t-0", "t-1", "t-2", "t-3"]))
                .unwrap()
                .is_empty()
        );
        let e = members_to_remove(&members, &keep(&["east-t-0"])).unwrap_err();
        assert!(e.contains("refusing"), "{e}");
    }
}
