//! The operators' gRPC AdminService (`tern cluster ...`): status, add/remove node,
//! leadership transfer, cluster-wide configuration (get, set with dry-run and diff,
//! history) and drain. Writes that reach a follower are forwarded to the leader once
//! (marked, so they never bounce); when the leader cannot be reached the caller gets
//! `Unavailable` naming it. The bearer token is checked before any handler runs.
//!
//! Edge module: uses the control plane (cluster) and, for drain, the server's lame duck.

pub mod cli;

use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::cluster::network::{channel, request};
use crate::cluster::proto::admin::admin_service_client::AdminServiceClient;
use crate::cluster::proto::admin::admin_service_server::{AdminService, AdminServiceServer};
use crate::cluster::proto::admin::*;
use crate::cluster::raft::{Request as RaftRequest, TernNode};
use crate::cluster::service::{status, TokenCheck};
use crate::cluster::shared_config::SharedConfig;
use crate::cluster::{ClusterError, ClusterNode};
use crate::server::ServerShared;

/// Metadata key marking a request already forwarded once.
const FORWARDED: &str = "x-tern-forwarded";
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Admin {
    node: Arc<ClusterNode>,
    shared: Arc<ServerShared>,
}

/// The AdminService for `node`, behind the token check.
pub fn admin_service(
    node: Arc<ClusterNode>,
    shared: Arc<ServerShared>,
) -> InterceptedService<AdminServiceServer<Admin>, TokenCheck> {
    let check = TokenCheck {
        token: node.opts.token.as_deref().map(Arc::from),
    };
    AdminServiceServer::with_interceptor(Admin { node, shared }, check)
}

fn forwarded<T>(r: &Request<T>) -> bool {
    r.metadata().contains_key(FORWARDED)
}

impl Admin {
    /// A client to `addr` carrying our token, for a request forwarded once.
    fn peer(&self, addr: &str) -> Result<AdminServiceClient<Channel>, Status> {
        channel(addr, self.node.opts.tls.as_ref())
            .map(AdminServiceClient::new)
            .map_err(Status::unavailable)
    }

    fn fwd<T>(&self, msg: T) -> Request<T> {
        let mut r = request(msg, self.node.opts.token.as_deref(), FORWARD_TIMEOUT);
        r.metadata_mut()
            .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
        r
    }

    /// The leader's address when this node is not the leader and may forward.
    fn leader_to_forward<T>(&self, req: &Request<T>) -> Result<Option<String>, Status> {
        match self.node.leader() {
            Some((id, _)) if id == self.node.id => Ok(None),
            Some((id, addr)) if !forwarded(req) && !addr.is_empty() => {
                Ok(Some(addr)).inspect(|_| tracing::debug!("admin: forwarding to leader {id}"))
            }
            Some((id, addr)) => Err(status(ClusterError::NotLeader {
                leader_id: id,
                leader_addr: addr,
            })),
            None => Err(status(ClusterError::NoQuorum(
                "no leader is elected; a majority of the voters must be up".into(),
            ))),
        }
    }

    fn unreachable(addr: &str, e: Status) -> Status {
        let said_why = e.message().contains(addr) || e.message().starts_with("no quorum");
        if e.code() == tonic::Code::Unavailable && !said_why {
            // The last leader this node heard of is gone and no new one could be
            // elected from here: for the operator that is the no-quorum case.
            Status::unavailable(format!(
                "no quorum: leader at {addr} unreachable: {}",
                e.message()
            ))
        } else {
            e
        }
    }

    fn current_config(&self) -> (SharedConfig, u64) {
        let d = self.node.sm.data.lock();
        (d.config.clone(), d.config_version)
    }
}

impl Admin {
    /// An OpenTelemetry span for an admin write carried out on this node (no-op when
    /// telemetry is off): which node it targeted and how it ended.
    fn span<T>(
        &self,
        name: &'static str,
        start: std::time::SystemTime,
        target: u64,
        r: &Result<T, Status>,
    ) {
        use opentelemetry::KeyValue;
        let mut attrs = vec![KeyValue::new(
            "tern.raft.target_node_id",
            i64::try_from(target).unwrap_or(i64::MAX),
        )];
        if let Err(e) = r {
            attrs.push(KeyValue::new("tern.admin.error", e.message().to_string()));
        }
        crate::telemetry::admin(&self.shared, name, start, attrs);
    }
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn status(&self, _req: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let n = &self.node;
        let m = n.metrics();
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let last = m.last_log_index.unwrap_or(0);
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let role = if m.current_leader == Some(*id) {
                    "leader"
                } else if voters.contains(id) {
                    "voter"
                } else {
                    "learner"
                };
                let lag = match &m.replication {
                    Some(r) if *id == n.id => 0,
                    Some(r) => r
                        .get(id)
                        .cloned()
                        .flatten()
                        .map_or(last as i64, |l| last.saturating_sub(l.index) as i64),
                    None => -1,
                };
                Member {
                    node_id: *id,
                    name: node.name.clone(),
                    role: role.into(),
                    control_addr: node.control_addr.clone(),
                    route_url: node.route_url.clone(),
                    lag,
                }
            })
            .collect();
        let (leader_id, leader_addr) = n.leader().unwrap_or_default();
        let d = n.sm.data.lock().clone();
        Ok(Response::new(StatusReply {
            node_id: n.id,
            leader_id,
            leader_addr,
            term: m.current_term,
            last_applied: m.last_applied.map_or(0, |l| l.index),
            config_version: d.config_version,
            members,
            removed: d.removed.into_iter().collect(),
            cluster_id: d.cluster_id,
            cluster_name: n.opts.cluster_name.clone().unwrap_or_default(),
            state: format!("{:?}", m.state),
        }))
    }

    async fn add_node(
        &self,
        req: Request<AddNodeRequest>,
    ) -> Result<Response<AddNodeReply>, Status> {
        if let Some(addr) = self.leader_to_forward(&req)? {
            let mut c = self.peer(&addr)?;
            return c
                .add_node(self.fwd(req.into_inner()))
                .await
                .map_err(|e| Self::unreachable(&addr, e));
        }
        let r = req.into_inner();
        let node = TernNode {
            control_addr: r.control_addr,
            route_url: r.route_url,
            name: r.name,
        };
        let t0 = std::time::SystemTime::now();
        let id = r.node_id;
        let res = self.node.add_node(id, node).await.map_err(status);
        self.span("tern.admin.add_node", t0, id, &res);
        res?;
        Ok(Response::new(AddNodeReply {}))
    }

    async fn remove_node(
        &self,
        req: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeReply>, Status> {
        if let Some(addr) = self.leader_to_forward(&req)? {
            let mut c = self.peer(&addr)?;
            return c
                .remove_node(self.fwd(req.into_inner()))
                .await
                .map_err(|e| Self::unreachable(&addr, e));
        }
        let id = req.into_inner().node_id;
        let t0 = std::time::SystemTime::now();
        let res = self.node.remove_node(id).await.map_err(status);
        self.span("tern.admin.remove_node", t0, id, &res);
        res?;
        Ok(Response::new(RemoveNodeReply {}))
    }

    async fn transfer_leader(
        &self,
        req: Request<TransferLeaderRequest>,
    ) -> Result<Response<TransferLeaderReply>, Status> {
        let to = req.get_ref().to_node_id;
        if to == self.node.id {
            // openraft 0.9 has no transfer call: the target starts an election; its log
            // is as long as the leader's once caught up, so it wins and the old leader
            // steps down on seeing the higher term.
            self.node
                .raft
                .trigger()
                .elect()
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        } else {
            let m = self.node.metrics();
            let addr = m
                .membership_config
                .membership()
                .get_node(&to)
                .map(|n| n.control_addr.clone())
                .ok_or_else(|| Status::not_found(format!("node {to} is not a member")))?;
            if forwarded(&req) {
                return Err(Status::failed_precondition("forwarded to the wrong node"));
            }
            let mut c = self.peer(&addr)?;
            c.transfer_leader(self.fwd(req.into_inner())).await?;
        }
        let leader_id = self.node.leader().map_or(0, |l| l.0);
        Ok(Response::new(TransferLeaderReply { leader_id }))
    }

    async fn get_config(
        &self,
        _req: Request<GetConfigRequest>,
    ) -> Result<Response<ConfigReply>, Status> {
        let (c, version) = self.current_config();
        Ok(Response::new(ConfigReply {
            version,
            json: c.to_json(),
        }))
    }

    async fn set_config(
        &self,
        req: Request<SetConfigRequest>,
    ) -> Result<Response<SetConfigReply>, Status> {
        // Parse and validate here first, so an invalid file is refused on any node.
        let new = SharedConfig::parse(&req.get_ref().json, false)
            .map_err(|e| Status::invalid_argument(format!("invalid cluster config: {e}")))?;
        let errs = new.validate();
        if !errs.is_empty() {
            return Err(Status::invalid_argument(format!(
                "invalid cluster config: {}",
                errs.join("; ")
            )));
        }
        if let Some(addr) = self.leader_to_forward(&req)? {
            let mut c = self.peer(&addr)?;
            return c
                .set_config(self.fwd(req.into_inner()))
                .await
                .map_err(|e| Self::unreachable(&addr, e));
        }
        let (old, version) = self.current_config();
        let diff = old.diff(&new);
        if req.get_ref().dry_run {
            return Ok(Response::new(SetConfigReply {
                version,
                diff,
                committed: false,
            }));
        }
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let t0 = std::time::SystemTime::now();
        let res = self
            .node
            .write(RaftRequest::SetConfig {
                config: Box::new(new),
                unix_ms,
            })
            .await
            .map_err(status);
        self.span("tern.admin.set_config", t0, self.node.id, &res);
        let r = res?;
        Ok(Response::new(SetConfigReply {
            version: r.config_version,
            diff,
            committed: true,
        }))
    }

    async fn config_history(
        &self,
        _req: Request<ConfigHistoryRequest>,
    ) -> Result<Response<ConfigHistoryReply>, Status> {
        let d = self.node.sm.data.lock();
        let versions = d
            .history
            .iter()
            .map(|v| ConfigVersion {
                version: v.version,
                log_index: v.log_index,
                unix_ms: v.unix_ms,
                json: v.config.to_json(),
            })
            .collect();
        Ok(Response::new(ConfigHistoryReply { versions }))
    }

    async fn drain(&self, req: Request<DrainRequest>) -> Result<Response<DrainReply>, Status> {
        let id = req.get_ref().node_id;
        if id == 0 || id == self.node.id {
            tracing::info!("admin: drain requested, entering lame duck mode");
            let ok: Result<(), Status> = Ok(());
            self.span(
                "tern.admin.drain",
                std::time::SystemTime::now(),
                self.node.id,
                &ok,
            );
            let s = self.shared.clone();
            tokio::spawn(async move { s.enter_lame_duck().await });
            return Ok(Response::new(DrainReply {}));
        }
        if forwarded(&req) {
            return Err(Status::failed_precondition("forwarded to the wrong node"));
        }
        let m = self.node.metrics();
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.control_addr.clone())
            .ok_or_else(|| Status::not_found(format!("node {id} is not a member")))?;
        let mut c = self.peer(&addr)?;
        c.drain(self.fwd(req.into_inner())).await
    }
}
