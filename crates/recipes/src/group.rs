//! Group membership: who is alive right now.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client::{Client, Error as ZkError};

use crate::contend::{self, Node};
use crate::Result;

/// Marker in member node names.
const MARKER: &str = "member-";

/// One member as seen in the group directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name (unique, ordered by join time).
    pub name: String,
    /// The address (or any data) the member registered with.
    pub data: Vec<u8>,
}

/// Our registration in a group; the ephemeral node goes away with the
/// session, so crashed members drop out without cleanup.
#[derive(Debug)]
pub struct Membership {
    client: Client,
    node: Node,
    left: bool,
}

impl Membership {
    /// Registers in `dir` with `data` (typically our address).
    pub async fn join(client: Client, dir: &str, data: &[u8]) -> Result<Membership> {
        let node = contend::create(&client, dir, MARKER, data).await?;
        Ok(Membership {
            client,
            node,
            left: false,
        })
    }

    /// Our node's name in the group.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// Leaves the group now.
    pub async fn leave(mut self) -> Result<()> {
        self.left = true;
        match self.client.delete(&self.node.path, None).await {
            Ok(()) | Err(ZkError::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if !self.left {
            contend::delete_in_background(&self.client, &self.node.path);
        }
    }
}

/// Lists the current members of `dir`, oldest first.
pub async fn members(client: &Client, dir: &str) -> Result<Vec<Member>> {
    let children = match contend::retry(client, || client.list_children(dir)).await {
        Err(ZkError::NoNode) => return Ok(Vec::new()),
        r => r?,
    };
    read_members(client, dir, children).await
}

async fn read_members(
    client: &Client,
    dir: &str,
    mut children: Vec<String>,
) -> Result<Vec<Member>> {
    children.retain(|c| c.contains(MARKER) && contend::sequence_of(c).is_some());
    children.sort_by_key(|c| contend::sequence_of(c));
    let mut out = Vec::with_capacity(children.len());
    for name in children {
        let path = format!("{dir}/{name}");
        match contend::retry(client, || client.get_data(&path)).await {
            Ok((data, _)) => out.push(Member { name, data }),
            Err(ZkError::NoNode) => {} // left meanwhile
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// A live view of a group's members, kept current by a child watch in a
/// background task (stopped on drop).
#[derive(Debug)]
pub struct GroupView {
    rx: watch::Receiver<Vec<Member>>,
    task: JoinHandle<()>,
}

impl GroupView {
    /// Starts watching `dir` (created if missing).
    pub async fn watch(client: Client, dir: &str) -> Result<GroupView> {
        contend::ensure_dir(&client, dir).await?;
        let (children, watcher) =
            contend::retry(&client, || client.list_and_watch_children(dir)).await?;
        let first = read_members(&client, dir, children).await?;
        let (tx, rx) = watch::channel(first);
        let dir = dir.to_string();
        let task = tokio::spawn(async move {
            let mut watcher = watcher;
            loop {
                let ev = watcher.changed().await;
                if ev.session_state.is_terminated() {
                    return;
                }
                // Across a lost connection the read waits for reconnection
                // (the view must not go stale); only an ended session stops it.
                let Ok((children, w)) =
                    contend::retry(&client, || client.list_and_watch_children(&dir)).await
                else {
                    return;
                };
                watcher = w;
                if let Ok(m) = read_members(&client, &dir, children).await {
                    let _ = tx.send(m);
                }
            }
        });
        Ok(GroupView { rx, task })
    }

    /// The members as last seen.
    pub fn members(&self) -> Vec<Member> {
        self.rx.borrow().clone()
    }

    /// A receiver notified on every membership change.
    pub fn subscribe(&self) -> watch::Receiver<Vec<Member>> {
        self.rx.clone()
    }
}

impl Drop for GroupView {
    fn drop(&mut self) {
        self.task.abort();
    }
}
