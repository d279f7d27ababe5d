//! The RaftService gRPC server: hands openraft's RPCs to the local Raft, and answers
//! the Hello/Join handshake of formation. Also the bearer-token check shared with the
//! admin service.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use subtle::ConstantTimeEq;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::proto::raft::raft_service_server::{RaftService, RaftServiceServer};
use super::proto::raft::{HelloReply, HelloRequest, JoinReply, JoinRequest, RaftPayload};
use super::raft::TernNode;
use super::{ClusterError, ClusterNode};

/// Checks `authorization: Bearer <token>` when a control token is configured.
#[derive(Clone)]
pub struct TokenCheck {
    pub token: Option<Arc<str>>,
}

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(want) = &self.token else {
            return Ok(req);
        };
        let got = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(got.as_bytes().ct_eq(want.as_bytes())) {
            Ok(req)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong control token (cluster { control_token })",
            ))
        }
    }
}

pub struct RaftGrpc {
    node: Arc<ClusterNode>,
}

/// The RaftService for `node`, behind the token check.
pub fn raft_service(
    node: Arc<ClusterNode>,
) -> InterceptedService<RaftServiceServer<RaftGrpc>, TokenCheck> {
    let check = TokenCheck {
        token: node.opts.token.as_deref().map(Arc::from),
    };
    RaftServiceServer::with_interceptor(RaftGrpc { node }, check)
}

fn decode<T: DeserializeOwned>(p: &RaftPayload) -> Result<T, Status> {
    serde_json::from_slice(&p.data).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn encode<T: Serialize, E: Serialize>(r: Result<T, E>) -> Result<Response<RaftPayload>, Status> {
    let p = match r {
        Ok(v) => RaftPayload {
            data: serde_json::to_vec(&v).map_err(|e| Status::internal(e.to_string()))?,
            error: Vec::new(),
        },
        Err(e) => RaftPayload {
            data: Vec::new(),
            error: serde_json::to_vec(&e).map_err(|e| Status::internal(e.to_string()))?,
        },
    };
    Ok(Response::new(p))
}

/// Maps a control-plane error to the gRPC status operators and peers see.
pub fn status(e: ClusterError) -> Status {
    match e {
        ClusterError::NotLeader { .. } | ClusterError::NoQuorum(_) => {
            Status::unavailable(e.to_string())
        }
        ClusterError::Invalid(_) => Status::failed_precondition(e.to_string()),
        ClusterError::Failed(_) => Status::internal(e.to_string()),
    }
}

#[tonic::async_trait]
impl RaftService for RaftGrpc {
    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(self.node.raft.vote(rpc).await)
    }

    async fn append_entries(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(self.node.raft.append_entries(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(self.node.raft.install_snapshot(rpc).await)
    }

    async fn hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let n = &self.node;
        let asking = req.get_ref().node_id;
        let removed = asking != 0 && n.sm.data.lock().removed.contains(&asking);
        let (leader_id, leader_addr) = n.leader().unwrap_or_default();
        Ok(Response::new(HelloReply {
            node_id: n.id,
            control_addr: n.opts.control_addr.clone(),
            initialized: n.is_member(),
            leader_id,
            leader_addr,
            cluster_id: n.cluster_id(),
            cluster_name: n.opts.cluster_name.clone().unwrap_or_default(),
            route_url: n.opts.route_url.clone(),
            name: n.opts.name.clone(),
            removed,
        }))
    }

    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<JoinReply>, Status> {
        let r = req.into_inner();
        let n = &self.node;
        let ours = n.opts.cluster_name.as_deref().unwrap_or("");
        if !ours.is_empty() && !r.cluster_name.is_empty() && r.cluster_name != ours {
            return Err(Status::failed_precondition(format!(
                "cluster name \"{}\" does not match \"{ours}\"",
                r.cluster_name
            )));
        }
        let ours = n.cluster_id();
        if !r.cluster_id.is_empty() && !ours.is_empty() && r.cluster_id != ours {
            return Err(Status::failed_precondition(format!(
                "node {} belongs to Raft group {}, not to this group {ours}: \
                 point its store_dir at an empty directory to join this cluster",
                r.node_id, r.cluster_id
            )));
        }
        let node = TernNode {
            control_addr: r.control_addr,
            route_url: r.route_url,
            name: r.name,
        };
        match n.add_node(r.node_id, node).await {
            Ok(()) => Ok(Response::new(JoinReply {
                leader_addr: String::new(),
                cluster_id: n.cluster_id(),
            })),
            Err(ClusterError::NotLeader { leader_addr, .. }) => Ok(Response::new(JoinReply {
                leader_addr,
                cluster_id: n.cluster_id(),
            })),
            Err(e) => Err(status(e)),
        }
    }
}
