//! `/ws/agent`: authenticates an agent by key or support code, then relays its traffic.
//!
//! A key binds the connection to the key's machine, whatever the agent claims. A support
//! code is consumed atomically and creates an attended machine and session. Login and
//! viewer tokens are not agent credentials and are refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use reach_proto::access::{HostUsb, Scope, ViewerAccess};
use reach_proto::agent_key::AgentKey;
use reach_proto::close;
use reach_proto::codec::{self, DecodeError};
use reach_proto::limits::{AGENT_MAX_MESSAGE, AUTH_MAX_MESSAGE};
use reach_proto::policy::{AgentVerdict, judge_agent_message};
use reach_proto::v1::{self, agent_auth::Credential, envelope::Body};
use serde_json::json;
use tracing::Instrument as _;

use super::{
    FORWARD_TIMEOUT, PreAuth, Refusal, SOCKET_QUEUE, Sink, Stream, close_with, read_first,
    usb_audit,
};
use crate::console_events::{ConsoleEvent, ConsoleEventKind};
use crate::http::ClientIp;
use crate::relay::budget::{Offer, ROOM_WAIT, ViewerBudget};
use crate::relay::hub::{AgentLink, Outbound, Tx};
use crate::relay::lifecycle::{self, Opening};
use crate::relay::redeem::{self, RedeemError, Redemption};
use crate::relay::store::credentials::{self, CodeRow};
use crate::relay::store::machines::{self, MachineFields};
use crate::state::AppState;
use reach_proto::rate::TokenBucket;

/// Who the agent turned out to be.
#[derive(Debug)]
struct Bound {
    machine_id: String,
    tenant_id: String,
    key_id: Option<String>,
    code: Option<CodeRow>,
    /// USB state from the agent's hello.
    usb: HostUsb,
}

/// The USB state an agent reports: backend working, switch on.
fn host_usb(caps: Option<&v1::Capabilities>, status_enabled: bool) -> HostUsb {
    caps.map_or_else(HostUsb::default, |c| HostUsb {
        supported: c.supports_usb,
        enabled: c.usb_enabled || status_enabled,
    })
}

/// Upgrade handler with the agent frame cap (4 MiB); until it authenticates the socket may
/// read only [`super::PRE_AUTH_READ_BUDGET`] bytes, and an IP holds at most
/// [`crate::conn::MAX_UNAUTHENTICATED_SOCKETS_PER_IP`] such sockets.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin_ok = super::origin_allowed(&headers, state.config.public_url.as_deref());
    let Some(pre_auth) = PreAuth::begin(&state, ip, peer) else {
        return super::too_many_sockets(&state, "agent_socket_unauthenticated");
    };
    ws.max_message_size(AGENT_MAX_MESSAGE)
        .max_frame_size(AGENT_MAX_MESSAGE)
        .read_buffer_size(super::READ_BUFFER)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            super::own_task(run(state, sink, stream, ip, origin_ok, pre_auth))
        })
}

async fn run(
    state: AppState,
    mut sink: Sink,
    mut stream: Stream,
    ip: IpAddr,
    origin_ok: bool,
    pre_auth: PreAuth,
) {
    // The task keeps the size of its largest step for its whole life: everything but the
    // serve loop runs boxed, so an idle agent holds little more than its sockets.
    let start = Box::pin(start(
        &state,
        &mut sink,
        &mut stream,
        ip,
        origin_ok,
        pre_auth,
    ));
    let Some(Started {
        bound,
        conn_id,
        rx,
        serving,
    }) = start.await
    else {
        return;
    };
    if serving {
        let span = tracing::info_span!("agent", machine = %bound.machine_id, conn = conn_id);
        serve(&state, &bound, conn_id, &mut sink, &mut stream, rx)
            .instrument(span)
            .await;
    }
    Box::pin(disconnected(&state, &bound, conn_id)).await;
}

/// An authenticated, registered agent connection.
struct Started {
    bound: Bound,
    conn_id: u64,
    rx: crate::relay::hub::Rx,
    /// `auth_ok` went out: serve the socket (else it is already closed or broken).
    serving: bool,
}

/// Authenticates, registers the connection and answers `auth_ok`; `None` when the socket
/// was refused before it was registered.
async fn start(
    state: &AppState,
    sink: &mut Sink,
    stream: &mut Stream,
    ip: IpAddr,
    origin_ok: bool,
    pre_auth: PreAuth,
) -> Option<Started> {
    if !origin_ok {
        close_with(sink, close::BAD_ORIGIN, "origin not allowed").await;
        return None;
    }
    let bound = match authenticate(state, stream, ip).await {
        Ok(b) => b,
        Err(r) => {
            close_with(sink, r.code, r.reason).await;
            return None;
        }
    };
    pre_auth.done();
    let (tx, rx) = crate::relay::queue::channel(SOCKET_QUEUE);
    let conn_id = state.relay.next_id();
    let link = AgentLink {
        conn_id,
        tenant_id: bound.tenant_id.clone(),
        key_id: bound.key_id.clone(),
        usb: bound.usb,
        tx,
    };
    let replaced = state.relay.register_agent(&bound.machine_id, link);
    crate::cluster::agent_here(state, &bound.machine_id, conn_id).await;
    if let Some(old) = replaced {
        let _ = old.tx.try_send(Outbound::Close(
            close::REPLACED,
            "replaced by a new connection",
        ));
    }
    state.notify(
        ConsoleEvent::new(&bound.tenant_id, ConsoleEventKind::MachineOnline)
            .machine(&bound.machine_id),
    );
    let session_id = match &bound.code {
        Some(code) => open_attended(state, &bound, code).await,
        None => Ok(String::new()),
    };
    let serving = match session_id {
        Ok(session_id) => send_auth_ok(sink, &bound.machine_id, &session_id).await,
        Err(err) => {
            tracing::error!(error = %err, "could not open the attended session");
            close_with(sink, close::GOING_AWAY, "server error").await;
            false
        }
    };
    Some(Started {
        bound,
        conn_id,
        rx,
        serving,
    })
}

async fn send_auth_ok(sink: &mut Sink, machine_id: &str, session_id: &str) -> bool {
    let ok = Body::AuthOk(v1::AuthOk {
        machine_id: machine_id.to_owned(),
        session_id: session_id.to_owned(),
        ..Default::default()
    });
    let bytes = codec::encode(&codec::envelope(session_id, ok));
    sink.send(Message::Binary(bytes.into())).await.is_ok()
}

/// Reads `AgentAuth` and `AgentHello` and checks the credential.
async fn authenticate(state: &AppState, stream: &mut Stream, ip: IpAddr) -> Result<Bound, Refusal> {
    let refuse = |reason| Refusal::new(close::UNAUTHORIZED, reason);
    let first = read_first(stream, AUTH_MAX_MESSAGE).await?;
    let Some(Body::AgentAuth(auth)) = first.body else {
        return Err(refuse("first message must be agent_auth"));
    };
    let mut bound = match auth.credential {
        Some(Credential::AgentKey(key)) => by_key(state, &key).await?,
        Some(Credential::SupportCode(code)) => by_code(state, &code, ip).await?,
        None => return Err(refuse("agent_auth carries no credential")),
    };
    let suspended = crate::tenants::is_suspended(&state.db, &bound.tenant_id)
        .await
        .map_err(|_| Refusal::new(close::GOING_AWAY, "server error"))?;
    if suspended {
        return Err(refuse("the organisation is suspended"));
    }
    let hello = read_first(stream, AUTH_MAX_MESSAGE).await?;
    let Some(Body::AgentHello(hello)) = hello.body else {
        return Err(Refusal::new(
            close::POLICY,
            "second message must be agent_hello",
        ));
    };
    if let Err(err) = machines::record_hello(&state.db, &bound.machine_id, &hello).await {
        tracing::warn!(error = %err, "could not store the agent hello");
    }
    bound.usb = host_usb(hello.capabilities.as_ref(), false);
    Ok(bound)
}

async fn by_key(state: &AppState, key: &str) -> Result<Bound, Refusal> {
    let refused = Refusal::new(
        close::UNAUTHORIZED,
        "unknown, revoked or malformed agent key",
    );
    let key = AgentKey::parse(key).map_err(|_| refused)?;
    let binding = credentials::authenticate_key(&state.db, &key)
        .await
        .map_err(|_| Refusal::new(close::GOING_AWAY, "server error"))?
        .ok_or(refused)?;
    Ok(Bound {
        machine_id: binding.machine_id,
        tenant_id: binding.tenant_id,
        key_id: Some(binding.key_id),
        code: None,
        usb: HostUsb::default(),
    })
}

/// Consumes a support code (shared brute-force counter with `/validate`) and creates the
/// attended machine the session will run on.
async fn by_code(state: &AppState, code: &str, ip: IpAddr) -> Result<Bound, Refusal> {
    let server_error = |_| Refusal::new(close::GOING_AWAY, "server error");
    let row = redeem::redeem(state, ip, code, Redemption::Consume)
        .await
        .map_err(|e| match e {
            RedeemError::LockedOut(_) => {
                Refusal::new(close::UNAUTHORIZED, "too many wrong codes; try again later")
            }
            RedeemError::Unknown => {
                Refusal::new(close::UNAUTHORIZED, "unknown, expired or used support code")
            }
            RedeemError::Database(_) => Refusal::new(close::GOING_AWAY, "server error"),
        })?;
    let fields = MachineFields {
        name: format!("Attended session ({})", row.technician),
        ..MachineFields::default()
    };
    let machine = machines::create(&state.db, &row.tenant_id, &fields, true)
        .await
        .map_err(server_error)?;
    let details = json!({"code_id": row.id, "machine_id": machine.id});
    let _ = state
        .audit(
            &row.tenant_id,
            "agent:attended",
            "support_code_consumed",
            details,
        )
        .await;
    Ok(Bound {
        machine_id: machine.id,
        tenant_id: row.tenant_id.clone(),
        key_id: None,
        code: Some(row),
        usb: HostUsb::default(),
    })
}

async fn open_attended(
    state: &AppState,
    bound: &Bound,
    code: &CodeRow,
) -> Result<String, sqlx::Error> {
    let access = ViewerAccess::from_name(&code.access).unwrap_or(ViewerAccess::ViewOnly);
    let opening = Opening {
        tenant_id: &bound.tenant_id,
        machine_id: &bound.machine_id,
        attended: true,
        created_by: &code.created_by,
        technician: &code.technician,
        scope: Scope {
            access,
            usb: code.usb,
        },
        consent_required: true,
    };
    let id = lifecycle::open(state, &opening).await?;
    credentials::link_code_session(&state.db, &code.id, &id).await?;
    state.notify(
        ConsoleEvent::new(&bound.tenant_id, ConsoleEventKind::CodeUsed)
            .code(&code.id)
            .session(&id)
            .machine(&bound.machine_id),
    );
    Ok(id)
}

async fn serve(
    state: &AppState,
    bound: &Bound,
    conn_id: u64,
    sink: &mut Sink,
    stream: &mut Stream,
    mut rx: crate::relay::hub::Rx,
) {
    let mut notes = usb_audit::bucket();
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if let Err(r) = Box::pin(on_frame(state, bound, conn_id, &mut notes, b)).await {
                        return close_with(sink, r.code, r.reason).await;
                    }
                }
                Some(Ok(Message::Close(_))) | None => return,
                Some(Ok(_)) => {}
                Some(Err(_)) => {
                    return close_with(sink, close::POLICY, "message too large or malformed").await;
                }
            },
            out = rx.recv() => match out {
                Some(Outbound::Frame(b) | Outbound::Video(b)) => match Box::pin(super::write_batch(sink, b, &mut rx)).await {
                    Ok(None) => {}
                    Ok(Some((code, reason))) => return close_with(sink, code, reason).await,
                    Err(()) => return,
                },
                Some(Outbound::Close(code, reason)) => return close_with(sink, code, reason).await,
                None => return,
            },
        }
    }
}

/// One agent message: handled here, relayed through the chokepoint, or dropped.
async fn on_frame(
    state: &AppState,
    bound: &Bound,
    conn_id: u64,
    notes: &mut TokenBucket,
    bytes: Bytes,
) -> Result<(), Refusal> {
    let env = match codec::decode_bytes(bytes.clone(), AGENT_MAX_MESSAGE) {
        Ok(env) => env,
        Err(DecodeError::UnknownBody) => return Ok(()),
        Err(_) => return Err(Refusal::new(close::POLICY, "malformed message")),
    };
    let Some(body) = &env.body else { return Ok(()) };
    match judge_agent_message(body) {
        AgentVerdict::Drop => Ok(()),
        AgentVerdict::ForServer => {
            if let Body::UsbAudit(note) = body {
                let from = usb_audit::Reporter {
                    tenant_id: &bound.tenant_id,
                    machine_id: &bound.machine_id,
                };
                Box::pin(usb_audit::record(state, &from, notes, env.viewer_id, note)).await;
                return Ok(());
            }
            Box::pin(for_server(state, bound, conn_id, &env.session_id, body)).await;
            Ok(())
        }
        AgentVerdict::ToViewers => {
            let targets = state.relay.route_from_agent(
                &bound.machine_id,
                conn_id,
                &env.session_id,
                env.viewer_id,
            );
            match body {
                Body::VideoFrame(f) => {
                    offer_video(state, bound, &env.session_id, &targets, &bytes, f.keyframe).await;
                }
                _ => {
                    for (tx, _) in targets {
                        let _ = tx
                            .send_timeout(Outbound::Frame(bytes.clone()), FORWARD_TIMEOUT)
                            .await;
                    }
                }
            }
            Ok(())
        }
    }
}

/// Queues a video frame for each viewer within its byte budget. A full queue gets up to
/// [`ROOM_WAIT`] to drain; then that viewer skips frames to the next keyframe, which is asked
/// for once it has room, and frames for it no longer wait.
async fn offer_video(
    state: &AppState,
    bound: &Bound,
    session_id: &str,
    targets: &[(Tx, Arc<ViewerBudget>)],
    bytes: &Bytes,
    keyframe: bool,
) {
    let mut ask_keyframe = false;
    for (tx, budget) in targets {
        match offer_one(tx, budget, bytes, keyframe).await {
            Offer::Skip { ask_keyframe: ask } => {
                state.metrics.rate_limited("viewer_video_skipped");
                ask_keyframe |= ask;
            }
            Offer::Queue | Offer::Full => {}
        }
    }
    if ask_keyframe && let Some(agent) = state.relay.agent_tx(&bound.machine_id) {
        let request = Body::KeyframeRequest(v1::KeyframeRequest {});
        let frame = codec::encode(&codec::envelope(session_id, request));
        let _ = agent.try_send(Outbound::Frame(Bytes::from(frame)));
    }
}

/// One viewer: queue the frame, waiting up to [`ROOM_WAIT`] for room, or skip it.
async fn offer_one(tx: &Tx, budget: &ViewerBudget, bytes: &Bytes, keyframe: bool) -> Offer {
    let deadline = tokio::time::Instant::now() + ROOM_WAIT;
    loop {
        let room = budget.room();
        tokio::pin!(room);
        room.as_mut().enable();
        match budget.offer_video(bytes.len(), keyframe, Instant::now()) {
            Offer::Queue => {
                let frame = Outbound::Video(bytes.clone());
                let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                if tx.send_timeout(frame, wait).await.is_err() {
                    budget.unqueue(bytes.len(), Instant::now());
                    return Offer::Skip {
                        ask_keyframe: false,
                    };
                }
                return Offer::Queue;
            }
            Offer::Full => {
                if tokio::time::timeout_at(deadline, room).await.is_err() {
                    budget.give_up(Instant::now());
                    return Offer::Skip {
                        ask_keyframe: false,
                    };
                }
            }
            skip @ Offer::Skip { .. } => return skip,
        }
    }
}

async fn for_server(state: &AppState, bound: &Bound, conn_id: u64, session_id: &str, body: &Body) {
    match body {
        Body::ConsentResponse(r) => {
            let change = state.relay.consent_answer(
                session_id,
                &bound.machine_id,
                r.granted,
                answered_scope(r),
                Instant::now(),
            );
            if let Err(err) =
                lifecycle::apply_consent(state, &bound.tenant_id, session_id, change).await
            {
                tracing::warn!(error = %err, "could not record a consent answer");
            }
        }
        Body::AgentHello(hello) => {
            let _ = machines::record_hello(&state.db, &bound.machine_id, hello).await;
            let usb = host_usb(hello.capabilities.as_ref(), false);
            state.relay.set_agent_usb(&bound.machine_id, conn_id, usb);
        }
        Body::AgentStatus(status) => {
            let _ = machines::touch(&state.db, &bound.machine_id).await;
            let usb = host_usb(status.capabilities.as_ref(), status.usb_enabled);
            state.relay.set_agent_usb(&bound.machine_id, conn_id, usb);
        }
        Body::SessionEvent(event) if event.kind() == v1::session_event::Kind::Ended => {
            stopped_at_machine(state, bound, session_id).await;
        }
        _ => {}
    }
}

/// The person at the machine pressed Stop: their agent ends one of its own sessions (never
/// another machine's), as `agent:<machine id>` with reason `stopped_at_machine`.
async fn stopped_at_machine(state: &AppState, bound: &Bound, session_id: &str) {
    if state.relay.session_machine(session_id).as_deref() != Some(bound.machine_id.as_str()) {
        return;
    }
    let actor = format!("agent:{}", bound.machine_id);
    let ended = lifecycle::end(
        state,
        &bound.tenant_id,
        session_id,
        &actor,
        "stopped_at_machine",
        close::NORMAL,
    )
    .await;
    if let Err(err) = ended {
        tracing::warn!(error = %err, "could not end a session stopped at the machine");
    }
}

/// The scope the person at the machine allowed, when the agent said (an older agent's
/// plain yes means what was asked; the hub never lets an answer widen the question).
fn answered_scope(r: &v1::ConsentResponse) -> Option<Scope> {
    let access = ViewerAccess::from_wire(r.access());
    if access.is_none() && r.usb.is_none() {
        return None;
    }
    Some(Scope {
        access: access.unwrap_or(ViewerAccess::Control),
        usb: r.usb.unwrap_or(true),
    })
}

/// The socket is gone: sessions that cannot go on are ended.
async fn disconnected(state: &AppState, bound: &Bound, conn_id: u64) {
    let _ = machines::touch(&state.db, &bound.machine_id).await;
    let ending = state.relay.agent_gone(&bound.machine_id, conn_id);
    crate::cluster::agent_gone(state, &bound.machine_id, conn_id).await;
    if !state.relay.is_online(&bound.machine_id) {
        state.notify(
            ConsoleEvent::new(&bound.tenant_id, ConsoleEventKind::MachineOffline)
                .machine(&bound.machine_id),
        );
    }
    lifecycle::agent_lost(state, &bound.tenant_id, ending).await;
}
