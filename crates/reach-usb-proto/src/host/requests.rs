//! Host handlers, one per request op, and backend completions.

use std::time::Instant;

use bytes::Bytes;

use super::claim::{Claim, InFlight, Stream};
use super::{HostAction, HostEvent, HostSession, Origin, TransferId, status_reply};
use crate::limits::{
    MAX_CLAIMS, MAX_IN_FLIGHT, MAX_STREAM_BACKLOG, MAX_STREAM_DEPTH, MAX_STREAMS, MAX_TRANSFER,
};
use crate::proto::control::{self, Open, Opened, Resume};
use crate::proto::data::{StreamData, StreamStart, decode_status};
use crate::proto::frame::{Message, Op};
use crate::proto::{
    ClosedReason, ConfigOp, DeviceInfo, ErrorCode, TransferReply, TransferRequest, TransferStatus,
};

/// Why an OPEN was refused by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenRefusal {
    /// The ACL (or the operator at the prompt) denied it.
    Denied,
    /// No permitted device matches the filter.
    NoDevice,
    /// The device is held elsewhere.
    Busy,
    /// The OS failed to open it.
    Io(String),
}

impl HostSession {
    pub(super) fn on_open(&mut self, m: Message) {
        let open: Open = match control::parse(&m.body) {
            Ok(o) => o,
            Err(e) => return self.send_error(0, m.request_id, ErrorCode::Malformed, e),
        };
        if self.claims.len() >= MAX_CLAIMS {
            return self.send_error(
                0,
                m.request_id,
                ErrorCode::Busy,
                format!("at most {MAX_CLAIMS} claims per session; close one first"),
            );
        }
        self.actions.push_back(HostAction::Open {
            request_id: m.request_id,
            filter: open.filter,
        });
    }

    /// Answers an OPEN: allocates a claim id and sends OPENED, or sends ERROR.
    pub fn handle_open_result(
        &mut self,
        now: Instant,
        request_id: u32,
        result: Result<DeviceInfo, OpenRefusal>,
    ) {
        let _ = now;
        let device = match result {
            Ok(d) => d,
            Err(refusal) => {
                let (code, text) = match refusal {
                    OpenRefusal::Denied => (ErrorCode::Denied, "denied by ACL policy".to_owned()),
                    OpenRefusal::NoDevice => (ErrorCode::NoDevice, "no device matches".to_owned()),
                    OpenRefusal::Busy => (
                        ErrorCode::Busy,
                        "device is busy (claimed elsewhere)".to_owned(),
                    ),
                    OpenRefusal::Io(e) => (ErrorCode::Io, e),
                };
                return self.send_error(0, request_id, code, text);
            }
        };
        let claim_id = self.alloc_claim_id();
        let (credit, payload) = self.peer_limits();
        let mut claim = Claim::new(device.clone(), credit, self.config.window);
        claim.out.set_frame_payload(payload);
        let opened = Opened {
            claim_id,
            device: device.clone(),
            resume_token: claim.token.to_hex(),
            retention_ms: self.config.retention.as_millis() as u64,
            resumed: false,
            unknown: vec![],
            lost: vec![],
        };
        self.claims.insert(claim_id, claim);
        self.control_out.push(Message::new(
            Op::Opened,
            claim_id,
            request_id,
            control::to_body(&opened),
        ));
        self.events.push_back(HostEvent::Opened {
            claim: claim_id,
            device,
        });
    }

    fn alloc_claim_id(&mut self) -> u16 {
        loop {
            let id = self.next_claim;
            self.next_claim = self.next_claim.checked_add(1).unwrap_or(1);
            if id != 0 && !self.claims.contains_key(&id) {
                return id;
            }
        }
    }

    fn bound_claim(&mut self, m: &Message) -> bool {
        match self.claims.get(&m.claim) {
            Some(c) if c.detached_since.is_none() => true,
            Some(_) => {
                self.send_error(
                    m.claim,
                    m.request_id,
                    ErrorCode::BadState,
                    "claim is detached; RESUME it first".into(),
                );
                false
            }
            None => {
                self.send_error(
                    m.claim,
                    m.request_id,
                    ErrorCode::UnknownClaim,
                    "no such claim in this session".into(),
                );
                false
            }
        }
    }

    pub(super) fn on_transfer(&mut self, m: Message) {
        let credit_bytes = m.body.len();
        let parsed = match m.op {
            Op::Control => TransferRequest::decode_control(m.body),
            Op::Bulk => TransferRequest::decode_endpoint(m.body, false),
            _ => TransferRequest::decode_endpoint(m.body, true),
        };
        let request = match parsed {
            Ok(r) => r,
            Err(e) => {
                self.release_credit(m.claim, credit_bytes);
                return self.send_error(m.claim, m.request_id, ErrorCode::Malformed, e.to_string());
            }
        };
        let endpoint = match request.kind {
            crate::proto::TransferKind::Control(_) => 0,
            crate::proto::TransferKind::Bulk(ep) | crate::proto::TransferKind::Interrupt(ep) => ep,
        };
        self.start_request(
            m.claim,
            m.request_id,
            m.op,
            endpoint,
            credit_bytes,
            |id, claim| HostAction::Submit { id, claim, request },
        );
    }

    /// Registers an in-flight request and queues its backend action.
    fn start_request(
        &mut self,
        claim_id: u16,
        rid: u32,
        op: Op,
        endpoint: u8,
        credit_bytes: usize,
        action: impl FnOnce(TransferId, u16) -> HostAction,
    ) {
        let Some(claim) = self.claims.get(&claim_id) else {
            return;
        };
        if claim.in_flight.len() >= MAX_IN_FLIGHT {
            self.release_credit(claim_id, credit_bytes);
            return self.send_error(
                claim_id,
                rid,
                ErrorCode::TooManyInFlight,
                format!("at most {MAX_IN_FLIGHT} requests in flight per claim"),
            );
        }
        let id = self.alloc_transfer(claim_id, Origin::Request { rid, op });
        if let Some(claim) = self.claims.get_mut(&claim_id) {
            claim.in_flight.insert(
                rid,
                InFlight {
                    id,
                    op,
                    endpoint,
                    credit_bytes,
                },
            );
        }
        self.actions.push_back(action(id, claim_id));
    }

    pub(super) fn on_cancel(&mut self, m: &Message) {
        if !self.bound_claim(m) {
            return;
        }
        if let Some(f) = self
            .claims
            .get(&m.claim)
            .and_then(|c| c.in_flight.get(&m.request_id))
        {
            self.actions.push_back(HostAction::Cancel { id: f.id });
        }
    }

    pub(super) fn on_configure(&mut self, m: Message) {
        if !self.bound_claim(&m) || !self.claim_start(&m) {
            return;
        }
        let op = match (m.op, &m.body[..]) {
            (Op::SetConfiguration, [c]) => ConfigOp::SetConfiguration(*c),
            (Op::SetInterface, [i, a]) => ConfigOp::SetInterface(*i, *a),
            (Op::ClearHalt, [ep]) => ConfigOp::ClearHalt(*ep),
            (Op::Reset, []) => ConfigOp::Reset,
            _ => {
                return self.send_error(
                    m.claim,
                    m.request_id,
                    ErrorCode::Malformed,
                    format!("bad {:?} body", m.op),
                );
            }
        };
        self.cancel_affected(m.claim, op);
        self.start_request(m.claim, m.request_id, m.op, 0, 0, |id, claim| {
            HostAction::Configure { id, claim, op }
        });
    }

    /// Non-credit requests go through the at-most-once log here (credit ops did at frame level).
    fn claim_start(&mut self, m: &Message) -> bool {
        let Some(claim) = self.claims.get_mut(&m.claim) else {
            return false;
        };
        if claim.log.try_start(m.request_id) {
            return true;
        }
        let rid = m.request_id;
        self.send_error(
            m.claim,
            rid,
            ErrorCode::ReplayedRequest,
            format!("request id {rid} was already used on this claim"),
        );
        false
    }

    /// SET_CONFIGURATION and RESET cancel everything pending; SET_INTERFACE the interface's
    /// endpoints; CLEAR_HALT the endpoint's. Streams on cancelled endpoints stop.
    fn cancel_affected(&mut self, claim_id: u16, op: ConfigOp) {
        let Some(claim) = self.claims.get_mut(&claim_id) else {
            return;
        };
        let endpoints: Option<Vec<u8>> = match op {
            ConfigOp::SetConfiguration(_) | ConfigOp::Reset => None,
            ConfigOp::SetInterface(i, _) => Some(claim.interface_endpoints(i)),
            ConfigOp::ClearHalt(ep) => Some(vec![ep]),
        };
        let hit = |ep: u8| ep != 0 && endpoints.as_ref().is_none_or(|e| e.contains(&ep));
        for stream in claim.streams.iter_mut().filter(|(ep, _)| hit(**ep)) {
            stream.1.active = false;
        }
        let mut ids: Vec<TransferId> = claim
            .in_flight
            .values()
            .filter(|f| hit(f.endpoint))
            .map(|f| f.id)
            .collect();
        ids.extend(
            self.transfers
                .iter()
                .filter(|(_, (c, o))| {
                    *c == claim_id && matches!(o, Origin::Stream { endpoint } if hit(*endpoint))
                })
                .map(|(id, _)| *id),
        );
        ids.into_iter()
            .for_each(|id| self.actions.push_back(HostAction::Cancel { id }));
    }

    pub(super) fn on_stream_start(&mut self, m: Message) {
        if !self.bound_claim(&m) || !self.claim_start(&m) {
            return;
        }
        let start = match StreamStart::decode(&m.body) {
            Ok(s) => s,
            Err(e) => {
                return self.send_error(m.claim, m.request_id, ErrorCode::Malformed, e.to_string());
            }
        };
        let Some(claim) = self.claims.get_mut(&m.claim) else {
            return;
        };
        let kind = claim.endpoint_kind(start.endpoint).map(str::to_owned);
        let valid = start.endpoint & 0x80 != 0
            && matches!(kind.as_deref(), Some("bulk" | "interrupt"))
            && (1..=MAX_STREAM_DEPTH).contains(&start.depth)
            && (1..=MAX_TRANSFER).contains(&start.transfer_size)
            && claim.streams.len() < MAX_STREAMS
            && !claim.streams.contains_key(&start.endpoint);
        let status = if valid {
            TransferStatus::Ok
        } else {
            TransferStatus::Invalid
        };
        claim.out.push(Message::new(
            Op::StreamStart,
            m.claim,
            m.request_id,
            Bytes::copy_from_slice(&[status as u8]),
        ));
        if !valid {
            return;
        }
        let interrupt = kind.as_deref() == Some("interrupt");
        claim.streams.insert(
            start.endpoint,
            Stream {
                request_id: m.request_id,
                transfer_size: start.transfer_size,
                seq: 0,
                dropped: 0,
                active: true,
                interrupt,
            },
        );
        for _ in 0..start.depth {
            self.submit_stream(m.claim, start.endpoint);
        }
    }

    fn submit_stream(&mut self, claim_id: u16, endpoint: u8) {
        let Some(stream) = self
            .claims
            .get(&claim_id)
            .and_then(|c| c.streams.get(&endpoint))
        else {
            return;
        };
        let kind = if stream.interrupt {
            crate::proto::TransferKind::Interrupt(endpoint)
        } else {
            crate::proto::TransferKind::Bulk(endpoint)
        };
        let request = TransferRequest {
            kind,
            flags: Default::default(),
            timeout_ms: 0,
            length: stream.transfer_size,
            data: Bytes::new(),
        };
        let id = self.alloc_transfer(claim_id, Origin::Stream { endpoint });
        self.actions.push_back(HostAction::Submit {
            id,
            claim: claim_id,
            request,
        });
    }

    pub(super) fn on_stream_stop(&mut self, m: Message) {
        if !self.bound_claim(&m) || !self.claim_start(&m) {
            return;
        }
        let [endpoint] = m.body[..] else {
            return self.send_error(
                m.claim,
                m.request_id,
                ErrorCode::Malformed,
                "STREAM_STOP body is `endpoint u8`".into(),
            );
        };
        let Some(claim) = self.claims.get_mut(&m.claim) else {
            return;
        };
        let status = match claim.streams.get_mut(&endpoint) {
            Some(s) => {
                s.active = false;
                TransferStatus::Ok
            }
            None => TransferStatus::Invalid,
        };
        claim.out.push(Message::new(
            Op::StreamStop,
            m.claim,
            m.request_id,
            Bytes::copy_from_slice(&[status as u8]),
        ));
        let ids: Vec<TransferId> = self
            .transfers
            .iter()
            .filter(|(_, (c, o))| {
                *c == m.claim && matches!(o, Origin::Stream { endpoint: e } if *e == endpoint)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .for_each(|id| self.actions.push_back(HostAction::Cancel { id }));
    }

    pub(super) fn on_close(&mut self, m: &Message) {
        if self.bound_claim(m) {
            self.close_claim(m.claim, ClosedReason::Requested);
        }
    }

    pub(super) fn on_resume(&mut self, now: Instant, m: Message) {
        let _ = now;
        let resume: Resume = match control::parse(&m.body) {
            Ok(r) => r,
            Err(e) => return self.send_error(m.claim, m.request_id, ErrorCode::Malformed, e),
        };
        let (credit, payload) = self.peer_limits();
        let ok = self
            .claims
            .get(&m.claim)
            .is_some_and(|c| c.detached_since.is_some() && c.token.matches(&resume.token));
        let Some(claim) = self.claims.get_mut(&m.claim).filter(|_| ok) else {
            return self.send_error(
                m.claim,
                m.request_id,
                ErrorCode::ResumeRejected,
                "resume token not valid for this claim (expired, used, or another session)".into(),
            );
        };
        claim.detached_since = None;
        claim.token = super::claim::ResumeToken::random();
        claim.out.reset(credit);
        claim.out.set_frame_payload(payload);
        let (mut unknown, mut lost, mut replay) = (vec![], vec![], vec![]);
        for rid in resume
            .pending
            .iter()
            .copied()
            .take(crate::limits::MAX_RETAINED)
        {
            if let Some(msg) = claim.retained.find(rid) {
                replay.push(msg.clone());
            } else if claim.in_flight.contains_key(&rid) {
                // Still running: its completion will be sent when it finishes.
            } else if claim.log.was_received(rid) {
                lost.push(rid);
            } else {
                unknown.push(rid);
            }
        }
        let opened = Opened {
            claim_id: m.claim,
            device: claim.device.clone(),
            resume_token: claim.token.to_hex(),
            retention_ms: self.config.retention.as_millis() as u64,
            resumed: true,
            unknown,
            lost,
        };
        self.control_out.push(Message::new(
            Op::Opened,
            m.claim,
            m.request_id,
            control::to_body(&opened),
        ));
        replay.into_iter().for_each(|msg| claim.out.push(msg));
        self.events.push_back(HostEvent::Resumed { claim: m.claim });
    }

    /// A transfer finished (or was cancelled) on the device.
    pub fn handle_transfer_complete(&mut self, id: TransferId, reply: TransferReply) {
        let Some((claim_id, origin)) = self.transfers.remove(&id) else {
            return;
        };
        match origin {
            Origin::Request { rid, op } => {
                let (msg, frame) = Message::framed(op, claim_id, rid, reply.encoded_len(), |out| {
                    reply.encode_into(out)
                });
                self.complete_request(claim_id, rid, msg, Some(frame));
            }
            Origin::Stream { endpoint } => self.complete_stream(claim_id, endpoint, reply),
        }
    }

    /// A configuration op finished.
    pub fn handle_configure_complete(&mut self, id: TransferId, status: TransferStatus) {
        let Some((claim_id, Origin::Request { rid, op })) = self.transfers.remove(&id) else {
            return;
        };
        debug_assert!(decode_status(&status_reply(op, status)).is_ok());
        self.complete_request(
            claim_id,
            rid,
            Message::new(op, claim_id, rid, status_reply(op, status)),
            None,
        );
    }

    /// Retains and sends a reply (`frame`: the reply built by [`Message::framed`]).
    fn complete_request(&mut self, claim_id: u16, rid: u32, reply: Message, frame: Option<Bytes>) {
        let Some(claim) = self.claims.get_mut(&claim_id) else {
            return;
        };
        let Some(flight) = claim.in_flight.remove(&rid) else {
            return;
        };
        claim.retained.push(reply.clone());
        if claim.detached_since.is_none() {
            match frame {
                Some(frame) => claim.out.push_framed(reply, frame),
                None => claim.out.push(reply),
            }
        }
        self.release_credit(claim_id, flight.credit_bytes);
    }

    fn complete_stream(&mut self, claim_id: u16, endpoint: u8, reply: TransferReply) {
        let Some(claim) = self.claims.get_mut(&claim_id) else {
            return;
        };
        let backlog = claim.out.count(|m| m.op == Op::StreamData);
        let detached = claim.detached_since.is_some();
        let Some(stream) = claim.streams.get_mut(&endpoint) else {
            return;
        };
        let cancelled = reply.status == TransferStatus::Cancelled && !stream.active;
        let healthy = matches!(reply.status, TransferStatus::Ok | TransferStatus::Timeout);
        if !cancelled {
            if detached || backlog >= MAX_STREAM_BACKLOG {
                stream.dropped = stream.dropped.saturating_add(1);
            } else {
                let data = StreamData {
                    status: reply.status,
                    endpoint,
                    seq: stream.seq,
                    dropped: stream.dropped,
                    data: reply.data,
                };
                stream.seq = stream.seq.wrapping_add(1);
                claim.out.push(Message::new(
                    Op::StreamData,
                    claim_id,
                    stream.request_id,
                    data.encode(),
                ));
            }
        }
        if stream.active && healthy {
            self.submit_stream(claim_id, endpoint);
        } else if !self.transfers.values().any(|(c, o)| {
            *c == claim_id && matches!(o, Origin::Stream { endpoint: e } if *e == endpoint)
        }) {
            claim.streams.remove(&endpoint);
        }
    }
}
