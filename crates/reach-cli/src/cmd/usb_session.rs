//! The technician's USB channel through a live session, shared by `reach usb remote` and
//! `reach usb attach --session`: join with the stored login, refuse a session without USB with
//! the server's reason, and watch the session for the end of the connection. A dropped viewer
//! socket is not the end for attach: it rejoins the session and RESUMEs the claims (see
//! [`Rejoin`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reach_client::ClientError;
use reach_client::viewer::{ApiClient, LiveViewer, ViewerSender, server_released};
use reach_client::ws::Incoming;
use reach_proto::v1::envelope::Body;
use reach_proto::v1::session_event::Kind;
use reach_usb::UsbError;
use reach_usb::client::UsbClient;
use reach_usb::proto::DeviceInfo;
use reach_usbip::attach::{Connection, Progress};

use super::login::Login;

/// How long attach tries to rejoin after a drop: the host's agent keeps the claims this long
/// (`reach_agent::usb::CLAIM_RETENTION`).
pub(crate) const RESUME_WINDOW: Duration = Duration::from_secs(30);
/// First and longest pause between rejoin attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(2));
/// Bounds one rejoin attempt (join plus RESUME).
const ATTEMPT_WAIT: Duration = Duration::from_secs(10);

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

/// How attach gets back into its session after the viewer socket dropped.
#[derive(Debug, Clone)]
pub(crate) struct Rejoin {
    /// The technician's login (the same user: the host resumes only its own claims).
    pub api: ApiClient,
    /// The session joined.
    pub session: String,
    /// How long to keep trying.
    pub window: Duration,
}

impl Rejoin {
    /// With the stored login.
    pub(crate) fn load(config_dir: Option<&Path>, session: &str) -> anyhow::Result<Self> {
        Ok(Self {
            api: Login::load(config_dir)?.api()?,
            session: session.to_owned(),
            window: RESUME_WINDOW,
        })
    }
}

/// Tells the host what attach did with a claim (`UsbAttachNote`), on whichever viewer carries the
/// claim now (a resume moves it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Notifier(Arc<std::sync::Mutex<Option<ViewerSender>>>);

impl Notifier {
    fn set(&self, viewer: &LiveViewer) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(viewer.sender());
    }

    /// Sends `attached` or `detached` for `claim_id` on `device` with this machine's host
    /// name; `false` when no viewer took it.
    pub(crate) fn note(&self, attached: bool, claim_id: u16, device: &DeviceInfo) -> bool {
        let note = reach_proto::v1::UsbAttachNote {
            attached,
            claim_id: u32::from(claim_id),
            vendor_id: u32::from(device.vendor_id),
            product_id: u32::from(device.product_id),
            serial: device.serial.clone().unwrap_or_default(),
            bus_id: device.bus_id.clone(),
            host_name: host_name(),
        };
        let sender = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        sender.is_some_and(|s| s.try_send(Body::UsbAttachNote(note)))
    }
}

/// This machine's host name, as the kernel has it.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A [`Connection`] for `reach usb attach` that keeps a viewer joined, rejoins and RESUMEs after
/// a drop (reporting [`Progress::Resuming`] and [`Progress::Resumed`]), and reports when the
/// session can no longer carry the device.
pub(crate) fn connection(
    viewer: LiveViewer,
    client: UsbClient,
    rejoin: Rejoin,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    notifier: Notifier,
) -> Connection {
    notifier.set(&viewer);
    Connection {
        client: client.clone(),
        lost: Box::pin(keep(viewer, client, rejoin, progress, notifier)),
    }
}

async fn keep(
    mut viewer: LiveViewer,
    client: UsbClient,
    rejoin: Rejoin,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    notifier: Notifier,
) -> String {
    loop {
        let dropped = match watch(&mut viewer).await {
            Watched::Gone(why) => return why,
            Watched::Dropped(why) => why,
        };
        progress(Progress::Resuming(dropped.clone()));
        match resume(&client, &rejoin).await {
            Ok(again) => {
                viewer = again;
                notifier.set(&viewer);
                progress(Progress::Resumed);
            }
            Err(why) => return why,
        }
    }
}

/// Rejoins with backoff until a new viewer carries the claims, or why it cannot.
async fn resume(client: &UsbClient, rejoin: &Rejoin) -> Result<LiveViewer, String> {
    let deadline = tokio::time::Instant::now() + rejoin.window;
    let mut pause = BACKOFF.0;
    loop {
        match tokio::time::timeout(ATTEMPT_WAIT, attempt(client, rejoin)).await {
            Ok(Ok(viewer)) => return Ok(viewer),
            Ok(Err(Attempt::Final(why))) => return Err(why),
            Ok(Err(Attempt::Again(why))) => tracing::debug!(%why, "rejoin"),
            Err(_) => tracing::debug!("rejoin attempt timed out"),
        }
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(format!(
                "the session connection dropped and could not be rejoined within {}s",
                rejoin.window.as_secs()
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF.1);
    }
}

enum Attempt {
    /// Worth trying again (the server or the path to it is not back yet).
    Again(String),
    /// The server or the host answered: the claims cannot come back.
    Final(String),
}

async fn attempt(client: &UsbClient, rejoin: &Rejoin) -> Result<LiveViewer, Attempt> {
    let joined = match rejoin.api.join(&rejoin.session).await {
        Ok(joined) => joined,
        Err(e @ ClientError::Api { status, .. }) if status < 500 => {
            return Err(Attempt::Final(format!(
                "the session cannot be rejoined: {e}"
            )));
        }
        Err(e @ ClientError::Rejected { .. }) => return Err(Attempt::Final(e.to_string())),
        Err(e) => return Err(Attempt::Again(e.to_string())),
    };
    if !joined.usb {
        let why = joined.usb_unavailable.clone();
        joined.leave().await;
        return Err(Attempt::Final(format!("USB is no longer available: {why}")));
    }
    let mut viewer = joined.into_live();
    match viewer.resume_usb(client).await {
        Ok(()) => Ok(viewer),
        Err(UsbError::Closed(why)) => Err(Attempt::Again(why)),
        Err(e) => Err(Attempt::Final(format!(
            "the host did not resume the claim (its retention window passed?): {e}"
        ))),
    }
}

enum Watched {
    /// The session ended, the host's agent went offline, or the server closed the viewer.
    Gone(String),
    /// The socket dropped: the host keeps the claims for a resume.
    Dropped(String),
}

/// Resolves when the viewer socket closes, the session ends, or the host's agent goes offline
/// (its claims die with it).
async fn watch(viewer: &mut LiveViewer) -> Watched {
    while let Some(incoming) = viewer.recv().await {
        match incoming {
            Incoming::Closed { code, reason } => {
                let why = format!("the session connection closed ({code}: {reason})");
                return if server_released(code) {
                    Watched::Gone(why)
                } else {
                    Watched::Dropped(why)
                };
            }
            Incoming::Envelope(env) => {
                if let Some(Body::SessionEvent(event)) = env.body {
                    match event.kind() {
                        Kind::Ended => {
                            return Watched::Gone(format!("the session ended ({})", event.reason));
                        }
                        Kind::AgentOffline => {
                            return Watched::Gone("the host's agent went offline".to_owned());
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Watched::Dropped("the session connection ended".to_owned())
}

#[cfg(test)]
#[path = "usb_session_tests.rs"]
mod tests;
