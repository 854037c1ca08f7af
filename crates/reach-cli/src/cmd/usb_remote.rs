//! `reach usb remote …`: the technician's side — use a device plugged into a remote machine
//! through a live session (`reach login` first).
//!
//! Joins the session as a viewer, runs `reach_usb`'s client over the session's USB channel, and
//! prints what the remote agent shows, opens or measures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use reach_client::remote::RemoteOp;
use reach_usb::proto::Setup;
use reach_usb::proto::control::hex16;
use reach_usb::proto::{DeviceFilter, DeviceInfo};
use serde_json::json;

/// `reach usb remote` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// List the devices the remote host shares with you (its ACL decides).
    List {
        /// Session id (from the console or `GET /api/sessions`).
        #[arg(long)]
        session: String,
    },
    /// Claim a remote device, read its device descriptor, release it.
    Open {
        /// Session id.
        #[arg(long)]
        session: String,
        /// idVendor, hex.
        #[arg(long, value_parser = parse_hex16)]
        vendor_id: Option<u16>,
        /// idProduct, hex.
        #[arg(long, value_parser = parse_hex16)]
        product_id: Option<u16>,
        /// Serial.
        #[arg(long)]
        serial: Option<String>,
        /// Then send this many bytes through the device's bulk loopback (first bulk OUT → first
        /// bulk IN, e.g. the loopback gadget 0525:a4a0) and check they come back byte-exact.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=super::usb_echo::MAX_ECHO as i64))]
        echo: Option<u32>,
    },
    /// Measure bulk MB/s and control round trips to a remote device's loopback endpoints
    /// (the demo device `0525:a4a0`: bulk IN source 0x83, bulk OUT sink 0x04).
    Bench {
        /// Session id.
        #[arg(long)]
        session: String,
        /// Seconds per bulk case.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Control round trips measured.
        #[arg(long, default_value_t = 1000)]
        control_samples: usize,
    },
}

fn parse_hex16(text: &str) -> Result<u16, String> {
    hex16::parse(text).ok_or_else(|| format!("{text:?} is not 1-4 hex digits"))
}

pub(crate) async fn run(
    config_dir: Option<PathBuf>,
    what: RemoteCommand,
    json: bool,
) -> anyhow::Result<()> {
    match what {
        RemoteCommand::List { session } => {
            let api = super::login::Login::load(config_dir.as_deref())?.api()?;
            let answer = RemoteOp::UsbRemoteList { session }.run(&api).await?;
            if json {
                println!("{answer}");
                return Ok(());
            }
            let devices: Vec<DeviceInfo> = serde_json::from_value(answer["devices"].clone())?;
            if devices.is_empty() {
                println!(
                    "The remote host shares no devices with you (none connected, or all denied by its ACL)."
                );
            }
            for d in &devices {
                let name = d.product.as_deref().unwrap_or("-");
                println!(
                    "{:<10} {:04x}:{:04x}  serial {}  {name}",
                    d.bus_id,
                    d.vendor_id,
                    d.product_id,
                    d.serial.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        RemoteCommand::Open {
            session,
            vendor_id,
            product_id,
            serial,
            echo,
        } => {
            let (_viewer, client) =
                super::usb_session::join(config_dir.as_deref(), &session).await?;
            let filter = DeviceFilter {
                vendor_id,
                product_id,
                serial,
                bus_id: None,
            };
            let handle = client.open(filter).await?;
            let descriptor = handle.control_in(Setup::get_device_descriptor()).await;
            let echoed = match (&descriptor, echo) {
                (Ok(_), Some(bytes)) => Some(super::usb_echo::echo(&handle, bytes as usize).await),
                _ => None,
            };
            let (claim, device) = (handle.claim_id(), handle.device().clone());
            handle.close().await;
            let descriptor = hex::encode(descriptor?);
            let echo_seconds = echoed.transpose()?;
            if json {
                println!(
                    "{}",
                    json!({"claim_id": claim, "device": device, "device_descriptor": descriptor,
                        "echo_bytes": echo, "echo_seconds": echo_seconds})
                );
            } else {
                println!(
                    "claim {claim} opened {:04x}:{:04x} ({}) on the remote host\ndevice descriptor: {descriptor}",
                    device.vendor_id,
                    device.product_id,
                    device.product.as_deref().unwrap_or("-")
                );
                if let (Some(bytes), Some(s)) = (echo, echo_seconds) {
                    println!("echo: {bytes} bytes back byte-exact in {s:.2} s");
                }
            }
            Ok(())
        }
        RemoteCommand::Bench {
            session,
            seconds,
            control_samples,
        } => {
            let (_viewer, client) =
                super::usb_session::join(config_dir.as_deref(), &session).await?;
            let client = client.with_timeout(Duration::from_secs(60));
            let handle = client.open(DeviceFilter::default()).await?;
            let seconds = Duration::from_secs_f64(seconds);
            for (out, size, in_flight) in [
                (false, 16 << 10, 32),
                (true, 16 << 10, 32),
                (false, 1 << 20, 32),
                (true, 1 << 20, 32),
            ] {
                let mbs =
                    reach_bench::usb_relay::bulk(&handle, out, size, in_flight, seconds).await?;
                let dir = if out { "out" } else { "in" };
                if json {
                    println!(
                        "{}",
                        json!({"transfer": format!("bulk_{dir}"), "size": size, "in_flight": in_flight, "mb_per_s": mbs})
                    );
                } else {
                    println!("bulk {dir} {size} B x {in_flight} in flight: {mbs:.1} MB/s");
                }
            }
            let (p50, p99) = reach_bench::usb_relay::control(&handle, control_samples).await?;
            if json {
                println!(
                    "{}",
                    json!({"transfer": "control", "p50_us": p50, "p99_us": p99})
                );
            } else {
                println!("control round trip: p50 {p50:.0} µs, p99 {p99:.0} µs");
            }
            handle.close().await;
            Ok(())
        }
    }
}
