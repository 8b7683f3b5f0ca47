//! Four-letter words on the client port, in ZooKeeper's output formats.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::core::{wall_ms, Core};
use crate::ensemble::Role;
use crate::metrics::{self, Gauge};

/// The ZooKeeper release we report: the reference we test against
/// (Debian's package, 3.8.0); behaviour follows the 3.8 line.
pub const ZK_VERSION: &str = "3.8.0";

/// What `srvr`/`envi` print as the version (kazoo parses the part before
/// the first '-').
pub fn full_version() -> String {
    format!(
        "{ZK_VERSION}-rookeeper-{}, built on 1970-01-01 00:00 UTC",
        env!("CARGO_PKG_VERSION")
    )
}

/// Every word we answer; `4lw.commands.whitelist=*` enables them all.
pub const ALL: &[&str] = &[
    "ruok", "srvr", "stat", "envi", "conf", "cons", "mntr", "isro", "wchs", "wchc", "wchp", "dump",
    "dirs", "crst", "srst", "gtmk", "stmk", "hash",
];

/// Is this 4-byte prefix a four-letter word (rather than a frame length)?
/// Words 3.8 dropped (`kill`, `reqs`) are lengths, too large, as there.
pub fn is_command(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|s| ALL.contains(&s))
}

pub(crate) fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

pub(crate) fn abs(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .join("version-2")
        .display()
        .to_string()
}

/// A double as Java's Double.toString prints it (0.0, 1.3333333333333333),
/// which Apache's srvr uses for the average latency.
pub(crate) fn java_double(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn server_stats(core: &Core, out: &mut String) {
    let s = &core.stats;
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        s.latency.min_ms,
        java_double(s.latency.avg()),
        s.latency.max_ms
    );
    let _ = writeln!(out, "Received: {}", s.received);
    let _ = writeln!(out, "Sent: {}", s.sent);
    let _ = writeln!(out, "Connections: {}", core.connection_count());
    let _ = writeln!(out, "Outstanding: {}", core.outstanding());
    let _ = writeln!(out, "Zxid: 0x{:x}", core.last_zxid());
    let _ = writeln!(out, "Mode: {}", mode(core));
}

/// A leader's proposal sizes (srvr's last line, admin's proposal_stats).
pub(crate) fn leader_proposals(core: &Core) -> Option<(i64, i64, i64)> {
    match core.ens.as_ref().map(|e| &e.role) {
        Some(Role::Leading(_)) => Some(core.cfg.metrics.proposals()),
        _ => None,
    }
}

fn conn_line(core: &Core, id: u64, brief: bool, out: &mut String) {
    let c = &core.conns[&id];
    let st = &c.stats;
    let _ = write!(
        out,
        " /{}[1](queued=0,recved={},sent={}",
        c.remote, st.received, st.sent
    );
    if !brief {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session, st.last_op, st.established_ms, c.timeout
        );
        if st.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", st.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            st.last_zxid,
            st.last_response_ms,
            st.last_latency_ms,
            st.latency.min_ms,
            // A whole number, as ZooKeeper's getAvgLatency.
            st.latency.avg() as u64,
            st.latency.max_ms
        );
    }
    out.push(')');
}

pub(crate) fn conn_ids(core: &Core) -> Vec<u64> {
    let mut ids: Vec<u64> = core.conns.keys().copied().collect();
    ids.sort_unstable();
    ids
}

/// (session hex, path) pairs of every watch, data and child tables merged.
pub(crate) fn watches(core: &Core) -> BTreeSet<(i64, String)> {
    let mut out = BTreeSet::new();
    for t in [core.tree.data_watches(), core.tree.child_watches()] {
        for (w, paths) in t.watchers() {
            let sid = core.conns.get(w).map_or(0, |c| c.session);
            for p in paths {
                out.insert((sid, p.clone()));
            }
        }
    }
    out
}

/// Runs a whitelisted command (the caller checked the whitelist).
pub fn run(core: &mut Core, cmd: &str) -> String {
    let mut out = String::new();
    // An ensemble member between roles: as Apache's commands say then.
    if !core.serving() && !matches!(cmd, "ruok" | "envi" | "conf" | "dirs" | "isro" | "gtmk") {
        return "This ZooKeeper instance is not currently serving requests\n".to_owned();
    }
    match cmd {
        "ruok" => out.push_str("imok"),
        // A Java long, without a newline (TraceMaskCommand).
        "gtmk" => out.push_str(&(core.cfg.trace.get() as i64).to_string()),
        // The digest log: zxid in hex, the digest (DigestCommand).
        "hash" => {
            for (zxid, digest) in core.tree.digest_log() {
                let _ = writeln!(out, "{zxid:x}: {digest}");
            }
        }
        // An ensemble member serving nobody answers null, as Apache does.
        "isro" => out.push_str(
            if core.disk_failed.is_some() || core.ens.as_ref().is_some_and(|e| e.read_only()) {
                "ro"
            } else if !core.serving() {
                "null"
            } else {
                "rw"
            },
        ),
        "srvr" | "stat" => {
            let _ = writeln!(out, "Zookeeper version: {}", full_version());
            if core.ens.as_ref().is_some_and(|e| e.read_only()) {
                out.push_str("READ-ONLY mode; serving only read-only clients\n");
            }
            if cmd == "stat" {
                out.push_str("Clients:\n");
                for id in conn_ids(core) {
                    conn_line(core, id, true, &mut out);
                    out.push('\n');
                }
                out.push('\n');
            }
            server_stats(core, &mut out);
            let _ = writeln!(out, "Node count: {}", node_count(core));
            if let Some((last, min, max)) = leader_proposals(core) {
                let _ = writeln!(out, "Proposal sizes last/min/max: {last}/{min}/{max}");
            }
        }
        "cons" => {
            for id in conn_ids(core) {
                conn_line(core, id, false, &mut out);
                out.push('\n');
            }
            out.push('\n');
        }
        "crst" => {
            core.reset_conn_stats();
            out.push_str("Connection stats reset.\n");
        }
        "srst" => {
            core.reset_stats();
            out.push_str("Server stats reset.\n");
        }
        "conf" => {
            let cfg = &core.cfg;
            let log_dir = cfg.data_log_dir.as_ref().unwrap_or(&cfg.data_dir);
            let _ = writeln!(out, "clientPort={}", cfg.client_port);
            let _ = writeln!(out, "secureClientPort=-1");
            let _ = writeln!(out, "dataDir={}", abs(&cfg.data_dir));
            let _ = writeln!(out, "dataDirSize={}", dir_size(&cfg.data_dir));
            let _ = writeln!(out, "dataLogDir={}", abs(log_dir));
            let _ = writeln!(out, "dataLogSize={}", dir_size(log_dir));
            let _ = writeln!(out, "tickTime={}", cfg.tick_time);
            let _ = writeln!(out, "maxClientCnxns={}", cfg.max_client_cnxns);
            let _ = writeln!(out, "minSessionTimeout={}", cfg.min_session_timeout);
            let _ = writeln!(out, "maxSessionTimeout={}", cfg.max_session_timeout);
            let _ = writeln!(out, "clientPortListenBacklog=-1");
            match core.ens.as_ref() {
                None => {
                    let _ = writeln!(out, "serverId=0");
                }
                Some(e) => {
                    // QuorumPeer's conf: the quorum settings and membership.
                    let s = &e.setup;
                    let me = s.me();
                    let _ = writeln!(out, "serverId={}", s.my_id);
                    let _ = writeln!(out, "initLimit={}", s.init_limit);
                    let _ = writeln!(out, "syncLimit={}", s.sync_limit);
                    let _ = writeln!(out, "electionAlg=3");
                    let _ = writeln!(out, "electionPort={}", me.election_port);
                    let _ = writeln!(out, "quorumPort={}", me.quorum_port);
                    let _ = writeln!(out, "peerType={}", u8::from(s.is_observer()));
                    let _ = writeln!(out, "membership: ");
                    let _ = writeln!(out, "{}", s.quorum);
                }
            }
        }
        "envi" => {
            out.push_str("Environment:\n");
            let rows = env_rows();
            for (k, v) in rows {
                let _ = writeln!(out, "{k}={v}");
            }
        }
        "wchs" => {
            let w = watches(core);
            let conns: BTreeSet<i64> = w.iter().map(|(s, _)| *s).collect();
            let paths: BTreeSet<&String> = w.iter().map(|(_, p)| p).collect();
            let _ = writeln!(
                out,
                "{} connections watching {} paths",
                conns.len(),
                paths.len()
            );
            let _ = writeln!(out, "Total watches:{}", w.len());
        }
        "wchc" => {
            let mut by: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for (s, p) in watches(core) {
                by.entry(s).or_default().push(p);
            }
            for (s, ps) in by {
                let _ = writeln!(out, "0x{s:x}");
                for p in ps {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            let mut by: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for (s, p) in watches(core) {
                by.entry(p).or_default().push(s);
            }
            for (p, ss) in by {
                let _ = writeln!(out, "{p}");
                for s in ss {
                    let _ = writeln!(out, "\t0x{s:x}");
                }
            }
            out.push('\n');
        }
        "dump" => {
            out.push_str("SessionTracker dump:\n");
            let learner = matches!(core.ens.as_ref().map(|e| &e.role), Some(Role::Following(_)));
            if learner {
                // A learner's tracker: sessions and their timeouts.
                let _ = writeln!(out, "Global Sessions({}):", core.tree.sessions().len());
                let mut sids: Vec<(&i64, &i32)> = core.tree.sessions().iter().collect();
                sids.sort();
                for (sid, to) in sids {
                    let _ = writeln!(out, "0x{sid:x}\t{to}ms");
                }
            } else {
                // SessionTrackerImpl's expiry queue: buckets by expiry time.
                let buckets = expiry_buckets(core);
                let n: usize = buckets.iter().map(|(_, ids)| ids.len()).sum();
                let _ = writeln!(out, "Session Sets ({})/({n}):", buckets.len());
                for (t, ids) in &buckets {
                    let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(*t));
                    for id in ids {
                        let _ = writeln!(out, "\t0x{id:x}");
                    }
                }
            }
            out.push_str("ephemeral nodes dump:\n");
            let eph = core.tree.ephemerals_by_session();
            let _ = writeln!(out, "Sessions with Ephemerals ({}):", eph.len());
            let mut keys: Vec<&i64> = eph.keys().collect();
            keys.sort();
            for sid in keys {
                let _ = writeln!(out, "0x{sid:x}:");
                for p in &eph[sid] {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push_str("Connections dump:\n");
            // ZooKeeper expires idle connections with their sessions; here
            // a connection is bucketed with its session's expiry.
            let when: BTreeMap<i64, i64> = expiry_buckets(core)
                .into_iter()
                .flat_map(|(t, ids)| ids.into_iter().map(move |id| (id, t)))
                .collect();
            let mut by: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
            for id in conn_ids(core) {
                let t = when.get(&core.conns[&id].session).copied().unwrap_or(0);
                by.entry(t).or_default().push(id);
            }
            let n = core.connection_count();
            let _ = writeln!(out, "Connections Sets ({})/({n}):", by.len());
            for (t, ids) in by {
                let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(t));
                for id in ids {
                    let c = &core.conns[&id];
                    let _ = writeln!(out, "\tip: /{} sessionId: 0x{:x}", c.remote, c.session);
                }
            }
        }
        "dirs" => {
            let cfg = &core.cfg;
            let log_dir = cfg.data_log_dir.as_ref().unwrap_or(&cfg.data_dir);
            let _ = writeln!(out, "datadir_size: {}", dir_size(&cfg.data_dir));
            let _ = writeln!(out, "logdir_size: {}", dir_size(log_dir));
        }
        "mntr" => {
            let rows = metrics::monitor_rows(&gauges(core), &core.cfg.metrics);
            out.push_str(&metrics::monitor_text(&rows));
        }
        _ => {}
    }
    out
}

/// Session expiry buckets as (wall-clock ms, sorted session ids), in time
/// order. The tracker's clock starts with the pipeline.
pub(crate) fn expiry_buckets(core: &Core) -> Vec<(i64, Vec<i64>)> {
    let start = start_ms(core);
    let mut v: Vec<(i64, Vec<i64>)> = core
        .sessions
        .expiry_buckets()
        .map(|(t, ids)| {
            let mut ids: Vec<i64> = ids.iter().copied().collect();
            ids.sort_unstable();
            (start + t, ids)
        })
        .collect();
    v.sort_unstable();
    v
}

/// java.util.Date's toString, in UTC: "Sun Nov 22 06:21:07 UTC 2026".
pub(crate) fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// `envi`'s rows (the AdminServer's `environment` too): the JVM's keys,
/// answered for this process.
pub fn env_rows() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_default();
    let home = std::env::var("HOME").unwrap_or_default();
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // ZooKeeper reports the JVM heap; the nearest facts here are the
    // machine's available and total memory and this process's resident size.
    let mb = |kb: u64| format!("{}MB", kb / 1024);
    vec![
        ("zookeeper.version", full_version()),
        ("host.name", host),
        ("java.version", "n/a (rookeeper is not a JVM server)".into()),
        ("java.vendor", "n/a".into()),
        ("java.home", "n/a".into()),
        ("java.class.path", exe),
        ("java.library.path", "n/a".into()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".into()),
        ("os.name", std::env::consts::OS.into()),
        ("os.arch", std::env::consts::ARCH.into()),
        ("os.version", os_version),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        (
            "os.memory.free",
            mb(proc_kb("/proc/meminfo", "MemAvailable:")),
        ),
        ("os.memory.max", mb(proc_kb("/proc/meminfo", "MemTotal:"))),
        (
            "os.memory.total",
            mb(proc_kb("/proc/self/status", "VmRSS:")),
        ),
    ]
}

/// A "Key:   123 kB" figure from a /proc file (0 if absent).
fn proc_kb(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The server's gauges under ZooKeeper's names (ZooKeeperServer's
/// registerMetrics, QuorumZooKeeperServer's quorum_size): read from the
/// pipeline's state; `mntr` and `/metrics` both show them.
pub fn gauges(core: &Core) -> Vec<(&'static str, Gauge)> {
    let s = core.stats;
    let m = &core.cfg.metrics;
    let (last, min, max) = m.client_response();
    let mut g = vec![
        ("version", Gauge::Text(full_version())),
        ("server_state", Gauge::Text(mode(core).into())),
        ("avg_latency", Gauge::Float(s.latency.avg())),
        ("max_latency", Gauge::Int(s.latency.max_ms as i64)),
        ("min_latency", Gauge::Int(s.latency.min_ms as i64)),
        ("packets_received", Gauge::Int(s.received as i64)),
        ("packets_sent", Gauge::Int(s.sent as i64)),
        (
            "num_alive_connections",
            Gauge::Int(core.connection_count() as i64),
        ),
        (
            "outstanding_requests",
            Gauge::Int(core.outstanding() as i64),
        ),
        ("znode_count", Gauge::Int(node_count(core) as i64)),
        ("watch_count", Gauge::Int(core.tree.watch_count() as i64)),
        (
            "ephemerals_count",
            Gauge::Int(core.tree.ephemeral_count() as i64),
        ),
        (
            "approximate_data_size",
            Gauge::Int(core.tree.approximate_data_size() as i64),
        ),
        ("open_file_descriptor_count", Gauge::Int(open_fds() as i64)),
        ("max_file_descriptor_count", Gauge::Int(max_fds() as i64)),
        ("uptime", Gauge::Int(wall_ms() - start_ms(core))),
        ("global_sessions", Gauge::Int(core.sessions.len() as i64)),
        ("local_sessions", Gauge::Int(0)),
        // We never drop connections at random (ZooKeeper's default too).
        ("connection_drop_probability", Gauge::Float(0.0)),
        ("last_client_response_size", Gauge::Int(last)),
        ("max_client_response_size", Gauge::Int(max)),
        ("min_client_response_size", Gauge::Int(min)),
        (
            "outstanding_tls_handshake",
            Gauge::Int(m.outstanding_tls_handshakes() as i64),
        ),
        (
            "auth_failed_count",
            Gauge::Int(m.auth_failed_count.get() as i64),
        ),
        (
            "non_mtls_local_conn_count",
            Gauge::Int(m.non_mtls_local_conn_count.get() as i64),
        ),
        (
            "non_mtls_remote_conn_count",
            Gauge::Int(m.non_mtls_remote_conn_count.get() as i64),
        ),
        ("last_zxid", Gauge::Int(core.last_zxid())),
    ];
    let voters = quorum_size(&core.cfg);
    if voters > 0 {
        g.push(("quorum_size", Gauge::Int(voters as i64)));
    }
    if let Some(e) = core.ens.as_ref() {
        g.push(("peer_state", Gauge::Text(peer_state(core))));
        if let Role::Leading(l) = &e.role {
            g.push(("learners", Gauge::Int(l.learner_count() as i64)));
            g.push(("synced_followers", Gauge::Int(l.synced_followers() as i64)));
            let non_voting = l.synced_non_voting_followers(&e.setup.quorum);
            g.push(("synced_non_voting_followers", Gauge::Int(non_voting as i64)));
            g.push(("pending_syncs", Gauge::Int(l.pending_syncs() as i64)));
            g.push(("synced_observers", Gauge::Int(l.synced_observers() as i64)));
            let up = core.start.elapsed().as_millis() as i64 - e.since;
            g.push(("leader_uptime", Gauge::Int(up.max(0))));
            let (last, min, max) = core.cfg.metrics.proposals();
            g.push(("last_proposal_size", Gauge::Int(last)));
            g.push(("min_proposal_size", Gauge::Int(min)));
            g.push(("max_proposal_size", Gauge::Int(max)));
        }
        if let Role::Following(f) = &e.role {
            // As Apache's gauges: a follower's only while it hosts observers.
            if let Some(om) = &f.om {
                g.push(("synced_observers", Gauge::Int(om.synced() as i64)));
            }
            if f.observer {
                g.push(("observer_master_id", Gauge::Int(f.master as i64)));
            }
        }
    }
    g
}

/// ZooKeeper's ZabState, lower case: election while looking, broadcast
/// once serving, synchronization in between.
pub(crate) fn zab_state(core: &Core) -> &'static str {
    match core.ens.as_ref().map(|e| &e.role) {
        None => "",
        Some(Role::Looking) => "election",
        Some(_) if core.serving() => "broadcast",
        Some(_) => "synchronization",
    }
}

/// QuorumPeer's detailed state: "following - broadcast", "looking", ...
pub(crate) fn peer_state(core: &Core) -> String {
    let state = match core.ens.as_ref().map(|e| &e.role) {
        None => return String::new(),
        Some(Role::Looking) => return "looking".into(),
        Some(Role::Leading(_)) => "leading",
        Some(Role::Following(f)) if f.observer => "observing",
        Some(Role::Following(_)) => "following",
    };
    format!("{state} - {}", zab_state(core))
}

/// Voting members named by `server.N` lines (observers do not vote).
pub fn quorum_size(cfg: &crate::Config) -> usize {
    cfg.raw
        .iter()
        .filter(|(k, v)| {
            k.strip_prefix("server.")
                .is_some_and(|n| n.parse::<u64>().is_ok())
                && !v.contains(":observer")
        })
        .count()
}

/// ZooKeeper's node map holds the root twice ("" and "/"), so its counts
/// are one more than the znodes; operators' dashboards expect its figure.
pub(crate) fn node_count(core: &Core) -> usize {
    core.tree.node_count() + 1
}

/// Standalone, or read-only while the txn log cannot be written; in an
/// ensemble the role.
pub(crate) fn mode(core: &Core) -> &'static str {
    if let Some(e) = core.ens.as_ref() {
        if e.read_only() {
            "read-only"
        } else {
            e.role.name()
        }
    } else if core.disk_failed.is_some() {
        "read-only"
    } else {
        "standalone"
    }
}

pub(crate) fn start_ms(core: &Core) -> i64 {
    core.started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

pub(crate) fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::java_date;

    #[test]
    fn dates_print_as_java_does() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // The capture of Apache's dump: Sun Nov 22 06:21:07 UTC 2026.
        assert_eq!(java_date(1_795_328_467_000), "Sun Nov 22 06:21:07 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }
}
