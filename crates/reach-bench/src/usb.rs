//! `reach bench usb`: bulk MB/s and control round trips through the whole USB stack
//! (client → protocol → host session → zero-latency fake device). The cases live in
//! `reach_usb::bench`. With `--relay`, the same stack through a live session instead
//! (client → server relay → agent → fake device; `usb_relay`).

use std::time::Duration;

use clap::Args;
use reach_usb::bench::{self, BenchOptions};

/// Arguments of `reach bench usb`.
#[derive(Debug, Args)]
pub struct UsbBenchArgs {
    /// Seconds per bulk case (memory and TCP).
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Seconds per case with the injected round trip.
    #[arg(long, default_value_t = 3.0)]
    delayed_seconds: f64,
    /// Injected round-trip time in milliseconds.
    #[arg(long, default_value_t = 50)]
    rtt_ms: u64,
    /// Control samples.
    #[arg(long, default_value_t = 5000)]
    control_samples: usize,
    /// Print JSON lines instead of Markdown tables.
    #[arg(long)]
    json: bool,
    /// Only 16 KiB transfers with one in flight (memory, TCP) and the control round trips.
    #[arg(long)]
    focus: bool,
    /// Through a live session: technician client → server relay → agent → fake device, with and
    /// without a simulated 1080p video stream, then with `--rtt-ms` added between the
    /// technician and the server (0 skips that part).
    #[arg(long)]
    relay: bool,
}

pub fn run(args: UsbBenchArgs) -> anyhow::Result<()> {
    let opts = BenchOptions {
        seconds: Duration::from_secs_f64(args.seconds),
        delayed_seconds: Duration::from_secs_f64(args.delayed_seconds),
        rtt: Duration::from_millis(args.rtt_ms),
        control_samples: args.control_samples,
        json: args.json,
        focus: args.focus,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if args.relay {
        let relay = crate::usb_relay::RelayUsbOptions {
            seconds: opts.seconds,
            control_samples: opts.control_samples,
            json: opts.json,
            rtt: opts.rtt,
            delayed_seconds: opts.delayed_seconds,
        };
        return rt.block_on(crate::usb_relay::run(&relay));
    }
    rt.block_on(bench::run_all(&opts, |line| println!("{line}")))
        .map_err(anyhow::Error::msg)
}
