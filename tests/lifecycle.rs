//! `rookeeper server start|status|stop|restart|print-cmd|version`: the
//! zkServer.sh verbs, through the real binary, as a script would call them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rookeeper");

/// Below the ephemeral range (see `bench::free_port`).
fn free_port() -> u16 {
    bench::free_port().unwrap()
}

/// A daemon started by a test; killed if the test ends before `stop`.
struct Daemon {
    pid_file: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("ZOO_LOG_DIR", dir.join("logs"))
        .env_remove("ZOOPIDFILE")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls `status` until it reports a mode (the daemon loads its data after
/// `start` returns), for at most 20 s.
fn wait_status(dir: &Path, cfg: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = run(dir, &["server", "status", cfg]);
        if o.status.success() || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `dir`/zoo.cfg for a server on loopback `port` with its dataDir
/// in `dir`, no AdminServer, and `extra` lines; returns its path.
fn write_config(dir: &Path, port: u16, extra: &str) -> String {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\nclientPort={port}\nclientPortAddress=127.0.0.1\ndataDir={}\n\
             admin.enableServer=false\n{extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg.to_str().unwrap().to_owned()
}

#[test]
fn start_status_stop_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), port, "4lw.commands.whitelist=srvr,ruok\n");
    let cfg = cfg.as_str();
    let pid_file = dir.path().join("data/zookeeper_server.pid");
    let _guard = Daemon {
        pid_file: pid_file.clone(),
    };

    // Not running yet.
    let o = run(dir.path(), &["server", "status", cfg]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stdout(&o).contains(&format!(
        "Client port found: {port}. Client address: 127.0.0.1. Client SSL: false."
    )));
    assert!(stdout(&o).contains("Error contacting service. It is probably not running."));

    // Logging as log4j's properties say: INFO to a file in zookeeper.log.dir.
    let log_dir = dir.path().join("zklogs");
    let log_dir_arg = format!("-Dzookeeper.log.dir={}", log_dir.display());
    let o = run(
        dir.path(),
        &[
            "server",
            "start",
            "-Dzookeeper.root.logger=INFO,ROLLINGFILE",
            &log_dir_arg,
            cfg,
        ],
    );
    assert_eq!(stdout(&o), "Starting zookeeper ... STARTED\n", "{o:?}");
    assert!(o.status.success());
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    // A second start refuses, naming the running process.
    let o = run(dir.path(), &["server", "start", cfg]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(&format!("already running as process {pid}.")));

    let o = wait_status(dir.path(), cfg);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).ends_with("Mode: standalone\n"), "{o:?}");
    let log = std::fs::read_to_string(log_dir.join("zookeeper.log")).unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(log.contains("serving clients on 127.0.0.1:"), "{log}");

    // The daemon is a real server: a client session works.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"ruok").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert_eq!(r, "imok");

    // Its output went to zkServer.sh's .out file under ZOO_LOG_DIR.
    let outs: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
        .collect();
    assert_eq!(outs.len(), 1);

    let o = run(dir.path(), &["server", "restart", cfg]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        stdout(&o),
        "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n"
    );
    let o = wait_status(dir.path(), cfg);
    assert!(o.status.success(), "{o:?}");

    let o = run(dir.path(), &["server", "stop", cfg]);
    assert_eq!(stdout(&o), "Stopping zookeeper ... STOPPED\n");
    assert!(o.status.success());
    assert!(!pid_file.exists());
    let o = run(dir.path(), &["server", "status", cfg]);
    assert_eq!(o.status.code(), Some(1));

    let o = run(dir.path(), &["server", "stop", cfg]);
    assert!(o.status.success());
    assert!(
        stdout(&o).starts_with("Stopping zookeeper ... no zookeeper to stop (could not find file")
    );
}

#[test]
fn print_cmd_version_and_failed_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\nclientPort={}\nclientPortAddress=127.0.0.1\ndataDir={}\n",
            free_port(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let o = run(
        dir.path(),
        &["server", "print-cmd", "-Dzookeeper.skipACL=yes", cfg],
    );
    let line = stdout(&o);
    assert!(
        line.contains(&format!(
            "\"server\" \"start-foreground\" \"-Dzookeeper.skipACL=yes\" \"{cfg}\" > \""
        )),
        "{line}"
    );
    assert!(line.trim_end().ends_with("2>&1 < /dev/null"));

    let o = run(dir.path(), &["server", "version"]);
    assert!(
        stdout(&o).starts_with("Apache ZooKeeper, version 3.8"),
        "{o:?}"
    );

    // A port already taken: the daemon exits and start says so.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let bad = dir.path().join("bad.cfg");
    std::fs::write(
        &bad,
        format!(
            "clientPort={port}\nclientPortAddress=127.0.0.1\ndataDir={}\nadmin.enableServer=false\n",
            dir.path().join("bad").display()
        ),
    )
    .unwrap();
    let _guard = Daemon {
        pid_file: dir.path().join("bad/zookeeper_server.pid"),
    };
    let o = run(dir.path(), &["server", "start", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(stdout(&o), "Starting zookeeper ... FAILED TO START\n");
}

#[test]
fn status_asks_localhost_without_client_port_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "clientPort={port}\ndataDir={}\nadmin.enableServer=false\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let _guard = Daemon {
        pid_file: dir.path().join("data/zookeeper_server.pid"),
    };
    let o = run(dir.path(), &["server", "start", cfg]);
    assert!(o.status.success(), "{o:?}");
    let o = wait_status(dir.path(), cfg);
    assert_eq!(
        stdout(&o),
        format!(
            "Client port found: {port}. Client address: localhost. Client SSL: false.\n\
             Mode: standalone\n"
        )
    );
    let o = run(dir.path(), &["server", "stop", cfg]);
    assert_eq!(stdout(&o), "Stopping zookeeper ... STOPPED\n");
}

/// A daemon for one test: its directory, client port, zoo.cfg (with
/// `extra` lines) and log file; killed if the test ends before `stop`.
struct Logged {
    // Dropped first: the pid file is in `dir`.
    _guard: Daemon,
    dir: tempfile::TempDir,
    port: u16,
    cfg: String,
    log: PathBuf,
}

impl Logged {
    /// `server start` with the log at `level` in a file, `env` set; waits
    /// until `status` reports it running.
    fn start(extra: &str, level: &str, env: &[(&str, &str)]) -> Logged {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = write_config(dir.path(), port, extra);
        let log_dir = dir.path().join("zklogs");
        let mut c = Command::new(BIN);
        c.args([
            "server",
            "start",
            &format!("-Dzookeeper.root.logger={level},ROLLINGFILE"),
            &format!("-Dzookeeper.log.dir={}", log_dir.display()),
            &cfg,
        ])
        .current_dir(dir.path())
        .env("ZOO_LOG_DIR", dir.path().join("logs"))
        .env_remove("ZOOPIDFILE");
        for (k, v) in env {
            c.env(k, v);
        }
        let guard = Daemon {
            pid_file: dir.path().join("data/zookeeper_server.pid"),
        };
        let o = c.output().unwrap();
        assert!(o.status.success(), "{o:?}");
        assert!(wait_status(dir.path(), &cfg).status.success());
        Logged {
            port,
            cfg,
            log: log_dir.join("zookeeper.log"),
            _guard: guard,
            dir,
        }
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(&self._guard.pid_file)
            .unwrap()
            .trim()
            .to_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A four-letter word and `extra` bytes after it; the answer.
    fn word(&self, w: &str, extra: &[u8]) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(&[w.as_bytes(), extra].concat()).unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    }

    fn stop(self) {
        let o = run(self.dir.path(), &["server", "stop", &self.cfg]);
        assert!(o.status.success(), "{o:?}");
    }
}

/// `jvm.pause.monitor=true`: a process stopped for 1.5 s (SIGSTOP) shows
/// as a pause in mntr's jvm_pause_time_ms and in the log, as Apache's
/// JvmPauseMonitor reports a stalled JVM.
#[test]
fn pause_monitor_reports_a_stopped_process() {
    let d = Logged::start(
        "4lw.commands.whitelist=srvr,mntr\njvm.pause.monitor=true\n\
         jvm.pause.sleep.time.ms=100\njvm.pause.info-threshold.ms=500\n",
        "INFO",
        &[],
    );
    let max_pause = |m: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix("zk_max_jvm_pause_time_ms\t"))
            .unwrap_or_else(|| panic!("no zk_max_jvm_pause_time_ms in {m}"))
            .parse()
            .unwrap()
    };
    let signal = |sig: &str| {
        let st = Command::new("kill").args([sig, &d.pid()]).status().unwrap();
        assert!(st.success());
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_millis(1500));
    signal("-CONT");
    // The sleep that spanned the stop ends once the process runs again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut m = d.word("mntr", &[]);
    while max_pause(&m) < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        m = d.word("mntr", &[]);
    }
    assert!(max_pause(&m) >= 1000, "{m}");
    let log = d.log();
    assert!(
        log.contains("detected pause in the process or host machine"),
        "{log}"
    );
    d.stop();
}

/// The trace mask gates TRACE logging as ZooTrace does: with the log at
/// TRACE, client requests are traced while the mask has
/// CLIENT_REQUEST_TRACE_MASK (2, in ZooTrace's initial 306) and not once
/// `stmk` clears it; sessions entering and leaving the tracker while it has
/// SESSION_TRACE_MASK (32).
#[test]
fn trace_mask_gates_request_and_session_traces() {
    let d = Logged::start(
        "4lw.commands.whitelist=srvr,stmk\n",
        "TRACE",
        &[("RUST_LOG", "server=trace,info")],
    );
    let server = format!("127.0.0.1:{}", d.port);
    let cli = |path: &str| {
        let o = run(d.dir.path(), &["cli", "-server", &server, "stat", path]);
        assert!(o.status.success(), "{o:?}");
    };
    let stmk = |mask: i64| assert_eq!(d.word("stmk", &mask.to_be_bytes()), mask.to_string());
    let traced = |path: &str| {
        d.log()
            .contains(&format!("type:exists cxid:0x1 reqpath:{path}\n"))
    };
    cli("/zookeeper");
    assert!(traced("/zookeeper"), "{}", d.log());
    stmk(0);
    cli("/zookeeper/config");
    stmk(2);
    cli("/zookeeper/quota");
    // The log is written as it goes: the last request is there, the one
    // made with the mask cleared is not.
    assert!(traced("/zookeeper/quota"), "{}", d.log());
    assert!(!traced("/zookeeper/config"), "{}", d.log());
    assert!(d.log().contains("set text trace mask to 0x0"));
    // SESSION (in the initial 306, not in 0 or 2): sessions entering and
    // leaving the tracker, as SessionTrackerImpl traces them.
    let sessions = |what: &str| {
        d.log()
            .matches(&format!("SessionTrackerImpl --- {what} session 0x"))
            .count()
    };
    assert_eq!(
        (sessions("Adding"), sessions("Removing")),
        (1, 1),
        "{}",
        d.log()
    );
    stmk(32);
    cli("/zookeeper");
    assert_eq!(
        (sessions("Adding"), sessions("Removing")),
        (2, 2),
        "{}",
        d.log()
    );
    assert_eq!(
        d.log().matches("reqpath:/zookeeper\n").count(),
        1,
        "{}",
        d.log()
    );
    d.stop();
}
