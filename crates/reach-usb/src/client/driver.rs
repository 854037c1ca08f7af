//! The client's driver task: owns the [`ClientSession`] and the transport, serves API commands.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::api::{Command, Reply};
use super::{ClientEvent, ClientSession};
use crate::error::UsbError;
use crate::limits::DEFAULT_TIMEOUT;
use crate::net::{MessageChannel, pump_out};
use crate::proto::control::{DeviceEvent, Opened};
use crate::proto::data::StreamData;
use crate::proto::{DeviceInfo, TransferReply, TransferStatus};

enum Waiter {
    List(Reply<Vec<DeviceInfo>>),
    Open(Reply<Opened>),
    Done(Reply<TransferReply>),
}

pub(super) struct Driver {
    session: ClientSession,
    chan: Option<MessageChannel>,
    /// The outgoing side of the latest transport, kept after it is lost (who may shut us down).
    last_tx: mpsc::Sender<Bytes>,
    held: Option<Bytes>,
    waiters: HashMap<u32, Waiter>,
    pending_streams: HashMap<u32, (u16, u8, mpsc::Sender<StreamData>)>,
    streams: HashMap<(u16, u8), mpsc::Sender<StreamData>>,
    closing: HashMap<u16, Vec<oneshot::Sender<()>>>,
    resuming: Option<(Vec<u16>, Reply<()>)>,
    /// Hotplug events for whoever subscribed (bounded; slow subscribers miss old events).
    device_events: tokio::sync::broadcast::Sender<DeviceEvent>,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

enum Step {
    Command(Option<Command>),
    Message(Option<Bytes>),
    Sent,
    Timeout,
}

impl Driver {
    pub(super) fn new(
        chan: MessageChannel,
        device_events: tokio::sync::broadcast::Sender<DeviceEvent>,
    ) -> Self {
        Self {
            last_tx: chan.tx.clone(),
            device_events,
            session: ClientSession::new(now()),
            chan: Some(chan),
            held: None,
            waiters: HashMap::new(),
            pending_streams: HashMap::new(),
            streams: HashMap::new(),
            closing: HashMap::new(),
            resuming: None,
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.drain_events();
            if let Some(c) = &self.chan
                && !pump_out(&c.tx, &mut self.held, || self.session.poll_transmit())
            {
                self.lose_transport();
                continue;
            }
            let deadline = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let (tx, rx) = match &mut self.chan {
                Some(c) => (Some(&c.tx), Some(&mut c.rx)),
                None => (None, None),
            };
            let held = &mut self.held;
            let step = tokio::select! {
                biased;
                msg = crate::net::recv_opt(rx) => Step::Message(msg),
                permit = crate::net::reserve_opt(tx), if held.is_some() => {
                    if let (Ok(permit), Some(frame)) = (permit, held.take()) {
                        permit.send(frame);
                    }
                    Step::Sent
                }
                cmd = commands.recv() => Step::Command(cmd),
                () = crate::net::sleep_until_opt(deadline) => Step::Timeout,
            };
            match step {
                Step::Message(Some(m)) => self.receive_batch(m),
                Step::Message(None) => self.lose_transport(),
                Step::Sent => {}
                Step::Command(Some(cmd)) => self.apply(cmd),
                Step::Command(None) => return,
                Step::Timeout => self.session.handle_timeout(now()),
            }
        }
    }

    fn lose_transport(&mut self) {
        self.chan = None;
        self.held = None;
        self.session.handle_transport_lost(now());
        if let Some((_, tx)) = self.resuming.take() {
            let _ = tx.send(Err(UsbError::Closed("transport lost during resume".into())));
        }
    }

    fn receive_batch(&mut self, first: Bytes) {
        let t = now();
        self.session.handle_message(t, first);
        if let Some(c) = &mut self.chan {
            for _ in 0..64 {
                let Ok(m) = c.rx.try_recv() else { break };
                self.session.handle_message(t, m);
            }
        }
    }

    fn apply(&mut self, cmd: Command) {
        let t = now();
        let timeout = DEFAULT_TIMEOUT;
        match cmd {
            Command::List(tx) => {
                let rid = self.session.list(t, timeout);
                self.waiters.insert(rid, Waiter::List(tx));
            }
            Command::Open(filter, tx) => {
                let rid = self.session.open(t, filter, timeout);
                self.waiters.insert(rid, Waiter::Open(tx));
            }
            Command::Submit {
                claim,
                request,
                timeout,
                rid,
                done,
            } => match (self.session.submit(t, claim, &request, timeout), rid) {
                (Ok(id), rid) => {
                    self.waiters.insert(id, Waiter::Done(done));
                    if let Some(rid) = rid {
                        let _ = rid.send(Ok(id));
                    }
                }
                (Err(e), Some(rid)) => drop(rid.send(Err(e))),
                (Err(e), None) => drop(done.send(Err(e))),
            },
            Command::Configure(claim, op, tx) => {
                let result = self.session.configure(t, claim, op, timeout);
                self.track(result, tx);
            }
            Command::StreamStart(claim, start, sender, tx) => {
                let result = self.session.stream_start(t, claim, start, timeout);
                if let Ok(rid) = result {
                    self.pending_streams
                        .insert(rid, (claim, start.endpoint, sender));
                }
                self.track(result, tx);
            }
            Command::StreamStop(claim, ep, tx) => {
                self.streams.remove(&(claim, ep));
                let result = self.session.stream_stop(t, claim, ep, timeout);
                self.track(result, tx);
            }
            Command::Cancel(claim, rid) => self.session.cancel(claim, rid),
            Command::Close(claim, tx) => {
                if self.session.claim_ids().contains(&claim) {
                    self.session.close(claim);
                    self.closing.entry(claim).or_default().push(tx);
                }
            }
            Command::Resume(chan, tx) => self.resume(chan, tx),
            Command::Shutdown(on, tx) => {
                if on.is_none_or(|on| on.same_channel(&self.last_tx)) {
                    self.lose_transport();
                    self.session.handle_shutdown(t);
                    self.drain_events();
                }
                let _ = tx.send(());
            }
        }
    }

    fn track(&mut self, result: Result<u32, UsbError>, tx: Reply<TransferReply>) {
        match result {
            Ok(rid) => drop(self.waiters.insert(rid, Waiter::Done(tx))),
            Err(e) => drop(tx.send(Err(e))),
        }
    }

    fn resume(&mut self, chan: MessageChannel, tx: Reply<()>) {
        if self.chan.is_some() {
            self.session.handle_transport_lost(now());
        }
        self.last_tx = chan.tx.clone();
        self.chan = Some(chan);
        self.held = None;
        self.session.handle_transport_restored(now());
        let claims = self.session.claim_ids();
        if claims.is_empty() {
            let _ = tx.send(Ok(()));
        } else {
            self.resuming = Some((claims, tx));
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.deliver(event);
        }
    }

    fn deliver(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Listed { request_id, result } => {
                if let Some(Waiter::List(tx)) = self.waiters.remove(&request_id) {
                    let _ = tx.send(result);
                }
            }
            ClientEvent::Opened { request_id, result } => {
                if let Some(Waiter::Open(tx)) = self.waiters.remove(&request_id) {
                    let _ = tx.send(result);
                }
            }
            ClientEvent::Done {
                request_id, result, ..
            } => {
                if let Some((claim, ep, sender)) = self.pending_streams.remove(&request_id)
                    && result
                        .as_ref()
                        .is_ok_and(|r| r.status == TransferStatus::Ok)
                {
                    self.streams.insert((claim, ep), sender);
                }
                if let Some(Waiter::Done(tx)) = self.waiters.remove(&request_id) {
                    let _ = tx.send(result);
                }
            }
            ClientEvent::Stream { claim, data } => {
                if let Some(tx) = self.streams.get(&(claim, data.endpoint)) {
                    let _ = tx.try_send(data);
                }
            }
            ClientEvent::Closed { claim, .. } => {
                self.streams.retain(|(c, _), _| *c != claim);
                for tx in self.closing.remove(&claim).unwrap_or_default() {
                    let _ = tx.send(());
                }
                self.resumed(claim, Ok(()));
            }
            ClientEvent::Resumed { claim, result } => self.resumed(claim, result),
            ClientEvent::Device(event) => drop(self.device_events.send(event)),
            ClientEvent::PeerError { claim, error } => {
                tracing::debug!(claim, %error, "USB host reported an error")
            }
        }
    }

    fn resumed(&mut self, claim: u16, result: Result<(), UsbError>) {
        let Some((mut waiting, tx)) = self.resuming.take() else {
            return;
        };
        waiting.retain(|c| *c != claim);
        if let Err(e) = result {
            let _ = tx.send(Err(e));
        } else if waiting.is_empty() {
            let _ = tx.send(Ok(()));
        } else {
            self.resuming = Some((waiting, tx));
        }
    }
}
