//! `reach bench …`: benchmarks that print figures with units. Parsing and dispatch only; the
//! bodies are in the `reach-bench` crate.

use clap::{Args, Subcommand};
use reach_bench::{api, latency, media, motion, relay, usb};

/// Arguments of `reach bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// REST API: authenticated GET /api/me throughput and p50/p99 latency on loopback.
    Api(api::ApiBenchArgs),
    /// Relay (`reach server` as a child process): 1 MiB throughput, small-message latency at a
    /// fixed rate and server memory per idle session, beside direct TCP from the same run.
    Relay(relay::RelayBenchArgs),
    /// Screen capture + video encoding: fps, CPU per frame and bytes/s (raw and H.264).
    Media(media::MediaBenchArgs),
    /// Real agent → relay → viewer: typing arrival p50/p95/p99, scrolling and full-screen
    /// motion updates/s, MB/s and arrival, for raw and H.264 on loopback.
    Latency(latency::LatencyBenchArgs),
    /// Paints rectangles on an X display from stdin lines (used by web/bench/glass.mjs).
    #[command(hide = true)]
    XFill(latency::XFillArgs),
    /// Paints deterministic noise over a whole X display (used by web/tests/viewer.test.mjs).
    #[command(hide = true)]
    XNoise(latency::XFillArgs),
    /// USB passthrough: bulk MB/s (memory, TCP, 50 ms RTT) and control round-trip p50/p99;
    /// `--relay` through a live session (client → relay → agent → fake device).
    Usb(usb::UsbBenchArgs),
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchCommand::Api(args) => api::run(args),
        BenchCommand::Relay(args) => relay::run(args),
        BenchCommand::Media(args) => media::run(args),
        BenchCommand::Usb(args) => usb::run(args),
        BenchCommand::Latency(args) => latency::run(args),
        BenchCommand::XFill(args) => latency::run_x_fill(args),
        BenchCommand::XNoise(args) => motion::run_x_noise(&args.display),
    }
}
