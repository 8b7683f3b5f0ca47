//! `rookeeper bench compare` (in progress).
#[derive(Debug, clap::Args)]
pub struct CompareOpts {}
pub async fn run(_o: CompareOpts) -> anyhow::Result<()> {
    anyhow::bail!("bench compare: not built yet")
}
