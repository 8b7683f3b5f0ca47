//! The leader's quorum bookkeeping: which proposals a quorum has logged.
//!
//! A learner logs proposals in zxid order, so its ACK of zxid z means it
//! holds every proposal up to z. A proposal commits once more than half
//! of the voters (the leader included, after its own fsync) hold it, and
//! proposals commit in zxid order.

use std::collections::{BTreeMap, VecDeque};

use crate::config::QuorumConfig;

#[derive(Debug, Default)]
pub struct AckTracker {
    /// Proposed, not yet committed, in zxid order.
    outstanding: VecDeque<i64>,
    /// The highest zxid each voter (leader included) has acknowledged.
    acked: BTreeMap<u64, i64>,
    last_committed: i64,
}

impl AckTracker {
    /// Starts counting after `last_committed` (the new leader's history,
    /// which NEWLEADER made everyone's).
    pub fn new(last_committed: i64) -> AckTracker {
        AckTracker {
            last_committed,
            ..AckTracker::default()
        }
    }

    pub fn propose(&mut self, zxid: i64) {
        debug_assert!(self.outstanding.back().is_none_or(|&b| b < zxid));
        debug_assert!(zxid > self.last_committed);
        self.outstanding.push_back(zxid);
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    pub fn last_committed(&self) -> i64 {
        self.last_committed
    }

    pub fn last_proposed(&self) -> i64 {
        self.outstanding
            .back()
            .copied()
            .unwrap_or(self.last_committed)
    }

    /// A learner is gone: its acks no longer count.
    pub fn forget(&mut self, sid: u64) {
        self.acked.remove(&sid);
    }

    /// `sid` holds every proposal up to `zxid`. Returns the zxids that are
    /// committed by it, in order.
    pub fn ack(&mut self, cfg: &QuorumConfig, sid: u64, zxid: i64) -> Vec<i64> {
        if !cfg.is_voter(sid) {
            return Vec::new();
        }
        let e = self.acked.entry(sid).or_insert(zxid);
        *e = (*e).max(zxid);
        // The highest zxid that more than half the voters hold.
        let mut held: Vec<i64> = cfg
            .voters()
            .map(|v| self.acked.get(&v).copied().unwrap_or(i64::MIN))
            .collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        let need = cfg.voter_count() / 2; // index of the (n/2+1)-th largest
        let Some(&q) = held.get(need) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while self.outstanding.front().is_some_and(|&z| z <= q) {
            let z = self.outstanding.pop_front().expect("checked");
            self.last_committed = z;
            out.push(z);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: u64) -> QuorumConfig {
        let lines: Vec<String> = (1..=n)
            .map(|i| format!("server.{i}=127.0.0.1:{}:{}", 2000 + i, 3000 + i))
            .collect();
        QuorumConfig::parse(&lines.join("\n")).unwrap()
    }

    #[test]
    fn commits_in_order_once_a_majority_holds() {
        let c = cfg(3);
        let mut t = AckTracker::new(0);
        for z in 1..=3 {
            t.propose(z);
        }
        assert!(t.ack(&c, 1, 3).is_empty(), "leader alone is no quorum");
        assert_eq!(t.ack(&c, 2, 2), vec![1, 2]);
        assert_eq!(t.ack(&c, 3, 3), vec![3]);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.last_committed(), 3);
    }

    #[test]
    fn observers_and_strangers_do_not_count() {
        let c = QuorumConfig::parse(
            "server.1=a:1:2\nserver.2=a:3:4\nserver.3=a:5:6\nserver.4=a:7:8:observer",
        )
        .unwrap();
        let mut t = AckTracker::new(0);
        t.propose(1);
        assert!(t.ack(&c, 1, 1).is_empty());
        assert!(t.ack(&c, 4, 1).is_empty());
        assert!(t.ack(&c, 9, 1).is_empty());
        assert_eq!(t.ack(&c, 3, 1), vec![1]);
    }

    #[test]
    fn five_voters_need_three() {
        let c = cfg(5);
        let mut t = AckTracker::new(10);
        t.propose(11);
        assert!(t.ack(&c, 1, 11).is_empty());
        assert!(t.ack(&c, 2, 11).is_empty());
        assert_eq!(t.ack(&c, 5, 11), vec![11]);
    }
}
