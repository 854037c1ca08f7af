//! BGRA → I420 (planar 4:2:0) conversion for the H.264 encoder.
//!
//! BT.601 limited range ("studio swing", Y in 16..=235, U/V in 16..=240), the matrix
//! browsers assume for H.264 without colour signalling. Integer arithmetic with 8
//! fractional bits; each chroma sample averages a 2×2 block. Odd sides are padded by
//! repeating the last column/row so the planes have even sizes.

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
/// When `bgra` is shorter than `width * height * 4`.
pub fn bgra_to_i420(bgra: &[u8], width: usize, height: usize) -> I420 {
    let (w2, h2) = (width.div_ceil(2), height.div_ceil(2));
    let mut out = I420 {
        width: w2 * 2,
        height: h2 * 2,
        y: vec![0; w2 * 2 * h2 * 2],
        u: vec![0; w2 * h2],
        v: vec![0; w2 * h2],
    };
    let px = |x: usize, y: usize| -> (i32, i32, i32) {
        let at = (y.min(height - 1) * width + x.min(width - 1)) * 4;
        (
            i32::from(bgra[at + 2]),
            i32::from(bgra[at + 1]),
            i32::from(bgra[at]),
        )
    };
    for cy in 0..h2 {
        for cx in 0..w2 {
            let (mut sr, mut sg, mut sb) = (0, 0, 0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (x, y) = (cx * 2 + dx, cy * 2 + dy);
                let (r, g, b) = px(x, y);
                out.y[y * out.width + x] = luma(r, g, b);
                (sr, sg, sb) = (sr + r, sg + g, sb + b);
            }
            let (u, v) = chroma((sr + 2) >> 2, (sg + 2) >> 2, (sb + 2) >> 2);
            out.u[cy * w2 + cx] = u;
            out.v[cy * w2 + cx] = v;
        }
    }
    out
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
}
