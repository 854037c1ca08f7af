//! The media benchmark's X11 side: a private Xvfb, a client that draws the workloads,
//! and the measuring loop around a real capturer and encoder.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, Gcontext, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::{connect, x11};
use crate::bench::{BenchOptions, BenchRow, Font, Lcg, Workload, video_picture};
use crate::{CaptureOptions, Codec, EncoderConfig, MediaError, create_encoder};

/// Rows per PutImage request, well under any server's request size limit.
const PUT_ROWS: u32 = 128;

pub(crate) fn run_media_bench(options: &BenchOptions) -> Result<Vec<BenchRow>, MediaError> {
    let server = match &options.display {
        Some(_) => None,
        None => Some(crate::VirtualDisplay::start(options.width, options.height)?),
    };
    let display = match (&options.display, &server) {
        (Some(d), _) => d.clone(),
        (None, Some(s)) => s.name().to_owned(),
        (None, None) => unreachable!("a server was started"),
    };
    let mut rows = Vec::new();
    for workload in Workload::ALL {
        for &codec in &options.codecs {
            rows.push(measure(&display, workload, codec, true, options)?);
            // What scroll detection saves: the same scrolling without it.
            if codec == Codec::Raw && workload == Workload::Scrolling {
                rows.push(measure(&display, workload, codec, false, options)?);
            }
        }
    }
    Ok(rows)
}

/// Thread CPU time.
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn measure(
    display: &str,
    workload: Workload,
    codec: Codec,
    detect_scroll: bool,
    options: &BenchOptions,
) -> Result<BenchRow, MediaError> {
    let mut painter = Painter::open(display)?;
    painter.prepare(workload)?;
    let mut capturer = crate::open_capturer(Some(display), 0, CaptureOptions::default())?;
    let config = EncoderConfig {
        target_bitrate_bps: options.bitrate_bps,
        max_fps: 30.0,
        detect_scroll,
        ..EncoderConfig::default()
    };
    let mut encoder = create_encoder(codec, &config)?;
    capturer.wait_update(Duration::from_millis(100))?;
    let first = capturer.capture_full()?;
    encoder.encode(first, None)?;
    let wait = if workload == Workload::Static {
        Duration::ZERO
    } else {
        Duration::from_secs(2)
    };
    let (mut capture, mut encode, mut cpu, mut bytes, mut sent) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0usize, 0u32);
    for step in 0..options.frames {
        painter.draw(workload, step)?;
        let (t0, c0) = (Instant::now(), cpu_now());
        let update = capturer.wait_update(wait)?;
        let t1 = Instant::now();
        let out = if update.damage.is_empty() {
            None
        } else {
            encoder.encode(capturer.frame(), Some(&update.damage))?
        };
        let (t2, c2) = (Instant::now(), cpu_now());
        capture += t1 - t0;
        encode += t2 - t1;
        cpu += c2 - c0;
        if let Some(out) = out {
            bytes += out.byte_len();
            sent += 1;
        }
    }
    let per_frame = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(options.frames.max(1));
    tracing::info!(workload = workload.name(), %codec, cpu_ms = per_frame(cpu), "measured");
    Ok(BenchRow {
        workload,
        codec,
        detect_scroll,
        frames: options.frames,
        frames_sent: sent,
        capture_ms: per_frame(capture),
        encode_ms: per_frame(encode),
        cpu_ms: per_frame(cpu),
        bytes_per_frame: bytes as f64 / f64::from(options.frames.max(1)),
    })
}

/// A second X client that draws the workloads onto the root window.
struct Painter {
    conn: RustConnection,
    root: Window,
    gc: Gcontext,
    depth: u8,
    width: u32,
    height: u32,
    font: Font,
    rng: Lcg,
}

impl Painter {
    fn open(display: &str) -> Result<Self, MediaError> {
        let (conn, screen_num) = connect(Some(display))?;
        let screen = &conn.setup().roots[screen_num];
        let (root, depth) = (screen.root, screen.root_depth);
        let (width, height) = (
            u32::from(screen.width_in_pixels),
            u32::from(screen.height_in_pixels),
        );
        let gc = conn.generate_id().map_err(x11)?;
        conn.create_gc(gc, root, &Default::default()).map_err(x11)?;
        Ok(Self {
            conn,
            root,
            gc,
            depth,
            width,
            height,
            font: Font::new(),
            rng: Lcg::new(1),
        })
    }

    /// Paints the starting picture of `workload` and waits until the server drew it.
    fn prepare(&mut self, workload: Workload) -> Result<(), MediaError> {
        let lines = self.height / 16;
        for line in 0..lines {
            let pixels = match workload {
                Workload::Video => vec![0; self.width as usize * 16 * 4],
                _ => self.font.line(self.width, line),
            };
            self.put(0, line * 16, self.width, 16, &pixels)?;
        }
        super::sync(&self.conn)
    }

    /// Draws frame `step` of `workload` and waits until the server drew it.
    fn draw(&mut self, workload: Workload, step: u32) -> Result<(), MediaError> {
        match workload {
            Workload::Static => {}
            Workload::Typing => {
                let columns = (self.width / 8).min(100);
                let (col, row) = (step % columns, 20 + step / columns);
                let glyph = self.font.glyph(step as usize * 7 + 3);
                self.put(col * 8, row * 16, 8, 16, &glyph)?;
            }
            Workload::Scrolling => {
                let (w, h) = (self.width as u16, self.height as u16);
                self.conn
                    .copy_area(self.root, self.root, self.gc, 0, 16, 0, 0, w, h - 16)
                    .map_err(x11)?;
                let line = self.font.line(self.width, self.height / 16 + step);
                self.put(0, self.height - 16, self.width, 16, &line)?;
            }
            Workload::Video => {
                let picture = video_picture(self.width, self.height, step, &mut self.rng);
                self.put(0, 0, self.width, self.height, &picture)?;
            }
        }
        super::sync(&self.conn)
    }

    fn put(&self, x: u32, y: u32, width: u32, height: u32, bgra: &[u8]) -> Result<(), MediaError> {
        let row_len = width as usize * 4;
        for top in (0..height).step_by(PUT_ROWS as usize) {
            let rows = PUT_ROWS.min(height - top);
            let start = top as usize * row_len;
            let data = &bgra[start..start + rows as usize * row_len];
            self.conn
                .put_image(
                    ImageFormat::Z_PIXMAP,
                    self.root,
                    self.gc,
                    width as u16,
                    rows as u16,
                    x as i16,
                    (y + top) as i16,
                    0,
                    self.depth,
                    data,
                )
                .map_err(x11)?;
        }
        Ok(())
    }
}
