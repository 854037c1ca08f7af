//! The cases of `reach bench usb`, runnable without the `reach` binary:
//! `cargo run --release -p reach-usb --example bench_usb [-- --focus]`.

use std::time::Duration;

use reach_usb::bench::{BenchOptions, run_all};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let opts = BenchOptions {
        seconds: Duration::from_secs(1),
        delayed_seconds: Duration::from_secs(3),
        rtt: Duration::from_millis(50),
        control_samples: 5000,
        json: false,
        focus: std::env::args().any(|a| a == "--focus"),
    };
    run_all(&opts, |line| println!("{line}")).await
}
