//! What the server tells an agent about a viewer: who it is and whether it may come back.

use bytes::Bytes;
use reach_proto::codec;
use reach_proto::v1::{self, envelope::Body, session_event::Kind};

/// A `VIEWER_JOINED` / `VIEWER_LEFT` notice for the agent: who the viewer is (the
/// authenticated user, which the agent binds USB resume to) and whether it may come back.
#[derive(Debug, Clone, Copy)]
pub struct ViewerNotice<'a> {
    /// Joined or left.
    pub kind: Kind,
    /// The viewer's access (`control`, `view_only`).
    pub access: &'a str,
    /// The authenticated user.
    pub user_id: &'a str,
    /// The user's name.
    pub technician: &'a str,
    /// Left only: the connection dropped, the user may resume its USB claims.
    pub resumable: bool,
}

impl ViewerNotice<'_> {
    /// The encoded envelope for viewer `viewer_id` of `session_id`.
    pub fn encode(&self, session_id: &str, viewer_id: u64) -> Bytes {
        let body = Body::SessionEvent(v1::SessionEvent {
            kind: self.kind.into(),
            reason: self.access.to_owned(),
            user_id: self.user_id.to_owned(),
            technician: self.technician.to_owned(),
            resumable: self.resumable,
        });
        let mut env = codec::envelope(session_id, body);
        env.viewer_id = viewer_id;
        Bytes::from(codec::encode(&env))
    }
}
