//! `reach bench relay`: the relay measured as its own process (`reach server` as a child on a
//! loopback port with a fresh SQLite database), with the bench's agents and viewers connecting
//! over WebSockets through the real REST calls and socket authentication.
//!
//! Prints (c) idle sessions held and the server's resident memory per session (the child's
//! `VmRSS`, so client ends are not counted), (a) single-session agent→viewer throughput for
//! 1 MiB messages and (b) agent→viewer latency percentiles for small messages at a fixed rate;
//! (a) and (b) with the same messages over one direct loopback TCP connection beside them
//! ([`crate::direct`]) and the difference.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use reach_client::viewer::{ApiClient, ViewerConnection};
use reach_client::ws::{self, Incoming, Ws};
use reach_proto::codec;
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, agent_auth::Credential, envelope::Body};

use crate::direct::{self, Path};
use crate::server_process::ServerProcess;
use serde_json::{Value, json};

/// Arguments of `reach bench relay`.
#[derive(Debug, Args)]
pub struct RelayBenchArgs {
    /// 1 MiB messages sent agent→viewer for the throughput figure.
    #[arg(long, default_value_t = 200)]
    big_messages: usize,
    /// Small messages per second for the latency figure.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds of small messages for the latency figure.
    #[arg(long, default_value_t = 5)]
    latency_secs: u64,
    /// Idle sessions (agent + session + viewer each) to open and hold.
    #[arg(long, default_value_t = 1000)]
    idle_sessions: usize,
    /// The `reach` binary to run as the server [default: this executable].
    #[arg(long)]
    server_binary: Option<std::path::PathBuf>,
    /// Command put before the server, split on spaces (e.g. `valgrind --tool=callgrind`); a
    /// wrapper that forks (heaptrack, perf) makes the RSS and CPU figures its own.
    #[arg(long, default_value = "")]
    server_wrapper: String,
    /// Seconds to keep holding the idle sessions after measuring them (for a memory profiler
    /// to take its snapshot).
    #[arg(long, default_value_t = 0)]
    hold_idle_secs: u64,
    /// Also measure across two instances: a second `reach server` on the first one's database,
    /// both on a `nats-server` started for the bench; the agent on the first, the viewer on
    /// the second. Prints (a) and (b) same-instance and cross-instance with their ratio.
    #[arg(long)]
    cross_instance: bool,
    /// The `nats-server` binary for --cross-instance (Debian package `nats-server`).
    #[arg(long, default_value = "/usr/sbin/nats-server")]
    nats_server: std::path::PathBuf,
    /// The NATS server's payload limit for --cross-instance, in bytes (its default is 1 MiB;
    /// docs/deploy.md suggests 8 MiB so a video frame is one piece).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    nats_max_payload: usize,
}

pub(crate) const PASSWORD: &str = "bench-admin-password";
const MIB: usize = 1024 * 1024;

/// The REST side of the bench.
pub(crate) struct Api {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) token: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {value}");
        }
        Ok(value)
    }
}

/// One agent, one session, one viewer.
pub(crate) struct Pair {
    agent: Ws,
    session_id: String,
    viewer: ViewerConnection,
}

pub fn run(args: RelayBenchArgs) -> anyhow::Result<()> {
    if args.big_messages == 0 || args.rate == 0 || args.latency_secs == 0 {
        bail!("--big-messages, --rate and --latency-secs must be at least 1");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(bench(args))
}

async fn bench(args: RelayBenchArgs) -> anyhow::Result<()> {
    let binary = match args.server_binary {
        Some(path) => path,
        None => std::env::current_exe().context("locating the reach binary")?,
    };
    let wrapper: Vec<String> = args
        .server_wrapper
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if args.cross_instance {
        let figures = crate::relay_cross::Figures {
            messages: args.big_messages,
            rate: args.rate,
            secs: args.latency_secs,
            max_payload: args.nats_max_payload,
            idle: args.idle_sessions,
        };
        crate::relay_cross::bench(&args.nats_server, binary, &wrapper, &figures).await?;
        return Ok(());
    }
    let server = ServerProcess::start(binary, &wrapper, PASSWORD).await?;
    let url = server.url().to_owned();
    let mut client = ApiClient::new(&url)?;
    client.login("admin", PASSWORD).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let token = client.token().unwrap_or_default().to_owned();
    let api = Api { url, http, token };

    println!(
        "reach bench relay: `reach server` as a child process; agents, viewers and the direct-TCP baseline in this process; loopback"
    );
    let pair = open_pair(&api, 0, &api.url).await?;
    idle(&api, &server, args.idle_sessions, args.hold_idle_secs).await?;
    let (pair, _) = throughput(pair, &server, args.big_messages).await?;
    latency(pair, &server, args.rate, args.latency_secs).await?;
    server.stop(Duration::from_secs(60)).await;
    Ok(())
}

/// Opens a machine, its agent and a session through `api`, and a viewer through `viewer_url`.
pub(crate) async fn open_pair(api: &Api, n: usize, viewer_url: &str) -> anyhow::Result<Pair> {
    let machine = api
        .post("/api/machines", json!({"name": format!("bench-{n}")}))
        .await?;
    let machine_id = machine["id"].as_str().context("machine id")?;
    let key = api
        .post(&format!("/api/machines/{machine_id}/keys"), json!({}))
        .await?;
    let key = key["key"].as_str().context("key")?.to_owned();
    let mut agent = ws::connect(&ws::socket_url(&api.url, "/ws/agent")?, AGENT_MAX_MESSAGE).await?;
    let auth = Body::AgentAuth(v1::AgentAuth {
        credential: Some(Credential::AgentKey(key)),
    });
    ws::send(&mut agent, &codec::envelope("", auth)).await?;
    let hello = Body::AgentHello(reach_agent::config::local_hello());
    ws::send(&mut agent, &codec::envelope("", hello)).await?;
    match ws::recv(&mut agent, AGENT_MAX_MESSAGE).await? {
        Incoming::Envelope(e) if matches!(e.body, Some(Body::AuthOk(_))) => {}
        other => bail!("agent not accepted: {other:?}"),
    }
    let session = api
        .post("/api/sessions", json!({"machine_id": machine_id}))
        .await?;
    let session_id = session["id"].as_str().context("session id")?.to_owned();
    let viewer = ApiClient::new(viewer_url)?
        .with_token(api.token.clone())
        .join(&session_id)
        .await?;
    Ok(Pair {
        agent,
        session_id,
        viewer,
    })
}

fn frame(session_id: &str, payload: &Bytes, pts_micros: u64) -> Vec<u8> {
    let body = Body::VideoFrame(v1::VideoFrame {
        codec: v1::VideoCodec::H264.into(),
        bitstream: payload.clone(),
        pts_micros,
        ..Default::default()
    });
    codec::encode(&codec::envelope(session_id, body))
}

/// Receives until `count` video frames arrived; calls `seen` with each frame's pts.
async fn receive_frames(
    viewer: &mut ViewerConnection,
    count: usize,
    mut seen: impl FnMut(u64),
) -> anyhow::Result<()> {
    let mut got = 0;
    while got < count {
        match tokio::time::timeout(Duration::from_secs(30), viewer.recv()).await?? {
            Incoming::Envelope(v1::Envelope {
                body: Some(Body::VideoFrame(f)),
                ..
            }) => {
                got += 1;
                seen(f.pts_micros);
            }
            Incoming::Envelope(_) => {}
            Incoming::Closed { code, reason } => bail!("viewer closed: {code} {reason}"),
        }
    }
    Ok(())
}

/// (a): prints the figures; returns the pair and the relay's MB/s.
pub(crate) async fn throughput(
    mut pair: Pair,
    server: &ServerProcess,
    messages: usize,
) -> anyhow::Result<(Pair, f64)> {
    let payload = Bytes::from(vec![0x5au8; MIB]);
    let bytes = Bytes::from(frame(&pair.session_id, &payload, 0));
    let len = bytes.len();
    let cpu = server.cpu_ticks()?;
    let started = Instant::now();
    let sender = {
        let mut agent = pair.agent;
        tokio::spawn(async move {
            for _ in 0..messages {
                ws::send_encoded(&mut agent, bytes.clone()).await?;
            }
            anyhow::Ok(agent)
        })
    };
    receive_frames(&mut pair.viewer, messages, |_| {}).await?;
    let relay = started.elapsed();
    pair.agent = sender.await??;
    let cpu_ms = server.cpu_ticks()?.saturating_sub(cpu) * 10;
    let direct = direct::throughput(Path::Direct, messages, len).await?;
    let forwarded = direct::throughput(Path::Forwarded, messages, len).await?;
    let mb = (messages * MIB) as f64 / 1_000_000.0;
    let (relay_mbs, direct_mbs) = (mb / relay.as_secs_f64(), mb / direct.as_secs_f64());
    let forwarded_mbs = mb / forwarded.as_secs_f64();
    println!(
        "(a) throughput, 1 session, {messages} x 1 MiB agent->viewer: relay {relay_mbs:.1} MB/s \
         ({:.2} s, server CPU {cpu_ms} ms), direct TCP {direct_mbs:.1} MB/s ({:.2} s), relay/direct {:.2}; \
         plain TCP forwarder {forwarded_mbs:.1} MB/s, forwarder/direct {:.2}",
        relay.as_secs_f64(),
        direct.as_secs_f64(),
        relay_mbs / direct_mbs,
        forwarded_mbs / direct_mbs,
    );
    Ok((pair, relay_mbs))
}

/// p50, p99 and max of sorted samples.
fn percentiles(samples: &mut [u64]) -> (u64, u64, u64) {
    samples.sort_unstable();
    let pick = |q: f64| {
        let last = samples.len().saturating_sub(1);
        samples
            .get((last as f64 * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    (pick(0.50), pick(0.99), pick(1.0))
}

/// (b): prints the figures; returns the relay's p50 and p99 in µs.
pub(crate) async fn latency(
    mut pair: Pair,
    server: &ServerProcess,
    rate: u32,
    secs: u64,
) -> anyhow::Result<(u64, u64)> {
    let total = usize::try_from(u64::from(rate) * secs).unwrap_or(usize::MAX);
    let payload = Bytes::from(vec![1u8; 64]);
    let origin = Instant::now();
    let session_id = pair.session_id.clone();
    let len = frame(&session_id, &payload, u64::MAX).len();
    let mut agent = pair.agent;
    let cpu = server.cpu_ticks()?;
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        for _ in 0..total {
            tick.tick().await;
            let pts = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
            let msg = frame(&session_id, &payload, pts);
            ws::send_encoded(&mut agent, msg.into()).await?;
        }
        anyhow::Ok(agent)
    });
    let mut samples = Vec::with_capacity(total);
    receive_frames(&mut pair.viewer, total, |pts| {
        let now = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        samples.push(now.saturating_sub(pts));
    })
    .await?;
    sender.await??;
    let cpu_us = server.cpu_ticks()?.saturating_sub(cpu) * 10_000;
    let per_message = cpu_us / u64::try_from(total.max(1)).unwrap_or(1);
    let (r50, r99, rmax) = percentiles(&mut samples);
    let mut direct = direct::latency(Path::Direct, total, rate, len).await?;
    let (d50, d99, dmax) = percentiles(&mut direct);
    let mut forwarded = direct::latency(Path::Forwarded, total, rate, len).await?;
    let (f50, f99, _) = percentiles(&mut forwarded);
    let added = |a: u64, b: u64| i128::from(a) - i128::from(b);
    println!(
        "(b) latency, {total} x 64 B video frames ({len} B messages) agent->viewer at {rate} msg/s: \
         relay p50 {r50} us, p99 {r99} us, max {rmax} us; direct TCP p50 {d50} us, p99 {d99} us, \
         max {dmax} us; added p50 {} us, p99 {} us; server CPU {per_message} us per message; \
         a plain TCP forwarder adds p50 {} us, p99 {} us",
        added(r50, d50),
        added(r99, d99),
        added(f50, d50),
        added(f99, d99),
    );
    Ok((r50, r99))
}

async fn idle(api: &Api, server: &ServerProcess, sessions: usize, hold: u64) -> anyhow::Result<()> {
    let before = server.rss_kib()?;
    let started = Instant::now();
    let mut held = Vec::with_capacity(sessions);
    for n in 0..sessions {
        held.push(
            open_pair(api, n + 1, &api.url)
                .await
                .with_context(|| format!("idle session {n}"))?,
        );
    }
    let opened = started.elapsed();
    // Let the server finish what each join started (audit rows, agent notices).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib()?;
    let per = (after.saturating_sub(before)) as f64 / sessions.max(1) as f64;
    println!(
        "(c) idle: held {} sessions (agent + session + viewer each), opened in {:.1} s; \
         server RSS {before} -> {after} KiB = {per:.1} KiB per session (server process only)",
        held.len(),
        opened.as_secs_f64(),
    );
    tokio::time::sleep(Duration::from_secs(hold)).await;
    drop(held);
    // Closing them makes work (leave notices, audit rows, session ends) that would otherwise
    // run during the throughput and latency figures.
    let settled = wait_quiet(server).await?;
    println!(
        "    closed them; the server was quiet again after {:.1} s",
        settled.as_secs_f64()
    );
    Ok(())
}

/// Waits (at most 60 s) until the server used no more than one clock tick of CPU in 300 ms.
async fn wait_quiet(server: &ServerProcess) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last = server.cpu_ticks()?;
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = server.cpu_ticks()?;
        if now.saturating_sub(last) <= 1 {
            break;
        }
        last = now;
    }
    Ok(started.elapsed())
}
