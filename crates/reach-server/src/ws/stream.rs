//! Video stream control: viewers ask for a stream, the server decides its codec.
//!
//! A viewer sends `StartStream` (its codec preference) when it joins and when consent is
//! granted; the relay forwards it only through the consent chokepoint. Before forwarding, the
//! server stamps the codec with [`select_video_codec`] from what the machine advertised, so an
//! altered viewer cannot make an agent encode something it does not support. A `StopStream`
//! from one viewer is dropped while others still watch; when the last viewer leaves the server
//! stops the stream itself.

use bytes::Bytes;
use reach_proto::codec;
use reach_proto::policy::select_video_codec;
use reach_proto::v1::{self, envelope::Body};

use crate::relay::hub::Outbound;
use crate::relay::store::{machines, sessions};
use crate::state::AppState;

/// Highest frame rate a viewer may ask for.
pub(crate) const MAX_FPS: u32 = 60;

/// What to do with a stream-control message from a viewer.
pub(crate) enum StreamVerdict {
    /// Forward (possibly rewritten).
    Forward,
    /// Drop silently.
    Drop,
}

/// Rewrites `StartStream` with the server's codec choice; drops a `StopStream` while other
/// viewers still watch.
pub(crate) async fn judge(
    state: &AppState,
    tenant_id: &str,
    session_id: &str,
    body: &mut Body,
) -> StreamVerdict {
    match body {
        Body::StartStream(start) => {
            let supports_h264 = Box::pin(machine_supports_h264(state, tenant_id, session_id)).await;
            let codec = select_video_codec(supports_h264, start.codec());
            start.set_codec(codec);
            start.max_fps = match start.max_fps {
                0 => 30,
                fps => fps.min(MAX_FPS),
            };
            StreamVerdict::Forward
        }
        Body::StopStream(_) if state.relay.viewer_count(session_id) > 1 => StreamVerdict::Drop,
        _ => StreamVerdict::Forward,
    }
}

/// Stops the agent's stream once nobody watches (through the chokepoint, like everything).
pub(crate) fn stop_if_unwatched(state: &AppState, session_id: &str) {
    if state.relay.viewer_count(session_id) > 0 {
        return;
    }
    let Some(tx) = state.relay.route_to_agent(session_id) else {
        return;
    };
    let env = codec::envelope(session_id, Body::StopStream(v1::StopStream {}));
    let _ = tx.try_send(Outbound::Frame(Bytes::from(codec::encode(&env))));
}

async fn machine_supports_h264(state: &AppState, tenant_id: &str, session_id: &str) -> bool {
    let Ok(Some(session)) = sessions::get(&state.db, tenant_id, session_id).await else {
        return false;
    };
    let Ok(Some(machine)) = machines::get(&state.db, tenant_id, &session.machine_id).await else {
        return false;
    };
    machine.capabilities["supports_h264"]
        .as_bool()
        .unwrap_or(false)
}
