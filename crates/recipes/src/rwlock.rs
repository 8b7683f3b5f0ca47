//! Read/write lock (ZooKeeper recipe "Shared Locks"), with Curator
//! `InterProcessReadWriteLock` node names: readers share, a writer excludes.

use std::time::Duration;

use zookeeper_client::Client;

use crate::contend::{self, sequence_of, Node};
use crate::{Error, LockGuard, Result};

/// Marker of read contenders, as Curator names them.
const READ: &str = "__READ__";
/// Marker of write contenders, as Curator names them.
const WRITE: &str = "__WRIT__";

/// A read/write lock under a directory: any number of readers hold it
/// together, a writer holds it alone.
///
/// Contenders create ephemeral-sequential nodes `<dir>/_c_<uuid>-__READ__<seq>`
/// or `<dir>/_c_<uuid>-__WRIT__<seq>` and queue by sequence number:
///
/// * a writer holds the lock when it is the lowest node, and otherwise
///   watches only its immediate predecessor;
/// * a reader holds the lock when no writer precedes it, and otherwise
///   watches only the nearest writer before it.
///
/// So a writer waits for earlier readers to finish, and later readers wait
/// for the writer (no writer starvation). Ephemeral nodes release the lock
/// when a holder's session ends.
#[derive(Debug, Clone)]
pub struct RwLock {
    client: Client,
    dir: String,
}

impl RwLock {
    /// A read/write lock rooted at `dir` (created on first use), contended
    /// through `client`'s session.
    pub fn new(client: Client, dir: impl Into<String>) -> RwLock {
        RwLock {
            client,
            dir: dir.into(),
        }
    }

    /// The lock directory.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Waits up to `timeout` for a shared (read) hold.
    pub async fn read(&self, timeout: Duration) -> Result<LockGuard> {
        self.acquire(READ, timeout).await
    }

    /// Waits up to `timeout` for an exclusive (write) hold.
    pub async fn write(&self, timeout: Duration) -> Result<LockGuard> {
        self.acquire(WRITE, timeout).await
    }

    async fn acquire(&self, marker: &str, timeout: Duration) -> Result<LockGuard> {
        let node = contend::acquire(
            &self.client,
            &self.dir,
            marker,
            timeout,
            |node| async move {
                let r = self.wait(marker == WRITE, &node).await;
                (node, r)
            },
        )
        .await?;
        Ok(LockGuard::new(self.client.clone(), node))
    }

    /// Waits until `node` may hold the lock, watching one node at a time.
    async fn wait(&self, write: bool, node: &Node) -> Result<()> {
        loop {
            let client = &self.client;
            let mut children = contend::retry(client, || client.list_children(&self.dir)).await?;
            children
                .retain(|c| sequence_of(c).is_some() && (c.contains(READ) || c.contains(WRITE)));
            children.sort_by_key(|c| sequence_of(c));
            let Some(i) = children.iter().position(|c| *c == node.name) else {
                return Err(Error::Inconsistent(format!(
                    "contender {} vanished",
                    node.path
                )));
            };
            let blocker = if write {
                i.checked_sub(1)
            } else {
                children[..i].iter().rposition(|c| c.contains(WRITE))
            };
            let Some(b) = blocker else {
                return Ok(());
            };
            contend::wait_gone(&self.client, &format!("{}/{}", self.dir, children[b])).await?;
        }
    }
}
