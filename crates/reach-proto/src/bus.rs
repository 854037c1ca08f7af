//! How one socket's messages ride the bus between server instances (sans-IO): pieces,
//! reassembly and credit. The server's tunnels (`reach_server::bus::tunnel`) use it.
//!
//! A tunnel carries a viewer's WebSocket messages between the instance it connected to and
//! the instance that holds its session. Each direction is a pair of subjects: data and acks.
//! - A message larger than [`CHUNK`] is cut into pieces (`MORE` … `LAST`); one publisher per
//!   direction and NATS's per-connection ordering keep them in order.
//! - The sender may have at most [`WINDOW`] bytes unacknowledged; the receiver acknowledges
//!   what it has handed on (to the socket or to the session) every [`ACK_EVERY`] bytes. A slow
//!   viewer therefore holds the sender back instead of growing a queue anywhere.

use bytes::{BufMut as _, Bytes, BytesMut};

/// Largest piece of a message on the bus (NATS's default payload limit is 1 MiB).
pub const CHUNK: usize = 256 * 1024;
/// Bytes a sender may have in flight, unacknowledged, per direction.
pub const WINDOW: u64 = 4 * 1024 * 1024;
/// The receiver acknowledges after this many bytes.
pub const ACK_EVERY: u64 = 128 * 1024;

const LAST: u8 = 0;
const MORE: u8 = 1;
const CLOSE: u8 = 2;

/// One decoded data-subject payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Part of a message; `last` ends it.
    Data {
        /// Whether this piece completes the message.
        last: bool,
        /// The bytes.
        bytes: Bytes,
    },
    /// The socket closes with this code and reason.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// A payload that is not a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PieceError {
    /// Empty, unknown tag, or a close without its code.
    #[error("malformed bus piece")]
    Malformed,
    /// The reassembled message would pass its limit.
    #[error("bus message larger than {0} bytes")]
    TooLarge(usize),
}

/// Cuts one message into payloads of at most [`CHUNK`] bytes plus a tag byte.
pub fn pieces(message: &[u8]) -> Vec<Bytes> {
    if message.is_empty() {
        return vec![Bytes::from_static(&[LAST])];
    }
    let count = message.len().div_ceil(CHUNK);
    message
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, part)| {
            let mut b = BytesMut::with_capacity(part.len() + 1);
            b.put_u8(if i + 1 == count { LAST } else { MORE });
            b.put_slice(part);
            b.freeze()
        })
        .collect()
}

/// The payload that closes the socket.
pub fn close_piece(code: u16, reason: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(3 + reason.len());
    b.put_u8(CLOSE);
    b.put_u16(code);
    b.put_slice(reason.as_bytes());
    b.freeze()
}

/// Decodes one data-subject payload.
///
/// # Errors
/// [`PieceError::Malformed`].
pub fn decode(payload: &Bytes) -> Result<Piece, PieceError> {
    match payload.first() {
        Some(&LAST) => Ok(Piece::Data {
            last: true,
            bytes: payload.slice(1..),
        }),
        Some(&MORE) => Ok(Piece::Data {
            last: false,
            bytes: payload.slice(1..),
        }),
        Some(&CLOSE) if payload.len() >= 3 => Ok(Piece::Close {
            code: u16::from_be_bytes([payload[1], payload[2]]),
            reason: String::from_utf8_lossy(&payload[3..]).into_owned(),
        }),
        _ => Err(PieceError::Malformed),
    }
}

/// Joins pieces back into messages, refusing any larger than `max`.
#[derive(Debug)]
pub struct Reassembly {
    partial: BytesMut,
    max: usize,
}

impl Reassembly {
    /// Reassembles messages of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            partial: BytesMut::new(),
            max,
        }
    }

    /// Adds one data piece; returns the message it completes.
    ///
    /// # Errors
    /// [`PieceError::TooLarge`] (what was gathered is dropped).
    pub fn push(&mut self, last: bool, bytes: Bytes) -> Result<Option<Bytes>, PieceError> {
        if self.partial.len() + bytes.len() > self.max {
            self.partial = BytesMut::new();
            return Err(PieceError::TooLarge(self.max));
        }
        if last && self.partial.is_empty() {
            return Ok(Some(bytes));
        }
        self.partial.extend_from_slice(&bytes);
        Ok(last.then(|| std::mem::take(&mut self.partial).freeze()))
    }
}

/// The sender's side of the window.
#[derive(Debug, Default)]
pub struct Credit {
    sent: u64,
    acked: u64,
}

impl Credit {
    /// Whether another message may go now (a message may overshoot the window once).
    pub fn open(&self) -> bool {
        self.sent - self.acked < WINDOW
    }

    /// Counts a message sent.
    pub fn sent(&mut self, len: usize) {
        self.sent += len as u64;
    }

    /// The receiver says it has handed on `total` bytes in all (acks never go backwards and
    /// never pass what was sent).
    pub fn acked(&mut self, total: u64) {
        self.acked = self.acked.max(total.min(self.sent));
    }

    /// Bytes in flight.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.acked
    }
}

/// The receiver's side: when to acknowledge.
#[derive(Debug, Default)]
pub struct Acks {
    handed_on: u64,
    told: u64,
}

impl Acks {
    /// Counts a message handed on; returns the total to acknowledge when it is time.
    pub fn handed_on(&mut self, len: usize) -> Option<u64> {
        self.handed_on += len as u64;
        (self.handed_on - self.told >= ACK_EVERY).then(|| {
            self.told = self.handed_on;
            self.told
        })
    }

    /// The total handed on so far, if not yet acknowledged (sent when the receiver goes idle).
    pub fn pending(&mut self) -> Option<u64> {
        (self.handed_on > self.told).then(|| {
            self.told = self.handed_on;
            self.told
        })
    }
}

/// Encodes an acknowledgement.
pub fn ack(total: u64) -> Bytes {
    Bytes::copy_from_slice(&total.to_be_bytes())
}

/// Decodes an acknowledgement.
pub fn decode_ack(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassemble(payloads: &[Bytes], max: usize) -> Result<Vec<Bytes>, PieceError> {
        let mut r = Reassembly::new(max);
        let mut out = Vec::new();
        for p in payloads {
            match decode(p)? {
                Piece::Data { last, bytes } => out.extend(r.push(last, bytes)?),
                Piece::Close { .. } => {}
            }
        }
        Ok(out)
    }

    #[test]
    fn a_large_message_is_cut_into_pieces_and_joined_back_in_order() {
        let message: Vec<u8> = (0..CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let payloads = pieces(&message);
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() <= CHUNK + 1));
        let mut all = payloads.clone();
        all.extend(pieces(b"next"));
        let out = reassemble(&all, 4 * CHUNK).unwrap();
        assert_eq!(out, vec![Bytes::from(message), Bytes::from_static(b"next")]);
    }

    #[test]
    fn small_and_empty_messages_are_one_piece() {
        assert_eq!(pieces(b"abc").len(), 1);
        let out = reassemble(&[pieces(b"").remove(0), pieces(b"x").remove(0)], 10).unwrap();
        assert_eq!(out, vec![Bytes::new(), Bytes::from_static(b"x")]);
    }

    #[test]
    fn a_message_over_the_limit_is_refused_and_the_next_one_still_passes() {
        let big = vec![7u8; CHUNK + 10];
        let mut r = Reassembly::new(CHUNK);
        let mut err = None;
        for p in pieces(&big) {
            let Piece::Data { last, bytes } = decode(&p).unwrap() else {
                panic!("data");
            };
            if let Err(e) = r.push(last, bytes) {
                err = Some(e);
            }
        }
        assert_eq!(err, Some(PieceError::TooLarge(CHUNK)));
        let Piece::Data { last, bytes } = decode(&pieces(b"ok")[0]).unwrap() else {
            panic!("data");
        };
        assert_eq!(
            r.push(last, bytes).unwrap(),
            Some(Bytes::from_static(b"ok"))
        );
    }

    #[test]
    fn close_pieces_carry_code_and_reason_and_junk_is_malformed() {
        assert_eq!(
            decode(&close_piece(4403, "forbidden")).unwrap(),
            Piece::Close {
                code: 4403,
                reason: "forbidden".into()
            }
        );
        for junk in [&b""[..], &[9, 1][..], &[CLOSE, 1][..]] {
            assert_eq!(
                decode(&Bytes::copy_from_slice(junk)),
                Err(PieceError::Malformed)
            );
        }
    }

    #[test]
    fn the_window_closes_when_full_and_reopens_on_acks_that_never_go_backwards() {
        let mut c = Credit::default();
        assert!(c.open());
        c.sent(usize::try_from(WINDOW).unwrap());
        assert!(!c.open());
        c.acked(ACK_EVERY);
        assert!(c.open());
        c.acked(1);
        assert_eq!(c.in_flight(), WINDOW - ACK_EVERY);
        c.acked(u64::MAX);
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn the_receiver_acknowledges_every_ack_every_bytes_and_the_rest_when_idle() {
        let mut a = Acks::default();
        assert_eq!(a.handed_on(100), None);
        assert_eq!(
            a.handed_on(usize::try_from(ACK_EVERY).unwrap()),
            Some(ACK_EVERY + 100)
        );
        assert_eq!(a.pending(), None);
        assert_eq!(a.handed_on(5), None);
        assert_eq!(a.pending(), Some(ACK_EVERY + 105));
        assert_eq!(decode_ack(&ack(42)), Some(42));
        assert_eq!(decode_ack(b"short"), None);
    }
}
