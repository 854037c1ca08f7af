//! The host (device-side) session: a sans-IO state machine.
//!
//! Inputs: [`HostSession::handle_message`] for each transport message, `handle_*_result` and
//! `handle_*_complete` for backend answers, [`HostSession::handle_transport_lost`] /
//! [`HostSession::handle_transport_restored`], [`HostSession::handle_timeout`]. Outputs:
//! [`HostSession::poll_transmit`] (frames), [`HostSession::poll_action`] (backend work for the
//! driver), [`HostSession::poll_event`] (audit-worthy events), [`HostSession::poll_timeout`].
//!
//! # Example
//! ```
//! use std::time::Instant;
//! use reach_usb_proto::host::{HostConfig, HostSession};
//! let mut host = HostSession::new(HostConfig::enabled(), Instant::now());
//! let hello = host.poll_transmit().expect("HELLO goes out first");
//! assert_eq!(hello[0], 0x10);
//! ```

mod claim;
mod lifecycle;
mod requests;

pub use requests::OpenRefusal;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use claim::Claim;
pub use claim::TransferId;

use crate::limits::{DEFAULT_RETENTION, DEFAULT_WINDOW, MIN_WINDOW, PROTOCOL_VERSION};
use crate::proto::control::{self, ErrorBody, Hello};
use crate::proto::flow::{RoundRobin, SendQueue};
use crate::proto::frame::{Frame, FrameError, Message, Op};
use crate::proto::{
    ClosedReason, ConfigOp, DeviceFilter, DeviceInfo, ErrorCode, Reassembler, TransferRequest,
};

/// ERROR message for LIST and OPEN while passthrough is switched off (SPEC §9.1).
pub const PASSTHROUGH_DISABLED: &str =
    "usb passthrough is disabled on this host (reach usb enable)";

/// Host settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The passthrough switch (SPEC §9.1), resolved by the caller with
    /// `reach_usb::enablement::resolve`. Off by default: LIST and OPEN are refused with ERROR
    /// `denied` ([`PASSTHROUGH_DISABLED`]) and nothing is listed or opened.
    pub passthrough: bool,
    /// Receive window announced per claim (≥ 1 MiB).
    pub window: u32,
    /// How long claims survive a transport drop.
    pub retention: Duration,
    /// Largest frame payload this host accepts, announced with `large_frames` (at least
    /// 16 KiB, at most [`crate::limits::LARGE_FRAME_PAYLOAD`]). A transport with a smaller
    /// message cap than 256 KiB — the server relay's 64 KiB viewer socket — sets it lower.
    pub max_frame_payload: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            passthrough: false,
            window: DEFAULT_WINDOW,
            retention: DEFAULT_RETENTION,
            max_frame_payload: crate::limits::LARGE_FRAME_PAYLOAD,
        }
    }
}

impl HostConfig {
    /// The defaults with passthrough switched on.
    pub fn enabled() -> Self {
        Self {
            passthrough: true,
            ..Self::default()
        }
    }
}

/// Backend work the driver must do, then report back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// List devices (ACL-filtered by the driver) → [`HostSession::handle_list_result`].
    List {
        /// Request id to answer.
        request_id: u32,
    },
    /// Decide and open a device → [`HostSession::handle_open_result`].
    Open {
        /// Request id to answer.
        request_id: u32,
        /// Which device.
        filter: DeviceFilter,
    },
    /// Run a transfer → [`HostSession::handle_transfer_complete`].
    Submit {
        /// Id to report with.
        id: TransferId,
        /// Claim whose device runs it.
        claim: u16,
        /// The transfer.
        request: TransferRequest,
    },
    /// Run a configuration op → [`HostSession::handle_configure_complete`].
    Configure {
        /// Id to report with.
        id: TransferId,
        /// Claim.
        claim: u16,
        /// Operation.
        op: ConfigOp,
    },
    /// Cancel a submitted transfer (its completion still comes back).
    Cancel {
        /// Which.
        id: TransferId,
    },
    /// Close the device and re-attach kernel drivers. Late completions are ignored.
    Release {
        /// Claim that held it.
        claim: u16,
    },
}

/// Events for the audit log and logs (never payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// A claim was opened.
    Opened {
        /// Claim id.
        claim: u16,
        /// Device.
        device: DeviceInfo,
    },
    /// A claim closed.
    Closed {
        /// Claim id.
        claim: u16,
        /// Device.
        device: DeviceInfo,
        /// Why.
        reason: ClosedReason,
    },
    /// A claim was resumed on a new transport.
    Resumed {
        /// Claim id.
        claim: u16,
    },
    /// An ERROR was sent to the peer.
    Error {
        /// Claim id (0 for session-level).
        claim: u16,
        /// Code.
        code: ErrorCode,
        /// Message.
        message: String,
    },
}

/// What kind of backend call a [`TransferId`] stands for.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Request { rid: u32, op: Op },
    Stream { endpoint: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    AwaitHello,
    Up {
        peer_window: u32,
        /// Largest frame payload the peer accepts.
        peer_payload: usize,
    },
    Down,
}

/// The host session. See the module docs.
#[derive(Debug)]
pub struct HostSession {
    config: HostConfig,
    link: Link,
    claims: BTreeMap<u16, Claim>,
    reassembler: Reassembler,
    control_out: SendQueue,
    next_claim: u16,
    scheduler: RoundRobin,
    next_transfer: u64,
    transfers: std::collections::HashMap<TransferId, (u16, Origin)>,
    actions: VecDeque<HostAction>,
    events: VecDeque<HostEvent>,
}

impl std::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reassembler({} bytes)", self.held_bytes())
    }
}

impl HostSession {
    /// A session on a fresh transport; HELLO is queued.
    pub fn new(config: HostConfig, _now: Instant) -> Self {
        let mut config = config;
        config.window = config.window.max(MIN_WINDOW);
        let mut s = Self {
            config,
            link: Link::AwaitHello,
            claims: BTreeMap::new(),
            reassembler: Reassembler::new(),
            control_out: SendQueue::unmetered(),
            next_claim: 1,
            scheduler: RoundRobin::default(),
            next_transfer: 1,
            transfers: std::collections::HashMap::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        s.send_hello();
        s
    }

    fn send_hello(&mut self) {
        let mut hello = Hello::current(
            self.config.window,
            &["multi_in_flight", "streams", "resume", "byte_credit"],
        );
        let payload = self.config.max_frame_payload.clamp(
            crate::limits::MAX_FRAME_PAYLOAD,
            crate::limits::LARGE_FRAME_PAYLOAD,
        );
        hello.max_frame_payload = u32::try_from(payload).ok();
        self.control_out
            .push(Message::new(Op::Hello, 0, 0, control::to_body(&hello)));
    }

    /// The passthrough switch changed: while off, LIST and OPEN are refused
    /// ([`PASSTHROUGH_DISABLED`]). Turning it off does not close claims; the driver decides
    /// ([`HostSession::handle_shutdown`]).
    pub fn set_passthrough(&mut self, on: bool) {
        self.config.passthrough = on;
    }

    /// Feeds one transport message.
    pub fn handle_message(&mut self, now: Instant, msg: Bytes) {
        let frame = match Frame::decode(msg) {
            Ok(f) => f,
            Err(FrameError::UnknownOp { op, claim }) => {
                return self.send_error(
                    claim,
                    0,
                    ErrorCode::UnknownOp,
                    format!("unknown op 0x{op:02x}; upgrade the peer"),
                );
            }
            Err(e) => return self.send_error(0, 0, ErrorCode::Malformed, e.to_string()),
        };
        if self.link == Link::Down {
            return;
        }
        if let Some(message) = self.accept_frame(frame) {
            self.dispatch(now, message);
        }
    }

    /// Credit, claim and at-most-once checks on one frame, then reassembly.
    fn accept_frame(&mut self, frame: Frame) -> Option<Message> {
        let (claim_id, rid, eof, len) =
            (frame.claim, frame.request_id, frame.eof, frame.chunk.len());
        if frame.op.uses_credit() {
            let claim = self.claims.get_mut(&claim_id);
            let Some(claim) = claim.filter(|c| c.detached_since.is_none()) else {
                if eof {
                    self.send_error(
                        claim_id,
                        rid,
                        ErrorCode::UnknownClaim,
                        "no such claim in this session; OPEN or RESUME first".into(),
                    );
                }
                return None;
            };
            if claim.recv.consume(len).is_err() {
                self.send_error(
                    claim_id,
                    rid,
                    ErrorCode::CreditExhausted,
                    "credit exhausted: wait for CREDIT before sending more".into(),
                );
                self.close_claim(claim_id, ClosedReason::ProtocolError);
                return None;
            }
            if !self.reassembler.is_partial(claim_id, rid) && !claim.log.try_start(rid) {
                self.release_credit(claim_id, len);
                if eof {
                    self.send_error(
                        claim_id,
                        rid,
                        ErrorCode::ReplayedRequest,
                        format!(
                            "request id {rid} was already used on this claim; use a new, higher id"
                        ),
                    );
                }
                return None;
            }
        }
        match self.reassembler.push(frame) {
            Ok(message) => message,
            Err(e) => {
                self.send_error(claim_id, rid, ErrorCode::TooLarge, e.to_string());
                if self.claims.contains_key(&claim_id) {
                    self.close_claim(claim_id, ClosedReason::ProtocolError);
                }
                None
            }
        }
    }

    fn dispatch(&mut self, now: Instant, m: Message) {
        if let (Link::AwaitHello, false) = (self.link, m.op == Op::Hello) {
            return self.send_error(
                m.claim,
                m.request_id,
                ErrorCode::BadState,
                "send HELLO first".into(),
            );
        }
        match m.op {
            Op::Hello => self.on_hello(m),
            Op::List | Op::Open if !self.config.passthrough => {
                self.send_error(
                    0,
                    m.request_id,
                    ErrorCode::Denied,
                    PASSTHROUGH_DISABLED.into(),
                );
            }
            Op::List => self.actions.push_back(HostAction::List {
                request_id: m.request_id,
            }),
            Op::Open => self.on_open(m),
            Op::Control | Op::Bulk | Op::Interrupt => self.on_transfer(m),
            Op::Cancel => self.on_cancel(&m),
            Op::SetConfiguration | Op::SetInterface | Op::ClearHalt | Op::Reset => {
                self.on_configure(m)
            }
            Op::StreamStart => self.on_stream_start(m),
            Op::StreamStop => self.on_stream_stop(m),
            Op::Credit => self.on_credit(&m),
            Op::Close => self.on_close(&m),
            Op::Resume => self.on_resume(now, m),
            Op::Error => {}
            Op::Opened | Op::Closed | Op::StreamData | Op::DeviceEvent => {
                self.send_error(
                    m.claim,
                    m.request_id,
                    ErrorCode::BadState,
                    format!("{:?} is sent by the host only", m.op),
                );
            }
        }
    }

    fn on_hello(&mut self, m: Message) {
        if self.link != Link::AwaitHello {
            return self.send_error(
                0,
                m.request_id,
                ErrorCode::BadState,
                "HELLO already received".into(),
            );
        }
        let hello: Hello = match control::parse(&m.body) {
            Ok(h) => h,
            Err(e) => return self.send_error(0, m.request_id, ErrorCode::Malformed, e),
        };
        if !hello.versions.contains(&PROTOCOL_VERSION) {
            return self.send_error(
                0,
                0,
                ErrorCode::VersionMismatch,
                format!("no common protocol version; this host speaks {PROTOCOL_VERSION}"),
            );
        }
        if hello.window < MIN_WINDOW {
            return self.send_error(
                0,
                0,
                ErrorCode::Malformed,
                format!("window {} below the minimum {MIN_WINDOW}", hello.window),
            );
        }
        let peer_payload = hello.frame_payload();
        self.link = Link::Up {
            peer_window: hello.window,
            peer_payload,
        };
        self.control_out.set_frame_payload(peer_payload);
    }

    fn on_credit(&mut self, m: &Message) {
        match crate::proto::data::decode_credit(&m.body) {
            Ok(bytes) => {
                if let Some(claim) = self.claims.get_mut(&m.claim) {
                    claim.out.grant(bytes);
                }
            }
            Err(e) => self.send_error(m.claim, 0, ErrorCode::Malformed, e.to_string()),
        }
    }

    /// Answers a LIST with the devices the ACL would not deny.
    pub fn handle_list_result(&mut self, request_id: u32, devices: Vec<DeviceInfo>) {
        let body = control::to_body(&control::ListReply { devices });
        self.control_out
            .push(Message::new(Op::List, 0, request_id, body));
    }

    /// Sends an ERROR and records it.
    fn send_error(&mut self, claim: u16, rid: u32, code: ErrorCode, message: String) {
        let body = control::to_body(&ErrorBody {
            code,
            message: message.clone(),
        });
        self.control_out
            .push(Message::new(Op::Error, claim, rid, body));
        self.events.push_back(HostEvent::Error {
            claim,
            code,
            message,
        });
    }

    fn release_credit(&mut self, claim_id: u16, len: usize) {
        let credit = self.claims.get_mut(&claim_id);
        if let Some(m) = credit.and_then(|c| c.recv.release_credit(claim_id, len)) {
            self.control_out.push(m);
        }
    }

    fn alloc_transfer(&mut self, claim: u16, origin: Origin) -> TransferId {
        let id = TransferId(self.next_transfer);
        self.next_transfer += 1;
        self.transfers.insert(id, (claim, origin));
        id
    }

    /// When [`HostSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.claims
            .values()
            .filter_map(|c| c.detached_since)
            .min()
            .map(|t| t + self.config.retention)
    }

    /// Next frame to send; control messages first, then claims round-robin within credit.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.link == Link::Down {
            return None;
        }
        if let Some(frame) = self.control_out.next_frame() {
            return Some(frame);
        }
        if !matches!(self.link, Link::Up { .. }) {
            return None;
        }
        self.scheduler.next_frame(&mut self.claims)
    }

    /// Next backend action for the driver.
    pub fn poll_action(&mut self) -> Option<HostAction> {
        self.actions.pop_front()
    }

    /// Next audit event.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// Claims currently held.
    pub fn claim_ids(&self) -> Vec<u16> {
        self.claims.keys().copied().collect()
    }

    /// The claim a backend call belongs to.
    pub fn transfer_claim(&self, id: TransferId) -> Option<u16> {
        self.transfers.get(&id).map(|(c, _)| *c)
    }

    /// The device of a claim.
    pub fn claim_device(&self, claim: u16) -> Option<&DeviceInfo> {
        self.claims.get(&claim).map(|c| &c.device)
    }

    fn peer_window(&self) -> u64 {
        match self.link {
            Link::Up { peer_window, .. } => u64::from(peer_window),
            _ => u64::from(MIN_WINDOW),
        }
    }

    /// The current peer's window (the credit of a fresh claim queue) and frame payload.
    fn peer_limits(&self) -> (u64, usize) {
        match self.link {
            Link::Up { peer_payload, .. } => (self.peer_window(), peer_payload),
            _ => (self.peer_window(), crate::limits::MAX_FRAME_PAYLOAD),
        }
    }
}

/// The reply body for a request answered with only a status.
fn status_reply(op: Op, status: crate::proto::TransferStatus) -> Bytes {
    match op {
        Op::Control | Op::Bulk | Op::Interrupt => {
            crate::proto::TransferReply::status(status).encode()
        }
        _ => Bytes::copy_from_slice(&[status as u8]),
    }
}

#[cfg(test)]
mod tests;
