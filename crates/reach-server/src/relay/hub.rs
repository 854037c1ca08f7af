//! In-memory registry of live agents, sessions and viewers, and the join chokepoint.
//!
//! Every routing decision goes through [`Hub::route_from_agent`] or
//! [`Hub::route_from_viewer`], and both ask one question first: [`traffic_allowed`]
//! (consent `granted` or `not_required`). Nothing is sent while the hub's lock is held:
//! methods return the senders to use and the caller sends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::budget::ViewerBudget;
pub use super::notice::ViewerNotice;
use super::queue;
use bytes::Bytes;
use reach_proto::access::{
    AccessInputs, CallerRights, Consent, GrantRefusal, HostUsb, Scope, ViewerGrant,
    decide_viewer_grant,
};
use reach_proto::consent::{ConsentChange, ConsentState};
use reach_proto::limits::CONSENT_TIMEOUT;
use reach_proto::v1::{self, envelope::Body, session_event::Kind};
use reach_proto::{close, codec};

/// Something for a socket task to write.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// One encoded envelope.
    Frame(Bytes),
    /// One encoded video frame counted in the viewer's [`ViewerBudget`].
    Video(Bytes),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// Sender half of a socket task's queue.
pub type Tx = queue::Sender<Outbound>;
/// Receiver half of a socket task's queue.
pub type Rx = queue::Receiver<Outbound>;

/// A connected agent.
#[derive(Debug, Clone)]
pub struct AgentLink {
    /// Connection id (distinguishes a reconnect from the old socket).
    pub conn_id: u64,
    /// Tenant of the machine.
    pub tenant_id: String,
    /// Key the agent authenticated with (`None` for a support code).
    pub key_id: Option<String>,
    /// The agent's USB state, as it last reported it (hello, status).
    pub usb: HostUsb,
    /// The socket's queue.
    pub tx: Tx,
}

/// A viewer joined to a session.
#[derive(Debug, Clone)]
pub struct ViewerLink {
    /// The socket's queue.
    pub tx: Tx,
    /// The user's rights now, capped by what their viewer token was minted with.
    pub rights: CallerRights,
    /// User behind the viewer.
    pub user_id: String,
    /// The user's name (shown in the host's prompts).
    pub technician: String,
    /// Video bytes queued for the viewer.
    pub budget: Arc<ViewerBudget>,
}

/// A live session.
#[derive(Debug)]
pub struct SessionLink {
    /// Tenant.
    pub tenant_id: String,
    /// Machine the session is on.
    pub machine_id: String,
    /// Created by a support code: ends when its agent goes away.
    pub attended: bool,
    /// What the session was opened with.
    pub scope: Scope,
    /// Consent state.
    pub consent: ConsentState,
    /// What the person at the machine allowed (set when consent is granted).
    pub consented: Option<Scope>,
    /// Since when nobody watches (creation, or the last viewer leaving); `None` while
    /// someone does.
    pub idle_since: Option<Instant>,
    /// Joined viewers by id.
    pub viewers: Viewers,
}

/// A session's joined viewers by id: at most [`MAX_VIEWERS_PER_SESSION`], usually one, so a
/// vector (one small allocation) rather than a hash map (a table of buckets per session).
#[derive(Debug, Default)]
pub struct Viewers(Vec<(u64, ViewerLink)>);

impl Viewers {
    /// No viewers.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// The viewer with this id.
    pub fn get(&self, id: &u64) -> Option<&ViewerLink> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    /// The viewer with this id, to change.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut ViewerLink> {
        self.0.iter_mut().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    /// Adds (or replaces) the viewer with this id.
    pub fn insert(&mut self, id: u64, link: ViewerLink) {
        match self.get_mut(&id) {
            Some(v) => *v = link,
            None => self.0.push((id, link)),
        }
    }

    /// Removes the viewer with this id.
    pub fn remove(&mut self, id: &u64) -> Option<ViewerLink> {
        let at = self.0.iter().position(|(k, _)| k == id)?;
        let (_, link) = self.0.swap_remove(at);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(link)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nobody is joined.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ids and viewers.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &ViewerLink)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The viewers.
    pub fn values(&self) -> impl Iterator<Item = &ViewerLink> {
        self.0.iter().map(|(_, v)| v)
    }
}

/// Why a viewer could not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// No such live session in this tenant.
    #[error("the session does not exist or has ended")]
    NoSession,
    /// Too many viewers already.
    #[error("the session already has the maximum number of viewers")]
    Full,
    /// The access rule refuses this viewer.
    #[error("{0}")]
    Refused(GrantRefusal),
}

/// What the relay needs to route one viewer message.
#[derive(Debug)]
pub struct ViewerRoute {
    /// What the viewer may do now (the one access rule, with the host's USB state now).
    pub grant: Result<ViewerGrant, GrantRefusal>,
    /// The agent's queue, only when consent allows traffic and the agent is online.
    pub agent: Option<Tx>,
}

/// Most viewers one session holds.
pub const MAX_VIEWERS_PER_SESSION: usize = 16;

/// The one question every route asks: may session traffic flow?
pub fn traffic_allowed(session: &SessionLink) -> bool {
    session.consent.allows_traffic()
}

impl SessionLink {
    /// The consent as the access rule reads it.
    pub fn consent_input(&self) -> Consent {
        match self.consent {
            ConsentState::NotRequired => Consent::NotRequired,
            ConsentState::Pending { .. } => Consent::Pending,
            ConsentState::Granted => Consent::Granted(self.consented.unwrap_or(self.scope)),
            ConsentState::Denied(_) => Consent::Denied,
        }
    }
}

/// Who a viewer id stood for, kept after the viewer left so the agent's late USB audit notes
/// (claims closed because the viewer left or the session ended) still name the technician.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerIdentity {
    /// Tenant.
    pub tenant_id: String,
    /// Session joined.
    pub session_id: String,
    /// Machine of that session.
    pub machine_id: String,
    /// User behind the viewer.
    pub user_id: String,
    /// Audit actor (`viewer:<username>`).
    pub actor: String,
}

/// Viewer identities remembered, at most (the oldest are forgotten first).
pub const MAX_VIEWER_IDENTITIES: usize = 4096;

#[derive(Debug, Default)]
struct Inner {
    agents: HashMap<String, AgentLink>,
    sessions: HashMap<String, SessionLink>,
    identities: std::collections::BTreeMap<u64, ViewerIdentity>,
}

/// The registry. One per server process, shared through `AppState`.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    consent_timeout_ms: AtomicU64,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            next_id: AtomicU64::new(0),
            consent_timeout_ms: AtomicU64::new(
                u64::try_from(CONSENT_TIMEOUT.as_millis()).unwrap_or(60_000),
            ),
        }
    }
}

/// Encodes a session event for `session_id`.
pub fn session_event(session_id: &str, kind: Kind, reason: &str) -> Bytes {
    let body = Body::SessionEvent(v1::SessionEvent {
        kind: kind.into(),
        reason: reason.to_owned(),
        ..Default::default()
    });
    Bytes::from(codec::encode(&codec::envelope(session_id, body)))
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long the person at the machine has to answer (60 s; shorter in tests).
    pub fn consent_timeout(&self) -> Duration {
        Duration::from_millis(self.consent_timeout_ms.load(Ordering::Relaxed))
    }

    /// Changes the consent timeout for sessions opened from now on.
    pub fn set_consent_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.consent_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// A fresh id for a connection or viewer.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers an agent connection; an older connection of the same machine is
    /// returned so the caller can close it.
    pub fn register_agent(&self, machine_id: &str, link: AgentLink) -> Option<AgentLink> {
        self.lock().agents.insert(machine_id.to_owned(), link)
    }

    /// Whether the machine has a connected agent.
    pub fn is_online(&self, machine_id: &str) -> bool {
        self.lock().agents.contains_key(machine_id)
    }

    /// Queue of the machine's agent, if connected.
    pub fn agent_tx(&self, machine_id: &str) -> Option<Tx> {
        self.lock().agents.get(machine_id).map(|a| a.tx.clone())
    }

    /// Unregisters an agent connection (if it is still the current one) and returns the
    /// sessions that must end, with the consent change the loss caused (pending consent is
    /// denied). Attended sessions end too; viewers of the remaining sessions are told the
    /// agent is offline and wait for it to come back.
    pub fn agent_gone(&self, machine_id: &str, conn_id: u64) -> Vec<(String, ConsentChange)> {
        let mut inner = self.lock();
        if inner
            .agents
            .get(machine_id)
            .is_none_or(|a| a.conn_id != conn_id)
        {
            return Vec::new();
        }
        Self::detach(&mut inner, machine_id)
    }

    fn detach(inner: &mut Inner, machine_id: &str) -> Vec<(String, ConsentChange)> {
        inner.agents.remove(machine_id);
        let mut ending = Vec::new();
        for (id, s) in inner
            .sessions
            .iter_mut()
            .filter(|(_, s)| s.machine_id == machine_id)
        {
            let change = s.consent.handle_agent_gone();
            if change != ConsentChange::None || s.attended {
                ending.push((id.clone(), change));
            } else {
                let event = session_event(id, Kind::AgentOffline, "agent_disconnected");
                for v in s.viewers.values() {
                    let _ = v.tx.try_send(Outbound::Frame(event.clone()));
                }
            }
        }
        ending
    }

    /// Records what an agent reported about its USB (hello, status); `false` when the
    /// connection is no longer the machine's current one.
    pub fn set_agent_usb(&self, machine_id: &str, conn_id: u64, usb: HostUsb) -> bool {
        let mut inner = self.lock();
        match inner.agents.get_mut(machine_id) {
            Some(a) if a.conn_id == conn_id => {
                a.usb = usb;
                true
            }
            _ => false,
        }
    }

    /// The access rule's inputs a live session supplies: its scope and its consent.
    /// `None` when the session is not live.
    pub fn session_access(&self, session_id: &str) -> Option<(Scope, Consent)> {
        let inner = self.lock();
        let s = inner.sessions.get(session_id)?;
        Some((s.scope, s.consent_input()))
    }

    /// The one access rule applied to a viewer with `rights` in live session `s`, with
    /// the agent's USB state now (an offline agent shares nothing).
    fn grant_in(
        inner: &Inner,
        s: &SessionLink,
        rights: CallerRights,
    ) -> Result<ViewerGrant, GrantRefusal> {
        let host = inner.agents.get(&s.machine_id).map(|a| a.usb);
        decide_viewer_grant(&AccessInputs {
            caller: rights,
            session: s.scope,
            consent: s.consent_input(),
            host: Some(host.unwrap_or_default()),
        })
    }

    /// Tenant of a live session.
    pub fn session_tenant(&self, session_id: &str) -> Option<String> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|s| s.tenant_id.clone())
    }

    /// Closes and unregisters the agent connection of `machine_id` (the machine was deleted);
    /// returns the sessions that must end.
    pub fn close_machine(&self, machine_id: &str) -> Vec<(String, ConsentChange)> {
        self.close_machine_because(machine_id, "machine deleted")
    }

    /// [`Self::close_machine`] with the close reason the agent is given.
    pub fn close_machine_because(
        &self,
        machine_id: &str,
        reason: &'static str,
    ) -> Vec<(String, ConsentChange)> {
        let mut inner = self.lock();
        if let Some(a) = inner.agents.get(machine_id) {
            let _ = a.tx.try_send(Outbound::Close(close::REVOKED, reason));
        }
        Self::detach(&mut inner, machine_id)
    }

    /// Closes and unregisters every agent connection authenticated with `key_id` (the
    /// machine is offline when this returns); returns the sessions that must end.
    pub fn close_key(&self, key_id: &str) -> Vec<(String, ConsentChange)> {
        let mut inner = self.lock();
        let machines: Vec<String> = inner
            .agents
            .iter()
            .filter(|(_, a)| a.key_id.as_deref() == Some(key_id))
            .map(|(m, _)| m.clone())
            .collect();
        let mut ending = Vec::new();
        for machine_id in machines {
            if let Some(a) = inner.agents.get(&machine_id) {
                let _ =
                    a.tx.try_send(Outbound::Close(close::REVOKED, "agent key revoked"));
            }
            ending.extend(Self::detach(&mut inner, &machine_id));
        }
        ending
    }

    /// Adds a live session.
    pub fn open_session(&self, session_id: &str, link: SessionLink) {
        self.lock().sessions.insert(session_id.to_owned(), link);
    }

    /// Consent state of a live session.
    pub fn consent(&self, session_id: &str) -> Option<ConsentState> {
        self.lock().sessions.get(session_id).map(|s| s.consent)
    }

    /// The server is stopping: every agent and viewer socket is told to go (`GOING_AWAY`), so
    /// agents reconnect with backoff (to another instance behind the same address) and
    /// viewers rejoin; USB claims wait on the hosts for their resume. Returns how many sockets
    /// were told.
    pub fn drain(&self, reason: &'static str) -> usize {
        let inner = self.lock();
        let viewers = inner.sessions.values().flat_map(|s| s.viewers.values());
        let sockets = inner
            .agents
            .values()
            .map(|a| &a.tx)
            .chain(viewers.map(|v| &v.tx));
        let mut told = 0;
        for tx in sockets {
            told += usize::from(
                tx.try_send(Outbound::Close(close::GOING_AWAY, reason))
                    .is_ok(),
            );
        }
        told
    }

    /// Whether any agent or viewer is still connected.
    pub fn has_sockets(&self) -> bool {
        let inner = self.lock();
        !inner.agents.is_empty() || inner.sessions.values().any(|s| !s.viewers.is_empty())
    }

    /// Live session ids of a tenant.
    pub fn live_sessions(&self, tenant_id: &str) -> Vec<String> {
        let inner = self.lock();
        inner
            .sessions
            .iter()
            .filter(|(_, s)| s.tenant_id == tenant_id)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Number of viewers in a live session.
    pub fn viewer_count(&self, session_id: &str) -> usize {
        self.lock()
            .sessions
            .get(session_id)
            .map_or(0, |s| s.viewers.len())
    }

    /// The agent of `machine_id` answered consent for `session_id`. Answers about a
    /// session of another machine are ignored.
    pub fn consent_answer(
        &self,
        session_id: &str,
        machine_id: &str,
        granted: bool,
        answered: Option<Scope>,
        now: Instant,
    ) -> ConsentChange {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(s) = inner.sessions.get_mut(session_id) else {
            return ConsentChange::None;
        };
        if s.machine_id != machine_id {
            return ConsentChange::None;
        }
        let change = s.consent.handle_answer(now, granted);
        if change == ConsentChange::Granted {
            s.consented = Some(answered.map_or(s.scope, |a| s.scope.narrowed_to(a)));
            let event = session_event(session_id, Kind::ConsentGranted, "");
            for v in s.viewers.values() {
                let _ = v.tx.try_send(Outbound::Frame(event.clone()));
            }
            // Viewers that joined while consent was pending were not announced to the agent.
            if let Some(agent) = inner.agents.get(machine_id) {
                for (id, v) in s.viewers.iter() {
                    let notice = ViewerNotice {
                        kind: Kind::ViewerJoined,
                        access: "",
                        user_id: &v.user_id,
                        technician: &v.technician,
                        resumable: false,
                    };
                    let notice = notice.encode(session_id, *id);
                    let _ = agent.tx.try_send(Outbound::Frame(notice));
                }
            }
        }
        change
    }

    /// The consent timer fired.
    pub fn handle_consent_timeout(&self, session_id: &str, now: Instant) -> ConsentChange {
        let mut inner = self.lock();
        inner
            .sessions
            .get_mut(session_id)
            .map_or(ConsentChange::None, |s| s.consent.handle_timeout(now))
    }

    /// Removes a live session: viewers get an `ended` event and are closed with
    /// `close_code`; the agent is told, and an attended agent is closed too.
    pub fn end_session(
        &self,
        session_id: &str,
        reason: &str,
        close_code: u16,
    ) -> Option<SessionLink> {
        let mut inner = self.lock();
        let s = inner.sessions.remove(session_id)?;
        let event = session_event(session_id, Kind::Ended, reason);
        for v in s.viewers.values() {
            let _ = v.tx.try_send(Outbound::Frame(event.clone()));
            let _ = v.tx.try_send(Outbound::Close(close_code, "session ended"));
        }
        if let Some(agent) = inner.agents.get(&s.machine_id) {
            let _ = agent.tx.try_send(Outbound::Frame(event));
            if s.attended {
                let _ = agent
                    .tx
                    .try_send(Outbound::Close(close_code, "session ended"));
            }
        }
        Some(s)
    }

    /// Joins a viewer to a live session of `tenant_id` if the access rule lets it in;
    /// returns its id and its grant (a viewer may wait in a pending session but receives
    /// nothing).
    ///
    /// # Errors
    /// [`JoinError`].
    pub fn join_viewer(
        &self,
        session_id: &str,
        tenant_id: &str,
        link: ViewerLink,
    ) -> Result<(u64, ViewerGrant), JoinError> {
        let id = self.next_id();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let s = inner
            .sessions
            .get_mut(session_id)
            .filter(|s| s.tenant_id == tenant_id)
            .ok_or(JoinError::NoSession)?;
        if s.viewers.len() >= MAX_VIEWERS_PER_SESSION {
            return Err(JoinError::Full);
        }
        let host = inner.agents.get(&s.machine_id).map(|a| a.usb);
        let grant = decide_viewer_grant(&AccessInputs {
            caller: link.rights,
            session: s.scope,
            consent: s.consent_input(),
            host: Some(host.unwrap_or_default()),
        })
        .map_err(JoinError::Refused)?;
        s.viewers.insert(id, link);
        s.idle_since = None;
        Ok((id, grant))
    }

    /// Replaces a joined viewer's rights (after a role change) and returns its new grant;
    /// `None` when the viewer is no longer in the session.
    pub fn set_viewer_rights(
        &self,
        session_id: &str,
        viewer_id: u64,
        rights: CallerRights,
    ) -> Option<Result<ViewerGrant, GrantRefusal>> {
        let mut inner = self.lock();
        let v = inner
            .sessions
            .get_mut(session_id)?
            .viewers
            .get_mut(&viewer_id)?;
        v.rights = rights;
        let s = inner.sessions.get(session_id)?;
        Some(Self::grant_in(&inner, s, rights))
    }

    /// Removes a viewer; the session is idle from `now` when it was the last.
    pub fn leave_viewer(&self, session_id: &str, viewer_id: u64, now: Instant) {
        if let Some(s) = self.lock().sessions.get_mut(session_id) {
            s.viewers.remove(&viewer_id);
            if s.viewers.is_empty() {
                s.idle_since = Some(now);
            }
        }
    }

    /// Live sessions nobody has watched for at least `idle`: (session id, tenant id).
    pub fn idle_sessions(&self, now: Instant, idle: Duration) -> Vec<(String, String)> {
        self.lock()
            .sessions
            .iter()
            .filter(|(_, s)| s.idle_since.is_some_and(|t| now.duration_since(t) >= idle))
            .map(|(id, s)| (id.clone(), s.tenant_id.clone()))
            .collect()
    }

    /// Chokepoint for viewer -> agent: the viewer's grant now, and the agent's queue only
    /// if consent allows traffic and the agent is online. `None` when the viewer is no
    /// longer in the session.
    pub fn route_from_viewer(&self, session_id: &str, viewer_id: u64) -> Option<ViewerRoute> {
        let inner = self.lock();
        let s = inner.sessions.get(session_id)?;
        let viewer = s.viewers.get(&viewer_id)?;
        Some(ViewerRoute {
            grant: Self::grant_in(&inner, s, viewer.rights),
            agent: Self::agent_if_allowed(&inner, s),
        })
    }

    /// Chokepoint for server -> agent session notices (viewer joined/left): the agent's
    /// queue only if consent allows traffic.
    pub fn route_to_agent(&self, session_id: &str) -> Option<Tx> {
        let inner = self.lock();
        let s = inner.sessions.get(session_id)?;
        Self::agent_if_allowed(&inner, s)
    }

    fn agent_if_allowed(inner: &Inner, s: &SessionLink) -> Option<Tx> {
        if !traffic_allowed(s) {
            return None;
        }
        inner.agents.get(&s.machine_id).map(|a| a.tx.clone())
    }

    /// Chokepoint for agent -> viewers: the queues of the addressed viewers (all when
    /// `viewer_id == 0`), only if the session belongs to this agent connection's machine
    /// and consent allows traffic.
    pub fn route_from_agent(
        &self,
        machine_id: &str,
        conn_id: u64,
        session_id: &str,
        viewer_id: u64,
    ) -> Vec<(Tx, Arc<ViewerBudget>)> {
        let inner = self.lock();
        let current = inner
            .agents
            .get(machine_id)
            .is_some_and(|a| a.conn_id == conn_id);
        let Some(s) = inner.sessions.get(session_id) else {
            return Vec::new();
        };
        if !current || s.machine_id != machine_id || !traffic_allowed(s) {
            return Vec::new();
        }
        s.viewers
            .iter()
            .filter(|(id, _)| viewer_id == 0 || **id == viewer_id)
            .map(|(_, v)| (v.tx.clone(), Arc::clone(&v.budget)))
            .collect()
    }

    /// What the machine's connected agent last reported about USB (`None` when offline).
    pub fn agent_usb(&self, machine_id: &str) -> Option<HostUsb> {
        self.lock().agents.get(machine_id).map(|a| a.usb)
    }

    /// Remembers who a viewer id stands for (bounded; see [`ViewerIdentity`]).
    pub fn remember_viewer(&self, viewer_id: u64, identity: ViewerIdentity) {
        let mut inner = self.lock();
        inner.identities.insert(viewer_id, identity);
        while inner.identities.len() > MAX_VIEWER_IDENTITIES {
            inner.identities.pop_first();
        }
    }

    /// Who `viewer_id` stood for, if it was a viewer of a session on `machine_id`.
    pub fn viewer_identity(&self, machine_id: &str, viewer_id: u64) -> Option<ViewerIdentity> {
        self.lock()
            .identities
            .get(&viewer_id)
            .filter(|i| i.machine_id == machine_id)
            .cloned()
    }

    /// Machine of a live session.
    pub fn session_machine(&self, session_id: &str) -> Option<String> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|s| s.machine_id.clone())
    }

    /// The video budgets of a live session's viewers (diagnostics and tests).
    #[doc(hidden)]
    pub fn viewer_budgets(&self, session_id: &str) -> Vec<Arc<ViewerBudget>> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|s| s.viewers.values().map(|v| Arc::clone(&v.budget)).collect())
            .unwrap_or_default()
    }

    /// Counts for metrics and benchmarks: (agents, sessions, viewers).
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        let viewers = inner.sessions.values().map(|s| s.viewers.len()).sum();
        (inner.agents.len(), inner.sessions.len(), viewers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reach_proto::access::{UsbDenial, ViewerAccess};

    fn queue() -> (Tx, Rx) {
        queue::channel(16)
    }

    fn setup(consent: ConsentState) -> (Hub, Rx, Rx, u64) {
        let hub = Hub::default();
        let (atx, arx) = queue();
        let link = AgentLink {
            conn_id: 1,
            tenant_id: "t".into(),
            key_id: Some("k".into()),
            usb: HostUsb::default(),
            tx: atx,
        };
        hub.register_agent("m", link);
        hub.open_session(
            "s",
            SessionLink {
                tenant_id: "t".into(),
                machine_id: "m".into(),
                attended: true,
                scope: Scope {
                    access: ViewerAccess::Control,
                    usb: false,
                },
                consent,
                consented: None,
                idle_since: Some(Instant::now()),
                viewers: Viewers::new(),
            },
        );
        let (vtx, vrx) = queue();
        let viewer = ViewerLink {
            tx: vtx,
            rights: CallerRights::ALL,
            user_id: "u".into(),
            technician: "u".into(),
            budget: Arc::default(),
        };
        let (vid, _) = hub.join_viewer("s", "t", viewer).unwrap();
        (hub, arx, vrx, vid)
    }

    #[test]
    fn nothing_is_routed_while_consent_is_pending() {
        let now = Instant::now();
        let (hub, _a, _v, vid) = setup(ConsentState::pending(now, CONSENT_TIMEOUT));
        assert!(hub.route_from_viewer("s", vid).unwrap().agent.is_none());
        assert!(hub.route_from_agent("m", 1, "s", 0).is_empty());
        assert_eq!(
            hub.consent_answer("s", "m", true, None, now),
            ConsentChange::Granted
        );
        assert!(hub.route_from_viewer("s", vid).unwrap().agent.is_some());
        assert_eq!(hub.route_from_agent("m", 1, "s", 0).len(), 1);
    }

    #[test]
    fn granting_consent_announces_the_waiting_viewers_to_the_agent_with_their_user() {
        let now = Instant::now();
        let (hub, mut agent, _v, vid) = setup(ConsentState::pending(now, CONSENT_TIMEOUT));
        assert!(agent.try_recv().is_none(), "nothing before consent");
        hub.consent_answer("s", "m", true, None, now);
        let Some(Outbound::Frame(bytes)) = agent.try_recv() else {
            panic!("the agent hears of the viewer");
        };
        let env = codec::decode_bytes(bytes, usize::MAX).unwrap();
        assert_eq!((env.session_id.as_str(), env.viewer_id), ("s", vid));
        let Some(Body::SessionEvent(event)) = env.body else {
            panic!("a session event");
        };
        assert_eq!(event.kind(), Kind::ViewerJoined);
        assert_eq!((event.user_id.as_str(), event.resumable), ("u", false));
    }

    #[test]
    fn another_machine_cannot_answer_or_send_for_a_session() {
        let now = Instant::now();
        let (hub, _a, _v, _) = setup(ConsentState::pending(now, CONSENT_TIMEOUT));
        assert_eq!(
            hub.consent_answer("s", "other", true, None, now),
            ConsentChange::None
        );
        assert!(hub.route_from_agent("other", 1, "s", 0).is_empty());
        assert!(hub.route_from_agent("m", 99, "s", 0).is_empty());
    }

    #[test]
    fn viewers_of_another_tenant_cannot_join() {
        let (hub, _a, _v, _) = setup(ConsentState::NotRequired);
        let (tx, _rx) = queue();
        let link = ViewerLink {
            tx,
            rights: CallerRights::ALL,
            user_id: "x".into(),
            technician: "x".into(),
            budget: Arc::default(),
        };
        assert_eq!(
            hub.join_viewer("s", "other", link).err(),
            Some(JoinError::NoSession)
        );
    }

    #[test]
    fn a_viewers_usb_grant_follows_the_host_switch_and_its_rights_live() {
        let (hub, _a, _v, vid) = setup(ConsentState::NotRequired);
        if let Some(s) = hub.lock().sessions.get_mut("s") {
            s.scope.usb = true;
        }
        let usb_now = |hub: &Hub| hub.route_from_viewer("s", vid).unwrap().grant.unwrap().usb;
        assert_eq!(usb_now(&hub), Err(UsbDenial::AgentWithoutUsb));
        let on = HostUsb {
            supported: true,
            enabled: true,
        };
        assert!(hub.set_agent_usb("m", 1, on));
        assert_eq!(usb_now(&hub), Ok(()));
        assert!(
            !hub.set_agent_usb("m", 99, HostUsb::default()),
            "an old connection"
        );
        let watcher = CallerRights {
            view: true,
            ..CallerRights::default()
        };
        let grant = hub.set_viewer_rights("s", vid, watcher).unwrap().unwrap();
        assert_eq!(grant.access, ViewerAccess::ViewOnly);
        assert_eq!(usb_now(&hub), Err(UsbDenial::ViewOnly));
    }

    #[test]
    fn a_narrower_consent_answer_narrows_every_viewer() {
        let now = Instant::now();
        let (hub, _a, _v, vid) = setup(ConsentState::pending(now, CONSENT_TIMEOUT));
        let view_only = Scope {
            access: ViewerAccess::ViewOnly,
            usb: false,
        };
        hub.consent_answer("s", "m", true, Some(view_only), now);
        let route = hub.route_from_viewer("s", vid).unwrap();
        assert_eq!(route.grant.unwrap().access, ViewerAccess::ViewOnly);
        assert!(route.agent.is_some());
    }

    #[test]
    fn a_session_is_idle_only_while_nobody_watches() {
        let now = Instant::now();
        let (hub, _a, _v, vid) = setup(ConsentState::NotRequired);
        let idle = Duration::from_secs(60);
        assert!(
            hub.idle_sessions(now + idle * 2, idle).is_empty(),
            "watched"
        );
        hub.leave_viewer("s", vid, now);
        assert!(hub.idle_sessions(now + idle / 2, idle).is_empty());
        assert_eq!(
            hub.idle_sessions(now + idle, idle),
            vec![("s".to_owned(), "t".to_owned())]
        );
    }

    #[test]
    fn agent_loss_ends_attended_sessions() {
        let (hub, _a, _v, _) = setup(ConsentState::Granted);
        assert!(hub.agent_gone("m", 2).is_empty());
        assert_eq!(
            hub.agent_gone("m", 1),
            vec![("s".to_owned(), ConsentChange::None)]
        );
        assert!(!hub.is_online("m"));
    }

    #[test]
    fn viewer_identities_are_bounded_and_bound_to_their_machine() {
        let hub = Hub::default();
        let identity = |n: u64| ViewerIdentity {
            tenant_id: "t".into(),
            session_id: "s".into(),
            machine_id: "m".into(),
            user_id: format!("u{n}"),
            actor: format!("viewer:u{n}"),
        };
        for n in 1..=(MAX_VIEWER_IDENTITIES as u64 + 1) {
            hub.remember_viewer(n, identity(n));
        }
        assert_eq!(hub.viewer_identity("m", 1), None);
        assert_eq!(hub.viewer_identity("m", 2), Some(identity(2)));
        assert_eq!(hub.viewer_identity("other", 2), None);
    }

    #[test]
    fn ending_a_session_closes_its_viewers() {
        let (hub, _a, mut v, _) = setup(ConsentState::Granted);
        hub.end_session("s", "ended_by_user", close::NORMAL)
            .unwrap();
        assert!(matches!(v.try_recv(), Some(Outbound::Frame(_))));
        assert!(matches!(
            v.try_recv(),
            Some(Outbound::Close(close::NORMAL, _))
        ));
        assert!(hub.route_from_agent("m", 1, "s", 0).is_empty());
    }
}
