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

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(owner: &str) -> (Runner, mpsc::Receiver<MessageChannel>) {
        let (transports, rx) = mpsc::channel(1);
        let runner = Runner {
            transports,
            owner: Some(Owner::new(owner)),
        };
        (runner, rx)
    }

    #[test]
    fn a_parked_runner_goes_back_only_to_its_user_in_its_session() {
        let now = Instant::now();
        let mut parking = Parking::new(Duration::from_secs(30));
        let (r, _rx) = runner("alice");
        parking.park("s1", Owner::new("alice"), r, now);
        assert!(parking.take("s1", &Owner::new("bob")).is_none());
        assert!(parking.take("s2", &Owner::new("alice")).is_none());
        let back = parking.take("s1", &Owner::new("alice")).expect("alice's");
        assert_eq!(back.owner(), Some(&Owner::new("alice")));
        assert!(parking.is_empty());
    }

    #[test]
    fn a_runner_is_released_when_its_window_passes() {
        let now = Instant::now();
        let mut parking = Parking::new(Duration::from_secs(30));
        let (r, mut rx) = runner("alice");
        parking.park("s1", Owner::new("alice"), r, now);
        parking.prune(now + Duration::from_secs(29));
        assert!(!parking.is_empty());
        parking.prune(now + Duration::from_secs(30));
        assert!(parking.is_empty());
        assert!(
            matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)),
            "the runner learns no transport will come"
        );
    }

    #[test]
    fn without_a_window_nothing_is_parked_and_ending_a_session_releases_its_runners() {
        let now = Instant::now();
        let mut none = Parking::new(Duration::ZERO);
        none.park("s1", Owner::new("alice"), runner("alice").0, now);
        assert!(none.is_empty());

        let mut parking = Parking::new(Duration::from_secs(30));
        parking.park("s1", Owner::new("alice"), runner("alice").0, now);
        parking.park("s2", Owner::new("alice"), runner("alice").0, now);
        parking.end_session("s1");
        assert!(parking.take("s1", &Owner::new("alice")).is_none());
        assert!(parking.take("s2", &Owner::new("alice")).is_some());
    }

    #[test]
    fn a_user_keeps_at_most_a_bounded_number_of_parked_runners() {
        let now = Instant::now();
        let mut parking = Parking::new(Duration::from_secs(30));
        for _ in 0..MAX_PARKED_PER_USER + 3 {
            parking.park("s1", Owner::new("alice"), runner("alice").0, now);
        }
        let mut taken = 0;
        while parking.take("s1", &Owner::new("alice")).is_some() {
            taken += 1;
        }
        assert_eq!(taken, MAX_PARKED_PER_USER);
    }
}
