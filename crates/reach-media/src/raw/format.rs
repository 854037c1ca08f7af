//! The raw frame byte format, shared by the encoder and the decoder.
//!
//! # Format
//! A 16-byte header, little endian, then one zstd frame holding the body:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `RRAW` |
//! | 4 | 1 | version, `1` |
//! | 5 | 1 | flags: bit 0 = keyframe (all pixels follow; resets the canvas) |
//! | 6 | 2 | reserved, `0` |
//! | 8 | 2 | width in pixels |
//! | 10 | 2 | height in pixels |
//! | 12 | 4 | body length after decompression |
//!
//! The body is a sequence of operations applied in order to the previous canvas:
//! - `0x01` copy: `src_x, src_y, width, height, dst_x, dst_y` (u16 each) — move
//!   pixels already on the canvas (scrolling, dragged windows);
//! - `0x02` tile: `x, y, width, height` (u16 each), then `width * height * 4` BGRA bytes.

use crate::error::MediaError;
use crate::frame::Rect;
use crate::limits::{MAX_FRAME_SIDE, MAX_RAW_OPS};

pub(crate) const MAGIC: &[u8; 4] = b"RRAW";
pub(crate) const VERSION: u8 = 1;
pub(crate) const HEADER_LEN: usize = 16;
const FLAG_KEYFRAME: u8 = 1;
const OP_COPY: u8 = 1;
const OP_TILE: u8 = 2;

/// The parsed fixed header of a raw frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) keyframe: bool,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) body_len: usize,
}

impl Header {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(if self.keyframe { FLAG_KEYFRAME } else { 0 });
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(self.width as u16).to_le_bytes());
        out.extend_from_slice(&(self.height as u16).to_le_bytes());
        out.extend_from_slice(&(self.body_len as u32).to_le_bytes());
    }

    /// Parses and bounds-checks the header; the body length is capped before any
    /// memory is reserved for it.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, MediaError> {
        let head = bytes
            .get(..HEADER_LEN)
            .ok_or(MediaError::Malformed("shorter than the 16-byte header"))?;
        if &head[..4] != MAGIC || head[4] != VERSION {
            return Err(MediaError::Malformed("bad magic or version"));
        }
        let u16_at = |i: usize| u32::from(u16::from_le_bytes([head[i], head[i + 1]]));
        let (width, height) = (u16_at(8), u16_at(10));
        if !(1..=MAX_FRAME_SIDE).contains(&width) || !(1..=MAX_FRAME_SIDE).contains(&height) {
            return Err(MediaError::Malformed("frame size out of range"));
        }
        let body_len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
        if body_len > max_body_len(width, height) {
            return Err(MediaError::Malformed("body larger than the frame allows"));
        }
        Ok(Self {
            keyframe: head[5] & FLAG_KEYFRAME != 0,
            width,
            height,
            body_len,
        })
    }
}

/// Largest body a frame of this size may carry: every pixel once plus op headers.
pub(crate) fn max_body_len(width: u32, height: u32) -> usize {
    width as usize * height as usize * 4 + MAX_RAW_OPS * 13
}

/// One operation of a raw frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    /// Move `src` on the canvas so its top-left lands at `(dst_x, dst_y)`.
    Copy { src: Rect, dst_x: u32, dst_y: u32 },
    /// Replace `rect` with `pixels` (BGRA rows).
    Tile { rect: Rect, pixels: &'a [u8] },
}

pub(crate) fn write_copy(out: &mut Vec<u8>, src: Rect, dst_x: u32, dst_y: u32) {
    out.push(OP_COPY);
    for v in [src.x, src.y, src.width, src.height, dst_x, dst_y] {
        out.extend_from_slice(&(v as u16).to_le_bytes());
    }
}

pub(crate) fn write_tile_header(out: &mut Vec<u8>, rect: Rect) {
    out.push(OP_TILE);
    for v in [rect.x, rect.y, rect.width, rect.height] {
        out.extend_from_slice(&(v as u16).to_le_bytes());
    }
}

/// Splits a body into operations, checking every rectangle against the canvas.
pub(crate) fn parse_ops(body: &[u8], canvas: Rect) -> Result<Vec<Op<'_>>, MediaError> {
    let mut ops = Vec::new();
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if ops.len() >= MAX_RAW_OPS {
            return Err(MediaError::Malformed("too many operations"));
        }
        let (op, tail) = match kind {
            OP_COPY => parse_copy(tail, canvas)?,
            OP_TILE => parse_tile(tail, canvas)?,
            _ => return Err(MediaError::Malformed("unknown operation")),
        };
        ops.push(op);
        rest = tail;
    }
    Ok(ops)
}

fn read_u16s<const N: usize>(bytes: &[u8]) -> Result<([u32; N], &[u8]), MediaError> {
    let need = N * 2;
    let (head, tail) = bytes
        .split_at_checked(need)
        .ok_or(MediaError::Malformed("truncated operation"))?;
    let mut values = [0u32; N];
    for (i, v) in values.iter_mut().enumerate() {
        *v = u32::from(u16::from_le_bytes([head[i * 2], head[i * 2 + 1]]));
    }
    Ok((values, tail))
}

fn inside(rect: Rect, canvas: Rect) -> Result<Rect, MediaError> {
    if rect.is_empty() || rect.right() > canvas.right() || rect.bottom() > canvas.bottom() {
        return Err(MediaError::Malformed("rectangle outside the frame"));
    }
    Ok(rect)
}

fn parse_copy(bytes: &[u8], canvas: Rect) -> Result<(Op<'_>, &[u8]), MediaError> {
    let ([sx, sy, w, h, dx, dy], tail) = read_u16s::<6>(bytes)?;
    let src = inside(Rect::new(sx, sy, w, h), canvas)?;
    inside(Rect::new(dx, dy, w, h), canvas)?;
    Ok((
        Op::Copy {
            src,
            dst_x: dx,
            dst_y: dy,
        },
        tail,
    ))
}

fn parse_tile(bytes: &[u8], canvas: Rect) -> Result<(Op<'_>, &[u8]), MediaError> {
    let ([x, y, w, h], tail) = read_u16s::<4>(bytes)?;
    let rect = inside(Rect::new(x, y, w, h), canvas)?;
    let len = w as usize * h as usize * 4;
    let (pixels, tail) = tail
        .split_at_checked(len)
        .ok_or(MediaError::Malformed("truncated tile pixels"))?;
    Ok((Op::Tile { rect, pixels }, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let header = Header {
            keyframe: true,
            width: 1920,
            height: 1080,
            body_len: 1234,
        };
        let mut out = Vec::new();
        header.write(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(Header::parse(&out).unwrap(), header);
    }

    #[test]
    fn a_body_length_beyond_the_frame_size_is_refused_before_allocation() {
        let mut out = Vec::new();
        Header {
            keyframe: true,
            width: 2,
            height: 2,
            body_len: 0,
        }
        .write(&mut out);
        out[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Header::parse(&out), Err(MediaError::Malformed(_))));
    }

    #[test]
    fn operations_outside_the_canvas_or_truncated_are_refused() {
        let canvas = Rect::new(0, 0, 64, 64);
        let mut body = Vec::new();
        write_tile_header(&mut body, Rect::new(60, 0, 8, 1));
        body.extend_from_slice(&[0; 32]);
        assert!(parse_ops(&body, canvas).is_err());
        let mut body = Vec::new();
        write_tile_header(&mut body, Rect::new(0, 0, 2, 2));
        body.extend_from_slice(&[0; 15]);
        assert!(parse_ops(&body, canvas).is_err());
        assert!(parse_ops(&[9], canvas).is_err());
        let mut body = Vec::new();
        write_copy(&mut body, Rect::new(0, 10, 64, 54), 0, 11);
        assert!(parse_ops(&body, canvas).is_err());
    }
}
