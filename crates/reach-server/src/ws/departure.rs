//! How a joined viewer's socket ended, and whether its USB claims may be resumed.

use super::Refusal;

/// How a joined viewer's socket ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The viewer closed its socket normally (it left).
    Left,
    /// The connection dropped (no close, or an abnormal one): its USB claims may be resumed.
    Dropped,
    /// The socket failed (reset, or a message it cannot read): closed with this reason, and
    /// resumable like a drop.
    Broken(Refusal),
    /// The server closes it (revoked, ended, too slow, misbehaving).
    Refused(Refusal),
}

impl Ended {
    /// Whether the agent keeps the viewer's USB claims for the same user to resume.
    pub(super) fn resumable(&self) -> bool {
        matches!(self, Self::Dropped | Self::Broken(_))
    }

    /// The close the server sends, if it closes the socket.
    pub(super) fn refusal(self) -> Option<Refusal> {
        match self {
            Self::Refused(r) | Self::Broken(r) => Some(r),
            Self::Left | Self::Dropped => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reach_proto::close;

    #[test]
    fn only_a_dropped_or_broken_connection_may_resume() {
        let refusal = || Refusal::new(close::POLICY, "x");
        assert!(Ended::Dropped.resumable());
        assert!(Ended::Broken(refusal()).resumable());
        assert!(!Ended::Left.resumable());
        assert!(!Ended::Refused(Refusal::new(close::REVOKED, "revoked")).resumable());
    }

    #[test]
    fn the_server_closes_what_it_refused_or_could_not_read() {
        assert!(Ended::Left.refusal().is_none());
        assert!(Ended::Dropped.refusal().is_none());
        let r = Ended::Refused(Refusal::new(close::REVOKED, "revoked")).refusal();
        assert_eq!(r.map(|r| r.code), Some(close::REVOKED));
    }
}
