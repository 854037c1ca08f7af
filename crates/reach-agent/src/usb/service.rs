//! The per-viewer USB host sessions of one agent.
//!
//! A viewer's first USB frames start a [`HostRunner`] for it, or — when the viewer RESUMEs —
//! hand the runner its user left behind (see [`super::resume`]). Each runner is fed through
//! one transport at a time; a viewer that drops parks its runner, which keeps the claims for
//! the retention window.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use reach_proto::codec;
use reach_proto::rate::TokenBucket;
use reach_proto::v1::{self, Envelope, envelope::Body, session_event::Kind};
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{HostRunner, MessageChannel, memory_pair};
use reach_usb::proto::{Frame, Op};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::resume::{Owner, Parking, Runner};
use super::{AUDIT_NOTE_QUEUE, RELAY_FRAME_PAYLOAD, USB_OUT_QUEUE, UsbOptions};

/// Attach notes recorded per second across viewers (burst [`ATTACH_NOTE_BURST`]).
const ATTACH_NOTES_PER_SEC: u32 = 5;
/// Burst of [`ATTACH_NOTES_PER_SEC`].
const ATTACH_NOTE_BURST: u32 = 20;
/// Characters kept of each text field of an attach note.
const NOTE_TEXT_MAX: usize = 255;

/// Frames a new viewer may send before its USB traffic is routed: HELLO, CREDIT and CANCEL
/// wait; the first other message decides between a fresh host session and resuming one (RESUME).
const UNDECIDED_FRAMES: usize = 16;

/// Who a USB host session belongs to: one viewer of one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ViewerKey {
    pub(crate) session_id: String,
    pub(crate) viewer_id: u64,
}

impl ViewerKey {
    /// The identity the host session, its ACL prompt and its audit records name.
    fn label(&self) -> String {
        format!("{}@{}", self.viewer_id, self.session_id)
    }
}

/// A joined viewer's user and name, as the server stamped them on `VIEWER_JOINED`.
struct Joined {
    owner: Owner,
    technician: String,
}

/// Aborts the task on drop.
struct Forwarder(JoinHandle<()>);

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One viewer's transport into its host session, as seen from the connection loop.
struct ViewerUsb {
    runner: Runner,
    /// Frames from the viewer into the host session; dropping it drops the transport (the
    /// claims wait for a RESUME, or close when the runner is dropped too).
    to_host: mpsc::Sender<Bytes>,
    /// Copies the host session's frames onto the outbound USB queue.
    _forwarder: Forwarder,
}

/// The agent's USB side: routes viewers' frames to their host sessions.
pub(crate) struct UsbService {
    options: UsbOptions,
    viewers: HashMap<ViewerKey, ViewerUsb>,
    /// Who each viewer is, as the server said when it joined.
    owners: HashMap<ViewerKey, Joined>,
    /// First frames of viewers whose route is not decided yet.
    undecided: HashMap<ViewerKey, Vec<Bytes>>,
    parking: Parking,
    out: mpsc::Sender<Envelope>,
    out_rx: mpsc::Receiver<Envelope>,
    notes: mpsc::Sender<Envelope>,
    notes_rx: mpsc::Receiver<Envelope>,
    /// Bounds the local records technicians' attach notes cause.
    attach_notes: TokenBucket,
}

impl UsbService {
    /// A service with empty outgoing queues.
    pub(crate) fn new(options: UsbOptions) -> Self {
        let (out, out_rx) = mpsc::channel(USB_OUT_QUEUE);
        let (notes, notes_rx) = mpsc::channel(AUDIT_NOTE_QUEUE);
        Self {
            parking: Parking::new(options.retention),
            options,
            viewers: HashMap::new(),
            owners: HashMap::new(),
            undecided: HashMap::new(),
            out,
            out_rx,
            notes,
            notes_rx,
            attach_notes: TokenBucket::new(ATTACH_NOTES_PER_SEC, ATTACH_NOTE_BURST, Instant::now()),
        }
    }

    /// The next envelope for the server: audit notes first, then frames. Cancel-safe.
    pub(crate) async fn next_outbound(&mut self) -> Envelope {
        tokio::select! {
            biased;
            Some(note) = self.notes_rx.recv() => note,
            Some(frame) = self.out_rx.recv() => frame,
        }
    }

    /// Another queued frame, if one is ready now (to batch socket writes).
    pub(crate) fn try_next_frame(&mut self) -> Option<Envelope> {
        self.out_rx.try_recv().ok()
    }

    /// A switch subscription for the connection loop.
    pub(crate) fn switch_changes(&self) -> tokio::sync::watch::Receiver<bool> {
        self.options.switch.subscribe()
    }

    /// Whether the backend works on this machine.
    pub(crate) async fn supported(&self) -> bool {
        self.options.backend_works().await
    }

    /// The switch's current value.
    pub(crate) fn enabled(&self) -> bool {
        self.options.switch.get()
    }

    /// Passes a viewer's frame to its host session. A new viewer's frames wait while they are
    /// only HELLO, CREDIT or CANCEL (a client may have queued these while its link was down):
    /// the first other message decides — a RESUME takes over the host session its user left
    /// (parked or still attached to an older connection of the same user), anything else starts
    /// a fresh one. Waits while the session's inbox is full (the session keeps draining it).
    pub(crate) async fn handle_frame(&mut self, key: ViewerKey, frame: Bytes) {
        if key.session_id.is_empty() || key.viewer_id == 0 {
            return;
        }
        self.parking.prune(Instant::now());
        if let Some(v) = self.viewers.get(&key)
            && !v.to_host.is_closed()
        {
            let to_host = v.to_host.clone();
            let _ = to_host.send(frame).await;
            return;
        }
        self.viewers.remove(&key);
        let op = Frame::decode(frame.clone()).map(|f| f.op).ok();
        let buffered = self.undecided.entry(key.clone()).or_default();
        buffered.push(frame);
        let undecided = matches!(op, Some(Op::Hello | Op::Credit | Op::Cancel));
        if undecided && buffered.len() < UNDECIDED_FRAMES {
            return;
        }
        let frames = self.undecided.remove(&key).unwrap_or_default();
        let runner = match op {
            Some(Op::Resume) => self.take_runner_of(&key),
            _ => None,
        };
        let runner = runner.unwrap_or_else(|| self.start(&key));
        let to_host = self.attach(key, runner);
        for frame in frames {
            let _ = to_host.send(frame).await;
        }
    }

    /// The host session `key`'s user left in this session (the most recently parked one, else
    /// one still attached to another connection of the same user).
    fn take_runner_of(&mut self, key: &ViewerKey) -> Option<Runner> {
        let owner = self.owners.get(key)?.owner.clone();
        if let Some(runner) = self.parking.take(&key.session_id, &owner) {
            tracing::info!(viewer = %key.label(), "USB claims resumed from a dropped connection");
            return Some(runner);
        }
        let older = self
            .viewers
            .iter()
            .find(|(k, v)| k.session_id == key.session_id && v.runner.owner() == Some(&owner))
            .map(|(k, _)| k.clone())?;
        tracing::info!(viewer = %key.label(), from = %older.label(), "USB claims moved to a new connection");
        self.viewers.remove(&older).map(|v| v.runner)
    }

    /// A fresh host session for `key`.
    fn start(&self, key: &ViewerKey) -> Runner {
        let config = HostConfig {
            passthrough: self.options.switch.get(),
            retention: self.options.retention,
            max_frame_payload: RELAY_FRAME_PAYLOAD,
            ..HostConfig::default()
        };
        let joined = self.owners.get(key);
        let technician = joined
            .map(|j| j.technician.as_str())
            .filter(|t| !t.is_empty());
        let label = super::prompt::viewer_label(key.viewer_id, &key.session_id, technician);
        let mut runner = HostRunner::new(
            HostSession::new(config, Instant::now()),
            Arc::clone(&self.options.backend),
            Arc::clone(&self.options.policy),
            &label,
        );
        runner = runner.with_switch(self.options.switch.subscribe());
        if let Some(audit) = &self.options.audit {
            let mirror = super::audit::mirror(key.clone(), self.notes.clone());
            runner = runner.with_audit(Arc::new(audit.with_mirror(mirror)));
        }
        tracing::info!(viewer = %label, "USB session started");
        Runner::spawn(runner, joined.map(|j| j.owner.clone()))
    }

    /// Gives `runner` a new transport for `key`; returns the transport's inbox.
    fn attach(&mut self, key: ViewerKey, runner: Runner) -> mpsc::Sender<Bytes> {
        let (host_end, agent_end) = memory_pair();
        runner.connect(host_end);
        let MessageChannel { tx, rx } = agent_end;
        let forwarder = Forwarder(tokio::spawn(forward(key.clone(), rx, self.out.clone())));
        let viewer = ViewerUsb {
            runner,
            to_host: tx.clone(),
            _forwarder: forwarder,
        };
        self.viewers.insert(key, viewer);
        tx
    }

    /// Follows session events: who joins (its user), who leaves (`VIEWER_LEFT`: its claims
    /// are parked when its connection dropped, released otherwise), `ENDED` (every claim of
    /// the session released).
    pub(crate) fn handle_session_event(&mut self, env: &Envelope, event: &v1::SessionEvent) {
        let key = ViewerKey {
            session_id: env.session_id.clone(),
            viewer_id: env.viewer_id,
        };
        match event.kind() {
            Kind::ViewerJoined if !event.user_id.is_empty() && key.viewer_id != 0 => {
                let joined = Joined {
                    owner: Owner::new(&event.user_id),
                    technician: event.technician.clone(),
                };
                self.owners.insert(key, joined);
            }
            Kind::ViewerLeft => self.viewer_left(&key, event.resumable),
            Kind::Ended => self.session_ended(&env.session_id),
            _ => {}
        }
    }

    /// The viewer left: its claims are parked for the retention window when its connection
    /// dropped (`resumable`) and its user is known, else released.
    pub(crate) fn viewer_left(&mut self, key: &ViewerKey, resumable: bool) {
        self.undecided.remove(key);
        let owner = self.owners.remove(key).map(|j| j.owner);
        let Some(viewer) = self.viewers.remove(key) else {
            return;
        };
        let ViewerUsb { runner, .. } = viewer;
        match owner {
            Some(owner) if resumable && runner.owner() == Some(&owner) => {
                tracing::info!(viewer = %key.label(), "viewer dropped; its USB claims wait for a resume");
                self.parking
                    .park(&key.session_id, owner, runner, Instant::now());
            }
            _ => tracing::info!(viewer = %key.label(), "viewer left; its USB claims are released"),
        }
    }

    /// The session ended: the claims of all its viewers are released.
    pub(crate) fn session_ended(&mut self, session_id: &str) {
        self.viewers.retain(|k, _| k.session_id != session_id);
        self.owners.retain(|k, _| k.session_id != session_id);
        self.undecided.retain(|k, _| k.session_id != session_id);
        self.parking.end_session(session_id);
    }

    /// The host switch went off: each host session closes its claims itself, telling its viewer
    /// (CLOSED `shutdown`); nothing waits for a resume any more.
    pub(crate) fn switch_off(&mut self) {
        self.parking.clear();
        self.undecided.clear();
    }

    /// Records a technician's `reach usb attach` report (`attached` / `detached` with its host
    /// name) in the local chain, mirrored to the server as `UsbAudit` KIND_ATTACHED /
    /// KIND_DETACHED. Only from a viewer with a USB session here; over the rate, dropped.
    pub(crate) fn handle_attach_note(&mut self, key: ViewerKey, note: &v1::UsbAttachNote) {
        if !self.viewers.contains_key(&key) {
            tracing::debug!(viewer = %key.label(), "attach note from a viewer without USB dropped");
            return;
        }
        if !self.attach_notes.try_take(Instant::now()) {
            tracing::warn!("attach notes over the rate dropped");
            return;
        }
        let clip = |s: &str| s.chars().take(NOTE_TEXT_MAX).collect::<String>();
        let details = serde_json::json!({
            "action": if note.attached { "attached" } else { "detached" },
            "vendor_id": format!("{:04x}", note.vendor_id & 0xffff),
            "product_id": format!("{:04x}", note.product_id & 0xffff),
            "serial": clip(&note.serial),
            "bus_id": clip(&note.bus_id),
            "viewer": key.label(),
            "claim_id": note.claim_id & 0xffff,
            "technician_host": clip(&note.host_name),
        });
        let actor = format!("viewer:{}", key.label());
        let mirror = super::audit::mirror(key, self.notes.clone());
        match &self.options.audit {
            Some(audit) => {
                if let Err(error) = audit.with_mirror(mirror).append(&actor, details) {
                    tracing::error!(%error, "could not record an attach note locally");
                }
            }
            None => mirror(&actor, &details),
        }
    }

    /// The connection to the server is gone: every claim is released.
    pub(crate) fn release_all(&mut self) {
        if !self.viewers.is_empty() || !self.parking.is_empty() {
            tracing::info!(viewers = self.viewers.len(), "releasing every USB claim");
        }
        self.viewers.clear();
        self.owners.clear();
        self.undecided.clear();
        self.parking.clear();
    }

    /// Reports an ACL that failed its integrity check (once per connection).
    pub(crate) fn acl_problem_note(&self) -> Option<Envelope> {
        let problem = self.options.acl_problem.as_ref()?;
        let body = Body::UsbAudit(v1::UsbAudit {
            kind: v1::usb_audit::Kind::AclIntegrityFailed.into(),
            reason: problem.clone(),
            ..Default::default()
        });
        Some(codec::envelope("", body))
    }
}

/// Wraps each frame of one host session into an envelope addressed to its viewer.
async fn forward(key: ViewerKey, mut rx: mpsc::Receiver<Bytes>, out: mpsc::Sender<Envelope>) {
    while let Some(frame) = rx.recv().await {
        let mut env = codec::envelope(&key.session_id, Body::Usb(v1::UsbFrame { frame }));
        env.viewer_id = key.viewer_id;
        if out.send(env).await.is_err() {
            return;
        }
    }
}
