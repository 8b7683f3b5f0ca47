//! The data tree: znodes, their stats and ACLs, the ephemeral/container/TTL
//! indexes, the session table and the watch tables. `apply` is the only way
//! state changes: every live request, log replay and replicated commit goes
//! through it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use jute::consts::{event, perms, ErrorCode};
use jute::data::{Acl, Stat, StatPersisted};
use jute::txn::{TxnBody, TxnHeader};

use crate::acl::{AclCache, OPEN_UNSAFE_ACL_ID};
use crate::path;
use crate::watch::{Mode, WatchTable, WatcherId};

pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
const RESERVED_MASK: i64 = 0x00ff_ff00_0000_0000;
/// The largest TTL ZooKeeper can encode in an ephemeral owner.
pub const MAX_TTL: i64 = !(EXTENDED_MASK | RESERVED_MASK);

/// What kind of node an ephemeralOwner value denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

/// `EphemeralType.get`: TTL owners only exist when extended types are enabled.
pub fn owner_kind(owner: i64, extended_types: bool) -> OwnerKind {
    if extended_types && owner & EXTENDED_MASK == EXTENDED_MASK && owner & RESERVED_MASK == 0 {
        return OwnerKind::Ttl(owner & MAX_TTL);
    }
    match owner {
        0 => OwnerKind::Persistent,
        CONTAINER_OWNER => OwnerKind::Container,
        s => OwnerKind::Ephemeral(s),
    }
}

pub fn ttl_owner(ttl: i64) -> i64 {
    EXTENDED_MASK | ttl
}

#[derive(Debug, Clone)]
pub struct Node {
    /// None for null data (Java clients tell it from empty).
    pub data: Option<Bytes>,
    pub acl: i64,
    pub stat: StatPersisted,
    pub children: Children,
}

/// A node's children, as the full paths that key the tree's map (one
/// allocation per path, shared; a separate name string per child cost
/// about 40 bytes a znode). Siblings share their parent's prefix, so path
/// order is name order. Boxed, and absent while empty: most znodes are
/// leaves, and an empty set inline cost 16 bytes more per node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
// The box is the point: one pointer inline instead of a set's 24 bytes.
#[allow(clippy::box_collection)]
pub struct Children(Option<Box<BTreeSet<Arc<str>>>>);

impl Children {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Full paths, in name order.
    pub fn paths(&self) -> impl DoubleEndedIterator<Item = &Arc<str>> {
        self.0.iter().flat_map(|s| s.iter())
    }

    /// Child names, in order.
    pub fn names(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.paths().map(|p| crate::path::name(p))
    }

    pub fn contains(&self, path: &str) -> bool {
        self.0.as_ref().is_some_and(|s| s.contains(path))
    }

    /// False if it was there already.
    pub(crate) fn insert(&mut self, path: Arc<str>) -> bool {
        self.0.get_or_insert_with(Default::default).insert(path)
    }

    pub(crate) fn remove(&mut self, path: &str) {
        if let Some(s) = self.0.as_mut() {
            s.remove(path);
            if s.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Adds paths gathered in bulk: building the set at once is linear on
    /// sorted input (our own snapshots), unlike one insert per path.
    pub(crate) fn extend(&mut self, paths: Vec<Arc<str>>) {
        if paths.is_empty() {
            return;
        }
        match self.0.as_mut() {
            None => self.0 = Some(Box::new(paths.into_iter().collect())),
            Some(s) => s.extend(paths),
        }
    }
}

/// Data in an allocation of its own, for a txn made from a request (in
/// prep) or replayed from the log: decoded data is a slice of the
/// connection's read buffer (or the log's), and a node holding that slice
/// would keep the whole buffer, every request read with it, alive. Txns a
/// follower receives are left as they come: each packet has a buffer of its
/// own, and copying them cost followers ~15% more CPU per write (glibc's
/// malloc, freeing every packet).
pub fn own(data: &Option<Bytes>) -> Option<Bytes> {
    data.as_ref().map(|d| {
        if d.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(d)
        }
    })
}

impl Node {
    fn new(data: Option<Bytes>, acl: i64, stat: StatPersisted) -> Node {
        Node {
            data,
            acl,
            stat,
            children: Children::default(),
        }
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Bytes::len)
    }

    /// The Stat clients see, as ZooKeeper's `DataNode.copyStat` makes it:
    /// the stored cversion counts creates only, so clients get creates plus
    /// deletes (`2 * cversion - numChildren`); containers and TTL nodes show
    /// no ephemeral owner.
    pub fn stat(&self, extended_types: bool) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        let owner = match owner_kind(s.ephemeral_owner, extended_types) {
            OwnerKind::Ephemeral(o) => o,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: owner,
            data_length: self.data_len() as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// The node at `path` to change, copied first if a snapshot holds it.
/// (On the map, not the tree, so other fields stay borrowable.)
pub(crate) fn node_mut<'a>(
    nodes: &'a mut HashMap<Arc<str>, Arc<Node>, ahash::RandomState>,
    path: &str,
) -> Option<&'a mut Node> {
    nodes.get_mut(path).map(Arc::make_mut)
}

/// A watch notification produced by applying a txn or by setWatches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub watcher: WatcherId,
    pub event_type: i32,
    pub path: String,
    /// The ACL of the node the event is about: delivery needs READ on it.
    pub acl: Arc<Vec<Acl>>,
}

/// The outcome of one txn (or one op of a multi).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyResult {
    pub op: i32,
    pub err: i32,
    pub path: String,
    pub stat: Option<Stat>,
    pub multi: Vec<ApplyResult>,
}

#[derive(Debug, Clone)]
pub struct DataTree {
    // pub(crate): snapshot restore and digest live in sibling modules.
    /// Shared pointers, so that a snapshot's copy of the tree costs a
    /// table of pointers, not a second tree (a node is cloned only when
    /// written while a copy holds it). ahash, not SipHash: hashing paths was
    /// a tenth of a restart; its keys are still random per process.
    pub(crate) nodes: HashMap<Arc<str>, Arc<Node>, ahash::RandomState>,
    pub(crate) acls: AclCache,
    pub(crate) ephemerals: HashMap<i64, BTreeSet<String>>,
    pub(crate) containers: HashSet<String>,
    pub(crate) ttls: HashSet<String>,
    /// Session id -> negotiated timeout (ms); snapshots persist this.
    pub(crate) sessions: HashMap<i64, i32>,
    pub(crate) data_watches: WatchTable,
    pub(crate) child_watches: WatchTable,
    pub(crate) fired: Vec<Fired>,
    /// (event type, watchers notified) per trigger that notified any, for
    /// the server's per-event watcher counts.
    pub(crate) triggers: Vec<(i32, usize)>,
    pub(crate) last_zxid: i64,
    pub(crate) data_bytes: u64,
    /// The tree digest (digest.rs), kept current by every change.
    pub(crate) digest: i64,
    pub extended_types: bool,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new(false)
    }
}

impl DataTree {
    pub fn new(extended_types: bool) -> DataTree {
        let mut t = DataTree {
            nodes: HashMap::default(),
            acls: AclCache::default(),
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            sessions: HashMap::new(),
            data_watches: WatchTable::default(),
            child_watches: WatchTable::default(),
            fired: Vec::new(),
            triggers: Vec::new(),
            last_zxid: 0,
            data_bytes: 0,
            digest: 0,
            extended_types,
        };
        let blank = StatPersisted::default();
        let (zk_key, quota_key, config_key): (Arc<str>, Arc<str>, Arc<str>) =
            (ZOOKEEPER.into(), QUOTA.into(), CONFIG.into());
        let mut root = Node::new(Some(Bytes::new()), OPEN_UNSAFE_ACL_ID, blank);
        root.children.insert(zk_key.clone());
        let mut zk = Node::new(Some(Bytes::new()), OPEN_UNSAFE_ACL_ID, blank);
        zk.children.insert(quota_key.clone());
        zk.children.insert(config_key.clone());
        t.nodes.insert("/".into(), Arc::new(root));
        t.nodes.insert(zk_key, Arc::new(zk));
        t.nodes.insert(
            quota_key,
            Arc::new(Node::new(Some(Bytes::new()), OPEN_UNSAFE_ACL_ID, blank)),
        );
        // As ZooKeeper: world-readable, set with aversion -1.
        let cfg_acl = t.acls.intern(&[Acl::new(perms::READ, "world", "anyone")]);
        let mut cfg_stat = blank;
        cfg_stat.aversion = -1;
        t.nodes.insert(
            config_key,
            Arc::new(Node::new(Some(Bytes::new()), cfg_acl, cfg_stat)),
        );
        t.digest = t.compute_digest();
        t
    }

    // ---- queries ----

    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    pub fn acl_of(&self, node: &Node) -> Arc<Vec<Acl>> {
        self.acls.get(node.acl)
    }

    pub fn acl_cache(&self) -> &AclCache {
        &self.acls
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Approximate data size in bytes (paths and data), as `mntr` reports.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    pub fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = zxid;
    }

    pub fn sessions(&self) -> &HashMap<i64, i32> {
        &self.sessions
    }

    pub fn ephemerals(&self, session: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session).into_iter().flatten()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    pub fn ephemerals_by_session(&self) -> &HashMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of descendants of `path` (not counting it).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut n = 0;
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(p.as_str()) {
                for c in node.children.paths() {
                    n += 1;
                    stack.push(c.to_string());
                }
            }
        }
        n
    }

    /// Empty containers that once had children, containers never used for
    /// longer than `max_never_used_ms` (0: never), and TTL nodes without
    /// children whose mtime is older than their TTL.
    pub fn expiry_candidates(&self, now: i64, max_never_used_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.containers {
            if let Some(n) = self.nodes.get(p.as_str()) {
                if n.children.is_empty()
                    && (n.stat.cversion > 0
                        || (max_never_used_ms != 0 && now - n.stat.mtime > max_never_used_ms))
                {
                    out.push(p.clone());
                }
            }
        }
        for p in &self.ttls {
            if let Some(n) = self.nodes.get(p.as_str()) {
                if let OwnerKind::Ttl(ttl) = owner_kind(n.stat.ephemeral_owner, self.extended_types)
                {
                    if n.children.is_empty() && ttl != 0 && now - n.stat.mtime > ttl {
                        out.push(p.clone());
                    }
                }
            }
        }
        out.sort();
        out
    }

    // ---- watches ----

    pub fn add_data_watch(&mut self, path: &str, w: WatcherId) {
        self.data_watches.add(path, w, Mode::Standard);
    }

    pub fn add_child_watch(&mut self, path: &str, w: WatcherId) {
        self.child_watches.add(path, w, Mode::Standard);
    }

    /// addWatch: persistent watches go in both tables, as in ZooKeeper.
    pub fn add_persistent_watch(&mut self, path: &str, w: WatcherId, recursive: bool) {
        let mode = if recursive {
            Mode::PersistentRecursive
        } else {
            Mode::Persistent
        };
        self.data_watches.add(path, w, mode);
        self.child_watches.add(path, w, mode);
    }

    pub fn data_watches(&self) -> &WatchTable {
        &self.data_watches
    }

    pub fn child_watches(&self) -> &WatchTable {
        &self.child_watches
    }

    pub fn data_watches_mut(&mut self) -> &mut WatchTable {
        &mut self.data_watches
    }

    pub fn child_watches_mut(&mut self) -> &mut WatchTable {
        &mut self.child_watches
    }

    /// A copy of the state a snapshot holds, without watches or pending
    /// notifications (which belong to connections, not to the data).
    pub fn snapshot_copy(&self) -> DataTree {
        DataTree {
            nodes: self.nodes.clone(),
            acls: self.acls.clone(),
            ephemerals: self.ephemerals.clone(),
            containers: self.containers.clone(),
            ttls: self.ttls.clone(),
            sessions: self.sessions.clone(),
            data_watches: WatchTable::default(),
            child_watches: WatchTable::default(),
            fired: Vec::new(),
            triggers: Vec::new(),
            last_zxid: self.last_zxid,
            data_bytes: self.data_bytes,
            digest: self.digest,
            extended_types: self.extended_types,
        }
    }

    /// Moves every registered watch of `old` into this tree (the server
    /// reloads its tree from disk without dropping its clients' watches).
    pub fn adopt_watches(&mut self, old: &mut DataTree) {
        self.data_watches = std::mem::take(&mut old.data_watches);
        self.child_watches = std::mem::take(&mut old.child_watches);
    }

    pub fn remove_watcher(&mut self, w: WatcherId) {
        self.data_watches.remove_watcher(w);
        self.child_watches.remove_watcher(w);
    }

    pub fn watch_count(&self) -> usize {
        self.data_watches.count() + self.child_watches.count()
    }

    /// Notifications produced since the last call, in the order they fired.
    pub fn take_fired(&mut self) -> Vec<Fired> {
        std::mem::take(&mut self.fired)
    }

    /// (event type, watchers notified) of each trigger since the last call.
    pub fn take_triggers(&mut self) -> Vec<(i32, usize)> {
        std::mem::take(&mut self.triggers)
    }

    /// Queues an event for one watcher without touching the tables
    /// (setWatches reporting what a reconnecting client missed).
    pub fn push_fired(&mut self, watcher: WatcherId, event_type: i32, path: &str) {
        let acl = match self.nodes.get(path) {
            Some(n) => self.acls.get(n.acl),
            // A deleted node: nothing to restrict delivery on.
            None => Arc::new(Vec::new()),
        };
        self.fired.push(Fired {
            watcher,
            event_type,
            path: path.to_owned(),
            acl,
        });
    }

    fn trigger(
        &mut self,
        data: bool,
        path: &str,
        event_type: i32,
        acl: &Arc<Vec<Acl>>,
        suppress: &HashSet<WatcherId>,
    ) -> HashSet<WatcherId> {
        let table = if data {
            &mut self.data_watches
        } else {
            &mut self.child_watches
        };
        let fired = table.trigger(path, event_type, suppress);
        if !fired.is_empty() {
            self.triggers.push((event_type, fired.len()));
        }
        let mut ws: Vec<_> = fired.iter().copied().collect();
        ws.sort_unstable();
        for w in ws {
            self.fired.push(Fired {
                watcher: w,
                event_type,
                path: path.to_owned(),
                acl: acl.clone(),
            });
        }
        fired
    }

    // ---- applying txns ----

    /// Applies one txn. Errors (which replay of a fuzzy snapshot can meet)
    /// are reported in the result, never panic.
    pub fn apply(&mut self, hdr: &TxnHeader, body: &TxnBody) -> ApplyResult {
        let mut rc = ApplyResult {
            op: hdr.op,
            ..Default::default()
        };
        let r = self.apply_body(hdr, body, &mut rc);
        if let Err(e) = r {
            rc.err = e.code();
        }
        if hdr.zxid > self.last_zxid {
            self.last_zxid = hdr.zxid;
        }
        rc
    }

    fn apply_body(
        &mut self,
        hdr: &TxnHeader,
        body: &TxnBody,
        rc: &mut ApplyResult,
    ) -> Result<(), ErrorCode> {
        match body {
            TxnBody::Create(_)
            | TxnBody::Create2(_)
            | TxnBody::CreateContainer(_)
            | TxnBody::CreateTtl(_) => {
                // The three create txns differ only in the owner they imply.
                let (path, data, acl, owner, parent_cversion) = match body {
                    TxnBody::Create(t) | TxnBody::Create2(t) => {
                        let owner = if t.ephemeral { hdr.client_id } else { 0 };
                        (&t.path, &t.data, &t.acl, owner, t.parent_cversion)
                    }
                    TxnBody::CreateContainer(t) => {
                        (&t.path, &t.data, &t.acl, CONTAINER_OWNER, t.parent_cversion)
                    }
                    TxnBody::CreateTtl(t) => (
                        &t.path,
                        &t.data,
                        &t.acl,
                        ttl_owner(t.ttl),
                        t.parent_cversion,
                    ),
                    _ => unreachable!("matched above"),
                };
                rc.path = path.clone();
                rc.stat = Some(self.create_node(
                    path,
                    data.clone(),
                    acl,
                    owner,
                    parent_cversion,
                    hdr.zxid,
                    hdr.time,
                )?);
            }
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => {
                rc.path = t.path.clone();
                self.delete_node(&t.path, hdr.zxid)?;
            }
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
                rc.path = t.path.clone();
                rc.stat =
                    Some(self.set_data(&t.path, t.data.clone(), t.version, hdr.zxid, hdr.time)?);
            }
            TxnBody::SetAcl(t) => {
                rc.path = t.path.clone();
                rc.stat = Some(self.set_acl(&t.path, &t.acl, t.version)?);
            }
            TxnBody::Check(t) => {
                rc.path = t.path.clone();
            }
            TxnBody::CreateSession(t) => {
                self.sessions.insert(hdr.client_id, t.time_out);
            }
            TxnBody::CloseSession(t) => {
                let mut paths: BTreeSet<String> =
                    self.ephemerals.remove(&hdr.client_id).unwrap_or_default();
                paths.extend(t.paths_to_delete.iter().cloned());
                // Deepest first cannot matter for ephemerals (no children),
                // but reverse order keeps it safe for any list given.
                for p in paths.iter().rev() {
                    let _ = self.delete_node(p, hdr.zxid);
                }
                self.sessions.remove(&hdr.client_id);
            }
            TxnBody::Error(t) => {
                rc.err = t.err;
            }
            TxnBody::Multi(subs) => {
                let failed = subs.iter().any(|s| matches!(s, TxnBody::Error(_)));
                let mut post_failed = false;
                for s in subs {
                    let sub_rc = if failed {
                        // A failed multi applies nothing: ops before the
                        // failing one report OK, those after it
                        // RuntimeInconsistency, as ZooKeeper does.
                        let err = match s {
                            TxnBody::Error(e) => {
                                post_failed = true;
                                e.err
                            }
                            _ if post_failed => ErrorCode::RuntimeInconsistency.code(),
                            _ => ErrorCode::Ok.code(),
                        };
                        ApplyResult {
                            op: jute::consts::op::ERROR,
                            err,
                            ..Default::default()
                        }
                    } else {
                        let sub_hdr = TxnHeader { op: s.op(), ..*hdr };
                        let mut sub_rc = ApplyResult {
                            op: s.op(),
                            ..Default::default()
                        };
                        if let Err(e) = self.apply_body(&sub_hdr, s, &mut sub_rc) {
                            sub_rc.err = e.code();
                        }
                        sub_rc
                    };
                    if sub_rc.err != 0 && rc.err == 0 {
                        rc.err = sub_rc.err;
                    }
                    rc.multi.push(sub_rc);
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let parent_path = path::parent(path).ok_or(ErrorCode::NoNode)?;
        let parent =
            crate::tree::node_mut(&mut self.nodes, parent_path).ok_or(ErrorCode::NoNode)?;
        // Interned before the existence check, as ZooKeeper does: replaying
        // a create over a fuzzy snapshot whose node refers to an ACL the
        // snapshot's ACL map lacks then adds that ACL under the same id.
        let acl_id = self.acls.intern(acl);
        if parent.children.contains(path) {
            return Err(ErrorCode::NodeExists);
        }
        let before = crate::digest::of(parent_path, parent);
        let cversion = if parent_cversion == -1 {
            parent.stat.cversion + 1
        } else {
            parent_cversion
        };
        // Replaying txns over a fuzzy snapshot may meet a newer parent.
        if cversion > parent.stat.cversion {
            parent.stat.cversion = cversion;
            parent.stat.pzxid = zxid;
        }
        let key: Arc<str> = path.into();
        parent.children.insert(key.clone());
        self.digest = self.digest.wrapping_sub(before);
        self.digest = self
            .digest
            .wrapping_add(crate::digest::of(parent_path, parent));
        let parent_acl = parent.acl;
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        let data_len = data.as_ref().map_or(0, Bytes::len);
        self.data_bytes += (path.len() + data_len) as u64;
        let node = Node::new(data, acl_id, stat);
        self.digest = self.digest.wrapping_add(crate::digest::of(path, &node));
        let out = node.stat(self.extended_types);
        if let Some(old) = self.nodes.insert(key, Arc::new(node)) {
            // An orphan left by deleting a parent that had children (which
            // prep refuses): replaced, as NodeHashMapImpl.put does.
            self.digest = self.digest.wrapping_sub(crate::digest::of(path, &old));
        }
        match owner_kind(owner, self.extended_types) {
            OwnerKind::Container => {
                self.containers.insert(path.to_owned());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.to_owned());
            }
            OwnerKind::Ephemeral(s) => {
                self.ephemerals
                    .entry(s)
                    .or_default()
                    .insert(path.to_owned());
            }
            OwnerKind::Persistent => {}
        }
        self.quota_on_create(path, data_len);
        let acl = self.acls.get(acl_id);
        let parent_acl = self.acls.get(parent_acl);
        let none = HashSet::new();
        self.trigger(true, path, event::NODE_CREATED, &acl, &none);
        self.trigger(
            false,
            parent_path,
            event::NODE_CHILDREN_CHANGED,
            &parent_acl,
            &none,
        );
        Ok(out)
    }

    fn delete_node(&mut self, path: &str, zxid: i64) -> Result<(), ErrorCode> {
        let parent_path = path::parent(path).ok_or(ErrorCode::NoNode)?;
        let parent =
            crate::tree::node_mut(&mut self.nodes, parent_path).ok_or(ErrorCode::NoNode)?;
        let before = crate::digest::of(parent_path, parent);
        parent.children.remove(path);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        self.digest = self.digest.wrapping_sub(before);
        self.digest = self
            .digest
            .wrapping_add(crate::digest::of(parent_path, parent));
        let parent_acl = parent.acl;
        let node = self.nodes.remove(path).ok_or(ErrorCode::NoNode)?;
        self.digest = self.digest.wrapping_sub(crate::digest::of(path, &node));
        self.data_bytes = self
            .data_bytes
            .saturating_sub((path.len() + node.data_len()) as u64);
        self.quota_on_delete(path, node.data_len());
        let acl = self.acls.get(node.acl);
        self.acls.release(node.acl);
        match owner_kind(node.stat.ephemeral_owner, self.extended_types) {
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            OwnerKind::Persistent => {}
        }
        let parent_acl = self.acls.get(parent_acl);
        let none = HashSet::new();
        let processed = self.trigger(true, path, event::NODE_DELETED, &acl, &none);
        self.trigger(false, path, event::NODE_DELETED, &acl, &processed);
        self.trigger(
            false,
            parent_path,
            event::NODE_CHILDREN_CHANGED,
            &parent_acl,
            &none,
        );
        Ok(())
    }

    /// /zookeeper/config as an ensemble member holds it
    /// (ZKDatabase.initConfigInZKDatabase): the configuration's text, mzxid
    /// its version, version -1. Not a txn: every member sets it from its own
    /// configuration whenever it loads or receives a tree.
    pub fn set_config_node(&mut self, text: &str, config_version: i64, time: i64) {
        if let Some(n) = crate::tree::node_mut(&mut self.nodes, CONFIG) {
            let old_len = n.data_len();
            let before = crate::digest::of(CONFIG, n);
            n.data = Some(Bytes::copy_from_slice(text.as_bytes()));
            n.stat.mtime = time;
            n.stat.mzxid = config_version;
            n.stat.version = -1;
            let new_len = n.data_len();
            self.data_bytes = (self.data_bytes + new_len as u64).saturating_sub(old_len as u64);
            self.digest = self.digest.wrapping_sub(before);
            self.digest = self.digest.wrapping_add(crate::digest::of(CONFIG, n));
        }
    }

    fn set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let n = crate::tree::node_mut(&mut self.nodes, path).ok_or(ErrorCode::NoNode)?;
        let new_len = data.as_ref().map_or(0, Bytes::len);
        let old_len = n.data_len();
        self.data_bytes = (self.data_bytes + new_len as u64).saturating_sub(old_len as u64);
        let before = crate::digest::of(path, n);
        n.data = data;
        n.stat.mtime = time;
        n.stat.mzxid = zxid;
        n.stat.version = version;
        self.digest = self.digest.wrapping_sub(before);
        self.digest = self.digest.wrapping_add(crate::digest::of(path, n));
        let stat = n.stat(self.extended_types);
        let acl = self.acls.get(n.acl);
        self.quota_on_set_data(path, old_len, new_len);
        self.trigger(true, path, event::NODE_DATA_CHANGED, &acl, &HashSet::new());
        Ok(stat)
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let old = self.nodes.get(path).ok_or(ErrorCode::NoNode)?.acl;
        self.acls.release(old);
        let id = self.acls.intern(acl);
        let n = crate::tree::node_mut(&mut self.nodes, path).expect("checked above");
        n.acl = id;
        let before = crate::digest::of(path, n);
        n.stat.aversion = version;
        self.digest = self.digest.wrapping_sub(before);
        self.digest = self.digest.wrapping_add(crate::digest::of(path, n));
        Ok(n.stat(self.extended_types))
    }
}
