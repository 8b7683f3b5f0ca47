//! Durability: recovery at startup, the txn log thread (group commit), and
//! snapshots. The pipeline applies a txn at once and hands it here; replies
//! that depend on it are held until this thread reports it fsynced.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::txn::Txn;
use storage::snapshot::{self, Compression};
use storage::txnlog::{self, TxnLogWriter};
use storage::StorageError;
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use tree::DataTree;

use crate::config::Config;
use crate::metrics::{Metrics, FSYNC_WARNING_MS};

/// Where snapshots and logs live: `<dataDir>/version-2`, `<dataLogDir>/version-2`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub snap_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl Layout {
    pub fn new(cfg: &Config) -> Layout {
        let log_base = cfg.data_log_dir.as_ref().unwrap_or(&cfg.data_dir);
        Layout {
            snap_dir: cfg.data_dir.join("version-2"),
            log_dir: log_base.join("version-2"),
        }
    }
}

/// What the log thread tells the pipeline.
#[derive(Debug)]
pub enum Event {
    /// Every txn up to this zxid is on disk.
    Durable(i64),
    /// The log could not be written; nothing after `last_durable` is safe.
    Failed { last_durable: i64, reason: String },
}

enum LogMsg {
    Txn(Box<Txn>),
    /// A txn already serialised (zxid, bytes as the log holds them).
    Raw(i64, Bytes),
    /// Sync, roll the log, and write this copy of the tree as a snapshot.
    Snapshot(Box<DataTree>, i64),
}

/// A message for the log thread with when it was queued (the
/// sync-processor figures).
type Queued = (LogMsg, Instant);

/// The pipeline's handle on the log thread. Messages are collected during
/// a pipeline turn and handed over together at its end ([`Persister::flush`]):
/// handed over one by one, the first txn of a turn woke the log thread,
/// which on a busy core preempted the pipeline to fsync that txn alone.
/// Under setData on one core two thirds of the fsyncs then carried 1-20
/// txns, each costing a wake-up and a context switch both ways.
pub struct Persister {
    tx: std_mpsc::Sender<Vec<Queued>>,
    /// This turn's messages, in order.
    turn: Vec<Queued>,
    /// Txns handed over and not yet fsynced. Counted, not derived from
    /// zxids: zxids jump at every epoch, and a follower syncing by TRUNC or
    /// SNAP applies txns that reach the disk by snapshot, not by this log.
    /// Counts this turn's txns too.
    backlog: Arc<AtomicUsize>,
}

impl Persister {
    pub fn append(&mut self, txn: Txn) {
        self.queue(LogMsg::Txn(Box::new(txn)));
    }

    /// [`Persister::append`] for a txn whose serialised form is at hand
    /// (a proposal's data), which the log thread then writes as it is.
    pub fn append_raw(&mut self, zxid: i64, txn: Bytes) {
        self.queue(LogMsg::Raw(zxid, txn));
    }

    fn queue(&mut self, m: LogMsg) {
        if !matches!(m, LogMsg::Snapshot(..)) {
            self.backlog.fetch_add(1, Ordering::AcqRel);
        }
        self.turn.push((m, Instant::now()));
    }

    /// Hands this turn's messages to the log thread (the pipeline calls it
    /// at the end of every turn, and before it waits for the backlog).
    pub fn flush(&mut self) {
        // The next turn starts with room for as many as this one had.
        let room = self.turn.len();
        let turn = std::mem::replace(&mut self.turn, Vec::with_capacity(room));
        if !turn.is_empty() {
            // The thread only stops after reporting Failed; nothing to do then.
            let _ = self.tx.send(turn);
        }
    }

    /// How many appended txns are not yet on disk.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Acquire)
    }

    /// After the log thread failed: what it held will never be synced, so
    /// nothing may wait for it (the tree is reloaded from disk instead).
    pub fn abandon_backlog(&mut self) {
        self.turn.clear();
        self.backlog.store(0, Ordering::Release);
    }

    pub fn snapshot(&mut self, tree: DataTree, zxid: i64) {
        self.queue(LogMsg::Snapshot(Box::new(tree), zxid));
    }
}

impl Drop for Persister {
    /// What the last turn queued still reaches the log (a stopping server
    /// drains its log thread).
    fn drop(&mut self) {
        self.flush();
    }
}

pub(crate) fn compression(cfg: &Config) -> Compression {
    match cfg.prop("zookeeper.snapshot.compression.method") {
        Some("gz") => Compression::Gz,
        Some("snappy") => Compression::Snappy,
        _ => Compression::None,
    }
}

/// Loads the newest valid snapshot and replays the log after it. A torn
/// tail is truncated; corruption anywhere else stops startup with the file
/// and offset. Like ZooKeeper, a snapshot of the recovered state is left
/// behind, so a dataDir is never logs without a snapshot: written here when
/// there was none; when there was one and txns were replayed, the second
/// value asks the caller to have the log thread write it while we serve
/// (the one on disk plus the log already hold the state; no replay: the
/// snapshot on disk is that state).
pub fn recover(cfg: &Config, layout: &Layout) -> anyhow::Result<(Loaded, bool)> {
    let (loaded, snapshot_zxid) = load_from(cfg, layout)?;
    if let Some(z) = snapshot_zxid {
        let replayed = z != loaded.tree.last_zxid();
        return Ok((loaded, replayed));
    }
    let tree = &loaded.tree;
    let started = Instant::now();
    let path =
        snapshot::write_snapshot(&layout.snap_dir, tree, tree.last_zxid(), compression(cfg))?;
    cfg.metrics
        .snapshottime
        .observe(started.elapsed().as_millis() as u64);
    cfg.metrics.snapshot_written(tree.last_zxid());
    info!("wrote startup snapshot {}", path.display());
    Ok((loaded, false))
}

/// The state on disk, and the newest txns replayed to reach it.
pub struct Loaded {
    pub tree: DataTree,
    /// At most `ensemble::history::MAX_COUNT`, newest last: the start of an
    /// ensemble member's in-memory DIFF history.
    pub tail: Vec<Txn>,
}

/// The state on disk: newest valid snapshot plus the log after it (a torn
/// tail truncated). Writes nothing else, so it also works on a full disk.
pub fn load(cfg: &Config, layout: &Layout) -> anyhow::Result<Loaded> {
    Ok(load_from(cfg, layout)?.0)
}

/// `load`, also telling the zxid of the snapshot it started from.
fn load_from(cfg: &Config, layout: &Layout) -> anyhow::Result<(Loaded, Option<i64>)> {
    for d in [&layout.snap_dir, &layout.log_dir] {
        std::fs::create_dir_all(d)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
    }
    let started = Instant::now();
    let truncate_corrupt = cfg
        .prop("rookeeper.truncateCorruptLog")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let read_log = |from: i64| -> anyhow::Result<txnlog::Replay> {
        match txnlog::replay(&layout.log_dir, from, true) {
            Ok(r) => Ok(r),
            Err(StorageError::Corrupt {
                file,
                offset,
                reason,
            }) if truncate_corrupt => {
                Ok(truncate_at_damage(&layout.log_dir, from, &file, offset, &reason)?)
            }
            Err(e @ StorageError::Corrupt { .. }) => anyhow::bail!(
                "{e}\nrefusing to start: txns from the damaged entry on would be lost. To drop them \
                 deliberately, start once with -Drookeeper.truncateCorruptLog=true"
            ),
            Err(e) => Err(e.into()),
        }
    };
    let mut tree = None;
    let mut snapshot_zxid = None;
    let mut replay = None;
    let mut snap_load_ms = 0;
    let mut log_read = std::time::Duration::ZERO;
    // Like ZooKeeper, fall back to older snapshots if the newest is bad.
    for (i, (zxid, path)) in snapshot::list_snapshots(&layout.snap_dir)?
        .into_iter()
        .enumerate()
    {
        if i >= 3 {
            break;
        }
        // The log after the snapshot is read first: the nodes it creates
        // size the node map, which then never grows (rehashes) on the way.
        let log_started = Instant::now();
        let log = read_log(zxid)?;
        log_read = log_started.elapsed();
        let opts = snapshot::ReadOptions {
            extended_types: cfg.extended_types,
            extra_nodes: net_creates(&log.txns),
            ..Default::default()
        };
        let snap_started = Instant::now();
        match snapshot::read_snapshot_with(&path, &opts) {
            Ok(s) => {
                snap_load_ms = snap_started.elapsed().as_millis() as u64;
                info!("loaded snapshot {} (zxid 0x{zxid:x})", path.display());
                snapshot_zxid = Some(s.zxid);
                tree = Some(s.tree);
                replay = Some(log);
                break;
            }
            Err(e) => warn!("skipping invalid snapshot: {e}"),
        }
    }
    let had_snapshot = tree.is_some();
    let m = &cfg.metrics;
    m.startup_snap_load_time.observe(snap_load_ms);
    let txns_started = Instant::now();
    let mut tree = tree.unwrap_or_else(|| DataTree::new(cfg.extended_types));
    let from = tree.last_zxid();
    let replay = match replay {
        Some(r) => r,
        None => {
            log_read = std::time::Duration::ZERO;
            read_log(from)?
        }
    };
    if let Some((file, offset)) = &replay.torn {
        warn!(
            "truncated a torn entry at the end of {} at offset {offset} (a write cut short by a crash; it was never acknowledged)",
            file.display()
        );
    }
    if !had_snapshot && !replay.txns.is_empty() && from == 0 {
        info!("no snapshot found: rebuilding from the txn log alone");
    }
    let mut txns = replay.txns;
    let n = txns.len();
    for t in &mut txns {
        // Each entry's data is a slice of the log's read buffer: copied,
        // so that the nodes do not keep those buffers.
        own_data(&mut t.body);
        tree.apply(&t.header, &t.body);
    }
    let tail = txns.split_off(n.saturating_sub(crate::ensemble::history::MAX_COUNT));
    drop(txns);
    // The snapshot's read buffers and the replayed txns are gone: give
    // their pages back before serving (glibc keeps freed heap otherwise).
    release_free_memory();
    // Replay fires no one's watches: nobody is connected yet.
    tree.take_fired();
    tree.take_triggers();
    m.startup_txns_load_time
        .observe((log_read + txns_started.elapsed()).as_millis() as u64);
    m.startup_txns_loaded.observe(n as u64);
    m.dbinittime.observe(started.elapsed().as_millis() as u64);
    info!(
        "recovered {} znodes and {} sessions at zxid 0x{:x} ({n} txns replayed) in {:?}",
        tree.node_count(),
        tree.sessions().len(),
        tree.last_zxid(),
        started.elapsed()
    );
    Ok((Loaded { tree, tail }, snapshot_zxid))
}

fn own_data(b: &mut jute::txn::TxnBody) {
    use jute::txn::TxnBody as B;
    match b {
        B::Create(c) | B::Create2(c) => c.data = tree::tree::own(&c.data),
        B::CreateContainer(c) => c.data = tree::tree::own(&c.data),
        B::CreateTtl(c) => c.data = tree::tree::own(&c.data),
        B::SetData(s) | B::Reconfig(s) => s.data = tree::tree::own(&s.data),
        B::Multi(v) => v.iter_mut().for_each(own_data),
        _ => {}
    }
}

/// Nodes the txns add, net of those they delete (a lower bound is fine:
/// it only sizes the node map ahead).
fn net_creates(txns: &[Txn]) -> usize {
    fn count(b: &jute::txn::TxnBody) -> i64 {
        use jute::txn::TxnBody as B;
        match b {
            B::Create(_) | B::Create2(_) | B::CreateContainer(_) | B::CreateTtl(_) => 1,
            B::Delete(_) | B::DeleteContainer(_) => -1,
            B::CloseSession(c) => -(c.paths_to_delete.len() as i64),
            B::Multi(v) => v.iter().map(count).sum(),
            _ => 0,
        }
    }
    txns.iter().map(|t| count(&t.body)).sum::<i64>().max(0) as usize
}

/// Can the log directory take writes again? Writes, syncs and removes a
/// small file.
pub fn probe(layout: &Layout) -> bool {
    use std::io::Write;
    let p = layout.log_dir.join(".rookeeper-probe");
    let ok = std::fs::File::create(&p)
        .and_then(|mut f| {
            f.write_all(&[0u8; 64 * 1024])?;
            f.sync_all()
        })
        .is_ok();
    let _ = std::fs::remove_file(&p);
    ok
}

/// The operator asked to give up a damaged log from the damaged entry on:
/// keep the txns before it, cut the file there, drop later files.
fn truncate_at_damage(
    dir: &Path,
    after: i64,
    file: &Path,
    offset: u64,
    reason: &str,
) -> anyhow::Result<txnlog::Replay> {
    let mut txns = Vec::new();
    for e in txnlog::LogReader::from_dir(dir, after)? {
        match e {
            Ok(e) => txns.push(e.txn),
            Err(_) => break,
        }
    }
    let start = txnlog::log_files(dir)?
        .into_iter()
        .find(|(_, p)| p == file)
        .map(|(z, _)| z)
        .ok_or_else(|| anyhow::anyhow!("{} is no longer among the logs", file.display()))?;
    for (z, p) in txnlog::log_files(dir)? {
        if z > start {
            std::fs::remove_file(&p).map_err(|e| StorageError::io(&p, e))?;
            warn!("removed {} (after the damaged entry)", p.display());
        }
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .map_err(|e| StorageError::io(file, e))?;
    f.set_len(offset).map_err(|e| StorageError::io(file, e))?;
    f.sync_all().map_err(|e| StorageError::io(file, e))?;
    warn!(
        "truncated {} at offset {offset} ({reason}) as asked by rookeeper.truncateCorruptLog; {} txns kept",
        file.display(),
        txns.len()
    );
    let last_zxid = txns.last().map_or(-1, |t| t.header.zxid);
    Ok(txnlog::Replay {
        txns,
        torn: None,
        skipped_tails: Vec::new(),
        last_zxid,
    })
}

/// `autopurge.purgeInterval` (hours; 0 = off) and `autopurge.snapRetainCount`:
/// purge at startup and then every interval, on a thread of its own.
pub fn start_autopurge(cfg: &Config, layout: &Layout) {
    let hours = cfg
        .raw
        .get("autopurge.purgeInterval")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if hours == 0 {
        return;
    }
    let retain = cfg
        .raw
        .get("autopurge.snapRetainCount")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(3);
    if retain < storage::purge::MIN_RETAIN {
        warn!("autopurge.snapRetainCount {retain} is below 3; keeping 3");
    }
    let layout = layout.clone();
    let spawned = thread::Builder::new()
        .name("autopurge".into())
        .spawn(move || loop {
            let valid = |p: &Path| snapshot::read_snapshot(p, true).is_ok();
            match storage::purge::purge(&layout.snap_dir, &layout.log_dir, retain, valid) {
                Ok(p) => {
                    for f in p.removed {
                        info!("autopurge removed {}", f.display());
                    }
                }
                Err(e) => warn!("autopurge failed: {e}"),
            }
            thread::sleep(std::time::Duration::from_secs(hours * 3600));
        });
    if let Err(e) = spawned {
        warn!("cannot start autopurge: {e}");
    }
}

/// Starts the log thread. `events` receives durability reports.
pub fn start(
    cfg: &Config,
    layout: &Layout,
    last_zxid: i64,
    events: mpsc::UnboundedSender<Event>,
) -> anyhow::Result<(Persister, thread::JoinHandle<()>)> {
    let prealloc = cfg
        .raw
        .get("preAllocSize")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(64 * 1024 * 1024, |kb| kb * 1024);
    let force_sync = !cfg
        .raw
        .get("forceSync")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("no"));
    if !force_sync {
        warn!("forceSync=no: acknowledged writes can be lost in a power failure");
    }
    let mut writer = TxnLogWriter::open(layout.log_dir.clone(), prealloc)?;
    if !force_sync {
        // Nothing waits for the disk then: appends stay in the page cache.
        writer = writer.buffered();
    }
    let (tx, rx) = std_mpsc::channel();
    let snap_dir = layout.snap_dir.clone();
    let comp = compression(cfg);
    let metrics = cfg.metrics.clone();
    let hold = cfg.hold_fsync.clone();
    let backlog = Arc::new(AtomicUsize::new(0));
    let counted = backlog.clone();
    let handle = thread::Builder::new()
        .name("txnlog".into())
        .spawn(move || {
            no_wakeup_preemption("txn log");
            log_loop(
                writer, rx, events, force_sync, snap_dir, comp, last_zxid, metrics, counted, hold,
            )
        })?;
    Ok((
        Persister {
            tx,
            turn: Default::default(),
            backlog,
        },
        handle,
    ))
}

/// Txns stop being gathered for one fsync past this many (a turn's
/// handover is taken whole, so a batch may pass it by up to one turn).
const GROUP_MAX: usize = 4096;

#[allow(clippy::too_many_arguments)]
fn log_loop(
    mut w: TxnLogWriter,
    rx: std_mpsc::Receiver<Vec<Queued>>,
    events: mpsc::UnboundedSender<Event>,
    force_sync: bool,
    snap_dir: PathBuf,
    comp: Compression,
    mut durable: i64,
    metrics: Arc<Metrics>,
    backlog: Arc<AtomicUsize>,
    hold: Arc<AtomicBool>,
) {
    // Joined however the loop ends: a stopped server leaves no snapshot
    // half written behind it (a restart would race it for the file).
    let mut snapper = Snapper::default();
    while let Ok(mut batch) = rx.recv() {
        // Group commit: everything already queued shares one fsync.
        while batch.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(mut m) => batch.append(&mut m),
                Err(_) => break,
            }
        }
        metrics
            .sync_processor_batch_size
            .observe(batch.len() as u64);
        // Txns queued, this batch included (not yet fsynced).
        metrics
            .sync_processor_queue_size
            .observe(backlog.load(Ordering::Acquire) as u64);
        let mut last = durable;
        let txns = batch
            .iter()
            .filter(|(m, _)| matches!(m, LogMsg::Txn(_) | LogMsg::Raw(..)))
            .count();
        metrics.sync_processor_request_queued.add(txns as u64);
        let mut queued = Vec::with_capacity(txns);
        let mut snaps = Vec::new();
        let mut result = Ok(());
        // One clock read per batch, not per txn: they are taken together.
        let taken = Instant::now();
        for (m, at) in batch {
            let is_txn = !matches!(m, LogMsg::Snapshot(..));
            match m {
                LogMsg::Txn(t) => {
                    last = t.header.zxid;
                    if let Err(e) = w.append(&t) {
                        result = Err(e);
                        break;
                    }
                }
                LogMsg::Raw(zxid, bytes) => {
                    last = zxid;
                    if let Err(e) = w.append_raw(zxid, &bytes) {
                        result = Err(e);
                        break;
                    }
                }
                LogMsg::Snapshot(tree, zxid) => {
                    // Everything before the snapshot point must be durable
                    // before the snapshot may stand for it.
                    if let Err(e) = w.sync(force_sync).and_then(|_| w.roll()) {
                        result = Err(e);
                        break;
                    }
                    snaps.push((tree, zxid));
                }
            }
            if is_txn {
                queued.push(at);
            }
        }
        while hold.load(Ordering::Acquire) {
            thread::sleep(Duration::from_millis(1));
        }
        let synced = Instant::now();
        let result = result.and_then(|_| w.sync(force_sync));
        let fsync_ms = synced.elapsed().as_millis() as u64;
        metrics.fsynctime.observe(fsync_ms);
        if fsync_ms > FSYNC_WARNING_MS {
            metrics.fsync_threshold_exceed_count.inc();
        }
        if let Err(e) = result {
            error!("cannot write the txn log: {e}; no further writes can be acknowledged");
            let _ = events.send(Event::Failed {
                last_durable: durable,
                reason: e.to_string(),
            });
            return;
        }
        // Recorded before the report: a client answered after it finds its
        // write counted. One lock per summary and batch, not per txn.
        let done = Instant::now();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        metrics
            .sync_processor_queue_flush_time_ms
            .observe(ms(done - synced));
        metrics.sync_processor_queue_time_ms.observe_all(
            queued
                .iter()
                .map(|&at| ms(taken.saturating_duration_since(at))),
        );
        // Per txn: from being taken to being written, its batch's.
        let appended = ms(synced - taken);
        metrics
            .sync_process_time
            .observe_all(queued.iter().map(|_| appended));
        metrics.sync_processor_queue_and_flush_time_ms.observe_all(
            queued
                .iter()
                .map(|&at| ms(done.saturating_duration_since(at))),
        );
        durable = last;
        // Before the report, so that the pipeline sees the room it makes.
        backlog.fetch_sub(txns, Ordering::AcqRel);
        if events.send(Event::Durable(durable)).is_err() {
            return;
        }
        // After the report, off the replies' path: the next batch may wait
        // for one chunk (~0.5 ms), and its sync then gains as much.
        if let Err(e) = w.zero_ahead() {
            warn!("{e}: no more zeros written ahead of the txn log's end in this file; appends go into its unwritten preallocation");
        }
        for (tree, zxid) in snaps {
            if snapper.busy() {
                warn!("too busy to snapshot, skipping (zxid 0x{zxid:x})");
                snapper.hurry();
                continue;
            }
            let dir = snap_dir.clone();
            let metrics = metrics.clone();
            snapper.start(move || {
                write_snap(&dir, &tree, zxid, comp, &metrics);
                drop(tree);
                release_free_memory();
            });
        }
    }
}

/// Snapshots are background work. On a busy core they competed with the
/// pipeline and the log writer as equals, and a snapshot of a 10 MB tree
/// every second (at 100k writes/s) put its 130-470 ms into the writes'
/// tail. At nice 10 it still ran whole time slices once its turn came:
/// standalone setData on one core, 6 alternating pairs, p99 8.0 ms with
/// snapshots at nice 10 against 5.7 ms as SCHED_IDLE (in another A/B, no
/// snapshots at all: 5.6 ms against 7.6). A SCHED_IDLE thread gives the
/// core up whenever anything else wakes, and runs in the gaps (fsync waits
/// leave plenty). Snapshots take longer, so more triggers find one still
/// running and are skipped, as Apache skips them (12 snapshots against 17
/// in 8 s). Where the policy is refused, nice 10 as before.
fn background_priority() {
    // SAFETY: plain syscalls on this thread's own id.
    unsafe {
        let tid = libc::gettid();
        // Kept across SCHED_IDLE, for `Snapper::hurry`.
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
        let p = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &p);
    }
}

/// The thread writing a snapshot, if any.
#[derive(Default)]
struct Snapper {
    handle: Option<thread::JoinHandle<()>>,
    /// Its thread id once it runs (0 before).
    tid: Arc<AtomicI32>,
    /// Whether `hurry` already tried for this thread.
    hurried: bool,
}

impl Snapper {
    /// Runs `work` on a new background-priority thread.
    fn start(&mut self, work: impl FnOnce() + Send + 'static) {
        let tid = Arc::new(AtomicI32::new(0));
        self.tid = tid.clone();
        self.hurried = false;
        self.handle = thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                background_priority();
                // SAFETY: this thread's own id; no memory passed.
                tid.store(unsafe { libc::gettid() }, Ordering::Release);
                work();
            })
            .ok();
    }

    fn busy(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// A snapshot still running when the next is due is being starved (a
    /// core saturated for that long, maybe by other processes): from here
    /// on it competes at nice 10 as a batch thread. Leaving SCHED_IDLE
    /// needs CAP_SYS_NICE or a RLIMIT_NICE that allows nice 10; without
    /// them it stays idle-class and finishes when the core has room.
    fn hurry(&mut self) {
        let tid = self.tid.load(Ordering::Acquire);
        if self.hurried || tid <= 0 || !self.busy() {
            return;
        }
        self.hurried = true;
        let p = libc::sched_param { sched_priority: 0 };
        // SAFETY: sets another thread's policy; no memory passed.
        if unsafe { libc::sched_setscheduler(tid, libc::SCHED_BATCH, &p) } != 0 {
            let e = std::io::Error::last_os_error();
            info!("snapshot thread stays SCHED_IDLE: {e}");
        }
    }
}

impl Drop for Snapper {
    // Joined however the log loop ends (see `log_loop`).
    fn drop(&mut self) {
        self.hurry();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Makes the calling thread SCHED_BATCH: woken, it does not preempt the
/// thread running on a busy core, but runs when that one waits for input
/// or at the next scheduler tick. For threads the pipeline wakes once per
/// turn to hand work over (the txn log's writer, a quorum link's writer):
/// as normal threads they preempted the pipeline mid-turn, before it could
/// send what the turn made or take the next one. Where a core is idle the
/// thread is woken there as before. Threads it starts inherit the policy.
///
/// Measured on one core, pairs alternating, 5 s each. The txn log: mixed
/// 90% and 50% reads gained 4-34% in throughput and lost 2-43% in p99 in
/// every one of 4 pairs each; setData gained throughput in 6 of 7 pairs (p99
/// in 4); watch fan-out p99 median 11.3 against 11.9 ms over 6 pairs; on a
/// 3-server ensemble under setData, making it a normal thread again cost
/// 15% of the writes (6 pairs), and making it one only while it fsyncs
/// cost 11% (6 pairs). The quorum writers, same ensemble: via the leader p99
/// 23.3 against 25.7 ms mean over 21 pairs, writes +2%; via a follower
/// even (24.1 against 23.7 ms, 12 pairs). Readers and writers both lost
/// (p99 25.7 ms over 5 rounds, against 24.4 ms with neither and 22.9 ms
/// with the writers alone): readers pass on acks the pipeline waits for.
pub(crate) fn no_wakeup_preemption(what: &str) {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain syscall on the calling thread (pid 0).
    unsafe {
        let p = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_BATCH, &p) != 0 {
            warn!(
                "cannot make the {what} thread SCHED_BATCH: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = what;
}

/// Hands freed heap pages back to the system. Nodes copied while a
/// snapshot held them, and the snapshot's table, leave holes glibc keeps
/// otherwise (RSS after loading 1M znodes: 650 MiB, against 430 MiB for the
/// same tree after a restart). A process with another allocator says how
/// it does this with [`set_release_free_memory`].
fn release_free_memory() {
    if let Some(release) = RELEASE_FREE_MEMORY.get() {
        release();
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

static RELEASE_FREE_MEMORY: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// How the process's global allocator hands freed pages back, for
/// allocators other than glibc's (the first call wins).
pub fn set_release_free_memory(release: fn()) {
    let _ = RELEASE_FREE_MEMORY.set(release);
}

fn write_snap(dir: &Path, tree: &DataTree, zxid: i64, comp: Compression, metrics: &Metrics) {
    let started = Instant::now();
    match snapshot::write_snapshot(dir, tree, zxid, comp) {
        Ok(p) => {
            metrics
                .snapshottime
                .observe(started.elapsed().as_millis() as u64);
            metrics.snapshot_written(zxid);
            info!(
                "wrote snapshot {} ({} znodes) in {:?}",
                p.display(),
                tree.node_count(),
                started.elapsed()
            )
        }
        Err(e) => error!("snapshot at zxid 0x{zxid:x} failed: {e}"),
    }
}

/// The scheduling policies of this process's threads whose name passes
/// `named` (from /proc), for the tests of `no_wakeup_preemption`'s users.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn thread_policies(named: impl Fn(&str) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let t = t.ok()?;
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let tid: i32 = t.file_name().to_str()?.parse().ok()?;
            // SAFETY: reads another thread's policy; no memory passed.
            named(comm.trim()).then(|| unsafe { libc::sched_getscheduler(tid) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::txn::{ErrorTxn, TxnBody, TxnHeader};

    fn txn(zxid: i64) -> Txn {
        Txn {
            header: TxnHeader {
                client_id: 1,
                cxid: zxid as i32,
                zxid,
                time: 0,
                op: jute::consts::op::ERROR,
            },
            body: TxnBody::Error(ErrorTxn { err: -101 }),
            digest: None,
        }
    }

    /// A log thread on a fresh dataDir under the temp dir.
    fn start_in(
        name: &str,
    ) -> (
        PathBuf,
        Layout,
        Persister,
        thread::JoinHandle<()>,
        mpsc::UnboundedReceiver<Event>,
    ) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        let layout = Layout::new(&cfg);
        std::fs::create_dir_all(&layout.log_dir).unwrap();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (p, thread) = start(&cfg, &layout, 0, ev_tx).unwrap();
        (dir, layout, p, thread, ev_rx)
    }

    /// A turn's txns reach the log when the pipeline flushes, and those of
    /// a last turn when the persister is dropped; all of them are on disk.
    #[test]
    fn txns_go_to_the_log_per_turn_and_on_drop() {
        let (dir, layout, mut p, thread, mut ev_rx) = start_in("rk-persist");
        for z in 1..=3 {
            p.append(txn(z));
        }
        assert_eq!(p.backlog(), 3);
        // Nothing reaches the log thread before the turn ends.
        thread::sleep(Duration::from_millis(100));
        assert!(ev_rx.try_recv().is_err());
        p.flush();
        assert!(matches!(ev_rx.blocking_recv(), Some(Event::Durable(3))));
        assert_eq!(p.backlog(), 0);
        p.append(txn(4));
        p.append(txn(5));
        drop(p);
        assert!(matches!(ev_rx.blocking_recv(), Some(Event::Durable(5))));
        thread.join().unwrap();
        let zxids: Vec<i64> = txnlog::replay(&layout.log_dir, 0, false)
            .unwrap()
            .txns
            .iter()
            .map(|t| t.header.zxid)
            .collect();
        assert_eq!(zxids, [1, 2, 3, 4, 5]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A snapshot thread runs as SCHED_IDLE at nice 10, and one still
    /// running when the next snapshot is due is lifted to SCHED_BATCH.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_snapshot_thread_is_idle_class_until_hurried() {
        let (go, wait) = std_mpsc::channel::<()>();
        let mut s = Snapper::default();
        s.start(move || {
            let _ = wait.recv();
        });
        while s.tid.load(Ordering::Acquire) == 0 {
            thread::yield_now();
        }
        let id = s.tid.load(Ordering::Acquire);
        // SAFETY: reads another thread's policy and nice value.
        let (policy, nice) = unsafe {
            (
                libc::sched_getscheduler(id),
                libc::getpriority(libc::PRIO_PROCESS, id as libc::id_t),
            )
        };
        assert_eq!((policy, nice), (libc::SCHED_IDLE, 10));
        assert!(s.busy());
        s.hurry();
        // Leaving SCHED_IDLE takes CAP_SYS_NICE (or a RLIMIT_NICE few set).
        // SAFETY: as above.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(unsafe { libc::sched_getscheduler(id) }, libc::SCHED_BATCH);
        }
        go.send(()).unwrap();
        s.handle.take().unwrap().join().unwrap();
        assert!(!s.busy());
    }

    /// The log thread runs as SCHED_BATCH (see `no_wakeup_preemption`).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_log_thread_does_not_preempt_on_wakeup() {
        let (dir, _layout, mut p, thread, mut ev_rx) = start_in("rk-batch");
        // Once a txn is durable the thread is past its setup.
        p.append(txn(1));
        p.flush();
        assert!(matches!(ev_rx.blocking_recv(), Some(Event::Durable(1))));
        let policies = thread_policies(|comm| comm == "txnlog");
        assert!(policies.contains(&libc::SCHED_BATCH), "{policies:?}");
        drop(p);
        thread.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
