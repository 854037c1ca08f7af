//! A client and a host session joined by a link in virtual time, with a one-way delay and link
//! drops that lose whatever is in flight. The host's backend is a device the test drives: it
//! either answers every transfer at once (`auto`) or holds them until the test completes them,
//! in any order.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reach_usb_proto::client::{ClientEvent, ClientSession};
use reach_usb_proto::host::{HostAction, HostConfig, HostEvent, HostSession, TransferId};
use reach_usb_proto::proto::{
    DeviceFilter, DeviceInfo, Frame, Op, TransferKind, TransferReply, TransferRequest,
    TransferStatus,
};

/// The per-request timeout the harness uses unless a test gives one.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// One frame seen on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Op.
    pub(crate) op: Op,
    /// Claim id.
    pub(crate) claim: u16,
    /// Request id.
    pub(crate) request_id: u32,
    /// Payload bytes (request id + chunk).
    pub(crate) payload: usize,
}

/// A transfer the device ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ran {
    /// Host-side id.
    pub(crate) id: TransferId,
    /// Claim.
    pub(crate) claim: u16,
    /// The request as the device saw it.
    pub(crate) request: TransferRequest,
}

/// The two sessions, the link between them and the device behind the host.
pub(crate) struct Pair {
    pub(crate) client: ClientSession,
    pub(crate) host: HostSession,
    pub(crate) now: Instant,
    /// One-way delay of the link.
    pub(crate) delay: Duration,
    /// Whether the device answers every transfer at once.
    pub(crate) auto: bool,
    /// Transfers the device started, in order (cancelled or not).
    pub(crate) ran: Vec<Ran>,
    /// Transfers held by the device (when not `auto`), oldest first.
    pub(crate) held: Vec<Ran>,
    /// Cancels the host asked the device for.
    pub(crate) cancels: Vec<TransferId>,
    /// Client events not yet taken.
    pub(crate) events: Vec<ClientEvent>,
    /// Host events.
    pub(crate) host_events: Vec<HostEvent>,
    /// Frames the client put on the link.
    pub(crate) from_client: Vec<Seen>,
    /// Frames the host put on the link.
    pub(crate) from_host: Vec<Seen>,
    to_host: VecDeque<(Instant, Bytes)>,
    to_client: VecDeque<(Instant, Bytes)>,
    up: bool,
}

/// A full-speed vendor device with bulk IN 0x81 and bulk OUT 0x02.
pub(crate) fn device() -> DeviceInfo {
    serde_json::from_str(
        r#"{"bus_id":"1-1","vendor_id":"0525","product_id":"a4a0","serial":null,
        "manufacturer":null,"product":"Gadget","speed":"high","bcd_device":0,"class":255,
        "subclass":0,"protocol":0,"active_configuration":1,"port_path":"1-1","interfaces":[
        {"number":0,"alt":0,"class":255,"subclass":0,"protocol":0,"endpoints":[
        {"address":129,"kind":"bulk","max_packet_size":512,"interval":0},
        {"address":2,"kind":"bulk","max_packet_size":512,"interval":0}]}]}"#,
    )
    .expect("valid device JSON")
}

/// Bulk IN of `len` bytes on 0x81.
pub(crate) fn bulk_in(len: u32) -> TransferRequest {
    TransferRequest {
        kind: TransferKind::Bulk(0x81),
        flags: Default::default(),
        timeout_ms: 0,
        length: len,
        data: Bytes::new(),
    }
}

/// Bulk OUT of `data` on 0x02.
pub(crate) fn bulk_out(data: impl Into<Bytes>) -> TransferRequest {
    let data = data.into();
    TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: Default::default(),
        timeout_ms: 0,
        length: data.len() as u32,
        data,
    }
}

/// What the device answers to a transfer: IN gets `length` bytes of `i as u8`, OUT is written.
pub(crate) fn answer(request: &TransferRequest) -> TransferReply {
    if request.is_in() {
        let data: Vec<u8> = (0..request.length).map(|i| i as u8).collect();
        TransferReply {
            status: TransferStatus::Ok,
            actual_length: request.length,
            data: data.into(),
        }
    } else {
        TransferReply {
            status: TransferStatus::Ok,
            actual_length: request.data.len() as u32,
            data: Bytes::new(),
        }
    }
}

fn seen(frame: &Bytes) -> Seen {
    let f = Frame::decode(frame.clone()).expect("sessions send valid frames");
    Seen {
        op: f.op,
        claim: f.claim,
        request_id: f.request_id,
        payload: frame.len() - 4,
    }
}

impl Pair {
    /// A pair with passthrough on, no delay, an answering device; HELLOs exchanged.
    pub(crate) fn new() -> Self {
        Self::with(HostConfig::enabled(), Duration::ZERO)
    }

    /// A pair with a host configuration and a one-way link delay.
    pub(crate) fn with(config: HostConfig, delay: Duration) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            client: ClientSession::new(now),
            host: HostSession::new(config, now),
            now,
            delay,
            auto: true,
            ran: Vec::new(),
            held: Vec::new(),
            cancels: Vec::new(),
            events: Vec::new(),
            host_events: Vec::new(),
            from_client: Vec::new(),
            from_host: Vec::new(),
            to_host: VecDeque::new(),
            to_client: VecDeque::new(),
            up: true,
        };
        pair.settle();
        pair
    }

    /// Opens the device; returns the claim id.
    pub(crate) fn open(&mut self) -> u16 {
        let rid = self.client.open(self.now, DeviceFilter::default(), TIMEOUT);
        self.settle();
        let opened = self.take_events().into_iter().find_map(|e| match e {
            ClientEvent::Opened { request_id, result } if request_id == rid => Some(result),
            _ => None,
        });
        opened
            .expect("OPEN answered")
            .expect("OPEN succeeded")
            .claim_id
    }

    /// Submits a transfer with the default timeout.
    pub(crate) fn submit(&mut self, claim: u16, request: &TransferRequest) -> u32 {
        self.client
            .submit(self.now, claim, request, TIMEOUT)
            .expect("claim open")
    }

    /// Moves frames, answers the device and advances time to each delivery until the link is
    /// quiet. Timers due on the way fire in time order.
    pub(crate) fn settle(&mut self) {
        loop {
            self.pump();
            let next = [self.to_host.front(), self.to_client.front()]
                .into_iter()
                .flatten()
                .map(|(t, _)| *t)
                .min();
            let Some(next) = next else { return };
            self.advance_to(next);
        }
    }

    /// Advances virtual time by `d`, firing timers and delivering frames on the way, then settles.
    pub(crate) fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.pump();
            let next = [self.to_host.front(), self.to_client.front()]
                .into_iter()
                .flatten()
                .map(|(t, _)| *t)
                .chain(self.client.poll_timeout())
                .chain(self.host.poll_timeout())
                .filter(|t| *t <= until)
                .min();
            let Some(next) = next else { break };
            self.advance_to(next);
        }
        self.advance_to(until);
        self.settle();
    }

    fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        if self.client.poll_timeout().is_some_and(|d| d <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.host.poll_timeout().is_some_and(|d| d <= self.now) {
            self.host.handle_timeout(self.now);
        }
        while self.to_host.front().is_some_and(|(t, _)| *t <= self.now) {
            let (_, frame) = self.to_host.pop_front().expect("checked");
            self.host.handle_message(self.now, frame);
            self.run_device();
        }
        while self.to_client.front().is_some_and(|(t, _)| *t <= self.now) {
            let (_, frame) = self.to_client.pop_front().expect("checked");
            self.client.handle_message(self.now, frame);
        }
    }

    /// Takes frames both sessions have ready (within credit) onto the link.
    fn pump(&mut self) {
        loop {
            self.run_device();
            let mut moved = false;
            while self.up
                && let Some(f) = self.client.poll_transmit()
            {
                self.from_client.push(seen(&f));
                self.to_host.push_back((self.now + self.delay, f));
                moved = true;
            }
            while self.up
                && let Some(f) = self.host.poll_transmit()
            {
                self.from_host.push(seen(&f));
                self.to_client.push_back((self.now + self.delay, f));
                moved = true;
            }
            self.events
                .extend(std::iter::from_fn(|| self.client.poll_event()));
            if self.delay.is_zero() && (!self.to_host.is_empty() || !self.to_client.is_empty()) {
                self.advance_to(self.now);
                continue;
            }
            if !moved {
                return;
            }
        }
    }

    /// Plays the device: answers LIST, OPEN and configuration at once, transfers at once when
    /// `auto`, otherwise holds them.
    fn run_device(&mut self) {
        while let Some(action) = self.host.poll_action() {
            match action {
                HostAction::List { request_id } => {
                    self.host.handle_list_result(request_id, vec![device()])
                }
                HostAction::Open { request_id, .. } => {
                    self.host
                        .handle_open_result(self.now, request_id, Ok(device()))
                }
                HostAction::Submit { id, claim, request } => {
                    let ran = Ran { id, claim, request };
                    self.ran.push(ran.clone());
                    if self.auto {
                        self.host.handle_transfer_complete(id, answer(&ran.request));
                    } else {
                        self.held.push(ran);
                    }
                }
                HostAction::Configure { id, .. } => {
                    self.host.handle_configure_complete(id, TransferStatus::Ok)
                }
                HostAction::Cancel { id } => self.cancels.push(id),
                HostAction::Release { .. } => {}
            }
        }
        self.host_events
            .extend(std::iter::from_fn(|| self.host.poll_event()));
    }

    /// Completes held transfer number `index` (0 = oldest still held) with the device's answer.
    pub(crate) fn complete(&mut self, index: usize) {
        let ran = self.held.remove(index);
        self.host
            .handle_transfer_complete(ran.id, answer(&ran.request));
    }

    /// Completes a held transfer by host id with a given reply.
    pub(crate) fn complete_with(&mut self, id: TransferId, reply: TransferReply) {
        self.held.retain(|r| r.id != id);
        self.host.handle_transfer_complete(id, reply);
    }

    /// The link drops: frames in flight are lost, both sides notice.
    pub(crate) fn drop_link(&mut self) {
        self.up = false;
        self.to_host.clear();
        self.to_client.clear();
        self.client.handle_transport_lost(self.now);
        self.host.handle_transport_lost(self.now);
        self.events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
    }

    /// A new link comes up (HELLO, RESUME) and settles.
    pub(crate) fn restore_link(&mut self) {
        self.up = true;
        self.host.handle_transport_restored(self.now);
        self.client.handle_transport_restored(self.now);
        self.settle();
    }

    /// Delivers only the first `n` frames now on their way to the host, then drops the link.
    pub(crate) fn drop_link_after(&mut self, n: usize) {
        self.pump_without_delivery();
        let keep: Vec<_> = self.to_host.drain(..).take(n).collect();
        for (_, frame) in keep {
            self.host.handle_message(self.now, frame);
            self.run_device();
        }
        self.drop_link();
    }

    fn pump_without_delivery(&mut self) {
        while let Some(f) = self.client.poll_transmit() {
            self.from_client.push(seen(&f));
            self.to_host.push_back((self.now + self.delay, f));
        }
    }

    /// Client events so far.
    pub(crate) fn take_events(&mut self) -> Vec<ClientEvent> {
        self.events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
        std::mem::take(&mut self.events)
    }

    /// `Done` results by request id, in the order they arrived.
    pub(crate) fn take_done(
        &mut self,
    ) -> Vec<(u32, Result<TransferReply, reach_usb_proto::UsbError>)> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Done {
                    request_id, result, ..
                } => Some((request_id, result)),
                _ => None,
            })
            .collect()
    }
}
