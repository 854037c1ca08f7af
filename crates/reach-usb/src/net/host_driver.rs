//! The host's async driver: a thin shell running a [`HostSession`] against a backend.
//!
//! Transfers run as futures polled by the runner itself (a slow endpoint stalls only itself, and
//! a transfer costs no task spawn and no channel hop); cancelling aborts the transfer future.
//! LIST, OPEN and configuration ops run as their own tasks. Transports can be replaced (resume):
//! each new [`MessageChannel`] sent to [`HostRunner::run`] takes over from the previous one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::FuturesUnordered;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::{MessageChannel, pump_out};
use crate::acl::policy::PromptAnswer;
use crate::audit::LocalAudit;
use crate::backend::{BoxFuture, HotplugEvent, UsbBackend, UsbDevice};
use crate::host::{HostAction, HostEvent, HostSession, OpenRefusal, TransferId};
use crate::proto::{DeviceFilter, DeviceInfo, TransferReply, TransferStatus};

/// Who may see and open which device (the ACL, with its prompt).
pub trait AccessPolicy: Send + Sync + 'static {
    /// Whether LIST may show the device.
    fn visible(&self, device: &DeviceInfo) -> bool;
    /// Whether `viewer` may open the device (may ask the operator).
    fn decide_open<'a>(&'a self, device: &'a DeviceInfo, viewer: &'a str) -> BoxFuture<'a, bool>;

    /// As [`AccessPolicy::decide_open`], with what the host operator answered when the policy
    /// asked (`None`: nobody was asked). The runner audits the answer.
    fn decide_open_answered<'a>(
        &'a self,
        device: &'a DeviceInfo,
        viewer: &'a str,
    ) -> BoxFuture<'a, (bool, Option<PromptAnswer>)> {
        Box::pin(async move { (self.decide_open(device, viewer).await, None) })
    }
}

/// Allows everything: tests and benchmarks only.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl AccessPolicy for AllowAll {
    fn visible(&self, _device: &DeviceInfo) -> bool {
        true
    }

    fn decide_open<'a>(&'a self, _device: &'a DeviceInfo, _viewer: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}

enum Done {
    List(u32, Vec<DeviceInfo>),
    Open(u32, Result<Arc<dyn UsbDevice>, OpenRefusal>),
    Transfer(TransferId, TransferReply),
    Configure(TransferId, TransferStatus),
}

/// Runs a host session.
pub struct HostRunner {
    session: HostSession,
    backend: Arc<dyn UsbBackend>,
    policy: Arc<dyn AccessPolicy>,
    audit: Option<Arc<LocalAudit>>,
    switch: Option<watch::Receiver<bool>>,
    viewer: String,
    devices: HashMap<u16, Arc<dyn UsbDevice>>,
    opened: Option<Arc<dyn UsbDevice>>,
    cancels: HashMap<TransferId, AbortHandle>,
    running: FuturesUnordered<BoxFuture<'static, (TransferId, TransferReply)>>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl HostRunner {
    /// A runner for one viewer's session.
    pub fn new(
        session: HostSession,
        backend: Arc<dyn UsbBackend>,
        policy: Arc<dyn AccessPolicy>,
        viewer: &str,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            session,
            backend,
            policy,
            audit: None,
            switch: None,
            viewer: viewer.to_owned(),
            devices: HashMap::new(),
            opened: None,
            cancels: HashMap::new(),
            running: FuturesUnordered::new(),
            done_tx,
            done_rx,
        }
    }

    /// Records OPEN/OPENED/CLOSE/ERROR/RESUME/denials in a local audit log.
    pub fn with_audit(mut self, audit: Arc<LocalAudit>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Follows the host's passthrough switch: turning it off closes every claim at once (the
    /// viewer gets CLOSED `shutdown`, devices are released) and refuses LIST and OPEN until it
    /// is on again.
    pub fn with_switch(mut self, switch: watch::Receiver<bool>) -> Self {
        self.switch = Some(switch);
        self
    }

    /// Serves one transport until it closes and every claim is gone.
    pub async fn serve(self, channel: MessageChannel) {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.send(channel).await;
        drop(tx);
        self.run(rx).await;
    }

    /// Serves transports as they arrive (a later one replaces the current: resume). Claims of a
    /// lost transport wait for the next one for the session's retention window; once
    /// `transports` is closed and no transport is up, they are closed at once (no transport can
    /// resume them). Returns then, when no claim and no transfer is left; devices are released.
    pub async fn run(mut self, mut transports: mpsc::Receiver<MessageChannel>) {
        let mut hotplug = self.backend.watch();
        let mut chan: Option<MessageChannel> = None;
        let mut held: Option<Bytes> = None;
        let mut transports_open = true;
        loop {
            // Transfers that complete at once (a stream on a fast source) keep a branch below
            // always ready; spend tokio's budget so the runner still yields to other tasks.
            tokio::task::consume_budget().await;
            self.drain_session();
            if let Some(c) = &chan
                && !pump_out(&c.tx, &mut held, || self.session.poll_transmit())
            {
                chan = None;
                held = None;
                self.session.handle_transport_lost(now());
                continue;
            }
            if chan.is_none() && !transports_open {
                // No transport can come back: nothing is left to resume.
                if !self.session.claim_ids().is_empty() {
                    self.session.handle_shutdown();
                    continue;
                }
                if self.running.is_empty() {
                    break;
                }
            }
            let deadline = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let (tx, rx) = match &mut chan {
                Some(c) => (Some(&c.tx), Some(&mut c.rx)),
                None => (None, None),
            };
            let step = tokio::select! {
                biased;
                Some(done) = self.done_rx.recv() => Step::Done(done),
                msg = recv_opt(rx) => Step::Message(msg),
                Some((id, reply)) = self.running.next(), if !self.running.is_empty() => {
                    Step::Done(Done::Transfer(id, reply))
                }
                permit = reserve_opt(tx), if held.is_some() => {
                    if let (Ok(permit), Some(frame)) = (permit, held.take()) {
                        permit.send(frame);
                    }
                    Step::Sent
                }
                t = transports.recv(), if transports_open => Step::Transport(t),
                Some(event) = recv_hotplug(&mut hotplug) => Step::Hotplug(event),
                Some(on) = switch_changed(&mut self.switch) => Step::Switch(on),
                () = super::sleep_until_opt(deadline) => Step::Timeout,
            };
            match step {
                Step::Done(done) => self.apply(done),
                Step::Message(Some(first)) => self.receive_batch(first, &mut chan),
                Step::Message(None) => {
                    chan = None;
                    held = None;
                    self.session.handle_transport_lost(now());
                }
                Step::Sent => {}
                Step::Transport(Some(new)) => {
                    if chan.is_some() {
                        self.session.handle_transport_lost(now());
                    }
                    held = None;
                    chan = Some(new);
                    self.session.handle_transport_restored(now());
                }
                Step::Transport(None) => transports_open = false,
                Step::Hotplug(event) => self.on_hotplug(event),
                Step::Switch(on) => {
                    self.session.set_passthrough(on);
                    if !on {
                        self.session.handle_shutdown();
                    }
                }
                Step::Timeout => self.session.handle_timeout(now()),
            }
        }
        for (_, dev) in self.devices.drain() {
            dev.close().await;
        }
    }

    fn receive_batch(&mut self, first: Bytes, chan: &mut Option<MessageChannel>) {
        let t = now();
        self.session.handle_message(t, first);
        if let Some(c) = chan {
            for _ in 0..64 {
                match c.rx.try_recv() {
                    Ok(m) => self.session.handle_message(t, m),
                    Err(_) => break,
                }
            }
        }
    }

    fn drain_session(&mut self) {
        loop {
            if let Some(action) = self.session.poll_action() {
                self.perform(action);
            } else if let Some(event) = self.session.poll_event() {
                self.record(event);
            } else {
                return;
            }
        }
    }

    fn apply(&mut self, done: Done) {
        match done {
            Done::List(rid, devices) => self.session.handle_list_result(rid, devices),
            Done::Open(rid, result) => {
                let info = result.as_ref().map(|d| d.info()).map_err(Clone::clone);
                self.opened = result.ok();
                self.session.handle_open_result(now(), rid, info);
                self.drain_session();
                if let Some(dev) = self.opened.take() {
                    tokio::spawn(dev.close());
                }
            }
            Done::Transfer(id, reply) => {
                self.finish_transfer(id, reply.status, |s| s.handle_transfer_complete(id, reply))
            }
            Done::Configure(id, status) => {
                self.finish_transfer(id, status, |s| s.handle_configure_complete(id, status))
            }
        }
    }

    fn finish_transfer(
        &mut self,
        id: TransferId,
        status: TransferStatus,
        complete: impl FnOnce(&mut HostSession),
    ) {
        self.cancels.remove(&id);
        let claim = self.claim_of(id);
        complete(&mut self.session);
        if status == TransferStatus::NoDevice
            && let Some(claim) = claim
        {
            self.session.handle_unplugged(claim);
        }
    }

    fn claim_of(&self, id: TransferId) -> Option<u16> {
        self.session.transfer_claim(id)
    }

    fn perform(&mut self, action: HostAction) {
        match action {
            HostAction::List { request_id } => self.spawn_list(request_id),
            HostAction::Open { request_id, filter } => self.spawn_open(request_id, filter),
            HostAction::Submit { id, claim, request } => {
                let Some(dev) = self.devices.get(&claim).cloned() else {
                    return self.session.handle_transfer_complete(
                        id,
                        TransferReply::status(TransferStatus::NoDevice),
                    );
                };
                let short_not_ok =
                    (request.flags.short_not_ok() && request.is_in()).then_some(request.length);
                // Start the transfer here, in action order, so the device sees transfers on an
                // endpoint in request-id order (bulk data stays in order).
                let (abort, registration) = AbortHandle::new_pair();
                let transfer = Abortable::new(dev.transfer(request), registration);
                self.cancels.insert(id, abort);
                self.running.push(Box::pin(async move {
                    let mut reply = transfer
                        .await
                        .unwrap_or_else(|_| TransferReply::status(TransferStatus::Cancelled));
                    // short-not-ok: an IN shorter than asked is an error (data kept for the caller).
                    if short_not_ok.is_some_and(|wanted| {
                        reply.status == TransferStatus::Ok && reply.actual_length < wanted
                    }) {
                        reply.status = TransferStatus::IoError;
                    }
                    (id, reply)
                }));
            }
            HostAction::Configure { id, claim, op } => {
                let Some(dev) = self.devices.get(&claim).cloned() else {
                    return self
                        .session
                        .handle_configure_complete(id, TransferStatus::NoDevice);
                };
                let done = self.done_tx.clone();
                tokio::spawn(async move {
                    let status = dev.configure(op).await;
                    let _ = done.send(Done::Configure(id, status));
                });
            }
            HostAction::Cancel { id } => {
                if let Some(abort) = self.cancels.remove(&id) {
                    abort.abort();
                }
            }
            HostAction::Release { claim } => {
                if let Some(dev) = self.devices.remove(&claim) {
                    tokio::spawn(dev.close());
                }
            }
        }
    }

    fn spawn_list(&self, rid: u32) {
        let (backend, policy, done) = (
            self.backend.clone(),
            self.policy.clone(),
            self.done_tx.clone(),
        );
        tokio::spawn(async move {
            let devices = backend.list().await.unwrap_or_default();
            let visible = devices.into_iter().filter(|d| policy.visible(d)).collect();
            let _ = done.send(Done::List(rid, visible));
        });
    }

    fn spawn_open(&self, rid: u32, filter: DeviceFilter) {
        let (backend, policy, done) = (
            self.backend.clone(),
            self.policy.clone(),
            self.done_tx.clone(),
        );
        let (audit, viewer) = (self.audit.clone(), self.viewer.clone());
        tokio::spawn(async move {
            let result =
                open_first_allowed(&*backend, &*policy, &filter, &viewer, audit.as_deref()).await;
            let _ = done.send(Done::Open(rid, result));
        });
    }

    fn on_hotplug(&mut self, event: HotplugEvent) {
        let (added, device) = match event {
            HotplugEvent::Added(d) => (true, d),
            HotplugEvent::Removed(d) => (false, d),
        };
        if !added {
            let gone: Vec<u16> = self
                .devices
                .iter()
                .filter(|(_, dev)| dev.info().bus_id == device.bus_id)
                .map(|(c, _)| *c)
                .collect();
            gone.into_iter()
                .for_each(|c| self.session.handle_unplugged(c));
        }
        if self.policy.visible(&device) {
            self.session.handle_device_event(added, device);
        }
    }

    fn record(&mut self, event: HostEvent) {
        if let HostEvent::Opened { claim, .. } = &event
            && let Some(dev) = self.opened.take()
        {
            self.devices.insert(*claim, dev);
        }
        let Some(audit) = &self.audit else { return };
        let v = &self.viewer;
        let result = match &event {
            HostEvent::Opened { claim, device } => audit.device_event(v, "opened", Some(*claim), device, json!({})),
            HostEvent::Closed { claim, device, reason } => audit.device_event(v, "closed", Some(*claim), device, json!({"reason": reason})),
            HostEvent::Resumed { claim } => audit.append(&format!("viewer:{v}"), json!({"action": "resumed", "claim_id": claim, "viewer": v})),
            HostEvent::Error { claim, code, message } => audit.append(&format!("viewer:{v}"), json!({"action": "error", "claim_id": claim, "code": code, "message": message, "viewer": v})),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "USB audit append failed");
        }
    }
}

async fn open_first_allowed(
    backend: &dyn UsbBackend,
    policy: &dyn AccessPolicy,
    filter: &DeviceFilter,
    viewer: &str,
    audit: Option<&LocalAudit>,
) -> Result<Arc<dyn UsbDevice>, OpenRefusal> {
    let devices = backend.list().await.map_err(|_| OpenRefusal::NoDevice)?;
    let candidates: Vec<DeviceInfo> = devices.into_iter().filter(|d| filter.matches(d)).collect();
    if candidates.is_empty() {
        return Err(OpenRefusal::NoDevice);
    }
    for device in &candidates {
        if let Some(a) = audit {
            let _ = a.device_event(viewer, "open", None, device, json!({}));
        }
        let (allowed, answer) = policy.decide_open_answered(device, viewer).await;
        if let (Some(a), Some(answer)) = (audit, answer) {
            let _ = a.device_event(
                viewer,
                "prompted",
                None,
                device,
                json!({"reason": answer.as_str()}),
            );
        }
        if !allowed {
            if let Some(a) = audit {
                let _ = a.device_event(
                    viewer,
                    "denied",
                    None,
                    device,
                    json!({"reason": "denied by ACL policy"}),
                );
            }
            continue;
        }
        return backend.open(&device.bus_id).await.map_err(|e| match e {
            crate::backend::BackendError::Busy(_) => OpenRefusal::Busy,
            crate::backend::BackendError::NoDevice(_) => OpenRefusal::NoDevice,
            other => OpenRefusal::Io(other.to_string()),
        });
    }
    Err(OpenRefusal::Denied)
}

enum Step {
    Done(Done),
    Message(Option<Bytes>),
    Sent,
    Transport(Option<MessageChannel>),
    Hotplug(HotplugEvent),
    Switch(bool),
    Timeout,
}

/// The switch's next value; pending forever without a switch or once its sender is gone.
async fn switch_changed(switch: &mut Option<watch::Receiver<bool>>) -> Option<bool> {
    let Some(rx) = switch else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        *switch = None;
        return std::future::pending().await;
    }
    Some(*rx.borrow_and_update())
}

pub(crate) async fn recv_opt(rx: Option<&mut mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn reserve_opt(
    tx: Option<&mpsc::Sender<Bytes>>,
) -> Result<mpsc::Permit<'_, Bytes>, ()> {
    match tx {
        Some(tx) => tx.reserve().await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

async fn recv_hotplug(
    rx: &mut Option<mpsc::UnboundedReceiver<HotplugEvent>>,
) -> Option<HotplugEvent> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
