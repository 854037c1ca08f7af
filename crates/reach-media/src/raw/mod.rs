//! The `raw` codec: lossless BGRA tiles, only those that changed, each its own zstd
//! frame, plus copy instructions for content that moved vertically (can be turned off).
//! Always available; the fallback when H.264 is not.

mod decoder;
mod scroll;
mod tiles;

pub use decoder::RawDecoder;

use crate::codec::{Codec, CopyRect, EncodedFrame, EncodedTile, VideoEncoder};
use crate::error::MediaError;
use crate::frame::{Frame, Rect};
use crate::limits::RAW_ZSTD_LEVEL;
use tiles::{changed_tiles, dedup_tiles, merge_rows, tiles_in};

/// Changed area (in tiles) from which scroll detection is tried; typing stays cheap.
const SCROLL_MIN_TILES: usize = 12;

/// Encodes frames as dirty tiles against the last frame it sent.
pub struct RawEncoder {
    /// The canvas as the viewer has it after the last frame sent.
    sent: Option<Frame>,
    keyframe_due: bool,
    detect_scroll: bool,
    zstd: zstd::bulk::Compressor<'static>,
}

impl std::fmt::Debug for RawEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEncoder")
            .field("detect_scroll", &self.detect_scroll)
            .finish()
    }
}

impl RawEncoder {
    /// An encoder whose first frame is a keyframe, with scroll detection on.
    ///
    /// # Errors
    /// [`MediaError::Encoder`] if zstd cannot start.
    pub fn new() -> Result<Self, MediaError> {
        Self::with_scroll_detection(true)
    }

    /// An encoder that, with `detect_scroll`, sends vertical content moves as
    /// [`CopyRect`]s (the viewer must apply them before the tiles).
    ///
    /// # Errors
    /// [`MediaError::Encoder`] if zstd cannot start.
    pub fn with_scroll_detection(detect_scroll: bool) -> Result<Self, MediaError> {
        let zstd = zstd::bulk::Compressor::new(RAW_ZSTD_LEVEL)
            .map_err(|e| MediaError::Encoder(format!("zstd: {e}")))?;
        Ok(Self {
            sent: None,
            keyframe_due: true,
            detect_scroll,
            zstd,
        })
    }

    /// Records that the viewer now shows `frame` in `areas` (`None` = everywhere) though this
    /// encoder did not send it (another codec of the same stream did), so later changes are
    /// measured against it.
    pub fn assume_viewer_has(&mut self, frame: &Frame, areas: Option<&[Rect]>) {
        match (self.sent.as_mut(), areas) {
            (Some(sent), Some(areas)) if sent.bounds() == frame.bounds() => {
                for area in areas.iter().filter_map(|a| a.intersect(&frame.bounds())) {
                    for y in area.y..area.bottom() {
                        sent.row_span_mut(area.x, y, area.width)
                            .copy_from_slice(frame.row_span(area.x, y, area.width));
                    }
                }
            }
            _ => {
                self.sent = Some(frame.clone());
                self.keyframe_due = false;
            }
        }
    }

    fn encode_keyframe(&mut self, frame: &Frame) -> Result<EncodedFrame, MediaError> {
        let tiles = merge_rows(tiles_in(frame.bounds(), frame.bounds()));
        let out = self.build_frame(frame, true, Vec::new(), &tiles)?;
        self.sent = Some(frame.clone());
        self.keyframe_due = false;
        Ok(out)
    }

    /// Encodes a change only if scroll detection finds content that moved (a [`CopyRect`]);
    /// otherwise returns `None` and nothing changes in the encoder. For an encoder sharing a
    /// stream with another codec: moved content is cheap to send raw, other motion is not.
    ///
    /// # Errors
    /// [`MediaError::Encoder`] if zstd fails.
    pub fn encode_if_moved(
        &mut self,
        frame: &Frame,
        damage: &[Rect],
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let same_size = self
            .sent
            .as_ref()
            .is_some_and(|s| s.bounds() == frame.bounds());
        if self.keyframe_due || !same_size || !self.detect_scroll {
            return Ok(None);
        }
        self.encode_delta_inner(frame, Some(damage), true)
    }

    fn encode_delta(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        self.encode_delta_inner(frame, damage, false)
    }

    fn encode_delta_inner(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
        only_if_moved: bool,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let Some(sent) = self.sent.as_mut() else {
            return self.encode_keyframe(frame).map(Some);
        };
        let candidates = match damage {
            Some(rects) => dedup_tiles(rects.iter().flat_map(|r| tiles_in(*r, frame.bounds()))),
            None => tiles_in(frame.bounds(), frame.bounds()),
        };
        let mut dirty = changed_tiles(sent, frame, candidates);
        let mut copies = Vec::new();
        if self.detect_scroll && dirty.len() >= SCROLL_MIN_TILES {
            let area = dirty.iter().fold(Rect::default(), |acc, t| acc.union(t));
            if let Some(m) = scroll::detect_vertical_move(sent, frame, area) {
                sent.copy_within(m.src, m.src.x, m.dst_y);
                dirty = changed_tiles(sent, frame, tiles_in(area, frame.bounds()));
                copies.push(CopyRect {
                    src: m.src,
                    dst_x: m.src.x,
                    dst_y: m.dst_y,
                });
            }
        }
        if only_if_moved && copies.is_empty() {
            return Ok(None);
        }
        if dirty.is_empty() && copies.is_empty() {
            return Ok(None);
        }
        for tile in &dirty {
            for y in tile.y..tile.bottom() {
                sent.row_span_mut(tile.x, y, tile.width)
                    .copy_from_slice(frame.row_span(tile.x, y, tile.width));
            }
        }
        let tiles = merge_rows(dirty);
        self.build_frame(frame, false, copies, &tiles).map(Some)
    }

    fn build_frame(
        &mut self,
        frame: &Frame,
        keyframe: bool,
        copies: Vec<CopyRect>,
        rects: &[Rect],
    ) -> Result<EncodedFrame, MediaError> {
        let mut pixels = Vec::new();
        let mut tiles = Vec::with_capacity(rects.len());
        for rect in rects {
            pixels.clear();
            for y in rect.y..rect.bottom() {
                pixels.extend_from_slice(frame.row_span(rect.x, y, rect.width));
            }
            pixels.iter_mut().skip(3).step_by(4).for_each(|a| *a = 255);
            let zstd_bgra = self
                .zstd
                .compress(&pixels)
                .map_err(|e| MediaError::Encoder(format!("zstd: {e}")))?;
            tiles.push(EncodedTile {
                rect: *rect,
                zstd_bgra,
            });
        }
        Ok(EncodedFrame {
            codec: Codec::Raw,
            keyframe,
            width: frame.width(),
            height: frame.height(),
            bitstream: Vec::new(),
            copies,
            tiles,
            codec_string: None,
        })
    }
}

impl VideoEncoder for RawEncoder {
    fn codec(&self) -> Codec {
        Codec::Raw
    }

    fn encode(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let same_size = self
            .sent
            .as_ref()
            .is_some_and(|s| (s.width(), s.height()) == (frame.width(), frame.height()));
        if self.keyframe_due || !same_size {
            return self.encode_keyframe(frame).map(Some);
        }
        self.encode_delta(frame, damage)
    }

    fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }
}

#[cfg(test)]
mod tests;
