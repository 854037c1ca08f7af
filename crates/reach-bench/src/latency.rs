//! `reach bench latency`: how long a screen change takes to reach a viewer.
//!
//! Runs the whole stack on loopback — a private Xvfb, the server, an agent sharing that display
//! and a Rust viewer client — then paints small, typing-sized rectangles on the X server and
//! times each one from the moment the X server has it (after `XSync`) to the arrival of the first
//! video frame at the viewer (decoded by nobody: arrival only). Prints p50/p95/p99 per codec.
//! Then the motion workloads (`motion.rs`): scrolling and full-screen change at 30 Hz, with
//! updates/s, MB/s and arrival p50/p95.
//!
//! `reach bench x-fill` (hidden) is the painter used by the browser glass-to-glass benchmark in
//! `web/bench/glass.mjs`: it reads `x y w h rrggbb` lines on stdin and answers each with the
//! Unix-epoch microseconds at which the X server had the change.

use std::io::BufRead as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use reach_client::viewer::{ApiClient, ViewerConnection};
use reach_client::ws::Incoming;
use reach_proto::v1::{self, envelope::Body};
use reach_server::secrets::SecretString;
use reach_server::{AppState, Config, ConfigOverrides};
use x11rb::protocol::xproto::Rectangle;

use crate::local::{Painter, enroll_machine, run_agent};
use crate::motion::{self, Motion, MotionReport};
use reach_media::VirtualDisplay;

/// Arguments of `reach bench latency`.
#[derive(Debug, Args)]
pub struct LatencyBenchArgs {
    /// Screen changes timed per codec.
    #[arg(long, default_value_t = 100)]
    changes: u32,
    /// Codecs to measure: raw, h264 or both.
    #[arg(long, default_value = "both")]
    codec: String,
    /// Workloads, comma separated: typing, scrolling, full-screen, noise-keyframe.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "typing,scrolling,full-screen,noise-keyframe"
    )]
    workloads: Vec<String>,
    /// Seconds of painting per motion workload (scrolling, full-screen) and codec.
    #[arg(long, default_value_t = 3)]
    seconds: u32,
    /// Screen width of the private Xvfb, pixels.
    #[arg(long, default_value_t = 1920)]
    width: u32,
    /// Screen height of the private Xvfb, pixels.
    #[arg(long, default_value_t = 1080)]
    height: u32,
}

/// Arguments of the hidden painter `reach bench x-fill`.
#[derive(Debug, Args)]
pub struct XFillArgs {
    /// X display to paint on.
    #[arg(long)]
    pub display: String,
}

const ADMIN_PASSWORD: &str = "latency bench password";

/// What one run measures.
struct Plan {
    changes: u32,
    codecs: Vec<v1::VideoCodec>,
    typing: bool,
    motions: Vec<Motion>,
    noise_keyframe: bool,
    seconds: u32,
    width: u32,
    height: u32,
}

pub fn run(args: LatencyBenchArgs) -> anyhow::Result<()> {
    let codecs: Vec<v1::VideoCodec> = match args.codec.as_str() {
        "raw" => vec![v1::VideoCodec::Raw],
        "h264" => vec![v1::VideoCodec::H264],
        "both" => vec![v1::VideoCodec::Raw, v1::VideoCodec::H264],
        other => anyhow::bail!("unknown codec {other:?}: use raw, h264 or both"),
    };
    let mut plan = Plan {
        changes: args.changes.max(1),
        codecs,
        typing: false,
        motions: Vec::new(),
        noise_keyframe: false,
        seconds: args.seconds,
        width: args.width,
        height: args.height,
    };
    for workload in &args.workloads {
        match workload.as_str() {
            "typing" => plan.typing = true,
            "scrolling" => plan.motions.push(Motion::Scrolling),
            "full-screen" => plan.motions.push(Motion::FullScreen),
            "noise-keyframe" => plan.noise_keyframe = true,
            other => anyhow::bail!(
                "unknown workload {other:?}: use typing, scrolling, full-screen, noise-keyframe"
            ),
        }
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(plan))
}

async fn bench(plan: Plan) -> anyhow::Result<()> {
    let xvfb = VirtualDisplay::start(plan.width, plan.height)?;
    let data = tempfile::tempdir()?;
    let overrides = ConfigOverrides {
        listen: Some("127.0.0.1:0".parse()?),
        data_dir: Some(data.path().to_path_buf()),
        admin_password: Some(SecretString::new(ADMIN_PASSWORD.to_owned())),
        ..ConfigOverrides::default()
    };
    let (state, _) = AppState::open(Config::load(None, overrides)?).await?;
    let running = reach_server::server::start(state).await?;
    let url = running.url();
    let key = enroll_machine(&url, ADMIN_PASSWORD, "latency-bench").await?;
    let agent = tokio::spawn(run_agent(url.clone(), key, xvfb.name().to_owned(), None));
    let mut api = ApiClient::new(&url)?;
    api.login("admin", ADMIN_PASSWORD).await?;
    let session = open_session(&api).await?;
    let (width, height) = (plan.width, plan.height);
    println!(
        "Real agent → relay → viewer on loopback, {width}×{height} private Xvfb, arrival only (no decoding)"
    );
    for &codec in &plan.codecs {
        let mut viewer = api.join(&session).await?;
        let start = v1::StartStream {
            codec: codec as i32,
            screen: 0,
            max_fps: 60,
        };
        viewer.send(Body::StartStream(start)).await?;
        next_frame(&mut viewer, Duration::from_secs(10))
            .await
            .context("no first frame")?;
        settle(&mut viewer).await;
        if plan.typing {
            typing(&mut viewer, xvfb.name(), codec, plan.changes).await?;
        }
        for &motion in &plan.motions {
            let report = motion::measure(&mut viewer, xvfb.name(), motion, plan.seconds).await?;
            print_motion(codec, motion, &report);
        }
        if plan.noise_keyframe {
            let report = motion::measure_noise_keyframe(&mut viewer, xvfb.name()).await?;
            println!(
                "  {:<5} noise keyframe delivered whole: {:.2} MB in {} messages, {:.0} ms from request to last part",
                codec_name(codec),
                report.bytes as f64 / 1e6,
                report.parts,
                report.elapsed.as_secs_f64() * 1000.0
            );
        }
        viewer.leave().await;
    }
    agent.abort();
    running.shutdown().await?;
    Ok(())
}

/// Typing: 16×24 px changes, one at a time, each timed from the X server having it to the
/// arrival of the first video frame.
async fn typing(
    viewer: &mut ViewerConnection,
    display: &str,
    codec: v1::VideoCodec,
    changes: u32,
) -> anyhow::Result<()> {
    let mut painter = Painter::open(display)?;
    let mut samples = Vec::with_capacity(changes as usize);
    for i in 0..changes {
        let started = Instant::now();
        painter.fill(
            typing_rect(i),
            if i % 2 == 0 { 0x00e0_c020 } else { 0x0020_40a0 },
        )?;
        next_frame(viewer, Duration::from_secs(5)).await?;
        samples.push(started.elapsed());
        settle(viewer).await;
    }
    print_row(codec, &mut samples);
    Ok(())
}

fn codec_name(codec: v1::VideoCodec) -> &'static str {
    if codec == v1::VideoCodec::H264 {
        "h264"
    } else {
        "raw"
    }
}

fn print_motion(codec: v1::VideoCodec, motion: Motion, report: &MotionReport) {
    let pick = |q: f64| {
        let samples = &report.arrivals;
        if samples.is_empty() {
            return f64::NAN;
        }
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    println!(
        "  {:<5} {:<11} {:5.1} updates/s  {:6.2} MB/s  arrival p50 {:6.2} ms  p95 {:6.2} ms   ({} paints at {} Hz, {} frames)",
        codec_name(codec),
        motion.name(),
        report.updates_per_sec,
        report.bytes_per_sec / 1e6,
        pick(0.5),
        pick(0.95),
        report.paints,
        motion::PAINT_FPS,
        report.frames,
    );
}

/// Opens a session once the agent is online (the server refuses offline machines).
async fn open_session(api: &ApiClient) -> anyhow::Result<String> {
    let machines = api.get_json("/api/machines").await?;
    let id = machines[0]["id"].as_str().context("no machine")?.to_owned();
    for _ in 0..100 {
        if let Ok(session) = api
            .post_json("/api/sessions", &serde_json::json!({"machine_id": id}))
            .await
            && let Some(session_id) = session["id"].as_str()
        {
            return Ok(session_id.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the agent did not come online")
}

/// Waits for the next video frame, skipping cursor and other messages.
async fn next_frame(viewer: &mut ViewerConnection, limit: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(limit, async {
        loop {
            match viewer.recv().await? {
                Incoming::Envelope(v1::Envelope {
                    body: Some(Body::VideoFrame(_)),
                    ..
                }) => return Ok(()),
                Incoming::Envelope(_) => {}
                Incoming::Closed { code, reason } => {
                    anyhow::bail!("viewer closed: {code} {reason}")
                }
            }
        }
    })
    .await
    .context("timed out waiting for a video frame")?
}

/// Lets trailing frames of the previous change drain so they are not counted for the next.
pub async fn settle(viewer: &mut ViewerConnection) {
    while next_frame(viewer, Duration::from_millis(60)).await.is_ok() {}
}

/// A 16×24 "character" moving along a line of text.
fn typing_rect(i: u32) -> Rectangle {
    let column = i % 60;
    let line = (i / 60) % 20;
    Rectangle {
        x: (40 + column * 18) as i16,
        y: (60 + line * 30) as i16,
        width: 16,
        height: 24,
    }
}

fn print_row(codec: v1::VideoCodec, samples: &mut [Duration]) {
    samples.sort();
    let pick = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    println!(
        "  {:<5} {:<11} arrival p50 {:6.2} ms  p95 {:6.2} ms  p99 {:6.2} ms   ({} changes of 16×24 px)",
        codec_name(codec),
        "typing",
        pick(0.50),
        pick(0.95),
        pick(0.99),
        samples.len()
    );
}

pub fn run_x_fill(args: XFillArgs) -> anyhow::Result<()> {
    let mut painter = Painter::open(&args.display)?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [x, y, w, h, color] = parts.as_slice() else {
            anyhow::bail!("expected `x y w h rrggbb`, got {line:?}");
        };
        let rect = Rectangle {
            x: x.parse()?,
            y: y.parse()?,
            width: w.parse()?,
            height: h.parse()?,
        };
        painter.fill(rect, u32::from_str_radix(color, 16)?)?;
        let micros = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros();
        println!("{micros}");
    }
    Ok(())
}
