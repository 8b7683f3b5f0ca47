//! AdminServer (/commands), Prometheus /metrics and the 4lw key sets,
//! compared with Apache ZooKeeper 3.8's (tests/fixtures/admin: captured from
//! Apache's own AdminServer, see capture_apache.py there).

mod common;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use common::{ephemeral, persistent, within};
use serde_json::Value;
use server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client as zk;

const APACHE_KEYS: &str = include_str!("fixtures/admin/apache-3.8.0-keys.json");

/// Apache keys we do not produce, per command, and why.
fn not_applicable(cmd: &str, key: &str) -> bool {
    match cmd {
        // The JVM's own system properties.
        "system_properties" => [
            "java.",
            "jdk.",
            "sun.",
            "jetty.",
            "native.",
            "user.language",
            "user.timezone",
        ]
        .iter()
        .any(|p| key.starts_with(p)),
        _ => false,
    }
}

struct Running {
    server: Server,
    _dir: tempfile::TempDir,
}

async fn start(lines: &[&str], defines: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let server = start_at(dir.path(), lines, defines).await;
    Running { server, _dir: dir }
}

/// A server on `dir` (its zoo.cfg and dataDir live there).
async fn start_at(dir: &std::path::Path, lines: &[&str], defines: &[(&str, &str)]) -> Server {
    let mut text = format!(
        "tickTime=2000\nclientPort=0\nclientPortAddress=127.0.0.1\ndataDir={}\n\
         admin.serverAddress=127.0.0.1\nadmin.serverPort=0\n4lw.commands.whitelist=*\n",
        dir.join("data").display()
    );
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, text).unwrap();
    let defines: Vec<(String, String)> = defines
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cfg = Config::load(Some(&path), &defines).unwrap();
    within("server start", Server::start(cfg)).await.unwrap()
}

/// A minimal HTTP/1.1 GET: (status, headers, body).
async fn http(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    exchange(addr, "GET", path, extra, &[]).await
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    within("an HTTP exchange", async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Length: {}\r\n{extra}\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut body = buf[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (status, head, body)
    })
    .await
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

async fn command(addr: SocketAddr, name: &str) -> Value {
    let (status, _, body) = http(addr, &format!("/commands/{name}"), "").await;
    assert_eq!(status, 200, "{name}");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"))
}

/// The same flattening as capture_apache.py.
fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    const DATA_KEYED: &[&str] = &[
        "expiry_time_to_session_ids",
        "session_id_to_ephemeral_paths",
        "session_id_to_watched_paths",
        "path_to_session_ids",
        "current_config",
    ];
    match v {
        Value::Object(m) => {
            let last = prefix.rsplit('.').next().unwrap_or("");
            for (k, x) in m {
                if DATA_KEYED.contains(&last) {
                    out.insert(format!("{prefix}.*"));
                    continue;
                }
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                shape(x, &p, out);
            }
        }
        Value::Array(a) if a.first().is_some_and(Value::is_object) => {
            for x in a {
                shape(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

async fn four_letter(addr: SocketAddr, cmd: &str) -> String {
    within("a four-letter word", async {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(cmd.as_bytes()).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out
    })
    .await
}

/// A client of `addr` with a 10 s session.
async fn client(addr: SocketAddr) -> zk::Client {
    within(
        "client connection",
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&addr.to_string()),
    )
    .await
    .unwrap()
}

/// A client with an ephemeral node and a data watch, as when the fixture
/// was captured (so lists and maps are not empty). The watcher must live
/// as long as the watch is to stay registered.
async fn busy_client(addr: SocketAddr) -> (zk::Client, zk::OneshotWatcher) {
    let c = client(addr).await;
    c.create("/a", b"", &persistent()).await.unwrap();
    c.create("/a/b", b"", &persistent()).await.unwrap();
    c.create("/a/e", b"x", &ephemeral()).await.unwrap();
    let (_, _, watcher) = c.get_and_watch_data("/a/b").await.unwrap();
    (c, watcher)
}

#[tokio::test]
async fn every_admin_command_has_apache_keys() {
    let r = start(&[], &[]).await;
    let admin = r.server.admin_addr().expect("admin server bound");
    let (_c, _w) = busy_client(r.server.addr).await;
    let fixture: Value = serde_json::from_str(APACHE_KEYS).unwrap();

    // The index page links every primary name Apache lists.
    let (status, _, body) = http(admin, "/commands", "").await;
    assert_eq!(status, 200);
    let index = String::from_utf8(body).unwrap();
    for n in fixture["commands"].as_array().unwrap() {
        let n = n.as_str().unwrap();
        if not_applicable(n, "") {
            continue;
        }
        assert!(
            index.contains(&format!("href=\"/commands/{n}\"")),
            "index lacks {n}"
        );
    }

    let mut missing = Vec::new();
    for (cmd, keys) in fixture["admin"].as_object().unwrap() {
        let v = command(admin, cmd).await;
        assert_eq!(v["command"], Value::from(cmd.as_str()), "{cmd}");
        let mut ours = BTreeSet::new();
        shape(&v, "", &mut ours);
        for k in keys.as_array().unwrap() {
            let k = k.as_str().unwrap();
            // An empty list in Apache's answer is a leaf there; ours may
            // hold objects (`digests[].zxid`).
            let covered = ours.contains(k) || ours.iter().any(|o| o.starts_with(&format!("{k}[]")));
            if !covered && !not_applicable(cmd, k) {
                missing.push(format!("{cmd}: {k}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys Apache has and we lack: {missing:#?}"
    );

    // Aliases answer as their primary name.
    for (alias, primary) in [
        ("srvr", "server_stats"),
        ("mntr", "monitor"),
        ("wchc", "watches"),
    ] {
        assert_eq!(command(admin, alias).await["command"], primary);
    }
    // Data, not just keys: the ephemeral and the watch are where a client
    // put them.
    let dump = command(admin, "dump").await;
    let eph = dump["session_id_to_ephemeral_paths"].as_object().unwrap();
    assert!(
        eph.values().any(|p| p == &serde_json::json!(["/a/e"])),
        "{dump}"
    );
    let w = command(admin, "watches_by_path").await;
    assert!(w["path_to_session_ids"]["/a/b"].is_array(), "{w}");
    let unknown = command(admin, "nosuch").await;
    assert_eq!(unknown["error"], "Unknown command: nosuch");
    r.server.stop().await;
}

#[tokio::test]
async fn four_letter_words_have_apache_keys() {
    let r = start(&[], &[]).await;
    let (_c, _w) = busy_client(r.server.addr).await;
    let fixture: Value = serde_json::from_str(APACHE_KEYS).unwrap();
    for (w, keys) in fixture["fourlw"].as_object().unwrap() {
        let text = four_letter(r.server.addr, w).await;
        let ours: HashSet<String> = match w.as_str() {
            "mntr" => text
                .lines()
                .filter_map(|l| l.split_once('\t').map(|(k, _)| k.to_owned()))
                .collect(),
            "conf" | "envi" => text
                .lines()
                .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
                .collect(),
            _ => text
                .lines()
                .filter(|l| l.contains(": ") && !l.starts_with(' '))
                .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_owned()))
                .collect(),
        };
        for k in keys.as_array().unwrap() {
            let k = k.as_str().unwrap();
            let na = w == "mntr" && not_applicable("monitor", k.trim_start_matches("zk_"));
            assert!(ours.contains(k) || na, "{w}: missing {k}\n{text}");
        }
    }
    r.server.stop().await;
}

#[tokio::test]
async fn prometheus_metrics_parse_and_agree_with_mntr() {
    let r = start(
        &[
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            "metricsProvider.httpHost=127.0.0.1",
            "metricsProvider.httpPort=0",
        ],
        &[],
    )
    .await;
    let addr = r.server.metrics_addr().expect("metrics endpoint bound");
    let (c, _w) = busy_client(r.server.addr).await;
    c.get_data("/a/b").await.unwrap();

    let (status, head, body) = http(addr, "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/plain"), "{head}");
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<std::io::Result<String>> = text.lines().map(|l| Ok(l.to_owned())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).expect("Prometheus text");
    let value = |name: &str| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a plain sample"),
        }
    };
    for g in [
        "znode_count",
        "watch_count",
        "ephemerals_count",
        "num_alive_connections",
        "outstanding_requests",
        "packets_received",
        "packets_sent",
        "approximate_data_size",
        "global_sessions",
        "open_file_descriptor_count",
        "uptime",
        "connection_request_count",
        "bytes_received_count",
    ] {
        value(g);
    }
    for s in [
        "readlatency",
        "updatelatency",
        "fsynctime",
        "snapshottime",
        "dbinittime",
        "election_time",
        "startup_txns_loaded",
    ] {
        let summary = scrape
            .samples
            .iter()
            .find(|x| x.metric == s && matches!(x.value, prometheus_parse::Value::Summary(_)));
        assert!(summary.is_some(), "summary {s} missing in\n{text}");
        assert!(text.contains(&format!("# TYPE {s} summary")), "{s}");
    }
    assert_eq!(value("ephemerals_count"), 1.0);
    assert_eq!(value("num_alive_connections"), 1.0);
    assert_eq!(value("watch_count"), 1.0);
    assert!(value("connection_request_count") >= 1.0);
    // Writes were fsynced and timed; reads and writes were both timed.
    assert!(text.contains("updatelatency_count 3.0"), "{text}");
    assert!(!text.contains("fsynctime_count 0.0"), "{text}");
    // mntr reads the same figures.
    let mntr = four_letter(r.server.addr, "mntr").await;
    let row = |k: &str| -> f64 {
        mntr.lines()
            .find_map(|l| l.strip_prefix(&format!("zk_{k}\t")))
            .unwrap_or_else(|| panic!("no zk_{k} in mntr"))
            .parse()
            .unwrap()
    };
    assert_eq!(row("znode_count"), value("znode_count"));
    assert_eq!(row("ephemerals_count"), 1.0);
    assert_eq!(row("cnt_updatelatency"), 3.0);
    r.server.stop().await;
}

#[tokio::test]
async fn admin_server_disabled_or_port_taken_leaves_clients_served() {
    let r = start(&["admin.enableServer=false"], &[]).await;
    assert!(r.server.admin_addr().is_none());
    r.server.stop().await;

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let line = format!("admin.serverPort={port}");
    let r = start(&[&line], &[]).await;
    assert!(r.server.admin_addr().is_none());
    let (c, _w) = busy_client(r.server.addr).await;
    assert_eq!(c.get_data("/a/e").await.unwrap().0, b"x");
    r.server.stop().await;
}

#[tokio::test]
async fn snapshot_command_is_guarded_as_in_3_9() {
    // super:secret
    let superdigest = "super:lK75jTNcA+U9vtVEw5vB51mj/w4=";
    let r = start(
        &[],
        &[(
            "zookeeper.DigestAuthenticationProvider.superDigest",
            superdigest,
        )],
    )
    .await;
    let admin = r.server.admin_addr().unwrap();
    let (c, _w) = busy_client(r.server.addr).await;
    // Only alice (and super) may do everything on the root.
    let alice = zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0="),
    );
    c.set_acl("/", &[alice], None).await.unwrap();
    let (status, _, _) = http(admin, "/commands/snapshot", "").await;
    assert_eq!(status, 401);
    let wrong = "Authorization: digest alice:wrong\r\n";
    let (status, _, _) = http(admin, "/commands/snapshot", wrong).await;
    assert_eq!(status, 403);
    let auth = "Authorization: digest alice:pw\r\n";
    let (status, head, body) = http(admin, "/commands/snapshot", auth).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(&body[..4], b"ZKSN", "a snapshot file streams back");
    let size: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("snapshot_size: ")
                .map(str::to_owned)
        })
        .expect("snapshot_size header")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(size, body.len());
    assert!(
        head.to_ascii_lowercase().contains("last_zxid: 0x"),
        "{head}"
    );
    // Rate limited (one per 5 minutes by default).
    let (status, _, _) = http(admin, "/commands/snapshot", auth).await;
    assert_eq!(status, 429);
    // last_snapshot reports it.
    let l = command(admin, "lsnp").await;
    assert_ne!(l["zxid"], "0", "{l}");
    r.server.stop().await;

    // Super may too; with the feature off, no one may.
    let r = start(
        &[],
        &[(
            "zookeeper.DigestAuthenticationProvider.superDigest",
            superdigest,
        )],
    )
    .await;
    let super_auth = "Authorization: digest super:secret\r\n";
    let (status, _, body) =
        http(r.server.admin_addr().unwrap(), "/commands/snap", super_auth).await;
    assert_eq!((status, &body[..4]), (200, &b"ZKSN"[..]));
    r.server.stop().await;
    let r = start(&[], &[("zookeeper.admin.snapshot.enabled", "false")]).await;
    let admin = r.server.admin_addr().unwrap();
    let (status, _, _) = http(admin, "/commands/snapshot", auth).await;
    assert_eq!(status, 503);
    r.server.stop().await;
}

/// `hash` (4lw and admin): the tree digest after every 128th zxid, as
/// DataTree's digest log; a restart replays the log to the same digests.
#[tokio::test]
async fn hash_lists_the_digest_log_and_replay_gives_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_at(dir.path(), &[], &[]).await;
    let c = client(server.addr).await;
    // One createSession, then creates up to zxid 0x120.
    for i in 0..0x11f {
        c.create(&format!("/n{i}"), b"d", &persistent())
            .await
            .unwrap();
    }
    drop(c);
    let text = four_letter(server.addr, "hash").await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("80: "), "{text}");
    assert!(lines[1].starts_with("100: "), "{text}");
    let v = command(server.admin_addr().unwrap(), "hash").await;
    let digests = v["digests"].as_array().unwrap();
    assert_eq!(digests.len(), 2, "{v}");
    assert_eq!(digests[0]["zxid"], 0x80);
    assert_eq!(digests[1]["zxid"], 0x100);
    assert_eq!(digests[0]["digestVersion"], 2);
    assert_eq!(format!("80: {}", digests[0]["digest"]), lines[0]);
    assert_ne!(digests[0]["digest"], digests[1]["digest"]);
    server.stop().await;
    let server = start_at(dir.path(), &[], &[]).await;
    assert_eq!(four_letter(server.addr, "hash").await, text);
    server.stop().await;
}

#[tokio::test]
async fn restore_replaces_the_tree_durably() {
    let superdigest = "super:lK75jTNcA+U9vtVEw5vB51mj/w4=";
    let auth = "Authorization: digest super:secret\r\n";
    let defines = [(
        "zookeeper.DigestAuthenticationProvider.superDigest",
        superdigest,
    )];
    let dir = tempfile::tempdir().unwrap();
    let server = start_at(dir.path(), &[], &defines).await;
    let admin = server.admin_addr().unwrap();
    let c = client(server.addr).await;
    c.create("/keep", b"v1", &persistent()).await.unwrap();
    let (status, _, snap) = http(admin, "/commands/snapshot", auth).await;
    assert_eq!(status, 200);

    c.set_data("/keep", b"v2", None).await.unwrap();
    c.create("/later", b"", &persistent()).await.unwrap();

    // Guards first: no auth, and a GET.
    let (status, _, _) = exchange(admin, "POST", "/commands/restore", "", &snap).await;
    assert_eq!(status, 401);
    let (status, _, _) = http(admin, "/commands/restore", auth).await;
    assert_eq!(status, 405);
    let (status, _, body) = exchange(admin, "POST", "/commands/restore", auth, &snap).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["command"], "restore");
    assert!(v["last_zxid"].as_i64().unwrap() > 0, "{v}");
    // Rate limited: one restore per interval.
    let (status, _, _) = exchange(admin, "POST", "/commands/restore", auth, &snap).await;
    assert_eq!(status, 429);

    // The session predates the snapshot: it lives on and sees the old state.
    assert_eq!(c.get_data("/keep").await.unwrap().0, b"v1");
    assert!(c.check_stat("/later").await.unwrap().is_none());
    c.create("/after", b"a", &persistent()).await.unwrap();
    drop(c);
    server.stop().await;

    // After a restart: the restored state plus what came after it.
    let server = start_at(dir.path(), &[], &defines).await;
    let c = within(
        "client connection",
        zk::Client::connector().connect(&server.addr.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(c.get_data("/keep").await.unwrap().0, b"v1");
    assert!(c.check_stat("/later").await.unwrap().is_none());
    assert_eq!(c.get_data("/after").await.unwrap().0, b"a");
    drop(c);
    server.stop().await;

    let r = start(&[], &[("zookeeper.admin.restore.enabled", "false")]).await;
    let admin = r.server.admin_addr().unwrap();
    let (status, _, _) = exchange(admin, "POST", "/commands/restore", auth, &snap).await;
    assert_eq!(status, 503);
    r.server.stop().await;
}

const APACHE_LEADER_KEYS: &str =
    include_str!("fixtures/admin/apache-3.8.0-ensemble-leader-keys.json");
const APACHE_FOLLOWER_KEYS: &str =
    include_str!("fixtures/admin/apache-3.8.0-ensemble-follower-keys.json");

/// A row of mntr's text as a number.
fn mntr_row(mntr: &str, k: &str) -> f64 {
    mntr.lines()
        .find_map(|l| l.strip_prefix(&format!("zk_{k}\t")))
        .unwrap_or_else(|| panic!("no zk_{k} in mntr:\n{mntr}"))
        .parse()
        .unwrap()
}

/// The figures of ZooKeeper's watch manager, sync processor, prep
/// processor, per-namespace stats and connection counters follow what
/// clients do.
#[tokio::test]
async fn mntr_follows_watches_log_namespaces_and_connections() {
    let r = start(
        &[
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            "metricsProvider.httpHost=127.0.0.1",
            "metricsProvider.httpPort=0",
        ],
        &[],
    )
    .await;
    let addr = r.server.addr;
    let a = client(addr).await;
    let b = client(addr).await;
    // Writes under /ns: 3 (create, create, set), bytes = path + data.
    a.create("/ns", b"", &persistent()).await.unwrap();
    a.create("/ns/x", b"12345", &persistent()).await.unwrap();
    // Two sessions watch /ns/x's data: one change notifies both.
    let (_, _, wa) = a.get_and_watch_data("/ns/x").await.unwrap();
    let (_, _, wb) = b.get_and_watch_data("/ns/x").await.unwrap();
    a.set_data("/ns/x", b"abc", None).await.unwrap();
    within("event a", wa.changed()).await;
    within("event b", wb.changed()).await;
    // A client that drops its socket without closing its session.
    {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = vec![0u8; 4];
        req.extend_from_slice(&0i32.to_be_bytes()); // protocol version
        req.extend_from_slice(&0i64.to_be_bytes()); // last zxid seen
        req.extend_from_slice(&10_000i32.to_be_bytes()); // timeout
        req.extend_from_slice(&0i64.to_be_bytes()); // session id
        req.extend_from_slice(&16i32.to_be_bytes());
        req.extend_from_slice(&[0u8; 16]); // password
        let n = (req.len() - 4) as u32;
        req[..4].copy_from_slice(&n.to_be_bytes());
        s.write_all(&req).await.unwrap();
        let mut len = [0u8; 4];
        within("connect reply", s.read_exact(&mut len))
            .await
            .unwrap();
        let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
        within("connect reply", s.read_exact(&mut reply))
            .await
            .unwrap();
    }
    // Wait until the server has seen the end of that stream.
    let mut mntr = String::new();
    for _ in 0..100 {
        mntr = four_letter(addr, "mntr").await;
        if mntr_row(&mntr, "connection_drop_count") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mntr_row(&mntr, "connection_drop_count"), 1.0);
    // One NodeDataChanged trigger reached two watchers.
    assert_eq!(mntr_row(&mntr, "cnt_node_changed_watch_count"), 1.0);
    assert_eq!(mntr_row(&mntr, "max_node_changed_watch_count"), 2.0);
    assert_eq!(mntr_row(&mntr, "cnt_node_created_watch_count"), 0.0);
    // Two notification frames: header 16 B + type, state, path (4+4+4+5).
    assert_eq!(mntr_row(&mntr, "watch_bytes"), 2.0 * (4.0 + 16.0 + 17.0));
    // Per namespace: writes are path + data, reads add a stat (68 B).
    assert_eq!(mntr_row(&mntr, "cnt_ns_write_per_namespace"), 3.0);
    assert_eq!(
        mntr_row(&mntr, "sum_ns_write_per_namespace"),
        (3.0 + 0.0) + (5.0 + 5.0) + (5.0 + 3.0)
    );
    assert_eq!(mntr_row(&mntr, "cnt_ns_read_per_namespace"), 2.0);
    assert_eq!(
        mntr_row(&mntr, "max_ns_read_per_namespace"),
        5.0 + 5.0 + 68.0
    );
    // The txn log took every txn (3 sessions and 3 writes at least) and
    // timed each one's way to disk.
    let queued = mntr_row(&mntr, "sync_processor_request_queued");
    assert!(queued >= 6.0, "{mntr}");
    assert_eq!(
        mntr_row(&mntr, "cnt_sync_processor_queue_and_flush_time_ms"),
        queued
    );
    assert_eq!(mntr_row(&mntr, "cnt_sync_processor_queue_time_ms"), queued);
    assert!(mntr_row(&mntr, "cnt_sync_processor_queue_flush_time_ms") >= 1.0);
    assert!(mntr_row(&mntr, "cnt_sync_processor_queue_size") >= 1.0);
    // Every request went through the pipeline; writes were prepared.
    assert!(mntr_row(&mntr, "prep_processor_request_queued") >= 5.0);
    assert!(mntr_row(&mntr, "cnt_prep_process_time") >= 3.0);
    // Each prepared write was then handed to the log.
    assert_eq!(
        mntr_row(&mntr, "cnt_proposal_process_time"),
        mntr_row(&mntr, "cnt_prep_process_time")
    );
    // Standalone, there is no commit processor (as in Apache's).
    assert_eq!(mntr_row(&mntr, "cnt_commit_process_time"), 0.0);
    assert_eq!(mntr_row(&mntr, "request_commit_queued"), 0.0);
    // No connection with watches has closed yet.
    assert_eq!(mntr_row(&mntr, "dead_watchers_queued"), 0.0);
    assert_eq!(mntr_row(&mntr, "cnt_propagation_latency"), queued);
    assert_eq!(mntr_row(&mntr, "connection_revalidate_count"), 0.0);
    // Prep recorded a change for each node a write touched (the parent
    // too, for creates) and forgot each once its txn applied.
    let changes = mntr_row(&mntr, "outstanding_changes_queued");
    assert!(changes >= 5.0, "{mntr}");
    assert_eq!(mntr_row(&mntr, "outstanding_changes_removed"), changes);
    // Reads and writes timed in the final stage; no request outlived its
    // connection.
    assert!(mntr_row(&mntr, "cnt_read_final_proc_time_ms") >= 2.0);
    assert!(mntr_row(&mntr, "cnt_write_final_proc_time_ms") >= 3.0);
    assert_eq!(mntr_row(&mntr, "stale_requests"), 0.0);
    assert_eq!(mntr_row(&mntr, "stale_replies"), 0.0);
    // Dropping the last handle closes the session, in the background; the
    // watch it left is then a dead watcher, cleared.
    let (_, _, _left) = a.get_and_watch_data("/ns").await.unwrap();
    drop(a);
    let mut mntr = String::new();
    for _ in 0..100 {
        mntr = four_letter(addr, "mntr").await;
        if mntr_row(&mntr, "cnt_close_session_prep_time") >= 1.0
            && mntr_row(&mntr, "dead_watchers_cleared") >= 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mntr_row(&mntr, "cnt_close_session_prep_time"), 1.0);
    assert_eq!(mntr_row(&mntr, "dead_watchers_queued"), 1.0, "{mntr}");
    assert_eq!(mntr_row(&mntr, "dead_watchers_cleared"), 1.0);
    assert_eq!(mntr_row(&mntr, "cnt_dead_watchers_cleaner_latency"), 1.0);

    // Prometheus labels the per-namespace summaries with their key.
    let (_, _, body) = http(r.server.metrics_addr().unwrap(), "/metrics", "").await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("write_per_namespace_count{key=\"ns\",} 3.0"),
        "{text}"
    );
    drop(b);
    r.server.stop().await;
}

/// Ensemble keys of Apache's capture that name what differs between runs:
/// per-namespace keys name the namespaces its clients touched, per-learner
/// queue keys its learners' ids (checked apart, for ours).
fn ensemble_not_applicable(cmd: &str, key: &str) -> bool {
    let k = key.trim_start_matches("zk_");
    not_applicable(cmd, k) || k.contains("_per_namespace") || k.contains("learner_handler_qp")
}

/// `zk_<stat>_<sid>_learner_handler_qp_<figure>` as (stat, figure).
fn qp_key_shape(k: &str) -> Option<(&str, &str)> {
    let k = k.strip_prefix("zk_")?;
    let (stat, rest) = k.split_once('_')?;
    let (sid, figure) = rest.split_once("_learner_handler_qp_")?;
    sid.parse::<u64>().ok()?;
    Some((stat, figure))
}

/// Below the ephemeral range (see `bench::free_port`).
fn free_port() -> u16 {
    bench::free_port().unwrap()
}

/// Three voters (and `observers` observers after them) on loopback, in
/// this process: the servers, their (quorum, election) ports, the leader's
/// index, once one leads and the rest follow or observe.
async fn ensemble(observers: usize) -> (Vec<Server>, Vec<(u16, u16)>, usize, tempfile::TempDir) {
    ensemble_with(observers, false).await
}

/// [`ensemble`], with each server given an `observerMasterPort` of its
/// own when `observer_master`, so observers sync from a follower.
async fn ensemble_with(
    observers: usize,
    observer_master: bool,
) -> (Vec<Server>, Vec<(u16, u16)>, usize, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let n = 3 + observers;
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    // A follower hosts observers at its quorum host on the one
    // observerMasterPort all share, so each server gets a host of its own.
    let host = |i: usize| {
        if observer_master {
            format!("127.0.0.{}", i + 1)
        } else {
            "127.0.0.1".to_owned()
        }
    };
    let servers_text: String = ports
        .iter()
        .enumerate()
        .map(|(i, (q, e))| {
            let role = if i >= 3 { ":observer" } else { "" };
            format!("server.{}={}:{q}:{e}{role}\n", i + 1, host(i))
        })
        .collect();
    let om = if observer_master {
        format!("observerMasterPort={}", free_port())
    } else {
        String::new()
    };
    let mut servers = Vec::new();
    for id in 1..=n {
        let d = dir.path().join(format!("s{id}"));
        std::fs::create_dir_all(d.join("data")).unwrap();
        std::fs::write(d.join("data/myid"), format!("{id}\n")).unwrap();
        let peer = if id > 3 { "peerType=observer" } else { "" };
        let lines = [
            "tickTime=200",
            "initLimit=10",
            "syncLimit=5",
            &servers_text,
            peer,
            &om,
        ];
        servers.push(start_at(&d, &lines, &[]).await);
    }
    // Wait (bounded) until one leads and the others follow or observe.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut modes = Vec::new();
        for s in &servers {
            let srvr = four_letter(s.addr, "srvr").await;
            modes.push(
                srvr.lines()
                    .find_map(|l| l.strip_prefix("Mode: "))
                    .unwrap_or("")
                    .to_owned(),
            );
        }
        let leaders: Vec<usize> = (0..n).filter(|&i| modes[i] == "leader").collect();
        let followers = modes.iter().filter(|m| *m == "follower").count();
        let observing = modes.iter().filter(|m| *m == "observer").count();
        if leaders.len() == 1 && followers == 2 && observing == observers {
            return (servers, ports, leaders[0], dir);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leader with everyone else following within 30s: {modes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Admin `observers` lists each synced observer's link as LearnerHandler
/// describes it; `orst` starts its counts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_are_listed_with_their_link_figures() {
    let (servers, _ports, leader, _dir) = ensemble(1).await;
    let c = client(servers[3].addr).await;
    c.create("/o", b"x", &persistent()).await.unwrap();
    c.create("/o/1", b"x", &persistent()).await.unwrap();
    let admin = servers[leader].admin_addr().unwrap();
    let v = command(admin, "observers").await;
    assert_eq!(v["synced_observers"], 1, "{v}");
    let o = &v["observers"][0];
    assert_eq!(o["sid"], 4, "{v}");
    assert!(
        o["remote_socket_address"]
            .as_str()
            .unwrap()
            .starts_with("/127.0.0.1:"),
        "{v}"
    );
    assert!(o["established"].as_i64().unwrap() > 0, "{v}");
    // Its session and two creates came as REQUESTs; each commit went back
    // as an INFORM, the last one's zxid the last sent.
    assert!(o["requests"].as_u64().unwrap() >= 3, "{v}");
    assert!(o["packets_received"].as_u64().unwrap() >= 3, "{v}");
    assert!(o["packets_sent"].as_u64().unwrap() >= 3, "{v}");
    let stat = c.check_stat("/o/1").await.unwrap().unwrap();
    assert!(o["last_zxid"].as_i64().unwrap() >= stat.czxid, "{v}");
    for k in ["queued_packets", "queued_packets_size"] {
        assert!(o[k].as_u64().is_some(), "{k}: {v}");
    }
    command(admin, "orst").await;
    let v = command(admin, "observers").await;
    let o = &v["observers"][0];
    assert_eq!(o["requests"], 0, "{v}");
    reset_unless_pinged(o, stat.czxid, &v);
    // Followers host no observers here.
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let v = command(servers[follower].admin_addr().unwrap(), "observers").await;
    assert_eq!(v["synced_observers"], 0, "{v}");
    assert_eq!(v["observers"], serde_json::json!([]), "{v}");
    drop(c);
    for s in servers {
        s.stop().await;
    }
}

/// After `orst`: no last zxid and nothing received, unless the host pinged
/// the observer in between (every tickTime/2, here 100 ms): a ping carries
/// the last zxid, at least `czxid`, and the observer answers it. One answer
/// may be to a ping sent just before the reset.
fn reset_unless_pinged(o: &serde_json::Value, czxid: i64, v: &serde_json::Value) {
    let moved = o["packets_sent"].as_u64().unwrap() + o["queued_packets"].as_u64().unwrap();
    let last = o["last_zxid"].as_i64().unwrap();
    assert!(o["packets_received"].as_u64().unwrap() <= moved + 1, "{v}");
    if moved == 0 {
        assert_eq!(last, -1, "{v}");
    } else {
        assert!(last == -1 || last >= czxid, "{v}");
    }
}

/// With observerMasterPort the observer syncs from a follower, whose
/// `observers` then lists it (ObserverMaster's LearnerHandlers) and whose
/// `orst` resets its counts; the leader lists no observer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_hosting_an_observer_lists_it() {
    let (servers, _ports, leader, _dir) = ensemble_with(1, true).await;
    let c = client(servers[3].addr).await;
    c.create("/om", b"x", &persistent()).await.unwrap();
    c.create("/om/1", b"x", &persistent()).await.unwrap();
    let v = command(servers[leader].admin_addr().unwrap(), "observers").await;
    assert_eq!(v["observers"], serde_json::json!([]), "{v}");
    let mut hosts = Vec::new();
    for i in (0..3).filter(|&i| i != leader) {
        let v = command(servers[i].admin_addr().unwrap(), "observers").await;
        if v["synced_observers"] == 1 {
            hosts.push((i, v));
        } else {
            assert_eq!(v["observers"], serde_json::json!([]), "{v}");
        }
    }
    assert_eq!(hosts.len(), 1, "one follower hosts the observer: {hosts:?}");
    let (host, v) = hosts.pop().unwrap();
    let o = &v["observers"][0];
    assert_eq!(o["sid"], 4, "{v}");
    assert!(o["established"].as_i64().unwrap() > 0, "{v}");
    // The session and the two creates were relayed through this follower.
    assert!(o["requests"].as_u64().unwrap() >= 3, "{v}");
    assert!(o["packets_sent"].as_u64().unwrap() >= 3, "{v}");
    let stat = c.check_stat("/om/1").await.unwrap().unwrap();
    assert!(o["last_zxid"].as_i64().unwrap() >= stat.czxid, "{v}");
    let admin = servers[host].admin_addr().unwrap();
    command(admin, "orst").await;
    let v = command(admin, "observers").await;
    let o = &v["observers"][0];
    assert_eq!(o["requests"], 0, "{v}");
    reset_unless_pinged(o, stat.czxid, &v);
    drop(c);
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_members_answer_with_apache_keys() {
    let (servers, ports, leader, _dir) = ensemble(0).await;
    let follower = (leader + 1) % 3;
    // A write, so proposal sizes and commits are there to report.
    let c = within(
        "client connection",
        zk::Client::connector().connect(&servers[leader].addr.to_string()),
    )
    .await
    .unwrap();
    c.create("/w", b"x", &persistent()).await.unwrap();
    // And, on each member looked at, an ephemeral and a watch.
    let _busy: Vec<_> = {
        let mut v = Vec::new();
        for (i, idx) in [leader, (leader + 1) % 3].into_iter().enumerate() {
            let b = client(servers[idx].addr).await;
            let p = format!("/e{i}");
            b.create(&p, b"", &ephemeral()).await.unwrap();
            let (_, _, w) = b.get_and_watch_data("/w").await.unwrap();
            v.push((b, w));
        }
        v
    };

    for (idx, fixture, role) in [
        (leader, APACHE_LEADER_KEYS, "leader"),
        (follower, APACHE_FOLLOWER_KEYS, "follower"),
    ] {
        let admin = servers[idx].admin_addr().unwrap();
        let fixture: Value = serde_json::from_str(fixture).unwrap();
        let mut missing = Vec::new();
        for (cmd, keys) in fixture["admin"].as_object().unwrap() {
            let v = command(admin, cmd).await;
            let mut ours = BTreeSet::new();
            shape(&v, "", &mut ours);
            for k in keys.as_array().unwrap() {
                let k = k.as_str().unwrap();
                let covered =
                    ours.contains(k) || ours.iter().any(|o| o.starts_with(&format!("{k}[]")));
                if !covered && !ensemble_not_applicable(cmd, k) {
                    missing.push(format!("{role} {cmd}: {k}"));
                }
            }
        }
        for (w, keys) in fixture["fourlw"].as_object().unwrap() {
            let text = four_letter(servers[idx].addr, w).await;
            for k in keys.as_array().unwrap() {
                let k = k.as_str().unwrap();
                if !text.contains(k) && !ensemble_not_applicable("monitor", k) {
                    missing.push(format!("{role} 4lw {w}: {k}"));
                }
            }
        }
        // The leader's queue figures for each of its learners, under our
        // learners' ids.
        if role == "leader" {
            let text = four_letter(servers[idx].addr, "mntr").await;
            for k in fixture["fourlw"]["mntr"].as_array().unwrap() {
                let Some((stat, figure)) = qp_key_shape(k.as_str().unwrap()) else {
                    continue;
                };
                for sid in (1..=3).filter(|&s| s != idx + 1) {
                    let ours = format!("zk_{stat}_{sid}_learner_handler_qp_{figure}\t");
                    if !text.contains(&ours) {
                        missing.push(format!("leader mntr: {ours}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys Apache has and we lack: {missing:#?}"
        );
    }

    // Values, not only keys.
    let ladmin = servers[leader].admin_addr().unwrap();
    let fadmin = servers[follower].admin_addr().unwrap();
    let l = command(ladmin, "leader").await;
    let f = command(fadmin, "leader").await;
    assert_eq!(l["is_leader"], true);
    assert_eq!(f["is_leader"], false);
    assert_eq!(l["leader_id"], (leader + 1) as i64);
    assert_eq!(f["leader_id"], (leader + 1) as i64);
    assert_eq!(f["leader_ip"], "127.0.0.1");
    let z = command(fadmin, "zabstate").await;
    assert_eq!(z["zabstate"], "broadcast");
    assert_eq!(z["myid"], (follower + 1) as i64);
    assert_eq!(z["voting"], true);
    let view = command(ladmin, "voting_view").await;
    assert_eq!(view["current_config"].as_object().unwrap().len(), 3);
    let (q, e) = ports[follower];
    let fv = &view["current_config"][(follower + 1).to_string()];
    assert_eq!(fv["server_addresses"][0], format!("127.0.0.1:{q}"));
    assert_eq!(fv["election_addresses"][0], format!("127.0.0.1:{e}"));
    let m = command(ladmin, "monitor").await;
    assert_eq!(m["peer_state"], "leading - broadcast");
    assert_eq!(m["quorum_size"], 3);
    assert_eq!(m["learners"], 2);
    assert_eq!(m["synced_followers"], 2);
    assert!(m["cnt_election_time"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["commit_count"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["last_proposal_size"].as_i64().unwrap() > 0, "{m}");
    // Request latencies are counted wherever the request is answered: a
    // write once its commit comes back, a read at once.
    assert!(m["cnt_updatelatency"].as_u64().unwrap() >= 2, "{m}");
    let fm = command(fadmin, "monitor").await;
    assert_eq!(fm["peer_state"], "following - broadcast");
    assert!(fm["cnt_updatelatency"].as_u64().unwrap() >= 1, "{fm}");
    assert!(fm["cnt_readlatency"].as_u64().unwrap() >= 1, "{fm}");
    // The commit processor's figures: both members applied every commit
    // (the sessions, /w, /e0, /e1), in commit rounds. The leader's own
    // client wrote /w; the follower's wrote /e1 and forwarded it, so it
    // saw its own commit and others' (server writes) arrive.
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
    for v in [&m, &fm] {
        assert!(n(v, "request_commit_queued") >= 5, "{v}");
        assert!(n(v, "cnt_commit_process_time") >= 1, "{v}");
        assert!(n(v, "cnt_write_commit_proc_issued") >= 1, "{v}");
        assert!(n(v, "sum_write_commit_proc_issued") >= 5, "{v}");
        assert!(n(v, "cnt_local_write_committed_time_ms") >= 1, "{v}");
    }
    assert!(n(&fm, "cnt_server_write_committed_time_ms") >= 1, "{fm}");
    assert!(
        n(&fm, "cnt_learner_request_processor_queue_size") >= 2,
        "{fm}"
    );
    assert!(
        n(&m, "requests_not_forwarded_to_commit_processor") >= 2,
        "{m}"
    );
    // Every write the leader prepared (its clients' and forwarded ones)
    // was then proposed.
    assert!(n(&m, "cnt_proposal_process_time") >= 3, "{m}");
    assert_eq!(
        n(&m, "cnt_proposal_process_time"),
        n(&m, "cnt_prep_process_time")
    );
    assert_eq!(n(&fm, "cnt_proposal_process_time"), 0, "{fm}");
    let conf = four_letter(servers[follower].addr, "conf").await;
    assert!(
        conf.contains(&format!("serverId={}\n", follower + 1)),
        "{conf}"
    );
    assert!(conf.contains(&format!("quorumPort={q}\n")), "{conf}");
    drop(c);
    for s in servers {
        s.stop().await;
    }
}

/// An HTTPS GET of `path` (trusting the test CA), the whole response.
async fn https_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let s = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    get_over(s, path).await
}

/// A plain HTTP GET of `path`, the whole response (empty if the server
/// closes without one).
async fn plain_get(addr: SocketAddr, path: &str) -> String {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    get_over(s, path).await.unwrap()
}

/// Sends a GET of `path` on `s` and reads whatever comes back until the
/// server closes.
async fn get_over<S>(mut s: S, path: &str) -> std::io::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    // A TLS peer may end without close_notify once the response is sent,
    // and a server refusing the request may reset it.
    let _ = s.read_to_end(&mut out).await;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// HTTPS on the AdminServer with the quorum's key store, as
/// JettyAdminServer: with admin.portUnification plain HTTP is served on the
/// same port and counted (insecure_admin_count); with admin.forceHttps
/// only TLS is.
#[tokio::test]
async fn admin_server_takes_https_beside_or_instead_of_http() {
    let ks =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/keystore.jks");
    let ks = format!("ssl.quorum.keyStore.location={}", ks.display());
    let stores = [ks.as_str(), "ssl.quorum.keyStore.password=apassword"];

    let r = start(&[stores[0], stores[1], "admin.portUnification=true"], &[]).await;
    let admin = r.server.admin_addr().unwrap();
    let text = within("HTTPS", https_get(admin, "/commands/ruok"))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"command\": \"ruok\""), "{text}");
    // As Jetty's SecureRequestCustomizer: HSTS over TLS, not over plain HTTP.
    let hsts = "strict-transport-security: max-age=86400; includeSubDomains";
    assert!(
        text.to_ascii_lowercase()
            .contains(&hsts.to_ascii_lowercase()),
        "{text}"
    );
    let plain = within("plain HTTP", plain_get(admin, "/commands/ruok")).await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    assert!(
        !plain
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{plain}"
    );
    let m = command(admin, "monitor").await;
    // The two plain requests so far (this one too), not the HTTPS one.
    assert_eq!(m["insecure_admin_count"], 2, "{m}");
    r.server.stop().await;

    let r = start(&[stores[0], stores[1], "admin.forceHttps=true"], &[]).await;
    let admin = r.server.admin_addr().unwrap();
    let text = within("HTTPS", https_get(admin, "/commands/ruok"))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let plain = within("plain HTTP", plain_get(admin, "/commands/ruok")).await;
    assert!(!plain.starts_with("HTTP/"), "{}", plain);
    r.server.stop().await;

    // Without the key store, startup stops and says why.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("zoo.cfg"),
        format!(
            "clientPort=0\ndataDir={}\nadmin.serverPort=0\nadmin.forceHttps=true\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = Config::load(Some(&dir.path().join("zoo.cfg")), &[]).unwrap();
    let err = match Server::start(cfg).await {
        Ok(_) => panic!("started without a key store"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("zookeeper.ssl.quorum.keyStore.location"),
        "{err}"
    );
}

#[tokio::test]
async fn connections_on_the_secure_port_are_listed_as_secure() {
    use jute::codec::Record;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let fixture = |n: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(n)
    };
    let lines = [
        format!(
            "ssl.keyStore.location={}",
            fixture("keystore.jks").display()
        ),
        "ssl.keyStore.password=apassword".to_owned(),
        format!(
            "ssl.trustStore.location={}",
            fixture("truststore.jks").display()
        ),
        "ssl.trustStore.password=apassword".to_owned(),
        "secureClientPort=0".to_owned(),
        "secureClientPortAddress=127.0.0.1".to_owned(),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let r = start(&lines, &[]).await;
    let admin = r.server.admin_addr().unwrap();
    let (_plain, _w) = busy_client(r.server.addr).await;

    // A TLS client (with the test CA's client certificate) and a session.
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("client.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("client-key.pem")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(r.server.secure_addr.unwrap())
        .await
        .unwrap();
    let mut s = within(
        "TLS handshake",
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
            .connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap();
    let req = jute::proto::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: bytes::Bytes::from_static(&[0u8; 16]),
        read_only: false,
    }
    .to_bytes();
    s.write_all(&(req.len() as i32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&req).await.unwrap();
    let mut len = [0u8; 4];
    within("connect response", s.read_exact(&mut len))
        .await
        .unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    within("connect response", s.read_exact(&mut resp))
        .await
        .unwrap();
    let resp =
        jute::proto::ConnectResponse::read(&mut jute::codec::Reader::new(resp.into())).unwrap();

    let cons = command(admin, "cons").await;
    let secure = cons["secure_connections"].as_array().unwrap();
    let plain = cons["connections"].as_array().unwrap();
    assert_eq!(secure.len(), 1, "{cons}");
    assert_eq!(plain.len(), 1, "{cons}");
    assert_eq!(secure[0]["session_id"], resp.session_id);
    let stat = command(admin, "stat").await;
    assert_eq!(stat["secure_connections"].as_array().unwrap().len(), 1);
    drop(s);
    r.server.stop().await;
}

const APACHE_FOURLW: &str = include_str!("fixtures/admin/apache-3.8.0-fourlw.json");

/// A line's shape: numbers, hex ids, addresses and day/month names masked.
fn line_shape(l: &str) -> String {
    const NAMES: &[&str] = &[
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in l.chars() {
        if ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase() || ch == '.' || ch == ':' {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    let mut s = out;
    for n in NAMES {
        s = s.replace(n, "@");
    }
    s
}

/// ZooKeeper's trace mask: `gtmk` reads it (ZooTrace's initial 306),
/// `stmk` sets it from the 8-byte long after the word, and the admin
/// commands read and set the same mask; both words need the whitelist.
#[tokio::test]
async fn trace_mask_is_read_and_set_by_words_and_admin_commands() {
    let r = start(&[], &[]).await;
    let addr = r.server.addr;
    let admin = r.server.admin_addr().unwrap();
    assert_eq!(four_letter(addr, "gtmk").await, "306");
    let stmk = |mask: i64| async move {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut b = b"stmk".to_vec();
        b.extend_from_slice(&mask.to_be_bytes());
        c.write_all(&b).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out
    };
    assert_eq!(within("stmk", stmk(2)).await, "2");
    assert_eq!(four_letter(addr, "gtmk").await, "2");
    assert_eq!(command(admin, "get_trace_mask").await["tracemask"], 2);
    assert_eq!(command(admin, "gtmk").await["tracemask"], 2);
    let v = command(admin, "set_trace_mask").await;
    assert_eq!(v["error"], "setTraceMask requires long traceMask argument");
    let (_, _, body) = http(admin, "/commands/set_trace_mask?traceMask=x1", "").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["error"],
        "setTraceMask requires long traceMask argument, got x1"
    );
    let (_, _, body) = http(admin, "/commands/stmk?traceMask=-1", "").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tracemask"], -1);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(four_letter(addr, "gtmk").await, "-1");

    // Words ZooKeeper 3.8 no longer has are read as a frame length, too
    // large: the connection closes unanswered, as there.
    for w in ["kill", "reqs"] {
        assert_eq!(four_letter(addr, w).await, "", "{w}");
    }
    r.server.stop().await;

    // Not whitelisted: refused as Apache refuses, the mask unchanged.
    let r = start(&["4lw.commands.whitelist=srvr"], &[]).await;
    let addr = r.server.addr;
    for w in ["gtmk", "stmk"] {
        assert_eq!(
            four_letter(addr, w).await,
            format!("{w} is not executed because it is not in the whitelist.\n")
        );
    }
    let admin = r.server.admin_addr().unwrap();
    assert_eq!(command(admin, "get_trace_mask").await["tracemask"], 306);
    r.server.stop().await;
}

#[tokio::test]
async fn four_letter_words_have_apache_line_shapes() {
    let r = start(&[], &[]).await;
    let (_c, _w) = busy_client(r.server.addr).await;
    let fixture: Value = serde_json::from_str(APACHE_FOURLW).unwrap();
    let mut missing = Vec::new();
    for (w, text) in fixture.as_object().unwrap() {
        let ours = four_letter(r.server.addr, w).await;
        let shapes: HashSet<String> = ours.lines().map(line_shape).collect();
        for l in text.as_str().unwrap().lines() {
            // Apache's cons lists the socket asking it too (not yet a
            // session); ours lists client sessions only.
            if w == "cons" && l.contains("[0](queued=0,recved=1,sent=0)") {
                continue;
            }
            if !shapes.contains(&line_shape(l)) {
                missing.push(format!(
                    "{w}: {l:?} (shape {:?})\nours:\n{ours}",
                    line_shape(l)
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    r.server.stop().await;
}

/// A connection that never asks for a session is closed once
/// zookeeper.nio.sessionlessCnxnTimeout passes, as ZooKeeper's NIO factory
/// closes it, and counted; connections with sessions are left alone.
#[tokio::test]
async fn connections_without_a_session_are_closed() {
    let r = start(&[], &[("zookeeper.nio.sessionlessCnxnTimeout", "200")]).await;
    let addr = r.server.addr;
    let client = client(addr).await;
    // One sends nothing, one half a length prefix.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(addr).await.unwrap();
    partial.write_all(&[0, 0]).await.unwrap();
    for s in [&mut silent, &mut partial] {
        let mut b = [0u8; 1];
        let n = within("the server closing", s.read(&mut b)).await.unwrap();
        assert_eq!(n, 0, "closed without a reply");
    }
    // The session, idle all that time, still serves.
    client.create("/still", b"ok", &persistent()).await.unwrap();
    let mntr = four_letter(addr, "mntr").await;
    assert_eq!(mntr_row(&mntr, "sessionless_connections_expired"), 2.0);
    drop(client);
    r.server.stop().await;
}
