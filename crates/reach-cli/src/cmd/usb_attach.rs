//! `reach usb attach|detach|attached|serve`: a Reach-shared device in this machine's kernel
//! through vhci-hcd. Thin: parsing and printing only; the work is in `reach_usbip`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use reach_usb::tools::{self, UsbPaths};
use reach_usbip::attach::{self, AttachRequest, Progress, Via};
use reach_usbip::counters::read_state;
use reach_usbip::pump::PumpEnd;
use reach_usbip::vhci::Vhci;

use super::usb_session::Notifier;
use serde_json::json;

/// Arguments of `reach usb attach`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("host").required(true).args(["session", "via"])))]
pub(crate) struct AttachArgs {
    /// Session id: the device of that session's machine, with your `reach login`.
    #[arg(long)]
    session: Option<String>,
    /// A host serving USB directly: tcp://HOST:PORT (a `reach usb serve` listener).
    #[arg(long, value_parser = Via::parse)]
    via: Option<Via>,
    /// Which device: VID:PID[:SERIAL], hex ids (e.g. 1d6b:0104).
    #[arg(long, value_parser = attach::parse_device)]
    device: reach_usb::proto::DeviceFilter,
    /// vhci-hcd's sysfs directory.
    #[arg(long, default_value = reach_usbip::vhci::DEFAULT_VHCI_DIR, hide = true)]
    vhci_dir: std::path::PathBuf,
}

/// Arguments of `reach usb detach`.
#[derive(Debug, Args)]
pub(crate) struct DetachArgs {
    /// vhci port (as shown by `reach usb attached`).
    #[arg(required_unless_present = "all")]
    port: Option<u32>,
    /// Detach every attached device.
    #[arg(long, conflicts_with = "port")]
    all: bool,
}

/// Arguments of `reach usb attached`.
#[derive(Debug, Args)]
pub(crate) struct AttachedArgs {
    /// vhci-hcd's sysfs directory.
    #[arg(long, default_value = reach_usbip::vhci::DEFAULT_VHCI_DIR, hide = true)]
    pub(crate) vhci_dir: std::path::PathBuf,
}

/// Arguments of `reach usb serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:7300")]
    listen: SocketAddr,
    /// Serve no USB protocol listener (only the REST API).
    #[arg(long, conflicts_with = "no_api")]
    no_listen: bool,
    #[command(flatten)]
    api: super::usb_api::ServeApiArgs,
}

fn print_progress(json_out: bool) -> Arc<dyn Fn(Progress) + Send + Sync> {
    Arc::new(move |p: Progress| {
        let (value, text) = match &p {
            Progress::Claimed(d, _) => (
                json!({"event": "claimed", "device": d}),
                format!(
                    "claimed {:04x}:{:04x} {} ({} speed) on the host",
                    d.vendor_id,
                    d.product_id,
                    d.product.as_deref().unwrap_or("-"),
                    d.speed
                ),
            ),
            Progress::Attached(port) => (
                json!({"event": "attached", "port": port}),
                format!("attached as vhci port {}", port.port),
            ),
            Progress::Enumerated { sysfs, nodes } => {
                let list: Vec<String> = nodes.iter().map(|n| n.display().to_string()).collect();
                let shown = if list.is_empty() {
                    "none".to_owned()
                } else {
                    list.join(" ")
                };
                (
                    json!({"event": "enumerated", "sysfs": sysfs, "nodes": list}),
                    format!("local device {} nodes: {shown}", sysfs.display()),
                )
            }
            Progress::Detached(port) => (
                json!({"event": "detached", "port": port.port}),
                format!("detached from vhci port {}", port.port),
            ),
            Progress::Resuming(why) => (
                json!({"event": "resuming", "reason": why}),
                format!("connection lost ({why}), resuming…"),
            ),
            Progress::Resumed => (json!({"event": "resumed"}), "resumed".to_owned()),
            Progress::Ended(why) => (
                json!({"event": "ended", "reason": why}),
                format!("ended: {why}"),
            ),
        };
        if json_out {
            println!("{value}");
        } else {
            println!("{text}");
        }
    })
}

/// Also tells the host (its audit) when the device enters and leaves this kernel.
fn noting(
    print: Arc<dyn Fn(Progress) + Send + Sync>,
    notifier: Notifier,
) -> Arc<dyn Fn(Progress) + Send + Sync> {
    let claimed = std::sync::Mutex::new(None);
    Arc::new(move |p: Progress| {
        let mut claimed = claimed.lock().unwrap_or_else(|e| e.into_inner());
        match &p {
            Progress::Claimed(device, claim) => *claimed = Some((device.clone(), *claim)),
            Progress::Attached(_) | Progress::Detached(_) => {
                if let Some((device, claim)) = claimed.as_ref() {
                    let attached = matches!(p, Progress::Attached(_));
                    if !notifier.note(attached, *claim, device) {
                        tracing::warn!("the host was not told (no connection)");
                    }
                }
            }
            _ => {}
        }
        drop(claimed);
        print(p);
    })
}

pub(crate) async fn attach(
    args: AttachArgs,
    config_dir: Option<&Path>,
    json_out: bool,
) -> anyhow::Result<()> {
    let vhci = Vhci::new(args.vhci_dir);
    // Before joining a session: a missing vhci-hcd is the first thing to fix.
    vhci.check_writable()?;
    let mut progress = print_progress(json_out);
    let conn = match (args.session, args.via) {
        (Some(session), _) => {
            let rejoin = super::usb_session::Rejoin::load(config_dir, &session)?;
            let (viewer, client) = super::usb_session::join(config_dir, &session).await?;
            let notifier = Notifier::default();
            progress = noting(progress, notifier.clone());
            super::usb_session::connection(viewer, client, rejoin, progress.clone(), notifier)
        }
        (None, Some(via)) => via.connect().await?,
        (None, None) => bail!("give --session ID or --via tcp://HOST:PORT"),
    };
    let req = AttachRequest {
        filter: args.device,
        vhci,
        state_dir: Some(state_dir(config_dir)),
    };
    let end = attach::attach(req, conn, progress, stop_signal()).await?;
    match end {
        PumpEnd::Detached => Ok(()),
        other => bail!("{other}"),
    }
}

/// Ctrl+C or SIGTERM: detach and release the claim before exiting.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => drop(tokio::signal::ctrl_c().await),
    }
}

pub(crate) fn detach(args: DetachArgs, json_out: bool) -> anyhow::Result<()> {
    let vhci = Vhci::default();
    let ports: Vec<u32> = if args.all {
        vhci.attached()?.iter().map(|a| a.port.port).collect()
    } else {
        args.port.into_iter().collect()
    };
    for port in &ports {
        vhci.detach(*port)?;
    }
    if json_out {
        println!("{}", json!({"detached": ports}));
    } else if ports.is_empty() {
        println!("nothing attached");
    } else {
        for port in ports {
            println!("detached vhci port {port}");
        }
    }
    Ok(())
}

/// Where `reach usb attach` publishes each port's throughput (`port-N.json`).
fn state_dir(config_dir: Option<&Path>) -> std::path::PathBuf {
    let dir = config_dir.map_or_else(|| UsbPaths::from_env().config_dir, Path::to_path_buf);
    dir.join("attached")
}

pub(crate) fn attached(
    vhci_dir: std::path::PathBuf,
    config_dir: Option<&Path>,
    json_out: bool,
) -> anyhow::Result<()> {
    let list = Vhci::new(vhci_dir).attached()?;
    let states = state_dir(config_dir);
    let with_counts: Vec<_> = list
        .into_iter()
        .map(|a| {
            let state = read_state(&states, a.port.port);
            (a, state)
        })
        .collect();
    if json_out {
        let list: Vec<_> = with_counts
            .iter()
            .map(|(a, state)| {
                let mut v = json!(a);
                v["throughput"] = json!(state.as_ref().map(|s| s.throughput));
                v["attach_pid"] = json!(state.as_ref().map(|s| s.pid));
                v
            })
            .collect();
        println!("{}", json!({"attached": list}));
        return Ok(());
    }
    if with_counts.is_empty() {
        println!("No devices attached through vhci-hcd.");
    }
    for (a, state) in with_counts {
        let nodes: Vec<String> = a.nodes.iter().map(|n| n.display().to_string()).collect();
        let counts = state.map_or_else(
            || "-".to_owned(),
            |s| {
                let t = s.throughput;
                format!(
                    "out {} B, in {} B, {} transfers",
                    t.bytes_out, t.bytes_in, t.transfers
                )
            },
        );
        println!(
            "port {:<3} {:<9} {}  {}  {}  {counts}",
            a.port.port,
            a.port.local_busid,
            a.ids.as_deref().unwrap_or("-"),
            a.product.as_deref().unwrap_or("-"),
            nodes.join(" ")
        );
    }
    Ok(())
}

pub(crate) async fn serve(args: ServeArgs, paths: &UsbPaths, backend: &str) -> anyhow::Result<()> {
    let backend = tools::backend_named(backend).map_err(anyhow::Error::msg)?;
    if args.no_listen {
        let api = super::usb_api::for_serve(&args.api, paths, backend).await?;
        return Ok(api.context("--no-listen needs the API")?.wait().await?);
    }
    let listener = reach_usbip::serve::bind(args.listen).await?;
    println!("serving USB on tcp://{}", listener.local_addr()?);
    let usb = tokio::spawn(reach_usbip::serve::serve(
        listener,
        paths.clone(),
        Arc::clone(&backend),
    ));
    let _api = super::usb_api::for_serve(&args.api, paths, backend).await?;
    Ok(usb.await?)
}
