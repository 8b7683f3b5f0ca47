//! Following (and observing): connect to the leader's quorum port, take
//! its epoch, sync (DIFF, TRUNC or SNAP up to NEWLEADER, serving from
//! UPTODATE), then log proposals and ACK each once on disk, apply commits,
//! answer pings with session touches, as Apache's Learner does. The
//! protocol's decisions are `zab::learner`'s (simulated); this file carries
//! out its actions on sockets, files and the tree.

use std::collections::VecDeque;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use jute::codec::{Reader, Record};
use jute::quorum::{LearnerInfo, QuorumPacket};
use jute::txn::Txn;
use tracing::{info, warn};
use zab::learner::{Do, Learner, Phase, Proposal};
use zab::wire::{self, packet};
use zab::{epoch_of, make_zxid};

use super::leader::{next_link, SyncFor};
use super::link::{self, Sock};
use super::{ElectionCmd, LinkId, QMsg, Role};
use crate::core::{Core, Msg};

/// A proposal as the leader sent it: the txn, and its bytes, which the log
/// takes as they are (a proposal's data is the txn in the log's format).
pub(crate) struct Prop {
    txn: Txn,
    raw: Bytes,
}

impl Prop {
    fn decode(raw: Bytes) -> Result<Prop, jute::codec::DecodeError> {
        let txn = Txn::read(&mut Reader::new(raw.clone()))?;
        Ok(Prop { txn, raw })
    }
}

impl Proposal for Prop {
    type Logged = (i64, Bytes);

    fn zxid(&self) -> i64 {
        self.txn.header.zxid
    }

    fn time(&self) -> i64 {
        self.txn.header.time
    }

    fn logged(&self) -> (i64, Bytes) {
        (self.txn.header.zxid, self.raw.clone())
    }
}

impl Follower {
    /// What the log holds beyond the tree, when that is all the
    /// difference: serving, every proposal is logged and the tree holds
    /// the committed ones; before syncing nothing changed. None mid-sync
    /// (a TRUNC, SNAP or DIFF may have left the tree and the log apart).
    pub(crate) fn logged_uncommitted(&self) -> Option<Vec<Txn>> {
        match self.learner.phase() {
            Phase::Broadcast => Some(self.learner.pending().map(|p| p.txn.clone()).collect()),
            Phase::Connecting | Phase::Epoch => Some(Vec::new()),
            Phase::Syncing => None,
        }
    }
}

pub struct Follower {
    pub observer: bool,
    pub leader_id: u64,
    /// Whom we sync from: the leader, or with observerMasterPort (an
    /// observer) a follower (mntr's observer_master_id).
    pub master: u64,
    /// A synced follower with observerMasterPort hosts observers.
    pub(crate) om: Option<Box<super::observer_master::ObserverMaster>>,
    link: Option<LinkId>,
    out: Option<link::Outbox>,
    sock: Option<Sock>,
    /// The protocol's state (zab::learner, which the simulation checks).
    learner: Learner<Prop>,
    /// Syncs forwarded to the leader (ours, and observers' we relayed),
    /// answered in order.
    pub(crate) syncs: VecDeque<SyncFor>,
    deadline: i64,
    /// LEADERINFO arrived: synchronisation began (follower_sync_time).
    sync_started: std::time::Instant,
    /// Requests handed to the leader in this pipeline turn, not yet
    /// written (learner_request_processor_queue_size).
    forwarding: u64,
}

impl Follower {
    pub fn serving(&self) -> bool {
        self.learner.serving()
    }

    pub(crate) fn send(&mut self, b: Bytes) {
        if let Some(o) = self.out.as_mut() {
            o.push(&b);
        }
    }

    /// A client's (or a hosted observer's) request for the leader: the
    /// requests before it in this turn are its queue.
    pub(crate) fn send_request(&mut self, b: Bytes, m: &crate::metrics::Metrics) {
        m.learner_request_processor_queue_size
            .observe(self.forwarding);
        self.forwarding += 1;
        self.send(b);
    }

    /// End of a pipeline batch: what the leader (and observers we host)
    /// were sent goes out.
    pub(crate) fn flush(&mut self) {
        self.forwarding = 0;
        if let Some(om) = self.om.as_mut() {
            om.flush();
        }
        if let Some(o) = self.out.as_mut() {
            if o.flush().is_err() {
                warn!("the leader is not reading our packets: disconnecting");
                if let Some(s) = &self.sock {
                    // Our reader then reports the link closed.
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }
}

fn int_data(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

impl Core {
    pub(crate) fn follower(&mut self) -> Option<&mut Follower> {
        match self.ens.as_mut().map(|e| &mut e.role) {
            Some(Role::Following(f)) => Some(f),
            _ => None,
        }
    }

    /// The election chose another server: connect to its quorum port.
    pub(crate) fn become_follower(&mut self, leader_id: u64) {
        let now = self.now_ms();
        let ens = self.ens.as_mut().expect("ensemble");
        let observer = ens.setup.is_observer();
        let Some(m) = ens.setup.quorum.members.get(&leader_id).cloned() else {
            self.become_looking("the elected leader is not in our configuration");
            return;
        };
        let init_ms = ens.setup.init_limit as u64 * self.cfg.tick_time as u64;
        let link_id = next_link();
        let core_tx = ens.core_tx.clone();
        let opts = link::Opts::of(&self.cfg);
        let (master, addr) = match observer
            .then(|| self.next_learner_master(leader_id))
            .flatten()
        {
            Some((id, addr)) => {
                info!("OBSERVING: leader {leader_id}, syncing from follower {id} at {addr}");
                (id, addr)
            }
            None => {
                info!(
                    "{}: leader {leader_id} at {}",
                    if observer { "OBSERVING" } else { "FOLLOWING" },
                    m.quorum_addr()
                );
                (leader_id, m.quorum_addr())
            }
        };
        let ens = self.ens.as_mut().expect("ensemble");
        // Connecting blocks: a thread. As Learner.connectToLeader: at most
        // five tries within connectToLearnerMasterLimit (else initLimit)
        // ticks. A leader that died after the election refuses at once, and
        // five quick refusals send us back to the election instead of
        // waiting out initLimit (20 s by default) unable to serve even
        // read-only clients.
        let connect_ms = match ens.setup.connect_limit {
            0 => init_ms,
            n => n as u64 * self.cfg.tick_time as u64,
        };
        let retry_ms = ens.setup.connect_retry_ms;
        let setup = ens.setup.clone();
        // The host as server.N names it: what a TLS certificate must name.
        let host = addr
            .rsplit_once(':')
            .map_or(addr.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let rt = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let remaining = || connect_ms.saturating_sub(start.elapsed().as_millis() as u64);
            let mut last_err = String::new();
            for _ in 0..5 {
                let left = remaining();
                if left == 0 {
                    break;
                }
                let target = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
                if let Some(t) = target {
                    match TcpStream::connect_timeout(&t, Duration::from_millis(left)).and_then(
                        |s| {
                            let within = Duration::from_millis(left.max(1000));
                            super::secure::connect_learner(&setup, &host, s, &rt, within)
                        },
                    ) {
                        Ok(s) => {
                            link::set_timeout(&s, Duration::from_millis(init_ms));
                            match link::spawn(s, link_id, core_tx.clone(), true, opts.clone()) {
                                Ok(conn) => {
                                    let _ =
                                        core_tx.blocking_send(Msg::Quorum(QMsg::LeaderConnected {
                                            link: link_id,
                                            conn,
                                        }));
                                    return;
                                }
                                Err(e) => last_err = e.to_string(),
                            }
                        }
                        Err(e) => last_err = e.to_string(),
                    }
                } else {
                    last_err = format!("cannot resolve {addr}");
                }
                if remaining() <= retry_ms {
                    break;
                }
                std::thread::sleep(Duration::from_millis(retry_ms));
            }
            let _ = core_tx.blocking_send(Msg::Quorum(QMsg::LinkClosed {
                link: link_id,
                why: format!("cannot connect to {addr}: {last_err}"),
            }));
        });
        self.cfg.metrics.election_finished();
        let ens = self.ens.as_mut().expect("ensemble");
        ens.role = Role::Following(Box::new(Follower {
            observer,
            leader_id,
            master,
            om: None,
            link: Some(link_id),
            out: None,
            sock: None,
            learner: Learner::new(observer),
            syncs: VecDeque::new(),
            deadline: now + init_ms as i64 * 2,
            sync_started: std::time::Instant::now(),
            forwarding: 0,
        }));
        ens.since = now;
    }

    pub(crate) fn follower_msg(&mut self, m: QMsg) {
        let my_link = self.follower().and_then(|f| f.link);
        match m {
            QMsg::LeaderConnected { link, conn } if Some(link) == my_link => {
                let ens = self.ens.as_ref().expect("ensemble");
                let info = LearnerInfo {
                    server_id: ens.setup.my_id as i64,
                    protocol_version: wire::ZAB_PROTOCOL_VERSION,
                    config_version: ens.setup.quorum.version,
                };
                let accepted = ens.accepted_epoch;
                let mut b = BytesMut::new();
                info.write(&mut b);
                let Some(f) = self.follower() else { return };
                let (out, sock, _) = conn.split();
                f.out = Some(out);
                f.sock = Some(sock);
                f.learner.connected();
                let t = if f.observer {
                    packet::OBSERVERINFO
                } else {
                    packet::FOLLOWERINFO
                };
                f.send(link::encode(t, make_zxid(accepted, 0), b.freeze(), vec![]));
            }
            QMsg::LinkClosed { link, why } if Some(link) == my_link => {
                warn!("connection to the leader lost: {why}");
                self.become_looking("lost the leader");
            }
            QMsg::Snap { link, zxid, tree } if Some(link) == my_link => {
                let Some(f) = self.follower() else { return };
                if !f.learner.snap(zxid) {
                    return;
                }
                let mut tree = *tree;
                tree.set_last_zxid(zxid);
                info!(
                    "SNAP from the leader: {} znodes at zxid 0x{zxid:x}",
                    tree.node_count()
                );
                self.replace_tree(tree);
                self.ens
                    .as_mut()
                    .expect("ensemble")
                    .history
                    .reset(Vec::new());
                // What the log holds past the snapshot may be an abandoned
                // branch: cut it, so a restart replays only the leader's.
                self.truncate_log_after(zxid);
            }
            QMsg::Packet { link, pkt, at } if Some(link) == my_link => {
                if let Some(e) = self.ens.as_mut() {
                    e.commit_arrived = at;
                }
                self.leader_packet(pkt)
            }
            QMsg::Tick => {
                let now = self.now_ms();
                let Some(f) = self.follower() else { return };
                if !f.serving() && now > f.deadline {
                    self.become_looking("timed out syncing with the leader");
                    return;
                }
                self.om_tick();
            }
            // Observers we host, on their own links.
            m @ (QMsg::LearnerConnected { .. } | QMsg::Packet { .. } | QMsg::LinkClosed { .. }) => {
                self.om_msg(m)
            }
            _ => {}
        }
    }

    fn leader_packet(&mut self, pkt: QuorumPacket) {
        self.cfg
            .trace
            .quorum_packet(format_args!("the leader"), &pkt);
        let last_logged = self.tree.last_zxid().max(self.zxid);
        let (accepted, current) = {
            let ens = self.ens.as_ref().expect("ensemble");
            (ens.accepted_epoch, ens.current_epoch)
        };
        let metrics = self.cfg.metrics.clone();
        let Some(f) = self.follower() else { return };
        let phase = f.learner.phase();
        let serving = phase == Phase::Broadcast;
        let todo = match (phase, pkt.packet_type) {
            (Phase::Epoch, packet::LEADERINFO) => {
                f.learner
                    .leader_info(epoch_of(pkt.zxid), accepted, current, last_logged)
            }
            (Phase::Syncing, packet::DIFF) => {
                info!("DIFF from the leader up to 0x{:x}", pkt.zxid);
                f.learner.diff(pkt.zxid);
                return;
            }
            (Phase::Syncing, packet::TRUNC) => {
                info!("TRUNC from the leader to 0x{:x}", pkt.zxid);
                f.learner.trunc(pkt.zxid)
            }
            (Phase::Syncing | Phase::Broadcast, packet::PROPOSAL) => match Prop::decode(pkt.data) {
                Ok(p) => {
                    if f.om.is_some() {
                        self.om_proposal(p.txn.header.zxid, &p.raw);
                    }
                    let Some(f) = self.follower() else { return };
                    if serving {
                        metrics.learner_proposal_received_count.inc();
                        crate::metrics::Metrics::txn_age(
                            &metrics.proposal_latency,
                            p.txn.header.time,
                        );
                    }
                    f.learner.proposal(p)
                }
                Err(e) => {
                    warn!("malformed proposal from the leader: {e}");
                    self.become_looking("malformed proposal");
                    return;
                }
            },
            (Phase::Syncing | Phase::Broadcast, packet::COMMIT | packet::COMMITANDACTIVATE) => {
                // COMMITANDACTIVATE: the designated leader's id.
                if let (true, Some(b)) = (
                    f.om.is_some() && pkt.packet_type == packet::COMMITANDACTIVATE,
                    pkt.data.get(..8),
                ) {
                    let leader = i64::from_be_bytes(b.try_into().unwrap());
                    self.om_activate(pkt.zxid, leader);
                }
                let Some(f) = self.follower() else { return };
                if serving {
                    metrics.learner_commit_received_count.inc();
                }
                f.learner.commit(pkt.zxid)
            }
            (Phase::Syncing | Phase::Broadcast, packet::INFORM | packet::INFORMANDACTIVATE) => {
                // INFORMANDACTIVATE: the designated leader's id, then the txn.
                let skip = if pkt.packet_type == packet::INFORM {
                    0
                } else {
                    8
                };
                match pkt
                    .data
                    .get(skip..)
                    .map(|_| Prop::decode(pkt.data.slice(skip..)))
                {
                    Some(Ok(p)) => {
                        if serving {
                            metrics.learner_commit_received_count.inc();
                        }
                        f.learner.inform(p)
                    }
                    _ => {
                        warn!(
                            "malformed {} from the leader",
                            packet::name(pkt.packet_type)
                        );
                        return;
                    }
                }
            }
            (Phase::Syncing, packet::NEWLEADER) => f.learner.newleader(pkt.zxid),
            (Phase::Syncing, packet::UPTODATE) => f.learner.uptodate(),
            (_, packet::PING) => {
                let touches: Vec<(i64, i32)> = self
                    .ens
                    .as_mut()
                    .expect("ensemble")
                    .touched
                    .drain()
                    .collect();
                if let Some(f) = self.follower() {
                    f.send(link::encode(
                        packet::PING,
                        pkt.zxid,
                        wire::encode_touches(&touches),
                        vec![],
                    ));
                }
                return;
            }
            (Phase::Broadcast, packet::SYNC) => {
                match f.syncs.pop_front() {
                    Some(SyncFor::Local { session, xid }) => self.sync_done(session, xid),
                    Some(SyncFor::Learner(link)) => self.om_sync_done(link),
                    None => {}
                }
                return;
            }
            (_, packet::REVALIDATE) => {
                if self.om_revalidated(&pkt) {
                    return;
                }
                let d = &pkt.data;
                if d.len() >= 9 {
                    let sid = i64::from_be_bytes(d[..8].try_into().unwrap());
                    let valid = d[8] != 0;
                    self.revalidated(sid, valid);
                }
                return;
            }
            (phase, t) => {
                warn!(
                    "unexpected {} from the leader while {:?}",
                    packet::name(t),
                    phase
                );
                return;
            }
        };
        let ends_sync = matches!(pkt.packet_type, packet::NEWLEADER | packet::UPTODATE);
        if self.learner_do(todo) && ends_sync {
            // NEWLEADER's ACK (or, at UPTODATE, the proposals') may be due
            // already for what the log holds.
            let durable = self.durable;
            self.follower_durable(durable);
        }
    }

    /// Carries out what the learner asked, in order. False once the
    /// follower gave up (then the rest is moot).
    fn learner_do(&mut self, todo: Vec<Do<Prop>>) -> bool {
        let mut ack_ages = Vec::new();
        for d in todo {
            match d {
                Do::AcceptEpoch(e) => {
                    if !self.persist_epoch(true, e) {
                        return false;
                    }
                }
                Do::AckEpoch { current_epoch } => {
                    let last_logged = self.tree.last_zxid().max(self.zxid);
                    let Some(f) = self.follower() else {
                        return false;
                    };
                    f.sync_started = std::time::Instant::now();
                    f.send(link::encode(
                        packet::ACKEPOCH,
                        last_logged,
                        int_data(current_epoch as i32),
                        vec![],
                    ));
                }
                Do::Truncate(z) => {
                    self.truncate_log_after(z);
                    match crate::persist::load(&self.cfg, &self.layout) {
                        Ok(t) => self.install_loaded(t),
                        Err(e) => {
                            warn!("cannot reload after TRUNC: {e}");
                            self.become_looking("TRUNC failed");
                            return false;
                        }
                    }
                }
                Do::Snapshot => {
                    if let Err(e) = self.snapshot_now() {
                        warn!("cannot take the snapshot after sync: {e}");
                        self.become_looking("snapshot after sync failed");
                        return false;
                    }
                    // The snapshot, not the log, holds what the sync applied.
                    self.durable = self.durable.max(self.tree.last_zxid());
                }
                Do::CurrentEpoch(e) => {
                    if !self.persist_epoch(false, e) {
                        return false;
                    }
                }
                Do::Log((z, raw)) => {
                    self.persist.append_raw(z, raw);
                    self.zxid = self.zxid.max(z);
                }
                Do::Apply(p) => {
                    self.om_commit(p.txn.header.zxid, &p.raw);
                    if self.follower().is_some_and(|f| f.serving()) {
                        self.deferred
                            .txn_age(|m| &m.commit_propagation_latency, p.txn.header.time);
                    }
                    self.apply_committed(p.txn);
                }
                // Our tree already holds what our log held.
                Do::Committed(_) => {}
                Do::Ack { zxid, time } => {
                    let Some(f) = self.follower() else {
                        return false;
                    };
                    f.send(link::encode(packet::ACK, zxid, Bytes::new(), vec![]));
                    if let Some(t) = time {
                        ack_ages.push(t);
                    }
                }
                Do::Serving { epoch } => self.serving_from(epoch),
                Do::Unmatched(z) => {
                    warn!("COMMIT 0x{z:x} does not match the next proposal")
                }
                Do::Abandon(why) => {
                    warn!("{why}");
                    self.become_looking(&why);
                    return false;
                }
            }
        }
        if !ack_ages.is_empty() {
            // Each ACK made now: the proposals' ages (one clock read for all;
            // clock skew can make an age negative: not recorded).
            let now = crate::core::wall_ms();
            self.cfg.metrics.proposal_ack_creation_latency.observe_all(
                ack_ages
                    .into_iter()
                    .filter(|&t| now >= t)
                    .map(|t| (now - t) as u64),
            );
        }
        true
    }

    /// UPTODATE: synced, serving clients from now on.
    fn serving_from(&mut self, epoch: i64) {
        let tick = self.cfg.tick_time as u64;
        let sync_limit = self.ens.as_ref().expect("ensemble").setup.sync_limit as u64;
        let metrics = self.cfg.metrics.clone();
        let Some(f) = self.follower() else { return };
        let synced_in = f.sync_started.elapsed().as_millis() as u64;
        if f.observer {
            &metrics.observer_sync_time
        } else {
            &metrics.follower_sync_time
        }
        .observe(synced_in);
        metrics.available(false);
        if let Some(s) = &f.sock {
            link::set_timeout(s, Duration::from_millis(tick * sync_limit));
        }
        let observer = f.observer;
        let ens = self.ens.as_mut().expect("ensemble");
        let _ = ens.election.send(ElectionCmd::Synced { epoch });
        info!("synced with the leader in epoch {epoch}: serving");
        if !observer {
            self.start_observer_master();
        }
    }

    /// Our log is durable up to `zxid`: ACK what it covers.
    pub(crate) fn follower_durable(&mut self, zxid: i64) {
        let Some(f) = self.follower() else { return };
        let todo = f.learner.durable(zxid);
        self.learner_do(todo);
    }

    /// Hands a client's write to the leader (REQUEST: session, cxid, op,
    /// the request record; the client's identities as auth info).
    pub(crate) fn forward(
        &mut self,
        session: i64,
        cxid: i32,
        opc: i32,
        body: Bytes,
        auth: Vec<jute::data::Id>,
    ) {
        let metrics = self.cfg.metrics.clone();
        let Some(f) = self.follower() else { return };
        let data = wire::encode_request(session, cxid, opc, &body);
        f.send_request(link::encode(packet::REQUEST, -1, data, auth), &metrics);
    }

    /// [`Core::forward`] of a decoded request, serialised straight into the
    /// REQUEST packet (session, cxid, op, then the request as the client
    /// sent it): one buffer per forwarded write instead of three.
    pub(crate) fn forward_request(
        &mut self,
        session: i64,
        cxid: i32,
        opc: i32,
        req: &jute::request::Request,
        auth: &[jute::data::Id],
    ) {
        let metrics = self.cfg.metrics.clone();
        let Some(f) = self.follower() else { return };
        let hint = 16 + request_size_hint(req);
        f.send_request(
            link::encode_with_auth(packet::REQUEST, -1, hint, auth, |w| {
                w.put_i64(session);
                w.put_i32(cxid);
                w.put_i32(opc);
                req.write(w);
            }),
            &metrics,
        );
    }

    pub(crate) fn revalidate(&mut self, session: i64, timeout: i32) {
        let Some(f) = self.follower() else { return };
        let mut b = BytesMut::with_capacity(12);
        b.put_i64(session);
        b.put_i32(timeout);
        f.send(link::encode(packet::REVALIDATE, -1, b.freeze(), vec![]));
    }
}

/// About the size of `req` serialised: its data and path, for the writes
/// that carry data; small requests fit the base.
fn request_size_hint(req: &jute::request::Request) -> usize {
    use jute::request::Request as R;
    64 + match req {
        R::Create(_, c) => c.path.len() + c.data.as_ref().map_or(0, |d| d.len()),
        R::CreateTtl(c) => c.path.len() + c.data.as_ref().map_or(0, |d| d.len()),
        R::SetData(s) => s.path.len() + s.data.as_ref().map_or(0, |d| d.len()),
        _ => 0,
    }
}
