//! `reach bench api`: authenticated `GET /api/me` and login throughput and latency on loopback.
//!
//! Starts a server in this process on an ephemeral loopback port with a fresh SQLite database
//! in a temporary directory (or the empty database `--database-url` names, e.g. PostgreSQL),
//! logs in, then runs N concurrent clients (one keep-alive connection each) and prints
//! requests per second and latency percentiles; then the same for logins, each client logging
//! in from its own loopback addresses so the per-IP login limit (8 per minute) is not what is
//! measured. Passwords are hashed with the cheap test cost, so logins measure the database
//! and token path, not Argon2. Server and clients share the machine's cores, so the figures
//! are a lower bound for the server alone.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use reach_server::{AppState, Config};

/// Arguments of `reach bench api`.
#[derive(Debug, Args)]
pub struct ApiBenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Measured requests per client.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Unmeasured warm-up requests per client.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Logins per client (each from a fresh loopback address every 8).
    #[arg(long, default_value_t = 64)]
    logins: usize,
    /// An empty database to use instead of a fresh SQLite file (e.g. postgres://…/bench).
    #[arg(long)]
    database_url: Option<String>,
}

const PASSWORD: &str = "bench-admin-password";

pub fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.requests == 0 {
        bail!("--clients and --requests must be at least 1");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(bench(args))
}

async fn bench(args: ApiBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let mut config = Config::for_tests(dir.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    config.database_url.clone_from(&args.database_url);
    let (state, _) = AppState::open(config).await?;
    let running = reach_server::server::start(state).await?;
    let url = running.url();
    let token = login(&url).await?;

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let (url, token) = (url.clone(), token.clone());
        let (warmup, requests) = (args.warmup, args.requests);
        tasks.push(tokio::spawn(async move {
            client(&url, &token, warmup, requests).await
        }));
    }
    let mut latencies = Vec::with_capacity(args.clients * args.requests);
    for task in tasks {
        let samples = task.await.context("client task")??;
        latencies.extend(samples);
    }
    let elapsed = started.elapsed();
    report(&args, &mut latencies, elapsed);
    let mut logins = Vec::with_capacity(args.clients * args.logins);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| {
            let url = url.clone();
            let count = args.logins;
            tokio::spawn(async move { login_client(&url, c, count).await })
        })
        .collect();
    for task in tasks {
        logins.extend(task.await.context("login task")??);
    }
    let elapsed = started.elapsed();
    logins.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let rate = logins.len() as f64 / elapsed.as_secs_f64();
    println!(
        "  logins:      {} in {:.2} s = {rate:.0} logins/s, p50 {:.2} ms, p99 {:.2} ms",
        logins.len(),
        elapsed.as_secs_f64(),
        percentile(&logins, 50.0),
        percentile(&logins, 99.0),
    );
    running.shutdown().await?;
    Ok(())
}

/// Client `c` logs in `count` times, from a new loopback address every 8 logins.
async fn login_client(url: &str, c: usize, count: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let n = u32::try_from(c * 1024 + i / 8).unwrap_or(u32::MAX);
        let [_, x, y, z] = (0x7f00_0000 | (n + 256)).to_be_bytes();
        let local = std::net::IpAddr::from([127, x, y, z]);
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(local)
            .build()?;
        let sent = Instant::now();
        post_login(&client, url).await?.bytes().await?;
        samples.push(sent.elapsed());
    }
    Ok(samples)
}

/// Posts the admin's login; `Err` unless the server accepts it.
async fn post_login(client: &reqwest::Client, url: &str) -> anyhow::Result<reqwest::Response> {
    let response = client
        .post(format!("{url}/api/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("login failed: {}", response.status());
    }
    Ok(response)
}

async fn login(url: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let body: serde_json::Value = post_login(&client, url).await?.json().await?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .context("login answer without a token")
}

/// One client: warm up, then time each request.
async fn client(
    url: &str,
    token: &str,
    warmup: usize,
    requests: usize,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let me = format!("{url}/api/me");
    for _ in 0..warmup {
        get(&client, &me, token).await?;
    }
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let sent = Instant::now();
        get(&client, &me, token).await?;
        samples.push(sent.elapsed());
    }
    Ok(samples)
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let response = client.get(url).bearer_auth(token).send().await?;
    if response.status() != 200 {
        bail!("GET /api/me answered {}", response.status());
    }
    response.bytes().await?;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    // Nearest-rank percentile; the index is small and non-negative.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((p / 100.0) * last as f64).round() as usize;
    sorted
        .get(index.min(last))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn report(args: &ApiBenchArgs, latencies: &mut [Duration], elapsed: Duration) {
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let total = latencies.len() as f64;
    let warmups = args.clients * args.warmup;
    #[allow(clippy::cast_precision_loss)]
    let rate = (total + warmups as f64) / elapsed.as_secs_f64();
    let db = if args.database_url.is_some() {
        "the given database"
    } else {
        "SQLite"
    };
    println!(
        "reach bench api: authenticated GET /api/me and logins on loopback ({db}, in-process server)"
    );
    println!("  clients:     {}", args.clients);
    println!(
        "  requests:    {} measured (+{warmups} warm-up)",
        latencies.len()
    );
    println!("  throughput:  {rate:.0} req/s");
    println!("  latency p50: {:.2} ms", percentile(latencies, 50.0));
    println!("  latency p90: {:.2} ms", percentile(latencies, 90.0));
    println!("  latency p99: {:.2} ms", percentile(latencies, 99.0));
    println!("  latency max: {:.2} ms", percentile(latencies, 100.0));
}
