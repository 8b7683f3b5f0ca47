//! The tree digest of ZooKeeper 3.8 (`DigestCalculator`, digest version 2),
//! which its txn log entries and snapshots carry so that replicas can tell
//! when their trees diverge.
//!
//! Each node contributes the CRC32 of its path (the root as ""), its data
//! (when not null) and a 60-byte big-endian block of czxid, mzxid, pzxid,
//! ctime, mtime, version, cversion, aversion and ephemeralOwner. Nodes whose
//! path starts with "/zookeeper/" contribute nothing ("/zookeeper" itself
//! does). The tree digest is the wrapping sum over all nodes (`AdHash`), kept
//! up to date on every change: the changed node's old digest is taken out and
//! its new one added, as `NodeHashMapImpl.preChange`/`postChange` do.

use jute::data::StatPersisted;

use crate::tree::{DataTree, Node};

/// `DigestCalculator.DIGEST_VERSION`.
pub const DIGEST_VERSION: i32 = 2;

/// `ZooDefs.ZOOKEEPER_NODE_SUBTREE`: nodes below it are left out of the digest.
pub const ZOOKEEPER_NODE_SUBTREE: &str = "/zookeeper/";

/// The digest of one node, as `DigestCalculator.calculateDigest`. `path` may
/// name the root as "/" or "": both hash as "".
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> i64 {
    if path.starts_with(ZOOKEEPER_NODE_SUBTREE) {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut b = [0u8; 60];
    let longs = [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime];
    for (i, v) in longs.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    let ints = [stat.version, stat.cversion, stat.aversion];
    for (i, v) in ints.iter().enumerate() {
        b[40 + i * 4..44 + i * 4].copy_from_slice(&v.to_be_bytes());
    }
    b[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(path.as_bytes());
    if let Some(d) = data {
        h.update(d);
    }
    h.update(&b);
    i64::from(h.finalize())
}

/// The digest of `node` stored at `path`.
pub(crate) fn of(path: &str, node: &Node<'_>) -> i64 {
    node_digest(path, node.data, &node.stat)
}

impl DataTree {
    /// The tree digest (`DataTree.getTreeDigest`), maintained incrementally.
    pub fn digest(&self) -> i64 {
        self.digest
    }

    /// The tree digest recomputed from every node; equals `digest()` unless
    /// the incremental bookkeeping has a bug.
    pub fn compute_digest(&self) -> i64 {
        self.snapshot_nodes()
            .fold(0i64, |acc, (p, n)| acc.wrapping_add(of(&p, &n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_subtree() {
        let s = StatPersisted::default();
        assert_eq!(node_digest("/zookeeper/quota", Some(b"x"), &s), 0);
        assert_ne!(node_digest("/zookeeper", Some(b""), &s), 0);
        assert_ne!(node_digest("/zookeeperx", None, &s), 0);
        assert_eq!(node_digest("/", None, &s), node_digest("", None, &s));
        // Null and empty data hash alike (CRC32 of nothing changes nothing).
        assert_eq!(
            node_digest("/a", None, &s),
            node_digest("/a", Some(b""), &s)
        );
    }
}
