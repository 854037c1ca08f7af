//! Frames: `op u8 | flags u8 | claim_id u16 | request_id u32 | chunk`, big-endian.
//!
//! A message (one request, reply or control object) is split into frames whose chunks carry at
//! most [`MAX_CHUNK`] bytes, or more to a peer that announced `large_frames` in HELLO; every
//! frame of a message has the same op, claim id and request id, and only the last has the EOF
//! flag. [`Frame::decode`] accepts payloads up to [`LARGE_FRAME_PAYLOAD`], the bound this
//! implementation announces.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::limits::{FRAME_HEADER_LEN, LARGE_FRAME_PAYLOAD, MAX_CHUNK, REQUEST_ID_LEN};

/// `flags` bit 0: last frame of a message.
pub const FLAG_EOF: u8 = 0x01;

/// Operation numbers. The original design's numbers are kept; new ops start at 0x10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Op {
    List = 0x01,
    Open = 0x02,
    Opened = 0x03,
    Control = 0x04,
    Bulk = 0x05,
    Interrupt = 0x06,
    Credit = 0x07,
    Close = 0x08,
    Closed = 0x09,
    Resume = 0x0A,
    Hello = 0x10,
    Cancel = 0x11,
    SetConfiguration = 0x12,
    SetInterface = 0x13,
    ClearHalt = 0x14,
    Reset = 0x15,
    StreamStart = 0x16,
    StreamStop = 0x17,
    StreamData = 0x18,
    DeviceEvent = 0x19,
    Error = 0xFF,
}

impl Op {
    /// All ops, for tables and tests.
    pub const ALL: [Self; 21] = [
        Self::List,
        Self::Open,
        Self::Opened,
        Self::Control,
        Self::Bulk,
        Self::Interrupt,
        Self::Credit,
        Self::Close,
        Self::Closed,
        Self::Resume,
        Self::Hello,
        Self::Cancel,
        Self::SetConfiguration,
        Self::SetInterface,
        Self::ClearHalt,
        Self::Reset,
        Self::StreamStart,
        Self::StreamStop,
        Self::StreamData,
        Self::DeviceEvent,
        Self::Error,
    ];

    /// Maps a wire byte to an op.
    pub fn from_u8(byte: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|op| *op as u8 == byte)
    }

    /// Whether the body is a JSON object (control plane) rather than a binary header.
    pub fn is_json(self) -> bool {
        matches!(
            self,
            Self::Hello
                | Self::List
                | Self::Open
                | Self::Opened
                | Self::Close
                | Self::Closed
                | Self::Resume
                | Self::Error
                | Self::DeviceEvent
        )
    }

    /// Whether frames of this op count against the claim's byte credit.
    pub fn uses_credit(self) -> bool {
        matches!(
            self,
            Self::Control | Self::Bulk | Self::Interrupt | Self::StreamData
        )
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the header and request id.
    #[error("frame too short: {0} bytes, need at least 8")]
    Truncated(usize),
    /// Payload larger than this implementation accepts ([`LARGE_FRAME_PAYLOAD`]).
    #[error("frame payload of {0} bytes exceeds {LARGE_FRAME_PAYLOAD}")]
    Oversize(usize),
    /// An op this implementation does not know.
    #[error("unknown op 0x{op:02x}")]
    UnknownOp {
        /// The op byte.
        op: u8,
        /// The claim id of the frame, so the error can name it.
        claim: u16,
    },
    /// Flag bits other than EOF set.
    #[error("reserved flag bits set: 0x{0:02x}")]
    ReservedFlags(u8),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Operation.
    pub op: Op,
    /// Last frame of its message.
    pub eof: bool,
    /// Claim id (0 for session-level messages).
    pub claim: u16,
    /// Request id (0 when the op has none).
    pub request_id: u32,
    /// This frame's part of the message body.
    pub chunk: Bytes,
}

impl Frame {
    /// Decodes one transport message as one frame.
    ///
    /// # Errors
    /// [`FrameError`] when the message is too short, too long, has an unknown op or reserved flags.
    pub fn decode(mut msg: Bytes) -> Result<Self, FrameError> {
        let min = FRAME_HEADER_LEN + REQUEST_ID_LEN;
        if msg.len() < min {
            return Err(FrameError::Truncated(msg.len()));
        }
        let payload_len = msg.len() - FRAME_HEADER_LEN;
        if payload_len > LARGE_FRAME_PAYLOAD {
            return Err(FrameError::Oversize(payload_len));
        }
        let claim = u16::from_be_bytes([msg[2], msg[3]]);
        let op = Op::from_u8(msg[0]).ok_or(FrameError::UnknownOp { op: msg[0], claim })?;
        let flags = msg[1];
        if flags & !FLAG_EOF != 0 {
            return Err(FrameError::ReservedFlags(flags));
        }
        let request_id = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let chunk = msg.split_off(min);
        Ok(Self {
            op,
            eof: flags & FLAG_EOF != 0,
            claim,
            request_id,
            chunk,
        })
    }

    /// Encodes this frame as one transport message.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(FRAME_HEADER_LEN + REQUEST_ID_LEN + self.chunk.len());
        put_header(&mut out, self.op, self.eof, self.claim, self.request_id);
        out.put_slice(&self.chunk);
        out.freeze()
    }
}

fn put_header(out: &mut BytesMut, op: Op, eof: bool, claim: u16, request_id: u32) {
    out.put_u8(op as u8);
    out.put_u8(if eof { FLAG_EOF } else { 0 });
    out.put_u16(claim);
    out.put_u32(request_id);
}

/// A whole (reassembled) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Operation.
    pub op: Op,
    /// Claim id.
    pub claim: u16,
    /// Request id.
    pub request_id: u32,
    /// Complete body.
    pub body: Bytes,
}

impl Message {
    /// Builds a message.
    pub fn new(op: Op, claim: u16, request_id: u32, body: impl Into<Bytes>) -> Self {
        Self {
            op,
            claim,
            request_id,
            body: body.into(),
        }
    }

    /// Builds a message whose body `write` appends, together with that message encoded as one
    /// (EOF) frame, copying the body once: the message's body is a view into the frame.
    /// [`super::flow::SendQueue::push_framed`] sends the frame as is when the body fits one frame
    /// to the peer (and cuts frames from the body otherwise).
    pub fn framed(
        op: Op,
        claim: u16,
        request_id: u32,
        body_len: usize,
        write: impl FnOnce(&mut BytesMut),
    ) -> (Self, Bytes) {
        let header = FRAME_HEADER_LEN + REQUEST_ID_LEN;
        let mut out = BytesMut::with_capacity(header + body_len);
        put_header(&mut out, op, true, claim, request_id);
        write(&mut out);
        let frame = out.freeze();
        (
            Self::new(op, claim, request_id, frame.slice(header..)),
            frame,
        )
    }

    /// Number of frames this message takes on the wire.
    pub fn frame_count(&self) -> usize {
        self.body.len().div_ceil(MAX_CHUNK).max(1)
    }

    /// Encodes frame `index` (0-based) of this message, in chunks of [`MAX_CHUNK`].
    pub fn encode_frame(&self, index: usize) -> Bytes {
        let start = (index * MAX_CHUNK).min(self.body.len());
        self.encode_span(start, (start + MAX_CHUNK).min(self.body.len()))
    }

    /// Encodes the frame carrying body bytes `start..end`; EOF when `end` is the body's end.
    ///
    /// # Panics
    /// When `start > end` or `end` is past the body (a caller bug, never peer input).
    pub fn encode_span(&self, start: usize, end: usize) -> Bytes {
        let eof = end >= self.body.len();
        let chunk = &self.body[start..end];
        let mut out = BytesMut::with_capacity(FRAME_HEADER_LEN + REQUEST_ID_LEN + chunk.len());
        put_header(&mut out, self.op, eof, self.claim, self.request_id);
        out.put_slice(chunk);
        out.freeze()
    }

    /// Splits this message into wire frames.
    pub fn to_frames(&self) -> Vec<Bytes> {
        (0..self.frame_count())
            .map(|i| self.encode_frame(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips_through_a_frame() {
        for op in Op::ALL {
            let frame = Frame {
                op,
                eof: true,
                claim: 0x1234,
                request_id: 0xDEAD_BEEF,
                chunk: Bytes::from_static(b"abc"),
            };
            let bytes = frame.encode();
            assert_eq!(bytes[0], op as u8);
            assert_eq!(&bytes[1..8], &[1, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF]);
            assert_eq!(Frame::decode(bytes), Ok(frame));
        }
    }

    #[test]
    fn header_is_big_endian_with_eof_in_bit_zero() {
        let msg = Message::new(Op::Bulk, 1, 2, Bytes::from_static(b"x"));
        assert_eq!(
            &msg.encode_frame(0)[..],
            &[0x05, 0x01, 0, 1, 0, 0, 0, 2, b'x']
        );
    }

    #[test]
    fn short_frames_are_rejected() {
        assert_eq!(
            Frame::decode(Bytes::from_static(&[1, 1, 0])),
            Err(FrameError::Truncated(3))
        );
    }

    #[test]
    fn oversize_frames_are_rejected_before_parsing() {
        let big = vec![0x05u8; FRAME_HEADER_LEN + LARGE_FRAME_PAYLOAD + 1];
        assert_eq!(
            Frame::decode(Bytes::from(big)),
            Err(FrameError::Oversize(LARGE_FRAME_PAYLOAD + 1))
        );
    }

    #[test]
    fn a_large_frame_up_to_the_announced_bound_decodes() {
        let msg = Message::new(
            Op::Bulk,
            1,
            2,
            vec![1u8; LARGE_FRAME_PAYLOAD - REQUEST_ID_LEN],
        );
        let frame = Frame::decode(msg.encode_span(0, msg.body.len())).unwrap();
        assert!(frame.eof);
        assert_eq!(frame.chunk.len(), LARGE_FRAME_PAYLOAD - REQUEST_ID_LEN);
    }

    #[test]
    fn unknown_op_names_its_claim() {
        let bytes = Bytes::from_static(&[0x42, 1, 0, 7, 0, 0, 0, 0]);
        assert_eq!(
            Frame::decode(bytes),
            Err(FrameError::UnknownOp { op: 0x42, claim: 7 })
        );
    }

    #[test]
    fn reserved_flags_are_rejected() {
        let bytes = Bytes::from_static(&[0x05, 0x03, 0, 7, 0, 0, 0, 0]);
        assert_eq!(Frame::decode(bytes), Err(FrameError::ReservedFlags(3)));
    }

    #[test]
    fn large_message_splits_into_full_chunks_with_eof_only_on_the_last() {
        let msg = Message::new(Op::Bulk, 3, 9, vec![7u8; MAX_CHUNK * 2 + 5]);
        let frames: Vec<Frame> = msg
            .to_frames()
            .into_iter()
            .map(|b| Frame::decode(b).unwrap())
            .collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames.iter().map(|f| f.eof).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(frames[2].chunk.len(), 5);
    }

    #[test]
    fn a_framed_message_is_the_same_frame_as_an_encoded_one() {
        let (msg, frame) = Message::framed(Op::Bulk, 3, 9, 5, |b| b.put_slice(b"hello"));
        assert_eq!(
            frame,
            Message::new(Op::Bulk, 3, 9, &b"hello"[..]).encode_frame(0)
        );
        assert_eq!(&msg.body[..], b"hello");
    }

    #[test]
    fn empty_message_is_one_eof_frame() {
        let msg = Message::new(Op::Reset, 3, 9, Bytes::new());
        assert_eq!(msg.to_frames().len(), 1);
        assert!(Frame::decode(msg.encode_frame(0)).unwrap().eof);
    }
}
