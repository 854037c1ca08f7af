//! The consent state machine of one session.
//!
//! Attended sessions start [`ConsentState::Pending`]; only an explicit yes grants.
//! No, the 60-second timeout, a closed prompt or an agent disconnect deny. Managed
//! sessions start [`ConsentState::NotRequired`] unless the machine's policy asks.
//! Sans-IO: feed it `handle_*` with the current time and ask `poll_timeout`.

use std::time::Instant;

/// Why consent was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The person said no (or closed the prompt).
    Refused,
    /// Nobody answered in time.
    TimedOut,
    /// The agent went away while the prompt was open.
    AgentGone,
}

impl DenyReason {
    /// Stable name for audit records and session events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "consent_refused",
            Self::TimedOut => "consent_timeout",
            Self::AgentGone => "agent_disconnected",
        }
    }
}

/// Where consent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    /// No prompt needed (managed machine without a consent policy).
    NotRequired,
    /// Waiting for an answer until `deadline`.
    Pending {
        /// When the server denies on its own.
        deadline: Instant,
    },
    /// The person said yes.
    Granted,
    /// Final: the session must be torn down.
    Denied(DenyReason),
}

/// What a `handle_*` call changed, for the caller to act on (audit, notify, tear down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentChange {
    /// Nothing changed (duplicate or late answer, early timer).
    None,
    /// Now granted.
    Granted,
    /// Now denied.
    Denied(DenyReason),
}

impl ConsentState {
    /// A new pending prompt at `now` that times out after `timeout`.
    pub fn pending(now: Instant, timeout: std::time::Duration) -> Self {
        Self::Pending {
            deadline: now + timeout,
        }
    }

    /// Whether frames, input and USB may flow: only `Granted` and `NotRequired`.
    pub fn allows_traffic(&self) -> bool {
        matches!(self, Self::Granted | Self::NotRequired)
    }

    /// The agent answered. A yes after the deadline is a timeout, not a grant.
    pub fn handle_answer(&mut self, now: Instant, granted: bool) -> ConsentChange {
        let Self::Pending { deadline } = *self else {
            return ConsentChange::None;
        };
        let next = if now >= deadline {
            Self::Denied(DenyReason::TimedOut)
        } else if granted {
            Self::Granted
        } else {
            Self::Denied(DenyReason::Refused)
        };
        self.set(next)
    }

    /// Time passed; denies when the deadline is reached.
    pub fn handle_timeout(&mut self, now: Instant) -> ConsentChange {
        match *self {
            Self::Pending { deadline } if now >= deadline => {
                self.set(Self::Denied(DenyReason::TimedOut))
            }
            _ => ConsentChange::None,
        }
    }

    /// The agent disconnected; a pending prompt is denied.
    pub fn handle_agent_gone(&mut self) -> ConsentChange {
        match *self {
            Self::Pending { .. } => self.set(Self::Denied(DenyReason::AgentGone)),
            _ => ConsentChange::None,
        }
    }

    /// When the caller must call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Pending { deadline } => Some(*deadline),
            _ => None,
        }
    }

    /// Stable name for the database and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::Pending { .. } => "pending",
            Self::Granted => "granted",
            Self::Denied(_) => "denied",
        }
    }

    fn set(&mut self, next: Self) -> ConsentChange {
        *self = next;
        match next {
            Self::Granted => ConsentChange::Granted,
            Self::Denied(r) => ConsentChange::Denied(r),
            _ => ConsentChange::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::CONSENT_TIMEOUT;
    use std::time::Duration;

    fn pending() -> (Instant, ConsentState) {
        let t0 = Instant::now();
        (t0, ConsentState::pending(t0, CONSENT_TIMEOUT))
    }

    #[test]
    fn pending_consent_lets_nothing_through() {
        let (_, c) = pending();
        assert!(!c.allows_traffic());
        assert!(ConsentState::NotRequired.allows_traffic());
    }

    #[test]
    fn an_explicit_yes_grants() {
        let (t0, mut c) = pending();
        assert_eq!(
            c.handle_answer(t0 + Duration::from_secs(5), true),
            ConsentChange::Granted
        );
        assert!(c.allows_traffic());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn a_no_denies_for_good() {
        let (t0, mut c) = pending();
        assert_eq!(
            c.handle_answer(t0, false),
            ConsentChange::Denied(DenyReason::Refused)
        );
        assert_eq!(c.handle_answer(t0, true), ConsentChange::None);
        assert!(!c.allows_traffic());
    }

    #[test]
    fn silence_for_sixty_seconds_denies() {
        let (t0, mut c) = pending();
        assert_eq!(c.poll_timeout(), Some(t0 + CONSENT_TIMEOUT));
        assert_eq!(
            c.handle_timeout(t0 + Duration::from_secs(59)),
            ConsentChange::None
        );
        assert_eq!(
            c.handle_timeout(t0 + CONSENT_TIMEOUT),
            ConsentChange::Denied(DenyReason::TimedOut)
        );
    }

    #[test]
    fn a_late_yes_is_a_timeout() {
        let (t0, mut c) = pending();
        assert_eq!(
            c.handle_answer(t0 + Duration::from_secs(61), true),
            ConsentChange::Denied(DenyReason::TimedOut)
        );
    }

    #[test]
    fn agent_disconnect_while_pending_denies() {
        let (_, mut c) = pending();
        assert_eq!(
            c.handle_agent_gone(),
            ConsentChange::Denied(DenyReason::AgentGone)
        );
        let mut granted = ConsentState::Granted;
        assert_eq!(granted.handle_agent_gone(), ConsentChange::None);
    }
}
