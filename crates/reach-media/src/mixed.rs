//! [`MixedEncoder`]: one H.264 stream that sends small changes as raw tiles.
//!
//! Encoding a keystroke with H.264 costs a whole-picture encode (~17 ms at 1080p on one core);
//! sending its few changed tiles raw costs well under a millisecond and is lossless. So changes
//! up to [`SMALL_CHANGE_PIXELS`] go out as raw frames (codec `raw`, never keyframes) drawn over
//! the picture, and everything larger — motion, scrolling, video — as H.264. The H.264 encoder
//! is told about the raw-sent areas with its next frame, so its picture catches up then.
//!
//! The raw encoder's canvas is kept equal to the source wherever H.264 last encoded it, so a
//! small change back to an old colour is still seen as a change. When small changes add up
//! to more than [`RAW_BUDGET_BYTES_PER_SEC`] (a small video playing), they go to H.264 too.
//!
//! Large changes where content moved (scrolling text, a dragged window) go out raw as a copy
//! plus the newly exposed strip when that is at most `MAX_SCROLL_RAW_BYTES` (100 KiB): lossless and far
//! cheaper than re-encoding the whole picture. After a large change without a move, detection
//! is retried only every few large changes.

use std::time::{Duration, Instant};

use crate::codec::{Codec, EncodedFrame, EncoderConfig, VideoEncoder};
use crate::error::MediaError;
use crate::frame::{Frame, Rect};
use crate::h264::H264Encoder;
use crate::raw::RawEncoder;
use crate::yuv::I420;

/// Largest change, in damaged pixels, sent as raw tiles (a 256×256 area).
pub const SMALL_CHANGE_PIXELS: u64 = 256 * 256;

/// Raw bytes per second beyond which small changes are sent as H.264 as well.
pub const RAW_BUDGET_BYTES_PER_SEC: usize = 1024 * 1024;

/// Largest raw frame for moved content (scrolling): a copy plus the exposed strip. Bigger
/// (a scrolled page of photos) goes to H.264.
pub(crate) const MAX_SCROLL_RAW_BYTES: usize = 100 * 1024;

/// After scroll detection found nothing, it is tried again only every this many large changes
/// (a video playing would otherwise pay for it on every frame).
const SCROLL_RETRY_EVERY: u32 = 8;

/// Raw-sent areas remembered one by one before they are merged into their bounding box.
const MAX_RAW_ONLY_RECTS: usize = 256;

/// H.264 for motion, raw tiles for small changes, in one stream (codec `h264`).
pub struct MixedEncoder {
    h264: H264Encoder,
    raw: RawEncoder,
    /// Areas sent raw that the H.264 picture has not caught up with yet.
    raw_only: Vec<Rect>,
    keyframe_due: bool,
    window_start: Instant,
    window_bytes: usize,
    /// Large changes in a row in which no moved content was found.
    scroll_misses: u32,
}

impl std::fmt::Debug for MixedEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MixedEncoder")
            .field("raw_only", &self.raw_only.len())
            .finish()
    }
}

impl MixedEncoder {
    /// An H.264 encoder with `config` and a raw encoder (no scroll detection: scrolling is
    /// motion, H.264's job).
    ///
    /// # Errors
    /// [`MediaError::Encoder`] when openh264 or zstd cannot start.
    pub fn new(config: &EncoderConfig) -> Result<Self, MediaError> {
        Ok(Self {
            h264: H264Encoder::new(config)?,
            raw: RawEncoder::with_scroll_detection(true)?,
            raw_only: Vec::new(),
            keyframe_due: true,
            window_start: Instant::now(),
            window_bytes: 0,
            scroll_misses: 0,
        })
    }

    /// Whether a change of `damage` goes out as raw tiles.
    fn is_small(&mut self, frame: &Frame, damage: &[Rect]) -> bool {
        let bounds = frame.bounds();
        let area: u64 = damage
            .iter()
            .filter_map(|r| r.intersect(&bounds))
            .map(|r| u64::from(r.width) * u64::from(r.height))
            .sum();
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        area <= SMALL_CHANGE_PIXELS && self.window_bytes <= RAW_BUDGET_BYTES_PER_SEC
    }

    fn encode_h264(
        &mut self,
        frame: &Frame,
        picture: Option<&I420>,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let areas = damage.map(|d| {
            let mut all = std::mem::take(&mut self.raw_only);
            all.extend_from_slice(d);
            all
        });
        let out = match picture {
            Some(picture) => self
                .h264
                .encode_converted(frame, picture, areas.as_deref())?,
            None => self.h264.encode(frame, areas.as_deref())?,
        };
        // What H.264 encoded is what the viewer will show: the raw canvas follows the source.
        if out.as_ref().is_some_and(|f| f.keyframe) {
            self.keyframe_due = false;
            self.raw_only.clear();
            self.raw.assume_viewer_has(frame, None);
        } else {
            self.raw.assume_viewer_has(frame, areas.as_deref());
        }
        Ok(out)
    }
}

impl VideoEncoder for MixedEncoder {
    fn codec(&self) -> Codec {
        Codec::H264
    }

    fn encode(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        self.encode_either(frame, None, damage)
    }

    fn encode_converted(
        &mut self,
        frame: &Frame,
        picture: &I420,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        self.encode_either(frame, Some(picture), damage)
    }

    /// Only while large changes go to H.264: a scrolling stream sends raw copies, and
    /// converting its every frame ahead would be wasted.
    fn wants_i420(&self) -> bool {
        self.scroll_misses > 0
    }

    fn request_keyframe(&mut self) {
        self.keyframe_due = true;
        self.h264.request_keyframe();
    }
}

impl MixedEncoder {
    /// Raw tiles for a small change, H.264 otherwise (from `picture` when converted ahead).
    fn encode_either(
        &mut self,
        frame: &Frame,
        picture: Option<&I420>,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let small = match damage {
            Some(d) if !self.keyframe_due => self.is_small(frame, d),
            _ => false,
        };
        let Some(damage) = damage.filter(|_| small) else {
            if let Some(moved) = self.try_scroll(frame, damage)? {
                return Ok(Some(moved));
            }
            return self.encode_h264(frame, picture, damage);
        };
        let out = self.raw.encode(frame, Some(damage))?;
        if let Some(sent) = &out {
            self.sent_raw(sent.byte_len(), damage);
        }
        Ok(out)
    }

    /// Counts a raw frame against the budget and remembers its areas for H.264.
    fn sent_raw(&mut self, bytes: usize, damage: &[Rect]) {
        self.window_bytes += bytes;
        self.raw_only.extend_from_slice(damage);
        if self.raw_only.len() > MAX_RAW_ONLY_RECTS {
            let all = self
                .raw_only
                .iter()
                .fold(Rect::default(), |a, r| a.union(r));
            self.raw_only = vec![all];
        }
    }

    /// Moved content (scrolling) as a raw copy plus the exposed strip, when that is small.
    fn try_scroll(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let Some(damage) = damage.filter(|_| !self.keyframe_due) else {
            return Ok(None);
        };
        if !self.scroll_misses.is_multiple_of(SCROLL_RETRY_EVERY) {
            self.scroll_misses += 1;
            return Ok(None);
        }
        // When the frame is discarded below, the raw canvas already follows the source
        // in `damage`, as it would after the H.264 frame that is sent instead.
        match self.raw.encode_if_moved(frame, damage)? {
            Some(out) if out.byte_len() <= MAX_SCROLL_RAW_BYTES => {
                self.scroll_misses = 0;
                self.sent_raw(out.byte_len(), damage);
                Ok(Some(out))
            }
            _ => {
                self.scroll_misses += 1;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests;
