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

/// Nodes with at least this many bytes of data keep the CRC of their path
/// and data in the store (`store::encode`), so that a change to such a
/// node takes its old digest out without reading its old data again (cold
/// by then, and the larger part of a setData's digest work). Smaller nodes
/// keep nothing: 4 bytes would grow them more than re-reading them costs.
pub(crate) const CACHED_CRC_MIN: usize = 256;

/// The CRC32 of a node's path (the root as "") and data: the digest's
/// input before the Stat block.
pub(crate) fn prefix_crc(path: &str, data: Option<&[u8]>) -> u32 {
    let path = if path == "/" { "" } else { path };
    let mut h = crc32fast::Hasher::new();
    h.update(path.as_bytes());
    if let Some(d) = data {
        h.update(d);
    }
    h.finalize()
}

/// What the store keeps for a node with `data`: its `prefix_crc` if the
/// data is large enough (`CACHED_CRC_MIN`).
pub(crate) fn cached_crc(path: &str, data: Option<&[u8]>) -> Option<u32> {
    data.filter(|d| d.len() >= CACHED_CRC_MIN)
        .map(|d| prefix_crc(path, Some(d)))
}

/// A node's digest from its `prefix_crc`: the CRC carried on over the Stat.
pub(crate) fn finish(path: &str, prefix: u32, stat: &StatPersisted) -> i64 {
    if path.starts_with(ZOOKEEPER_NODE_SUBTREE) {
        return 0;
    }
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
    // A CRC32's value is its running state, so hashing goes on from it.
    let mut h = crc32fast::Hasher::new_with_initial(prefix);
    h.update(&b);
    i64::from(h.finalize())
}

/// The digest of one node, as `DigestCalculator.calculateDigest`. `path` may
/// name the root as "/" or "": both hash as "".
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> i64 {
    if path.starts_with(ZOOKEEPER_NODE_SUBTREE) {
        return 0;
    }
    finish(path, prefix_crc(path, data), stat)
}

/// The digest of `node` stored at `path`, from the CRC the store keeps for
/// it when there is one.
pub(crate) fn of(path: &str, node: &Node<'_>) -> i64 {
    digest_with(path, node.data, node.crc, &node.stat)
}

/// A node's digest, from `crc` (its `cached_crc`) if it has one.
pub(crate) fn digest_with(
    path: &str,
    data: Option<&[u8]>,
    crc: Option<u32>,
    stat: &StatPersisted,
) -> i64 {
    match crc {
        Some(c) => finish(path, c, stat),
        None => node_digest(path, data, stat),
    }
}

impl DataTree {
    /// The tree digest (`DataTree.getTreeDigest`), maintained incrementally.
    pub fn digest(&self) -> i64 {
        self.digest
    }

    /// The tree digest recomputed from every node's data (not from the
    /// CRCs the store keeps); equals `digest()` unless the incremental
    /// bookkeeping has a bug.
    pub fn compute_digest(&self) -> i64 {
        self.snapshot_nodes().fold(0i64, |acc, (p, n)| {
            debug_assert_eq!(n.crc, cached_crc(&p, n.data), "kept CRC of {p}");
            acc.wrapping_add(node_digest(&p, n.data, &n.stat))
        })
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
