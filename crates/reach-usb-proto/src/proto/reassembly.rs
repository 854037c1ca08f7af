//! Bounded reassembly of fragmented messages per (claim, request id).
//!
//! Limits are checked before a byte is copied: a message may not exceed [`MAX_MESSAGE`] (or
//! [`MAX_CONTROL_JSON`] for JSON ops), at most [`MAX_PARTIALS`] messages may be open at once, and
//! their sum may not exceed [`MAX_REASSEMBLY_TOTAL`]. A single-frame message is passed through
//! without copying.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::frame::{Frame, Message, Op};
use crate::limits::{MAX_CONTROL_JSON, MAX_MESSAGE, MAX_PARTIALS, MAX_REASSEMBLY_TOTAL};

/// Why a fragment was refused. The partial message it belonged to is discarded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReassemblyError {
    /// The message would exceed its size bound.
    #[error("message of claim {claim} request {request_id} exceeds {limit} bytes")]
    TooLarge {
        /// Claim id.
        claim: u16,
        /// Request id.
        request_id: u32,
        /// The bound that was hit.
        limit: usize,
    },
    /// Too many messages or bytes being reassembled at once.
    #[error("too many partial messages in reassembly")]
    TooManyPartials,
    /// A continuation frame changed op mid-message.
    #[error("fragment op {got:?} does not match {expected:?} for request {request_id}")]
    OpMismatch {
        /// Op of the first fragment.
        expected: Op,
        /// Op of this fragment.
        got: Op,
        /// Request id.
        request_id: u32,
    },
}

struct Partial {
    op: Op,
    buf: BytesMut,
}

/// Reassembles frames into messages.
#[derive(Default)]
pub struct Reassembler {
    partials: HashMap<(u16, u32), Partial>,
    total: usize,
}

impl Reassembler {
    /// Creates an empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one frame; returns the message when its last frame arrived.
    ///
    /// # Errors
    /// [`ReassemblyError`] when a bound is exceeded or ops are mixed; the partial is dropped.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Message>, ReassemblyError> {
        let key = (frame.claim, frame.request_id);
        let limit = if frame.op.is_json() {
            MAX_CONTROL_JSON
        } else {
            MAX_MESSAGE
        };
        let Some(partial) = self.partials.get_mut(&key) else {
            return self.start(frame, limit);
        };
        if partial.op != frame.op {
            let expected = partial.op;
            self.discard(key);
            return Err(ReassemblyError::OpMismatch {
                expected,
                got: frame.op,
                request_id: frame.request_id,
            });
        }
        let new_len = partial.buf.len() + frame.chunk.len();
        if new_len > limit {
            self.discard(key);
            return Err(too_large(key, limit));
        }
        if self.total + frame.chunk.len() > MAX_REASSEMBLY_TOTAL {
            self.discard(key);
            return Err(ReassemblyError::TooManyPartials);
        }
        partial.buf.extend_from_slice(&frame.chunk);
        self.total += frame.chunk.len();
        if !frame.eof {
            return Ok(None);
        }
        let done = self.partials.remove(&key).map(|p| p.buf.freeze());
        let body = done.unwrap_or_default();
        self.total -= body.len();
        Ok(Some(Message::new(
            frame.op,
            frame.claim,
            frame.request_id,
            body,
        )))
    }

    fn start(&mut self, frame: Frame, limit: usize) -> Result<Option<Message>, ReassemblyError> {
        let key = (frame.claim, frame.request_id);
        if frame.chunk.len() > limit {
            return Err(too_large(key, limit));
        }
        if frame.eof {
            return Ok(Some(Message::new(
                frame.op,
                frame.claim,
                frame.request_id,
                frame.chunk,
            )));
        }
        if self.partials.len() >= MAX_PARTIALS
            || self.total + frame.chunk.len() > MAX_REASSEMBLY_TOTAL
        {
            return Err(ReassemblyError::TooManyPartials);
        }
        // Reserve a modest amount: the final size is unknown and a peer must not make us
        // reserve memory it never sends.
        let mut buf = BytesMut::with_capacity(frame.chunk.len() * 4);
        buf.extend_from_slice(&frame.chunk);
        self.total += frame.chunk.len();
        self.partials.insert(key, Partial { op: frame.op, buf });
        Ok(None)
    }

    fn discard(&mut self, key: (u16, u32)) {
        if let Some(p) = self.partials.remove(&key) {
            self.total -= p.buf.len();
        }
    }

    /// Drops every partial message of a claim (claim closed); returns their request ids.
    pub fn discard_claim(&mut self, claim: u16) -> Vec<u32> {
        let keys: Vec<_> = self
            .partials
            .keys()
            .filter(|(c, _)| *c == claim)
            .copied()
            .collect();
        keys.iter().for_each(|k| self.discard(*k));
        keys.into_iter().map(|(_, rid)| rid).collect()
    }

    /// Drops everything (transport lost); returns the (claim, request id) pairs dropped.
    pub fn clear(&mut self) -> Vec<(u16, u32)> {
        let keys = self.partials.keys().copied().collect();
        self.partials.clear();
        self.total = 0;
        keys
    }

    /// Whether a request id currently has a partial message.
    pub fn is_partial(&self, claim: u16, request_id: u32) -> bool {
        self.partials.contains_key(&(claim, request_id))
    }

    /// Bytes currently held.
    pub fn held_bytes(&self) -> usize {
        self.total
    }
}

fn too_large(key: (u16, u32), limit: usize) -> ReassemblyError {
    ReassemblyError::TooLarge {
        claim: key.0,
        request_id: key.1,
        limit,
    }
}

/// Convenience for tests and fuzzing: decode and reassemble a sequence of wire messages.
pub fn reassemble_all(wire: impl IntoIterator<Item = Bytes>) -> Vec<Result<Message, String>> {
    let mut r = Reassembler::new();
    let mut out = Vec::new();
    for bytes in wire {
        match Frame::decode(bytes) {
            Err(e) => out.push(Err(e.to_string())),
            Ok(frame) => match r.push(frame) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => {}
                Err(e) => out.push(Err(e.to_string())),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_CHUNK;

    #[test]
    fn interleaved_requests_reassemble_independently() {
        let a = Message::new(Op::Bulk, 1, 10, vec![1u8; MAX_CHUNK * 2 + 1]);
        let b = Message::new(Op::Bulk, 1, 11, vec![2u8; MAX_CHUNK + 3]);
        let c = Message::new(Op::Control, 2, 10, vec![3u8; 8]);
        let (fa, fb, fc) = (a.to_frames(), b.to_frames(), c.to_frames());
        let wire = vec![
            fa[0].clone(),
            fb[0].clone(),
            fc[0].clone(),
            fa[1].clone(),
            fb[1].clone(),
            fa[2].clone(),
        ];
        let got: Vec<Message> = reassemble_all(wire)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, vec![c, b, a]);
    }

    #[test]
    fn oversize_reassembly_is_rejected_and_the_partial_freed() {
        let mut r = Reassembler::new();
        let chunk = Bytes::from(vec![0u8; MAX_CHUNK]);
        let mut result = Ok(None);
        for _ in 0..=(MAX_MESSAGE / MAX_CHUNK) {
            let frame = Frame {
                op: Op::Bulk,
                eof: false,
                claim: 1,
                request_id: 5,
                chunk: chunk.clone(),
            };
            result = r.push(frame);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(
            result,
            Err(ReassemblyError::TooLarge {
                claim: 1,
                request_id: 5,
                ..
            })
        ));
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn json_messages_have_a_smaller_bound() {
        let msg = Message::new(Op::Open, 0, 1, vec![b' '; MAX_CONTROL_JSON + 1]);
        let got = reassemble_all(msg.to_frames());
        assert_eq!(got.len(), 1);
        assert!(got[0].as_ref().unwrap_err().contains("exceeds"));
    }

    #[test]
    fn op_change_mid_message_is_rejected() {
        let mut r = Reassembler::new();
        let first = Frame {
            op: Op::Bulk,
            eof: false,
            claim: 1,
            request_id: 1,
            chunk: Bytes::from_static(b"a"),
        };
        let second = Frame {
            op: Op::Control,
            eof: true,
            ..first.clone()
        };
        assert_eq!(r.push(first), Ok(None));
        assert!(matches!(
            r.push(second),
            Err(ReassemblyError::OpMismatch { .. })
        ));
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn too_many_open_partials_are_refused() {
        let mut r = Reassembler::new();
        for rid in 0..MAX_PARTIALS as u32 {
            let f = Frame {
                op: Op::Bulk,
                eof: false,
                claim: 1,
                request_id: rid,
                chunk: Bytes::from_static(b"a"),
            };
            assert_eq!(r.push(f), Ok(None));
        }
        let f = Frame {
            op: Op::Bulk,
            eof: false,
            claim: 1,
            request_id: 9999,
            chunk: Bytes::from_static(b"a"),
        };
        assert_eq!(r.push(f), Err(ReassemblyError::TooManyPartials));
    }
}
