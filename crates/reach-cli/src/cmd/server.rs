//! `reach server`.

use clap::Args;

/// Arguments of `reach server`.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {}

pub(crate) fn run(_args: ServerArgs) -> anyhow::Result<()> {
    anyhow::bail!("reach server is being built (issue 3)")
}
