//! The message bus several instances share: NATS (`--nats-url`).
//!
//! Without it an instance works alone and nothing here runs. With it:
//! - **Broadcasts** (`reach.ctl`): revocations, user and tenant changes, agent closes, session
//!   ends and console events reach every instance, each applying them to its own sockets
//!   ([`Broadcast`], [`crate::cluster`]).
//! - **Calls** (`reach.i.<instance>.rpc`): opening a session on the instance that holds the
//!   machine's agent, reading a live session's access there, and opening a viewer tunnel
//!   ([`rpc`]).
//! - **Tunnels** (`reach.v.<session>.<tunnel>.…`): a viewer connected to one instance is
//!   served by the instance holding its session; its messages cross in order, chunked and
//!   under credit ([`reach_proto::bus`], [`tunnel`]).
//!
//! Which instances are alive comes from the shared database ([`crate::instances`]); it is
//! refreshed every heartbeat into [`Bus::live`].

pub mod rpc;
pub mod tunnel;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::console_events::ConsoleEvent;
use crate::state::{AppState, AuthEvent};

/// The broadcast subject.
pub const CONTROL_SUBJECT: &str = "reach.ctl";
/// Longest a call to another instance may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest control or call message accepted from the bus.
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;

/// The bus could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the NATS server at {url}: {message}")]
pub struct BusError {
    url: String,
    message: String,
}

impl BusError {
    /// The bus at `url` failed with `message` (credentials in the URL are not kept).
    pub fn new(url: &str, message: &str) -> Self {
        Self {
            url: without_credentials(url),
            message: message.to_owned(),
        }
    }
}

/// `url` with any `user:password@` replaced by `***@`, for messages and logs.
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Why an agent is closed everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentClose {
    /// Its key was revoked or its machine deleted.
    Revoked,
    /// Its tenant was suspended.
    TenantSuspended,
}

impl AgentClose {
    /// The close reason the agent reads.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Revoked => "the machine's key was revoked",
            Self::TenantSuspended => "the organisation is suspended",
        }
    }
}

/// Something every instance applies to its own sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Broadcast {
    /// A revocation or user/tenant change ([`AuthEvent`]).
    Auth {
        /// The event.
        event: AuthEvent,
    },
    /// Close every agent connection authenticated with this key.
    CloseKey {
        /// Tenant.
        tenant_id: String,
        /// Key id.
        key_id: String,
    },
    /// Close this machine's agent.
    CloseMachine {
        /// Tenant.
        tenant_id: String,
        /// Machine id.
        machine_id: String,
        /// Why.
        why: AgentClose,
    },
    /// A session ended (its row is already ended): its viewers and agent hear of it.
    SessionEnded {
        /// Session id.
        session_id: String,
        /// Reason (`ended_by_user`, …).
        reason: String,
        /// Close code for its viewers.
        close_code: u16,
    },
    /// A console event for a tenant's consoles.
    Console {
        /// Tenant.
        tenant_id: String,
        /// The event.
        event: ConsoleEvent,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_bus_url_never_reach_a_message() {
        let err = BusError::new("nats://reach:s3cret@nats.internal:4222", "refused");
        let shown = err.to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("reach:"),
            "{shown}"
        );
        assert!(shown.contains("nats://***@nats.internal:4222"), "{shown}");
        assert_eq!(without_credentials("nats://h:1"), "nats://h:1");
    }

    #[test]
    fn broadcasts_read_back_as_written() {
        let env = Envelope {
            from: "ins_a".into(),
            what: Broadcast::CloseMachine {
                tenant_id: "t".into(),
                machine_id: "m".into(),
                why: AgentClose::TenantSuspended,
            },
        };
        let json = serde_json::to_string(&env).unwrap();
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back.from, "ins_a");
        assert!(matches!(
            back.what,
            Broadcast::CloseMachine {
                why: AgentClose::TenantSuspended,
                ..
            }
        ));
        assert!(serde_json::from_str::<Envelope>("{\"from\":\"x\",\"kind\":\"nope\"}").is_err());
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    what: Broadcast,
}

/// A connection to the bus, shared through `AppState`.
#[derive(Debug)]
pub struct Bus {
    client: async_nats::Client,
    instance_id: Arc<str>,
    live: watch::Sender<Arc<HashSet<String>>>,
    edges: Arc<AtomicUsize>,
    homes: Arc<AtomicUsize>,
    drain: watch::Sender<bool>,
    outbox: mpsc::Sender<Bytes>,
    outgoing: Mutex<Option<mpsc::Receiver<Bytes>>>,
}

/// Counts an edge tunnel while it lives.
#[derive(Debug)]
pub struct EdgeGuard(Arc<AtomicUsize>);

impl Drop for EdgeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Bus {
    /// Connects to `url` as `instance_id` (retrying for a few seconds while it starts).
    ///
    /// # Errors
    /// [`BusError`] when the server cannot be reached.
    pub async fn connect(url: &str, instance_id: Arc<str>) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("reach {instance_id}"))
            .connection_timeout(Duration::from_secs(5))
            .subscription_capacity(reach_proto::bus::SUBSCRIPTION_CAPACITY)
            .connect(url)
            .await
            .map_err(|e| BusError::new(url, &e.to_string()))?;
        let (outbox, outgoing) = mpsc::channel(OUTBOX);
        let mut live = HashSet::new();
        live.insert(instance_id.to_string());
        Ok(Self {
            client,
            instance_id,
            live: watch::channel(Arc::new(live)).0,
            edges: Arc::default(),
            homes: Arc::default(),
            drain: watch::channel(false).0,
            outbox,
            outgoing: Mutex::new(Some(outgoing)),
        })
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Whether the bus connection is up (`/readyz`).
    pub fn reachable(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The live instances, refreshed every heartbeat.
    pub fn live(&self) -> watch::Receiver<Arc<HashSet<String>>> {
        self.live.subscribe()
    }

    /// Whether `instance` was alive at the last heartbeat.
    pub fn is_live(&self, instance: &str) -> bool {
        self.live.borrow().contains(instance)
    }

    /// Counts `instance` as live until the next refresh (it just called: it is alive, even if
    /// this instance has not read its heartbeat yet).
    pub fn saw(&self, instance: &str) {
        self.live.send_if_modified(|now| {
            if now.contains(instance) {
                return false;
            }
            let mut more = (**now).clone();
            more.insert(instance.to_owned());
            *now = Arc::new(more);
            true
        });
    }

    /// Records the live instances (read from the database).
    pub fn set_live(&self, mut ids: HashSet<String>) {
        ids.insert(self.instance_id.to_string());
        self.live.send_if_modified(|now| {
            let changed = **now != ids;
            if changed {
                *now = Arc::new(ids);
            }
            changed
        });
    }

    /// Counts a viewer served elsewhere through this instance until the guard drops.
    pub fn edge_opened(&self) -> EdgeGuard {
        self.edges.fetch_add(1, Ordering::SeqCst);
        EdgeGuard(Arc::clone(&self.edges))
    }

    /// Counts a viewer served here for another instance until the guard (shared by the
    /// tunnel's tasks) drops.
    pub fn home_opened(&self) -> Arc<EdgeGuard> {
        self.homes.fetch_add(1, Ordering::SeqCst);
        Arc::new(EdgeGuard(Arc::clone(&self.homes)))
    }

    /// Tunnels this instance serves for viewers connected elsewhere, and tunnels it relays for
    /// viewers served elsewhere (each ends with its viewer).
    pub fn tunnels(&self) -> (usize, usize) {
        (
            self.homes.load(Ordering::SeqCst),
            self.edges.load(Ordering::SeqCst),
        )
    }

    /// Whether viewers served elsewhere are still connected through this instance.
    pub fn has_edges(&self) -> bool {
        self.edges.load(Ordering::SeqCst) > 0
    }

    /// Closes every tunnel edge of this instance with `GOING_AWAY` (drain on SIGTERM).
    pub fn drain(&self) {
        self.drain.send_replace(true);
    }

    /// Becomes `true` when this instance drains.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.drain.subscribe()
    }

    /// Tells the other instances, in order (one publisher task sends them). A broadcast that
    /// cannot be queued is logged: the database stays the truth, and a token revoked there is
    /// refused everywhere on its next use.
    pub fn broadcast(&self, what: Broadcast) {
        let envelope = Envelope {
            from: self.instance_id.to_string(),
            what,
        };
        let Ok(json) = serde_json::to_vec(&envelope) else {
            return;
        };
        if self.outbox.try_send(Bytes::from(json)).is_err() {
            tracing::warn!(
                "the bus is not keeping up; a broadcast to the other instances was dropped"
            );
        }
    }
}

/// Broadcasts queued for the publisher task, at most.
const OUTBOX: usize = 4096;

/// Starts this instance's bus listeners: broadcasts from the others, and calls to it.
///
/// # Errors
/// When a subscription cannot be made.
pub async fn listen(state: &AppState, bus: &Arc<Bus>) -> Result<(), async_nats::SubscribeError> {
    let mut control = bus.client.subscribe(CONTROL_SUBJECT).await?;
    let calls = bus.client.subscribe(rpc::subject(&bus.instance_id)).await?;
    let me = bus.instance_id.to_string();
    let s = state.clone();
    tokio::spawn(async move {
        while let Some(msg) = control.next().await {
            if msg.payload.len() > MAX_CONTROL_MESSAGE {
                continue;
            }
            match serde_json::from_slice::<Envelope>(&msg.payload) {
                // Closing agents writes to the database: done beside the loop, so the
                // subscription's queue never fills (a full one drops broadcasts).
                Ok(env) if env.from != me => match env.what {
                    what @ (Broadcast::CloseKey { .. } | Broadcast::CloseMachine { .. }) => {
                        let s = s.clone();
                        tokio::spawn(async move { crate::cluster::apply(&s, what).await });
                    }
                    what => crate::cluster::apply(&s, what).await,
                },
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "unreadable bus broadcast"),
            }
        }
    });
    tokio::spawn(rpc::serve(state.clone(), Arc::clone(bus), calls));
    let outgoing = bus
        .outgoing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(mut outgoing) = outgoing {
        let client = bus.client.clone();
        tokio::spawn(async move {
            while let Some(json) = outgoing.recv().await {
                if let Err(err) = client.publish(CONTROL_SUBJECT, json).await {
                    tracing::warn!(error = %err, "could not broadcast to the other instances");
                }
            }
        });
    }
    Ok(())
}
