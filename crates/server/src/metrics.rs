//! Server metrics under ZooKeeper's names: counters and summaries recorded
//! where things happen (pipeline, connections, txn-log thread), gauges read
//! from the pipeline's state when asked. One source feeds `mntr` (4lw and
//! admin `monitor`) and Prometheus' `/metrics`.
//!
//! The Prometheus text is written here rather than with prometheus-client:
//! that crate emits OpenMetrics (counters renamed `*_total`, no summaries),
//! while dashboards built for ZooKeeper expect the names and the summary
//! shape of Apache's PrometheusMetricsProvider (simpleclient, text 0.0.4).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

/// A monotonically growing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// ZooKeeper's two summary kinds: BASIC ones export the median only (and
/// avg/min/max/cnt/sum in mntr); ADVANCED ones more quantiles (and
/// p50/p95/p99/p999 in mntr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Basic,
    Advanced,
}

/// Samples kept for quantiles: the most recent ones (Apache's summaries
/// also describe a recent window, not the whole run).
const WINDOW: usize = 4096;

/// Samples kept per key of a summary set: keys (top-level namespaces)
/// are not bounded in number, so each keeps few.
const SET_WINDOW: usize = 64;

/// Keys a summary set takes before it ignores new ones (a tree with very
/// many top-level nodes would otherwise grow it without bound).
const SET_KEYS: usize = 10_000;

#[derive(Debug, Default)]
struct SummaryState {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    recent: VecDeque<u64>,
}

impl SummaryState {
    fn observe(&mut self, v: u64, window: usize) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        if self.recent.len() == window {
            self.recent.pop_front();
        }
        self.recent.push_back(v);
    }

    fn view(&self) -> SummaryView {
        let mut sorted: Vec<u64> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        SummaryView {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            sorted,
        }
    }
}

/// A distribution of observed values (milliseconds, or counts).
#[derive(Debug)]
pub struct Summary {
    pub name: &'static str,
    pub detail: Detail,
    state: Mutex<SummaryState>,
}

impl Summary {
    const fn new(name: &'static str, detail: Detail) -> Summary {
        Summary {
            name,
            detail,
            state: Mutex::new(SummaryState {
                count: 0,
                sum: 0,
                min: 0,
                max: 0,
                recent: VecDeque::new(),
            }),
        }
    }

    pub fn observe(&self, v: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.observe(v, WINDOW);
    }

    /// Observes several values under one lock.
    pub fn observe_all(&self, vs: impl IntoIterator<Item = u64>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for v in vs {
            s.observe(v, WINDOW);
        }
    }

    /// Observes a duration since `t`, in milliseconds; returns now, for
    /// the next stage's start.
    pub fn since(&self, t: std::time::Instant) -> std::time::Instant {
        let now = std::time::Instant::now();
        self.observe(now.saturating_duration_since(t).as_millis() as u64);
        now
    }

    fn read(&self) -> SummaryView {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).view()
    }
}

/// The age of a txn made at `txn_time` (wall ms), None if negative (clock
/// skew between servers; not recorded, as Apache's logLatency).
fn age_ms(txn_time: i64) -> Option<u64> {
    u64::try_from(crate::core::wall_ms() - txn_time).ok()
}

/// Which summary of `Metrics` an observation is for.
pub type Pick = fn(&Metrics) -> &Summary;

/// Observations the pipeline makes per request and per txn, held until
/// the end of its turn and then recorded under one lock per summary: a
/// lock per observation was ~4% of an ensemble's core, mostly the locked
/// instructions. Readers of the metrics (4lw, admin, /metrics) run on the
/// pipeline too, and it flushes before each, so none sees a turn's
/// observations missing.
#[derive(Debug, Default)]
pub struct Deferred {
    vals: Vec<(Pick, u64)>,
    /// A flush's values per summary, by its place in `Metrics::summaries`
    /// (kept, so that a flush allocates nothing), and which are filled.
    buckets: Vec<Vec<u64>>,
    filled: Vec<usize>,
}

impl Deferred {
    pub fn observe(&mut self, pick: Pick, v: u64) {
        self.vals.push((pick, v));
    }

    /// Observes the milliseconds since `t`; returns now, for the next
    /// stage's start.
    pub fn since(&mut self, pick: Pick, t: std::time::Instant) -> std::time::Instant {
        let now = std::time::Instant::now();
        self.observe(pick, now.saturating_duration_since(t).as_millis() as u64);
        now
    }

    /// A txn's age by the wall clock (`Metrics::txn_age`).
    pub fn txn_age(&mut self, pick: Pick, txn_time: i64) {
        if let Some(age) = age_ms(txn_time) {
            self.observe(pick, age);
        }
    }

    /// Records everything held, in the order observed per summary.
    pub fn flush(&mut self, m: &Metrics) {
        if self.vals.is_empty() {
            return;
        }
        let all = m.summaries();
        let mut place = 0;
        // (address, place), by address.
        let mut by_addr = all.map(|s| {
            place += 1;
            (s as *const Summary as usize, place - 1)
        });
        by_addr.sort_unstable();
        self.buckets.resize_with(all.len(), Vec::new);
        for (pick, v) in self.vals.drain(..) {
            let s = pick(m);
            match by_addr.binary_search_by_key(&(s as *const Summary as usize), |&(a, _)| a) {
                Ok(k) => {
                    let i = by_addr[k].1;
                    if self.buckets[i].is_empty() {
                        self.filled.push(i);
                    }
                    self.buckets[i].push(v);
                }
                // Not one of `summaries()`: recorded at once.
                Err(_) => s.observe(v),
            }
        }
        for i in self.filled.drain(..) {
            all[i].observe_all(self.buckets[i].drain(..));
        }
    }
}

/// ZooKeeper's SummarySet: one BASIC summary per key (a top-level
/// namespace), exported as `avg_<key>_<name>` in mntr and with a `key`
/// label in Prometheus.
#[derive(Debug)]
pub struct SummarySet {
    pub name: &'static str,
    pub detail: Detail,
    members: Mutex<BTreeMap<String, SummaryState>>,
}

impl SummarySet {
    const fn new(name: &'static str) -> SummarySet {
        SummarySet::with(name, Detail::Basic)
    }

    const fn with(name: &'static str, detail: Detail) -> SummarySet {
        SummarySet {
            name,
            detail,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn observe(&self, key: &str, v: u64) {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = m.get_mut(key) {
            s.observe(v, SET_WINDOW);
        } else if m.len() < SET_KEYS {
            let mut s = SummaryState::default();
            s.observe(v, SET_WINDOW);
            m.insert(key.to_owned(), s);
        }
    }

    fn read(&self) -> Vec<(String, SummaryView)> {
        let m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, s)| (k.clone(), s.view())).collect()
    }
}

/// The top-level namespace of a path (`/a/b` -> `a`), as ZooKeeper's
/// per-namespace metrics key it; none for the root.
pub fn namespace(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let ns = rest.split('/').next().unwrap_or("");
    (!ns.is_empty()).then_some(ns)
}

struct SummaryView {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    sorted: Vec<u64>,
}

impl SummaryView {
    fn quantile(&self, q: f64) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let i = ((q * self.sorted.len() as f64).ceil() as usize).clamp(1, self.sorted.len());
        self.sorted[i - 1] as f64
    }

    fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

/// Everything a server records as it runs. One per server (shared through
/// its `Config`), so servers in one process keep their own figures.
#[derive(Debug)]
pub struct Metrics {
    pub readlatency: Summary,
    pub updatelatency: Summary,
    pub fsynctime: Summary,
    pub snapshottime: Summary,
    pub dbinittime: Summary,
    pub startup_snap_load_time: Summary,
    pub startup_txns_load_time: Summary,
    pub startup_txns_loaded: Summary,
    pub sync_processor_batch_size: Summary,
    pub election_time: Summary,
    /// Leader: a txn's age (from its header's wall time) when a quorum
    /// acked it. Learner: a PROPOSAL's age on arrival, a txn's age when
    /// applied on COMMIT/INFORM.
    pub quorum_ack_latency: Summary,
    pub proposal_latency: Summary,
    pub commit_propagation_latency: Summary,
    /// Learner: from LEADERINFO to UPTODATE.
    pub follower_sync_time: Summary,
    pub observer_sync_time: Summary,
    /// From leaving a role (or starting) to serving again; as leader too.
    pub unavailable_time: Summary,
    pub leader_unavailable_time: Summary,
    /// Watchers one change notified, by event type (one observation per
    /// path and watch table, as WatchManager.triggerWatch records it).
    pub node_created_watch_count: Summary,
    pub node_deleted_watch_count: Summary,
    pub node_changed_watch_count: Summary,
    pub node_children_watch_count: Summary,
    /// The txn-log thread, ZooKeeper's SyncRequestProcessor: txns waiting
    /// when it takes a batch; per txn, the wait to be taken, the time to be
    /// appended, and the whole way to durable; per batch, the flush (fsync
    /// and the durable report).
    pub sync_processor_queue_size: Summary,
    pub sync_processor_queue_time_ms: Summary,
    pub sync_process_time: Summary,
    pub sync_processor_queue_and_flush_time_ms: Summary,
    pub sync_processor_queue_flush_time_ms: Summary,
    /// A txn's age (from its header's time) when applied here.
    pub propagation_latency: Summary,
    /// The pipeline, ZooKeeper's PrepRequestProcessor: a request's wait from
    /// being read to being taken, requests still queued behind it, and the
    /// time to turn a write into its txn (closeSession apart too).
    pub prep_processor_queue_time_ms: Summary,
    pub prep_processor_queue_size: Summary,
    pub prep_process_time: Summary,
    pub close_session_prep_time: Summary,
    /// ZooKeeper's FinalRequestProcessor: a read's time against the tree
    /// (ACL check, lookup, watch registration); a write's time to apply its
    /// txn (with its watches and, standalone, its log append).
    pub read_final_proc_time_ms: Summary,
    pub write_final_proc_time_ms: Summary,
    /// Learner: a proposal's age (from its txn's time) when its ACK is made.
    pub proposal_ack_creation_latency: Summary,
    /// A follower hosting observers: building a proposal's INFORM, and
    /// sending it to the observers when it commits (ms, as Apache's).
    pub om_proposal_process_time_ms: Summary,
    pub om_commit_process_time_ms: Summary,
    /// Leader: learners syncing by SNAP (or by DIFF/TRUNC) when one begins
    /// its sync (it included) and when one ends it.
    pub inflight_snap_count: Summary,
    pub inflight_diff_count: Summary,
    /// Ensemble members' per-session queues (ZooKeeper's CommitProcessor):
    /// a request queued behind its session's write waits there. Per request
    /// queued: the session's queue length and the sessions with a queue;
    /// per drain, the reads answered and those after a write; a read's wait
    /// (0 when it did not queue) and a write's from being taken to its
    /// commit.
    pub requests_in_session_queue: Summary,
    pub pending_session_queue_size: Summary,
    pub reads_issued_from_session_queue: Summary,
    pub reads_after_write_in_session_queue: Summary,
    pub read_commitproc_time_ms: Summary,
    pub write_commitproc_time_ms: Summary,
    /// Admission (crate::admission): time a request waited for room in
    /// the pipeline, and the deficit of the connect token bucket after a
    /// connect took its tokens.
    pub request_throttle_queue_time_ms: Summary,
    pub connection_token_deficit: Summary,
    /// Prep handing a write on (ZooKeeper's proposal_process_time: the
    /// time after prep until the next stage has it: logged, proposed).
    pub proposal_process_time: Summary,
    /// An ensemble member's commit rounds (ZooKeeper's CommitProcessor
    /// loop; here one pipeline turn that applied commits or answered
    /// reads, `ensemble::round::Round`): reads and writes waiting in
    /// session queues and commits to apply when it began; reads answered,
    /// commits applied and session queues drained in it; the time to apply
    /// its commits and the whole turn's; the wait for the read workers,
    /// which is 0 (reads run on the pipeline, there is no pool), and reads
    /// in flight while commits apply, never observed (there are none).
    pub read_commit_proc_req_queued: Summary,
    pub write_commit_proc_req_queued: Summary,
    pub commit_commit_proc_req_queued: Summary,
    pub read_commit_proc_issued: Summary,
    pub write_commit_proc_issued: Summary,
    pub session_queues_drained: Summary,
    pub write_batch_time_in_commit_processor: Summary,
    pub commit_process_time: Summary,
    pub time_waiting_empty_pool_in_commit_processor_read_ms: Summary,
    pub concurrent_request_processing_in_commit_processor: Summary,
    /// From a commit's arrival (a COMMIT read off the leader's link, or a
    /// leader's quorum) to its txn applied: for this server's clients'
    /// writes, and for other servers'.
    pub local_write_committed_time_ms: Summary,
    pub server_write_committed_time_ms: Summary,
    /// Learner: requests already waiting to go to the leader when one is
    /// queued (FollowerRequestProcessor's queue).
    pub learner_request_processor_queue_size: Summary,
    /// Closing a quorum link's socket (learner side and leader side).
    pub socket_closing_time: Summary,
    /// A closed connection's watches removed (WatchManagerOptimized's dead
    /// watcher cleaner: here synchronous, at close).
    pub dead_watchers_cleaner_latency: Summary,
    /// Process pauses (`jvm.pause.monitor`, crate::pause): how much longer
    /// than asked the monitor's sleeps took.
    pub jvm_pause_time_ms: Summary,
    /// Netty's queued read buffer: never observed; rookeeper's connections
    /// do not queue what they read while throttled (as Apache's default
    /// NIO connections do not).
    pub netty_queued_buffer_capacity: Summary,
    /// Bytes read and written per top-level namespace (DataTree's
    /// updateReadStat / updateWriteStat).
    pub read_per_namespace: SummarySet,
    pub write_per_namespace: SummarySet,
    /// Leader, per learner (keyed by its server id): packets handed to the
    /// link's writer and not yet written, at each hand-over; how long a
    /// marked batch (one per 1000 packets) waited for the writer
    /// (LearnerHandler's queuedPackets and its marker packets).
    pub learner_handler_qp_size: SummarySet,
    pub learner_handler_qp_time_ms: SummarySet,
    /// When the current unavailability began.
    unavailable_since: Mutex<Option<std::time::Instant>>,
    pub connection_request_count: Counter,
    pub connection_rejected: Counter,
    pub unsuccessful_handshake: Counter,
    pub bytes_received_count: Counter,
    pub auth_failed_count: Counter,
    pub looking_count: Counter,
    pub commit_count: Counter,
    /// Leader: learners synced by DIFF (TRUNC too, as Apache counts) and by SNAP.
    pub diff_count: Counter,
    pub snap_count: Counter,
    /// Leader: txns proposed.
    pub proposal_count: Counter,
    /// Learner: PROPOSALs and COMMITs received from the leader.
    pub learner_proposal_received_count: Counter,
    pub learner_commit_received_count: Counter,
    pub stale_sessions_expired: Counter,
    pub fsync_threshold_exceed_count: Counter,
    pub response_bytes: Counter,
    /// Bytes of watch notifications sent.
    pub watch_bytes: Counter,
    pub sync_processor_request_queued: Counter,
    pub prep_processor_request_queued: Counter,
    /// Connections the client closed (end of stream where a request could
    /// start).
    pub connection_drop_count: Counter,
    /// Connects that carried an existing session (a client reconnecting).
    pub connection_revalidate_count: Counter,
    /// EnsembleAuthenticationProvider's outcomes.
    pub ensemble_auth_success: Counter,
    pub ensemble_auth_fail: Counter,
    pub ensemble_auth_skip: Counter,
    pub quit_leading_due_to_disloyal_voter: Counter,
    /// Leader: REVALIDATE packets answered for learners.
    pub revalidate_count: Counter,
    /// The txn log failed: no write can be acknowledged until it recovers.
    pub unrecoverable_error_count: Counter,
    /// A leader's txn digest differed from this tree's after applying it.
    pub digest_mismatches_count: Counter,
    /// Changes prep recorded for txns in flight (ZooKeeper's
    /// outstandingChanges), and those forgotten once their txn applied.
    pub outstanding_changes_queued: Counter,
    pub outstanding_changes_removed: Counter,
    /// Requests whose connection had closed by the time the pipeline took
    /// them: all dropped unanswered.
    pub stale_requests: Counter,
    pub stale_requests_dropped: Counter,
    /// Replies not sent: the connection closed while the request was in
    /// flight.
    pub stale_replies: Counter,
    /// Connections closed for sending no request (no session, no
    /// four-letter word) within zookeeper.nio.sessionlessCnxnTimeout.
    pub sessionless_connections_expired: Counter,
    /// Connections closed because this ensemble member was not serving
    /// (looking for a leader, or syncing with one) when they asked.
    pub cnxn_closed_without_zk_server_running: Counter,
    /// Admission: stalls of a request waiting for room in the pipeline,
    /// requests answered THROTTLEDOP, large requests refused.
    pub request_throttle_wait_count: Counter,
    pub throttled_ops: Counter,
    pub large_requests_rejected: Counter,
    /// Secure-port connections closed because too many TLS handshakes
    /// were under way (zookeeper.netty.server.outstandingHandshake.limit).
    pub tls_handshake_exceeded: Counter,
    /// Client-port connections without TLS, from loopback and from
    /// elsewhere (ServerStats' non-mTLS counts: cumulative).
    pub non_mtls_local_conn_count: Counter,
    pub non_mtls_remote_conn_count: Counter,
    /// Commits handed to be applied (ZooKeeper's request_commit_queued).
    pub request_commit_queued: Counter,
    /// Leader: learners' requests, answered by their own server and so
    /// never queued here (ZooKeeper with
    /// forwardLearnerRequestsToCommitProcessorDisabled).
    pub requests_not_forwarded_to_commit_processor: Counter,
    /// A follower hosting observers: their requests relayed to the leader
    /// without being queued here (skipLearnerRequestToNextProcessor).
    pub skip_learner_request_to_next_processor_count: Counter,
    /// Watches of closed connections removed; removal never waits for a
    /// queue, so the stall time stays 0.
    pub dead_watchers_queued: Counter,
    pub dead_watchers_cleared: Counter,
    pub add_dead_watcher_stall_time: Counter,
    /// ZooKeeper's response cache for getData / getChildren2: rookeeper
    /// has none (a reply is written from the tree each time), which counts
    /// as Apache with zookeeper.maxResponseCacheSize=0: neither hits nor
    /// misses.
    pub response_packet_cache_hits: Counter,
    pub response_packet_cache_misses: Counter,
    pub response_packet_get_children_cache_hits: Counter,
    pub response_packet_get_children_cache_misses: Counter,
    /// Plain HTTP connections to an AdminServer that also takes HTTPS
    /// (admin.portUnification).
    pub insecure_admin_count: Counter,
    /// Snapshot taken by this server (file name zxid, unix seconds).
    last_snapshot: Mutex<Option<(i64, i64)>>,
    /// Reply sizes: last, min, max (-1 before the first, as ZooKeeper).
    client_response: Mutex<(i64, i64, i64)>,
    /// Proposal sizes (a leader's): last, min, max.
    proposals: Mutex<(i64, i64, i64)>,
    /// When this ensemble member began looking, if it is.
    looking_since: Mutex<Option<std::time::Instant>>,
    /// TLS handshakes under way on the secure client port.
    tls_handshakes: std::sync::Arc<AtomicU64>,
}

/// Counts a TLS handshake as outstanding until dropped.
pub struct Handshaking(std::sync::Arc<AtomicU64>);

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            readlatency: Summary::new("readlatency", Detail::Advanced),
            updatelatency: Summary::new("updatelatency", Detail::Advanced),
            fsynctime: Summary::new("fsynctime", Detail::Basic),
            snapshottime: Summary::new("snapshottime", Detail::Basic),
            dbinittime: Summary::new("dbinittime", Detail::Basic),
            startup_snap_load_time: Summary::new("startup_snap_load_time", Detail::Basic),
            startup_txns_load_time: Summary::new("startup_txns_load_time", Detail::Basic),
            startup_txns_loaded: Summary::new("startup_txns_loaded", Detail::Basic),
            sync_processor_batch_size: Summary::new("sync_processor_batch_size", Detail::Basic),
            election_time: Summary::new("election_time", Detail::Basic),
            quorum_ack_latency: Summary::new("quorum_ack_latency", Detail::Advanced),
            proposal_latency: Summary::new("proposal_latency", Detail::Advanced),
            commit_propagation_latency: Summary::new(
                "commit_propagation_latency",
                Detail::Advanced,
            ),
            follower_sync_time: Summary::new("follower_sync_time", Detail::Basic),
            observer_sync_time: Summary::new("observer_sync_time", Detail::Basic),
            unavailable_time: Summary::new("unavailable_time", Detail::Basic),
            leader_unavailable_time: Summary::new("leader_unavailable_time", Detail::Basic),
            node_created_watch_count: Summary::new("node_created_watch_count", Detail::Basic),
            node_deleted_watch_count: Summary::new("node_deleted_watch_count", Detail::Basic),
            node_changed_watch_count: Summary::new("node_changed_watch_count", Detail::Basic),
            node_children_watch_count: Summary::new("node_children_watch_count", Detail::Basic),
            sync_processor_queue_size: Summary::new("sync_processor_queue_size", Detail::Basic),
            sync_processor_queue_time_ms: Summary::new(
                "sync_processor_queue_time_ms",
                Detail::Advanced,
            ),
            sync_process_time: Summary::new("sync_process_time", Detail::Basic),
            sync_processor_queue_and_flush_time_ms: Summary::new(
                "sync_processor_queue_and_flush_time_ms",
                Detail::Advanced,
            ),
            sync_processor_queue_flush_time_ms: Summary::new(
                "sync_processor_queue_flush_time_ms",
                Detail::Advanced,
            ),
            propagation_latency: Summary::new("propagation_latency", Detail::Advanced),
            prep_processor_queue_time_ms: Summary::new(
                "prep_processor_queue_time_ms",
                Detail::Advanced,
            ),
            prep_processor_queue_size: Summary::new("prep_processor_queue_size", Detail::Basic),
            prep_process_time: Summary::new("prep_process_time", Detail::Basic),
            close_session_prep_time: Summary::new("close_session_prep_time", Detail::Advanced),
            read_final_proc_time_ms: Summary::new("read_final_proc_time_ms", Detail::Advanced),
            write_final_proc_time_ms: Summary::new("write_final_proc_time_ms", Detail::Advanced),
            proposal_ack_creation_latency: Summary::new(
                "proposal_ack_creation_latency",
                Detail::Advanced,
            ),
            om_proposal_process_time_ms: Summary::new(
                "om_proposal_process_time_ms",
                Detail::Advanced,
            ),
            om_commit_process_time_ms: Summary::new("om_commit_process_time_ms", Detail::Advanced),
            inflight_snap_count: Summary::new("inflight_snap_count", Detail::Basic),
            inflight_diff_count: Summary::new("inflight_diff_count", Detail::Basic),
            requests_in_session_queue: Summary::new("requests_in_session_queue", Detail::Basic),
            pending_session_queue_size: Summary::new("pending_session_queue_size", Detail::Basic),
            reads_issued_from_session_queue: Summary::new(
                "reads_issued_from_session_queue",
                Detail::Basic,
            ),
            reads_after_write_in_session_queue: Summary::new(
                "reads_after_write_in_session_queue",
                Detail::Basic,
            ),
            read_commitproc_time_ms: Summary::new("read_commitproc_time_ms", Detail::Advanced),
            write_commitproc_time_ms: Summary::new("write_commitproc_time_ms", Detail::Advanced),
            request_throttle_queue_time_ms: Summary::new(
                "request_throttle_queue_time_ms",
                Detail::Advanced,
            ),
            connection_token_deficit: Summary::new("connection_token_deficit", Detail::Basic),
            proposal_process_time: Summary::new("proposal_process_time", Detail::Basic),
            read_commit_proc_req_queued: Summary::new("read_commit_proc_req_queued", Detail::Basic),
            write_commit_proc_req_queued: Summary::new(
                "write_commit_proc_req_queued",
                Detail::Basic,
            ),
            commit_commit_proc_req_queued: Summary::new(
                "commit_commit_proc_req_queued",
                Detail::Basic,
            ),
            read_commit_proc_issued: Summary::new("read_commit_proc_issued", Detail::Basic),
            write_commit_proc_issued: Summary::new("write_commit_proc_issued", Detail::Basic),
            session_queues_drained: Summary::new("session_queues_drained", Detail::Basic),
            write_batch_time_in_commit_processor: Summary::new(
                "write_batch_time_in_commit_processor",
                Detail::Basic,
            ),
            commit_process_time: Summary::new("commit_process_time", Detail::Basic),
            time_waiting_empty_pool_in_commit_processor_read_ms: Summary::new(
                "time_waiting_empty_pool_in_commit_processor_read_ms",
                Detail::Basic,
            ),
            concurrent_request_processing_in_commit_processor: Summary::new(
                "concurrent_request_processing_in_commit_processor",
                Detail::Basic,
            ),
            local_write_committed_time_ms: Summary::new(
                "local_write_committed_time_ms",
                Detail::Advanced,
            ),
            server_write_committed_time_ms: Summary::new(
                "server_write_committed_time_ms",
                Detail::Advanced,
            ),
            learner_request_processor_queue_size: Summary::new(
                "learner_request_processor_queue_size",
                Detail::Basic,
            ),
            socket_closing_time: Summary::new("socket_closing_time", Detail::Basic),
            dead_watchers_cleaner_latency: Summary::new(
                "dead_watchers_cleaner_latency",
                Detail::Advanced,
            ),
            jvm_pause_time_ms: Summary::new("jvm_pause_time_ms", Detail::Advanced),
            netty_queued_buffer_capacity: Summary::new(
                "netty_queued_buffer_capacity",
                Detail::Basic,
            ),
            read_per_namespace: SummarySet::new("read_per_namespace"),
            write_per_namespace: SummarySet::new("write_per_namespace"),
            learner_handler_qp_size: SummarySet::new("learner_handler_qp_size"),
            learner_handler_qp_time_ms: SummarySet::with(
                "learner_handler_qp_time_ms",
                Detail::Advanced,
            ),
            unavailable_since: Mutex::new(None),
            connection_request_count: Counter::default(),
            connection_rejected: Counter::default(),
            unsuccessful_handshake: Counter::default(),
            bytes_received_count: Counter::default(),
            auth_failed_count: Counter::default(),
            looking_count: Counter::default(),
            commit_count: Counter::default(),
            diff_count: Counter::default(),
            snap_count: Counter::default(),
            proposal_count: Counter::default(),
            learner_proposal_received_count: Counter::default(),
            learner_commit_received_count: Counter::default(),
            stale_sessions_expired: Counter::default(),
            fsync_threshold_exceed_count: Counter::default(),
            response_bytes: Counter::default(),
            watch_bytes: Counter::default(),
            sync_processor_request_queued: Counter::default(),
            prep_processor_request_queued: Counter::default(),
            connection_drop_count: Counter::default(),
            connection_revalidate_count: Counter::default(),
            ensemble_auth_success: Counter::default(),
            ensemble_auth_fail: Counter::default(),
            ensemble_auth_skip: Counter::default(),
            quit_leading_due_to_disloyal_voter: Counter::default(),
            revalidate_count: Counter::default(),
            unrecoverable_error_count: Counter::default(),
            digest_mismatches_count: Counter::default(),
            outstanding_changes_queued: Counter::default(),
            outstanding_changes_removed: Counter::default(),
            stale_requests: Counter::default(),
            stale_requests_dropped: Counter::default(),
            stale_replies: Counter::default(),
            sessionless_connections_expired: Counter::default(),
            cnxn_closed_without_zk_server_running: Counter::default(),
            request_throttle_wait_count: Counter::default(),
            throttled_ops: Counter::default(),
            large_requests_rejected: Counter::default(),
            tls_handshake_exceeded: Counter::default(),
            non_mtls_local_conn_count: Counter::default(),
            non_mtls_remote_conn_count: Counter::default(),
            request_commit_queued: Counter::default(),
            requests_not_forwarded_to_commit_processor: Counter::default(),
            skip_learner_request_to_next_processor_count: Counter::default(),
            dead_watchers_queued: Counter::default(),
            dead_watchers_cleared: Counter::default(),
            add_dead_watcher_stall_time: Counter::default(),
            response_packet_cache_hits: Counter::default(),
            response_packet_cache_misses: Counter::default(),
            response_packet_get_children_cache_hits: Counter::default(),
            response_packet_get_children_cache_misses: Counter::default(),
            insecure_admin_count: Counter::default(),
            last_snapshot: Mutex::new(None),
            client_response: Mutex::new((-1, -1, -1)),
            proposals: Mutex::new((-1, -1, -1)),
            looking_since: Mutex::new(None),
            tls_handshakes: Default::default(),
        }
    }
}

fn buffer_size(stats: &Mutex<(i64, i64, i64)>, n: usize) {
    let n = n as i64;
    let mut c = stats.lock().unwrap_or_else(|e| e.into_inner());
    c.0 = n;
    if c.1 < 0 || n < c.1 {
        c.1 = n;
    }
    c.2 = c.2.max(n);
}

/// fsyncs slower than this are counted (zookeeper.fsync.warningthresholdms).
pub const FSYNC_WARNING_MS: u64 = 1000;

/// What a read's stat adds to its bytes in the per-namespace figures
/// (ZooKeeper's DataTree.STAT_OVERHEAD_BYTES: six longs, five ints).
const STAT_OVERHEAD_BYTES: usize = 6 * 8 + 5 * 4;

impl Metrics {
    fn summaries(&self) -> [&Summary; 64] {
        [
            &self.readlatency,
            &self.updatelatency,
            &self.fsynctime,
            &self.snapshottime,
            &self.dbinittime,
            &self.startup_snap_load_time,
            &self.startup_txns_load_time,
            &self.startup_txns_loaded,
            &self.sync_processor_batch_size,
            &self.election_time,
            &self.quorum_ack_latency,
            &self.proposal_latency,
            &self.commit_propagation_latency,
            &self.follower_sync_time,
            &self.observer_sync_time,
            &self.unavailable_time,
            &self.leader_unavailable_time,
            &self.node_created_watch_count,
            &self.node_deleted_watch_count,
            &self.node_changed_watch_count,
            &self.node_children_watch_count,
            &self.sync_processor_queue_size,
            &self.sync_processor_queue_time_ms,
            &self.sync_process_time,
            &self.sync_processor_queue_and_flush_time_ms,
            &self.sync_processor_queue_flush_time_ms,
            &self.propagation_latency,
            &self.prep_processor_queue_time_ms,
            &self.prep_processor_queue_size,
            &self.prep_process_time,
            &self.close_session_prep_time,
            &self.read_final_proc_time_ms,
            &self.write_final_proc_time_ms,
            &self.proposal_ack_creation_latency,
            &self.om_proposal_process_time_ms,
            &self.om_commit_process_time_ms,
            &self.inflight_snap_count,
            &self.inflight_diff_count,
            &self.requests_in_session_queue,
            &self.pending_session_queue_size,
            &self.reads_issued_from_session_queue,
            &self.reads_after_write_in_session_queue,
            &self.read_commitproc_time_ms,
            &self.write_commitproc_time_ms,
            &self.request_throttle_queue_time_ms,
            &self.connection_token_deficit,
            &self.proposal_process_time,
            &self.read_commit_proc_req_queued,
            &self.write_commit_proc_req_queued,
            &self.commit_commit_proc_req_queued,
            &self.read_commit_proc_issued,
            &self.write_commit_proc_issued,
            &self.session_queues_drained,
            &self.write_batch_time_in_commit_processor,
            &self.commit_process_time,
            &self.time_waiting_empty_pool_in_commit_processor_read_ms,
            &self.concurrent_request_processing_in_commit_processor,
            &self.local_write_committed_time_ms,
            &self.server_write_committed_time_ms,
            &self.learner_request_processor_queue_size,
            &self.socket_closing_time,
            &self.dead_watchers_cleaner_latency,
            &self.jvm_pause_time_ms,
            &self.netty_queued_buffer_capacity,
        ]
    }

    fn summary_sets(&self) -> [&SummarySet; 4] {
        [
            &self.read_per_namespace,
            &self.write_per_namespace,
            &self.learner_handler_qp_size,
            &self.learner_handler_qp_time_ms,
        ]
    }

    /// Watchers notified by one trigger of `event_type` (ZooKeeper's
    /// EventType codes; other types are not recorded, as in ZooKeeper).
    pub fn watch_triggered(&self, event_type: i32, watchers: usize) {
        use jute::consts::event;
        let s = match event_type {
            event::NODE_CREATED => &self.node_created_watch_count,
            event::NODE_DELETED => &self.node_deleted_watch_count,
            event::NODE_DATA_CHANGED => &self.node_changed_watch_count,
            event::NODE_CHILDREN_CHANGED => &self.node_children_watch_count,
            _ => return,
        };
        s.observe(watchers as u64);
    }

    /// `bytes` of `path` read (DataTree.updateReadStat: a stat's size on top).
    pub fn namespace_read(&self, path: &str, bytes: usize) {
        if let Some(ns) = namespace(path) {
            let total = path.len() + bytes + STAT_OVERHEAD_BYTES;
            self.read_per_namespace.observe(ns, total as u64);
        }
    }

    /// `bytes` of data written at `path` (DataTree.updateWriteStat).
    pub fn namespace_write(&self, path: &str, bytes: usize) {
        if let Some(ns) = namespace(path) {
            self.write_per_namespace
                .observe(ns, (path.len() + bytes) as u64);
        }
    }

    /// A txn created at `txn_time` (wall ms, by the leader) reached a
    /// point measured by `s`; clock skew between servers can make the age
    /// negative, which is not recorded (as Apache's logLatency).
    pub fn txn_age(s: &Summary, txn_time: i64) {
        if let Some(age) = age_ms(txn_time) {
            s.observe(age);
        }
    }

    /// Leader: a learner's sync of one kind began (`in_flight` counts it)
    /// or ended (NEWLEADER acked, UPTODATE sent; `in_flight` remain).
    pub fn syncs_in_flight(&self, snap: bool, in_flight: u64) {
        match snap {
            true => &self.inflight_snap_count,
            false => &self.inflight_diff_count,
        }
        .observe(in_flight);
    }

    /// This member stops serving (starting up, or left its role).
    pub fn unavailable(&self) {
        let mut u = self
            .unavailable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        u.get_or_insert_with(std::time::Instant::now);
    }

    /// Serving again (as a leader: `leader`).
    pub fn available(&self, leader: bool) {
        let since = self
            .unavailable_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = since {
            let ms = t.elapsed().as_millis() as u64;
            self.unavailable_time.observe(ms);
            if leader {
                self.leader_unavailable_time.observe(ms);
            }
        }
    }

    /// Counters exported as counters (auth_failed_count is a gauge of
    /// ServerStats in ZooKeeper, so it is read among the gauges).
    fn counters(&self) -> [(&'static str, &Counter); 48] {
        [
            ("connection_request_count", &self.connection_request_count),
            ("connection_rejected", &self.connection_rejected),
            ("unsuccessful_handshake", &self.unsuccessful_handshake),
            ("bytes_received_count", &self.bytes_received_count),
            ("looking_count", &self.looking_count),
            ("commit_count", &self.commit_count),
            ("diff_count", &self.diff_count),
            ("snap_count", &self.snap_count),
            ("proposal_count", &self.proposal_count),
            (
                "learner_proposal_received_count",
                &self.learner_proposal_received_count,
            ),
            (
                "learner_commit_received_count",
                &self.learner_commit_received_count,
            ),
            ("stale_sessions_expired", &self.stale_sessions_expired),
            ("response_bytes", &self.response_bytes),
            // Also a gauge in Apache's ServerStats; a counter of events here.
            (
                "fsync_threshold_exceed_count",
                &self.fsync_threshold_exceed_count,
            ),
            ("watch_bytes", &self.watch_bytes),
            (
                "sync_processor_request_queued",
                &self.sync_processor_request_queued,
            ),
            (
                "prep_processor_request_queued",
                &self.prep_processor_request_queued,
            ),
            ("connection_drop_count", &self.connection_drop_count),
            (
                "connection_revalidate_count",
                &self.connection_revalidate_count,
            ),
            ("revalidate_count", &self.revalidate_count),
            ("unrecoverable_error_count", &self.unrecoverable_error_count),
            ("digest_mismatches_count", &self.digest_mismatches_count),
            (
                "outstanding_changes_queued",
                &self.outstanding_changes_queued,
            ),
            (
                "outstanding_changes_removed",
                &self.outstanding_changes_removed,
            ),
            ("stale_requests", &self.stale_requests),
            ("stale_requests_dropped", &self.stale_requests_dropped),
            ("stale_replies", &self.stale_replies),
            (
                "sessionless_connections_expired",
                &self.sessionless_connections_expired,
            ),
            (
                "cnxn_closed_without_zk_server_running",
                &self.cnxn_closed_without_zk_server_running,
            ),
            (
                "request_throttle_wait_count",
                &self.request_throttle_wait_count,
            ),
            ("throttled_ops", &self.throttled_ops),
            ("large_requests_rejected", &self.large_requests_rejected),
            ("tls_handshake_exceeded", &self.tls_handshake_exceeded),
            ("ensemble_auth_success", &self.ensemble_auth_success),
            ("ensemble_auth_fail", &self.ensemble_auth_fail),
            ("ensemble_auth_skip", &self.ensemble_auth_skip),
            (
                "quit_leading_due_to_disloyal_voter",
                &self.quit_leading_due_to_disloyal_voter,
            ),
            ("request_commit_queued", &self.request_commit_queued),
            (
                "requests_not_forwarded_to_commit_processor",
                &self.requests_not_forwarded_to_commit_processor,
            ),
            (
                "skip_learner_request_to_next_processor_count",
                &self.skip_learner_request_to_next_processor_count,
            ),
            ("dead_watchers_queued", &self.dead_watchers_queued),
            ("dead_watchers_cleared", &self.dead_watchers_cleared),
            (
                "add_dead_watcher_stall_time",
                &self.add_dead_watcher_stall_time,
            ),
            (
                "response_packet_cache_hits",
                &self.response_packet_cache_hits,
            ),
            (
                "response_packet_cache_misses",
                &self.response_packet_cache_misses,
            ),
            (
                "response_packet_get_children_cache_hits",
                &self.response_packet_get_children_cache_hits,
            ),
            (
                "response_packet_get_children_cache_misses",
                &self.response_packet_get_children_cache_misses,
            ),
            ("insecure_admin_count", &self.insecure_admin_count),
        ]
    }

    /// Records a snapshot written for `zxid`, now.
    pub fn snapshot_written(&self, zxid: i64) {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        *self.last_snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some((zxid, secs));
    }

    /// Records the size of a reply sent to a client.
    pub fn client_response_size(&self, n: usize) {
        buffer_size(&self.client_response, n);
    }

    /// Records the size of a proposal's txn (a leader's proposal_stats).
    pub fn proposal_size(&self, n: usize) {
        buffer_size(&self.proposals, n);
    }

    /// (last, min, max) proposal sizes.
    pub fn proposals(&self) -> (i64, i64, i64) {
        *self.proposals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A TLS handshake begins; it is outstanding until the guard drops.
    pub fn tls_handshake_started(&self) -> Handshaking {
        self.tls_handshakes.fetch_add(1, Ordering::Relaxed);
        Handshaking(self.tls_handshakes.clone())
    }

    /// TLS handshakes under way.
    pub fn outstanding_tls_handshakes(&self) -> u64 {
        self.tls_handshakes.load(Ordering::Relaxed)
    }

    /// An ensemble member starts looking for a leader.
    pub fn election_started(&self) {
        self.looking_count.inc();
        self.unavailable();
        *self.looking_since.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::time::Instant::now());
    }

    /// It found one (leading or following): election_time is the time spent
    /// looking.
    pub fn election_finished(&self) {
        let since = self
            .looking_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = since {
            self.election_time.observe(t.elapsed().as_millis() as u64);
        }
    }

    /// (last, min, max) reply sizes.
    pub fn client_response(&self) -> (i64, i64, i64) {
        *self
            .client_response
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The last snapshot this server wrote: (zxid, unix seconds).
    pub fn last_snapshot(&self) -> Option<(i64, i64)> {
        *self.last_snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A figure read from the server's state at the moment of asking.
#[derive(Debug, Clone)]
pub enum Gauge {
    Int(i64),
    Float(f64),
    /// Text: mntr only (Prometheus has no text values).
    Text(String),
}

impl Gauge {
    fn json(&self) -> Value {
        match self {
            Gauge::Int(v) => Value::from(*v),
            Gauge::Float(v) => Value::from((*v * 10_000.0).round() / 10_000.0),
            Gauge::Text(s) => Value::from(s.clone()),
        }
    }
}

/// mntr's rows of one summary: avg/min/max/cnt/sum, and for ADVANCED
/// ones p50/p95/p99/p999.
fn summary_rows(rows: &mut Vec<(String, Value)>, name: &str, v: &SummaryView, detail: Detail) {
    let avg = (v.avg() * 10_000.0).round() / 10_000.0;
    rows.push((format!("avg_{name}"), Value::from(avg)));
    rows.push((format!("min_{name}"), Value::from(v.min)));
    rows.push((format!("max_{name}"), Value::from(v.max)));
    rows.push((format!("cnt_{name}"), Value::from(v.count)));
    rows.push((format!("sum_{name}"), Value::from(v.sum)));
    if detail == Detail::Advanced {
        for (p, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
            rows.push((format!("{p}_{name}"), Value::from(v.quantile(q) as u64)));
        }
    }
}

/// The quantiles Prometheus text shows of a summary (simpleclient's, as
/// Apache's provider configures them).
fn prom_quantiles(detail: Detail) -> &'static [f64] {
    match detail {
        Detail::Basic => &[0.5],
        Detail::Advanced => &[0.5, 0.9, 0.99],
    }
}

/// mntr's rows, in order: the pipeline's gauges (read by the caller from
/// the server's state, the way ZooKeeperServer registers them), then the
/// counters and summaries as Apache's default metrics provider dumps them
/// (`avg_`/`min_`/`max_`/`cnt_`/`sum_` and, for ADVANCED summaries,
/// `p50_`/`p95_`/`p99_`/`p999_`).
pub fn monitor_rows(gauges: &[(&'static str, Gauge)], m: &Metrics) -> Vec<(String, Value)> {
    let mut rows: Vec<(String, Value)> = gauges
        .iter()
        .map(|(k, v)| (k.to_string(), v.json()))
        .collect();
    for (name, c) in m.counters() {
        rows.push((name.to_owned(), Value::from(c.get())));
    }
    for s in m.summaries() {
        summary_rows(&mut rows, s.name, &s.read(), s.detail);
    }
    for set in m.summary_sets() {
        for (key, v) in set.read() {
            summary_rows(&mut rows, &format!("{key}_{}", set.name), &v, set.detail);
        }
    }
    rows
}

/// mntr as text: `zk_<key>\t<value>` per row.
pub fn monitor_text(rows: &[(String, Value)]) -> String {
    let mut out = String::new();
    for (k, v) in rows {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap_or(0.0)),
            v => v.to_string(),
        };
        let _ = writeln!(out, "zk_{k}\t{v}");
    }
    out
}

fn prom_float(v: f64) -> String {
    // simpleclient prints doubles the way Java does: 1.0, 0.5, 1.0E9.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Prometheus text exposition (format 0.0.4) of every gauge, counter and
/// summary, named as Apache's PrometheusMetricsProvider names them.
pub fn prometheus_text(gauges: &[(&'static str, Gauge)], m: &Metrics) -> String {
    let mut out = String::new();
    for (name, g) in gauges {
        let v = match g {
            Gauge::Int(v) => *v as f64,
            Gauge::Float(v) => *v,
            Gauge::Text(_) => continue,
        };
        let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {}", prom_float(v));
    }
    for (name, c) in m.counters() {
        let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", prom_float(c.get() as f64));
    }
    for s in m.summaries() {
        let v = s.read();
        let name = s.name;
        let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} summary");
        for &q in prom_quantiles(s.detail) {
            let _ = writeln!(
                out,
                "{name}{{quantile=\"{q}\",}} {}",
                prom_float(v.quantile(q))
            );
        }
        let _ = writeln!(out, "{name}_count {}", prom_float(v.count as f64));
        let _ = writeln!(out, "{name}_sum {}", prom_float(v.sum as f64));
    }
    for set in m.summary_sets() {
        let name = set.name;
        let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} summary");
        for (key, v) in set.read() {
            // Label values escape \ and " (text format 0.0.4).
            let key = key.replace('\\', "\\\\").replace('"', "\\\"");
            for &q in prom_quantiles(set.detail) {
                let _ = writeln!(
                    out,
                    "{name}{{key=\"{key}\",quantile=\"{q}\",}} {}",
                    prom_float(v.quantile(q))
                );
            }
            let _ = writeln!(
                out,
                "{name}_count{{key=\"{key}\",}} {}",
                prom_float(v.count as f64)
            );
            let _ = writeln!(
                out,
                "{name}_sum{{key=\"{key}\",}} {}",
                prom_float(v.sum as f64)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_quantiles_and_totals() {
        let m = Metrics::default();
        for v in 1..=100 {
            m.readlatency.observe(v);
        }
        let v = m.readlatency.read();
        assert_eq!((v.count, v.sum, v.min, v.max), (100, 5050, 1, 100));
        assert_eq!(v.quantile(0.5), 50.0);
        assert_eq!(v.quantile(0.99), 99.0);
        let text = prometheus_text(&[("znode_count", Gauge::Int(5))], &m);
        assert!(text.contains("znode_count 5.0\n"));
        assert!(text.contains("readlatency{quantile=\"0.9\",} 90.0\n"));
        assert!(text.contains("readlatency_count 100.0\n"));
        assert!(text.contains("fsynctime{quantile=\"0.5\",} 0.0\n"));
        assert!(!text.contains("fsynctime{quantile=\"0.9\""));
    }

    #[test]
    fn deferred_observations_land_at_the_flush_in_order() {
        let m = Metrics::default();
        let mut d = Deferred::default();
        for v in [5, 1, 9] {
            d.observe(|m| &m.updatelatency, v);
            d.observe(|m| &m.readlatency, v * 10);
        }
        assert_eq!(m.updatelatency.read().count, 0);
        d.flush(&m);
        let u = m.updatelatency.read();
        assert_eq!((u.count, u.sum, u.min, u.max), (3, 15, 1, 9));
        let r = m.readlatency.read();
        assert_eq!((r.count, r.sum), (3, 150));
        // Each summary's window holds its values in the order observed.
        let recent: Vec<u64> = m
            .updatelatency
            .state
            .lock()
            .unwrap()
            .recent
            .iter()
            .copied()
            .collect();
        assert_eq!(recent, [5, 1, 9]);
        d.flush(&m);
        assert_eq!(m.updatelatency.read().count, 3);
    }

    #[test]
    fn summary_sets_key_by_top_namespace() {
        assert_eq!(namespace("/a/b/c"), Some("a"));
        assert_eq!(namespace("/a"), Some("a"));
        assert_eq!(namespace("/"), None);
        let m = Metrics::default();
        m.namespace_write("/a/b", 10); // 4 + 10
        m.namespace_write("/a", 0); // 2
        m.namespace_read("/q\"x", 1); // 4 + 1 + 68
        let rows = monitor_rows(&[], &m);
        let get = |k: &str| rows.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("cnt_a_write_per_namespace"), Some(Value::from(2)));
        assert_eq!(get("sum_a_write_per_namespace"), Some(Value::from(16)));
        assert_eq!(get("max_q\"x_read_per_namespace"), Some(Value::from(73)));
        let text = prometheus_text(&[], &m);
        assert!(text.contains("write_per_namespace{key=\"a\",quantile=\"0.5\",} 2.0\n"));
        assert!(text.contains("read_per_namespace_count{key=\"q\\\"x\",} 1.0\n"));
    }

    #[test]
    fn tls_handshakes_are_outstanding_until_done() {
        let m = Metrics::default();
        let a = m.tls_handshake_started();
        let b = m.tls_handshake_started();
        assert_eq!(m.outstanding_tls_handshakes(), 2);
        drop(a);
        assert_eq!(m.outstanding_tls_handshakes(), 1);
        drop(b);
        assert_eq!(m.outstanding_tls_handshakes(), 0);
    }

    #[test]
    fn monitor_rows_name_summaries_like_zookeeper() {
        let m = Metrics::default();
        m.fsynctime.observe(3);
        let rows = monitor_rows(&[("version", Gauge::Text("x".into()))], &m);
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        for k in [
            "version",
            "avg_fsynctime",
            "cnt_fsynctime",
            "p999_readlatency",
        ] {
            assert!(keys.contains(&k), "{k} missing");
        }
        assert!(!keys.contains(&"p50_fsynctime"));
        let text = monitor_text(&rows);
        assert!(text.contains("zk_version\tx\n"));
        assert!(text.contains("zk_max_fsynctime\t3\n"));
        assert!(text.contains("zk_avg_fsynctime\t3.0000\n"));
    }
}
