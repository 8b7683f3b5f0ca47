//! ZAB's phases for one server as a pure state machine: discovery (the
//! new epoch one past a quorum's accepted epochs), synchronisation (DIFF,
//! TRUNC or SNAP as [`crate::sync::plan`] chooses, NEWLEADER acked by a
//! quorum, UPTODATE) and broadcast (proposals logged, acked once durable,
//! committed by a quorum through [`crate::ack::AckTracker`]). Elections go
//! through [`crate::Election`].
//!
//! The deterministic simulation (tests/zab_sim.rs) checks it under loss,
//! partitions and crashes. The protocol is [`crate::leading`] and
//! [`crate::learner`], the code the server runs (crates/server/src/ensemble);
//! this model carries out their actions on a disk where values stand in
//! for txns and the log is the state.

use std::collections::BTreeMap;

use crate::election::{Election, Out as ElectionOut, ServerState};
use crate::leading::{self, Leading};
use crate::learner::{Do, Learner, Proposal};
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
    /// An observer's commit: the txn whole.
    Inform(Entry),
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

/// Following: the protocol is [`Learner`], the code the server runs; the
/// rest is this model's own bookkeeping.
#[derive(Debug)]
struct Following {
    leader: u64,
    link: Option<u64>,
    learner: Learner<Entry>,
    /// What is known committed: the sync point, and what was applied into
    /// the state during a SNAP or TRUNC sync (this model's log is its state
    /// as well, and after a restart nothing in it counts as committed until
    /// a leader says so).
    commit_upto: i64,
    last_heard: i64,
    deadline: i64,
}

impl Proposal for Entry {
    type Logged = Entry;

    fn zxid(&self) -> i64 {
        self.zxid
    }

    fn time(&self) -> i64 {
        0
    }

    fn logged(&self) -> Entry {
        *self
    }
}

/// Leading: the protocol is [`Leading`], the code the server runs; the rest
/// is this model's own bookkeeping.
#[derive(Debug)]
struct Leader {
    m: Leading,
    /// Who is on each link (the model knows it from the connection).
    sids: BTreeMap<u64, u64>,
    /// COMMITs (INFORMs) held for a syncing learner until its UPTODATE.
    held: BTreeMap<u64, Vec<Packet>>,
    next_counter: i64,
}

#[derive(Debug)]
enum Role {
    Looking,
    Following(Following),
    Leading(Leader),
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
    /// The time of the latest event (for actions that come without one).
    clock: i64,
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
            clock: now,
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
            Role::Leading(l) if l.m.established() => Some(l.m.epoch()),
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
                // The model leaves maxTimeToWaitForEpoch off, as Apache does.
                ElectionOut::VoterLooking { .. } => {}
                ElectionOut::Decided { state, vote } => match state {
                    ServerState::Leading => self.lead(now, out),
                    _ => {
                        let leader = vote.leader as u64;
                        self.role = Role::Following(Following {
                            leader,
                            link: None,
                            learner: Learner::new(!self.cfg.is_voter(self.id)),
                            commit_upto: 0,
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
        let mut m = Leading::new(
            self.id,
            self.cfg.is_voter(self.id),
            self.disk.accepted_epoch,
            (self.disk.current_epoch, self.last_zxid()),
            now + self.init_limit * self.tick_ms,
        );
        let todo = m.start(&self.cfg);
        self.role = Role::Leading(Leader {
            m,
            sids: BTreeMap::new(),
            held: BTreeMap::new(),
            next_counter: 0,
        });
        self.leading_do(todo, out);
    }

    /// An election message from `from`.
    pub fn on_notification(&mut self, from: u64, n: Notification, now: i64) -> Vec<Out> {
        self.clock = now;
        let outs = self.election.on_message(from, n, now);
        let mut out = Vec::new();
        self.election_outs(outs, now, &mut out);
        out
    }

    /// Follower side: the link to the leader is up.
    pub fn on_connected(&mut self, link: u64, now: i64) -> Vec<Out> {
        self.clock = now;
        let mut out = Vec::new();
        if let Role::Following(f) = &mut self.role {
            if f.link.is_none() {
                f.link = Some(link);
                f.learner.connected();
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
        self.clock = now;
        if let Role::Leading(l) = &mut self.role {
            l.m.connected(link, now);
            l.sids.insert(link, sid);
        }
    }

    /// A link closed (or could not be opened).
    pub fn on_link_down(&mut self, link: u64, now: i64) -> Vec<Out> {
        self.clock = now;
        match &mut self.role {
            Role::Following(f) if f.link == Some(link) || f.link.is_none() => self.look(now),
            Role::Leading(l) => {
                l.m.link_down(link);
                l.sids.remove(&link);
                l.held.remove(&link);
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
        let durable = self.durable_zxid();
        match &mut self.role {
            Role::Following(f) => {
                if f.link.is_none() {
                    return out;
                }
                let todo = f.learner.durable(durable);
                self.learner_do(todo, 0, &mut out);
            }
            Role::Leading(l) if synced > 0 => {
                let z = self.disk.log[synced - 1].zxid;
                let todo = l.m.durable(&self.cfg, z);
                self.leading_do(todo, &mut out);
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
        if !l.m.established() {
            return out;
        }
        l.next_counter += 1;
        let e = Entry {
            zxid: make_zxid(l.m.epoch(), l.next_counter),
            value,
        };
        l.m.propose(e.zxid);
        for link in l.m.in_broadcast(false) {
            out.push(Out::Send {
                link,
                p: Packet::Proposal(e),
            });
        }
        self.disk.log.push(e);
        out.push(Out::Sync);
        out
    }

    pub fn on_tick(&mut self, now: i64) -> Vec<Out> {
        self.clock = now;
        let mut out = Vec::new();
        let outs = self.election.on_tick(now);
        self.election_outs(outs, now, &mut out);
        let sync_ms = self.sync_limit * self.tick_ms;
        match &mut self.role {
            Role::Following(f) => {
                let late = if f.learner.serving() {
                    now - f.last_heard > sync_ms
                } else {
                    now > f.deadline
                };
                if late {
                    out.extend(self.look(now));
                }
            }
            Role::Leading(l) => {
                for link in l.m.in_broadcast(true) {
                    out.push(Out::Send {
                        link,
                        p: Packet::Ping,
                    });
                }
                if l.m.tick(&self.cfg, now, sync_ms).is_some() {
                    out.extend(self.look(now));
                }
            }
            Role::Looking => {}
        }
        out
    }

    /// A packet on `link`.
    pub fn on_packet(&mut self, link: u64, p: Packet, now: i64) -> Vec<Out> {
        self.clock = now;
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
        let Some(&sid) = l.sids.get(&link) else {
            return out;
        };
        l.m.heard(link, now);
        let todo = match p {
            Packet::FollowerInfo { accepted_epoch } => {
                let observer = !self.cfg.is_voter(sid);
                l.m.info(&self.cfg, link, sid, observer, accepted_epoch)
            }
            Packet::AckEpoch {
                current_epoch,
                last_zxid,
            } => l.m.ack_epoch(&self.cfg, link, current_epoch, last_zxid),
            Packet::Ack { zxid } => l.m.ack(&self.cfg, link, zxid),
            _ => Vec::new(),
        };
        self.leading_do(todo, &mut out);
        out
    }

    /// Carries out what the leader asked on this model's log, as the
    /// server's leader does on its files, tree and sockets.
    fn leading_do(&mut self, todo: Vec<leading::Do>, out: &mut Vec<Out>) {
        use leading::Do as L;
        for d in todo {
            let Role::Leading(l) = &mut self.role else {
                return;
            };
            match d {
                L::AcceptEpoch(e) => self.disk.accepted_epoch = e,
                L::LeaderInfo { link } => out.push(Out::Send {
                    link,
                    p: Packet::LeaderInfo { epoch: l.m.epoch() },
                }),
                L::TurnAway { link, .. } => {
                    l.sids.remove(&link);
                    out.push(Out::CloseLink { link });
                }
                L::Sync {
                    link,
                    last_zxid,
                    observer,
                } => {
                    // The leader's history: its applied (committed)
                    // entries; in discovery that is its whole log. What is
                    // in flight follows as proposals.
                    let (history, in_flight) = if l.m.established() {
                        self.disk.log.split_at(self.applied)
                    } else {
                        (&self.disk.log[..], &[][..])
                    };
                    let zxids: Vec<i64> = history.iter().map(|e| e.zxid).collect();
                    let last = zxids.last().copied().unwrap_or(0);
                    let from = match plan(last_zxid, &zxids, last) {
                        SyncPlan::Diff { from } => {
                            out.push(Out::Send {
                                link,
                                p: Packet::Diff { last },
                            });
                            from
                        }
                        SyncPlan::Trunc { to, from } => {
                            out.push(Out::Send {
                                link,
                                p: Packet::Trunc { to },
                            });
                            from
                        }
                        SyncPlan::Snap => {
                            out.push(Out::Send {
                                link,
                                p: Packet::Snap {
                                    entries: history.to_vec(),
                                },
                            });
                            history.len()
                        }
                    };
                    for e in &history[from..] {
                        out.push(Out::Send {
                            link,
                            p: Packet::Proposal(*e),
                        });
                        out.push(Out::Send {
                            link,
                            p: Packet::Commit { zxid: e.zxid },
                        });
                    }
                    // Observers take no proposals: what is in flight
                    // reaches them as INFORMs once committed.
                    for e in in_flight.iter().filter(|_| !observer) {
                        out.push(Out::Send {
                            link,
                            p: Packet::Proposal(*e),
                        });
                    }
                    out.push(Out::Send {
                        link,
                        p: Packet::NewLeader { epoch: l.m.epoch() },
                    });
                }
                L::Establish { epoch } => {
                    self.disk.current_epoch = epoch;
                    self.election.set_vote_epoch(epoch);
                    // Our history is now the quorum's: it counts as
                    // committed.
                    let upto = self.disk.log.last().map_or(0, |e| e.zxid);
                    self.apply_upto(upto, out);
                    out.push(Out::Leading { epoch });
                }
                L::UpToDate { link } => {
                    out.push(Out::Send {
                        link,
                        p: Packet::UpToDate,
                    });
                    for p in l.held.remove(&link).unwrap_or_default() {
                        out.push(Out::Send { link, p });
                    }
                }
                L::StepDown { .. } => {
                    out.extend(self.look(self.clock));
                    return;
                }
                L::Commit(zxids) => {
                    for &zxid in &zxids {
                        let f = l.m.committed();
                        let mut fan = |now: Vec<u64>, hold: Vec<u64>, p: Packet| {
                            for link in now {
                                out.push(Out::Send { link, p: p.clone() });
                            }
                            for link in hold {
                                l.held.entry(link).or_default().push(p.clone());
                            }
                        };
                        fan(f.commit, f.hold_commit, Packet::Commit { zxid });
                        if f.inform.is_empty() && f.hold_inform.is_empty() {
                            continue;
                        }
                        let i = self
                            .disk
                            .log
                            .binary_search_by_key(&zxid, |e| e.zxid)
                            .expect("a committed txn is in the leader's log");
                        fan(f.inform, f.hold_inform, Packet::Inform(self.disk.log[i]));
                    }
                    if let Some(&last) = zxids.last() {
                        self.apply_upto(last, out);
                    }
                }
            }
        }
    }

    fn follower_packet(&mut self, p: Packet, now: i64) -> Vec<Out> {
        let mut out = Vec::new();
        let last = self.last_zxid();
        let Role::Following(f) = &mut self.role else {
            return out;
        };
        let link = f.link.expect("connected");
        f.last_heard = now;
        let ends_sync = matches!(p, Packet::NewLeader { .. } | Packet::UpToDate);
        let todo = match p {
            Packet::LeaderInfo { epoch } => f.learner.leader_info(
                epoch,
                self.disk.accepted_epoch,
                self.disk.current_epoch,
                last,
            ),
            Packet::Diff { last } => {
                f.learner.diff(last);
                Vec::new()
            }
            Packet::Trunc { to } => f.learner.trunc(to),
            Packet::Snap { entries } => {
                if f.learner.snap(entries.last().map_or(0, |e| e.zxid)) {
                    // The snapshot replaces the state; it reaches disk at
                    // NEWLEADER (Do::Snapshot).
                    self.disk.log = entries;
                    self.disk.synced = 0;
                    self.applied = 0;
                }
                Vec::new()
            }
            Packet::Proposal(e) => f.learner.proposal(e),
            Packet::Inform(e) => f.learner.inform(e),
            Packet::Commit { zxid } => f.learner.commit(zxid),
            Packet::NewLeader { epoch } => f.learner.newleader(make_zxid(epoch, 0)),
            Packet::UpToDate => f.learner.uptodate(),
            Packet::Ping => {
                out.push(Out::Send {
                    link,
                    p: Packet::PingReply,
                });
                Vec::new()
            }
            _ => Vec::new(),
        };
        if self.learner_do(todo, now, &mut out) && ends_sync {
            // As the server does: NEWLEADER's ACK, or the proposals', may be
            // due already for what is durable.
            let durable = self.durable_zxid();
            if let Role::Following(f) = &mut self.role {
                let todo = f.learner.durable(durable);
                self.learner_do(todo, now, &mut out);
            }
        }
        out
    }

    /// The zxid the log is durable up to.
    fn durable_zxid(&self) -> i64 {
        match self.disk.synced {
            0 => 0,
            n => self.disk.log[n - 1].zxid,
        }
    }

    /// Carries out what the learner asked on this model's disk and state,
    /// as the server's follower does on its files and tree. False once it
    /// gave up following.
    fn learner_do(&mut self, todo: Vec<Do<Entry>>, now: i64, out: &mut Vec<Out>) -> bool {
        for d in todo {
            let Role::Following(f) = &mut self.role else {
                return false;
            };
            let link = f.link.expect("connected");
            match d {
                Do::AcceptEpoch(e) => self.disk.accepted_epoch = e,
                Do::AckEpoch { current_epoch } => out.push(Out::Send {
                    link,
                    p: Packet::AckEpoch {
                        current_epoch,
                        last_zxid: self.disk.log.last().map_or(0, |e| e.zxid),
                    },
                }),
                Do::Truncate(to) => {
                    let keep = self.disk.log.iter().take_while(|e| e.zxid <= to).count();
                    self.disk.log.truncate(keep);
                    self.disk.synced = self.disk.synced.min(keep);
                    self.applied = self.applied.min(keep);
                }
                // The state so far (all of this log) is written at once.
                Do::Snapshot => self.disk.synced = self.disk.log.len(),
                Do::CurrentEpoch(e) => self.disk.current_epoch = e,
                Do::Log(e) => {
                    assert!(
                        self.disk.log.last().is_none_or(|l| l.zxid < e.zxid),
                        "server {} logs {e:?} out of zxid order",
                        self.id
                    );
                    self.disk.log.push(e);
                    out.push(Out::Sync);
                }
                Do::Apply(e) if f.learner.serving() => {
                    let upto = f.commit_upto.max(e.zxid);
                    f.commit_upto = upto;
                    self.apply_upto(upto, out);
                }
                Do::Apply(e) => {
                    // A SNAP or TRUNC sync: into the state, visible once
                    // serving.
                    assert!(
                        self.disk.log.last().is_none_or(|l| l.zxid < e.zxid),
                        "server {} applies {e:?} out of zxid order",
                        self.id
                    );
                    f.commit_upto = f.commit_upto.max(e.zxid);
                    self.disk.log.push(e);
                }
                Do::Committed(z) => {
                    let upto = f.commit_upto.max(z);
                    f.commit_upto = upto;
                    self.apply_upto(upto, out);
                }
                Do::Ack { zxid, .. } => out.push(Out::Send {
                    link,
                    p: Packet::Ack { zxid },
                }),
                Do::Serving { epoch } => self.election.set_vote_epoch(epoch),
                Do::Unmatched(_) => {}
                Do::Abandon(_) => {
                    out.extend(self.look(now));
                    return false;
                }
            }
        }
        true
    }

    fn apply_upto(&mut self, zxid: i64, out: &mut Vec<Out>) {
        let upto = self.disk.log.iter().take_while(|e| e.zxid <= zxid).count();
        if upto > self.applied {
            let newly = &self.disk.log[self.applied..upto];
            self.applied = upto;
            // One Applied for a step's entries: the simulation places them
            // by where `applied` ends.
            match out.iter_mut().find_map(|o| match o {
                Out::Applied(es) => Some(es),
                _ => None,
            }) {
                Some(es) => es.extend_from_slice(newly),
                None => out.push(Out::Applied(newly.to_vec())),
            }
        }
    }
}
