//! `reach demo`: the newcomer's first command.
//!
//! Starts a server with an embedded SQLite database in a fresh directory, creates a demo admin
//! and a managed machine, and runs an agent for that machine on this computer's display — or on a
//! private Xvfb when there is none — so the console shows one online machine to open a session
//! with. Everything stops on Ctrl+C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rand::Rng as _;
use reach_server::secrets::SecretString;
use reach_server::{AppState, Config, ConfigOverrides};

use reach_agent::usb::DenyPrompt;
use reach_bench::local::{enroll_machine, paint_demo_desktop, run_agent};
use reach_media::VirtualDisplay;

/// Arguments of `reach demo`.
#[derive(Debug, Args)]
#[command(
    after_help = "The demo keeps its database in a new temporary directory (removed on exit)\n\
    unless --data-dir is given. The admin password is random unless REACH_ADMIN_PASSWORD is set."
)]
pub(crate) struct DemoArgs {
    /// Address for the server [default: 127.0.0.1:8080, or a free port if that is taken].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Keep the database here instead of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// X display to share [default: $DISPLAY, else a private Xvfb].
    #[arg(long)]
    display: Option<String>,
    /// Start only the server (no local agent).
    #[arg(long)]
    no_agent: bool,
    /// USB device backend of the demo agent: `system` (usbfs) or `fake` (a demo loopback device
    /// `0525:a4a0`). Sharing also needs `reach usb enable` and an ACL rule for the device.
    #[arg(long, env = "REACH_USB_BACKEND", default_value = "system")]
    usb_backend: String,
}

const DEMO_MACHINE: &str = "demo-desktop";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("reach-demo-").tempdir()?),
    };
    let data_dir = match (&args.data_dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => unreachable!("a temporary directory exists when no --data-dir is given"),
    };
    let password = std::env::var("REACH_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(random_password);
    let listen = match args.listen {
        Some(listen) => listen,
        None => free_or_default_listen()?,
    };
    let overrides = ConfigOverrides {
        listen: Some(listen),
        data_dir: Some(data_dir.clone()),
        admin_password: Some(SecretString::new(password.clone())),
        ..ConfigOverrides::default()
    };
    let config = Config::load(None, overrides)?;
    let (state, first_start) = AppState::open(config).await?;
    let running = reach_server::server::start(state).await?;
    let url = running.url();

    let mut xvfb = None;
    let mut agent = None;
    if !args.no_agent {
        let display = match args
            .display
            .clone()
            .or_else(|| std::env::var("DISPLAY").ok())
        {
            Some(display) if reach_media::list_screens(Some(&display)).is_ok() => Some(display),
            _ => match VirtualDisplay::start(1280, 800) {
                Ok(private) => {
                    let name = private.name().to_owned();
                    if let Err(error) = paint_demo_desktop(&name, 1280, 800) {
                        tracing::warn!(%error, "could not paint the demo desktop");
                    }
                    xvfb = Some(private);
                    Some(name)
                }
                Err(error) => {
                    eprintln!("No X display to share and no private one: {error:#}");
                    eprintln!(
                        "Install Xvfb (apt-get install xvfb, or scripts/setup.sh) or run under a desktop session."
                    );
                    eprintln!("Continuing with the server only.");
                    None
                }
            },
        };
        if let Some(display) = display {
            let key = enroll_machine(&url, &password, DEMO_MACHINE).await?;
            let backend =
                reach_usb::tools::backend_named(&args.usb_backend).map_err(anyhow::Error::msg)?;
            let usb = super::agent::usb_options(backend, std::sync::Arc::new(DenyPrompt));
            agent = Some(tokio::spawn(run_agent(
                url.clone(),
                key,
                display,
                Some(usb),
            )));
        }
    }

    print_banner(
        &url,
        &password,
        &data_dir,
        first_start.created,
        xvfb.as_ref(),
        agent.is_some(),
    );
    shutdown_signal().await;
    println!("Stopping the demo…");
    if let Some(agent) = agent {
        agent.abort();
    }
    running.shutdown().await?;
    drop(xvfb);
    drop(temp);
    Ok(())
}

fn print_banner(
    url: &str,
    password: &str,
    data_dir: &std::path::Path,
    created: bool,
    xvfb: Option<&VirtualDisplay>,
    agent: bool,
) {
    println!();
    println!("Reach demo is running.");
    println!("  Console:   {url}/");
    println!("  User:      admin");
    if created {
        println!("  Password:  {password}");
    } else {
        println!(
            "  Password:  (unchanged from the first start of {})",
            data_dir.display()
        );
    }
    println!("  Data:      {}", data_dir.display());
    match (agent, xvfb) {
        (true, Some(x)) => println!(
            "  Agent:     \"{DEMO_MACHINE}\" on a private virtual display {} (Xvfb)",
            x.name()
        ),
        (true, None) => println!("  Agent:     \"{DEMO_MACHINE}\" sharing this computer's display"),
        (false, _) => println!("  Agent:     none"),
    }
    println!();
    println!(
        "Open the console, sign in, pick \"{DEMO_MACHINE}\" and open a session. Ctrl+C stops everything."
    );
}

/// 127.0.0.1:8080 when free, else any free loopback port.
fn free_or_default_listen() -> anyhow::Result<SocketAddr> {
    let default: SocketAddr = DEFAULT_LISTEN.parse()?;
    if std::net::TcpListener::bind(default).is_ok() {
        return Ok(default);
    }
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?)
}

/// 20 characters from an unambiguous alphabet (~113 bits).
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
