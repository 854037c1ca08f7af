//! `reach bench media`: capture + encode cost and bandwidth on synthetic desktop
//! workloads drawn into a real X server (a private Xvfb unless a display is given).
//!
//! The workload pictures are generated here; drawing and measuring live in the
//! platform backend.

use std::fmt::Write as _;

use crate::codec::Codec;
use crate::error::MediaError;

/// What the benchmark runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// X display to use; `None` starts a private Xvfb of `width × height`.
    pub display: Option<String>,
    /// Screen width for the private Xvfb.
    pub width: u32,
    /// Screen height for the private Xvfb.
    pub height: u32,
    /// Measured frames per workload and codec.
    pub frames: u32,
    /// Codecs to measure.
    pub codecs: Vec<Codec>,
    /// H.264 target bitrate in bits per second.
    pub bitrate_bps: u32,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            display: None,
            width: 1920,
            height: 1080,
            frames: 90,
            codecs: vec![Codec::Raw, Codec::H264],
            bitrate_bps: crate::limits::DEFAULT_BITRATE_BPS,
        }
    }
}

/// A synthetic desktop activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Nothing changes.
    Static,
    /// One 8×16 glyph typed per frame into a terminal.
    Typing,
    /// A full-screen terminal scrolls by one 16-pixel line per frame.
    Scrolling,
    /// The whole screen changes every frame (moving gradients plus grain).
    Video,
}

impl Workload {
    /// All workloads, in report order.
    pub const ALL: [Self; 4] = [Self::Static, Self::Typing, Self::Scrolling, Self::Video];

    /// Short name for the report.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Typing => "typing",
            Self::Scrolling => "scrolling",
            Self::Video => "video-like",
        }
    }
}

/// Figures for one workload and codec.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// The workload.
    pub workload: Workload,
    /// The codec.
    pub codec: Codec,
    /// Raw only: whether scroll detection was on.
    pub detect_scroll: bool,
    /// Frames measured.
    pub frames: u32,
    /// Frames that produced output.
    pub frames_sent: u32,
    /// Mean wall time of capture per frame, ms.
    pub capture_ms: f64,
    /// Mean wall time of encoding per frame, ms.
    pub encode_ms: f64,
    /// Mean CPU time (this thread) of capture + encode per frame, ms.
    pub cpu_ms: f64,
    /// Mean encoded bytes per frame.
    pub bytes_per_frame: f64,
}

impl BenchRow {
    /// Frames per second one core sustains for capture + encode.
    pub fn max_fps(&self) -> f64 {
        let ms = self.capture_ms + self.encode_ms;
        if ms > 0.0 { 1000.0 / ms } else { f64::INFINITY }
    }

    /// Bytes per second when the workload runs at 30 frames per second.
    pub fn bytes_per_second_at_30fps(&self) -> f64 {
        self.bytes_per_frame * 30.0
    }
}

/// Renders rows as a Markdown table with units.
pub fn format_report(rows: &[BenchRow], width: u32, height: u32) -> String {
    let mut out = format!(
        "{width}x{height}, capture + encode on one thread\n\n\
         | workload | codec | frames sent | capture ms/frame | encode ms/frame | CPU ms/frame | max fps | bytes/s at 30 fps |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} | {:.2} | {:.2} | {:.2} | {} | {} |",
            r.workload.name(),
            codec_label(r),
            r.frames_sent,
            r.frames,
            r.capture_ms,
            r.encode_ms,
            r.cpu_ms,
            if r.frames_sent == 0 {
                "—".to_owned()
            } else {
                format!("{:.0}", r.max_fps())
            },
            human_bytes(r.bytes_per_second_at_30fps()),
        );
    }
    out
}

fn codec_label(row: &BenchRow) -> String {
    match (row.codec, row.detect_scroll) {
        (Codec::Raw, false) => "raw, no scroll detection".to_owned(),
        (codec, _) => codec.to_string(),
    }
}

fn human_bytes(bytes_per_second: f64) -> String {
    match bytes_per_second {
        b if b >= 1e6 => format!("{:.2} MB/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB/s", b / 1e3),
        b => format!("{b:.0} B/s"),
    }
}

/// Runs every workload with every requested codec.
///
/// # Errors
/// When no X server can be started or reached, or capture fails.
pub fn run(options: &BenchOptions) -> Result<Vec<BenchRow>, MediaError> {
    crate::platform::run_media_bench(options)
}

/// A small deterministic generator for workload pictures.
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

/// Terminal colours: background and ink, BGRA.
const BACKGROUND: [u8; 4] = [0x24, 0x1e, 0x1e, 0];
const INK: [u8; 4] = [0xd0, 0xd0, 0xd0, 0];

/// A monospace "font" of 96 fixed random 8×16 glyph bitmaps.
pub(crate) struct Font {
    glyphs: Vec<[u8; 16]>,
}

impl Font {
    pub(crate) fn new() -> Self {
        let mut rng = Lcg::new(7);
        let glyphs = (0..96)
            .map(|_| {
                let mut rows = [0u8; 16];
                // Rows 3..13 carry ink, like lower-case letters.
                for row in &mut rows[3..13] {
                    *row = (rng.next_u32() & 0x7e) as u8;
                }
                rows
            })
            .collect();
        Self { glyphs }
    }

    /// BGRA pixels (8×16) of glyph `index`.
    pub(crate) fn glyph(&self, index: usize) -> Vec<u8> {
        let bits = &self.glyphs[index % self.glyphs.len()];
        let mut out = Vec::with_capacity(8 * 16 * 4);
        for row in bits {
            for col in 0..8 {
                out.extend_from_slice(if row & (0x80 >> col) != 0 {
                    &INK
                } else {
                    &BACKGROUND
                });
            }
        }
        out
    }

    /// A 16-pixel-high terminal line of `width` pixels: text of a length that varies
    /// with `line`, then background.
    pub(crate) fn line(&self, width: u32, line: u32) -> Vec<u8> {
        let columns = (width / 8) as usize;
        let mut rng = Lcg::new(u64::from(line));
        let text_len = (rng.next_u32() as usize % columns.max(1)).min(100);
        let glyphs: Vec<Vec<u8>> = (0..columns)
            .map(|c| {
                if c < text_len && !rng.next_u32().is_multiple_of(6) {
                    self.glyph(rng.next_u32() as usize)
                } else {
                    BACKGROUND.repeat(8 * 16)
                }
            })
            .collect();
        let mut out = Vec::with_capacity(width as usize * 16 * 4);
        for y in 0..16 {
            for glyph in &glyphs {
                out.extend_from_slice(&glyph[y * 32..y * 32 + 32]);
            }
            out.resize(out.len() + (width as usize - columns * 8) * 4, 0);
        }
        out
    }
}

/// One full-screen picture of the video-like workload at time step `t`.
pub(crate) fn video_picture(width: u32, height: u32, t: u32, rng: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height {
        for x in 0..width {
            let grain = (rng.next_u32() & 7) as u8;
            let b = ((x + t * 6) / 4) as u8 ^ ((y / 64) as u8);
            let g = ((y + t * 3) / 3) as u8;
            let r = ((x + y + t * 9) / 5) as u8;
            out.extend_from_slice(&[b.wrapping_add(grain), g.wrapping_add(grain), r, 0]);
        }
    }
    out
}

/// One 16-pixel-high line of the scrolling terminal (BGRX, `width` wide): what
/// `reach bench latency` paints to scroll through the real agent → relay → viewer path.
pub fn terminal_line(width: u32, line: u32) -> Vec<u8> {
    Font::new().line(width, line)
}

/// Picture `step` of the full-screen motion workload (BGRX): moving gradients with grain,
/// so every pixel changes from one step to the next.
pub fn motion_picture(width: u32, height: u32, step: u32) -> Vec<u8> {
    video_picture(width, height, step, &mut Lcg::new(u64::from(step) + 1))
}
