//! Applies raw frames to a canvas: what the browser viewer does, in Rust, for tests,
//! benchmarks and native viewers. Every bound is checked before memory is reserved.

use crate::codec::{Codec, EncodedFrame};
use crate::error::MediaError;
use crate::frame::{Frame, Rect, check_size};
use crate::limits::{MAX_RAW_OPS, MAX_RAW_TILE_PIXELS};

/// Keeps the canvas that raw frames update.
#[derive(Debug, Default)]
pub struct RawDecoder {
    canvas: Option<Frame>,
}

impl RawDecoder {
    /// A decoder waiting for its first keyframe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one raw frame and returns the updated canvas.
    ///
    /// A malformed frame is refused whole: the canvas stays as it was.
    ///
    /// # Errors
    /// [`MediaError::Malformed`] for a non-raw frame, a size out of range, too many
    /// operations, rectangles outside the frame or larger than
    /// [`MAX_RAW_TILE_PIXELS`], more tile pixels than the frame has, tile data that does
    /// not decompress to exactly its rectangle, or an inter frame before a keyframe of
    /// the same size.
    pub fn decode(&mut self, frame: &EncodedFrame) -> Result<&Frame, MediaError> {
        let bounds = validate(frame)?;
        let pixels = decompress_tiles(frame)?;
        let mut canvas = match (frame.keyframe, self.canvas.take()) {
            (true, old) => {
                self.canvas = old;
                Frame::new(bounds.width, bounds.height)?
            }
            (false, Some(c)) if c.bounds() == bounds => c,
            (false, old) => {
                self.canvas = old;
                return Err(MediaError::Malformed(
                    "inter frame without a keyframe of its size",
                ));
            }
        };
        for copy in &frame.copies {
            canvas.copy_within(copy.src, copy.dst_x, copy.dst_y);
        }
        for (tile, bgra) in frame.tiles.iter().zip(&pixels) {
            let row_len = tile.rect.width as usize * 4;
            for (row, src) in bgra.chunks_exact(row_len).enumerate() {
                canvas
                    .row_span_mut(tile.rect.x, tile.rect.y + row as u32, tile.rect.width)
                    .copy_from_slice(src);
            }
        }
        Ok(self.canvas.insert(canvas))
    }

    /// The current canvas, if a keyframe has arrived.
    pub fn canvas(&self) -> Option<&Frame> {
        self.canvas.as_ref()
    }
}

/// Checks sizes, counts and rectangles; returns the frame's bounds.
fn validate(frame: &EncodedFrame) -> Result<Rect, MediaError> {
    if frame.codec != Codec::Raw {
        return Err(MediaError::Malformed("not a raw frame"));
    }
    check_size(frame.width, frame.height)
        .map_err(|_| MediaError::Malformed("frame size out of range"))?;
    let bounds = Rect::new(0, 0, frame.width, frame.height);
    if frame.copies.len() + frame.tiles.len() > MAX_RAW_OPS {
        return Err(MediaError::Malformed("too many operations"));
    }
    let inside =
        |r: &Rect| !r.is_empty() && r.right() <= bounds.right() && r.bottom() <= bounds.bottom();
    for copy in &frame.copies {
        let dst = Rect::new(copy.dst_x, copy.dst_y, copy.src.width, copy.src.height);
        if !inside(&copy.src) || !inside(&dst) {
            return Err(MediaError::Malformed("copy outside the frame"));
        }
    }
    let mut total = 0u64;
    for tile in &frame.tiles {
        let area = tile.rect.width * tile.rect.height;
        if !inside(&tile.rect) || area > MAX_RAW_TILE_PIXELS {
            return Err(MediaError::Malformed("tile outside the frame or too large"));
        }
        total += u64::from(area);
    }
    if total > u64::from(frame.width) * u64::from(frame.height) {
        return Err(MediaError::Malformed("more tile pixels than the frame has"));
    }
    Ok(bounds)
}

fn decompress_tiles(frame: &EncodedFrame) -> Result<Vec<Vec<u8>>, MediaError> {
    let mut decompressor = zstd::bulk::Decompressor::new()
        .map_err(|_| MediaError::Malformed("zstd decoder unavailable"))?;
    frame
        .tiles
        .iter()
        .map(|tile| {
            let expected = tile.rect.width as usize * tile.rect.height as usize * 4;
            let bgra = decompressor
                .decompress(&tile.zstd_bgra, expected)
                .map_err(|_| MediaError::Malformed("tile does not decompress within its size"))?;
            if bgra.len() == expected {
                Ok(bgra)
            } else {
                Err(MediaError::Malformed(
                    "tile data shorter than its rectangle",
                ))
            }
        })
        .collect()
}
