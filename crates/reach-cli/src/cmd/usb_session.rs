//! The technician's USB channel through a live session, shared by `reach usb remote` and
//! `reach usb attach --session`: join with the stored login, refuse a session without USB with
//! the server's reason, and watch the session for the end of the connection.

use std::path::Path;

use reach_client::viewer::LiveViewer;
use reach_client::ws::Incoming;
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
    Ok(reach_client::remote::join_usb(&login.api()?, session).await?)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use reach_client::viewer::ApiClient;
    use reach_server::{AppState, Config};
    use serde_json::json;

    use super::*;
    use reach_bench::usb_relay::{agent_config, drive_agent, enroll, wait_connected};

    const WAIT: Duration = Duration::from_secs(15);

    async fn attach_connection(api: &ApiClient, machine_id: &str) -> (String, Connection) {
        let body = json!({"machine_id": machine_id, "usb": true});
        let session = api.post_json("/api/sessions", &body).await.unwrap();
        let id = session["id"].as_str().unwrap().to_owned();
        let mut viewer = api.join(&id).await.unwrap().into_live();
        let client = viewer.usb_client().unwrap();
        (id, connection(viewer, client))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_attach_learns_when_its_session_ends_or_the_hosts_agent_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.admin_password = Some("session-watch-password".to_owned().into());
        let (state, _) = AppState::open(config).await.unwrap();
        let running = reach_server::server::start(state).await.unwrap();
        let url = running.url();
        let mut api = ApiClient::new(&url).unwrap();
        api.login("admin", "session-watch-password").await.unwrap();
        let (machine_id, key) = enroll(&api).await.unwrap();
        let mut agent = reach_agent::spawn(agent_config(&url, key));
        wait_connected(&mut agent).await.unwrap();
        let (stop_agent, agent_task) = drive_agent(agent);

        // A user ends the session.
        let (first, by_user) = attach_connection(&api, &machine_id).await;
        let path = format!("/api/sessions/{first}");
        api.request(reqwest::Method::DELETE, &path, None)
            .await
            .unwrap();
        let why = tokio::time::timeout(WAIT, by_user.lost).await.unwrap();
        assert!(why.contains("session"), "{why}");

        // In a new session (a live one is shared, not created twice), the host's agent stops:
        // the claims are gone with it.
        let (second, by_agent) = attach_connection(&api, &machine_id).await;
        assert_ne!(first, second);
        stop_agent.store(2, Ordering::Relaxed);
        let why = tokio::time::timeout(WAIT, by_agent.lost).await.unwrap();
        assert_eq!(why, "the host's agent went offline");
        let _ = agent_task.await;
        running.shutdown().await.unwrap();
    }
}
