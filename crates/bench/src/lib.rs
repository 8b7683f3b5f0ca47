//! `rookeeper bench`: load generator and side-by-side comparison harness.

/// Runs the bench command with the arguments after `bench`.
pub fn main(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("rookeeper bench: not built yet")
}
