//! The `rookeeper` command.

mod tools;

use std::path::PathBuf;

use anyhow::{bail, Result};

const USAGE: &str = "usage:
  rookeeper server [-Dkey=value ...] [PATH/zoo.cfg]
  rookeeper snapshot dump [-d|--json] SNAPSHOT_FILE
  rookeeper log dump TXN_LOG_FILE
  rookeeper purge DATALOGDIR [SNAPDIR] -n COUNT
  rookeeper cli [-server host:port[,...][/chroot]] [-timeout ms] [-r] [COMMAND ARGS...]
  rookeeper bench --servers host:port[,...] --workload W ...
  rookeeper version

With no zoo.cfg the server runs standalone on port 2181 with ZooKeeper's
defaults (tickTime 2000, dataDir ./data).";

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `-Dkey=value` settings, in order.
type Defines = Vec<(String, String)>;

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

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            init_logging();
            let (defines, cfg_path) = parse_server_args(&args[1..])?;
            let cfg = server::Config::load(cfg_path.as_deref(), &defines)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(server::run(cfg, shutdown_signal()))
        }
        Some("snapshot") if args.get(1).map(String::as_str) == Some("dump") => {
            tools::snapshot_dump(&args[2..])
        }
        Some("log") if args.get(1).map(String::as_str) == Some("dump") => {
            tools::log_dump(&args[2..])
        }
        Some("purge") => tools::purge(&args[1..]),
        Some("cli") => std::process::exit(cli::main(&args[1..])),
        Some("bench") => bench::main(&args[1..]),
        Some("-h") | Some("--help") | Some("help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("version") | Some("--version") => {
            println!(
                "rookeeper {} (Apache ZooKeeper {} compatible)",
                env!("CARGO_PKG_VERSION"),
                server::fourlw::ZK_VERSION
            );
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}
