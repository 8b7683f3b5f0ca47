//! The tree as ZooKeeper's snapshots hold it (`DataTree.serialize` /
//! `deserialize`): nodes in pre-order from the root, the root named "",
//! every parent before its children; and the builder that rebuilds a tree
//! from those records, with the ACL ids and reference counts, the
//! ephemeral/container/TTL indexes, the sessions and the digest.
//! No I/O here: the storage crate reads and writes the bytes.

use jute::data::{Acl, StatPersisted};

use crate::acl::AclCache;
use crate::store::{self, Node, Store, ROOT};
use crate::tree::{owner_kind, DataTree, OwnerKind, CONFIG, QUOTA, ZOOKEEPER};

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
/// stores it, node), the root first as "", every parent before its
/// children (which come in no particular order, as in ZooKeeper).
pub struct SnapshotNodes<'a> {
    tree: &'a DataTree,
    /// Nodes to visit, each with the length of its parent's path.
    stack: Vec<(u32, usize)>,
    path: String,
}

impl<'a> Iterator for SnapshotNodes<'a> {
    type Item = (String, Node<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (id, base) = self.stack.pop()?;
        let nodes = &self.tree.nodes;
        self.path.truncate(base);
        if id != ROOT {
            self.path.push('/');
            self.path.push_str(nodes.name(id));
        }
        let len = self.path.len();
        self.stack
            .extend(nodes.children(id).iter().rev().map(|&c| (c, len)));
        Some((self.path.clone(), nodes.get(id)?))
    }
}

/// Rebuilds a tree from a snapshot's records, in the file's order: sessions
/// and the ACL map (`new`), then the nodes, root first (`node`), then
/// `finish`.
pub struct SnapshotBuilder {
    tree: DataTree,
    have_root: bool,
    unknown_acl_refs: usize,
    /// The path from the root to the last node read, with ids. Snapshots
    /// are written depth first, so a node's parent is on it, and the
    /// node index is built once, at its final size, in `finish` (growing it
    /// while reading rehashed every key at each doubling).
    open: Vec<(String, u32)>,
    /// Set once a node's parent was not on the open path (a snapshot not
    /// written depth first): the index is built then, and kept current.
    indexed: bool,
}

impl DataTree {
    /// The nodes in the order a snapshot stores them.
    pub fn snapshot_nodes(&self) -> SnapshotNodes<'_> {
        SnapshotNodes {
            tree: self,
            stack: vec![(ROOT, 0)],
            path: String::new(),
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
        tree.nodes = Store::new(store::encode("", None, 0, &StatPersisted::default(), None));
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
            open: Vec::new(),
            indexed: false,
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
        data: Option<&[u8]>,
        acl: i64,
        stat: StatPersisted,
    ) -> Result<(), RestoreError> {
        let key = if path.is_empty() { "/" } else { path };
        let crc = crate::digest::cached_crc(key, data);
        let id = if path.is_empty() {
            if self.have_root {
                return Err(RestoreError("the root appears twice".into()));
            }
            self.tree
                .nodes
                .replace(ROOT, store::encode("", data, acl, &stat, crc));
            ROOT
        } else {
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
            let blob = store::encode(name, data, acl, &stat, crc);
            let nodes = &mut self.tree.nodes;
            match self.open.iter().rposition(|(p, _)| p == parent) {
                Some(at) if !self.indexed => {
                    self.open.truncate(at + 1);
                    nodes.insert_unindexed(self.open[at].1, blob)
                }
                _ => {
                    // Not depth first: the slow way, through the index.
                    if !self.indexed {
                        nodes
                            .build_index(0)
                            .map_err(|p| RestoreError(format!("node {p:?} appears twice")))?;
                        self.indexed = true;
                    }
                    let Some(p) = nodes.lookup(parent) else {
                        return Err(RestoreError(format!(
                            "parent {parent:?} of {path:?} is missing"
                        )));
                    };
                    nodes
                        .insert(p, blob)
                        .ok_or_else(|| RestoreError(format!("node {path:?} appears twice")))?
                }
            }
        };
        if !self.indexed {
            self.open.push((key.to_owned(), id));
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
        t.digest = t
            .digest
            .wrapping_add(crate::digest::digest_with(key, data, crc, &stat));
        let path_len = if builtin(key) { 0 } else { key.len() };
        t.data_bytes += (path_len + data.map_or(0, <[u8]>::len)) as u64;
        if key != "/" {
            match owner_kind(stat.ephemeral_owner, t.extended_types) {
                OwnerKind::Container => {
                    t.containers.insert(key.to_owned());
                }
                OwnerKind::Ttl(_) => {
                    t.ttls.insert(key.to_owned());
                }
                OwnerKind::Ephemeral(s) => {
                    t.ephemerals.entry(s).or_default().insert(key.to_owned());
                }
                OwnerKind::Persistent => {}
            }
        }
        self.have_root = true;
        Ok(())
    }

    /// How many nodes so far name an ACL id the snapshot's map lacks.
    pub fn unknown_acl_refs(&self) -> usize {
        self.unknown_acl_refs
    }

    /// The tree, as of `last_zxid`; ACLs no node refers to are dropped.
    /// Its index has room for `extra` more nodes (what the caller is about
    /// to create by replaying the txn log), so that no growth rehashes it.
    pub fn finish(mut self, last_zxid: i64, extra: usize) -> Result<DataTree, RestoreError> {
        if !self.have_root {
            return Err(RestoreError("the snapshot has no root node".into()));
        }
        if !self.indexed {
            self.tree
                .nodes
                .build_index(extra)
                .map_err(|p| RestoreError(format!("node {p:?} appears twice")))?;
        }
        self.tree.acls.purge_unused();
        self.tree.recount_all_quotas();
        self.tree.last_zxid = last_zxid;
        Ok(self.tree)
    }
}
