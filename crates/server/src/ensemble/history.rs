//! The newest committed txns, kept in memory on every ensemble member
//! (Apache's commitLogCount) so that a member elected leader can DIFF its
//! learners at once instead of first reading its whole txn log. A learner
//! further behind is sent txns read from the log on demand
//! (`Core::disk_history`), or a SNAP when that would be the bigger transfer.

use std::collections::VecDeque;

use jute::txn::{Txn, TxnBody};

/// Apache keeps 500; a little more covers a pipelined write load in flight
/// when a leader dies, and costs well under a megabyte for small txns.
pub const MAX_COUNT: usize = 1000;
/// Large znodes must not pin hundreds of megabytes here.
pub const MAX_BYTES: usize = 16 << 20;

#[derive(Default)]
pub struct History {
    txns: VecDeque<(Txn, usize)>,
    bytes: usize,
}

impl History {
    /// `t` was applied to the tree, after everything held here.
    pub fn push(&mut self, t: Txn) {
        // A txn at or below the newest held one follows a cut-back history
        // (a TRUNC): drop the abandoned branch, keeping zxids increasing.
        while self
            .txns
            .back()
            .is_some_and(|(b, _)| b.header.zxid >= t.header.zxid)
        {
            let (_, w) = self.txns.pop_back().expect("checked");
            self.bytes -= w;
        }
        let w = weight(&t.body);
        self.txns.push_back((t, w));
        self.bytes += w;
        while self.txns.len() > MAX_COUNT || (self.bytes > MAX_BYTES && self.txns.len() > 1) {
            let (_, w) = self.txns.pop_front().expect("non-empty");
            self.bytes -= w;
        }
    }

    /// The tree was replaced: `tail` (the txns replayed to build it, newest
    /// last) is the history now.
    pub fn reset(&mut self, tail: Vec<Txn>) {
        self.txns.clear();
        self.bytes = 0;
        let skip = tail.len().saturating_sub(MAX_COUNT);
        for t in tail.into_iter().skip(skip) {
            self.push(t);
        }
    }

    pub fn first_zxid(&self) -> Option<i64> {
        self.txns.front().map(|(t, _)| t.header.zxid)
    }

    pub fn last_zxid(&self) -> Option<i64> {
        self.txns.back().map(|(t, _)| t.header.zxid)
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Txn> {
        self.txns.iter().map(|(t, _)| t)
    }
}

/// Roughly what a txn occupies (its strings and data); exactness does not
/// matter, only that big znodes count as big.
pub fn weight(b: &TxnBody) -> usize {
    const FIXED: usize = 96;
    FIXED
        + match b {
            TxnBody::Create(c) | TxnBody::Create2(c) => {
                c.path.len() + c.data.as_ref().map_or(0, |d| d.len()) + 32 * c.acl.len()
            }
            TxnBody::CreateContainer(c) => {
                c.path.len() + c.data.as_ref().map_or(0, |d| d.len()) + 32 * c.acl.len()
            }
            TxnBody::CreateTtl(c) => {
                c.path.len() + c.data.as_ref().map_or(0, |d| d.len()) + 32 * c.acl.len()
            }
            TxnBody::SetData(s) | TxnBody::Reconfig(s) => {
                s.path.len() + s.data.as_ref().map_or(0, |d| d.len())
            }
            TxnBody::Delete(d) | TxnBody::DeleteContainer(d) => d.path.len(),
            TxnBody::Check(c) => c.path.len(),
            TxnBody::SetAcl(s) => s.path.len() + 32 * s.acl.len(),
            TxnBody::CloseSession(c) => c.paths_to_delete.iter().map(|p| p.len() + 24).sum(),
            TxnBody::CreateSession(_) | TxnBody::Error(_) => 0,
            TxnBody::Multi(v) => v.iter().map(weight).sum(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::txn::{DeleteTxn, SetDataTxn, TxnHeader};

    fn txn(zxid: i64, data: usize) -> Txn {
        Txn {
            header: TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid,
                time: 0,
                op: 5,
            },
            body: TxnBody::SetData(SetDataTxn {
                path: "/a".into(),
                data: Some(vec![0u8; data].into()),
                version: 0,
            }),
            digest: None,
        }
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut h = History::default();
        for z in 1..=(MAX_COUNT as i64 + 10) {
            h.push(txn(z, 0));
        }
        assert_eq!(h.len(), MAX_COUNT);
        assert_eq!(h.first_zxid(), Some(11));
        assert_eq!(h.last_zxid(), Some(MAX_COUNT as i64 + 10));
        // Four 5 MiB txns: only three fit in 16 MiB.
        for z in 2000..2004 {
            h.push(txn(z, 5 << 20));
        }
        assert_eq!(h.first_zxid(), Some(2001));
        assert_eq!(h.len(), 3);
        // One txn bigger than the whole bound is still kept: the newest
        // txn is always there for a learner one behind.
        h.push(txn(3000, 20 << 20));
        assert_eq!((h.len(), h.first_zxid()), (1, Some(3000)));
    }

    #[test]
    fn a_cut_back_history_drops_the_abandoned_branch() {
        let mut h = History::default();
        for z in [1, 2, 3, 4] {
            h.push(txn(z, 0));
        }
        h.push(txn(3, 0));
        let zs: Vec<i64> = h.iter().map(|t| t.header.zxid).collect();
        assert_eq!(zs, [1, 2, 3]);
        h.reset(vec![txn(7, 0), txn(8, 0)]);
        assert_eq!((h.first_zxid(), h.last_zxid()), (Some(7), Some(8)));
        let del = TxnBody::Delete(DeleteTxn { path: "/x".into() });
        assert_eq!(weight(&TxnBody::Multi(vec![del.clone(), del])), 2 * 98 + 96);
    }
}
