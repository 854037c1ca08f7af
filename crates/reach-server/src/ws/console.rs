//! `/ws/console`: the web console's push channel. The first message is the login token as
//! JSON text (`{"token": "…"}`, never in the URL); then the server sends the tenant's
//! [`ConsoleEvent`]s as JSON text until the socket closes. Browser sockets are checked
//! against the server's origin; logout, password change and role changes close the socket as
//! they do viewer sockets. Anything the console sends after its token is ignored.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt as _, StreamExt as _};
use reach_proto::close;
use reach_proto::limits::AUTH_TIMEOUT;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Refusal, Sink, Stream, close_with};
use crate::auth::permissions::Permission;
use crate::console_events::ConsoleEvent;
use crate::http::AuthUser;
use crate::state::{AppState, AuthEvent};

/// Largest message a console may send (its token).
const CONSOLE_MAX_MESSAGE: usize = 4 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hello {
    token: String,
}

/// Upgrade handler with a small frame cap.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin_ok = super::origin_allowed(&headers, state.config.public_url.as_deref());
    ws.max_message_size(CONSOLE_MAX_MESSAGE)
        .max_frame_size(CONSOLE_MAX_MESSAGE)
        .on_upgrade(move |socket| run(state, socket, origin_ok))
}

async fn run(state: AppState, socket: WebSocket, origin_ok: bool) {
    let (mut sink, mut stream) = socket.split();
    if !origin_ok {
        return close_with(&mut sink, close::BAD_ORIGIN, "origin not allowed").await;
    }
    let events = state.console.subscribe();
    let auth_events = state.events.subscribe();
    let (auth, token) = match authenticate(&state, &mut stream).await {
        Ok(a) => a,
        Err(r) => return close_with(&mut sink, r.code, r.reason).await,
    };
    if send(&mut sink, r#"{"kind":"ready"}"#.to_owned()).await {
        let watch = Watch {
            state: &state,
            auth: &auth,
            token: &token,
        };
        let r = serve(&watch, &mut sink, &mut stream, events, auth_events).await;
        close_with(&mut sink, r.code, r.reason).await;
    }
}

/// A signed-in console: who, and the token it signed in with (re-checked after missed events).
struct Watch<'a> {
    state: &'a AppState,
    auth: &'a AuthUser,
    token: &'a str,
}

async fn authenticate(
    state: &AppState,
    stream: &mut Stream,
) -> Result<(AuthUser, String), Refusal> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, stream.next())
        .await
        .map_err(|_| Refusal::new(close::AUTH_TIMEOUT, "no credential within 10 s"))?;
    let Some(Ok(Message::Text(text))) = first else {
        return Err(Refusal::new(
            close::UNAUTHORIZED,
            "first message must be the login token",
        ));
    };
    let hello: Hello = serde_json::from_str(text.as_str())
        .map_err(|_| Refusal::new(close::UNAUTHORIZED, "first message must be {\"token\": …}"))?;
    let auth = AuthUser::from_token(state, &hello.token)
        .await
        .map_err(|_| Refusal::new(close::UNAUTHORIZED, "login token refused"))?;
    if !auth.can(Permission::View) {
        return Err(Refusal::new(close::FORBIDDEN, "permission `view` required"));
    }
    Ok((auth, hello.token))
}

async fn send(sink: &mut Sink, text: String) -> bool {
    sink.send(Message::Text(text.into())).await.is_ok()
}

async fn serve(
    w: &Watch<'_>,
    sink: &mut Sink,
    stream: &mut Stream,
    mut events: broadcast::Receiver<ConsoleEvent>,
    mut auth_events: broadcast::Receiver<AuthEvent>,
) -> Refusal {
    let gone = Refusal::new(close::NORMAL, "bye");
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Close(_))) | None => return gone,
                Some(Ok(_)) => {}
                Some(Err(_)) => return Refusal::new(close::POLICY, "message too large or malformed"),
            },
            ev = events.recv() => {
                let text = match ev {
                    Ok(e) if e.tenant_id == w.auth.tenant_id => serde_json::to_string(&e).ok(),
                    Ok(_) => None,
                    Err(RecvError::Lagged(_)) => Some(r#"{"kind":"resync"}"#.to_owned()),
                    Err(RecvError::Closed) => return gone,
                };
                if let Some(text) = text && !send(sink, text).await {
                    return gone;
                }
            }
            ev = auth_events.recv() => {
                if ends_console(w, ev).await {
                    return Refusal::new(close::REVOKED, "login token revoked");
                }
            }
        }
    }
}

/// Whether an auth event ends this console's socket: its token revoked, its user's tokens
/// revoked, or its user changed so that it may no longer watch (re-read from the database).
async fn ends_console(w: &Watch<'_>, ev: Result<AuthEvent, RecvError>) -> bool {
    let c = &w.auth.claims;
    let mine = |tenant: &str, user: &str| tenant == c.tenant_id && user == c.user_id;
    match ev {
        Ok(AuthEvent::TokenRevoked { jti }) => jti == c.jti,
        Ok(AuthEvent::UserTokensRevoked {
            tenant_id,
            user_id,
            keep_jti,
        }) => mine(&tenant_id, &user_id) && keep_jti.as_deref() != Some(c.jti.as_str()),
        Ok(AuthEvent::UserChanged { tenant_id, user_id }) => {
            mine(&tenant_id, &user_id) && !still_watching(w.state, w.auth).await
        }
        Ok(AuthEvent::TenantSuspended { tenant_id }) => tenant_id == c.tenant_id,
        Err(RecvError::Lagged(_)) => {
            AuthUser::from_token(w.state, w.token).await.is_err()
                || !still_watching(w.state, w.auth).await
        }
        Err(RecvError::Closed) => false,
    }
}

async fn still_watching(state: &AppState, auth: &AuthUser) -> bool {
    let Ok(Some(user)) = crate::users::get(&state.db, &auth.tenant_id, &auth.user_id).await else {
        return false;
    };
    if user.disabled {
        return false;
    }
    crate::users::role_permissions(&state.db, user.role.as_str())
        .await
        .is_ok_and(|p| p.contains(Permission::View))
}
