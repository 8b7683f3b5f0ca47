//! `rookeeper server`: the server in the foreground, or zkServer.sh's verbs
//! (`start`, `start-foreground`, `stop`, `restart`, `status`, `print-cmd`,
//! `version`) with its messages and exit codes, so scripts written for
//! zkServer.sh port over. Logging settings (level, file) live here too.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::USAGE;

/// `-Dkey=value` settings, in order.
type Defines = Vec<(String, String)>;

const VERBS: &[&str] = &[
    "start",
    "start-foreground",
    "stop",
    "restart",
    "status",
    "print-cmd",
    "version",
];

/// Splits `-Dkey=value` arguments from the rest.
fn parse_server_args(args: &[String]) -> Result<(Defines, Option<PathBuf>)> {
    let mut defines = Vec::new();
    let mut cfg = None;
    for a in args {
        if let Some(kv) = a.strip_prefix("-D") {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            defines.push((k.to_owned(), v.to_owned()));
        } else if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        } else if a.starts_with('-') {
            bail!("unknown option {a}\n{USAGE}");
        } else if cfg.is_none() {
            cfg = Some(PathBuf::from(a));
        } else {
            bail!("unexpected argument {a}\n{USAGE}");
        }
    }
    Ok((defines, cfg))
}

/// The `server` subcommand.
pub fn server(args: &[String]) -> Result<()> {
    let verb = args
        .first()
        .map(String::as_str)
        .filter(|a| VERBS.contains(a));
    let rest = if verb.is_some() { &args[1..] } else { args };
    let (defines, cfg_path) = parse_server_args(rest)?;
    let code = match verb {
        None | Some("start-foreground") => return foreground(&defines, cfg_path.as_deref()),
        Some("version") => {
            println!(
                "Apache ZooKeeper, version {}",
                server::fourlw::full_version()
            );
            0
        }
        Some(v) => {
            eprintln!(
                "Using config: {}",
                cfg_path
                    .as_deref()
                    .map_or("(built-in defaults)".into(), |p| p.display().to_string())
            );
            let cfg = server::Config::load(cfg_path.as_deref(), &defines)?;
            match v {
                "start" => start(&cfg, &defines, cfg_path.as_deref())?,
                "stop" => stop(&cfg)?,
                "restart" => {
                    stop(&cfg)?;
                    start(&cfg, &defines, cfg_path.as_deref())?
                }
                "status" => status(&cfg),
                "print-cmd" => {
                    println!("{}", shown_command(&cfg, &defines, cfg_path.as_deref())?);
                    0
                }
                _ => unreachable!("verbs are listed in VERBS"),
            }
        }
    };
    std::process::exit(code)
}

/// Runs the server in this process until SIGTERM/SIGINT.
fn foreground(defines: &Defines, cfg_path: Option<&Path>) -> Result<()> {
    let cfg = server::Config::load(cfg_path, defines)?;
    init_logging(&cfg)?;
    // tokio's defaults. event_interval 4096 (socket readiness looked for
    // less often while busy) sent a 1000-watcher burst before the requests
    // read meanwhile (watch fan-out p99 19-25 ms instead of 24-43) but cost
    // mixed 90% reads 15% of their throughput, so it is not used.
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(server::run(cfg, shutdown_signal()))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Logging: RUST_LOG, else the level of `zookeeper.root.logger` (log4j's
/// "LEVEL, APPENDER" form; INFO by default). With a file appender
/// (ROLLINGFILE/FILE/TRACEFILE) the log goes to
/// `zookeeper.log.dir`/`zookeeper.log.file` (defaults `.`, zookeeper.log),
/// otherwise to stderr, as with log4j's CONSOLE.
fn init_logging(cfg: &server::Config) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let root = cfg
        .prop("zookeeper.root.logger")
        .map(str::to_owned)
        .or_else(|| std::env::var("ZOO_LOG4J_PROP").ok())
        .unwrap_or_else(|| "INFO, CONSOLE".into());
    let mut parts = root.split(',').map(str::trim);
    let level = match parts.next().unwrap_or("INFO").to_ascii_uppercase().as_str() {
        "ALL" | "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => "info",
    };
    let to_file = parts.any(|a| {
        matches!(
            a.to_ascii_uppercase().as_str(),
            "ROLLINGFILE" | "FILE" | "TRACEFILE"
        )
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if to_file {
        let dir = log_dir(cfg);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
        let name = cfg.prop("zookeeper.log.file").unwrap_or("zookeeper.log");
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open log file {}", path.display()))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    } else {
        // Colours only for a terminal: logs redirected to files stay plain.
        use std::io::IsTerminal;
        let ansi = std::io::stderr().is_terminal();
        builder.with_ansi(ansi).with_writer(std::io::stderr).init();
    }
    Ok(())
}

/// `zookeeper.log.dir` (-D), else ZOO_LOG_DIR, else the current directory.
fn log_dir(cfg: &server::Config) -> PathBuf {
    cfg.prop("zookeeper.log.dir")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("ZOO_LOG_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// ZOOPIDFILE, else `<dataDir>/zookeeper_server.pid`, as zkServer.sh.
fn pid_file(cfg: &server::Config) -> PathBuf {
    std::env::var_os("ZOOPIDFILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cfg.data_dir.join("zookeeper_server.pid"))
}

/// Where a daemon's stdout and stderr go (zkServer.sh's _ZOO_DAEMON_OUT):
/// ZOO_LOG_DIR, else zookeeper.log.dir, else the current directory.
fn daemon_out(cfg: &server::Config) -> PathBuf {
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    // zkServer.sh puts it in $ZOO_LOG_DIR, whatever -D says.
    let dir = std::env::var_os("ZOO_LOG_DIR").map_or_else(|| log_dir(cfg), PathBuf::from);
    dir.join(format!("zookeeper-{user}-server-{host}.out"))
}

fn daemon_args(defines: &Defines, cfg_path: Option<&Path>) -> Result<Vec<String>> {
    let mut args = vec!["server".to_owned(), "start-foreground".to_owned()];
    for (k, v) in defines {
        args.push(format!("-D{k}={v}"));
    }
    if let Some(p) = cfg_path {
        // The daemon may not share our working directory's meaning later.
        let abs =
            std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))?;
        args.push(abs.display().to_string());
    }
    Ok(args)
}

fn shown_command(
    cfg: &server::Config,
    defines: &Defines,
    cfg_path: Option<&Path>,
) -> Result<String> {
    let exe = std::env::current_exe()?;
    let args: Vec<String> = daemon_args(defines, cfg_path)?
        .into_iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    Ok(format!(
        "\"{}\" {} > \"{}\" 2>&1 < /dev/null",
        exe.display(),
        args.join(" "),
        daemon_out(cfg).display()
    ))
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; a zombie (exited, not yet reaped) counts
    // as gone.
    // SAFETY: kill(2) with signal 0 only checks that pid exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn start(cfg: &server::Config, defines: &Defines, cfg_path: Option<&Path>) -> Result<i32> {
    print!("Starting zookeeper ... ");
    let _ = std::io::stdout().flush();
    let pidf = pid_file(cfg);
    if let Some(pid) = read_pid(&pidf).filter(|&p| alive(p)) {
        println!("already running as process {pid}.");
        return Ok(1);
    }
    let out_path = daemon_out(cfg);
    for d in [
        out_path.parent(),
        pidf.parent(),
        Some(cfg.data_dir.as_path()),
    ]
    .into_iter()
    .flatten()
    {
        if !d.as_os_str().is_empty() {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)
        .with_context(|| format!("cannot open {}", out_path.display()))?;
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new(std::env::current_exe()?)
            .args(daemon_args(defines, cfg_path)?)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Its own process group: the terminal's hangup and Ctrl-C do
            // not reach the daemon (nohup ... & in zkServer.sh).
            .process_group(0)
            .spawn()
    };
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            println!("SERVER DID NOT START");
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let pid = child.id() as i32;
    if std::fs::write(&pidf, pid.to_string()).is_err() {
        println!("FAILED TO WRITE PID");
        return Ok(1);
    }
    // As zkServer.sh: give it a second, then see whether it is still there
    // (a bad config or a taken port ends it at once).
    std::thread::sleep(Duration::from_secs(1));
    if alive(pid) {
        println!("STARTED");
        Ok(0)
    } else {
        let _ = std::fs::remove_file(&pidf);
        println!("FAILED TO START");
        Ok(1)
    }
}

/// How long `stop` waits for the server to finish (it drains the txn log).
const STOP_WAIT: Duration = Duration::from_secs(30);

fn stop(cfg: &server::Config) -> Result<i32> {
    print!("Stopping zookeeper ... ");
    let _ = std::io::stdout().flush();
    let pidf = pid_file(cfg);
    if !pidf.exists() {
        println!(
            "no zookeeper to stop (could not find file {})",
            pidf.display()
        );
        return Ok(0);
    }
    if let Some(pid) = read_pid(&pidf) {
        // SAFETY: sends SIGTERM to the pid the pid file names, as
        // zkServer.sh's kill does.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        // zkServer.sh sleeps a second; waiting for the exit (bounded)
        // makes `restart` safe on a slow shutdown.
        let deadline = Instant::now() + STOP_WAIT;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = std::fs::remove_file(&pidf);
    println!("STOPPED");
    Ok(0)
}

/// The client address `status` asks: clientPortAddress:clientPort, else
/// this server's `server.<myid>` entry's client part (`;[addr:]port`).
fn client_endpoint(cfg: &server::Config) -> Option<(String, u16)> {
    let addr = cfg
        .client_port_address
        .map_or("localhost".to_owned(), |a| a.to_string());
    if cfg.raw.contains_key("clientPort") {
        return Some((addr, cfg.client_port));
    }
    let myid = std::fs::read_to_string(cfg.data_dir.join("myid")).ok()?;
    let entry = cfg.raw.get(&format!("server.{}", myid.trim()))?;
    let client = entry.split_once(';')?.1.trim();
    match client.rsplit_once(':') {
        Some((a, p)) => Some((
            a.trim_matches(['[', ']']).to_owned(),
            p.trim().parse().ok()?,
        )),
        None => Some((addr, client.parse().ok()?)),
    }
}

fn status(cfg: &server::Config) -> i32 {
    let Some((addr, port)) = client_endpoint(cfg) else {
        println!(
            "Unable to find either secure or unsecure client port in any configs. Terminating."
        );
        return 1;
    };
    println!("Client port found: {port}. Client address: {addr}. Client SSL: false.");
    match srvr(&addr, port) {
        Some(mode) => {
            println!("{mode}");
            0
        }
        None => {
            println!("Error contacting service. It is probably not running.");
            1
        }
    }
}

/// Asks `srvr` and returns its "Mode: ..." line.
fn srvr(addr: &str, port: u16) -> Option<String> {
    let timeout = Duration::from_secs(5);
    // "localhost" may name ::1 first while the server listens on IPv4
    // only: try every address, as a client does.
    let mut s = (addr, port)
        .to_socket_addrs()
        .ok()?
        .find_map(|sa| TcpStream::connect_timeout(&sa, timeout).ok())?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut text = String::new();
    s.take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .find(|l| l.starts_with("Mode:"))
        .map(str::to_owned)
}
