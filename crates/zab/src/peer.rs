//! ZAB's phases for one server as a pure state machine: discovery (the
//! new epoch one past a quorum's accepted epochs), synchronisation (DIFF,
//! TRUNC or SNAP as [`crate::sync::plan`] chooses, NEWLEADER acked by a
//! quorum, UPTODATE) and broadcast (proposals logged, acked once durable,
//! committed by a quorum through [`crate::ack::AckTracker`]). Elections go
//! through [`crate::Election`].
//!
//! It is the reference the deterministic simulation (tests/zab_sim.rs)
//! checks under loss, partitions and crashes; the server's shell
//! (crates/server/src/ensemble) makes the same transitions on real
//! sockets, txns and files. Values stand in for txns.

use std::collections::{BTreeMap, BTreeSet};

use crate::ack::AckTracker;
use crate::election::{Election, Out as ElectionOut, ServerState};
use crate::sync::{plan, SyncPlan};
use crate::wire::Notification;
use crate::{make_zxid, QuorumConfig};

/// A logged txn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub zxid: i64,
    pub value: u64,
}

/// What survives a crash: the log (its fsynced prefix, at least) and the
/// two epoch files.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    pub log: Vec<Entry>,
    /// How many entries of `log` are fsynced.
    pub synced: usize,
    pub accepted_epoch: i64,
    pub current_epoch: i64,
}

/// Quorum-port messages (one per packet kind that matters here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    FollowerInfo {
        accepted_epoch: i64,
    },
    LeaderInfo {
        epoch: i64,
    },
    AckEpoch {
        current_epoch: i64,
        last_zxid: i64,
    },
    /// DIFF up to the leader's last committed zxid.
    Diff {
        last: i64,
    },
    Trunc {
        to: i64,
    },
    Snap {
        entries: Vec<Entry>,
    },
    Proposal(Entry),
    Commit {
        zxid: i64,
    },
    NewLeader {
        epoch: i64,
    },
    Ack {
        zxid: i64,
    },
    UpToDate,
    Ping,
    PingReply,
}

/// What the peer asks of its environment.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Notify {
        to: u64,
        n: Notification,
    },
    /// Open a quorum link to the leader.
    Connect {
        leader: u64,
    },
    Send {
        link: u64,
        p: Packet,
    },
    /// Drop every quorum link (leaving a role).
    CloseLinks,
    /// Drop one learner's link (turned away).
    CloseLink {
        link: u64,
    },
    /// Fsync the log (the environment answers with `durable`).
    Sync,
    /// Entries became committed and applied, in order.
    Applied(Vec<Entry>),
    /// Established as leader of `epoch`.
    Leading {
        epoch: i64,
    },
}

#[derive(Debug)]
enum FPhase {
    Connecting,
    Epoch,
    Syncing,
    Broadcast,
}

#[derive(Debug)]
struct Following {
    leader: u64,
    link: Option<u64>,
    phase: FPhase,
    new_epoch: i64,
    /// DIFF: entries arrive as proposals but are logged at NEWLEADER.
    held: Vec<Entry>,
    snapshot: bool,
    /// Waiting for durability before acking NEWLEADER.
    newleader_after: Option<usize>,
    /// NEWLEADER seen: proposals go to the log from now on.
    newleader_seen: bool,
    /// What the leader's sync says is committed: applied (made visible)
    /// at UPTODATE, once the leader's history is the quorum's.
    commit_upto: i64,
    /// Log positions not yet acked.
    unacked: usize,
    last_heard: i64,
    deadline: i64,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum LPhase {
    Info,
    Epoch,
    AwaitSync,
    Syncing,
    Synced,
}

#[derive(Debug)]
struct LearnerState {
    sid: u64,
    phase: LPhase,
    last_zxid: i64,
    last_heard: i64,
}

#[derive(Debug)]
struct Leading {
    epoch: i64,
    established: bool,
    accepted: BTreeMap<u64, i64>,
    max_accepted: i64,
    epoch_acked: BTreeSet<u64>,
    newleader_acked: BTreeSet<u64>,
    learners: BTreeMap<u64, LearnerState>,
    acks: AckTracker,
    deadline: i64,
    summary: (i64, i64),
    next_counter: i64,
}

#[derive(Debug)]
enum Role {
    Looking,
    Following(Following),
    Leading(Leading),
}

pub struct Peer {
    pub id: u64,
    cfg: QuorumConfig,
    pub disk: Disk,
    /// How many log entries are applied (all committed).
    pub applied: usize,
    election: Election,
    role: Role,
    tick_ms: i64,
    init_limit: i64,
    sync_limit: i64,
}

impl Peer {
    /// A server starting (or restarting) on `disk`; it looks at once.
    pub fn start(
        id: u64,
        cfg: QuorumConfig,
        disk: Disk,
        now: i64,
        tick_ms: i64,
    ) -> (Peer, Vec<Out>) {
        let last = disk.log.last().map_or(0, |e| e.zxid);
        let election = Election::new(id, cfg.clone(), last, disk.current_epoch);
        let mut p = Peer {
            id,
            cfg,
            disk,
            applied: 0,
            election,
            role: Role::Looking,
            tick_ms,
            init_limit: 10,
            sync_limit: 5,
        };
        // `applied` counts what is known committed: after a restart,
        // nothing until a leader (or our own leadership) confirms it.
        p.applied = 0;
        let out = p.look(now);
        (p, out)
    }

    pub fn state(&self) -> ServerState {
        match &self.role {
            Role::Looking => ServerState::Looking,
            Role::Following(_) => ServerState::Following,
            Role::Leading(_) => ServerState::Leading,
        }
    }

    /// The leader this server follows.
    pub fn following(&self) -> Option<u64> {
        match &self.role {
            Role::Following(f) => Some(f.leader),
            _ => None,
        }
    }

    /// Leading and established: may take client writes.
    pub fn serving_leader(&self) -> Option<i64> {
        match &self.role {
            Role::Leading(l) if l.established => Some(l.epoch),
            _ => None,
        }
    }

    pub fn last_zxid(&self) -> i64 {
        self.disk.log.last().map_or(0, |e| e.zxid)
    }

    fn look(&mut self, now: i64) -> Vec<Out> {
        self.role = Role::Looking;
        // What a restart would see: the log is the history.
        let last = self.last_zxid();
        let outs = self.election.start(now, last, self.disk.current_epoch);
        let mut out = vec![Out::CloseLinks];
        self.election_outs(outs, now, &mut out);
        out
    }

    fn election_outs(&mut self, outs: Vec<ElectionOut>, now: i64, out: &mut Vec<Out>) {
        for o in outs {
            match o {
                ElectionOut::Send { to, n } => out.push(Out::Notify { to, n }),
                ElectionOut::Decided { state, vote } => match state {
                    ServerState::Leading => self.lead(now, out),
                    _ => {
                        let leader = vote.leader as u64;
                        self.role = Role::Following(Following {
                            leader,
                            link: None,
                            phase: FPhase::Connecting,
                            new_epoch: 0,
                            held: Vec::new(),
                            snapshot: false,
                            newleader_after: None,
                            newleader_seen: false,
                            commit_upto: 0,
                            unacked: self.disk.log.len(),
                            last_heard: now,
                            deadline: now + self.init_limit * self.tick_ms,
                        });
                        out.push(Out::Connect { leader });
                    }
                },
            }
        }
    }

    fn lead(&mut self, now: i64, out: &mut Vec<Out>) {
        let mut accepted = BTreeMap::new();
        accepted.insert(self.id, self.disk.accepted_epoch);
        self.role = Role::Leading(Leading {
            epoch: 0,
            established: false,
            accepted,
            max_accepted: self.disk.accepted_epoch,
            epoch_acked: BTreeSet::from([self.id]),
            newleader_acked: BTreeSet::from([self.id]),
            learners: BTreeMap::new(),
            acks: AckTracker::new(self.last_zxid()),
            deadline: now + self.init_limit * self.tick_ms,
            summary: (self.disk.current_epoch, self.last_zxid()),
            next_counter: 0,
        });
        self.choose_epoch(out);
    }

    /// An election message from `from`.
    pub fn on_notification(&mut self, from: u64, n: Notification, now: i64) -> Vec<Out> {
        let outs = self.election.on_message(from, n, now);
        let mut out = Vec::new();
        self.election_outs(outs, now, &mut out);
        out
    }

    /// Follower side: the link to the leader is up.
    pub fn on_connected(&mut self, link: u64, now: i64) -> Vec<Out> {
        let mut out = Vec::new();
        if let Role::Following(f) = &mut self.role {
            if matches!(f.phase, FPhase::Connecting) {
                f.link = Some(link);
                f.phase = FPhase::Epoch;
                f.last_heard = now;
                out.push(Out::Send {
                    link,
                    p: Packet::FollowerInfo {
                        accepted_epoch: self.disk.accepted_epoch,
                    },
                });
            }
        }
        out
    }

    /// Leader side: a learner connected on `link`.
    pub fn on_learner(&mut self, link: u64, sid: u64, now: i64) {
        if let Role::Leading(l) = &mut self.role {
            l.learners.insert(
                link,
                LearnerState {
                    sid,
                    phase: LPhase::Info,
                    last_zxid: -1,
                    last_heard: now,
                },
            );
        }
    }

    /// A link closed (or could not be opened).
    pub fn on_link_down(&mut self, link: u64, now: i64) -> Vec<Out> {
        match &mut self.role {
            Role::Following(f) if f.link == Some(link) || f.link.is_none() => self.look(now),
            Role::Leading(l) => {
                if let Some(x) = l.learners.remove(&link) {
                    l.acks.forget(x.sid);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The log is fsynced up to `len` entries.
    pub fn on_durable(&mut self, len: usize) -> Vec<Out> {
        let mut out = Vec::new();
        self.disk.synced = self.disk.synced.max(len.min(self.disk.log.len()));
        let synced = self.disk.synced;
        let log = self.disk.log.clone();
        match &mut self.role {
            Role::Following(f) => {
                let Some(link) = f.link else { return out };
                if let Some(after) = f.newleader_after {
                    if synced >= after {
                        f.newleader_after = None;
                        out.push(Out::Send {
                            link,
                            p: Packet::Ack {
                                zxid: make_zxid(f.new_epoch, 0),
                            },
                        });
                    }
                }
                if matches!(f.phase, FPhase::Broadcast) {
                    while f.unacked < synced {
                        out.push(Out::Send {
                            link,
                            p: Packet::Ack {
                                zxid: log[f.unacked].zxid,
                            },
                        });
                        f.unacked += 1;
                    }
                }
            }
            Role::Leading(l) if l.established && synced > 0 => {
                let z = log[synced - 1].zxid;
                let done = l.acks.ack(&self.cfg, self.id, z);
                self.commit(done, &mut out);
            }
            _ => {}
        }
        out
    }

    /// A client write at the leader.
    pub fn propose(&mut self, value: u64) -> Vec<Out> {
        let mut out = Vec::new();
        let Role::Leading(l) = &mut self.role else {
            return out;
        };
        if !l.established {
            return out;
        }
        l.next_counter += 1;
        let e = Entry {
            zxid: make_zxid(l.epoch, l.next_counter),
            value,
        };
        l.acks.propose(e.zxid);
        for (link, x) in &l.learners {
            if matches!(x.phase, LPhase::Syncing | LPhase::Synced) {
                out.push(Out::Send {
                    link: *link,
                    p: Packet::Proposal(e),
                });
            }
        }
        self.disk.log.push(e);
        out.push(Out::Sync);
        out
    }

    pub fn on_tick(&mut self, now: i64) -> Vec<Out> {
        let mut out = Vec::new();
        let outs = self.election.on_tick(now);
        self.election_outs(outs, now, &mut out);
        let sync_ms = self.sync_limit * self.tick_ms;
        match &mut self.role {
            Role::Following(f) => {
                let late = match f.phase {
                    FPhase::Broadcast => now - f.last_heard > sync_ms,
                    _ => now > f.deadline,
                };
                if late {
                    out.extend(self.look(now));
                }
            }
            Role::Leading(l) => {
                for (link, x) in &l.learners {
                    if matches!(x.phase, LPhase::Syncing | LPhase::Synced) {
                        out.push(Out::Send {
                            link: *link,
                            p: Packet::Ping,
                        });
                    }
                }
                let give_up = if !l.established {
                    now > l.deadline
                } else {
                    let mut synced: BTreeSet<u64> = l
                        .learners
                        .values()
                        .filter(|x| x.phase == LPhase::Synced && now - x.last_heard <= sync_ms)
                        .map(|x| x.sid)
                        .collect();
                    synced.insert(self.id);
                    !self.cfg.is_quorum(&synced)
                };
                if give_up {
                    out.extend(self.look(now));
                }
            }
            Role::Looking => {}
        }
        out
    }

    /// A packet on `link`.
    pub fn on_packet(&mut self, link: u64, p: Packet, now: i64) -> Vec<Out> {
        match &self.role {
            Role::Leading(_) => self.leader_packet(link, p, now),
            Role::Following(f) if f.link == Some(link) => self.follower_packet(p, now),
            _ => Vec::new(),
        }
    }

    fn leader_packet(&mut self, link: u64, p: Packet, now: i64) -> Vec<Out> {
        let mut out = Vec::new();
        let Role::Leading(l) = &mut self.role else {
            return out;
        };
        let Some(x) = l.learners.get_mut(&link) else {
            return out;
        };
        x.last_heard = now;
        match (x.phase, p) {
            (LPhase::Info, Packet::FollowerInfo { accepted_epoch }) => {
                x.phase = LPhase::Epoch;
                if l.epoch == 0 {
                    l.max_accepted = l.max_accepted.max(accepted_epoch);
                    l.accepted.insert(x.sid, accepted_epoch);
                    self.choose_epoch(&mut out);
                } else {
                    out.push(Out::Send {
                        link,
                        p: Packet::LeaderInfo { epoch: l.epoch },
                    });
                }
            }
            (
                LPhase::Epoch,
                Packet::AckEpoch {
                    current_epoch,
                    last_zxid,
                },
            ) => {
                x.last_zxid = last_zxid;
                x.phase = LPhase::AwaitSync;
                let sid = x.sid;
                // Apache's waitForEpochAck: before a quorum acked the
                // epoch, a learner ahead of us is turned away; after, it
                // only holds txns no quorum took, and is told to TRUNC.
                if current_epoch != -1 && !self.cfg.is_quorum(&l.epoch_acked) {
                    let (e, z) = l.summary;
                    if current_epoch > e || (current_epoch == e && last_zxid > z) {
                        l.learners.remove(&link);
                        return vec![Out::CloseLink { link }];
                    }
                }
                if current_epoch != -1 {
                    l.epoch_acked.insert(sid);
                }
                if self.cfg.is_quorum(&l.epoch_acked) {
                    self.sync_waiting(&mut out);
                }
            }
            (LPhase::Syncing, Packet::Ack { zxid }) if crate::counter_of(zxid) == 0 => {
                l.newleader_acked.insert(x.sid);
                if l.established {
                    x.phase = LPhase::Synced;
                    out.push(Out::Send {
                        link,
                        p: Packet::UpToDate,
                    });
                } else if self.cfg.is_quorum(&l.newleader_acked) {
                    self.establish(&mut out);
                }
            }
            (LPhase::Synced, Packet::Ack { zxid }) if crate::counter_of(zxid) != 0 => {
                let sid = x.sid;
                let done = l.acks.ack(&self.cfg, sid, zxid);
                self.commit(done, &mut out);
            }
            _ => {}
        }
        out
    }

    fn choose_epoch(&mut self, out: &mut Vec<Out>) {
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        if l.epoch != 0 {
            return;
        }
        let ids: BTreeSet<u64> = l.accepted.keys().copied().collect();
        if !self.cfg.is_quorum(&ids) {
            return;
        }
        l.epoch = l.max_accepted + 1;
        self.disk.accepted_epoch = l.epoch;
        for (link, x) in &l.learners {
            if x.phase == LPhase::Epoch {
                out.push(Out::Send {
                    link: *link,
                    p: Packet::LeaderInfo { epoch: l.epoch },
                });
            }
        }
        if self.cfg.is_quorum(&l.epoch_acked) {
            self.sync_waiting(out);
        }
    }

    fn sync_waiting(&mut self, out: &mut Vec<Out>) {
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        if l.epoch == 0 {
            return;
        }
        // The leader's history: its applied (committed) entries; in
        // discovery that is its whole log.
        let history: Vec<Entry> = if l.established {
            self.disk.log[..self.applied].to_vec()
        } else {
            self.disk.log.clone()
        };
        let zxids: Vec<i64> = history.iter().map(|e| e.zxid).collect();
        let last = zxids.last().copied().unwrap_or(0);
        let in_flight: Vec<Entry> = if l.established {
            self.disk.log[self.applied..].to_vec()
        } else {
            Vec::new()
        };
        for (link, x) in l.learners.iter_mut() {
            if x.phase != LPhase::AwaitSync {
                continue;
            }
            x.phase = LPhase::Syncing;
            let from = match plan(x.last_zxid, &zxids, last) {
                SyncPlan::Diff { from } => {
                    out.push(Out::Send {
                        link: *link,
                        p: Packet::Diff { last },
                    });
                    Some(from)
                }
                SyncPlan::Trunc { to, from } => {
                    out.push(Out::Send {
                        link: *link,
                        p: Packet::Trunc { to },
                    });
                    Some(from)
                }
                SyncPlan::Snap => {
                    out.push(Out::Send {
                        link: *link,
                        p: Packet::Snap {
                            entries: history.clone(),
                        },
                    });
                    None
                }
            };
            if let Some(from) = from {
                for e in &history[from..] {
                    out.push(Out::Send {
                        link: *link,
                        p: Packet::Proposal(*e),
                    });
                    out.push(Out::Send {
                        link: *link,
                        p: Packet::Commit { zxid: e.zxid },
                    });
                }
            }
            for e in &in_flight {
                out.push(Out::Send {
                    link: *link,
                    p: Packet::Proposal(*e),
                });
            }
            out.push(Out::Send {
                link: *link,
                p: Packet::NewLeader { epoch: l.epoch },
            });
        }
    }

    fn establish(&mut self, out: &mut Vec<Out>) {
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        l.established = true;
        for (link, x) in l.learners.iter_mut() {
            if x.phase == LPhase::Syncing && l.newleader_acked.contains(&x.sid) {
                x.phase = LPhase::Synced;
                out.push(Out::Send {
                    link: *link,
                    p: Packet::UpToDate,
                });
            }
        }
        self.disk.current_epoch = l.epoch;
        self.election.set_vote_epoch(l.epoch);
        // Our history is now the quorum's: it counts as committed.
        let newly: Vec<Entry> = self.disk.log[self.applied..].to_vec();
        self.applied = self.disk.log.len();
        if !newly.is_empty() {
            out.push(Out::Applied(newly));
        }
        out.push(Out::Leading { epoch: l.epoch });
    }

    fn commit(&mut self, zxids: Vec<i64>, out: &mut Vec<Out>) {
        let Role::Leading(l) = &mut self.role else {
            return;
        };
        if zxids.is_empty() {
            return;
        }
        for z in &zxids {
            for (link, x) in &l.learners {
                if matches!(x.phase, LPhase::Syncing | LPhase::Synced) {
                    out.push(Out::Send {
                        link: *link,
                        p: Packet::Commit { zxid: *z },
                    });
                }
            }
        }
        let last = *zxids.last().expect("non-empty");
        let upto = self
            .disk
            .log
            .iter()
            .position(|e| e.zxid == last)
            .map_or(self.applied, |i| i + 1);
        let newly = self.disk.log[self.applied..upto].to_vec();
        self.applied = upto;
        out.push(Out::Applied(newly));
    }

    fn follower_packet(&mut self, p: Packet, now: i64) -> Vec<Out> {
        let mut out = Vec::new();
        let Role::Following(f) = &mut self.role else {
            return out;
        };
        let link = f.link.expect("connected");
        f.last_heard = now;
        match (&f.phase, p) {
            (FPhase::Epoch, Packet::LeaderInfo { epoch }) => {
                let ack = if epoch > self.disk.accepted_epoch {
                    let cur = self.disk.current_epoch;
                    self.disk.accepted_epoch = epoch;
                    cur
                } else if epoch == self.disk.accepted_epoch {
                    -1
                } else {
                    return self.look(now);
                };
                f.new_epoch = epoch;
                f.phase = FPhase::Syncing;
                out.push(Out::Send {
                    link,
                    p: Packet::AckEpoch {
                        current_epoch: ack,
                        last_zxid: self.disk.log.last().map_or(0, |e| e.zxid),
                    },
                });
            }
            (FPhase::Syncing, Packet::Diff { last }) => {
                f.snapshot = false;
                f.commit_upto = f.commit_upto.max(last);
            }
            (FPhase::Syncing, Packet::Trunc { to }) => {
                f.snapshot = true;
                f.commit_upto = f.commit_upto.max(to);
                let keep = self.disk.log.iter().take_while(|e| e.zxid <= to).count();
                self.disk.log.truncate(keep);
                self.disk.synced = self.disk.synced.min(keep);
                self.applied = self.applied.min(keep);
            }
            (FPhase::Syncing, Packet::Snap { entries }) => {
                f.snapshot = true;
                f.commit_upto = entries.last().map_or(0, |e| e.zxid);
                // The snapshot replaces the state; it reaches disk at
                // NEWLEADER (the snapshot is written then).
                self.disk.log = entries;
                self.disk.synced = 0;
                self.applied = 0;
            }
            (FPhase::Syncing, Packet::Proposal(e)) => {
                if f.newleader_seen {
                    // Between NEWLEADER and UPTODATE: logged now, acked
                    // once serving.
                    if self.disk.log.last().is_none_or(|l| l.zxid < e.zxid) {
                        self.disk.log.push(e);
                        out.push(Out::Sync);
                    }
                } else {
                    f.held.push(e);
                }
            }
            (FPhase::Syncing, Packet::Commit { zxid }) => {
                if f.snapshot && !f.newleader_seen {
                    // Into the state the NEWLEADER snapshot captures.
                    if let Some(i) = f.held.iter().position(|e| e.zxid == zxid) {
                        let e = f.held.remove(i);
                        self.disk.log.push(e);
                    }
                }
                f.commit_upto = f.commit_upto.max(zxid);
            }
            (FPhase::Syncing, Packet::NewLeader { epoch }) => {
                self.disk.current_epoch = epoch;
                f.newleader_seen = true;
                // Everything logged from here on is acked (harmless for
                // what is already committed, needed for what is not).
                f.unacked = self.disk.log.len();
                let held = std::mem::take(&mut f.held);
                for e in held {
                    if self.disk.log.last().is_none_or(|l| l.zxid < e.zxid) {
                        self.disk.log.push(e);
                    }
                }
                f.newleader_after = Some(self.disk.log.len());
                out.push(Out::Sync);
            }
            (FPhase::Syncing, Packet::UpToDate) => {
                f.phase = FPhase::Broadcast;
                self.election.set_vote_epoch(f.new_epoch);
                let upto = f.commit_upto;
                self.apply_upto(upto, &mut out);
                let Role::Following(f) = &mut self.role else {
                    return out;
                };
                out.push(Out::Send {
                    link,
                    p: Packet::Ack {
                        zxid: make_zxid(f.new_epoch, 0),
                    },
                });
                // What became durable before UPTODATE is acked now.
                let synced = self.disk.synced;
                out.extend(self.on_durable(synced));
            }
            (FPhase::Broadcast, Packet::Proposal(e))
                if self.disk.log.last().is_none_or(|l| l.zxid < e.zxid) =>
            {
                self.disk.log.push(e);
                out.push(Out::Sync);
            }
            (FPhase::Broadcast, Packet::Commit { zxid }) => self.apply_upto(zxid, &mut out),
            (_, Packet::Ping) => out.push(Out::Send {
                link,
                p: Packet::PingReply,
            }),
            _ => {}
        }
        out
    }

    fn apply_upto(&mut self, zxid: i64, out: &mut Vec<Out>) {
        let upto = self.disk.log.iter().take_while(|e| e.zxid <= zxid).count();
        if upto > self.applied {
            let newly = self.disk.log[self.applied..upto].to_vec();
            self.applied = upto;
            out.push(Out::Applied(newly));
        }
    }
}
