//! The workloads: pipelined read/write/create+delete/mixed load, the
//! zk-latencies phase sequence, watch fan-out and session churn.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use jute::consts::event;

use crate::conn::{Conn, Reply, IO_TIMEOUT};
use crate::stats::{Recorder, RunResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// getData of existing nodes
    Read,
    /// setData of existing nodes
    Write,
    /// create a node, then delete it
    CreateDelete,
    /// getData or setData, --read-pct percent reads
    Mixed,
    /// zk-smoketest's zk-latencies sequence, per phase
    ZkLatencies,
    /// W sessions watch one node; one set; time until every event arrives
    WatchFanout,
    /// connect, create an ephemeral, close, at --rate per second
    Churn,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::CreateDelete => "create-delete",
            Workload::Mixed => "mixed",
            Workload::ZkLatencies => "zk-latencies",
            Workload::WatchFanout => "watch-fanout",
            Workload::Churn => "churn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    /// our pipelining jute session (the default)
    Raw,
    /// the zookeeper-client crate (read/write/mixed only): to check that the
    /// raw driver is not what limits the rate
    Client,
}

#[derive(Debug, Clone, Args)]
pub struct RunOpts {
    /// Servers, host:port[,host:port...]; sessions are spread round-robin.
    #[arg(long, value_delimiter = ',', required = true)]
    pub servers: Vec<String>,
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    /// Requests outstanding per session (pipelined).
    #[arg(long, default_value_t = 16)]
    pub depth: usize,
    /// Payload bytes of created/set nodes (the ZooKeeper paper used 1 KiB).
    #[arg(long, default_value_t = 1024)]
    pub payload: usize,
    /// Nodes read/written (read, write, mixed), or N of zk-latencies.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Percentage of reads in the mixed workload.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub read_pct: u32,
    /// Watching sessions of watch-fanout.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// M of zk-latencies: sessions that each set an exists watch on all N nodes.
    #[arg(long, default_value_t = 4)]
    pub watch_sessions: usize,
    /// Session churn cycles started per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 30000)]
    pub session_timeout_ms: i32,
    #[arg(long, value_enum, default_value_t = Driver::Raw)]
    pub driver: Driver,
    /// Parent of the benchmark's nodes (created if missing).
    #[arg(long, default_value = "/rkbench")]
    pub root: String,
    /// Print the result as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Write every measured request of a read, write, mixed or
    /// create-delete run (raw driver) to this file, one line each:
    /// `session send_us latency_us op`, sends in microseconds from the
    /// start of the measured window, in send order. The first line,
    /// `# window_start_unix_us N`, places that start on the wall clock, to
    /// line requests up with server logs. For finding when a tail happens.
    #[arg(long)]
    pub trace: Option<std::path::PathBuf>,
    /// Server processes whose CPU time to sample over the measured window
    /// (set by `bench compare`, which knows the pids).
    #[arg(skip)]
    pub cpu_pids: Vec<u32>,
    /// The CPUs whose steal counts (those the servers and this generator
    /// are pinned to); empty: every CPU.
    #[arg(skip)]
    pub steal_cpus: Vec<usize>,
}

/// utime+stime of a process in seconds, from /proc/<pid>/stat.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    // USER_HZ: 100 on every Linux architecture in use; getconf confirms.
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn cpu_total(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&p| cpu_secs(p)).sum()
}

/// CPU seconds used in the measured window: the servers' (when their pids
/// are known) and this load generator's own, which shows whether the
/// generator had room to spare; and the CPU time the hypervisor stole.
#[derive(Default, Clone, Copy)]
struct CpuWindow {
    server: Option<f64>,
    bench: Option<f64>,
    steal_pct: Option<f64>,
}

/// Counters read at one end of a window.
struct CpuSnap {
    server: Option<f64>,
    bench: Option<f64>,
    /// (steal, all) ticks of each CPU counted, from /proc/stat.
    cpus: Vec<(u64, u64)>,
}

impl CpuSnap {
    fn take(pids: &[u32], steal_cpus: &[usize]) -> CpuSnap {
        CpuSnap {
            server: cpu_total(pids),
            bench: cpu_secs(std::process::id()),
            cpus: cpu_ticks(steal_cpus),
        }
    }

    fn until(&self, end: &CpuSnap, pids: &[u32]) -> CpuWindow {
        CpuWindow {
            server: if pids.is_empty() {
                None
            } else {
                self.server.zip(end.server).map(|(a, b)| b - a)
            },
            bench: self.bench.zip(end.bench).map(|(a, b)| b - a),
            steal_pct: max_steal_pct(&self.cpus, &end.cpus),
        }
    }
}

/// (steal, all) ticks of the CPUs in `only` (every CPU if empty), from the
/// `cpuN` lines of /proc/stat.
pub(crate) fn cpu_ticks(only: &[usize]) -> Vec<(u64, u64)> {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    parse_cpu_ticks(&s, only)
}

fn parse_cpu_ticks(stat: &str, only: &[usize]) -> Vec<(u64, u64)> {
    stat.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let cpu: usize = f.next()?.strip_prefix("cpu")?.parse().ok()?;
            if !only.is_empty() && !only.contains(&cpu) {
                return None;
            }
            // user nice system idle iowait irq softirq steal [guest guest_nice]:
            // guest time is already counted in user, so only the first eight add up.
            let t: Vec<u64> = f.take(8).map(|x| x.parse().unwrap_or(0)).collect();
            Some((t.get(7).copied().unwrap_or(0), t.iter().sum()))
        })
        .collect()
}

/// The largest share of its time any one CPU lost to steal (time the
/// hypervisor ran something else) between two readings, in percent. A
/// server or load generator that is not running for a stretch shows that
/// stretch as latency, whoever's server it is.
pub(crate) fn max_steal_pct(a: &[(u64, u64)], b: &[(u64, u64)]) -> Option<f64> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    a.iter()
        .zip(b)
        .filter_map(|(&(s0, t0), &(s1, t1))| {
            let all = t1.checked_sub(t0)?;
            (all > 0).then(|| s1.saturating_sub(s0) as f64 * 100.0 / all as f64)
        })
        .reduce(f64::max)
}

/// Samples CPU times at `from` and at `to`.
fn spawn_cpu_sampler(
    o: &RunOpts,
    from: Instant,
    to: Instant,
) -> tokio::task::JoinHandle<CpuWindow> {
    let (pids, cpus) = (o.cpu_pids.clone(), o.steal_cpus.clone());
    tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let a = CpuSnap::take(&pids, &cpus);
        tokio::time::sleep_until(to.into()).await;
        a.until(&CpuSnap::take(&pids, &cpus), &pids)
    })
}

impl RunResult {
    fn set_cpu(&mut self, w: CpuWindow) {
        self.server_cpu_secs = w.server;
        self.bench_cpu_secs = w.bench;
        self.steal_pct = w.steal_pct;
    }
}

/// Live counters for the progress line.
#[derive(Default)]
pub struct Progress {
    ops: AtomicU64,
    errors: AtomicU64,
}

/// Small fast PRNG (xorshift64*): picking nodes must not cost more than the
/// request does.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

fn unique_tag() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", std::process::id(), t.as_micros() % 1_000_000_000)
}

/// Creates `path` unless it exists.
async fn ensure_node(c: &mut Conn, path: &str) -> Result<()> {
    let x = c.push_create(path, &Bytes::new(), false);
    c.flush().await?;
    let r = c.reply_to(x).await?;
    if r.err != 0 && r.err != jute::ErrorCode::NodeExists.code() {
        bail!("create {path}: error {}", r.err);
    }
    Ok(())
}

/// Sends `count` requests made by `push` with at most `depth` outstanding;
/// records each one's latency and error under `row`. Returns the phase time.
pub async fn pipeline(
    c: &mut Conn,
    count: usize,
    depth: usize,
    rec: &mut Recorder,
    row: &str,
    mut push: impl FnMut(&mut Conn, usize) -> i32,
) -> Result<Duration> {
    let start = Instant::now();
    let mut inflight = std::collections::VecDeque::with_capacity(depth);
    let mut next = 0;
    while next < count || !inflight.is_empty() {
        while next < count && inflight.len() < depth.max(1) {
            let x = push(c, next);
            inflight.push_back((x, Instant::now()));
            next += 1;
        }
        c.flush().await?;
        loop {
            let r = c.read().await?;
            if r.xid < 0 {
                continue;
            }
            let Some((x, t0)) = inflight.pop_front() else {
                bail!("unexpected reply xid {}", r.xid);
            };
            if x != r.xid {
                bail!("reply xid {} out of order (expected {x})", r.xid);
            }
            if r.err != 0 {
                rec.error(row, r.err);
            } else {
                rec.row(row).record(t0.elapsed());
            }
            if !c.frame_buffered() {
                break;
            }
        }
    }
    let d = start.elapsed();
    rec.row(row).secs = Some(d.as_secs_f64());
    Ok(d)
}

fn node_path(base: &str, i: usize) -> String {
    format!("{base}/n{i:07}")
}

/// Creates the data set of read/write/mixed: `nodes` nodes of `payload`
/// bytes under a fresh base path.
async fn populate(o: &RunOpts, base: &str, payload: &Bytes) -> Result<()> {
    let mut c = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
    ensure_node(&mut c, &o.root).await?;
    ensure_node(&mut c, base).await?;
    let mut rec = Recorder::default();
    pipeline(&mut c, o.nodes, 256, &mut rec, "setup", |c, i| {
        c.push_create(&node_path(base, i), payload, false)
    })
    .await?;
    if rec.row("setup").errors > 0 {
        bail!("populating {base} failed: {:?}", rec.error_codes);
    }
    c.close().await
}

/// Deletes what `populate` made.
async fn cleanup(o: &RunOpts, base: &str, nodes: usize) -> Result<()> {
    let mut c = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
    let mut rec = Recorder::default();
    pipeline(&mut c, nodes, 256, &mut rec, "cleanup", |c, i| {
        c.push_delete(&node_path(base, i))
    })
    .await?;
    let x = c.push_delete(base);
    c.flush().await?;
    c.reply_to(x).await?;
    c.close().await
}

fn spawn_progress(
    p: Arc<Progress>,
    stop: Arc<AtomicBool>,
    measure_from: Instant,
    label: String,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if quiet {
            return;
        }
        let tty = std::io::stderr().is_terminal();
        let mut last = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let ops = p.ops.load(Ordering::Relaxed);
            let errs = p.errors.load(Ordering::Relaxed);
            let now = Instant::now();
            let phase = if now < measure_from {
                "warm-up".to_owned()
            } else {
                format!("{:5.1}s", (now - measure_from).as_secs_f64())
            };
            let line = format!(
                "[{label} {phase}] {:>9} ops/s  total {ops}  errors {errs}",
                ops - last
            );
            last = ops;
            if tty {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
        }
        if tty {
            eprintln!();
        }
    })
}

#[derive(Clone, Copy)]
enum OpKind {
    Get,
    Set,
    Create,
    Delete,
}

impl OpKind {
    fn row(self) -> &'static str {
        match self {
            OpKind::Get => "getData",
            OpKind::Set => "setData",
            OpKind::Create => "create",
            OpKind::Delete => "delete",
        }
    }
}

struct LoadCtx {
    base: String,
    payload: Bytes,
    nodes: usize,
    depth: usize,
    read_pct: u32,
    workload: Workload,
    measure_from: Instant,
    end: Instant,
    progress: Arc<Progress>,
    trace: bool,
}

/// One measured request for `--trace`: session, send time (µs into the
/// measured window), latency (µs), operation.
type Traced = (u32, u64, u64, OpKind);

/// One session of the closed-loop workloads: keeps `depth` requests in
/// flight until the end, then drains. Only requests sent inside the
/// measured window are recorded.
async fn load_session(
    mut c: Conn,
    sid: usize,
    ctx: Arc<LoadCtx>,
) -> Result<(Recorder, Vec<Traced>)> {
    let mut rec = Recorder::default();
    let mut traced = Vec::new();
    let mut rng = Rng::new(sid as u64 + 1);
    let mut inflight = std::collections::VecDeque::with_capacity(ctx.depth);
    let mut seq = 0usize;
    loop {
        let now = Instant::now();
        while inflight.len() < ctx.depth && now < ctx.end {
            let (x, k) = match ctx.workload {
                Workload::Read => (
                    c.push_get(&node_path(&ctx.base, rng.below(ctx.nodes)), false),
                    OpKind::Get,
                ),
                Workload::Write => (
                    c.push_set(&node_path(&ctx.base, rng.below(ctx.nodes)), &ctx.payload),
                    OpKind::Set,
                ),
                Workload::Mixed => {
                    let p = node_path(&ctx.base, rng.below(ctx.nodes));
                    if (rng.below(100) as u32) < ctx.read_pct {
                        (c.push_get(&p, false), OpKind::Get)
                    } else {
                        (c.push_set(&p, &ctx.payload), OpKind::Set)
                    }
                }
                Workload::CreateDelete => {
                    // Even steps create s<sid>-<k>, odd steps delete it; a
                    // session's requests are applied in order, so the delete
                    // may be sent before the create's reply.
                    let p = format!("{}/s{sid}-{}", ctx.base, seq / 2);
                    seq += 1;
                    if seq % 2 == 1 {
                        (c.push_create(&p, &ctx.payload, false), OpKind::Create)
                    } else {
                        (c.push_delete(&p), OpKind::Delete)
                    }
                }
                _ => unreachable!("not a closed-loop workload"),
            };
            inflight.push_back((x, now, k));
        }
        c.flush().await?;
        if inflight.is_empty() {
            break;
        }
        loop {
            let r = c.read().await?;
            if r.xid < 0 {
                continue;
            }
            let Some((x, t0, k)) = inflight.pop_front() else {
                bail!("unexpected reply xid {}", r.xid);
            };
            if x != r.xid {
                bail!("reply xid {} out of order (expected {x})", r.xid);
            }
            if t0 >= ctx.measure_from && t0 < ctx.end {
                if r.err != 0 {
                    rec.error(k.row(), r.err);
                    ctx.progress.errors.fetch_add(1, Ordering::Relaxed);
                } else {
                    let took = t0.elapsed();
                    rec.row(k.row()).record(took);
                    if ctx.trace {
                        let sent = (t0 - ctx.measure_from).as_micros() as u64;
                        traced.push((sid as u32, sent, took.as_micros() as u64, k));
                    }
                }
            }
            ctx.progress.ops.fetch_add(1, Ordering::Relaxed);
            if !c.frame_buffered() {
                break;
            }
        }
    }
    // A create-delete session that stopped after a create leaves its node.
    if ctx.workload == Workload::CreateDelete && seq % 2 == 1 {
        let p = format!("{}/s{sid}-{}", ctx.base, seq / 2);
        let x = c.push_delete(&p);
        c.flush().await?;
        c.reply_to(x).await?;
    }
    c.close().await?;
    Ok((rec, traced))
}

/// Writes `--trace`'s file: the requests of every session in send order.
fn write_trace(path: &std::path::Path, measure_from: Instant, mut rows: Vec<Traced>) -> Result<()> {
    use std::io::Write;
    rows.sort_unstable_by_key(|r| (r.1, r.0));
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(measure_from.elapsed());
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    writeln!(w, "# window_start_unix_us {}", unix.as_micros())?;
    for (sid, sent, took, k) in rows {
        writeln!(w, "{sid} {sent} {took} {}", k.row())?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The same loop on the zookeeper-client crate (reads and writes only).
async fn client_session(sid: usize, server: String, ctx: Arc<LoadCtx>) -> Result<Recorder> {
    use std::future::Future;
    use std::pin::Pin;
    type Fut =
        Pin<Box<dyn Future<Output = std::result::Result<(), zookeeper_client::Error>> + Send>>;
    let client = zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(30))
        .connect(&server)
        .await
        .with_context(|| format!("zookeeper-client connect to {server}"))?;
    client.sync(&ctx.base).await?;
    let mut rec = Recorder::default();
    let mut rng = Rng::new(sid as u64 + 1);
    let mut inflight: std::collections::VecDeque<(Fut, Instant, OpKind)> = Default::default();
    loop {
        let now = Instant::now();
        while inflight.len() < ctx.depth && now < ctx.end {
            let p = node_path(&ctx.base, rng.below(ctx.nodes));
            let read = match ctx.workload {
                Workload::Read => true,
                Workload::Write => false,
                _ => (rng.below(100) as u32) < ctx.read_pct,
            };
            // The crate sends the request when the method is called; the
            // future only waits for the reply.
            if read {
                let f = client.get_data(&p);
                inflight.push_back((
                    Box::pin(async move { f.await.map(|_| ()) }),
                    now,
                    OpKind::Get,
                ));
            } else {
                let f = client.set_data(&p, &ctx.payload, None);
                inflight.push_back((
                    Box::pin(async move { f.await.map(|_| ()) }),
                    now,
                    OpKind::Set,
                ));
            }
        }
        let Some((f, t0, k)) = inflight.pop_front() else {
            break;
        };
        let res = tokio::time::timeout(IO_TIMEOUT, f)
            .await
            .context("zookeeper-client request timed out")?;
        if t0 >= ctx.measure_from && t0 < ctx.end {
            match res {
                Ok(()) => rec.row(k.row()).record(t0.elapsed()),
                Err(e) => {
                    rec.failure(k.row(), &e.to_string());
                    ctx.progress.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        ctx.progress.ops.fetch_add(1, Ordering::Relaxed);
    }
    Ok(rec)
}

fn base_result(o: &RunOpts, secs: f64) -> RunResult {
    RunResult {
        workload: o.workload.name().to_owned(),
        servers: o.servers.clone(),
        sessions: o.sessions,
        depth: o.depth,
        payload: o.payload,
        nodes: o.nodes,
        read_pct: (o.workload == Workload::Mixed).then_some(o.read_pct),
        secs,
        ops: 0,
        errors: 0,
        throughput: 0.0,
        latency_us: Default::default(),
        rows: vec![],
        error_codes: Default::default(),
        notes: vec![],
        server_cpu_secs: None,
        bench_cpu_secs: None,
        steal_pct: None,
        show_total: true,
    }
}

fn payload(o: &RunOpts) -> Bytes {
    Bytes::from(
        (0..o.payload)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Runs one workload and returns its result.
pub async fn run(o: &RunOpts) -> Result<RunResult> {
    if o.servers.is_empty() {
        bail!("--servers: at least one host:port");
    }
    if o.sessions == 0 || o.depth == 0 {
        bail!("--sessions and --depth must be at least 1");
    }
    if o.duration <= 0.0 || o.warmup < 0.0 {
        bail!("--duration must be positive and --warmup not negative");
    }
    let closed = matches!(
        o.workload,
        Workload::Read | Workload::Write | Workload::Mixed | Workload::CreateDelete
    );
    if o.trace.is_some() && !(closed && o.driver == Driver::Raw) {
        bail!("--trace traces read, write, mixed and create-delete runs of the raw driver");
    }
    match o.workload {
        Workload::Read | Workload::Write | Workload::Mixed | Workload::CreateDelete => {
            closed_loop(o).await
        }
        Workload::ZkLatencies => zk_latencies(o).await,
        Workload::WatchFanout => watch_fanout(o).await,
        Workload::Churn => churn(o).await,
    }
}

async fn closed_loop(o: &RunOpts) -> Result<RunResult> {
    if o.driver == Driver::Client && o.workload == Workload::CreateDelete {
        bail!("--driver client runs read, write and mixed only");
    }
    if o.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let base = format!("{}/{}-{}", o.root, o.workload.name(), unique_tag());
    let data = payload(o);
    let needs_data = o.workload != Workload::CreateDelete;
    if needs_data {
        populate(o, &base, &data).await?;
    } else {
        let mut c = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
        ensure_node(&mut c, &o.root).await?;
        ensure_node(&mut c, &base).await?;
        c.close().await?;
    }
    // Sessions connect before the clock starts.
    let mut conns = Vec::new();
    if o.driver == Driver::Raw {
        for i in 0..o.sessions {
            let s = &o.servers[i % o.servers.len()];
            let mut c = Conn::connect(s, o.session_timeout_ms).await?;
            c.sync(&base).await?;
            conns.push(c);
        }
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let ctx = Arc::new(LoadCtx {
        base: base.clone(),
        payload: data,
        nodes: o.nodes,
        depth: o.depth,
        read_pct: o.read_pct,
        workload: o.workload,
        measure_from,
        end: measure_from + Duration::from_secs_f64(o.duration),
        progress: Arc::default(),
        trace: o.trace.is_some(),
    });
    let cpu = spawn_cpu_sampler(o, measure_from, ctx.end);
    let stop = Arc::new(AtomicBool::new(false));
    let prog = spawn_progress(
        ctx.progress.clone(),
        stop.clone(),
        measure_from,
        o.workload.name().to_owned(),
        o.quiet,
    );
    let mut tasks = Vec::new();
    if o.driver == Driver::Raw {
        for (i, c) in conns.into_iter().enumerate() {
            tasks.push(tokio::spawn(load_session(c, i, ctx.clone())));
        }
    } else {
        for i in 0..o.sessions {
            let s = o.servers[i % o.servers.len()].clone();
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(async move {
                client_session(i, s, ctx).await.map(|r| (r, Vec::new()))
            }));
        }
    }
    let mut rec = Recorder::default();
    let mut traced = Vec::new();
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok((r, mut t))) => {
                rec.merge(&r);
                traced.append(&mut t);
            }
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(format!("session task: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = prog.await;
    for f in &failures {
        rec.failure("session", "session failed");
        eprintln!("session failed: {f}");
    }
    if let Some(path) = &o.trace {
        write_trace(path, measure_from, traced)?;
    }
    if needs_data {
        cleanup(o, &base, o.nodes).await?;
    } else {
        cleanup(o, &base, 0).await?;
    }
    let mut r = RunResult::build(base_result(o, o.duration), &rec, &[]);
    r.set_cpu(cpu.await.unwrap_or_default());
    if o.driver == Driver::Client {
        r.notes.push("driver: zookeeper-client crate".into());
    }
    if let Some(f) = failures.first() {
        r.notes
            .push(format!("{} session(s) failed, first: {f}", failures.len()));
    }
    Ok(r)
}

/// zk-smoketest's zk-latencies sequence on each server in turn: create N,
/// set N, get N, delete N, create N ephemeral, M sessions set an exists
/// watch on each (N×M watches), delete the N, wait for every event. Each
/// phase is pipelined `depth` deep and timed.
async fn zk_latencies(o: &RunOpts) -> Result<RunResult> {
    let n = o.nodes;
    let m = o.watch_sessions;
    let data = payload(o);
    let mut rec = Recorder::default();
    let many = o.servers.len() > 1;
    let started = Instant::now();
    let cpu0 = CpuSnap::take(&o.cpu_pids, &o.steal_cpus);
    for server in &o.servers {
        let pre = if many {
            format!("{server} ")
        } else {
            String::new()
        };
        let row = |s: &str| format!("{pre}{s}");
        let base = format!("{}/zk-latencies-{}", o.root, unique_tag());
        let mut c = Conn::connect(server, o.session_timeout_ms).await?;
        ensure_node(&mut c, &o.root).await?;
        ensure_node(&mut c, &base).await?;
        let p = |i: usize| node_path(&base, i);
        let d = o.depth;
        pipeline(&mut c, n, d, &mut rec, &row("create"), |c, i| {
            c.push_create(&p(i), &data, false)
        })
        .await?;
        pipeline(&mut c, n, d, &mut rec, &row("set"), |c, i| {
            c.push_set(&p(i), &data)
        })
        .await?;
        pipeline(&mut c, n, d, &mut rec, &row("get"), |c, i| {
            c.push_get(&p(i), false)
        })
        .await?;
        pipeline(&mut c, n, d, &mut rec, &row("delete"), |c, i| {
            c.push_delete(&p(i))
        })
        .await?;
        pipeline(&mut c, n, d, &mut rec, &row("create ephemeral"), |c, i| {
            c.push_create(&p(i), &data, true)
        })
        .await?;
        // M watching sessions, each on every node.
        let t_watch = Instant::now();
        let mut watchers = Vec::new();
        for _ in 0..m {
            let mut w = Conn::connect(server, o.session_timeout_ms).await?;
            let mut wrec = Recorder::default();
            pipeline(&mut w, n, d, &mut wrec, &row("exists+watch"), |c, i| {
                c.push_exists(&p(i), true)
            })
            .await?;
            rec.merge(&wrec);
            watchers.push(w);
        }
        rec.row(&row("exists+watch")).secs = Some(t_watch.elapsed().as_secs_f64());
        let t_del = Instant::now();
        let mut waits = Vec::new();
        for mut w in watchers {
            waits.push(tokio::spawn(async move {
                let mut got = 0;
                let mut lat = Vec::with_capacity(n);
                while got < n {
                    let r = w.read().await?;
                    if r.is_notification() && r.event()?.event_type == event::NODE_DELETED {
                        got += 1;
                        lat.push(t_del.elapsed());
                    }
                }
                w.close().await?;
                anyhow::Ok(lat)
            }));
        }
        pipeline(&mut c, n, d, &mut rec, &row("delete watched"), |c, i| {
            c.push_delete(&p(i))
        })
        .await?;
        let mut last = Duration::ZERO;
        for wt in waits {
            let lat = wt.await.context("watcher task")??;
            for l in lat {
                last = last.max(l);
                rec.row(&row("watch event (since delete start)")).record(l);
            }
        }
        rec.row(&row("watch event (since delete start)")).secs = Some(last.as_secs_f64());
        let x = c.push_delete(&base);
        c.flush().await?;
        c.reply_to(x).await?;
        c.close().await?;
    }
    let cpu1 = CpuSnap::take(&o.cpu_pids, &o.steal_cpus);
    // The headline counts requests; watch events are not requests.
    let requests: Vec<String> = rec
        .rows
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| !n.contains("watch event"))
        .collect();
    let requests: Vec<&str> = requests.iter().map(String::as_str).collect();
    let mut r = RunResult::build(
        base_result(o, started.elapsed().as_secs_f64()),
        &rec,
        &requests,
    );
    r.set_cpu(cpu0.until(&cpu1, &o.cpu_pids));
    r.sessions = 1 + m;
    r.show_total = false;
    r.notes.push(format!(
        "N={n} nodes, M={m} watching sessions (N×M={} watches); each phase {} deep; a row's ops/s is count / phase time",
        n * m,
        o.depth
    ));
    Ok(r)
}

/// Watch fan-out's headline rows: arrival times are the kernel's receive
/// stamps, so that they measure the server's delivery and not also the
/// generator's lag in reading a thousand sockets on one core (once a server
/// sends the events at once, the larger part: the last event arrived ~8 ms
/// after the set, and was read ~12-19 ms after it).
const FANOUT_EVENT: &str = "event arrived (each watcher)";
const FANOUT_ROUND: &str = "round (all W events arrived)";

/// Watch fan-out: `watchers` sessions each hold a data watch on one node;
/// a setter changes it; the round's time is until the last event arrives.
/// Rounds repeat (watchers re-arm) until the duration is over.
async fn watch_fanout(o: &RunOpts) -> Result<RunResult> {
    use tokio::sync::mpsc;
    let base = format!("{}/fanout-{}", o.root, unique_tag());
    let node = format!("{base}/target");
    let data = payload(o);
    let mut setter = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
    ensure_node(&mut setter, &o.root).await?;
    ensure_node(&mut setter, &base).await?;
    let x = setter.push_create(&node, &data, false);
    setter.flush().await?;
    let r = setter.reply_to(x).await?;
    if r.err != 0 {
        bail!("create {node}: error {}", r.err);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (armed_tx, mut armed_rx) = mpsc::unbounded_channel::<()>();
    // Each event: when the watcher's task saw it, and when the kernel had
    // received it (None if the socket gave no stamp).
    let (event_tx, mut event_rx) =
        mpsc::unbounded_channel::<Result<(Instant, Option<SystemTime>)>>();
    let mut conns = Vec::new();
    for i in 0..o.watchers {
        let s = &o.servers[i % o.servers.len()];
        let mut c = Conn::connect(s, o.session_timeout_ms).await?;
        c.sync(&node).await?;
        c.stamp_arrivals()?;
        conns.push(c);
    }
    let mut tasks = Vec::new();
    for mut w in conns {
        let (armed_tx, event_tx, stop, node) = (
            armed_tx.clone(),
            event_tx.clone(),
            stop.clone(),
            node.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res: Result<()> = async {
                loop {
                    let x = w.push_get(&node, true);
                    w.flush().await?;
                    let r = w.reply_to(x).await?;
                    if r.err != 0 {
                        bail!("getData {node} with watch: error {}", r.err);
                    }
                    let _ = armed_tx.send(());
                    loop {
                        let r: Reply = w.read_within(Duration::from_secs(120)).await?;
                        if r.is_notification() && r.event()?.event_type == event::NODE_DATA_CHANGED
                        {
                            break;
                        }
                    }
                    let _ = event_tx.send(Ok((Instant::now(), w.last_arrival())));
                    if stop.load(Ordering::Relaxed) {
                        return w.close().await;
                    }
                }
            }
            .await;
            if let Err(e) = res {
                let _ = event_tx.send(Err(e));
            }
        }));
    }
    drop((armed_tx, event_tx));
    let mut rec = Recorder::default();
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.duration);
    let cpu = spawn_cpu_sampler(o, measure_from, end);
    let progress = Arc::new(Progress::default());
    let pstop = Arc::new(AtomicBool::new(false));
    let prog = spawn_progress(
        progress.clone(),
        pstop.clone(),
        measure_from,
        "watch-fanout".into(),
        o.quiet,
    );
    let mut failure = None;
    'rounds: loop {
        for _ in 0..o.watchers {
            match tokio::time::timeout(IO_TIMEOUT, armed_rx.recv()).await {
                Ok(Some(())) => {}
                _ => {
                    failure = Some("a watcher did not re-arm in time".to_owned());
                    break 'rounds;
                }
            }
        }
        let last = Instant::now() >= end;
        if last {
            stop.store(true, Ordering::Relaxed);
        }
        let t0 = Instant::now();
        let t0_wall = SystemTime::now();
        let x = setter.push_set(&node, &data);
        setter.flush().await?;
        let r = setter.reply_to(x).await?;
        let measured = t0 >= measure_from && !last;
        if measured {
            rec.row("setData").record(t0.elapsed());
        }
        if r.err != 0 {
            rec.error("setData", r.err);
        }
        let (mut seen_last, mut arrived_last) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..o.watchers {
            match tokio::time::timeout(IO_TIMEOUT, event_rx.recv()).await {
                Ok(Some(Ok((seen, at)))) => {
                    let seen = seen - t0;
                    // Without a kernel stamp (or if the wall clock stepped),
                    // arrival falls back to when the task saw the event.
                    let arrived = at
                        .and_then(|at| at.duration_since(t0_wall).ok())
                        .map_or(seen, |a| a.min(seen));
                    seen_last = seen_last.max(seen);
                    arrived_last = arrived_last.max(arrived);
                    if measured {
                        rec.row(FANOUT_EVENT).record(arrived);
                        rec.row("event seen by generator").record(seen);
                    }
                }
                Ok(Some(Err(e))) => {
                    failure = Some(format!("watcher failed: {e:#}"));
                    break 'rounds;
                }
                _ => {
                    failure = Some("watch events missing after 30 s".to_owned());
                    break 'rounds;
                }
            }
        }
        if measured {
            rec.row(FANOUT_ROUND).record(arrived_last);
            rec.row("round seen by generator").record(seen_last);
            progress.ops.fetch_add(1, Ordering::Relaxed);
        }
        if last {
            break;
        }
    }
    pstop.store(true, Ordering::Relaxed);
    let _ = prog.await;
    for t in &tasks {
        t.abort();
    }
    if let Some(f) = &failure {
        rec.failure(FANOUT_ROUND, f);
    }
    let x = setter.push_delete(&node);
    setter.flush().await?;
    setter.reply_to(x).await?;
    let x = setter.push_delete(&base);
    setter.flush().await?;
    setter.reply_to(x).await?;
    setter.close().await?;
    let mut r = RunResult::build(base_result(o, o.duration), &rec, &[FANOUT_ROUND]);
    r.sessions = o.watchers;
    r.depth = 1;
    r.set_cpu(cpu.await.unwrap_or_default());
    r.notes.push(format!(
        "{} watching sessions; throughput = rounds/s; latency = set sent -> the last event \
         received by the load generator's kernel (SO_TIMESTAMPNS); 'seen by generator' rows \
         add the time the generator took to read each socket",
        o.watchers
    ));
    if let Some(f) = failure {
        r.notes.push(f);
    }
    Ok(r)
}

/// Session churn: at `rate` per second, a new session connects, creates an
/// ephemeral node and closes. At most `sessions` cycles run at once; a
/// cycle that would exceed that is counted as skipped (the server is not
/// keeping up with the rate).
async fn churn(o: &RunOpts) -> Result<RunResult> {
    if o.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let base = format!("{}/churn-{}", o.root, unique_tag());
    {
        let mut c = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
        ensure_node(&mut c, &o.root).await?;
        ensure_node(&mut c, &base).await?;
        c.close().await?;
    }
    let data = payload(o);
    let sem = Arc::new(tokio::sync::Semaphore::new(o.sessions));
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.duration);
    let cpu = spawn_cpu_sampler(o, measure_from, end);
    let progress = Arc::new(Progress::default());
    let pstop = Arc::new(AtomicBool::new(false));
    let prog = spawn_progress(
        progress.clone(),
        pstop.clone(),
        measure_from,
        "churn".into(),
        o.quiet,
    );
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut skipped = 0u64;
    let mut k = 0usize;
    loop {
        tick.tick().await;
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            if t0 >= measure_from {
                skipped += 1;
            }
            continue;
        };
        let server = o.servers[k % o.servers.len()].clone();
        let path = format!("{base}/e{k}");
        k += 1;
        let (data, progress, timeout) = (data.clone(), progress.clone(), o.session_timeout_ms);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let mut rec = Recorder::default();
            let measured = t0 >= measure_from;
            let res: Result<()> = async {
                let mut c = Conn::connect(&server, timeout).await?;
                let t1 = Instant::now();
                let x = c.push_create(&path, &data, true);
                c.flush().await?;
                let r = c.reply_to(x).await?;
                let t2 = Instant::now();
                if r.err != 0 {
                    rec.error("create ephemeral", r.err);
                }
                c.close().await?;
                let t3 = Instant::now();
                if measured {
                    rec.row("connect").record(t1 - t0);
                    rec.row("create ephemeral").record(t2 - t1);
                    rec.row("close").record(t3 - t2);
                    rec.row("cycle").record(t3 - t0);
                }
                Ok(())
            }
            .await;
            if let Err(e) = res {
                rec.failure("cycle", &format!("{e:#}"));
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
            progress.ops.fetch_add(1, Ordering::Relaxed);
            rec
        }));
    }
    let mut rec = Recorder::default();
    for t in tasks {
        match t.await {
            Ok(r) => rec.merge(&r),
            Err(e) => rec.failure("cycle", &format!("task: {e}")),
        }
    }
    pstop.store(true, Ordering::Relaxed);
    let _ = prog.await;
    {
        let mut c = Conn::connect(&o.servers[0], o.session_timeout_ms).await?;
        let x = c.push_delete(&base);
        c.flush().await?;
        let r = c.reply_to(x).await?;
        if r.err != 0 {
            rec.error("cleanup", r.err);
        }
        c.close().await?;
    }
    let mut r = RunResult::build(base_result(o, o.duration), &rec, &["cycle"]);
    r.set_cpu(cpu.await.unwrap_or_default());
    r.notes.push(format!(
        "target rate {}/s, at most {} cycles at once; {skipped} cycles skipped because {} were still running",
        o.rate, o.sessions, o.sessions
    ));
    if skipped > 0 {
        r.errors += skipped;
        r.error_codes
            .insert("skipped (behind rate)".into(), skipped);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 10 0 5 40 7 0
cpu0 60 0 30 380 5 0 3 20 7 0
cpu1 40 0 20 420 5 0 2 20 0 0
intr 12345 0 0
ctxt 999
";

    #[test]
    fn cpu_ticks_come_per_cpu_without_guest_time() {
        // The aggregate line is skipped; guest (7) is inside user already.
        assert_eq!(parse_cpu_ticks(STAT, &[]), vec![(20, 498), (20, 507)]);
        assert_eq!(parse_cpu_ticks(STAT, &[1]), vec![(20, 507)]);
        assert_eq!(parse_cpu_ticks("garbage\n", &[]), vec![]);
    }

    #[test]
    fn steal_is_the_worst_cpus_share_of_the_window() {
        let a = [(20, 500), (20, 500)];
        // CPU 0: 10 of 100 ticks stolen; CPU 1: 30 of 100.
        let b = [(30, 600), (50, 600)];
        assert_eq!(max_steal_pct(&a, &b), Some(30.0));
        // No time passed, or CPUs that do not line up: no figure.
        assert_eq!(max_steal_pct(&a, &a), None);
        assert_eq!(max_steal_pct(&a, &b[..1]), None);
        assert_eq!(max_steal_pct(&[], &[]), None);
    }
}
