//! Leading: discovery (FOLLOWERINFO -> LEADERINFO -> ACKEPOCH, the new
//! epoch one past every accepted epoch of a quorum), synchronisation (DIFF,
//! TRUNC or SNAP, then NEWLEADER; UPTODATE once a quorum acked it) and
//! broadcast (PROPOSAL, ACK from a quorum, COMMIT; INFORM to observers), as
//! Apache's Leader and LearnerHandler speak them. The protocol's decisions
//! are `zab::leading`'s (simulated); this file carries out its actions on
//! sockets, files and the tree, and chooses what a sync sends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use jute::codec::{Reader, Record, Writer as _};
use jute::consts::{op, ErrorCode};
use jute::quorum::{LearnerInfo, QuorumPacket};
use jute::request::Request;
use jute::txn::{CreateSessionTxn, ErrorTxn, Txn, TxnBody};
use tracing::{info, warn};
use zab::leading::{self, LPhase as Phase, Leading};
use zab::sync::{plan, SyncPlan};
use zab::wire::{self, packet};
use zab::{epoch_of, make_zxid};

use super::link;
use super::{LinkId, QMsg, Role};
use crate::core::Core;

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

pub fn next_link() -> LinkId {
    NEXT_LINK.fetch_add(1, Ordering::Relaxed)
}

/// A learner's connection; its protocol state is in [`Leading`].
pub struct Learner {
    out: link::Outbox,
    sock: link::Sock,
    /// The sync under way (or last) was a SNAP, not a DIFF or TRUNC.
    snap_sync: bool,
    /// COMMITs (INFORMs for an observer) made while it syncs, sent after
    /// UPTODATE, as `Leading::committed` says.
    held: Vec<Bytes>,
    /// Its server id as the queue figures' key, once known.
    qp_key: Option<String>,
    pub(crate) stats: link::PeerStats,
}

/// Where a sync answers once its point is reached: a learner that
/// forwarded it (or, on a follower, an observer it relayed), or a local
/// client.
pub(crate) enum SyncFor {
    Learner(LinkId),
    Local { session: i64, xid: i32 },
}

pub struct Leader {
    /// The protocol's state (zab::leading, which the simulation checks).
    m: Leading,
    learners: HashMap<LinkId, Learner, ahash::RandomState>,
    /// Proposed, not yet committed, in order.
    proposals: VecDeque<Txn>,
    syncs: Vec<(i64, SyncFor)>,
    /// A reconfig proposed and not yet committed (one at a time).
    reconfig_in_flight: bool,
    listener: tokio::task::JoinHandle<()>,
    /// When leading began (pipeline ms), for maxTimeToWaitForEpoch.
    started: i64,
}

impl Leader {
    /// Proposed (and logged) but not committed: what the log holds beyond
    /// the tree.
    pub(crate) fn logged_uncommitted(&self) -> Vec<Txn> {
        self.proposals.iter().cloned().collect()
    }

    pub fn serving(&self) -> bool {
        self.m.established()
    }

    /// Learners between their sync's start and their NEWLEADER ack, of one
    /// kind (Apache's snap and diff LearnerSyncThrottlers count apart).
    fn syncs_in_flight(&self, snap: bool) -> u64 {
        self.m
            .learners()
            .filter(|(link, x)| {
                x.phase == Phase::Syncing
                    && self.learners.get(link).is_some_and(|l| l.snap_sync == snap)
            })
            .count() as u64
    }

    pub fn synced_followers(&self) -> usize {
        self.m
            .learners()
            .filter(|(_, l)| l.phase == Phase::Synced && !l.observer)
            .count()
    }

    /// Synced followers the configuration does not count as voters (a
    /// reconfig took them out), as Leader.getNonVotingFollowers.
    pub fn synced_non_voting_followers(&self, quorum: &zab::config::QuorumConfig) -> usize {
        self.m
            .learners()
            .filter(|(_, l)| l.phase == Phase::Synced && !l.observer)
            .filter(|(_, l)| l.sid.is_some_and(|sid| !quorum.is_voter(sid)))
            .count()
    }

    /// Learners' syncs not yet answered (mntr's pending_syncs; Apache's
    /// leader counts only those, its own clients' wait elsewhere).
    pub fn pending_syncs(&self) -> usize {
        self.syncs
            .iter()
            .filter(|(_, f)| matches!(f, SyncFor::Learner(_)))
            .count()
    }

    /// Observers past UPTODATE (mntr's synced_observers).
    pub fn synced_observers(&self) -> usize {
        self.m
            .learners()
            .filter(|(_, l)| l.phase == Phase::Synced && l.observer)
            .count()
    }

    /// Admin `observers`: each synced observer's link.
    pub fn observers_info(&self) -> Vec<serde_json::Value> {
        self.m
            .learners()
            .filter(|(_, l)| l.phase == Phase::Synced && l.observer)
            .filter_map(|(link, l)| {
                let x = self.learners.get(&link)?;
                Some(x.stats.info(l.sid?, &x.out))
            })
            .collect()
    }

    /// Admin `orst`: the observers' link counts start again.
    pub fn reset_observer_stats(&mut self) {
        let observers: Vec<LinkId> = self
            .m
            .learners()
            .filter(|(_, l)| l.observer)
            .map(|(link, _)| link)
            .collect();
        for link in observers {
            if let Some(x) = self.learners.get_mut(&link) {
                x.stats.reset(&mut x.out);
            }
        }
    }

    pub fn learner_count(&self) -> usize {
        self.learners.len()
    }

    fn send(&mut self, link: LinkId, b: Bytes) {
        if let Some(l) = self.learners.get_mut(&link) {
            l.out.push(&b);
        }
    }

    /// End of a pipeline batch: what each learner was sent goes out.
    pub(crate) fn flush(&mut self, metrics: &crate::metrics::Metrics) {
        for (link, l) in self.learners.iter_mut() {
            let sid = self.m.learner(*link).and_then(|x| x.sid);
            if l.out.flush().is_err() {
                warn!(
                    "learner {} is not reading its packets: disconnecting it",
                    sid.unwrap_or(0)
                );
                // Its reader then reports the link closed.
                let _ = l.sock.shutdown(std::net::Shutdown::Both);
            }
            // LearnerHandler's queue figures, keyed by the learner's id.
            let (queued, waits) = l.out.queue_figures();
            let Some(sid) = sid else { continue };
            let key = l.qp_key.get_or_insert_with(|| sid.to_string());
            if let Some(q) = queued {
                metrics.learner_handler_qp_size.observe(key, q);
            }
            for w in waits {
                metrics.learner_handler_qp_time_ms.observe(key, w);
            }
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

fn int_data(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

fn txn_bytes(t: &Txn) -> Bytes {
    let mut b = BytesMut::with_capacity(128);
    t.write(&mut b);
    b.freeze()
}

/// A PROPOSAL or INFORM packet of `t`, serialised straight into the packet
/// (one buffer and one copy of the data, where `encode(txn_bytes(t))` made
/// two of each on every write); also returns the txn's size.
/// Where a quorum packet's data begins: after its type, zxid and the
/// data's length prefix.
const PACKET_DATA_AT: usize = 4 + 8 + 4;

fn txn_packet(packet_type: i32, t: &Txn) -> (Bytes, usize) {
    // Sized up front: a 1 KiB txn grew a small buffer three times.
    let hint = crate::ensemble::history::weight(&t.body);
    let b = link::encode_with(packet_type, t.header.zxid, hint, |w| t.write(w));
    // An empty authinfo vector (its count) follows the data.
    let size = b.len() - PACKET_DATA_AT - 4;
    (b, size)
}

impl Core {
    fn leader(&mut self) -> Option<&mut Leader> {
        match self.ens.as_mut().map(|e| &mut e.role) {
            Some(Role::Leading(l)) => Some(l),
            _ => None,
        }
    }

    /// The election chose us: open the quorum port and begin discovery.
    pub(crate) fn become_leader(&mut self) {
        let now = self.now_ms();
        let ens = self.ens.as_mut().expect("ensemble");
        let setup = ens.setup.clone();
        let me = setup.me().clone();
        let listener = match link::listen(&me.host, me.quorum_port, setup.listen_all) {
            Ok(l) => l,
            Err(e) => {
                warn!("cannot bind the quorum port {}: {e}", me.quorum_addr());
                self.become_looking("quorum port unavailable");
                return;
            }
        };
        let listener = link::accept_learners(
            listener,
            ens.core_tx.clone(),
            link::Opts::of(&self.cfg),
            setup.clone(),
        );
        let init = (ens.setup.init_limit as i64) * self.cfg.tick_time as i64;
        let my_id = setup.my_id;
        let accepted_epoch = ens.accepted_epoch;
        let summary = (ens.current_epoch, self.tree.last_zxid());
        info!(
            "LEADING: quorum port {}, last zxid 0x{:x}, {} txns of history in memory for DIFFs",
            me.quorum_addr(),
            summary.1,
            self.ens.as_ref().map_or(0, |e| e.history.len())
        );
        let mut m = Leading::new(
            my_id,
            setup.quorum.is_voter(my_id),
            accepted_epoch,
            summary,
            now + init,
        );
        // A leader alone is a quorum only in a one-voter ensemble.
        let todo = m.start(&setup.quorum);
        let l = Leader {
            m,
            learners: HashMap::default(),
            proposals: VecDeque::new(),
            syncs: Vec::new(),
            reconfig_in_flight: false,
            listener,
            started: now,
        };
        self.cfg.metrics.election_finished();
        self.ens.as_mut().expect("ensemble").role = Role::Leading(Box::new(l));
        self.ens.as_mut().expect("ensemble").since = now;
        self.leading_do(todo);
    }

    /// The txns a learner at `peer_last` lacks that are older than the
    /// in-memory history: read from the txn log, those from `peer_last` up
    /// to (not including) `before`. Empty, so the plan is a SNAP, when the
    /// txns would outweigh snapshotSizeFactor (0.33) of the newest
    /// snapshot, as Apache decides (sending them would cost more than the
    /// snapshot), or when the log cannot be read.
    fn disk_history(&self, peer_last: i64, before: i64) -> Vec<Txn> {
        let factor = self
            .cfg
            .prop("zookeeper.snapshotSizeFactor")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0.33, |f| if f > 1.0 { 0.33 } else { f });
        if factor < 0.0 {
            return Vec::new();
        }
        let snap_size = storage::snapshot::list_snapshots(&self.layout.snap_dir)
            .ok()
            .and_then(|v| v.first().and_then(|(_, p)| std::fs::metadata(p).ok()))
            .map_or(0, |m| m.len());
        let limit = (snap_size as f64 * factor) as usize;
        let started = std::time::Instant::now();
        let reader = match storage::txnlog::LogReader::from_dir(&self.layout.log_dir, peer_last - 1)
        {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot read the txn log for a DIFF ({e}): SNAP instead");
                return Vec::new();
            }
        };
        let mut out: Vec<Txn> = Vec::new();
        let mut bytes = 0;
        for e in reader {
            match e {
                Ok(e) if e.txn.header.zxid < before => {
                    // After a TRUNC earlier files may hold an abandoned
                    // branch: keep the history contiguous and increasing.
                    while out
                        .last()
                        .is_some_and(|t| t.header.zxid >= e.txn.header.zxid)
                    {
                        out.pop();
                    }
                    bytes += super::history::weight(&e.txn.body);
                    if bytes > limit {
                        info!(
                            "a DIFF from 0x{peer_last:x} would outweigh {factor} of the snapshot ({snap_size} bytes): SNAP instead"
                        );
                        return Vec::new();
                    }
                    out.push(e.txn);
                }
                Ok(_) => break,
                Err(e) => {
                    warn!("reading the txn log for a DIFF: {e}: SNAP instead");
                    return Vec::new();
                }
            }
        }
        info!(
            "read {} txns from 0x{peer_last:x} of the txn log for a DIFF in {:?}",
            out.len(),
            started.elapsed()
        );
        out
    }

    pub(crate) fn leader_msg(&mut self, m: QMsg) {
        match m {
            QMsg::LearnerConnected { link, conn } => {
                let now = self.now_ms();
                let init_ms = self
                    .ens
                    .as_ref()
                    .map_or(20_000, |e| e.setup.init_limit as u64)
                    * self.cfg.tick_time as u64;
                let Some(l) = self.leader() else { return };
                let (out, sock, remote) = conn.split();
                // A learner that goes silent is noticed (LearnerHandler's
                // socket timeout): initLimit ticks until it is synced.
                link::set_timeout(&sock, Duration::from_millis(init_ms));
                l.m.connected(link, now);
                l.learners.insert(
                    link,
                    Learner {
                        out,
                        sock,
                        snap_sync: false,
                        held: Vec::new(),
                        qp_key: None,
                        stats: link::PeerStats::new(remote),
                    },
                );
            }
            QMsg::Packet { link, pkt, .. } => self.learner_packet(link, pkt),
            QMsg::LinkClosed { link, why } => {
                if let Some(l) = self.leader() {
                    l.learners.remove(&link);
                    if let Some(sid) = l.m.link_down(link).and_then(|x| x.sid) {
                        info!("learner {sid} disconnected: {why}");
                    }
                }
            }
            QMsg::Tick => self.leader_tick(),
            QMsg::VoterLooking { sid } => self.voter_looking(sid),
            _ => {}
        }
    }

    fn learner_packet(&mut self, link: LinkId, pkt: QuorumPacket) {
        self.cfg
            .trace
            .quorum_packet(format_args!("learner link {link}"), &pkt);
        let now = self.now_ms();
        let setup = self.ens.as_ref().expect("ensemble").setup.clone();
        let quorum = &setup.quorum;
        let Some(l) = self.leader() else { return };
        let Some(phase) = l.m.learner(link).map(|x| x.phase) else {
            return;
        };
        l.m.heard(link, now);
        if let Some(x) = l.learners.get_mut(&link) {
            x.stats.received += 1;
            if pkt.packet_type == packet::REQUEST {
                x.stats.requests += 1;
            }
        }
        let todo = match pkt.packet_type {
            packet::FOLLOWERINFO | packet::OBSERVERINFO if phase == Phase::Info => {
                let info = match LearnerInfo::read(&mut Reader::new(pkt.data.clone())) {
                    Ok(i) => i,
                    Err(e) => {
                        warn!("bad LearnerInfo on link {link}: {e}");
                        l.learners.remove(&link);
                        l.m.link_down(link);
                        return;
                    }
                };
                let sid = info.server_id as u64;
                let observer = pkt.packet_type == packet::OBSERVERINFO || !quorum.is_voter(sid);
                let acc = epoch_of(pkt.zxid);
                info!(
                    "{} {sid} connected (accepted epoch {acc})",
                    if observer { "observer" } else { "follower" }
                );
                l.m.info(quorum, link, sid, observer, acc)
            }
            packet::ACKEPOCH if phase == Phase::Epoch => {
                let cur = pkt
                    .data
                    .get(..4)
                    .map(|b| i32::from_be_bytes(b.try_into().unwrap()))
                    .unwrap_or(-1);
                l.m.ack_epoch(quorum, link, cur as i64, pkt.zxid)
            }
            packet::ACK => l.m.ack(quorum, link, pkt.zxid),
            packet::PING => {
                let touches = wire::decode_touches(&pkt.data);
                for (sid, to) in touches {
                    self.sessions.touch(sid, to, now);
                }
                return;
            }
            packet::REVALIDATE => {
                let d = &pkt.data;
                if d.len() < 12 {
                    return;
                }
                let sid = i64::from_be_bytes(d[..8].try_into().unwrap());
                let to = i32::from_be_bytes(d[8..12].try_into().unwrap());
                let valid = self.sessions.touch(sid, to, now);
                self.cfg.metrics.revalidate_count.inc();
                let mut b = BytesMut::with_capacity(9);
                b.put_i64(sid);
                b.put_u8(valid as u8);
                info!(
                    "revalidated session 0x{sid:x}: {}",
                    if valid { "valid" } else { "invalid" }
                );
                if let Some(l) = self.leader() {
                    let pkt = link::encode(packet::REVALIDATE, -1, b.freeze(), vec![]);
                    l.send(link, pkt);
                }
                return;
            }
            packet::REQUEST => {
                if phase == Phase::Synced {
                    // Its own server answers the client: it is proposed,
                    // never queued here (Apache with
                    // forwardLearnerRequestsToCommitProcessorDisabled).
                    self.cfg
                        .metrics
                        .requests_not_forwarded_to_commit_processor
                        .inc();
                    self.forwarded_request(link, pkt);
                }
                return;
            }
            t => {
                warn!(
                    "unexpected {} from learner on link {link} in phase {phase:?}",
                    packet::name(t),
                );
                return;
            }
        };
        self.leading_do(todo);
    }

    /// Carries out what the leader's protocol asked, in order.
    fn leading_do(&mut self, todo: Vec<leading::Do>) {
        use leading::Do as L;
        for d in todo {
            let Some(l) = self.leader() else { return };
            match d {
                L::AcceptEpoch(epoch) => {
                    info!("proposing epoch {epoch}");
                    if !self.persist_epoch(true, epoch) {
                        return;
                    }
                }
                L::LeaderInfo { link } => {
                    let b = link::encode(
                        packet::LEADERINFO,
                        make_zxid(l.m.epoch(), 0),
                        int_data(wire::ZAB_PROTOCOL_VERSION),
                        vec![],
                    );
                    l.send(link, b);
                }
                L::TurnAway { link, why } => {
                    warn!("{why}: dropping it");
                    l.learners.remove(&link);
                }
                L::Sync {
                    link,
                    last_zxid,
                    observer,
                } => self.sync_learner(link, last_zxid, observer),
                L::Establish { epoch } => {
                    if !self.establish(epoch) {
                        return;
                    }
                }
                L::UpToDate { link } => {
                    let sync_ms = self.cfg.tick_time as u64
                        * self.ens.as_ref().map_or(5, |e| e.setup.sync_limit as u64);
                    let metrics = self.cfg.metrics.clone();
                    let Some(l) = self.leader() else { return };
                    let sid = l.m.learner(link).and_then(|x| x.sid).unwrap_or(0);
                    let Some(x) = l.learners.get_mut(&link) else {
                        continue;
                    };
                    let snap = x.snap_sync;
                    let held = std::mem::take(&mut x.held);
                    link::set_timeout(&x.sock, Duration::from_millis(sync_ms));
                    l.send(
                        link,
                        link::encode(packet::UPTODATE, -1, Bytes::new(), vec![]),
                    );
                    for b in held {
                        l.send(link, b);
                    }
                    metrics.syncs_in_flight(snap, l.syncs_in_flight(snap));
                    info!("learner {sid} is up to date");
                }
                L::Commit(zxids) => self.commit(zxids),
                L::StepDown { why } => {
                    warn!("{why}");
                    self.become_looking(&why);
                    return;
                }
            }
        }
    }

    /// What brings a learner at `peer_last` up to our tree: DIFF, TRUNC or
    /// SNAP (with the database) and the committed txns it lacks as
    /// PROPOSAL/COMMIT pairs. A leader adds its proposals in flight and
    /// NEWLEADER; a follower hosting an observer adds NEWLEADER. None when
    /// the database cannot be serialised for a SNAP.
    pub(crate) fn sync_packets(&self, peer_last: i64) -> Option<(SyncPlan, Vec<Bytes>)> {
        let last = self.tree.last_zxid();
        // What we can send: the in-memory history (when it ends at our last
        // zxid), preceded by txns from the log when the learner is older.
        let hist = &self.ens.as_ref().expect("ensemble").history;
        let in_memory = hist.last_zxid() == Some(last);
        let before = match hist.first_zxid() {
            Some(z) if in_memory => z,
            _ => last.saturating_add(1),
        };
        let from_disk = if peer_last < before && peer_last != last {
            self.disk_history(peer_last, before)
        } else {
            Vec::new()
        };
        let sendable: Vec<&Txn> = from_disk
            .iter()
            .chain(hist.iter().filter(|_| in_memory))
            .collect();
        let zxids: Vec<i64> = sendable.iter().map(|t| t.header.zxid).collect();
        let p = plan(peer_last, &zxids, last);
        let from = match &p {
            SyncPlan::Diff { from } | SyncPlan::Trunc { from, .. } => *from,
            SyncPlan::Snap => sendable.len(),
        };
        let mut out: Vec<Bytes> = Vec::with_capacity(2 + 2 * (sendable.len() - from));
        match &p {
            SyncPlan::Diff { .. } => {
                out.push(link::encode(packet::DIFF, last, Bytes::new(), vec![]));
            }
            SyncPlan::Trunc { to, .. } => {
                out.push(link::encode(packet::TRUNC, *to, Bytes::new(), vec![]));
            }
            SyncPlan::Snap => {
                let mut w = BytesMut::new().writer();
                if let Err(e) = storage::snapshot::serialize_snapshot_stream(&mut w, &self.tree) {
                    warn!("cannot serialise the database for a SNAP: {e}");
                    return None;
                }
                let mut b = w.into_inner();
                b.put_string(wire::SNAP_SIGNATURE);
                out.push(link::encode(packet::SNAP, last, Bytes::new(), vec![]));
                out.push(b.freeze());
            }
        }
        match p {
            SyncPlan::Snap => self.cfg.metrics.snap_count.inc(),
            _ => self.cfg.metrics.diff_count.inc(),
        }
        for t in &sendable[from..] {
            out.push(link::encode(
                packet::PROPOSAL,
                t.header.zxid,
                txn_bytes(t),
                vec![],
            ));
            out.push(link::encode(
                packet::COMMIT,
                t.header.zxid,
                Bytes::new(),
                vec![],
            ));
        }
        Some((p, out))
    }

    /// DIFF, TRUNC or SNAP as the learner's last zxid asks, the proposals
    /// in flight, then NEWLEADER.
    fn sync_learner(&mut self, link: LinkId, peer_last: i64, observer: bool) {
        let leader_last = self.tree.last_zxid();
        let config = self
            .ens
            .as_ref()
            .expect("ensemble")
            .setup
            .quorum
            .to_string();
        // Built before borrowing the leader: a SNAP needs the tree.
        let Some((p, mut out)) = self.sync_packets(peer_last) else {
            return;
        };
        let cfg = self.cfg.clone();
        let Some(l) = self.leader() else { return };
        let epoch = l.m.epoch();
        let sid = l.m.learner(link).and_then(|x| x.sid).unwrap_or(0);
        let Some(lr) = l.learners.get_mut(&link) else {
            return;
        };
        let snap_sync = matches!(p, SyncPlan::Snap);
        lr.snap_sync = snap_sync;
        cfg.metrics
            .syncs_in_flight(snap_sync, l.syncs_in_flight(snap_sync));
        info!(
            "syncing learner {sid} (last zxid 0x{peer_last:x}) with {:?}, leader at 0x{leader_last:x}",
            p
        );
        if !observer {
            // In flight: their COMMITs follow as for every follower.
            for t in &l.proposals {
                out.push(link::encode(
                    packet::PROPOSAL,
                    t.header.zxid,
                    txn_bytes(t),
                    vec![],
                ));
            }
        }
        out.push(link::encode(
            packet::NEWLEADER,
            make_zxid(epoch, 0),
            Bytes::from(config),
            vec![],
        ));
        for b in out {
            l.send(link, b);
        }
    }

    /// A quorum acked NEWLEADER: our history is theirs; serve. False if we
    /// stopped leading instead.
    fn establish(&mut self, epoch: i64) -> bool {
        if !self.persist_epoch(false, epoch) {
            return false;
        }
        let ens = self.ens.as_mut().expect("ensemble");
        let _ = ens.election.send(super::ElectionCmd::Synced { epoch });
        self.zxid = make_zxid(epoch, 0);
        self.durable = self.zxid;
        let now = self.now_ms();
        // Sessions of the history get a full timeout to come back here.
        let sessions: Vec<(i64, i32)> =
            self.tree.sessions().iter().map(|(k, v)| (*k, *v)).collect();
        for (sid, to) in sessions {
            self.track_session(sid, to, now);
        }
        self.cfg.metrics.available(true);
        info!("leader of epoch {epoch} is serving");
        true
    }

    /// A write (or createSession, closeSession, deleteContainer) becomes a
    /// proposal: logged here, sent to the followers, applied on commit.
    pub(crate) fn propose(&mut self, session: i64, cxid: i32, body: TxnBody) {
        let prepped = self.prepped_at.take();
        self.zxid += 1;
        // The tree once this txn (and every one before it) is applied:
        // followers compare it with theirs (Apache's and ours).
        let digest = jute::txn::TxnDigest {
            version: tree::digest::DIGEST_VERSION,
            tree_digest: self.pending.predicted_digest(&self.tree),
        };
        let txn = Txn {
            header: jute::txn::TxnHeader {
                client_id: session,
                cxid,
                zxid: self.zxid,
                time: self.prep_time.take().unwrap_or_else(crate::core::wall_ms),
                op: body.op(),
            },
            body,
            digest: Some(digest),
        };
        let zxid = txn.header.zxid;
        let (b, size) = txn_packet(packet::PROPOSAL, &txn);
        // The log gets the packet's data: the txn serialised once.
        self.persist
            .append_raw(zxid, b.slice(PACKET_DATA_AT..PACKET_DATA_AT + size));
        self.cfg.metrics.proposal_size(size);
        self.cfg.metrics.proposal_count.inc();
        let Some(l) = self.leader() else { return };
        for link in l.m.in_broadcast(false) {
            if let Some(x) = l.learners.get_mut(&link) {
                x.out.push(&b);
            }
        }
        l.m.propose(zxid);
        l.proposals.push_back(txn);
        if let Some(t) = prepped {
            self.deferred.since(|m| &m.proposal_process_time, t);
        }
    }

    /// Our own log is durable up to `zxid`: that is our ACK.
    pub(crate) fn leader_durable(&mut self, zxid: i64) {
        let setup = self.ens.as_ref().expect("ensemble").setup.clone();
        let Some(l) = self.leader() else { return };
        let todo = l.m.durable(&setup.quorum, zxid);
        self.leading_do(todo);
    }

    fn commit(&mut self, zxids: Vec<i64>) {
        self.cfg.metrics.commit_count.add(zxids.len() as u64);
        // The quorum is this moment: Apache's leader hands these commits
        // to its CommitProcessor now.
        if let Some(e) = self.ens.as_mut() {
            e.commit_arrived = Some(std::time::Instant::now());
        }
        let my_id = self.ens.as_ref().map_or(0, |e| e.setup.my_id);
        for z in zxids {
            let Some(l) = self.leader() else { return };
            let Some(txn) = l.proposals.pop_front() else {
                return;
            };
            debug_assert_eq!(txn.header.zxid, z);
            let to = l.m.committed();
            // Observers are rare: INFORM is built only for one.
            let informs = !to.inform.is_empty() || !to.hold_inform.is_empty();
            let (commit, inform) = if matches!(txn.body, TxnBody::Reconfig(_)) {
                // Learners activate the new configuration with the commit;
                // the data names the leader it designates (us).
                l.reconfig_in_flight = false;
                let me = Bytes::copy_from_slice(&(my_id as i64).to_be_bytes());
                let mut inf = BytesMut::from(&me[..]);
                txn.write(&mut inf);
                (
                    link::encode(packet::COMMITANDACTIVATE, z, me, vec![]),
                    link::encode(packet::INFORMANDACTIVATE, z, inf.freeze(), vec![]),
                )
            } else {
                (
                    link::encode(packet::COMMIT, z, Bytes::new(), vec![]),
                    if informs {
                        txn_packet(packet::INFORM, &txn).0
                    } else {
                        Bytes::new()
                    },
                )
            };
            for (links, b, hold) in [
                (&to.commit, &commit, false),
                (&to.hold_commit, &commit, true),
                (&to.inform, &inform, false),
                (&to.hold_inform, &inform, true),
            ] {
                for link in links {
                    if let Some(x) = l.learners.get_mut(link) {
                        if hold {
                            x.held.push(b.clone());
                        } else {
                            x.out.push(b);
                        }
                    }
                }
            }
            self.deferred
                .txn_age(|m| &m.quorum_ack_latency, txn.header.time);
            self.apply_committed(txn);
        }
        self.answer_syncs();
    }

    fn answer_syncs(&mut self) {
        let Some(l) = self.leader() else { return };
        let done = l.m.acks().last_committed();
        let mut ready = Vec::new();
        l.syncs.retain_mut(|(at, f)| {
            if *at <= done {
                ready.push(std::mem::replace(f, SyncFor::Learner(0)));
                false
            } else {
                true
            }
        });
        for f in ready {
            match f {
                SyncFor::Learner(link) => {
                    if let Some(l) = self.leader() {
                        l.send(link, link::encode(packet::SYNC, 0, Bytes::new(), vec![]));
                    }
                }
                SyncFor::Local { session, xid } => self.sync_done(session, xid),
            }
        }
    }

    /// A sync from a local client: answered once what was proposed before
    /// it has committed.
    pub(crate) fn leader_sync(&mut self, session: i64, xid: i32) {
        let Some(l) = self.leader() else { return };
        let at = l.m.acks().last_proposed();
        l.syncs.push((at, SyncFor::Local { session, xid }));
        self.answer_syncs();
    }

    fn forwarded_request(&mut self, link: LinkId, pkt: QuorumPacket) {
        let (session, cxid, opc, body) = match wire::decode_request(&pkt.data) {
            Ok(r) => r,
            Err(e) => {
                warn!("bad forwarded request on link {link}: {e}");
                return;
            }
        };
        let now = self.now_ms();
        match opc {
            op::CREATE_SESSION => {
                let Some(b) = body.get(..4) else { return };
                let to = i32::from_be_bytes(b.try_into().unwrap());
                self.track_session(session, to, now);
                self.propose(
                    session,
                    cxid,
                    TxnBody::CreateSession(CreateSessionTxn { time_out: to }),
                );
            }
            op::SYNC => {
                let Some(l) = self.leader() else { return };
                let at = l.m.acks().last_proposed();
                l.syncs.push((at, SyncFor::Learner(link)));
                self.answer_syncs();
            }
            _ => {
                let req = if opc == op::CLOSE_SESSION {
                    Ok(Request::CloseSession)
                } else {
                    Request::read(opc, &mut Reader::new(body))
                };
                let body = match req {
                    Err(e) => {
                        warn!("malformed forwarded {} request: {e}", op::name(opc));
                        TxnBody::Error(ErrorTxn {
                            err: ErrorCode::MarshallingError.code(),
                        })
                    }
                    Ok(_) if self.sessions.timeout(session).is_none() => TxnBody::Error(ErrorTxn {
                        err: ErrorCode::SessionExpired.code(),
                    }),
                    Ok(Request::Reconfig(r)) => self.prepare_reconfig(&pkt.auth_info, &r),
                    Ok(r) => self.prepare(session, &pkt.auth_info, &r),
                };
                if opc == op::CLOSE_SESSION {
                    self.untrack_session(session);
                }
                self.propose(session, cxid, body);
            }
        }
    }

    /// Leader.reportLookingSid: still without a quorum for the new epoch
    /// past maxTimeToWaitForEpoch, and a server that voted for us is looking
    /// again: it changed its mind, and waiting out initLimit for it would
    /// only delay the next election.
    fn voter_looking(&mut self, sid: u64) {
        let now = self.now_ms();
        let max = self.ens.as_ref().map_or(-1, |e| e.setup.max_epoch_wait_ms);
        let Some(l) = self.leader() else { return };
        if max < 0 || !l.m.choosing_epoch() || now - l.started <= max {
            return;
        }
        self.cfg.metrics.quit_leading_due_to_disloyal_voter.inc();
        info!("Quit leading due to voter changed mind (server {sid} is looking again)");
        self.become_looking("a voter changed its mind");
    }

    fn leader_tick(&mut self) {
        let now = self.now_ms();
        let ens = self.ens.as_ref().expect("ensemble");
        let setup = ens.setup.clone();
        let sync_ms = ens.setup.sync_limit as i64 * self.cfg.tick_time as i64;
        let Some(l) = self.leader() else { return };
        let ping = link::encode(
            packet::PING,
            l.m.acks().last_proposed(),
            Bytes::new(),
            vec![],
        );
        for link in l.m.in_broadcast(true) {
            if let Some(x) = l.learners.get_mut(&link) {
                x.out.push(&ping);
            }
        }
        if let Some(why) = l.m.tick(&setup.quorum, now, sync_ms) {
            self.become_looking(&why);
        }
    }

    /// reconfig (PrepRequestProcessor's checks, in its order): the next
    /// configuration as a txn setting /zookeeper/config, or an Error txn.
    pub(crate) fn prepare_reconfig(
        &mut self,
        auth: &[jute::data::Id],
        r: &jute::proto::ReconfigRequest,
    ) -> TxnBody {
        match self.reconfig_txn(auth, r) {
            Ok(b) => b,
            Err(e) => {
                info!("reconfig refused: {e:?}");
                TxnBody::Error(ErrorTxn { err: e.code() })
            }
        }
    }

    fn reconfig_txn(
        &mut self,
        auth: &[jute::data::Id],
        r: &jute::proto::ReconfigRequest,
    ) -> Result<TxnBody, ErrorCode> {
        use zab::{Member, QuorumConfig};
        if !self.cfg.reconfig_enabled {
            return Err(ErrorCode::ReconfigDisabled);
        }
        let zxid = self.zxid + 1;
        let now = self.now_ms();
        let ens = self.ens.as_ref().expect("ensemble");
        let cur = ens.setup.quorum.clone();
        let standalone_enabled = !self
            .cfg
            .raw
            .get("standaloneEnabled")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let sync_ms = ens.setup.sync_limit as i64 * self.cfg.tick_time as i64;
        let Some(l) = self.leader() else {
            return Err(ErrorCode::Unimplemented);
        };
        if l.reconfig_in_flight {
            return Err(ErrorCode::ReconfigInProgress);
        }
        if r.cur_config_id != -1 && r.cur_config_id != cur.version {
            return Err(ErrorCode::BadVersion);
        }
        let mut next = if !r.new_members.is_empty() {
            QuorumConfig::parse(&r.new_members.replace(',', "\n"))
                .map_err(|_| ErrorCode::BadArguments)?
        } else {
            let mut m = cur.members.clone();
            for leaving in r
                .leaving_servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let sid: u64 = leaving.parse().map_err(|_| ErrorCode::BadArguments)?;
                m.remove(&sid);
            }
            for joiner in r
                .joining_servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let parts: Vec<&str> = joiner.split('=').filter(|s| !s.is_empty()).collect();
                let [k, v] = parts[..] else {
                    return Err(ErrorCode::BadArguments);
                };
                let sid: u64 = k
                    .rsplit('.')
                    .next()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or(ErrorCode::BadArguments)?;
                let mem = Member::parse(sid, v).map_err(|_| ErrorCode::BadArguments)?;
                if mem.client.is_none() {
                    return Err(ErrorCode::BadArguments);
                }
                for o in m.values().filter(|o| o.id != sid) {
                    let clash = [o.quorum_addr(), o.election_addr()];
                    if clash.contains(&mem.quorum_addr()) || clash.contains(&mem.election_addr()) {
                        return Err(ErrorCode::BadArguments);
                    }
                }
                m.insert(sid, mem);
            }
            // Majority quorums, as Apache's incremental reconfig makes
            // (a QuorumMaj, even from a hierarchical configuration).
            QuorumConfig {
                members: m,
                ..Default::default()
            }
        };
        next.version = zxid;
        let voters = next.voter_count();
        if (standalone_enabled && voters < 2) || voters < 1 {
            return Err(ErrorCode::BadArguments);
        }
        // A quorum of the new configuration must be with us now.
        let synced = l.m.synced_recently(now, sync_ms, true);
        if !next.is_quorum(&synced) {
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        if !self.opts.skip_acl {
            let node = self
                .tree
                .node(tree::tree::CONFIG)
                .ok_or(ErrorCode::NoNode)?;
            let acl = self.tree.acl_of(node);
            if !tree::acl::check(&acl, jute::consts::perms::WRITE, auth) {
                return Err(ErrorCode::NoAuth);
            }
        }
        if let Some(l) = self.leader() {
            l.reconfig_in_flight = true;
        }
        Ok(TxnBody::Reconfig(jute::txn::SetDataTxn {
            path: tree::tree::CONFIG.to_owned(),
            data: Some(Bytes::from(next.to_string())),
            version: -1,
        }))
    }
}
