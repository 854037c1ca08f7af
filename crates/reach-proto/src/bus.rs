//! How one socket's messages ride the bus between server instances (sans-IO): pieces,
//! reassembly and credit. The server's tunnels (`reach_server::bus::tunnel`) use it.
//!
//! A tunnel carries a viewer's WebSocket messages between the instance it connected to and
//! the instance that holds its session. Each direction has a data subject family and an ack
//! subject.
//! - What a payload is travels in the last token of its subject ([`Kind`]: `l` the last piece
//!   of a message, `m` more follows, `c` the socket closes), so a piece is a slice of the
//!   message, never a copy. A message larger than the chunk size (the bus's payload limit) is
//!   cut into pieces; one publisher per direction and NATS's per-connection ordering keep them
//!   in order.
//! - The sender may have at most [`WINDOW`] bytes unacknowledged; the receiver acknowledges
//!   what it has handed on (to the socket or to the session) every [`ACK_EVERY`] bytes. A slow
//!   viewer therefore holds the sender back instead of growing a queue anywhere.

use bytes::{BufMut as _, Bytes, BytesMut};

/// Smallest chunk used, whatever the bus says its payload limit is.
pub const MIN_CHUNK: usize = 4 * 1024;
/// Largest chunk used (a bus configured for bigger payloads still gets pieces this size).
pub const MAX_CHUNK: usize = 8 * 1024 * 1024;
/// Bytes a sender may have in flight, unacknowledged, per direction.
pub const WINDOW: u64 = 4 * 1024 * 1024;
/// The receiver acknowledges after this many bytes.
pub const ACK_EVERY: u64 = 128 * 1024;

/// What a payload is (the last token of its subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The last (or only) piece of a message.
    Last,
    /// A piece with more of its message following.
    More,
    /// The socket closes: a big-endian code and a UTF-8 reason.
    Close,
}

impl Kind {
    /// The subject token.
    pub const fn token(self) -> &'static str {
        match self {
            Self::Last => "l",
            Self::More => "m",
            Self::Close => "c",
        }
    }

    /// Reads a subject token.
    pub fn from_token(token: &str) -> Option<Self> {
        match token {
            "l" => Some(Self::Last),
            "m" => Some(Self::More),
            "c" => Some(Self::Close),
            _ => None,
        }
    }
}

/// One decoded data payload.
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
    /// Unknown kind, or a close without its code.
    #[error("malformed bus piece")]
    Malformed,
    /// The reassembled message would pass its limit.
    #[error("bus message larger than {0} bytes")]
    TooLarge(usize),
}

/// The chunk size for a bus whose payload limit is `max_payload`.
pub fn chunk_for(max_payload: usize) -> usize {
    max_payload.clamp(MIN_CHUNK, MAX_CHUNK)
}

/// Cuts one message into pieces of at most `chunk` bytes: slices of it, not copies.
pub fn pieces(message: &Bytes, chunk: usize) -> Vec<(Kind, Bytes)> {
    let chunk = chunk.max(1);
    if message.len() <= chunk {
        return vec![(Kind::Last, message.clone())];
    }
    let mut out = Vec::with_capacity(message.len().div_ceil(chunk));
    let mut at = 0;
    while at < message.len() {
        let end = (at + chunk).min(message.len());
        let kind = if end == message.len() {
            Kind::Last
        } else {
            Kind::More
        };
        out.push((kind, message.slice(at..end)));
        at = end;
    }
    out
}

/// The payload of a [`Kind::Close`].
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + reason.len());
    b.put_u16(code);
    b.put_slice(reason.as_bytes());
    b.freeze()
}

/// Decodes one data payload of `kind`.
///
/// # Errors
/// [`PieceError::Malformed`].
pub fn decode(kind: Kind, payload: Bytes) -> Result<Piece, PieceError> {
    match kind {
        Kind::Last => Ok(Piece::Data {
            last: true,
            bytes: payload,
        }),
        Kind::More => Ok(Piece::Data {
            last: false,
            bytes: payload,
        }),
        Kind::Close if payload.len() >= 2 => Ok(Piece::Close {
            code: u16::from_be_bytes([payload[0], payload[1]]),
            reason: String::from_utf8_lossy(&payload[2..]).into_owned(),
        }),
        Kind::Close => Err(PieceError::Malformed),
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

    fn reassemble(payloads: &[(Kind, Bytes)], max: usize) -> Result<Vec<Bytes>, PieceError> {
        let mut r = Reassembly::new(max);
        let mut out = Vec::new();
        for (kind, p) in payloads {
            match decode(*kind, p.clone())? {
                Piece::Data { last, bytes } => out.extend(r.push(last, bytes)?),
                Piece::Close { .. } => {}
            }
        }
        Ok(out)
    }

    #[test]
    fn a_large_message_is_cut_into_slices_and_joined_back_in_order() {
        let chunk = MIN_CHUNK;
        let message: Bytes = (0..chunk * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut all = pieces(&message, chunk);
        assert_eq!(
            all.iter().map(|(k, b)| (*k, b.len())).collect::<Vec<_>>(),
            vec![(Kind::More, chunk), (Kind::More, chunk), (Kind::Last, 17)]
        );
        assert_eq!(
            all[1].1.as_ptr(),
            message[chunk..].as_ptr(),
            "a slice, not a copy"
        );
        all.extend(pieces(&Bytes::from_static(b"next"), chunk));
        let out = reassemble(&all, 4 * chunk).unwrap();
        assert_eq!(out, vec![message, Bytes::from_static(b"next")]);
    }

    #[test]
    fn small_and_empty_messages_are_one_piece_passed_through() {
        let m = Bytes::from_static(b"abc");
        let p = pieces(&m, MIN_CHUNK);
        assert_eq!(p, vec![(Kind::Last, m.clone())]);
        let out = reassemble(&[pieces(&Bytes::new(), 8)[0].clone(), p[0].clone()], 10).unwrap();
        assert_eq!(out, vec![Bytes::new(), m]);
    }

    #[test]
    fn the_chunk_follows_the_bus_limit_within_bounds() {
        assert_eq!(chunk_for(1024 * 1024), 1024 * 1024);
        assert_eq!(chunk_for(10), MIN_CHUNK);
        assert_eq!(chunk_for(usize::MAX), MAX_CHUNK);
    }

    #[test]
    fn a_message_over_the_limit_is_refused_and_the_next_one_still_passes() {
        let big: Bytes = vec![7u8; 3 * 1024].into();
        let mut r = Reassembly::new(1024);
        let mut err = None;
        for (kind, p) in pieces(&big, 512) {
            let Piece::Data { last, bytes } = decode(kind, p).unwrap() else {
                panic!("data");
            };
            if let Err(e) = r.push(last, bytes) {
                err = Some(e);
            }
        }
        assert_eq!(err, Some(PieceError::TooLarge(1024)));
        assert_eq!(
            r.push(true, Bytes::from_static(b"ok")).unwrap(),
            Some(Bytes::from_static(b"ok"))
        );
    }

    #[test]
    fn close_pieces_carry_code_and_reason_and_junk_is_malformed() {
        assert_eq!(
            decode(Kind::Close, close_payload(4403, "forbidden")).unwrap(),
            Piece::Close {
                code: 4403,
                reason: "forbidden".into()
            }
        );
        assert_eq!(
            decode(Kind::Close, Bytes::from_static(&[1])),
            Err(PieceError::Malformed)
        );
        for k in [Kind::Last, Kind::More, Kind::Close] {
            assert_eq!(Kind::from_token(k.token()), Some(k));
        }
        assert_eq!(Kind::from_token("ack"), None);
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
