//! The `rookeeper` command.

mod lifecycle;
mod tools;

use anyhow::{bail, Result};

// mimalloc rather than glibc's malloc: allocation was a quarter of a
// leader's write path; with mimalloc an ensemble takes ~15-30% more writes
// per second; with release_free_memory below, memory per znode is below
// glibc's too (bench/results, 2026-12-03).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// After recovery and after each snapshot (large frees, then often an idle
/// server): mimalloc purges freed pages lazily, when the freeing thread
/// allocates again, so an idle server kept them (RSS at 1M znodes 484 B
/// per znode, against 401 B purging at once).
fn release_free_memory() {
    // SAFETY: mi_collect takes no pointers; it is safe from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// The load generator opens and drops connections by the thousand (churn,
/// watch fan-out): with transparent huge pages each purged-then-reused
/// arena page faulted in and zeroed 2 MiB, 79% of the generator's CPU in
/// `perf` and a third of a core at 200 cycles/s, which showed up as
/// latency of whichever server was measured. The server keeps them (its
/// restart with 1M znodes is faster with them). prctl rather than
/// mimalloc's option: the arena mimalloc reserved before main is already
/// advised for huge pages, and the prctl covers it too.
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

pub(crate) const USAGE: &str = "usage:
  rookeeper server [-Dkey=value ...] [PATH/zoo.cfg]
  rookeeper server {start|start-foreground|stop|restart|status|print-cmd|version} [-Dkey=value ...] [PATH/zoo.cfg]
  rookeeper snapshot dump [-d|--json] SNAPSHOT_FILE
  rookeeper log dump TXN_LOG_FILE
  rookeeper purge DATALOGDIR [SNAPDIR] -n COUNT
  rookeeper cli [-server host:port[,...][/chroot]] [-timeout ms] [-r] [COMMAND ARGS...]
  rookeeper bench --servers host:port[,...] --workload W ...
  rookeeper bench compare [--ensemble] [--duration S] ...   (rookeeper vs Apache 3.8, report in bench/results)
  rookeeper version

With no zoo.cfg the server runs standalone on port 2181 with ZooKeeper's
defaults (tickTime 2000, dataDir ./data).";

fn main() -> Result<()> {
    server::persist::set_release_free_memory(release_free_memory);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => lifecycle::server(&args[1..]),
        Some("snapshot") if args.get(1).map(String::as_str) == Some("dump") => {
            tools::snapshot_dump(&args[2..])
        }
        Some("log") if args.get(1).map(String::as_str) == Some("dump") => {
            tools::log_dump(&args[2..])
        }
        Some("purge") => tools::purge(&args[1..]),
        Some("cli") => std::process::exit(cli::main(&args[1..])),
        Some("bench") => {
            no_huge_pages();
            bench::main(&args[1..])
        }
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
