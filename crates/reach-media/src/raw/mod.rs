//! The `raw` codec: lossless BGRA tiles of [`TILE_SIZE`] pixels, only those that
//! changed, plus copy instructions for content that moved vertically, all in one
//! zstd frame. Always available; the fallback when H.264 is not.

mod decoder;
mod format;
mod scroll;

pub use decoder::RawDecoder;

use crate::codec::{Codec, EncodedFrame, VideoEncoder};
use crate::error::MediaError;
use crate::frame::{Frame, Rect};
use crate::limits::{RAW_ZSTD_LEVEL, TILE_SIZE};
use format::Header;
use scroll::VerticalMove;

/// Changed area (in tiles) from which scroll detection is tried; typing stays cheap.
const SCROLL_MIN_TILES: usize = 12;

/// Encodes frames as dirty tiles against the last frame it sent.
#[derive(Debug, Default)]
pub struct RawEncoder {
    /// The canvas as the viewer has it after the last frame sent.
    sent: Option<Frame>,
    keyframe_due: bool,
}

impl RawEncoder {
    /// An encoder whose first frame is a keyframe.
    pub fn new() -> Self {
        Self::default()
    }

    fn encode_keyframe(&mut self, frame: &Frame) -> Result<EncodedFrame, MediaError> {
        let tiles = tiles_in(frame.bounds(), frame.bounds());
        let out = build_frame(frame, true, None, &tiles)?;
        self.sent = Some(frame.clone());
        self.keyframe_due = false;
        Ok(out)
    }

    fn encode_delta(
        frame: &Frame,
        sent: &mut Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let candidates = match damage {
            Some(rects) => dedup_tiles(rects.iter().flat_map(|r| tiles_in(*r, frame.bounds()))),
            None => tiles_in(frame.bounds(), frame.bounds()),
        };
        let mut dirty = changed_tiles(sent, frame, candidates);
        let mut moved = None;
        if dirty.len() >= SCROLL_MIN_TILES {
            let area = dirty.iter().fold(Rect::default(), |acc, t| acc.union(t));
            if let Some(m) = scroll::detect_vertical_move(sent, frame, area) {
                sent.copy_within(m.src, m.src.x, m.dst_y);
                dirty = changed_tiles(sent, frame, tiles_in(area, frame.bounds()));
                moved = Some(m);
            }
        }
        if dirty.is_empty() && moved.is_none() {
            return Ok(None);
        }
        for tile in &dirty {
            for y in tile.y..tile.bottom() {
                sent.row_span_mut(tile.x, y, tile.width)
                    .copy_from_slice(frame.row_span(tile.x, y, tile.width));
            }
        }
        build_frame(frame, false, moved, &dirty).map(Some)
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
        match self.sent.as_mut() {
            Some(sent)
                if !self.keyframe_due
                    && sent.width() == frame.width()
                    && sent.height() == frame.height() =>
            {
                Self::encode_delta(frame, sent, damage)
            }
            _ => self.encode_keyframe(frame).map(Some),
        }
    }

    fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }
}

/// The tile grid cells overlapping `area`, clipped to `bounds`.
fn tiles_in(area: Rect, bounds: Rect) -> Vec<Rect> {
    let Some(area) = area.intersect(&bounds) else {
        return Vec::new();
    };
    let (first_col, last_col) = (area.x / TILE_SIZE, (area.right() - 1) / TILE_SIZE);
    let (first_row, last_row) = (area.y / TILE_SIZE, (area.bottom() - 1) / TILE_SIZE);
    let mut tiles = Vec::new();
    for row in first_row..=last_row {
        for col in first_col..=last_col {
            let cell = Rect::new(col * TILE_SIZE, row * TILE_SIZE, TILE_SIZE, TILE_SIZE);
            tiles.extend(cell.intersect(&bounds));
        }
    }
    tiles
}

fn dedup_tiles(tiles: impl Iterator<Item = Rect>) -> Vec<Rect> {
    let mut all: Vec<Rect> = tiles.collect();
    all.sort_by_key(|t| (t.y, t.x));
    all.dedup();
    all
}

fn changed_tiles(sent: &Frame, frame: &Frame, candidates: Vec<Rect>) -> Vec<Rect> {
    candidates
        .into_iter()
        .filter(|t| {
            (t.y..t.bottom())
                .any(|y| sent.row_span(t.x, y, t.width) != frame.row_span(t.x, y, t.width))
        })
        .collect()
}

fn build_frame(
    frame: &Frame,
    keyframe: bool,
    moved: Option<VerticalMove>,
    tiles: &[Rect],
) -> Result<EncodedFrame, MediaError> {
    let pixels: usize = tiles
        .iter()
        .map(|t| t.width as usize * t.height as usize)
        .sum();
    let mut body = Vec::with_capacity(pixels * 4 + tiles.len() * 9 + 13);
    let mut rects = Vec::with_capacity(tiles.len() + 1);
    if let Some(m) = moved {
        format::write_copy(&mut body, m.src, m.src.x, m.dst_y);
        rects.push(Rect::new(m.src.x, m.dst_y, m.src.width, m.src.height));
    }
    for tile in tiles {
        format::write_tile_header(&mut body, *tile);
        for y in tile.y..tile.bottom() {
            let start = body.len();
            body.extend_from_slice(frame.row_span(tile.x, y, tile.width));
            body[start..]
                .iter_mut()
                .skip(3)
                .step_by(4)
                .for_each(|a| *a = 255);
        }
        rects.push(*tile);
    }
    let compressed = zstd::bulk::compress(&body, RAW_ZSTD_LEVEL)
        .map_err(|e| MediaError::Encoder(format!("zstd: {e}")))?;
    let mut data = Vec::with_capacity(format::HEADER_LEN + compressed.len());
    Header {
        keyframe,
        width: frame.width(),
        height: frame.height(),
        body_len: body.len(),
    }
    .write(&mut data);
    data.extend_from_slice(&compressed);
    Ok(EncodedFrame {
        codec: Codec::Raw,
        keyframe,
        width: frame.width(),
        height: frame.height(),
        data,
        rects,
        codec_string: None,
    })
}

#[cfg(test)]
mod tests;
