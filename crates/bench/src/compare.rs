//! `rookeeper bench compare`: rookeeper vs Apache ZooKeeper 3.8 (Debian's
//! package) with equivalent settings. Both servers (or 3-server ensembles)
//! run side by side on loopback; each workload runs against A, then B, then
//! A, then B..., so drift (other load, thermal, page cache) hits both. Then
//! resource figures (RSS per znode, restart time with many znodes, CPU per
//! operation), and a Markdown report with SVG charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Args;
use serde::Serialize;

use crate::conn::{four_letter, Conn};
use crate::failover;
use crate::stats::{Recorder, RunResult};
use crate::workload::{self, Driver, RunOpts, Workload};

const DEBIAN_JARS: &[&str] = &[
    "zookeeper",
    "netty-codec",
    "netty-resolver",
    "servlet-api",
    "slf4j-log4j12",
    "log4j-1.2",
];

#[derive(Debug, Clone, Args)]
pub struct CompareOpts {
    /// The rookeeper binary (default: this one).
    #[arg(long)]
    pub rookeeper: Option<PathBuf>,
    /// Java for Apache ZooKeeper.
    #[arg(long, default_value = "java")]
    pub java: String,
    /// Apache's classpath (default: Debian's jars in /usr/share/java).
    #[arg(long)]
    pub apache_cp: Option<String>,
    /// Apache's fixed heap (-Xms and -Xmx).
    #[arg(long, default_value = "1g")]
    pub heap: String,
    /// Where both servers keep their dataDirs (one disk for both).
    #[arg(long, default_value = "target/bench-work")]
    pub workdir: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    /// Report name (default: today's date, UTC).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value_t = 2000)]
    pub tick_time: u32,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// A/B rounds per workload.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    #[arg(long, default_value_t = 32)]
    pub sessions: usize,
    #[arg(long, default_value_t = 16)]
    pub depth: usize,
    #[arg(long, default_value_t = 1024)]
    pub payload: usize,
    #[arg(long, default_value_t = 10000)]
    pub nodes: usize,
    /// Read percentages of the mixed workload.
    #[arg(long, value_delimiter = ',', default_value = "0,50,90,99,100")]
    pub read_ratios: Vec<u32>,
    /// N of zk-latencies.
    #[arg(long, default_value_t = 10000)]
    pub zkl_nodes: usize,
    /// M of zk-latencies.
    #[arg(long, default_value_t = 4)]
    pub watch_sessions: usize,
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    #[arg(long, default_value_t = 200.0)]
    pub churn_rate: f64,
    /// Workloads to run (mixed runs once per read ratio).
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "read,write,create-delete,mixed,zk-latencies,watch-fanout,churn"
    )]
    pub workloads: Vec<Workload>,
    /// Znode counts (100-byte nodes) for the memory figures; the largest is
    /// also the restart test's size. Empty: no resource figures.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub znodes: Vec<usize>,
    /// No resource figures (memory per znode, restart time).
    #[arg(long)]
    pub no_resources: bool,
    /// 3-server ensembles on loopback instead of standalone servers.
    #[arg(long)]
    pub ensemble: bool,
    /// Ensemble mode: which members the sessions of read, write,
    /// create-delete and mixed runs connect to; each target is a run of its
    /// own ("all" spreads sessions over the three members).
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "all,leader,follower"
    )]
    pub targets: Vec<Target>,
    /// Ensemble mode: leader kills per kind for the failover figures
    /// (alternating A/B); 0 skips them.
    #[arg(long, default_value_t = 3)]
    pub failovers: usize,
    /// Ensemble mode: no workloads, only the failover figures (on fresh
    /// ensembles, so with short txn logs).
    #[arg(long, requires = "ensemble")]
    pub failover_only: bool,
    /// Pin the servers to these CPUs (taskset -c LIST), e.g. "0-3"; the
    /// harness then pins itself to the other CPUs it may use, so that load
    /// generator and server do not compete.
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// The CPUs the harness pinned itself to (set by `pin_harness`).
    #[arg(skip)]
    pub harness_cpus: Option<Vec<usize>>,
    /// The servers to run (e.g. only rookeeper, for a smoke run).
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "rookeeper,apache"
    )]
    pub kinds: Vec<Kind>,
    /// Marks the report as a short validation run, not a measurement.
    #[arg(long)]
    pub validation: bool,
    /// Free text added to the report's conditions.
    #[arg(long)]
    pub note: Option<String>,
    /// A run in whose measured window any CPU the servers or the load
    /// generator use lost more than this share of its time to steal (the
    /// hypervisor running other guests) is run again; the report lists the
    /// runs set aside. Steal comes in bursts of seconds, so A/B alternation
    /// does not spread it evenly over the two servers.
    #[arg(long, default_value_t = 1.0)]
    pub max_steal: f64,
    /// How many times a run over --max-steal is repeated before its last
    /// attempt is kept anyway (marked in the report).
    #[arg(long, default_value_t = 2)]
    pub steal_retries: usize,
    /// Before each attempt, wait (up to this many seconds) for a second
    /// in which steal stays within --max-steal: bursts last tens of
    /// seconds, so starting inside one mostly wastes the attempt.
    #[arg(long, default_value_t = 60.0)]
    pub steal_wait: f64,
}

/// The members an ensemble run's sessions connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Target {
    /// round-robin over every member
    All,
    /// the member whose `srvr` says `Mode: leader`
    Leader,
    /// one member whose `srvr` says `Mode: follower`
    Follower,
}

impl Target {
    /// Suffix of a run's label ("" for all members, as before targets).
    fn suffix(self) -> &'static str {
        match self {
            Target::All => "",
            Target::Leader => " via leader",
            Target::Follower => " via follower",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
pub enum Kind {
    Rookeeper,
    /// Apache ZooKeeper 3.8
    Apache,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Rookeeper => "rookeeper",
            Kind::Apache => "apache-3.8",
        }
    }
}

/// A loopback port that is free now and lies below the kernel's ephemeral
/// range. `bind(0)` hands out ports from that range, which every outgoing
/// connection draws from too: a port picked that way for a server started
/// later (an ensemble's quorum or election port) can be taken by another
/// server's connect in between, and that server then fails to bind.
pub fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    const FLOOR: u32 = 10_000;
    static START: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .min(65536);
    if low < FLOOR + 1000 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        return Ok(l.local_addr()?.port());
    }
    let span = low - FLOOR;
    // Processes start at different places, so that concurrent test
    // processes rarely probe the same ports.
    let start = *START.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        (std::process::id().wrapping_mul(2_654_435_761) ^ t) % span
    });
    for _ in 0..span {
        let port = FLOOR + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return Ok(port as u16);
        }
    }
    bail!("no free loopback port below {low}")
}

pub(crate) struct Member {
    pub(crate) child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    cfg: PathBuf,
}

/// One server or a 3-server ensemble of one kind.
pub(crate) struct Servers {
    pub(crate) kind: Kind,
    pub(crate) members: Vec<Member>,
    cmd: Vec<String>,
}

impl Servers {
    /// Writes configs and data dirs (fresh) for `n` members.
    fn prepare(kind: Kind, n: usize, base: &Path, o: &CompareOpts, exe: &Path) -> Result<Servers> {
        let root = base.join(kind.name());
        if root.exists() {
            fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
        }
        let mut ports = Vec::new();
        for _ in 0..n {
            ports.push((free_port()?, free_port()?, free_port()?));
        }
        let mut members = Vec::new();
        for (i, (client, quorum, election)) in ports.iter().enumerate() {
            let dir = root.join(format!("s{}", i + 1));
            fs::create_dir_all(dir.join("data"))?;
            let mut cfg = format!(
                "tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\n\
                 clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nmaxSessionTimeout=120000\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\nforceSync=yes\n",
                o.tick_time,
                dir.join("data").display()
            );
            if n > 1 {
                for (j, (_, q, e)) in ports.iter().enumerate() {
                    let _ = writeln!(cfg, "server.{}=127.0.0.1:{q}:{e}", j + 1);
                }
                fs::write(dir.join("data/myid"), format!("{}\n", i + 1))?;
            }
            let _ = (quorum, election);
            let cfg_path = dir.join("zoo.cfg");
            fs::write(&cfg_path, cfg)?;
            members.push(Member {
                child: None,
                port: *client,
                dir,
                cfg: cfg_path,
            });
        }
        let cmd = match kind {
            Kind::Rookeeper => vec![exe.display().to_string(), "server".into()],
            Kind::Apache => {
                let l4j = root.join("log4j.properties");
                fs::write(
                    &l4j,
                    "log4j.rootLogger=INFO, CONSOLE\n\
                     log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
                     log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n\
                     log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1} - %m%n\n",
                )?;
                let cp = o.apache_cp.clone().unwrap_or_else(|| {
                    DEBIAN_JARS
                        .iter()
                        .map(|j| format!("/usr/share/java/{j}.jar"))
                        .collect::<Vec<_>>()
                        .join(":")
                });
                vec![
                    o.java.clone(),
                    format!("-Xms{}", o.heap),
                    format!("-Xmx{}", o.heap),
                    "-cp".into(),
                    cp,
                    format!("-Dlog4j.configuration=file:{}", l4j.display()),
                    "-Dzookeeper.admin.enableServer=false".into(),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
                ]
            }
        };
        let cmd = match &o.server_cpus {
            Some(cpus) => ["taskset".to_owned(), "-c".into(), cpus.clone()]
                .into_iter()
                .chain(cmd)
                .collect(),
            None => cmd,
        };
        Ok(Servers { kind, members, cmd })
    }

    fn start(&mut self) -> Result<()> {
        for i in 0..self.members.len() {
            self.start_member(i)?;
        }
        Ok(())
    }

    /// Spawns member `i` (its log appends to `server.log` in its dir).
    pub(crate) fn start_member(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.dir.join("server.log"))?;
        let child = Command::new(&self.cmd[0])
            .args(&self.cmd[1..])
            .arg(&m.cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.cmd[0]))?;
        m.child = Some(child);
        Ok(())
    }

    /// Waits until every member answers `srvr` as serving (Apache opens its
    /// port before loading its data; listening is not enough).
    pub(crate) async fn wait_serving(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        for i in 0..self.members.len() {
            let addr = format!("127.0.0.1:{}", self.members[i].port);
            loop {
                if let Some(c) = self.members[i].child.as_mut() {
                    if let Some(st) = c.try_wait()? {
                        bail!(
                            "{} member {} exited ({st}) before serving; log tail:\n{}",
                            self.kind.name(),
                            i + 1,
                            self.log_tail(i)
                        );
                    }
                }
                if let Ok(s) = four_letter(&addr, "srvr").await {
                    if s.starts_with("Zookeeper version:") {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} member {} not serving within {limit:?}; log tail:\n{}",
                        self.kind.name(),
                        i + 1,
                        self.log_tail(i)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    fn log_tail(&self, i: usize) -> String {
        let s = fs::read_to_string(self.members[i].dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub(crate) fn addrs(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect()
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref().map(|c| c.id()))
            .collect()
    }

    /// SIGTERM, then SIGKILL after 20 s.
    fn stop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    match c.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => {
                            let _ = c.kill();
                            let _ = c.wait();
                            break;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `Mode:` line of a member's `srvr` answer ("leader", "follower",
/// "standalone"...), or None if it does not answer as serving.
pub(crate) async fn mode(addr: &str) -> Option<String> {
    let out = four_letter(addr, "srvr").await.ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_owned())
}

/// In ensemble mode every member must say it is a leader or a follower: a
/// server that ignored the server.N lines and runs standalone would make
/// the figures meaningless. Returns the leader's index.
pub(crate) async fn check_quorum(s: &Servers) -> Result<usize> {
    let mut leaders = Vec::new();
    for (i, a) in s.addrs().iter().enumerate() {
        match mode(a).await.as_deref() {
            Some("leader") => leaders.push(i),
            Some("follower") => {}
            m => bail!(
                "member {a} reports mode {}, not leader/follower",
                m.unwrap_or("unknown (not serving)")
            ),
        }
    }
    match leaders[..] {
        [l] => Ok(l),
        _ => bail!("{} leaders among the members", leaders.len()),
    }
}

/// The addresses a run's sessions connect to: every member, or the one the
/// target names (asked at run time: a failover may have moved the leader).
async fn target_addrs(s: &Servers, t: Target) -> Result<Vec<String>> {
    let all = s.addrs();
    if t == Target::All {
        return Ok(all);
    }
    let leader = check_quorum(s).await?;
    let i = match t {
        Target::Leader => leader,
        _ => (0..all.len())
            .find(|&i| i != leader)
            .context("no follower in the ensemble")?,
    };
    Ok(vec![all[i].clone()])
}

/// VmRSS and VmHWM of a process, in bytes.
fn mem(pid: u32) -> Option<(u64, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let l = s.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = l.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[derive(Debug, Clone, Serialize)]
struct Run {
    label: String,
    kind: Kind,
    round: usize,
    /// CPU the other kind's (idle) servers used during this run (whole
    /// run, setup included), in % of one core.
    others_cpu_pct: f64,
    /// Earlier attempts of this run set aside for CPU steal over
    /// --max-steal.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    set_aside: Vec<RunResult>,
    result: Option<RunResult>,
    error: Option<String>,
}

impl Run {
    /// Whether the kept attempt itself is over the steal limit (every
    /// retry was too).
    fn stolen(&self, max: f64) -> bool {
        self.result
            .as_ref()
            .and_then(|r| r.steal_pct)
            .is_some_and(|p| p > max)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
struct Resources {
    baseline_rss: u64,
    /// (znodes, VmRSS, VmHWM) after loading that many.
    loaded: Vec<(usize, u64, u64)>,
    load_secs: f64,
    restart_znodes: usize,
    restart_secs: Option<f64>,
    rss_after_restart: Option<u64>,
    error: Option<String>,
}

/// The date (UTC) as YYYY-MM-DD, from the system clock.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = (secs / 86400) as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Installs Debian's zookeeper package if Apache's jar is missing.
fn ensure_apache(o: &CompareOpts) -> Result<()> {
    if o.apache_cp.is_some() || Path::new("/usr/share/java/zookeeper.jar").exists() {
        return Ok(());
    }
    eprintln!("Apache ZooKeeper not found; installing Debian's zookeeper package");
    let ok = Command::new("apt-get").arg("update").status()?.success()
        && Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "zookeeper",
                "default-jre-headless",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?
            .success();
    if !ok {
        bail!("apt-get install zookeeper failed");
    }
    Ok(())
}

/// The CPUs servers and load generator are pinned to; empty (every CPU)
/// when unpinned.
fn steal_cpus(o: &CompareOpts) -> Vec<usize> {
    match (&o.server_cpus, &o.harness_cpus) {
        (Some(s), Some(h)) => {
            let mut v = parse_cpu_list(s).unwrap_or_default();
            v.extend(h);
            v.sort_unstable();
            v.dedup();
            v
        }
        _ => Vec::new(),
    }
}

/// Waits until a one-second window has at most `max` % steal on every CPU
/// in `cpus` (all if empty), or `limit` has passed; returns the time waited.
async fn wait_for_quiet(cpus: &[usize], max: f64, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut a = workload::cpu_ticks(cpus);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let b = workload::cpu_ticks(cpus);
        let quiet = workload::max_steal_pct(&a, &b).is_none_or(|p| p <= max);
        if quiet || start.elapsed() >= limit {
            return start.elapsed();
        }
        a = b;
    }
}

/// One attempt of a run on `s`'s `target` members, and the CPU the other
/// kind's idle servers (`others`) used meanwhile, in % of one core.
async fn attempt(
    s: &Servers,
    target: Target,
    ro: &mut RunOpts,
    others: &[u32],
) -> (Result<RunResult>, f64) {
    let cpu = || -> f64 { others.iter().filter_map(|&p| workload::cpu_secs(p)).sum() };
    let before = cpu();
    let t = Instant::now();
    let r = match target_addrs(s, target).await {
        Ok(a) => {
            ro.servers = a;
            workload::run(ro).await
        }
        Err(e) => Err(e.context("finding the target member")),
    };
    (r, (cpu() - before) * 100.0 / t.elapsed().as_secs_f64())
}

/// The runs, in order: (label, options, target). In ensemble mode the
/// closed-loop workloads run once per `--targets` entry.
fn plan(o: &CompareOpts) -> Vec<(String, RunOpts, Target)> {
    let base = RunOpts {
        servers: vec![],
        workload: Workload::Read,
        duration: o.duration,
        warmup: o.warmup,
        sessions: o.sessions,
        depth: o.depth,
        payload: o.payload,
        nodes: o.nodes,
        read_pct: 90,
        watchers: o.watchers,
        watch_sessions: o.watch_sessions,
        rate: o.churn_rate,
        session_timeout_ms: 30000,
        driver: Driver::Raw,
        root: "/rkbench".into(),
        json: false,
        quiet: true,
        trace: None,
        cpu_pids: vec![],
        steal_cpus: steal_cpus(o),
    };
    let mut v = Vec::new();
    let targets = if o.ensemble && !o.targets.is_empty() {
        o.targets.clone()
    } else {
        vec![Target::All]
    };
    for &w in &o.workloads {
        let mut r = base.clone();
        r.workload = w;
        let mut entries = Vec::new();
        match w {
            Workload::Mixed => {
                for &p in &o.read_ratios {
                    let mut r = r.clone();
                    r.read_pct = p.min(100);
                    entries.push((format!("mixed {p}% reads"), r));
                }
            }
            Workload::ZkLatencies => {
                r.nodes = o.zkl_nodes;
                v.push((w.name().to_owned(), r, Target::All));
            }
            Workload::WatchFanout | Workload::Churn => {
                v.push((w.name().to_owned(), r, Target::All))
            }
            Workload::Read | Workload::Write | Workload::CreateDelete => {
                entries.push((w.name().to_owned(), r))
            }
        }
        for (label, r) in entries {
            for &t in &targets {
                v.push((format!("{label}{}", t.suffix()), r.clone(), t));
            }
        }
    }
    v
}

/// Creates `from..to` nodes of `size` bytes under /rkres/p<i/1000>/n<i%1000>
/// through several pipelined sessions.
async fn load_znodes(addr: &str, from: usize, to: usize, size: usize) -> Result<()> {
    let data = Bytes::from(vec![b'z'; size]);
    let mut c = Conn::connect(addr, 30000).await?;
    let mut rec = Recorder::default();
    let parents_needed = to.div_ceil(1000);
    let first_parent = from / 1000;
    if from == 0 {
        let x = c.push_create("/rkres", &Bytes::new(), false);
        c.flush().await?;
        c.reply_to(x).await?;
    }
    workload::pipeline(
        &mut c,
        parents_needed - first_parent,
        256,
        &mut rec,
        "parents",
        |c, i| {
            c.push_create(
                &format!("/rkres/p{}", first_parent + i),
                &Bytes::new(),
                false,
            )
        },
    )
    .await?;
    c.close().await?;
    let sessions = 4;
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let (addr, data) = (addr.to_owned(), data.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(&addr, 30000).await?;
            let mut rec = Recorder::default();
            let mine: Vec<usize> = (from..to).filter(|i| i % sessions == s).collect();
            workload::pipeline(&mut c, mine.len(), 512, &mut rec, "load", |c, k| {
                let i = mine[k];
                c.push_create(&format!("/rkres/p{}/n{}", i / 1000, i % 1000), &data, false)
            })
            .await?;
            c.close().await?;
            if rec.row("load").errors > 0 {
                bail!("loading znodes: {:?}", rec.error_codes);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn resources(kind: Kind, o: &CompareOpts, exe: &Path, base: &Path) -> Result<Resources> {
    let mut res = Resources::default();
    let mut counts = o.znodes.clone();
    counts.sort_unstable();
    counts.dedup();
    let Some(&max) = counts.last() else {
        return Ok(res);
    };
    let mut s = Servers::prepare(kind, 1, &base.join("resources"), o, exe)?;
    s.start()?;
    s.wait_serving(Duration::from_secs(120)).await?;
    let pid = s.pids()[0];
    // Let the JVM (or us) settle before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    res.baseline_rss = mem(pid).map(|m| m.0).unwrap_or(0);
    let addr = s.addrs()[0].clone();
    let t = Instant::now();
    let mut have = 0;
    for &n in &counts {
        eprintln!("  {}: loading {n} znodes of 100 bytes", kind.name());
        load_znodes(&addr, have, n, 100).await?;
        have = n;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (rss, hwm) = mem(pid).unwrap_or((0, 0));
        res.loaded.push((n, rss, hwm));
    }
    res.load_secs = t.elapsed().as_secs_f64();
    // Restart on the same dataDir: spawn to serving.
    s.stop();
    res.restart_znodes = max;
    let t = Instant::now();
    s.start()?;
    s.wait_serving(Duration::from_secs(600)).await?;
    res.restart_secs = Some(t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(1)).await;
    res.rss_after_restart = s.pids().first().and_then(|&p| mem(p)).map(|m| m.0);
    s.stop();
    Ok(res)
}

/// Entry point of `rookeeper bench compare`.
pub async fn run(o: CompareOpts) -> Result<()> {
    let exe = match &o.rookeeper {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    if o.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let kinds: Vec<Kind> = [Kind::Rookeeper, Kind::Apache]
        .into_iter()
        .filter(|k| o.kinds.contains(k))
        .collect();
    if kinds.contains(&Kind::Apache) {
        ensure_apache(&o)?;
    }
    fs::create_dir_all(&o.workdir)?;
    fs::create_dir_all(&o.out)?;
    let work = fs::canonicalize(&o.workdir)?;
    let started = Instant::now();
    let load_before = sh("cut -d' ' -f1-3 /proc/loadavg");
    let n = if o.ensemble { 3 } else { 1 };
    let mut notes: Vec<String> = Vec::new();
    let mut up: Vec<Servers> = Vec::new();
    let mut versions = BTreeMap::new();
    for &k in &kinds {
        let mut s = Servers::prepare(k, n, &work, &o, &exe)?;
        s.start()?;
        let mut ready = s.wait_serving(Duration::from_secs(60)).await;
        if ready.is_ok() && o.ensemble {
            ready = check_quorum(&s).await.map(|_| ());
        }
        match ready {
            Ok(()) => {
                let v = four_letter(&s.addrs()[0], "srvr").await.unwrap_or_default();
                versions.insert(k, v.lines().next().unwrap_or("").to_owned());
                up.push(s);
            }
            Err(e) => {
                let what = if o.ensemble { "ensemble" } else { "server" };
                eprintln!("{} {what} did not start: {e:#}", k.name());
                notes.push(format!(
                    "{} {what} did not come up, so its runs are missing: {}",
                    k.name(),
                    e.to_string().lines().next().unwrap_or("")
                ));
            }
        }
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut steal_waited = Duration::ZERO;
    let items = if o.failover_only {
        Vec::new()
    } else {
        plan(&o)
    };
    for (label, ro, target) in &items {
        for round in 0..o.rounds {
            for s in &up {
                let mut ro = ro.clone();
                ro.cpu_pids = s.pids();
                eprintln!("[{label}] round {} on {}", round + 1, s.kind.name());
                // The previous run's dirty pages (the other kind's txn
                // logs) are written back now, not in this run's window.
                let _ = Command::new("sync").status();
                let others: Vec<u32> = up
                    .iter()
                    .filter(|x| x.kind != s.kind)
                    .flat_map(|x| x.pids())
                    .collect();
                let mut set_aside = Vec::new();
                let (r, others_cpu_pct) = loop {
                    let waited = wait_for_quiet(
                        &ro.steal_cpus,
                        o.max_steal,
                        Duration::from_secs_f64(o.steal_wait),
                    )
                    .await;
                    steal_waited += waited;
                    if waited > Duration::from_secs(2) {
                        eprintln!(
                            "    waited {:.0} s for CPU steal to settle",
                            waited.as_secs_f64()
                        );
                    }
                    let (r, others_cpu_pct) = attempt(s, *target, &mut ro, &others).await;
                    let Ok(res) = &r else {
                        break (r, others_cpu_pct);
                    };
                    let steal = res.steal_pct.unwrap_or(0.0);
                    eprintln!(
                        "    {:.0} ops/s, p99 {:.2} ms, errors {}; idle other kind used {others_cpu_pct:.0}% of a core; CPU steal up to {steal:.1}%",
                        res.throughput,
                        res.latency_us.p99 as f64 / 1000.0,
                        res.errors
                    );
                    if steal <= o.max_steal || set_aside.len() >= o.steal_retries {
                        break (r, others_cpu_pct);
                    }
                    eprintln!("    steal over {}%: set aside, run again", o.max_steal);
                    set_aside.extend(r.ok());
                    let _ = Command::new("sync").status();
                };
                runs.push(Run {
                    label: label.clone(),
                    kind: s.kind,
                    round,
                    others_cpu_pct,
                    set_aside,
                    error: r.as_ref().err().map(|e| format!("{e:#}")),
                    result: r.ok(),
                });
            }
        }
    }
    let mut failovers: Vec<failover::Sample> = Vec::new();
    if o.ensemble && o.failovers > 0 {
        // A/B alternation again; a kind whose ensemble broke is not killed
        // further.
        let mut broken = vec![false; up.len()];
        for rep in 0..o.failovers {
            for (j, s) in up.iter_mut().enumerate() {
                if broken[j] {
                    continue;
                }
                eprintln!("[failover] {} on {}", rep + 1, s.kind.name());
                let f = match failover::sample(s, rep).await {
                    Ok(f) => f,
                    Err(e) => failover::Sample::failed(s.kind, rep, format!("{e:#}")),
                };
                match (&f.write_ms, &f.error) {
                    (Some(ms), None) => eprintln!(
                        "    leader {} killed; write after {ms:.0} ms; new leader {:?}",
                        f.killed, f.new_leader
                    ),
                    _ => {
                        eprintln!("    failed: {}", f.error.as_deref().unwrap_or(""));
                        broken[j] = f.rejoin_secs.is_none();
                    }
                }
                failovers.push(f);
            }
        }
    }
    for mut s in up {
        s.stop();
    }
    let mut res = BTreeMap::new();
    if !o.znodes.is_empty() && !o.no_resources {
        for &k in &kinds {
            eprintln!("resources: {}", k.name());
            let r = resources(k, &o, &exe, &work)
                .await
                .unwrap_or_else(|e| Resources {
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                });
            res.insert(k, r);
        }
    }
    let name = o.name.clone().unwrap_or_else(today);
    let md = o.out.join(format!("{name}.md"));
    let name = if md.exists() && o.name.is_none() {
        format!("{name}-{}", sh("date -u +%H%M%S"))
    } else {
        name
    };
    let report = Report {
        o: &o,
        name: &name,
        runs: &runs,
        failovers: &failovers,
        res: &res,
        notes: &notes,
        versions: &versions,
        load_before,
        wall: started.elapsed(),
        steal_waited,
        exe: exe.clone(),
    };
    let path = report.write()?;
    println!("report: {}", path.display());
    Ok(())
}

struct Report<'a> {
    o: &'a CompareOpts,
    name: &'a str,
    runs: &'a [Run],
    failovers: &'a [failover::Sample],
    res: &'a BTreeMap<Kind, Resources>,
    notes: &'a [String],
    versions: &'a BTreeMap<Kind, String>,
    load_before: String,
    wall: Duration,
    /// Time spent before attempts waiting for steal to settle.
    steal_waited: Duration,
    exe: PathBuf,
}

/// Figures of one (workload, server) over its rounds.
#[derive(Default, Clone)]
struct Agg {
    tputs: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    p999: Vec<f64>,
    max: Vec<f64>,
    errors: u64,
    cpu_per_100k: Vec<f64>,
    bench_cpu_pct: Vec<f64>,
    failed: Vec<String>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "–".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

impl Report<'_> {
    fn agg(&self) -> BTreeMap<(String, Kind), Agg> {
        let mut m: BTreeMap<(String, Kind), Agg> = BTreeMap::new();
        for r in self.runs {
            let a = m.entry((r.label.clone(), r.kind)).or_default();
            match &r.result {
                Some(x) => {
                    a.tputs.push(x.throughput);
                    let l = &x.latency_us;
                    a.p50.push(l.p50 as f64 / 1000.0);
                    a.p99.push(l.p99 as f64 / 1000.0);
                    a.p999.push(l.p999 as f64 / 1000.0);
                    a.max.push(l.max as f64 / 1000.0);
                    a.errors += x.errors;
                    if let Some(c) = x.bench_cpu_secs {
                        if x.secs > 0.0 {
                            a.bench_cpu_pct.push(c * 100.0 / x.secs);
                        }
                    }
                    if let Some(c) = x.server_cpu_secs {
                        if x.ops > 0 {
                            a.cpu_per_100k.push(c * 1e5 / x.ops as f64);
                        }
                    }
                }
                None => a
                    .failed
                    .push(r.error.clone().unwrap_or_else(|| "failed".into())),
            }
        }
        m
    }

    /// The failover section: method, per-kind medians, every sample.
    fn write_failover(&self, md: &mut String) {
        let _ = writeln!(md, "\n## Failover\n");
        let _ = writeln!(
            md,
            "Each repetition: with all three members serving and one leader, the leader \
             (found by `srvr` Mode) gets SIGKILL; from that instant a client of the two \
             survivors starts a write attempt every 20 ms, alternating between them (a new \
             connection and session, then setData of one node; each attempt gives up after \
             3 s). **Failover** is the time from the SIGKILL to the first successful setData \
             reply (resolution 20 ms). **Leader seen** is the time until a survivor's `srvr` \
             first says `Mode: leader` (polled every 20 ms). The killed member is then \
             restarted and the ensemble re-forms (**rejoin**) before the next kill. Kills \
             alternate A/B: rookeeper, Apache, rookeeper, Apache...\n"
        );
        let kinds = [Kind::Rookeeper, Kind::Apache];
        let values = |k: Kind, f: fn(&failover::Sample) -> Option<f64>| -> Vec<f64> {
            self.failovers
                .iter()
                .filter(|s| s.kind == k && s.error.is_none())
                .filter_map(f)
                .collect()
        };
        let _ = writeln!(
            md,
            "| server | failover median (ms) | each (ms) | leader seen median (ms) | rejoin median (s) | failed |\n|---|---:|---|---:|---:|---:|"
        );
        let mut medians = Vec::new();
        for k in kinds {
            let w = values(k, |s| s.write_ms);
            if self.failovers.iter().all(|s| s.kind != k) {
                continue;
            }
            let each = w
                .iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ");
            let failed = self
                .failovers
                .iter()
                .filter(|s| s.kind == k && s.error.is_some())
                .count();
            let m = failover::median(&w);
            medians.push(m);
            let _ = writeln!(
                md,
                "| {} | {} | {each} | {} | {} | {failed} |",
                k.name(),
                fmt_opt(m, 0),
                fmt_opt(failover::median(&values(k, |s| s.leader_ms)), 0),
                fmt_opt(failover::median(&values(k, |s| s.rejoin_secs)), 1),
            );
        }
        if let [a, b] = medians[..] {
            let _ = writeln!(
                md,
                "\nFailover median, rookeeper / Apache: {} (below 1 favours rookeeper).",
                ratio(a, b)
            );
        }
        let _ = writeln!(
            md,
            "\n| # | server | killed at (UTC) | killed myid | new leader myid | failover (ms) | leader seen (ms) | attempts | rejoin (s) | error |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---|"
        );
        for s in self.failovers {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.rep + 1,
                s.kind.name(),
                s.killed_at,
                s.killed,
                s.new_leader
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "–".into()),
                fmt_opt(s.write_ms, 0),
                fmt_opt(s.leader_ms, 0),
                s.attempts,
                fmt_opt(s.rejoin_secs, 1),
                s.error.as_deref().unwrap_or("").replace(['\n', '|'], " "),
            );
        }
    }

    /// Throughput and latency tables, ratios, charts, per-step tables and
    /// failed runs.
    fn write_workloads(&self, md: &mut String, dir: &Path) -> Result<()> {
        let o = self.o;
        let agg = self.agg();
        let labels: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for r in self.runs {
                if !v.contains(&r.label) {
                    v.push(r.label.clone());
                }
            }
            v
        };
        let kinds = [Kind::Rookeeper, Kind::Apache];
        let _ = writeln!(md, "## Throughput and latency\n");
        let _ = writeln!(
            md,
            "Throughput is the mean over rounds (min–max in brackets); latencies (ms) are the \
             means over rounds of each run's percentile; CPU is the server processes' user+system \
             time in the measured window per 100k operations (from /proc/<pid>/stat, in 10 ms \
             ticks, so short runs are coarse); bench CPU is the load generator's own CPU in the \
             window, in % of one core (near the machine's core count means the generator, not \
             the server, may be the limit). For watch fan-out an operation is \
             a round (one set, every watcher's event); for churn, a connect–create–close cycle; \
             for zk-latencies, the requests of all phases (per-phase figures below).\n"
        );
        let _ = writeln!(
            md,
            "| workload | server | ops/s | p50 | p99 | p99.9 | max | errors | CPU s/100k ops | bench CPU % |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for l in &labels {
            for k in kinds {
                let Some(a) = agg.get(&(l.clone(), k)) else {
                    continue;
                };
                let spread = if a.tputs.len() > 1 {
                    let lo = a.tputs.iter().cloned().fold(f64::MAX, f64::min);
                    let hi = a.tputs.iter().cloned().fold(0.0, f64::max);
                    format!(" ({lo:.0}–{hi:.0})")
                } else {
                    String::new()
                };
                let failed = if a.failed.is_empty() {
                    String::new()
                } else {
                    format!(" ({} run(s) failed)", a.failed.len())
                };
                let _ = writeln!(
                    md,
                    "| {l} | {} | {}{spread} | {} | {} | {} | {} | {}{failed} | {} | {} |",
                    k.name(),
                    fmt_opt(mean(&a.tputs), 0),
                    fmt_opt(mean(&a.p50), 2),
                    fmt_opt(mean(&a.p99), 2),
                    fmt_opt(mean(&a.p999), 2),
                    fmt_opt(mean(&a.max), 2),
                    a.errors,
                    fmt_opt(mean(&a.cpu_per_100k), 2),
                    fmt_opt(mean(&a.bench_cpu_pct), 0),
                );
            }
        }
        let _ = writeln!(md, "\n### Ratios (rookeeper / Apache)\n");
        let _ = writeln!(
            md,
            "Throughput above 1 and latency or CPU below 1 favour rookeeper.\n\n\
             | workload | throughput | p50 | p99 | p99.9 | CPU per op |\n|---|---:|---:|---:|---:|---:|"
        );
        let pairs = labels.iter().any(|l| {
            agg.get(&(l.clone(), Kind::Rookeeper))
                .is_some_and(|a| !a.tputs.is_empty())
                && agg
                    .get(&(l.clone(), Kind::Apache))
                    .is_some_and(|b| !b.tputs.is_empty())
        });
        if !pairs {
            let _ = writeln!(md, "| no workload ran on both servers | | | | | |");
        }
        for l in &labels {
            let (Some(a), Some(b)) = (
                agg.get(&(l.clone(), Kind::Rookeeper)),
                agg.get(&(l.clone(), Kind::Apache)),
            ) else {
                continue;
            };
            let _ = writeln!(
                md,
                "| {l} | {} | {} | {} | {} | {} |",
                ratio(mean(&a.tputs), mean(&b.tputs)),
                ratio(mean(&a.p50), mean(&b.p50)),
                ratio(mean(&a.p99), mean(&b.p99)),
                ratio(mean(&a.p999), mean(&b.p999)),
                ratio(mean(&a.cpu_per_100k), mean(&b.cpu_per_100k)),
            );
        }

        // Charts.
        let mut charts = Vec::new();
        let mut series = Vec::new();
        for k in kinds {
            let mut pts = Vec::new();
            for p in &o.read_ratios {
                if let Some(t) = agg
                    .get(&(format!("mixed {p}% reads"), k))
                    .and_then(|a| mean(&a.tputs))
                {
                    pts.push((*p as f64, t));
                }
            }
            if !pts.is_empty() {
                series.push((k.name().to_owned(), pts));
            }
        }
        if !series.is_empty() {
            let f = dir.join("throughput-vs-read-ratio.svg");
            crate::chart::lines(
                &f,
                "Throughput vs read ratio",
                "reads (%)",
                "operations per second",
                &series,
            )?;
            charts.push(("Throughput vs read ratio", f));
        }
        for l in &labels {
            let mut series = Vec::new();
            for k in kinds {
                if let Some(a) = agg.get(&(l.clone(), k)) {
                    if !a.tputs.is_empty() {
                        series.push((
                            k.name().to_owned(),
                            vec![
                                mean(&a.p50).unwrap_or(0.0),
                                mean(&a.p99).unwrap_or(0.0),
                                mean(&a.p999).unwrap_or(0.0),
                                mean(&a.max).unwrap_or(0.0),
                            ],
                        ));
                    }
                }
            }
            if series.is_empty() {
                continue;
            }
            let slug: String = l
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let f = dir.join(format!("latency-{slug}.svg"));
            crate::chart::grouped_bars_log(
                &f,
                &format!("Latency percentiles: {l}"),
                "milliseconds (log scale)",
                &["p50", "p99", "p99.9", "max"],
                &series,
            )?;
            charts.push(("", f));
        }
        if !charts.is_empty() {
            let _ = writeln!(md, "\n### Charts\n");
            for (_, f) in &charts {
                let rel = format!(
                    "{}/{}",
                    self.name,
                    f.file_name().unwrap_or_default().to_string_lossy()
                );
                let _ = writeln!(md, "![{rel}]({rel})\n");
            }
        }

        // Per-phase tables (last round of each server).
        for l in &labels {
            if !(l == "zk-latencies" || l == "watch-fanout" || l == "churn") {
                continue;
            }
            let _ = writeln!(md, "\n### {l}: per step (last round)\n");
            let _ = writeln!(
                md,
                "| server | step | count | ops/s | p50 ms | p99 ms | max ms | secs |\n|---|---|---:|---:|---:|---:|---:|---:|"
            );
            for k in kinds {
                let Some(r) = self
                    .runs
                    .iter()
                    .rev()
                    .find(|r| &r.label == l && r.kind == k)
                    .and_then(|r| r.result.as_ref())
                else {
                    continue;
                };
                for row in &r.rows {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                        k.name(),
                        row.name,
                        row.count,
                        row.throughput,
                        row.latency_us.p50 as f64 / 1000.0,
                        row.latency_us.p99 as f64 / 1000.0,
                        row.latency_us.max as f64 / 1000.0,
                        row.secs
                            .map(|s| format!("{s:.3}"))
                            .unwrap_or_else(|| "–".into()),
                    );
                }
            }
        }

        self.write_set_aside(md);

        // Failures.
        let failed: Vec<&Run> = self.runs.iter().filter(|r| r.error.is_some()).collect();
        if !failed.is_empty() {
            let _ = writeln!(md, "\n### Failed runs\n");
            for r in failed {
                let _ = writeln!(
                    md,
                    "- {} on {}, round {}: {}",
                    r.label,
                    r.kind.name(),
                    r.round + 1,
                    r.error.as_deref().unwrap_or("").replace('\n', " ")
                );
            }
        }

        Ok(())
    }
    /// The CPU-steal summary of the conditions table.
    fn steal_condition(&self) -> String {
        let o = self.o;
        let kept: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.result.as_ref()?.steal_pct)
            .collect();
        let aside: usize = self.runs.iter().map(|r| r.set_aside.len()).sum();
        let over = self.runs.iter().filter(|r| r.stolen(o.max_steal)).count();
        let mut v = format!(
            "each attempt starts after a second with at most {m}% steal on every CPU in use \
             (waiting up to {} s); a run with more than {m}% steal on any of them in its \
             measured window is run again, up to {} times; {:.0} s spent waiting; {aside} \
             attempt(s) set aside",
            o.steal_wait,
            o.steal_retries,
            self.steal_waited.as_secs_f64(),
            m = o.max_steal,
        );
        if let Some(m) = kept.iter().cloned().reduce(f64::max) {
            v += &format!("; highest steal in a kept run {m:.1}%");
        }
        if over > 0 {
            v += &format!("; {over} kept run(s) still over the limit");
        }
        v
    }

    /// Every attempt set aside for CPU steal, next to the attempt kept.
    fn write_set_aside(&self, md: &mut String) {
        let o = self.o;
        let runs: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| !r.set_aside.is_empty())
            .collect();
        if runs.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n### Runs set aside for CPU steal\n");
        let _ = writeln!(
            md,
            "Steal is the share of a CPU's time the hypervisor gave to other guests; the \
             figure is the highest over the CPUs the servers and the load generator run on, in \
             the measured window. Attempts over {}% were run again; the tables above use the \
             kept attempt.\n",
            o.max_steal
        );
        let _ = writeln!(
            md,
            "| workload | server | round | attempt | steal % | ops/s | p99 ms | kept |\n|---|---|---:|---:|---:|---:|---:|---|"
        );
        for r in runs {
            let kept = r.result.iter().map(|x| (x, true));
            let all = r.set_aside.iter().map(|x| (x, false)).chain(kept);
            for (i, (x, kept)) in all.enumerate() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {} |",
                    r.label,
                    r.kind.name(),
                    r.round + 1,
                    i + 1,
                    fmt_opt(x.steal_pct, 1),
                    x.throughput,
                    x.latency_us.p99 as f64 / 1000.0,
                    match (kept, r.stolen(o.max_steal)) {
                        (false, _) => "set aside",
                        (true, false) => "kept",
                        (true, true) => "kept (retries used up)",
                    }
                );
            }
        }
    }

    fn write(&self) -> Result<PathBuf> {
        let o = self.o;
        let dir = o.out.join(self.name);
        fs::create_dir_all(&dir)?;
        let mut md = String::new();
        let _ = writeln!(md, "# rookeeper vs Apache ZooKeeper 3.8: {}\n", self.name);
        if o.validation {
            let _ = writeln!(
                md,
                "> **Validation run, not a measurement.** Short durations on a shared \
                 machine while other jobs were compiling and testing; the figures below only \
                 show that the harness runs end to end and produces this report. Do not \
                 quote them. The full comparison command is in bench/README.md.\n"
            );
        }
        let _ = writeln!(md, "## Conditions\n");
        let _ = writeln!(md, "| | |\n|---|---|");
        let cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
        let rows = [
            ("cores (nproc)", sh("nproc")),
            ("CPU", cpu.trim().to_owned()),
            ("memory", sh("grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2-3")),
            ("kernel", sh("uname -r")),
            ("load average at start (1/5/15 min)", self.load_before.clone()),
            ("load average at end", sh("cut -d' ' -f1-3 /proc/loadavg")),
            (
                "data disk (both servers)",
                format!(
                    "{} ({})",
                    o.workdir.display(),
                    sh(&format!(
                        "df -T {} | tail -1 | tr -s ' ' | cut -d' ' -f1,2",
                        o.workdir.display()
                    ))
                ),
            ),
            ("topology", if o.ensemble { "3-server ensembles on loopback".into() } else { "standalone servers on loopback".into() }),
            ("rookeeper", format!("{} (binary {}; source tree {})", self.versions.get(&Kind::Rookeeper).cloned().unwrap_or_default(), self.exe.display(), sh("git describe --always --dirty 2>/dev/null"))),
            ("Apache", format!("{} on {}; heap -Xms{h} -Xmx{h}", self.versions.get(&Kind::Apache).cloned().unwrap_or_default(), sh(&format!("{} -version 2>&1 | head -1", o.java)), h = o.heap)),
            ("CPU pinning", match (&o.server_cpus, &o.harness_cpus) {
                (Some(c), Some(h)) => format!("servers on CPUs {c} (taskset); load generator on CPUs {}", h.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")),
                (Some(c), None) => format!("servers on CPUs {c} (taskset); load generator unpinned (no other CPU left)"),
                _ => "none: servers and load generator share all cores".into(),
            }),
            ("settings (both)", format!("tickTime={}, initLimit=10, syncLimit=5, forceSync=yes (fsync on), maxClientCnxns=0, snapCount default, admin server off{}", o.tick_time, if o.ensemble { "; election settings at their defaults (Apache: FastLeaderElection finalizeWait 200 ms, cnxTimeout 5 s)" } else { "" })),
            ("load", format!("{} sessions × {} outstanding, {} B payload, {} nodes; {} s warm-up + {} s measured per run; {} rounds A/B/A/B (rookeeper first)", o.sessions, o.depth, o.payload, o.nodes, o.warmup, o.duration, o.rounds)),
            ("other workloads", format!("zk-latencies N={} M={}; watch fan-out W={}; churn {}/s", o.zkl_nodes, o.watch_sessions, o.watchers, o.churn_rate)),
            ("CPU steal", if self.runs.is_empty() { "–".into() } else { self.steal_condition() }),
            ("command", format!("`{}`", std::env::args().collect::<Vec<_>>().join(" ").replace('|', "\\|"))),
            ("wall time of the run", format!("{:.0} s", self.wall.as_secs_f64())),
        ];
        for (k, v) in rows {
            let _ = writeln!(md, "| {k} | {v} |");
        }
        if let Some(n) = &o.note {
            let _ = writeln!(md, "| note | {} |", n.replace('|', "\\|"));
        }
        md.push('\n');
        for n in self.notes {
            let _ = writeln!(md, "- **{n}**");
        }
        if o.ensemble && !self.notes.is_empty() {
            md.push('\n');
        }

        if !self.runs.is_empty() {
            self.write_workloads(&mut md, &dir)?;
        }
        if !self.failovers.is_empty() {
            self.write_failover(&mut md);
        }

        if !self.res.is_empty() {
            let _ = writeln!(md, "\n## Resources\n");
            let _ = writeln!(
                md,
                "A fresh standalone server of each kind is loaded with znodes of 100 bytes \
                 (4 pipelined sessions); VmRSS/VmHWM come from /proc/<pid>/status 2 s after \
                 each step; bytes per znode = (VmRSS − VmRSS at start) / znodes. Apache's heap is \
                 fixed (-Xms = -Xmx = {}), so its RSS counts heap pages the JVM has touched, \
                 not live data. Restart: SIGTERM, then the time from spawning the process to \
                 `srvr` answering as serving, on the same dataDir.\n",
                o.heap
            );
            let mut counts = o.znodes.clone();
            counts.sort_unstable();
            counts.dedup();
            let mut head = "| server | RSS at start (MiB) |".to_owned();
            let mut sep = "|---|---:|".to_owned();
            for c in &counts {
                let _ = write!(head, " RSS {c} (MiB) | HWM {c} (MiB) | bytes/znode {c} |");
                sep += "---:|---:|---:|";
            }
            head += " restart with max znodes (s) | RSS after restart (MiB) |";
            sep += "---:|---:|";
            let _ = writeln!(md, "{head}\n{sep}");
            for (k, r) in self.res {
                if let Some(e) = &r.error {
                    let _ = writeln!(md, "| {} | failed: {} |", k.name(), e.replace('\n', " "));
                    continue;
                }
                let mut line = format!("| {} | {} |", k.name(), mib(r.baseline_rss));
                for (n, rss, hwm) in &r.loaded {
                    let per = (*rss as f64 - r.baseline_rss as f64) / *n as f64;
                    let _ = write!(line, " {} | {} | {per:.0} |", mib(*rss), mib(*hwm));
                }
                let _ = write!(
                    line,
                    " {} | {} |",
                    fmt_opt(r.restart_secs, 2),
                    r.rss_after_restart.map(mib).unwrap_or_else(|| "–".into())
                );
                let _ = writeln!(md, "{line}");
            }
        }
        if o.ensemble {
            let _ = writeln!(
                md,
                "\nEnsemble mode: sessions are spread round-robin over the three members \
                 (no suffix), or all connect to the member that `srvr` names leader \
                 (\"via leader\") or to one follower (\"via follower\"); reads are served by \
                 the member a session is connected to, writes go through the leader. \
                 Resource figures are of standalone servers."
            );
        }
        let json = dir.join("runs.json");
        fs::write(
            &json,
            serde_json::to_string_pretty(&serde_json::json!({
                "runs": self.runs,
                "failovers": self.failovers,
                "resources": self.res.iter().map(|(k, v)| (k.name(), v)).collect::<BTreeMap<_, _>>(),
            }))?,
        )?;
        let _ = writeln!(
            md,
            "\nEvery run's full result (all rows, error codes) is in [{n}/runs.json]({n}/runs.json).",
            n = self.name
        );
        let path = o.out.join(format!("{}.md", self.name));
        fs::write(&path, md)?;
        Ok(path)
    }
}

/// CPUs of a taskset-style list ("0-2,5").
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.trim().parse()?, b.trim().parse()?);
        anyhow::ensure!(a <= b && b < 1024, "bad CPU range {part:?}");
        out.extend(a..=b);
    }
    Ok(out)
}

/// Pins this process (before its runtime's threads start, so they inherit
/// it) to the CPUs it may use that are not the servers'. Without it the
/// generator's threads ran on the servers' CPU too: in watch fan-out it
/// took up to 70% of a core there, and churn's and fan-out's tails were
/// the generator's, not the servers' (p99 ratios 0.41 and 0.93 unpinned,
/// 0.30 and 0.70 pinned, same binaries).
pub fn pin_harness(o: &mut CompareOpts) -> Result<()> {
    let Some(list) = &o.server_cpus else {
        return Ok(());
    };
    let servers = parse_cpu_list(list)?;
    // SAFETY: cpu_set_t is plain data, filled and read by libc's macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Ok(());
        }
        let mine: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set) && !servers.contains(&c))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let mut pinned: libc::cpu_set_t = std::mem::zeroed();
        for &c in &mine {
            libc::CPU_SET(c, &mut pinned);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &pinned) == 0 {
            o.harness_cpus = Some(mine);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn today_matches_date_command() {
        let d = sh("date -u +%F");
        // Guard against running across midnight.
        if d == sh("date -u +%F") {
            assert_eq!(today(), d);
        }
    }

    #[test]
    fn ensemble_configs_have_server_lines_and_myid() {
        let dir = std::env::temp_dir().join(format!("bench-cfg-{}", std::process::id()));
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            o: CompareOpts,
        }
        let o = Cli::parse_from(["compare"]).o;
        let s = Servers::prepare(Kind::Apache, 3, &dir, &o, Path::new("/bin/false")).unwrap();
        assert_eq!(s.members.len(), 3);
        for (i, m) in s.members.iter().enumerate() {
            let cfg = fs::read_to_string(&m.cfg).unwrap();
            assert_eq!(cfg.matches("server.").count(), 3, "{cfg}");
            assert!(cfg.contains(&format!("clientPort={}", m.port)));
            assert!(cfg.contains("forceSync=yes") && cfg.contains("tickTime=2000"));
            let myid = fs::read_to_string(m.dir.join("data/myid")).unwrap();
            assert_eq!(myid.trim(), (i + 1).to_string());
        }
        assert!(s.cmd.contains(&"-Xmx1g".to_owned()) && s.cmd.contains(&"-Xms1g".to_owned()));
        drop(s);
        fs::remove_dir_all(&dir).unwrap();
    }
}
