//! The host USB REST API's flags and start-up for `reach usb serve` and `reach agent
//! --usb-api`. Thin: the API is `reach_hostapi`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use reach_hostapi::{ApiConfig, RunningApi};
use reach_usb::audit::LocalAudit;
use reach_usb::backend::UsbBackend;
use reach_usb::tools::UsbPaths;

/// The API flags of `reach usb serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeApiArgs {
    /// Address of the host USB REST API [default: 127.0.0.1:9939, skipped with a warning when
    /// that port is taken]. Non-loopback addresses need --tls-cert and --tls-key.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// Serve no REST API.
    #[arg(long, conflicts_with = "api")]
    no_api: bool,
    /// TLS certificate (PEM) for the API.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the API.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// The API flags of `reach agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentApiArgs {
    /// Also serve the host USB REST API on this address (e.g. 127.0.0.1:9939); off unless given.
    /// Non-loopback addresses need --usb-api-tls-cert and --usb-api-tls-key.
    #[arg(long)]
    usb_api: Option<SocketAddr>,
    /// TLS certificate (PEM) for the USB API.
    #[arg(long, requires = "usb_api_tls_key")]
    usb_api_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the USB API.
    #[arg(long, requires = "usb_api_tls_cert")]
    usb_api_tls_key: Option<PathBuf>,
}

fn tls(cert: &Option<PathBuf>, key: &Option<PathBuf>) -> Option<(PathBuf, PathBuf)> {
    cert.clone().zip(key.clone())
}

/// Starts the API and prints where it listens (and the token, the first time).
async fn start(config: ApiConfig) -> anyhow::Result<RunningApi> {
    let api = reach_hostapi::start(config).await?;
    let scheme = if api.tls() { "https" } else { "http" };
    // Not println!: a reader that only wanted the first line may have closed stdout.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "serving the USB API on {scheme}://{} (token in {})",
        api.addr,
        api.token_path.display()
    );
    if let Some(token) = &api.new_token {
        let _ = writeln!(out, "USB API token (shown once): {token}");
    }
    let _ = out.flush();
    Ok(api)
}

/// `reach usb serve`'s API: `None` with `--no-api`, or when the default port is taken.
pub(crate) async fn for_serve(
    args: &ServeApiArgs,
    paths: &UsbPaths,
    backend: Arc<dyn UsbBackend>,
) -> anyhow::Result<Option<RunningApi>> {
    if args.no_api {
        return Ok(None);
    }
    let explicit = args.api.is_some();
    let listen = args.api.unwrap_or_else(|| {
        reach_hostapi::DEFAULT_LISTEN
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9939)))
    });
    let config = ApiConfig {
        listen,
        tls: tls(&args.tls_cert, &args.tls_key),
        paths: paths.clone(),
        backend,
        audit: None,
    };
    match start(config).await {
        Ok(api) => Ok(Some(api)),
        Err(e)
            if !explicit
                && matches!(e.downcast_ref(), Some(reach_hostapi::ApiError::Listen(..))) =>
        {
            let _ = writeln!(
                std::io::stderr(),
                "warning: {e}; serving without the USB API (choose another with --api)"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `reach agent --usb-api`: sharing the agent's audit chain.
pub(crate) async fn for_agent(
    args: &AgentApiArgs,
    backend: Arc<dyn UsbBackend>,
    audit: Option<Arc<LocalAudit>>,
) -> anyhow::Result<Option<RunningApi>> {
    let Some(listen) = args.usb_api else {
        return Ok(None);
    };
    let config = ApiConfig {
        listen,
        tls: tls(&args.usb_api_tls_cert, &args.usb_api_tls_key),
        paths: UsbPaths::from_env(),
        backend,
        audit,
    };
    start(config).await.map(Some)
}
