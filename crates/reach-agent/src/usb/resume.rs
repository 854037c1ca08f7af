//! Host sessions kept for a viewer that dropped, so the same user can RESUME its claims.
//!
//! A viewer's connection dropping (the server says `VIEWER_LEFT` with `resumable`) parks its
//! [`Runner`] under (session, user): the host session keeps the claims detached for the
//! retention window and closes them when it passes (devices released). A new viewer of the
//! same user in the same session that sends RESUME gets the runner back; the host session then
//! checks the claim's resume token (single-use, rotated on every resume). Viewer ids change
//! with every connection; the user id — which the server verified and stamped on the viewer's
//! `VIEWER_JOINED` — does not, so another user's viewer never reaches a parked runner.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reach_usb::net::{HostRunner, MessageChannel};
use tokio::sync::mpsc;

/// Parked runners kept per (session, user); older ones are released first.
pub(crate) const MAX_PARKED_PER_USER: usize = 16;

/// The user a viewer stands for, as the server stamped it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Owner(String);

impl Owner {
    pub(crate) fn new(user_id: &str) -> Self {
        Self(user_id.to_owned())
    }
}

/// A running host session, fed one transport at a time. Dropping it means no transport will
/// ever come again: the runner closes its claims at once and ends.
pub(crate) struct Runner {
    transports: mpsc::Sender<MessageChannel>,
    owner: Option<Owner>,
}

impl Runner {
    /// Spawns `runner`, owned by `owner` (`None`: the user is unknown, never resumable).
    pub(crate) fn spawn(runner: HostRunner, owner: Option<Owner>) -> Self {
        let (transports, rx) = mpsc::channel(4);
        tokio::spawn(runner.run(rx));
        Self { transports, owner }
    }

    /// The user the host session belongs to.
    pub(crate) fn owner(&self) -> Option<&Owner> {
        self.owner.as_ref()
    }

    /// Hands the host session a new transport (the previous one, if any, is dropped by it).
    pub(crate) fn connect(&self, channel: MessageChannel) {
        if self.transports.try_send(channel).is_err() {
            tracing::warn!("USB host session gone or busy; the viewer's transport is dropped");
        }
    }
}

struct Parked {
    runner: Runner,
    until: Instant,
}

/// Runners waiting for their user to come back.
pub(crate) struct Parking {
    retention: Duration,
    parked: HashMap<(String, Owner), Vec<Parked>>,
}

impl Parking {
    /// Nothing parked; runners are kept for `retention` (zero: never parked).
    pub(crate) fn new(retention: Duration) -> Self {
        Self {
            retention,
            parked: HashMap::new(),
        }
    }

    /// Keeps `runner` of `owner` in `session_id` until the retention window passes.
    pub(crate) fn park(&mut self, session_id: &str, owner: Owner, runner: Runner, now: Instant) {
        if self.retention.is_zero() {
            return;
        }
        let line = self
            .parked
            .entry((session_id.to_owned(), owner))
            .or_default();
        line.push(Parked {
            runner,
            until: now + self.retention,
        });
        if line.len() > MAX_PARKED_PER_USER {
            line.remove(0);
        }
    }

    /// The most recently parked runner of `owner` in `session_id`.
    pub(crate) fn take(&mut self, session_id: &str, owner: &Owner) -> Option<Runner> {
        let key = (session_id.to_owned(), owner.clone());
        let line = self.parked.get_mut(&key)?;
        let parked = line.pop();
        if line.is_empty() {
            self.parked.remove(&key);
        }
        parked.map(|p| p.runner)
    }

    /// Forgets runners whose window passed (their host sessions closed the claims already).
    pub(crate) fn prune(&mut self, now: Instant) {
        self.parked.retain(|_, line| {
            line.retain(|p| p.until > now);
            !line.is_empty()
        });
    }

    /// Releases every runner of a session.
    pub(crate) fn end_session(&mut self, session_id: &str) {
        self.parked.retain(|(s, _), _| s != session_id);
    }

    /// Whether nothing is parked.
    pub(crate) fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }

    /// Releases every runner.
    pub(crate) fn clear(&mut self) {
        self.parked.clear();
    }
}
