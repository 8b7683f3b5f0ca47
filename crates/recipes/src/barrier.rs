//! Barriers (ZooKeeper recipes "Barriers" and "Double Barriers").

use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use crate::contend::retry;
use crate::{Error, Result};

/// Name of the node that marks a double barrier as full.
const READY: &str = "ready";

/// A simple barrier: while the node exists, [`Barrier::wait`] blocks.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier represented by the node at `path`.
    pub fn new(client: Client, path: impl Into<String>) -> Barrier {
        Barrier {
            client,
            path: path.into(),
        }
    }

    /// Raises the barrier (creates the node and its parents).
    pub async fn set(&self) -> Result<()> {
        let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
        match retry(&self.client, || self.client.mkdir(&self.path, &opts)).await {
            Ok(()) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Lowers the barrier, releasing every waiter.
    pub async fn remove(&self) -> Result<()> {
        // NoNode on a retry may be our own first attempt having landed.
        match retry(&self.client, || self.client.delete(&self.path, None)).await {
            Ok(()) | Err(ZkError::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `timeout` for the barrier to be lowered.
    pub async fn wait(&self, timeout: Duration) -> Result<()> {
        let wait = async {
            loop {
                let client = &self.client;
                match retry(client, || client.check_and_watch_stat(&self.path)).await? {
                    (None, _) => return Ok(()),
                    (Some(_), w) => {
                        let ev = w.changed().await;
                        if ev.session_state.is_terminated() {
                            return Err(Error::Zk(ZkError::SessionExpired));
                        }
                    }
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }
}

/// A double barrier: `n` participants [`enter`](DoubleBarrier::enter)
/// together and [`leave`](DoubleBarrier::leave) together.
///
/// Each participant holds an ephemeral node under the directory (so a
/// crashed participant does not wedge the others forever); the last to enter
/// creates `ready`, which is what waiting enterers watch, so the barrier
/// stays open even as members start leaving.
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    dir: String,
    n: usize,
    me: String,
}

impl DoubleBarrier {
    /// A barrier for `n` participants in `dir`; `name` must be unique among
    /// them (e.g. host:port).
    pub fn new(client: Client, dir: impl Into<String>, n: usize, name: &str) -> DoubleBarrier {
        let dir = dir.into();
        let me = format!("{dir}/{name}");
        DoubleBarrier { client, dir, n, me }
    }

    fn participants(children: &[String]) -> usize {
        children.iter().filter(|c| *c != READY).count()
    }

    /// Joins and waits up to `timeout` until `n` participants have joined.
    pub async fn enter(&self, timeout: Duration) -> Result<()> {
        let wait = async {
            crate::contend::ensure_dir(&self.client, &self.dir).await?;
            let ready = format!("{}/{READY}", self.dir);
            let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
            let client = &self.client;
            // Our name is unique among participants, so NodeExists after a
            // lost connection is our own first attempt having landed.
            match retry(client, || client.create(&self.me, b"", &eph)).await {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => return Err(Error::from(e)),
            }
            loop {
                let (stat, watcher) = retry(client, || client.check_and_watch_stat(&ready)).await?;
                if stat.is_some() {
                    return Ok(());
                }
                let children = retry(client, || client.list_children(&self.dir)).await?;
                if Self::participants(&children) >= self.n {
                    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
                    return match retry(client, || client.create(&ready, b"", &opts)).await {
                        Ok(_) | Err(ZkError::NodeExists) => Ok(()),
                        Err(e) => Err(e.into()),
                    };
                }
                // A watch survives disconnection (re-armed on reconnect); a
                // session end fires it, and the next request reports it.
                watcher.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// Leaves and waits up to `timeout` until every participant has left.
    pub async fn leave(&self, timeout: Duration) -> Result<()> {
        let wait = async {
            let client = &self.client;
            match retry(client, || client.delete(&self.me, None)).await {
                Ok(()) | Err(ZkError::NoNode) => {}
                Err(e) => return Err(Error::from(e)),
            }
            loop {
                let (children, watcher) =
                    retry(client, || client.list_and_watch_children(&self.dir)).await?;
                if Self::participants(&children) == 0 {
                    // Reset for the next round; whoever gets here first.
                    let ready = format!("{}/{READY}", self.dir);
                    let _ = retry(client, || client.delete(&ready, None)).await;
                    return Ok(());
                }
                watcher.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }
}
