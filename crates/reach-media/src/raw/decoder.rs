//! Decodes raw frames onto a canvas: what the browser viewer does, in Rust, for tests,
//! benchmarks and native viewers.

use super::format::{HEADER_LEN, Header, Op, parse_ops};
use crate::error::MediaError;
use crate::frame::Frame;

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

    /// Applies one encoded raw frame and returns the updated canvas.
    ///
    /// A malformed frame is refused whole: the canvas stays as it was.
    ///
    /// # Errors
    /// [`MediaError::Malformed`] for a bad header, a body that does not decompress to
    /// its announced length (capped by the frame size), operations outside the frame,
    /// or an inter frame before any keyframe.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<&Frame, MediaError> {
        let header = Header::parse(bytes)?;
        let body = zstd::bulk::decompress(&bytes[HEADER_LEN..], header.body_len)
            .map_err(|_| MediaError::Malformed("zstd body does not decompress within its cap"))?;
        if body.len() != header.body_len {
            return Err(MediaError::Malformed("body length differs from header"));
        }
        let bounds = crate::frame::Rect::new(0, 0, header.width, header.height);
        let ops = parse_ops(&body, bounds)?;
        let mut canvas = self.take_canvas(&header)?;
        for op in ops {
            apply(&mut canvas, op);
        }
        Ok(self.canvas.insert(canvas))
    }

    fn take_canvas(&mut self, header: &Header) -> Result<Frame, MediaError> {
        if header.keyframe {
            return Frame::new(header.width, header.height);
        }
        match self.canvas.take() {
            Some(c) if c.width() == header.width && c.height() == header.height => Ok(c),
            Some(c) => {
                self.canvas = Some(c);
                Err(MediaError::Malformed("inter frame with a different size"))
            }
            None => Err(MediaError::Malformed("inter frame before any keyframe")),
        }
    }

    /// The current canvas, if a keyframe has arrived.
    pub fn canvas(&self) -> Option<&Frame> {
        self.canvas.as_ref()
    }
}

fn apply(canvas: &mut Frame, op: Op<'_>) {
    match op {
        Op::Copy { src, dst_x, dst_y } => canvas.copy_within(src, dst_x, dst_y),
        Op::Tile { rect, pixels } => {
            let row_len = rect.width as usize * 4;
            for (row, src) in pixels.chunks_exact(row_len).enumerate() {
                canvas
                    .row_span_mut(rect.x, rect.y + row as u32, rect.width)
                    .copy_from_slice(src);
            }
        }
    }
}
