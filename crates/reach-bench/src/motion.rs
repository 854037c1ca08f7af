//! The motion workloads of `reach bench latency`: a terminal scrolling by one line, or the
//! whole screen changing, 30 times a second on the X server, while a Rust viewer receives
//! through the real agent → relay → viewer path.
//!
//! Every paint is stamped (Unix-epoch µs) once the X server has it; every frame carries its
//! capture time (`pts_micros`). A paint's arrival is the arrival of the first whole frame
//! captured after it. Updates/s and bytes/s count the frames captured while painting.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use reach_agent::desktop::frames::{Assembled, FrameAssembler, payload_len};
use reach_client::viewer::ViewerConnection;
use reach_client::ws::Incoming;
use reach_proto::v1::envelope::Body;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
use x11rb::rust_connection::RustConnection;

/// Paints per second.
pub const PAINT_FPS: u32 = 30;
/// Distinct pictures the full-screen workload cycles through (uploaded once as pixmaps).
const PICTURES: u32 = 6;
/// Rows per PutImage request.
const PUT_ROWS: u32 = 64;

/// A motion workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    /// The terminal scrolls up one 16-pixel line per paint.
    Scrolling,
    /// Every pixel changes on every paint.
    FullScreen,
}

impl Motion {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scrolling => "scrolling",
            Self::FullScreen => "full-screen",
        }
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct MotionReport {
    pub paints: usize,
    pub frames: usize,
    pub updates_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Paint → arrival of the first frame captured after it, sorted.
    pub arrivals: Vec<Duration>,
}

/// One whole frame at the viewer.
struct Arrived {
    pts: u64,
    at: u64,
    bytes: usize,
}

fn epoch_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Paints `motion` for `seconds` while `viewer` receives; the stream must be running.
pub async fn measure(
    viewer: &mut ViewerConnection,
    display: &str,
    motion: Motion,
    seconds: u32,
) -> anyhow::Result<MotionReport> {
    let mut painter = Painter::open(display)?;
    painter.prepare(motion)?;
    crate::latency::settle(viewer).await;
    let steps = seconds.max(1) * PAINT_FPS;
    let painting = tokio::task::spawn_blocking(move || painter.paint(motion, steps));
    let mut arrived = Vec::new();
    let mut assembler = FrameAssembler::new();
    loop {
        let quiet = if painting.is_finished() {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        };
        let incoming = match tokio::time::timeout(quiet, viewer.recv()).await {
            Ok(incoming) => incoming?,
            Err(_) if painting.is_finished() => break,
            Err(_) => anyhow::bail!("no frame for {quiet:?} while painting"),
        };
        let part = match incoming {
            Incoming::Envelope(envelope) => match envelope.body {
                Some(Body::VideoFrame(part)) => part,
                _ => continue,
            },
            Incoming::Closed { code, reason } => anyhow::bail!("viewer closed: {code} {reason}"),
        };
        if let Assembled::Complete(frame) = assembler.push(part) {
            arrived.push(Arrived {
                pts: frame.pts_micros,
                at: epoch_micros(),
                bytes: payload_len(&frame),
            });
        }
    }
    let paints = painting.await.context("painter thread")??;
    Ok(report(&paints, &arrived))
}

fn report(paints: &[u64], arrived: &[Arrived]) -> MotionReport {
    let (Some(&first), Some(&last)) = (paints.first(), paints.last()) else {
        return MotionReport {
            paints: 0,
            frames: 0,
            updates_per_sec: 0.0,
            bytes_per_sec: 0.0,
            arrivals: Vec::new(),
        };
    };
    let interval = 1_000_000 / u64::from(PAINT_FPS);
    let during: Vec<&Arrived> = arrived
        .iter()
        .filter(|f| f.pts >= first && f.pts <= last + interval)
        .collect();
    let seconds = (last + interval - first) as f64 / 1e6;
    let mut arrivals: Vec<Duration> = paints
        .iter()
        .filter_map(|&paint| {
            let frame = arrived.iter().find(|f| f.pts >= paint)?;
            Some(Duration::from_micros(frame.at.saturating_sub(paint)))
        })
        .collect();
    arrivals.sort();
    MotionReport {
        paints: paints.len(),
        frames: during.len(),
        updates_per_sec: during.len() as f64 / seconds,
        bytes_per_sec: during.iter().map(|f| f.bytes).sum::<usize>() as f64 / seconds,
        arrivals,
    }
}

/// A second X client that paints the workloads on the root window.
struct Painter {
    conn: RustConnection,
    root: u32,
    gc: u32,
    width: u16,
    height: u16,
    pixmaps: Vec<u32>,
    line: u32,
}

impl Painter {
    fn open(display: &str) -> anyhow::Result<Self> {
        let (conn, screen) =
            x11rb::connect(Some(display)).context("connecting to the X display")?;
        let setup = &conn.setup().roots[screen];
        let (root, width, height) = (setup.root, setup.width_in_pixels, setup.height_in_pixels);
        let gc = conn.generate_id()?;
        conn.create_gc(gc, root, &Default::default())?;
        Ok(Self {
            conn,
            root,
            gc,
            width,
            height,
            pixmaps: Vec::new(),
            line: 0,
        })
    }

    /// Draws the starting picture (and uploads the motion pictures once).
    fn prepare(&mut self, motion: Motion) -> anyhow::Result<()> {
        let (w, h) = (u32::from(self.width), u32::from(self.height));
        if motion == Motion::FullScreen && self.pixmaps.is_empty() {
            for step in 0..PICTURES {
                let pixmap = self.conn.generate_id()?;
                self.conn
                    .create_pixmap(24, pixmap, self.root, self.width, self.height)?;
                let picture = reach_media::bench::motion_picture(w, h, step);
                self.put(pixmap, 0, w, h, &picture)?;
                self.pixmaps.push(pixmap);
            }
        }
        for line in 0..h / 16 {
            self.put(
                self.root,
                line * 16,
                w,
                16,
                &reach_media::bench::terminal_line(w, line),
            )?;
        }
        self.line = h / 16;
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }

    /// Paints `steps` steps on a fixed 30 Hz clock; returns when the X server had each one.
    fn paint(mut self, motion: Motion, steps: u32) -> anyhow::Result<Vec<u64>> {
        let interval = Duration::from_secs(1) / PAINT_FPS;
        let start = Instant::now();
        let mut stamps = Vec::with_capacity(steps as usize);
        for step in 0..steps {
            if let Some(wait) = (start + interval * step).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            self.step(motion, step)?;
            self.conn.get_input_focus()?.reply()?;
            stamps.push(epoch_micros());
        }
        for pixmap in self.pixmaps.drain(..) {
            self.conn.free_pixmap(pixmap)?;
        }
        self.conn.flush()?;
        Ok(stamps)
    }

    fn step(&mut self, motion: Motion, step: u32) -> anyhow::Result<()> {
        let (w, h) = (self.width, self.height);
        match motion {
            Motion::FullScreen => {
                let pixmap = self.pixmaps[(step % PICTURES) as usize];
                self.conn
                    .copy_area(pixmap, self.root, self.gc, 0, 0, 0, 0, w, h)?;
            }
            Motion::Scrolling => {
                self.conn
                    .copy_area(self.root, self.root, self.gc, 0, 16, 0, 0, w, h - 16)?;
                let line = reach_media::bench::terminal_line(u32::from(w), self.line);
                self.put(self.root, u32::from(h) - 16, u32::from(w), 16, &line)?;
                self.line += 1;
            }
        }
        Ok(())
    }

    fn put(&self, target: u32, y: u32, width: u32, height: u32, bgrx: &[u8]) -> anyhow::Result<()> {
        let row = width as usize * 4;
        for top in (0..height).step_by(PUT_ROWS as usize) {
            let rows = PUT_ROWS.min(height - top);
            let data = &bgrx[top as usize * row..(top + rows) as usize * row];
            self.conn.put_image(
                ImageFormat::Z_PIXMAP,
                target,
                self.gc,
                width as u16,
                rows as u16,
                0,
                (y + top) as i16,
                0,
                24,
                data,
            )?;
        }
        Ok(())
    }
}

/// A noise keyframe's delivery: payload bytes, parts, and keyframe request → last part.
pub struct KeyframeReport {
    pub bytes: usize,
    pub parts: usize,
    pub elapsed: Duration,
}

/// Paints noise over the whole screen, asks for a keyframe and times its arrival, whole.
pub async fn measure_noise_keyframe(
    viewer: &mut ViewerConnection,
    display: &str,
) -> anyhow::Result<KeyframeReport> {
    run_x_noise(display)?;
    crate::latency::settle(viewer).await;
    let started = Instant::now();
    viewer
        .send(Body::KeyframeRequest(reach_proto::v1::KeyframeRequest {}))
        .await?;
    let mut assembler = FrameAssembler::new();
    let mut parts = 0;
    loop {
        let incoming = tokio::time::timeout(Duration::from_secs(20), viewer.recv())
            .await
            .context("no keyframe within 20 s")??;
        let part = match incoming {
            Incoming::Envelope(envelope) => match envelope.body {
                Some(Body::VideoFrame(part)) => part,
                _ => continue,
            },
            Incoming::Closed { code, reason } => anyhow::bail!("viewer closed: {code} {reason}"),
        };
        parts += 1;
        match assembler.push(part) {
            Assembled::Complete(frame) if frame.keyframe => {
                return Ok(KeyframeReport {
                    bytes: payload_len(&frame),
                    parts,
                    elapsed: started.elapsed(),
                });
            }
            Assembled::Complete(_) => parts = 0,
            Assembled::Waiting => {}
            Assembled::Lost(why) => anyhow::bail!("keyframe lost: {why}"),
        }
    }
}

/// Noise pixel `index` (row-major) as BGRX: a 32-bit integer hash, so that the browser test
/// (`web/tests/viewer.test.mjs`) can compute any pixel without the picture.
pub fn noise_pixel(index: u32) -> [u8; 4] {
    let mut h = index.wrapping_mul(0x9e37_79b1);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    let [b, g, r, _] = h.to_le_bytes();
    [b, g, r, 0]
}

/// `reach bench x-noise`: paints [`noise_pixel`]s over the whole root window of `display`.
pub fn run_x_noise(display: &str) -> anyhow::Result<()> {
    let painter = Painter::open(display)?;
    let (w, h) = (u32::from(painter.width), u32::from(painter.height));
    let pixels: Vec<u8> = (0..w * h).flat_map(noise_pixel).collect();
    painter.put(painter.root, 0, w, h, &pixels)?;
    painter.conn.get_input_focus()?.reply()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_paint_is_matched_with_the_first_frame_captured_after_it() {
        let paints = [1_000_000, 1_033_333, 1_066_666];
        let arrived = [
            Arrived {
                pts: 990_000,
                at: 1_000_500,
                bytes: 10,
            },
            Arrived {
                pts: 1_001_000,
                at: 1_010_000,
                bytes: 100,
            },
            Arrived {
                pts: 1_070_000,
                at: 1_080_000,
                bytes: 100,
            },
        ];
        let report = report(&paints, &arrived);
        assert_eq!(report.frames, 2);
        assert_eq!(
            report.arrivals,
            [10_000, 13_334, 46_667].map(Duration::from_micros)
        );
    }

    #[test]
    fn noise_pixels_follow_the_hash_the_browser_test_computes() {
        // Values the JavaScript port in web/tests/viewer.test.mjs gives for the same indices.
        assert_eq!(noise_pixel(0), [0, 0, 0, 0]);
        assert_eq!(noise_pixel(1), [235, 2, 253, 0]);
        assert_eq!(noise_pixel(12_345), [202, 102, 128, 0]);
    }
}
