//! Inbound half of the client session: decoding, credit accounting, one handler per op.

use bytes::Bytes;
use std::collections::HashMap;
use std::time::Instant;

use super::{ClientClaim, ClientEvent, ClientSession, CtrlKind, Link};
use crate::error::UsbError;
use crate::limits::PROTOCOL_VERSION;
use crate::proto::control::{self, Closed, DeviceEvent, ErrorBody, Hello, ListReply, Opened};
use crate::proto::data::{StreamData, decode_status};
use crate::proto::flow::{RecvWindow, SendQueue};
use crate::proto::frame::{Frame, Message, Op};
use crate::proto::{ClosedReason, TransferReply};

impl ClientSession {
    /// Feeds one transport message.
    pub fn handle_message(&mut self, _now: Instant, msg: Bytes) {
        let Ok(frame) = Frame::decode(msg) else {
            let error = UsbError::Protocol("undecodable frame from host".into());
            return self
                .events
                .push_back(ClientEvent::PeerError { claim: 0, error });
        };
        if frame.op.uses_credit() {
            let Some(c) = self.claims.get_mut(&frame.claim) else {
                return;
            };
            if c.recv.consume(frame.chunk.len()).is_err() {
                return self.events.push_back(ClientEvent::PeerError {
                    claim: frame.claim,
                    error: UsbError::CreditExhausted,
                });
            }
        }
        match self.reassembler.push(frame) {
            Ok(Some(m)) => self.dispatch(m),
            Ok(None) => {}
            Err(e) => self.events.push_back(ClientEvent::PeerError {
                claim: 0,
                error: UsbError::Protocol(e.to_string()),
            }),
        }
    }

    fn dispatch(&mut self, m: Message) {
        if m.op.uses_credit() {
            self.release(m.claim, m.body.len());
        }
        match m.op {
            Op::Hello => self.on_hello(&m),
            Op::List => self.on_list(m),
            Op::Opened => self.on_opened(m),
            Op::Control | Op::Bulk | Op::Interrupt => {
                let result =
                    TransferReply::decode(m.body).map_err(|e| UsbError::Protocol(e.to_string()));
                self.finish(m.claim, m.request_id, result);
            }
            Op::SetConfiguration
            | Op::SetInterface
            | Op::ClearHalt
            | Op::Reset
            | Op::StreamStart
            | Op::StreamStop => {
                let result = decode_status(&m.body)
                    .map(TransferReply::status)
                    .map_err(|e| UsbError::Protocol(e.to_string()));
                self.finish(m.claim, m.request_id, result);
            }
            Op::StreamData => match StreamData::decode(m.body) {
                Ok(data) => self.events.push_back(ClientEvent::Stream {
                    claim: m.claim,
                    data,
                }),
                Err(e) => self.events.push_back(ClientEvent::PeerError {
                    claim: m.claim,
                    error: UsbError::Protocol(e.to_string()),
                }),
            },
            Op::Credit => {
                if let (Ok(n), Some(c)) = (
                    crate::proto::data::decode_credit(&m.body),
                    self.claims.get_mut(&m.claim),
                ) {
                    c.out.grant(n);
                }
            }
            Op::Closed => self.on_closed(&m),
            Op::Error => self.on_error(&m),
            Op::DeviceEvent => {
                if let Ok(ev) = control::parse::<DeviceEvent>(&m.body) {
                    self.events.push_back(ClientEvent::Device(ev));
                }
            }
            Op::Open | Op::Resume | Op::Cancel | Op::Close => {}
        }
    }

    fn release(&mut self, claim: u16, len: usize) {
        let credit = self.claims.get_mut(&claim);
        if let Some(m) = credit.and_then(|c| c.recv.release_credit(claim, len)) {
            self.control_out.push(m);
        }
    }

    fn on_hello(&mut self, m: &Message) {
        match control::parse::<Hello>(&m.body) {
            Ok(h) if h.versions.contains(&PROTOCOL_VERSION) => {
                let payload = h.frame_payload();
                self.link = Link::Up(h.window, payload);
                self.control_out.set_frame_payload(payload);
                for c in self.claims.values_mut() {
                    c.out.reset(u64::from(h.window));
                    c.out.set_frame_payload(payload);
                }
            }
            _ => {
                let error = UsbError::Protocol("host speaks no common protocol version".into());
                self.events
                    .push_back(ClientEvent::PeerError { claim: 0, error });
            }
        }
    }

    fn on_list(&mut self, m: Message) {
        if self.ctrl.remove(&m.request_id).is_none() {
            return;
        }
        let result = control::parse::<ListReply>(&m.body)
            .map(|l| l.devices)
            .map_err(UsbError::Protocol);
        self.events.push_back(ClientEvent::Listed {
            request_id: m.request_id,
            result,
        });
    }

    fn on_opened(&mut self, m: Message) {
        let opened = match control::parse::<Opened>(&m.body) {
            Ok(o) => o,
            Err(e) => {
                return self.events.push_back(ClientEvent::PeerError {
                    claim: m.claim,
                    error: UsbError::Protocol(e),
                });
            }
        };
        if opened.resumed {
            return self.on_resumed(opened);
        }
        if self.ctrl.remove(&m.request_id).is_none() {
            return;
        }
        let (peer_window, payload) = match self.link {
            Link::Up(w, payload) => (u64::from(w), payload),
            _ => (0, crate::limits::MAX_FRAME_PAYLOAD),
        };
        let mut out = SendQueue::new(peer_window);
        out.set_frame_payload(payload);
        let claim = ClientClaim {
            token: opened.resume_token.clone(),
            out,
            recv: RecvWindow::new(self.window),
            pending: HashMap::new(),
            listed: Vec::new(),
            bound: true,
        };
        self.claims.insert(opened.claim_id, claim);
        self.events.push_back(ClientEvent::Opened {
            request_id: m.request_id,
            result: Ok(opened),
        });
    }

    fn on_resumed(&mut self, opened: Opened) {
        let claim_id = opened.claim_id;
        let Some(c) = self.claims.get_mut(&claim_id) else {
            return;
        };
        c.token = opened.resume_token;
        c.bound = true;
        let mut resend: Vec<u32> = c
            .pending
            .keys()
            .copied()
            .filter(|r| opened.unknown.contains(r) || !c.listed.contains(r))
            .collect();
        resend.sort_unstable();
        for rid in resend {
            c.out.push(c.pending[&rid].msg.clone());
        }
        for rid in opened.lost {
            self.finish(
                claim_id,
                rid,
                Err(UsbError::Protocol(
                    "completion lost during the transport drop (the request ran once)".into(),
                )),
            );
        }
        self.events.push_back(ClientEvent::Resumed {
            claim: claim_id,
            result: Ok(()),
        });
    }

    fn on_closed(&mut self, m: &Message) {
        let reason =
            control::parse::<Closed>(&m.body).map_or(ClosedReason::ProtocolError, |c| c.reason);
        self.drop_claim(m.claim, reason);
    }

    /// The host is gone for good (the session ended, the viewer was revoked, the host's agent
    /// went away): control requests fail and every claim closes (`shutdown`), its pending
    /// requests failing with it. Nothing is sent.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.handle_transport_lost(now);
        for claim in self.claim_ids() {
            self.drop_claim(claim, ClosedReason::Shutdown);
        }
    }

    fn drop_claim(&mut self, claim_id: u16, reason: ClosedReason) {
        let Some(c) = self.claims.remove(&claim_id) else {
            return;
        };
        let mut rids: Vec<u32> = c.pending.keys().copied().collect();
        rids.sort_unstable();
        for rid in rids {
            let deadline = c.pending[&rid].deadline;
            self.deadlines.remove(&(deadline, rid, claim_id));
            self.events.push_back(ClientEvent::Done {
                claim: claim_id,
                request_id: rid,
                result: Err(UsbError::closed(reason)),
            });
        }
        self.reassembler.discard_claim(claim_id);
        self.events.push_back(ClientEvent::Closed {
            claim: claim_id,
            reason,
        });
    }

    fn on_error(&mut self, m: &Message) {
        let body = control::parse::<ErrorBody>(&m.body);
        let rejected = body
            .as_ref()
            .is_ok_and(|b| b.code == crate::proto::ErrorCode::ResumeRejected);
        let error = match body {
            Ok(b) => UsbError::from_code(b.code, b.message),
            Err(e) => UsbError::Protocol(e),
        };
        if let Some((kind, deadline)) = self
            .ctrl
            .remove(&m.request_id)
            .filter(|_| m.request_id != 0)
        {
            self.deadlines.remove(&(deadline, m.request_id, 0));
            let request_id = m.request_id;
            return self.events.push_back(match kind {
                CtrlKind::List => ClientEvent::Listed {
                    request_id,
                    result: Err(error),
                },
                CtrlKind::Open => ClientEvent::Opened {
                    request_id,
                    result: Err(error),
                },
            });
        }
        let resuming = self.claims.get(&m.claim).is_some_and(|c| !c.bound);
        if resuming && rejected {
            self.events.push_back(ClientEvent::Resumed {
                claim: m.claim,
                result: Err(error),
            });
            return self.drop_claim(m.claim, ClosedReason::RetentionExpired);
        }
        if self
            .claims
            .get(&m.claim)
            .is_some_and(|c| c.pending.contains_key(&m.request_id))
        {
            return self.finish(m.claim, m.request_id, Err(error));
        }
        self.events.push_back(ClientEvent::PeerError {
            claim: m.claim,
            error,
        });
    }

    fn finish(&mut self, claim: u16, rid: u32, result: Result<TransferReply, UsbError>) {
        let Some(p) = self
            .claims
            .get_mut(&claim)
            .and_then(|c| c.pending.remove(&rid))
        else {
            return;
        };
        self.deadlines.remove(&(p.deadline, rid, claim));
        self.events.push_back(ClientEvent::Done {
            claim,
            request_id: rid,
            result,
        });
    }
}
