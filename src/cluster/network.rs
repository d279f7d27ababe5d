//! openraft's network over tonic: one lazily connected gRPC channel per peer, Raft
//! messages as JSON in `RaftPayload`s (see proto/raft.proto for why).
//!
//! Transport failures become `Unreachable` (openraft backs off and retries); an error
//! the remote Raft returned comes back as `RemoteError`, unchanged.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
pub use tonic::transport::Channel;
use tonic::transport::{ClientTlsConfig, Endpoint};

use super::proto::raft::raft_service_client::RaftServiceClient;
use super::proto::raft::RaftPayload;
use super::raft::{NodeId, TernNode, TypeConfig};

/// A channel to `addr` (`host:port`) that connects on first use and reconnects after a
/// loss, so a restarted peer is reached again without rebuilding the client.
/// With `tls` the channel speaks TLS (the host of `addr` must be in the peer's
/// certificate).
pub fn channel(addr: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| format!("bad control address \"{addr}\": {e}"))?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true);
    if let Some(t) = tls {
        ep = ep
            .tls_config(t.clone())
            .map_err(|e| format!("control TLS for \"{addr}\": {e}"))?;
    }
    Ok(ep.connect_lazy())
}

/// Wraps `msg` with a deadline and the bearer token, when the cluster has one.
pub fn request<T>(msg: T, token: Option<&str>, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    if let Some(t) = token {
        if let Ok(v) = format!("Bearer {t}").parse() {
            r.metadata_mut().insert("authorization", v);
        }
    }
    r
}

/// Builds a client per peer; openraft asks once per target and reuses it.
#[derive(Clone)]
pub struct Network {
    pub token: Option<String>,
    pub tls: Option<ClientTlsConfig>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &TernNode) -> PeerClient {
        PeerClient {
            target,
            node: node.clone(),
            client: channel(&node.control_addr, self.tls.as_ref()).map(RaftServiceClient::new),
            token: self.token.clone(),
        }
    }
}

pub struct PeerClient {
    target: NodeId,
    node: TernNode,
    client: Result<RaftServiceClient<Channel>, String>,
    token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

type RpcErr<E> = RPCError<NodeId, TernNode, RaftError<NodeId, E>>;

#[derive(Clone, Copy)]
enum Method {
    Vote,
    Append,
    Snapshot,
}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &mut self,
        method: Method,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &mut self.client {
            Ok(c) => c,
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&Msg(e.clone())))),
        };
        let data = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let msg = request(
            RaftPayload {
                data,
                error: Vec::new(),
            },
            self.token.as_deref(),
            option.hard_ttl(),
        );
        let reply = match method {
            Method::Vote => client.vote(msg).await,
            Method::Append => client.append_entries(msg).await,
            Method::Snapshot => client.install_snapshot(msg).await,
        };
        let reply = match reply {
            Ok(r) => r.into_inner(),
            Err(status) => {
                let e = Msg(format!("to {}: {status}", self.node));
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        };
        if !reply.error.is_empty() {
            let err: RaftError<NodeId, E> = serde_json::from_slice(&reply.error)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            return Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                err,
            )));
        }
        serde_json::from_slice(&reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(Method::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(Method::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(Method::Vote, &rpc, &option).await
    }
}
