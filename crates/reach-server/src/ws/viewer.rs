//! `/ws/viewer`: joins a viewer to one session with a viewer token, then relays its
//! allowed messages to the agent through the chokepoint.
//!
//! Only a viewer token is accepted (login tokens are refused). The session comes from the
//! token; a viewer naming another session in an envelope is closed with 4403. Revocation
//! (logout, password change, user disabled or downgraded) closes the socket at once.

use super::departure::Ended;
use super::stream::StreamVerdict;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use reach_proto::access::{CallerRights, ViewerAccess, ViewerGrant};
use reach_proto::close;
use reach_proto::codec::{self, DecodeError};
use reach_proto::limits::{
    AUTH_MAX_MESSAGE, VIEWER_INPUT_BURST, VIEWER_INPUT_PER_SEC, VIEWER_MAX_MESSAGE,
};
use reach_proto::policy::{ViewerVerdict, judge_viewer_message};
use reach_proto::rate::TokenBucket;
use reach_proto::v1::{self, envelope::Body, session_event::Kind};
use serde_json::json;
use tokio::sync::broadcast;

use super::{
    BoxSink as Sink, BoxStream as Stream, FORWARD_TIMEOUT, PreAuth, Refusal, SOCKET_QUEUE,
    close_with, read_first,
};
use crate::auth::token::{Claims, FormatError, TokenError};
use crate::auth::tokens;
use crate::http::ClientIp;
use crate::relay::budget::{SLOW_VIEWER_DEADLINE, ViewerBudget};
use crate::relay::hub::{
    JoinError, Outbound, ViewerIdentity, ViewerLink, ViewerNotice, session_event,
};
use crate::state::{AppState, AuthEvent};

/// Per-viewer flow state.
#[derive(Debug)]
struct Flow {
    /// Input token bucket (200 events/s).
    bucket: TokenBucket,
    /// The viewer was told once that input waits for consent.
    told_pending: bool,
}

/// Sends an `Error` envelope to the viewer.
async fn send_error(sink: &mut Sink, session_id: &str, code: &str, message: &str) {
    let err = Body::Error(v1::Error {
        code: code.into(),
        message: message.into(),
    });
    let bytes = codec::encode(&codec::envelope(session_id, err));
    let _ = sink.send(Message::Binary(bytes.into())).await;
}

/// A joined viewer.
#[derive(Debug)]
struct Joined {
    claims: Claims,
    session_id: String,
    /// What its viewer token was minted with: the rights it ever has are capped by this.
    minted: (ViewerAccess, bool),
    /// Its grant when it joined (a later grant with less access closes the socket).
    grant: ViewerGrant,
    viewer_id: u64,
    actor: String,
    /// The user's name (the agent shows it in its prompts).
    technician: String,
    budget: Arc<ViewerBudget>,
}

impl Joined {
    fn access(&self) -> ViewerAccess {
        self.grant.access
    }
}

/// Upgrade handler with the viewer frame cap (64 KiB); until it authenticates the socket may
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
        return super::too_many_sockets(&state, "viewer_socket_unauthenticated");
    };
    ws.max_message_size(VIEWER_MAX_MESSAGE)
        .max_frame_size(VIEWER_MAX_MESSAGE)
        .read_buffer_size(super::READ_BUFFER)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            let run = run(
                state,
                Box::pin(sink),
                Box::pin(stream),
                origin_ok,
                Some(pre_auth),
            );
            super::own_task(run)
        })
}

/// Serves a viewer that connected to another instance, here where its session is held
/// ([`crate::bus::tunnel`]); the edge already checked its origin and counted its socket.
pub(crate) async fn serve_tunneled(state: AppState, sink: Sink, stream: Stream) {
    run(state, sink, stream, true, None).await;
}

async fn run(
    state: AppState,
    mut sink: Sink,
    mut stream: Stream,
    origin_ok: bool,
    pre_auth: Option<PreAuth>,
) {
    // The task keeps the size of its largest step for its whole life: everything but the
    // serve loop runs boxed, so an idle viewer holds little more than its sockets.
    let greeting = Box::pin(greet(&state, &mut sink, &mut stream, origin_ok, &pre_auth));
    let first = match greeting.await {
        Arrival::Refused => return,
        Arrival::Here(first) => first,
        Arrival::Elsewhere {
            home,
            session_id,
            first,
        } => {
            let Some(bus) = &state.bus else { return };
            return Box::pin(crate::bus::tunnel::serve_edge(
                bus,
                &home,
                &session_id,
                first,
                sink,
                stream,
                pre_auth,
            ))
            .await;
        }
    };
    let admitting = Box::pin(admit(&state, &mut sink, first, pre_auth));
    let Some(Admitted {
        joined,
        rx,
        events,
        welcomed,
    }) = admitting.await
    else {
        return;
    };
    let mut ended = Ended::Left;
    if welcomed {
        ended = serve(&state, &joined, &mut sink, &mut stream, rx, events).await;
    }
    Box::pin(left(&state, &mut sink, &joined, ended)).await;
}

/// Where a viewer's first message says it belongs.
enum Arrival {
    /// Refused and closed.
    Refused,
    /// Its session is held here.
    Here(v1::Envelope),
    /// Its session is held by another instance: served there, through a tunnel.
    Elsewhere {
        home: String,
        session_id: String,
        /// The first message, encoded again for the home.
        first: Bytes,
    },
}

/// Checks the origin, reads the first message (the viewer token) and finds where its session
/// is held (never elsewhere for a tunneled viewer, which arrives without a pre-auth slot and
/// is always served where it lands).
async fn greet(
    state: &AppState,
    sink: &mut Sink,
    stream: &mut Stream,
    origin_ok: bool,
    pre_auth: &Option<PreAuth>,
) -> Arrival {
    if !origin_ok {
        close_with(sink, close::BAD_ORIGIN, "origin not allowed").await;
        return Arrival::Refused;
    }
    let first = match read_first(stream, AUTH_MAX_MESSAGE).await {
        Ok(first) => first,
        Err(r) => {
            close_with(sink, r.code, r.reason).await;
            return Arrival::Refused;
        }
    };
    if pre_auth.is_some()
        && let Some((home, session_id)) = crate::cluster::viewer_home(state, &first).await
    {
        return Arrival::Elsewhere {
            home,
            session_id,
            first: Bytes::from(codec::encode(&first)),
        };
    }
    Arrival::Here(first)
}

/// A viewer joined to its session.
struct Admitted {
    joined: Joined,
    rx: crate::relay::hub::Rx,
    events: broadcast::Receiver<AuthEvent>,
    /// The welcome went out: serve the socket.
    welcomed: bool,
}

/// Joins the viewer to its session and welcomes it; `None` when it was refused (the socket
/// is closed).
async fn admit(
    state: &AppState,
    sink: &mut Sink,
    first: v1::Envelope,
    pre_auth: Option<PreAuth>,
) -> Option<Admitted> {
    let events = state.events.subscribe();
    let (tx, rx) = crate::relay::queue::channel(SOCKET_QUEUE);
    let joined = match join(state, first, tx).await {
        Ok(j) => j,
        Err(r) => {
            close_with(sink, r.code, r.reason).await;
            return None;
        }
    };
    if let Some(pre_auth) = pre_auth {
        pre_auth.done();
    }
    let welcomed = welcome(state, sink, &joined).await;
    Some(Admitted {
        joined,
        rx,
        events,
        welcomed,
    })
}

/// The viewer left: the hub, the agent and the audit log hear of it, then the socket closes.
async fn left(state: &AppState, sink: &mut Sink, joined: &Joined, ended: Ended) {
    state
        .relay
        .leave_viewer(&joined.session_id, joined.viewer_id, Instant::now());
    notify_agent(state, joined, Kind::ViewerLeft, ended.resumable()).await;
    let closing = ended.refusal();
    super::stream::stop_if_unwatched(state, &joined.session_id);
    let details = json!({"session_id": joined.session_id, "viewer_id": joined.viewer_id,
        "access": joined.access().as_str()});
    let _ = state
        .audit(
            &joined.claims.tenant_id,
            &joined.actor,
            "viewer_left",
            details,
        )
        .await;
    // Closed last, so whoever sees the close also sees the leave recorded.
    if let Some(r) = closing {
        close_with(sink, r.code, r.reason).await;
    }
}

fn refusal_for(err: &TokenError) -> Refusal {
    match err {
        TokenError::Format(FormatError::Expired) => {
            Refusal::new(close::UNAUTHORIZED, "viewer token expired")
        }
        TokenError::Revoked => Refusal::new(close::UNAUTHORIZED, "viewer token revoked"),
        TokenError::Database(_) => Refusal::new(close::GOING_AWAY, "server error"),
        _ => Refusal::new(close::UNAUTHORIZED, "not a viewer token"),
    }
}

async fn join(
    state: &AppState,
    first: v1::Envelope,
    tx: crate::relay::hub::Tx,
) -> Result<Joined, Refusal> {
    let Some(Body::ViewerAuth(auth)) = first.body else {
        return Err(Refusal::new(
            close::UNAUTHORIZED,
            "first message must be viewer_auth",
        ));
    };
    let ticket = tokens::verify_viewer(state, &auth.token)
        .await
        .map_err(|e| refusal_for(&e))?;
    let (claims, session_id) = (ticket.claims, ticket.session_id);
    let minted = (ticket.access, ticket.usb);
    let Some(rights) = current_rights(state, &claims, minted).await else {
        return Err(Refusal::new(close::REVOKED, "the user may no longer join"));
    };
    let username = crate::users::get(&state.db, &claims.tenant_id, &claims.user_id)
        .await
        .ok()
        .flatten()
        .map(|u| u.username);
    let technician = username.unwrap_or_else(|| claims.user_id.clone());
    let budget = Arc::new(ViewerBudget::default());
    let link = ViewerLink {
        tx,
        rights,
        user_id: claims.user_id.clone(),
        technician: technician.clone(),
        budget: Arc::clone(&budget),
    };
    let (viewer_id, grant) = state
        .relay
        .join_viewer(&session_id, &claims.tenant_id, link)
        .map_err(|e| match e {
            JoinError::NoSession => Refusal::new(close::SESSION_ENDED, "the session has ended"),
            JoinError::Full => Refusal::new(close::POLICY, "the session is full"),
            JoinError::Refused(_) => Refusal::new(close::REVOKED, "the user may no longer join"),
        })?;
    let actor = format!("viewer:{technician}");
    if let Some(machine_id) = state.relay.session_machine(&session_id) {
        let identity = ViewerIdentity {
            tenant_id: claims.tenant_id.clone(),
            session_id: session_id.clone(),
            machine_id,
            user_id: claims.user_id.clone(),
            actor: actor.clone(),
        };
        state.relay.remember_viewer(viewer_id, identity);
    }
    Ok(Joined {
        claims,
        session_id,
        minted,
        grant,
        viewer_id,
        actor,
        technician,
        budget,
    })
}

/// The token user's rights now (role permissions, capped by what the token was minted
/// with); `None` when the user is gone or disabled. The access rule reads these.
async fn current_rights(
    state: &AppState,
    claims: &Claims,
    minted: (ViewerAccess, bool),
) -> Option<CallerRights> {
    let user = crate::users::get(&state.db, &claims.tenant_id, &claims.user_id)
        .await
        .ok()
        .flatten()
        .filter(|u| !u.disabled)?;
    let perms = crate::users::role_permissions(&state.db, user.role.as_str())
        .await
        .ok()?;
    Some(perms.rights().capped_by(minted.0, minted.1))
}

/// Re-reads the user's rights and re-decides the grant; `false` when the viewer may no
/// longer watch or lost the access it joined with (a downgraded user loses live sockets), or
/// joined with USB and lost the `usb` permission (closing the socket makes the agent release
/// the viewer's claims at once).
async fn still_permitted(state: &AppState, j: &Joined) -> bool {
    let Some(rights) = current_rights(state, &j.claims, j.minted).await else {
        return false;
    };
    if j.grant.usb.is_ok() && !rights.usb {
        return false;
    }
    match state
        .relay
        .set_viewer_rights(&j.session_id, j.viewer_id, rights)
    {
        Some(Ok(grant)) => grant.access >= j.access(),
        _ => false,
    }
}

/// Sends `auth_ok` and the session state; audits the join; tells the agent.
async fn welcome(state: &AppState, sink: &mut Sink, j: &Joined) -> bool {
    let ok = Body::AuthOk(v1::AuthOk {
        session_id: j.session_id.clone(),
        access: j.access().to_wire().into(),
        viewer_id: j.viewer_id,
        usb: j.grant.usb.is_ok(),
        usb_unavailable: j.grant.usb.err().map(|d| d.to_string()).unwrap_or_default(),
        ..Default::default()
    });
    let consent = state.relay.consent(&j.session_id);
    let kind = match consent {
        Some(c) if c.allows_traffic() => Kind::Started,
        _ => Kind::ConsentPending,
    };
    let first = Bytes::from(codec::encode(&codec::envelope(&j.session_id, ok)));
    let second = session_event(&j.session_id, kind, "");
    if sink.send(Message::Binary(first)).await.is_err()
        || sink.send(Message::Binary(second)).await.is_err()
    {
        return false;
    }
    let details = json!({"session_id": j.session_id, "viewer_id": j.viewer_id,
        "access": j.access().as_str(), "usb": j.grant.usb.is_ok()});
    let _ = state
        .audit(&j.claims.tenant_id, &j.actor, "viewer_joined", details)
        .await;
    notify_agent(state, j, Kind::ViewerJoined, false).await;
    true
}

/// Tells the agent a viewer came or went, and who it is — through the chokepoint, so only
/// after consent. `resumable`: the viewer's connection dropped (see [`Ended`]).
async fn notify_agent(state: &AppState, j: &Joined, kind: Kind, resumable: bool) {
    let Some(tx) = state.relay.route_to_agent(&j.session_id) else {
        return;
    };
    let notice = ViewerNotice {
        kind,
        access: j.access().as_str(),
        user_id: &j.claims.user_id,
        technician: &j.technician,
        resumable,
    }
    .encode(&j.session_id, j.viewer_id);
    let _ = tx.try_send(Outbound::Frame(notice));
}

async fn serve(
    state: &AppState,
    j: &Joined,
    sink: &mut Sink,
    stream: &mut Stream,
    mut rx: crate::relay::hub::Rx,
    mut events: broadcast::Receiver<AuthEvent>,
) -> Ended {
    let mut flow = Flow {
        bucket: TokenBucket::new(VIEWER_INPUT_PER_SEC, VIEWER_INPUT_BURST, Instant::now()),
        told_pending: false,
    };
    // Checked once a second only while the viewer is behind: a viewer that keeps up has no
    // timer at all.
    let mut behind_check: Option<tokio::time::Interval> = None;
    // Video waits here, not in front of the socket: whatever else is queued for this viewer
    // (USB above all) is written first; video frames stay in their own order. Bounded by the
    // viewer's video budget, which counts these bytes until they are written.
    let mut video: VecDeque<Bytes> = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if let Err(r) = Box::pin(on_frame(state, j, &mut flow, sink, b)).await {
                        return Ended::Refused(r);
                    }
                }
                Some(Ok(Message::Close(Some(frame)))) if frame.code == close::NORMAL => {
                    return Ended::Left;
                }
                Some(Ok(Message::Close(_))) | None => return Ended::Dropped,
                Some(Ok(_)) => {}
                // A reset connection and an oversized message look alike here: both may
                // come back (the gate still decides every USB frame of the new connection).
                Some(Err(_)) => {
                    return Ended::Broken(Refusal::new(close::POLICY, "message too large or malformed"));
                }
            },
            out = rx.recv() => match out {
                Some(Outbound::Frame(b)) => {
                    if let Err(end) = Box::pin(write(sink, b, None)).await {
                        return end.map_or(Ended::Dropped, Ended::Refused);
                    }
                }
                Some(Outbound::Video(b)) => video.push_back(b),
                Some(Outbound::Close(code, reason)) => return Ended::Refused(Refusal::new(code, reason)),
                None => return Ended::Left,
            },
            () = j.budget.fell_behind(), if behind_check.is_none() => {
                let second = Duration::from_secs(1);
                behind_check = Some(tokio::time::interval_at(tokio::time::Instant::now() + second, second));
            }
            () = tick(behind_check.as_mut()), if behind_check.is_some() => {
                if j.budget.too_far_behind(Instant::now()) {
                    return Ended::Refused(Refusal::new(close::POLICY, TOO_SLOW));
                }
                if !j.budget.is_behind() {
                    behind_check = None;
                }
            }
            ev = events.recv() => {
                if Box::pin(revoked(state, j, ev)).await {
                    return Ended::Refused(Refusal::new(close::REVOKED, "viewer token revoked"));
                }
            }
            () = std::future::ready(()), if !video.is_empty() => {
                if let Some(b) = video.pop_front()
                    && let Err(end) = Box::pin(write(sink, b, Some(&j.budget))).await
                {
                    return end.map_or(Ended::Dropped, Ended::Refused);
                }
            }
        }
    }
}

const TOO_SLOW: &str = "the viewer fell too far behind";

/// The next tick of `check`; never when there is none.
async fn tick(check: Option<&mut tokio::time::Interval>) {
    match check {
        Some(check) => {
            check.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Writes one frame within [`SLOW_VIEWER_DEADLINE`] (then releases its bytes from the
/// budget). `Err` ends the serve loop: `Some` closes with a reason, `None` means gone.
async fn write(
    sink: &mut Sink,
    bytes: Bytes,
    budget: Option<&ViewerBudget>,
) -> Result<(), Option<Refusal>> {
    let len = bytes.len();
    let written =
        tokio::time::timeout(SLOW_VIEWER_DEADLINE, sink.send(Message::Binary(bytes))).await;
    if let Some(budget) = budget {
        budget.sent(len);
    }
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some(Refusal::new(close::POLICY, TOO_SLOW))),
    }
}

/// Whether an auth event ends this viewer. A lagged receiver re-checks from the database.
async fn revoked(
    state: &AppState,
    j: &Joined,
    ev: Result<AuthEvent, broadcast::error::RecvError>,
) -> bool {
    let c = &j.claims;
    let mine = |user: &str, tenant: &str| user == c.user_id && tenant == c.tenant_id;
    match ev {
        Ok(AuthEvent::TokenRevoked { jti }) => jti == c.jti || Some(&jti) == c.parent_jti.as_ref(),
        Ok(AuthEvent::UserTokensRevoked {
            tenant_id,
            user_id,
            keep_jti,
        }) => {
            mine(&user_id, &tenant_id)
                && keep_jti.is_none_or(|k| k != c.jti && Some(&k) != c.parent_jti.as_ref())
        }
        Ok(AuthEvent::UserChanged { tenant_id, user_id }) => {
            mine(&user_id, &tenant_id) && !still_permitted(state, j).await
        }
        Ok(AuthEvent::TenantSuspended { tenant_id }) => tenant_id == c.tenant_id,
        Err(broadcast::error::RecvError::Lagged(_)) => {
            !token_live(state, c).await || !still_permitted(state, j).await
        }
        Err(broadcast::error::RecvError::Closed) => false,
    }
}

/// One viewer message: allow-list, token bucket, chokepoint, then forward stamped with
/// the session and viewer ids.
async fn on_frame(
    state: &AppState,
    j: &Joined,
    flow: &mut Flow,
    sink: &mut Sink,
    bytes: Bytes,
) -> Result<(), Refusal> {
    let Flow {
        bucket,
        told_pending,
    } = flow;
    let mut env = match codec::decode_bytes(bytes, VIEWER_MAX_MESSAGE) {
        Ok(env) => env,
        Err(DecodeError::UnknownBody) => return Ok(()),
        Err(_) => return Err(Refusal::new(close::POLICY, "malformed message")),
    };
    if !env.session_id.is_empty() && env.session_id != j.session_id {
        return Err(Refusal::new(
            close::FORBIDDEN,
            "the viewer token is for another session",
        ));
    }
    let Some(body) = env.body.as_mut() else {
        return Ok(());
    };
    // The one access rule, decided now (role, consent and the host's USB switch may have
    // changed since the viewer joined).
    let Some(route) = state.relay.route_from_viewer(&j.session_id, j.viewer_id) else {
        return Ok(());
    };
    let grant = route
        .grant
        .map_err(|_| Refusal::new(close::REVOKED, "the user may no longer watch"))?;
    match judge_viewer_message(&grant, body) {
        ViewerVerdict::Drop => return Ok(()),
        ViewerVerdict::Refuse => {
            let denial = grant.usb.err();
            state
                .metrics
                .usb_refused(denial.map_or("unknown", reach_proto::access::UsbDenial::as_str));
            let why = denial.map(|d| d.to_string()).unwrap_or_default();
            send_error(sink, &j.session_id, "usb_refused", &why).await;
            return Ok(());
        }
        ViewerVerdict::ForwardThrottled if !bucket.try_take(Instant::now()) => {
            state.metrics.rate_limited("viewer_input");
            return Ok(());
        }
        ViewerVerdict::ForwardThrottled | ViewerVerdict::Forward => {}
    }
    let tenant = &j.claims.tenant_id;
    if let StreamVerdict::Drop = super::stream::judge(state, tenant, &j.session_id, body).await {
        return Ok(());
    }
    let Some(tx) = route.agent else {
        if !*told_pending
            && state
                .relay
                .consent(&j.session_id)
                .is_some_and(|c| !c.allows_traffic())
        {
            *told_pending = true;
            send_error(
                sink,
                &j.session_id,
                "consent_pending",
                "input is dropped until the person at the machine consents",
            )
            .await;
        }
        return Ok(());
    };
    env.session_id.clone_from(&j.session_id);
    env.viewer_id = j.viewer_id;
    let bytes = Bytes::from(codec::encode(&env));
    let _ = tx
        .send_timeout(Outbound::Frame(bytes), FORWARD_TIMEOUT)
        .await;
    Ok(())
}

/// Whether the token and its parent are still unrevoked (expiry does not end a joined
/// viewer: the token only opens the door).
async fn token_live(state: &AppState, c: &Claims) -> bool {
    let parent = c.parent_jti.clone().unwrap_or_else(|| c.jti.clone());
    let live: Result<i64, _> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM auth_tokens WHERE (jti = $1 OR jti = $2) AND revoked_at IS NULL",
    )
    .bind(&c.jti)
    .bind(&parent)
    .fetch_one(&state.db)
    .await;
    live.is_ok_and(|n| n == 2)
}
