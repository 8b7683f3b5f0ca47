//! Exclusive distributed lock (ZooKeeper recipe "Locks"), Curator-compatible
//! node names, fencing tokens, and loss detection.

use std::time::Duration;

use zookeeper_client::{Client, Error as ZkError, EventType, SessionState};

use crate::contend::{self, Node};
use crate::Result;

/// Marker in lock node names, as Curator's `InterProcessMutex` uses.
const MARKER: &str = "lock-";

/// An exclusive lock under a directory, shared by every process that uses
/// the same directory.
///
/// Each contender creates an ephemeral-sequential node
/// `<dir>/_c_<uuid>-lock-<seq>`; the lowest sequence holds the lock and every
/// other contender watches only its immediate predecessor, so a release wakes
/// exactly one waiter. Because the node is ephemeral, a holder whose session
/// ends (crash, expiry) releases the lock automatically.
///
/// Mixed clients: the names are Curator's, so a Curator `InterProcessMutex`
/// on the same path shares the lock as is. kazoo's contenders
/// (`<uuid>__lock__<seq>`) count as ours; kazoo counts ours only when its
/// Lock is made with `extra_lock_patterns=["-lock-"]` (no name satisfies
/// both Curator's and kazoo's defaults). See tests/kazoo_interop.rs.
#[derive(Debug, Clone)]
pub struct Lock {
    client: Client,
    dir: String,
}

impl Lock {
    /// A lock rooted at `dir` (created on first use), contended through
    /// `client`'s session.
    pub fn new(client: Client, dir: impl Into<String>) -> Lock {
        Lock {
            client,
            dir: dir.into(),
        }
    }

    /// The lock directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Waits up to `timeout` for the lock.
    ///
    /// On timeout or error our contender node is removed so that it does not
    /// block later waiters. The returned guard releases on drop.
    pub async fn acquire(&self, timeout: Duration) -> Result<LockGuard> {
        let node = contend::acquire(
            &self.client,
            &self.dir,
            MARKER,
            timeout,
            |node| async move {
                let r = contend::wait_first(&self.client, &self.dir, MARKER, &node).await;
                (node, r)
            },
        )
        .await?;
        Ok(LockGuard::new(self.client.clone(), node))
    }
}

/// Why a held lock (or leadership) was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// The holder's session ended (expired, closed, or auth failed): the
    /// server has removed the ephemeral node, someone else may hold it now.
    SessionEnded(SessionState),
    /// The lock node was deleted by someone else.
    NodeDeleted,
}

/// Proof of holding a [`Lock`], an [`crate::RwLock`] read or write hold, or
/// a [`crate::Semaphore`] lease; releases it on drop.
///
/// Holding the guard is not enough for safety against a paused holder: pass
/// [`LockGuard::fencing_token`] to the protected resource, which should
/// reject tokens lower than the highest it has seen.
#[derive(Debug)]
pub struct LockGuard {
    client: Client,
    node: Node,
    released: bool,
}

impl LockGuard {
    /// A guard for `node`, held through `client`'s session.
    pub(crate) fn new(client: Client, node: Node) -> LockGuard {
        LockGuard {
            client,
            node,
            released: false,
        }
    }

    /// Fencing token of this grant: the czxid of our lock node. Later grants
    /// of the same lock always carry strictly larger tokens, because each is
    /// a node created by a later transaction.
    pub fn fencing_token(&self) -> i64 {
        self.node.czxid
    }

    /// Path of our lock node.
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// Whether the lock is known lost right now (session in a terminal
    /// state). Cheap and local; [`LockGuard::lost`] also notices deletion.
    pub fn is_lost(&self) -> bool {
        self.client.state().is_terminated()
    }

    /// Resolves when the lock is lost: the session ended or our node was
    /// deleted. Never resolves while the lock is held, so `select!` it
    /// against the critical section.
    ///
    /// A disconnection alone is not a loss: the session (and lock) survives
    /// if the client reconnects within the session timeout.
    pub async fn lost(&self) -> LostReason {
        watch_node_lost(&self.client, &self.node.path).await
    }

    /// Releases the lock now, reporting whether the delete succeeded.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        match self.client.delete(&self.node.path, None).await {
            Ok(()) | Err(ZkError::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            contend::delete_in_background(&self.client, &self.node.path);
        }
    }
}

/// Waits until `path` (our ephemeral node) is gone or the session ends.
pub(crate) async fn watch_node_lost(client: &Client, path: &str) -> LostReason {
    let mut states = client.state_watcher();
    loop {
        let state = client.state();
        if state.is_terminated() {
            return LostReason::SessionEnded(state);
        }
        match client.check_and_watch_stat(path).await {
            Ok((None, _)) => return LostReason::NodeDeleted,
            Ok((Some(_), watcher)) => {
                tokio::select! {
                    ev = watcher.changed() => {
                        if ev.event_type == EventType::NodeDeleted {
                            return LostReason::NodeDeleted;
                        }
                        if ev.session_state.is_terminated() {
                            return LostReason::SessionEnded(ev.session_state);
                        }
                    }
                    s = states.changed() => {
                        if s.is_terminated() {
                            return LostReason::SessionEnded(s);
                        }
                    }
                }
            }
            Err(ZkError::SessionExpired) => return LostReason::SessionEnded(SessionState::Expired),
            Err(ZkError::ClientClosed) => return LostReason::SessionEnded(SessionState::Closed),
            Err(ZkError::AuthFailed) => return LostReason::SessionEnded(SessionState::AuthFailed),
            Err(_) => {
                // Disconnected: wait for the next state change and retry.
                let s = states.changed().await;
                if s.is_terminated() {
                    return LostReason::SessionEnded(s);
                }
            }
        }
    }
}
