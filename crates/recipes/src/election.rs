//! Leader election / leader latch (ZooKeeper recipe "Leader Election"),
//! Curator `LeaderLatch`-compatible node names.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client::Client;

use crate::contend::{self, Node};
use crate::lock::{watch_node_lost, LostReason};
use crate::{Error, Result};

/// Marker in latch node names, as Curator's `LeaderLatch` uses.
const MARKER: &str = "latch-";

/// Where this participant stands in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderState {
    /// Waiting behind a lower sequence number.
    Follower,
    /// Leader; `token` is the czxid of our node, a fencing token that
    /// strictly increases across successive leaders.
    Leader {
        /// Fencing token of this leadership grant.
        token: i64,
    },
    /// Leadership (or candidacy) ended for good: session ended, node deleted,
    /// or the latch was closed. Start a new latch to run again.
    Lost(LostReason),
    /// Candidacy ended because the election failed with an error.
    Failed,
}

/// One participant in a leader election under a directory.
///
/// The participant with the lowest sequence number leads; each other
/// participant watches only its predecessor, so when the leader's session
/// ends exactly the next one takes over. Observe transitions with
/// [`LeaderLatch::subscribe`]; a background task drives the latch until it
/// is closed or dropped.
#[derive(Debug)]
pub struct LeaderLatch {
    client: Client,
    node: Node,
    state: watch::Receiver<LeaderState>,
    task: JoinHandle<()>,
}

impl LeaderLatch {
    /// Joins the election in `dir` (created if missing); `id` is stored as
    /// the node's data so others can tell who leads.
    pub async fn start(client: Client, dir: &str, id: &[u8]) -> Result<LeaderLatch> {
        let node = contend::create(&client, dir, MARKER, id).await?;
        let (tx, rx) = watch::channel(LeaderState::Follower);
        let task = {
            let client = client.clone();
            let node = node.clone();
            let dir = dir.to_string();
            tokio::spawn(async move {
                match contend::wait_first(&client, &dir, MARKER, &node).await {
                    Ok(()) => {
                        let _ = tx.send(LeaderState::Leader { token: node.czxid });
                        let why = watch_node_lost(&client, &node.path).await;
                        let _ = tx.send(LeaderState::Lost(why));
                    }
                    Err(Error::Zk(zookeeper_client::Error::SessionExpired)) => {
                        let _ =
                            tx.send(LeaderState::Lost(LostReason::SessionEnded(client.state())));
                    }
                    Err(Error::Inconsistent(_)) => {
                        let _ = tx.send(LeaderState::Lost(LostReason::NodeDeleted));
                    }
                    Err(_) => {
                        let _ = tx.send(LeaderState::Failed);
                    }
                }
            })
        };
        Ok(LeaderLatch {
            client,
            node,
            state: rx,
            task,
        })
    }

    /// Whether we lead right now (as last observed).
    pub fn is_leader(&self) -> bool {
        matches!(*self.state.borrow(), LeaderState::Leader { .. })
    }

    /// The current state.
    pub fn state(&self) -> LeaderState {
        *self.state.borrow()
    }

    /// A receiver of state transitions (follower → leader → lost), for
    /// reacting to gain and loss of leadership.
    pub fn subscribe(&self) -> watch::Receiver<LeaderState> {
        self.state.clone()
    }

    /// Waits up to `timeout` to become leader and returns the fencing token.
    /// Fails if candidacy ends first.
    pub async fn await_leadership(&self, timeout: Duration) -> Result<i64> {
        let mut rx = self.state.clone();
        let wait = async {
            loop {
                match *rx.borrow_and_update() {
                    LeaderState::Leader { token } => return Ok(token),
                    LeaderState::Follower => {}
                    other => {
                        return Err(Error::Inconsistent(format!("candidacy ended: {other:?}")))
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Inconsistent("latch task ended".into()));
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// Our node's path.
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// Leaves the election (deleting our node so the next participant
    /// takes over at once).
    pub async fn close(self) -> Result<()> {
        self.task.abort();
        let r = self.client.delete(&self.node.path, None).await;
        // Drop's background delete becomes a harmless NoNode.
        match r {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        self.task.abort();
        contend::delete_in_background(&self.client, &self.node.path);
    }
}
