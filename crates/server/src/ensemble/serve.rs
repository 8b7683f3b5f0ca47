//! Clients of a server in an ensemble. Reads are answered from the local
//! tree, which holds committed txns only; writes are proposed (leader) or
//! forwarded (learners) and answered when their txn is applied. A
//! session's requests are answered in order: once a write is pending,
//! everything after it waits (CommitProcessor's rule), which is what lets
//! a client read its own writes through any server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::consts::op;
use jute::data::Id;
use jute::proto::ConnectRequest;
use jute::request::Request;
use jute::txn::{Txn, TxnBody};
use tracing::{debug, error, info, warn};
use tree::ops::{self, Response};
use tree::session::{self, SessionTracker};

use super::{PendingConnect, QMsg, Queued, Role};
use crate::conn::Outbox;
use crate::core::{ConnId, Core};

impl Core {
    /// Pipeline milliseconds (the monotonic clock sessions use).
    pub(crate) fn now_ms(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    pub(crate) fn ensemble_msg(&mut self, m: QMsg) {
        match m {
            QMsg::Packets { link, pkts } => {
                for (pkt, at) in pkts {
                    self.ensemble_msg(QMsg::Packet { link, pkt, at });
                }
            }
            QMsg::Decided { state, vote } => {
                if !matches!(self.ens.as_ref().map(|e| &e.role), Some(Role::Looking)) {
                    return;
                }
                // Read-only sessions end with the read-only server.
                let conns: Vec<ConnId> = self.conns.keys().copied().collect();
                for c in conns {
                    self.drop_conn(c);
                }
                match state {
                    zab::ServerState::Leading => self.become_leader(),
                    zab::ServerState::Following | zab::ServerState::Observing => {
                        self.become_follower(vote.leader as u64)
                    }
                    zab::ServerState::Looking => {}
                }
            }
            QMsg::Tick if matches!(self.ens.as_ref().map(|e| &e.role), Some(Role::Looking)) => {
                let now = self.now_ms();
                let grace = super::read_only_grace_ms(self.cfg.tick_time);
                if let Some(e) = self.ens.as_mut() {
                    if e.read_only_mode && !e.read_only_active && now - e.since >= grace {
                        info!("no quorum: serving read-only clients");
                        e.read_only_active = true;
                    }
                }
            }
            m => match self.ens.as_ref().map(|e| &e.role) {
                Some(Role::Leading(_)) => self.leader_msg(m),
                Some(Role::Following(_)) => self.follower_msg(m),
                _ => {}
            },
        }
    }

    /// Writes acceptedEpoch (`accepted`) or currentEpoch and keeps it in the
    /// ensemble state; a write that fails leaves the role (false).
    pub(crate) fn persist_epoch(&mut self, accepted: bool, epoch: i64) -> bool {
        let name = if accepted {
            "acceptedEpoch"
        } else {
            "currentEpoch"
        };
        if let Err(e) = super::write_epoch(&self.layout.snap_dir, name, epoch) {
            warn!("{e}");
            self.become_looking(&format!("cannot write {name}"));
            return false;
        }
        let ens = self.ens.as_mut().expect("ensemble");
        if accepted {
            ens.accepted_epoch = epoch;
        } else {
            ens.current_epoch = epoch;
        }
        true
    }

    /// Leaves the current role: clients are disconnected (they reconnect,
    /// here or elsewhere, with their sessions), links close, and once the
    /// log is on disk the tree is reloaded from it and the election starts.
    pub(crate) fn become_looking(&mut self, why: &str) {
        let Some(ens) = self.ens.as_mut() else { return };
        info!("LOOKING ({why}); was {}", ens.role.name());
        // Unless a sync was cut short, the tree is the committed prefix of
        // the log: applying the rest beats re-reading the dataDir (which
        // took seconds with a large tree, on every failover).
        self.carry = match &ens.role {
            Role::Leading(l) => Some(l.logged_uncommitted()),
            Role::Following(f) => f.logged_uncommitted(),
            Role::Looking => None,
        };
        ens.role = Role::Looking;
        ens.read_only_active = false;
        ens.since = self.start.elapsed().as_millis() as i64;
        ens.arm_read_only(self.cfg.tick_time);
        self.cfg.metrics.election_started();
        ens.queued.clear();
        (ens.queued_reads, ens.queued_writes) = (0, 0);
        ens.connecting.clear();
        ens.touched.clear();
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            self.drop_conn(c);
        }
        self.reload_pending = true;
        self.reload_if_durable();
    }

    /// After leaving a role: once every txn handed to the log is durable,
    /// reload the tree from disk and look for a leader. (Not `durable <
    /// zxid`: txns applied during a TRUNC or SNAP sync never go through the
    /// log, and are rightly forgotten by the reload.)
    pub(crate) fn reload_if_durable(&mut self) {
        if !self.reload_pending || self.persist.backlog() > 0 {
            return;
        }
        self.reload_pending = false;
        // After a log failure the carried txns may not all be on disk: then
        // only the dataDir is the truth.
        let carry = self.carry.take().filter(|_| self.disk_failed.is_none());
        if let Some(txns) = carry {
            let ext = self.cfg.extended_types;
            let mut tree = std::mem::replace(&mut self.tree, tree::DataTree::new(ext));
            let n = txns.len();
            let mut applied = Vec::with_capacity(n);
            for t in txns {
                if t.header.zxid > tree.last_zxid() {
                    tree.apply(&t.header, &t.body);
                    applied.push(t);
                }
            }
            // Nobody is connected: no one to notify.
            tree.take_fired();
            tree.take_triggers();
            info!(
                "kept the tree in memory ({n} logged txns applied), at zxid 0x{:x}",
                tree.last_zxid()
            );
            self.replace_tree(tree);
            let ens = self.ens.as_mut().expect("ensemble");
            for t in applied {
                ens.history.push(t);
            }
        } else {
            let loaded = match crate::persist::load(&self.cfg, &self.layout) {
                Ok(t) => t,
                Err(e) => {
                    // Nothing safe to do but stop: our history is unreadable.
                    tracing::error!("cannot reload the dataDir: {e}");
                    std::process::exit(14);
                }
            };
            self.install_loaded(loaded);
        }
        let ens = self.ens.as_mut().expect("ensemble");
        let _ = ens.election.send(super::ElectionCmd::Look {
            last_zxid: self.tree.last_zxid(),
            current_epoch: ens.current_epoch,
        });
    }

    /// Hands the packets queued for quorum peers to their writers.
    pub(crate) fn flush_links(&mut self) {
        match self.ens.as_mut().map(|e| &mut e.role) {
            Some(Role::Leading(l)) => l.flush(&self.cfg.metrics),
            Some(Role::Following(f)) => f.flush(),
            _ => {}
        }
    }

    /// Installs a tree read back from disk; the txns replayed to reach it
    /// are the DIFF history.
    pub(crate) fn install_loaded(&mut self, loaded: crate::persist::Loaded) {
        self.replace_tree(loaded.tree);
        if let Some(e) = self.ens.as_mut() {
            e.history.reset(loaded.tail);
        }
    }

    /// Installs `tree` (reloaded, or a leader's SNAP) with fresh pending
    /// state and a session table rebuilt from its sessions.
    pub(crate) fn replace_tree(&mut self, tree: tree::DataTree) {
        self.tree = tree;
        if let Some(e) = self.ens.as_ref() {
            let q = &e.setup.quorum;
            self.tree
                .set_config_node(&q.to_string(), q.version, crate::core::wall_ms());
        }
        self.zxid = self.tree.last_zxid();
        self.durable = self.durable.max(self.zxid);
        self.pending.clear();
        let my_id = self.ens.as_ref().map_or(0, |e| e.setup.my_id as i64);
        let mut s = SessionTracker::new(
            self.cfg.tick_time as i64,
            session::initial_session_id(my_id, crate::core::wall_ms()),
        );
        let now = self.now_ms();
        for (&sid, &to) in self.tree.sessions() {
            s.add(sid, to, now);
        }
        self.sessions = s;
    }

    /// Cuts the txn log after `zxid` and starts a new log writer.
    pub(crate) fn truncate_log_after(&mut self, zxid: i64) {
        // The writer must not append to a file being cut. It never waits on
        // us, so this ends; a sync starts with an empty backlog anyway.
        self.persist.flush();
        let t0 = Instant::now();
        while self.persist.backlog() > 0 && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Err(e) = storage::txnlog::truncate_after(&self.layout.log_dir, zxid) {
            warn!("cannot truncate the txn log after 0x{zxid:x}: {e}");
            return;
        }
        // A snapshot past the cut holds the txns just removed: reloading
        // from it would bring the abandoned branch back.
        match storage::snapshot::list_snapshots(&self.layout.snap_dir) {
            Ok(snaps) => {
                for (z, path) in snaps.into_iter().filter(|(z, _)| *z > zxid) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => info!(
                            "removed snapshot {} (0x{z:x} is past the truncation)",
                            path.display()
                        ),
                        Err(e) => warn!("cannot remove snapshot {}: {e}", path.display()),
                    }
                }
            }
            Err(e) => warn!("cannot list snapshots to truncate after 0x{zxid:x}: {e}"),
        }
        match crate::persist::start(&self.cfg, &self.layout, zxid, self.events_tx.clone()) {
            Ok((p, _thread)) => self.persist = p,
            Err(e) => warn!("cannot restart the txn log: {e}"),
        }
        self.zxid = zxid.min(self.zxid).max(self.tree.last_zxid());
        self.durable = self.zxid;
    }

    /// A snapshot of the tree now, written before returning.
    pub(crate) fn snapshot_now(&mut self) -> anyhow::Result<()> {
        let comp = crate::persist::compression(&self.cfg);
        let p = storage::snapshot::write_snapshot(
            &self.layout.snap_dir,
            &self.tree,
            self.tree.last_zxid(),
            comp,
        )?;
        info!("wrote snapshot {}", p.display());
        Ok(())
    }

    /// Request -> txn body, against the tree and what is in flight.
    pub(crate) fn prepare(&mut self, session: i64, auth: &[Id], req: &Request) -> TxnBody {
        let ctx = tree::prep::Ctx {
            session_id: session,
            auth,
            zxid: self.zxid + 1,
            time: crate::core::wall_ms(),
            opts: &self.opts,
        };
        let started = std::time::Instant::now();
        let time = ctx.time;
        let body = tree::prep::prepare(&self.tree, &mut self.pending, ctx, req);
        // propose() gives the txn the time prep's stats assumed.
        self.prep_time = Some(time);
        self.prepared(req, started);
        self.count_pending();
        body
    }

    /// A leader's txn carries the digest its tree will have after the txn
    /// (Apache's leaders compute it; ours send none): a replica whose tree
    /// differs has diverged. As DataTree.compareDigest: counted in
    /// digest_mismatches_count and logged, and nothing else is done.
    fn check_digest(&mut self, zxid: i64, d: &jute::txn::TxnDigest) {
        if d.version != tree::digest::DIGEST_VERSION {
            return;
        }
        let actual = self.tree.digest();
        let Some(ens) = self.ens.as_mut() else { return };
        if actual == d.tree_digest {
            ens.digests_matched += 1;
            if ens.digests_matched == 1 {
                info!("the leader's txn digests are checked against this tree (first match at zxid 0x{zxid:x})");
            }
            return;
        }
        let m = &self.cfg.metrics;
        m.digest_mismatches_count.inc();
        if m.digest_mismatches_count.get() == 1 {
            error!(
                "digest mismatch at txn 0x{zxid:x}: the leader's tree has digest {}, ours {}: this server's data differs from the leader's",
                d.tree_digest, actual
            );
        } else {
            debug!("digest mismatch at txn 0x{zxid:x}");
        }
    }

    /// A committed txn: applied, its watches delivered, its client (if
    /// ours) answered.
    pub(crate) fn apply_committed(&mut self, txn: Txn) {
        let started = std::time::Instant::now();
        let hdr = txn.header;
        let rc = self.tree.apply(&hdr, &txn.body);
        self.txn_applied(&hdr, &txn.body);
        if let Some(d) = &txn.digest {
            self.check_digest(hdr.zxid, d);
        }
        let reconfig = match &txn.body {
            TxnBody::Reconfig(t) => Some(t.data.clone().unwrap_or_default()),
            _ => None,
        };
        let op = txn.body.op();
        if let Some(ens) = self.ens.as_mut() {
            ens.history.push(txn);
        }
        self.pending.applied(hdr.zxid);
        self.count_pending();
        self.zxid = self.zxid.max(hdr.zxid);
        self.deliver_watches();
        self.count_for_snapshot();
        let applied = self
            .deferred
            .since(|m| &m.write_final_proc_time_ms, started);
        self.cfg.metrics.request_commit_queued.inc();
        let arrived = self.ens.as_mut().and_then(|e| {
            let waiting = (e.queued_reads, e.queued_writes);
            e.round.begin(started, waiting);
            e.round.committed(started, applied);
            e.commit_arrived
        });
        let session = hdr.client_id;
        if let Some(text) = reconfig {
            self.activate_config(&String::from_utf8_lossy(&text));
        }
        match op {
            op::CREATE_SESSION => {
                if let Some(ens) = self.ens.as_mut() {
                    if let Some(pc) = ens.connecting.remove(&session) {
                        ens.touched.insert(session, pc.timeout);
                        self.finish_connect(pc, session, true);
                    }
                }
            }
            op::CLOSE_SESSION => {
                self.untrack_session(session);
                let ours = self.session_conn(session);
                let asked = self.ens.as_ref().is_some_and(|e| {
                    e.queued.get(&session).is_some_and(|q| {
                        q.iter().any(|x| {
                            x.submitted
                                && x.xid == hdr.cxid
                                && matches!(x.req, Request::CloseSession)
                        })
                    })
                });
                if !asked {
                    self.write_committed(false, arrived, applied);
                    if let Some(c) = ours {
                        info!("session 0x{session:x} closed by the leader (expired)");
                        self.drop_conn(c);
                    }
                    if let Some(e) = self.ens.as_mut() {
                        if let Some(q) = e.queued.remove(&session) {
                            for x in q {
                                e.unqueued(&x);
                            }
                        }
                    }
                    return;
                }
            }
            _ => {}
        }
        let Some(ens) = self.ens.as_mut() else { return };
        let mut local = false;
        if let Some(q) = ens.queued.get_mut(&session) {
            if let Some(x) = q.iter_mut().find(|x| {
                x.submitted
                    && x.result.is_none()
                    && x.xid == hdr.cxid
                    && !matches!(x.req, Request::Sync(_))
            }) {
                x.result = Some(rc);
                local = true;
            }
        }
        self.write_committed(local, arrived, applied);
        if local {
            if let Some(e) = self.ens.as_mut() {
                e.round.drained(session);
            }
        }
        self.drain_session(session);
    }

    /// local_write_committed_time_ms (a write of this server's client) or
    /// server_write_committed_time_ms: from the commit's arrival to applied.
    fn write_committed(&mut self, local: bool, arrived: Option<Instant>, applied: Instant) {
        let Some(arrived) = arrived else { return };
        let pick: crate::metrics::Pick = match local {
            true => |m| &m.local_write_committed_time_ms,
            false => |m| &m.server_write_committed_time_ms,
        };
        self.deferred.observe(
            pick,
            applied.saturating_duration_since(arrived).as_millis() as u64,
        );
    }

    pub(crate) fn sync_done(&mut self, session: i64, xid: i32) {
        let Some(ens) = self.ens.as_mut() else { return };
        if let Some(q) = ens.queued.get_mut(&session) {
            if let Some(x) = q
                .iter_mut()
                .find(|x| x.xid == xid && matches!(x.req, Request::Sync(_)))
            {
                x.synced = true;
            }
        }
        self.drain_session(session);
    }

    pub(crate) fn revalidated(&mut self, session: i64, valid: bool) {
        let Some(ens) = self.ens.as_mut() else { return };
        if let Some(pc) = ens.connecting.remove(&session) {
            if valid {
                ens.touched.insert(session, pc.timeout);
            }
            self.finish_connect(pc, session, valid);
        }
    }

    fn finish_connect(&mut self, pc: PendingConnect, session: i64, valid: bool) {
        if valid {
            if let Some(old) = self.session_conn(session) {
                if old != pc.conn {
                    self.drop_conn(old);
                }
            }
        }
        self.answer_connect(
            pc.conn, pc.remote, pc.legacy, pc.tx, session, pc.timeout, valid,
        );
        if let Some(c) = self.conns.get_mut(&pc.conn) {
            c.add_auth(pc.auth);
        }
    }

    /// A client's handshake while in an ensemble.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ensemble_connect(
        &mut self,
        conn: ConnId,
        remote: SocketAddr,
        req: ConnectRequest,
        legacy: bool,
        tx: Outbox,
        auth: Vec<Id>,
    ) {
        let Some(ens) = self.ens.as_ref() else { return };
        if ens.read_only() {
            self.read_only_connect(conn, remote, req, legacy, tx, auth);
            return;
        }
        if !ens.serving() {
            // As ZooKeeperServer does when not running: close at once.
            self.cfg.metrics.cnxn_closed_without_zk_server_running.inc();
            return;
        }
        let leading = matches!(ens.role, Role::Leading(_));
        let last = self.tree.last_zxid();
        if req.last_zxid_seen > last {
            info!(
                "refusing session request for client {remote} as it has seen zxid 0x{:x}, our last zxid is 0x{last:x}; client must try another server",
                req.last_zxid_seen
            );
            return;
        }
        let timeout = req
            .time_out
            .clamp(self.cfg.min_session_timeout, self.cfg.max_session_timeout);
        let now = self.now_ms();
        let pc = PendingConnect {
            conn,
            remote,
            legacy,
            tx,
            timeout,
            auth,
        };
        if req.session_id == 0 {
            let sid = self.sessions.next_session_id();
            self.ens
                .as_mut()
                .expect("ensemble")
                .connecting
                .insert(sid, pc);
            if leading {
                self.track_session(sid, timeout, now);
                self.propose(
                    sid,
                    0,
                    TxnBody::CreateSession(jute::txn::CreateSessionTxn { time_out: timeout }),
                );
            } else {
                self.forward(
                    sid,
                    0,
                    op::CREATE_SESSION,
                    Bytes::copy_from_slice(&timeout.to_be_bytes()),
                    vec![],
                );
            }
            info!("creating session 0x{sid:x} for client {remote}");
            return;
        }
        let sid = req.session_id;
        if req.passwd.as_ref() != session::password(sid) {
            info!("invalid session 0x{sid:x} for client {remote}: wrong password");
            self.finish_connect(pc, sid, false);
            return;
        }
        if leading {
            let ok = self.sessions.touch(sid, timeout, now);
            self.finish_connect(pc, sid, ok);
        } else {
            self.ens
                .as_mut()
                .expect("ensemble")
                .connecting
                .insert(sid, pc);
            self.revalidate(sid, timeout);
        }
    }

    /// A client request while in an ensemble (pings and auth are handled
    /// as standalone).
    /// Keeps `ticket` while the request waits in its session's queue;
    /// hands it back otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ensemble_request(
        &mut self,
        conn: ConnId,
        xid: i32,
        opc: i32,
        req: Request,
        received: Instant,
        taken: Instant,
        throttled: bool,
        ticket: Option<crate::admission::Ticket>,
    ) -> Option<crate::admission::Ticket> {
        let Some(c) = self.conns.get(&conn) else {
            return ticket;
        };
        let session = c.session;
        let auth = c.auth.clone();
        let Some(ens) = self.ens.as_mut() else {
            return ticket;
        };
        if ens.read_only() {
            self.read_only_request(conn, xid, opc, req, received, throttled);
            return ticket;
        }
        if !ens.serving() {
            self.cfg.metrics.cnxn_closed_without_zk_server_running.inc();
            self.drop_conn(conn);
            return ticket;
        }
        let leading = matches!(ens.role, Role::Leading(_));
        let is_sync = matches!(req, Request::Sync(_));
        // A throttled request is answered as a read would be: in order,
        // not forwarded, not proposed.
        let write = !throttled && (req.is_write() || is_sync);
        let busy = ens.queued.get(&session).is_some_and(|q| !q.is_empty());
        if !write && !busy {
            // Nothing of its session in flight: no wait (read_commitproc_time).
            self.deferred.observe(|m| &m.read_commitproc_time_ms, 0);
            let waiting = (ens.queued_reads, ens.queued_writes);
            ens.round.begin(taken, waiting);
            ens.round.read();
            self.answer_read(conn, xid, opc, &req, received, taken, throttled);
            return ticket;
        }
        let mut submitted = false;
        if write {
            submitted = true;
            if leading {
                if is_sync {
                    // Answered once what came before it has committed.
                } else if let Request::Reconfig(r) = &req {
                    let body = self.prepare_reconfig(&auth, r);
                    self.propose(session, xid, body);
                } else {
                    let body = self.prepare(session, &auth, &req);
                    if matches!(req, Request::CloseSession) {
                        self.untrack_session(session);
                    }
                    self.propose(session, xid, body);
                }
            } else {
                let opc = if matches!(req, Request::CloseSession) {
                    op::CLOSE_SESSION
                } else {
                    opc
                };
                if is_sync {
                    if let Some(f) = self.follower() {
                        f.syncs
                            .push_back(super::leader::SyncFor::Local { session, xid });
                    }
                }
                self.forward_request(session, xid, opc, &req, &auth);
            }
        }
        let ens = self.ens.as_mut().expect("ensemble");
        match submitted {
            true => ens.queued_writes += 1,
            false => ens.queued_reads += 1,
        }
        let q = ens.queued.entry(session).or_default();
        q.push_back(Queued {
            conn,
            xid,
            opc,
            req,
            received,
            submitted,
            result: None,
            synced: false,
            throttled,
            ticket,
        });
        let depth = q.len() as u64;
        let sessions = ens.queued.len() as u64;
        self.deferred
            .observe(|m| &m.requests_in_session_queue, depth);
        self.deferred
            .observe(|m| &m.pending_session_queue_size, sessions);
        if leading && is_sync {
            self.leader_sync(session, xid);
        }
        None
    }

    /// `from`: when the read left its queue (read_final_proc_time_ms).
    /// `throttled`: answered THROTTLEDOP instead (crate::admission).
    #[allow(clippy::too_many_arguments)]
    fn answer_read(
        &mut self,
        conn: ConnId,
        xid: i32,
        opc: i32,
        req: &Request,
        received: Instant,
        from: Instant,
        throttled: bool,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let auth = c.auth.clone();
        let session = c.session;
        let (err, resp) = match throttled {
            true => (jute::consts::ErrorCode::ThrottledOp.code(), Response::Empty),
            false => self.read_result(conn, session, &auth, req),
        };
        self.reply(conn, xid, err, &resp);
        let done = crate::core::Done::of(opc, xid, received, false).read_from(from);
        self.finish(conn, done);
    }

    /// Answers a session's requests from the front while they can be
    /// (ZooKeeper's CommitProcessor: its session-queue figures).
    pub(crate) fn drain_session(&mut self, session: i64) {
        let (reads, after_write) = self.drain_queue(session);
        if reads > 0 {
            self.deferred
                .observe(|m| &m.reads_issued_from_session_queue, reads);
        }
        if let Some(n) = after_write {
            self.deferred
                .observe(|m| &m.reads_after_write_in_session_queue, n);
        }
    }

    /// (reads answered, reads answered after the first write answered).
    fn drain_queue(&mut self, session: i64) -> (u64, Option<u64>) {
        let mut reads = 0;
        let mut after_write: Option<u64> = None;
        // Bounded by the queue's length: each turn pops one entry.
        loop {
            let Some(ens) = self.ens.as_mut() else {
                return (reads, after_write);
            };
            let Some(q) = ens.queued.get_mut(&session) else {
                return (reads, after_write);
            };
            let ready = match q.front() {
                None => {
                    ens.queued.remove(&session);
                    return (reads, after_write);
                }
                Some(x) if !x.submitted => true,
                Some(x) if matches!(x.req, Request::Sync(_)) => x.synced,
                Some(x) => x.result.is_some(),
            };
            if !ready {
                return (reads, after_write);
            }
            let x = q.pop_front().expect("checked");
            ens.unqueued(&x);
            if !self.conns.contains_key(&x.conn) {
                // The client left while its request was in flight; a close
                // may outlive its connection (Apache's Request.isStale).
                if !matches!(x.req, Request::CloseSession) {
                    self.cfg.metrics.stale_replies.inc();
                }
                continue;
            }
            if !x.submitted || (matches!(x.req, Request::Sync(_)) && !x.throttled) {
                // A read waited behind its session's write (a sync too).
                let from = self
                    .deferred
                    .since(|m| &m.read_commitproc_time_ms, x.received);
                if let Some(e) = self.ens.as_mut() {
                    let waiting = (e.queued_reads, e.queued_writes);
                    e.round.begin(from, waiting);
                    e.round.read();
                }
                reads += 1;
                if let Some(n) = after_write.as_mut() {
                    *n += 1;
                }
                self.answer_read(x.conn, x.xid, x.opc, &x.req, x.received, from, x.throttled);
                continue;
            }
            self.deferred
                .since(|m| &m.write_commitproc_time_ms, x.received);
            after_write.get_or_insert(0);
            let rc = x.result.expect("checked");
            let (err, resp) = match (&x.req, rc.err) {
                // reconfig answers with the new configuration and its Stat.
                (Request::Reconfig(_), 0) => match self.tree.node(tree::tree::CONFIG) {
                    Some(n) => (
                        0,
                        Response::GetData(n.data_bytes(), n.stat(self.opts.extended_types)),
                    ),
                    None => ops::write_reply(&rc),
                },
                _ => ops::write_reply(&rc),
            };
            self.reply(x.conn, x.xid, err, &resp);
            let done = crate::core::Done::of(x.opc, x.xid, x.received, x.req.is_write());
            self.finish(x.conn, done);
            if matches!(x.req, Request::CloseSession) {
                info!("closed session 0x{session:x}");
                self.drop_conn(x.conn);
            }
        }
    }

    /// A handshake to a read-only server: only clients that allow it, with
    /// sessions of their own (not replicated), or ones the tree knows.
    fn read_only_connect(
        &mut self,
        conn: ConnId,
        remote: SocketAddr,
        req: ConnectRequest,
        legacy: bool,
        tx: Outbox,
        auth: Vec<Id>,
    ) {
        if !req.read_only {
            info!("refusing session request for not-read-only client {remote}");
            return;
        }
        let timeout = req
            .time_out
            .clamp(self.cfg.min_session_timeout, self.cfg.max_session_timeout);
        let now = self.now_ms();
        let (sid, valid) = if req.session_id == 0 {
            let sid = self.sessions.next_session_id();
            self.track_session(sid, timeout, now);
            (sid, true)
        } else {
            let sid = req.session_id;
            let known =
                self.tree.sessions().contains_key(&sid) || self.sessions.timeout(sid).is_some();
            (sid, known && req.passwd.as_ref() == session::password(sid))
        };
        let pc = PendingConnect {
            conn,
            remote,
            legacy,
            tx,
            timeout,
            auth,
        };
        self.finish_connect(pc, sid, valid);
    }

    /// Reads answered; writes refused with NotReadOnly, as Apache's
    /// read-only server does.
    fn read_only_request(
        &mut self,
        conn: ConnId,
        xid: i32,
        opc: i32,
        req: Request,
        received: Instant,
        throttled: bool,
    ) {
        match req {
            Request::CloseSession => {
                if let Some(c) = self.conns.get(&conn) {
                    let s = c.session;
                    self.untrack_session(s);
                }
                self.reply(conn, xid, 0, &Response::Empty);
                self.drop_conn(conn);
            }
            // sync too: there is no leader to catch up with.
            r if r.is_write() || matches!(r, Request::Sync(_)) => {
                self.reply(
                    conn,
                    xid,
                    jute::consts::ErrorCode::NotReadOnly.code(),
                    &Response::Empty,
                );
                self.finish(conn, crate::core::Done::of(opc, xid, received, true));
            }
            r => self.answer_read(conn, xid, opc, &r, received, received, throttled),
        }
    }

    /// A committed reconfig: the new membership counts from now on (quorums,
    /// elections, what notifications and NEWLEADER carry).
    fn activate_config(&mut self, text: &str) {
        let Some(ens) = self.ens.as_mut() else { return };
        match zab::QuorumConfig::parse(text) {
            Ok(q) => {
                info!(
                    "activating configuration version 0x{:x}: {} members",
                    q.version,
                    q.members.len()
                );
                if !q.members.contains_key(&ens.setup.my_id) {
                    warn!("this server is not in the new configuration; it keeps serving until restarted");
                }
                if self.cfg.reconfig_enabled {
                    if let Some(src) = self.cfg.source.as_deref() {
                        if let Err(e) = super::write_dynamic_config(src, &q, ens.setup.my_id) {
                            warn!("cannot write the dynamic configuration file: {e}");
                        }
                    }
                }
                // Apache's processReconfig: a change of our own kind, or of
                // the leader's membership, means a new election.
                let me = ens.setup.my_id;
                let kind = |c: &zab::QuorumConfig, id: u64| c.members.get(&id).map(|m| m.kind);
                let mut major = kind(&ens.setup.quorum, me) != kind(&q, me);
                match &ens.role {
                    Role::Following(f) => major |= !q.is_voter(f.leader_id),
                    Role::Leading(_) => major |= !q.is_voter(me),
                    Role::Looking => {}
                }
                let mut s = (*ens.setup).clone();
                s.quorum = q;
                let s = std::sync::Arc::new(s);
                ens.setup = s.clone();
                let _ = ens.election.send(super::ElectionCmd::Config(s));
                if major {
                    self.become_looking("the new configuration changes roles");
                }
            }
            Err(e) => warn!("cannot activate the committed configuration: {e}"),
        }
    }
}
