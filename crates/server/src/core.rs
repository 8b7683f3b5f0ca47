//! The request pipeline. One task owns the tree, the session tracker and the
//! table of connections, and handles every message in arrival order: this
//! single order is what gives ZooKeeper's guarantees (linearizable writes,
//! FIFO per client, a watch event sent before any reply that reflects its
//! change).
//!
//! A write goes: prep (request -> txn) -> [storage/ZAB slot here] -> apply
//! -> watch notifications -> reply.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use jute::codec::Record;
use jute::consts::{op, perms, state, xid, ErrorCode};
use jute::data::Id;
use jute::proto::{ConnectRequest, ConnectResponse, ReplyHeader, WatcherEvent};
use jute::request::Request;
use jute::txn::{CreateSessionTxn, Txn, TxnBody, TxnHeader};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, trace, warn};

use tree::acl;
use tree::ops::{self, Caller, Response};
use tree::prep::{self, Ctx, Options, Pending};
use tree::session::{self, SessionTracker};
use tree::DataTree;

use crate::admission::Ticket;
use crate::config::Config;
use crate::conn::Outbox;
use crate::fourlw;
use crate::persist::{self, Event, Layout, Persister};
use crate::sasl;

pub type ConnId = u64;

/// Frames queued per connection before it counts as a stalled reader and
/// is dropped (the pipeline never waits on one client).
pub const OUTBOX_FRAMES: usize = 1 << 16;

/// Txns applied but not yet fsynced before the pipeline stops taking new
/// requests (backpressure while the disk catches up).
const MAX_UNSYNCED: usize = 50_000;

/// Messages handled per pipeline turn before quorum packets are flushed.
const BATCH: usize = 64;

/// A frame that may only go out once every txn up to `after` is durable.
struct Held {
    after: i64,
    conn: ConnId,
    tx: Outbox,
    frame: Bytes,
    /// The request this frame answers, timed when it goes out: as in
    /// Apache, a write's latency includes waiting for its fsync.
    done: Option<Done>,
    /// Its place in the pipeline (crate::admission), given back then.
    ticket: Option<Ticket>,
}

/// A request answered, for the latency figures (srvr, cons, mntr, metrics).
#[derive(Clone, Copy)]
pub(crate) struct Done {
    pub op: &'static str,
    pub xid: i32,
    pub received: Instant,
    pub write: bool,
    /// A read: when it reached the tree (read_final_proc_time_ms, timed
    /// with the clock read that times the request).
    pub read_from: Option<Instant>,
}

impl Done {
    pub(crate) fn of(opc: i32, xid: i32, received: Instant, write: bool) -> Done {
        Done {
            op: short_op(opc),
            xid,
            received,
            write,
            read_from: None,
        }
    }

    pub(crate) fn read_from(mut self, t: Instant) -> Done {
        self.read_from = Some(t);
        self
    }
}

/// A decoded request body, or why it could not be decoded.
#[derive(Debug)]
pub enum Body {
    Ok(Request),
    UnknownOp,
    Malformed(String),
}

/// Messages into the pipeline.
#[derive(Debug)]
pub enum Msg {
    Connect {
        conn: ConnId,
        remote: SocketAddr,
        req: ConnectRequest,
        legacy: bool,
        tx: Outbox,
        /// Identities the transport proved (a verified TLS client
        /// certificate: x509, maybe super), added after the ip one.
        auth: Vec<Id>,
    },
    Request {
        conn: ConnId,
        xid: i32,
        op: i32,
        body: Body,
        received: Instant,
        /// Its place in the pipeline, held until it is answered.
        ticket: Option<Ticket>,
        /// Waited past zookeeper.throttled_op_wait_time: answered
        /// THROTTLEDOP in its turn, not carried out.
        throttled: bool,
    },
    Closed {
        conn: ConnId,
    },
    Command {
        cmd: String,
        reply: oneshot::Sender<String>,
    },
    /// From the ensemble's tasks (election, quorum links, ticks).
    Quorum(crate::ensemble::QMsg),
    /// Runs a closure on the pipeline's state, in order with requests (the
    /// AdminServer and /metrics read the server this way).
    Inspect(Inspect),
}

/// A read (or reset) of the pipeline's state for the AdminServer.
pub struct Inspect(pub Box<dyn FnOnce(&mut Core) + Send + Sync>);

impl std::fmt::Debug for Inspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inspect")
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Latency {
    pub count: u64,
    pub total_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Latency {
    fn add(&mut self, ms: u64) {
        if self.count == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        self.count += 1;
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

/// Per-connection figures for `cons`/`stat`.
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub latency: Latency,
    pub established_ms: i64,
}

pub struct Conn {
    pub tx: Outbox,
    pub remote: SocketAddr,
    pub session: i64,
    pub timeout: i32,
    /// Shared: every request takes a copy for its prep or read.
    pub auth: Arc<Vec<Id>>,
    pub sasl: sasl::DigestMd5,
    pub stats: ConnStats,
}

impl Conn {
    /// Adds identities the connection does not hold yet.
    pub(crate) fn add_auth(&mut self, ids: impl IntoIterator<Item = Id>) {
        for id in ids {
            if !self.auth.contains(&id) {
                Arc::make_mut(&mut self.auth).push(id);
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    pub received: u64,
    pub sent: u64,
    pub latency: Latency,
}

pub struct Core {
    pub cfg: Arc<Config>,
    pub tree: DataTree,
    pub(crate) pending: Pending,
    /// The time prep gave the txn it just made: its header must carry the
    /// same (the stats prep predicted hold it).
    pub(crate) prep_time: Option<i64>,
    /// When prep finished the write being handed on, for
    /// proposal_process_time (taken by the proposal or the log append).
    pub(crate) prepped_at: Option<Instant>,
    /// Per-request and per-txn metric observations, recorded at the end
    /// of each turn (`metrics::Deferred`).
    pub(crate) deferred: crate::metrics::Deferred,
    pub(crate) opts: Options,
    pub sessions: SessionTracker,
    pub conns: HashMap<ConnId, Conn, ahash::RandomState>,
    by_session: HashMap<i64, ConnId, ahash::RandomState>,
    /// The last zxid handed to a txn.
    pub(crate) zxid: i64,
    /// The last zxid known to be on disk.
    pub(crate) durable: i64,
    /// Replies and notifications waiting for durability, in send order.
    held: VecDeque<Held>,
    pub(crate) persist: Persister,
    pub(crate) layout: Layout,
    /// For restarting the log thread after a disk failure.
    pub(crate) events_tx: mpsc::UnboundedSender<Event>,
    /// Set while the txn log cannot be written: writes are refused with
    /// NotReadOnly, reads go on, until the disk takes writes again.
    pub disk_failed: Option<String>,
    /// Txns since the last snapshot, and when the next one is due.
    since_snapshot: u64,
    snapshot_at: u64,
    pub(crate) start: Instant,
    /// When a wrong ensemble name was last logged (pipeline ms).
    ensemble_auth_logged: Option<i64>,
    pub stats: ServerStats,
    /// Set when this server is one of an ensemble.
    pub(crate) ens: Option<Box<crate::ensemble::State>>,
    /// Left a role: reload the tree once the log is durable.
    pub(crate) reload_pending: bool,
    /// With `reload_pending`: the logged txns the tree lacks, when the tree
    /// is the log's committed prefix (applied instead of re-reading the
    /// dataDir); None: re-read it.
    pub(crate) carry: Option<Vec<jute::txn::Txn>>,
    /// Connections accepted but not yet past the handshake (for `cons`).
    pub started_at: SystemTime,
}

pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn frame(hdr: ReplyHeader, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::with_capacity(128);
    b.put_i32(0);
    hdr.write(&mut b);
    body(&mut b);
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

impl Core {
    /// A pipeline over `tree` (recovered from disk), logging through `persist`.
    pub fn new(
        cfg: Arc<Config>,
        tree: DataTree,
        persist: Persister,
        layout: Layout,
        events_tx: mpsc::UnboundedSender<Event>,
    ) -> Core {
        let opts = Options {
            extended_types: cfg.extended_types,
            skip_acl: cfg.skip_acl,
            reconfig_enabled: cfg.reconfig_enabled,
            enforce_quota: cfg.enforce_quota,
        };
        // Session ids carry the server id in their top byte.
        let my_id = cfg.ensemble.as_ref().map_or(0, |e| e.my_id as i64);
        let first = session::initial_session_id(my_id, wall_ms());
        let mut sessions = SessionTracker::new(cfg.tick_time as i64, first);
        // Sessions of the previous run get a full timeout to come back.
        for (&sid, &timeout) in tree.sessions() {
            sessions.add(sid, timeout, 0);
        }
        let zxid = tree.last_zxid();
        let snapshot_at = next_snapshot_point(&cfg);
        let mut pending = Pending::default();
        if cfg.ensemble.is_some() {
            // A leader's proposals carry the digest their txn leaves.
            pending.track_digests();
        }
        Core {
            tree,
            pending,
            prep_time: None,
            prepped_at: None,
            deferred: Default::default(),
            opts,
            sessions,
            conns: HashMap::default(),
            by_session: HashMap::default(),
            zxid,
            durable: zxid,
            held: VecDeque::new(),
            persist,
            layout,
            events_tx,
            disk_failed: None,
            since_snapshot: 0,
            snapshot_at,
            start: Instant::now(),
            ensemble_auth_logged: None,
            stats: ServerStats::default(),
            started_at: SystemTime::now(),
            ens: None,
            reload_pending: false,
            carry: None,
            cfg,
        }
    }

    /// Milliseconds on the monotonic clock, for session expiry.
    fn now(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    /// Runs the pipeline until every sender is gone, or until it cannot go
    /// on (the dataDir cannot even be read back after a log failure).
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) -> anyhow::Result<()> {
        let tick = Duration::from_millis(self.cfg.tick_time as u64);
        let mut expiry = tokio::time::interval(tick);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut containers =
            tokio::time::interval(Duration::from_millis(self.cfg.container_check_interval_ms));
        containers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probe = tokio::time::interval(Duration::from_secs(1));
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let room = self.persist.backlog() < MAX_UNSYNCED;
            tokio::select! {
                m = rx.recv(), if room => match m {
                    Some(m) => {
                        self.cfg.metrics.prep_processor_queue_size.observe(rx.len() as u64);
                        self.handle(m);
                        // What else is queued, before the quorum links are
                        // flushed: one write to each peer per batch.
                        for _ in 0..BATCH {
                            if self.persist.backlog() >= MAX_UNSYNCED {
                                break;
                            }
                            match rx.try_recv() {
                                Ok(m) => self.handle(m),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return Ok(()),
                },
                e = events.recv() => match e {
                    Some(Event::Durable(z)) => self.on_durable(z),
                    Some(Event::Failed { last_durable, reason }) => {
                        self.on_log_failure(last_durable, reason)?;
                    }
                    // We hold a sender ourselves: cannot happen.
                    None => anyhow::bail!("txn log events closed"),
                },
                // Expiring sessions and removing containers are writes.
                _ = expiry.tick(), if self.disk_failed.is_none() => self.expire_sessions(),
                _ = containers.tick(), if self.disk_failed.is_none() => self.clean_containers(),
                _ = probe.tick(), if self.disk_failed.is_some() => self.try_resume_log(),
            }
            if let Some(e) = self.ens.as_mut() {
                e.round.end(&self.cfg.metrics, Instant::now);
            }
            self.deferred.flush(&self.cfg.metrics);
            self.persist.flush();
            self.flush_links();
        }
    }

    /// A session enters the tracker; traced under the SESSION bit as
    /// ZooTrace does ("Adding session").
    pub(crate) fn track_session(&mut self, sid: i64, timeout: i32, now: i64) {
        self.cfg.trace.session("Adding", sid);
        self.sessions.add(sid, timeout, now);
    }

    /// A session leaves the tracker (closed or expired; "Removing session").
    pub(crate) fn untrack_session(&mut self, sid: i64) {
        self.cfg.trace.session("Removing", sid);
        self.sessions.remove(sid);
    }

    /// outstanding_changes_queued/_removed: what prep recorded and forgot
    /// since the last call (before any reply that follows from it).
    pub(crate) fn count_pending(&mut self) {
        let (queued, removed) = self.pending.take_counts();
        let m = &self.cfg.metrics;
        if queued > 0 {
            m.outstanding_changes_queued.add(queued);
        }
        if removed > 0 {
            m.outstanding_changes_removed.add(removed);
        }
    }

    pub fn handle(&mut self, m: Msg) {
        match m {
            Msg::Connect {
                conn,
                remote,
                req,
                legacy,
                tx,
                auth,
            } => {
                if req.session_id != 0 {
                    self.cfg.metrics.connection_revalidate_count.inc();
                }
                if self.ens.is_some() {
                    self.ensemble_connect(conn, remote, req, legacy, tx, auth);
                    return;
                }
                self.connect(conn, remote, req, legacy, tx);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.add_auth(auth);
                }
            }
            Msg::Request {
                conn,
                xid,
                op,
                body,
                received,
                ticket,
                throttled,
            } => {
                let held = self.held.len();
                let ticket = self.request(conn, xid, op, body, received, throttled, ticket);
                self.keep_until_sent(conn, held, ticket);
            }
            Msg::Closed { conn } => self.drop_conn(conn),
            Msg::Quorum(m) => self.ensemble_msg(m),
            Msg::Command { cmd, reply } => {
                self.deferred.flush(&self.cfg.metrics);
                let _ = reply.send(fourlw::run(self, &cmd));
            }
            Msg::Inspect(Inspect(f)) => {
                self.deferred.flush(&self.cfg.metrics);
                f(self)
            }
        }
    }

    /// Queues a frame for a connection. While txns are waiting for their
    /// fsync, frames are held back in order, so no client sees state that
    /// is not yet durable (nor a reply before an earlier one).
    /// False if the connection is gone (the frame is dropped).
    fn send(&mut self, conn: ConnId, b: Bytes) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        c.stats.sent += 1;
        self.stats.sent += 1;
        self.cfg.metrics.response_bytes.add(b.len() as u64);
        // In an ensemble nothing uncommitted is ever applied: no holding.
        if self.held.is_empty() && (self.durable >= self.zxid || self.ens.is_some()) {
            let tx = c.tx.clone();
            self.deliver(conn, &tx, b);
        } else {
            self.held.push_back(Held {
                after: self.zxid,
                conn,
                tx: c.tx.clone(),
                frame: b,
                done: None,
                ticket: None,
            });
        }
        true
    }

    fn on_durable(&mut self, zxid: i64) {
        self.durable = self.durable.max(zxid);
        if self.ens.is_some() {
            self.leader_durable(zxid);
            self.follower_durable(zxid);
            self.reload_if_durable();
            return;
        }
        while self.held.front().is_some_and(|h| h.after <= self.durable) {
            let h = self.held.pop_front().expect("checked");
            self.deliver(h.conn, &h.tx, h.frame);
            if let Some(d) = h.done {
                self.finish(h.conn, d);
            }
        }
    }

    /// The txn log could not be written. Frames held for txns that may not
    /// be on disk cannot be sent: their connections are closed (the clients
    /// see a connection loss, whose outcome is unknown, as it is). The tree
    /// is reloaded from disk so that no one reads what is not durable; then
    /// writes are refused and reads served until the disk recovers.
    fn on_log_failure(&mut self, last_durable: i64, reason: String) -> anyhow::Result<()> {
        self.on_durable(last_durable);
        self.cfg.metrics.unrecoverable_error_count.inc();
        error!(
            "cannot write the txn log ({reason}): refusing writes, serving reads, retrying every second"
        );
        let doomed: std::collections::BTreeSet<ConnId> =
            self.held.drain(..).map(|h| h.conn).collect();
        for conn in doomed {
            self.drop_conn(conn);
        }
        let persist::Loaded { mut tree, tail } = persist::load(&self.cfg, &self.layout)
            .map_err(|e| anyhow::anyhow!("after a log failure, cannot reload the dataDir: {e}"))?;
        if let Some(e) = self.ens.as_mut() {
            e.history.reset(tail);
        }
        tree.adopt_watches(&mut self.tree);
        self.tree = tree;
        self.zxid = self.tree.last_zxid();
        self.durable = self.zxid;
        self.persist.abandon_backlog();
        self.pending.clear();
        self.disk_failed = Some(reason);
        Ok(())
    }

    /// While writes are refused: once the log directory takes writes again,
    /// a new log thread starts (a new log file, as after a restart).
    fn try_resume_log(&mut self) {
        if !persist::probe(&self.layout) {
            return;
        }
        match persist::start(&self.cfg, &self.layout, self.zxid, self.events_tx.clone()) {
            Ok((p, _thread)) => {
                self.persist = p;
                self.disk_failed = None;
                info!("the txn log can be written again: accepting writes");
            }
            Err(e) => warn!("disk still refuses the txn log: {e}"),
        }
    }

    /// Hands a frame to the connection's writer; a connection whose outbox
    /// is full (a client not reading) is dropped.
    fn deliver(&mut self, conn: ConnId, tx: &Outbox, b: Bytes) {
        match tx.send(b) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let Some(c) = self.conns.get(&conn) {
                    warn!(
                        "closing connection from {} (session 0x{:x}): client is not reading its replies",
                        c.remote, c.session
                    );
                }
                self.drop_conn(conn);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.drop_conn(conn),
        }
    }

    /// Forgets a connection: its watches go, and dropping its sender closes
    /// the socket once queued frames are written. The session lives on
    /// until it expires or is closed.
    pub(crate) fn drop_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            let started = Instant::now();
            if self.tree.remove_watcher(conn) > 0 {
                // WatcherCleaner's figures: one dead watcher, cleared now.
                let m = &self.cfg.metrics;
                m.dead_watchers_queued.inc();
                m.dead_watchers_cleaner_latency.since(started);
                m.dead_watchers_cleared.inc();
            }
            if self.by_session.get(&c.session) == Some(&conn) {
                self.by_session.remove(&c.session);
            }
            debug!("connection {conn} from {} closed", c.remote);
        }
    }

    fn connect(
        &mut self,
        conn: ConnId,
        remote: SocketAddr,
        req: ConnectRequest,
        legacy: bool,
        tx: Outbox,
    ) {
        self.cfg.metrics.connection_request_count.inc();
        let last = self.tree.last_zxid();
        if req.last_zxid_seen > last {
            // The client has seen a newer state than ours (another server's).
            info!(
                "refusing session request for client {remote} as it has seen zxid 0x{:x}, our last zxid is 0x{:x}; client must try another server",
                req.last_zxid_seen, last
            );
            return;
        }
        let timeout = req
            .time_out
            .clamp(self.cfg.min_session_timeout, self.cfg.max_session_timeout);
        let now = self.now();
        if req.session_id == 0 && self.disk_failed.is_some() {
            // A new session is a txn; none can be written now.
            warn!("refusing a new session from {remote}: the txn log cannot be written");
            return;
        }
        let (session, valid) = if req.session_id == 0 {
            let sid = self.sessions.next_session_id();
            self.write_txn(
                sid,
                0,
                TxnBody::CreateSession(CreateSessionTxn { time_out: timeout }),
            );
            self.track_session(sid, timeout, now);
            info!("established session 0x{sid:x} with negotiated timeout {timeout} for client {remote}");
            (sid, true)
        } else {
            let sid = req.session_id;
            let ok = req.passwd.as_ref() == session::password(sid)
                && self.sessions.touch(sid, timeout, now);
            if ok {
                if let Some(old) = self.by_session.get(&sid).copied() {
                    // The client moved; its old connection is stale.
                    self.drop_conn(old);
                }
                info!("re-established session 0x{sid:x} with negotiated timeout {timeout} for client {remote}");
            } else {
                info!("invalid session 0x{sid:x} for client {remote}, probably expired");
            }
            (sid, ok)
        };
        self.answer_connect(conn, remote, legacy, tx, session, timeout, valid);
    }

    /// Answers a handshake; a valid session gets its connection registered.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer_connect(
        &mut self,
        conn: ConnId,
        remote: SocketAddr,
        legacy: bool,
        tx: Outbox,
        session: i64,
        timeout: i32,
        valid: bool,
    ) {
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: if valid { timeout } else { 0 },
            session_id: if valid { session } else { 0 },
            passwd: if valid {
                Bytes::copy_from_slice(&session::password(session))
            } else {
                Bytes::from_static(&[0u8; 16])
            },
            // A minority member in read-only mode says so.
            read_only: self.ens.as_ref().is_some_and(|e| e.read_only()),
        };
        let mut b = BytesMut::with_capacity(64);
        b.put_i32(0);
        if legacy {
            resp.write_legacy(&mut b);
        } else {
            resp.write(&mut b);
        }
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        if !valid {
            // Answer, then close: dropping the sender after this frame.
            let _ = tx.try_send(b.freeze());
            return;
        }
        let ip = remote.ip().to_string();
        self.conns.insert(
            conn,
            Conn {
                tx,
                remote,
                session,
                timeout,
                auth: Arc::new(vec![Id::new("ip", &ip)]),
                sasl: sasl::DigestMd5::Start,
                stats: ConnStats {
                    received: 1,
                    sent: 0,
                    last_op: "SESS",
                    last_cxid: 0,
                    last_zxid: self.tree.last_zxid(),
                    last_response_ms: wall_ms(),
                    last_latency_ms: 0,
                    latency: Latency::default(),
                    established_ms: wall_ms(),
                },
            },
        );
        self.by_session.insert(session, conn);
        self.stats.received += 1;
        self.send(conn, b.freeze());
    }

    /// Assigns a zxid, applies the txn and delivers the watches it fires.
    fn write_txn(&mut self, session: i64, cxid: i32, body: TxnBody) -> tree::ApplyResult {
        if self.ens.is_some() {
            // Leader only (expiry, containers): applied once committed.
            self.propose(session, cxid, body);
            return tree::ApplyResult::default();
        }
        debug_assert!(
            self.disk_failed.is_none(),
            "no txn may be made while the log cannot be written"
        );
        self.zxid += 1;
        let hdr = TxnHeader {
            client_id: session,
            cxid,
            zxid: self.zxid,
            time: self.prep_time.take().unwrap_or_else(wall_ms),
            op: body.op(),
        };
        let rc = self.tree.apply(&hdr, &body);
        self.txn_applied(&hdr, &body);
        self.pending.applied(hdr.zxid);
        self.count_pending();
        self.persist.append(Txn {
            header: hdr,
            body,
            digest: Some(jute::txn::TxnDigest {
                version: tree::digest::DIGEST_VERSION,
                tree_digest: self.tree.digest(),
            }),
        });
        self.handed_on();
        self.count_for_snapshot();
        self.deliver_watches();
        rc
    }

    /// Every snapCount/2..snapCount txns, a snapshot in the background.
    pub(crate) fn count_for_snapshot(&mut self) {
        self.since_snapshot += 1;
        if self.since_snapshot >= self.snapshot_at {
            self.since_snapshot = 0;
            self.snapshot_at = next_snapshot_point(&self.cfg);
            // The copy costs a pause proportional to the tree; a persistent
            // map would make it O(1) (later, with the benchmark's numbers).
            self.persist
                .snapshot(self.tree.snapshot_copy(), self.tree.last_zxid());
        }
    }

    /// `started`: when the pipeline took the request (for prep_process_time;
    /// a clock read it already made).
    fn prepare_and_apply(
        &mut self,
        session: i64,
        cxid: i32,
        auth: &[Id],
        req: &Request,
        started: Instant,
    ) -> tree::ApplyResult {
        let ctx = Ctx {
            session_id: session,
            auth,
            zxid: self.zxid + 1,
            time: wall_ms(),
            opts: &self.opts,
        };
        let time = ctx.time;
        let body = prep::prepare(&self.tree, &mut self.pending, ctx, req);
        self.prep_time = Some(time);
        let prepped = self.prepared(req, started);
        let rc = self.write_txn(session, cxid, body);
        self.deferred
            .since(|m| &m.write_final_proc_time_ms, prepped);
        rc
    }

    /// proposal_process_time: a prepared write is now logged (a leader's
    /// `propose` records its own).
    fn handed_on(&mut self) {
        if let Some(t) = self.prepped_at.take() {
            self.deferred.since(|m| &m.proposal_process_time, t);
        }
    }

    /// prep_process_time (and close_session_prep_time) of a write whose
    /// txn took from `started` to make. Returns now.
    pub(crate) fn prepared(&mut self, req: &Request, started: Instant) -> Instant {
        let now = self.deferred.since(|m| &m.prep_process_time, started);
        self.prepped_at = Some(now);
        if matches!(req, Request::CloseSession) {
            self.deferred.observe(
                |m| &m.close_session_prep_time,
                now.saturating_duration_since(started).as_millis() as u64,
            );
        }
        now
    }

    pub(crate) fn deliver_watches(&mut self) {
        for (event_type, n) in self.tree.take_triggers() {
            self.cfg.metrics.watch_triggered(event_type, n);
        }
        for f in self.tree.take_fired() {
            let ev = WatcherEvent {
                event_type: f.event_type,
                state: state::SYNC_CONNECTED,
                path: f.path,
            };
            // Every watcher gets the same bytes: one frame, shared.
            let b = frame(
                ReplyHeader {
                    xid: xid::NOTIFICATION,
                    zxid: -1,
                    err: 0,
                },
                |w| ev.write(w),
            );
            let mut sent = 0;
            for w in f.watchers {
                let Some(c) = self.conns.get(&w) else {
                    continue;
                };
                // Events only reach clients allowed to read the node.
                if !self.opts.skip_acl && !acl::check(&f.acl, perms::READ, &c.auth) {
                    continue;
                }
                if self.cfg.trace.on(crate::trace::EVENT_DELIVERY) {
                    trace!(
                        "deliver event type:{} path:{} to session 0x{:x}",
                        ev.event_type,
                        ev.path,
                        c.session
                    );
                }
                self.send(w, b.clone());
                sent += 1;
            }
            self.cfg.metrics.watch_bytes.add(b.len() as u64 * sent);
        }
    }

    pub(crate) fn reply(&mut self, conn: ConnId, xid: i32, err: i32, body: &Response) {
        let zxid = self.tree.last_zxid();
        let b = frame(ReplyHeader { xid, zxid, err }, |w| {
            if err == 0 {
                body.write(w)
            }
        });
        let n = b.len();
        match self.send(conn, b) {
            true => self.cfg.metrics.client_response_size(n),
            false => self.cfg.metrics.stale_replies.inc(),
        }
    }

    /// Hands back `ticket` unless the request keeps it (queued in an
    /// ensemble member's session queue).
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        conn: ConnId,
        xid: i32,
        opc: i32,
        body: Body,
        received: Instant,
        throttled: bool,
        ticket: Option<Ticket>,
    ) -> Option<Ticket> {
        let m = &self.cfg.metrics;
        let taken = Instant::now();
        m.prep_processor_request_queued.inc();
        self.deferred.observe(
            |m| &m.prep_processor_queue_time_ms,
            taken.saturating_duration_since(received).as_millis() as u64,
        );
        let Some(c) = self.conns.get_mut(&conn) else {
            // Read before its connection closed: nobody is left to answer.
            m.stale_requests.inc();
            m.stale_requests_dropped.inc();
            return ticket;
        };
        let session = c.session;
        let timeout = c.timeout;
        c.stats.received += 1;
        self.stats.received += 1;
        let now = self.now();
        self.sessions.touch(session, timeout, now);
        if let Some(e) = self.ens.as_mut() {
            e.touched.insert(session, timeout);
        }

        let req = match body {
            Body::Ok(r) => r,
            Body::UnknownOp => {
                warn!("closing connection {conn}: unknown request type {opc}");
                self.reply(conn, xid, ErrorCode::Unimplemented.code(), &Response::Empty);
                self.drop_conn(conn);
                return ticket;
            }
            Body::Malformed(e) => {
                warn!(
                    "malformed {} request from session 0x{session:x}: {e}",
                    op::name(opc)
                );
                self.reply(
                    conn,
                    xid,
                    ErrorCode::MarshallingError.code(),
                    &Response::Empty,
                );
                return ticket;
            }
        };
        let kind = match req {
            Request::Ping => crate::trace::CLIENT_PING,
            _ => crate::trace::CLIENT_REQUEST,
        };
        if self.cfg.trace.on(kind) {
            trace!(
                "request sessionid:0x{session:x} type:{} cxid:0x{xid:x} reqpath:{}",
                op::name(opc),
                req.path().unwrap_or("n/a")
            );
        }
        if self.ens.is_some() && !matches!(req, Request::Ping | Request::Auth(_) | Request::Sasl(_))
        {
            return self.ensemble_request(conn, xid, opc, req, received, taken, throttled, ticket);
        }
        let auth = self.conns[&conn].auth.clone();
        let (err, resp) = match &req {
            Request::Ping => {
                let zxid = self.tree.last_zxid();
                let b = frame(
                    ReplyHeader {
                        xid: xid::PING,
                        zxid,
                        err: 0,
                    },
                    |_| {},
                );
                let held = self.held.len();
                self.send(conn, b);
                // ZooKeeper counts header-less requests (pings) as reads.
                let done = Done {
                    op: "PING",
                    xid,
                    received,
                    write: false,
                    read_from: None,
                };
                self.finish_when_sent(conn, held, done);
                return ticket;
            }
            Request::Auth(a) => {
                self.auth(conn, xid, &a.scheme, &a.auth);
                return ticket;
            }
            Request::Sasl(t) => {
                self.sasl(conn, xid, &t.token);
                return ticket;
            }
            Request::CloseSession if self.disk_failed.is_some() => {
                // Closing is a txn too: the session stays until the disk
                // recovers and it expires; this connection goes now.
                self.reply(conn, xid, ErrorCode::NotReadOnly.code(), &Response::Empty);
                self.drop_conn(conn);
                return ticket;
            }
            Request::CloseSession => {
                let rc = self.prepare_and_apply(session, xid, &auth, &req, taken);
                self.untrack_session(session);
                info!("closed session 0x{session:x}");
                self.reply(conn, xid, rc.err, &Response::Empty);
                self.drop_conn(conn);
                return ticket;
            }
            // Not carried out (ZooKeeper's FinalRequestProcessor), answered
            // in its turn.
            _ if throttled => (ErrorCode::ThrottledOp.code(), Response::Empty),
            r if r.is_write() && self.disk_failed.is_some() => {
                // As a read-only ZooKeeper answers writes.
                (ErrorCode::NotReadOnly.code(), Response::Empty)
            }
            r if r.is_write() => {
                let rc = self.prepare_and_apply(session, xid, &auth, r, taken);
                ops::write_reply(&rc)
            }
            r => self.read_result(conn, session, &auth, r),
        };
        let held = self.held.len();
        self.reply(conn, xid, err, &resp);
        let done = Done::of(opc, xid, received, req.is_write());
        let done = match req.is_write() {
            true => done,
            false => done.read_from(taken),
        };
        self.finish_when_sent(conn, held, done);
        ticket
    }

    /// Gives a request's place in the pipeline back when its reply leaves:
    /// with the frame it queued behind an fsync, or now.
    fn keep_until_sent(&mut self, conn: ConnId, held: usize, ticket: Option<Ticket>) {
        if ticket.is_none() {
            return;
        }
        if self.held.len() > held {
            if let Some(h) = self.held.back_mut().filter(|h| h.conn == conn) {
                h.ticket = ticket;
            }
        }
    }

    /// Times a request once its reply leaves: now, or when the reply,
    /// held behind an fsync (`held` was the queue's length before it),
    /// is released.
    fn finish_when_sent(&mut self, conn: ConnId, held: usize, mut done: Done) {
        let queued = self.held.len() > held && self.held.back().is_some_and(|h| h.conn == conn);
        if !queued {
            return self.finish(conn, done);
        }
        // A read's own work ends here, not when the fsync it waits behind
        // ends.
        if let Some(t) = done.read_from.take() {
            self.deferred.since(|m| &m.read_final_proc_time_ms, t);
        }
        if let Some(h) = self.held.back_mut() {
            h.done = Some(done);
        }
    }

    /// A read against the tree (ACL check, watch registration) as
    /// (error code, response); events setWatches finds go out first.
    pub(crate) fn read_result(
        &mut self,
        conn: ConnId,
        session: i64,
        auth: &[Id],
        req: &Request,
    ) -> (i32, Response) {
        let caller = Caller {
            session_id: session,
            watcher: conn,
            auth,
            skip_acl: self.opts.skip_acl,
        };
        let res = ops::read(&mut self.tree, &caller, req);
        // setWatches may have found events the client missed.
        self.deliver_watches();
        match res {
            Ok(resp) => {
                self.namespace_read(req, &resp);
                (0, resp)
            }
            Err(e) => (e.code(), Response::Empty),
        }
    }

    /// read_per_namespace, for the reads ZooKeeper's DataTree counts
    /// (getData, exists, getChildren): data bytes, or the children's names.
    fn namespace_read(&self, req: &Request, resp: &Response) {
        let (path, bytes) = match (req, resp) {
            (Request::GetData(r), Response::GetData(d, _)) => {
                (&r.path, d.as_ref().map_or(0, |d| d.len()))
            }
            (Request::Exists(r), Response::Stat(_)) => (&r.path, 0),
            (Request::GetChildren(r), Response::Children(c))
            | (Request::GetChildren2(r), Response::Children2(c, _)) => {
                (&r.path, c.iter().map(String::len).sum())
            }
            _ => return,
        };
        self.cfg.metrics.namespace_read(path, bytes);
    }

    /// write_per_namespace and propagation_latency for a txn applied here.
    /// Standalone applies a txn as it makes it (age 0, no clock to read);
    /// an ensemble member once committed.
    pub(crate) fn txn_applied(&mut self, hdr: &TxnHeader, body: &TxnBody) {
        match self.ens {
            Some(_) => self.deferred.txn_age(|m| &m.propagation_latency, hdr.time),
            None => self.deferred.observe(|m| &m.propagation_latency, 0),
        }
        self.namespace_write(body);
    }

    fn namespace_write(&self, body: &TxnBody) {
        let m = &self.cfg.metrics;
        match body {
            TxnBody::Create(t) | TxnBody::Create2(t) => {
                m.namespace_write(&t.path, t.data.as_ref().map_or(0, |d| d.len()))
            }
            TxnBody::CreateContainer(t) => {
                m.namespace_write(&t.path, t.data.as_ref().map_or(0, |d| d.len()))
            }
            TxnBody::CreateTtl(t) => {
                m.namespace_write(&t.path, t.data.as_ref().map_or(0, |d| d.len()))
            }
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => m.namespace_write(&t.path, 0),
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
                m.namespace_write(&t.path, t.data.as_ref().map_or(0, |d| d.len()))
            }
            TxnBody::Multi(ops) => ops.iter().for_each(|b| self.namespace_write(b)),
            _ => {}
        }
    }

    pub(crate) fn finish(&mut self, conn: ConnId, done: Done) {
        let Done {
            op: last_op,
            xid: cxid,
            received,
            write,
            read_from,
        } = done;
        let now = Instant::now();
        let ms = now.saturating_duration_since(received).as_millis() as u64;
        if let Some(t) = read_from {
            self.deferred.observe(
                |m| &m.read_final_proc_time_ms,
                now.saturating_duration_since(t).as_millis() as u64,
            );
        }
        self.stats.latency.add(ms);
        match write {
            true => self.deferred.observe(|m| &m.updatelatency, ms),
            false => self.deferred.observe(|m| &m.readlatency, ms),
        }
        let zxid = self.tree.last_zxid();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.last_op = last_op;
            c.stats.last_cxid = cxid;
            c.stats.last_zxid = zxid;
            c.stats.last_response_ms = wall_ms();
            c.stats.last_latency_ms = ms;
            c.stats.latency.add(ms);
        }
    }

    fn auth(&mut self, conn: ConnId, xid: i32, scheme: &str, data: &[u8]) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        // ZooKeeper's providers: ip (any packet adds the client's address)
        // and digest (user:password, maybe the super user).
        let ids = match scheme {
            "ip" => vec![Id::new("ip", &c.remote.ip().to_string())],
            "digest" => {
                let digest = acl::digest_id(&String::from_utf8_lossy(data));
                let mut ids = Vec::with_capacity(2);
                if self.cfg.super_digest.as_deref() == Some(digest.as_str()) {
                    ids.push(Id::new("super", ""));
                }
                ids.push(Id::new("digest", &digest));
                ids
            }
            "ensemble" if self.cfg.ensemble_auth.is_some() => {
                if !self.ensemble_auth(conn, data) {
                    return;
                }
                Vec::new()
            }
            _ => {
                warn!("closing connection {conn}: no authentication provider for scheme {scheme}");
                self.cfg.metrics.auth_failed_count.inc();
                let err = ErrorCode::AuthFailed.code();
                let b = frame(ReplyHeader { xid, zxid: 0, err }, |_| {});
                self.send(conn, b);
                self.drop_conn(conn);
                return;
            }
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.add_auth(ids);
        }
        // ZooKeeper answers auth with zxid 0.
        let b = frame(
            ReplyHeader {
                xid,
                zxid: 0,
                err: 0,
            },
            |_| {},
        );
        self.send(conn, b);
    }

    /// EnsembleAuthenticationProvider: not an identity but a check that the
    /// client meant this ensemble. No name, or no names configured, passes;
    /// a wrong name closes the connection without a reply, so the client
    /// tries another server instead of failing its session. False when
    /// closed.
    fn ensemble_auth(&mut self, conn: ConnId, data: &[u8]) -> bool {
        let m = &self.cfg.metrics;
        let names = match self.cfg.ensemble_auth.as_ref() {
            Some(Some(names)) if !data.is_empty() => names,
            _ => {
                m.ensemble_auth_skip.inc();
                return true;
            }
        };
        let name = String::from_utf8_lossy(data);
        if names.contains(name.as_ref()) {
            m.ensemble_auth_success.inc();
            return true;
        }
        m.ensemble_auth_fail.inc();
        // At most one line a second, as ZooKeeper: a misdirected client
        // fleet would otherwise flood the log.
        let now = self.now();
        if self.ensemble_auth_logged.is_none_or(|t| now - t >= 1000) {
            self.ensemble_auth_logged = Some(now);
            let remote = self.conns.get(&conn).map(|c| c.remote.ip());
            let shown: String = name.chars().filter(|c| !c.is_control()).collect();
            warn!("Unexpected ensemble name: ensemble name: {shown} client ip: {remote:?}");
        }
        self.drop_conn(conn);
        false
    }

    /// One step of a SASL DIGEST-MD5 exchange; failure closes the connection.
    fn sasl(&mut self, conn: ConnId, xid: i32, token: &[u8]) {
        let Some(users) = self.cfg.sasl_users.as_ref() else {
            warn!("closing connection {conn}: SASL requested but no JAAS Server section is configured");
            self.reply(conn, xid, ErrorCode::AuthFailed.code(), &Response::Empty);
            self.drop_conn(conn);
            return;
        };
        let nonce = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>())
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let out = match c.sasl.step(users, token, &nonce) {
            sasl::Step::Continue(t) => t,
            sasl::Step::Success { user, token } => {
                info!(
                    "session 0x{:x}: adding SASL authorization for authorizationID: {user}",
                    c.session
                );
                if self.cfg.super_user.as_deref() == Some(user.as_str()) {
                    Arc::make_mut(&mut c.auth).push(Id::new("super", ""));
                }
                Arc::make_mut(&mut c.auth).push(Id::new("sasl", &user));
                token
            }
            sasl::Step::Failure(why) => {
                warn!("client {} failed to SASL authenticate: {why}", c.remote);
                self.cfg.metrics.auth_failed_count.inc();
                self.reply(conn, xid, ErrorCode::AuthFailed.code(), &Response::Empty);
                self.drop_conn(conn);
                return;
            }
        };
        let b = frame(
            ReplyHeader {
                xid,
                zxid: 0,
                err: 0,
            },
            |w| jute::proto::SaslToken { token: out.into() }.write(w),
        );
        self.send(conn, b);
    }

    fn expire_sessions(&mut self) {
        if !self.may_write() {
            return;
        }
        let now = self.now();
        for sid in self.sessions.expire(now) {
            let timeout = self.sessions.timeout(sid).unwrap_or(0);
            info!("expiring session 0x{sid:x}, timeout of {timeout}ms exceeded");
            self.prepare_and_apply(sid, 0, &[], &Request::CloseSession, Instant::now());
            self.untrack_session(sid);
            if let Some(conn) = self.by_session.remove(&sid) {
                self.drop_conn(conn);
            }
        }
    }

    /// ZooKeeper's ContainerManager: removes empty containers and expired
    /// TTL nodes, at most maxPerMinute per minute.
    /// Standalone, or the leader of a serving ensemble: the one who makes
    /// txns on its own (expiry, container cleanup).
    fn may_write(&self) -> bool {
        match self.ens.as_ref() {
            None => true,
            Some(e) => matches!(e.role, crate::ensemble::Role::Leading(_)) && e.serving(),
        }
    }

    fn clean_containers(&mut self) {
        if !self.may_write() {
            return;
        }
        let interval = self.cfg.container_check_interval_ms;
        let budget = (self.cfg.container_max_per_minute * interval / 60_000).max(1) as usize;
        let candidates = self
            .tree
            .expiry_candidates(wall_ms(), self.cfg.container_max_never_used_ms);
        for p in candidates.into_iter().take(budget) {
            let ctx = Ctx {
                session_id: 0,
                auth: &[],
                zxid: self.zxid + 1,
                time: wall_ms(),
                opts: &self.opts,
            };
            let body = prep::prepare_delete_container(&self.tree, &mut self.pending, ctx, &p);
            if let TxnBody::DeleteContainer(_) = body {
                debug!("removing container or expired TTL node {p}");
                self.write_txn(0, 0, body);
            }
        }
    }

    /// The AdminServer's `restore` (ZooKeeper 3.9): the tree becomes
    /// `restored`. It is made durable first as a snapshot one zxid past
    /// every txn handed out so far, so recovery loads it and replays only
    /// what comes after; the old log's txns are superseded. Connections of
    /// sessions the snapshot does not know are closed, its own sessions get
    /// a full timeout, and watches stay registered. Blocks the pipeline
    /// while the snapshot is written, as ZooKeeper holds requests during a
    /// restore. Returns the zxid the server goes on from.
    pub fn restore(&mut self, mut restored: DataTree) -> anyhow::Result<i64> {
        let zxid = self.zxid + 1;
        restored.set_last_zxid(zxid);
        let started = Instant::now();
        storage::snapshot::write_snapshot(
            &self.layout.snap_dir,
            &restored,
            zxid,
            persist::compression(&self.cfg),
        )?;
        self.cfg.metrics.snapshot_written(zxid);
        info!(
            "restored {} znodes and {} sessions from a snapshot, going on from zxid 0x{zxid:x} ({:?})",
            restored.node_count(),
            restored.sessions().len(),
            started.elapsed()
        );
        let gone: Vec<i64> = self
            .tree
            .sessions()
            .keys()
            .filter(|s| !restored.sessions().contains_key(s))
            .copied()
            .collect();
        restored.adopt_watches(&mut self.tree);
        self.tree = restored;
        self.pending.clear();
        self.zxid = zxid;
        self.since_snapshot = 0;
        for sid in gone {
            self.untrack_session(sid);
            if let Some(conn) = self.by_session.remove(&sid) {
                self.drop_conn(conn);
            }
        }
        let now = self.now();
        let known: Vec<(i64, i32)> = self.tree.sessions().iter().map(|(s, t)| (*s, *t)).collect();
        for (sid, timeout) in known {
            if self.sessions.timeout(sid).is_none() {
                self.track_session(sid, timeout, now);
            }
        }
        // The snapshot stands for every txn up to here: what waited for
        // the log may go.
        self.on_durable(zxid);
        Ok(zxid)
    }

    /// Replies and notifications waiting for their txns to be durable.
    pub fn outstanding(&self) -> usize {
        self.held.len()
    }

    /// Answering clients: standalone, or a leader or learner in sync.
    pub fn serving(&self) -> bool {
        self.ens
            .as_ref()
            .is_none_or(|e| e.serving() || e.read_only())
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid()
    }

    pub fn session_conn(&self, sid: i64) -> Option<ConnId> {
        self.by_session.get(&sid).copied()
    }

    pub fn reset_stats(&mut self) {
        self.stats = ServerStats::default();
    }

    pub fn reset_conn_stats(&mut self) {
        for c in self.conns.values_mut() {
            c.stats.received = 0;
            c.stats.sent = 0;
            c.stats.latency = Latency::default();
            c.stats.last_latency_ms = 0;
        }
    }
}

/// ZooKeeper snapshots after a random number of txns in
/// [snapCount/2, snapCount), so servers of an ensemble do not all snapshot
/// at once.
fn next_snapshot_point(cfg: &Config) -> u64 {
    let snap_count = cfg
        .raw
        .get("snapCount")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| {
            cfg.prop("zookeeper.snapCount")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(100_000)
        .max(2);
    snap_count / 2 + rand::random_range(0..snap_count / 2)
}

/// The four-letter abbreviations `cons` shows as lop.
pub(crate) fn short_op(opc: i32) -> &'static str {
    match opc {
        op::CREATE | op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => "CREA",
        op::DELETE => "DELE",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_DATA => "SETD",
        op::GET_ACL => "GACL",
        op::SET_ACL => "SACL",
        op::GET_CHILDREN => "GETC",
        op::GET_CHILDREN2 => "GETC",
        op::SYNC => "SYNC",
        op::CHECK => "CHEC",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::RECONFIG => "RECO",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::SET_WATCHES | op::SET_WATCHES2 => "SETW",
        op::GET_EPHEMERALS => "GETE",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        op::ADD_WATCH => "ADDW",
        op::WHO_AM_I => "HOMI",
        _ => "NA",
    }
}
