//! `rookeeper cli`: the counterpart of Apache ZooKeeper's zkCli.sh.

/// Runs the shell with the arguments after `cli`; returns the exit code.
pub fn main(_args: &[String]) -> i32 {
    eprintln!("rookeeper cli: not built yet");
    2
}
