//! Interrupt IN endpoints served from Reach receive streams (sans-IO).
//!
//! A HID driver keeps one interrupt IN URB queued and resubmits it after every report. Sent as
//! plain transfers, each report would pay a full round trip to the host before the next URB is
//! even asked for. Instead the first interrupt IN URB on an endpoint starts a receive stream: the
//! host keeps [`STREAM_DEPTH`] transfers queued on the device and sends every report as it
//! arrives. Reports wait here (at most [`MAX_REPORTS`], oldest dropped first) until the kernel
//! has an URB for them; URBs wait here until a report comes.
//!
//! Rules:
//! - An unlinked waiting URB is answered at once (the stream keeps running for the next one).
//! - A stream report with an error status (stall, I/O error, device gone) completes the first
//!   waiting URB with that status and ends the stream; URBs behind it go to the device as plain
//!   transfers, and the next new URB starts a new stream (after the kernel's CLEAR_HALT).
//! - A host that refuses the stream (old host, unknown endpoint) gets plain transfers on that
//!   endpoint from then on.
//! - SET_CONFIGURATION, SET_INTERFACE and port reset stop the streams of the endpoints they
//!   reset (the host cancels their transfers); CLEAR_HALT stops the endpoint's stream.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use reach_usb::proto::{ConfigOp, TransferStatus};

use crate::request::{EndpointTable, Submit, SubmitKind};
use crate::translator::Completion;
use crate::wire::Direction;

/// Transfers the host keeps queued on the device per stream.
pub const STREAM_DEPTH: u8 = 4;
/// Reports kept while the kernel has no URB waiting; older ones are dropped first.
pub const MAX_REPORTS: usize = 64;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a receive stream; answer with [`InterruptStreams::started`]. `generation` tells
    /// this stream's later reports apart from an older stream's on the same endpoint.
    Start {
        /// IN endpoint address.
        endpoint: u8,
        /// Bytes per transfer (the first URB's buffer length).
        transfer_size: u32,
        /// Identifies this stream.
        generation: u64,
    },
    /// Stop the stream on this endpoint (the host may already have ended it).
    Stop {
        /// IN endpoint address.
        endpoint: u8,
    },
    /// Answer this URB.
    Complete(u32, Completion),
    /// Run this URB as a plain transfer.
    Submit(Submit),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Running,
}

#[derive(Debug)]
struct Endpoint {
    phase: Phase,
    generation: u64,
    waiting: VecDeque<Submit>,
    reports: VecDeque<Bytes>,
}

/// Interrupt IN URBs and stream reports, matched per endpoint.
#[derive(Debug, Default)]
pub struct InterruptStreams {
    endpoints: HashMap<u8, Endpoint>,
    /// Endpoints whose host refused a stream: plain transfers there.
    refused: Vec<u8>,
    next_generation: u64,
    actions: VecDeque<Action>,
    dropped_reports: u64,
}

impl InterruptStreams {
    /// Takes an URB. Interrupt IN URBs are kept (and served from a stream); any other URB is
    /// handed back for a plain transfer.
    pub fn submit(&mut self, s: Submit) -> Option<Submit> {
        let interrupt_in = s.kind == SubmitKind::Interrupt && s.direction == Direction::In;
        if !interrupt_in || self.refused.contains(&s.endpoint) {
            return Some(s);
        }
        let endpoint = s.endpoint;
        if !self.endpoints.contains_key(&endpoint) {
            self.next_generation += 1;
            self.actions.push_back(Action::Start {
                endpoint,
                transfer_size: s.in_length.max(1),
                generation: self.next_generation,
            });
            let state = Endpoint {
                phase: Phase::Starting,
                generation: self.next_generation,
                waiting: VecDeque::new(),
                reports: VecDeque::new(),
            };
            self.endpoints.insert(endpoint, state);
        }
        if let Some(state) = self.endpoints.get_mut(&endpoint) {
            state.waiting.push_back(s);
        }
        self.serve(endpoint);
        None
    }

    /// The host answered a stream start: running, or refused (plain transfers from now on).
    pub fn started(&mut self, endpoint: u8, generation: u64, accepted: bool) {
        let Some(state) = self.current(endpoint, generation) else {
            return;
        };
        if accepted {
            state.phase = Phase::Running;
            self.serve(endpoint);
            return;
        }
        if let Some(state) = self.endpoints.remove(&endpoint) {
            self.refused.push(endpoint);
            let plain = state.waiting.into_iter().map(Action::Submit);
            self.actions.extend(plain);
        }
    }

    /// One report (or the stream's end status) from the host.
    pub fn report(&mut self, endpoint: u8, generation: u64, status: TransferStatus, data: Bytes) {
        let Some(state) = self.current(endpoint, generation) else {
            return;
        };
        match status {
            TransferStatus::Ok => {
                let full = state.reports.len() == MAX_REPORTS;
                if full {
                    state.reports.pop_front();
                }
                state.reports.push_back(data);
                self.dropped_reports += u64::from(full);
                self.serve(endpoint);
            }
            // The host resubmits after a timeout and sends nothing for its own cancels.
            TransferStatus::Timeout | TransferStatus::Cancelled => {}
            failed => self.fail(endpoint, failed),
        }
    }

    /// The stream's report channel closed (the claim ended or the stream was stopped).
    pub fn ended(&mut self, endpoint: u8, generation: u64) {
        if self.current(endpoint, generation).is_some() {
            self.fail(endpoint, TransferStatus::NoDevice);
        }
    }

    /// An unlink: a waiting URB is answered `cancelled` at once (returns true); otherwise the
    /// URB is not one of ours (returns false).
    pub fn cancel(&mut self, seqnum: u32) -> bool {
        for state in self.endpoints.values_mut() {
            if let Some(at) = state.waiting.iter().position(|s| s.seqnum == seqnum) {
                state.waiting.remove(at);
                let done = Completion::status(TransferStatus::Cancelled);
                self.actions.push_back(Action::Complete(seqnum, done));
                return true;
            }
        }
        false
    }

    /// A configuration operation the kernel issued: streams on the endpoints it resets stop.
    pub fn configured(&mut self, op: ConfigOp, table: &EndpointTable) {
        let hit: Vec<u8> = self
            .endpoints
            .keys()
            .copied()
            .filter(|ep| match op {
                ConfigOp::SetConfiguration(_) | ConfigOp::Reset => true,
                ConfigOp::SetInterface(i, _) => table.interface_endpoints(i).contains(ep),
                ConfigOp::ClearHalt(e) => e == *ep,
            })
            .collect();
        for endpoint in hit {
            self.fail(endpoint, TransferStatus::Cancelled);
        }
        if matches!(op, ConfigOp::SetConfiguration(_) | ConfigOp::Reset) {
            self.refused.clear();
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Reports dropped because no URB came for them in time.
    pub fn dropped_reports(&self) -> u64 {
        self.dropped_reports
    }

    fn current(&mut self, endpoint: u8, generation: u64) -> Option<&mut Endpoint> {
        self.endpoints
            .get_mut(&endpoint)
            .filter(|s| s.generation == generation)
    }

    /// Pairs waiting URBs with reports, in order.
    fn serve(&mut self, endpoint: u8) {
        let Some(state) = self.endpoints.get_mut(&endpoint) else {
            return;
        };
        if state.phase != Phase::Running {
            return;
        }
        while !state.waiting.is_empty() && !state.reports.is_empty() {
            let (Some(urb), Some(data)) = (state.waiting.pop_front(), state.reports.pop_front())
            else {
                break;
            };
            self.actions
                .push_back(Action::Complete(urb.seqnum, completion(&urb, data)));
        }
    }

    /// Ends the endpoint's stream: the first waiting URB gets `status` (unless the stream was
    /// only reset), the rest go to the device as plain transfers.
    fn fail(&mut self, endpoint: u8, status: TransferStatus) {
        let Some(mut state) = self.endpoints.remove(&endpoint) else {
            return;
        };
        self.actions.push_back(Action::Stop { endpoint });
        if status != TransferStatus::Cancelled
            && let Some(first) = state.waiting.pop_front()
        {
            let done = Completion::status(status);
            self.actions.push_back(Action::Complete(first.seqnum, done));
        }
        let plain = state.waiting.into_iter().map(Action::Submit);
        self.actions.extend(plain);
    }
}

/// A report as the URB's completion; a report longer than the URB's buffer is an overflow, as
/// a real host controller reports it (babble).
fn completion(urb: &Submit, data: Bytes) -> Completion {
    if data.len() > urb.in_length as usize {
        return Completion::status(TransferStatus::Overflow);
    }
    Completion {
        status: TransferStatus::Ok,
        actual_length: data.len() as u32,
        data,
    }
}

#[cfg(test)]
#[path = "interrupt_tests.rs"]
mod tests;
