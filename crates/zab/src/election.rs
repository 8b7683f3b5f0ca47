//! FastLeaderElection (Apache ZooKeeper 3.8) as a state machine.
//!
//! The shell feeds it notifications from peers ([`Election::on_message`]) and
//! the passage of time ([`Election::on_tick`]); it answers with
//! notifications to send and, once, the decision ([`Out::Decided`]). Votes
//! are ordered by (peer epoch, zxid, server id); a server decides when a
//! quorum agrees with its proposal and nothing better arrives within
//! `FINALIZE_WAIT_MS`, or when a quorum reports following the same leader
//! and that leader says it leads.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::config::QuorumConfig;
use crate::wire::{Notification, NOTIFICATION_VERSION};

/// How long a quorum-backed proposal must stand before deciding, and the
/// first re-send interval (FastLeaderElection.finalizeWait).
pub const FINALIZE_WAIT_MS: i64 = 200;
/// The longest interval between re-sends while looking.
pub const MAX_NOTIFICATION_INTERVAL_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_i32(v: i32) -> Option<ServerState> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ServerState::Looking => "looking",
            ServerState::Following => "following",
            ServerState::Leading => "leading",
            ServerState::Observing => "observing",
        }
    }
}

/// A vote, compared as Apache's Vote.equals compares.
#[derive(Debug, Clone, Copy)]
pub struct Vote {
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub state: ServerState,
    pub version: i32,
}

impl PartialEq for Vote {
    fn eq(&self, o: &Vote) -> bool {
        if self.state == ServerState::Looking || o.state == ServerState::Looking {
            self.leader == o.leader
                && self.zxid == o.zxid
                && self.election_epoch == o.election_epoch
                && self.peer_epoch == o.peer_epoch
        } else if (self.version > 0) ^ (o.version > 0) {
            // Mixed ensembles around ZOOKEEPER-1732: ids only.
            self.leader == o.leader
        } else {
            // Out of election, zxids and election epochs may legitimately
            // differ (ZOOKEEPER-1805).
            self.leader == o.leader && self.peer_epoch == o.peer_epoch
        }
    }
}

/// What the election asks of the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Send {
        to: u64,
        n: Notification,
    },
    /// The election ended: lead, follow or observe `vote.leader`.
    Decided {
        state: ServerState,
        vote: Vote,
    },
    /// Leading: a server that voted for us is looking again (Apache's
    /// Leader.reportLookingSid, for zookeeper.leader.maxTimeToWaitForEpoch).
    VoterLooking {
        sid: u64,
    },
}

pub struct Election {
    my_id: u64,
    cfg: QuorumConfig,
    config_text: Bytes,
    state: ServerState,
    logical_clock: i64,
    proposed_leader: i64,
    proposed_zxid: i64,
    proposed_epoch: i64,
    last_zxid: i64,
    current_epoch: i64,
    recv_set: BTreeMap<u64, Vote>,
    out_of_election: BTreeMap<u64, Vote>,
    not_timeout: i64,
    next_resend_at: i64,
    /// Set while a quorum backs our proposal: decide at this time unless
    /// a better notification arrives first.
    finalize_at: Option<i64>,
    current_vote: Vote,
    /// Notifications to ourselves, handled before a call returns.
    loopback: VecDeque<Notification>,
    /// Having decided to lead: the servers whose votes made us leader.
    leading_voters: BTreeSet<u64>,
}

impl Election {
    /// A server that has not started looking yet (its state is Looking;
    /// call [`Election::start`]).
    pub fn new(my_id: u64, cfg: QuorumConfig, last_zxid: i64, current_epoch: i64) -> Election {
        let config_text = Bytes::from(cfg.to_string());
        Election {
            my_id,
            cfg,
            config_text,
            state: ServerState::Looking,
            logical_clock: 0,
            proposed_leader: my_id as i64,
            proposed_zxid: last_zxid,
            proposed_epoch: current_epoch,
            last_zxid,
            current_epoch,
            recv_set: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            not_timeout: FINALIZE_WAIT_MS,
            next_resend_at: 0,
            finalize_at: None,
            current_vote: Vote {
                leader: my_id as i64,
                zxid: last_zxid,
                election_epoch: 0,
                peer_epoch: current_epoch,
                state: ServerState::Looking,
                version: NOTIFICATION_VERSION,
            },
            loopback: VecDeque::new(),
            leading_voters: BTreeSet::new(),
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    pub fn current_vote(&self) -> Vote {
        self.current_vote
    }

    pub fn config(&self) -> &QuorumConfig {
        &self.cfg
    }

    /// A reconfiguration was activated: votes are counted over `cfg` now.
    pub fn set_config(&mut self, cfg: QuorumConfig) {
        self.config_text = Bytes::from(cfg.to_string());
        self.cfg = cfg;
    }

    fn participant(&self) -> bool {
        self.cfg.is_voter(self.my_id)
    }

    fn init_id(&self) -> i64 {
        if self.participant() {
            self.my_id as i64
        } else {
            i64::MIN
        }
    }

    fn init_zxid(&self) -> i64 {
        if self.participant() {
            self.last_zxid
        } else {
            i64::MIN
        }
    }

    fn init_epoch(&self) -> i64 {
        if self.participant() {
            self.current_epoch
        } else {
            i64::MIN
        }
    }

    fn valid_voter(&self, sid: i64) -> bool {
        sid >= 0 && self.cfg.is_voter(sid as u64)
    }

    /// FastLeaderElection.totalOrderPredicate: does (id, zxid, epoch) beat
    /// the current proposal?
    fn better(&self, id: i64, zxid: i64, epoch: i64, cid: i64, czxid: i64, cepoch: i64) -> bool {
        // A voter of weight 0 (hierarchical quorums) is never elected.
        if !self.valid_voter(id) || self.cfg.weight(id as u64) == 0 {
            return false;
        }
        epoch > cepoch || (epoch == cepoch && (zxid > czxid || (zxid == czxid && id > cid)))
    }

    /// Begins a new round: with the server's last logged zxid and current
    /// epoch, it proposes itself and tells every voter.
    pub fn start(&mut self, now: i64, last_zxid: i64, current_epoch: i64) -> Vec<Out> {
        self.state = ServerState::Looking;
        self.last_zxid = last_zxid;
        self.current_epoch = current_epoch;
        self.logical_clock += 1;
        self.proposed_leader = self.init_id();
        self.proposed_zxid = self.init_zxid();
        self.proposed_epoch = self.init_epoch();
        self.recv_set.clear();
        self.out_of_election.clear();
        self.leading_voters.clear();
        self.not_timeout = FINALIZE_WAIT_MS;
        self.next_resend_at = now + self.not_timeout;
        self.finalize_at = None;
        let mut out = Vec::new();
        self.send_notifications(&mut out);
        self.drain_loopback(now, &mut out);
        out
    }

    fn notification(&self) -> Notification {
        Notification {
            state: self.state,
            leader: self.proposed_leader,
            zxid: self.proposed_zxid,
            election_epoch: self.logical_clock,
            peer_epoch: self.proposed_epoch,
            version: NOTIFICATION_VERSION,
            config: Some(self.config_text.clone()),
        }
    }

    fn current_vote_notification(&self) -> Notification {
        let v = self.current_vote;
        Notification {
            state: self.state,
            leader: v.leader,
            zxid: v.zxid,
            election_epoch: v.election_epoch,
            peer_epoch: v.peer_epoch,
            version: NOTIFICATION_VERSION,
            config: Some(self.config_text.clone()),
        }
    }

    fn send_notifications(&mut self, out: &mut Vec<Out>) {
        let n = self.notification();
        let voters: Vec<u64> = self.cfg.voters().collect();
        for to in voters {
            if to == self.my_id {
                self.loopback.push_back(n.clone());
            } else {
                out.push(Out::Send { to, n: n.clone() });
            }
        }
    }

    fn drain_loopback(&mut self, now: i64, out: &mut Vec<Out>) {
        // Bounded: each loopback message is handled once, and handling one
        // sends at most one more round while the proposal improves.
        let mut budget = 4 * (self.cfg.members.len() + 4);
        while let Some(n) = self.loopback.pop_front() {
            if budget == 0 || self.state != ServerState::Looking {
                self.loopback.clear();
                break;
            }
            budget -= 1;
            self.looking_step(self.my_id, n, now, out);
        }
    }

    /// A notification from server `from` (the receiver thread and the
    /// looking loop of FastLeaderElection in one step).
    pub fn on_message(&mut self, from: u64, n: Notification, now: i64) -> Vec<Out> {
        let mut out = Vec::new();
        if !self.valid_voter(from as i64) {
            // Observers and non-voters get our view at once.
            let mut reply = self.current_vote_notification();
            reply.election_epoch = self.logical_clock;
            out.push(Out::Send { to: from, n: reply });
            return out;
        }
        if self.state == ServerState::Looking {
            // A looking peer in an older round, or proposing a worse leader
            // in ours, hears our proposal now. (Apache answers only the
            // older round; the other case waits for the peer's re-send, as
            // when the peer's first notification reached us before we
            // were looking: a whole extra finalize wait of 200 ms.)
            let lagging = n.state == ServerState::Looking
                && (n.election_epoch < self.logical_clock
                    || (n.election_epoch == self.logical_clock
                        && self.better(
                            self.proposed_leader,
                            self.proposed_zxid,
                            self.proposed_epoch,
                            n.leader,
                            n.zxid,
                            n.peer_epoch,
                        )));
            self.looking_step(from, n, now, &mut out);
            if lagging && self.state == ServerState::Looking {
                out.push(Out::Send {
                    to: from,
                    n: self.notification(),
                });
            }
            self.drain_loopback(now, &mut out);
        } else if n.state == ServerState::Looking {
            // Not looking ourselves: tell a looking peer whom we follow.
            out.push(Out::Send {
                to: from,
                n: self.current_vote_notification(),
            });
            if self.state == ServerState::Leading && self.leading_voters.contains(&from) {
                out.push(Out::VoterLooking { sid: from });
            }
        }
        out
    }

    /// Re-sends while looking and nothing arrives; decides once a quorum
    /// has backed the proposal for `FINALIZE_WAIT_MS`.
    pub fn on_tick(&mut self, now: i64) -> Vec<Out> {
        let mut out = Vec::new();
        if self.state != ServerState::Looking || !self.started() {
            return out;
        }
        if let Some(at) = self.finalize_at {
            if now >= at {
                self.finalize_at = None;
                let leader = self.proposed_leader;
                let vote = Vote {
                    leader,
                    zxid: self.proposed_zxid,
                    election_epoch: self.logical_clock,
                    peer_epoch: self.proposed_epoch,
                    state: ServerState::Looking,
                    version: NOTIFICATION_VERSION,
                };
                self.decide(leader, vote, &mut out);
                return out;
            }
            return out;
        }
        if now >= self.next_resend_at {
            self.send_notifications(&mut out);
            self.not_timeout = (self.not_timeout * 2).min(MAX_NOTIFICATION_INTERVAL_MS);
            self.next_resend_at = now + self.not_timeout;
            self.drain_loopback(now, &mut out);
        }
        out
    }

    /// When the shell should call [`Election::on_tick`] next.
    pub fn next_deadline(&self) -> Option<i64> {
        if self.state != ServerState::Looking || !self.started() {
            return None;
        }
        Some(self.finalize_at.unwrap_or(self.next_resend_at))
    }

    /// Has [`Election::start`] run? Before it, a tick would re-send a
    /// notification of round 0, which no election has (Apache's first
    /// round is 1).
    fn started(&self) -> bool {
        self.logical_clock > 0
    }

    /// After syncing with a leader of `epoch` (QuorumPeer.updateElectionVote).
    pub fn set_vote_epoch(&mut self, epoch: i64) {
        self.current_vote.peer_epoch = epoch;
    }

    fn decide(&mut self, leader: i64, mut vote: Vote, out: &mut Vec<Out>) {
        let state = if leader == self.my_id as i64 {
            ServerState::Leading
        } else if self.participant() {
            ServerState::Following
        } else {
            ServerState::Observing
        };
        self.state = state;
        vote.state = state;
        // Who backed this leader, in the votes that decided it (Apache's
        // vote tracker, kept by a leader to spot a voter changing its mind).
        self.leading_voters = if state == ServerState::Leading {
            self.recv_set
                .iter()
                .chain(&self.out_of_election)
                .filter(|(_, v)| v.leader == leader)
                .map(|(k, _)| *k)
                .collect()
        } else {
            BTreeSet::new()
        };
        self.current_vote = vote;
        self.finalize_at = None;
        self.recv_set.clear();
        self.out_of_election.clear();
        self.loopback.clear();
        out.push(Out::Decided { state, vote });
    }

    fn quorum_agrees(&self, votes: &BTreeMap<u64, Vote>, v: &Vote) -> bool {
        let acks: BTreeSet<u64> = votes
            .iter()
            .filter(|(_, w)| *w == v)
            .map(|(k, _)| *k)
            .collect();
        self.cfg.is_quorum(&acks)
    }

    fn check_leader(&self, votes: &BTreeMap<u64, Vote>, leader: i64, election_epoch: i64) -> bool {
        if leader != self.my_id as i64 {
            if leader < 0 {
                return false;
            }
            matches!(votes.get(&(leader as u64)), Some(v) if v.state == ServerState::Leading)
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn looking_step(&mut self, from: u64, n: Notification, now: i64, out: &mut Vec<Out>) {
        if !(self.valid_voter(from as i64) && self.valid_voter(n.leader)) {
            return;
        }
        if let Some(_at) = self.finalize_at {
            // Waiting to decide: only a better proposal interrupts; anything
            // else is dropped and the wait starts again (as the poll loop).
            if self.better(
                n.leader,
                n.zxid,
                n.peer_epoch,
                self.proposed_leader,
                self.proposed_zxid,
                self.proposed_epoch,
            ) {
                self.finalize_at = None;
            } else {
                self.finalize_at = Some(now + FINALIZE_WAIT_MS);
                return;
            }
        }
        match n.state {
            ServerState::Looking => {
                if self.init_zxid() == -1 || n.zxid == -1 {
                    return;
                }
                if n.election_epoch > self.logical_clock {
                    self.logical_clock = n.election_epoch;
                    self.recv_set.clear();
                    if self.better(
                        n.leader,
                        n.zxid,
                        n.peer_epoch,
                        self.init_id(),
                        self.init_zxid(),
                        self.init_epoch(),
                    ) {
                        self.update_proposal(n.leader, n.zxid, n.peer_epoch);
                    } else {
                        let (i, z, e) = (self.init_id(), self.init_zxid(), self.init_epoch());
                        self.update_proposal(i, z, e);
                    }
                    self.send_notifications(out);
                } else if n.election_epoch < self.logical_clock {
                    return;
                } else if self.better(
                    n.leader,
                    n.zxid,
                    n.peer_epoch,
                    self.proposed_leader,
                    self.proposed_zxid,
                    self.proposed_epoch,
                ) {
                    self.update_proposal(n.leader, n.zxid, n.peer_epoch);
                    self.send_notifications(out);
                }
                self.recv_set.insert(
                    from,
                    Vote {
                        leader: n.leader,
                        zxid: n.zxid,
                        election_epoch: n.election_epoch,
                        peer_epoch: n.peer_epoch,
                        state: ServerState::Looking,
                        version: 0,
                    },
                );
                let mine = Vote {
                    leader: self.proposed_leader,
                    zxid: self.proposed_zxid,
                    election_epoch: self.logical_clock,
                    peer_epoch: self.proposed_epoch,
                    state: ServerState::Looking,
                    version: 0,
                };
                if self.quorum_agrees(&self.recv_set, &mine) {
                    self.finalize_at = Some(now + FINALIZE_WAIT_MS);
                }
            }
            ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => {
                let stored = Vote {
                    leader: n.leader,
                    zxid: n.zxid,
                    election_epoch: n.election_epoch,
                    peer_epoch: n.peer_epoch,
                    state: n.state,
                    version: 0,
                };
                let theirs = Vote {
                    version: n.version,
                    ..stored
                };
                let end = Vote {
                    state: ServerState::Looking,
                    version: NOTIFICATION_VERSION,
                    ..stored
                };
                if n.election_epoch == self.logical_clock {
                    self.recv_set.insert(from, stored);
                    if self.quorum_agrees(&self.recv_set, &theirs)
                        && self.check_leader(&self.recv_set, n.leader, n.election_epoch)
                    {
                        self.decide(n.leader, end, out);
                        return;
                    }
                }
                self.out_of_election.insert(from, theirs);
                if self.quorum_agrees(&self.out_of_election, &theirs)
                    && self.check_leader(&self.out_of_election, n.leader, n.election_epoch)
                {
                    self.logical_clock = n.election_epoch;
                    self.decide(n.leader, end, out);
                }
            }
        }
    }

    fn update_proposal(&mut self, leader: i64, zxid: i64, epoch: i64) {
        self.proposed_leader = leader;
        self.proposed_zxid = zxid;
        self.proposed_epoch = epoch;
    }
}
