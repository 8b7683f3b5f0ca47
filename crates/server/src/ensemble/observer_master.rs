//! Observer masters (`observerMasterPort`), as Apache's ObserverMaster and
//! Observer do.
//!
//! A synced follower listens on that port at its quorum address and hosts
//! observers, so the leader does not have to:
//! - it syncs each from what it has committed and sends NEWLEADER;
//! - it passes every commit on as an INFORM, built when the proposal came;
//! - it relays the observers' writes, syncs and revalidations to the leader
//!   over its own link, and their session touches in its own PINGs;
//! - it answers a relayed sync when the leader answers it, in order with
//!   its own.
//!
//! The handshake's states are `zab::relay`'s. An observer with the setting
//! connects to the followers' observer master ports in turn, never the
//! leader, which does not listen on one.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use jute::codec::{Reader, Record};
use jute::consts::op;
use jute::quorum::{LearnerInfo, QuorumPacket};
use tracing::{info, warn};
use zab::relay::{Do, Relay};
use zab::wire::{self, packet};

use super::leader::SyncFor;
use super::link;
use super::{LinkId, QMsg, Role};
use crate::core::Core;

struct Observer {
    out: link::Outbox,
    sock: link::Sock,
    stats: link::PeerStats,
}

pub struct ObserverMaster {
    m: Relay<LinkId>,
    links: HashMap<LinkId, Observer>,
    listener: tokio::task::JoinHandle<()>,
    /// INFORMs built as their proposals arrived, sent when they commit.
    proposed: VecDeque<(i64, Bytes)>,
    /// COMMITANDACTIVATE: its zxid and the leader it designates, for the
    /// INFORMANDACTIVATE.
    activate: Option<(i64, i64)>,
    /// Observers' REVALIDATEs relayed to the leader: (session, timeout,
    /// link). The leader answers in order, ours among them.
    revalidations: VecDeque<(i64, i32, LinkId)>,
    /// The last INFORM's zxid (a PING carries it).
    last_informed: i64,
}

impl ObserverMaster {
    /// Observers past UPTODATE (a follower's synced_observers).
    pub fn synced(&self) -> usize {
        self.m.synced()
    }

    /// Admin `orst`: the observers' link counts start again.
    pub fn reset_observer_stats(&mut self) {
        for o in self.links.values_mut() {
            o.stats.reset(&mut o.out);
        }
    }

    /// Admin `observers`: each synced observer's link.
    pub fn observers_info(&self) -> Vec<serde_json::Value> {
        self.m
            .synced_links()
            .filter_map(|link| {
                let sid = self.m.observer(link)?.sid?;
                let o = self.links.get(&link)?;
                Some(o.stats.info(sid, &o.out))
            })
            .collect()
    }

    fn send(&mut self, link: LinkId, b: &Bytes) {
        if let Some(o) = self.links.get_mut(&link) {
            o.out.push(b);
        }
    }

    fn drop_link(&mut self, link: LinkId) {
        if let Some(o) = self.links.remove(&link) {
            // Its reader then reports the link closed.
            let _ = o.sock.shutdown(std::net::Shutdown::Both);
        }
        self.m.closed(link);
    }

    /// End of a pipeline batch: what each observer was sent goes out.
    pub(crate) fn flush(&mut self) {
        let mut stalled = Vec::new();
        for (link, o) in self.links.iter_mut() {
            if o.out.flush().is_err() {
                stalled.push(*link);
            }
        }
        for link in stalled {
            let sid = self.m.observer(link).and_then(|o| o.sid).unwrap_or(0);
            warn!("observer {sid} is not reading its packets: disconnecting it");
            self.drop_link(link);
        }
    }
}

impl Drop for ObserverMaster {
    fn drop(&mut self) {
        self.listener.abort();
        for o in self.links.values() {
            let _ = o.sock.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Core {
    fn om(&mut self) -> Option<&mut ObserverMaster> {
        match self.ens.as_mut().map(|e| &mut e.role) {
            Some(Role::Following(f)) => f.om.as_deref_mut(),
            _ => None,
        }
    }

    /// Synced with the leader: a follower with observerMasterPort starts
    /// hosting observers (Follower.followLeader starts its ObserverMaster
    /// at this point too).
    pub(crate) fn start_observer_master(&mut self) {
        let Some(ens) = self.ens.as_mut() else { return };
        let Some(port) = ens.setup.observer_master_port else {
            return;
        };
        let me = ens.setup.me().clone();
        let core_tx = ens.core_tx.clone();
        let setup = ens.setup.clone();
        let listener = match link::listen(&me.host, port, ens.setup.listen_all) {
            Ok(l) => l,
            Err(e) => {
                // Following goes on; observers find another master.
                warn!(
                    "cannot bind the observer master port {}:{port}: {e}",
                    me.host
                );
                return;
            }
        };
        let listener = link::accept_learners(listener, core_tx, link::Opts::of(&self.cfg), setup);
        info!("hosting observers on {}:{port}", me.host);
        let last = self.tree.last_zxid();
        let Some(f) = self.follower() else {
            listener.abort();
            return;
        };
        f.om = Some(Box::new(ObserverMaster {
            m: Relay::new(),
            links: HashMap::new(),
            listener,
            proposed: VecDeque::new(),
            activate: None,
            revalidations: VecDeque::new(),
            last_informed: last,
        }));
    }

    /// A message about one of the observers' links.
    pub(crate) fn om_msg(&mut self, m: QMsg) {
        let init_ms = self
            .ens
            .as_ref()
            .map_or(20_000, |e| e.setup.init_limit as u64)
            * self.cfg.tick_time as u64;
        match m {
            QMsg::LearnerConnected { link, conn } => {
                let (out, sock, remote) = conn.split();
                let Some(om) = self.om() else {
                    // No longer hosting (a role change raced the accept).
                    let _ = sock.shutdown(std::net::Shutdown::Both);
                    return;
                };
                link::set_timeout(&sock, Duration::from_millis(init_ms));
                om.m.connected(link);
                om.links.insert(
                    link,
                    Observer {
                        out,
                        sock,
                        stats: link::PeerStats::new(remote),
                    },
                );
            }
            QMsg::Packet { link, pkt, .. } => self.om_packet(link, pkt),
            QMsg::LinkClosed { link, why } => {
                let Some(om) = self.om() else { return };
                om.links.remove(&link);
                if let Some(sid) = om.m.closed(link).and_then(|o| o.sid) {
                    info!("observer {sid} disconnected: {why}");
                }
            }
            _ => {}
        }
    }

    fn om_packet(&mut self, link: LinkId, pkt: QuorumPacket) {
        let (current_epoch, config_version) = {
            let ens = self.ens.as_ref().expect("ensemble");
            (ens.current_epoch, ens.setup.quorum.version)
        };
        let Some(om) = self.om() else { return };
        let Some(phase) = om.m.observer(link).map(|o| o.phase) else {
            return;
        };
        use zab::relay::Phase;
        if let Some(o) = om.links.get_mut(&link) {
            o.stats.received += 1;
            if pkt.packet_type == packet::REQUEST {
                o.stats.requests += 1;
            }
        }
        let todo = match pkt.packet_type {
            packet::FOLLOWERINFO | packet::OBSERVERINFO if phase == Phase::Info => {
                match LearnerInfo::read(&mut Reader::new(pkt.data.clone())) {
                    Ok(i) => {
                        info!("observer {} connected to us as its master", i.server_id);
                        om.m.info(
                            link,
                            pkt.packet_type == packet::OBSERVERINFO,
                            i.server_id as u64,
                            i.config_version,
                            config_version,
                            current_epoch,
                        )
                    }
                    Err(e) => vec![Do::TurnAway {
                        link,
                        why: format!("bad LearnerInfo: {e}"),
                    }],
                }
            }
            packet::ACKEPOCH => om.m.ack_epoch(link, pkt.zxid),
            packet::ACK => om.m.ack(link),
            packet::PING if phase == Phase::Synced => {
                let touches = wire::decode_touches(&pkt.data);
                if let Some(e) = self.ens.as_mut() {
                    e.touched.extend(touches);
                }
                return;
            }
            packet::REQUEST if phase == Phase::Synced => {
                self.relay_request(link, pkt);
                return;
            }
            packet::REVALIDATE if phase == Phase::Synced => {
                let d = &pkt.data;
                if d.len() < 12 {
                    return;
                }
                let session = i64::from_be_bytes(d[..8].try_into().unwrap());
                let timeout = i32::from_be_bytes(d[8..12].try_into().unwrap());
                self.cfg.metrics.revalidate_count.inc();
                let Some(om) = self.om() else { return };
                om.revalidations.push_back((session, timeout, link));
                if let Some(f) = self.follower() {
                    f.send(link::encode(packet::REVALIDATE, -1, pkt.data, vec![]));
                }
                return;
            }
            t => om.m.unexpected(link, packet::name(t)),
        };
        self.om_do(todo);
    }

    fn om_do(&mut self, todo: Vec<Do<LinkId>>) {
        for d in todo {
            match d {
                Do::LeaderInfo { link, zxid } => {
                    let b = link::encode(
                        packet::LEADERINFO,
                        zxid,
                        Bytes::copy_from_slice(&wire::ZAB_PROTOCOL_VERSION.to_be_bytes()),
                        vec![],
                    );
                    if let Some(om) = self.om() {
                        om.send(link, &b);
                    }
                }
                Do::Sync { link, last_zxid } => self.sync_observer(link, last_zxid),
                Do::UpToDate { link } => {
                    let sync_ms = self.cfg.tick_time as u64
                        * self.ens.as_ref().map_or(5, |e| e.setup.sync_limit as u64);
                    let Some(om) = self.om() else { return };
                    let sid = om.m.observer(link).and_then(|o| o.sid).unwrap_or(0);
                    if let Some(o) = om.links.get(&link) {
                        link::set_timeout(&o.sock, Duration::from_millis(sync_ms));
                    }
                    om.send(
                        link,
                        &link::encode(packet::UPTODATE, -1, Bytes::new(), vec![]),
                    );
                    info!("observer {sid} is up to date");
                }
                Do::TurnAway { link, why } => {
                    warn!("{why}: dropping it");
                    if let Some(om) = self.om() {
                        om.drop_link(link);
                    }
                }
            }
        }
    }

    /// What the observer lacks of our committed tree, then NEWLEADER with
    /// our configuration (LearnerHandler.syncFollower against the
    /// follower's database). Commits from here on follow as INFORMs.
    fn sync_observer(&mut self, link: LinkId, peer_last: i64) {
        let (epoch, config) = {
            let ens = self.ens.as_ref().expect("ensemble");
            (ens.current_epoch, ens.setup.quorum.to_string())
        };
        let last = self.tree.last_zxid();
        let Some((p, mut out)) = self.sync_packets(peer_last) else {
            if let Some(om) = self.om() {
                om.drop_link(link);
            }
            return;
        };
        out.push(link::encode(
            packet::NEWLEADER,
            zab::make_zxid(epoch, 0),
            Bytes::from(config),
            vec![],
        ));
        let Some(om) = self.om() else { return };
        let sid = om.m.observer(link).and_then(|o| o.sid).unwrap_or(0);
        info!(
            "syncing observer {sid} (last zxid 0x{peer_last:x}) with {p:?}, we are at 0x{last:x}"
        );
        for b in &out {
            om.send(link, b);
        }
    }

    /// An observer's write or sync goes to the leader as it came; the
    /// leader's commit comes back to it as an INFORM, a sync's answer as
    /// SYNC once the leader answers ours.
    fn relay_request(&mut self, link: LinkId, pkt: QuorumPacket) {
        let is_sync = pkt
            .data
            .get(12..16)
            .is_some_and(|b| i32::from_be_bytes(b.try_into().unwrap()) == op::SYNC);
        let metrics = self.cfg.metrics.clone();
        let Some(f) = self.follower() else { return };
        if is_sync {
            f.syncs.push_back(SyncFor::Learner(link));
        }
        // The observer answers its client; nothing waits for it here
        // (Apache with skipLearnerRequestToNextProcessor).
        metrics.skip_learner_request_to_next_processor_count.inc();
        f.send_request(
            link::encode(packet::REQUEST, pkt.zxid, pkt.data, pkt.auth_info),
            &metrics,
        );
    }

    /// The leader answered a sync we relayed.
    pub(crate) fn om_sync_done(&mut self, link: LinkId) {
        if let Some(om) = self.om() {
            om.send(link, &link::encode(packet::SYNC, 0, Bytes::new(), vec![]));
        }
    }

    /// The leader's answer to a REVALIDATE: true if it was an observer's
    /// (passed on to it; a valid session counts as touched, as the leader
    /// touches its own), false if it was ours.
    pub(crate) fn om_revalidated(&mut self, pkt: &QuorumPacket) -> bool {
        let d = &pkt.data;
        let Some(id) = d
            .get(..8)
            .map(|b| i64::from_be_bytes(b.try_into().unwrap()))
        else {
            return false;
        };
        let valid = d.get(8).is_some_and(|&v| v != 0);
        let Some(om) = self.om() else { return false };
        let Some(&(session, timeout, link)) = om.revalidations.front() else {
            return false;
        };
        if session != id {
            return false;
        }
        om.revalidations.pop_front();
        om.send(
            link,
            &link::encode(packet::REVALIDATE, pkt.zxid, pkt.data.clone(), vec![]),
        );
        if valid {
            if let Some(e) = self.ens.as_mut() {
                e.touched.insert(session, timeout);
            }
        }
        true
    }

    /// A proposal from the leader: its INFORM is built now, so that its
    /// commit only has to send it (ObserverMaster.proposalReceived).
    pub(crate) fn om_proposal(&mut self, zxid: i64, raw: &Bytes) {
        let metrics = self.cfg.metrics.clone();
        let Some(om) = self.om() else { return };
        let started = std::time::Instant::now();
        om.proposed.push_back((
            zxid,
            link::encode(packet::INFORM, zxid, raw.clone(), vec![]),
        ));
        metrics.om_proposal_process_time_ms.since(started);
    }

    /// COMMITANDACTIVATE: its INFORM names the designated leader.
    pub(crate) fn om_activate(&mut self, zxid: i64, leader: i64) {
        if let Some(om) = self.om() {
            om.activate = Some((zxid, leader));
        }
    }

    /// A commit from the leader, before we apply it: every observer synced
    /// before it gets its INFORM (ObserverMaster.proposalCommitted).
    pub(crate) fn om_commit(&mut self, zxid: i64, raw: &Bytes) {
        let metrics = self.cfg.metrics.clone();
        let Some(om) = self.om() else { return };
        let started = std::time::Instant::now();
        while om.proposed.front().is_some_and(|(z, _)| *z < zxid) {
            om.proposed.pop_front();
        }
        let built = match om.proposed.front() {
            Some((z, _)) if *z == zxid => om.proposed.pop_front().map(|(_, b)| b),
            _ => None,
        };
        let pkt = match om.activate.take() {
            Some((z, leader)) if z == zxid => {
                let mut d = BytesMut::with_capacity(8 + raw.len());
                d.put_i64(leader);
                d.put_slice(raw);
                link::encode(packet::INFORMANDACTIVATE, zxid, d.freeze(), vec![])
            }
            other => {
                om.activate = other;
                // Proposed before we hosted observers: built now.
                built.unwrap_or_else(|| link::encode(packet::INFORM, zxid, raw.clone(), vec![]))
            }
        };
        let to: Vec<LinkId> = om.m.informed().collect();
        for link in to {
            om.send(link, &pkt);
        }
        om.last_informed = zxid;
        metrics.om_commit_process_time_ms.since(started);
    }

    /// Every half tick: a PING to each synced observer, which answers with
    /// its sessions' touches.
    pub(crate) fn om_tick(&mut self) {
        let Some(om) = self.om() else { return };
        let ping = link::encode(packet::PING, om.last_informed, Bytes::new(), vec![]);
        let to: Vec<LinkId> = om.m.synced_links().collect();
        for link in to {
            om.send(link, &ping);
        }
    }

    /// An observer with observerMasterPort: the next follower to sync from,
    /// in a rotation started at random (Apache shuffles its list), never
    /// the leader (it does not listen on that port). None without the
    /// setting or without another voter.
    pub(crate) fn next_learner_master(&mut self, leader: u64) -> Option<(u64, String)> {
        let ens = self.ens.as_mut()?;
        let port = ens.setup.observer_master_port?;
        let candidates: Vec<&zab::Member> = ens
            .setup
            .quorum
            .members
            .values()
            .filter(|m| m.kind == zab::LearnerType::Participant && m.id != leader)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let at = *ens
            .next_master
            .get_or_insert_with(|| rand::random::<u32>() as usize);
        ens.next_master = Some(at.wrapping_add(1));
        let m = candidates[at % candidates.len()];
        Some((m.id, format!("{}:{port}", zab::config::bracket(&m.host))))
    }
}
