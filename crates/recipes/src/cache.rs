//! Configuration caches: [`TreeCache`] mirrors a subtree, [`NodeCache`] one
//! node. They are kept current by persistent watches (ZooKeeper 3.6+
//! `addWatch`) or, on older servers, by one-shot watches re-armed on every
//! event; both give the same contents and the same change callbacks.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use zookeeper_client::{
    AddWatchMode, Client, Error as ZkError, EventType, OneshotWatcher, PersistentWatcher,
    SessionState, Stat, WatchedEvent,
};

use crate::contend::lost_connection;
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

/// How a cache learns of changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WatchMode {
    /// Persistent watches if the server has them (ZooKeeper 3.6+), one-shot
    /// watches otherwise: a server older than 3.6 answers `addWatch` with
    /// UNIMPLEMENTED (and closes the connection; the session survives).
    #[default]
    Auto,
    /// One persistent (recursive, for a tree) watch; fails on old servers.
    Persistent,
    /// One-shot data and child watches on every cached node, re-armed as
    /// they fire: works on any server, costs one watch per node.
    OneShot,
}

/// A change of a cache's contents, as passed to the callbacks of
/// [`CacheOptions::on_change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// A node appeared in the cache.
    Added {
        /// The node's path.
        path: String,
        /// The node as read.
        node: CachedNode,
    },
    /// A node's data changed (a new `mzxid`). Changes in a node's children
    /// alone refresh its stat silently, as Curator's caches do.
    Updated {
        /// The node's path.
        path: String,
        /// The node before.
        old: CachedNode,
        /// The node now.
        node: CachedNode,
    },
    /// A node left the cache (deleted). A subtree goes deepest node first.
    Removed {
        /// The node's path.
        path: String,
        /// The node as last cached.
        node: CachedNode,
    },
}

impl CacheEvent {
    /// The path of the node concerned.
    pub fn path(&self) -> &str {
        match self {
            CacheEvent::Added { path, .. }
            | CacheEvent::Updated { path, .. }
            | CacheEvent::Removed { path, .. } => path,
        }
    }
}

type Listener = Arc<dyn Fn(&CacheEvent) + Send + Sync>;

/// Options of [`TreeCache::start_with`] and [`NodeCache::start_with`].
#[derive(Clone, Default)]
pub struct CacheOptions {
    mode: WatchMode,
    listeners: Vec<Listener>,
}

impl fmt::Debug for CacheOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheOptions")
            .field("mode", &self.mode)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl CacheOptions {
    /// Defaults: [`WatchMode::Auto`], no callbacks.
    pub fn new() -> CacheOptions {
        CacheOptions::default()
    }

    /// How the cache watches the server.
    pub fn mode(mut self, mode: WatchMode) -> CacheOptions {
        self.mode = mode;
        self
    }

    /// Calls `f` for every change, after the cache shows it (so `get` in
    /// the callback sees the new state), in the order applied. The initial
    /// load counts: each node present at start is `Added`. `f` runs on the
    /// cache's task and must not block.
    pub fn on_change(mut self, f: impl Fn(&CacheEvent) + Send + Sync + 'static) -> CacheOptions {
        self.listeners.push(Arc::new(f));
        self
    }
}

/// A local mirror of the subtree at a root path.
///
/// [`TreeCache::start`] sets its watches first and then reads the tree, so
/// no change is missed; afterwards each created, changed or deleted node is
/// re-read (or dropped) as its event arrives. With a persistent recursive
/// watch the tree is read again in full after a disconnection, since events
/// during reconnection may be lost (ZOOKEEPER-4698); one-shot watches are
/// re-registered by the client on reconnection and fire for what changed
/// meanwhile. If the session ends, the cache stops updating and
/// [`TreeCache::is_closed`] turns true.
///
/// The cache is eventually consistent with the server: it lags by the
/// time an event takes to arrive. A parent's stat (`cversion`,
/// `numChildren`, `pzxid`) is refreshed when its children change.
#[derive(Debug)]
pub struct TreeCache {
    root: String,
    mode: WatchMode,
    state: watch::Receiver<Snapshot>,
    task: JoinHandle<()>,
}

impl TreeCache {
    /// Starts mirroring the subtree at `root` (which may not exist yet) with
    /// default options; returns once the initial contents are loaded.
    pub async fn start(client: Client, root: impl Into<String>) -> Result<TreeCache> {
        TreeCache::start_with(client, root, CacheOptions::default()).await
    }

    /// Starts mirroring the subtree at `root` with `options`.
    pub async fn start_with(
        client: Client,
        root: impl Into<String>,
        options: CacheOptions,
    ) -> Result<TreeCache> {
        let root = root.into();
        let (state, mode, task) = spawn(client, root.clone(), true, options).await?;
        Ok(TreeCache {
            root,
            mode,
            state,
            task,
        })
    }

    /// The mirrored root path.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The watches in use: [`WatchMode::Persistent`] or
    /// [`WatchMode::OneShot`] (what [`WatchMode::Auto`] chose).
    pub fn mode(&self) -> WatchMode {
        self.mode
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
        // Dropping the task's watchers removes the watches.
        self.task.abort();
    }
}

/// A local copy of one node (absent, or its data and stat), kept current by
/// one persistent (non-recursive) watch or a one-shot data watch. See
/// [`TreeCache`] for the rules; the node's children are not watched, so
/// its child-related stat fields are as of its last data read.
#[derive(Debug)]
pub struct NodeCache {
    path: String,
    mode: WatchMode,
    state: watch::Receiver<Option<CachedNode>>,
    tasks: [JoinHandle<()>; 2],
}

impl NodeCache {
    /// Starts caching the node at `path` (which may not exist yet) with
    /// default options; returns once the initial state is loaded.
    pub async fn start(client: Client, path: impl Into<String>) -> Result<NodeCache> {
        NodeCache::start_with(client, path, CacheOptions::default()).await
    }

    /// Starts caching the node at `path` with `options`.
    pub async fn start_with(
        client: Client,
        path: impl Into<String>,
        options: CacheOptions,
    ) -> Result<NodeCache> {
        let path = path.into();
        let (mut tree, mode, task) = spawn(client, path.clone(), false, options).await?;
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
            mode,
            state,
            tasks: [task, forward],
        })
    }

    /// The cached path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The watches in use (see [`TreeCache::mode`]).
    pub fn mode(&self) -> WatchMode {
        self.mode
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

/// The cache's contents and its callbacks: every change goes through here,
/// so both watch modes report changes the same way.
struct Mirror {
    tx: watch::Sender<Snapshot>,
    listeners: Vec<Listener>,
}

impl Mirror {
    fn emit(&self, events: Vec<CacheEvent>) {
        for e in &events {
            for l in &self.listeners {
                l(e);
            }
        }
    }

    fn contains(&self, path: &str) -> bool {
        self.tx.borrow().contains_key(path)
    }

    /// Paths of the cached direct children of `path`.
    fn children_of(&self, path: &str) -> BTreeSet<String> {
        let prefix = child_prefix(path);
        self.tx
            .borrow()
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| !p[prefix.len()..].contains('/'))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Stores `node` at `path`: `Added`, `Updated` if its data changed
    /// (mzxid), silent if only child-related stat fields moved.
    fn upsert(&self, path: &str, node: CachedNode) {
        let mut event = None;
        self.tx.send_if_modified(|cur| {
            let changed = match cur.get(path) {
                Some(old) if *old == node => return false,
                Some(old) if old.stat.mzxid == node.stat.mzxid => None,
                Some(old) => Some(CacheEvent::Updated {
                    path: path.to_string(),
                    old: old.clone(),
                    node: node.clone(),
                }),
                None => Some(CacheEvent::Added {
                    path: path.to_string(),
                    node: node.clone(),
                }),
            };
            event = changed;
            cur.insert(path.to_string(), node.clone());
            true
        });
        self.emit(event.into_iter().collect());
    }

    /// Takes a fresher stat of a cached node whose data is unchanged (same
    /// mzxid); a data change is left to that node's own refresh.
    fn restat(&self, path: &str, stat: Stat) {
        self.tx.send_if_modified(|cur| match cur.get_mut(path) {
            Some(n) if n.stat.mzxid == stat.mzxid && n.stat != stat => {
                n.stat = stat;
                true
            }
            _ => false,
        });
    }

    /// Drops `path` and everything under it, deepest first.
    fn remove_subtree(&self, path: &str) {
        let prefix = child_prefix(path);
        let mut events = Vec::new();
        self.tx.send_if_modified(|cur| {
            let gone: Vec<String> = cur
                .range(path.to_string()..)
                .take_while(|(p, _)| *p == path || p.starts_with(&prefix))
                .filter(|(p, _)| *p == path || p.starts_with(&prefix))
                .map(|(p, _)| p.clone())
                .collect();
            for p in gone.into_iter().rev() {
                if let Some(node) = cur.remove(&p) {
                    events.push(CacheEvent::Removed { path: p, node });
                }
            }
            !events.is_empty()
        });
        self.emit(events);
    }

    /// Replaces the contents with `fresh` (a full reload), reporting the
    /// difference as events: removals deepest first, then additions and
    /// updates in path order.
    fn replace(&self, fresh: Snapshot) {
        let mut events = Vec::new();
        self.tx.send_if_modified(|cur| {
            for (p, node) in cur.iter().rev() {
                if !fresh.contains_key(p) {
                    events.push(CacheEvent::Removed {
                        path: p.clone(),
                        node: node.clone(),
                    });
                }
            }
            for (p, node) in &fresh {
                match cur.get(p) {
                    None => events.push(CacheEvent::Added {
                        path: p.clone(),
                        node: node.clone(),
                    }),
                    Some(old) if old.stat.mzxid != node.stat.mzxid => {
                        events.push(CacheEvent::Updated {
                            path: p.clone(),
                            old: old.clone(),
                            node: node.clone(),
                        })
                    }
                    Some(_) => {}
                }
            }
            let changed = *cur != fresh;
            *cur = fresh;
            changed
        });
        self.emit(events);
    }
}

/// `path` + "/", the prefix of everything below it ("/" for the root).
fn child_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

fn child_path(parent: &str, name: &str) -> String {
    format!("{}{name}", child_prefix(parent))
}

fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// Bound on waiting for the client to reconnect while starting a cache.
fn reconnect_bound(client: &Client) -> Duration {
    client.session_timeout().max(Duration::from_secs(1)) * 2
}

/// Waits (bounded) until `client` is connected again; returns at once if it
/// is. A terminal state is an error.
async fn wait_connected(client: &Client) -> Result<()> {
    let mut states = client.state_watcher();
    let wait = async {
        loop {
            match client.state() {
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => return Ok(()),
                s if s.is_terminated() => return Err(ZkError::SessionExpired.into()),
                _ => {}
            }
            let s = states.changed().await;
            if s.is_terminated() {
                return Err(ZkError::SessionExpired.into());
            }
        }
    };
    let bound = reconnect_bound(client);
    tokio::time::timeout(bound, wait)
        .await
        .map_err(|_| crate::Error::Timeout(bound))?
}

/// Attempts at a start-up step that meets connection loss.
const START_ATTEMPTS: usize = 5;

/// Sets the watch(es), loads the initial contents, and spawns the update
/// task; reports the mode chosen.
async fn spawn(
    client: Client,
    root: String,
    recursive: bool,
    options: CacheOptions,
) -> Result<(watch::Receiver<Snapshot>, WatchMode, JoinHandle<()>)> {
    let (tx, rx) = watch::channel(Snapshot::new());
    let mirror = Mirror {
        tx,
        listeners: options.listeners,
    };
    let persistent = match options.mode {
        WatchMode::OneShot => None,
        mode => add_watch(&client, &root, recursive, mode).await?,
    };
    if let Some(watcher) = persistent {
        let mut attempts = 0;
        let initial = loop {
            let mut initial = Snapshot::new();
            match load(&client, &root, recursive, &mut initial).await {
                Ok(()) => break initial,
                Err(crate::Error::Zk(e)) if lost_connection(&e) && attempts < START_ATTEMPTS => {
                    attempts += 1;
                    wait_connected(&client).await?;
                }
                Err(e) => return Err(e),
            }
        };
        mirror.replace(initial);
        let task = tokio::spawn(run_persistent(client, root, recursive, watcher, mirror));
        return Ok((rx, WatchMode::Persistent, task));
    }
    let mut cache = OneShot {
        client,
        root,
        recursive,
        mirror,
        watches: JoinSet::new(),
        data_armed: HashSet::new(),
        child_armed: HashSet::new(),
        retry: BTreeSet::new(),
    };
    let root = cache.root.clone();
    cache.retry.insert(root);
    let mut attempts = 0;
    while !cache.retry.is_empty() {
        if let Err(e) = cache.retry_all().await {
            attempts += 1;
            if !lost_connection(&e) || attempts > START_ATTEMPTS {
                return Err(e.into());
            }
            wait_connected(&cache.client).await?;
        }
    }
    let task = tokio::spawn(cache.run());
    Ok((rx, WatchMode::OneShot, task))
}

/// Adds the persistent watch; `None` when `mode` is `Auto` and the server
/// predates them.
async fn add_watch(
    client: &Client,
    root: &str,
    recursive: bool,
    mode: WatchMode,
) -> Result<Option<PersistentWatcher>> {
    let kind = if recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let mut attempts = 0;
    loop {
        match client.watch(root, kind).await {
            Ok(w) => return Ok(Some(w)),
            // Apache ZooKeeper < 3.6 answers an unknown opcode with
            // UNIMPLEMENTED, then closes the connection (not the session).
            Err(ZkError::Unimplemented) if mode == WatchMode::Auto => return Ok(None),
            Err(e) if lost_connection(&e) && attempts < START_ATTEMPTS => {
                attempts += 1;
                wait_connected(client).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The update loop on a persistent watch.
async fn run_persistent(
    client: Client,
    root: String,
    recursive: bool,
    mut watcher: PersistentWatcher,
    mirror: Mirror,
) {
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
                            mirror.replace(fresh);
                        } else {
                            // Retry on the next reconnection.
                            disconnected = true;
                        }
                    }
                    _ => {}
                }
            }
            EventType::NodeDeleted => {
                mirror.remove_subtree(&ev.path);
                restat_parent(&client, &root, recursive, &ev.path, &mirror).await;
            }
            EventType::NodeCreated | EventType::NodeDataChanged => {
                match client.get_data(&ev.path).await {
                    Ok((data, stat)) => mirror.upsert(&ev.path, CachedNode { data, stat }),
                    // Deleted meanwhile: its NodeDeleted event follows.
                    Err(ZkError::NoNode) => {}
                    // Disconnected: the reload on reconnection catches up.
                    Err(_) => disconnected = true,
                }
                if ev.event_type == EventType::NodeCreated {
                    restat_parent(&client, &root, recursive, &ev.path, &mirror).await;
                }
            }
            // Only with the non-recursive watch; children are not cached.
            EventType::NodeChildrenChanged => {}
        }
    }
}

/// After a child of a cached node came or went, refreshes the parent's stat
/// (one-shot mode gets it from the child listing; the views must agree).
async fn restat_parent(client: &Client, root: &str, recursive: bool, path: &str, mirror: &Mirror) {
    if !recursive || path == root {
        return;
    }
    let Some(parent) = parent_of(path) else {
        return;
    };
    if let Ok(Some(stat)) = client.check_stat(parent).await {
        mirror.restat(parent, stat);
    }
}

/// Which one-shot watch fired.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Data or exists watch: data changes, deletion, creation.
    Data,
    /// Child watch: children changed, deletion.
    Children,
}

/// The one-shot engine: at most one data watch and one child watch per
/// cached node, each re-armed by the read that follows its firing.
struct OneShot {
    client: Client,
    root: String,
    recursive: bool,
    mirror: Mirror,
    /// One task per armed watcher, yielding its event.
    watches: JoinSet<(Kind, String, WatchedEvent)>,
    data_armed: HashSet<String>,
    child_armed: HashSet<String>,
    /// Nodes whose refresh failed (connection loss), redone on reconnection.
    retry: BTreeSet<String>,
}

impl OneShot {
    fn arm(&mut self, kind: Kind, path: &str, watcher: OneshotWatcher) {
        let armed = match kind {
            Kind::Data => &mut self.data_armed,
            Kind::Children => &mut self.child_armed,
        };
        // A second watcher would deliver the same event twice; dropping it
        // unregisters only that watcher.
        if armed.insert(path.to_string()) {
            let path = path.to_string();
            self.watches
                .spawn(async move { (kind, path, watcher.changed().await) });
        }
    }

    /// Reads `path` (arming its data watch if none is); a missing node
    /// leaves the cache with its subtree. The root keeps an exists watch
    /// while missing, to see it come back. Returns whether it exists.
    async fn refresh_data(&mut self, path: &str) -> std::result::Result<bool, ZkError> {
        loop {
            if self.data_armed.contains(path) {
                return match self.client.get_data(path).await {
                    Ok((data, stat)) => {
                        self.mirror.upsert(path, CachedNode { data, stat });
                        Ok(true)
                    }
                    Err(ZkError::NoNode) => {
                        self.mirror.remove_subtree(path);
                        Ok(false)
                    }
                    Err(e) => Err(e),
                };
            }
            match self.client.get_and_watch_data(path).await {
                Ok((data, stat, w)) => {
                    self.arm(Kind::Data, path, w);
                    self.mirror.upsert(path, CachedNode { data, stat });
                    return Ok(true);
                }
                Err(ZkError::NoNode) => {
                    self.mirror.remove_subtree(path);
                    if path != self.root {
                        // The parent's child watch reports a return.
                        return Ok(false);
                    }
                    match self.client.check_and_watch_stat(path).await {
                        Ok((stat, w)) => {
                            self.arm(Kind::Data, path, w);
                            if stat.is_none() {
                                return Ok(false);
                            }
                            // Created meanwhile: read it (now watched).
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Lists `path`'s children (arming its child watch if none is), drops
    /// the ones gone and loads the new ones with their subtrees.
    fn refresh_children<'a>(
        &'a mut self,
        path: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<(), ZkError>> + Send + 'a>> {
        Box::pin(async move {
            let listed = if self.child_armed.contains(path) {
                self.client.get_children(path).await
            } else {
                match self.client.get_and_watch_children(path).await {
                    Ok((children, stat, w)) => {
                        self.arm(Kind::Children, path, w);
                        Ok((children, stat))
                    }
                    Err(e) => Err(e),
                }
            };
            let (children, stat) = match listed {
                Ok(r) => r,
                Err(ZkError::NoNode) => {
                    self.mirror.remove_subtree(path);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            self.mirror.restat(path, stat);
            let listed: BTreeSet<String> = children.iter().map(|c| child_path(path, c)).collect();
            for gone in self.mirror.children_of(path).difference(&listed) {
                self.mirror.remove_subtree(gone);
            }
            for child in &listed {
                if self.mirror.contains(child) {
                    continue;
                }
                let loaded = match self.refresh_data(child).await {
                    Ok(true) => self.refresh_children(child).await,
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                };
                if let Err(e) = loaded {
                    self.retry.insert(child.clone());
                    return Err(e);
                }
            }
            Ok(())
        })
    }

    /// Refreshes a node and (for a tree) its children.
    async fn refresh(&mut self, path: &str) -> std::result::Result<(), ZkError> {
        if self.refresh_data(path).await? && self.recursive {
            self.refresh_children(path).await?;
        }
        Ok(())
    }

    /// Redoes every failed refresh; on error the rest stay queued.
    async fn retry_all(&mut self) -> std::result::Result<(), ZkError> {
        while let Some(path) = self.retry.first().cloned() {
            self.retry.remove(&path);
            if let Err(e) = self.refresh(&path).await {
                self.retry.insert(path);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Handles one fired watch.
    async fn fired(
        &mut self,
        kind: Kind,
        path: String,
        ev: WatchedEvent,
    ) -> std::result::Result<(), ZkError> {
        match kind {
            Kind::Data => {
                self.data_armed.remove(&path);
                if ev.event_type == EventType::NodeDeleted {
                    self.mirror.remove_subtree(&path);
                }
                // Re-arms; a node deleted and created again is loaded anew.
                let exists = self.refresh_data(&path).await?;
                if exists && self.recursive && ev.event_type != EventType::NodeDataChanged {
                    self.refresh_children(&path).await?;
                }
            }
            Kind::Children => {
                self.child_armed.remove(&path);
                // After a deletion only a node created again needs a watch.
                if ev.event_type == EventType::NodeChildrenChanged || self.mirror.contains(&path) {
                    self.refresh_children(&path).await?;
                }
            }
        }
        Ok(())
    }

    async fn run(mut self) {
        let mut states = self.client.state_watcher();
        loop {
            tokio::select! {
                Some(joined) = self.watches.join_next() => {
                    let Ok((kind, path, ev)) = joined else { continue };
                    if ev.event_type == EventType::Session {
                        // Only a terminal state reaches one-shot watchers.
                        return;
                    }
                    if self.fired(kind, path.clone(), ev).await.is_err() {
                        self.retry.insert(path);
                    }
                }
                s = states.changed() => {
                    if s.is_terminated() {
                        return;
                    }
                    if matches!(s, SessionState::SyncConnected | SessionState::ConnectedReadOnly) {
                        let _ = self.retry_all().await;
                    }
                }
            }
        }
    }
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
            load(client, &child_path(path, &c), true, out).await?;
        }
        Ok(())
    })
}
