//! `reach bench usb --relay`: USB through a live session — technician client → server relay →
//! agent → fake device — all in this process over loopback sockets (real server with a fresh
//! SQLite database, real agent connection, real viewer connection; the fake device is the only
//! fake). Prints bulk MB/s and control round trips, without and then with a simulated 1080p
//! video stream in the same session.
//!
//! The video load is simulated: the agent sends H.264-sized `VideoFrame`s (100 KB each, a 1 MB
//! keyframe every 2 s) at 30 frames/s through the same queue the desktop streamer uses; a real
//! capture would also compete for the 2 CPU cores, which this does not model.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use reach_agent::usb::{UsbOptions, UsbSwitch};
use reach_agent::{AgentConfig, AgentHandle, Credential};
use reach_client::viewer::ApiClient;

use crate::link::DelayLink;
use reach_proto::agent_key::AgentKey;
use reach_proto::codec;
use reach_proto::v1::{self, envelope::Body};
use reach_server::{AppState, Config};
use reach_usb::backend::fake::{FakeBackend, FakeDevice};
use reach_usb::client::{UsbClient, UsbHandle};
use reach_usb::net::AllowAll;
use reach_usb::proto::{DeviceFilter, Setup, TransferKind, TransferRequest};
use serde_json::json;

const PASSWORD: &str = "bench-admin-password";
/// Simulated video: bytes per frame, keyframe bytes, frames per second, keyframe interval.
const VIDEO_FRAME: usize = 100_000;
const VIDEO_KEYFRAME: usize = 1_000_000;
const VIDEO_FPS: u32 = 30;
const VIDEO_GOP: u64 = 60;

/// Options of the relay USB bench.
#[derive(Debug, Clone)]
pub struct RelayUsbOptions {
    /// Seconds per bulk case.
    pub seconds: Duration,
    /// Control round trips measured per case.
    pub control_samples: usize,
    /// JSON lines instead of a Markdown table.
    pub json: bool,
    /// Also measure with this round trip added between the technician and the server (a
    /// [`DelayLink`]), for `delayed_seconds` per case; zero skips it.
    pub rtt: Duration,
    /// Seconds per bulk case with the added round trip.
    pub delayed_seconds: Duration,
}

/// Runs every case and prints one line per figure.
pub async fn run(opts: &RelayUsbOptions) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let mut config = Config::for_tests(dir.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    let (state, _) = AppState::open(config).await?;
    let running = reach_server::server::start(state).await?;
    let url = running.url();
    let mut api = ApiClient::new(&url)?;
    api.login("admin", PASSWORD).await?;
    let (machine_id, key) = enroll(&api).await?;
    let mut agent = reach_agent::spawn(agent_config(&url, key));
    wait_connected(&mut agent).await?;
    let (video_on, agent_task) = drive_agent(agent);
    let (handle, _client, viewer) = technician(&api, &machine_id).await?;
    if !opts.json {
        println!(
            "reach bench usb --relay: client -> server relay -> agent -> fake device, loopback, in-process"
        );
        println!("| video | transfer | size | in flight | throughput |\n|---|---|---|---|---|");
    }
    // Warm-up (connection buffers, allocator), not measured.
    bulk(&handle, false, 16 * 1024, 8, Duration::from_millis(300)).await?;
    bulk(&handle, true, 1024 * 1024, 8, Duration::from_millis(300)).await?;
    for video in [false, true] {
        video_on.store(u64::from(video), Ordering::Relaxed);
        let label = if video { "1080p30 (simulated)" } else { "none" };
        run_cases(&handle, label, opts.seconds, opts).await?;
    }
    video_on.store(0, Ordering::Relaxed);
    // Release the claim and leave cleanly: a dropped connection keeps its claims for a resume.
    handle.close().await;
    viewer.leave().await;
    if !opts.rtt.is_zero() {
        let server = running.addr;
        let link = DelayLink::start(server, opts.rtt / 2).await?;
        let far = ApiClient::new(&format!("http://{}", link.addr()))?
            .with_token(api.token().unwrap_or_default().to_owned());
        let (handle, _client, viewer) = technician(&far, &machine_id).await?;
        bulk(&handle, true, 1024 * 1024, 32, Duration::from_millis(500)).await?;
        let label = format!("none, +{} ms RTT", opts.rtt.as_millis());
        run_cases(&handle, &label, opts.delayed_seconds, opts).await?;
        handle.close().await;
        viewer.leave().await;
    }
    video_on.store(2, Ordering::Relaxed);
    let _ = agent_task.await;
    running.shutdown().await?;
    Ok(())
}

async fn run_cases(
    handle: &UsbHandle,
    label: &str,
    seconds: Duration,
    opts: &RelayUsbOptions,
) -> anyhow::Result<()> {
    let samples = if label.contains("RTT") {
        (opts.control_samples / 20).max(20)
    } else {
        opts.control_samples
    };
    for out in [false, true] {
        for size in [16 * 1024, 1024 * 1024] {
            for in_flight in [1, 32] {
                let mbs = bulk(handle, out, size, in_flight, seconds).await?;
                let dir = if out { "out" } else { "in" };
                if opts.json {
                    println!(
                        "{}",
                        json!({"case": label, "transfer": format!("bulk_{dir}"), "size": size, "in_flight": in_flight, "mb_per_s": mbs})
                    );
                } else {
                    let size = if size >= 1 << 20 {
                        format!("{} MiB", size >> 20)
                    } else {
                        format!("{} KiB", size >> 10)
                    };
                    println!("| {label} | bulk {dir} | {size} | {in_flight} | {mbs:.1} MB/s |");
                }
            }
        }
    }
    let (p50, p99) = control(handle, samples).await?;
    if opts.json {
        println!(
            "{}",
            json!({"case": label, "transfer": "control", "samples": samples, "p50_us": p50, "p99_us": p99})
        );
    } else {
        println!(
            "| {label} | control GET_DESCRIPTOR round trip | 18 B | 1 | p50 {p50:.0} µs, p99 {p99:.0} µs |"
        );
    }
    Ok(())
}

/// Creates a machine and an agent key as the admin: (machine id, key).
///
/// # Errors
/// When the server refuses.
pub async fn enroll(api: &ApiClient) -> anyhow::Result<(String, AgentKey)> {
    let machine = api
        .post_json("/api/machines", &json!({"name": "usb-bench"}))
        .await?;
    let id = machine["id"].as_str().context("machine id")?.to_owned();
    let key = api
        .post_json(&format!("/api/machines/{id}/keys"), &json!({}))
        .await?;
    Ok((id, AgentKey::parse(key["key"].as_str().context("key")?)?))
}

/// Waits (bounded) until the agent reports it is connected.
///
/// # Errors
/// When it does not connect within 10 s.
pub async fn wait_connected(agent: &mut AgentHandle) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), agent.events.recv()).await {
            Ok(Some(reach_agent::AgentEvent::Connected { .. })) => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => bail!("the bench agent did not connect"),
        }
    }
}

/// An agent for `url` with `key` sharing the fake loopback device `0525:a4a0` (passthrough on,
/// every device allowed).
pub fn agent_config(url: &str, key: AgentKey) -> AgentConfig {
    let backend = FakeBackend::new();
    backend.add(FakeDevice::loopback());
    let mut config = AgentConfig::new(
        url.to_owned(),
        Credential::Key(key),
        Arc::new(reach_agent::consent::DenyAll),
    );
    config.usb = Some(UsbOptions {
        backend: Arc::new(backend),
        policy: Arc::new(AllowAll),
        audit: None,
        switch: UsbSwitch::new(true),
        acl_problem: None,
        retention: reach_agent::usb::CLAIM_RETENTION,
    });
    config
}

/// Keeps the agent's events drained and, while `video` is 1, sends simulated video frames for
/// the agent's session. 2 stops the agent.
pub fn drive_agent(mut agent: AgentHandle) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let video = Arc::new(AtomicU64::new(0));
    let flag = Arc::clone(&video);
    let task = tokio::spawn(async move {
        let mut session = String::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / VIDEO_FPS);
        let (frame, key) = (
            Bytes::from(vec![0x42; VIDEO_FRAME]),
            Bytes::from(vec![0x43; VIDEO_KEYFRAME]),
        );
        let mut sequence = 0u64;
        loop {
            tokio::select! {
                event = agent.events.recv() => match event {
                    Some(reach_agent::AgentEvent::Message(env)) if !env.session_id.is_empty() => session = env.session_id,
                    Some(_) => {}
                    None => return,
                },
                _ = tick.tick() => match flag.load(Ordering::Relaxed) {
                    2 => { let _ = agent.stop().await; return; }
                    1 if !session.is_empty() => {
                        sequence += 1;
                        let keyframe = sequence % VIDEO_GOP == 1;
                        let bitstream = if keyframe { key.clone() } else { frame.clone() };
                        let body = Body::VideoFrame(v1::VideoFrame { codec: v1::VideoCodec::H264.into(), keyframe, width: 1920, height: 1080, bitstream, sequence, ..Default::default() });
                        if agent.send(codec::envelope(&session, body)).await.is_err() { return; }
                    }
                    _ => {}
                },
            }
        }
    });
    (video, task)
}

/// Opens a USB session as the technician and claims the fake device.
async fn technician(
    api: &ApiClient,
    machine_id: &str,
) -> anyhow::Result<(UsbHandle, UsbClient, reach_client::viewer::LiveViewer)> {
    let body = json!({"machine_id": machine_id, "access": "control", "usb": true});
    let session = api.post_json("/api/sessions", &body).await?;
    let session_id = session["id"].as_str().context("session id")?;
    let mut viewer = api.join(session_id).await?.into_live();
    let client = viewer
        .usb_client()
        .context("USB channel")?
        .with_timeout(Duration::from_secs(60));
    let handle = client.open(DeviceFilter::default()).await?;
    Ok((handle, client, viewer))
}

/// Bulk MB/s with `in_flight` submitters for `duration` (IN from the source endpoint 0x83, OUT
/// to the sink endpoint 0x04).
pub async fn bulk(
    handle: &UsbHandle,
    out: bool,
    size: u32,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let (endpoint, data) = if out {
        (0x04, Bytes::from(vec![0x5a; size as usize]))
    } else {
        (0x83, Bytes::new())
    };
    let request = TransferRequest {
        kind: TransferKind::Bulk(endpoint),
        flags: Default::default(),
        timeout_ms: 0,
        length: size,
        data,
    };
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (handle, request, done) = (handle.clone(), request.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let reply = handle.submit(request.clone()).await?.wait().await?;
                if reply.actual_length != size {
                    bail!(
                        "short bulk transfer: {} of {size} bytes",
                        reply.actual_length
                    );
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let bytes = done.load(Ordering::Relaxed) as f64 * f64::from(size);
    Ok(bytes / started.elapsed().as_secs_f64() / 1e6)
}

/// GET_DESCRIPTOR round trips one at a time: (p50, p99) in microseconds.
pub async fn control(handle: &UsbHandle, samples: usize) -> anyhow::Result<(f64, f64)> {
    for _ in 0..50 {
        handle.control_in(Setup::get_device_descriptor()).await?;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        handle.control_in(Setup::get_device_descriptor()).await?;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| {
        let i = ((times.len().saturating_sub(1)) as f64 * q).round() as usize;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Ok((at(0.5), at(0.99)))
}
