//! Counting semaphore: at most N lease holders at once.

use std::time::Duration;

use zookeeper_client::{Client, Error as ZkError};

use crate::contend::{self, sequence_of, Node};
use crate::{Error, LockGuard, Result};

/// Marker in lease node names (Curator's `InterProcessSemaphoreV2` uses
/// `lease-` as well, though under a different layout).
const MARKER: &str = "lease-";

/// A distributed counting semaphore: at most `max_leases` holders at once,
/// shared by every process that uses the same directory and limit.
///
/// Each contender creates an ephemeral-sequential node
/// `<dir>/_c_<uuid>-lease-<seq>`; the `max_leases` lowest sequence numbers
/// hold leases. A node's rank only ever decreases (later nodes sort after
/// it), so once granted a lease stays granted, and at any moment at most
/// `max_leases` nodes rank below the limit. Waiters watch the directory's
/// children, since any earlier holder's release may admit them. A holder
/// whose session ends gives up its lease automatically.
///
/// All users of one directory must agree on `max_leases`.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    dir: String,
    max_leases: usize,
}

impl Semaphore {
    /// A semaphore of `max_leases` (at least 1) rooted at `dir` (created on
    /// first use), contended through `client`'s session.
    pub fn new(client: Client, dir: impl Into<String>, max_leases: usize) -> Semaphore {
        Semaphore {
            client,
            dir: dir.into(),
            max_leases: max_leases.max(1),
        }
    }

    /// The semaphore directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The number of leases.
    pub fn max_leases(&self) -> usize {
        self.max_leases
    }

    /// Waits up to `timeout` for a lease. The returned guard gives the lease
    /// back on drop (or [`LockGuard::release`]).
    pub async fn acquire(&self, timeout: Duration) -> Result<LockGuard> {
        let node = contend::acquire(
            &self.client,
            &self.dir,
            MARKER,
            timeout,
            |node| async move {
                let r = self.wait(&node).await;
                (node, r)
            },
        )
        .await?;
        Ok(LockGuard::new(self.client.clone(), node))
    }

    /// Waits until `node` ranks among the first `max_leases`.
    async fn wait(&self, node: &Node) -> Result<()> {
        loop {
            let client = &self.client;
            let (mut children, watcher) =
                contend::retry(client, || client.list_and_watch_children(&self.dir)).await?;
            children.retain(|c| sequence_of(c).is_some() && c.contains(MARKER));
            children.sort_by_key(|c| sequence_of(c));
            let Some(i) = children.iter().position(|c| *c == node.name) else {
                return Err(Error::Inconsistent(format!(
                    "contender {} vanished",
                    node.path
                )));
            };
            if i < self.max_leases {
                return Ok(());
            }
            let ev = watcher.changed().await;
            if ev.session_state.is_terminated() {
                return Err(Error::Zk(ZkError::SessionExpired));
            }
        }
    }
}
