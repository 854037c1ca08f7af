//! The consumer-side session: a sans-IO state machine mirroring [`crate::host::HostSession`].
//!
//! Requests get ids from one counter, so ids rise strictly on every claim (the host's
//! at-most-once rule). Each pending request keeps its encoded message so a request the host
//! never received can be sent again after a RESUME; replies for ids no longer pending are
//! dropped, so every completion is delivered once.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

mod inbound;

use crate::error::UsbError;
use crate::limits::DEFAULT_WINDOW;
use crate::proto::control::{self, DeviceEvent, Hello, Open, Opened, Resume};
use crate::proto::data::{StreamData, StreamStart};
use crate::proto::flow::{ClaimQueue, RecvWindow, RoundRobin, SendQueue};
use crate::proto::frame::{Message, Op};
use crate::proto::{
    ClosedReason, ConfigOp, DeviceFilter, DeviceInfo, Reassembler, TransferReply, TransferRequest,
};

/// What the client session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Answer to [`ClientSession::list`].
    Listed {
        /// Request id.
        request_id: u32,
        /// Devices or error.
        result: Result<Vec<DeviceInfo>, UsbError>,
    },
    /// Answer to [`ClientSession::open`].
    Opened {
        /// Request id.
        request_id: u32,
        /// OPENED or error.
        result: Result<Opened, UsbError>,
    },
    /// A transfer, configuration or stream start/stop finished (config replies carry only a status).
    Done {
        /// Claim.
        claim: u16,
        /// Request id.
        request_id: u32,
        /// Reply or error.
        result: Result<TransferReply, UsbError>,
    },
    /// One receive-stream completion.
    Stream {
        /// Claim.
        claim: u16,
        /// Data.
        data: StreamData,
    },
    /// A claim closed (requested, unplugged, expired…). Pending requests were failed.
    Closed {
        /// Claim.
        claim: u16,
        /// Why.
        reason: ClosedReason,
    },
    /// Answer to a RESUME.
    Resumed {
        /// Claim.
        claim: u16,
        /// Ok or why not.
        result: Result<(), UsbError>,
    },
    /// Hotplug.
    Device(DeviceEvent),
    /// An ERROR not tied to a pending request.
    PeerError {
        /// Claim.
        claim: u16,
        /// Error.
        error: UsbError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CtrlKind {
    List,
    Open,
}

#[derive(Debug)]
struct Pending {
    msg: Message,
    deadline: Instant,
}

#[derive(Debug)]
struct ClientClaim {
    token: String,
    out: SendQueue,
    recv: RecvWindow,
    pending: HashMap<u32, Pending>,
    /// Request ids listed in the last RESUME; others pending at RESUMED time are sent then.
    listed: Vec<u32>,
    bound: bool,
}

impl ClaimQueue for ClientClaim {
    fn send_queue(&mut self) -> Option<&mut SendQueue> {
        self.bound.then_some(&mut self.out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    AwaitHello,
    /// The host's window and the largest frame payload it accepts.
    Up(u32, usize),
    Down,
}

/// The client session. Drive it like [`crate::host::HostSession`].
#[derive(Debug)]
pub struct ClientSession {
    window: u32,
    link: Link,
    control_out: SendQueue,
    claims: BTreeMap<u16, ClientClaim>,
    reassembler: Reassembler,
    next_rid: u32,
    ctrl: HashMap<u32, (CtrlKind, Instant)>,
    deadlines: BTreeSet<(Instant, u32, u16)>,
    events: VecDeque<ClientEvent>,
    scheduler: RoundRobin,
}

impl ClientSession {
    /// A session on a fresh transport; HELLO is queued.
    pub fn new(_now: Instant) -> Self {
        let mut s = Self {
            window: DEFAULT_WINDOW,
            link: Link::AwaitHello,
            control_out: SendQueue::unmetered(),
            claims: BTreeMap::new(),
            reassembler: Reassembler::new(),
            next_rid: 1,
            ctrl: HashMap::new(),
            deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            scheduler: RoundRobin::default(),
        };
        s.send_hello();
        s
    }

    fn send_hello(&mut self) {
        let hello = Hello::current(self.window, &["multi_in_flight", "streams", "resume"]);
        self.control_out
            .push(Message::new(Op::Hello, 0, 0, control::to_body(&hello)));
    }

    fn rid(&mut self) -> u32 {
        let rid = self.next_rid;
        self.next_rid = self.next_rid.wrapping_add(1).max(1);
        rid
    }

    /// Asks for the device list.
    pub fn list(&mut self, now: Instant, timeout: Duration) -> u32 {
        let rid = self.rid();
        self.control_out
            .push(Message::new(Op::List, 0, rid, Bytes::from_static(b"{}")));
        self.track_ctrl(rid, CtrlKind::List, now + timeout);
        rid
    }

    /// Asks to open a device.
    pub fn open(&mut self, now: Instant, filter: DeviceFilter, timeout: Duration) -> u32 {
        let rid = self.rid();
        self.control_out.push(Message::new(
            Op::Open,
            0,
            rid,
            control::to_body(&Open { filter }),
        ));
        self.track_ctrl(rid, CtrlKind::Open, now + timeout);
        rid
    }

    fn track_ctrl(&mut self, rid: u32, kind: CtrlKind, deadline: Instant) {
        self.ctrl.insert(rid, (kind, deadline));
        self.deadlines.insert((deadline, rid, 0));
    }

    /// Queues a transfer.
    ///
    /// # Errors
    /// [`UsbError::Closed`] when the claim is not open in this session.
    pub fn submit(
        &mut self,
        now: Instant,
        claim: u16,
        request: &TransferRequest,
        timeout: Duration,
    ) -> Result<u32, UsbError> {
        let op = match request.kind {
            crate::proto::TransferKind::Control(_) => Op::Control,
            crate::proto::TransferKind::Bulk(_) => Op::Bulk,
            crate::proto::TransferKind::Interrupt(_) => Op::Interrupt,
        };
        let rid = self.rid();
        let (msg, frame) = Message::framed(op, claim, rid, request.encoded_len(), |out| {
            request.encode_into(out)
        });
        self.queue_request(now, msg, Some(frame), timeout)
    }

    /// Queues a configuration op.
    ///
    /// # Errors
    /// [`UsbError::Closed`] when the claim is not open.
    pub fn configure(
        &mut self,
        now: Instant,
        claim: u16,
        op: ConfigOp,
        timeout: Duration,
    ) -> Result<u32, UsbError> {
        let wire = match op {
            ConfigOp::SetConfiguration(_) => Op::SetConfiguration,
            ConfigOp::SetInterface(..) => Op::SetInterface,
            ConfigOp::ClearHalt(_) => Op::ClearHalt,
            ConfigOp::Reset => Op::Reset,
        };
        self.send_request(now, claim, wire, op.encode(), timeout)
    }

    /// Starts a receive stream; completions arrive as [`ClientEvent::Stream`].
    ///
    /// # Errors
    /// [`UsbError::Closed`] when the claim is not open.
    pub fn stream_start(
        &mut self,
        now: Instant,
        claim: u16,
        start: StreamStart,
        timeout: Duration,
    ) -> Result<u32, UsbError> {
        self.send_request(now, claim, Op::StreamStart, start.encode(), timeout)
    }

    /// Stops a receive stream.
    ///
    /// # Errors
    /// [`UsbError::Closed`] when the claim is not open.
    pub fn stream_stop(
        &mut self,
        now: Instant,
        claim: u16,
        endpoint: u8,
        timeout: Duration,
    ) -> Result<u32, UsbError> {
        self.send_request(
            now,
            claim,
            Op::StreamStop,
            Bytes::copy_from_slice(&[endpoint]),
            timeout,
        )
    }

    fn send_request(
        &mut self,
        now: Instant,
        claim: u16,
        op: Op,
        body: Bytes,
        timeout: Duration,
    ) -> Result<u32, UsbError> {
        let rid = self.rid();
        self.queue_request(now, Message::new(op, claim, rid, body), None, timeout)
    }

    /// Tracks a request and queues it (`frame`: its single frame from [`Message::framed`]).
    fn queue_request(
        &mut self,
        now: Instant,
        msg: Message,
        frame: Option<Bytes>,
        timeout: Duration,
    ) -> Result<u32, UsbError> {
        let (claim, rid) = (msg.claim, msg.request_id);
        let c = self
            .claims
            .get_mut(&claim)
            .ok_or_else(|| UsbError::Closed("not open in this session".into()))?;
        if c.bound && self.link != Link::Down {
            match frame {
                Some(frame) => c.out.push_framed(msg.clone(), frame),
                None => c.out.push(msg.clone()),
            }
        }
        let deadline = now + timeout;
        c.pending.insert(rid, Pending { msg, deadline });
        self.deadlines.insert((deadline, rid, claim));
        Ok(rid)
    }

    /// Asks the host to cancel a request; its reply still arrives (`cancelled` or its real result).
    pub fn cancel(&mut self, claim: u16, request_id: u32) {
        if self
            .claims
            .get(&claim)
            .is_some_and(|c| c.pending.contains_key(&request_id))
        {
            self.control_out
                .push(Message::new(Op::Cancel, claim, request_id, Bytes::new()));
        }
    }

    /// Asks the host to close a claim; [`ClientEvent::Closed`] follows.
    pub fn close(&mut self, claim: u16) {
        if self.claims.contains_key(&claim) {
            self.control_out
                .push(Message::new(Op::Close, claim, 0, Bytes::new()));
        }
    }

    /// Fails requests past their deadline with [`UsbError::Timeout`] and cancels them on the host.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, rid, claim)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if claim == 0 {
                if let Some((kind, _)) = self.ctrl.remove(&rid) {
                    self.events.push_back(match kind {
                        CtrlKind::List => ClientEvent::Listed {
                            request_id: rid,
                            result: Err(UsbError::Timeout),
                        },
                        CtrlKind::Open => ClientEvent::Opened {
                            request_id: rid,
                            result: Err(UsbError::Timeout),
                        },
                    });
                }
                continue;
            }
            self.cancel(claim, rid);
            if let Some(c) = self.claims.get_mut(&claim) {
                c.pending.remove(&rid);
            }
            self.events.push_back(ClientEvent::Done {
                claim,
                request_id: rid,
                result: Err(UsbError::Timeout),
            });
        }
    }

    /// When [`ClientSession::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|d| d.0)
    }

    /// The transport dropped: control requests fail, claims wait for [`Self::handle_transport_restored`].
    pub fn handle_transport_lost(&mut self, _now: Instant) {
        self.link = Link::Down;
        self.reassembler.clear();
        self.control_out.reset(u64::MAX);
        let ctrl: Vec<(u32, (CtrlKind, Instant))> = self.ctrl.drain().collect();
        for (rid, (kind, deadline)) in ctrl {
            self.deadlines.remove(&(deadline, rid, 0));
            let err = UsbError::Closed("transport lost".into());
            self.events.push_back(match kind {
                CtrlKind::List => ClientEvent::Listed {
                    request_id: rid,
                    result: Err(err),
                },
                CtrlKind::Open => ClientEvent::Opened {
                    request_id: rid,
                    result: Err(err),
                },
            });
        }
        for c in self.claims.values_mut() {
            c.bound = false;
            c.out.reset(0);
            c.recv.reset();
        }
    }

    /// A new transport is up: HELLO, then RESUME for every claim with its pending request ids.
    pub fn handle_transport_restored(&mut self, _now: Instant) {
        self.link = Link::AwaitHello;
        // HELLO and the RESUMEs first: the host (or a relay's host side) decides from a new
        // connection's first frames whether it resumes; what was queued while the link was down
        // (CANCEL, CREDIT) follows them.
        let mut queued = SendQueue::unmetered();
        self.control_out.move_into(&mut queued);
        self.send_hello();
        for (claim_id, c) in &mut self.claims {
            let mut pending: Vec<u32> = c.pending.keys().copied().collect();
            pending.sort_unstable();
            c.listed.clone_from(&pending);
            let body = control::to_body(&Resume {
                token: c.token.clone(),
                pending,
            });
            self.control_out
                .push(Message::new(Op::Resume, *claim_id, 0, body));
        }
        queued.move_into(&mut self.control_out);
    }

    /// Next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.link == Link::Down {
            return None;
        }
        if let Some(f) = self.control_out.next_frame() {
            return Some(f);
        }
        let Link::Up(..) = self.link else { return None };
        self.scheduler.next_frame(&mut self.claims)
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Open claims.
    pub fn claim_ids(&self) -> Vec<u16> {
        self.claims.keys().copied().collect()
    }

    /// Requests pending on a claim.
    pub fn pending_count(&self, claim: u16) -> usize {
        self.claims.get(&claim).map_or(0, |c| c.pending.len())
    }
}
