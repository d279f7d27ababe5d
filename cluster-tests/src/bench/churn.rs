//! `--config-churn RATE`: Raft stays off the message path.
//!
//! For each run a fresh 3-node tern cluster with the Raft control plane on is
//! started ([`Cluster::start_opts`]), and the cross-node scenario runs on it
//! twice: once quiet, once while a committer thread commits a cluster config
//! change (`SetConfig`, alternating `max_connections`) through node A's admin
//! API at RATE per second. Every commit is replicated to all three nodes and
//! applied to their configuration, so any coupling between Raft and the
//! message path shows up as a lower msgs/s in the churn column. The quiet and
//! churn halves alternate which goes first from run to run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tern::cluster::network::{channel, request};
use tern::cluster::proto::admin::admin_service_client::AdminServiceClient;
use tern::cluster::proto::admin::{SetConfigRequest, StatusRequest};

use super::cluster::Cluster;
use super::load::Exec;
use super::scenario::{run_on_cluster, RunParams, RunResult, Scenario};
use super::server::ServerSpec;

const RPC_TIMEOUT: Duration = Duration::from_secs(5);
const GROUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One run: the scenario quiet and under churn on the same cluster.
pub struct ChurnRun {
    pub quiet: RunResult,
    pub churn: RunResult,
    /// Commits per second achieved during the churn half.
    pub commit_rate: f64,
    pub commit_failures: u64,
}

/// Config `i` of the churn sequence (always a valid, effective change).
fn config_json(i: u64) -> String {
    format!("{{\"max_connections\": {}}}", 100_000 + i % 2)
}

async fn set_config(addr: &str, i: u64) -> Result<()> {
    let mut c = AdminServiceClient::new(channel(addr, None).map_err(|e| anyhow!(e))?);
    commit(&mut c, i).await
}

async fn commit(c: &mut AdminServiceClient<tern::cluster::network::Channel>, i: u64) -> Result<()> {
    let req = SetConfigRequest {
        json: config_json(i),
        dry_run: false,
    };
    c.set_config(request(req, None, RPC_TIMEOUT))
        .await
        .map_err(|s| anyhow!("{}", s.message()))?;
    Ok(())
}

/// Waits until node `addr` sees a 3-member group with a leader and accepts a commit.
async fn wait_group(addr: &str) -> Result<()> {
    let end = Instant::now() + GROUP_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < end {
        let status = async {
            let mut c = AdminServiceClient::new(channel(addr, None).map_err(|e| anyhow!(e))?);
            let s = c
                .status(request(StatusRequest {}, None, RPC_TIMEOUT))
                .await
                .map_err(|s| anyhow!("{}", s.message()))?
                .into_inner();
            anyhow::Ok(s)
        }
        .await;
        match status {
            Ok(s) if s.members.len() == 3 && s.leader_id != 0 => match set_config(addr, 0).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            },
            Ok(s) => last = format!("{} members, leader {}", s.members.len(), s.leader_id),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the Raft group did not form within {GROUP_TIMEOUT:?}: {last}")
}

/// Commits config changes at `rate`/s to `addr` on its own thread until stopped.
struct Committer {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<Duration>,
}

impl Committer {
    fn start(addr: String, rate: f64) -> Result<Committer> {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                // One HTTP/2 connection for all commits, as an operator tool would.
                let Ok(ch) = channel(&addr, None) else {
                    return Duration::ZERO;
                };
                let mut client = AdminServiceClient::new(ch);
                let t0 = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                // A slow commit must not be followed by a burst to catch up.
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut i = 1u64;
                while !s.load(Ordering::Relaxed) {
                    tick.tick().await;
                    match commit(&mut client, i).await {
                        Ok(()) => o.fetch_add(1, Ordering::Relaxed),
                        Err(_) => f.fetch_add(1, Ordering::Relaxed),
                    };
                    i += 1;
                }
                t0.elapsed()
            })
        });
        Ok(Committer {
            stop,
            ok,
            failed,
            thread,
        })
    }

    /// Stops and returns (commits per second, failures).
    fn finish(self) -> (f64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.thread.join().unwrap_or_default();
        let ok = self.ok.load(Ordering::Relaxed) as f64;
        (
            ok / elapsed.as_secs_f64().max(1e-9),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// One run of `sc` quiet and under `rate` commits/s (`churn_first` flips the order).
pub fn run_churn(
    spec: &ServerSpec,
    sc: Scenario,
    p: &RunParams,
    exec: &Exec,
    rate: f64,
    churn_first: bool,
) -> Result<ChurnRun> {
    if rate <= 0.0 {
        bail!("--config-churn needs a positive rate");
    }
    let store: PathBuf = std::env::temp_dir().join(format!(
        "tern-bench-raft-{}-{}",
        std::process::id(),
        unix_nanos()
    ));
    let res = (|| {
        let c = Cluster::start_opts(spec, exec, Some(&store))?;
        let addr = c.control[0].clone();
        exec.block_on(wait_group(&addr))
            .with_context(|| format!("node logs:\n{}", c.log_tails()))?;
        let mut quiet = None;
        let mut churn = None;
        for half in 0..2 {
            if (half == 0) == churn_first {
                let committer = Committer::start(addr.clone(), rate)?;
                let r = run_on_cluster(&c, sc, p, exec);
                let (commit_rate, failures) = committer.finish();
                churn = Some((r?, commit_rate, failures));
            } else {
                quiet = Some(run_on_cluster(&c, sc, p, exec)?);
            }
        }
        let (churn, commit_rate, commit_failures) = churn.expect("churn half ran");
        Ok(ChurnRun {
            quiet: quiet.expect("quiet half ran"),
            churn,
            commit_rate,
            commit_failures,
        })
    })();
    let _ = std::fs::remove_dir_all(&store);
    res
}

/// Distinct store dirs per run.
fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
