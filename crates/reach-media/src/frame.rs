//! Pixel buffers and rectangles shared by capturers and encoders.

use crate::error::MediaError;
use crate::limits::MAX_FRAME_SIDE;

/// An axis-aligned rectangle in pixels, relative to the captured screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width; zero means empty.
    pub width: u32,
    /// Height; zero means empty.
    pub height: u32,
}

impl Rect {
    /// A rectangle from its position and size.
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    /// One past the right edge.
    pub const fn right(&self) -> u32 {
        self.x + self.width
    }

    /// One past the bottom edge.
    pub const fn bottom(&self) -> u32 {
        self.y + self.height
    }

    /// Whether the rectangle covers no pixel.
    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The overlap of two rectangles, or `None` when they do not overlap.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        (right > x && bottom > y).then(|| Self::new(x, y, right - x, bottom - y))
    }

    /// The smallest rectangle containing both.
    pub fn union(&self, other: &Self) -> Self {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = self.right().max(other.right());
        let bottom = self.bottom().max(other.bottom());
        Self::new(x, y, right - x, bottom - y)
    }
}

/// One screen image: BGRA, 4 bytes per pixel, rows packed without padding.
///
/// The alpha byte of captured frames is whatever the X server stores there (often 0);
/// encoders send 255 instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

impl Frame {
    /// A black frame.
    ///
    /// # Errors
    /// [`MediaError::FrameSize`] when a side is zero or above [`MAX_FRAME_SIDE`].
    pub fn new(width: u32, height: u32) -> Result<Self, MediaError> {
        check_size(width, height)?;
        let mut data = vec![0u8; width as usize * height as usize * 4];
        data.chunks_exact_mut(4).for_each(|px| px[3] = 255);
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Wraps existing BGRA bytes.
    ///
    /// # Errors
    /// [`MediaError::FrameSize`] when the size is out of range or `data` has the wrong length.
    pub fn from_bgra(width: u32, height: u32, data: Vec<u8>) -> Result<Self, MediaError> {
        check_size(width, height)?;
        if data.len() != width as usize * height as usize * 4 {
            return Err(MediaError::FrameSize {
                width,
                height,
                max: MAX_FRAME_SIDE,
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.width as usize * 4
    }

    /// The whole frame as a rectangle.
    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// All pixels, row after row.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// All pixels, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The BGRA bytes of one pixel.
    ///
    /// # Panics
    /// When `(x, y)` lies outside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let at = y as usize * self.stride() + x as usize * 4;
        [
            self.data[at],
            self.data[at + 1],
            self.data[at + 2],
            self.data[at + 3],
        ]
    }

    /// The bytes of row `y` between columns `x` and `x + width`.
    pub(crate) fn row_span(&self, x: u32, y: u32, width: u32) -> &[u8] {
        let start = y as usize * self.stride() + x as usize * 4;
        &self.data[start..start + width as usize * 4]
    }

    /// Writable bytes of row `y` between columns `x` and `x + width`.
    pub(crate) fn row_span_mut(&mut self, x: u32, y: u32, width: u32) -> &mut [u8] {
        let start = y as usize * self.stride() + x as usize * 4;
        &mut self.data[start..start + width as usize * 4]
    }

    /// Copies `rect` of `self` to `(dst_x, dst_y)` within the same frame (overlap allowed).
    pub(crate) fn copy_within(&mut self, src: Rect, dst_x: u32, dst_y: u32) {
        let stride = self.stride();
        let len = src.width as usize * 4;
        let rows: Vec<u32> = if dst_y > src.y {
            (0..src.height).rev().collect()
        } else {
            (0..src.height).collect()
        };
        for row in rows {
            let from = (src.y + row) as usize * stride + src.x as usize * 4;
            let to = (dst_y + row) as usize * stride + dst_x as usize * 4;
            self.data.copy_within(from..from + len, to);
        }
    }
}

pub(crate) fn check_size(width: u32, height: u32) -> Result<(), MediaError> {
    let ok = |side: u32| (1..=MAX_FRAME_SIDE).contains(&side);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(MediaError::FrameSize {
            width,
            height,
            max: MAX_FRAME_SIDE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_intersect_and_unite() {
        let a = Rect::new(0, 0, 10, 10);
        let b = Rect::new(5, 5, 10, 10);
        assert_eq!(a.intersect(&b), Some(Rect::new(5, 5, 5, 5)));
        assert_eq!(a.union(&b), Rect::new(0, 0, 15, 15));
        assert_eq!(a.intersect(&Rect::new(10, 0, 5, 5)), None);
    }

    #[test]
    fn frames_outside_the_size_limits_are_refused() {
        assert!(Frame::new(0, 10).is_err());
        assert!(Frame::new(MAX_FRAME_SIDE + 1, 10).is_err());
        assert!(Frame::from_bgra(2, 2, vec![0; 15]).is_err());
    }

    #[test]
    fn overlapping_copy_within_moves_rows_like_a_scroll() {
        let mut frame = Frame::new(1, 4).unwrap();
        for y in 0..4 {
            frame.row_span_mut(0, y, 1)[0] = y as u8;
        }
        frame.copy_within(Rect::new(0, 1, 1, 3), 0, 0);
        let column: Vec<u8> = (0..4).map(|y| frame.pixel(0, y)[0]).collect();
        assert_eq!(column, [1, 2, 3, 3]);
    }
}
