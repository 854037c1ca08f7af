//! The per-viewer USB host sessions of one agent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use reach_proto::codec;
use reach_proto::v1::{self, Envelope, envelope::Body, session_event::Kind};
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{HostRunner, MessageChannel, memory_pair};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{AUDIT_NOTE_QUEUE, CLAIM_RETENTION, RELAY_FRAME_PAYLOAD, USB_OUT_QUEUE, UsbOptions};

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

/// One viewer's host session, as seen from the connection loop.
struct ViewerUsb {
    /// Frames from the viewer into its host session; dropping it drops the transport, which
    /// closes every claim of the session.
    to_host: mpsc::Sender<Bytes>,
    /// Copies the host session's frames onto the outbound USB queue.
    forwarder: JoinHandle<()>,
}

impl Drop for ViewerUsb {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

/// The agent's USB side: routes viewers' frames to their host sessions.
pub(crate) struct UsbService {
    options: UsbOptions,
    viewers: HashMap<ViewerKey, ViewerUsb>,
    out: mpsc::Sender<Envelope>,
    out_rx: mpsc::Receiver<Envelope>,
    notes: mpsc::Sender<Envelope>,
    notes_rx: mpsc::Receiver<Envelope>,
}

impl UsbService {
    /// A service with empty outgoing queues.
    pub(crate) fn new(options: UsbOptions) -> Self {
        let (out, out_rx) = mpsc::channel(USB_OUT_QUEUE);
        let (notes, notes_rx) = mpsc::channel(AUDIT_NOTE_QUEUE);
        Self {
            options,
            viewers: HashMap::new(),
            out,
            out_rx,
            notes,
            notes_rx,
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

    /// Passes a viewer's frame to its host session, starting one on its first frame. Waits while
    /// the session's inbox is full (the session keeps draining it).
    pub(crate) async fn handle_frame(&mut self, key: ViewerKey, frame: Bytes) {
        if key.session_id.is_empty() || key.viewer_id == 0 {
            return;
        }
        let to_host = match self.viewers.get(&key) {
            Some(v) if !v.to_host.is_closed() => v.to_host.clone(),
            _ => {
                let viewer = self.start(&key);
                let tx = viewer.to_host.clone();
                self.viewers.insert(key, viewer);
                tx
            }
        };
        let _ = to_host.send(frame).await;
    }

    fn start(&self, key: &ViewerKey) -> ViewerUsb {
        let config = HostConfig {
            passthrough: self.options.switch.get(),
            retention: CLAIM_RETENTION,
            max_frame_payload: RELAY_FRAME_PAYLOAD,
            ..HostConfig::default()
        };
        let label = key.label();
        let mut runner = HostRunner::new(
            HostSession::new(config, Instant::now()),
            Arc::clone(&self.options.backend),
            Arc::clone(&self.options.policy),
            &label,
        );
        if let Some(audit) = &self.options.audit {
            let mirror = super::audit::mirror(key.clone(), self.notes.clone());
            runner = runner.with_audit(Arc::new(audit.with_mirror(mirror)));
        }
        let (host_end, agent_end) = memory_pair();
        tracing::info!(viewer = %label, "USB session started");
        tokio::spawn(runner.serve(host_end));
        let MessageChannel { tx, rx } = agent_end;
        ViewerUsb {
            to_host: tx,
            forwarder: tokio::spawn(forward(key.clone(), rx, self.out.clone())),
        }
    }

    /// Releases claims a session event ends: the viewer's on `VIEWER_LEFT`, every viewer's of
    /// the session on `ENDED`.
    pub(crate) fn handle_session_event(&mut self, env: &Envelope, kind: Kind) {
        match kind {
            Kind::ViewerLeft => self.viewer_left(&ViewerKey {
                session_id: env.session_id.clone(),
                viewer_id: env.viewer_id,
            }),
            Kind::Ended => self.session_ended(&env.session_id),
            _ => {}
        }
    }

    /// The viewer left: its claims are released.
    pub(crate) fn viewer_left(&mut self, key: &ViewerKey) {
        if self.viewers.remove(key).is_some() {
            tracing::info!(viewer = %key.label(), "viewer left; its USB claims are released");
        }
    }

    /// The session ended: the claims of all its viewers are released.
    pub(crate) fn session_ended(&mut self, session_id: &str) {
        self.viewers.retain(|k, _| k.session_id != session_id);
    }

    /// The connection to the server is gone (or the switch went off): every claim is released.
    pub(crate) fn release_all(&mut self) {
        if !self.viewers.is_empty() {
            tracing::info!(viewers = self.viewers.len(), "releasing every USB claim");
        }
        self.viewers.clear();
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
