//! USB devices of a remote host, through a live session, as data: [`RemoteOp`] is what
//! `reach usb remote list|open`, action files and MCP ask for.

use reach_usb::proto::{DeviceFilter, Setup};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ClientError;
use reach_usb::client::UsbClient;

use crate::viewer::{ApiClient, LiveViewer};

/// One operation on a remote host's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum RemoteOp {
    /// The devices the remote host shares with you in `session` (its ACL decides).
    UsbRemoteList {
        /// Session id (opened with USB).
        session: String,
    },
    /// Claims a remote device, reads its device descriptor, releases it.
    UsbRemoteOpen {
        /// Session id.
        session: String,
        /// Which device (empty: the first shared one).
        #[serde(default)]
        #[schemars(with = "serde_json::Map<String, Value>")]
        filter: DeviceFilter,
    },
}

/// Why a remote operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Joining the session failed.
    #[error("joining session {session}: {source}")]
    Join {
        /// Which session.
        session: String,
        /// Why.
        source: ClientError,
    },
    /// USB is not available to this viewer in the session (the server's reason).
    #[error("USB is not available in session {session}: {reason}")]
    NoUsb {
        /// Which session.
        session: String,
        /// The server's sentence (`AuthOk.usb_unavailable`).
        reason: String,
    },
    /// The remote host refused or the transfer failed.
    #[error(transparent)]
    Usb(#[from] reach_usb::UsbError),
}

/// Joins `session` as the user behind `api` and starts a USB client over it; a session where
/// USB is not available to this viewer is refused with the server's reason.
///
/// # Errors
/// [`RemoteError::Join`] or [`RemoteError::NoUsb`].
pub async fn join_usb(
    api: &ApiClient,
    session: &str,
) -> Result<(LiveViewer, UsbClient), RemoteError> {
    let mut viewer = join_live(api, session).await?;
    let client = viewer.usb_client().ok_or_else(|| RemoteError::NoUsb {
        session: session.to_owned(),
        reason: "no USB channel".into(),
    })?;
    Ok((viewer, client))
}

/// Joins `session` as the user behind `api` when USB is available to them there (a rejoin
/// that resumes existing claims needs no new client).
///
/// # Errors
/// [`RemoteError::Join`] or [`RemoteError::NoUsb`] with the server's reason.
pub async fn join_live(api: &ApiClient, session: &str) -> Result<LiveViewer, RemoteError> {
    let joined = api
        .join(session)
        .await
        .map_err(|source| RemoteError::Join {
            session: session.to_owned(),
            source,
        })?;
    if !joined.usb {
        let reason = joined.usb_unavailable.clone();
        joined.leave().await;
        return Err(RemoteError::NoUsb {
            session: session.to_owned(),
            reason,
        });
    }
    Ok(joined.into_live())
}

impl RemoteOp {
    /// Runs it as the user behind `api`; the answer as JSON.
    ///
    /// # Errors
    /// [`RemoteError`].
    pub async fn run(&self, api: &ApiClient) -> Result<Value, RemoteError> {
        let session = match self {
            Self::UsbRemoteList { session } | Self::UsbRemoteOpen { session, .. } => session,
        };
        let (viewer, client) = join_usb(api, session).await?;
        let answer = match self {
            Self::UsbRemoteList { .. } => json!({ "devices": client.list().await? }),
            Self::UsbRemoteOpen { filter, .. } => {
                let handle = client.open(filter.clone()).await?;
                let descriptor = handle.control_in(Setup::get_device_descriptor()).await;
                let (claim, device) = (handle.claim_id(), handle.device().clone());
                handle.close().await;
                json!({"claim_id": claim, "device": device, "device_descriptor": hex::encode(descriptor?)})
            }
        };
        viewer.leave().await;
        Ok(answer)
    }
}
