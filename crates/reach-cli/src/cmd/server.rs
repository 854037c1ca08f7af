//! `reach server`: load the configuration, open the state, serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use reach_server::config::IpNet;
use reach_server::secrets::SecretString;
use reach_server::{AppState, Config, ConfigOverrides};

/// Arguments of `reach server`. Flags override environment variables, which override the
/// configuration file. Secrets come only from the environment: `REACH_TOKEN_SECRET`
/// (token-signing secret, else generated into the data directory), `REACH_ADMIN_PASSWORD`
/// (first admin's password, else generated and printed once), `REACH_METRICS_TOKEN` (bearer
/// token for Prometheus scrapers of /metrics).
#[derive(Debug, Args)]
#[command(
    after_help = "Secrets are read only from the environment: REACH_TOKEN_SECRET \
(token-signing secret, at least 32 characters; default: generated into DATA_DIR/server-secret), \
REACH_ADMIN_PASSWORD (first admin's password; default: generated and printed once), \
REACH_METRICS_TOKEN (bearer token for Prometheus scrapers of /metrics)."
)]
pub(crate) struct ServerArgs {
    // Boxed so the `Command` enum stays small.
    #[command(flatten)]
    options: Box<ServerOptions>,
}

#[derive(Debug, Args)]
struct ServerOptions {
    /// TOML configuration file (see docs/operations.md).
    #[arg(long, short = 'c', env = "REACH_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "REACH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for the SQLite database and the generated secret [default: ./reach-data].
    #[arg(long, env = "REACH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL, `sqlite://…` or `postgres://…` [default: SQLite file in the data directory].
    #[arg(long, env = "REACH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// PEM certificate chain; enables built-in TLS (with --tls-key).
    #[arg(long, env = "REACH_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "REACH_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Reverse proxy (address or CIDR) whose X-Forwarded-For is trusted; repeat or comma-separate.
    #[arg(
        long = "trusted-proxy",
        env = "REACH_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_proxy
    )]
    trusted_proxies: Vec<IpNet>,
    /// Lifetime of login tokens in seconds [default: 43200].
    #[arg(long, env = "REACH_LOGIN_TOKEN_TTL_SECS")]
    login_token_ttl_secs: Option<u64>,
    /// Public URL browsers use (e.g. https://reach.example.com); browser WebSockets from any
    /// other Origin are refused [default: the Host the browser connected to].
    #[arg(long, env = "REACH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lifetime of viewer tokens in seconds [default: 300].
    #[arg(long, env = "REACH_VIEWER_TOKEN_TTL_SECS")]
    viewer_token_ttl_secs: Option<u64>,
    /// End live sessions nobody has watched for this many seconds; 0 = never [default: 900].
    #[arg(long, env = "REACH_SESSION_IDLE_SECS")]
    session_idle_secs: Option<u64>,
    /// NATS server shared by several instances on one PostgreSQL database
    /// (e.g. nats://127.0.0.1:4222): sessions, revocations and presence cross instances through
    /// it [default: none; this instance works alone].
    #[arg(long, env = "REACH_NATS_URL")]
    nats_url: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "REACH_LOG_JSON")]
    log_json: bool,
}

/// A proxy as an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR network"))
}

fn secret_env(name: &str) -> Option<SecretString> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::new)
}

impl ServerOptions {
    fn overrides(self) -> (Option<PathBuf>, ConfigOverrides) {
        let overrides = ConfigOverrides {
            listen: self.listen,
            data_dir: self.data_dir,
            database_url: self.database_url,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            trusted_proxies: (!self.trusted_proxies.is_empty()).then_some(self.trusted_proxies),
            login_token_ttl_secs: self.login_token_ttl_secs,
            viewer_token_ttl_secs: self.viewer_token_ttl_secs,
            session_idle_secs: self.session_idle_secs,
            public_url: self.public_url,
            nats_url: self.nats_url,
            token_secret: secret_env("REACH_TOKEN_SECRET"),
            admin_password: secret_env("REACH_ADMIN_PASSWORD"),
            metrics_token: secret_env("REACH_METRICS_TOKEN"),
        };
        (self.config, overrides)
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub(crate) fn run(args: ServerArgs) -> anyhow::Result<()> {
    init_logging(args.options.log_json);
    let (file, overrides) = args.options.overrides();
    let config = Config::load(file.as_deref(), overrides)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Watch SIGTERM before saying we listen: a stop right after start is a clean stop.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let data_dir = config.data_dir.clone();
    let (state, first_start) = AppState::open(config).await?;
    let running = reach_server::server::start(state).await?;
    println!("Reach server listening on {}", running.url());
    println!("Data directory: {}", data_dir.display());
    if let Some(password) = &first_start.generated_password {
        println!();
        println!("First start: created user \"admin\" in tenant \"default\".");
        println!("  password: {}", password.expose());
        println!("This password is shown only once; change it after logging in.");
    }
    shutdown_signal(term).await;
    println!("Shutting down…");
    running.shutdown().await?;
    Ok(())
}

async fn shutdown_signal(term: std::io::Result<tokio::signal::unix::Signal>) {
    let mut term = match term {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch SIGTERM; only Ctrl+C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
