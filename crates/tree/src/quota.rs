//! Quotas as ZooKeeper 3.8 keeps them: a quota on `/a/b` is the node
//! `/zookeeper/quota/a/b/zookeeper_limits` (the limits) beside
//! `/zookeeper/quota/a/b/zookeeper_stats` (what the subtree holds now),
//! both ordinary znodes whose data is a `StatsTrack` string. The tree keeps
//! the stats current as nodes below a quota root are created, deleted or
//! changed (`DataTree.updateQuotaStat`), rewriting the stats node's data in
//! place without touching its Stat, as ZooKeeper does; prep refuses writes
//! that break a hard limit when `enforceQuota` is set
//! (`ZooKeeperServer.checkQuota`).
//!
//! Where ZooKeeper keeps a path trie of quota roots, we look for the limits
//! node of each ancestor: the same answer (a limits node exists exactly
//! while its path is in ZooKeeper's trie), with no index to rebuild.

use std::collections::BTreeMap;

use crate::path;
use crate::tree::{DataTree, QUOTA};

pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

/// `Quotas.limitPath`.
pub fn limit_path(p: &str) -> String {
    format!("{QUOTA}{p}/{LIMIT_NODE}")
}

/// Whether `p` is the limits node of a quota (`/zookeeper/quota/<path>/zookeeper_limits`).
pub(crate) fn is_limits_node(p: &str) -> bool {
    path::name(p) == LIMIT_NODE
        && path::parent(p)
            .and_then(|q| q.strip_prefix(QUOTA))
            .is_some_and(|r| r.starts_with('/'))
}

/// `Quotas.statPath`.
pub fn stat_path(p: &str) -> String {
    format!("{QUOTA}{p}/{STAT_NODE}")
}

/// ZooKeeper's `StatsTrack`: `count=N,bytes=M` followed, when other keys are
/// set, by `=;key=value` pairs in key order. Missing values read as -1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    pub const COUNT: &'static str = "count";
    pub const BYTES: &'static str = "bytes";
    pub const COUNT_HARD: &'static str = "countHardLimit";
    pub const BYTES_HARD: &'static str = "byteHardLimit";

    /// Parses as ZooKeeper does (pairs split on runs of `,` or `;`, an empty
    /// value meaning -1); pairs it cannot read are skipped rather than
    /// failing, since a client may have written anything there.
    pub fn parse(s: &[u8]) -> StatsTrack {
        let mut values = BTreeMap::new();
        let s = String::from_utf8_lossy(s);
        for pair in s.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                continue;
            };
            let v = if v.is_empty() { Ok(-1) } else { v.parse() };
            if let Ok(v) = v {
                values.insert(k.to_owned(), v);
            }
        }
        StatsTrack { values }
    }

    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, v: i64) {
        self.values.insert(key.to_owned(), v);
    }

    pub fn count(&self) -> i64 {
        self.get(Self::COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.get(Self::BYTES)
    }

    pub fn count_hard(&self) -> i64 {
        self.get(Self::COUNT_HARD)
    }

    pub fn bytes_hard(&self) -> i64 {
        self.get(Self::BYTES_HARD)
    }
}

impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "count={},bytes={}", self.count(), self.bytes())?;
        let mut rest = self
            .values
            .iter()
            .filter(|(k, _)| *k != Self::COUNT && *k != Self::BYTES)
            .peekable();
        if rest.peek().is_some() {
            // The extra "=" keeps pre-3.5 parsers reading count and bytes.
            f.write_str("=")?;
            for (k, v) in rest {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

/// A limit that a write would go past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// The quota root.
    pub prefix: String,
    /// The whole message, as ZooKeeper logs it.
    pub message: String,
    /// A hard limit: refuse the write when quotas are enforced.
    pub hard: bool,
}

impl DataTree {
    /// Whether any quota is set (any `zookeeper_limits` node exists).
    pub fn has_quota_limits(&self) -> bool {
        self.quota_limits > 0
    }

    /// `getMaxPrefixWithQuota`: the deepest ancestor of `p` (or `p` itself)
    /// with a quota; never the root.
    pub fn quota_root(&self, p: &str) -> Option<String> {
        // Cheap way out for the common case of no quotas at all (this runs
        // on every write).
        if self.quota_limits == 0 || p == "/" {
            return None;
        }
        let mut cur = p;
        loop {
            if cur == "/" {
                return None;
            }
            if self.nodes.lookup(&limit_path(cur)).is_some() {
                return Some(cur.to_owned());
            }
            cur = path::parent(cur)?;
        }
    }

    fn stats_of(&self, node: &str) -> Option<StatsTrack> {
        self.node(node)
            .map(|n| StatsTrack::parse(n.data.unwrap_or_default()))
    }

    /// The limits a write under `p` that adds `count_diff` nodes and
    /// `bytes_diff` bytes would go past (`ZooKeeperServer.checkQuota`).
    pub fn quota_check(&self, p: &str, bytes_diff: i64, count_diff: i64) -> Vec<Exceeded> {
        let mut out = Vec::new();
        let Some(prefix) = self.quota_root(p) else {
            return out;
        };
        let Some(limits) = self.stats_of(&limit_path(&prefix)) else {
            return out;
        };
        let check_count = count_diff != 0 && (limits.count() > -1 || limits.count_hard() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.bytes_hard() > -1);
        if !check_count && !check_bytes {
            return out;
        }
        let Some(current) = self.stats_of(&stat_path(&prefix)) else {
            return out;
        };
        let mut check = |what: &str, hard_key: &str, soft: i64, hard: i64, now: i64, diff: i64| {
            let is_hard = hard > -1;
            let limit = if is_hard { hard } else { soft };
            let new = now + diff;
            if new > limit {
                out.push(Exceeded {
                    prefix: prefix.clone(),
                    message: format!(
                        "Quota exceeded: {prefix} [current {what}={new}, {}{hard_key}={limit}]",
                        if is_hard { "hard" } else { "soft" }
                    ),
                    hard: is_hard,
                });
            }
        };
        if check_count {
            check(
                "count",
                "CountLimit",
                limits.count(),
                limits.count_hard(),
                current.count(),
                count_diff,
            );
        }
        if check_bytes {
            check(
                "bytes",
                "ByteLimit",
                limits.bytes(),
                limits.bytes_hard(),
                current.bytes(),
                bytes_diff,
            );
        }
        out
    }

    /// Replaces a quota node's data without touching its Stat, as
    /// ZooKeeper's in-place updates do. Nodes under /zookeeper/ are outside
    /// the digest, so only the size count changes.
    fn put_stats(&mut self, node: &str, st: &StatsTrack) {
        if let Some(id) = self.nodes.lookup(node) {
            let new = st.to_string();
            let old_len = self.nodes.get(id).map_or(0, |n| n.data_len());
            self.data_bytes = (self.data_bytes + new.len() as u64).saturating_sub(old_len as u64);
            self.change(id, node, Some(Some(new.as_bytes())), |_, _| {});
        }
    }

    /// `updateQuotaStat`.
    fn add_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let sp = stat_path(prefix);
        if let Some(mut st) = self.stats_of(&sp) {
            st.set(StatsTrack::COUNT, st.count() + count_diff);
            st.set(StatsTrack::BYTES, st.bytes() + bytes_diff);
            self.put_stats(&sp, &st);
        }
    }

    /// `updateQuotaForPath`: recounts the subtree at `p` into its stats node.
    fn recount_quota(&mut self, p: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![p.to_owned()];
        while let Some(cur) = stack.pop() {
            if let Some(n) = self.node(&cur) {
                count += 1;
                bytes += n.data_len() as i64;
                stack.extend(self.child_paths(&cur));
            }
        }
        let mut st = StatsTrack::default();
        st.set(StatsTrack::COUNT, count);
        st.set(StatsTrack::BYTES, bytes);
        self.put_stats(&stat_path(p), &st);
    }

    /// After a node is created: a new stats node starts from a recount of
    /// its subtree; a node under a quota root counts towards it.
    pub(crate) fn quota_on_create(&mut self, p: &str, data_len: usize) {
        if let Some(parent) = path::parent(p) {
            if path::name(p) == STAT_NODE {
                if let Some(real) = parent.strip_prefix(QUOTA).filter(|r| r.starts_with('/')) {
                    self.recount_quota(real);
                }
            }
        }
        if let Some(prefix) = self.quota_root(p) {
            self.add_quota_stat(&prefix, data_len as i64, 1);
        }
    }

    /// Before a node is removed (its limits node, if it is one, still
    /// there): it no longer counts towards its quota root.
    pub(crate) fn quota_on_delete(&mut self, p: &str, data_len: usize) {
        if let Some(prefix) = self.quota_root(p) {
            self.add_quota_stat(&prefix, -(data_len as i64), -1);
        }
    }

    pub(crate) fn quota_on_set_data(&mut self, p: &str, old_len: usize, new_len: usize) {
        if let Some(prefix) = self.quota_root(p) {
            self.add_quota_stat(&prefix, new_len as i64 - old_len as i64, 0);
        }
    }

    /// `setupQuota`, after loading a snapshot: every quota's stats are
    /// recounted from the tree.
    pub(crate) fn recount_all_quotas(&mut self) {
        let mut under = Vec::new();
        let mut stack = vec![QUOTA.to_owned()];
        while let Some(p) = stack.pop() {
            stack.extend(self.child_paths(&p));
            under.push(p);
        }
        let roots: Vec<String> = under
            .iter()
            .filter(|k| is_limits_node(k))
            .filter_map(|k| Some(path::parent(k)?.strip_prefix(QUOTA)?.to_owned()))
            .collect();
        self.quota_limits = roots.len();
        for r in roots {
            self.recount_quota(&r);
        }
    }
}
