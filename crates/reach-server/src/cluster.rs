//! What must be true on every instance, not just this one: where an agent or a session lives,
//! and the actions that reach sockets everywhere (revocations, agent closes, session ends,
//! console events).
//!
//! Alone (no bus) each function is its local form. With a bus ([`crate::bus`]) the action is
//! applied here and broadcast; the others apply it to their own sockets ([`apply`]), and an
//! agent's presence (which instance holds it) is kept in the database with the instance's
//! heartbeat for expiry.

use std::collections::HashSet;

use reach_proto::access::{Consent, Scope};
use reach_proto::v1::Envelope;
use reach_proto::v1::envelope::Body;

use crate::bus::rpc::{self, Answer, Call};
use crate::bus::{AgentClose, Broadcast};
use crate::db;
use crate::relay::lifecycle::{self, Opening};
use crate::state::AppState;
use reach_proto::token::Purpose;

/// Where something lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// On this instance.
    Here,
    /// On this other live instance.
    There(String),
}

/// Applies a broadcast from another instance to this one's sockets.
pub async fn apply(state: &AppState, what: Broadcast) {
    match what {
        Broadcast::Auth { event } => {
            let _ = state.events.send(event);
        }
        Broadcast::CloseKey { tenant_id, key_id } => {
            let ending = state.relay.close_key(&key_id);
            lifecycle::agent_lost(state, &tenant_id, ending).await;
        }
        Broadcast::CloseMachine {
            tenant_id,
            machine_id,
            why,
        } => close_machine_here(state, &tenant_id, &machine_id, why).await,
        Broadcast::SessionEnded {
            session_id,
            reason,
            close_code,
        } => {
            state.relay.end_session(&session_id, &reason, close_code);
        }
        Broadcast::Console {
            tenant_id,
            mut event,
        } => {
            event.tenant_id = tenant_id;
            let _ = state.console.send(event);
        }
    }
}

async fn close_machine_here(state: &AppState, tenant_id: &str, machine_id: &str, why: AgentClose) {
    let ending = match why {
        AgentClose::Revoked => state.relay.close_machine(machine_id),
        AgentClose::TenantSuspended => state.relay.close_machine_because(machine_id, why.reason()),
    };
    lifecycle::agent_lost(state, tenant_id, ending).await;
}

fn everywhere(state: &AppState, what: Broadcast) {
    if let Some(bus) = &state.bus {
        bus.broadcast(what);
    }
}

/// Closes every agent connection authenticated with `key_id`, on every instance.
pub async fn close_key(state: &AppState, tenant_id: &str, key_id: &str) {
    let ending = state.relay.close_key(key_id);
    lifecycle::agent_lost(state, tenant_id, ending).await;
    let (tenant_id, key_id) = (tenant_id.to_owned(), key_id.to_owned());
    everywhere(state, Broadcast::CloseKey { tenant_id, key_id });
}

/// Closes a machine's agent wherever it is connected.
pub async fn close_machine(state: &AppState, tenant_id: &str, machine_id: &str, why: AgentClose) {
    close_machine_here(state, tenant_id, machine_id, why).await;
    let (tenant_id, machine_id) = (tenant_id.to_owned(), machine_id.to_owned());
    everywhere(
        state,
        Broadcast::CloseMachine {
            tenant_id,
            machine_id,
            why,
        },
    );
}

/// A session's row has ended: its viewers and agent hear of it wherever they are.
pub fn session_ended(state: &AppState, session_id: &str, reason: &str, close_code: u16) {
    state.relay.end_session(session_id, reason, close_code);
    let (session_id, reason) = (session_id.to_owned(), reason.to_owned());
    everywhere(
        state,
        Broadcast::SessionEnded {
            session_id,
            reason,
            close_code,
        },
    );
}

/// Records that this instance holds the machine's agent (with a bus only).
pub async fn agent_here(state: &AppState, machine_id: &str, conn_id: u64) {
    if state.bus.is_none() {
        return;
    }
    let result = sqlx::query(
        "INSERT INTO agent_presence (machine_id, instance_id, conn_id, since) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (machine_id) DO UPDATE SET \
         instance_id = excluded.instance_id, conn_id = excluded.conn_id, since = excluded.since",
    )
    .bind(machine_id)
    .bind(&*state.instance_id)
    .bind(i64::try_from(conn_id).unwrap_or(i64::MAX))
    .bind(db::now_ms())
    .execute(&state.db)
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "could not record the agent's presence");
    }
}

/// Forgets the agent's presence here, unless a newer connection replaced it.
pub async fn agent_gone(state: &AppState, machine_id: &str, conn_id: u64) {
    if state.bus.is_none() {
        return;
    }
    let result = sqlx::query(
        "DELETE FROM agent_presence WHERE machine_id = $1 AND instance_id = $2 AND conn_id = $3",
    )
    .bind(machine_id)
    .bind(&*state.instance_id)
    .bind(i64::try_from(conn_id).unwrap_or(i64::MAX))
    .execute(&state.db)
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "could not clear the agent's presence");
    }
}

/// The instances that are alive now (this one included).
///
/// # Errors
/// On database failure.
pub async fn live_instances(state: &AppState) -> Result<HashSet<String>, sqlx::Error> {
    let since = db::now_ms() - crate::instances::expiry_ms();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM server_instances WHERE seen_at > $1")
        .bind(since)
        .fetch_all(&state.db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// Where the machine's agent is connected, if anywhere alive.
///
/// # Errors
/// On database failure.
pub async fn machine_home(state: &AppState, machine_id: &str) -> Result<Option<Home>, sqlx::Error> {
    if state.relay.is_online(machine_id) {
        return Ok(Some(Home::Here));
    }
    let Some(bus) = &state.bus else {
        return Ok(None);
    };
    let at: Option<String> =
        sqlx::query_scalar("SELECT instance_id FROM agent_presence WHERE machine_id = $1")
            .bind(machine_id)
            .fetch_optional(&state.db)
            .await?;
    Ok(at
        .filter(|i| **i != *state.instance_id && bus.is_live(i))
        .map(Home::There))
}

/// The machines of `tenant_id` among `ids` whose agent is connected to any live instance.
///
/// # Errors
/// On database failure.
pub async fn online(
    state: &AppState,
    tenant_id: &str,
    ids: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut on: HashSet<String> = ids
        .iter()
        .filter(|id| state.relay.is_online(id))
        .cloned()
        .collect();
    if let Some(bus) = &state.bus
        && on.len() < ids.len()
    {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT p.machine_id, p.instance_id FROM agent_presence p \
             JOIN machines m ON m.id = p.machine_id WHERE m.tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_all(&state.db)
        .await?;
        let wanted: HashSet<&String> = ids.iter().collect();
        on.extend(
            rows.into_iter()
                .filter(|(m, i)| wanted.contains(m) && bus.is_live(i))
                .map(|(m, _)| m),
        );
    }
    Ok(on)
}

/// Where a live session is held, if on a live instance.
async fn session_home(state: &AppState, tenant_id: &str, session_id: &str) -> Option<Home> {
    if state.relay.session_tenant(session_id).as_deref() == Some(tenant_id) {
        return Some(Home::Here);
    }
    let bus = state.bus.as_ref()?;
    let at: Option<Option<String>> = sqlx::query_scalar(
        "SELECT instance_id FROM sessions WHERE id = $1 AND tenant_id = $2 AND ended_at IS NULL",
    )
    .bind(session_id)
    .bind(tenant_id)
    .fetch_optional(&state.db)
    .await
    .ok()?;
    at.flatten()
        .filter(|i| **i != *state.instance_id && bus.is_live(i))
        .map(Home::There)
}

/// A live session's scope and consent (the access rule's inputs), asked of the instance
/// holding it; `None` when it is not live anywhere.
pub async fn session_access(
    state: &AppState,
    tenant_id: &str,
    session_id: &str,
) -> Option<(Scope, Consent)> {
    match session_home(state, tenant_id, session_id).await? {
        Home::Here => state.relay.session_access(session_id),
        Home::There(instance) => {
            let bus = state.bus.as_ref()?;
            let call = Call::Access {
                tenant_id: tenant_id.to_owned(),
                session_id: session_id.to_owned(),
            };
            match rpc::call(bus, &instance, &call).await {
                Ok(Answer::Access {
                    live: Some((scope, consent)),
                }) => Some((scope.into(), consent.into())),
                _ => None,
            }
        }
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The machine's agent is not connected anywhere.
    #[error("the machine's agent is not connected")]
    Offline,
    /// The instance holding the agent did not open it.
    #[error("{0}")]
    Elsewhere(String),
}

/// Opens a managed session on the instance holding the machine's agent.
///
/// # Errors
/// [`OpenError`].
pub async fn open_session(state: &AppState, o: &Opening<'_>) -> Result<String, OpenError> {
    match machine_home(state, o.machine_id).await? {
        None => Err(OpenError::Offline),
        Some(Home::Here) => Ok(lifecycle::open(state, o).await?),
        Some(Home::There(instance)) => {
            let bus = state.bus.as_ref().ok_or(OpenError::Offline)?;
            let call = Call::Open {
                tenant_id: o.tenant_id.to_owned(),
                machine_id: o.machine_id.to_owned(),
                created_by: o.created_by.to_owned(),
                technician: o.technician.to_owned(),
                scope: o.scope.into(),
                consent_required: o.consent_required,
            };
            match rpc::call(bus, &instance, &call).await {
                Ok(Answer::Opened { session_id }) => Ok(session_id),
                Ok(Answer::Failed { message }) => Err(OpenError::Elsewhere(message)),
                Ok(_) => Err(OpenError::Elsewhere("unexpected answer".into())),
                Err(err) => Err(OpenError::Elsewhere(err.to_string())),
            }
        }
    }
}

/// For a viewer's first message: the other instance holding its session, if the session is
/// not held here (the viewer is then served there through a tunnel). The token is only read
/// for its session here; the home checks it in full.
pub async fn viewer_home(state: &AppState, first: &Envelope) -> Option<(String, String)> {
    state.bus.as_ref()?;
    let Some(Body::ViewerAuth(auth)) = &first.body else {
        return None;
    };
    let claims = state.tokens.decode(&auth.token, db::now_ms() / 1000).ok()?;
    let Purpose::Viewer { session_id, .. } = &claims.purpose else {
        return None;
    };
    match session_home(state, &claims.tenant_id, session_id).await? {
        Home::Here => None,
        Home::There(instance) => Some((instance, session_id.clone())),
    }
}

/// The open sessions of a tenant (optionally of one machine), on every instance.
///
/// # Errors
/// On database failure.
pub async fn open_sessions(
    state: &AppState,
    tenant_id: &str,
    machine_id: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, machine_id FROM sessions WHERE tenant_id = $1 AND ended_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_all(&state.db)
    .await?;
    Ok(ids
        .into_iter()
        .filter(|(_, m)| machine_id.is_none_or(|want| want == m))
        .map(|(id, _)| id)
        .collect())
}
