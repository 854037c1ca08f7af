//! The USB/IP ↔ Reach translator: a sans-IO state machine between vhci's socket and a Reach
//! claim.
//!
//! Input: bytes from the vhci socket ([`Translator::handle_input`]) and Reach completions
//! ([`Translator::handle_completion`]). Output: [`Event`]s for the driver to perform
//! ([`Translator::poll_event`]) and bytes for the socket ([`Translator::poll_transmit`]).
//!
//! Rules (as the kernel's `usbip-host` stub behaves):
//! - SET_CONFIGURATION, SET_INTERFACE and CLEAR_FEATURE(ENDPOINT_HALT) become Reach configuration
//!   operations, not raw control transfers.
//! - CMD_UNLINK of a pending URB → [`Event::Cancel`]; when that URB completes (however) only a
//!   RET_UNLINK(`-ECONNRESET`) is sent — vhci drops the connection on a RET_SUBMIT for an URB it
//!   unlinked. CMD_UNLINK of an URB already answered → RET_UNLINK(0).
//! - Short-not-ok is applied here: an IN shorter than asked completes with `-EREMOTEIO`.
//! - An IN reply is never longer than the URB's buffer (that too would drop the connection).
//! - Replies for one endpoint go out in the order the URBs were submitted, as a real host
//!   controller completes them (drivers such as `cdc_acm` consume IN data in completion order);
//!   a completion that overtook an earlier one on its endpoint is held until that one is done.

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use reach_usb::proto::{ConfigOp, Setup, TransferStatus};

use crate::errno::{linux, urb_status};
use crate::request::{EndpointKind, EndpointTable, Submit};
use crate::wire::{
    CmdSubmit, CmdUnlink, Command, Direction, RetSubmit, RetUnlink, URB_SHORT_NOT_OK, WireError,
    decode_command,
};

/// Most URBs pending at once (the Reach protocol's in-flight cap per claim); more are answered
/// `-ENOMEM` at once.
pub const MAX_PENDING: usize = reach_usb::limits::MAX_IN_FLIGHT;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start a transfer; answer with [`Translator::handle_completion`].
    Submit(Submit),
    /// Run a configuration operation; answer with [`Translator::handle_completion`].
    Configure {
        /// The URB's sequence number.
        seqnum: u32,
        /// The operation.
        op: ConfigOp,
    },
    /// Cancel the transfer or operation started for this sequence number.
    Cancel {
        /// The URB's sequence number.
        seqnum: u32,
    },
}

/// The result of a transfer or configuration operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Reach status.
    pub status: TransferStatus,
    /// Bytes transferred.
    pub actual_length: u32,
    /// IN data.
    pub data: Bytes,
}

impl Completion {
    /// A completion with a status and no data.
    pub fn status(status: TransferStatus) -> Self {
        Self {
            status,
            actual_length: 0,
            data: Bytes::new(),
        }
    }
}

#[derive(Debug)]
struct Pending {
    /// Endpoint address (0 for control and configuration requests).
    endpoint: u8,
    direction: Direction,
    /// IN: the URB's buffer length. OUT: bytes sent.
    length: u32,
    short_not_ok: bool,
    /// The CMD_UNLINK seqnum once the kernel unlinked this URB.
    unlinked_by: Option<u32>,
}

/// The translator for one attached device.
#[derive(Debug)]
pub struct Translator {
    input: BytesMut,
    endpoints: EndpointTable,
    pending: HashMap<u32, Pending>,
    /// Per endpoint, pending seqnums in submission order.
    order: HashMap<u8, VecDeque<u32>>,
    /// Completions waiting for an earlier URB on their endpoint.
    held: HashMap<u32, Completion>,
    events: VecDeque<Event>,
    output: VecDeque<Bytes>,
}

impl Translator {
    /// A translator for a device with these endpoints.
    pub fn new(endpoints: EndpointTable) -> Self {
        Self {
            input: BytesMut::new(),
            endpoints,
            pending: HashMap::new(),
            order: HashMap::new(),
            held: HashMap::new(),
            events: VecDeque::new(),
            output: VecDeque::new(),
        }
    }

    /// Feeds bytes read from the vhci socket.
    ///
    /// # Errors
    /// [`WireError`] when the stream is not valid USB/IP; the connection must be closed.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.input.extend_from_slice(bytes);
        while let Some((command, used)) = decode_command(&self.input)? {
            let _ = self.input.split_to(used);
            match command {
                Command::Submit(s) => self.on_submit(s)?,
                Command::Unlink(u) => self.on_unlink(u),
            }
        }
        Ok(())
    }

    /// Next action for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Next bytes for the vhci socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.output.pop_front()
    }

    /// Sequence numbers of URBs not answered yet.
    pub fn pending(&self) -> Vec<u32> {
        self.pending.keys().copied().collect()
    }

    /// Whether `seqnum` is pending.
    pub fn is_pending(&self, seqnum: u32) -> bool {
        self.pending.contains_key(&seqnum)
    }

    fn on_submit(&mut self, s: CmdSubmit) -> Result<(), WireError> {
        if self.pending.contains_key(&s.seqnum) {
            return Err(WireError::BadField("seqnum (already pending)", s.seqnum));
        }
        if self.pending.len() >= MAX_PENDING {
            self.answer_now(s.seqnum, -linux::ENOMEM);
            return Ok(());
        }
        let event = if s.ep == 0 {
            self.control_event(&s)
        } else {
            self.endpoint_event(&s)
        };
        let Some(event) = event else { return Ok(()) };
        let length = match s.direction {
            Direction::In => s.buffer_length,
            Direction::Out => s.data.len() as u32,
        };
        let endpoint = match &event {
            Event::Submit(sub) => sub.endpoint,
            _ => 0,
        };
        let pending = Pending {
            endpoint,
            direction: s.direction,
            length,
            short_not_ok: s.transfer_flags & URB_SHORT_NOT_OK != 0,
            unlinked_by: None,
        };
        self.pending.insert(s.seqnum, pending);
        self.order.entry(endpoint).or_default().push_back(s.seqnum);
        self.events.push_back(event);
        Ok(())
    }

    fn control_event(&mut self, s: &CmdSubmit) -> Option<Event> {
        let setup = parse_setup(&s.setup);
        if let Some(op) = config_op(&setup) {
            return Some(Event::Configure {
                seqnum: s.seqnum,
                op,
            });
        }
        if setup.is_in() != (s.direction == Direction::In)
            || (!setup.is_in() && usize::from(setup.length) != s.data.len())
        {
            self.answer_now(s.seqnum, -linux::EINVAL);
            return None;
        }
        Some(Event::Submit(Submit::control(s, setup)))
    }

    fn endpoint_event(&mut self, s: &CmdSubmit) -> Option<Event> {
        let address = match s.direction {
            Direction::In => s.ep | 0x80,
            Direction::Out => s.ep,
        };
        match self.endpoints.kind(address) {
            Some(kind @ (EndpointKind::Bulk | EndpointKind::Interrupt)) => {
                Some(Event::Submit(Submit::endpoint(s, address, kind)))
            }
            // Unknown endpoints and isochronous ones (not supported) are refused at once.
            Some(EndpointKind::Isochronous) | None => {
                self.answer_now(s.seqnum, -linux::EINVAL);
                None
            }
        }
    }

    fn answer_now(&mut self, seqnum: u32, status: i32) {
        let ret = RetSubmit {
            seqnum,
            status,
            actual_length: 0,
            data: Bytes::new(),
        };
        self.output.push_back(ret.encode());
    }

    fn on_unlink(&mut self, u: CmdUnlink) {
        match self.pending.get_mut(&u.unlink_seqnum) {
            Some(p) if p.unlinked_by.is_none() => {
                p.unlinked_by = Some(u.seqnum);
                self.events.push_back(Event::Cancel {
                    seqnum: u.unlink_seqnum,
                });
            }
            // Already answered (or unknown, or unlinked twice): nothing left to cancel.
            _ => self.output.push_back(
                RetUnlink {
                    seqnum: u.seqnum,
                    status: 0,
                }
                .encode(),
            ),
        }
    }

    /// Feeds the result of an [`Event::Submit`] or [`Event::Configure`]. Returns `false` when
    /// `seqnum` is not pending (a duplicate or stray completion, ignored).
    pub fn handle_completion(&mut self, seqnum: u32, completion: Completion) -> bool {
        let Some(endpoint) = self.pending.get(&seqnum).map(|p| p.endpoint) else {
            return false;
        };
        if self.held.contains_key(&seqnum) {
            return false;
        }
        self.held.insert(seqnum, completion);
        let Some(queue) = self.order.get_mut(&endpoint) else {
            return true;
        };
        while let Some(head) = queue.front().copied() {
            let Some(done) = self.held.remove(&head) else {
                break;
            };
            queue.pop_front();
            if let Some(p) = self.pending.remove(&head) {
                self.output.push_back(reply_bytes(head, &p, done));
            }
        }
        if queue.is_empty() {
            self.order.remove(&endpoint);
        }
        true
    }
}

/// RET_UNLINK(-ECONNRESET) for an unlinked URB, otherwise its RET_SUBMIT.
fn reply_bytes(seqnum: u32, p: &Pending, completion: Completion) -> Bytes {
    match p.unlinked_by {
        Some(unlink) => RetUnlink {
            seqnum: unlink,
            status: -linux::ECONNRESET,
        }
        .encode(),
        None => ret_submit(seqnum, p, completion).encode(),
    }
}

fn ret_submit(seqnum: u32, p: &Pending, c: Completion) -> RetSubmit {
    let mut status = urb_status(c.status);
    let (actual_length, data) = match p.direction {
        Direction::In if c.data.len() > p.length as usize => {
            status = -linux::EOVERFLOW;
            (0, Bytes::new())
        }
        Direction::In => (c.data.len() as u32, c.data),
        Direction::Out => (c.actual_length.min(p.length), Bytes::new()),
    };
    if status == 0 && p.direction == Direction::In && p.short_not_ok && actual_length < p.length {
        status = -linux::EREMOTEIO;
    }
    RetSubmit {
        seqnum,
        status,
        actual_length,
        data,
    }
}

/// The setup packet's fields (little-endian on the bus).
pub fn parse_setup(raw: &[u8; 8]) -> Setup {
    Setup {
        request_type: raw[0],
        request: raw[1],
        value: u16::from_le_bytes([raw[2], raw[3]]),
        index: u16::from_le_bytes([raw[4], raw[5]]),
        length: u16::from_le_bytes([raw[6], raw[7]]),
    }
}

const SET_CONFIGURATION: u8 = 9;
const SET_INTERFACE: u8 = 11;
const CLEAR_FEATURE: u8 = 1;
const ENDPOINT_HALT: u16 = 0;

/// The Reach operation for a state-changing standard request, as the kernel's stub does them.
pub fn config_op(s: &Setup) -> Option<ConfigOp> {
    match (s.request_type, s.request) {
        (0x00, SET_CONFIGURATION) => Some(ConfigOp::SetConfiguration(s.value as u8)),
        (0x01, SET_INTERFACE) => Some(ConfigOp::SetInterface(s.index as u8, s.value as u8)),
        (0x02, CLEAR_FEATURE) if s.value == ENDPOINT_HALT => {
            Some(ConfigOp::ClearHalt(s.index as u8))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "translator_tests.rs"]
mod tests;
