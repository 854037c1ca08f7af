//! Viewer tunnels: a viewer connected to one instance (the edge) is served by the instance
//! holding its session (the home), which runs the whole viewer — authentication, the one
//! access rule, rate limits, audit — as if the viewer had connected there.
//!
//! Subjects, per session and tunnel: `reach.v.<session>.<tunnel>.u.<kind>` (viewer → home)
//! and `.d.<kind>` (home → viewer), with `.uack` and `.dack` carrying credit back
//! ([`reach_proto::bus`]: the kind token says what a payload is, so pieces are slices). Either side ends the tunnel when the other instance stops being live.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use reach_proto::close;
use reach_proto::limits::{AGENT_MAX_MESSAGE, AUTH_MAX_MESSAGE, VIEWER_MAX_MESSAGE};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::Bus;
use super::rpc::{self, Answer, Call};
use crate::relay::budget::SLOW_VIEWER_DEADLINE;
use crate::state::AppState;
use crate::ws::{BoxSink, BoxStream, PreAuth, close_with};
use reach_proto::bus::{self as frames, Acks, Credit, Kind, Piece, Reassembly};

/// How often a receiver acknowledges what it handed on while traffic is light.
const ACK_IDLE: Duration = Duration::from_millis(50);
/// What the edge tells the home when the viewer's connection broke (never sent to a socket:
/// the home's viewer task reads any close but a normal one as a drop it may resume from).
const DROPPED: u16 = 1006;
/// Messages the home side queues for the viewer task before the pump reads them.
const HOME_QUEUE: usize = 64;

/// What the edge asks the home to serve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Opening {
    /// Session the viewer token names.
    pub session_id: String,
    /// This tunnel's id (unique per viewer connection).
    pub tunnel_id: String,
    /// The edge instance.
    pub edge: String,
    /// The viewer's first message (its credential), base64.
    pub first: String,
}

struct Subjects {
    up: String,
    up_ack: String,
    down: String,
    down_ack: String,
}

fn subjects(session: &str, tunnel: &str) -> Subjects {
    let base = format!("reach.v.{session}.{tunnel}");
    Subjects {
        up: format!("{base}.u"),
        up_ack: format!("{base}.uack"),
        down: format!("{base}.d"),
        down_ack: format!("{base}.dack"),
    }
}

/// Every kind of payload under a data prefix.
fn all_kinds(prefix: &str) -> String {
    format!("{prefix}.*")
}

/// Decodes a data payload from its subject's last token.
fn piece_of(msg: async_nats::Message) -> Result<Piece, frames::PieceError> {
    let kind = msg
        .subject
        .rsplit('.')
        .next()
        .and_then(Kind::from_token)
        .ok_or(frames::PieceError::Malformed)?;
    frames::decode(kind, msg.payload)
}

/// The chunk size for this bus.
fn chunk(bus: &Bus) -> usize {
    frames::chunk_for(bus.client().server_info().max_payload)
}

/// Whether `instance` is still live; waits for a change otherwise.
async fn lost(live: &mut watch::Receiver<Arc<HashSet<String>>>, instance: &str) {
    loop {
        if !live.borrow_and_update().contains(instance) {
            return;
        }
        if live.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Returns when this instance starts draining.
async fn drained(draining: &mut watch::Receiver<bool>) {
    loop {
        if *draining.borrow_and_update() {
            return;
        }
        if draining.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Publishes one message under a data prefix, cut into slices of at most `chunk`; returns
/// how many pieces it took (`None`: the bus refused one).
async fn publish_all(bus: &Bus, prefix: &str, message: &Bytes, chunk: usize) -> Option<usize> {
    let pieces = frames::pieces(message, chunk);
    let count = pieces.len();
    for (kind, piece) in pieces {
        let subject = format!("{prefix}.{}", kind.token());
        bus.client().publish(subject, piece).await.ok()?;
    }
    Some(count)
}

/// Publishes a close under a data prefix.
async fn publish_close(bus: &Bus, prefix: &str, code: u16, reason: &str) {
    let subject = format!("{prefix}.{}", Kind::Close.token());
    publish(bus, &subject, frames::close_payload(code, reason)).await;
}

async fn publish(bus: &Bus, subject: &str, payload: Bytes) {
    let _ = bus.client().publish(subject.to_owned(), payload).await;
}

/// Home side: subscribes, then serves the viewer in a task of its own.
pub(super) async fn serve_home(state: &AppState, bus: &Arc<Bus>, o: Opening) -> Answer {
    let failed = |message: &str| Answer::Failed {
        message: message.into(),
    };
    let Ok(first) = base64::engine::general_purpose::STANDARD.decode(&o.first) else {
        return failed("unreadable first message");
    };
    if first.len() > AUTH_MAX_MESSAGE {
        return failed("first message too large");
    }
    bus.saw(&o.edge);
    let s = subjects(&o.session_id, &o.tunnel_id);
    let (Ok(up), Ok(down_acks)) = (
        bus.client().subscribe(all_kinds(&s.up)).await,
        bus.client().subscribe(s.down_ack.clone()).await,
    ) else {
        return failed("could not subscribe");
    };
    let (in_tx, in_rx) = mpsc::channel::<Result<Message, axum::Error>>(HOME_QUEUE);
    let (out_tx, out_rx) = mpsc::channel::<Message>(HOME_QUEUE);
    let _ = in_tx.try_send(Ok(Message::Binary(first.into())));
    let guard = bus.home_opened();
    let held = Arc::clone(&guard);
    let (up_bus, down_bus) = (Arc::clone(bus), Arc::clone(bus));
    let edge = o.edge.clone();
    tokio::spawn(async move {
        home_up(up_bus, up, in_tx, s.up_ack, edge).await;
        drop(held);
    });
    tokio::spawn(async move {
        home_down(down_bus, out_rx, down_acks, s.down, o.edge).await;
        drop(guard);
    });
    let sink: BoxSink = Box::pin(futures_util::sink::unfold(
        out_tx,
        |tx, msg: Message| async move {
            tx.send(msg)
                .await
                .map_err(|_| axum::Error::new("the tunnel closed"))?;
            Ok::<_, axum::Error>(tx)
        },
    ));
    let stream: BoxStream = Box::pin(futures_util::stream::unfold(in_rx, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    }));
    tokio::spawn(crate::ws::viewer::serve_tunneled(
        state.clone(),
        sink,
        stream,
    ));
    Answer::TunnelOpen
}

/// Home side, viewer → session: reassembles, hands on (bounded), acknowledges. Ends the
/// viewer's stream when the edge closes it or stops being live, and ends when the viewer's
/// task has ended.
async fn home_up(
    bus: Arc<Bus>,
    mut up: async_nats::Subscriber,
    in_tx: mpsc::Sender<Result<Message, axum::Error>>,
    ack_subject: String,
    edge: String,
) {
    let mut live = bus.live();
    let mut whole = Reassembly::new(VIEWER_MAX_MESSAGE);
    let mut acks = Acks::default();
    let mut idle = tokio::time::interval(ACK_IDLE);
    loop {
        tokio::select! {
            msg = up.next() => {
                let Some(msg) = msg else { break };
                if let Some(total) = acks.took_piece() {
                    publish(&bus, &ack_subject, frames::ack(total)).await;
                }
                let item = match piece_of(msg) {
                    Ok(Piece::Data { last, bytes }) => match whole.push(last, bytes) {
                        Ok(Some(full)) => Ok(Message::Binary(full)),
                        Ok(None) => continue,
                        Err(e) => Err(axum::Error::new(e)),
                    },
                    Ok(Piece::Close { code, reason }) => {
                        let frame = CloseFrame { code, reason: reason.into() };
                        let _ = in_tx.send(Ok(Message::Close(Some(frame)))).await;
                        break;
                    }
                    Err(e) => Err(axum::Error::new(e)),
                };
                let len = match &item {
                    Ok(Message::Binary(b)) => b.len(),
                    _ => 0,
                };
                let broken = item.is_err();
                if in_tx.send(item).await.is_err() || broken {
                    break;
                }
                if let Some(total) = acks.handed_on(len) {
                    publish(&bus, &ack_subject, frames::ack(total)).await;
                }
            }
            _ = idle.tick() => {
                if let Some(total) = acks.pending() {
                    publish(&bus, &ack_subject, frames::ack(total)).await;
                }
            }
            () = lost(&mut live, &edge) => break,
            () = in_tx.closed() => break,
        }
    }
}

/// Home side, session → viewer: cuts, sends under credit. The viewer task's close (or its
/// end) closes the edge's socket.
async fn home_down(
    bus: Arc<Bus>,
    mut out_rx: mpsc::Receiver<Message>,
    mut acks: async_nats::Subscriber,
    subject: String,
    edge: String,
) {
    let mut live = bus.live();
    let mut credit = Credit::default();
    let chunk = chunk(&bus);
    loop {
        tokio::select! {
            biased;
            ack = acks.next() => match ack.and_then(|a| frames::decode_ack(&a.payload)) {
                Some(total) => credit.acked(total),
                None => break,
            },
            msg = out_rx.recv(), if credit.open() => match msg {
                Some(Message::Binary(b)) => {
                    let Some(pieces) = publish_all(&bus, &subject, &b, chunk).await else {
                        break;
                    };
                    credit.sent(b.len(), pieces);
                }
                Some(Message::Close(frame)) => {
                    let (code, reason) = frame.map_or((close::NORMAL, String::new()), |f| {
                        (f.code, f.reason.to_string())
                    });
                    publish_close(&bus, &subject, code, &reason).await;
                    break;
                }
                Some(_) => {}
                None => {
                    publish_close(&bus, &subject, close::NORMAL, "").await;
                    break;
                }
            },
            () = lost(&mut live, &edge) => break,
        }
    }
}

/// The edge's view of one tunnel.
struct Edge {
    whole: Reassembly,
    acks: Acks,
    credit: Credit,
    chunk: usize,
    pre_auth: Option<PreAuth>,
}

/// Edge side: asks `home` to serve the viewer whose `first` message was read here, then
/// relays the socket both ways until either end closes or `home` stops being live.
pub(crate) async fn serve_edge(
    bus: &Arc<Bus>,
    home: &str,
    session_id: &str,
    first: Bytes,
    mut sink: BoxSink,
    mut stream: BoxStream,
    pre_auth: Option<PreAuth>,
) {
    let tunnel_id = crate::db::new_id("tun");
    let s = subjects(session_id, &tunnel_id);
    let (Ok(mut down), Ok(mut up_acks)) = (
        bus.client().subscribe(all_kinds(&s.down)).await,
        bus.client().subscribe(s.up_ack.clone()).await,
    ) else {
        return close_with(&mut sink, close::GOING_AWAY, UNREACHABLE).await;
    };
    let opening = Opening {
        session_id: session_id.to_owned(),
        tunnel_id,
        edge: bus.instance_id().to_owned(),
        first: base64::engine::general_purpose::STANDARD.encode(&first),
    };
    if !matches!(
        rpc::call(bus, home, &Call::Tunnel(opening)).await,
        Ok(Answer::TunnelOpen)
    ) {
        return close_with(&mut sink, close::GOING_AWAY, UNREACHABLE).await;
    }
    let _edges = bus.edge_opened();
    let mut edge = Edge {
        whole: Reassembly::new(AGENT_MAX_MESSAGE),
        acks: Acks::default(),
        credit: Credit::default(),
        chunk: chunk(bus),
        pre_auth,
    };
    let mut live = bus.live();
    let mut draining = bus.draining();
    let mut idle = tokio::time::interval(ACK_IDLE);
    loop {
        tokio::select! {
            biased;
            msg = down.next() => {
                let Some(msg) = msg else {
                    return close_with(&mut sink, close::GOING_AWAY, UNREACHABLE).await;
                };
                if let Some((code, reason)) = to_viewer(bus, &s, &mut edge, &mut sink, msg).await {
                    return close_with(&mut sink, code, &reason).await;
                }
            }
            ack = up_acks.next() => {
                if let Some(total) = ack.and_then(|a| frames::decode_ack(&a.payload)) {
                    edge.credit.acked(total);
                }
            }
            msg = stream.next(), if edge.credit.open() => {
                if !from_viewer(bus, &s.up, &mut edge, msg).await {
                    return;
                }
            }
            _ = idle.tick() => {
                if let Some(total) = edge.acks.pending() {
                    publish(bus, &s.down_ack, frames::ack(total)).await;
                }
            }
            () = lost(&mut live, home) => {
                return close_with(&mut sink, close::GOING_AWAY, HOME_LOST).await;
            }
            () = drained(&mut draining) => {
                publish_close(bus, &s.up, close::GOING_AWAY, "").await;
                return close_with(&mut sink, close::GOING_AWAY, DRAINING).await;
            }
        }
    }
}

const UNREACHABLE: &str = "the session's server did not answer; rejoin";
const HOME_LOST: &str = "the session's server went away; rejoin";
const DRAINING: &str = "the server is restarting; reconnect";

/// One payload from the home: a message for the socket (acknowledged once written) or a close.
/// Returns the close to send, if the tunnel ends.
async fn to_viewer(
    bus: &Bus,
    s: &Subjects,
    edge: &mut Edge,
    sink: &mut BoxSink,
    msg: async_nats::Message,
) -> Option<(u16, String)> {
    if let Some(total) = edge.acks.took_piece() {
        publish(bus, &s.down_ack, frames::ack(total)).await;
    }
    let (last, bytes) = match piece_of(msg) {
        Ok(Piece::Data { last, bytes }) => (last, bytes),
        Ok(Piece::Close { code, reason }) => return Some((code, reason)),
        Err(_) => return Some((close::GOING_AWAY, UNREACHABLE.into())),
    };
    let full = match edge.whole.push(last, bytes) {
        Ok(Some(full)) => full,
        Ok(None) => return None,
        Err(_) => return Some((close::POLICY, "message too large".into())),
    };
    if let Some(p) = edge.pre_auth.take() {
        p.done();
    }
    let len = full.len();
    let sent = tokio::time::timeout(SLOW_VIEWER_DEADLINE, sink.send(Message::Binary(full))).await;
    if !matches!(sent, Ok(Ok(()))) {
        publish_close(bus, &s.up, DROPPED, "").await;
        return Some((close::POLICY, "the viewer fell too far behind".into()));
    }
    if let Some(total) = edge.acks.handed_on(len) {
        publish(bus, &s.down_ack, frames::ack(total)).await;
    }
    None
}

/// One socket read: forwarded to the home. `false` when the viewer is gone (the home heard).
async fn from_viewer(
    bus: &Bus,
    up: &str,
    edge: &mut Edge,
    msg: Option<Result<Message, axum::Error>>,
) -> bool {
    match msg {
        Some(Ok(Message::Binary(b))) => {
            let sent = publish_all(bus, up, &b, edge.chunk).await;
            edge.credit.sent(b.len(), sent.unwrap_or(0));
            sent.is_some()
        }
        Some(Ok(Message::Close(frame))) => {
            let (code, reason) =
                frame.map_or((DROPPED, String::new()), |f| (f.code, f.reason.to_string()));
            publish_close(bus, up, code, &reason).await;
            false
        }
        Some(Ok(_)) => true,
        Some(Err(_)) | None => {
            publish_close(bus, up, DROPPED, "").await;
            false
        }
    }
}
