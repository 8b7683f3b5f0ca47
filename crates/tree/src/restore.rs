//! The tree as ZooKeeper's snapshots hold it (`DataTree.serialize` /
//! `deserialize`): nodes in pre-order from the root, the root named "",
//! every parent before its children; and the builder that rebuilds a tree
//! from those records, with the ACL ids and reference counts, the
//! ephemeral/container/TTL indexes, the sessions and the digest.
//! No I/O here: the storage crate reads and writes the bytes.

use std::sync::Arc;

use bytes::Bytes;
use jute::data::{Acl, StatPersisted};

use crate::acl::AclCache;
use crate::tree::{owner_kind, Children, DataTree, Node, OwnerKind, CONFIG, QUOTA, ZOOKEEPER};

/// Why snapshot records do not make a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError(pub String);

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RestoreError {}

/// Pre-order walk of the tree for a snapshot: yields (path as the snapshot
/// stores it, node), the root first as "", children in name order.
pub struct SnapshotNodes<'a> {
    tree: &'a DataTree,
    stack: Vec<Arc<str>>,
}

impl<'a> Iterator for SnapshotNodes<'a> {
    type Item = (String, &'a Node);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let path = self.stack.pop()?;
            // A child name without a node cannot happen; skip it as
            // ZooKeeper's serializeNode does.
            let Some(node) = self.tree.nodes.get(&*path) else {
                continue;
            };
            self.stack.extend(node.children.paths().rev().cloned());
            let out = if &*path == "/" {
                String::new()
            } else {
                path.to_string()
            };
            return Some((out, node));
        }
    }
}

/// Rebuilds a tree from a snapshot's records, in the file's order: sessions
/// and the ACL map (`new`), then the nodes, root first (`node`), then
/// `finish`.
pub struct SnapshotBuilder {
    tree: DataTree,
    have_root: bool,
    unknown_acl_refs: usize,
    /// The nodes read so far, in file order. The map is built once, in
    /// `finish`, at its final size: growing it while reading rehashed
    /// every key at each doubling (a fifth of a restart with 1M nodes).
    read: Vec<(Arc<str>, Arc<Node>)>,
    /// The path from the root to the last node (index into `read`), each
    /// with the names of its children seen so far. Snapshots are written
    /// depth first, so a node's parent is on this path: its children are
    /// gathered here and each set is built once, in bulk, when the walk
    /// leaves the parent.
    open: Vec<(usize, Vec<Arc<str>>)>,
    /// Path -> index into `read`, built only if a node's parent is not on
    /// the open path (a snapshot not written depth first).
    index: Option<std::collections::HashMap<Arc<str>, usize, ahash::RandomState>>,
}

impl DataTree {
    /// The nodes in the order a snapshot stores them.
    pub fn snapshot_nodes(&self) -> SnapshotNodes<'_> {
        SnapshotNodes {
            tree: self,
            stack: vec!["/".into()],
        }
    }

    /// The paths of container nodes.
    pub fn container_paths(&self) -> &std::collections::HashSet<String> {
        &self.containers
    }

    /// The paths of TTL nodes (only when extended types are enabled).
    pub fn ttl_paths(&self) -> &std::collections::HashSet<String> {
        &self.ttls
    }

    /// Starts rebuilding a tree from a snapshot whose ACL map is `acls`
    /// (ids kept as stored). `extended_types` decides whether TTL owners
    /// are TTLs or plain session ids, as `EphemeralType.get` does.
    pub fn from_snapshot(extended_types: bool, acls: Vec<(i64, Vec<Acl>)>) -> SnapshotBuilder {
        let mut tree = DataTree::new(extended_types);
        tree.nodes.clear();
        tree.acls = AclCache::from_snapshot(acls);
        tree.ephemerals.clear();
        tree.containers.clear();
        tree.ttls.clear();
        tree.sessions.clear();
        tree.data_bytes = 0;
        tree.digest = 0;
        tree.last_zxid = 0;
        SnapshotBuilder {
            tree,
            have_root: false,
            unknown_acl_refs: 0,
            read: Vec::new(),
            open: Vec::new(),
            index: None,
        }
    }
}

/// The nodes `DataTree::new` makes, whose paths `data_bytes` leaves out.
fn builtin(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER | QUOTA | CONFIG)
}

impl SnapshotBuilder {
    /// A session and its timeout (ms).
    pub fn session(&mut self, id: i64, timeout: i32) {
        self.tree.sessions.insert(id, timeout);
    }

    /// The next node record. `path` is as stored: "" for the root, which
    /// must come first; every other node after its parent.
    pub fn node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: i64,
        stat: StatPersisted,
    ) -> Result<(), RestoreError> {
        let key: Arc<str> = if path.is_empty() {
            if self.have_root {
                return Err(RestoreError("the root appears twice".into()));
            }
            "/".into()
        } else {
            let key: Arc<str> = path.into();
            if !self.have_root {
                return Err(RestoreError(format!("node {path:?} comes before the root")));
            }
            let Some(slash) = path.rfind('/') else {
                return Err(RestoreError(format!("bad path {path:?}")));
            };
            let (parent, name) = (&path[..slash], &path[slash + 1..]);
            let parent = if parent.is_empty() { "/" } else { parent };
            if name.is_empty() {
                return Err(RestoreError(format!("bad path {path:?}")));
            }
            let read = &self.read;
            if let Some(at) = self.open.iter().rposition(|(i, _)| &*read[*i].0 == parent) {
                self.close_above(at)?;
                self.open[at].1.push(key.clone());
            } else {
                // Not depth first (or the parent's walk was left): the
                // slow way, straight into the parent's set.
                let index = self.index.get_or_insert_with(|| {
                    read.iter()
                        .enumerate()
                        .map(|(i, (k, _))| (k.clone(), i))
                        .collect()
                });
                let Some(&i) = index.get(parent) else {
                    return Err(RestoreError(format!(
                        "parent {parent:?} of {path:?} is missing"
                    )));
                };
                if !Arc::make_mut(&mut self.read[i].1)
                    .children
                    .insert(key.clone())
                {
                    return Err(RestoreError(format!("node {path:?} appears twice")));
                }
            }
            key
        };
        self.open.push((self.read.len(), Vec::new()));
        if let Some(index) = self.index.as_mut() {
            index.insert(key.clone(), self.read.len());
        }
        let t = &mut self.tree;
        // An id the map lacks is kept without a reference, as ZooKeeper
        // does: a fuzzy snapshot writes the ACL map before the nodes, so a
        // node created meanwhile can name an ACL the map lacks; replaying
        // its create adds that ACL under the same id (ids are allocated in
        // order from the largest in the map). Until then it grants nothing.
        if !t.acls.add_usage(acl) {
            self.unknown_acl_refs += 1;
        }
        let node = Node {
            data,
            acl,
            stat,
            children: Children::default(),
        };
        t.digest = t.digest.wrapping_add(crate::digest::of(&key, &node));
        let key_str: &str = &key;
        let path_len = if builtin(key_str) { 0 } else { key.len() };
        t.data_bytes += (path_len + node.data_len()) as u64;
        if key_str != "/" {
            match owner_kind(stat.ephemeral_owner, t.extended_types) {
                OwnerKind::Container => {
                    t.containers.insert(key_str.to_owned());
                }
                OwnerKind::Ttl(_) => {
                    t.ttls.insert(key_str.to_owned());
                }
                OwnerKind::Ephemeral(s) => {
                    t.ephemerals
                        .entry(s)
                        .or_default()
                        .insert(key_str.to_owned());
                }
                OwnerKind::Persistent => {}
            }
        }
        // A duplicate is found when the map is built (`finish`).
        self.read.push((key, Arc::new(node)));
        self.have_root = true;
        Ok(())
    }

    /// Leaves the walk below `open[at]`: each node's gathered children
    /// become its set. A node that appears twice shows here, as a child
    /// its parent already has (a node's parent is always open before it).
    fn close_above(&mut self, at: usize) -> Result<(), RestoreError> {
        while self.open.len() > at + 1 {
            let (i, names) = self.open.pop().expect("len checked");
            self.close(i, names)?;
        }
        Ok(())
    }

    fn close(&mut self, i: usize, names: Vec<Arc<str>>) -> Result<(), RestoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let (parent, node) = &mut self.read[i];
        let children = &mut Arc::make_mut(node).children;
        let want = children.len() + names.len();
        children.extend(names);
        if children.len() == want {
            return Ok(());
        }
        Err(RestoreError(format!(
            "a child of {:?} appears twice",
            &**parent
        )))
    }

    /// How many nodes so far name an ACL id the snapshot's map lacks.
    pub fn unknown_acl_refs(&self) -> usize {
        self.unknown_acl_refs
    }

    /// The tree, as of `last_zxid`; ACLs no node refers to are dropped.
    /// Its map has room for `extra` more nodes (what the caller is about
    /// to create by replaying the txn log), so that no growth rehashes it.
    pub fn finish(mut self, last_zxid: i64, extra: usize) -> Result<DataTree, RestoreError> {
        if !self.have_root {
            return Err(RestoreError("the snapshot has no root node".into()));
        }
        if !self.open.is_empty() {
            self.close_above(0)?;
            let (i, names) = self.open.pop().expect("not empty");
            self.close(i, names)?;
        }
        self.index = None;
        let mut nodes = std::collections::HashMap::with_capacity_and_hasher(
            self.read.len() + extra,
            ahash::RandomState::default(),
        );
        for (key, node) in std::mem::take(&mut self.read) {
            match nodes.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    return Err(RestoreError(format!("node {:?} appears twice", &**e.key())));
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(node);
                }
            }
        }
        self.tree.nodes = nodes;
        self.tree.acls.purge_unused();
        self.tree.recount_all_quotas();
        self.tree.last_zxid = last_zxid;
        Ok(self.tree)
    }
}
