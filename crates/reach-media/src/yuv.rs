//! BGRA → I420 (planar 4:2:0) conversion for the H.264 encoder.
//!
//! BT.601 limited range ("studio swing", Y in 16..=235, U/V in 16..=240), the matrix
//! browsers assume for H.264 without colour signalling. Integer arithmetic with 8
//! fractional bits; each chroma sample averages a 2×2 block. Odd sides are padded by
//! repeating the last column/row so the planes have even sizes.

use crate::frame::Rect;

/// An I420 picture: a full-resolution Y plane and quarter-resolution U and V planes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    /// Even width of the planes (source width rounded up).
    pub width: usize,
    /// Even height of the planes (source height rounded up).
    pub height: usize,
    /// `width * height` luma samples.
    pub y: Vec<u8>,
    /// `width/2 * height/2` blue-difference samples.
    pub u: Vec<u8>,
    /// `width/2 * height/2` red-difference samples.
    pub v: Vec<u8>,
}

/// Luma of one pixel.
pub(crate) fn luma(r: i32, g: i32, b: i32) -> u8 {
    (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8
}

/// Chroma of one (averaged) pixel: `(U, V)`.
pub(crate) fn chroma(r: i32, g: i32, b: i32) -> (u8, u8) {
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (u as u8, v as u8)
}

/// Converts `width × height` BGRA pixels (rows of `width * 4` bytes).
///
/// # Panics
/// When `bgra` is shorter than `width * height * 4`, or a side is zero.
pub fn bgra_to_i420(bgra: &[u8], width: usize, height: usize) -> I420 {
    let mut out = I420::new(width, height);
    out.update(
        bgra,
        width,
        height,
        Rect::new(0, 0, width as u32, height as u32),
    );
    out
}

impl I420 {
    /// A black picture with planes for a `width × height` source.
    pub fn new(width: usize, height: usize) -> Self {
        let (w2, h2) = (width.div_ceil(2), height.div_ceil(2));
        Self {
            width: w2 * 2,
            height: h2 * 2,
            y: vec![16; w2 * 2 * h2 * 2],
            u: vec![128; w2 * h2],
            v: vec![128; w2 * h2],
        }
    }

    /// Re-converts the 2×2 blocks covering `rect` of a `width × height` BGRA source, so
    /// only damaged areas cost conversion time.
    ///
    /// # Panics
    /// When the source does not match the planes' size or is too short.
    pub fn update(&mut self, bgra: &[u8], width: usize, height: usize, rect: Rect) {
        assert_eq!(
            (width.div_ceil(2) * 2, height.div_ceil(2) * 2),
            (self.width, self.height)
        );
        assert!(bgra.len() >= width * height * 4, "BGRA buffer too short");
        let (bx0, bx1) = (
            rect.x as usize / 2,
            (rect.right() as usize).div_ceil(2).min(self.width / 2),
        );
        let (by0, by1) = (
            rect.y as usize / 2,
            (rect.bottom() as usize).div_ceil(2).min(self.height / 2),
        );
        for by in by0..by1 {
            let (y0, y1) = (by * 2, (by * 2 + 1).min(height - 1));
            let rows = [
                &bgra[y0 * width * 4..][..width * 4],
                &bgra[y1 * width * 4..][..width * 4],
            ];
            self.convert_block_row(rows, width, by, bx0..bx1);
        }
    }

    fn convert_block_row(
        &mut self,
        rows: [&[u8]; 2],
        width: usize,
        by: usize,
        blocks: std::ops::Range<usize>,
    ) {
        let half = self.width / 2;
        let (top, bottom) = self.y.split_at_mut((by * 2 + 1) * self.width);
        let y_top = &mut top[by * 2 * self.width..];
        let y_bottom = &mut bottom[..self.width];
        let (u_row, v_row) = (
            &mut self.u[by * half..][..half],
            &mut self.v[by * half..][..half],
        );
        // Blocks whose two columns both lie inside the source: the hot loop.
        let inside = blocks.start..blocks.end.min(width / 2);
        let bytes = inside.start * 8..inside.end * 8;
        let lumas = |r: &[u8]| luma(i32::from(r[2]), i32::from(r[1]), i32::from(r[0]));
        let span = inside.start * 2..inside.end * 2;
        for (((((a, b), yt), yb), u), v) in rows[0][bytes.clone()]
            .chunks_exact(8)
            .zip(rows[1][bytes].chunks_exact(8))
            .zip(y_top[span.clone()].chunks_exact_mut(2))
            .zip(y_bottom[span].chunks_exact_mut(2))
            .zip(&mut u_row[inside.clone()])
            .zip(&mut v_row[inside.clone()])
        {
            yt[0] = lumas(&a[..4]);
            yt[1] = lumas(&a[4..]);
            yb[0] = lumas(&b[..4]);
            yb[1] = lumas(&b[4..]);
            let sum = |i: usize| {
                i32::from(a[i]) + i32::from(a[i + 4]) + i32::from(b[i]) + i32::from(b[i + 4])
            };
            (*u, *v) = chroma((sum(2) + 2) >> 2, (sum(1) + 2) >> 2, (sum(0) + 2) >> 2);
        }
        // The last block of an odd-width source repeats its last column.
        for bx in inside.end.max(blocks.start)..blocks.end {
            let x = bx * 2;
            let (a, b) = (&rows[0][x * 4..x * 4 + 4], &rows[1][x * 4..x * 4 + 4]);
            (y_top[x], y_top[x + 1]) = (lumas(a), lumas(a));
            (y_bottom[x], y_bottom[x + 1]) = (lumas(b), lumas(b));
            let sum = |i: usize| 2 * (i32::from(a[i]) + i32::from(b[i]));
            (u_row[bx], v_row[bx]) =
                chroma((sum(2) + 2) >> 2, (sum(1) + 2) >> 2, (sum(0) + 2) >> 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BT.601 limited-range reference in floating point, rounded.
    fn reference(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
        let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
        let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
        let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
        (y.round(), u.round(), v.round())
    }

    fn solid(b: u8, g: u8, r: u8) -> I420 {
        bgra_to_i420(&[b, g, r, 255].repeat(4), 2, 2)
    }

    #[test]
    fn primary_colours_convert_to_the_bt601_reference_values() {
        // (B, G, R) → (Y, U, V) from the BT.601 tables.
        let table = [
            ((0, 0, 0), (16, 128, 128)),
            ((255, 255, 255), (235, 128, 128)),
            ((0, 0, 255), (82, 90, 240)),
            ((255, 0, 0), (41, 240, 110)),
            ((0, 255, 0), (144, 54, 34)),
        ];
        for ((b, g, r), (y, u, v)) in table {
            let out = solid(b, g, r);
            assert_eq!((out.y[0], out.u[0], out.v[0]), (y, u, v), "bgr {b},{g},{r}");
            assert!(out.y.iter().all(|&s| s == y));
        }
    }

    #[test]
    fn every_grey_and_mixed_colour_is_within_one_step_of_the_float_reference() {
        for (r, g, b) in [(128, 128, 128), (12, 200, 99), (250, 3, 70), (77, 77, 200)] {
            let out = solid(b as u8, g as u8, r as u8);
            let (ry, ru, rv) = reference(f64::from(r), f64::from(g), f64::from(b));
            for (got, want) in [(out.y[0], ry), (out.u[0], ru), (out.v[0], rv)] {
                assert!(
                    (f64::from(got) - want).abs() <= 1.0,
                    "{r},{g},{b}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn chroma_averages_each_two_by_two_block_and_odd_sides_are_padded() {
        // 3×1 image: red, blue, white → planes 4×2, two chroma samples.
        let bgra = [0, 0, 255, 255, 255, 0, 0, 255, 255, 255, 255, 255];
        let out = bgra_to_i420(&bgra, 3, 1);
        assert_eq!((out.width, out.height), (4, 2));
        assert_eq!(out.y[..4], [82, 41, 235, 235]);
        assert_eq!(out.y[4..], [82, 41, 235, 235]);
        // Average of red and blue: (128, 0, 128).
        assert_eq!((out.u[0], out.v[0]), chroma(128, 0, 128));
        assert_eq!((out.u[1], out.v[1]), (128, 128));
    }

    #[test]
    fn updating_a_damaged_rectangle_matches_a_full_conversion() {
        let mut bgra: Vec<u8> = (0..37 * 23 * 4).map(|i| (i * 7 % 253) as u8).collect();
        let mut picture = bgra_to_i420(&bgra, 37, 23);
        for px in bgra[(5 * 37 + 10) * 4..(5 * 37 + 20) * 4].chunks_exact_mut(4) {
            px.copy_from_slice(&[1, 200, 30, 255]);
        }
        picture.update(&bgra, 37, 23, Rect::new(10, 5, 10, 1));
        assert_eq!(picture, bgra_to_i420(&bgra, 37, 23));
    }
}
