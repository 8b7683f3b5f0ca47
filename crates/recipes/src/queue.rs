//! Distributed FIFO queue (ZooKeeper recipe "Queues").

use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use crate::contend::sequence_of;
use crate::{Error, Result};

/// Prefix of item nodes (as in the Java recipe's `DistributedQueue`).
const PREFIX: &str = "qn-";

/// A FIFO queue of byte items on persistent-sequential nodes under a
/// directory: items survive their producer's session.
///
/// Consumers take the lowest item and claim it by deleting it; only the
/// consumer whose delete succeeds gets the item, the others move on to the
/// next one rather than all retrying the same node.
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
        let children = match self.client.list_children(&self.dir).await {
            Err(ZkError::NoNode) => return Ok(None),
            r => r?,
        };
        self.claim_first(children).await
    }

    async fn claim_first(&self, mut children: Vec<String>) -> Result<Option<Vec<u8>>> {
        children.retain(|c| c.starts_with(PREFIX) && sequence_of(c).is_some());
        children.sort_by_key(|c| sequence_of(c));
        for c in children {
            let path = format!("{}/{c}", self.dir);
            let data = match self.client.get_data(&path).await {
                Ok((d, _)) => d,
                Err(ZkError::NoNode) => continue,
                Err(e) => return Err(e.into()),
            };
            match self.client.delete(&path, None).await {
                Ok(()) => return Ok(Some(data)),
                Err(ZkError::NoNode) => continue, // another consumer claimed it
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Takes the oldest item, waiting up to `timeout` for one to arrive.
    pub async fn take(&self, timeout: Duration) -> Result<Vec<u8>> {
        let wait = async {
            crate::contend::ensure_dir(&self.client, &self.dir).await?;
            loop {
                let (children, watcher) = self.client.list_and_watch_children(&self.dir).await?;
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
