//! Configuration caches kept current by persistent watches (ZooKeeper 3.6+
//! `addWatch`): [`TreeCache`] mirrors a subtree, [`NodeCache`] one node.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client::{AddWatchMode, Client, Error as ZkError, EventType, SessionState, Stat};

use crate::Result;

/// One cached node: its data and stat as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNode {
    /// The node's data.
    pub data: Vec<u8>,
    /// The node's stat (version, mzxid, ...).
    pub stat: Stat,
}

/// A cache's contents: absolute path to node, sorted by path.
pub type Snapshot = BTreeMap<String, CachedNode>;

/// A local mirror of the subtree at a root path, kept current by one
/// persistent recursive watch.
///
/// [`TreeCache::start`] adds the watch first and then reads the tree, so no
/// change is missed; afterwards each created, changed or deleted node is
/// re-read (or dropped) as its event arrives. After a disconnection the tree
/// is read again in full, since events during reconnection may be lost
/// (ZOOKEEPER-4698). If the session ends, the cache stops updating and
/// [`TreeCache::is_closed`] turns true.
///
/// The cache is eventually consistent with the server: it lags by the
/// time an event takes to arrive.
#[derive(Debug)]
pub struct TreeCache {
    root: String,
    state: watch::Receiver<Snapshot>,
    task: JoinHandle<()>,
}

impl TreeCache {
    /// Starts mirroring the subtree at `root` (which may not exist yet);
    /// returns once the initial contents are loaded.
    pub async fn start(client: Client, root: impl Into<String>) -> Result<TreeCache> {
        let root = root.into();
        let (state, task) = spawn(client, root.clone(), true).await?;
        Ok(TreeCache { root, state, task })
    }

    /// The mirrored root path.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The cached node at `path`, if present.
    pub fn get(&self, path: &str) -> Option<CachedNode> {
        self.state.borrow().get(path).cloned()
    }

    /// A copy of the whole cache.
    pub fn snapshot(&self) -> Snapshot {
        self.state.borrow().clone()
    }

    /// A channel that sees every update of the cache; use `changed()` or
    /// `wait_for()` on it.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.state.clone()
    }

    /// Whether the cache stopped updating (its session ended).
    pub fn is_closed(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        // Dropping the task's watcher removes the watch.
        self.task.abort();
    }
}

/// A local copy of one node (absent, or its data and stat), kept current by
/// one persistent (non-recursive) watch. See [`TreeCache`] for the rules.
#[derive(Debug)]
pub struct NodeCache {
    path: String,
    state: watch::Receiver<Option<CachedNode>>,
    tasks: [JoinHandle<()>; 2],
}

impl NodeCache {
    /// Starts caching the node at `path` (which may not exist yet); returns
    /// once the initial state is loaded.
    pub async fn start(client: Client, path: impl Into<String>) -> Result<NodeCache> {
        let path = path.into();
        let (mut tree, task) = spawn(client, path.clone(), false).await?;
        let (tx, state) = watch::channel(tree.borrow().get(&path).cloned());
        let key = path.clone();
        let forward = tokio::spawn(async move {
            while tree.changed().await.is_ok() {
                let node = tree.borrow_and_update().get(&key).cloned();
                tx.send_if_modified(|cur| {
                    let changed = *cur != node;
                    *cur = node;
                    changed
                });
            }
        });
        Ok(NodeCache {
            path,
            state,
            tasks: [task, forward],
        })
    }

    /// The cached path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The node as last seen, `None` if it does not exist.
    pub fn get(&self) -> Option<CachedNode> {
        self.state.borrow().clone()
    }

    /// A channel that sees every change of the node.
    pub fn subscribe(&self) -> watch::Receiver<Option<CachedNode>> {
        self.state.clone()
    }

    /// Whether the cache stopped updating (its session ended).
    pub fn is_closed(&self) -> bool {
        self.tasks[0].is_finished()
    }
}

impl Drop for NodeCache {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Adds the watch, loads the initial contents, and spawns the update task.
async fn spawn(
    client: Client,
    root: String,
    recursive: bool,
) -> Result<(watch::Receiver<Snapshot>, JoinHandle<()>)> {
    let mode = if recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let mut watcher = client.watch(&root, mode).await?;
    let mut initial = Snapshot::new();
    load(&client, &root, recursive, &mut initial).await?;
    let (tx, rx) = watch::channel(initial);
    let task = tokio::spawn(async move {
        let mut disconnected = false;
        loop {
            let ev = watcher.changed().await;
            match ev.event_type {
                EventType::Session => {
                    if ev.session_state.is_terminated() {
                        // `changed()` must not be called again.
                        return;
                    }
                    match ev.session_state {
                        SessionState::Disconnected => disconnected = true,
                        SessionState::SyncConnected | SessionState::ConnectedReadOnly
                            if disconnected =>
                        {
                            disconnected = false;
                            let mut fresh = Snapshot::new();
                            if load(&client, &root, recursive, &mut fresh).await.is_ok() {
                                tx.send_if_modified(|cur| replace(cur, fresh));
                            } else {
                                // Retry on the next reconnection.
                                disconnected = true;
                            }
                        }
                        _ => {}
                    }
                }
                EventType::NodeDeleted => {
                    let prefix = format!("{}/", ev.path);
                    tx.send_if_modified(|cur| {
                        let before = cur.len();
                        cur.retain(|p, _| *p != ev.path && !p.starts_with(&prefix));
                        cur.len() != before
                    });
                }
                EventType::NodeCreated | EventType::NodeDataChanged => {
                    match client.get_data(&ev.path).await {
                        Ok((data, stat)) => {
                            let node = CachedNode { data, stat };
                            tx.send_if_modified(|cur| {
                                if cur.get(&ev.path) == Some(&node) {
                                    false
                                } else {
                                    cur.insert(ev.path.clone(), node);
                                    true
                                }
                            });
                        }
                        // Deleted meanwhile: its NodeDeleted event follows.
                        Err(ZkError::NoNode) => {}
                        // Disconnected: the reload on reconnection catches up.
                        Err(_) => disconnected = true,
                    }
                }
                // Only with the non-recursive watch; children are not cached.
                EventType::NodeChildrenChanged => {}
            }
        }
    });
    Ok((rx, task))
}

/// Replaces `cur` with `fresh`, reporting whether anything changed.
fn replace(cur: &mut Snapshot, fresh: Snapshot) -> bool {
    let changed = *cur != fresh;
    *cur = fresh;
    changed
}

/// Reads `path` (and, if `recursive`, its subtree) into `out`.
fn load<'a>(
    client: &'a Client,
    path: &'a str,
    recursive: bool,
    out: &'a mut Snapshot,
) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let (data, stat) = match client.get_data(path).await {
            Ok(r) => r,
            Err(ZkError::NoNode) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        out.insert(path.to_string(), CachedNode { data, stat });
        if !recursive {
            return Ok(());
        }
        let children = match client.list_children(path).await {
            Ok(c) => c,
            Err(ZkError::NoNode) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for c in children {
            let child = if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            };
            load(client, &child, true, out).await?;
        }
        Ok(())
    })
}
