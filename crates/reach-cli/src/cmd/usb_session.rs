//! The technician's USB channel through a live session, shared by `reach usb remote` and
//! `reach usb attach --session`: join with the stored login, refuse a session without USB with
//! the server's reason, and watch the session for the end of the connection.

use std::path::Path;

use anyhow::{Context as _, bail};
use reach_agent::viewer::LiveViewer;
use reach_agent::ws::Incoming;
use reach_proto::v1::envelope::Body;
use reach_proto::v1::session_event::Kind;
use reach_usb::client::UsbClient;
use reach_usbip::attach::Connection;

use super::login::Login;

/// Joins `session` with the stored login and starts a USB client over it.
///
/// # Errors
/// Not logged in, the join refused (no such session, no access), or USB unavailable in the
/// session (with the server's reason).
pub(crate) async fn join(
    config_dir: Option<&Path>,
    session: &str,
) -> anyhow::Result<(LiveViewer, UsbClient)> {
    let login = Login::load(config_dir)?;
    let joined = login
        .api()?
        .join(session)
        .await
        .with_context(|| format!("joining session {session}"))?;
    if !joined.usb {
        let why = joined.usb_unavailable.clone();
        joined.leave().await;
        bail!("USB is not available in session {session}: {why}");
    }
    let mut viewer = joined.into_live();
    let client = viewer.usb_client().context("the session's USB channel")?;
    Ok((viewer, client))
}

/// A [`Connection`] for `reach usb attach` that keeps `viewer` joined and reports when the
/// session can no longer carry the device.
pub(crate) fn connection(viewer: LiveViewer, client: UsbClient) -> Connection {
    Connection {
        client,
        lost: Box::pin(watch(viewer)),
    }
}

/// Resolves when the viewer socket closes, the session ends, or the host's agent goes offline
/// (its claims die with it).
async fn watch(mut viewer: LiveViewer) -> String {
    while let Some(incoming) = viewer.recv().await {
        match incoming {
            Incoming::Closed { code, reason } => {
                return format!("the session connection closed ({code}: {reason})");
            }
            Incoming::Envelope(env) => {
                if let Some(Body::SessionEvent(event)) = env.body {
                    match event.kind() {
                        Kind::Ended => return format!("the session ended ({})", event.reason),
                        Kind::AgentOffline => {
                            return "the host's agent went offline".to_owned();
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    "the session connection ended".to_owned()
}
