//! Following (and observing): connect to the leader's quorum port, take
//! its epoch, sync (DIFF, TRUNC or SNAP up to NEWLEADER, serving from
//! UPTODATE), then log proposals and ACK each once on disk, apply commits,
//! answer pings with session touches, as Apache's Learner does.

use std::collections::VecDeque;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use jute::codec::{Reader, Record};
use jute::quorum::{LearnerInfo, QuorumPacket};
use jute::txn::Txn;
use tracing::{info, warn};
use zab::wire::{self, packet};
use zab::{epoch_of, make_zxid};

use super::leader::next_link;
use super::link::{self, Link};
use super::{ElectionCmd, LinkId, QMsg, Role};
use crate::core::{Core, Msg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    /// FOLLOWERINFO sent, waiting for LEADERINFO.
    Epoch,
    /// Receiving the sync, up to NEWLEADER and UPTODATE.
    Syncing,
    /// Serving.
    Broadcast,
}

impl Follower {
    /// What the log holds beyond the tree, when that is all the
    /// difference: serving, every proposal is logged and the tree holds
    /// the committed ones; before syncing nothing changed. None mid-sync
    /// (a TRUNC, SNAP or DIFF may have left the tree and the log apart).
    pub(crate) fn logged_uncommitted(&self) -> Option<Vec<Txn>> {
        match self.phase {
            Phase::Broadcast => Some(self.proposals.iter().cloned().collect()),
            Phase::Connecting | Phase::Epoch => Some(Vec::new()),
            Phase::Syncing => None,
        }
    }
}

pub struct Follower {
    pub observer: bool,
    pub leader_id: u64,
    link: Option<LinkId>,
    out: Option<link::Outbox>,
    sock: Option<TcpStream>,
    phase: Phase,
    new_epoch: i64,
    /// SNAP or TRUNC: take a snapshot at NEWLEADER.
    snapshot_needed: bool,
    /// After NEWLEADER (or DIFF): proposals go to the log.
    write_to_log: bool,
    /// Proposals received and not yet committed.
    proposals: VecDeque<Txn>,
    /// Commits seen during a DIFF, applied at UPTODATE.
    committed_in_sync: Vec<i64>,
    /// Logged proposals to ACK once durable: (zxid, the txn's time).
    unacked: VecDeque<(i64, i64)>,
    /// ACK NEWLEADER once everything before it is durable.
    newleader_ack_after: Option<i64>,
    /// Between NEWLEADER and UPTODATE proposals are logged as they come
    /// (and acked once serving).
    newleader_seen: bool,
    /// Syncs forwarded to the leader, answered in order.
    pub syncs: VecDeque<(i64, i32)>,
    deadline: i64,
    /// LEADERINFO arrived: synchronisation began (follower_sync_time).
    sync_started: std::time::Instant,
}

impl Follower {
    pub fn serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    fn send(&mut self, b: Bytes) {
        if let Some(o) = self.out.as_mut() {
            o.push(&b);
        }
    }

    /// End of a pipeline batch: what the leader was sent goes out.
    pub(crate) fn flush(&mut self) {
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
        let max = self.cfg.max_buffer + 64 * 1024;
        let ext = self.cfg.extended_types;
        info!(
            "{}: leader {leader_id} at {}",
            if observer { "OBSERVING" } else { "FOLLOWING" },
            m.quorum_addr()
        );
        // Connecting blocks: a thread, retrying for up to initLimit ticks
        // as Learner.connectToLeader does.
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_millis(init_ms);
            let addr = m.quorum_addr();
            let mut last_err = String::new();
            while std::time::Instant::now() < deadline {
                let target = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
                if let Some(t) = target {
                    match TcpStream::connect_timeout(&t, Duration::from_millis(init_ms.min(5000))) {
                        Ok(s) => {
                            link::set_timeout(&s, Duration::from_millis(init_ms));
                            match link::spawn(s, link_id, core_tx.clone(), true, max, ext) {
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
                // Apache's leaderConnectDelayDuringRetryMs: the new
                // leader's port usually opens within milliseconds.
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = core_tx.blocking_send(Msg::Quorum(QMsg::LinkClosed {
                link: link_id,
                why: format!("cannot connect to the leader at {addr}: {last_err}"),
            }));
        });
        self.cfg.metrics.election_finished();
        let ens = self.ens.as_mut().expect("ensemble");
        ens.role = Role::Following(Box::new(Follower {
            observer,
            leader_id,
            link: Some(link_id),
            out: None,
            sock: None,
            phase: Phase::Connecting,
            new_epoch: 0,
            snapshot_needed: false,
            write_to_log: false,
            proposals: VecDeque::new(),
            committed_in_sync: Vec::new(),
            unacked: VecDeque::new(),
            newleader_ack_after: None,
            newleader_seen: false,
            syncs: VecDeque::new(),
            deadline: now + init_ms as i64 * 2,
            sync_started: std::time::Instant::now(),
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
                let Link { tx, sock } = conn;
                f.out = Some(link::Outbox::new(tx));
                f.sock = Some(sock);
                f.phase = Phase::Epoch;
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
                if f.phase != Phase::Syncing && f.phase != Phase::Epoch {
                    return;
                }
                f.phase = Phase::Syncing;
                f.snapshot_needed = true;
                f.write_to_log = false;
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
            QMsg::Packet { link, pkt } if Some(link) == my_link => self.leader_packet(pkt),
            QMsg::Tick => {
                let now = self.now_ms();
                let Some(f) = self.follower() else { return };
                if f.phase != Phase::Broadcast && now > f.deadline {
                    self.become_looking("timed out syncing with the leader");
                }
            }
            _ => {}
        }
    }

    fn leader_packet(&mut self, pkt: QuorumPacket) {
        let last_logged = self.tree.last_zxid().max(self.zxid);
        let cfg = self.cfg.clone();
        let Some(f) = self.follower() else { return };
        match (f.phase, pkt.packet_type) {
            (Phase::Epoch, packet::LEADERINFO) => {
                let new_epoch = epoch_of(pkt.zxid);
                let ens = self.ens.as_ref().expect("ensemble");
                let (accepted, current) = (ens.accepted_epoch, ens.current_epoch);
                let ack = if new_epoch > accepted {
                    let snap_dir = self.layout.snap_dir.clone();
                    if let Err(e) = super::write_epoch(&snap_dir, "acceptedEpoch", new_epoch) {
                        warn!("{e}");
                        self.become_looking("cannot write acceptedEpoch");
                        return;
                    }
                    self.ens.as_mut().expect("ensemble").accepted_epoch = new_epoch;
                    current as i32
                } else if new_epoch == accepted {
                    -1
                } else {
                    let why = format!(
                        "leader's epoch {new_epoch} is less than our accepted epoch {accepted}"
                    );
                    warn!("{why}");
                    self.become_looking(&why);
                    return;
                };
                let Some(f) = self.follower() else { return };
                f.new_epoch = new_epoch;
                f.phase = Phase::Syncing;
                f.sync_started = std::time::Instant::now();
                f.send(link::encode(
                    packet::ACKEPOCH,
                    last_logged,
                    int_data(ack),
                    vec![],
                ));
            }
            (Phase::Syncing, packet::DIFF) => {
                f.snapshot_needed = false;
                f.write_to_log = true;
                info!("DIFF from the leader up to 0x{:x}", pkt.zxid);
            }
            (Phase::Syncing, packet::TRUNC) => {
                f.snapshot_needed = true;
                f.write_to_log = false;
                info!("TRUNC from the leader to 0x{:x}", pkt.zxid);
                self.truncate_log_after(pkt.zxid);
                let loaded = match crate::persist::load(&self.cfg, &self.layout) {
                    Ok(t) => t,
                    Err(e) => {
                        warn!("cannot reload after TRUNC: {e}");
                        self.become_looking("TRUNC failed");
                        return;
                    }
                };
                self.install_loaded(loaded);
            }
            (Phase::Syncing, packet::PROPOSAL) => match Txn::read(&mut Reader::new(pkt.data)) {
                Ok(t) if f.newleader_seen => {
                    let z = t.header.zxid;
                    f.unacked.push_back((z, t.header.time));
                    f.proposals.push_back(t.clone());
                    self.persist.append(t);
                    self.zxid = self.zxid.max(z);
                }
                Ok(t) => f.proposals.push_back(t),
                Err(e) => {
                    warn!("malformed proposal from the leader: {e}");
                    self.become_looking("malformed proposal");
                }
            },
            (Phase::Syncing, packet::COMMIT | packet::COMMITANDACTIVATE) => {
                if f.write_to_log {
                    f.committed_in_sync.push(pkt.zxid);
                } else if f
                    .proposals
                    .front()
                    .is_some_and(|t| t.header.zxid == pkt.zxid)
                {
                    let t = f.proposals.pop_front().expect("checked");
                    self.apply_committed(t);
                } else {
                    warn!("COMMIT 0x{:x} does not match the next proposal", pkt.zxid);
                }
            }
            (Phase::Syncing, packet::INFORM) => match Txn::read(&mut Reader::new(pkt.data)) {
                // An observer's sync: committed txns come whole.
                Ok(t) => {
                    if f.write_to_log {
                        self.persist.append(t.clone());
                        self.zxid = self.zxid.max(t.header.zxid);
                    }
                    self.apply_committed(t);
                }
                Err(e) => warn!("malformed INFORM from the leader: {e}"),
            },
            (Phase::Syncing, packet::NEWLEADER) => self.on_newleader(pkt.zxid),
            (Phase::Syncing, packet::UPTODATE) => self.on_uptodate(),
            (Phase::Broadcast, packet::PROPOSAL) => {
                match Txn::read(&mut Reader::new(pkt.data.clone())) {
                    Ok(t) => {
                        cfg.metrics.learner_proposal_received_count.inc();
                        crate::metrics::Metrics::txn_age(
                            &cfg.metrics.proposal_latency,
                            t.header.time,
                        );
                        let z = t.header.zxid;
                        f.unacked.push_back((z, t.header.time));
                        f.proposals.push_back(t);
                        // The proposal's data is the txn as the log holds it.
                        self.persist.append_raw(z, pkt.data);
                        self.zxid = self.zxid.max(z);
                    }
                    Err(e) => {
                        warn!("malformed proposal from the leader: {e}");
                        self.become_looking("malformed proposal");
                    }
                }
            }
            (Phase::Broadcast, packet::COMMIT | packet::COMMITANDACTIVATE) => {
                cfg.metrics.learner_commit_received_count.inc();
                let mut done = Vec::new();
                while f
                    .proposals
                    .front()
                    .is_some_and(|t| t.header.zxid <= pkt.zxid)
                {
                    done.push(f.proposals.pop_front().expect("checked"));
                }
                for t in done {
                    crate::metrics::Metrics::txn_age(
                        &cfg.metrics.commit_propagation_latency,
                        t.header.time,
                    );
                    self.apply_committed(t);
                }
            }
            (Phase::Broadcast | Phase::Syncing, packet::INFORMANDACTIVATE) => {
                // The designated leader's id, then the txn.
                let txn = pkt
                    .data
                    .get(8..)
                    .map(|d| Txn::read(&mut Reader::new(Bytes::copy_from_slice(d))));
                match txn {
                    Some(Ok(t)) => {
                        self.persist.append(t.clone());
                        self.zxid = self.zxid.max(t.header.zxid);
                        self.apply_committed(t);
                    }
                    _ => warn!("malformed INFORMANDACTIVATE from the leader"),
                }
            }
            (Phase::Broadcast, packet::INFORM) => match Txn::read(&mut Reader::new(pkt.data)) {
                Ok(t) => {
                    cfg.metrics.learner_commit_received_count.inc();
                    crate::metrics::Metrics::txn_age(
                        &cfg.metrics.commit_propagation_latency,
                        t.header.time,
                    );
                    self.persist.append(t.clone());
                    self.zxid = self.zxid.max(t.header.zxid);
                    self.apply_committed(t);
                }
                Err(e) => warn!("malformed INFORM from the leader: {e}"),
            },
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
            }
            (Phase::Broadcast, packet::SYNC) => {
                if let Some((session, xid)) = f.syncs.pop_front() {
                    self.sync_done(session, xid);
                }
            }
            (_, packet::REVALIDATE) => {
                let d = &pkt.data;
                if d.len() >= 9 {
                    let sid = i64::from_be_bytes(d[..8].try_into().unwrap());
                    let valid = d[8] != 0;
                    self.revalidated(sid, valid);
                }
            }
            (phase, t) => warn!(
                "unexpected {} from the leader while {:?}",
                packet::name(t),
                phase
            ),
        }
    }

    fn on_newleader(&mut self, zxid: i64) {
        let snap_dir = self.layout.snap_dir.clone();
        let Some(f) = self.follower() else { return };
        let new_epoch = f.new_epoch;
        let snapshot = f.snapshot_needed;
        if snapshot {
            if let Err(e) = self.snapshot_now() {
                warn!("cannot take the snapshot after sync: {e}");
                self.become_looking("snapshot after sync failed");
                return;
            }
            // The snapshot, not the log, holds what the sync applied.
            self.durable = self.durable.max(self.tree.last_zxid());
        }
        if let Err(e) = super::write_epoch(&snap_dir, "currentEpoch", new_epoch) {
            warn!("{e}");
            self.become_looking("cannot write currentEpoch");
            return;
        }
        self.ens.as_mut().expect("ensemble").current_epoch = new_epoch;
        let Some(f) = self.follower() else { return };
        f.write_to_log = true;
        f.newleader_seen = true;
        // Everything proposed so far goes to the log before we ACK; each
        // is acked on its own once we serve (the leader counts those).
        let pending: Vec<Txn> = f.proposals.iter().cloned().collect();
        let last = pending.last().map(|t| t.header.zxid);
        f.unacked
            .extend(pending.iter().map(|t| (t.header.zxid, t.header.time)));
        for t in pending {
            self.zxid = self.zxid.max(t.header.zxid);
            self.persist.append(t);
        }
        let durable = self.durable;
        let Some(f) = self.follower() else { return };
        match last {
            Some(z) if z > durable => f.newleader_ack_after = Some(z),
            _ => f.send(link::encode(packet::ACK, zxid, Bytes::new(), vec![])),
        }
    }

    fn on_uptodate(&mut self) {
        let tick = self.cfg.tick_time as u64;
        let sync_limit = self.ens.as_ref().expect("ensemble").setup.sync_limit as u64;
        let cfg = self.cfg.clone();
        let Some(f) = self.follower() else { return };
        let commits = std::mem::take(&mut f.committed_in_sync);
        let mut done = Vec::new();
        for z in commits {
            while f.proposals.front().is_some_and(|t| t.header.zxid <= z) {
                done.push(f.proposals.pop_front().expect("checked"));
            }
        }
        f.phase = Phase::Broadcast;
        let synced_in = f.sync_started.elapsed().as_millis() as u64;
        let m = &cfg.metrics;
        if f.observer {
            &m.observer_sync_time
        } else {
            &m.follower_sync_time
        }
        .observe(synced_in);
        m.available(false);
        let epoch = f.new_epoch;
        f.send(link::encode(
            packet::ACK,
            make_zxid(epoch, 0),
            Bytes::new(),
            vec![],
        ));
        if let Some(s) = &f.sock {
            link::set_timeout(s, Duration::from_millis(tick * sync_limit));
        }
        for t in done {
            self.apply_committed(t);
        }
        // What became durable before UPTODATE is acked now.
        let durable = self.durable;
        self.follower_durable(durable);
        let ens = self.ens.as_mut().expect("ensemble");
        let _ = ens.election.send(ElectionCmd::Synced { epoch });
        info!("synced with the leader in epoch {epoch}: serving");
    }

    /// Our log is durable up to `zxid`: ACK what it covers (one ACK per
    /// proposal, as Apache's leader counts them).
    pub(crate) fn follower_durable(&mut self, zxid: i64) {
        let Some(f) = self.follower() else { return };
        if let Some(after) = f.newleader_ack_after {
            if zxid >= after {
                f.newleader_ack_after = None;
                f.send(link::encode(
                    packet::ACK,
                    make_zxid(f.new_epoch, 0),
                    Bytes::new(),
                    vec![],
                ));
            }
        }
        if f.observer {
            f.unacked.clear();
            return;
        }
        if f.phase != Phase::Broadcast {
            return;
        }
        if f.unacked.front().is_none_or(|&(z, _)| z > zxid) {
            return;
        }
        // Each ACK made now: the proposals' ages (one clock read for all).
        let now = crate::core::wall_ms();
        let mut ages = Vec::new();
        while f.unacked.front().is_some_and(|&(z, _)| z <= zxid) {
            let (z, time) = f.unacked.pop_front().expect("checked");
            f.send(link::encode(packet::ACK, z, Bytes::new(), vec![]));
            // Clock skew can make an age negative: not recorded.
            if now >= time {
                ages.push((now - time) as u64);
            }
        }
        self.cfg
            .metrics
            .proposal_ack_creation_latency
            .observe_all(ages);
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
        let Some(f) = self.follower() else { return };
        let data = wire::encode_request(session, cxid, opc, &body);
        f.send(link::encode(packet::REQUEST, -1, data, auth));
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
        let Some(f) = self.follower() else { return };
        let hint = 16 + request_size_hint(req);
        f.send(link::encode_with_auth(
            packet::REQUEST,
            -1,
            hint,
            auth,
            |w| {
                w.put_i64(session);
                w.put_i32(cxid);
                w.put_i32(opc);
                req.write(w);
            },
        ));
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
