//! A joined viewer run by a task: the socket is shared by session messages and the USB channel.
//!
//! [`ViewerConnection::into_live`] hands the socket to one task. USB frames (`UsbFrame`
//! envelopes) travel on a [`MessageChannel`] that `reach_usb`'s [`UsbClient`] drives; every other
//! message arrives on [`LiveViewer::recv`]. Outgoing USB frames are written before other messages
//! and several at a time per flush.
//!
//! When the host's claims are gone for good — the session ended, the agent went offline, the server
//! closed the viewer (revoked, refused), or the viewer left — the client attached to this viewer
//! ([`LiveViewer::usb_client`], [`LiveViewer::resume_usb`]) is shut down: its claims close
//! (`shutdown`) and pending transfers fail at once. A dropped connection keeps them for a resume.
//!
//! A connection that goes silent (a network path that swallows packets, so neither side is told)
//! counts as dropped too: the task pings the server every [`KEEPALIVE`] and ends the connection
//! as lost (1006) when nothing at all arrived for [`SILENCE`] — well inside a host's 30 s
//! retention, so the claims can still be resumed on a new connection.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reach_proto::codec;
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::policy::ViewerAccess;
use reach_proto::v1::{self, Envelope, envelope::Body, session_event::Kind};
use reach_usb::UsbError;
use reach_usb::client::UsbClient;
use reach_usb::net::{CHANNEL_CAPACITY, MessageChannel};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use std::time::Duration;

use super::ViewerConnection;
use crate::ClientError;
use crate::ws::{self, Incoming, Ws};

/// Session messages queued for [`LiveViewer::recv`]; when nobody reads them, newer ones are
/// dropped (USB never is).
pub const EVENT_QUEUE: usize = 1024;
/// USB frames written per flush, at most.
const USB_BATCH: usize = 64;

#[derive(Debug)]
enum Outgoing {
    Body(Body),
    Leave,
}

/// A viewer whose socket is served by a task. Dropping it leaves the session.
#[derive(Debug)]
pub struct LiveViewer {
    /// Session joined.
    pub session_id: String,
    /// Access the server granted.
    pub access: ViewerAccess,
    /// This viewer's id in the session.
    pub viewer_id: u64,
    events: mpsc::Receiver<Incoming>,
    outgoing: mpsc::Sender<Outgoing>,
    usb: Option<MessageChannel>,
    client: UsbSlot,
    task: JoinHandle<()>,
}

/// The USB client riding this viewer, shut down when the host's claims are gone for good, and
/// this viewer's USB transport (a client that moved on to another viewer is left alone).
#[derive(Clone)]
struct UsbSlot(Arc<Mutex<Option<UsbClient>>>, mpsc::Sender<Bytes>);

impl std::fmt::Debug for UsbSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsbSlot")
    }
}

impl UsbSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<UsbClient>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Closes the claims of the client in `slot`, if any (from a task: the client may be waiting
/// for the socket task that calls this).
fn shut_down(slot: &UsbSlot) {
    let client = slot.lock().take();
    if let Some(client) = client {
        let transport = slot.1.clone();
        tokio::spawn(async move { client.shutdown_transport(&transport).await });
    }
}

fn attach(slot: &UsbSlot, client: &UsbClient) {
    *slot.lock() = Some(client.clone());
}

impl Drop for LiveViewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ViewerConnection {
    /// Hands the socket to a task that splits USB from the other messages.
    pub fn into_live(self) -> LiveViewer {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (outgoing, outgoing_rx) = mpsc::channel(64);
        let (to_client, client_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (client_tx, from_client) = mpsc::channel(CHANNEL_CAPACITY);
        let client = UsbSlot(Arc::default(), client_tx.clone());
        let pump = Pump {
            client: client.clone(),
            socket: self.socket,
            session_id: self.session_id.clone(),
            events: events_tx,
            to_client,
            from_client,
            outgoing: outgoing_rx,
        };
        LiveViewer {
            session_id: self.session_id,
            access: self.access,
            viewer_id: self.viewer_id,
            events,
            outgoing,
            usb: Some(MessageChannel {
                tx: client_tx,
                rx: client_rx,
            }),
            client,
            task: tokio::spawn(pump.run()),
        }
    }
}

/// Sends session messages on a [`LiveViewer`]'s socket from elsewhere (cloneable).
#[derive(Debug, Clone)]
pub struct ViewerSender(mpsc::Sender<Outgoing>);

impl ViewerSender {
    /// Queues `body` without waiting; `false` when the queue is full or the socket task ended.
    pub fn try_send(&self, body: Body) -> bool {
        self.0.try_send(Outgoing::Body(body)).is_ok()
    }
}

impl LiveViewer {
    /// A sender for this viewer's socket (it stops working when the viewer is dropped).
    pub fn sender(&self) -> ViewerSender {
        ViewerSender(self.outgoing.clone())
    }

    /// The session's USB channel (once): give it to [`UsbClient::connect`].
    pub fn take_usb_channel(&mut self) -> Option<MessageChannel> {
        self.usb.take()
    }

    /// A USB client over this session (once).
    pub fn usb_client(&mut self) -> Option<UsbClient> {
        let client = self.take_usb_channel().map(UsbClient::connect)?;
        attach(&self.client, &client);
        Some(client)
    }

    /// Moves `client`'s claims onto this viewer's USB channel (once): after the technician's
    /// previous connection to the same session dropped, this connection — of the same user,
    /// within the host's retention window — RESUMEs every claim. Transfers pending across the
    /// drop complete; none is executed twice.
    ///
    /// # Errors
    /// [`UsbError::Closed`] when the channel was taken already; the first claim the host did
    /// not resume ([`UsbError`] with `resume_rejected`: the window passed, or another user).
    pub async fn resume_usb(&mut self, client: &UsbClient) -> Result<(), UsbError> {
        let channel = self
            .take_usb_channel()
            .ok_or_else(|| UsbError::Closed("this viewer's USB channel is in use".into()))?;
        attach(&self.client, client);
        client.resume(channel).await
    }

    /// Sends a message body to the session.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the socket task has ended.
    pub async fn send(&self, body: Body) -> Result<(), ClientError> {
        self.outgoing
            .send(Outgoing::Body(body))
            .await
            .map_err(|_| gone())
    }

    /// The next non-USB message, or the close (then `None` after it).
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.events.recv().await
    }

    /// Leaves the session (closes the socket normally) and waits for the task to end.
    pub async fn leave(mut self) {
        let _ = self.outgoing.send(Outgoing::Leave).await;
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
        shut_down(&self.client);
    }
}

/// Whether the server closed the viewer in a way that released its claims on the host (a
/// dropped connection, 1006, keeps them for a resume).
pub fn server_released(code: u16) -> bool {
    use reach_proto::close;
    matches!(
        code,
        close::NORMAL
            | close::REVOKED
            | close::SESSION_ENDED
            | close::FORBIDDEN
            | close::UNAUTHORIZED
            | close::CONSENT_DENIED
    )
}

fn gone() -> ClientError {
    ClientError::Closed {
        code: reach_proto::close::GOING_AWAY,
        reason: "viewer connection ended".into(),
    }
}

/// How often an otherwise quiet viewer connection pings the server.
pub const KEEPALIVE: Duration = Duration::from_secs(4);
/// Silence (no message, no pong) after which the connection counts as lost.
pub const SILENCE: Duration = Duration::from_secs(12);

struct Pump {
    client: UsbSlot,
    socket: Ws,
    session_id: String,
    events: mpsc::Sender<Incoming>,
    to_client: mpsc::Sender<Bytes>,
    from_client: mpsc::Receiver<Bytes>,
    outgoing: mpsc::Receiver<Outgoing>,
}

impl Pump {
    async fn run(mut self) {
        if let Err(error) = self.serve().await {
            tracing::debug!(%error, "viewer connection ended");
            let closed = Incoming::Closed {
                code: 1006,
                reason: error.to_string(),
            };
            let _ = self.events.try_send(closed);
        }
    }

    async fn serve(&mut self) -> Result<(), ClientError> {
        let heard = ws::Heard::new();
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                Some(frame) = self.from_client.recv() => self.send_usb(frame).await?,
                incoming = ws::recv_heard(&mut self.socket, AGENT_MAX_MESSAGE, &heard) => {
                    if !self.deliver(incoming?).await {
                        return Ok(());
                    }
                }
                _ = keepalive.tick() => {
                    if heard.silent_for() >= SILENCE {
                        return Err(ClientError::Closed {
                            code: 1006,
                            reason: format!("the server sent nothing for {} s", SILENCE.as_secs()),
                        });
                    }
                    ws::ping(&mut self.socket).await?;
                }
                out = self.outgoing.recv() => match out {
                    Some(Outgoing::Body(body)) => {
                        ws::send(&mut self.socket, &codec::envelope(&self.session_id, body)).await?;
                    }
                    Some(Outgoing::Leave) | None => {
                        ws::close_with(&mut self.socket, reach_proto::close::NORMAL, "viewer left").await;
                        return Ok(());
                    }
                },
            }
        }
    }

    fn usb_envelope(&self, frame: Bytes) -> Envelope {
        codec::envelope(&self.session_id, Body::Usb(v1::UsbFrame { frame }))
    }

    async fn send_usb(&mut self, first: Bytes) -> Result<(), ClientError> {
        let env = self.usb_envelope(first);
        ws::feed(&mut self.socket, &env).await?;
        for _ in 0..USB_BATCH {
            let Ok(frame) = self.from_client.try_recv() else {
                break;
            };
            let env = self.usb_envelope(frame);
            ws::feed(&mut self.socket, &env).await?;
        }
        ws::flush(&mut self.socket).await
    }

    /// Routes one arrival; `false` once the socket closed.
    async fn deliver(&mut self, incoming: Incoming) -> bool {
        match incoming {
            Incoming::Envelope(Envelope {
                body: Some(Body::Usb(frame)),
                ..
            }) => {
                // Waits while the USB client is behind: the protocol's credit bounds this.
                let _ = self.to_client.send(frame.frame).await;
                true
            }
            Incoming::Envelope(env) => {
                if let Some(Body::SessionEvent(event)) = &env.body
                    && matches!(event.kind(), Kind::Ended | Kind::AgentOffline)
                {
                    shut_down(&self.client);
                }
                if self.events.try_send(Incoming::Envelope(env)).is_err() {
                    tracing::debug!("viewer event dropped: nobody reads them");
                }
                true
            }
            closed @ Incoming::Closed { .. } => {
                if let Incoming::Closed { code, .. } = &closed
                    && server_released(*code)
                {
                    shut_down(&self.client);
                }
                let _ = self.events.try_send(closed);
                false
            }
        }
    }
}
