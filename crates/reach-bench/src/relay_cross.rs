//! `reach bench relay --cross-instance`: the same (a) throughput and (b) latency measured with
//! the agent and the viewer on one instance, then with the agent on one instance and the viewer
//! on another, the two sharing a database and a `nats-server` (the viewer is relayed through
//! the bus). Both instances are `reach server` child processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reach_client::viewer::ApiClient;

use crate::relay::{Api, PASSWORD, latency, open_pair, throughput};
use crate::server_process::{Extra, ServerProcess};

/// What to send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    /// 1 MiB messages for (a).
    pub messages: usize,
    /// Small messages per second for (b).
    pub rate: u32,
    /// Seconds of (b).
    pub secs: u64,
    /// The NATS server's payload limit.
    pub max_payload: usize,
    /// Idle cross-instance sessions to hold for the memory figure.
    pub idle: usize,
}

/// Holds `n` idle sessions whose agent is on A and viewer on B; prints both servers' resident
/// memory per session.
async fn idle_across(
    api: &Api,
    a: &ServerProcess,
    b: &ServerProcess,
    n: usize,
) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let (a0, b0) = (a.rss_kib()?, b.rss_kib()?);
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        held.push(open_pair(api, 100 + i, b.url()).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a1, b1) = (a.rss_kib()?, b.rss_kib()?);
    let per = |before: u64, after: u64| after.saturating_sub(before) as f64 / n as f64;
    println!(
        "(c) idle across instances: held {n} sessions (agent on A, viewer on B): A {:.1} KiB and \
         B {:.1} KiB per session (server processes only)",
        per(a0, a1),
        per(b0, b1)
    );
    drop(held);
    Ok(())
}

const SECRET: &str = "bench: one token secret shared by both instances";

/// A `nats-server` child on a free loopback port; killed when dropped.
struct Nats {
    child: Child,
    url: String,
    _config: tempfile::TempDir,
}

impl Nats {
    fn start(binary: &Path, max_payload: usize) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("nats.conf");
        std::fs::write(&config, format!("max_payload: {max_payload}\n"))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (apt install nats-server)", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _config: dir,
        })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(url: &str) -> anyhow::Result<Api> {
    let mut client = ApiClient::new(url)?;
    client.login("admin", PASSWORD).await?;
    Ok(Api {
        url: url.to_owned(),
        http: reqwest::Client::builder().no_proxy().build()?,
        token: client.token().unwrap_or_default().to_owned(),
    })
}

/// Runs the comparison.
pub(crate) async fn bench(
    nats_binary: &Path,
    binary: PathBuf,
    wrapper: &[String],
    f: &Figures,
) -> anyhow::Result<()> {
    let nats = Nats::start(nats_binary, f.max_payload)?;
    let env = vec![("REACH_TOKEN_SECRET".to_owned(), SECRET.to_owned())];
    let bus = vec!["--nats-url".to_owned(), nats.url.clone()];
    let a = ServerProcess::start_with(
        binary.clone(),
        wrapper,
        PASSWORD,
        &Extra {
            args: bus.clone(),
            env: env.clone(),
        },
    )
    .await?;
    let database = format!("sqlite://{}", a.data_dir().join("reach.db").display());
    let mut args = bus;
    args.extend(["--database-url".to_owned(), database]);
    let b = ServerProcess::start_with(binary, wrapper, PASSWORD, &Extra { args, env }).await?;
    let api = login(a.url()).await?;
    println!(
        "reach bench relay --cross-instance: two `reach server` children on one SQLite database and \
         one nats-server (max_payload {} bytes); agent on A; viewer on A (same instance), then \
         on B (through the bus)",
        f.max_payload
    );
    // Memory first, before the large transfers grow both heaps.
    idle_across(&api, &a, &b, f.idle).await?;
    println!("same instance (agent and viewer on A):");
    let pair = open_pair(&api, 0, a.url()).await?;
    let (pair, same_mbs) = throughput(pair, &a, f.messages).await?;
    let (_, same_p99) = latency(pair, &a, f.rate, f.secs).await?;
    println!("cross instance (agent on A, viewer on B; CPU figures are A's):");
    let pair = open_pair(&api, 1, b.url()).await?;
    let ticks = |p: u32| crate::server_process::cpu_ticks_of(p).unwrap_or(0);
    let (b0, n0) = (ticks(b.pid()), ticks(nats.child.id()));
    let (pair, cross_mbs) = throughput(pair, &a, f.messages).await?;
    println!(
        "    during (a): B used {} ms of CPU, nats-server {} ms",
        ticks(b.pid()).saturating_sub(b0) * 10,
        ticks(nats.child.id()).saturating_sub(n0) * 10
    );
    let (_, cross_p99) = latency(pair, &a, f.rate, f.secs).await?;
    println!(
        "cross/same throughput {:.2} ({cross_mbs:.1} / {same_mbs:.1} MB/s); added p99 {} us \
         ({cross_p99} vs {same_p99} us)",
        cross_mbs / same_mbs,
        i128::from(cross_p99) - i128::from(same_p99),
    );
    a.stop(Duration::from_secs(10)).await;
    b.stop(Duration::from_secs(10)).await;
    drop(nats);
    Ok(())
}
