//! Byte credits (SPEC §9.5) and the claim scheduler, shared by both sessions.
//!
//! The sender of data-plane frames (CONTROL, BULK, INTERRUPT, STREAM_DATA) spends its claim's
//! credit by the frame's chunk length; the receiver grants credit back with CREDIT once it has
//! processed the bytes ([`RecvWindow::release_credit`] builds that message). [`SendQueue`] also
//! fragments lazily, one frame per call, and [`RoundRobin`] serves the claims' queues one frame
//! at a time, so a small message queued behind a large one on another claim is not delayed by the
//! whole large one.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::frame::{Message, Op};
use crate::limits::{MAX_CHUNK, MAX_FRAME_PAYLOAD, REQUEST_ID_LEN};

/// Outgoing messages of one claim with the credit to send them.
#[derive(Debug)]
pub struct SendQueue {
    /// Messages with the body offset sent so far and, for a framed message, its single frame.
    queue: VecDeque<(Message, usize, Option<Bytes>)>,
    credit: u64,
    max_chunk: usize,
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new(0)
    }
}

impl SendQueue {
    /// A queue starting with `credit` bytes (the peer's announced window), sending 16 KiB frames.
    pub fn new(credit: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            credit,
            max_chunk: MAX_CHUNK,
        }
    }

    /// Sets the largest frame payload the peer accepts (from its HELLO, at least 16 KiB); applies
    /// from the next frame, also to a message partly sent.
    pub fn set_frame_payload(&mut self, payload: usize) {
        self.max_chunk = payload.max(MAX_FRAME_PAYLOAD) - REQUEST_ID_LEN;
    }

    /// A queue that never waits for credit (session-level control messages).
    pub fn unmetered() -> Self {
        Self::new(u64::MAX)
    }

    /// Queues a message.
    pub fn push(&mut self, msg: Message) {
        self.queue.push_back((msg, 0, None));
    }

    /// Queues a message built by [`Message::framed`]; its frame goes out as is (no copy) when the
    /// body fits one frame to the peer.
    pub fn push_framed(&mut self, msg: Message, frame: Bytes) {
        self.queue.push_back((msg, 0, Some(frame)));
    }

    /// Adds granted credit.
    pub fn grant(&mut self, bytes: u32) {
        self.credit = self.credit.saturating_add(u64::from(bytes));
    }

    /// Resets the credit (new transport), drops queued messages and goes back to 16 KiB frames
    /// until the peer's HELLO says otherwise.
    pub fn reset(&mut self, credit: u64) {
        self.queue.clear();
        self.credit = credit;
        self.max_chunk = MAX_CHUNK;
    }

    /// The next frame if one is ready and covered by credit.
    pub fn next_frame(&mut self) -> Option<Bytes> {
        let (msg, offset, framed) = self.queue.front_mut()?;
        let len = msg.body.len().saturating_sub(*offset).min(self.max_chunk);
        if msg.op.uses_credit() {
            if len as u64 > self.credit {
                return None;
            }
            self.credit -= len as u64;
        }
        let end = *offset + len;
        let frame = match framed.take() {
            Some(whole) if *offset == 0 && end >= msg.body.len() => whole,
            _ => msg.encode_span(*offset, end),
        };
        *offset = end;
        if end >= msg.body.len() {
            self.queue.pop_front();
        }
        Some(frame)
    }

    /// Moves every queued message (keeping partial progress) to the back of `other`.
    pub fn move_into(&mut self, other: &mut Self) {
        other.queue.append(&mut self.queue);
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Counts queued messages matching a predicate.
    pub fn count(&self, pred: impl Fn(&Message) -> bool) -> usize {
        self.queue.iter().filter(|(m, ..)| pred(m)).count()
    }

    /// Credit left.
    pub fn credit(&self) -> u64 {
        self.credit
    }
}

/// The receive side of one claim's credit.
#[derive(Debug)]
pub struct RecvWindow {
    window: u64,
    remaining: u64,
    unreported: u64,
}

impl RecvWindow {
    /// A window of `window` bytes.
    pub fn new(window: u32) -> Self {
        Self {
            window: u64::from(window),
            remaining: u64::from(window),
            unreported: 0,
        }
    }

    /// Spends `len` bytes of a received frame.
    ///
    /// # Errors
    /// `Err(())` when the peer sent beyond its credit (`credit exhausted`).
    #[allow(clippy::result_unit_err)]
    pub fn consume(&mut self, len: usize) -> Result<(), ()> {
        let len = len as u64;
        if len > self.remaining {
            return Err(());
        }
        self.remaining -= len;
        Ok(())
    }

    /// Marks `len` bytes processed; returns a grant to send when enough has accumulated.
    pub fn release(&mut self, len: usize) -> Option<u32> {
        self.unreported += len as u64;
        self.remaining += len as u64;
        if self.unreported >= (self.window / 8).max(1) {
            let grant = u32::try_from(self.unreported).unwrap_or(u32::MAX);
            self.unreported -= u64::from(grant);
            return Some(grant);
        }
        None
    }

    /// Marks `len` bytes of `claim` processed; returns the CREDIT message to send when enough
    /// has accumulated.
    pub fn release_credit(&mut self, claim: u16, len: usize) -> Option<Message> {
        self.release(len).map(|grant| credit_message(claim, grant))
    }

    /// Resets to a fresh window (new transport).
    pub fn reset(&mut self) {
        self.remaining = self.window;
        self.unreported = 0;
    }
}

/// A CREDIT message granting `bytes` on `claim` (body `bytes u32`, request id 0).
pub fn credit_message(claim: u16, bytes: u32) -> Message {
    Message::new(
        Op::Credit,
        claim,
        0,
        Bytes::copy_from_slice(&bytes.to_be_bytes()),
    )
}

/// A claim as the scheduler sees it: its send queue while it may send.
pub trait ClaimQueue {
    /// The claim's queue, or `None` while it may not send (detached, not yet resumed).
    fn send_queue(&mut self) -> Option<&mut SendQueue>;
}

/// Serves claims round-robin, one frame per call, starting after the claim served last.
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursor: u16,
}

impl RoundRobin {
    /// The next frame from the first claim after the last one served that has a frame ready
    /// within its credit.
    pub fn next_frame<C: ClaimQueue>(&mut self, claims: &mut BTreeMap<u16, C>) -> Option<Bytes> {
        let start = self.cursor.saturating_add(1);
        let found = serve(claims.range_mut(start..)).or_else(|| serve(claims.range_mut(..start)));
        let (id, frame) = found?;
        self.cursor = id;
        Some(frame)
    }
}

fn serve<'a, C: ClaimQueue + 'a>(
    claims: impl Iterator<Item = (&'a u16, &'a mut C)>,
) -> Option<(u16, Bytes)> {
    claims
        .filter_map(|(id, claim)| Some((*id, claim.send_queue()?.next_frame()?)))
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_frames_wait_for_credit_but_control_frames_do_not() {
        let mut q = SendQueue::new(10);
        q.push(Message::new(Op::Bulk, 1, 1, vec![0u8; 20]));
        assert_eq!(q.next_frame(), None);
        q.push(Message::new(Op::Close, 1, 2, Bytes::new()));
        assert_eq!(q.next_frame(), None, "FIFO within a claim");
        q.grant(10);
        assert!(q.next_frame().is_some());
        assert!(q.next_frame().is_some());
        assert!(q.is_empty());
    }

    struct Q(SendQueue);

    impl ClaimQueue for Q {
        fn send_queue(&mut self) -> Option<&mut SendQueue> {
            Some(&mut self.0)
        }
    }

    #[test]
    fn a_peer_announcing_large_frames_gets_a_16_kib_transfer_in_one_frame() {
        let body = vec![7u8; 16 * 1024 + 10];
        let mut old = SendQueue::unmetered();
        old.push(Message::new(Op::Bulk, 1, 1, body.clone()));
        assert_eq!(std::iter::from_fn(|| old.next_frame()).count(), 2);
        let mut large = SendQueue::unmetered();
        large.set_frame_payload(crate::limits::LARGE_FRAME_PAYLOAD);
        large.push(Message::new(Op::Bulk, 1, 1, body.clone()));
        let frames: Vec<Bytes> = std::iter::from_fn(|| large.next_frame()).collect();
        assert_eq!(frames.len(), 1);
        let got = super::super::reassembly::reassemble_all(frames);
        assert_eq!(&got[0].as_ref().unwrap().body[..], &body[..]);
    }

    #[test]
    fn changing_the_frame_size_mid_message_keeps_the_bytes_in_order() {
        let body: Vec<u8> = (0..MAX_CHUNK * 3).map(|i| i as u8).collect();
        let mut q = SendQueue::unmetered();
        q.push(Message::new(Op::Bulk, 1, 1, body.clone()));
        let first = q.next_frame().unwrap();
        q.set_frame_payload(MAX_FRAME_PAYLOAD * 4);
        let mut frames = vec![first];
        frames.extend(std::iter::from_fn(|| q.next_frame()));
        assert_eq!(frames.len(), 2);
        let got = super::super::reassembly::reassemble_all(frames);
        assert_eq!(&got[0].as_ref().unwrap().body[..], &body[..]);
    }

    #[test]
    fn claims_are_served_one_frame_each_in_turn() {
        let mut claims = BTreeMap::new();
        for id in [1u16, 2, 3] {
            let mut q = SendQueue::unmetered();
            q.push(Message::new(Op::Bulk, id, 1, vec![0u8; MAX_CHUNK * 2]));
            claims.insert(id, Q(q));
        }
        let mut rr = RoundRobin::default();
        let order: Vec<u16> = std::iter::from_fn(|| rr.next_frame(&mut claims))
            .map(|f| u16::from_be_bytes([f[2], f[3]]))
            .collect();
        assert_eq!(order, [1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn a_claim_that_may_not_send_is_skipped() {
        struct Detached;
        impl ClaimQueue for Detached {
            fn send_queue(&mut self) -> Option<&mut SendQueue> {
                None
            }
        }
        let mut claims = BTreeMap::from([(1u16, Detached)]);
        assert_eq!(RoundRobin::default().next_frame(&mut claims), None);
    }

    #[test]
    fn releasing_an_eighth_of_the_window_builds_a_credit_message() {
        let mut w = RecvWindow::new(800);
        w.consume(100).unwrap();
        assert_eq!(w.release_credit(7, 99), None);
        let m = w.release_credit(7, 1).expect("an eighth released");
        assert_eq!((m.op, m.claim, m.request_id), (Op::Credit, 7, 0));
        assert_eq!(&m.body[..], &100u32.to_be_bytes());
    }

    #[test]
    fn overspending_the_window_is_detected() {
        let mut w = RecvWindow::new(100);
        assert_eq!(w.consume(60), Ok(()));
        assert_eq!(w.consume(41), Err(()));
        assert_eq!(w.release(60), Some(60));
        assert_eq!(w.consume(100), Ok(()));
    }
}
