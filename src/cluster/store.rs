//! Durable Raft storage under `<store_dir>/raft/`: node identity, vote, committed
//! index, the log (one file per entry) and the state machine (membership, cluster-scoped
//! configuration and its history), plus the latest snapshot.
//!
//! Every write is fsynced (file, then directory) before it is acknowledged to openraft:
//! a vote or an entry that Raft counted must survive a power loss. The volume is tiny
//! (membership and config changes, a blank entry per term), so plain files beat a
//! database here and can be read by an operator.
//!
//! Blocking file I/O inside these async fns is deliberate: each call touches a few
//! small files on the control plane, never on the message path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::fs;
use std::io::{Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    Entry, EntryPayload, LogState, RaftLogReader, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, Vote,
};
use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::sync::Notify;

use super::raft::{LogId, NodeId, Request, Response, StorageError, StoredMembership, TypeConfig};
use super::shared_config::SharedConfig;

/// How many past configurations `tern cluster config history` keeps.
const HISTORY_LEN: usize = 32;

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn to_json<T: Serialize>(v: &T) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(std::io::Error::other)
}

/// This node's identity, created on first start and kept forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: NodeId,
    /// The cluster name the store was created for; another name refuses to start.
    pub cluster_name: Option<String>,
    /// The Raft group's id, once this node has applied it.
    pub cluster_id: Option<String>,
}

/// Loads or creates `<dir>/identity.json`; refuses a store made for another cluster.
pub fn load_identity(dir: &Path, cluster_name: Option<&str>) -> Result<Identity, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("identity.json");
    let existing: Option<Identity> =
        read_json(&path).map_err(|e| format!("cannot read node identity: {e}"))?;
    if let Some(id) = existing {
        if let (Some(have), Some(want)) = (&id.cluster_name, cluster_name) {
            if have != want {
                return Err(format!(
                    "store_dir {} belongs to cluster \"{have}\" (node {}), not \"{want}\": \
                     point store_dir at this cluster's data or an empty directory",
                    dir.display(),
                    id.node_id
                ));
            }
        }
        return Ok(id);
    }
    // Non-zero so "0 = unknown" works on the wire; random so two fresh nodes differ.
    let node_id = loop {
        let n = rand::random::<u64>() >> 1;
        if n != 0 {
            break n;
        }
    };
    let id = Identity {
        node_id,
        cluster_name: cluster_name.map(String::from),
        cluster_id: None,
    };
    save_identity(dir, &id)?;
    Ok(id)
}

pub fn save_identity(dir: &Path, id: &Identity) -> Result<(), String> {
    to_json(id)
        .and_then(|b| write_durable(&dir.join("identity.json"), &b))
        .map_err(|e| format!("cannot write node identity: {e}"))
}

// ---------------------------------------------------------------- log

struct LogInner {
    dir: PathBuf,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

/// The Raft log, vote and committed index. Clones share one log (openraft's reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl LogStore {
    pub fn open(raft_dir: &Path) -> std::io::Result<LogStore> {
        let dir = raft_dir.join("log");
        fs::create_dir_all(&dir)?;
        let mut entries = BTreeMap::new();
        for f in fs::read_dir(&dir)? {
            let path = f?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            if let Some(e) = read_json::<Entry<TypeConfig>>(&path)? {
                entries.insert(e.log_id.index, e);
            }
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogInner {
                entries,
                vote: read_json(&raft_dir.join("vote.json"))?,
                committed: read_json(&raft_dir.join("committed.json"))?,
                purged: read_json(&raft_dir.join("purged.json"))?,
                dir,
            })),
        })
    }

    /// Whether this node has ever taken part in a Raft group.
    pub fn has_state(&self) -> bool {
        let i = self.inner.lock();
        i.vote.is_some() || !i.entries.is_empty() || i.purged.is_some()
    }

    pub fn committed(&self) -> Option<LogId> {
        self.inner.lock().committed
    }
}

fn entry_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.json"))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let i = self.inner.lock();
        Ok(i.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let i = self.inner.lock();
        let last = i
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(i.purged);
        Ok(LogState {
            last_purged_log_id: i.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut i = self.inner.lock();
        let path = i.dir.with_file_name("vote.json");
        to_json(vote)
            .and_then(|b| write_durable(&path, &b))
            .map_err(|e| StorageIOError::write_vote(&e))?;
        i.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.inner.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut i = self.inner.lock();
        let path = i.dir.with_file_name("committed.json");
        to_json(&committed)
            .and_then(|b| write_durable(&path, &b))
            .map_err(|e| StorageIOError::write(&e))?;
        i.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.inner.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut i = self.inner.lock();
        let mut result = Ok(());
        for e in entries {
            let path = entry_path(&i.dir, e.log_id.index);
            let written = to_json(&e).and_then(|b| {
                let mut f = fs::File::create(&path)?;
                f.write_all(&b)?;
                f.sync_all()
            });
            if let Err(err) = written {
                result = Err(err);
                break;
            }
            i.entries.insert(e.log_id.index, e);
        }
        let result = result.and_then(|()| sync_dir(&i.dir));
        drop(i);
        let failed = result.as_ref().err().map(io_err);
        callback.log_io_completed(result);
        match failed {
            Some(e) => Err(StorageIOError::write_logs(&e).into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut i = self.inner.lock();
        let gone: Vec<u64> = i.entries.range(log_id.index..).map(|(k, _)| *k).collect();
        for k in gone {
            let _ = fs::remove_file(entry_path(&i.dir, k));
            i.entries.remove(&k);
        }
        sync_dir(&i.dir).map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut i = self.inner.lock();
        // Record the purge point first: a crash midway leaves extra files, not a hole.
        let path = i.dir.with_file_name("purged.json");
        to_json(&Some(log_id))
            .and_then(|b| write_durable(&path, &b))
            .map_err(|e| StorageIOError::write_logs(&e))?;
        i.purged = Some(log_id);
        let gone: Vec<u64> = i.entries.range(..=log_id.index).map(|(k, _)| *k).collect();
        for k in gone {
            let _ = fs::remove_file(entry_path(&i.dir, k));
            i.entries.remove(&k);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- state machine

/// One committed configuration, for `config history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    pub version: u64,
    pub log_index: u64,
    pub unix_ms: u64,
    pub config: SharedConfig,
}

/// The applied state: what every node agrees on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmData {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub cluster_id: String,
    pub cluster_name: String,
    pub config: SharedConfig,
    pub config_version: u64,
    pub history: Vec<ConfigVersion>,
    pub removed: BTreeSet<NodeId>,
}

impl SmData {
    fn apply_request(&mut self, index: u64, req: &Request) -> Response {
        match req {
            Request::Init {
                cluster_id,
                cluster_name,
            } => {
                // First writer wins: a second Init (two leaders racing) changes nothing.
                if self.cluster_id.is_empty() {
                    self.cluster_id = cluster_id.clone();
                    self.cluster_name = cluster_name.clone();
                }
            }
            Request::SetConfig { config, unix_ms } => {
                let errs = config.validate();
                if !errs.is_empty() {
                    return Response {
                        config_version: self.config_version,
                        error: Some(errs.join("; ")),
                    };
                }
                self.config = (**config).clone();
                self.config_version += 1;
                self.history.push(ConfigVersion {
                    version: self.config_version,
                    log_index: index,
                    unix_ms: *unix_ms,
                    config: (**config).clone(),
                });
                if self.history.len() > HISTORY_LEN {
                    self.history.remove(0);
                }
            }
            Request::RemoveNode { node_id } => {
                self.removed.insert(*node_id);
            }
        }
        Response {
            config_version: self.config_version,
            error: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, super::raft::TernNode>,
    data: Vec<u8>,
}

/// The state machine; persisted after every applied batch (`sm.json`), so a restart
/// does not depend on replaying the log.
#[derive(Clone)]
pub struct StateMachineStore {
    dir: PathBuf,
    pub data: Arc<Mutex<SmData>>,
    /// Woken after every apply, so the membership view is republished.
    pub changed: Arc<Notify>,
}

impl StateMachineStore {
    pub fn open(raft_dir: &Path) -> std::io::Result<StateMachineStore> {
        let data = read_json::<SmData>(&raft_dir.join("sm.json"))?.unwrap_or_default();
        Ok(StateMachineStore {
            dir: raft_dir.to_path_buf(),
            data: Arc::new(Mutex::new(data)),
            changed: Arc::new(Notify::new()),
        })
    }

    fn persist(&self, d: &SmData) -> std::io::Result<()> {
        write_durable(&self.dir.join("sm.json"), &to_json(d)?)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let d = self.data.lock().clone();
        let data = to_json(&d).map_err(|e| StorageIOError::read_state_machine(&e))?;
        let snapshot_id = match d.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, rand::random::<u32>()),
            None => format!("0-0-{}", rand::random::<u32>()),
        };
        let meta = SnapshotMeta {
            last_log_id: d.last_applied,
            last_membership: d.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        to_json(&stored)
            .and_then(|b| write_durable(&self.dir.join("snapshot.json"), &b))
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let d = self.data.lock();
        Ok((d.last_applied, d.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let snapshot = {
            let mut d = self.data.lock();
            for e in entries {
                d.last_applied = Some(e.log_id);
                let r = match &e.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Normal(req) => d.apply_request(e.log_id.index, req),
                    EntryPayload::Membership(m) => {
                        d.last_membership = StoredMembership::new(Some(e.log_id), m.clone());
                        Response::default()
                    }
                };
                out.push(r);
            }
            d.clone()
        };
        self.persist(&snapshot)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.changed.notify_one();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, super::raft::TernNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let mut new: SmData = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        new.last_applied = meta.last_log_id;
        new.last_membership = meta.last_membership.clone();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        };
        to_json(&stored)
            .and_then(|b| write_durable(&self.dir.join("snapshot.json"), &b))
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.persist(&new)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        *self.data.lock() = new;
        self.changed.notify_one();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored: Option<StoredSnapshot> = read_json(&self.dir.join("snapshot.json"))
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_kept_and_guards_the_cluster_name() {
        let dir = std::env::temp_dir().join(format!("tern-id-{}", rand::random::<u64>()));
        let a = load_identity(&dir, Some("east")).unwrap();
        let b = load_identity(&dir, Some("east")).unwrap();
        assert_eq!(a.node_id, b.node_id);
        let e = load_identity(&dir, Some("west")).unwrap_err();
        assert!(e.contains("belongs to cluster \"east\""), "{e}");
        let _ = fs::remove_dir_all(dir);
    }
}
