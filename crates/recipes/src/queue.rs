//! Distributed FIFO queue (ZooKeeper recipe "Queues").

use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError, MultiWriteError};

use crate::contend::{lost_connection, retry, sequence_of};
use crate::{Error, Result};

/// Prefix of item nodes (as in the Java recipe's `DistributedQueue`).
const PREFIX: &str = "qn-";

/// Prefix of a consumer's short-lived claim marker (see `Queue::claim`);
/// item listings skip it.
const CLAIM: &str = "claim-";

/// A FIFO queue of byte items on persistent-sequential nodes under a
/// directory: items survive their producer's session.
///
/// Consumers take the lowest item and claim it by deleting it; only the
/// consumer whose delete succeeds gets the item, the others move on to the
/// next one rather than all retrying the same node. A connection lost
/// mid-claim neither duplicates nor loses an item (see `claim`).
#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    dir: String,
}

impl Queue {
    /// A queue in `dir` (created on first put/take).
    pub fn new(client: Client, dir: impl Into<String>) -> Queue {
        Queue {
            client,
            dir: dir.into(),
        }
    }

    /// Appends `data`.
    ///
    /// A sequential create cannot be retried safely and item names are kept
    /// Java-recipe compatible (`qn-<seq>`, no unique prefix to look for), so
    /// a connection lost during the create is returned as
    /// `ConnectionLoss`: the item may or may not have been added.
    pub async fn put(&self, data: &[u8]) -> Result<()> {
        crate::contend::ensure_dir(&self.client, &self.dir).await?;
        let opts = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
        self.client
            .create(&format!("{}/{PREFIX}", self.dir), data, &opts)
            .await?;
        Ok(())
    }

    /// Takes the oldest item if there is one, without waiting.
    pub async fn try_take(&self) -> Result<Option<Vec<u8>>> {
        let client = &self.client;
        let children = match retry(client, || client.list_children(&self.dir)).await {
            Err(ZkError::NoNode) => return Ok(None),
            r => r?,
        };
        self.claim_first(children).await
    }

    async fn claim_first(&self, mut children: Vec<String>) -> Result<Option<Vec<u8>>> {
        children.retain(|c| c.starts_with(PREFIX) && sequence_of(c).is_some());
        children.sort_by_key(|c| sequence_of(c));
        let client = &self.client;
        for c in children {
            let path = format!("{}/{c}", self.dir);
            let data = match retry(client, || client.get_data(&path)).await {
                Ok((d, _)) => d,
                Err(ZkError::NoNode) => continue,
                Err(e) => return Err(e.into()),
            };
            if self.claim(&path).await? {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// Claims the item at `path` by deleting it, in one transaction with an
    /// ephemeral marker of ours: if the connection is lost under the delete,
    /// the marker (looked up once reconnected) tells our claim from another
    /// consumer's, so an item is taken exactly once and never lost. `false`
    /// when another consumer took it.
    async fn claim(&self, path: &str) -> Result<bool> {
        let client = &self.client;
        let marker = format!("{}/{CLAIM}{}", self.dir, uuid::Uuid::new_v4());
        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        loop {
            let mut multi = client.new_multi_writer();
            multi.add_delete(path, None)?;
            multi.add_create(&marker, b"", &eph)?;
            match multi.commit().await {
                Ok(_) => break,
                Err(MultiWriteError::OperationFailed {
                    source: ZkError::NoNode,
                    ..
                }) => return Ok(false),
                Err(MultiWriteError::RequestFailed { source }) if lost_connection(&source) => {
                    if retry(client, || client.check_stat(&marker))
                        .await?
                        .is_some()
                    {
                        break;
                    }
                    // Not applied: try again (NoNode if another took it).
                }
                Err(e) => return Err(ZkError::from(e).into()),
            }
        }
        // Done with the marker; it is ephemeral should this not land.
        crate::contend::delete_in_background(client, &marker);
        Ok(true)
    }

    /// Takes the oldest item, waiting up to `timeout` for one to arrive.
    pub async fn take(&self, timeout: Duration) -> Result<Vec<u8>> {
        let wait = async {
            crate::contend::ensure_dir(&self.client, &self.dir).await?;
            loop {
                let client = &self.client;
                let (children, watcher) =
                    retry(client, || client.list_and_watch_children(&self.dir)).await?;
                if let Some(d) = self.claim_first(children).await? {
                    return Ok(d);
                }
                watcher.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }
}
