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
pub use crate::store::Node;
use crate::store::{self, Store, ROOT};
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

/// Data in an allocation of its own, for a txn made from a request (in
/// prep) or replayed from the log: decoded data is a slice of the
/// connection's read buffer (or the log's), and a txn kept for a while
/// (prep's pending changes, an ensemble member's recent history) holding
/// that slice would keep the whole buffer, every request read with it,
/// alive. (Nodes copy their data into their own encoding.) Txns a
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

impl Node<'_> {
    pub fn data_len(&self) -> usize {
        self.data.map_or(0, <[u8]>::len)
    }

    /// The Stat clients see, as ZooKeeper's `DataNode.copyStat` makes it:
    /// the stored cversion counts creates only, so clients get creates plus
    /// deletes (`2 * cversion - numChildren`); containers and TTL nodes show
    /// no ephemeral owner.
    pub fn stat(&self, extended_types: bool) -> Stat {
        let s = &self.stat;
        let num_children = self.num_children as i32;
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

    /// The data as a buffer of its own (a reply outlives the tree's lock).
    pub fn data_bytes(&self) -> Option<Bytes> {
        self.data.map(Bytes::copy_from_slice)
    }
}

/// A watch notification produced by applying a txn or by setWatches: one
/// event for each of `watchers` (one record for all of a fan-out's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub event_type: i32,
    pub path: String,
    /// The ACL of the node the event is about: delivery needs READ on it.
    pub acl: Arc<Vec<Acl>>,
    /// In id order.
    pub watchers: Vec<WatcherId>,
}

/// The outcome of one txn (or one op of a multi).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyResult {
    pub op: i32,
    pub err: i32,
    /// The created node's path, for a create's reply; empty for other
    /// txns (a copy per write that nothing read).
    pub path: String,
    pub stat: Option<Stat>,
    pub multi: Vec<ApplyResult>,
}

#[derive(Debug, Clone)]
pub struct DataTree {
    // pub(crate): snapshot restore and digest live in sibling modules.
    /// The znodes (store.rs): a snapshot's copy of them costs tables of
    /// pointers, not a second tree.
    pub(crate) nodes: Store,
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
    /// How many quota limits nodes (`/zookeeper/quota/<path>/zookeeper_limits`)
    /// the tree holds: with none, a write looks no quota root up.
    pub(crate) quota_limits: usize,
    /// The tree digest (digest.rs), kept current by every change.
    pub(crate) digest: i64,
    /// ZooKeeper's digest log: (zxid, digest) after each txn whose zxid is
    /// a multiple of 128, the newest 1024 (`hash` shows them, so servers
    /// can be compared at the same zxids).
    pub(crate) digest_log: std::collections::VecDeque<(i64, i64)>,
    pub extended_types: bool,
}

/// ZooKeeper's DIGEST_LOG_INTERVAL and DIGEST_LOG_LIMIT.
const DIGEST_LOG_INTERVAL: i64 = 128;
const DIGEST_LOG_LIMIT: usize = 1024;

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new(false)
    }
}

impl DataTree {
    pub fn new(extended_types: bool) -> DataTree {
        let blank = StatPersisted::default();
        let mut t = DataTree {
            nodes: Store::new(store::encode(
                "",
                Some(b""),
                OPEN_UNSAFE_ACL_ID,
                &blank,
                None,
            )),
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
            quota_limits: 0,
            digest: 0,
            digest_log: Default::default(),
            extended_types,
        };
        let open = |name: &str| store::encode(name, Some(b""), OPEN_UNSAFE_ACL_ID, &blank, None);
        let zk = t
            .nodes
            .insert(ROOT, open("zookeeper"))
            .expect("empty store");
        t.nodes.insert(zk, open("quota")).expect("new");
        // As ZooKeeper: world-readable, set with aversion -1.
        let cfg_acl = t.acls.intern(&[Acl::new(perms::READ, "world", "anyone")]);
        let mut cfg_stat = blank;
        cfg_stat.aversion = -1;
        t.nodes
            .insert(
                zk,
                store::encode("config", Some(b""), cfg_acl, &cfg_stat, None),
            )
            .expect("new");
        t.digest = t.compute_digest();
        t
    }

    // ---- queries ----

    pub fn node(&self, path: &str) -> Option<Node<'_>> {
        self.nodes.get(self.nodes.lookup(path)?)
    }

    /// The names of a node's children (none if it does not exist), in no
    /// particular order, as ZooKeeper's.
    pub fn child_names(&self, path: &str) -> impl Iterator<Item = &str> {
        let ids = self
            .nodes
            .lookup(path)
            .map_or(&[][..], |id| self.nodes.children(id));
        ids.iter().map(|&c| self.nodes.name(c))
    }

    /// The full paths of a node's children.
    pub fn child_paths<'a>(&'a self, path: &'a str) -> impl Iterator<Item = String> + 'a {
        let base = if path == "/" { "" } else { path };
        self.child_names(path).map(move |n| format!("{base}/{n}"))
    }

    pub fn acl_of(&self, node: Node<'_>) -> Arc<Vec<Acl>> {
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

    /// Every node with its path, parents before children.
    pub fn nodes(&self) -> impl Iterator<Item = (String, Node<'_>)> {
        self.snapshot_nodes().map(|(p, n)| {
            let p = if p.is_empty() { "/".to_owned() } else { p };
            (p, n)
        })
    }

    /// Number of descendants of `path` (not counting it).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut n = 0;
        let mut stack: Vec<u32> = self.nodes.lookup(path).into_iter().collect();
        while let Some(id) = stack.pop() {
            let kids = self.nodes.children(id);
            n += kids.len();
            stack.extend_from_slice(kids);
        }
        n
    }

    /// Empty containers that once had children, containers never used for
    /// longer than `max_never_used_ms` (0: never), and TTL nodes without
    /// children whose mtime is older than their TTL.
    pub fn expiry_candidates(&self, now: i64, max_never_used_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.containers {
            if let Some(n) = self.node(p) {
                if n.num_children == 0
                    && (n.stat.cversion > 0
                        || (max_never_used_ms != 0 && now - n.stat.mtime > max_never_used_ms))
                {
                    out.push(p.clone());
                }
            }
        }
        for p in &self.ttls {
            if let Some(n) = self.node(p) {
                if let OwnerKind::Ttl(ttl) = owner_kind(n.stat.ephemeral_owner, self.extended_types)
                {
                    if n.num_children == 0 && ttl != 0 && now - n.stat.mtime > ttl {
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
            quota_limits: self.quota_limits,
            digest: self.digest,
            digest_log: Default::default(),
            extended_types: self.extended_types,
        }
    }

    /// Moves every registered watch of `old` into this tree (the server
    /// reloads its tree from disk without dropping its clients' watches).
    pub fn adopt_watches(&mut self, old: &mut DataTree) {
        self.data_watches = std::mem::take(&mut old.data_watches);
        self.child_watches = std::mem::take(&mut old.child_watches);
    }

    /// Forgets every watch of `w`; returns how many it had.
    pub fn remove_watcher(&mut self, w: WatcherId) -> usize {
        self.data_watches.remove_watcher(w) + self.child_watches.remove_watcher(w)
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
        let acl = match self.node(path) {
            Some(n) => self.acls.get(n.acl),
            // A deleted node: nothing to restrict delivery on.
            None => Arc::new(Vec::new()),
        };
        self.fired.push(Fired {
            event_type,
            path: path.to_owned(),
            acl,
            watchers: vec![watcher],
        });
    }

    fn trigger(
        &mut self,
        data: bool,
        path: &str,
        event_type: i32,
        acl: &Arc<Vec<Acl>>,
        suppress: &[WatcherId],
    ) {
        let table = if data {
            &mut self.data_watches
        } else {
            &mut self.child_watches
        };
        let fired = table.trigger(path, event_type, suppress);
        if fired.is_empty() {
            return;
        }
        self.triggers.push((event_type, fired.len()));
        self.fired.push(Fired {
            event_type,
            path: path.to_owned(),
            acl: acl.clone(),
            watchers: fired,
        });
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
        if hdr.zxid % DIGEST_LOG_INTERVAL == 0 {
            if self.digest_log.len() == DIGEST_LOG_LIMIT {
                self.digest_log.pop_front();
            }
            self.digest_log.push_back((hdr.zxid, self.digest));
        }
        rc
    }

    /// The digest log, oldest first.
    pub fn digest_log(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.digest_log.iter().copied()
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
                self.delete_node(&t.path, hdr.zxid)?;
            }
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
                rc.stat =
                    Some(self.set_data(&t.path, t.data.clone(), t.version, hdr.zxid, hdr.time)?);
            }
            TxnBody::SetAcl(t) => {
                rc.stat = Some(self.set_acl(&t.path, &t.acl, t.version)?);
            }
            TxnBody::Check(_) => {}
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

    /// Re-encodes node `id` at `path` with its Stat and ACL id as `f`
    /// leaves them and `data` if given, keeping the digest current.
    pub(crate) fn change(
        &mut self,
        id: u32,
        path: &str,
        data: Option<Option<&[u8]>>,
        f: impl FnOnce(&mut StatPersisted, &mut i64),
    ) {
        let old = self.nodes.blob(id);
        let n = store::decode_blob(old);
        let before = crate::digest::of(path, &n);
        let (mut stat, mut acl) = (n.stat, n.acl);
        f(&mut stat, &mut acl);
        // Unchanged data keeps its CRC: a Stat-only change reads no data.
        let (data, crc) = match data {
            Some(d) => (d, crate::digest::cached_crc(path, d)),
            None => (n.data, n.crc),
        };
        let after = crate::digest::digest_with(path, data, crc, &stat);
        let b = store::encode(store::blob_name(old), data, acl, &stat, crc);
        self.nodes.replace(id, b);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
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
        let name = path::name(path);
        let parent = self.nodes.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        // Interned before the existence check, as ZooKeeper does: replaying
        // a create over a fuzzy snapshot whose node refers to an ACL the
        // snapshot's ACL map lacks then adds that ACL under the same id.
        let acl_id = self.acls.intern(acl);
        if name.is_empty() || self.nodes.child(parent, name).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        self.change(parent, parent_path, None, |s, _| {
            let cversion = if parent_cversion == -1 {
                s.cversion + 1
            } else {
                parent_cversion
            };
            // Replaying txns over a fuzzy snapshot may meet a newer parent.
            if cversion > s.cversion {
                s.cversion = cversion;
                s.pzxid = zxid;
            }
        });
        let parent_acl = self.nodes.get(parent).map_or(OPEN_UNSAFE_ACL_ID, |n| n.acl);
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
        let data = data.as_deref();
        let data_len = data.map_or(0, <[u8]>::len);
        self.data_bytes += (path.len() + data_len) as u64;
        let crc = crate::digest::cached_crc(path, data);
        self.digest = self
            .digest
            .wrapping_add(crate::digest::digest_with(path, data, crc, &stat));
        let id = self
            .nodes
            .insert(parent, store::encode(name, data, acl_id, &stat, crc))
            .expect("checked above");
        let out = self
            .nodes
            .get(id)
            .expect("inserted")
            .stat(self.extended_types);
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
        if crate::quota::is_limits_node(path) {
            self.quota_limits += 1;
        }
        self.quota_on_create(path, data_len);
        let acl = self.acls.get(acl_id);
        let parent_acl = self.acls.get(parent_acl);
        self.trigger(true, path, event::NODE_CREATED, &acl, &[]);
        self.trigger(
            false,
            parent_path,
            event::NODE_CHILDREN_CHANGED,
            &parent_acl,
            &[],
        );
        Ok(out)
    }

    fn delete_node(&mut self, path: &str, zxid: i64) -> Result<(), ErrorCode> {
        let parent_path = path::parent(path).ok_or(ErrorCode::NoNode)?;
        let parent = self.nodes.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        // The parent's pzxid moves even if the child is gone, as in
        // ZooKeeper (replay over a fuzzy snapshot).
        self.change(parent, parent_path, None, |s, _| {
            if zxid > s.pzxid {
                s.pzxid = zxid;
            }
        });
        let parent_acl = self.nodes.get(parent).map_or(OPEN_UNSAFE_ACL_ID, |n| n.acl);
        let id = self
            .nodes
            .child(parent, path::name(path))
            .ok_or(ErrorCode::NoNode)?;
        // Only replay of an inconsistent history deletes a parent (prep
        // refuses): its subtree goes with it.
        let (mut below, mut stack) = (Vec::new(), self.nodes.children(id).to_vec());
        while let Some(c) = stack.pop() {
            stack.extend_from_slice(self.nodes.children(c));
            below.push(c);
        }
        for &c in below.iter().rev() {
            let p = self.nodes.path_of(c);
            self.forget(c, &p);
        }
        let acl = self
            .acls
            .get(self.nodes.get(id).map_or(OPEN_UNSAFE_ACL_ID, |n| n.acl));
        self.forget(id, path);
        let parent_acl = self.acls.get(parent_acl);
        let before = self.fired.len();
        self.trigger(true, path, event::NODE_DELETED, &acl, &[]);
        // A watcher of both tables hears of the deletion once.
        let processed = self
            .fired
            .get(before)
            .map(|f| f.watchers.clone())
            .unwrap_or_default();
        self.trigger(false, path, event::NODE_DELETED, &acl, &processed);
        self.trigger(
            false,
            parent_path,
            event::NODE_CHILDREN_CHANGED,
            &parent_acl,
            &[],
        );
        Ok(())
    }

    /// Removes leaf `id` at `path` from the store, the digest, the size
    /// count, the quotas, the ACL counts and the owner indexes.
    fn forget(&mut self, id: u32, path: &str) {
        let b = self.nodes.remove(id);
        let node = store::decode_blob(b.body());
        self.acls.release(node.acl);
        self.digest = self.digest.wrapping_sub(crate::digest::of(path, &node));
        self.data_bytes = self
            .data_bytes
            .saturating_sub((path.len() + node.data_len()) as u64);
        self.quota_on_delete(path, node.data_len());
        if crate::quota::is_limits_node(path) {
            self.quota_limits -= 1;
        }
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
    }

    /// /zookeeper/config as an ensemble member holds it
    /// (ZKDatabase.initConfigInZKDatabase): the configuration's text, mzxid
    /// its version, version -1. Not a txn: every member sets it from its own
    /// configuration whenever it loads or receives a tree.
    pub fn set_config_node(&mut self, text: &str, config_version: i64, time: i64) {
        if let Some(id) = self.nodes.lookup(CONFIG) {
            let old_len = self.nodes.get(id).map_or(0, |n| n.data_len());
            self.change(id, CONFIG, Some(Some(text.as_bytes())), |s, _| {
                s.mtime = time;
                s.mzxid = config_version;
                s.version = -1;
            });
            self.data_bytes = (self.data_bytes + text.len() as u64).saturating_sub(old_len as u64);
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
        let id = self.nodes.lookup(path).ok_or(ErrorCode::NoNode)?;
        let new_len = data.as_ref().map_or(0, Bytes::len);
        let old_len = self.nodes.get(id).map_or(0, |n| n.data_len());
        self.data_bytes = (self.data_bytes + new_len as u64).saturating_sub(old_len as u64);
        self.change(id, path, Some(data.as_deref()), |s, _| {
            s.mtime = time;
            s.mzxid = zxid;
            s.version = version;
        });
        let n = self.nodes.get(id).expect("changed");
        let stat = n.stat(self.extended_types);
        let acl = self.acls.get(n.acl);
        self.quota_on_set_data(path, old_len, new_len);
        self.trigger(true, path, event::NODE_DATA_CHANGED, &acl, &[]);
        Ok(stat)
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let id = self.nodes.lookup(path).ok_or(ErrorCode::NoNode)?;
        let old = self.nodes.get(id).expect("found").acl;
        self.acls.release(old);
        let new = self.acls.intern(acl);
        self.change(id, path, None, |s, a| {
            *a = new;
            s.aversion = version;
        });
        Ok(self
            .nodes
            .get(id)
            .expect("changed")
            .stat(self.extended_types))
    }
}
