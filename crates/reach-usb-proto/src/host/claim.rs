//! State of one claim on the host: credits, request log (at-most-once), retained completions,
//! receive streams.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use subtle::ConstantTimeEq;

use crate::limits::{MAX_RETAINED, MAX_RETAINED_BYTES, RESUME_TOKEN_LEN};
use crate::proto::DeviceInfo;
use crate::proto::flow::{ClaimQueue, RecvWindow, SendQueue};
use crate::proto::frame::Message;

/// Host-internal id of one backend call (transfer or configuration op).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u64);

/// A resume token; never printed.
#[derive(Clone)]
pub(crate) struct ResumeToken([u8; RESUME_TOKEN_LEN]);

impl ResumeToken {
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; RESUME_TOKEN_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
        Self(bytes)
    }

    pub(crate) fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Constant-time comparison with a presented hex token.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let Ok(bytes) = hex::decode(presented) else {
            return false;
        };
        bytes.len() == RESUME_TOKEN_LEN && bool::from(self.0.ct_eq(&bytes[..]))
    }
}

impl std::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeToken(…)")
    }
}

/// One request being executed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub(crate) id: TransferId,
    /// Op of the request (the reply uses the same op).
    pub(crate) op: crate::proto::Op,
    /// Endpoint (0 for control and configuration ops).
    pub(crate) endpoint: u8,
    /// Request bytes to release to the window on completion (0 if from an older transport).
    pub(crate) credit_bytes: usize,
}

/// Which request ids were started, for at-most-once execution.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    highest_started: Option<u32>,
    /// Started but dropped half-received when the transport failed: may be sent again.
    discarded: HashSet<u32>,
}

impl RequestLog {
    /// Whether a new request id may start; marks it started.
    pub(crate) fn try_start(&mut self, rid: u32) -> bool {
        if self.discarded.remove(&rid) {
            return true;
        }
        if self.highest_started.is_some_and(|h| rid <= h) {
            return false;
        }
        self.highest_started = Some(rid);
        true
    }

    pub(crate) fn mark_discarded(&mut self, rid: u32) {
        self.discarded.insert(rid);
    }

    /// Whether the host ever received this request id completely.
    pub(crate) fn was_received(&self, rid: u32) -> bool {
        self.highest_started.is_some_and(|h| rid <= h) && !self.discarded.contains(&rid)
    }
}

/// Replies kept for replay after a resume (bounded by count and bytes).
#[derive(Debug, Default)]
pub(crate) struct Retained {
    replies: VecDeque<Message>,
    bytes: usize,
}

impl Retained {
    pub(crate) fn push(&mut self, msg: Message) {
        self.bytes += msg.body.len();
        self.replies.push_back(msg);
        while self.replies.len() > MAX_RETAINED || self.bytes > MAX_RETAINED_BYTES {
            if let Some(old) = self.replies.pop_front() {
                self.bytes -= old.body.len();
            }
        }
    }

    pub(crate) fn find(&self, rid: u32) -> Option<&Message> {
        self.replies.iter().rev().find(|m| m.request_id == rid)
    }
}

/// A receive stream on an IN endpoint.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) request_id: u32,
    pub(crate) transfer_size: u32,
    pub(crate) seq: u32,
    pub(crate) dropped: u32,
    pub(crate) active: bool,
    pub(crate) interrupt: bool,
}

/// One claimed device.
#[derive(Debug)]
pub(crate) struct Claim {
    pub(crate) device: DeviceInfo,
    pub(crate) token: ResumeToken,
    pub(crate) out: SendQueue,
    pub(crate) recv: RecvWindow,
    pub(crate) log: RequestLog,
    pub(crate) in_flight: HashMap<u32, InFlight>,
    pub(crate) retained: Retained,
    pub(crate) streams: HashMap<u8, Stream>,
    /// `None` while bound to a live transport; otherwise when it was detached.
    pub(crate) detached_since: Option<Instant>,
}

impl ClaimQueue for Claim {
    fn send_queue(&mut self) -> Option<&mut SendQueue> {
        self.detached_since.is_none().then_some(&mut self.out)
    }
}

impl Claim {
    pub(crate) fn new(device: DeviceInfo, send_credit: u64, window: u32) -> Self {
        Self {
            device,
            token: ResumeToken::random(),
            out: SendQueue::new(send_credit),
            recv: RecvWindow::new(window),
            log: RequestLog::default(),
            in_flight: HashMap::new(),
            retained: Retained::default(),
            streams: HashMap::new(),
            detached_since: None,
        }
    }

    /// Endpoints of one interface (any alt setting).
    pub(crate) fn interface_endpoints(&self, interface: u8) -> Vec<u8> {
        self.device
            .interfaces
            .iter()
            .filter(|i| i.number == interface)
            .flat_map(|i| i.endpoints.iter().map(|e| e.address))
            .collect()
    }

    /// The kind (`bulk`/`interrupt`) of an endpoint, if the device has it.
    pub(crate) fn endpoint_kind(&self, address: u8) -> Option<&str> {
        self.device
            .interfaces
            .iter()
            .flat_map(|i| i.endpoints.iter())
            .find(|e| e.address == address)
            .map(|e| e.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_start_once_unless_discarded_half_received() {
        let mut log = RequestLog::default();
        assert!(log.try_start(1));
        assert!(log.try_start(5));
        assert!(!log.try_start(5), "replay refused");
        assert!(!log.try_start(3), "older id refused");
        log.mark_discarded(5);
        assert!(!log.was_received(5));
        assert!(log.try_start(5), "a half-received request may come again");
        assert!(!log.try_start(5));
        assert!(log.was_received(3));
    }

    #[test]
    fn tokens_compare_in_constant_time_and_reject_garbage() {
        let t = ResumeToken::random();
        assert!(t.matches(&t.to_hex()));
        assert!(!t.matches("zz"));
        assert!(!t.matches(&ResumeToken::random().to_hex()));
        assert_eq!(format!("{t:?}"), "ResumeToken(…)");
    }
}
