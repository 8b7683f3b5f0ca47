//! A leader's side of ZAB once the election chose it, as Apache's `Leader`
//! and `LearnerHandler` run it: discovery (a quorum's FOLLOWERINFO gives the
//! new epoch, one past every accepted epoch; ACKEPOCH from a quorum, with
//! learners ahead of us turned away), synchronisation (each learner synced,
//! then NEWLEADER; established once a quorum acked it, UPTODATE to each
//! learner that did) and broadcast (ACKs counted by [`AckTracker`], commits
//! in order; a syncing learner's commits held until after its UPTODATE;
//! a quorum of synced followers heard from within syncLimit, or we stop).
//!
//! The server (crates/server/src/ensemble/leader.rs) and the model the
//! deterministic simulation checks ([`crate::peer`]) both run this code;
//! what a sync sends, what a commit applies and how packets travel is
//! theirs, as [`Do`] leaves it.

use std::collections::{BTreeMap, BTreeSet};

use crate::ack::AckTracker;
use crate::QuorumConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LPhase {
    /// Connected; FOLLOWERINFO not yet seen.
    Info,
    /// LEADERINFO sent (or due); waiting for ACKEPOCH.
    Epoch,
    /// ACKEPOCH seen; waiting for a quorum to ack the epoch before syncing.
    AwaitSync,
    /// Sync and NEWLEADER sent; waiting for its ACK.
    Syncing,
    /// UPTODATE sent: a member of the broadcast.
    Synced,
}

#[derive(Debug)]
pub struct LearnerState {
    pub sid: Option<u64>,
    pub observer: bool,
    pub phase: LPhase,
    pub last_zxid: i64,
    pub last_heard: i64,
}

/// What the leader asks of its environment, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Do {
    /// Persist acceptedEpoch (the epoch chosen).
    AcceptEpoch(i64),
    /// Send LEADERINFO with the epoch.
    LeaderInfo { link: u64 },
    /// Drop this learner (it is ahead of us before the epoch is settled).
    TurnAway { link: u64, why: String },
    /// Bring the learner at `last_zxid` up to date (DIFF, TRUNC or SNAP as
    /// [`crate::sync::plan`] chooses, the proposals in flight unless it
    /// observes), then NEWLEADER.
    Sync {
        link: u64,
        last_zxid: i64,
        observer: bool,
    },
    /// A quorum acked NEWLEADER: persist currentEpoch; our history is the
    /// quorum's (committed); serve.
    Establish { epoch: i64 },
    /// Send UPTODATE, then the commits held for this learner.
    UpToDate { link: u64 },
    /// Committed by a quorum, in order: for each, ask [`Leading::committed`]
    /// who gets it, then apply it.
    Commit(Vec<i64>),
    /// Stop leading and look again.
    StepDown { why: String },
}

/// Who gets a commit: COMMIT to followers, INFORM to observers, now or
/// (syncing) after UPTODATE.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fanout {
    pub commit: Vec<u64>,
    pub inform: Vec<u64>,
    pub hold_commit: Vec<u64>,
    pub hold_inform: Vec<u64>,
}

#[derive(Debug)]
pub struct Leading {
    my_id: u64,
    /// The new epoch, once a quorum's accepted epochs are known (else 0).
    epoch: i64,
    /// A quorum acked NEWLEADER: serving.
    established: bool,
    /// Accepted epochs from voters (us included) while choosing the epoch.
    accepted: BTreeMap<u64, i64>,
    max_accepted: i64,
    epoch_acked: BTreeSet<u64>,
    newleader_acked: BTreeSet<u64>,
    learners: BTreeMap<u64, LearnerState>,
    acks: AckTracker,
    /// Our own (current epoch, last zxid) when discovery began.
    summary: (i64, i64),
    /// Discovery and sync must be done by then (initLimit).
    deadline: i64,
}

impl Leading {
    /// Leading begins. `voter`: we vote in our own configuration (else our
    /// accepted epoch does not count).
    pub fn new(
        my_id: u64,
        voter: bool,
        accepted_epoch: i64,
        summary: (i64, i64),
        deadline: i64,
    ) -> Leading {
        let mut accepted = BTreeMap::new();
        if voter {
            accepted.insert(my_id, accepted_epoch);
        }
        Leading {
            my_id,
            epoch: 0,
            established: false,
            accepted,
            max_accepted: accepted_epoch,
            epoch_acked: BTreeSet::from([my_id]),
            newleader_acked: BTreeSet::from([my_id]),
            learners: BTreeMap::new(),
            acks: AckTracker::new(summary.1),
            summary,
            deadline,
        }
    }

    /// A leader alone may be a quorum (a one-voter ensemble).
    pub fn start(&mut self, cfg: &QuorumConfig) -> Vec<Do> {
        let mut out = Vec::new();
        self.choose_epoch(cfg, &mut out);
        out
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    pub fn established(&self) -> bool {
        self.established
    }

    /// Discovery's first step: no quorum of accepted epochs yet (Apache's
    /// waitingForNewEpoch).
    pub fn choosing_epoch(&self) -> bool {
        self.epoch == 0
    }

    pub fn acks(&self) -> &AckTracker {
        &self.acks
    }

    pub fn learner(&self, link: u64) -> Option<&LearnerState> {
        self.learners.get(&link)
    }

    pub fn learners(&self) -> impl Iterator<Item = (u64, &LearnerState)> {
        self.learners.iter().map(|(k, v)| (*k, v))
    }

    /// Links of the learners to send PINGs (and followers' proposals) to:
    /// those syncing or synced.
    pub fn in_broadcast(&self, observers: bool) -> impl Iterator<Item = u64> + '_ {
        self.learners
            .iter()
            .filter(move |(_, x)| {
                matches!(x.phase, LPhase::Syncing | LPhase::Synced) && (observers || !x.observer)
            })
            .map(|(k, _)| *k)
    }

    /// Synced learners heard from within `sync_ms`, us included: who a
    /// quorum is counted from.
    pub fn synced_recently(&self, now: i64, sync_ms: i64, observers: bool) -> BTreeSet<u64> {
        let mut s: BTreeSet<u64> = self
            .learners
            .values()
            .filter(|x| {
                x.phase == LPhase::Synced
                    && (observers || !x.observer)
                    && now - x.last_heard <= sync_ms
            })
            .filter_map(|x| x.sid)
            .collect();
        s.insert(self.my_id);
        s
    }

    pub fn connected(&mut self, link: u64, now: i64) {
        self.learners.insert(
            link,
            LearnerState {
                sid: None,
                observer: false,
                phase: LPhase::Info,
                last_zxid: -1,
                last_heard: now,
            },
        );
    }

    /// The link closed (or the learner was turned away).
    pub fn link_down(&mut self, link: u64) -> Option<LearnerState> {
        let gone = self.learners.remove(&link)?;
        if let Some(sid) = gone.sid {
            self.acks.forget(sid);
        }
        Some(gone)
    }

    /// Any packet from the learner: it is alive.
    pub fn heard(&mut self, link: u64, now: i64) {
        if let Some(x) = self.learners.get_mut(&link) {
            x.last_heard = now;
        }
    }

    /// The learner on `link`, if it is in `phase` (a packet of another phase
    /// is ignored).
    fn learner_in(&mut self, link: u64, phase: LPhase) -> Option<&mut LearnerState> {
        self.learners.get_mut(&link).filter(|x| x.phase == phase)
    }

    /// FOLLOWERINFO (or OBSERVERINFO): who it is and its accepted epoch.
    pub fn info(
        &mut self,
        cfg: &QuorumConfig,
        link: u64,
        sid: u64,
        observer: bool,
        accepted_epoch: i64,
    ) -> Vec<Do> {
        let mut out = Vec::new();
        let Some(x) = self.learner_in(link, LPhase::Info) else {
            return out;
        };
        x.sid = Some(sid);
        x.observer = observer;
        x.phase = LPhase::Epoch;
        if self.epoch == 0 {
            self.max_accepted = self.max_accepted.max(accepted_epoch);
            if !observer {
                self.accepted.insert(sid, accepted_epoch);
            }
            self.choose_epoch(cfg, &mut out);
        } else if accepted_epoch > self.epoch {
            // It accepted a later epoch from a leader that then failed: it
            // refuses ours (a learner never goes back to an older epoch), and
            // would look, find us again, and be refused again for as long as
            // we lead (Apache's leader keeps it out that way). Stepping down
            // lets the next election choose an epoch past its own.
            out.push(Do::StepDown {
                why: format!(
                    "learner {sid} accepted epoch {accepted_epoch}, past ours ({}): a new election, to let it join",
                    self.epoch
                ),
            });
        } else {
            out.push(Do::LeaderInfo { link });
        }
        out
    }

    fn choose_epoch(&mut self, cfg: &QuorumConfig, out: &mut Vec<Do>) {
        if self.epoch != 0 {
            return;
        }
        let ids: BTreeSet<u64> = self.accepted.keys().copied().collect();
        if !cfg.is_quorum(&ids) {
            return;
        }
        self.epoch = self.max_accepted + 1;
        out.push(Do::AcceptEpoch(self.epoch));
        for (link, x) in &self.learners {
            if x.phase == LPhase::Epoch {
                out.push(Do::LeaderInfo { link: *link });
            }
        }
        if cfg.is_quorum(&self.epoch_acked) {
            self.sync_waiting(out);
        }
    }

    /// ACKEPOCH: the learner's current epoch (-1 if it had accepted ours
    /// already) and last zxid.
    pub fn ack_epoch(
        &mut self,
        cfg: &QuorumConfig,
        link: u64,
        current_epoch: i64,
        last_zxid: i64,
    ) -> Vec<Do> {
        let mut out = Vec::new();
        let Some(x) = self.learner_in(link, LPhase::Epoch) else {
            return out;
        };
        x.last_zxid = last_zxid;
        x.phase = LPhase::AwaitSync;
        let sid = x.sid.unwrap_or(0);
        let observer = x.observer;
        // Apache's waitForEpochAck: before a quorum acked the epoch, a
        // learner ahead of us is turned away; after, it only holds txns no
        // quorum took, and is told to TRUNC.
        if current_epoch != -1 && !cfg.is_quorum(&self.epoch_acked) {
            let (e, z) = self.summary;
            if current_epoch > e || (current_epoch == e && last_zxid > z) {
                self.link_down(link);
                out.push(Do::TurnAway {
                    link,
                    why: format!(
                        "learner {sid} is ahead of the leader (its epoch {current_epoch} zxid 0x{last_zxid:x}, ours {e} 0x{z:x})"
                    ),
                });
                return out;
            }
        }
        if current_epoch != -1 && !observer {
            self.epoch_acked.insert(sid);
        }
        if cfg.is_quorum(&self.epoch_acked) {
            self.sync_waiting(&mut out);
        }
        out
    }

    fn sync_waiting(&mut self, out: &mut Vec<Do>) {
        if self.epoch == 0 {
            return;
        }
        for (link, x) in self.learners.iter_mut() {
            if x.phase == LPhase::AwaitSync {
                x.phase = LPhase::Syncing;
                out.push(Do::Sync {
                    link: *link,
                    last_zxid: x.last_zxid,
                    observer: x.observer,
                });
            }
        }
    }

    /// ACK: of NEWLEADER (counter 0) while syncing, of a proposal once
    /// synced.
    pub fn ack(&mut self, cfg: &QuorumConfig, link: u64, zxid: i64) -> Vec<Do> {
        let mut out = Vec::new();
        let Some(x) = self.learners.get_mut(&link) else {
            return out;
        };
        let sid = x.sid.unwrap_or(0);
        match x.phase {
            LPhase::Syncing if crate::counter_of(zxid) == 0 => {
                if !x.observer {
                    self.newleader_acked.insert(sid);
                }
                if self.established {
                    x.phase = LPhase::Synced;
                    out.push(Do::UpToDate { link });
                } else if cfg.is_quorum(&self.newleader_acked) {
                    self.establish(&mut out);
                }
            }
            LPhase::Synced if crate::counter_of(zxid) != 0 => {
                let done = self.acks.ack(cfg, sid, zxid);
                if !done.is_empty() {
                    out.push(Do::Commit(done));
                }
            }
            _ => {}
        }
        out
    }

    fn establish(&mut self, out: &mut Vec<Do>) {
        self.established = true;
        out.push(Do::Establish { epoch: self.epoch });
        for (link, x) in self.learners.iter_mut() {
            if x.phase == LPhase::Syncing
                && x.sid.is_some_and(|s| self.newleader_acked.contains(&s))
            {
                x.phase = LPhase::Synced;
                out.push(Do::UpToDate { link: *link });
            }
        }
    }

    /// Our own log is durable up to `zxid`: that is our ACK.
    pub fn durable(&mut self, cfg: &QuorumConfig, zxid: i64) -> Vec<Do> {
        if !self.established {
            return Vec::new();
        }
        let done = self.acks.ack(cfg, self.my_id, zxid);
        if done.is_empty() {
            Vec::new()
        } else {
            vec![Do::Commit(done)]
        }
    }

    /// A new proposal: the followers to send it to are
    /// `in_broadcast(false)`.
    pub fn propose(&mut self, zxid: i64) {
        self.acks.propose(zxid);
    }

    /// Who gets the commit of a txn: a learner still syncing gets it after
    /// its UPTODATE (Apache 3.8.0's learner empties its pending proposals at
    /// NEWLEADER and fails on a COMMIT before UPTODATE, ZOOKEEPER-4394); an
    /// observer gets the txn whole (INFORM), held the same way, since it was
    /// sent no proposals.
    pub fn committed(&self) -> Fanout {
        let mut f = Fanout::default();
        for (link, x) in &self.learners {
            match (x.observer, x.phase) {
                (false, LPhase::Syncing) => f.hold_commit.push(*link),
                (false, LPhase::Synced) => f.commit.push(*link),
                (true, LPhase::Syncing) => f.hold_inform.push(*link),
                (true, LPhase::Synced) => f.inform.push(*link),
                _ => {}
            }
        }
        f
    }

    /// A tick: Some(why) if we must stop leading (discovery or sync not done
    /// within initLimit; once serving, no quorum of synced followers heard
    /// from within syncLimit).
    pub fn tick(&self, cfg: &QuorumConfig, now: i64, sync_ms: i64) -> Option<String> {
        if !self.established {
            if now <= self.deadline {
                return None;
            }
            return Some(if self.epoch == 0 {
                "timeout while waiting for a quorum of followers to connect".to_owned()
            } else {
                "timeout while waiting for a quorum to sync".to_owned()
            });
        }
        let synced = self.synced_recently(now, sync_ms, false);
        if cfg.is_quorum(&synced) {
            None
        } else {
            Some(format!(
                "not sufficient followers synced, only synced with sids: {synced:?}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make_zxid;

    fn three() -> QuorumConfig {
        QuorumConfig::parse(
            "server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\nserver.3=127.0.0.1:5:6\n",
        )
        .unwrap()
    }

    #[test]
    fn epoch_sync_establish_and_held_commits() {
        let cfg = three();
        let mut l = Leading::new(3, true, 4, (4, make_zxid(4, 9)), 1000);
        assert!(l.start(&cfg).is_empty());
        l.connected(10, 0);
        l.connected(11, 0);
        let out = l.info(&cfg, 10, 1, false, 2);
        assert_eq!(out, vec![Do::AcceptEpoch(5), Do::LeaderInfo { link: 10 }]);
        // The epoch is chosen: a later learner gets it at once.
        assert_eq!(
            l.info(&cfg, 11, 2, false, 4),
            vec![Do::LeaderInfo { link: 11 }]
        );
        let out = l.ack_epoch(&cfg, 10, 4, make_zxid(4, 7));
        assert_eq!(
            out,
            vec![Do::Sync {
                link: 10,
                last_zxid: make_zxid(4, 7),
                observer: false
            }]
        );
        let out = l.ack(&cfg, 10, make_zxid(5, 0));
        assert_eq!(
            out,
            vec![Do::Establish { epoch: 5 }, Do::UpToDate { link: 10 }]
        );
        // 11 syncs after the establishment: its commits wait.
        l.ack_epoch(&cfg, 11, 4, make_zxid(4, 9));
        l.propose(make_zxid(5, 1));
        assert_eq!(l.in_broadcast(false).collect::<Vec<_>>(), vec![10, 11]);
        assert!(l.durable(&cfg, make_zxid(5, 1)).is_empty());
        assert_eq!(
            l.ack(&cfg, 10, make_zxid(5, 1)),
            vec![Do::Commit(vec![make_zxid(5, 1)])]
        );
        let f = l.committed();
        assert_eq!((f.commit, f.hold_commit), (vec![10], vec![11]));
        assert_eq!(
            l.ack(&cfg, 11, make_zxid(5, 0)),
            vec![Do::UpToDate { link: 11 }]
        );
        assert_eq!(l.committed().commit, vec![10, 11]);
    }

    #[test]
    fn a_syncing_observer_gets_its_informs_after_uptodate() {
        let cfg = three();
        let mut l = Leading::new(3, true, 4, (4, make_zxid(4, 9)), 1000);
        for (link, sid) in [(10, 1), (12, 4)] {
            l.connected(link, 0);
            l.info(&cfg, link, sid, sid == 4, 4);
            l.ack_epoch(&cfg, link, 4, make_zxid(4, 9));
        }
        // The observer's ACKEPOCH and NEWLEADER ACK count for nothing.
        assert!(!l.established());
        l.ack(&cfg, 10, make_zxid(5, 0));
        assert!(l.established());
        let f = l.committed();
        assert_eq!((f.commit, f.hold_inform), (vec![10], vec![12]));
        assert_eq!(
            l.ack(&cfg, 12, make_zxid(5, 0)),
            vec![Do::UpToDate { link: 12 }]
        );
        assert_eq!(l.committed().inform, vec![12]);
        // Observers take no proposals.
        assert_eq!(l.in_broadcast(false).collect::<Vec<_>>(), vec![10]);
    }

    #[test]
    fn a_learner_that_accepted_a_later_epoch_makes_us_step_down() {
        let cfg = three();
        let mut l = Leading::new(3, true, 2, (2, make_zxid(2, 9)), 1000);
        l.connected(10, 0);
        assert_eq!(
            l.info(&cfg, 10, 1, false, 2),
            vec![Do::AcceptEpoch(3), Do::LeaderInfo { link: 10 }]
        );
        l.connected(11, 0);
        assert_eq!(
            l.info(&cfg, 11, 2, false, 3),
            vec![Do::LeaderInfo { link: 11 }]
        );
        l.connected(12, 0);
        assert!(matches!(
            &l.info(&cfg, 12, 2, false, 4)[..],
            [Do::StepDown { .. }]
        ));
    }

    #[test]
    fn a_learner_ahead_is_turned_away_before_the_epoch_is_acked() {
        let cfg = three();
        let mut l = Leading::new(3, true, 4, (4, make_zxid(4, 9)), 1000);
        l.connected(10, 0);
        l.info(&cfg, 10, 1, false, 4);
        let out = l.ack_epoch(&cfg, 10, 4, make_zxid(4, 12));
        assert!(matches!(&out[..], [Do::TurnAway { link: 10, .. }]));
        assert!(l.learner(10).is_none());
        assert_eq!(
            l.tick(&cfg, 2000, 500).as_deref(),
            Some("timeout while waiting for a quorum to sync")
        );
    }
}
