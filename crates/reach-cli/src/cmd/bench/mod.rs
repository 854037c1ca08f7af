//! `reach bench …`: benchmarks that print figures with units.

use clap::{Args, Subcommand};

/// Arguments of `reach bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {}
}
