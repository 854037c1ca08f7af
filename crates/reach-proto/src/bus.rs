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
//! - The sender may have at most [`WINDOW`] bytes and [`MAX_PIECES_IN_FLIGHT`] pieces
//!   unacknowledged; the receiver acknowledges what it has handed on (to the socket or to the
//!   session) every [`ACK_EVERY`] bytes and the pieces it took every [`ACK_EVERY_PIECES`]. A
//!   slow viewer therefore holds the sender back instead of growing a queue anywhere, and the
//!   bus client's per-subscription queue (which drops when full) never fills.

use bytes::{BufMut as _, Bytes, BytesMut};

/// Smallest chunk used, whatever the bus says its payload limit is.
pub const MIN_CHUNK: usize = 64 * 1024;
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

/// The sender's side of the window: bytes (what the receiver may have to hold) and pieces
/// (what the bus client queues per subscription before it drops: see [`MAX_PIECES_IN_FLIGHT`]).
#[derive(Debug, Default)]
pub struct Credit {
    sent: Count,
    acked: Count,
}

/// Bytes handed on and pieces taken, in all.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Message bytes.
    pub bytes: u64,
    /// Bus pieces.
    pub pieces: u64,
}

impl Credit {
    /// Whether another message may go now (a message may overshoot the window once, by at most
    /// its own size and pieces).
    pub fn open(&self) -> bool {
        self.sent.bytes - self.acked.bytes < WINDOW
            && self.sent.pieces - self.acked.pieces < MAX_PIECES_IN_FLIGHT
    }

    /// Counts a message of `len` bytes sent as `pieces` pieces.
    pub fn sent(&mut self, len: usize, pieces: usize) {
        self.sent.bytes += len as u64;
        self.sent.pieces += pieces as u64;
    }

    /// The receiver's totals (acks never go backwards and never pass what was sent).
    pub fn acked(&mut self, total: Count) {
        self.acked.bytes = self.acked.bytes.max(total.bytes.min(self.sent.bytes));
        self.acked.pieces = self.acked.pieces.max(total.pieces.min(self.sent.pieces));
    }

    /// Bytes in flight.
    pub fn in_flight(&self) -> u64 {
        self.sent.bytes - self.acked.bytes
    }
}

/// Pieces a sender may have unacknowledged. The bus client queues at most
/// [`SUBSCRIPTION_CAPACITY`] pieces per subscription and drops the rest; this window plus one
/// largest message ([`MAX_MESSAGE`] / [`MIN_CHUNK`] pieces) stays below it, so nothing is lost.
pub const MAX_PIECES_IN_FLIGHT: u64 = 512;
/// The bus client's queue per subscription (the server sets it so).
pub const SUBSCRIPTION_CAPACITY: usize = 1024;
/// The largest message a tunnel carries (an agent's message cap).
pub const MAX_MESSAGE: usize = crate::limits::AGENT_MAX_MESSAGE;
/// Pieces the receiver takes between acknowledgements at most.
pub const ACK_EVERY_PIECES: u64 = 64;

/// The receiver's side: when to acknowledge.
#[derive(Debug, Default)]
pub struct Acks {
    now: Count,
    told: Count,
}

impl Acks {
    /// Counts a piece taken from the bus; returns the totals to acknowledge when it is time.
    pub fn took_piece(&mut self) -> Option<Count> {
        self.now.pieces += 1;
        self.due()
    }

    /// Counts a message handed on; returns the totals to acknowledge when it is time.
    pub fn handed_on(&mut self, len: usize) -> Option<Count> {
        self.now.bytes += len as u64;
        self.due()
    }

    fn due(&mut self) -> Option<Count> {
        let due = self.now.bytes - self.told.bytes >= ACK_EVERY
            || self.now.pieces - self.told.pieces >= ACK_EVERY_PIECES;
        due.then(|| {
            self.told = self.now;
            self.told
        })
    }

    /// The totals so far, if not yet acknowledged (sent when the receiver goes idle).
    pub fn pending(&mut self) -> Option<Count> {
        (self.now != self.told).then(|| {
            self.told = self.now;
            self.told
        })
    }
}

/// Encodes an acknowledgement.
pub fn ack(total: Count) -> Bytes {
    let mut b = BytesMut::with_capacity(16);
    b.put_u64(total.bytes);
    b.put_u64(total.pieces);
    b.freeze()
}

/// Decodes an acknowledgement.
pub fn decode_ack(payload: &[u8]) -> Option<Count> {
    let bytes: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    let pieces: [u8; 8] = payload.get(8..16)?.try_into().ok()?;
    (payload.len() == 16).then(|| Count {
        bytes: u64::from_be_bytes(bytes),
        pieces: u64::from_be_bytes(pieces),
    })
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
    fn the_window_closes_on_bytes_or_pieces_and_reopens_on_acks_that_never_go_backwards() {
        let mut c = Credit::default();
        assert!(c.open());
        c.sent(usize::try_from(WINDOW).unwrap(), 1);
        assert!(!c.open());
        c.acked(Count {
            bytes: ACK_EVERY,
            pieces: 1,
        });
        assert!(c.open());
        c.acked(Count {
            bytes: 1,
            pieces: 0,
        });
        assert_eq!(c.in_flight(), WINDOW - ACK_EVERY);
        c.acked(Count {
            bytes: u64::MAX,
            pieces: u64::MAX,
        });
        assert_eq!(c.in_flight(), 0);
        // Many small messages close it on pieces long before bytes.
        let mut c = Credit::default();
        for _ in 0..MAX_PIECES_IN_FLIGHT {
            assert!(c.open());
            c.sent(20, 1);
        }
        assert!(!c.open());
        c.acked(Count {
            bytes: 20,
            pieces: 1,
        });
        assert!(c.open());
    }

    #[test]
    fn the_piece_window_and_one_largest_message_fit_the_subscription_queue() {
        let largest = MAX_MESSAGE.div_ceil(MIN_CHUNK) as u64;
        assert!(MAX_PIECES_IN_FLIGHT + largest < SUBSCRIPTION_CAPACITY as u64);
        assert!(
            pieces(&Bytes::from(vec![0u8; MAX_MESSAGE + 100]), MIN_CHUNK).len() as u64
                <= largest + 1
        );
    }

    #[test]
    fn the_receiver_acknowledges_on_bytes_or_pieces_and_the_rest_when_idle() {
        let mut a = Acks::default();
        assert_eq!(a.handed_on(100), None);
        assert_eq!(
            a.handed_on(usize::try_from(ACK_EVERY).unwrap()),
            Some(Count {
                bytes: ACK_EVERY + 100,
                pieces: 0
            })
        );
        assert_eq!(a.pending(), None);
        for _ in 1..ACK_EVERY_PIECES {
            assert_eq!(a.took_piece(), None);
        }
        let due = a.took_piece().unwrap();
        assert_eq!(due.pieces, ACK_EVERY_PIECES);
        assert_eq!(a.handed_on(5), None);
        assert_eq!(a.pending().map(|c| c.bytes), Some(ACK_EVERY + 105));
        let c = Count {
            bytes: 42,
            pieces: 7,
        };
        assert_eq!(decode_ack(&ack(c)), Some(c));
        assert_eq!(decode_ack(b"short"), None);
        assert_eq!(decode_ack(&[0u8; 17]), None);
    }
}
