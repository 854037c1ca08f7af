//! Encoded frames on the wire: [`EncodedFrame`] ↔ `VideoFrame`, split into parts that fit
//! one message ([`split_frame`], agent side) and put back together ([`FrameAssembler`], viewer
//! side). Sans-IO.
//!
//! A noisy 1080p raw keyframe is ~5 MB and the relay refuses agent messages over
//! [`AGENT_MAX_MESSAGE`] (4 MiB) by closing the agent, so no frame may travel whole. Parts share
//! the frame's `sequence`; `part` counts from 0 and `more` is set on all but the last.
//! `keyframe` and `copies` ride on part 0 only, so a raw receiver that draws every part as it
//! comes still ends with the right picture.

use bytes::Bytes;
use reach_media::{Codec, CopyRect, EncodedFrame, EncodedTile, Rect};
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1;

/// Payload bytes (tile data or bitstream) per message, at most (plus one tile: a part always
/// holds at least one). Far below [`AGENT_MAX_MESSAGE`], and small enough that cursor moves and
/// other sessions' messages interleave with a large frame.
pub const MAX_PART_PAYLOAD: usize = 1024 * 1024;

/// Most parts one frame may have on the receiving side.
pub const MAX_FRAME_PARTS: u32 = 1024;

/// Largest reassembled frame payload a viewer accepts: a lossless 8K frame that did not compress.
pub const MAX_FRAME_BYTES: usize = 8192 * 8192 * 4 + 16 * 1024 * 1024;

/// Payload of one part: tile data plus bitstream.
pub fn payload_len(frame: &v1::VideoFrame) -> usize {
    frame.bitstream.len() + frame.tiles.iter().map(|t| t.zstd_bgra.len()).sum::<usize>()
}

/// Maps an encoded frame onto the wire's `VideoFrame` (one message; see [`split_frame`]).
pub fn video_frame(frame: EncodedFrame, screen: u32, sequence: u64, pts: u64) -> v1::VideoFrame {
    let codec = match frame.codec {
        Codec::H264 => v1::VideoCodec::H264,
        _ => v1::VideoCodec::Raw,
    };
    v1::VideoFrame {
        codec: codec as i32,
        keyframe: frame.keyframe,
        screen,
        width: frame.width,
        height: frame.height,
        tiles: frame.tiles.into_iter().map(wire_tile).collect(),
        copies: frame.copies.iter().map(wire_copy).collect(),
        bitstream: frame.bitstream.into(),
        pts_micros: pts,
        sequence,
        more: false,
        part: 0,
    }
}

fn wire_tile(tile: EncodedTile) -> v1::Tile {
    v1::Tile {
        x: tile.rect.x,
        y: tile.rect.y,
        width: tile.rect.width,
        height: tile.rect.height,
        zstd_bgra: tile.zstd_bgra.into(),
    }
}

fn wire_copy(copy: &CopyRect) -> v1::CopyRect {
    v1::CopyRect {
        src_x: copy.src.x,
        src_y: copy.src.y,
        width: copy.src.width,
        height: copy.src.height,
        dst_x: copy.dst_x,
        dst_y: copy.dst_y,
    }
}

/// The media-side frame of a (whole) wire frame, for [`reach_media::RawDecoder`].
pub fn encoded_frame(frame: &v1::VideoFrame) -> EncodedFrame {
    let codec = match frame.codec() {
        v1::VideoCodec::H264 => Codec::H264,
        _ => Codec::Raw,
    };
    EncodedFrame {
        codec,
        keyframe: frame.keyframe,
        width: frame.width,
        height: frame.height,
        bitstream: frame.bitstream.to_vec(),
        copies: frame
            .copies
            .iter()
            .map(|c| CopyRect {
                src: Rect::new(c.src_x, c.src_y, c.width, c.height),
                dst_x: c.dst_x,
                dst_y: c.dst_y,
            })
            .collect(),
        tiles: frame
            .tiles
            .iter()
            .map(|t| EncodedTile {
                rect: Rect::new(t.x, t.y, t.width, t.height),
                zstd_bgra: t.zstd_bgra.to_vec(),
            })
            .collect(),
        codec_string: None,
    }
}

/// Splits `frame` into parts of at most `budget` payload bytes each (a raw part holds at least
/// one tile). A frame within the budget comes back as it was, as the only part.
pub fn split_frame(frame: v1::VideoFrame, budget: usize) -> Vec<v1::VideoFrame> {
    let budget = budget.max(1);
    if payload_len(&frame) <= budget {
        return vec![frame];
    }
    let mut parts = if frame.bitstream.is_empty() {
        split_tiles(frame, budget)
    } else {
        split_bitstream(frame, budget)
    };
    let last = parts.len().saturating_sub(1);
    for (index, part) in parts.iter_mut().enumerate() {
        part.part = u32::try_from(index).unwrap_or(u32::MAX);
        part.more = index < last;
    }
    parts
}

/// A part with the frame's header fields and no payload.
fn header_of(frame: &v1::VideoFrame) -> v1::VideoFrame {
    v1::VideoFrame {
        codec: frame.codec,
        keyframe: false,
        screen: frame.screen,
        width: frame.width,
        height: frame.height,
        pts_micros: frame.pts_micros,
        sequence: frame.sequence,
        ..v1::VideoFrame::default()
    }
}

fn split_tiles(mut frame: v1::VideoFrame, budget: usize) -> Vec<v1::VideoFrame> {
    let header = header_of(&frame);
    let tiles = std::mem::take(&mut frame.tiles);
    let mut parts = Vec::new();
    let mut current = frame;
    let mut size = 0;
    for tile in tiles {
        if size > 0 && size + tile.zstd_bgra.len() > budget {
            parts.push(std::mem::replace(&mut current, header.clone()));
            size = 0;
        }
        size += tile.zstd_bgra.len();
        current.tiles.push(tile);
    }
    parts.push(current);
    parts
}

fn split_bitstream(mut frame: v1::VideoFrame, budget: usize) -> Vec<v1::VideoFrame> {
    let header = header_of(&frame);
    let bitstream = std::mem::take(&mut frame.bitstream);
    let mut chunks = (0..bitstream.len()).step_by(budget);
    let first = chunks.next().unwrap_or(0);
    frame.bitstream = bitstream.slice(first..bitstream.len().min(first + budget));
    let mut parts = vec![frame];
    for start in chunks {
        let mut part = header.clone();
        part.bitstream = bitstream.slice(start..bitstream.len().min(start + budget));
        parts.push(part);
    }
    parts
}

/// What [`FrameAssembler::push`] made of one part.
#[derive(Debug, Clone, PartialEq)]
pub enum Assembled {
    /// A whole frame, ready to decode.
    Complete(v1::VideoFrame),
    /// A part was kept; more follow.
    Waiting,
    /// Parts went missing, arrived out of order or broke a bound: what was gathered is
    /// dropped. The canvas no longer matches the agent's: ask for a keyframe.
    Lost(&'static str),
}

/// Puts split frames back together, one frame at a time, within [`MAX_FRAME_PARTS`] and
/// [`MAX_FRAME_BYTES`].
#[derive(Debug, Default)]
pub struct FrameAssembler {
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    frame: v1::VideoFrame,
    bitstream: Vec<u8>,
    next_part: u32,
    bytes: usize,
}

impl FrameAssembler {
    /// An assembler with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether parts of an unfinished frame are held.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes one received `VideoFrame` (a whole frame or a part).
    pub fn push(&mut self, part: v1::VideoFrame) -> Assembled {
        let Some(mut pending) = self.pending.take() else {
            return self.start(part);
        };
        if part.part == 0 {
            // The rest of the previous frame never came; this one starts afresh.
            let _ = self.start(part);
            return Assembled::Lost("a frame ended before its last part");
        }
        let same = part.sequence == pending.frame.sequence
            && part.codec == pending.frame.codec
            && (part.width, part.height, part.screen)
                == (
                    pending.frame.width,
                    pending.frame.height,
                    pending.frame.screen,
                );
        if !same || part.part != pending.next_part {
            return Assembled::Lost("a part of another frame or out of order");
        }
        pending.bytes += payload_len(&part);
        if pending.bytes > MAX_FRAME_BYTES || part.part >= MAX_FRAME_PARTS {
            return Assembled::Lost("frame larger than the viewer accepts");
        }
        pending.bitstream.extend_from_slice(&part.bitstream);
        pending.frame.tiles.extend(part.tiles);
        pending.next_part += 1;
        if part.more {
            self.pending = Some(pending);
            return Assembled::Waiting;
        }
        let mut frame = pending.frame;
        if !pending.bitstream.is_empty() {
            frame.bitstream = Bytes::from(pending.bitstream);
        }
        frame.more = false;
        frame.part = 0;
        Assembled::Complete(frame)
    }

    fn start(&mut self, mut part: v1::VideoFrame) -> Assembled {
        if part.part != 0 {
            return Assembled::Lost("a part without the start of its frame");
        }
        if !part.more {
            return Assembled::Complete(part);
        }
        let bytes = payload_len(&part);
        let bitstream = std::mem::take(&mut part.bitstream).to_vec();
        self.pending = Some(Pending {
            frame: part,
            bitstream,
            next_part: 1,
            bytes,
        });
        Assembled::Waiting
    }
}

/// Whether an envelope fits the relay's cap for agent messages.
pub fn fits_agent_cap(envelope: &v1::Envelope) -> bool {
    prost::Message::encoded_len(envelope) <= AGENT_MAX_MESSAGE
}

#[cfg(test)]
mod tests;
