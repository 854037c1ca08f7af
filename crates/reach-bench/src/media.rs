//! `reach bench media`: 1080p capture + encode cost and bandwidth for static, typing,
//! scrolling and video-like screens, with the raw and H.264 codecs.

use anyhow::Context as _;
use clap::Args;
use reach_media::Codec;
use reach_media::bench::{BenchOptions, format_report, run as run_bench};

/// Arguments of `reach bench media`.
#[derive(Debug, Args)]
pub struct MediaBenchArgs {
    /// X display to draw on and capture; default: a private Xvfb started for the run.
    #[arg(long)]
    display: Option<String>,
    /// Screen width of the private Xvfb, pixels.
    #[arg(long, default_value_t = 1920)]
    width: u32,
    /// Screen height of the private Xvfb, pixels.
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// Measured frames per workload and codec.
    #[arg(long, default_value_t = 90)]
    frames: u32,
    /// Codecs to measure, comma separated (raw, h264).
    #[arg(long, value_delimiter = ',', default_value = "raw,h264")]
    codecs: Vec<String>,
    /// H.264 target bitrate, bits per second.
    #[arg(long, default_value_t = 4_000_000)]
    bitrate: u32,
}

pub fn run(args: MediaBenchArgs) -> anyhow::Result<()> {
    let codecs = args
        .codecs
        .iter()
        .map(|name| name.parse::<Codec>())
        .collect::<Result<Vec<_>, _>>()?;
    let options = BenchOptions {
        display: args.display,
        width: args.width,
        height: args.height,
        frames: args.frames,
        codecs,
        bitrate_bps: args.bitrate,
    };
    let rows = run_bench(&options).context("media benchmark failed")?;
    println!("{}", format_report(&rows, options.width, options.height));
    Ok(())
}
