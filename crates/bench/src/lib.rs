//! `rookeeper bench`: a pipelining load generator for ZooKeeper servers
//! (ours or Apache's) and a side-by-side comparison harness.
//!
//! `rookeeper bench --servers H:P[,...] --workload W [...]` runs one
//! workload and prints a table (or `--json`); `rookeeper bench compare
//! [...]` starts rookeeper and Apache ZooKeeper with equivalent settings,
//! runs the workloads against each in alternation and writes a report.

pub mod chart;
pub mod compare;
pub mod conn;
pub mod failover;
pub mod stats;
pub mod workload;

use clap::Parser;

pub use compare::free_port;
pub use workload::{RunOpts, Workload};

#[derive(Debug, Parser)]
#[command(
    name = "rookeeper bench",
    about = "Load generator for ZooKeeper servers"
)]
struct RunCli {
    #[command(flatten)]
    opts: RunOpts,
}

#[derive(Debug, Parser)]
#[command(
    name = "rookeeper bench compare",
    about = "rookeeper vs Apache ZooKeeper 3.8: workloads, resources, report"
)]
struct CompareCli {
    #[command(flatten)]
    opts: compare::CompareOpts,
}

/// Raises the soft open-file limit to the hard one: a run holds a socket per
/// session (1000 watchers in the comparison's fan-out), and the servers
/// `bench compare` starts inherit the limit.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Runs the bench command with the arguments after `bench`.
pub fn main(args: &[String]) -> anyhow::Result<()> {
    raise_nofile_limit();
    if args.first().map(String::as_str) == Some("compare") {
        let mut cli = CompareCli::parse_from(
            std::iter::once("rookeeper bench compare".to_owned()).chain(args[1..].iter().cloned()),
        );
        compare::pin_harness(&mut cli.opts)?;
        let rt = tokio::runtime::Runtime::new()?;
        return rt.block_on(compare::run(cli.opts));
    }
    let rt = tokio::runtime::Runtime::new()?;
    let cli = RunCli::parse_from(
        std::iter::once("rookeeper bench".to_owned()).chain(args.iter().cloned()),
    );
    let o = cli.opts;
    let r = rt.block_on(workload::run(&o))?;
    if o.json {
        eprint!("{}", r.table());
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", r.table());
    }
    Ok(())
}
