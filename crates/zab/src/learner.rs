//! A learner's side of ZAB once the election chose someone else: the epoch
//! handshake (LEADERINFO, ACKEPOCH), the leader's sync (DIFF, TRUNC or SNAP,
//! proposals and commits, NEWLEADER, UPTODATE) and broadcast (log each
//! proposal, ACK it once durable, apply it on COMMIT), as Apache's
//! `Learner.syncWithLeader` and `Follower` do.
//!
//! The server (crates/server/src/ensemble/follower.rs) and the model the
//! deterministic simulation checks ([`crate::peer`]) both run this code; they
//! differ only in what a log, a state and a snapshot are, which is what
//! [`Do`] leaves to them.

use std::collections::VecDeque;

use crate::make_zxid;

/// A txn as the leader sent it.
pub trait Proposal {
    /// What the log is given (cheap to make: the server logs the packet's
    /// bytes as they came).
    type Logged;
    fn zxid(&self) -> i64;
    /// The txn's time (ms), for the age of an ACK.
    fn time(&self) -> i64;
    fn logged(&self) -> Self::Logged;
}

/// What the learner asks of its environment, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Do<P: Proposal> {
    /// Persist acceptedEpoch before answering.
    AcceptEpoch(i64),
    /// Send ACKEPOCH: our current epoch (-1 if the leader's epoch is the one
    /// we accepted already) and the last zxid we logged.
    AckEpoch { current_epoch: i64 },
    /// Cut the log after this zxid and reload the state from disk.
    Truncate(i64),
    /// Write a snapshot of the state now (after SNAP or TRUNC, at NEWLEADER).
    Snapshot,
    /// Persist currentEpoch (just before NEWLEADER's ACK, once what the
    /// sync logged is durable).
    CurrentEpoch(i64),
    /// Append to the log (its durability comes back through `durable`).
    Log(P::Logged),
    /// Committed: apply to the state, in this order.
    Apply(P),
    /// Everything the log held up to this zxid is the leader's committed
    /// history (the DIFF, TRUNC or SNAP point), told at UPTODATE.
    Committed(i64),
    /// Send ACK for this zxid (NEWLEADER's, UPTODATE's, or a proposal's,
    /// which carries the txn's time).
    Ack { zxid: i64, time: Option<i64> },
    /// UPTODATE: the learner serves clients from now on.
    Serving { epoch: i64 },
    /// A COMMIT that is not for the next proposal (the leader's error).
    Unmatched(i64),
    /// Leave this leader and look again.
    Abandon(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    /// FOLLOWERINFO sent, waiting for LEADERINFO.
    Epoch,
    /// Receiving the sync, up to NEWLEADER and UPTODATE.
    Syncing,
    /// Serving.
    Broadcast,
}

#[derive(Debug)]
pub struct Learner<P: Proposal> {
    observer: bool,
    phase: Phase,
    new_epoch: i64,
    /// SNAP or TRUNC: take a snapshot at NEWLEADER.
    snapshot_needed: bool,
    /// After a DIFF or NEWLEADER: proposals go to the log.
    write_to_log: bool,
    /// Proposals received and not yet committed.
    proposals: VecDeque<P>,
    /// The newest zxid taken (logged or queued): an older or repeated
    /// proposal is dropped, so the log only grows in zxid order.
    last_seen: i64,
    /// Where the DIFF, TRUNC or SNAP put the committed history.
    sync_point: i64,
    /// Commits seen during a DIFF, applied at UPTODATE.
    committed_in_sync: Vec<i64>,
    /// Logged proposals to ACK once durable: (zxid, the txn's time).
    unacked: VecDeque<(i64, i64)>,
    /// NEWLEADER's ACK waits until the log is durable up to this zxid.
    newleader_ack_after: Option<(i64, i64)>,
    /// Between NEWLEADER and UPTODATE proposals are logged as they come
    /// (and acked once serving).
    newleader_seen: bool,
}

impl<P: Proposal> Learner<P> {
    pub fn new(observer: bool) -> Self {
        Learner {
            observer,
            phase: Phase::Connecting,
            new_epoch: 0,
            snapshot_needed: false,
            write_to_log: false,
            proposals: VecDeque::new(),
            last_seen: 0,
            sync_point: 0,
            committed_in_sync: Vec::new(),
            unacked: VecDeque::new(),
            newleader_ack_after: None,
            newleader_seen: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// The epoch LEADERINFO proposed (0 before it).
    pub fn new_epoch(&self) -> i64 {
        self.new_epoch
    }

    /// Proposals received and not yet committed, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &P> {
        self.proposals.iter()
    }

    /// The link to the leader is up (FOLLOWERINFO goes out).
    pub fn connected(&mut self) {
        if self.phase == Phase::Connecting {
            self.phase = Phase::Epoch;
        }
    }

    /// LEADERINFO: the leader's proposed epoch. `last_zxid` is the last zxid
    /// we logged, which ACKEPOCH reports.
    pub fn leader_info(
        &mut self,
        epoch: i64,
        accepted_epoch: i64,
        current_epoch: i64,
        last_zxid: i64,
    ) -> Vec<Do<P>> {
        if self.phase != Phase::Epoch {
            return Vec::new();
        }
        let mut out = Vec::new();
        let ack = if epoch > accepted_epoch {
            out.push(Do::AcceptEpoch(epoch));
            current_epoch
        } else if epoch == accepted_epoch {
            -1
        } else {
            return vec![Do::Abandon(format!(
                "leader's epoch {epoch} is less than our accepted epoch {accepted_epoch}"
            ))];
        };
        self.new_epoch = epoch;
        self.phase = Phase::Syncing;
        self.last_seen = last_zxid;
        out.push(Do::AckEpoch { current_epoch: ack });
        out
    }

    /// DIFF: our log is a prefix of the leader's history up to `zxid`; the
    /// rest comes as proposals and commits.
    pub fn diff(&mut self, zxid: i64) {
        if self.phase == Phase::Syncing {
            self.snapshot_needed = false;
            self.write_to_log = true;
            self.sync_point = self.sync_point.max(zxid);
        }
    }

    /// TRUNC: our log holds txns past `zxid` that the leader's history lacks.
    pub fn trunc(&mut self, zxid: i64) -> Vec<Do<P>> {
        if self.phase != Phase::Syncing {
            return Vec::new();
        }
        self.snapshot_needed = true;
        self.write_to_log = false;
        self.sync_point = self.sync_point.max(zxid);
        self.last_seen = zxid;
        vec![Do::Truncate(zxid)]
    }

    /// SNAP: the leader's state at `zxid` replaces ours (the environment
    /// installs it). False if no sync is under way.
    pub fn snap(&mut self, zxid: i64) -> bool {
        if !matches!(self.phase, Phase::Epoch | Phase::Syncing) {
            return false;
        }
        self.phase = Phase::Syncing;
        self.snapshot_needed = true;
        self.write_to_log = false;
        self.sync_point = zxid;
        self.last_seen = zxid;
        true
    }

    fn take(&mut self, p: &P) -> bool {
        if p.zxid() <= self.last_seen {
            return false;
        }
        self.last_seen = p.zxid();
        true
    }

    /// Whether a txn arriving now is taken (syncing or serving, and newer
    /// than what we have) and, if so, logged: serving it always is, syncing
    /// as `syncing_logs` says.
    fn admit(&mut self, p: &P, syncing_logs: bool) -> Option<bool> {
        let log = match self.phase {
            Phase::Syncing => syncing_logs,
            Phase::Broadcast => true,
            _ => return None,
        };
        self.take(p).then_some(log)
    }

    /// PROPOSAL.
    pub fn proposal(&mut self, p: P) -> Vec<Do<P>> {
        let Some(log) = self.admit(&p, self.newleader_seen) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if log {
            self.unacked.push_back((p.zxid(), p.time()));
            out.push(Do::Log(p.logged()));
        }
        self.proposals.push_back(p);
        out
    }

    /// COMMIT of `zxid` (and, serving, of every proposal before it).
    pub fn commit(&mut self, zxid: i64) -> Vec<Do<P>> {
        let mut out = Vec::new();
        match self.phase {
            Phase::Syncing if self.write_to_log => self.committed_in_sync.push(zxid),
            Phase::Syncing => {
                // Into the state the NEWLEADER snapshot captures.
                if self.proposals.front().is_some_and(|p| p.zxid() == zxid) {
                    out.push(Do::Apply(self.proposals.pop_front().expect("checked")));
                } else {
                    out.push(Do::Unmatched(zxid));
                }
            }
            Phase::Broadcast => {
                while self.proposals.front().is_some_and(|p| p.zxid() <= zxid) {
                    out.push(Do::Apply(self.proposals.pop_front().expect("checked")));
                }
            }
            _ => {}
        }
        out
    }

    /// INFORM (an observer's commit: the txn comes whole).
    pub fn inform(&mut self, p: P) -> Vec<Do<P>> {
        let Some(log) = self.admit(&p, self.write_to_log) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if log {
            out.push(Do::Log(p.logged()));
        }
        out.push(Do::Apply(p));
        out
    }

    /// NEWLEADER: the sync is complete. Snapshot if the sync replaced the
    /// state, log what was proposed, and once that is durable take the epoch
    /// and ACK (the environment reports durability through `durable`, and
    /// should call it once after these actions with what is durable now).
    ///
    /// currentEpoch waits for the log: a server whose currentEpoch is the
    /// new epoch while the txns of the sync are still only in memory could,
    /// after a crash that loses them, win an election (epochs are compared
    /// before zxids) with a history missing committed txns. Apache orders
    /// it the same way since ZOOKEEPER-4643; our simulation found it too.
    pub fn newleader(&mut self, zxid: i64) -> Vec<Do<P>> {
        if self.phase != Phase::Syncing {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.snapshot_needed {
            out.push(Do::Snapshot);
        }
        self.write_to_log = true;
        self.newleader_seen = true;
        // Everything proposed so far goes to the log before we ACK; each is
        // acked on its own once we serve (the leader counts those).
        for p in &self.proposals {
            self.unacked.push_back((p.zxid(), p.time()));
            out.push(Do::Log(p.logged()));
        }
        match self.proposals.back() {
            Some(p) => self.newleader_ack_after = Some((p.zxid(), zxid)),
            None => {
                out.push(Do::CurrentEpoch(self.new_epoch));
                out.push(Do::Ack { zxid, time: None });
            }
        }
        out
    }

    /// UPTODATE: apply what the sync committed and serve. The environment
    /// should then call `durable` with what is durable now, to ACK what
    /// became durable before.
    pub fn uptodate(&mut self) -> Vec<Do<P>> {
        if self.phase != Phase::Syncing {
            return Vec::new();
        }
        self.phase = Phase::Broadcast;
        let mut out = vec![
            Do::Committed(self.sync_point),
            Do::Ack {
                zxid: make_zxid(self.new_epoch, 0),
                time: None,
            },
        ];
        for z in std::mem::take(&mut self.committed_in_sync) {
            while self.proposals.front().is_some_and(|p| p.zxid() <= z) {
                out.push(Do::Apply(self.proposals.pop_front().expect("checked")));
            }
        }
        out.push(Do::Serving {
            epoch: self.new_epoch,
        });
        out
    }

    /// The log is durable up to `zxid`: ACK what it covers (one ACK per
    /// proposal, as Apache's leader counts them).
    pub fn durable(&mut self, zxid: i64) -> Vec<Do<P>> {
        // One ACK per durable proposal: hundreds per fsync under load.
        let mut out = Vec::with_capacity(self.unacked.len() + 2);
        if let Some((after, newleader)) = self.newleader_ack_after {
            if zxid >= after {
                self.newleader_ack_after = None;
                out.push(Do::CurrentEpoch(self.new_epoch));
                out.push(Do::Ack {
                    zxid: newleader,
                    time: None,
                });
            }
        }
        if self.observer {
            self.unacked.clear();
            return out;
        }
        if self.phase != Phase::Broadcast {
            return out;
        }
        while self.unacked.front().is_some_and(|&(z, _)| z <= zxid) {
            let (z, time) = self.unacked.pop_front().expect("checked");
            out.push(Do::Ack {
                zxid: z,
                time: Some(time),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct T(i64);

    impl Proposal for T {
        type Logged = i64;
        fn zxid(&self) -> i64 {
            self.0
        }
        fn time(&self) -> i64 {
            0
        }
        fn logged(&self) -> i64 {
            self.0
        }
    }

    fn z(c: i64) -> i64 {
        make_zxid(2, c)
    }

    fn syncing() -> Learner<T> {
        let mut l = Learner::new(false);
        l.connected();
        let out = l.leader_info(2, 1, 1, make_zxid(1, 5));
        assert_eq!(
            out,
            vec![Do::AcceptEpoch(2), Do::AckEpoch { current_epoch: 1 }]
        );
        l
    }

    #[test]
    fn an_older_epoch_is_refused() {
        let mut l: Learner<T> = Learner::new(false);
        l.connected();
        let out = l.leader_info(1, 2, 2, 0);
        assert!(matches!(&out[..], [Do::Abandon(_)]));
        assert_eq!(l.phase(), Phase::Epoch);
        let mut l: Learner<T> = Learner::new(false);
        l.connected();
        assert_eq!(
            l.leader_info(2, 2, 1, 0),
            vec![Do::AckEpoch { current_epoch: -1 }]
        );
    }

    #[test]
    fn diff_logs_at_newleader_and_applies_commits_at_uptodate() {
        let mut l = syncing();
        l.diff(make_zxid(1, 5));
        assert!(l.proposal(T(z(1))).is_empty());
        assert!(l.proposal(T(z(2))).is_empty());
        assert!(l.commit(z(1)).is_empty());
        let out = l.newleader(z(0));
        assert_eq!(out, vec![Do::Log(z(1)), Do::Log(z(2))]);
        // Between NEWLEADER and UPTODATE: logged at once, acked once serving.
        assert_eq!(l.proposal(T(z(3))), vec![Do::Log(z(3))]);
        assert!(l.commit(z(2)).is_empty());
        // NEWLEADER's ACK, and the epoch before it, wait for z(2), the last
        // proposal before it.
        assert!(l.durable(z(1)).is_empty());
        assert_eq!(
            l.durable(z(2)),
            vec![
                Do::CurrentEpoch(2),
                Do::Ack {
                    zxid: z(0),
                    time: None
                }
            ]
        );
        let out = l.uptodate();
        assert_eq!(
            out,
            vec![
                Do::Committed(make_zxid(1, 5)),
                Do::Ack {
                    zxid: z(0),
                    time: None
                },
                Do::Apply(T(z(1))),
                Do::Apply(T(z(2))),
                Do::Serving { epoch: 2 },
            ]
        );
        assert_eq!(l.pending().count(), 1);
        let acks = l.durable(z(3));
        assert_eq!(
            acks.iter()
                .filter_map(|d| match d {
                    Do::Ack { zxid, .. } => Some(*zxid),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            vec![z(1), z(2), z(3)]
        );
        assert_eq!(l.commit(z(3)), vec![Do::Apply(T(z(3)))]);
    }

    #[test]
    fn snap_applies_commits_into_the_snapshot() {
        let mut l = syncing();
        assert!(l.snap(z(0)));
        l.proposal(T(z(1)));
        l.proposal(T(z(2)));
        assert_eq!(l.commit(z(1)), vec![Do::Apply(T(z(1)))]);
        assert_eq!(l.commit(z(5)), vec![Do::Unmatched(z(5))]);
        let out = l.newleader(z(0));
        assert_eq!(out, vec![Do::Snapshot, Do::Log(z(2))]);
        // A repeat of a proposal already taken is dropped.
        assert!(l.proposal(T(z(2))).is_empty());
    }

    #[test]
    fn an_empty_newleader_is_acked_at_once() {
        let mut l = syncing();
        assert_eq!(
            l.trunc(make_zxid(1, 3)),
            vec![Do::Truncate(make_zxid(1, 3))]
        );
        let out = l.newleader(z(0));
        assert_eq!(
            out,
            vec![
                Do::Snapshot,
                Do::CurrentEpoch(2),
                Do::Ack {
                    zxid: z(0),
                    time: None
                }
            ]
        );
    }

    #[test]
    fn observers_log_informs_and_never_ack_them() {
        let mut l: Learner<T> = Learner::new(true);
        l.connected();
        l.leader_info(2, 2, 2, 0);
        l.diff(0);
        assert_eq!(l.inform(T(z(1))), vec![Do::Log(z(1)), Do::Apply(T(z(1)))]);
        l.newleader(z(0));
        l.uptodate();
        assert_eq!(l.inform(T(z(2))), vec![Do::Log(z(2)), Do::Apply(T(z(2)))]);
        assert!(l.durable(z(2)).is_empty());
    }
}
