//! Claim and transport lifecycle of the host session: close, unplug, transport loss and
//! restore, retention expiry.

use std::time::Instant;

use super::{HostAction, HostEvent, HostSession, Link, TransferId, status_reply};
use crate::proto::control::{self, Closed};
use crate::proto::frame::{Message, Op};
use crate::proto::{ClosedReason, DeviceInfo, TransferStatus};

impl HostSession {
    /// Closes a claim: in-flight requests answered `cancelled`, CLOSED sent, device released.
    pub(super) fn close_claim(&mut self, claim_id: u16, reason: ClosedReason) {
        self.close_claim_with(claim_id, reason, TransferStatus::Cancelled);
    }

    fn close_claim_with(&mut self, claim_id: u16, reason: ClosedReason, status: TransferStatus) {
        let Some(claim) = self.claims.remove(&claim_id) else {
            return;
        };
        let ids: Vec<TransferId> = self
            .transfers
            .iter()
            .filter(|(_, (c, _))| *c == claim_id)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.transfers.remove(&id);
            self.actions.push_back(HostAction::Cancel { id });
        }
        self.reassembler.discard_claim(claim_id);
        if claim.detached_since.is_none() {
            let mut claim = claim;
            claim.out.move_into(&mut self.control_out);
            let mut rids: Vec<(u32, Op)> = claim
                .in_flight
                .iter()
                .map(|(rid, f)| (*rid, f.op))
                .collect();
            rids.sort_unstable_by_key(|(rid, _)| *rid);
            for (rid, op) in rids {
                self.control_out
                    .push(Message::new(op, claim_id, rid, status_reply(op, status)));
            }
            let device = claim.device;
            let closed = control::to_body(&Closed { reason });
            self.control_out
                .push(Message::new(Op::Closed, claim_id, 0, closed));
            return self.finish_close(claim_id, device, reason);
        }
        self.finish_close(claim_id, claim.device, reason);
    }

    fn finish_close(&mut self, claim_id: u16, device: DeviceInfo, reason: ClosedReason) {
        self.actions
            .push_back(HostAction::Release { claim: claim_id });
        self.events.push_back(HostEvent::Closed {
            claim: claim_id,
            device,
            reason,
        });
    }

    /// The device of a claim was unplugged: pending transfers `no_device`, CLOSED `unplugged`.
    pub fn handle_unplugged(&mut self, claim: u16) {
        self.close_claim_with(claim, ClosedReason::Unplugged, TransferStatus::NoDevice);
    }

    /// Reports a hotplug event for a device the ACL would not deny.
    pub fn handle_device_event(&mut self, added: bool, device: DeviceInfo) {
        if matches!(self.link, Link::Up { .. }) {
            let event = control::DeviceEvent {
                event: if added { "added" } else { "removed" }.into(),
                device,
            };
            self.control_out.push(Message::new(
                Op::DeviceEvent,
                0,
                0,
                control::to_body(&event),
            ));
        }
    }

    /// The transport dropped: claims are kept for the retention window.
    pub fn handle_transport_lost(&mut self, now: Instant) {
        self.link = Link::Down;
        for (claim, rid) in self.reassembler.clear() {
            if let Some(c) = self.claims.get_mut(&claim) {
                c.log.mark_discarded(rid);
            }
        }
        self.control_out.reset(u64::MAX);
        for claim in self.claims.values_mut() {
            claim.detached_since.get_or_insert(now);
            claim.out.reset(0);
            claim.recv.reset();
            claim
                .in_flight
                .values_mut()
                .for_each(|f| f.credit_bytes = 0);
        }
    }

    /// A new transport is up: HELLO is sent; claims wait for RESUME.
    pub fn handle_transport_restored(&mut self, _now: Instant) {
        self.link = Link::AwaitHello;
        self.send_hello();
    }

    /// Closes every claim at once (`shutdown`): no transport can come back to resume them, or
    /// the host switch went off. A bound claim's viewer gets its in-flight replies (`cancelled`)
    /// and CLOSED `shutdown`; detached claims close silently.
    pub fn handle_shutdown(&mut self) {
        let ids: Vec<u16> = self.claims.keys().copied().collect();
        for id in ids {
            self.close_claim(id, ClosedReason::Shutdown);
        }
    }

    /// Closes claims whose retention window passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<u16> = self
            .claims
            .iter()
            .filter(|(_, c)| {
                c.detached_since
                    .is_some_and(|t| now >= t + self.config.retention)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.close_claim(id, ClosedReason::RetentionExpired);
        }
    }
}
